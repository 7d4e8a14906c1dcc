//! DaemonSet reconcile: exactly one pod of the template on every node
//! that matches the template's `node_selector` (product.md §3).
//!
//! Mirrors Kubernetes' `pkg/controller/daemon` (`manage`,
//! `podsShouldBeOnNode`, `NodeShouldRunDaemonPod`) as one pure function:
//! - [`node_should_run`] decides per node, as Kubernetes does with its
//!   default DaemonSet tolerations: a matching node should run the pod
//!   even when cordoned (a DaemonSet bypasses the scheduler); a NotReady
//!   matching node gets no new pod but keeps the one it has (a lost node's
//!   pod is not moved anywhere: it is bound to that node by definition); a
//!   node that stops matching (relabelled) loses its pod.
//! - Per node: create when missing, delete a Succeeded/Failed one (its
//!   replacement comes once it is gone), keep the oldest of duplicates.
//!   While a pod on a node is terminating no new one is created there, so
//!   two copies never overlap on one node.
//! - Pods it owns on nodes that no longer exist, or bound to none, go.
//! - Unmanaged pods matching its selector on its nodes are terminated
//!   (drover's rule; Kubernetes would adopt them), except its own orphans:
//!   an unmanaged pod made from this very template (same spec; e.g. left
//!   by `delete ds --cascade=orphan` and re-applied) on a node that has no
//!   daemon pod is adopted instead of being replaced by an identical one.
//!   Pods owned by other controllers are never touched.
//!
//! No clock is read (`now` stamps planned pods), nothing is written.

use super::plan::{reasons, Op};
use crate::api::{
    DaemonSet, DaemonSetStatus, Kind, Node, ObjectMeta, OwnerRef, Pod, PodPhase, PodStatus,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// `reason`s of the deletes a DaemonSet plans.
pub mod delete_reasons {
    /// The node no longer matches the node selector (relabelled).
    pub const NODE_MISMATCH: &str = "node no longer matches the DaemonSet's node selector";
    /// An unmanaged pod on one of its nodes matches its selector.
    pub const UNMANAGED: &str = "unmanaged pod matching a DaemonSet's selector";
    /// More than one of its pods on one node: the oldest stays.
    pub const DUPLICATE: &str = "more than one daemon pod on the node";
    /// Its pod is bound to a node that is not enrolled (any more).
    pub const NO_NODE: &str = "bound to a node that does not exist";
}

/// The outcome of one DaemonSet pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DaemonSetPlan {
    /// Adopt/release first, then deletes and creates.
    pub ops: Vec<Op>,
    /// Counted from the snapshot acted on (adoptions of this pass
    /// included), before this pass's creates and deletes.
    pub status: DaemonSetStatus,
}

/// Kubernetes' `NodeShouldRunDaemonPod`: `(should_run,
/// should_continue_running)`. Cordoned nodes run it; NotReady nodes keep
/// theirs but get no new one (Kubernetes' DaemonSet pods tolerate the
/// not-ready NoExecute taint, not the NoSchedule one).
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let labels = &node.metadata.labels;
    let matches = ds
        .spec
        .template
        .spec
        .node_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !matches {
        return (false, false);
    }
    (node.is_ready(), true)
}

fn owner_ref(ds: &DaemonSet) -> OwnerRef {
    OwnerRef {
        kind: Kind::DaemonSet,
        name: ds.metadata.name.clone(),
        uid: ds.metadata.uid.clone(),
    }
}

fn bound(pod: &Pod) -> Option<&str> {
    pod.status.node_name.as_deref().filter(|n| !n.is_empty())
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn delete(pod: &Pod, reason: &str) -> Op {
    Op::DeletePod {
        name: pod.metadata.name.clone(),
        reason: reason.to_string(),
    }
}

/// Oldest first, then by name: the pod to keep among duplicates, and the
/// orphan to adopt among several.
fn by_age(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        (a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(b.metadata.creation_timestamp, &b.metadata.name))
    });
}

