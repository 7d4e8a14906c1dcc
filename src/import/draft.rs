//! What a conversion produces before it is written: a drover unit (kind,
//! name, pod template) plus where each value came from, so that
//! [`super::emit`] can say so in comments.
//!
//! The process and pod fields reuse the api types (`ProcessSpec`,
//! `RestartPolicy`, `Dur`, ...), so values are typed and render exactly as
//! unit files spell them.

use crate::api::{ConcurrencyPolicy, Dur, PortRequest, ProcessSpec, RestartPolicy};
use std::collections::BTreeMap;

/// Where a field came from, as a comment shows it: "ExecStart=, line 22".
pub type Origins = BTreeMap<&'static str, String>;

/// One drover unit to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// A DNS-1123 label, also the file name (`NAME.toml`).
    pub name: String,
    pub kind: DraftKind,
    /// The unit's labels, which are also its pods' labels (and a set's
    /// selector).
    pub labels: BTreeMap<String, String>,
    pub pod: DraftPod,
    /// The files it came from, as the user named them.
    pub sources: Vec<String>,
    /// Lines for the comment at the top (description, documentation).
    pub about: Vec<String>,
    /// Where the kind's own fields (replicas, schedule, ...) came from.
    pub origin: Origins,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DraftKind {
    /// A systemd service, a supervisord program with numprocs=1.
    Pod,
    /// A supervisord program with numprocs > 1 (or autostart=false).
    ReplicaSet { replicas: u32 },
    /// A oneshot service: runs to completion once.
    Job { backoff_limit: u32 },
    /// A timer and its service.
    CronJob {
        schedule: String,
        time_zone: Option<String>,
        concurrency_policy: ConcurrencyPolicy,
        starting_deadline: Option<Dur>,
        backoff_limit: u32,
    },
}

impl DraftKind {
    /// The `kind` of the unit file.
    pub fn name(&self) -> &'static str {
        match self {
            DraftKind::Pod => "Pod",
            DraftKind::ReplicaSet { .. } => "ReplicaSet",
            DraftKind::Job { .. } => "Job",
            DraftKind::CronJob { .. } => "CronJob",
        }
    }

    /// How `drover wait` names it, and the condition that means "up".
    pub fn wait_target(&self, name: &str) -> (String, &'static str) {
        match self {
            DraftKind::Pod => (format!("pod/{name}"), "--for=condition=ready"),
            DraftKind::ReplicaSet { .. } => (format!("rs/{name}"), "--for=condition=ready"),
            DraftKind::Job { .. } | DraftKind::CronJob { .. } => {
                (format!("job/{name}"), "--for=condition=complete")
            }
        }
    }

    /// The longest name this kind allows (its pods and jobs get suffixes).
    pub fn max_name(&self) -> usize {
        match self {
            DraftKind::Pod => 63,
            DraftKind::ReplicaSet { .. } | DraftKind::Job { .. } => 57,
            DraftKind::CronJob { .. } => 46,
        }
    }
}

/// The pod every kind runs: a Pod's `[spec]`, a set's or job's template.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftPod {
    pub restart_policy: RestartPolicy,
    /// None: drover's default (30s).
    pub termination_grace_period: Option<Dur>,
    pub ports: Vec<PortRequest>,
    pub init_processes: Vec<DraftProcess>,
    pub processes: Vec<DraftProcess>,
    pub origin: Origins,
}

impl Default for DraftPod {
    fn default() -> DraftPod {
        DraftPod {
            restart_policy: RestartPolicy::Never,
            termination_grace_period: None,
            ports: Vec::new(),
            init_processes: Vec::new(),
            processes: Vec::new(),
            origin: Origins::new(),
        }
    }
}

/// One process (or init process) and where its fields came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DraftProcess {
    pub spec: ProcessSpec,
    pub origin: Origins,
}

impl DraftProcess {
    pub fn new(name: &str, command: Vec<String>) -> DraftProcess {
        DraftProcess {
            spec: ProcessSpec {
                name: name.to_string(),
                command,
                ..ProcessSpec::default()
            },
            origin: Origins::new(),
        }
    }

    pub fn from(mut self, field: &'static str, origin: impl Into<String>) -> DraftProcess {
        self.origin.insert(field, origin.into());
        self
    }
}

/// Fields of the unit format that a drover build may parse but not run
/// yet (the units loader refuses them by name until it does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    InitProcesses,
    PidFile,
    Resources,
}

impl Field {
    /// As unit files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Field::InitProcesses => "init_processes",
            Field::PidFile => "pid_file",
            Field::Resources => "resources",
        }
    }
}

impl Draft {
    /// Whether the unit uses `field`.
    pub fn uses(&self, field: Field) -> bool {
        let pod = &self.pod;
        let all = || pod.init_processes.iter().chain(&pod.processes);
        match field {
            Field::InitProcesses => !pod.init_processes.is_empty(),
            Field::PidFile => all().any(|p| p.spec.pid_file.is_some()),
            Field::Resources => all().any(|p| p.spec.resources.is_some()),
        }
    }

    /// The unit without `field`.
    pub fn without(&self, field: Field) -> Draft {
        let mut d = self.clone();
        let pod = &mut d.pod;
        match field {
            Field::InitProcesses => pod.init_processes.clear(),
            Field::PidFile => {
                for p in pod.init_processes.iter_mut().chain(&mut pod.processes) {
                    p.spec.pid_file = None;
                }
            }
            Field::Resources => {
                for p in pod.init_processes.iter_mut().chain(&mut pod.processes) {
                    p.spec.resources = None;
                }
            }
        }
        d
    }
}

/// "User=, line 11": the comment that says where a value came from.
pub fn origin(key: &str, line: usize) -> String {
    format!("{key}=, line {line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Resources;
    use std::path::PathBuf;

    #[test]
    fn fields_a_build_may_not_run_yet_can_be_taken_out() {
        let mut main = DraftProcess::new("main", vec!["/bin/x".into()]);
        main.spec.pid_file = Some(PathBuf::from("/run/x.pid"));
        main.spec.resources = Some(Resources {
            pids: Some(10),
            ..Resources::default()
        });
        let d = Draft {
            name: "x".into(),
            kind: DraftKind::Pod,
            labels: BTreeMap::new(),
            pod: DraftPod {
                init_processes: vec![DraftProcess::new("pre", vec!["/bin/true".into()])],
                processes: vec![main],
                ..DraftPod::default()
            },
            sources: vec![],
            about: vec![],
            origin: Origins::new(),
        };
        for f in [Field::InitProcesses, Field::PidFile, Field::Resources] {
            assert!(d.uses(f), "{f:?}");
            let without = d.without(f);
            assert!(!without.uses(f), "{f:?}");
            let others: Vec<Field> = [Field::InitProcesses, Field::PidFile, Field::Resources]
                .into_iter()
                .filter(|o| *o != f)
                .collect();
            assert!(others.iter().all(|o| without.uses(*o)), "{f:?} took more");
        }
    }
}
