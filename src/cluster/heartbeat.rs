//! Enrollment and heartbeat: this node's Node object (created, or
//! refreshed with compare-and-swap), and its heartbeat key
//! `/drover/leases/<node>` on a lease of its own (10 s), kept alive by the
//! lease's keep-alives alone: an idle node sends nothing else.
//!
//! When the lease is lost (etcd unreachable for longer than the TTL, or
//! this process frozen past it), a new one is granted as soon as etcd
//! answers, and the daemon is told to fence ([`Heartbeat::Up`] with
//! `after_loss`): while the node was NotReady the leader may have evicted
//! its pods and started copies elsewhere, so before its agent acts again
//! the node re-reads what is bound to it and kills what is not any more.
//!
//! [`node_object`] (what the Node says about this host) is pure; the task
//! is [`run`].
//!
//! Must not: stop pods itself (the daemon's loop fences), or give up on
//! etcd (it retries with a capped backoff for as long as the daemon runs).

use crate::api::ObjectMeta;
use crate::api::{Kind, Labels, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Object};
use crate::store::etcd::{EtcdStore, Lease};
use crate::store::versioned::{ObjectStore, Result, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The label every node carries (Kubernetes' well-known label).
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// What this node says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    /// From the config (`[node_labels]`, `--node-labels`): set at every
    /// start, over labels set with `drover label node`.
    pub labels: Labels,
    pub capacity: BTreeMap<String, String>,
    pub version: String,
    /// Where other nodes reach its node-to-node listener.
    pub address: Option<IpAddr>,
    pub daemon_port: Option<u16>,
}

/// The Node object for `info`: a new one, or `existing` refreshed (its
/// uid, creation time, cordon and the labels users set are kept). Ready,
/// since a node registers only with its heartbeat key in place.
pub fn node_object(info: &NodeInfo, existing: Option<&Node>, now: DateTime<Utc>) -> Node {
    let mut node = match existing {
        Some(n) => n.clone(),
        None => Node {
            metadata: ObjectMeta::new(info.name.clone(), now),
            spec: NodeSpec::default(),
            status: NodeStatus::default(),
        },
    };
    let labels = &mut node.metadata.labels;
    labels.insert(HOSTNAME_LABEL.to_string(), info.name.clone());
    for (k, v) in &info.labels {
        labels.insert(k.clone(), v.clone());
    }
    let status = &mut node.status;
    let was_ready = node_was_ready(status);
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| c.last_transition_time)
        .filter(|_| was_ready)
        .unwrap_or(now);
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.insert(
        0,
        NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_heartbeat_time: Some(now),
            last_transition_time: Some(since),
            reason: Some("NodeReady".into()),
            message: Some("drover is posting ready status".into()),
        },
    );
    status.drover_version = info.version.clone();
    status.capacity = info.capacity.clone();
    status.addresses = vec![NodeAddress {
        type_: "Hostname".into(),
        address: info.name.clone(),
    }];
    if let Some(ip) = info.address {
        status.addresses.insert(
            0,
            NodeAddress {
                type_: "InternalIP".into(),
                address: ip.to_string(),
            },
        );
    }
    status.daemon_port = info.daemon_port;
    node
}

