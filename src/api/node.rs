//! Nodes: hosts running `drover daemon`.

use super::ObjectMeta;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Cordoned: the scheduler places no new pods here.
    #[serde(default)]
    pub unschedulable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True" | "False" | "Unknown", as Kubernetes.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<DateTime<Utc>>,
    /// When `status` last changed (set by the node lifecycle controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<DateTime<Utc>>,
    /// Why, in one word (`NodeReady`, `NodeStatusUnknown`), and in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(default)]
    pub conditions: Vec<NodeCondition>,
    /// drover's version on that node.
    #[serde(default)]
    pub drover_version: String,
    /// Which cgroup hierarchy that node's daemon puts pods in (`cgroup v1
    /// (memory, cpu, pids...) at ...`), or why none: limits are refused
    /// there (the daemon's first log line says the same).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroups: String,
    /// What the host has, as Kubernetes' `status.capacity`: `cpu` (cores),
    /// `memory` (`16318964Ki`), `pods`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, String>,
    /// Where other nodes reach it (Kubernetes' `status.addresses`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    /// Port of its node-to-node listener (`logs` and `describe` of its
    /// pods from other nodes); Kubernetes' kubelet endpoint port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_port: Option<u16>,
}

/// One of a node's addresses: `type` InternalIP or Hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub type_: String,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

/// Prefix of the labels kubectl reads a node's ROLES from
/// (`node-role.kubernetes.io/control-plane=`).
pub const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";

impl Node {
    /// ROLES as kubectl computes them: the `node-role.kubernetes.io/ROLE`
    /// labels (and `kubernetes.io/role=ROLE`), sorted.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = self
            .metadata
            .labels
            .iter()
            .filter_map(|(k, v)| match k.strip_prefix(ROLE_LABEL_PREFIX) {
                Some(role) if !role.is_empty() => Some(role.to_string()),
                _ if k == "kubernetes.io/role" && !v.is_empty() => Some(v.clone()),
                _ => None,
            })
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// `HOST:PORT` of its node-to-node listener, if it published one.
    pub fn peer_address(&self) -> Option<String> {
        let port = self.status.daemon_port?;
        let ip = self
            .status
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")?;
        Some(match ip.address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            _ => format!("{}:{port}", ip.address),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}
