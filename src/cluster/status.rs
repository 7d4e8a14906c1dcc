//! The node's reports to etcd: each of its pods' status, and the final
//! removal of a pod whose processes it stopped after a deletion (what
//! Kubernetes' kubelet does with its last, grace-0 delete).
//!
//! The agent never waits on etcd: its writes land in the daemon's cache,
//! and the loop hands them here ([`StatusUpdate`]). A [`StatusQueue`] keeps
//! only the latest report per pod (a pod that flapped ten times while etcd
//! was away costs one write when it returns), and one writer task drains
//! it in batches ([`run`]):
//! - written: done (a report equal to the last one written is not sent
//!   again);
//! - the pod is gone (NotFound): dropped; nobody will read it;
//! - etcd unavailable: kept, and tried again after a pause that doubles
//!   up to 2 s (a newer report for the same pod replaces it meanwhile).
//!
//! Must not: block the daemon's loop, or write anything but the status key
//! of a pod bound to this node and the final delete of such a pod.

use crate::api::{Kind, Object, PodStatus};
use crate::store::etcd::{EtcdStore, StatusReport, CHUNK};
use crate::store::versioned::{ObjectStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;

/// One thing for the node to tell etcd about a pod.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusUpdate {
    /// The pod's status as the agent has it now.
    Report(StatusReport),
    /// The agent stopped every process of this pod after its deletion:
    /// remove the object (if it is still that pod: same uid).
    Removed { pod: String, uid: String },
}

impl StatusUpdate {
    pub fn pod(&self) -> &str {
        match self {
            StatusUpdate::Report(r) => &r.pod,
            StatusUpdate::Removed { pod, .. } => pod,
        }
    }
}

/// The latest update per pod, and what was written last.
#[derive(Debug, Default)]
pub struct StatusQueue {
    pending: BTreeMap<String, StatusUpdate>,
    /// Per pod, the (uid, status) etcd has from us.
    written: HashMap<String, (String, PodStatus)>,
}

/// How one update went.
#[derive(Debug)]
pub enum Outcome {
    Written,
    /// The pod is gone: nothing to report any more.
    Gone,
    /// Try again later.
    Retry,
}

impl StatusQueue {
    /// Queues `update`, replacing an older one for the same pod. A report
    /// equal to what etcd already has from us is not queued.
    pub fn offer(&mut self, update: StatusUpdate) {
        if let StatusUpdate::Report(r) = &update {
            let same = self
                .written
                .get(&r.pod)
                .is_some_and(|(uid, st)| *uid == r.uid && *st == r.status);
            if same {
                self.pending.remove(&r.pod);
                return;
            }
        }
        self.pending.insert(update.pod().to_string(), update);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Up to `max` updates to write now, oldest pod name first.
    pub fn take(&mut self, max: usize) -> Vec<StatusUpdate> {
        let names: Vec<String> = self.pending.keys().take(max).cloned().collect();
        names
            .into_iter()
            .filter_map(|n| self.pending.remove(&n))
            .collect()
    }

    /// Records how `update` went.
    pub fn done(&mut self, update: StatusUpdate, outcome: Outcome) {
        match (outcome, update) {
            (Outcome::Written, StatusUpdate::Report(r)) => {
                self.written.insert(r.pod, (r.uid, r.status));
            }
            (Outcome::Written | Outcome::Gone, u) => {
                self.written.remove(u.pod());
            }
            (Outcome::Retry, u) => {
                // A newer update offered meanwhile wins.
                self.pending.entry(u.pod().to_string()).or_insert(u);
            }
        }
    }
}

/// The writer task: drains updates from `rx` into a queue and writes them.
/// Ends when the daemon drops its sender and everything queued is written
/// (or etcd stays away: it keeps trying until the runtime stops).
pub async fn run(store: EtcdStore, mut rx: mpsc::UnboundedReceiver<StatusUpdate>) {
    let mut queue = StatusQueue::default();
    let mut pause = PAUSE_FIRST;
    let mut open = true;
    loop {
        while let Ok(u) = rx.try_recv() {
            queue.offer(u);
        }
        if queue.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(u) => queue.offer(u),
                None => open = false,
            }
            continue;
        }
        let batch = queue.take(CHUNK);
        let unavailable = write(&store, batch, &mut queue).await;
        if unavailable {
            tracing::debug!("{} pod status(es) wait for etcd", queue.len());
            // Keep taking updates while waiting, so the latest wins.
            let sleep = tokio::time::sleep(pause);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    u = rx.recv(), if open => match u {
                        Some(u) => queue.offer(u),
                        None => open = false,
                    },
                }
            }
            pause = (pause * 2).min(PAUSE_MAX);
        } else {
            pause = PAUSE_FIRST;
        }
    }
}

const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(2);

