//! The DaemonSet controller's executor: runs `controllers::daemonset`
//! over the store for every DaemonSet and applies its plan (pods created
//! bound to their node, deleted, adopted, released; the status written).
//! In single-host mode the one node is this host; in a cluster the leader
//! runs it, on the cache, and its writes go to etcd.
//!
//! Must not: pick nodes (a DaemonSet's pods bypass the scheduler: each is
//! made for its node), or touch pods of other controllers (the pure
//! controller never plans that).

use super::executor::apply_pod_op;
use crate::api::{DaemonSet, EventType, Kind, Node, Object, ObjectMeta, Pod};
use crate::controllers::daemonset::{self, DaemonSetPlan};
use crate::controllers::Op;
use crate::daemon::events::{EventLog, NewEvent};
use crate::store::Store;
use chrono::{DateTime, Utc};

const SOURCE: &str = "daemonset-controller";

fn daemonsets(store: &Store) -> impl Iterator<Item = &DaemonSet> {
    store.list(Kind::DaemonSet).filter_map(|o| match o {
        Object::DaemonSet(d) => Some(d),
        _ => None,
    })
}

/// One pass over every DaemonSet.
pub(super) fn run_daemonsets(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if store.list(Kind::DaemonSet).next().is_none() {
        return;
    }
    let plans: Vec<(ObjectMeta, DaemonSetPlan)> = {
        let pods: Vec<&Pod> = store.pods().collect();
        let nodes: Vec<&Node> = store.nodes().collect();
        daemonsets(store)
            .map(|ds| {
                (
                    ds.metadata.clone(),
                    daemonset::reconcile(ds, &nodes, &pods, now),
                )
            })
            .collect()
    };
    for (meta, plan) in plans {
        apply(store, events, &meta, plan, now);
    }
}

fn apply(
    store: &mut Store,
    events: &mut EventLog,
    owner: &ObjectMeta,
    plan: DaemonSetPlan,
    now: DateTime<Utc>,
) {
    let record = |events: &mut EventLog, reason: &str, message: String| {
        let event = NewEvent {
            kind: Kind::DaemonSet,
            name: &owner.name,
            uid: &owner.uid,
            type_: EventType::Normal,
            reason,
            message: &message,
            source: SOURCE,
        };
        events.record(event, now);
    };
    for op in plan.ops {
        match op {
            Op::Adopt {
                name,
                owner: owner_ref,
            } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references = vec![owner_ref];
                    true
                });
                record(events, "Adopted", format!("Adopted pod: {name}"));
            }
            Op::Release { name } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references.clear();
                    true
                });
                record(
                    events,
                    "Released",
                    format!("Released pod: {name} (labels no longer match)"),
                );
            }
            op @ (Op::CreatePod { .. } | Op::DeletePod { .. }) => {
                apply_pod_op(store, events, Kind::DaemonSet, owner, op, SOURCE, now)
            }
        }
    }
    let status = plan.status;
    store.update(Kind::DaemonSet, &owner.name, |o| match o {
        Object::DaemonSet(d) if d.metadata.uid == owner.uid && d.status != status => {
            d.status = status;
            true
        }
        _ => false,
    });
}
