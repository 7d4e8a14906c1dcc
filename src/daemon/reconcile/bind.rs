//! Binding: pods created without a node (none fitted when they were
//! planned) are bound once one does, with a `Scheduled` event; while none
//! fits, the pod says why (`Unschedulable`, `FailedScheduling`).

use crate::api::{EventType, Kind, Node, Pod};
use crate::controllers::scheduler;
use crate::daemon::events::{EventLog, NewEvent};
use crate::store::Store;
use chrono::{DateTime, Utc};

/// Binds pods that have no node yet; records why when none fits.
pub(super) fn schedule(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if !store.pods().any(unbound) {
        return;
    }
    let placements = {
        let all: Vec<&Pod> = store.pods().collect();
        let nodes: Vec<&Node> = store.nodes().collect();
        scheduler::schedule_pending(&all, &nodes)
    };
    for (name, result) in placements {
        // Placements are applied one pod at a time and each touches only
        // its own pod, so the store still shows it as it was planned.
        let Some(uid) = store
            .pod(&name)
            .filter(|p| unbound(p))
            .map(|p| p.metadata.uid.clone())
        else {
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
                    NewEvent {
                        kind: Kind::Pod,
                        name: &name,
                        uid: &uid,
                        type_: EventType::Normal,
                        reason: "Scheduled",
                        message: &format!("Successfully assigned {name} to {node}"),
                        source: "scheduler",
                    },
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
                        NewEvent {
                            kind: Kind::Pod,
                            name: &name,
                            uid: &uid,
                            type_: EventType::Warning,
                            reason: "FailedScheduling",
                            message: &msg,
                            source: "scheduler",
                        },
                        now,
                    );
                }
            }
        }
    }
}

/// Not bound to a node, not being deleted, not finished: the pods
/// [`schedule`] binds (the scheduler also takes an empty node name for
/// unbound; those are left alone here).
fn unbound(p: &Pod) -> bool {
    p.status.node_name.is_none() && p.metadata.deletion_timestamp.is_none() && !p.is_terminal()
}
