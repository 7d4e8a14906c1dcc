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
//! goes on; one thread removes them, in order (`runtime/work_queue.rs`).
//! A cgroup that is still busy (EBUSY: a process is left, or the kernel
//! is not done with the one that just exited) is tried again, backing
//! off, and after [`ATTEMPTS`] it is left (and logged) for the next
//! daemon start, which removes the cgroups of pods it does not know.
//! Other errors are logged; nothing waits for them.
//!
//! A pod's cgroup is named after its uid, so a new pod (a new uid, even
//! under an old name) never meets an old pod's removal. The same pod may
//! want its cgroup again (`drover restart` of a pod that completed):
//! [`Removals::take_back`] cancels a pending removal, or waits for the one
//! under way, so a removal never runs under a new run.

use super::hierarchy::{walk, Tree};
use super::CgroupError;
use crate::runtime::work_queue::{Outcome, Work, WorkQueue};
use std::io;

/// Tries of a busy cgroup before it is left for the next start
/// (10 ms doubling: about 10 s in all).
pub(crate) const ATTEMPTS: u32 = 10;

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
/// [`super::Cgroups`]), keyed by pod uid.
#[derive(Debug)]
pub(crate) struct Removals {
    queue: WorkQueue,
}

impl Removals {
    pub(crate) fn new(tree: Tree) -> Removals {
        let work = Work {
            run: Box::new(move |uid, tries| attempt(&tree, uid, tries)),
            abandon: Box::new(|uid| {
                tracing::warn!("cgroup of pod {uid} still busy: left for the next start")
            }),
        };
        Removals {
            queue: WorkQueue::new("cgroup-removal", true, work),
        }
    }

    /// Removes the pod's cgroup soon, off this thread.
    pub(crate) fn release(&self, pod_uid: &str) {
        self.queue.queue(pod_uid);
    }

    /// The pod's cgroup is wanted again: a pending removal is cancelled,
    /// one under way is waited for (it may have removed the directories:
    /// the caller makes them again).
    pub(crate) fn take_back(&self, pod_uid: &str) {
        self.queue.claim(pod_uid);
    }

    /// Waits until nothing is queued or being removed (retries included:
    /// at most about 10 s). Before removing the instance root.
    pub(crate) fn wait_idle(&self) {
        self.queue.wait_idle();
    }

    /// How many pod cgroups wait for removal.
    pub(crate) fn pending(&self) -> usize {
        self.queue.pending()
    }
}

/// One try at `uid`'s cgroup, `tries` before it: a busy one is tried
/// again until [`ATTEMPTS`], then left (and logged) for the next start.
fn attempt(tree: &Tree, uid: &str, tries: u32) -> Outcome {
    let result = remove_now(tree, uid);
    let tries = tries + 1;
    match result {
        Ok(()) => Outcome::Finished,
        Err(CgroupError::NotEmpty { .. }) if tries < ATTEMPTS => Outcome::Retry,
        Err(e @ CgroupError::NotEmpty { .. }) => {
            tracing::warn!("cgroup of pod {uid}: {e} after {tries} tries: left for the next start");
            Outcome::Finished
        }
        Err(e) => {
            tracing::warn!("removing the cgroup of pod {uid}: {e}");
            Outcome::Finished
        }
    }
}
