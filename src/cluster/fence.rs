//! Fencing: a node that was cut off (etcd unreachable past its lease, or
//! the daemon frozen) may have had its pods evicted and started elsewhere
//! meanwhile. When it is back, before its agent acts again, it re-reads
//! what is bound to it (a fresh, linearizable list from etcd, not the
//! watch it may have fallen behind on) and kills what it no longer owns.
//! So two copies overlap from the replacement's start until the node is
//! back, never longer.
//!
//! - [`stale_pods`] decides which of the pods the agent runs it no longer
//!   owns: gone from etcd, replaced by another pod of the same name (a
//!   different uid), or bound to another node. A pod marked for deletion
//!   is still owned: it stops with its grace period as usual (the node
//!   lifecycle controller removes an evicted pod outright, so evictions
//!   land in "gone").
//! - [`AgentGate`] says when the agent may act: not before the first
//!   snapshot at start (then the agent re-adopts from it, and stops
//!   marked processes of pods that are gone), and not while a fencing
//!   re-list is awaited.
//!
//! While etcd is merely unreachable the agent keeps running its pods
//! (restarts, probes): fencing starts only once etcd answers again, so an
//! outage of etcd alone never stops a pod.
//!
//! Pure: the daemon's loop applies the verdicts through the agent.

use crate::store::Store;

/// Why a pod the agent runs is not this node's any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// No pod of that name in etcd.
    Gone,
    /// A pod of that name with another uid: a new pod.
    Replaced,
    /// The pod is bound to another node.
    BoundElsewhere(String),
}

/// Which of `running` (name, uid: the pods the agent has processes for)
/// are not bound to `node` in `store` (a fresh snapshot), with why.
pub fn stale_pods<'a>(
    running: impl IntoIterator<Item = (&'a str, &'a str)>,
    store: &Store,
    node: &str,
) -> Vec<(String, Stale)> {
    let mut out = Vec::new();
    for (name, uid) in running {
        let verdict = match store.pod(name) {
            None => Some(Stale::Gone),
            Some(p) if p.metadata.uid != uid => Some(Stale::Replaced),
            Some(p) => match p.status.node_name.as_deref() {
                Some(n) if n != node => Some(Stale::BoundElsewhere(n.to_string())),
                _ => None,
            },
        };
        if let Some(why) = verdict {
            out.push((name.to_string(), why));
        }
    }
    out
}

/// When the agent may act (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentGate {
    /// The daemon started and has no snapshot yet.
    Starting,
    Running,
    /// Back after losing the lease: waiting for the re-list tagged `epoch`.
    Fencing {
        epoch: u64,
    },
}

/// What the loop does once a snapshot lets the agent act again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// First snapshot since start: re-adopt, then sync.
    Start,
    /// A fencing re-list: kill [`stale_pods`], then sync.
    Fence,
}

impl AgentGate {
    pub fn agent_may_act(&self) -> bool {
        matches!(self, AgentGate::Running)
    }

    /// The node is registered again after losing its lease: wait for a
    /// re-list tagged `epoch` (the loop asks the reflector for it). At
    /// start there is nothing to fence yet: the first snapshot does it.
    pub fn fence(&mut self, epoch: u64) {
        if *self != AgentGate::Starting {
            *self = AgentGate::Fencing { epoch };
        }
    }

    /// A snapshot from a re-list tagged `epoch` was applied to the cache.
    pub fn snapshot_applied(&mut self, epoch: u64) -> Option<Resume> {
        match *self {
            AgentGate::Starting => {
                *self = AgentGate::Running;
                Some(Resume::Start)
            }
            AgentGate::Fencing { epoch: wanted } if epoch >= wanted => {
                *self = AgentGate::Running;
                Some(Resume::Fence)
            }
            AgentGate::Fencing { .. } | AgentGate::Running => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Object;
    use crate::controllers::fixtures::{pod, t, PodFixture};

    #[test]
    fn stale_pods_table() {
        let mut store = Store::mirror();
        let mut replaced = pod("db").on("n1");
        replaced.metadata.uid = "uid-new".into();
        for p in [
            pod("kept").on("n1"),
            pod("moved").on("n2"),
            replaced,
            pod("stopping").on("n1").terminating(t(5)),
        ] {
            store.mirror_put(Object::Pod(p));
        }
        let running = [
            ("kept", "uid-kept"),
            ("moved", "uid-moved"),
            ("db", "uid-db"),
            ("evicted", "uid-evicted"),
            ("stopping", "uid-stopping"),
        ];
        let got = stale_pods(running, &store, "n1");
        assert_eq!(
            got,
            [
                ("moved".to_string(), Stale::BoundElsewhere("n2".into())),
                ("db".to_string(), Stale::Replaced),
                ("evicted".to_string(), Stale::Gone),
            ],
            "a pod being deleted stops gracefully, as it would have anyway"
        );
    }

    #[test]
    fn the_gate_holds_the_agent_until_the_right_snapshot() {
        let mut g = AgentGate::Starting;
        assert!(!g.agent_may_act());
        g.fence(1); // the first registration: the snapshot fences anyway
        assert_eq!(g, AgentGate::Starting);
        assert_eq!(g.snapshot_applied(0), Some(Resume::Start));
        assert!(g.agent_may_act());
        assert_eq!(g.snapshot_applied(0), None, "a later re-list (compaction)");

        g.fence(3);
        assert!(!g.agent_may_act());
        assert_eq!(
            g.snapshot_applied(2),
            None,
            "a re-list from before the request"
        );
        assert!(!g.agent_may_act());
        assert_eq!(g.snapshot_applied(3), Some(Resume::Fence));
        assert!(g.agent_may_act());
    }
}
