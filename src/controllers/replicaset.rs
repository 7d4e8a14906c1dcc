//! ReplicaSet and ReplicationController reconcile: keep exactly `replicas`
//! pods that match the selector.
//!
//! Mirrors Kubernetes' `pkg/controller/replicaset` `syncReplicaSet`, as one
//! pure function: claim pods (skip foreign ones, release relabelled ones,
//! adopt orphans), compute status, then create or delete the difference,
//! capped per pass. A `drover restart` is a level-triggered property of the
//! same function: while every active pod is ready, one outdated pod is
//! replaced. No clock is read (`now` is an argument), nothing is written;
//! the executor applies the returned [`Plan`].

use super::plan::{reasons, Op, Plan};
use super::scheduler::{bound_node, pick_with_load, NodeLoad};
use crate::api::meta::annotations;
use crate::api::{
    Kind, LabelSelector, Node, ObjectMeta, OwnerRef, Pod, PodPhase, PodStatus, PodTemplate,
    ReplicaSet, ReplicaSetStatus, ReplicationController,
};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// At most this many creates or deletes per pass (Kubernetes'
/// `burstReplicas`): a typo such as `replicas = 50000` ramps over several
/// passes instead of forking everything at once. A capped plan says
/// `requeue`, so the ramp goes on without waiting for another change.
pub const BURST_REPLICAS: usize = 500;

/// What the reconcile needs from a ReplicaSet or a ReplicationController.
#[derive(Clone, Debug)]
pub struct ReplicaView<'a> {
    pub kind: Kind,
    pub meta: &'a ObjectMeta,
    pub replicas: u32,
    pub selector: LabelSelector,
    pub template: &'a PodTemplate,
}

impl<'a> ReplicaView<'a> {
    pub fn from_rs(rs: &'a ReplicaSet) -> ReplicaView<'a> {
        ReplicaView {
            kind: Kind::ReplicaSet,
            meta: &rs.metadata,
            replicas: rs.spec.replicas,
            selector: rs.spec.selector.clone(),
            template: &rs.spec.template,
        }
    }

    /// An RC's selector is a plain label map; as in Kubernetes, an empty
    /// one defaults to the template's labels.
    pub fn from_rc(rc: &'a ReplicationController) -> ReplicaView<'a> {
        let labels = if rc.spec.selector.is_empty() {
            rc.spec.template.labels.clone()
        } else {
            rc.spec.selector.clone()
        };
        ReplicaView {
            kind: Kind::ReplicationController,
            meta: &rc.metadata,
            replicas: rc.spec.replicas,
            selector: LabelSelector::from_labels(labels),
            template: &rc.spec.template,
        }
    }

    /// `kind/name/uid`, as recorded on the pods it controls.
    pub fn owner_ref(&self) -> OwnerRef {
        OwnerRef {
            kind: self.kind,
            name: self.meta.name.clone(),
            uid: self.meta.uid.clone(),
        }
    }

    fn is_deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }
}

/// How one pod relates to the controller (Kubernetes' `ClaimPods`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Controlled by someone else: never touched, never counted.
    Foreign,
    /// Not ours and not to be ours, or ours but already being deleted.
    Ignore,
    /// Ours, matching, not terminating, not terminal.
    Owned,
    /// An orphan that matches: adopt it and count it.
    Adopt,
    /// Ours but relabelled out of the selector: let it go, unmanaged.
    Release,
    /// Ours, matching, Succeeded or Failed: delete it.
    Terminated,
}

fn claim(view: &ReplicaView, pod: &Pod) -> Claim {
    let ours = match pod.metadata.controller() {
        Some(c) if c.uid != view.meta.uid => return Claim::Foreign,
        Some(_) => true,
        None => false,
    };
    let matches = view.selector.matches(&pod.metadata.labels);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    match (ours, matches) {
        // Being deleted anyway: releasing it would be a write for nothing.
        (true, false) if terminating => Claim::Ignore,
        (true, false) => Claim::Release,
        (true, true) if terminating => Claim::Ignore,
        (true, true) if pod.is_terminal() => Claim::Terminated,
        (true, true) => Claim::Owned,
        // A controller being deleted adopts nothing (Kubernetes), and an
        // empty selector, which validation rejects, must never adopt every
        // pod in the store.
        (false, true)
            if terminating
                || pod.is_terminal()
                || view.is_deleting()
                || view.selector.is_empty()
                || !may_adopt(view.template, pod) =>
        {
            Claim::Ignore
        }
        (false, true) => Claim::Adopt,
        (false, false) => Claim::Ignore,
    }
}

