//! The reflector task: the watch of everything under `/drover/`, sent to
//! the daemon's loop event by event (the loop applies them to its cache
//! with [`super::cache::ClusterCache::apply`]; the loop owns the cache, so
//! nothing here locks anything).
//!
//! An outage is reported once ([`Reflected::Unavailable`]) and the watch
//! goes on trying: it resumes where it was, or re-lists when etcd has
//! compacted what it missed. Meanwhile the cache keeps serving what it
//! had.
//!
//! [`ReflectorTask::relist`] asks for a fresh snapshot now (fencing needs
//! one read after the node is back, not a watch it may have fallen behind
//! on). Every event carries the epoch of the last re-list asked for when
//! it was read, so the loop knows which snapshot answers its request.
//!
//! Must not: change the cache, or decide anything.

use crate::store::etcd::{EtcdStore, WatchEvent};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

#[derive(Debug)]
pub enum Reflected {
    /// The next watch event; `epoch`: the re-list epoch it was read in.
    Event { event: WatchEvent, epoch: u64 },
    /// etcd did not answer for a whole call's budget (reported once per
    /// outage; the watch keeps trying).
    Unavailable,
}

pub struct ReflectorTask {
    pub events: mpsc::Receiver<Reflected>,
    relist: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl ReflectorTask {
    /// Asks for a fresh snapshot; returns the epoch it will carry.
    pub fn relist(&self) -> u64 {
        let epoch = *self.relist.borrow() + 1;
        self.relist.send_replace(epoch);
        epoch
    }
}

impl Drop for ReflectorTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching; the first event is a snapshot (epoch 0).
pub fn spawn(store: EtcdStore) -> ReflectorTask {
    // Bounded: if the loop falls behind, the watch waits (etcd buffers).
    let (tx, events) = mpsc::channel(64);
    let (relist, relist_rx) = watch::channel(0);
    let task = tokio::spawn(run(store, tx, relist_rx));
    ReflectorTask {
        events,
        relist,
        task,
    }
}

/// Pause after a failed `next` before calling it again (it has spent its
/// own retry budget already).
const AFTER_FAILURE: Duration = Duration::from_millis(500);

async fn run(store: EtcdStore, tx: mpsc::Sender<Reflected>, mut relist: watch::Receiver<u64>) {
    let mut epoch = 0;
    let mut watch = store.watch(None);
    let mut down = false;
    loop {
        tokio::select! {
            biased;
            changed = relist.changed() => {
                if changed.is_err() {
                    return;
                }
                epoch = *relist.borrow_and_update();
                watch = store.watch(None);
            }
            next = watch.next() => match next {
                Ok(event) => {
                    down = false;
                    if tx.send(Reflected::Event { event, epoch }).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if !down {
                        tracing::warn!("etcd watch: {e}; serving the cache as it is");
                        down = true;
                        if tx.send(Reflected::Unavailable).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(AFTER_FAILURE).await;
                }
            },
        }
    }
}
