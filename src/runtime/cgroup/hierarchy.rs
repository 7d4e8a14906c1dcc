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

    /// The hierarchy whose membership lists and empties a pod: v2's one;
    /// in v1 the freezer's (it also stops the tree), else the first.
    pub fn membership(&self) -> &Hierarchy {
        let hs = self.hierarchies();
        [Controller::Freezer, Controller::Pids, Controller::Memory]
            .into_iter()
            .find_map(|c| hs.iter().find(|h| h.controllers.contains(c)))
            .unwrap_or(&hs[0])
    }
}

/// The whole file, as text.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::io(path, source))
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
mod tests {
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

    #[test]
    fn membership_prefers_the_freezer() {
        let h = |c: &[Controller], root: &str| Hierarchy {
            controllers: Controllers::of(c),
            root: PathBuf::from(root),
            root_in_hierarchy: String::new(),
            proc_key: String::new(),
        };
        let tree = Tree::V1(vec![
            h(&[Controller::Memory], "/m"),
            h(&[Controller::Cpu, Controller::Cpuacct], "/c"),
            h(&[Controller::Freezer], "/f"),
        ]);
        assert_eq!(tree.membership().root, PathBuf::from("/f"));
        assert_eq!(
            tree.dir_for(Controller::Cpuacct, "u/p"),
            Some(PathBuf::from("/c/u/p"))
        );
        assert_eq!(tree.dir_for(Controller::Pids, "u"), None);
        let dirs: Vec<_> = tree.dirs("u").collect();
        assert_eq!(dirs.len(), 3);
        let no_freezer = Tree::V1(vec![
            h(&[Controller::Cpu], "/c"),
            h(&[Controller::Pids], "/p"),
        ]);
        assert_eq!(no_freezer.membership().root, PathBuf::from("/p"));
    }
}
