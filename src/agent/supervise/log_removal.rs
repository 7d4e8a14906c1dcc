//! Removing a deleted pod's logs off the daemon's loop. Unlinking is
//! journalled file-system work (2-3 ms a file measured on a busy disk
//! here): 1,000 pods scaled to 0 cost the loop 5 s, during which no
//! other pod was restarted and no API call answered.
//!
//! So removals go to a thread, in order. A pod whose folder is still
//! waiting for removal and that is started again under the same name (a
//! Pod unit deleted and applied at once) has the removal done first, by
//! the starter: nothing removes a new run's log.

use crate::agent::logs::LogDir;
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) struct LogRemover {
    logs: LogDir,
    /// Pods whose folder is queued for removal.
    pending: Arc<Mutex<HashSet<String>>>,
    /// The removing thread; None: remove at once (tests, or no thread
    /// could be started).
    tx: Option<mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(set: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogRemover {
    pub(super) fn new(logs: LogDir, background: bool) -> LogRemover {
        let pending = Arc::new(Mutex::new(HashSet::new()));
        let (tx, thread) = match background {
            true => start_thread(logs.clone(), pending.clone()).unzip(),
            false => (None, None),
        };
        LogRemover {
            logs,
            pending,
            tx,
            thread,
        }
    }

    /// A deleted pod's logs: removed soon, off this thread.
    pub(super) fn remove(&self, pod: &str) {
        if let Some(tx) = &self.tx {
            lock(&self.pending).insert(pod.to_string());
            if tx.send(pod.to_string()).is_ok() {
                return;
            }
            lock(&self.pending).remove(pod);
        }
        remove_now(&self.logs, pod);
    }

    /// Before a pod's process starts: its folder is not waiting to go.
    pub(super) fn before_start(&self, pod: &str) {
        let mut pending = lock(&self.pending);
        if pending.remove(pod) {
            remove_now(&self.logs, pod);
        }
    }
}

fn remove_now(logs: &LogDir, pod: &str) {
    if let Err(e) = logs.remove_pod(pod) {
        tracing::warn!("removing the logs of pod {pod}: {e}");
    }
}

/// What is queued is removed before the daemon exits.
impl Drop for LogRemover {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Thread = (mpsc::Sender<String>, std::thread::JoinHandle<()>);

fn start_thread(logs: LogDir, pending: Arc<Mutex<HashSet<String>>>) -> Option<Thread> {
    let (tx, rx) = mpsc::channel::<String>();
    let spawned = std::thread::Builder::new()
        .name("log-removal".into())
        .spawn(move || {
            for pod in rx {
                // Held while removing, so a start of the same name waits
                // for this removal instead of racing it.
                let mut pending = lock(&pending);
                if pending.remove(&pod) {
                    remove_now(&logs, &pod);
                }
            }
        });
    match spawned {
        Ok(thread) => Some((tx, thread)),
        Err(e) => {
            tracing::warn!("no thread for removing logs ({e}): removing them in the loop");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs_with(pods: &[&str]) -> (tempfile::TempDir, LogDir) {
        let dir = tempfile::tempdir().unwrap();
        for p in pods {
            std::fs::create_dir_all(dir.path().join(p)).unwrap();
            std::fs::write(dir.path().join(p).join("main.log"), "x").unwrap();
        }
        let logs = LogDir::new(dir.path().to_path_buf(), 0);
        (dir, logs)
    }

    #[test]
    fn removal_happens_off_the_caller_and_a_restart_under_the_name_goes_first() {
        let (dir, logs) = logs_with(&["a", "b"]);
        let r = LogRemover::new(logs, true);
        r.remove("a");
        r.remove("b");
        // `b` starts again at once: its old folder is removed first (by
        // us or by the thread), never after the new run's log exists.
        r.before_start("b");
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/main.log"), "new run").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while dir.path().join("a").exists() {
            assert!(std::time::Instant::now() < deadline, "a never removed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Dropping waits for the queue: `b` was handled (skipped: its
        // removal was done by the start).
        drop(r);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/main.log")).unwrap(),
            "new run"
        );
    }

    #[test]
    fn without_a_thread_removal_is_at_once() {
        let (dir, logs) = logs_with(&["a"]);
        let r = LogRemover::new(logs, false);
        r.remove("a");
        assert!(!dir.path().join("a").exists());
    }
}
