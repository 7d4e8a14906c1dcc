//! Where pods live once the hierarchy is chosen: [`Tree`] maps a pod or
//! process cgroup name to its directories (one in v2, one per mounted v1
//! hierarchy) and reads and writes their files.
//!
//! It decides nothing and creates nothing by itself: detect.rs builds a
//! tree, the other files use it.

use super::controller::{Controller, Controllers};
use super::CgroupError;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One mounted hierarchy with drover's instance root in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// What may be used below `root`: v2, the controllers enabled in the
    /// root's subtree_control; v1, the hierarchy's controllers we use.
    pub controllers: Controllers,
    /// The instance root directory, in the mounted cgroupfs.
    pub root: PathBuf,
    /// The same directory as /proc/PID/cgroup names it ("/a/drover-x").
    pub root_in_hierarchy: String,
    /// The middle field of this hierarchy's /proc/PID/cgroup line: ""
    /// for v2, the controller list for v1 ("memory", "cpu,cpuacct").
    pub proc_key: String,
}

/// The chosen hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tree {
    V2(Hierarchy),
    /// One entry per mounted hierarchy we use (distinct directories).
    V1(Vec<Hierarchy>),
}

impl Tree {
    pub fn hierarchies(&self) -> &[Hierarchy] {
        match self {
            Tree::V2(h) => std::slice::from_ref(h),
            Tree::V1(hs) => hs,
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Tree::V2(_))
    }

    /// Every controller usable below the roots.
    pub fn controllers(&self) -> Controllers {
        self.hierarchies()
            .iter()
            .fold(Controllers::NONE, |s, h| s.union(h.controllers))
    }

    /// `rel` ("UID" or "UID/PROCESS") in every hierarchy.
    pub fn dirs<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
        self.hierarchies().iter().map(move |h| h.root.join(rel))
    }

    /// `rel`'s directory in the hierarchy that has `controller`.
    pub fn dir_for(&self, controller: Controller, rel: &str) -> Option<PathBuf> {
        self.hierarchies()
            .iter()
            .find(|h| h.controllers.contains(controller))
            .map(|h| h.root.join(rel))
    }

    /// The hierarchy whose membership lists and empties a pod, and that
    /// every process joins: v2's one; in v1 the pids one (its count says
    /// "empty" in one read, and `pids.max` 0 fences a kill: stop.rs),
    /// else the freezer's (it stops the tree), else memory's, else the
    /// first.
    pub fn membership(&self) -> &Hierarchy {
        let hs = self.hierarchies();
        [Controller::Pids, Controller::Freezer, Controller::Memory]
            .into_iter()
            .find_map(|c| hs.iter().find(|h| h.controllers.contains(c)))
            .unwrap_or(&hs[0])
    }

    /// The hierarchies a process cgroup is made in and its process joins,
    /// for a process needing `need` ([`needed_by_process`]): those holding
    /// one of them, and the membership one. v2: its one hierarchy.
    pub fn joined(&self, need: Controllers) -> Vec<&Hierarchy> {
        let member = self.membership();
        self.hierarchies()
            .iter()
            .filter(|h| !h.controllers.intersect(need).is_empty() || *h == member)
            .collect()
    }

    /// The controllers of the hierarchies [`Tree::joined`] picks.
    pub fn joined_controllers(&self, need: Controllers) -> Controllers {
        self.joined(need)
            .iter()
            .fold(Controllers::NONE, |s, h| s.union(h.controllers))
    }
}

/// The v1 controllers a process's cgroup must be in, out of `have` (what
/// the host offers): those its limits need, and one to be listed, counted
/// and killed in. Every v1 hierarchy costs each spawn a mkdir, an open
/// and a join, and each removal an rmdir, all under the kernel's global
/// cgroup mutex (measured on the build machine: mkdir 32 us in pids,
/// 55 in cpuacct, 104 in memory, whose rmdir also leaves an offline
/// memcg behind until its pages are freed; joining `cpu` moves the task
/// between CFS groups: 0.1 ms median, 1-3 ms for a third of the joins),
/// so a process joins only what it uses:
/// - pids: membership (listing, emptiness, which pod a pid is in), the
///   kill fence, a pids limit;
/// - memory: only for a memory limit, and with it the OOMKilled reason
///   for kills by that limit;
/// - cpu: only for a cpu limit;
/// - cpuacct: never (CPU time is summed from /proc: usage.rs);
/// - freezer: only where there is no pids controller to fence a kill.
///
/// This is the trade systemd makes on v1 for units without
/// `MemoryAccounting=`/`CPUAccounting=`: usage of a process without
/// limits is what /proc says of the processes in its cgroup, and a
/// process killed by the kernel's global OOM killer (no memory limit)
/// ends by SIGKILL, not `OOMKilled`. v2 is unaffected: its one hierarchy
/// gives every pod memory accounting.
pub(crate) fn needed_by_process(limits: Controllers, have: Controllers) -> Controllers {
    let member = if have.contains(Controller::Pids) {
        Controller::Pids
    } else {
        Controller::Freezer
    };
    limits.with(member).intersect(have)
}

/// The whole file, as text.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::io(path, source))
}

