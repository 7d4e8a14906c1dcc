//! Removing pod cgroups off the caller's thread.
//!
//! rmdir of a cgroup is slow kernel work, and work that waits: the kernel
//! tears down each controller's files and takes its cgroup lock, which
//! its own workers hold while they take the cgroups removed before
//! offline. A pod has a directory per process in every hierarchy (ten
//! for a one-process pod on a v1 host with five). Done in the daemon's
//! loop, 2,000 pods scaled to 0 held the loop for seconds, during which
//! no other pod was restarted and no API call answered (issue 9).
//!
//! So the daemon hands an empty pod cgroup to [`Removals::release`] and
//! goes on; one thread removes them, in order. A cgroup that is still
//! busy (EBUSY: a process is left, or the kernel is not done with the one
//! that just exited) is tried again, backing off ([`retry_delay`]), and
//! after [`ATTEMPTS`] it is left (and logged) for the next daemon start,
//! which removes the cgroups of pods it does not know. Other errors are
//! logged; nothing waits for them.
//!
//! A pod's cgroup is named after its uid, so a new pod (a new uid, even
//! under an old name) never meets an old pod's removal. The same pod may
//! want its cgroup again (`drover restart` of a pod that completed):
//! [`Removals::take_back`] cancels a pending removal, or waits for the one
//! under way, so a removal never runs under a new run.

use super::hierarchy::{walk, Tree};
use super::CgroupError;
use std::collections::HashSet;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Tries of a busy cgroup before it is left for the next start
/// (10 ms doubling: about 10 s in all).
pub(crate) const ATTEMPTS: u32 = 10;

/// The pause before try `attempt` + 1 of a busy cgroup.
pub(crate) fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(10) * (1 << attempt.min(12))
}

/// Removes `pod_uid`'s cgroup and its process cgroups in every
/// hierarchy. Err(NotEmpty) while a process is left; gone is Ok.
pub(crate) fn remove_now(tree: &Tree, pod_uid: &str) -> Result<(), CgroupError> {
    for dir in tree.dirs(pod_uid) {
        let mut all = walk(&dir);
        all.reverse(); // children first
        for d in all {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::NotEmpty { path: d });
                }
                Err(source) => return Err(CgroupError::Io { path: d, source }),
            }
        }
    }
    Ok(())
}

/// The removal queue of one hierarchy (shared by clones of its
/// [`super::Cgroups`]).
#[derive(Debug)]
pub(crate) struct Removals {
    tree: Tree,
    shared: Arc<Shared>,
    /// Started at the first release. None inside: no thread could be
    /// made (the pid table is full), so removals happen at once.
    worker: OnceLock<Option<Worker>>,
}

