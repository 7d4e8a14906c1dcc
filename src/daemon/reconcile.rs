//! The executor of the control plane: runs the pure controllers over the
//! store and applies their plans (style.md §3: "a thin executor applies
//! the plan"). Also the two bits of bookkeeping Kubernetes does in other
//! components: binding pending pods to nodes (the scheduler) and deleting
//! pods whose controller is gone (the garbage collector).
//!
//! Single host needs no "expectations" (Kubernetes' guard against a lagging
//! cache): plans are applied to the same in-memory store the next
//! reconcile reads, before it runs.

use super::events::EventLog;
use crate::api::{annotations, Kind, Node, Object, ObjectMeta, Pod};
use crate::controllers::replicaset::{self, ReplicaView};
use crate::controllers::{scheduler, Op, Plan};
use crate::store::Store;
use chrono::{DateTime, Utc};

/// One pass of every controller; returns whether it changed anything.
pub fn run_controllers(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) -> bool {
    let before = store.revision();
    let pods: Vec<Pod> = store.pods().cloned().collect();
    let nodes: Vec<Node> = store.nodes().cloned().collect();

    let mut plans: Vec<(Kind, ObjectMeta, Plan)> = vec![];
    for rs in store.replicasets() {
        let view = ReplicaView::from_rs(rs);
        plans.push((
            Kind::ReplicaSet,
            rs.metadata.clone(),
            replicaset::reconcile(&view, &pods, &nodes, now),
        ));
    }
    for rc in store.replication_controllers() {
        let view = ReplicaView::from_rc(rc);
        plans.push((
            Kind::ReplicationController,
            rc.metadata.clone(),
            replicaset::reconcile(&view, &pods, &nodes, now),
        ));
    }
    for (kind, meta, plan) in plans {
        apply_plan(store, events, kind, &meta, plan, now);
    }

    schedule(store, events, now);
    collect_garbage(store, now);
    store.revision() != before
}

fn apply_plan(
    store: &mut Store,
    events: &mut EventLog,
    kind: Kind,
    owner: &ObjectMeta,
    plan: Plan,
    now: DateTime<Utc>,
) {
    let source = match kind {
        Kind::ReplicationController => "replication-controller",
        _ => "replicaset-controller",
    };
    for op in plan.ops {
        match op {
            Op::CreatePod {
                generate_name,
                mut pod,
            } => {
                let name = unique_name(store, &generate_name);
                pod.metadata.name = name.clone();
                pod.metadata.uid = crate::api::meta::new_uid();
                pod.metadata.creation_timestamp = now;
                pod.metadata.generation = 1;
                store.put(Object::Pod(pod));
                events.record(
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                    source,
                    now,
                );
            }
            Op::DeletePod { name, reason } => {
                if mark_deleted(store, &name, now) {
                    events.record(
                        kind,
                        &owner.name,
                        &owner.uid,
                        false,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name} ({reason})"),
                        source,
                        now,
                    );
                }
            }
            Op::Adopt {
                name,
                owner: owner_ref,
            } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references = vec![owner_ref];
                    true
                });
                events.record(
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "Adopted",
                    &format!("Adopted pod: {name}"),
                    source,
                    now,
                );
            }
            Op::Release { name } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references.clear();
                    true
                });
                events.record(
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "Released",
                    &format!("Released pod: {name} (labels no longer match)"),
                    source,
                    now,
                );
            }
        }
    }
    let status = plan.status;
    store.update(kind, &owner.name, |o| match o {
        Object::ReplicaSet(rs) if rs.status != status => {
            rs.status = status;
            true
        }
        Object::ReplicationController(rc) if rc.status != status => {
            rc.status = status;
            true
        }
        _ => false,
    });
}

/// `generate_name` + 5 random characters, as the Kubernetes API server.
fn unique_name(store: &Store, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let suffix: String = bytes[..5]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let name = format!("{prefix}{suffix}");
        if store.pod(&name).is_none() {
            return name;
        }
    }
}

/// Graceful deletion: the agent stops the processes and removes the pod.
/// A pod bound to no node has nothing to stop and goes at once.
pub fn mark_deleted(store: &mut Store, name: &str, now: DateTime<Utc>) -> bool {
    let Some(pod) = store.pod(name) else {
        return false;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if pod.status.node_name.is_none() {
        store.delete(Kind::Pod, name);
        return true;
    }
    store.update_pod(name, |p| {
        p.metadata.deletion_timestamp = Some(now);
        true
    })
}

/// Binds pods that have no node yet; records why when none fits.
fn schedule(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    let pending: Vec<Pod> = store
        .pods()
        .filter(|p| {
            p.status.node_name.is_none()
                && p.metadata.deletion_timestamp.is_none()
                && !p.is_terminal()
        })
        .cloned()
        .collect();
    if pending.is_empty() {
        return;
    }
    let all: Vec<Pod> = store.pods().cloned().collect();
    let nodes: Vec<Node> = store.nodes().cloned().collect();
    for (name, result) in scheduler::schedule_pending(&all, &nodes) {
        let Some(pod) = pending.iter().find(|p| p.metadata.name == name) else {
            continue;
        };
        match result {
            Ok(node) => {
                store.update_pod(&name, |p| {
                    p.status.node_name = Some(node.clone());
                    p.status.reason = None;
                    p.status.message = None;
                    true
                });
                events.record(
                    Kind::Pod,
                    &name,
                    &pod.metadata.uid,
                    false,
                    "Scheduled",
                    &format!("Successfully assigned {name} to {node}"),
                    "scheduler",
                    now,
                );
            }
            Err(msg) => {
                let changed = store.update_pod(&name, |p| {
                    if p.status.message.as_deref() == Some(msg.as_str()) {
                        return false;
                    }
                    p.status.reason = Some("Unschedulable".into());
                    p.status.message = Some(msg.clone());
                    true
                });
                if changed {
                    events.record(
                        Kind::Pod,
                        &name,
                        &pod.metadata.uid,
                        true,
                        "FailedScheduling",
                        &msg,
                        "scheduler",
                        now,
                    );
                }
            }
        }
    }
}

/// Pods whose controlling owner no longer exists are deleted (Kubernetes'
/// background cascading deletion). `--cascade=orphan` clears the owner
/// reference before the owner goes, so those pods are not touched here.
fn collect_garbage(store: &mut Store, now: DateTime<Utc>) {
    let orphans: Vec<String> = store
        .pods()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| match p.metadata.controller() {
            Some(owner) => match store.get(owner.kind, &owner.name) {
                Some(o) => o.meta().uid != owner.uid,
                None => true,
            },
            None => false,
        })
        .map(|p| p.metadata.name.clone())
        .collect();
    for name in orphans {
        mark_deleted(store, &name, now);
    }
}

/// Whether an object came from the units folder (and so belongs to it).
pub fn from_units_dir(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
}