/// The whole file, as text; None if it is not there: its cgroup was not
/// made (yet), or not in this hierarchy (a process joins only the v1
/// hierarchies it needs).
pub(crate) fn read_if_made(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::io(path, source)),
    }
}

/// Writes `value` in one write(2), as cgroupfs wants (no O_CREAT: a
/// missing file is an error, not a new file).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::io(path, source))
}

/// mkdir; Ok(true) if made, Ok(false) if it was there.
pub(crate) fn make_dir(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::io(path, source)),
    }
}

/// The number after `key ` in a flat-keyed file (memory.events,
/// cpu.stat, memory.oom_control: "key value" lines).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The pids in a cgroup.procs file.
pub(crate) fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// `dir` and every cgroup below it, parents first.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[i]) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    all.push(e.path());
                }
            }
        }
        i += 1;
    }
    all
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(1));
        assert_eq!(keyed(events, "max"), Some(3));
        assert_eq!(keyed(events, "nope"), None);
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed(v1, "oom_kill"), Some(2));
        assert_eq!(parse_pids("12\n345\n\n"), vec![12, 345]);
    }

    pub(crate) fn h(c: &[Controller], root: &str) -> Hierarchy {
        Hierarchy {
            controllers: Controllers::of(c),
            root: PathBuf::from(root),
            root_in_hierarchy: String::new(),
            proc_key: String::new(),
        }
    }

    /// The build machine: five v1 hierarchies, one controller each.
    pub(crate) fn five() -> Tree {
        Tree::V1(vec![
            h(&[Controller::Memory], "/m"),
            h(&[Controller::Cpu], "/c"),
            h(&[Controller::Cpuacct], "/a"),
            h(&[Controller::Pids], "/p"),
            h(&[Controller::Freezer], "/f"),
        ])
    }

    fn roots(hs: Vec<&Hierarchy>) -> Vec<&str> {
        hs.iter().map(|h| h.root.to_str().unwrap()).collect()
    }

    #[test]
    fn membership_prefers_pids_then_the_freezer() {
        let tree = five();
        assert_eq!(tree.membership().root, PathBuf::from("/p"));
        assert_eq!(
            tree.dir_for(Controller::Cpuacct, "u/p"),
            Some(PathBuf::from("/a/u/p"))
        );
        assert_eq!(tree.dirs("u").count(), 5);
        let no_pids = Tree::V1(vec![
            h(&[Controller::Memory], "/m"),
            h(&[Controller::Freezer], "/f"),
        ]);
        assert_eq!(no_pids.membership().root, PathBuf::from("/f"));
        assert_eq!(no_pids.dir_for(Controller::Pids, "u"), None);
        let cpu_only = Tree::V1(vec![h(&[Controller::Cpu, Controller::Cpuacct], "/c")]);
        assert_eq!(cpu_only.membership().root, PathBuf::from("/c"));
    }

    #[test]
    fn a_process_joins_what_its_limits_need_and_pids_or_else_the_freezer() {
        let tree = five();
        let all = tree.controllers();
        let plain = needed_by_process(Controllers::NONE, all);
        assert_eq!(plain.to_string(), "pids");
        assert_eq!(roots(tree.joined(plain)), ["/p"]);
        let memory = needed_by_process(Controllers::of(&[Controller::Memory]), all);
        assert_eq!(roots(tree.joined(memory)), ["/m", "/p"]);
        let cpu = needed_by_process(Controllers::of(&[Controller::Cpu]), all);
        assert_eq!(roots(tree.joined(cpu)), ["/c", "/p"]);
        assert_eq!(tree.joined_controllers(cpu).to_string(), "cpu, pids");
        // Without pids, the freezer stops a tree for the kill.
        let no_pids = Tree::V1(vec![
            h(&[Controller::Memory], "/m"),
            h(&[Controller::Cpu, Controller::Cpuacct], "/c"),
            h(&[Controller::Freezer], "/f"),
        ]);
        let need = needed_by_process(Controllers::NONE, no_pids.controllers());
        assert_eq!(need.to_string(), "freezer");
        assert_eq!(roots(no_pids.joined(need)), ["/f"]);
        // cpu shares its hierarchy with cpuacct here: both come along.
        let cpu = needed_by_process(Controllers::of(&[Controller::Cpu]), no_pids.controllers());
        assert_eq!(roots(no_pids.joined(cpu)), ["/c", "/f"]);
        assert_eq!(
            no_pids.joined_controllers(cpu).to_string(),
            "cpu, cpuacct, freezer"
        );
        // Only cpu is mounted: the membership hierarchy is joined anyway,
        // so every process has a cgroup to be listed and killed in.
        let cpu_only = Tree::V1(vec![h(&[Controller::Cpu], "/c")]);
        let need = needed_by_process(Controllers::NONE, cpu_only.controllers());
        assert!(need.is_empty());
        assert_eq!(roots(cpu_only.joined(need)), ["/c"]);
    }

    #[test]
    fn v2_has_one_hierarchy_and_every_process_joins_it() {
        let tree = Tree::V2(h(&[Controller::Memory, Controller::Pids], "/u"));
        let need = needed_by_process(Controllers::NONE, tree.controllers());
        assert_eq!(roots(tree.joined(need)), ["/u"]);
    }
}