#[derive(Debug)]
struct Worker {
    tx: mpsc::Sender<String>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a removal ends or the queue empties.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Pods whose cgroup waits for removal (or for another try).
    pending: HashSet<String>,
    /// The pod whose cgroup is being removed now.
    busy: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Removals {
    pub(crate) fn new(tree: Tree) -> Removals {
        Removals {
            tree,
            shared: Arc::default(),
            worker: OnceLock::new(),
        }
    }

    /// Removes the pod's cgroup soon, off this thread.
    pub(crate) fn release(&self, pod_uid: &str) {
        let worker = self.worker.get_or_init(|| start(&self.tree, &self.shared));
        if let Some(w) = worker {
            self.shared.lock().pending.insert(pod_uid.to_string());
            if w.tx.send(pod_uid.to_string()).is_ok() {
                return;
            }
            self.shared.lock().pending.remove(pod_uid);
        }
        log(pod_uid, remove_now(&self.tree, pod_uid), None);
    }

    /// The pod's cgroup is wanted again: a pending removal is cancelled,
    /// one under way is waited for (it may have removed the directories:
    /// the caller makes them again).
    pub(crate) fn take_back(&self, pod_uid: &str) {
        let mut s = self.shared.lock();
        while s.busy.as_deref() == Some(pod_uid) {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
        s.pending.remove(pod_uid);
    }

    /// Waits until nothing is queued or being removed (retries included:
    /// at most about 10 s). Before removing the instance root.
    pub(crate) fn wait_idle(&self) {
        let mut s = self.shared.lock();
        while !s.pending.is_empty() || s.busy.is_some() {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How many pod cgroups wait for removal.
    pub(crate) fn pending(&self) -> usize {
        self.shared.lock().pending.len()
    }
}

/// What is queued is removed (once) before the daemon exits.
impl Drop for Removals {
    fn drop(&mut self) {
        if let Some(Some(w)) = self.worker.take() {
            drop(w.tx);
            let _ = w.thread.join();
        }
    }
}

fn start(tree: &Tree, shared: &Arc<Shared>) -> Option<Worker> {
    let (tx, rx) = mpsc::channel::<String>();
    let (tree, shared2) = (tree.clone(), shared.clone());
    let spawned = std::thread::Builder::new()
        .name("cgroup-removal".into())
        .spawn(move || {
            crate::runtime::background::lower_this_threads_priority();
            run(&tree, &shared2, rx)
        });
    match spawned {
        Ok(thread) => Some(Worker { tx, thread }),
        Err(e) => {
            tracing::warn!("no thread for removing cgroups ({e}): removing them at once");
            None
        }
    }
}

/// The worker: queued pods in order, and busy ones again when their
/// pause is over.
fn run(tree: &Tree, shared: &Shared, rx: mpsc::Receiver<String>) {
    // (when, pod uid, tries so far)
    let mut retries: Vec<(Instant, String, u32)> = Vec::new();
    let mut open = true;
    while open || !retries.is_empty() {
        let next_retry = retries.iter().map(|r| r.0).min();
        let received = match (open, next_retry) {
            (true, None) => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            (true, Some(at)) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            // Shutting down: busy cgroups get no more waiting.
            (false, _) => {
                for (_, uid, _) in retries.drain(..) {
                    shared.lock().pending.remove(&uid);
                    tracing::warn!("cgroup of pod {uid} still busy: left for the next start");
                }
                shared.changed.notify_all();
                break;
            }
        };
        match received {
            Ok(uid) => attempt(tree, shared, uid, 0, &mut retries),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = retries.drain(..).partition(|r| r.0 <= now);
        retries = later;
        for (_, uid, tries) in due {
            attempt(tree, shared, uid, tries, &mut retries);
        }
    }
}

/// One try at `uid`'s cgroup (`tries` before it), unless it was taken
/// back meanwhile.
fn attempt(
    tree: &Tree,
    shared: &Shared,
    uid: String,
    tries: u32,
    retries: &mut Vec<(Instant, String, u32)>,
) {
    {
        let mut s = shared.lock();
        if !s.pending.contains(&uid) {
            return; // taken back
        }
        s.busy = Some(uid.clone());
    }
    let result = remove_now(tree, &uid);
    let tries = tries + 1;
    let again = matches!(result, Err(CgroupError::NotEmpty { .. })) && tries < ATTEMPTS;
    {
        // In one step with `busy` cleared, so a take_back waiting on it
        // finds the retry pending and cancels it.
        let mut s = shared.lock();
        s.busy = None;
        if !again {
            s.pending.remove(&uid);
        }
    }
    shared.changed.notify_all();
    if again {
        retries.push((Instant::now() + retry_delay(tries - 1), uid, tries));
    } else {
        log(&uid, result, Some(tries));
    }
}

fn log(uid: &str, result: Result<(), CgroupError>, tries: Option<u32>) {
    match result {
        Ok(()) => {}
        Err(e @ CgroupError::NotEmpty { .. }) => tracing::warn!(
            "cgroup of pod {uid}: {e} after {} tries: left for the next start",
            tries.unwrap_or(1)
        ),
        Err(e) => tracing::warn!("removing the cgroup of pod {uid}: {e}"),
    }
}
