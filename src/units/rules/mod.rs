//! The rules an object must follow before drover runs it, checked on the
//! api object itself: one place for every rule, whether the object came
//! from a unit file or as JSON.
//!
//! [`check`] returns [`Problem`]s that name the field by its path in the
//! object's JSON shape (`spec.template.processes[0].command`). A unit
//! file's validator turns each path into the position it was written at;
//! [`validate_object`] (objects sent as JSON to `drover apply`'s API)
//! prints the path. What a TOML file alone can get wrong (an unknown field,
//! a wrong type, a misspelt enum value, a malformed duration) is the
//! validator's business (`units::validate`); JSON gets those from serde.
//!
//! Rules only read the object: no I/O, no clock.

mod jobs;
pub mod limits;
pub mod names;
mod pod;
mod probe;
mod selector;
pub mod unsupported;
pub mod vars;

use crate::api::{Kind, LabelSelector, Labels, Object, ObjectMeta};
use names::{MAX_CRONJOB_NAME, MAX_POD_NAME, MAX_SET_NAME};

pub use selector::{requirement, selector_mismatch};

/// Which part of a field a problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The field's name (`watchdog` in `watchdog = "30s"`).
    Key,
    /// Its value.
    Value,
    /// Bytes `start..end` of a string value (a `${VAR}` in an argument).
    Inner(usize, usize),
}

/// A field by its path in the object's JSON shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    pub part: Part,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: Target,
    pub message: String,
    /// What is wrong, under the `^^^` of a unit file's diagnostic.
    pub label: Option<String>,
    /// The suggestion.
    pub help: Option<String>,
    /// Other fields it refers to, each with what it is.
    pub related: Vec<(Target, String)>,
}

