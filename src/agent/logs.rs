//! Process logs on disk: ROOT/POD/PROCESS.log for the current run,
//! ROOT/POD/PROCESS.previous.log for the run before (`logs --previous`),
//! size rotation by copy-truncate, tail and follow.
//!
//! (stub: the logs helper fills this in; signatures are the contract)

use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct LogDir {
    pub root: PathBuf,
    pub max_bytes: u64,
}

impl LogDir {
    pub fn new(root: PathBuf, max_bytes: u64) -> LogDir {
        LogDir { root, max_bytes }
    }

    /// ROOT/POD/PROCESS.log
    pub fn current(&self, pod: &str, process: &str) -> PathBuf {
        self.root.join(pod).join(format!("{process}.log"))
    }

    /// ROOT/POD/PROCESS.previous.log
    pub fn previous(&self, pod: &str, process: &str) -> PathBuf {
        self.root.join(pod).join(format!("{process}.previous.log"))
    }

    /// Before a process (re)starts: create ROOT/POD, move the current log
    /// (if any) to the previous one, and return the current path.
    pub fn start_run(&self, pod: &str, process: &str) -> io::Result<PathBuf> {
        let _ = (pod, process);
        todo!()
    }

    /// When a pod is deleted: remove ROOT/POD.
    pub fn remove_pod(&self, pod: &str) -> io::Result<()> {
        let _ = pod;
        todo!()
    }
}

/// The last `lines` lines of a file (all of it with None).
pub fn tail(path: &Path, lines: Option<usize>) -> io::Result<Vec<u8>> {
    let _ = (path, lines);
    todo!()
}