/// Writes one batch; returns whether etcd was unavailable (the batch's
/// unwritten updates are back in the queue).
async fn write(store: &EtcdStore, batch: Vec<StatusUpdate>, queue: &mut StatusQueue) -> bool {
    let (reports, removals): (Vec<StatusUpdate>, Vec<StatusUpdate>) = batch
        .into_iter()
        .partition(|u| matches!(u, StatusUpdate::Report(_)));
    let mut unavailable = false;
    let plain: Vec<StatusReport> = reports
        .iter()
        .map(|u| match u {
            StatusUpdate::Report(r) => r.clone(),
            StatusUpdate::Removed { .. } => unreachable!("partitioned"),
        })
        .collect();
    if !plain.is_empty() {
        match store.put_pod_statuses(&plain).await {
            Ok(results) => {
                for (u, r) in reports.into_iter().zip(results) {
                    queue.done(u, outcome(r.map(drop)));
                }
            }
            Err(e) => {
                tracing::debug!("pod statuses not written: {e}");
                unavailable = true;
                for u in reports {
                    queue.done(u, Outcome::Retry);
                }
            }
        }
    }
    for u in removals {
        let StatusUpdate::Removed { pod, uid } = &u else {
            unreachable!("partitioned")
        };
        let result = remove(store, pod, uid).await;
        let o = outcome(result);
        unavailable |= matches!(o, Outcome::Retry);
        queue.done(u, o);
    }
    unavailable
}

fn outcome(result: Result<(), StoreError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Written,
        Err(StoreError::NotFound { .. }) => Outcome::Gone,
        Err(StoreError::Unavailable { .. }) => Outcome::Retry,
        Err(e) => {
            // A conflict here means the pod changed under us again and
            // again; a corrupt value, someone else's. Not ours to fix.
            tracing::warn!("pod status: {e}");
            Outcome::Gone
        }
    }
}

/// Deletes pod `name` if it is still the pod with `uid` (re-reading on a
/// conflict: the control plane may touch it meanwhile).
async fn remove(store: &EtcdStore, name: &str, uid: &str) -> Result<(), StoreError> {
    for _ in 0..5 {
        let Some(Object::Pod(p)) = store.get(Kind::Pod, name).await? else {
            return Err(StoreError::NotFound {
                kind: Kind::Pod,
                name: name.to_string(),
            });
        };
        if p.metadata.uid != uid {
            return Err(StoreError::NotFound {
                kind: Kind::Pod,
                name: name.to_string(),
            });
        }
        match store
            .delete_if(Kind::Pod, name, p.metadata.resource_version)
            .await
        {
            Err(e) if e.is_conflict() => continue,
            other => return other,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodPhase;

    fn report(pod: &str, phase: PodPhase) -> StatusUpdate {
        StatusUpdate::Report(StatusReport {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            status: PodStatus {
                phase,
                ..PodStatus::default()
            },
        })
    }

    #[test]
    fn the_latest_report_per_pod_wins() {
        let mut q = StatusQueue::default();
        q.offer(report("a", PodPhase::Pending));
        q.offer(report("b", PodPhase::Running));
        q.offer(report("a", PodPhase::Running));
        let batch = q.take(10);
        assert_eq!(
            batch,
            [
                report("a", PodPhase::Running),
                report("b", PodPhase::Running)
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_report_equal_to_the_written_one_is_not_sent_again() {
        let mut q = StatusQueue::default();
        q.offer(report("a", PodPhase::Running));
        let u = q.take(1).remove(0);
        q.done(u, Outcome::Written);
        q.offer(report("a", PodPhase::Running));
        assert!(q.is_empty());
        // A change is; and going back to the written one cancels it.
        q.offer(report("a", PodPhase::Failed));
        assert_eq!(q.len(), 1);
        q.offer(report("a", PodPhase::Running));
        assert!(q.is_empty());
    }

    #[test]
    fn retried_updates_yield_to_newer_ones_and_gone_pods_are_dropped() {
        let mut q = StatusQueue::default();
        q.offer(report("a", PodPhase::Pending));
        q.offer(report("b", PodPhase::Running));
        let mut batch = q.take(2);
        q.offer(report("a", PodPhase::Running)); // while the write was out
        q.done(batch.remove(0), Outcome::Retry);
        q.done(batch.remove(0), Outcome::Gone);
        assert_eq!(q.take(10), [report("a", PodPhase::Running)]);
    }

    #[test]
    fn a_removal_replaces_a_pending_report_and_forgets_the_written_one() {
        let mut q = StatusQueue::default();
        q.offer(report("a", PodPhase::Running));
        let u = q.take(1).remove(0);
        q.done(u, Outcome::Written);
        q.offer(report("a", PodPhase::Failed));
        let removed = StatusUpdate::Removed {
            pod: "a".into(),
            uid: "uid-a".into(),
        };
        q.offer(removed.clone());
        assert_eq!(q.take(10), std::slice::from_ref(&removed));
        q.done(removed, Outcome::Written);
        // A new pod of the same name reports from scratch.
        q.offer(report("a", PodPhase::Running));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn take_is_bounded() {
        let mut q = StatusQueue::default();
        for i in 0..5 {
            q.offer(report(&format!("p{i}"), PodPhase::Running));
        }
        assert_eq!(q.take(2).len(), 2);
        assert_eq!(q.len(), 3);
    }
}