impl Problem {
    fn new(path: impl Into<String>, part: Part, message: impl Into<String>) -> Problem {
        Problem {
            at: Target {
                path: path.into(),
                part,
            },
            message: message.into(),
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    /// About the value at `path`.
    pub fn value(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(path, Part::Value, message)
    }

    /// About the field name at `path`.
    pub fn key(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(path, Part::Key, message)
    }

    /// About bytes `start..end` of the string at `path`.
    pub fn inner(
        path: impl Into<String>,
        (start, end): (usize, usize),
        message: impl Into<String>,
    ) -> Problem {
        Problem::new(path, Part::Inner(start, end), message)
    }

    pub fn label(mut self, label: impl Into<String>) -> Problem {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, path: impl Into<String>, label: impl Into<String>) -> Problem {
        self.related.push((
            Target {
                path: path.into(),
                part: Part::Value,
            },
            label.into(),
        ));
        self
    }

    /// `spec.replicas: ... (label); help: ...`, for API errors.
    pub fn one_line(&self) -> String {
        let mut out = format!("{}: {}", self.at.path, self.message);
        if let Some(label) = &self.label {
            out.push_str(&format!(" ({label})"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("; help: {}", help.replace('\n', "; ")));
        }
        out
    }
}

/// `spec.template` + `labels` -> `spec.template.labels`.
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Every rule `obj` breaks, in the order of its fields.
pub fn check(obj: &Object) -> Vec<Problem> {
    let mut c = Checks::default();
    match obj {
        Object::Pod(p) => {
            c.meta(&p.metadata, Kind::Pod);
            c.pod_spec(&p.spec, "spec");
        }
        Object::ReplicaSet(rs) => {
            c.meta(&rs.metadata, Kind::ReplicaSet);
            c.ceiling(rs.spec.replicas, "spec.replicas");
            c.set(
                &rs.spec.selector,
                Kind::ReplicaSet,
                rs.spec.allow_broad_selector,
                &rs.spec.template.labels,
            );
            c.pod_spec(&rs.spec.template.spec, "spec.template");
        }
        Object::ReplicationController(rc) => {
            c.meta(&rc.metadata, Kind::ReplicationController);
            c.ceiling(rc.spec.replicas, "spec.replicas");
            c.set(
                &LabelSelector::from_labels(rc.spec.selector.clone()),
                Kind::ReplicationController,
                rc.spec.allow_broad_selector,
                &rc.spec.template.labels,
            );
            c.pod_spec(&rc.spec.template.spec, "spec.template");
        }
        Object::DaemonSet(ds) => {
            c.meta(&ds.metadata, Kind::DaemonSet);
            c.set(
                &ds.spec.selector,
                Kind::DaemonSet,
                ds.spec.allow_broad_selector,
                &ds.spec.template.labels,
            );
            c.pod_spec(&ds.spec.template.spec, "spec.template");
        }
        Object::Job(j) => {
            c.meta(&j.metadata, Kind::Job);
            c.job_spec(&j.spec, "spec");
        }
        Object::CronJob(cj) => {
            c.meta(&cj.metadata, Kind::CronJob);
            c.cronjob(&cj.spec);
        }
        Object::Node(_) | Object::Event(_) => c.push(
            Problem::value("kind", format!("kind `{}` cannot be applied", obj.kind())).label(
                format!(
                    "expected one of: {}",
                    UNIT_KINDS
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ),
    }
    c.problems.extend(limits::nul_bytes(obj));
    c.problems.extend(unsupported::problems(obj));
    c.problems
}

/// The kinds a unit file (or `drover apply`) may hold, in the order users
/// read them.
pub const UNIT_KINDS: [Kind; 6] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
];

/// The longest name of an object of `kind`: its pods (`NAME-xxxxx`) or
/// Jobs (`NAME-<unix time>`) must still have valid names.
pub fn max_name(kind: Kind) -> usize {
    match kind {
        Kind::ReplicaSet | Kind::ReplicationController | Kind::DaemonSet | Kind::Job => {
            MAX_SET_NAME
        }
        Kind::CronJob => MAX_CRONJOB_NAME,
        _ => MAX_POD_NAME,
    }
}

/// Checks an object sent as JSON (it never went through a unit file):
/// every rule of [`check`], each problem as one line that starts with its
/// field's path (`spec.template.processes[0].command: ...`).
pub fn validate_object(obj: &Object) -> Result<(), Vec<String>> {
    let problems = check(obj);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.iter().map(Problem::one_line).collect())
    }
}

/// Collects problems while walking an object.
#[derive(Default)]
pub(crate) struct Checks {
    pub problems: Vec<Problem>,
    /// Variables `${VAR}` may name besides the usual ones, while checking
    /// a template that provides them (`JOB_COMPLETION_INDEX`).
    extra_vars: Vec<String>,
}

impl Checks {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn meta(&mut self, m: &ObjectMeta, kind: Kind) {
        let max = max_name(kind);
        if let Err(why) = names::dns_label(&m.name, max) {
            let why = if why.starts_with("use at most") && max == MAX_SET_NAME {
                format!("{why}, so that its pods' names fit in {MAX_POD_NAME}")
            } else if why.starts_with("use at most") && max == MAX_CRONJOB_NAME {
                format!("{why}, so that its Jobs' names (NAME-<unix time>) fit in {MAX_SET_NAME}")
            } else {
                why
            };
            let mut p =
                Problem::value("metadata.name", format!("invalid name \"{}\"", m.name)).label(why);
            if let Some(s) = names::dns_label_suggestion(&m.name, max) {
                p = p.help(format!("did you mean \"{s}\"?"));
            }
            self.push(p);
        }
        self.labels(&m.labels, "metadata.labels");
    }

    /// A label map: every key and value.
    fn labels(&mut self, labels: &Labels, path: &str) {
        for (k, v) in labels {
            let at = join(path, k);
            if let Err(why) = names::label_key(k) {
                self.push(Problem::key(&at, format!("invalid label key `{k}`")).label(why));
            }
            if let Err(why) = names::label_value(v) {
                self.push(Problem::value(&at, format!("invalid label value \"{v}\"")).label(why));
            }
        }
    }

    /// A count with a ceiling (`replicas`, `completions`, `parallelism`).
    fn ceiling(&mut self, n: u32, path: &str) {
        if let Some(p) = limits::ceiling(n, path) {
            self.push(p);
        }
    }

    /// A duration that must not be zero.
    fn positive(&mut self, d: Option<crate::api::Dur>, path: &str) {
        if d.is_some_and(|d| d.0.is_zero()) {
            let field = path.rsplit('.').next().unwrap_or(path);
            self.push(
                Problem::value(path, format!("`{field}` must be longer than 0s"))
                    .label("expected a duration such as \"10s\""),
            );
        }
    }
}
