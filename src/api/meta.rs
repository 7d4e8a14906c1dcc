//! Object metadata shared by every kind: name, uid, labels, owners.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub type Labels = BTreeMap<String, String>;

/// Every kind drover knows. The spelling is Kubernetes' (`"ReplicaSet"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Pod,
    ReplicaSet,
    ReplicationController,
    DaemonSet,
    Job,
    CronJob,
    Node,
    Event,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
        Kind::Node,
        Kind::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Node => "Node",
            Kind::Event => "Event",
        }
    }

    /// The plural lower-case resource name used in URLs (`replicasets`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::ReplicaSet => "replicasets",
            Kind::ReplicationController => "replicationcontrollers",
            Kind::DaemonSet => "daemonsets",
            Kind::Job => "jobs",
            Kind::CronJob => "cronjobs",
            Kind::Node => "nodes",
            Kind::Event => "events",
        }
    }

    /// The api_version Kubernetes uses for this kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ReplicationController | Kind::Node | Kind::Event => "v1",
            Kind::ReplicaSet | Kind::DaemonSet => "apps/v1",
            Kind::Job | Kind::CronJob => "batch/v1",
        }
    }

    /// Parses what a user types after a verb: `pods`, `pod`, `po`, `rs`,
    /// `replicaset`, `ReplicaSet`, ... (kubectl's names and short names).
    pub fn from_cli(word: &str) -> Option<Kind> {
        let w = word.to_ascii_lowercase();
        Some(match w.as_str() {
            "pod" | "pods" | "po" => Kind::Pod,
            "rs" | "replicaset" | "replicasets" => Kind::ReplicaSet,
            "rc" | "replicationcontroller" | "replicationcontrollers" => {
                Kind::ReplicationController
            }
            "ds" | "daemonset" | "daemonsets" => Kind::DaemonSet,
            "job" | "jobs" => Kind::Job,
            "cj" | "cronjob" | "cronjobs" => Kind::CronJob,
            "node" | "nodes" | "no" => Kind::Node,
            "ev" | "event" | "events" => Kind::Event,
            _ => return None,
        })
    }

    /// The short name kubectl prints in `rs/web` style references.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::ReplicaSet => "rs",
            Kind::ReplicationController => "rc",
            Kind::DaemonSet => "ds",
            Kind::Job => "job",
            Kind::CronJob => "cronjob",
            Kind::Node => "node",
            Kind::Event => "event",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who controls an object (`owner = kind/name/uid`), as Kubernetes'
/// `ownerReferences` with `controller: true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRef {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
}

impl fmt::Display for OwnerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub labels: Labels,
    /// Bookkeeping that is not for selection: where a unit came from
    /// (`drover.io/source-file`), when a restart was asked for, ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
    #[serde(default)]
    pub owner_references: Vec<OwnerRef>,
    pub creation_timestamp: DateTime<Utc>,
    /// Bumped by the store on every change of spec or metadata (not status).
    #[serde(default)]
    pub generation: u64,
    /// The store's revision of this object's last write: every write is a
    /// compare-and-swap on it (a stale writer gets a conflict, never
    /// silently overwrites). A string in JSON, opaque, as in Kubernetes.
    #[serde(default, with = "revision_string")]
    pub resource_version: u64,
    /// Set when the object is being deleted (its pods are stopping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
}

impl ObjectMeta {
    pub fn new(name: impl Into<String>, now: DateTime<Utc>) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            uid: new_uid(),
            labels: Labels::new(),
            annotations: Labels::new(),
            owner_references: Vec::new(),
            creation_timestamp: now,
            generation: 1,
            resource_version: 0,
            deletion_timestamp: None,
        }
    }

    /// The controlling owner, if any (drover records at most one).
    pub fn controller(&self) -> Option<&OwnerRef> {
        self.owner_references.first()
    }
}

/// `resource_version` as Kubernetes writes it: a decimal string.
mod revision_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(n),
            Either::Text(t) if t.is_empty() => Ok(0),
            Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A fresh random uid (UUID v4, as Kubernetes).
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Annotation keys drover itself writes.
pub mod annotations {
    /// Path of the unit file an object was loaded from (units folder only).
    pub const SOURCE_FILE: &str = "drover.io/source-file";
    /// Hash of that file's content when it was applied.
    pub const SOURCE_HASH: &str = "drover.io/source-hash";
    /// `drover restart rs/NAME`: pods created before this instant are
    /// replaced one at a time.
    pub const RESTARTED_AT: &str = "drover.io/restarted-at";
    /// Set to [`UNITS_DIR`] on objects loaded from the units folder: those
    /// belong to their file (a removed file deletes its unit).
    pub const MANAGED_BY: &str = "drover.io/managed-by";
    /// In a cluster: the node whose units folder an object came from (each
    /// node's folder manages only its own units).
    pub const SOURCE_NODE: &str = "drover.io/source-node";
    pub const UNITS_DIR: &str = "units-dir";
    /// Who made the last change to the object through the API, from the
    /// kernel's credentials of the caller: "uid 1001 (alice)"; "units
    /// folder" for what the units folder applied.
    pub const CHANGED_BY: &str = "drover.io/changed-by";
}
