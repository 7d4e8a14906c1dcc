//! ReplicaSets and ReplicationControllers: N copies of a pod template.

use super::{LabelSelector, Labels, ObjectMeta, PodSpec};
use serde::{Deserialize, Serialize};

/// `spec.template`: the labels every pod gets, and the pod spec itself
/// flattened beside them (as in the unit files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodTemplate {
    #[serde(default)]
    pub labels: Labels,
    #[serde(flatten)]
    pub spec: PodSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSetSpec {
    pub replicas: u32,
    pub selector: LabelSelector,
    pub template: PodTemplate,
    /// Accepts a selector with no positive term (no `match_labels`, no
    /// `In` or `Exists` expression), which adopts every unmanaged pod on
    /// the host it matches: drover has no namespaces to contain it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_broad_selector: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSetStatus {
    pub replicas: u32,
    pub ready_replicas: u32,
    #[serde(default)]
    pub observed_generation: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSet {
    pub metadata: ObjectMeta,
    pub spec: ReplicaSetSpec,
    #[serde(default)]
    pub status: ReplicaSetStatus,
}

/// A ReplicationController's selector is a plain label map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicationControllerSpec {
    pub replicas: u32,
    pub selector: Labels,
    pub template: PodTemplate,
    /// Accepts an empty selector (see [`ReplicaSetSpec::allow_broad_selector`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_broad_selector: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicationController {
    pub metadata: ObjectMeta,
    pub spec: ReplicationControllerSpec,
    #[serde(default)]
    pub status: ReplicaSetStatus,
}
