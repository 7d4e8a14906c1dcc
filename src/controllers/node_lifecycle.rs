//! Node lifecycle: which nodes are Ready, and when a lost node's pods are
//! recreated elsewhere (Kubernetes' `pkg/controller/nodelifecycle`).
//!
//! A node is Ready while its heartbeat key exists, i.e. while its lease
//! (10 s) is kept alive. When a node has been NotReady for
//! `pod_eviction_timeout` (default 5 s), its controller-owned pods
//! (ReplicaSet, ReplicationController, Job) are deleted, so their
//! controllers create replacements on other nodes. Unmanaged pods and
//! DaemonSet pods stay bound to it: they belong to that node.
//!
//! Evictions are removals, not graceful deletions: a lost node cannot
//! stop its pods and acknowledge it, so a deletion mark would stay
//! forever. The executor removes the objects outright; the node, if it
//! comes back, kills what it no longer finds bound to it before anything
//! else (`cluster::fence`). For the same reason every pod already marked
//! for deletion on such a node (scaled down, deleted by a user, whatever
//! its owner) is removed after the timeout too.
//!
//! Full disruption: when every node is NotReady at once, the likely cause
//! is the store (etcd unreachable, or restarted), not the nodes, so
//! nothing is evicted (Kubernetes stops evicting in a zone in full
//! disruption). When it ends, every NotReady node gets a fresh grace
//! period, as Kubernetes resets its timestamps then: a node that stays
//! down is evicted a whole timeout later, not at once.
//!
//! When each node changed state is this controller's own observation, kept
//! between passes in a [`HealthMap`] (as Kubernetes' `nodeHealthMap`, in
//! memory): a new leader starts with an empty map, so it never evicts on
//! the strength of timestamps it did not see itself.
//!
//! Pure: no clock (`now` is an argument), no store, no timers; the plan
//! says when to run again (`requeue_after`).

use super::plan::Op;
use crate::api::{Kind, Node, Pod};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Kubernetes' `pod-eviction-timeout` is 5 minutes; drover's is 5 s, on
/// top of the 10 s lease (issue 12: failover within lease + eviction + 1 s).
pub const DEFAULT_POD_EVICTION_TIMEOUT: Duration = Duration::from_secs(5);

/// `reason` of the deletes this controller plans.
pub const EVICTION_REASON: &str = "node lost: NotReady past the pod eviction timeout";

/// This controller's last observation of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHealth {
    pub ready: bool,
    /// When this controller saw `ready` take its current value.
    pub since: DateTime<Utc>,
}

pub type HealthMap = BTreeMap<String, NodeHealth>;

/// A change to a node's `Ready` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetReady {
    pub node: String,
    pub ready: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifecyclePlan {
    /// Keep for the next pass.
    pub health: HealthMap,
    /// Ready conditions to write, by node name.
    pub conditions: Vec<SetReady>,
    /// `Op::DeletePod` of evicted pods: the executor removes them
    /// outright (see the module comment).
    pub evictions: Vec<Op>,
    /// Run again after this long: the next eviction deadline, if a node
    /// that has evictable pods is NotReady but not yet past it.
    pub requeue_after: Option<Duration>,
    /// Every node is NotReady: evictions are held.
    pub full_disruption: bool,
}

/// Pods of a lost node to remove: those whose controller recreates them
/// elsewhere, and those whose deletion the node cannot finish.
fn evictable(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return true;
    }
    let controlled = pod.metadata.controller().is_some_and(|c| {
        matches!(
            c.kind,
            Kind::ReplicaSet | Kind::ReplicationController | Kind::Job
        )
    });
    controlled && !pod.is_terminal()
}

fn all_down<'a>(health: impl IntoIterator<Item = &'a NodeHealth>) -> bool {
    let mut any = false;
    for h in health {
        if h.ready {
            return false;
        }
        any = true;
    }
    any
}

/// One pass. `alive` holds the nodes whose heartbeat key exists;
/// `previous` is the last pass's [`LifecyclePlan::health`] (empty at first).
pub fn reconcile(
    nodes: &[&Node],
    alive: &BTreeSet<String>,
    pods: &[&Pod],
    previous: &HealthMap,
    now: DateTime<Utc>,
    eviction_timeout: Duration,
) -> LifecyclePlan {
    let mut health = HealthMap::new();
    let mut conditions = Vec::new();
    for node in nodes {
        let name = &node.metadata.name;
        let ready = alive.contains(name);
        let since = match previous.get(name) {
            Some(h) if h.ready == ready => h.since,
            _ => now,
        };
        health.insert(name.clone(), NodeHealth { ready, since });
        if node.is_ready() != ready {
            conditions.push(SetReady {
                node: name.clone(),
                ready,
            });
        }
    }

    let full_disruption = all_down(health.values());
    if all_down(previous.values()) && !full_disruption {
        for h in health.values_mut().filter(|h| !h.ready) {
            h.since = now;
        }
    }

    let mut evictions = Vec::new();
    let mut requeue_after: Option<Duration> = None;
    if !full_disruption {
        let timeout = chrono::Duration::from_std(eviction_timeout).unwrap_or(chrono::Duration::MAX);
        for (name, h) in health.iter().filter(|(_, h)| !h.ready) {
            let on_node: Vec<&Pod> = pods
                .iter()
                .copied()
                .filter(|p| p.status.node_name.as_deref() == Some(name.as_str()) && evictable(p))
                .collect();
            if on_node.is_empty() {
                continue;
            }
            let deadline = h.since + timeout;
            if now >= deadline {
                evictions.extend(on_node.iter().map(|p| Op::DeletePod {
                    name: p.metadata.name.clone(),
                    reason: EVICTION_REASON.to_string(),
                }));
            } else {
                let wait = (deadline - now).to_std().unwrap_or_default();
                requeue_after = Some(requeue_after.map_or(wait, |r| r.min(wait)));
            }
        }
    }

    LifecyclePlan {
        health,
        conditions,
        evictions,
        requeue_after,
        full_disruption,
    }
}

#[cfg(test)]
mod tests;
