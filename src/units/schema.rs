//! The unit file schema: every table's fields and every enum's values. The
//! "expected one of" lists and the did-you-mean candidates come from here.

/// The top level of every unit file.
pub const TOP: &[&str] = &["kind", "api_version", "name", "labels", "spec"];

/// A pod's fields: a Pod unit's `[spec]`.
pub const POD_SPEC: &[&str] = &[
    "node_selector",
    "restart_policy",
    "termination_grace_period",
    "ports",
    "processes",
];

/// A controller's `spec.template`: the pod's labels, then a pod's fields.
pub const TEMPLATE: &[&str] = &[
    "labels",
    "node_selector",
    "restart_policy",
    "termination_grace_period",
    "ports",
    "processes",
];

/// ReplicaSet and ReplicationController `[spec]`.
pub const SET_SPEC: &[&str] = &["replicas", "selector", "template"];

/// A Job's `[spec]`, and a CronJob's `spec.job_template.spec`.
pub const JOB_SPEC: &[&str] = &[
    "completions",
    "parallelism",
    "backoff_limit",
    "backoff_initial",
    "backoff_max",
    "active_deadline",
    "ttl_after_finished",
    "completion_mode",
    "suspend",
    "template",
];

/// A CronJob's `[spec]`.
pub const CRONJOB_SPEC: &[&str] = &[
    "schedule",
    "time_zone",
    "concurrency_policy",
    "starting_deadline",
    "suspend",
    "successful_jobs_history_limit",
    "failed_jobs_history_limit",
    "job_template",
];

/// A CronJob's `spec.job_template`: the Job's labels and spec.
pub const JOB_TEMPLATE: &[&str] = &["labels", "spec"];

/// A ReplicaSet's `spec.selector`.
pub const SELECTOR: &[&str] = &["match_labels", "match_expressions"];

/// One of `match_expressions`.
pub const REQUIREMENT: &[&str] = &["key", "operator", "values"];

/// One of `ports`.
pub const PORT: &[&str] = &["name", "range"];

/// One of `processes`.
pub const PROCESS: &[&str] = &[
    "name",
    "command",
    "user",
    "group",
    "working_dir",
    "env",
    "notify",
    "watchdog",
    "resources",
    "liveness",
    "readiness",
    "startup",
];

/// A liveness, readiness or startup probe.
pub const PROBE: &[&str] = &[
    "http_get",
    "tcp_socket",
    "exec",
    "initial_delay",
    "period",
    "timeout",
    "success_threshold",
    "failure_threshold",
    "termination_grace_period",
];

/// The probe fields that say how to probe; exactly one is given.
pub const PROBE_HANDLERS: &[&str] = &["http_get", "tcp_socket", "exec"];

pub const HTTP_GET: &[&str] = &["path", "port", "host", "scheme", "headers"];
pub const TCP_SOCKET: &[&str] = &["port", "host"];
pub const EXEC: &[&str] = &["command"];

/// Every kind a unit file may name, in the order users read them.
pub const KINDS: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "ReplicationController",
    "DaemonSet",
    "Job",
    "CronJob",
];

/// Kinds this version loads; the others are reported as "not supported yet".
pub const SUPPORTED_KINDS: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

pub const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
/// What a Job's pods may do when a process fails.
pub const JOB_RESTART_POLICIES: &[&str] = &["OnFailure", "Never"];
pub const COMPLETION_MODES: &[&str] = &["NonIndexed", "Indexed"];
pub const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
pub const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
/// Probe schemes. https needs a TLS client, which drover does not carry
/// yet: refusing it here beats a probe that fails forever and restarts the
/// process in a loop.
pub const SCHEMES: &[&str] = &["http"];

/// Variables a `${VAR}` in `command` may name besides the process's `env`
/// and the pod's `PORT_<NAME>`: what drover sets for every process and what
/// every process inherits from its user and the daemon.
pub const DROVER_VARS: &[&str] = &["DROVER_POD_NAME", "DROVER_NODE_NAME", "DROVER_POD_UID"];
pub const INHERITED_VARS: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG"];

/// Longest object names: a DNS-1123 label for a Pod; 57 for a controller
/// so that `NAME-xxxxx` pod names still fit in 63.
pub const MAX_POD_NAME: usize = 63;
pub const MAX_SET_NAME: usize = 57;
/// A CronJob's Jobs are named `NAME-<10-digit unix time>` and must still
/// fit in 57.
pub const MAX_CRONJOB_NAME: usize = 46;
/// Port names follow Kubernetes' IANA service names: at most 15 characters.
pub const MAX_PORT_NAME: usize = 15;

/// "Pod, ReplicaSet, ReplicationController" for "expected one of: ...".
pub fn list(names: &[&str]) -> String {
    names.join(", ")
}

/// Names users bring from systemd, supervisord, docker or Kubernetes,
/// with drover's field for them (used when edit distance finds nothing).
pub const ALIASES: &[(&str, &str)] = &[
    ("cwd", "working_dir"),
    ("workdir", "working_dir"),
    ("working_directory", "working_dir"),
    ("directory", "working_dir"),
    ("environment", "env"),
    ("args", "command"),
    ("argv", "command"),
    ("cmd", "command"),
    ("exec_start", "command"),
    ("restart", "restart_policy"),
    ("grace_period", "termination_grace_period"),
    ("node_labels", "node_selector"),
    ("port", "ports"),
    ("process", "processes"),
    ("containers", "processes"),
    ("matchers", "match_expressions"),
    ("delay", "initial_delay"),
    ("interval", "period"),
    ("http", "http_get"),
    ("tcp", "tcp_socket"),
];
