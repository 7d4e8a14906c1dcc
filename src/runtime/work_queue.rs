//! Keyed work done off the caller's thread, in order, by one
//! housekeeping thread: removing deleted pods' log folders
//! (`agent/supervise/log_removal.rs`) and pod cgroups
//! (`cgroup/removal.rs`), and making process cgroups ahead of their
//! spawn (`cgroup/ahead.rs`). All are slow kernel work that the caller
//! must not wait for: 2,000 pods scaled to 0 held the daemon's loop for
//! seconds, during which no crashed pod was restarted and no API call
//! answered (issue 9).
//!
//! The caller only queues ([`WorkQueue::queue`]); it never waits for a
//! key's work, except for a key it wants now ([`WorkQueue::claim`]:
//! work under way is waited for, queued work is cancelled), so a removal
//! never runs under a new run, nor a make beside the spawn doing it. The
//! queue's lock is held only to read or change its bookkeeping, never
//! while working: the first version held it, and each queueing waited
//! for the removal before it.
//!
//! Work may ask to be tried again later (a cgroup still busy); it is,
//! after a pause that doubles, until the work gives up. Whatever waits
//! for a retry when the queue is dropped is handed to `abandon`.

use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// What work asks for after one try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or given up (and said why).
    Finished,
    /// Try again after [`retry_delay`].
    Retry,
}

/// The pause before try `tries` + 1 of a key whose work asked for a
/// retry: 10 ms doubling.
pub fn retry_delay(tries: u32) -> Duration {
    Duration::from_millis(10) * (1 << tries.saturating_sub(1).min(12))
}

/// One try at a key's work: `(key, tries before this one)`.
pub type Run = Box<dyn Fn(&str, u32) -> Outcome + Send + Sync>;

/// What the thread does with one key: `run` its work, and `abandon(key)`
/// for one still waiting for a retry at shutdown.
pub struct Work {
    pub run: Run,
    pub abandon: Box<dyn Fn(&str) + Send + Sync>,
}

pub struct WorkQueue {
    work: Arc<Work>,
    shared: Arc<Shared>,
    name: &'static str,
    /// The thread runs at a lower priority than the caller's (removals:
    /// only left-over CPU).
    nicer: bool,
    /// Started at the first queueing. None inside: no thread could be
    /// made (the pid table is full, or the owner asked for none), so
    /// work is done at once, with no retry.
    worker: OnceLock<Option<Worker>>,
}

struct Worker {
    tx: mpsc::Sender<String>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a key's work ends.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Keys queued, or waiting for another try.
    pending: HashSet<String>,
    /// The key being worked on now.
    busy: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WorkQueue {
    /// A queue whose thread is called `name`. `background` false: all
    /// work is done at once by the caller (tests).
    pub fn new(name: &'static str, background: bool, work: Work) -> WorkQueue {
        let worker = OnceLock::new();
        if !background {
            let _ = worker.set(None);
        }
        WorkQueue {
            work: Arc::new(work),
            shared: Arc::default(),
            name,
            nicer: true,
            worker,
        }
    }

    /// The thread keeps the caller's priority: for work whose callers
    /// wait on it (a claim of work under way), which must not wait for a
    /// thread the scheduler keeps off the CPU while it holds a kernel
    /// lock they need.
    pub fn at_callers_priority(mut self) -> WorkQueue {
        self.nicer = false;
        self
    }

    /// Does `key`'s work soon, off this thread.
    pub fn queue(&self, key: &str) {
        let worker = self
            .worker
            .get_or_init(|| start(self.name, self.nicer, &self.work, &self.shared));
        if let Some(w) = worker {
            self.shared.lock().pending.insert(key.to_string());
            if w.tx.send(key.to_string()).is_ok() {
                return;
            }
            self.shared.lock().pending.remove(key);
        }
        // No waiting for a retry here: the caller is the daemon's loop.
        if (self.work.run)(key, 0) == Outcome::Retry {
            (self.work.abandon)(key);
        }
    }

    /// `key` is wanted now: its work under way is waited for, queued
    /// work (or a retry) is cancelled. Returns whether some was
    /// cancelled: the caller may want it done now.
    pub fn claim(&self, key: &str) -> bool {
        let mut s = self.shared.lock();
        while s.busy.as_deref() == Some(key) {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
        s.pending.remove(key)
    }

    /// Waits until nothing is queued or being worked on, retries included.
    pub fn wait_idle(&self) {
        let mut s = self.shared.lock();
        while !s.pending.is_empty() || s.busy.is_some() {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How many keys are queued or wait for another try.
    pub fn pending(&self) -> usize {
        self.shared.lock().pending.len()
    }
}

impl std::fmt::Debug for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.name)
            .field("pending", &self.pending())
            .finish()
    }
}

/// What is queued is done (once) before the owner goes.
impl Drop for WorkQueue {
    fn drop(&mut self) {
        if let Some(Some(w)) = self.worker.take() {
            drop(w.tx);
            let _ = w.thread.join();
        }
    }
}

fn start(
    name: &'static str,
    nicer: bool,
    work: &Arc<Work>,
    shared: &Arc<Shared>,
) -> Option<Worker> {
    let (tx, rx) = mpsc::channel::<String>();
    let (work, shared2) = (work.clone(), shared.clone());
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if nicer {
                super::background::lower_this_threads_priority();
            }
            run(&work, &shared2, rx)
        });
    match spawned {
        Ok(thread) => Some(Worker { tx, thread }),
        Err(e) => {
            tracing::warn!("no {name} thread ({e}): working at once");
            None
        }
    }
}

