//! What a reconcile proposes: a list of [`Op`]s for the executor to carry
//! out through the store, and the status the controller should report.
//!
//! Plans are data. Nothing here touches the store, a clock or a process;
//! the executor (in `daemon`) applies them and turns failures into requeues.

use crate::api::{OwnerRef, Pod, ReplicaSetStatus};

/// The `reason` strings a controller attaches to [`Op::DeletePod`], also
/// usable as the event reason the executor records.
pub mod reasons {
    /// An owned pod reached Succeeded or Failed; delete it so finished pods
    /// don't pile up (a replacement is created in the same pass).
    pub const POD_TERMINATED: &str = "pod terminated";
    /// More active pods match than `replicas` asks for (scale down, or
    /// surplus after adoption).
    pub const SURPLUS: &str = "surplus";
    /// `drover restart rs NAME`: an outdated pod replaced one at a time.
    pub const RESTART: &str = "restart";
    /// `status.reason` of a pod created while no node fits it.
    pub const UNSCHEDULABLE: &str = "Unschedulable";
}

/// One change to the store. Pods are named, not identified by uid: names are
/// unique among live pods, and the executor resolves them when applying.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Op {
    /// The executor assigns name (generate_name + 5 random lowercase alnum
    /// chars), uid and timestamps. `pod` carries the template's labels and
    /// spec, `owner_references = [owner]`, and `status.node_name` set by the
    /// scheduler, or `None` with `status.reason = "Unschedulable"` and the
    /// scheduler's message when no node fits.
    CreatePod { generate_name: String, pod: Pod },
    /// Start stopping a pod (set its deletion timestamp; the agent stops it).
    DeletePod { name: String, reason: String },
    /// Record `owner` as the pod's controller.
    Adopt { name: String, owner: OwnerRef },
    /// Remove the pod's controller: it keeps running, unmanaged.
    Release { name: String },
}

impl Op {
    /// The pod an op is about (`None` for a create: it has no name yet).
    pub fn pod_name(&self) -> Option<&str> {
        match self {
            Op::CreatePod { .. } => None,
            Op::DeletePod { name, .. } | Op::Adopt { name, .. } | Op::Release { name } => {
                Some(name)
            }
        }
    }
}

/// The outcome of one reconcile pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// In the order to apply them: adopt/release first, then deletes of
    /// terminal pods, then creates or deletes.
    pub ops: Vec<Op>,
    /// What the controller observed before this pass's ops (Kubernetes
    /// computes status from the same snapshot it acted on).
    pub status: ReplicaSetStatus,
    /// The pass was cut short by the burst cap: run the controller again
    /// soon, even if nothing else changes (Kubernetes requeues the set when
    /// its diff exceeds `burstReplicas`).
    pub requeue: bool,
}

impl Plan {
    /// True when the observed state already is the desired state.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
