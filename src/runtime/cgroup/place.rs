//! Getting a process cgroup ready for a spawn: its directory (and its
//! pod's, if missing), its limits, and the descriptors the child joins it
//! through. Everything that can fail here fails before clone.

use super::controller::Controllers;
use super::detect::enable;
use super::hierarchy::{make_dir, needed_by_process, Hierarchy, Tree};
use super::{limits, CgroupError, ProcessCgroup};
use crate::api::Resources;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// What the child needs to start inside its cgroup.
#[derive(Debug)]
pub(crate) struct Placement {
    /// v2: the process cgroup's directory, for clone3(CLONE_INTO_CGROUP):
    /// the child is born inside it.
    pub clone_into: Option<OwnedFd>,
    /// The files the child writes "0" (itself) into before exec: each v1
    /// hierarchy's `tasks`, or v2's `cgroup.procs` when clone3 cannot be
    /// used. v1 gets `tasks` because moving one thread that is the writer
    /// itself skips the kernel's global threadgroup lock, whose write side
    /// waits for an RCU grace period: 5.8 ms a spawn on the build machine
    /// against 0.6 ms (the child is single-threaded, so moving its one
    /// thread moves the process).
    pub procs: Vec<OwnedFd>,
    /// Their paths, same order (for error messages).
    pub procs_paths: Vec<PathBuf>,
}

/// Makes the pod's directory in the hierarchies every process of it
/// joins (a cpu-limited process makes its pod's cpu directory itself:
/// [`prepare`]); in v2 it passes the controllers on to the process
/// cgroups below it.
pub(crate) fn ensure_pod(tree: &Tree, pod_uid: &str) -> Result<(), CgroupError> {
    for h in pod_hierarchies(tree) {
        make_pod_dir(tree, h, pod_uid)?;
    }
    Ok(())
}

/// The hierarchies a process without limits joins: where every pod has
/// its directory.
pub(crate) fn pod_hierarchies(tree: &Tree) -> Vec<&Hierarchy> {
    tree.joined(needed_by_process(Controllers::NONE, tree.controllers()))
}

fn make_pod_dir(tree: &Tree, h: &Hierarchy, pod_uid: &str) -> Result<(), CgroupError> {
    let dir = h.root.join(pod_uid);
    make_dir(&dir)?;
    if tree.is_v2() {
        enable(&dir, h.controllers)?;
    }
    Ok(())
}

/// The process cgroups this runtime made and gave their limits, with
/// those limits: a restart into one of them with the same limits opens
/// its join files and nothing else (no mkdir, no reading the limit files
/// back: ~0.1 ms of a crash-to-replacement on the build machine). Only a
/// hint: a directory gone since (removed by hand) fails the open, and
/// the cgroup is prepared in full. Forgotten when anything may have
/// changed the limits or the directories: the pod's cgroup released or
/// removed, a kill fence raised in it (stop.rs). Empty at a daemon start,
/// so cgroups left by the previous daemon get every limit checked.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Pod uid → (process name, sole) → the limits written.
    pods: Mutex<HashMap<String, PodPrepared>>,
}

/// One pod's prepared process cgroups: (process name, sole) → limits.
type PodPrepared = HashMap<(String, bool), Resources>;

impl Prepared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, PodPrepared>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn holds(&self, cg: &ProcessCgroup, res: &Resources) -> bool {
        self.lock()
            .get(cg.pod_uid())
            .and_then(|p| p.get(&(cg.process().to_string(), cg.is_sole())))
            .is_some_and(|r| r == res)
    }

    fn insert(&self, cg: &ProcessCgroup, res: &Resources) {
        self.lock()
            .entry(cg.pod_uid().to_string())
            .or_default()
            .insert((cg.process().to_string(), cg.is_sole()), res.clone());
    }

    /// `rel` ("UID" or "UID/PROCESS") and below are no longer known.
    pub(crate) fn forget(&self, rel: &str) {
        let mut pods = self.lock();
        match rel.split_once('/') {
            None => {
                pods.remove(rel);
            }
            Some((uid, process)) => {
                if let Some(p) = pods.get_mut(uid) {
                    p.retain(|(name, _), _| name != process);
                }
            }
        }
    }
}

