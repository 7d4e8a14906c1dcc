//! The unit file schema: one raw struct per TOML table, as written, every
//! value with its position ([`Val`]), every field optional so that a
//! missing one is the validator's diagnostic, not serde's. These structs
//! are the schema: the "expected one of" lists and the did-you-mean
//! candidates are their serde field lists ([`super::serde_names::fields_of`]).
//!
//! A unit is read twice: first only its `kind` ([`RawKind`]), then the
//! whole file as [`RawUnit`] with the `[spec]` of that kind (serde cannot
//! pick a field's type by a sibling's value without buffering the table,
//! which would lose the positions).

use super::spanned::{Map, Scalar, Table, Val};
use serde::Deserialize;

type Str = Option<Val<String>>;
type Int = Option<Val<i64>>;
type Bool = Option<Val<bool>>;
type Strings = Option<Val<Vec<Val<String>>>>;
type StrMap = Option<Val<Map<String>>>;
type Sub<T> = Option<Val<Table<T>>>;
type SubList<T> = Option<Val<Vec<Val<Table<T>>>>>;

/// The first pass: only `kind`, every other key ignored.
#[derive(Deserialize, Debug)]
pub struct RawKind {
    pub kind: Str,
}

/// A whole unit file; `S` is the `[spec]` of its kind ([`RawUnknownSpec`]
/// when the kind is unknown).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, bound = "S: serde::de::DeserializeOwned")]
pub struct RawUnit<S> {
    pub kind: Str,
    pub api_version: Str,
    pub name: Str,
    pub labels: StrMap,
    pub spec: Sub<S>,
}

/// The spec of an unknown kind: not read (all its keys are "unknown" and
/// never reported).
#[derive(Deserialize, Debug)]
pub struct RawUnknownSpec {}

/// A Pod unit's `[spec]`: a pod template without labels (they are at the
/// top of the file).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPodSpec {
    pub node_selector: StrMap,
    pub restart_policy: Str,
    pub termination_grace_period: Str,
    pub ports: SubList<RawPort>,
    pub init_processes: SubList<RawProcess>,
    pub processes: SubList<RawProcess>,
}

/// A controller's `spec.template`: the pods' labels and a pod's fields.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    pub labels: StrMap,
    pub node_selector: StrMap,
    pub restart_policy: Str,
    pub termination_grace_period: Str,
    pub ports: SubList<RawPort>,
    pub init_processes: SubList<RawProcess>,
    pub processes: SubList<RawProcess>,
}

/// One of `ports`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    pub name: Str,
    /// "8080-8099", "8080" or 8080.
    pub range: Option<Val<Scalar>>,
}

/// One of `processes` or `init_processes`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub name: Str,
    pub command: Option<Val<Command>>,
    pub user: Str,
    pub group: Str,
    pub working_dir: Str,
    pub env: StrMap,
    pub notify: Bool,
    pub watchdog: Str,
    pub resources: Sub<RawResources>,
    pub rlimits: Option<Val<Map<Scalar>>>,
    pub umask: Str,
    pub pid_file: Str,
    pub allow_privilege_escalation: Bool,
    pub liveness: Sub<RawProbe>,
    pub readiness: Sub<RawProbe>,
    pub startup: Sub<RawProbe>,
}

/// `command`: an argv, or (a mistake with its own suggestion) a shell line.
#[derive(Debug)]
pub enum Command {
    Argv(Vec<Val<String>>),
    Line(String),
}

impl super::spanned::Shape for Command {
    const EXPECTED: &'static str = "an array of strings";
    fn from_string(s: String) -> Option<Self> {
        Some(Command::Line(s))
    }
    fn from_seq<'de, A: serde::de::SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        Ok(<Vec<Val<String>> as super::spanned::Shape>::from_seq(seq)?.map(Command::Argv))
    }
}

/// `resources = { memory = "256Mi", cpu = "0.5", pids = 100 }`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub memory: Option<Val<Scalar>>,
    pub cpu: Option<Val<Scalar>>,
    pub pids: Int,
}

/// A liveness, readiness or startup probe.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub http_get: Sub<RawHttpGet>,
    pub tcp_socket: Sub<RawTcpSocket>,
    pub exec: Sub<RawExec>,
    pub initial_delay: Str,
    pub period: Str,
    pub timeout: Str,
    pub success_threshold: Int,
    pub failure_threshold: Int,
    pub termination_grace_period: Str,
}

/// The probe fields that say how to probe; exactly one is given.
pub const PROBE_HANDLERS: &[&str] = &["http_get", "tcp_socket", "exec"];

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawHttpGet {
    pub path: Str,
    pub port: Option<Val<Scalar>>,
    pub host: Str,
    pub scheme: Str,
    pub headers: StrMap,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawTcpSocket {
    pub port: Option<Val<Scalar>>,
    pub host: Str,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub command: Strings,
}

/// A ReplicaSet's or DaemonSet's `spec.selector`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawSelector {
    pub match_labels: StrMap,
    pub match_expressions: SubList<RawRequirement>,
}

/// One of `match_expressions`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    pub key: Str,
    pub operator: Str,
    pub values: Strings,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawReplicaSetSpec {
    pub replicas: Int,
    pub selector: Sub<RawSelector>,
    pub template: Sub<RawTemplate>,
    pub allow_broad_selector: Bool,
}

/// A ReplicationController's selector is a plain label map.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawReplicationControllerSpec {
    pub replicas: Int,
    pub selector: StrMap,
    pub template: Sub<RawTemplate>,
    pub allow_broad_selector: Bool,
}

/// A DaemonSet: a ReplicaSet's selector and template, one pod per node.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawDaemonSetSpec {
    pub selector: Sub<RawSelector>,
    pub template: Sub<RawTemplate>,
    pub allow_broad_selector: Bool,
}

/// A Job's `[spec]`, and a CronJob's `spec.job_template.spec`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawJobSpec {
    pub completions: Int,
    pub parallelism: Int,
    pub backoff_limit: Int,
    pub backoff_initial: Str,
    pub backoff_max: Str,
    pub active_deadline: Str,
    pub ttl_after_finished: Str,
    pub completion_mode: Str,
    pub suspend: Bool,
    pub template: Sub<RawTemplate>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawCronJobSpec {
    pub schedule: Str,
    pub time_zone: Str,
    pub concurrency_policy: Str,
    pub starting_deadline: Str,
    pub suspend: Bool,
    pub successful_jobs_history_limit: Int,
    pub failed_jobs_history_limit: Int,
    pub job_template: Sub<RawJobTemplate>,
}

/// A CronJob's `spec.job_template`: the Job's labels and spec.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawJobTemplate {
    pub labels: StrMap,
    pub spec: Sub<RawJobSpec>,
}
