//! Test fixtures for controller tests, in the style of kube-rs controller-rs
//! `fixtures.rs`: small constructors plus chainable setters, so a case reads
//! as the situation it sets up:
//!
//! ```ignore
//! pod("web-1").labels(&[("app", "web")]).owned_by(&web).on("n1").ready().created_at(t(10))
//! rs("web", 3).selector(&[("app", "web")])
//! node("n1").labels(&[("disk", "ssd")]).unschedulable()
//! ```
//!
//! Every object gets a deterministic uid (`uid-<name>`) and creation time
//! [`T0`], so tests never depend on randomness or the clock.

use crate::api::{default_grace, meta::annotations, Kind};
use crate::api::{DaemonSet, DaemonSetSpec, DaemonSetStatus};
use crate::api::{
    LabelSelector, Labels, Node, NodeCondition, NodeSpec, NodeStatus, ObjectMeta, OwnerRef, Pod,
    PodPhase, PodSpec, PodStatus, PodTemplate, ProcessSpec, ProcessState, ProcessStatus,
    ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, ReplicationController, ReplicationControllerSpec,
    RestartPolicy,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The instant every fixture is created at unless told otherwise.
pub const T0_SECS: i64 = 1_700_000_000;

/// `T0 + secs`.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(T0_SECS, 0).unwrap() + Duration::seconds(secs)
}

/// Borrows every item: the controllers take `&[&Pod]`, `&[&Node]` and
/// `&[&Job]`, as the daemon hands them objects still in its store.
pub fn refs<T>(items: &[T]) -> Vec<&T> {
    items.iter().collect()
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        resource_version: 0,
        name: name.to_string(),
        uid: format!("uid-{name}"),
        labels: Labels::new(),
        annotations: Labels::new(),
        owner_references: Vec::new(),
        creation_timestamp: t(0),
        generation: 1,
        deletion_timestamp: None,
    }
}

/// One process, `main`, restarting always.
pub fn pod_spec() -> PodSpec {
    PodSpec {
        node_selector: Labels::new(),
        restart_policy: RestartPolicy::Always,
        termination_grace_period: default_grace(),
        ports: Vec::new(),
        init_processes: Vec::new(),
        processes: vec![ProcessSpec {
            name: "main".into(),
            command: vec!["sleep".into(), "infinity".into()],
            user: None,
            group: None,
            working_dir: None,
            env: Default::default(),
            notify: false,
            watchdog: None,
            liveness: None,
            readiness: None,
            startup: None,
            ..Default::default()
        }],
    }
}

/// Anything that can be a pod's controller.
pub trait AsOwner {
    fn as_owner(&self) -> OwnerRef;
}

impl AsOwner for OwnerRef {
    fn as_owner(&self) -> OwnerRef {
        self.clone()
    }
}

impl AsOwner for ReplicaSet {
    fn as_owner(&self) -> OwnerRef {
        OwnerRef {
            kind: Kind::ReplicaSet,
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
        }
    }
}

impl AsOwner for ReplicationController {
    fn as_owner(&self) -> OwnerRef {
        OwnerRef {
            kind: Kind::ReplicationController,
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
        }
    }
}

impl AsOwner for DaemonSet {
    fn as_owner(&self) -> OwnerRef {
        OwnerRef {
            kind: Kind::DaemonSet,
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
        }
    }
}

// ---------------------------------------------------------------- pods

/// A Pending, unbound, unowned pod with no labels, created at `t(0)`.
pub fn pod(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: pod_spec(),
        status: PodStatus::default(),
    }
}

/// Chainable setters for [`Pod`] fixtures.
pub trait PodFixture: Sized {
    fn labels(self, pairs: &[(&str, &str)]) -> Self;
    fn owned_by(self, owner: &impl AsOwner) -> Self;
    /// Bound to `node` (`status.node_name`).
    fn on(self, node: &str) -> Self;
    fn node_selector(self, pairs: &[(&str, &str)]) -> Self;
    /// Phase Running, every process running but not ready.
    fn running(self) -> Self;
    /// Phase Running, every process running and ready.
    fn ready(self) -> Self;
    fn succeeded(self) -> Self;
    fn failed(self) -> Self;
    /// Restart count `n` on the first process.
    fn restarted(self, n: u32) -> Self;
    fn created_at(self, at: DateTime<Utc>) -> Self;
    fn terminating(self, at: DateTime<Utc>) -> Self;
}

fn process_statuses(pod: &mut Pod, ready: bool) {
    let restarts: Vec<u32> = pod
        .status
        .processes
        .iter()
        .map(|p| p.restart_count)
        .collect();
    pod.status.processes = pod
        .spec
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| ProcessStatus {
            pid: Some(1000 + i as u32),
            ready,
            started: true,
            restart_count: restarts.get(i).copied().unwrap_or(0),
            state: ProcessState::Running {
                started_at: pod.metadata.creation_timestamp,
            },
            ..ProcessStatus::waiting(&p.name, "")
        })
        .collect();
}

