//! Removing a deleted pod's logs off the daemon's loop. Unlinking is
//! journalled file-system work (2-3 ms a file measured on a busy disk
//! here): 1,000 pods scaled to 0 cost the loop 5 s, during which no
//! other pod was restarted and no API call answered.
//!
//! So removals go to a thread, in order (`runtime/work_queue.rs`). The
//! loop only queues: it never waits for a removal, except that of the one
//! pod it starts again.
//!
//! A pod whose folder is still waiting for removal and that is started
//! again under the same name (a Pod unit deleted and applied at once) has
//! the removal done first, by the starter: nothing removes a new run's
//! log.

use crate::agent::logs::LogDir;
use crate::runtime::work_queue::{Outcome, Work, WorkQueue};

pub(super) struct LogRemover {
    /// For the removals a start does itself.
    logs: LogDir,
    queue: WorkQueue,
}

impl LogRemover {
    /// `background` false: removals at once (tests).
    pub(super) fn new(logs: LogDir, background: bool) -> LogRemover {
        let by_thread = logs.clone();
        let work = Work {
            run: Box::new(move |pod, _| {
                remove_now(&by_thread, pod);
                Outcome::Finished
            }),
            abandon: Box::new(|_| {}),
        };
        LogRemover {
            logs,
            queue: WorkQueue::new("log-removal", background, work),
        }
    }

    /// A deleted pod's logs: removed soon, off this thread.
    pub(super) fn remove(&self, pod: &str) {
        self.queue.queue(pod);
    }

    /// Before a pod's process starts: its folder is not waiting to go
    /// (a removal under way is waited for; a queued one is done now).
    pub(super) fn before_start(&self, pod: &str) {
        if self.queue.claim(pod) {
            remove_now(&self.logs, pod);
        }
    }
}

fn remove_now(logs: &LogDir, pod: &str) {
    if let Err(e) = logs.remove_pod(pod) {
        tracing::warn!("removing the logs of pod {pod}: {e}");
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
}