/// One reconcile pass for `ds`, given every node and pod the store holds.
/// The same inputs give the same plan; applying it and reconciling again
/// gives an empty one (a deleted pod's replacement waits until it is gone).
pub fn reconcile(
    ds: &DaemonSet,
    nodes: &[&Node],
    pods: &[&Pod],
    now: DateTime<Utc>,
) -> DaemonSetPlan {
    let owner = owner_ref(ds);
    let deleting = ds.metadata.deletion_timestamp.is_some();
    let selector = &ds.spec.selector;
    let decisions: BTreeMap<&str, (bool, bool)> = nodes
        .iter()
        .map(|n| (n.metadata.name.as_str(), node_should_run(n, ds)))
        .collect();
    let its_node = |name: Option<&str>| name.and_then(|n| decisions.get(n)).is_some_and(|d| d.1);

    let mut adopt_ops = Vec::new();
    let mut other_ops = Vec::new();
    // Its pods (terminating ones included) by node, adopted ones too.
    let mut daemon_pods: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    let mut orphans: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for &pod in pods {
        let matches = selector.matches(&pod.metadata.labels);
        match pod.metadata.controller() {
            Some(c) if c.uid != ds.metadata.uid => {} // foreign: never touched
            Some(_) if !matches => {
                if !terminating(pod) {
                    adopt_ops.push(Op::Release {
                        name: pod.metadata.name.clone(),
                    });
                }
            }
            Some(_) => match bound(pod).filter(|n| decisions.contains_key(n)) {
                Some(node) => daemon_pods.entry(node).or_default().push(pod),
                None if !terminating(pod) => other_ops.push(delete(pod, delete_reasons::NO_NODE)),
                None => {}
            },
            None => {
                let candidate = matches
                    && !selector.is_empty()
                    && !terminating(pod)
                    && !pod.is_terminal()
                    && its_node(bound(pod));
                if candidate {
                    orphans.entry(bound(pod).unwrap()).or_default().push(pod);
                }
            }
        }
    }

    // Orphans on its nodes: its own (same spec) is adopted where the node
    // has no daemon pod; every other one is terminated.
    for (node, mut found) in orphans {
        by_age(&mut found);
        let mut needs_one = daemon_pods.get(node).is_none_or(Vec::is_empty);
        for pod in found {
            if needs_one && !deleting && pod.spec == ds.spec.template.spec {
                needs_one = false;
                adopt_ops.push(Op::Adopt {
                    name: pod.metadata.name.clone(),
                    owner: owner.clone(),
                });
                daemon_pods.entry(node).or_default().push(pod);
            } else if !deleting {
                other_ops.push(delete(pod, delete_reasons::UNMANAGED));
            }
        }
    }

    let status = status(ds, nodes, &decisions, &daemon_pods);
    if deleting {
        // Its pods are the cascade's business (as a deleting ReplicaSet).
        return DaemonSetPlan {
            ops: Vec::new(),
            status,
        };
    }

    for node in nodes {
        let name = node.metadata.name.as_str();
        let (should_run, should_continue) = decisions[name];
        let mine = daemon_pods.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let exists = !mine.is_empty();
        if should_run && !exists {
            other_ops.push(new_pod(ds, &owner, name, now));
        } else if should_continue {
            let mut running: Vec<&Pod> = Vec::new();
            for &pod in mine.iter().filter(|p| !terminating(p)) {
                if pod.is_terminal() {
                    other_ops.push(delete(pod, reasons::POD_TERMINATED));
                } else {
                    running.push(pod);
                }
            }
            by_age(&mut running);
            for pod in running.iter().skip(1) {
                other_ops.push(delete(pod, delete_reasons::DUPLICATE));
            }
        } else {
            for &pod in mine.iter().filter(|p| !terminating(p)) {
                other_ops.push(delete(pod, delete_reasons::NODE_MISMATCH));
            }
        }
    }

    adopt_ops.extend(other_ops);
    DaemonSetPlan {
        ops: adopt_ops,
        status,
    }
}

fn status(
    ds: &DaemonSet,
    nodes: &[&Node],
    decisions: &BTreeMap<&str, (bool, bool)>,
    daemon_pods: &BTreeMap<&str, Vec<&Pod>>,
) -> DaemonSetStatus {
    let mut status = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        ..DaemonSetStatus::default()
    };
    for node in nodes {
        let name = node.metadata.name.as_str();
        if !decisions[name].0 {
            continue;
        }
        status.desired_number_scheduled += 1;
        let active: Vec<&&Pod> = daemon_pods
            .get(name)
            .into_iter()
            .flatten()
            .filter(|p| !terminating(p))
            .collect();
        if !active.is_empty() {
            status.current_number_scheduled += 1;
            if active.iter().any(|p| p.is_ready()) {
                status.number_ready += 1;
            }
        }
    }
    status
}

/// The template's pod, bound to `node` (no scheduler: that is the point).
fn new_pod(ds: &DaemonSet, owner: &OwnerRef, node: &str, now: DateTime<Utc>) -> Op {
    let pod = Pod {
        metadata: ObjectMeta {
            name: String::new(),
            uid: String::new(),
            labels: ds.spec.template.labels.clone(),
            annotations: Default::default(),
            owner_references: vec![owner.clone()],
            creation_timestamp: now,
            generation: 1,
            resource_version: 0,
            deletion_timestamp: None,
        },
        spec: ds.spec.template.spec.clone(),
        status: PodStatus {
            phase: PodPhase::Pending,
            node_name: Some(node.to_string()),
            ..PodStatus::default()
        },
    };
    Op::CreatePod {
        generate_name: format!("{}-", ds.metadata.name),
        pod,
    }
}

#[cfg(test)]
mod tests;
