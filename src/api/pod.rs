//! Pods: one or more processes started together on one node.

use super::{Dur, Labels, ObjectMeta, ProcessReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// What a pod is: the body of a Pod unit's `[spec]` and of every
/// controller's `spec.template` (minus the template's labels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    #[serde(default)]
    pub node_selector: Labels,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default = "default_grace")]
    pub termination_grace_period: Dur,
    #[serde(default)]
    pub ports: Vec<PortRequest>,
    /// Kubernetes' initContainers: run one after another to completion
    /// before any of `processes` starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_processes: Vec<ProcessSpec>,
    pub processes: Vec<ProcessSpec>,
}

impl Default for PodSpec {
    /// No processes yet, every field at its unit-file default.
    fn default() -> PodSpec {
        PodSpec {
            node_selector: Labels::new(),
            restart_policy: RestartPolicy::default(),
            termination_grace_period: default_grace(),
            ports: Vec::new(),
            init_processes: Vec::new(),
            processes: Vec::new(),
        }
    }
}

impl PodSpec {
    /// Init processes first, then the processes: the order in which the
    /// node agent numbers a pod's processes (its process index).
    pub fn all_processes(&self) -> impl Iterator<Item = &ProcessSpec> {
        self.init_processes.iter().chain(&self.processes)
    }

    /// Init processes and processes together.
    pub fn process_count(&self) -> usize {
        self.init_processes.len() + self.processes.len()
    }

    /// The process at index `idx` of [`PodSpec::all_processes`].
    pub fn process_at(&self, idx: usize) -> Option<&ProcessSpec> {
        match idx.checked_sub(self.init_processes.len()) {
            None => self.init_processes.get(idx),
            Some(i) => self.processes.get(i),
        }
    }

    /// Whether index `idx` is an init process.
    pub fn is_init(&self, idx: usize) -> bool {
        idx < self.init_processes.len()
    }
}

pub fn default_grace() -> Dur {
    Dur::secs(30)
}

/// `ports = [{ name = "http", range = "8080-8099" }]`: one free port from the
/// range per pod, exported to its processes as `PORT_HTTP`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub name: String,
    pub range: PortRange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parse = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{t}` is not a port number (1-65535)"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(&s)?;
                (p, p)
            }
        };
        if first == 0 || first > last {
            return Err(format!(
                "port range `{s}` is empty: write it as \"FIRST-LAST\" with 1 <= FIRST <= LAST"
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub name: String,
    /// argv; no shell. `${VAR}` expands from the process environment.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub notify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
    /// Memory, CPU and pid limits, enforced through the pod's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<super::Resources>,
    /// setrlimit before exec, by name (`nofile`, `core`, `nproc`,
    /// `memlock`, `stack`, ...): soft and hard limit alike.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rlimits: BTreeMap<String, super::RlimitValue>,
    /// The file mode creation mask (default 0022).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<super::Umask>,
    /// For daemons that fork themselves: the started process exits 0
    /// after forking, and the one named in this file is supervised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,
    /// Kubernetes' securityContext.allowPrivilegeEscalation: `true` leaves
    /// no_new_privs off (setuid binaries work). Root-owned units only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_privilege_escalation: bool,
}

/// The names `rlimits` accepts: setrlimit(2)'s RLIMIT_* resources, lower
/// case, without the prefix (`nofile` is RLIMIT_NOFILE).
pub const RLIMIT_NAMES: &[&str] = &[
    "nofile",
    "core",
    "nproc",
    "memlock",
    "stack",
    "fsize",
    "as",
    "cpu",
    "data",
    "msgqueue",
    "nice",
    "rtprio",
    "sigpending",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    #[serde(flatten)]
    pub handler: ProbeHandler,
    #[serde(default)]
    pub initial_delay: Dur,
    #[serde(default = "default_period")]
    pub period: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    #[serde(default = "default_one")]
    pub success_threshold: u32,
    #[serde(default = "default_three")]
    pub failure_threshold: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<Dur>,
}

fn default_period() -> Dur {
    Dur::secs(10)
}
fn default_timeout() -> Dur {
    Dur::secs(1)
}
fn default_one() -> u32 {
    1
}
fn default_three() -> u32 {
    3
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeHandler {
    HttpGet {
        #[serde(default = "default_path")]
        path: String,
        port: PortRef,
        #[serde(default = "default_host")]
        host: String,
        #[serde(default = "default_scheme")]
        scheme: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    TcpSocket {
        port: PortRef,
        #[serde(default = "default_host")]
        host: String,
    },
    Exec {
        command: Vec<String>,
    },
}

fn default_path() -> String {
    "/".into()
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_scheme() -> String {
    "http".into()
}

/// A probe's port: a number, or the name of one of the pod's `ports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodStatus {
    pub phase: PodPhase,
    /// The node the pod is bound to; set once, by the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Ports allocated from the spec's ranges, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// Why the pod is not running, when that is about the pod as a whole
    /// (e.g. `Unschedulable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub processes: Vec<ProcessStatus>,
    /// The init processes, in spec order, same shape as `processes`
    /// (Kubernetes' `initContainerStatuses`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_processes: Vec<ProcessStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub name: String,
    /// Always present (null when not running): the documented shape.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub started: bool,
    #[serde(default)]
    pub restart_count: u32,
    pub state: ProcessState,
    /// Always present (null before the first exit).
    #[serde(default)]
    pub last_state: Option<TerminatedState>,
    /// Identity of `pid` for re-adoption after a daemon restart: the
    /// process start time in clock ticks since boot (/proc/PID/stat field 22)
    /// and the boot id it refers to. A pid alone may have been reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ProcessIdentity>,
    /// `STATUS=` from sd_notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// CPU and memory of the running process, measured by the daemon when
    /// the API is asked for them (`?usage=true`); never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ProcessUsage>,
}

