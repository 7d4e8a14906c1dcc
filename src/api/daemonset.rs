//! DaemonSets: one copy of a pod template on every enrolled node that
//! matches the template's `node_selector` (cordoned nodes included: a
//! DaemonSet bypasses the scheduler).

use super::{LabelSelector, ObjectMeta, PodTemplate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonSetSpec {
    pub selector: LabelSelector,
    pub template: PodTemplate,
    /// Accepts a selector with no positive term (see
    /// [`ReplicaSetSpec::allow_broad_selector`](super::ReplicaSetSpec)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_broad_selector: bool,
}

/// Kubernetes' DaemonSet status fields, snake_case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSetStatus {
    /// Nodes that should run the pod.
    #[serde(default)]
    pub desired_number_scheduled: u32,
    /// Nodes that run (or are starting) the pod.
    #[serde(default)]
    pub current_number_scheduled: u32,
    /// Nodes whose pod is ready.
    #[serde(default)]
    pub number_ready: u32,
    #[serde(default)]
    pub observed_generation: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonSet {
    pub metadata: ObjectMeta,
    pub spec: DaemonSetSpec,
    #[serde(default)]
    pub status: DaemonSetStatus,
}