/// Whether a set made from `template` may adopt `pod`. A template that
/// runs a process as the daemon's user (no `user`) is root's: it may take
/// any pod. Any other may take only pods whose every process runs as one
/// of the users its template names: a drover-group member's set (its
/// processes run as the member) must never take, and then scale away or
/// signal, a pod of root or of another user (issue 10; Kubernetes has
/// namespaces for this, drover has none).
fn may_adopt(template: &PodTemplate, pod: &Pod) -> bool {
    let users = |spec: &crate::api::PodSpec| -> Vec<Option<String>> {
        spec.init_processes
            .iter()
            .chain(&spec.processes)
            .map(|p| p.user.clone())
            .collect()
    };
    let own = users(&template.spec);
    if own.iter().any(Option::is_none) {
        return true;
    }
    users(&pod.spec)
        .iter()
        .all(|u| u.is_some() && own.contains(u))
}

/// One reconcile pass for `view`, given every pod and node the store holds
/// (borrowed: the executor lends them from the store, so a pass copies
/// nothing it does not change).
///
/// `now` stamps the planned pods' `creation_timestamp` (the executor may
/// overwrite it); nothing else depends on it. The same inputs always give
/// the same plan, and applying the plan and reconciling again gives an
/// empty one, except that a restart proceeds one pod per pass.
///
/// A controller with a deletion timestamp plans no ops at all (Kubernetes
/// skips `manageReplicas` then): its pods are the cascade's business, and
/// creating replacements for pods being stopped would fight it.
pub fn reconcile(view: &ReplicaView, pods: &[&Pod], nodes: &[&Node], now: DateTime<Utc>) -> Plan {
    let mut ops = Vec::new();
    let mut active: Vec<&Pod> = Vec::new();
    let mut terminated: Vec<&Pod> = Vec::new();
    let owner = view.owner_ref();
    for &pod in pods {
        let name = &pod.metadata.name;
        match claim(view, pod) {
            Claim::Foreign | Claim::Ignore => {}
            Claim::Owned => active.push(pod),
            Claim::Adopt => {
                ops.push(Op::Adopt {
                    name: name.clone(),
                    owner: owner.clone(),
                });
                active.push(pod);
            }
            Claim::Release => ops.push(Op::Release { name: name.clone() }),
            Claim::Terminated => terminated.push(pod),
        }
    }

    // Status describes the snapshot acted on, before this pass's ops.
    let status = ReplicaSetStatus {
        replicas: active.len() as u32,
        ready_replicas: active.iter().filter(|p| p.is_ready()).count() as u32,
        observed_generation: view.meta.generation,
    };
    if view.is_deleting() {
        return Plan {
            ops: Vec::new(),
            status,
            requeue: false,
        };
    }

    ops.extend(
        terminated
            .iter()
            .map(|p| delete(p, reasons::POD_TERMINATED)),
    );

    let want = view.replicas as usize;
    // More to do than one pass may: the executor comes back for the rest.
    let requeue = want.abs_diff(active.len()) > BURST_REPLICAS;
    if active.len() < want {
        let missing = (want - active.len()).min(BURST_REPLICAS);
        let mut load = NodeLoad::for_owner(pods, &owner.uid);
        ops.extend((0..missing).map(|_| new_pod(view, &owner, nodes, &mut load, now)));
    } else if active.len() > want {
        let surplus = (active.len() - want).min(BURST_REPLICAS);
        let victims = pods_to_delete(active, surplus);
        ops.extend(victims.iter().map(|p| delete(p, reasons::SURPLUS)));
    } else if let Some(victim) = restart_victim(view, &active) {
        ops.push(delete(victim, reasons::RESTART));
    }
    Plan {
        ops,
        status,
        requeue,
    }
}

