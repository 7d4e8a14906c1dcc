//! The object model users see: Pod, ReplicaSet, ReplicationController, Job,
//! CronJob, Node, Event and their specs and statuses, serialised in the snake_case JSON
//! shape of product.md §4.
//!
//! This layer owns types and pure helpers (label selection, durations) only:
//! no I/O, no clocks, no processes. Everything else depends on it; it depends
//! on nothing inside drover.

pub mod daemonset;
pub mod duration;
pub mod event;
pub mod http;
pub mod job;
pub mod meta;
pub mod node;
pub mod object;
pub mod pod;
pub mod reason;
pub mod replicaset;
pub mod resources;
pub mod selector;
pub mod signal;

pub use daemonset::{DaemonSet, DaemonSetSpec, DaemonSetStatus};
pub use duration::Dur;
pub use event::{Event, EventType, InvolvedObject};
pub use job::{
    CompletionMode, ConcurrencyPolicy, CronJob, CronJobSpec, CronJobStatus, Job, JobCondition,
    JobConditionType, JobRef, JobSpec, JobStatus, JobTemplate,
};
pub use meta::{annotations, Kind, Labels, ObjectMeta, OwnerRef};
pub use node::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus};
pub use object::Object;
pub use pod::*;
pub use reason::ProcessReason;
pub use replicaset::*;
pub use resources::{CpuQuantity, MemoryQuantity, Resources, RlimitValue, Umask};
pub use selector::{LabelSelector, Operator, Requirement};
pub use signal::{ParseSignalError, Signal};