/// The worker: queued keys in order, and those to retry when their pause
/// is over.
fn run(work: &Work, shared: &Shared, rx: mpsc::Receiver<String>) {
    // (when, key, tries so far)
    let mut retries: Vec<(Instant, String, u32)> = Vec::new();
    let mut open = true;
    while open {
        let next_retry = retries.iter().map(|r| r.0).min();
        let received = match next_retry {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match received {
            Ok(key) => attempt(work, shared, key, 0, &mut retries),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The owner is gone: the retries due now still get their try.
            Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = retries.drain(..).partition(|r| r.0 <= now);
        retries = later;
        for (_, key, tries) in due {
            attempt(work, shared, key, tries, &mut retries);
        }
    }
    // Shutting down: what waits for a retry gets no more waiting.
    for (_, key, _) in retries {
        if shared.lock().pending.remove(&key) {
            (work.abandon)(&key);
        }
    }
    shared.changed.notify_all();
}

/// One try at `key` (`tries` before it), unless it was claimed meanwhile.
fn attempt(
    work: &Work,
    shared: &Shared,
    key: String,
    tries: u32,
    retries: &mut Vec<(Instant, String, u32)>,
) {
    {
        let mut s = shared.lock();
        if !s.pending.contains(&key) {
            return; // claimed
        }
        s.busy = Some(key.clone());
    }
    let again = (work.run)(&key, tries) == Outcome::Retry;
    {
        // In one step with `busy` cleared, so a claim waiting on it
        // finds the retry pending and cancels it.
        let mut s = shared.lock();
        s.busy = None;
        if !again {
            s.pending.remove(&key);
        }
    }
    shared.changed.notify_all();
    if again {
        retries.push((Instant::now() + retry_delay(tries + 1), key, tries + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue whose removals record their key in `done`, each first
    /// waiting for a go on `release` when `gated`.
    struct Recording {
        queue: WorkQueue,
        done: Arc<Mutex<Vec<String>>>,
        started: mpsc::Receiver<String>,
        release: mpsc::Sender<()>,
    }

    fn recording(background: bool, gated: bool) -> Recording {
        let done = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started) = mpsc::channel::<String>();
        let (release_tx, release) = mpsc::channel::<()>();
        let (started_tx, release) = (Mutex::new(started_tx), Mutex::new(release));
        let log = done.clone();
        let queue = WorkQueue::new(
            "test-removal",
            background,
            Work {
                run: Box::new(move |key, _| {
                    let _ = started_tx.lock().unwrap().send(key.to_string());
                    if gated {
                        release.lock().unwrap().recv().unwrap();
                    }
                    log.lock().unwrap().push(key.to_string());
                    Outcome::Finished
                }),
                abandon: Box::new(|_| {}),
            },
        );
        Recording {
            queue,
            done,
            started,
            release: release_tx,
        }
    }

    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn without_a_thread_removal_is_at_once() {
        let Recording { queue: q, done, .. } = recording(false, false);
        q.queue("a");
        assert_eq!(*done.lock().unwrap(), ["a"]);
    }

    #[test]
    fn dropping_the_queue_finishes_what_is_queued_in_order() {
        let Recording { queue: q, done, .. } = recording(true, false);
        for k in ["a", "b", "c"] {
            q.queue(k);
        }
        drop(q);
        assert_eq!(*done.lock().unwrap(), ["a", "b", "c"]);
    }

    /// Issue 9: the thread held the queue's lock while removing, so the
    /// loop's next queueing waited for the removal before it (3.4 s of
    /// the loop for 2,000 pods). With a removal that cannot finish until
    /// told, queueing another one must still return: before the fix this
    /// waited forever (the deadline below turns that into a failure).
    #[test]
    fn queueing_never_waits_for_a_removal_under_way() {
        let Recording {
            queue,
            done,
            started,
            release,
        } = recording(true, true);
        let q = Arc::new(queue);
        q.queue("a");
        assert_eq!(started.recv_timeout(DEADLINE).unwrap(), "a");
        let (queued_tx, queued) = mpsc::channel();
        let q2 = q.clone();
        let queuer = std::thread::spawn(move || {
            q2.queue("b");
            queued_tx.send(()).unwrap();
        });
        assert!(
            queued.recv_timeout(DEADLINE).is_ok(),
            "queueing waited for the removal under way"
        );
        queuer.join().unwrap();
        release.send(()).unwrap();
        assert_eq!(started.recv_timeout(DEADLINE).unwrap(), "b");
        release.send(()).unwrap();
        drop(Arc::into_inner(q).expect("the queueing thread is done"));
        assert_eq!(*done.lock().unwrap(), ["a", "b"]);
    }

    /// A key claimed while its removal runs waits for it; a key claimed
    /// while queued is never removed by the thread.
    #[test]
    fn a_claim_waits_for_the_removal_under_way_and_cancels_a_queued_one() {
        let r = recording(true, true);
        let (q, done, started, release) = (Arc::new(r.queue), r.done, r.started, r.release);
        q.queue("a");
        q.queue("b");
        assert_eq!(started.recv_timeout(DEADLINE).unwrap(), "a");
        assert!(q.claim("b"), "b was queued");
        let q2 = q.clone();
        let claimer = std::thread::spawn(move || q2.claim("a"));
        release.send(()).unwrap();
        assert!(!claimer.join().unwrap(), "a was done, not cancelled");
        assert_eq!(
            *done.lock().unwrap(),
            ["a"],
            "a finished before the claim returned"
        );
        drop(Arc::into_inner(q).expect("the claiming thread is done"));
        assert_eq!(*done.lock().unwrap(), ["a"], "b never removed");
    }

    #[test]
    fn a_busy_key_is_tried_again_until_it_finishes_and_abandoned_at_shutdown() {
        let tries = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(Mutex::new(Vec::new()));
        let (t, a) = (tries.clone(), abandoned.clone());
        let q = WorkQueue::new(
            "test-removal",
            true,
            Work {
                // "soon" finishes at its third try; "never" always asks again.
                run: Box::new(move |key, n| {
                    t.lock().unwrap().push((key.to_string(), n));
                    match (key, n) {
                        ("soon", 2) => Outcome::Finished,
                        _ => Outcome::Retry,
                    }
                }),
                abandon: Box::new(move |key| a.lock().unwrap().push(key.to_string())),
            },
        );
        q.queue("soon");
        let deadline = Instant::now() + DEADLINE;
        while q.pending() > 0 {
            assert!(Instant::now() < deadline, "soon never finished");
            std::thread::sleep(Duration::from_millis(5));
        }
        q.queue("never");
        while !tries.lock().unwrap().iter().any(|(k, _)| k == "never") {
            assert!(Instant::now() < deadline, "never never tried");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(q);
        let soon: Vec<u32> = tries
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == "soon")
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(soon, [0, 1, 2]);
        assert_eq!(*abandoned.lock().unwrap(), ["never"]);
    }

    #[test]
    fn the_retry_pause_doubles_from_ten_milliseconds() {
        let ms = |n| retry_delay(n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(10)], [10, 20, 40, 5120]);
    }
}
