//! Daemons that fork themselves (`pid_file`, systemd's `Type=forking`
//! with `PIDFile=`): the process started (the starter) forks the real
//! daemon and exits 0; the pid its pid file names becomes the process
//! to supervise, if it is a live process of this process's tree (its
//! cgroup, or without one a child of ours: the forked daemon is
//! re-parented to the subreaping daemon). It is our child then, so its
//! exit is reaped like any other.
//!
//! The file is read when the starter exited 0; if it does not name such
//! a process yet (not written yet, or half written), the agent waits for
//! its folder to change (inotify, [`FileWatch`]), never polling; the
//! state machine's PidFile timer ends the wait with a failed start. A
//! pid file left by an earlier run is removed before the starter runs
//! (systemd removes it after the service stopped), so an old pid is
//! never taken for the new daemon; only a file that holds a pid is
//! removed, never anything else a unit might name by mistake.

use super::*;
use crate::api::ProcessIdentity;
use crate::runtime::inotify::WatchDescriptor;
use crate::runtime::FileWatch;
use crate::runtime::ProcessCgroup;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Pid files awaited and the watches on their folders.
#[derive(Debug, Default)]
pub(super) struct PidFiles {
    /// (pod, process index) -> the pid file.
    waiting: BTreeMap<(String, usize), PathBuf>,
    /// Watched folders: the descriptor, and how many waits use it.
    dirs: BTreeMap<PathBuf, (WatchDescriptor, usize)>,
    /// Which folder each wait watches (its file's, or the nearest one
    /// that exists while that one does not).
    watched: BTreeMap<(String, usize), PathBuf>,
    watch: Option<FileWatch>,
}

impl PidFiles {
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn add(&mut self, name: &str, idx: usize, path: PathBuf) {
        let key = (name.to_string(), idx);
        self.waiting.insert(key.clone(), path);
        self.rewatch(&key);
    }

    /// Watches the folder of the file `key` waits for, or the nearest
    /// existing folder above it (the daemon may make its folder first).
    fn rewatch(&mut self, key: &(String, usize)) {
        let Some(watch) = self.watch.clone() else {
            return;
        };
        let Some(path) = self.waiting.get(key) else {
            return;
        };
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if self.watched.get(key) == Some(&d) {
                return;
            }
            if let Some((_, users)) = self.dirs.get_mut(&d) {
                *users += 1;
            } else {
                match watch.watch_dir(&d) {
                    Ok(wd) => {
                        self.dirs.insert(d.clone(), (wd, 1));
                    }
                    Err(_) => {
                        dir = d.parent().map(Path::to_path_buf);
                        continue;
                    }
                }
            }
            self.unwatch(key);
            self.watched.insert(key.clone(), d);
            return;
        }
    }

    fn unwatch(&mut self, key: &(String, usize)) {
        let Some(dir) = self.watched.remove(key) else {
            return;
        };
        let Some((_, users)) = self.dirs.get_mut(&dir) else {
            return;
        };
        *users -= 1;
        if *users == 0 {
            if let (Some((wd, _)), Some(w)) = (self.dirs.remove(&dir), &self.watch) {
                w.unwatch(wd);
            }
        }
    }

    fn remove(&mut self, name: &str, idx: usize) {
        let key = (name.to_string(), idx);
        if self.waiting.remove(&key).is_some() {
            self.unwatch(&key);
        }
    }

    pub(super) fn forget_pod(&mut self, name: &str) {
        let keys: Vec<(String, usize)> = self
            .waiting
            .keys()
            .filter(|(n, _)| n == name)
            .cloned()
            .collect();
        for (n, idx) in keys {
            self.remove(&n, idx);
        }
    }
}

/// What a pid file holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PidFileNow {
    /// Not there, or empty (being written).
    Missing,
    Pid(i32),
    /// Something that is not a pid.
    Garbage(String),
}

pub(super) fn read_pid_file(path: &Path) -> PidFileNow {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(_) => return PidFileNow::Missing,
    };
    let text = String::from_utf8_lossy(&text);
    let t = text.trim();
    if t.is_empty() {
        return PidFileNow::Missing;
    }
    match t.parse::<i32>() {
        Ok(pid) if pid > 0 => PidFileNow::Pid(pid),
        _ => PidFileNow::Garbage(t.chars().take(40).collect()),
    }
}