/// See the module docs. `res`: the process's limits (None: no limit; an
/// existing cgroup is reset to none). Made only in the hierarchies the
/// process needs ([`needed_by_process`]); its pod's directory there too
/// if missing (a pod's first spawn: the agent does not make it before,
/// so that its loop never waits for these mkdirs). A cgroup made ahead
/// ([`make_ahead`]) only has its join files opened.
pub(crate) fn prepare(
    tree: &Tree,
    prepared: &Prepared,
    cg: &ProcessCgroup,
    res: Option<&Resources>,
) -> Result<Placement, CgroupError> {
    let none = Resources::default();
    let res = res.unwrap_or(&none);
    let plan = plan(tree, cg, res)?;
    let (rel, joined) = (&plan.rel, &plan.joined);
    if prepared.holds(cg, res) {
        match placement(tree, joined, rel) {
            Err(CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                prepared.forget(rel);
            }
            done => return done,
        }
    }
    make(tree, cg, res, &plan)?;
    let done = placement(tree, joined, rel)?;
    prepared.insert(cg, res);
    Ok(done)
}

/// [`prepare`] but for the join files, for a spawn to come (ahead.rs):
/// the cgroup made, its limits written, and its join files looked up
/// once, which is most of what opening them costs the first time (22 us
/// against 6 for a file looked up before, cgroup v1 here). Nothing is
/// kept open: the spawn opens them.
pub(crate) fn make_ahead(
    tree: &Tree,
    prepared: &Prepared,
    cg: &ProcessCgroup,
    res: &Resources,
) -> Result<(), CgroupError> {
    if prepared.holds(cg, res) {
        return Ok(());
    }
    let plan = plan(tree, cg, res)?;
    make(tree, cg, res, &plan)?;
    for h in &plan.joined {
        let _ = std::fs::metadata(h.root.join(&plan.rel).join(join_file(tree)));
    }
    prepared.insert(cg, res);
    Ok(())
}

/// Where a process's cgroup goes.
struct Plan<'t> {
    /// Below the instance root.
    rel: String,
    /// The controllers it needs ([`needed_by_process`]).
    need: Controllers,
    /// The hierarchies holding them.
    joined: Vec<&'t Hierarchy>,
}

/// The process's [`Plan`]; Err if a limit needs a controller this tree
/// lacks.
fn plan<'t>(tree: &'t Tree, cg: &ProcessCgroup, res: &Resources) -> Result<Plan<'t>, CgroupError> {
    let missing = missing_controllers(tree.controllers(), limits::needed(res));
    if let Some(c) = missing.iter().next() {
        return Err(CgroupError::MissingController {
            controller: c.name(),
            hierarchy: super::describe_tree(tree),
        });
    }
    let need = needed_by_process(limits::needed(res), tree.controllers());
    Ok(Plan {
        rel: cg.relative(tree),
        need,
        joined: tree.joined(need),
    })
}

/// Makes the process cgroup where `plan` says (and its pod's, if
/// missing) and writes its limits.
fn make(tree: &Tree, cg: &ProcessCgroup, res: &Resources, plan: &Plan) -> Result<(), CgroupError> {
    let none = Resources::default();
    let (rel, joined) = (plan.rel.as_str(), &plan.joined);
    let mut fresh = true;
    let mut pod_was_there = true;
    for h in joined {
        let dir = h.root.join(rel);
        let made = match make_dir(&dir) {
            Err(CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                make_pod_dir(tree, h, cg.pod_uid())?;
                pod_was_there = false;
                make_dir(&dir)?
            }
            other => other?,
        };
        fresh &= made;
    }
    // A new process cgroup in a pod cgroup that was there: the pod may
    // have had a sole process, whose limits were the pod cgroup's own (a
    // spec changed in place from one process to more). They would now
    // bound the whole pod, in every hierarchy the pod has a directory in
    // (one this process does not join would still bound a later
    // sibling's): back to none (a read per limit file when there is
    // nothing to undo).
    if fresh && pod_was_there && !tree.is_v2() && !cg.is_sole() {
        let pod_dirs = tree
            .hierarchies()
            .iter()
            .filter(|h| h.root.join(cg.pod_uid()).is_dir())
            .fold(Controllers::NONE, |c, h| c.union(h.controllers));
        limits::apply(tree, pod_dirs, cg.pod_uid(), &none, true)?;
    }
    // A cgroup of this process in a hierarchy it no longer joins (its
    // earlier run had a limit this one has not) would hold that stale
    // limit and read as its usage: it goes. Empty, as the process is
    // gone; a failure leaves it to the pod's removal. Only a process run
    // before has any (the membership hierarchy, always joined, then had
    // its directory already), so a first spawn does not pay the rmdirs.
    if !fresh {
        for h in tree.hierarchies() {
            if !joined.contains(&h) {
                let _ = std::fs::remove_dir(h.root.join(rel));
            }
        }
    }
    limits::apply(tree, tree.joined_controllers(plan.need), rel, res, !fresh)
}