impl PodFixture for Pod {
    fn labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.metadata.labels = labels(pairs);
        self
    }
    fn owned_by(mut self, owner: &impl AsOwner) -> Self {
        self.metadata.owner_references = vec![owner.as_owner()];
        self
    }
    fn on(mut self, node: &str) -> Self {
        self.status.node_name = Some(node.to_string());
        self
    }
    fn node_selector(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.node_selector = labels(pairs);
        self
    }
    fn running(mut self) -> Self {
        self.status.phase = PodPhase::Running;
        process_statuses(&mut self, false);
        self
    }
    fn ready(mut self) -> Self {
        self.status.phase = PodPhase::Running;
        process_statuses(&mut self, true);
        self
    }
    fn succeeded(mut self) -> Self {
        self.status.phase = PodPhase::Succeeded;
        self
    }
    fn failed(mut self) -> Self {
        self.status.phase = PodPhase::Failed;
        self
    }
    fn restarted(mut self, n: u32) -> Self {
        if self.status.processes.is_empty() {
            self.status.processes = self
                .spec
                .processes
                .iter()
                .map(|p| ProcessStatus::waiting(&p.name, "CrashLoopBackOff"))
                .collect();
        }
        self.status.processes[0].restart_count = n;
        self
    }
    fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.metadata.creation_timestamp = at;
        self
    }
    fn terminating(mut self, at: DateTime<Utc>) -> Self {
        self.metadata.deletion_timestamp = Some(at);
        self
    }
}

// ------------------------------------------------- replica controllers

/// A ReplicaSet selecting and templating `app=<name>`.
pub fn rs(name: &str, replicas: u32) -> ReplicaSet {
    let app = labels(&[("app", name)]);
    ReplicaSet {
        metadata: meta(name),
        spec: ReplicaSetSpec {
            replicas,
            selector: LabelSelector::from_labels(app.clone()),
            template: PodTemplate {
                labels: app,
                spec: pod_spec(),
            },
            allow_broad_selector: false,
        },
        status: ReplicaSetStatus::default(),
    }
}

/// A ReplicationController selecting and templating `app=<name>`.
pub fn rc(name: &str, replicas: u32) -> ReplicationController {
    let app = labels(&[("app", name)]);
    ReplicationController {
        metadata: meta(name),
        spec: ReplicationControllerSpec {
            replicas,
            selector: app.clone(),
            template: PodTemplate {
                labels: app,
                spec: pod_spec(),
            },
            allow_broad_selector: false,
        },
        status: ReplicaSetStatus::default(),
    }
}

/// Chainable setters for [`ReplicaSet`] fixtures.
pub trait ReplicaSetFixture: Sized {
    /// `match_labels`, and the same labels on the template.
    fn selector(self, pairs: &[(&str, &str)]) -> Self;
    fn template_labels(self, pairs: &[(&str, &str)]) -> Self;
    fn node_selector(self, pairs: &[(&str, &str)]) -> Self;
    fn generation(self, g: u64) -> Self;
    fn restarted_at(self, at: DateTime<Utc>) -> Self;
    fn deleting(self, at: DateTime<Utc>) -> Self;
}

impl ReplicaSetFixture for ReplicaSet {
    fn selector(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.selector = LabelSelector::from_labels(labels(pairs));
        self.spec.template.labels = labels(pairs);
        self
    }
    fn template_labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.template.labels = labels(pairs);
        self
    }
    fn node_selector(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.template.spec.node_selector = labels(pairs);
        self
    }
    fn generation(mut self, g: u64) -> Self {
        self.metadata.generation = g;
        self
    }
    fn restarted_at(mut self, at: DateTime<Utc>) -> Self {
        self.metadata
            .annotations
            .insert(annotations::RESTARTED_AT.to_string(), at.to_rfc3339());
        self
    }
    fn deleting(mut self, at: DateTime<Utc>) -> Self {
        self.metadata.deletion_timestamp = Some(at);
        self
    }
}

// ---------------------------------------------------------------- nodes

/// A Ready, schedulable node with no labels.
pub fn node(name: &str) -> Node {
    Node {
        metadata: meta(name),
        spec: NodeSpec::default(),
        status: NodeStatus {
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(t(0)),
                ..NodeCondition::default()
            }],
            drover_version: String::new(),
            ..NodeStatus::default()
        },
    }
}

/// Chainable setters for [`Node`] fixtures.
pub trait NodeFixture: Sized {
    fn labels(self, pairs: &[(&str, &str)]) -> Self;
    /// Cordoned.
    fn unschedulable(self) -> Self;
    /// Ready condition `False` (lease expired).
    fn not_ready(self) -> Self;
}

impl NodeFixture for Node {
    fn labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.metadata.labels = labels(pairs);
        self
    }
    fn unschedulable(mut self) -> Self {
        self.spec.unschedulable = true;
        self
    }
    fn not_ready(mut self) -> Self {
        for c in &mut self.status.conditions {
            if c.type_ == "Ready" {
                c.status = "False".into();
            }
        }
        self
    }
}

// ----------------------------------------------------------- daemonsets

/// A DaemonSet selecting and templating `app=<name>`, on every node.
pub fn ds(name: &str) -> DaemonSet {
    let app = labels(&[("app", name)]);
    DaemonSet {
        metadata: meta(name),
        spec: DaemonSetSpec {
            selector: LabelSelector::from_labels(app.clone()),
            template: PodTemplate {
                labels: app,
                spec: pod_spec(),
            },
            allow_broad_selector: false,
        },
        status: DaemonSetStatus::default(),
    }
}

/// Chainable setters for [`DaemonSet`] fixtures.
pub trait DaemonSetFixture: Sized {
    fn node_selector(self, pairs: &[(&str, &str)]) -> Self;
    fn deleting(self, at: DateTime<Utc>) -> Self;
}

impl DaemonSetFixture for DaemonSet {
    fn node_selector(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.template.spec.node_selector = labels(pairs);
        self
    }
    fn deleting(mut self, at: DateTime<Utc>) -> Self {
        self.metadata.deletion_timestamp = Some(at);
        self
    }
}
