//! The executor of the node lifecycle controller (leader only): runs
//! `controllers::node_lifecycle` over the cache and applies its plan to
//! the store the leader's pass works on (its writes then go to etcd like
//! every controller write): Ready conditions flipped, evicted pods removed
//! outright (see `node_lifecycle` for why removals).
//!
//! Must not: evict on its own judgement (the pure controller decides), or
//! keep health across leaderships (a new leader starts from an empty map,
//! so it never evicts on timestamps it did not observe itself).

use crate::api::{Kind, Node, NodeCondition, Object, Pod};
use crate::controllers::node_lifecycle::{self, HealthMap};
use crate::controllers::Op;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;

/// Something worth an event, for the loop to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq)]
pub struct LifecycleRun {
    /// Run again after this long (the next eviction deadline).
    pub requeue_after: Option<Duration>,
    pub notices: Vec<Notice>,
    pub full_disruption: bool,
}

/// One pass over `store` with the heartbeats in `alive`; `health` is the
/// controller's memory, carried between passes of one leadership.
pub fn run(
    store: &mut Store,
    alive: &BTreeSet<String>,
    health: &mut HealthMap,
    now: DateTime<Utc>,
    eviction_timeout: Duration,
) -> LifecycleRun {
    let plan = {
        let nodes: Vec<&Node> = store.nodes().collect();
        let pods: Vec<&Pod> = store.pods().collect();
        node_lifecycle::reconcile(&nodes, alive, &pods, health, now, eviction_timeout)
    };
    *health = plan.health;
    let mut notices = Vec::new();
    for set in &plan.conditions {
        let mut uid = String::new();
        store.update(Kind::Node, &set.node, |o| {
            let Object::Node(n) = o else { return false };
            uid = n.metadata.uid.clone();
            set_ready(n, set.ready, now);
            true
        });
        let (reason, message) = if set.ready {
            (
                "NodeReady",
                format!("Node {} status is now: NodeReady", set.node),
            )
        } else {
            (
                "NodeNotReady",
                format!(
                    "Node {} status is now: NodeNotReady (lease expired)",
                    set.node
                ),
            )
        };
        notices.push(Notice {
            kind: Kind::Node,
            name: set.node.clone(),
            uid,
            warning: !set.ready,
            reason: reason.into(),
            message,
        });
    }
    for op in plan.evictions {
        let Op::DeletePod { name, reason } = op else {
            continue;
        };
        let Some(Object::Pod(pod)) = store.delete(Kind::Pod, &name) else {
            continue;
        };
        let node = pod.status.node_name.clone().unwrap_or_default();
        let node_uid = match store.get(Kind::Node, &node) {
            Some(n) => n.meta().uid.clone(),
            None => String::new(),
        };
        notices.push(Notice {
            kind: Kind::Node,
            name: node.clone(),
            uid: node_uid,
            warning: true,
            reason: "EvictedPod".into(),
            message: format!("Removed pod {name} ({reason})"),
        });
    }
    LifecycleRun {
        requeue_after: plan.requeue_after,
        notices,
        full_disruption: plan.full_disruption,
    }
}

/// Sets the node's Ready condition as the lifecycle controller sees it.
fn set_ready(node: &mut Node, ready: bool, now: DateTime<Utc>) {
    let previous = node
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned();
    node.status.conditions.retain(|c| c.type_ != "Ready");
    let (status, reason, message) = if ready {
        ("True", "NodeReady", "drover is posting ready status")
    } else {
        (
            "False",
            "NodeStatusUnknown",
            "drover on the node stopped renewing its lease",
        )
    };
    node.status.conditions.insert(
        0,
        NodeCondition {
            type_: "Ready".into(),
            status: status.into(),
            last_heartbeat_time: previous.and_then(|c| c.last_heartbeat_time),
            last_transition_time: Some(now),
            reason: Some(reason.into()),
            message: Some(message.into()),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::fixtures::{node, pod, rs, t, PodFixture};

    fn store() -> Store {
        let mut s = Store::mirror();
        s.mirror_put(Object::Node(node("n1")));
        s.mirror_put(Object::Node(node("n2")));
        let web = rs("web", 2);
        s.mirror_put(Object::Pod(pod("web-1").owned_by(&web).on("n1")));
        s.mirror_put(Object::Pod(pod("web-2").owned_by(&web).on("n2")));
        s.mirror_put(Object::Pod(pod("solo").on("n2")));
        s
    }

    #[test]
    fn a_lost_node_goes_not_ready_then_its_controlled_pods_are_removed() {
        let mut s = store();
        let mut health = HealthMap::new();
        let alive = BTreeSet::from(["n1".to_string(), "n2".to_string()]);
        let timeout = Duration::from_secs(5);
        assert_eq!(
            run(&mut s, &alive, &mut health, t(0), timeout),
            LifecycleRun::default()
        );

        let only_n1 = BTreeSet::from(["n1".to_string()]);
        let first = run(&mut s, &only_n1, &mut health, t(10), timeout);
        assert_eq!(first.requeue_after, Some(timeout));
        assert_eq!(first.notices.len(), 1);
        assert_eq!(first.notices[0].reason, "NodeNotReady");
        let Some(Object::Node(n2)) = s.get(Kind::Node, "n2") else {
            panic!()
        };
        assert!(!n2.is_ready());
        assert_eq!(
            n2.status.conditions[0].reason.as_deref(),
            Some("NodeStatusUnknown")
        );
        assert!(s.pod("web-2").is_some(), "not before the timeout");

        let later = run(&mut s, &only_n1, &mut health, t(15), timeout);
        assert!(s.pod("web-2").is_none(), "removed outright");
        assert!(s.pod("solo").is_some(), "unmanaged pods stay");
        assert!(s.pod("web-1").is_some());
        assert_eq!(later.notices[0].reason, "EvictedPod");
        assert!(later.notices[0].message.contains("web-2"));

        // Back: Ready again.
        let back = run(&mut s, &alive, &mut health, t(20), timeout);
        assert_eq!(back.notices[0].reason, "NodeReady");
        let Some(Object::Node(n2)) = s.get(Kind::Node, "n2") else {
            panic!()
        };
        assert!(n2.is_ready());
    }
}
