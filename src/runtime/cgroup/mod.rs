//! Cgroups: one per pod, a child per process, under a root of this daemon
//! instance's own. This module owns everything drover does with cgroupfs:
//! finding a usable hierarchy at start, making and removing pod and
//! process cgroups, writing limits, reading usage and OOM kills, killing
//! a pod's whole tree. It never starts processes (child.rs puts a child
//! into its cgroup, with the descriptors [`Cgroups`] prepares) and it
//! decides nothing about pods: the agent says when.
//!
//! ## Layout
//! `<base>/drover-<instance>/<pod uid>/<process name>` in the one v2
//! hierarchy, or in the v1 hierarchies the process needs: pids always
//! (membership, the kill fence), memory and cpu only for their limits,
//! freezer only where there is no pids controller (hierarchy.rs,
//! `needed_by_process`: each hierarchy costs every spawn a mkdir and a
//! join; usage outside memory and cpuacct comes from /proc). On v1 a
//! pod's only process lives in the pod's cgroup itself, without a child
//! ([`PodCgroup::sole_process`]): one directory fewer per pod. Limits are per
//! process (`resources` is a process field) and live on the process's
//! cgroup; the pod's cgroup holds its processes' cgroups and is what is
//! killed, measured and removed. The instance root keeps several daemons
//! on one machine apart.
//!
//! `<base>` is the daemon's own cgroup (v1: in each hierarchy), so pods
//! stay inside whatever the daemon was given. v2 forbids processes in a
//! cgroup that passes controllers down, hence (detect.rs, `v2_base`): at
//! the hierarchy root, below it; under systemd 254+ with
//! `Delegate=yes` + `DelegateSubgroup=supervisor` (the daemon in a leaf
//! of the delegated cgroup), beside the daemon, in the delegated cgroup;
//! with `Delegate=yes` alone (systemd 252, Debian 12), the daemon first
//! moves itself into `<own>/drover-<instance>-daemon`. HAZARD of that
//! last case: the service's cgroup now passes controllers down, and
//! systemd cannot start a new main process in it while pods live
//! (EBUSY, status 219/CGROUP): a crashed daemon is not restarted until
//! its pods are gone. `daemon-reexec` (same process) is unaffected.
//!
//! ## Which hierarchy ([`Cgroups::detect`], once, at daemon start)
//! cgroup v2 where it offers the limit controllers in a subtree we may
//! write; else the v1 controllers (a hybrid host like the build machine,
//! whose v2 mount has no controller). [`Cgroups::describe`] says which,
//! for `describe node` and the daemon's first log line. Without either
//! (non-root `drover up`, a read-only cgroupfs) nothing is refused but
//! limits: a spawn that asks for `resources` fails with
//! `SpawnError::LimitsUnavailable` and never runs unlimited, and a
//! hierarchy lacking one controller refuses just the limits that need it.
//!
//! ## What the agent calls, and when (through [`super::ProcessRuntime`])
//! 1. Before a pod's first spawn: `pod_cgroup(uid)` → a [`PodCgroup`]
//!    handle; its directories are made by the pod's first spawn (step 2),
//!    on the spawning threads rather than in the daemon's loop
//!    (`create_pod_cgroup` makes them now, for tools and tests; both are
//!    idempotent: call again for a pod re-adopted after a restart).
//!    `Err(Unavailable)`: run the pod without one, and let any process
//!    with `resources` fail to start (the spawn says why). A pod cgroup
//!    never made reads as empty, unused and already removed.
//! 2. Each spawn: `SpawnRequest { cgroup: Some(pod.process(name)?),
//!    resources, .. }`, announced with `will_spawn` when the agent
//!    gathers it into a batch, so a thread makes its cgroup while the
//!    loop prepares the rest (ahead.rs; the spawn makes what the thread
//!    did not reach). The runtime makes the process cgroup, writes its
//!    limits and starts the child inside it (v2 `clone3` with
//!    CLONE_INTO_CGROUP, else the child writes itself into `cgroup.procs`
//!    before exec, on v1 into each hierarchy's `tasks` (see
//!    `place::Placement::procs`); failing that, the spawn fails).
//! 3. At a process's start and exit: `oom_kills(&process_cgroup,
//!    limits)`; if it grew and the process died by SIGKILL, the reason
//!    is `OOMKilled` (exit code 137).
//! 4. Stopping a pod, at the end of its grace period: `kill_cgroup(&pod)`
//!    (every process below, escaped ones included), then wait until
//!    `cgroup_is_empty(&pod)`: check it after each reap, and on v2 also
//!    when `watch_cgroup_empty`'s [`EmptyWatch`] wakes (the only signal
//!    for processes that are not our children, after a daemon restart).
//! 5. When the pod is finished and empty: `release_pod_cgroup(&pod)`,
//!    which returns at once: a thread removes it (removal.rs: rmdir of
//!    a cgroup is slow, and the daemon's loop must not wait for it).
//!    `remove_pod_cgroup` is the same, done now (tests, tools).
//! 7. At daemon start: `pod_cgroups()`, the pod cgroups left in the
//!    instance root, so those of pods no longer known are removed.
//! 6. Whenever asked (describe pod, get pods -o wide): `cgroup_usage(&pod)`.
//!
//! Files: detect.rs (choosing, instance root), hierarchy.rs (names to
//! directories), limits.rs, place.rs (ready for a spawn), ahead.rs
//! (made before the spawn, off the loop), clone_into.rs
//! (clone3), stop.rs (kill, empty), removal.rs (the removal thread),
//! usage.rs, controller.rs.

