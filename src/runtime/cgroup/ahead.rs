//! Process cgroups made ahead of their spawn, while a core is idle.
//!
//! Starting many pods at once (a ReplicaSet of 1,000 at boot), the
//! daemon's loop prepares each spawn on its one thread, then starts them
//! in a batch on every core. While it prepares, the other core idles
//! (20 ms before the first batch of 500 on the build machine, 40 ms
//! before the second); while the batch starts, every core is busy. A
//! process cgroup costs its spawn ~60 us of kernel CPU on cgroup v1
//! (mkdir, then the first lookup of its `tasks` file). So each spawn the
//! loop gathers is announced here ([`Ahead::queue`]), and a thread makes
//! its cgroup and writes its limits meanwhile (`place::make_ahead`); the
//! spawn then finds it made (`place::Prepared`) and only opens its join
//! file. Under strace the thread made 297 of a batch of 300; how many it
//! reaches at full speed was not measured.
//!
//! What it wins is modest: 4.8 % of the time to start 1,000 pods on the
//! build machine (set D in README's benchmarks; -4.5 % in set B with the
//! thread niced), about a third of what the cgroups cost there. Where
//! the rest of their cost goes (the joins, the kernel's work for
//! processes in cgroups of their own) was not measured apart.
//!
//! Nothing waits for this thread: a spawn that comes before it claims
//! its cgroup and makes it itself, as without this module; one it is
//! making is waited for (a few dozen microseconds). Failures are left
//! for the spawn to meet and report. It keeps the daemon's priority,
//! unlike the removal threads: mkdir holds the kernel's global cgroup
//! mutex, which every spawn's join needs, and a niced holder would be
//! the last to get a core back while a batch keeps both busy (niced, the
//! same set measured it 6.5 % slower). A pod released before its spawn has
//! what was queued for it cancelled first ([`Ahead::cancel_pod`]), so
//! nothing makes a directory under a removal.

use super::hierarchy::Tree;
use super::place::{self, Prepared};
use super::ProcessCgroup;
use crate::api::Resources;
use crate::runtime::work_queue::{Outcome, Work, WorkQueue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What is queued, by key (`ProcessCgroup::key`): kept until its work
/// ends, so that a cancel of its pod sees the one under way and waits.
type Items = Arc<Mutex<HashMap<String, (ProcessCgroup, Resources)>>>;

#[derive(Debug)]
pub(crate) struct Ahead {
    queue: WorkQueue,
    items: Items,
}

impl Ahead {
    pub(crate) fn new(tree: Tree, prepared: Arc<Prepared>) -> Ahead {
        let items: Items = Arc::default();
        let of_thread = items.clone();
        let work = Work {
            run: Box::new(move |key, _| {
                let item = lock(&of_thread).get(key).cloned();
                if let Some((cg, res)) = item {
                    if let Err(e) = place::make_ahead(&tree, &prepared, &cg, &res) {
                        tracing::debug!("cgroup {key} not made ahead: {e}");
                    }
                }
                lock(&of_thread).remove(key);
                Outcome::Finished
            }),
            abandon: Box::new(|_| {}),
        };
        Ahead {
            queue: WorkQueue::new("cgroup-ahead", true, work).at_callers_priority(),
            items,
        }
    }

    /// `cg` (with limits `res`) will be wanted by a spawn soon.
    pub(crate) fn queue(&self, cg: &ProcessCgroup, res: &Resources) {
        let key = cg.key();
        lock(&self.items).insert(key.clone(), (cg.clone(), res.clone()));
        self.queue.queue(&key);
    }

    /// The spawn of `cg` is here: its making under way is waited for,
    /// a queued one is cancelled (the spawn makes it).
    pub(crate) fn claim(&self, cg: &ProcessCgroup) {
        let key = cg.key();
        if self.queue.claim(&key) {
            lock(&self.items).remove(&key);
        }
    }

    /// Pod `pod_uid` is going: nothing queued for it is made any more,
    /// and what is being made is waited for.
    pub(crate) fn cancel_pod(&self, pod_uid: &str) {
        let keys: Vec<ProcessCgroup> = lock(&self.items)
            .values()
            .filter(|(cg, _)| cg.pod_uid() == pod_uid)
            .map(|(cg, _)| cg.clone())
            .collect();
        for cg in keys {
            self.claim(&cg);
        }
    }

    /// How many are queued or being made.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.queue.pending()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