fn node_was_ready(status: &NodeStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Creates or refreshes this node's Node object, re-reading on conflict
/// (a user labelling or cordoning it at the same moment).
pub async fn register(store: &impl ObjectStore, info: &NodeInfo) -> Result<Node> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let existing = match store.get(Kind::Node, &info.name).await? {
            Some(Object::Node(n)) => Some(n),
            _ => None,
        };
        let node = node_object(info, existing.as_ref(), Utc::now());
        let written = match existing {
            None => store.create(Object::Node(node)).await,
            Some(_) => store.update_if(Object::Node(node)).await,
        };
        match written {
            Ok(Object::Node(n)) => return Ok(n),
            Ok(_) => unreachable!("a node was written"),
            Err(e) if e.is_conflict() && attempts < 10 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What the heartbeat tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// Registered, with the heartbeat key on a live lease. `after_loss`:
    /// an earlier lease was lost; fence before the agent acts again.
    Up { after_loss: bool },
    /// The lease is lost (etcd unreachable past the TTL, or this process
    /// was frozen). The agent keeps its pods running meanwhile.
    LeaseLost,
}

/// The handles the daemon keeps on the heartbeat task.
pub struct HeartbeatTask {
    pub events: mpsc::Receiver<Heartbeat>,
    /// Until when the current lease surely holds (None: no lease now).
    pub valid_until: watch::Receiver<Option<Instant>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the heartbeat: registration, lease, key, and re-registration
/// after every loss.
pub fn spawn(store: EtcdStore, info: NodeInfo, ttl: Duration) -> HeartbeatTask {
    let (tx, events) = mpsc::channel(8);
    let (valid_tx, valid_until) = watch::channel(None);
    let task = tokio::spawn(run(store, info, ttl, tx, valid_tx));
    HeartbeatTask {
        events,
        valid_until,
        task,
    }
}

/// Pause between attempts while etcd does not answer.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);

async fn run(
    store: EtcdStore,
    info: NodeInfo,
    ttl: Duration,
    tx: mpsc::Sender<Heartbeat>,
    valid: watch::Sender<Option<Instant>>,
) {
    let mut after_loss = false;
    let mut pause = RETRY_FIRST;
    loop {
        let lease = match up(&store, &info, ttl).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!("node {}: not registered yet: {e}", info.name);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
                continue;
            }
        };
        pause = RETRY_FIRST;
        tracing::info!(
            "node {} registered (lease {:x}, {}s)",
            info.name,
            lease.id(),
            lease.ttl().as_secs()
        );
        if tx.send(Heartbeat::Up { after_loss }).await.is_err() {
            return; // the daemon is gone
        }
        let mut expires = lease.expires();
        valid.send_replace(Some(*expires.borrow()));
        loop {
            tokio::select! {
                _ = lease.lost() => break,
                changed = expires.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    valid.send_replace(Some(*expires.borrow()));
                }
            }
        }
        valid.send_replace(None);
        tracing::warn!("node {}: lease lost; re-registering", info.name);
        after_loss = true;
        if tx.send(Heartbeat::LeaseLost).await.is_err() {
            return;
        }
    }
}

/// One registration: a new lease, the heartbeat key on it, the Node.
async fn up(store: &EtcdStore, info: &NodeInfo, ttl: Duration) -> Result<Lease> {
    let lease = store.grant_lease(ttl).await?;
    store.put_node_lease(&info.name, &lease).await?;
    register(store, info).await?;
    if lease.is_lost() {
        return Err(StoreError::LeaseExpired);
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::fixtures::{t, NodeFixture};

    fn info() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            labels: Labels::from([("disk".to_string(), "ssd".to_string())]),
            capacity: BTreeMap::from([("cpu".to_string(), "2".to_string())]),
            version: "0.9.0".into(),
            address: Some("10.0.0.5".parse().unwrap()),
            daemon_port: Some(10250),
        }
    }

    #[test]
    fn a_new_node() {
        let n = node_object(&info(), None, t(5));
        assert_eq!(n.metadata.name, "n1");
        assert_eq!(n.metadata.creation_timestamp, t(5));
        assert!(!n.metadata.uid.is_empty());
        assert_eq!(n.metadata.labels[HOSTNAME_LABEL], "n1");
        assert_eq!(n.metadata.labels["disk"], "ssd");
        assert!(n.is_ready());
        assert!(!n.spec.unschedulable);
        assert_eq!(n.status.drover_version, "0.9.0");
        assert_eq!(n.status.capacity["cpu"], "2");
        assert_eq!(n.peer_address().as_deref(), Some("10.0.0.5:10250"));
    }

    #[test]
    fn a_refreshed_node_keeps_what_users_set() {
        let mut old = crate::controllers::fixtures::node("n1")
            .labels(&[("disk", "hdd"), ("team", "a")])
            .unschedulable()
            .not_ready();
        old.status.drover_version = "0.8.0".into();
        let n = node_object(&info(), Some(&old), t(9));
        assert_eq!(n.metadata.uid, old.metadata.uid);
        assert_eq!(
            n.metadata.creation_timestamp,
            old.metadata.creation_timestamp
        );
        assert!(n.spec.unschedulable, "a cordon survives a restart");
        assert_eq!(n.metadata.labels["team"], "a", "users' labels stay");
        assert_eq!(n.metadata.labels["disk"], "ssd", "the config's win");
        assert!(n.is_ready());
        assert_eq!(
            n.status
                .conditions
                .iter()
                .filter(|c| c.type_ == "Ready")
                .count(),
            1
        );
        assert_eq!(n.status.drover_version, "0.9.0");
    }

    #[test]
    fn without_an_address_no_peer() {
        let mut i = info();
        i.address = None;
        assert_eq!(node_object(&i, None, t(0)).peer_address(), None);
        i.address = Some("::1".parse().unwrap());
        assert_eq!(
            node_object(&i, None, t(0)).peer_address().as_deref(),
            Some("[::1]:10250")
        );
    }
}