mod ahead;
mod clone_into;
mod controller;
mod detect;
mod hierarchy;
mod limits;
mod place;
mod removal;
mod stop;
mod usage;

pub use controller::{Controller, Controllers};
pub use stop::EmptyWatch;
pub use usage::Usage;

#[cfg(test)]
pub(crate) use clone_into::known_to_work as clone_into_known_to_work;
pub(crate) use clone_into::{
    clone_into_cgroup, usable as clone_into_usable, Outcome as CloneOutcome,
};
pub(crate) use place::Placement;

use crate::api::Resources;
use ahead::Ahead;
use hierarchy::Tree;
use removal::Removals;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pod's cgroup, by name (the pod's uid): a plain handle, resolved by
/// the runtime that made it. Cheap to clone and to keep in agent state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodCgroup {
    pod_uid: String,
}

/// One process's cgroup inside its pod's; or, for the only process of a
/// pod on cgroup v1, the pod's cgroup itself ([`PodCgroup::sole_process`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessCgroup {
    pod_uid: String,
    /// Empty for a sole process found by pid ([`Cgroups::process_of`]):
    /// its cgroup does not name it.
    process: String,
    sole: bool,
}

impl PodCgroup {
    /// The handle for pod `pod_uid` (no I/O: see
    /// `ProcessRuntime::create_pod_cgroup` for making it).
    pub fn new(pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        check_name(pod_uid)?;
        Ok(PodCgroup {
            pod_uid: pod_uid.to_string(),
        })
    }

    pub fn pod_uid(&self) -> &str {
        &self.pod_uid
    }

    /// The cgroup of process `name` of this pod.
    pub fn process(&self, name: &str) -> Result<ProcessCgroup, CgroupError> {
        check_name(name)?;
        Ok(ProcessCgroup {
            pod_uid: self.pod_uid.clone(),
            process: name.to_string(),
            sole: false,
        })
    }

    /// The cgroup of `name`, the pod's only process (no other process, no
    /// init process). On cgroup v1 it is the pod's cgroup itself: one
    /// directory fewer to make and remove in each hierarchy, under the
    /// kernel's global cgroup mutex, for every pod started (most pods
    /// have one process). v2 keeps the child: a v2 cgroup that passes
    /// controllers down may not hold processes.
    pub fn sole_process(&self, name: &str) -> Result<ProcessCgroup, CgroupError> {
        Ok(ProcessCgroup {
            sole: true,
            ..self.process(name)?
        })
    }

