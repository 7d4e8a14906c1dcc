//! Events: what happened to an object and why ("Liveness probe failed: ...").

use super::{Kind, ObjectMeta};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvolvedObject {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub metadata: ObjectMeta,
    pub involved_object: InvolvedObject,
    #[serde(rename = "type")]
    pub type_: EventType,
    pub reason: String,
    pub message: String,
    /// Repeats of the same (object, reason, message) fold into one event.
    pub count: u32,
    pub first_timestamp: DateTime<Utc>,
    pub last_timestamp: DateTime<Utc>,
    /// Which component reported it: `kubelet/NODE`, `replicaset-controller`.
    pub source: String,
}