fn delete(pod: &Pod, reason: &str) -> Op {
    Op::DeletePod {
        name: pod.metadata.name.clone(),
        reason: reason.to_string(),
    }
}

/// A pod from the template, placed by the scheduler. `load` is bumped for
/// the chosen node so the next pod of this pass sees it (spreading).
fn new_pod(
    view: &ReplicaView,
    owner: &OwnerRef,
    nodes: &[&Node],
    load: &mut NodeLoad,
    now: DateTime<Utc>,
) -> Op {
    let mut status = PodStatus {
        phase: PodPhase::Pending,
        ..PodStatus::default()
    };
    match pick_with_load(&view.template.spec, nodes, load) {
        Ok(node) => {
            load.add(&node);
            status.node_name = Some(node);
        }
        Err(message) => {
            status.reason = Some(reasons::UNSCHEDULABLE.to_string());
            status.message = Some(message);
        }
    }
    let pod = Pod {
        metadata: ObjectMeta {
            resource_version: 0,
            // Name and uid are the executor's: they are random, and
            // randomness would break "same inputs, same plan".
            name: String::new(),
            uid: String::new(),
            labels: view.template.labels.clone(),
            annotations: Default::default(),
            owner_references: vec![owner.clone()],
            creation_timestamp: now,
            generation: 1,
            deletion_timestamp: None,
        },
        spec: view.template.spec.clone(),
        status,
    };
    Op::CreatePod {
        generate_name: format!("{}-", view.meta.name),
        pod,
    }
}

/// `drover restart`: the instant in the controller's `RESTARTED_AT`
/// annotation, if set and valid RFC 3339.
pub fn restarted_at(meta: &ObjectMeta) -> Option<DateTime<Utc>> {
    let text = meta.annotations.get(annotations::RESTARTED_AT)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The one pod a restart replaces now: the oldest pod created before the
/// restart instant, but only while every active pod is ready, so at most
/// one replica is ever missing. Called only when active == replicas.
fn restart_victim<'a>(view: &ReplicaView, active: &[&'a Pod]) -> Option<&'a Pod> {
    let at = restarted_at(view.meta)?;
    if !active.iter().all(|p| p.is_ready()) {
        return None;
    }
    active
        .iter()
        .copied()
        .filter(|p| p.metadata.creation_timestamp < at)
        .min_by_key(|p| (p.metadata.creation_timestamp, p.metadata.name.as_str()))
}

/// The `n` pods to remove first, ranked as Kubernetes' `ActivePodsWithRanks`
/// (`getPodsToDelete`): unassigned before assigned; Pending before Running;
/// not ready before ready; pods sharing a node with more of `candidates`
/// before lonelier ones (keeps the spread); more restarts first; newer
/// first; then by name, so the choice is deterministic.
pub fn pods_to_delete<'a>(mut candidates: Vec<&'a Pod>, n: usize) -> Vec<&'a Pod> {
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in &candidates {
        if let Some(node) = bound_node(pod) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    candidates.sort_by_key(|pod| {
        let pod: &'a Pod = pod;
        let node = bound_node(pod);
        (
            node.is_some(),
            phase_ordinal(pod.status.phase),
            pod.is_ready(),
            Reverse(node.map_or(0, |n| per_node[n])),
            Reverse(pod.restarts()),
            Reverse(pod.metadata.creation_timestamp),
            pod.metadata.name.as_str(),
        )
    });
    candidates.truncate(n);
    candidates
}

/// Kubernetes' `podPhaseToOrdinal`: Pending 0, Unknown 1 (drover has no
/// Unknown), Running 2; other phases are absent from its map, so 0.
fn phase_ordinal(phase: PodPhase) -> u8 {
    match phase {
        PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed => 0,
        PodPhase::Running => 2,
    }
}

#[cfg(test)]
mod tests;