    /// [`PodCgroup::process`] or [`PodCgroup::sole_process`], whichever
    /// fits a pod of `process_count` processes (init processes included).
    pub fn process_of_pod(
        &self,
        name: &str,
        process_count: usize,
    ) -> Result<ProcessCgroup, CgroupError> {
        if process_count == 1 {
            self.sole_process(name)
        } else {
            self.process(name)
        }
    }
}

impl ProcessCgroup {
    pub fn pod(&self) -> PodCgroup {
        PodCgroup {
            pod_uid: self.pod_uid.clone(),
        }
    }

    pub fn pod_uid(&self) -> &str {
        &self.pod_uid
    }

    pub fn process(&self) -> &str {
        &self.process
    }

    /// Whether this is a pod's only process ([`PodCgroup::sole_process`]).
    pub fn is_sole(&self) -> bool {
        self.sole
    }

    /// Whether `found` (what [`Cgroups::process_of`] says of a pid) is
    /// this cgroup: a sole process's cgroup does not name its process.
    pub fn holds(&self, found: &ProcessCgroup) -> bool {
        self.pod_uid == found.pod_uid
            && self.sole == found.sole
            && (self.sole || self.process == found.process)
    }

    /// Names this cgroup among all of an instance's, whatever the
    /// hierarchy ('/' is in no pod uid or process name).
    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.pod_uid,
            self.process,
            if self.sole { "sole" } else { "" }
        )
    }

    /// "UID/PROCESS" below the instance root; "UID" for a sole process
    /// on v1.
    fn relative(&self, tree: &Tree) -> String {
        if self.sole && !tree.is_v2() {
            self.pod_uid.clone()
        } else {
            format!("{}/{}", self.pod_uid, self.process)
        }
    }
}