/// Removes a pid file left by an earlier run, before the starter runs:
/// only if it holds a pid (a small file of digits), so a unit naming
/// another file by mistake never costs that file.
pub(super) fn remove_stale(path: &Path) {
    let small = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 32);
    if small && matches!(read_pid_file(path), PidFileNow::Pid(_)) {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("removing the old pid file {}: {e}", path.display());
        }
    }
}

impl<R: ProcessRuntime> Agent<R> {
    /// The inotify instance the daemon's loop waits on (None in tests:
    /// they call [`Agent::on_files`] themselves).
    pub fn set_file_watch(&mut self, watch: FileWatch) {
        self.pid_files.watch = Some(watch);
    }

    /// `Effect::AwaitPidFile`: the event to feed back now (the main
    /// process is known), or None (waiting for the file).
    pub(super) fn await_pid_file(
        &mut self,
        store: &Store,
        name: &str,
        idx: usize,
    ) -> Option<Event> {
        let path = store.pod(name)?.spec.process_at(idx)?.pid_file.clone()?;
        if let Some(event) = self.check_pid_file(store, name, idx, &path) {
            return Some(event);
        }
        self.pid_files.add(name, idx, path);
        None
    }

    /// `Started` with the pid the file names, if it is a live process of
    /// this process's tree.
    fn check_pid_file(&self, store: &Store, name: &str, idx: usize, path: &Path) -> Option<Event> {
        let pid = match read_pid_file(path) {
            PidFileNow::Pid(pid) => pid,
            PidFileNow::Missing => return None,
            PidFileNow::Garbage(text) => {
                tracing::debug!("pid file {} holds {text:?}: waiting", path.display());
                return None;
            }
        };
        let pcg = self.process_cgroup(store, name, idx);
        match self.names_our_process(pcg.as_ref(), pid) {
            Ok(identity) => Some(Event::Started { pid, identity }),
            Err(why) => {
                tracing::debug!(
                    "pid file {} names pid {pid}: {why}; waiting",
                    path.display()
                );
                None
            }
        }
    }

    /// Whether `pid` may become the supervised process: alive, and in
    /// the process's cgroup (without one: our child).
    fn names_our_process(
        &self,
        pcg: Option<&ProcessCgroup>,
        pid: i32,
    ) -> Result<ProcessIdentity, &'static str> {
        if pid <= 1 || pid as u32 == std::process::id() {
            return Err("not a process drover may supervise");
        }
        let identity = self.rt.identity(pid).ok_or("no such process")?;
        let ours = match pcg {
            Some(pcg) => self
                .rt
                .cgroup_of(pid)
                .is_some_and(|found| pcg.holds(&found)),
            None => self.rt.is_child(pid),
        };
        if !ours {
            return Err("not a process of this pod's tree");
        }
        Ok(identity)
    }

    /// Something changed in a watched folder, or a cgroup may have
    /// emptied: awaited pid files and draining cgroups are looked at
    /// again.
    pub fn on_files(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        let waits: Vec<((String, usize), PathBuf)> = self
            .pid_files
            .waiting
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for ((name, idx), path) in waits {
            match self.check_pid_file(store, &name, idx, &path) {
                Some(event) => {
                    self.pid_files.remove(&name, idx);
                    self.dispatch(store, &name, idx, event, now, out);
                }
                None => self.pid_files.rewatch(&(name, idx)),
            }
        }
        self.settle_draining(store, now, out);
        self.flush(store, now, out);
    }

    /// A process that left the wait for its pid file (started, failed,
    /// stopped) stops waiting.
    pub(super) fn end_pid_file_wait(&mut self, name: &str, idx: usize) {
        if !self.pid_files.is_empty() {
            self.pid_files.remove(name, idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_read_leniently_and_removed_carefully() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pid");
        assert_eq!(read_pid_file(&f), PidFileNow::Missing);
        std::fs::write(&f, "").unwrap();
        assert_eq!(read_pid_file(&f), PidFileNow::Missing, "being written");
        std::fs::write(&f, "4242\n").unwrap();
        assert_eq!(read_pid_file(&f), PidFileNow::Pid(4242));
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_pid_file(&f), PidFileNow::Garbage("hello".into()));
        remove_stale(&f);
        assert!(f.exists(), "not a pid file: kept");
        std::fs::write(&f, " 17 \n").unwrap();
        remove_stale(&f);
        assert!(!f.exists(), "an old pid file goes");
        remove_stale(&f);
    }
}