/// What a running process uses now, read by the node's daemon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// CPU time consumed so far (user + system), seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub memory_bytes: u64,
}

impl ProcessStatus {
    pub fn waiting(name: &str, reason: impl Into<ProcessReason>) -> ProcessStatus {
        ProcessStatus {
            name: name.to_string(),
            pid: None,
            ready: false,
            started: false,
            restart_count: 0,
            state: ProcessState::Waiting {
                reason: reason.into(),
                message: None,
            },
            last_state: None,
            identity: None,
            notify_status: None,
            usage: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub start_ticks: u64,
    pub boot_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    Running {
        started_at: DateTime<Utc>,
    },
    Waiting {
        reason: ProcessReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Terminated(TerminatedState),
}

/// How a process run ended. `exit_code` follows shells: 128 + N after
/// signal N (137 after SIGKILL, 143 after SIGTERM); `signal` names N.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TerminatedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub reason: ProcessReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

impl Pod {
    /// The status of the process at index `idx` of
    /// [`PodSpec::all_processes`] (init processes first).
    pub fn process_status(&self, idx: usize) -> Option<&ProcessStatus> {
        match idx.checked_sub(self.spec.init_processes.len()) {
            None => self.status.init_processes.get(idx),
            Some(i) => self.status.processes.get(i),
        }
    }

    pub fn process_status_mut(&mut self, idx: usize) -> Option<&mut ProcessStatus> {
        match idx.checked_sub(self.spec.init_processes.len()) {
            None => self.status.init_processes.get_mut(idx),
            Some(i) => self.status.processes.get_mut(i),
        }
    }

    /// READY column: processes ready / processes.
    pub fn ready_count(&self) -> (usize, usize) {
        let ready = self.status.processes.iter().filter(|p| p.ready).count();
        (ready, self.spec.processes.len())
    }

    pub fn is_ready(&self) -> bool {
        let (r, n) = self.ready_count();
        self.status.phase == PodPhase::Running && r == n && n > 0
    }

    /// Restarts of every process, init processes included (kubectl).
    pub fn restarts(&self) -> u32 {
        self.status
            .init_processes
            .iter()
            .chain(&self.status.processes)
            .map(|p| p.restart_count)
            .sum()
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.status.phase, PodPhase::Succeeded | PodPhase::Failed)
    }

    /// STATUS column as kubectl computes it: a waiting or terminated
    /// process's reason wins over the phase; "Terminating" while deleting.
    pub fn display_status(&self) -> String {
        if self.metadata.deletion_timestamp.is_some() {
            return "Terminating".into();
        }
        if let Some(init) = self.init_status() {
            return init;
        }
        if self.is_terminal() {
            return match self.status.phase {
                PodPhase::Succeeded => "Completed".into(),
                _ => self
                    .status
                    .processes
                    .iter()
                    .find_map(|p| match &p.state {
                        ProcessState::Terminated(t) => Some(t.reason.to_string()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "Failed".into()),
            };
        }
        for p in &self.status.processes {
            if let ProcessState::Waiting { reason, .. } = &p.state {
                if *reason != ProcessReason::ContainerCreating
                    || self.status.phase == PodPhase::Running
                {
                    return reason.to_string();
                }
            }
        }
        if let Some(r) = &self.status.reason {
            return r.clone();
        }
        format!("{:?}", self.status.phase)
    }

    /// STATUS while the init processes have not all completed, as
    /// kubectl prints it: `Init:1/2` (the second one runs or is next),
    /// `Init:CrashLoopBackOff` (one waits to be restarted), `Init:Error`
    /// or `Init:OOMKilled` (one failed for good: its reason). None once
    /// they all exited 0 (or there are none).
    fn init_status(&self) -> Option<String> {
        let n = self.spec.init_processes.len();
        for i in 0..n {
            let Some(st) = self.status.init_processes.get(i) else {
                return Some(format!("Init:{i}/{n}"));
            };
            return Some(match &st.state {
                ProcessState::Terminated(t) if t.exit_code == Some(0) => continue,
                ProcessState::Terminated(t) => format!("Init:{}", t.reason),
                ProcessState::Waiting { reason, .. }
                    if *reason != ProcessReason::ContainerCreating =>
                {
                    format!("Init:{reason}")
                }
                ProcessState::Waiting { .. } | ProcessState::Running { .. } => {
                    format!("Init:{i}/{n}")
                }
            });
        }
        None
    }
}
