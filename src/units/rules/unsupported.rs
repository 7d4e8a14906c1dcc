//! What unit files can say but this daemon does not carry out yet. A unit
//! that asks for one of these is refused, naming the field, rather than
//! run without what it asked for (a memory limit that is not enforced, a
//! pid file nobody follows).
//!
//! [`NOT_YET_SUPPORTED`] is the one list: when the daemon learns a
//! feature, delete its line there (the tests follow the list).

use super::{join, Problem, UNIT_KINDS};
use crate::api::{Kind, Object, PodSpec, ProcessSpec};

/// A feature of the unit format that the daemon may not carry out yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `kind = "DaemonSet"`: needs the DaemonSet controller.
    DaemonSets,
    /// A process's `resources`: needs a cgroup per pod.
    Resources,
    /// A process's `pid_file`: needs the agent to follow a forking daemon.
    PidFile,
    /// A pod's `init_processes`: needs the agent to run them first.
    InitProcesses,
}

/// Parsed, validated, and refused: the daemon does not do these yet.
pub const NOT_YET_SUPPORTED: &[Feature] = &[];

impl Feature {
    pub const ALL: [Feature; 4] = [
        Feature::DaemonSets,
        Feature::Resources,
        Feature::PidFile,
        Feature::InitProcesses,
    ];

    /// The field as users write it.
    pub fn field(self) -> &'static str {
        match self {
            Feature::DaemonSets => "kind = \"DaemonSet\"",
            Feature::Resources => "resources",
            Feature::PidFile => "pid_file",
            Feature::InitProcesses => "init_processes",
        }
    }

    fn why(self) -> &'static str {
        match self {
            Feature::DaemonSets => "this daemon has no DaemonSet controller yet",
            Feature::Resources => {
                "memory, cpu and pids limits need a cgroup per pod, which this daemon does \
                 not set up yet"
            }
            Feature::PidFile => "this daemon does not follow a forking daemon's pid file yet",
            Feature::InitProcesses => "this daemon does not run init processes yet",
        }
    }

    /// Where `obj` uses the feature.
    fn used_in<'a>(self, obj: &'a Object) -> Vec<String> {
        let Some((spec, pod)) = pod_spec_of(obj) else {
            return Vec::new();
        };
        let pod = pod.as_str();
        let processes = || {
            let list = |name: &'static str, list: &'a [ProcessSpec]| {
                list.iter()
                    .enumerate()
                    .map(move |(i, p)| (p, format!("{pod}.{name}[{i}]")))
            };
            list("init_processes", &spec.init_processes).chain(list("processes", &spec.processes))
        };
        match self {
            Feature::DaemonSets if obj.kind() == Kind::DaemonSet => vec!["kind".into()],
            Feature::DaemonSets => Vec::new(),
            Feature::Resources => processes()
                .filter(|(p, _)| p.resources.is_some())
                .map(|(_, at)| join(&at, "resources"))
                .collect(),
            Feature::PidFile => processes()
                .filter(|(p, _)| p.pid_file.is_some())
                .map(|(_, at)| join(&at, "pid_file"))
                .collect(),
            Feature::InitProcesses if !spec.init_processes.is_empty() => {
                vec![join(pod, "init_processes")]
            }
            Feature::InitProcesses => Vec::new(),
        }
    }
}

/// The pod spec of an object and its path.
pub(crate) fn pod_spec_of(obj: &Object) -> Option<(&PodSpec, String)> {
    Some(match obj {
        Object::Pod(p) => (&p.spec, "spec".into()),
        Object::ReplicaSet(rs) => (&rs.spec.template.spec, "spec.template".into()),
        Object::ReplicationController(rc) => (&rc.spec.template.spec, "spec.template".into()),
        Object::DaemonSet(ds) => (&ds.spec.template.spec, "spec.template".into()),
        Object::Job(j) => (&j.spec.template.spec, "spec.template".into()),
        Object::CronJob(cj) => (
            &cj.spec.job_template.spec.template.spec,
            "spec.job_template.spec.template".into(),
        ),
        Object::Node(_) | Object::Event(_) => return None,
    })
}

/// The kinds this version runs.
pub fn supported_kinds() -> Vec<Kind> {
    UNIT_KINDS
        .into_iter()
        .filter(|k| !(*k == Kind::DaemonSet && NOT_YET_SUPPORTED.contains(&Feature::DaemonSets)))
        .collect()
}

/// One problem per use of a feature of [`NOT_YET_SUPPORTED`].
pub fn problems(obj: &Object) -> Vec<Problem> {
    let mut out = Vec::new();
    for feature in NOT_YET_SUPPORTED {
        for at in feature.used_in(obj) {
            out.push(match feature {
                Feature::DaemonSets => Problem::value(
                    at,
                    "kind `DaemonSet` is not supported by this version of drover yet",
                )
                .label(format!(
                    "this version runs: {}",
                    supported_kinds()
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .help(feature.why()),
                _ => Problem::key(
                    at,
                    format!(
                        "`{}` is not supported by this version of drover yet",
                        feature.field()
                    ),
                )
                .label(feature.why())
                .help(format!(
                    "remove `{}` to run the unit without it",
                    feature.field()
                )),
            });
        }
    }
    out
}