/// One path component: no '/', not "." or "..", no NUL, not empty, and
/// no name cgroupfs uses for its own files ("tasks", "memory.max",
/// "cgroup.procs"): mkdir would find the file and the cgroup be unusable.
fn check_name(name: &str) -> Result<(), CgroupError> {
    const FILE_PREFIXES: [&str; 16] = [
        "cgroup",
        "memory",
        "cpu",
        "cpuacct",
        "cpuset",
        "pids",
        "freezer",
        "io",
        "blkio",
        "hugetlb",
        "rdma",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "devices",
    ];
    let reserved = matches!(name, "tasks" | "notify_on_release" | "release_agent")
        || name
            .split_once('.')
            .is_some_and(|(prefix, _)| FILE_PREFIXES.contains(&prefix));
    let bad = name.is_empty()
        || name.len() > 200
        || name == "."
        || name == ".."
        || name.contains(['/', '\0', '\n'])
        || reserved;
    if bad {
        return Err(CgroupError::InvalidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable hierarchy (non-root, read-only cgroupfs, none mounted).
    #[error("cgroups are not available: {reason}")]
    Unavailable { reason: String },
    #[error("the {controller} controller is not available ({hierarchy})")]
    MissingController {
        controller: &'static str,
        hierarchy: String,
    },
    #[error("\"{name}\" cannot name a cgroup")]
    InvalidName { name: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The child could not put itself into its cgroup (the process was
    /// not started).
    #[error("joining {}: {source}", path.display())]
    Join { path: PathBuf, source: io::Error },
    #[error("{} still has processes", path.display())]
    NotEmpty { path: PathBuf },
}

impl CgroupError {
    pub(crate) fn io(path: &Path, source: io::Error) -> CgroupError {
        CgroupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The hierarchy this daemon puts pods in, or why there is none.
#[derive(Clone, Debug)]
pub struct Cgroups {
    support: Result<Tree, String>,
    /// Pod cgroups waiting for removal (shared by clones).
    removals: Option<Arc<Removals>>,
    /// Process cgroups ready for a restart (shared by clones).
    prepared: Arc<place::Prepared>,
    /// Process cgroups being made ahead of their spawn (shared by clones).
    ahead: Option<Arc<Ahead>>,
}

impl Cgroups {
    /// Finds a usable hierarchy and makes the instance root
    /// `drover-<instance>` in it (see the module docs). Never fails: the
    /// result may be [`Cgroups::is_available`] false, with the reason.
    /// `instance`: this daemon's id, stable across its restarts (so pods
    /// re-adopted after a restart find their cgroups again).
    pub fn detect(instance: &str) -> Cgroups {
        let found = match read_proc() {
            Ok(found) => found,
            Err(reason) => return Cgroups::unavailable(reason),
        };
        let v2_score = found
            .v2
            .as_ref()
            .map(|c| detect::v2_available(c).limit_count());
        let v1_score = (!found.v1.is_empty()).then(|| detect::v1_offered(&found.v1).limit_count());
        let mut reasons = Vec::new();
        for version in detect::order(v2_score, v1_score) {
            let tried = match version {
                detect::Version::V2 => Cgroups::setup_v2(&found, instance),
                detect::Version::V1 => Cgroups::setup_v1(&found, instance),
            };
            match tried {
                Ok(c) => return c,
                Err(reason) => reasons.push(reason),
            }
        }
        if reasons.is_empty() {
            reasons.push("no cgroup filesystem is mounted".to_string());
        }
        Cgroups::unavailable(reasons.join("; "))
    }

    /// Only cgroup v2, whatever controllers it offers (a v2 tree with no
    /// controller still places, kills and measures CPU; limits needing a
    /// missing controller are refused).
    pub fn detect_v2(instance: &str) -> Result<Cgroups, String> {
        Cgroups::setup_v2(&read_proc()?, instance)
    }

    /// Only the cgroup v1 controllers.
    pub fn detect_v1(instance: &str) -> Result<Cgroups, String> {
        Cgroups::setup_v1(&read_proc()?, instance)
    }

    fn setup_v2(found: &detect::Candidates, instance: &str) -> Result<Cgroups, String> {
        let name = root_name(instance)?;
        let c = found.v2.as_ref().ok_or("cgroup v2 is not mounted")?;
        let h = detect::setup_v2(c, &name)?;
        Ok(Cgroups::with_tree(Tree::V2(h)))
    }

    fn setup_v1(found: &detect::Candidates, instance: &str) -> Result<Cgroups, String> {
        let name = root_name(instance)?;
        if found.v1.is_empty() {
            return Err(
                "cgroup v1: no memory, cpu, pids, cpuacct or freezer hierarchy is mounted".into(),
            );
        }
        let hs = detect::setup_v1(&found.v1, &name)?;
        Ok(Cgroups::with_tree(Tree::V1(hs)))
    }

    fn with_tree(tree: Tree) -> Cgroups {
        let prepared = Arc::<place::Prepared>::default();
        Cgroups {
            removals: Some(Arc::new(Removals::new(tree.clone()))),
            ahead: Some(Arc::new(Ahead::new(tree.clone(), prepared.clone()))),
            support: Ok(tree),
            prepared,
        }
    }

    /// No cgroups, for `reason` (shown in errors and by `describe`).
    pub fn unavailable(reason: impl Into<String>) -> Cgroups {
        Cgroups {
            support: Err(reason.into()),
            removals: None,
            prepared: Arc::default(),
            ahead: None,
        }
    }

    /// Why pods get no cgroup here; None where they do.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.support.as_ref().err().map(String::as_str)
    }

    pub fn is_available(&self) -> bool {
        self.support.is_ok()
    }

    /// 2 or 1; None without cgroups.
    pub fn version(&self) -> Option<u8> {
        self.support
            .as_ref()
            .ok()
            .map(|t| if t.is_v2() { 2 } else { 1 })
    }

    /// The controllers usable for pods.
    pub fn controllers(&self) -> Controllers {
        self.support
            .as_ref()
            .map(Tree::controllers)
            .unwrap_or_default()
    }

    /// One line for `describe node` and the daemon's first log line.
    pub fn describe(&self) -> String {
        match &self.support {
            Ok(tree) => describe_tree(tree),
            Err(reason) => format!("none ({reason}); processes with resources are refused"),
        }
    }

    fn tree(&self) -> Result<&Tree, CgroupError> {
        self.support
            .as_ref()
            .map_err(|reason| CgroupError::Unavailable {
                reason: reason.clone(),
            })
    }

    /// Makes pod `pod_uid`'s cgroup (idempotent). A removal of it still
    /// pending is cancelled first (one under way is waited for).
    pub fn create_pod(&self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        let pod = self.pod(pod_uid)?;
        place::ensure_pod(self.tree()?, pod_uid)?;
        Ok(pod)
    }

    /// Pod `pod_uid`'s cgroup, to be made by its first spawn
    /// ([`Cgroups::prepare`]): no I/O, so the daemon's loop does not wait
    /// for a pod's mkdirs. A removal still pending is cancelled, as by
    /// [`Cgroups::create_pod`].
    pub fn pod(&self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        let pod = PodCgroup::new(pod_uid)?;
        self.tree()?;
        self.take_back(pod_uid);
        Ok(pod)
    }

    /// Removes the pod's cgroup and its process cgroups now. Err(NotEmpty)
    /// while a process is left (kill and wait first); a cgroup already
    /// gone is Ok.
    pub fn remove_pod(&self, pod: &PodCgroup) -> Result<(), CgroupError> {
        let tree = self.tree()?;
        self.take_back(pod.pod_uid());
        self.forget(pod.pod_uid(), pod.pod_uid());
        removal::remove_now(tree, pod.pod_uid())
    }

    /// Removes the (empty) pod's cgroup soon, off this thread (see
    /// removal.rs: a busy one is tried again, then left for the next
    /// start; failures are logged).
    pub fn release_pod(&self, pod: &PodCgroup) {
        self.forget(pod.pod_uid(), pod.pod_uid());
        if let Some(r) = &self.removals {
            r.release(pod.pod_uid());
        }
    }

    /// Pod cgroups queued for removal or being removed.
    pub fn pending_removals(&self) -> usize {
        self.removals.as_ref().map_or(0, |r| r.pending())
    }

    /// Process cgroups queued to be made ahead, or being made.
    #[cfg(test)]
    pub(crate) fn pending_ahead(&self) -> usize {
        self.ahead.as_ref().map_or(0, |a| a.pending())
    }

    /// The pod cgroups in the instance root, in any hierarchy (what a
    /// daemon start compares with the pods it knows).
    pub fn pod_cgroups(&self) -> Vec<PodCgroup> {
        let Ok(tree) = self.tree() else {
            return Vec::new();
        };
        let mut found = std::collections::BTreeSet::new();
        for h in tree.hierarchies() {
            let Ok(entries) = std::fs::read_dir(&h.root) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Some(pod) = e.file_name().to_str().and_then(|n| PodCgroup::new(n).ok()) {
                        found.insert(pod);
                    }
                }
            }
        }
        found.into_iter().collect()
    }

    /// `rel` and below may change now: not known as prepared any more,
    /// and nothing queued ahead for their pod is made (one being made is
    /// waited for, so it cannot mark `rel` prepared after this).
    fn forget(&self, rel: &str, pod_uid: &str) {
        if let Some(a) = &self.ahead {
            a.cancel_pod(pod_uid);
        }
        self.prepared.forget(rel);
    }

    fn take_back(&self, pod_uid: &str) {
        if let Some(r) = &self.removals {
            r.take_back(pod_uid);
        }
    }

    /// Removes the instance root (a daemon shutting down with no pod
    /// left; tests). Err(NotEmpty) while pod cgroups remain. Waits for
    /// the removals queued before.
    pub fn remove_root(&self) -> Result<(), CgroupError> {
        let tree = self.tree()?;
        if let Some(r) = &self.removals {
            r.wait_idle();
        }
        for h in tree.hierarchies() {
            match std::fs::remove_dir(&h.root) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::NotEmpty {
                        path: h.root.clone(),
                    })
                }
                Err(source) => return Err(CgroupError::io(&h.root, source)),
            }
        }
        Ok(())
    }

    /// SIGKILLs every process in the pod's cgroup, whatever group or
    /// session it is in (see stop.rs). Returns at once; the processes
    /// die and are reaped asynchronously.
    pub fn kill(&self, pod: &PodCgroup) -> Result<(), CgroupError> {
        let tree = self.tree()?;
        // A v1 kill fences with pids.max: limits are checked again at the
        // next spawn, should the old value not have been put back.
        self.forget(pod.pod_uid(), pod.pod_uid());
        stop::kill(tree, pod.pod_uid()).map(|_| ())
    }

    /// SIGKILLs every process in one process's cgroup (what a run left
    /// behind, escaped ones included), as [`Cgroups::kill`] does for a
    /// pod. An empty cgroup (every restart after a crash) costs one read:
    /// v1 `pids.current`, v2 `cgroup.events`.
    pub fn kill_process(&self, process: &ProcessCgroup) -> Result<(), CgroupError> {
        let tree = self.tree()?;
        let rel = process.relative(tree);
        if stop::is_empty(tree, &rel)? {
            return Ok(());
        }
        self.forget(&rel, process.pod_uid());
        stop::kill(tree, &rel).map(|_| ())
    }

    /// The pids in one process's cgroup.
    pub fn process_pids(&self, process: &ProcessCgroup) -> Result<Vec<i32>, CgroupError> {
        let tree = self.tree()?;
        Ok(stop::pids(tree, &process.relative(tree)))
    }

    /// Whether no live process is left in the pod's cgroup.
    pub fn is_empty(&self, pod: &PodCgroup) -> Result<bool, CgroupError> {
        stop::is_empty(self.tree()?, pod.pod_uid())
    }

    /// v2: a watch that wakes when the pod's cgroup may have emptied.
    /// None on v1 (no such event: check after reaps). Needs a tokio
    /// runtime.
    pub fn watch_empty(&self, pod: &PodCgroup) -> Result<Option<EmptyWatch>, CgroupError> {
        let tree = self.tree()?;
        if !tree.is_v2() {
            return Ok(None);
        }
        let file = tree
            .membership()
            .root
            .join(pod.pod_uid())
            .join("cgroup.events");
        EmptyWatch::new(&file)
            .map(Some)
            .map_err(|source| CgroupError::io(&file, source))
    }

    /// The pids in the pod's cgroup (all its processes' descendants).
    pub fn pids(&self, pod: &PodCgroup) -> Result<Vec<i32>, CgroupError> {
        Ok(stop::pids(self.tree()?, pod.pod_uid()))
    }

    /// The pod's usage, all its processes together.
    pub fn usage(&self, pod: &PodCgroup) -> Result<Usage, CgroupError> {
        usage::usage(self.tree()?, pod.pod_uid())
    }

    /// One process's usage.
    pub fn process_usage(&self, process: &ProcessCgroup) -> Result<Usage, CgroupError> {
        let tree = self.tree()?;
        usage::usage(tree, &process.relative(tree))
    }

    /// OOM kills so far in this process's cgroup (see usage.rs); `res`:
    /// its limits.
    pub fn oom_kills(
        &self,
        process: &ProcessCgroup,
        res: Option<&Resources>,
    ) -> Result<u64, CgroupError> {
        let tree = self.tree()?;
        let none = Resources::default();
        usage::oom_kills(tree, &process.relative(tree), res.unwrap_or(&none))
    }

    /// The cgroup `pid` is in, if it is one of this instance's process
    /// cgroups: who sent a notify message, which pod a pid belongs to.
    pub fn process_of(&self, pid: i32) -> Option<ProcessCgroup> {
        let h = self.tree().ok()?.membership();
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let path = text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, key, path) = (parts.next()?, parts.next()?, parts.next()?);
            (key == h.proc_key).then_some(path)
        })?;
        let rest = path.strip_prefix(&h.root_in_hierarchy)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let pod = PodCgroup::new(parts.next()?).ok()?;
        match parts.next() {
            Some(process) => pod.process(process).ok(),
            // In the pod's own cgroup: a sole process (v1), which the
            // path does not name.
            None => Some(ProcessCgroup {
                pod_uid: pod.pod_uid,
                process: String::new(),
                sole: true,
            }),
        }
    }

    /// Makes `process`'s cgroup ready for a spawn (module docs, step 2).
    pub(crate) fn prepare(
        &self,
        process: &ProcessCgroup,
        res: Option<&Resources>,
    ) -> Result<Placement, CgroupError> {
        let tree = self.tree()?;
        // Its pod's cgroup is wanted again, whoever released it.
        self.take_back(process.pod_uid());
        if let Some(a) = &self.ahead {
            a.claim(process);
        }
        place::prepare(tree, &self.prepared, process, res)
    }

    /// `process` will be spawned soon (with limits `res`): its cgroup is
    /// made meanwhile, off this thread (ahead.rs), so the spawn only
    /// opens its join files. Nothing is
    /// reported: the spawn makes what was not made, and says why it
    /// could not.
    pub(crate) fn prepare_ahead(&self, process: &ProcessCgroup, res: Option<&Resources>) {
        // Only a runtime with a hierarchy has one.
        let Some(a) = &self.ahead else {
            return;
        };
        let none = Resources::default();
        let res = res.unwrap_or(&none);
        if !self.prepared.holds(process, res) {
            // A removal of its pod still queued is cancelled first, as
            // the spawn would (one under way is waited for).
            self.take_back(process.pod_uid());
            a.queue(process, res);
        }
    }

    /// The pod's directories: one per hierarchy every process joins
    /// (what [`Cgroups::create_pod`] makes).
    pub fn pod_dirs(&self, pod: &PodCgroup) -> Vec<PathBuf> {
        match self.tree() {
            Ok(tree) => place::pod_hierarchies(tree)
                .iter()
                .map(|h| h.root.join(pod.pod_uid()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The directory of `process` in the hierarchy holding `controller`
    /// (for reading a file this module has no accessor for).
    pub fn dir_of(&self, controller: Controller, process: &ProcessCgroup) -> Option<PathBuf> {
        let tree = self.tree().ok()?;
        tree.dir_for(controller, &process.relative(tree))
    }

    /// Limits `res` cannot get here: the reason, for `LimitsUnavailable`.
    pub(crate) fn refuses(&self, res: &Resources) -> Option<String> {
        match &self.support {
            Err(reason) => Some(reason.clone()),
            Ok(tree) => limits::needed(res)
                .iter()
                .find(|c| !tree.controllers().contains(*c))
                .map(|c| {
                    format!(
                        "the {} controller is not available ({})",
                        c.name(),
                        describe_tree(tree)
                    )
                }),
        }
    }
}

fn read_proc() -> Result<detect::Candidates, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    Ok(detect::candidates(&mountinfo, &cgroup))
}

/// Removes what a daemon of `instance` left in every hierarchy the
/// caller sits in, once none of its processes is left (a SIGKILLed
/// daemon, a benchmark that killed everything by pid): its root, its
/// daemon leaf and every cgroup below them, deepest first. rmdir removes
/// empty cgroups only, so one still in use stays. For tests and
/// benchmarks: thousands of leftovers slow every mkdir. Returns whether
/// all of it is gone.
pub fn remove_leftovers(instance: &str) -> bool {
    let roots = instance_roots(instance);
    for root in &roots {
        for dir in hierarchy::walk(root).iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    roots.iter().all(|r| !r.exists())
}

/// The pids alive or unreaped in the cgroups of a daemon of `instance`
/// started by the caller ([`instance_roots`], every cgroup below them):
/// what keeps [`remove_leftovers`] from removing them.
pub fn instance_pids(instance: &str) -> Vec<i32> {
    instance_roots(instance)
        .iter()
        .flat_map(|root| stop::list(root))
        .collect()
}

/// Where a daemon of `instance` started by the caller puts its cgroups,
/// in every hierarchy the caller sits in, whether they exist or not: its
/// root and its daemon leaf, in the caller's own cgroup (v2: or its
/// parent; see detect.rs).
pub fn instance_roots(instance: &str) -> Vec<PathBuf> {
    let (Ok(name), Ok(found)) = (root_name(instance), read_proc()) else {
        return Vec::new();
    };
    let v2_parent = found.v2.as_ref().and_then(|c| c.own.parent());
    let bases = found
        .v1
        .iter()
        .chain(&found.v2)
        .map(|c| c.own.as_path())
        .chain(v2_parent);
    bases
        .flat_map(|base| [base.join(&name), base.join(format!("{name}-daemon"))])
        .collect()
}

/// `drover-<instance>`; the instance must be a plain word.
fn root_name(instance: &str) -> Result<String, String> {
    let ok = !instance.is_empty()
        && instance.len() <= 64
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!(
            "\"{instance}\" cannot name a cgroup root (letters, digits, - and _ only)"
        ));
    }
    Ok(format!("drover-{instance}"))
}

fn describe_tree(tree: &Tree) -> String {
    let lacking = Controllers::of(
        &Controllers::LIMITS
            .iter()
            .filter(|c| !tree.controllers().contains(*c))
            .collect::<Vec<_>>(),
    );
    let lacking = if lacking.is_empty() {
        String::new()
    } else {
        format!("; without {lacking}: those limits are refused")
    };
    match tree {
        Tree::V2(h) => format!(
            "cgroup v2 ({}) at {}{lacking}",
            h.controllers,
            h.root.display()
        ),
        Tree::V1(hs) => {
            let roots: Vec<String> = hs.iter().map(|h| h.root.display().to_string()).collect();
            format!(
                "cgroup v1 ({}) at {}{lacking}",
                tree.controllers(),
                roots.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_components() {
        assert!(PodCgroup::new("6f1c2a4e-0001-4b7e-9a51-3d2f8c0e0001").is_ok());
        let pod = PodCgroup::new("abc").unwrap();
        let v1 = Tree::V1(Vec::new());
        assert_eq!(pod.process("server").unwrap().relative(&v1), "abc/server");
        let sole = pod.sole_process("server").unwrap();
        assert_eq!(sole.relative(&v1), "abc");
        let v2 = Tree::V2(hierarchy::Hierarchy {
            controllers: Controllers::NONE,
            root: PathBuf::new(),
            root_in_hierarchy: String::new(),
            proc_key: String::new(),
        });
        assert_eq!(sole.relative(&v2), "abc/server");
        assert_eq!(pod.process_of_pod("server", 1).unwrap(), sole);
        assert_eq!(
            pod.process_of_pod("server", 2).unwrap(),
            pod.process("server").unwrap()
        );
        // What process_of says of a pid in the pod's own cgroup.
        let found = ProcessCgroup {
            pod_uid: "abc".into(),
            process: String::new(),
            sole: true,
        };
        assert!(sole.holds(&found));
        assert!(!pod.process("server").unwrap().holds(&found));
        assert!(pod
            .process("server")
            .unwrap()
            .holds(&pod.process("server").unwrap()));
        assert!(!pod
            .process("server")
            .unwrap()
            .holds(&pod.process("other").unwrap()));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "cgroup.procs",
            "memory.max",
            "tasks",
            "x\0y",
        ] {
            assert!(PodCgroup::new(bad).is_err(), "{bad:?}");
            assert!(pod.process(bad).is_err(), "{bad:?}");
        }
        assert!(pod.process("web.1").is_ok(), "a dot is fine elsewhere");
        assert_eq!(root_name("1a2b3c4d5e6f").unwrap(), "drover-1a2b3c4d5e6f");
        assert!(root_name("../x").is_err());
        assert!(root_name("").is_err());
    }

    #[test]
    fn without_cgroups_everything_says_why() {
        let none = Cgroups::unavailable("running as uid 1000");
        assert!(!none.is_available());
        assert_eq!(none.version(), None);
        assert_eq!(
            none.describe(),
            "none (running as uid 1000); processes with resources are refused"
        );
        let err = none.create_pod("abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroups are not available: running as uid 1000"
        );
        assert_eq!(
            none.refuses(&Resources {
                pids: Some(3),
                ..Default::default()
            }),
            Some("running as uid 1000".to_string())
        );
    }
}
