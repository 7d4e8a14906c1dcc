//! Nodes: hosts running `drover daemon`.

use super::ObjectMeta;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Cordoned: the scheduler places no new pods here.
    #[serde(default)]
    pub unschedulable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True" | "False" | "Unknown", as Kubernetes.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<DateTime<Utc>>,
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

impl Node {
    pub fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}