/// The file a process joins its cgroup through.
fn join_file(tree: &Tree) -> &'static str {
    if tree.is_v2() {
        "cgroup.procs"
    } else {
        "tasks"
    }
}

/// The descriptors the child joins `rel` through, in `joined`.
fn placement(tree: &Tree, joined: &[&Hierarchy], rel: &str) -> Result<Placement, CgroupError> {
    let mut placement = Placement {
        clone_into: None,
        procs: Vec::new(),
        procs_paths: Vec::new(),
    };
    for h in joined {
        let dir = h.root.join(rel);
        let path = dir.join(join_file(tree));
        placement.procs.push(open(&path, libc::O_WRONLY)?);
        placement.procs_paths.push(path);
        if tree.is_v2() {
            placement.clone_into = Some(open(&dir, libc::O_RDONLY | libc::O_DIRECTORY)?);
        }
    }
    Ok(placement)
}

fn missing_controllers(have: Controllers, need: Controllers) -> Controllers {
    Controllers::of(
        &need
            .iter()
            .filter(|c| !have.contains(*c))
            .collect::<Vec<_>>(),
    )
}

fn open(path: &Path, flags: i32) -> Result<OwnedFd, CgroupError> {
    let mut o = std::fs::OpenOptions::new();
    // O_WRONLY without O_CREAT, or a read-only directory descriptor.
    if flags & libc::O_WRONLY != 0 {
        o.write(true);
    } else {
        o.read(true);
    }
    o.custom_flags(flags & !libc::O_WRONLY)
        .open(path)
        .map(|f: File| f.into())
        .map_err(|source| CgroupError::io(path, source))
}

#[cfg(test)]
mod tests {
    use super::super::controller::Controller;
    use super::*;

    #[test]
    fn prepared_cgroups_are_known_with_their_limits_until_forgotten() {
        use super::super::PodCgroup;
        let p = Prepared::default();
        let pod = PodCgroup::new("u1").unwrap();
        let (web, db) = (pod.process("web").unwrap(), pod.process("db").unwrap());
        let capped = Resources {
            pids: Some(10),
            ..Default::default()
        };
        assert!(!p.holds(&web, &Resources::default()));
        p.insert(&web, &Resources::default());
        p.insert(&db, &capped);
        assert!(p.holds(&web, &Resources::default()));
        assert!(!p.holds(&web, &capped), "other limits: prepared again");
        assert!(p.holds(&db, &capped));
        let sole_web = pod.sole_process("web").unwrap();
        assert!(!p.holds(&sole_web, &Resources::default()), "another cgroup");
        p.insert(&sole_web, &Resources::default());
        assert!(p.holds(&sole_web, &Resources::default()));
        p.forget("u1/web");
        assert!(!p.holds(&sole_web, &Resources::default()));
        assert!(!p.holds(&web, &Resources::default()));
        assert!(p.holds(&db, &capped), "its sibling is still known");
        p.forget("u1");
        assert!(!p.holds(&db, &capped));
    }

    #[test]
    fn missing_is_need_minus_have() {
        let have = Controllers::of(&[Controller::Memory, Controller::Pids]);
        let need = Controllers::LIMITS;
        assert_eq!(
            missing_controllers(have, need),
            Controllers::of(&[Controller::Cpu])
        );
        assert!(missing_controllers(Controllers::V1_WANTED, need).is_empty());
    }
}
