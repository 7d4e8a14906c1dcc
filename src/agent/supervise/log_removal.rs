//! Removing a deleted pod's logs off the daemon's loop. Unlinking is
//! journalled file-system work (2-3 ms a file measured on a busy disk
//! here): 1,000 pods scaled to 0 cost the loop 5 s, during which no
//! other pod was restarted and no API call answered.
//!
//! So removals go to a thread, in order. The loop only queues: it never
//! waits for a removal, except that of the one pod it starts again. (The
//! first version held the queue's lock while removing, so each queueing
//! waited for the removal before it: 2,000 pods scaled to 0 still cost
//! the loop 3.4 s in a debug build, issue 9.)
//!
//! A pod whose folder is still waiting for removal and that is started
//! again under the same name (a Pod unit deleted and applied at once) has
//! the removal done first, by the starter: nothing removes a new run's
//! log.

use crate::agent::logs::LogDir;
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub(super) struct LogRemover {
    remove: Removal,
    queue: Arc<Queue>,
    /// The removing thread; None: remove at once (tests, or no thread
    /// could be started).
    tx: Option<mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the thread has to do, and what it does now. The lock is held
/// only to read or change these, never while removing.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a removal ends.
    done: Condvar,
}

#[derive(Default)]
struct QueueState {
    /// Pods whose folder is queued for removal.
    pending: HashSet<String>,
    /// The pod whose folder is being removed now.
    busy: Option<String>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What removes one pod's logs (a parameter, so tests can make it slow).
type Removal = Arc<dyn Fn(&str) + Send + Sync>;

impl LogRemover {
    pub(super) fn new(logs: LogDir, background: bool) -> LogRemover {
        LogRemover::with_removal(Arc::new(move |pod| remove_now(&logs, pod)), background)
    }

    fn with_removal(remove: Removal, background: bool) -> LogRemover {
        let queue = Arc::new(Queue::default());
        let (tx, thread) = match background {
            true => start_thread(remove.clone(), queue.clone()).unzip(),
            false => (None, None),
        };
        LogRemover {
            remove,
            queue,
            tx,
            thread,
        }
    }

    /// A deleted pod's logs: removed soon, off this thread.
    pub(super) fn remove(&self, pod: &str) {
        if let Some(tx) = &self.tx {
            self.queue.lock().pending.insert(pod.to_string());
            if tx.send(pod.to_string()).is_ok() {
                return;
            }
            self.queue.lock().pending.remove(pod);
        }
        (self.remove)(pod);
    }

    /// Before a pod's process starts: its folder is not waiting to go
    /// (a removal under way is waited for; a queued one is done now).
    pub(super) fn before_start(&self, pod: &str) {
        let mut q = self.queue.lock();
        while q.busy.as_deref() == Some(pod) {
            q = self.queue.done.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        let queued = q.pending.remove(pod);
        drop(q);
        if queued {
            (self.remove)(pod);
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

fn start_thread(remove: Removal, queue: Arc<Queue>) -> Option<Thread> {
    let (tx, rx) = mpsc::channel::<String>();
    let spawned = std::thread::Builder::new()
        .name("log-removal".into())
        .spawn(move || {
            crate::runtime::background::lower_this_threads_priority();
            for pod in rx {
                {
                    let mut q = queue.lock();
                    if !q.pending.remove(&pod) {
                        continue; // removed by its starter
                    }
                    q.busy = Some(pod.clone());
                }
                remove(&pod);
                queue.lock().busy = None;
                queue.done.notify_all();
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

    /// Issue 9: the thread held the queue's lock while removing, so the
    /// loop's next `remove` waited for the removal before it (3.4 s of
    /// the loop for 2,000 pods). With a removal that cannot finish until
    /// told, queueing another one must still return: before the fix this
    /// waited forever (the deadline below turns that into a failure).
    #[test]
    fn queueing_never_waits_for_a_removal_under_way() {
        let (started_tx, started) = mpsc::channel::<String>();
        let (release_tx, release) = mpsc::channel::<()>();
        let (started_tx, release) = (Mutex::new(started_tx), Mutex::new(release));
        let removed = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = removed.clone();
        let slow: Removal = Arc::new(move |pod| {
            started_tx.lock().unwrap().send(pod.to_string()).unwrap();
            release.lock().unwrap().recv().unwrap();
            log.lock().unwrap().push(pod.to_string());
        });
        let r = Arc::new(LogRemover::with_removal(slow, true));
        r.remove("a");
        let deadline = std::time::Duration::from_secs(10);
        assert_eq!(started.recv_timeout(deadline).unwrap(), "a");
        // "a" is being removed and cannot finish: queue "b" from another
        // thread, and see that it returns.
        let (queued_tx, queued) = mpsc::channel();
        let r2 = r.clone();
        let queuer = std::thread::spawn(move || {
            r2.remove("b");
            queued_tx.send(()).unwrap();
        });
        assert!(
            queued.recv_timeout(deadline).is_ok(),
            "queueing waited for the removal under way"
        );
        queuer.join().unwrap();
        release_tx.send(()).unwrap();
        assert_eq!(started.recv_timeout(deadline).unwrap(), "b");
        release_tx.send(()).unwrap();
        drop(Arc::into_inner(r).expect("the queueing thread is done"));
        assert_eq!(*removed.lock().unwrap(), ["a", "b"]);
    }
}
