//! The schema walk: a parsed unit file -> an api object, every table's
//! fields checked against `schema`, every value against `rules`.

use super::diagnostic::Span;
use super::walk::{Field, Tbl, Walker};
use super::{rules, schema, suggest};
use crate::api::{
    default_grace, Dur, Kind, LabelSelector, Labels, Object, ObjectMeta, Operator, Pod, PodSpec,
    PodTemplate, PortRange, PortRef, PortRequest, Probe, ProbeHandler, ProcessSpec, ReplicaSet,
    ReplicaSetSpec, ReplicationController, ReplicationControllerSpec, Requirement, RestartPolicy,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml_edit::Table;

mod job;

/// What a file turned into, with where its name is (for "defined twice").
pub(crate) struct Built {
    pub object: Object,
    pub name_span: Span,
}

/// A selector with where its parts are, for the "does not match" error.
struct SelectorAt {
    selector: LabelSelector,
    /// The whole selector value.
    span: Span,
    /// `match_labels` (RS) or the selector itself (RC).
    labels_span: Span,
    /// One per `match_expressions` entry.
    expr_spans: Vec<Span>,
}

/// A pod template with where its labels are.
struct TemplateAt {
    template: PodTemplate,
    span: Span,
    /// `None` when the template has no (valid) labels.
    labels_span: Option<Span>,
}

fn top_hint(key: &str) -> Option<String> {
    Some(match key {
        "metadata" => "drover units have no `metadata` table: write `name` and `labels` at \
                       the top of the file"
            .into(),
        "unit" | "units" => "a unit file holds one object: put each unit in its own file".into(),
        "status" => "`status` is written by drover, not by unit files".into(),
        k if schema::SET_SPEC.contains(&k) || schema::POD_SPEC.contains(&k) => {
            format!("`{k}` goes in the [spec] table")
        }
        _ => return None,
    })
}

fn pod_spec_hint(key: &str) -> Option<String> {
    Some(match key {
        "labels" => "a Pod's labels go at the top of the file, before [spec]".into(),
        "replicas" | "selector" | "template" => format!(
            "a Pod has no `{key}`: use kind = \"ReplicaSet\" to keep several copies running"
        ),
        _ => return None,
    })
}

fn set_spec_hint(key: &str) -> Option<String> {
    if key == "labels" || schema::POD_SPEC.contains(&key) {
        return Some(format!(
            "`{key}` belongs to the pod template: write it in [spec.template]"
        ));
    }
    None
}

fn template_hint(key: &str) -> Option<String> {
    if schema::SET_SPEC.contains(&key) {
        return Some(format!("`{key}` goes in [spec], not in [spec.template]"));
    }
    None
}

fn process_hint(key: &str) -> Option<String> {
    Some(match key {
        "image" => "drover runs plain processes: there are no images; put the program in \
                    `command`"
            .into(),
        "args" => "drover has no `args`: write the whole argv in `command`".into(),
        "ports" | "restart_policy" | "node_selector" | "termination_grace_period" => {
            format!("`{key}` is set for the whole pod, beside `processes`, not per process")
        }
        _ => return None,
    })
}

fn probe_hint(key: &str) -> Option<String> {
    Some(match key {
        "command" => "write the command in an exec handler: exec = { command = [...] }".into(),
        "port" | "path" => {
            format!("`{key}` belongs to the handler: http_get = {{ {key} = ... }}")
        }
        _ => return None,
    })
}

fn policy(name: &str) -> RestartPolicy {
    match name {
        "OnFailure" => RestartPolicy::OnFailure,
        "Never" => RestartPolicy::Never,
        _ => RestartPolicy::Always,
    }
}

fn operator(name: &str) -> Operator {
    match name {
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        _ => Operator::In,
    }
}

/// The command as an argv, suggested for `command = "python3 -m x"`.
fn argv_suggestion(line: &str) -> String {
    let shell = line.contains(|c| "|&;<>()$`\\\"'*?~".contains(c));
    let argv: Vec<String> = if shell {
        vec!["/bin/sh".into(), "-c".into(), line.into()]
    } else {
        line.split_whitespace().map(String::from).collect()
    };
    let quoted: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!("command = [{}]", quoted.join(", "))
}

impl<'a> Walker<'a> {
    /// Walks a whole document; `None` when anything is wrong (the
    /// diagnostics say what).
    pub(crate) fn build(&mut self, root: &'a Table, now: DateTime<Utc>) -> Option<Built> {
        let root = Tbl::root(root);
        if root.fields.is_empty() {
            let d = self
                .diag(root.at, "empty unit file")
                .with_label("expected kind, name and spec")
                .with_help(format!(
                    "start with kind = \"Pod\" and name = \"{}\"",
                    self.default_name(schema::MAX_POD_NAME)
                ));
            self.push(d);
            return None;
        }
        self.check_fields(&root, schema::TOP, &top_hint);

        let (kind, named_kind) = self.kind(&root);
        if let Some(f) = root.get("api_version") {
            self.api_version(f, named_kind);
        }
        let max = match kind {
            Some(Kind::ReplicaSet) | Some(Kind::ReplicationController) | Some(Kind::Job) => {
                schema::MAX_SET_NAME
            }
            Some(Kind::CronJob) => schema::MAX_CRONJOB_NAME,
            _ => schema::MAX_POD_NAME,
        };
        let (name, name_span) = self.name(&root, max).unzip();
        let labels = match root.get("labels") {
            Some(f) => self.labels(f, "labels".into()).map(|(l, _)| l),
            None => Some(Labels::new()),
        };
        let kind = kind?;

        let spec_help = match kind {
            Kind::Pod => "add a [spec] table with at least one [[spec.processes]]",
            Kind::Job => "add a [spec] table with `completions` and [spec.template]",
            Kind::CronJob => {
                "add a [spec] table with `schedule` and [spec.job_template.spec.template]"
            }
            _ => "add a [spec] table with `replicas`, [spec.selector] and [spec.template]",
        };
        let spec_field = self.require(&root, "spec", Some(spec_help.into()))?;
        let spec = self.table(spec_field, "spec".into())?;
        let object = match kind {
            Kind::Pod => {
                self.check_fields(&spec, schema::POD_SPEC, &pod_spec_hint);
                let pod_spec = self.pod_spec(&spec);
                let mut metadata = ObjectMeta::new(name.clone()?, now);
                metadata.labels = labels?;
                Object::Pod(Pod {
                    metadata,
                    spec: pod_spec,
                    status: Default::default(),
                })
            }
            Kind::Job => self.job(&spec, name, labels, now)?,
            Kind::CronJob => self.cronjob(&spec, name, labels, now)?,
            _ => self.set(&spec, kind, name, labels, now)?,
        };
        if !self.diags.is_empty() {
            return None;
        }
        Some(Built {
            object,
            name_span: name_span?,
        })
    }

    /// The kind if this version loads it, and the kind named (also when it
    /// is not supported yet), for checking api_version.
    fn kind(&mut self, root: &Tbl<'a>) -> (Option<Kind>, Option<Kind>) {
        let help = "add kind = \"Pod\" (or \"ReplicaSet\", \"ReplicationController\", \"Job\", \"CronJob\")";
        let Some(f) = self.require(root, "kind", Some(help.into())) else {
            return (None, None);
        };
        let Some(s) = self.string(f) else {
            return (None, None);
        };
        let span = f.value_span();
        let named = Kind::ALL.into_iter().find(|k| k.as_str() == s);
        match named {
            Some(k) if schema::SUPPORTED_KINDS.contains(&k.as_str()) => (Some(k), Some(k)),
            Some(k) if schema::KINDS.contains(&k.as_str()) => {
                let d = self
                    .diag(
                        span,
                        format!("kind `{s}` is not supported by this version of drover yet"),
                    )
                    .with_label(format!(
                        "this version runs: {}",
                        schema::list(schema::SUPPORTED_KINDS)
                    ));
                self.push(d);
                (None, Some(k))
            }
            Some(k) => {
                let why = match k {
                    Kind::Node => "nodes register themselves when `drover daemon` starts",
                    _ => "events are recorded by drover itself",
                };
                let d = self
                    .diag(span, format!("kind `{s}` cannot be written in a unit file"))
                    .with_label(format!("expected one of: {}", schema::list(schema::KINDS)))
                    .with_help(why);
                self.push(d);
                (None, None)
            }
            None => {
                let mut d = self
                    .diag(span, format!("unknown kind \"{s}\""))
                    .with_label(format!("expected one of: {}", schema::list(schema::KINDS)));
                let guess = suggest::closest(&s, schema::KINDS).or_else(|| {
                    Kind::from_cli(&s)
                        .map(|k| k.as_str())
                        .filter(|k| schema::KINDS.contains(k))
                });
                if let Some(c) = guess {
                    d = d.with_help(format!("did you mean \"{c}\"?"));
                }
                self.push(d);
                (None, None)
            }
        }
    }

    fn api_version(&mut self, f: Field<'a>, kind: Option<Kind>) {
        let Some(s) = self.string(f) else { return };
        let known = ["v1", "apps/v1", "batch/v1"];
        match kind {
            Some(k) if k.api_version() != s => {
                let want = k.api_version();
                let d = self
                    .diag(
                        f.value_span(),
                        format!("api_version \"{s}\" does not match kind `{k}`"),
                    )
                    .with_label(format!("expected \"{want}\""))
                    .with_help(format!("write api_version = \"{want}\", or leave it out"));
                self.push(d);
            }
            None if !known.contains(&s.as_str()) => {
                let d = self
                    .diag(f.value_span(), format!("unknown api_version \"{s}\""))
                    .with_label(format!("expected one of: {}", known.join(", ")));
                self.push(d);
            }
            _ => {}
        }
    }

    /// A name made from the file's name, for suggestions.
    fn default_name(&self, max: usize) -> String {
        self.src
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| rules::dns_label_suggestion(s, max).unwrap_or_else(|| s.to_string()))
            .filter(|s| rules::dns_label(s, max).is_ok())
            .unwrap_or_else(|| "web".into())
    }

    fn name(&mut self, root: &Tbl<'a>, max: usize) -> Option<(String, Span)> {
        let stem = self.default_name(max);
        let f = self.require(root, "name", Some(format!("add name = \"{stem}\"")))?;
        let name = self.string(f)?;
        let span = f.value_span();
        if let Err(why) = rules::dns_label(&name, max) {
            let why = if max == schema::MAX_SET_NAME && why.starts_with("use at most") {
                format!(
                    "{why}, so that its pods' names fit in {}",
                    schema::MAX_POD_NAME
                )
            } else if max == schema::MAX_CRONJOB_NAME && why.starts_with("use at most") {
                format!(
                    "{why}, so that its Jobs' names (NAME-<unix time>) fit in {}",
                    schema::MAX_SET_NAME
                )
            } else {
                why
            };
            let mut d = self
                .diag(span, format!("invalid name \"{name}\""))
                .with_label(why);
            if let Some(s) = rules::dns_label_suggestion(&name, max) {
                d = d.with_help(format!("did you mean \"{s}\"?"));
            }
            self.push(d);
            return None;
        }
        Some((name, span))
    }

    /// A label map (`labels`, `node_selector`, an RC's `selector`), keys
    /// and values checked.
    fn labels(&mut self, f: Field<'a>, path: String) -> Option<(Labels, Span)> {
        let entries = self.string_map(f, path)?;
        let mut out = Labels::new();
        let mut ok = true;
        for e in entries {
            if let Err(why) = rules::label_key(&e.key) {
                let d = self
                    .diag(e.key_span, format!("invalid label key `{}`", e.key))
                    .with_label(why);
                self.push(d);
                ok = false;
            }
            if let Err(why) = rules::label_value(&e.value) {
                let d = self
                    .diag(e.value_span, format!("invalid label value \"{}\"", e.value))
                    .with_label(why);
                self.push(d);
                ok = false;
            }
            out.insert(e.key, e.value);
        }
        ok.then_some((out, f.value_span()))
    }

    /// The fields of a pod (a Pod's [spec], a template); the caller has
    /// checked the field names.
    fn pod_spec(&mut self, t: &Tbl<'a>) -> PodSpec {
        let node_selector = t
            .get("node_selector")
            .and_then(|f| self.labels(f, t.child("node_selector")))
            .map(|(l, _)| l)
            .unwrap_or_default();
        let restart_policy = t
            .get("restart_policy")
            .and_then(|f| self.one_of(f, "restart_policy", schema::RESTART_POLICIES))
            .map(policy)
            .unwrap_or_default();
        let termination_grace_period = t
            .get("termination_grace_period")
            .and_then(|f| self.duration(f))
            .unwrap_or_else(default_grace);
        // Every port name written, also of ports with a bad range, so a
        // reference to it is not a second error.
        let mut port_names = Vec::new();
        let ports = t
            .get("ports")
            .map(|f| self.ports(f, &t.child("ports"), &mut port_names))
            .unwrap_or_default();
        let path = t.child("processes");
        let help = format!(
            "add a process:\n[[{path}]]\nname = \"main\"\ncommand = [\"/bin/sh\", \"-c\", \"...\"]"
        );
        let processes = match self.require(t, "processes", Some(help)) {
            Some(f) => self.processes(f, &path, &port_names),
            None => Vec::new(),
        };
        PodSpec {
            node_selector,
            restart_policy,
            termination_grace_period,
            ports,
            init_processes: Vec::new(),
            processes,
        }
    }

    fn ports(&mut self, f: Field<'a>, path: &str, names: &mut Vec<String>) -> Vec<PortRequest> {
        let Some(tables) = self.tables(f, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen: Vec<(String, Span)> = Vec::new();
        for t in tables {
            self.check_fields(&t, schema::PORT, &|_| None);
            let name = self
                .require(&t, "name", Some("add name = \"http\"".into()))
                .and_then(|f| Some((self.string(f)?, f.value_span())));
            let range = self
                .require(&t, "range", Some("add range = \"8080-8099\"".into()))
                .and_then(|f| self.port_range(f));
            let Some((name, span)) = name else { continue };
            names.push(name.clone());
            if let Err(why) = rules::port_name(&name) {
                let mut d = self
                    .diag(span, format!("invalid port name \"{name}\""))
                    .with_label(why);
                if let Some(s) = rules::dns_label_suggestion(&name, schema::MAX_PORT_NAME) {
                    d = d.with_help(format!("did you mean \"{s}\"?"));
                }
                self.push(d);
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                let first = self.loc(*first);
                let d = self
                    .diag(span, format!("duplicate port name \"{name}\""))
                    .with_label("defined again here")
                    .with_secondary(first, "first defined here")
                    .with_help("give each port its own name");
                self.push(d);
                continue;
            }
            seen.push((name.clone(), span));
            if let Some(range) = range {
                out.push(PortRequest { name, range });
            }
        }
        out
    }

    fn port_range(&mut self, f: Field<'a>) -> Option<PortRange> {
        let span = f.value_span();
        let text = match f.node.as_integer() {
            Some(n) => n.to_string(),
            None => self.string(f)?,
        };
        match PortRange::try_from(text.clone()) {
            Ok(r) => Some(r),
            Err(why) => {
                let d = self
                    .diag(span, format!("invalid port range \"{text}\""))
                    .with_label(why);
                self.push(d);
                None
            }
        }
    }

    fn processes(&mut self, f: Field<'a>, path: &str, ports: &[String]) -> Vec<ProcessSpec> {
        let Some(tables) = self.tables(f, path) else {
            return Vec::new();
        };
        if tables.is_empty() && f.node_is_empty_array() {
            let d = self
                .diag(f.value_span(), "a pod needs at least one process")
                .with_label("no processes")
                .with_help(format!(
                    "add one: {path} = [{{ name = \"main\", command = [\"/bin/sh\", \"-c\", \"...\"] }}]"
                ));
            self.push(d);
        }
        let mut seen: Vec<(String, Span)> = Vec::new();
        tables
            .iter()
            .map(|t| self.process(t, ports, &mut seen))
            .collect()
    }

    fn process(
        &mut self,
        t: &Tbl<'a>,
        ports: &[String],
        seen: &mut Vec<(String, Span)>,
    ) -> ProcessSpec {
        self.check_fields(t, schema::PROCESS, &process_hint);
        let name = self
            .require(t, "name", Some("add name = \"main\"".into()))
            .and_then(|f| self.process_name(f, seen))
            .unwrap_or_default();
        let env = t
            .get("env")
            .and_then(|f| self.env(f, t.child("env")))
            .unwrap_or_default();
        let mut known = rules::known_vars(env.keys(), ports.iter());
        known.extend(self.extra_vars.iter().cloned());
        let command = self
            .require(
                t,
                "command",
                Some("add command = [\"/path/to/program\", \"arg\"]".into()),
            )
            .map(|f| self.command(f, &known))
            .unwrap_or_default();
        let user = t.get("user").and_then(|f| self.non_empty(f));
        let group = t.get("group").and_then(|f| self.non_empty(f));
        let working_dir = t.get("working_dir").and_then(|f| self.working_dir(f));
        let notify = t.get("notify").and_then(|f| self.boolean(f));
        let watchdog = t.get("watchdog").and_then(|f| {
            let d = self.positive_duration(f)?;
            if notify != Some(true) && (notify.is_some() || !t.has("notify")) {
                let d = self
                    .diag(f.key_span, "`watchdog` needs `notify = true`")
                    .with_label("only a process that talks sd_notify can ping a watchdog")
                    .with_help("add notify = true, and send WATCHDOG=1 from the process");
                self.push(d);
                return None;
            }
            Some(d)
        });
        if let Some(f) = t.get("resources") {
            let d = self
                .diag(
                    f.key_span,
                    "resources limits are not supported by this version yet",
                )
                .with_label("memory, cpu and pids limits need cgroups, which come later")
                .with_help("remove `resources`");
            self.push(d);
        }
        let probe = |w: &mut Self, which: &'static str| {
            t.get(which)
                .and_then(|f| w.probe(f, which, &t.child(which), ports))
        };
        let liveness = probe(self, "liveness");
        let readiness = probe(self, "readiness");
        let startup = probe(self, "startup");
        ProcessSpec {
            name,
            command,
            user,
            group,
            working_dir,
            env,
            notify: notify.unwrap_or(false),
            watchdog,
            liveness,
            readiness,
            startup,
            resources: None,
            rlimits: Default::default(),
            umask: None,
            pid_file: None,
            allow_privilege_escalation: false,
        }
    }

    fn process_name(&mut self, f: Field<'a>, seen: &mut Vec<(String, Span)>) -> Option<String> {
        let name = self.string(f)?;
        let span = f.value_span();
        if let Err(why) = rules::dns_label(&name, schema::MAX_POD_NAME) {
            let mut d = self
                .diag(span, format!("invalid process name \"{name}\""))
                .with_label(why);
            if let Some(s) = rules::dns_label_suggestion(&name, schema::MAX_POD_NAME) {
                d = d.with_help(format!("did you mean \"{s}\"?"));
            }
            self.push(d);
            return None;
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            let first = self.loc(*first);
            let d = self
                .diag(span, format!("duplicate process name \"{name}\""))
                .with_label("defined again here")
                .with_secondary(first, "first defined here")
                .with_help("give each process of a pod its own name");
            self.push(d);
            return None;
        }
        seen.push((name.clone(), span));
        Some(name)
    }

    fn env(&mut self, f: Field<'a>, path: String) -> Option<BTreeMap<String, String>> {
        let entries = self.string_map(f, path)?;
        let mut out = BTreeMap::new();
        for e in entries {
            if let Err(why) = rules::env_name(&e.key) {
                let d = self
                    .diag(
                        e.key_span,
                        format!("invalid environment variable name `{}`", e.key),
                    )
                    .with_label(why);
                self.push(d);
                continue;
            }
            out.insert(e.key, e.value);
        }
        Some(out)
    }

    fn command(&mut self, f: Field<'a>, known: &[String]) -> Vec<String> {
        if let Some(line) = f.node_str() {
            let d = self
                .diag(
                    f.value_span(),
                    "expected an array of strings, found a string",
                )
                .with_label("command is an argv, not a shell line")
                .with_help(format!("write {}", argv_suggestion(line)));
            self.push(d);
            return Vec::new();
        }
        let Some(argv) = self.strings(f) else {
            return Vec::new();
        };
        if argv.is_empty() {
            let d = self
                .diag(f.value_span(), "`command` must not be empty")
                .with_label("expected the program and its arguments")
                .with_help("write command = [\"/path/to/program\", \"arg\"]");
            self.push(d);
            return Vec::new();
        }
        if argv[0].0.is_empty() {
            let d = self
                .diag(argv[0].1, "the program to run is an empty string")
                .with_label("expected a program name or path");
            self.push(d);
        }
        for (arg, span) in &argv {
            for r in rules::var_refs(arg) {
                match r {
                    rules::VarRef::Name { start, end, name } => {
                        if let Some(p) = rules::unknown_var(&name, known) {
                            let at = self.inner_span(*span, arg, start, end);
                            let mut d = self.diag(at, p.message);
                            if let Some(label) = p.label {
                                d = d.with_label(label);
                            }
                            if let Some(help) = p.help {
                                d = d.with_help(help);
                            }
                            self.push(d);
                        }
                    }
                    rules::VarRef::Unterminated { start } => {
                        let at = self.inner_span(*span, arg, start, start + 2);
                        let d = self
                            .diag(at, "unterminated `${` in command")
                            .with_label("no closing `}`")
                            .with_help("close it: `${NAME}`, or write `$${` for a literal `${`");
                        self.push(d);
                    }
                }
            }
        }
        argv.into_iter().map(|(a, _)| a).collect()
    }

    fn non_empty(&mut self, f: Field<'a>) -> Option<String> {
        let s = self.string(f)?;
        if s.trim().is_empty() {
            let d = self.diag(f.value_span(), format!("`{}` must not be empty", f.key));
            self.push(d);
            return None;
        }
        Some(s)
    }

    fn working_dir(&mut self, f: Field<'a>) -> Option<PathBuf> {
        let s = self.string(f)?;
        if !s.starts_with('/') {
            let d = self
                .diag(
                    f.value_span(),
                    format!("working_dir \"{s}\" is not an absolute path"),
                )
                .with_label("expected a path starting with '/'");
            self.push(d);
            return None;
        }
        Some(PathBuf::from(s))
    }

    fn probe(
        &mut self,
        f: Field<'a>,
        which: &'static str,
        path: &str,
        ports: &[String],
    ) -> Option<Probe> {
        let t = self.table(f, path.to_string())?;
        self.check_fields(&t, schema::PROBE, &probe_hint);
        let handlers: Vec<Field<'a>> = t
            .fields
            .iter()
            .filter(|f| schema::PROBE_HANDLERS.contains(&f.key))
            .copied()
            .collect();
        let handler = match handlers.as_slice() {
            [] => {
                let d = self
                    .diag(t.at, format!("the {which} probe has no handler"))
                    .with_label(format!(
                        "expected one of: {}",
                        schema::list(schema::PROBE_HANDLERS)
                    ))
                    .with_help(
                        "add one: http_get = { path = \"/\", port = \"http\" }, \
                         tcp_socket = { port = 8080 } or exec = { command = [\"...\"] }",
                    );
                self.push(d);
                None
            }
            [one] => self.handler(*one, &t, ports),
            [first, second, ..] => {
                for h in &handlers {
                    self.handler(*h, &t, ports);
                }
                let first_at = self.loc(first.key_span);
                let d = self
                    .diag(
                        second.key_span,
                        format!(
                            "a probe has exactly one handler, found `{}` and `{}`",
                            first.key, second.key
                        ),
                    )
                    .with_label("second handler")
                    .with_secondary(first_at, "first handler")
                    .with_help("keep one; to check several things, use exec with a script");
                self.push(d);
                None
            }
        };
        let initial_delay = t
            .get("initial_delay")
            .and_then(|f| self.duration(f))
            .unwrap_or_default();
        let period = t
            .get("period")
            .and_then(|f| self.positive_duration(f))
            .unwrap_or(Dur::secs(10));
        let timeout = t
            .get("timeout")
            .and_then(|f| self.positive_duration(f))
            .unwrap_or(Dur::secs(1));
        let success_threshold = t
            .get("success_threshold")
            .and_then(|f| {
                let n = self.count(f, 1)?;
                if n != 1 && which != "readiness" {
                    let d = self
                        .diag(
                            f.value_span(),
                            format!("`success_threshold` must be 1 for a {which} probe"),
                        )
                        .with_label(format!("found {n}"))
                        .with_help(
                            "only readiness probes may ask for several successes in a row \
                             (as in Kubernetes)",
                        );
                    self.push(d);
                    return None;
                }
                Some(n)
            })
            .unwrap_or(1);
        let failure_threshold = t
            .get("failure_threshold")
            .and_then(|f| self.count(f, 1))
            .unwrap_or(3);
        let termination_grace_period = t
            .get("termination_grace_period")
            .and_then(|f| self.duration(f));
        Some(Probe {
            handler: handler?,
            initial_delay,
            period,
            timeout,
            success_threshold,
            failure_threshold,
            termination_grace_period,
        })
    }

    fn handler(&mut self, f: Field<'a>, probe: &Tbl<'a>, ports: &[String]) -> Option<ProbeHandler> {
        let t = self.table(f, probe.child(f.key))?;
        match f.key {
            "http_get" => {
                self.check_fields(&t, schema::HTTP_GET, &|_| None);
                let path = match t.get("path") {
                    Some(f) => self.string(f).and_then(|p| {
                        if p.starts_with('/') {
                            return Some(p);
                        }
                        let d = self
                            .diag(
                                f.value_span(),
                                format!("http_get path \"{p}\" must start with '/'"),
                            )
                            .with_help(format!("write path = \"/{p}\""));
                        self.push(d);
                        None
                    }),
                    None => Some("/".into()),
                };
                let port = self.port_ref(&t, ports);
                let host = self.host(&t);
                let scheme = match t.get("scheme") {
                    Some(f) => self
                        .one_of(f, "scheme", schema::SCHEMES)
                        .map(str::to_string),
                    None => Some("http".into()),
                };
                let headers = match t.get("headers") {
                    Some(f) => self.headers(f, t.child("headers")),
                    None => Some(BTreeMap::new()),
                };
                Some(ProbeHandler::HttpGet {
                    path: path?,
                    port: port?,
                    host: host?,
                    scheme: scheme?,
                    headers: headers?,
                })
            }
            "tcp_socket" => {
                self.check_fields(&t, schema::TCP_SOCKET, &|_| None);
                let port = self.port_ref(&t, ports);
                let host = self.host(&t);
                Some(ProbeHandler::TcpSocket {
                    port: port?,
                    host: host?,
                })
            }
            _ => {
                self.check_fields(&t, schema::EXEC, &|_| None);
                let f = self.require(
                    &t,
                    "command",
                    Some("add command = [\"/path/to/check\", \"arg\"]".into()),
                )?;
                let argv = self.strings(f)?;
                if argv.is_empty() {
                    let d = self
                        .diag(f.value_span(), "`command` must not be empty")
                        .with_label("expected the program and its arguments");
                    self.push(d);
                    return None;
                }
                Some(ProbeHandler::Exec {
                    command: argv.into_iter().map(|(a, _)| a).collect(),
                })
            }
        }
    }

    /// HTTP header names are tokens (RFC 9110): letters, digits and a few
    /// symbols such as '-'.
    fn headers(&mut self, f: Field<'a>, path: String) -> Option<BTreeMap<String, String>> {
        let entries = self.string_map(f, path)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for e in entries {
            let token = !e.key.is_empty()
                && e.key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !token {
                let d = self
                    .diag(e.key_span, format!("invalid HTTP header name `{}`", e.key))
                    .with_label("expected letters, digits and '-'");
                self.push(d);
                ok = false;
                continue;
            }
            out.insert(e.key, e.value);
        }
        ok.then_some(out)
    }

    fn host(&mut self, t: &Tbl<'a>) -> Option<String> {
        match t.get("host") {
            Some(f) => self.non_empty(f),
            None => Some("127.0.0.1".into()),
        }
    }

    /// A probe's `port`: 1-65535, or the name of one of the pod's ports.
    fn port_ref(&mut self, t: &Tbl<'a>, ports: &[String]) -> Option<PortRef> {
        let help = match ports.first() {
            Some(p) => format!("add port = \"{p}\" (a port of the pod) or port = 8080"),
            None => "add port = 8080".into(),
        };
        let f = self.require(t, "port", Some(help))?;
        let span = f.value_span();
        if let Some(n) = f.node.as_integer() {
            if !(1..=65535).contains(&n) {
                let d = self
                    .diag(span, format!("port must be between 1 and 65535, found {n}"))
                    .with_label("expected a port number or the name of one of the pod's ports");
                self.push(d);
                return None;
            }
            return Some(PortRef::Number(n as u16));
        }
        let name = match f.node_str() {
            Some(s) => s.to_string(),
            None => {
                self.wrong_type(f, "a port number or the name of one of the pod's ports");
                return None;
            }
        };
        if ports.contains(&name) {
            return Some(PortRef::Name(name));
        }
        let label = if ports.is_empty() {
            "expected a port number; this pod declares no ports".to_string()
        } else {
            format!(
                "expected a port number or one of the pod's ports: {}",
                ports.join(", ")
            )
        };
        let candidates: Vec<&str> = ports.iter().map(String::as_str).collect();
        let help = if name.parse::<u16>().is_ok() {
            format!("write it as a number: port = {name}")
        } else if let Some(c) = suggest::closest(&name, &candidates) {
            format!("did you mean \"{c}\"?")
        } else {
            format!(
                "declare it in the pod: ports = [{{ name = \"{name}\", range = \"8080-8099\" }}]"
            )
        };
        let d = self
            .diag(span, format!("unknown port \"{name}\""))
            .with_label(label)
            .with_help(help);
        self.push(d);
        None
    }

    /// A ReplicaSet or ReplicationController from its [spec].
    fn set(
        &mut self,
        spec: &Tbl<'a>,
        kind: Kind,
        name: Option<String>,
        labels: Option<Labels>,
        now: DateTime<Utc>,
    ) -> Option<Object> {
        self.check_fields(spec, schema::SET_SPEC, &set_spec_hint);
        let replicas = match spec.get("replicas") {
            Some(f) => self.count(f, 0),
            None => Some(1),
        };
        let template = self
            .require(
                spec,
                "template",
                Some("add [spec.template] with `labels` and [[spec.template.processes]]".into()),
            )
            .and_then(|f| self.template(f));
        let template_labels = template
            .as_ref()
            .filter(|t| t.labels_span.is_some())
            .map(|t| t.template.labels.clone());
        let example = template_labels
            .as_ref()
            .filter(|l| !l.is_empty())
            .map(rules::inline_labels)
            .unwrap_or_else(|| "{ app = \"web\" }".into());
        let selector = match kind {
            Kind::ReplicaSet => {
                let help = format!("add [spec.selector] with match_labels = {example}");
                self.require(spec, "selector", Some(help))
                    .and_then(|f| self.rs_selector(f, &example))
            }
            _ => match spec.get("selector") {
                Some(f) => self.rc_selector(f, &example),
                // Kubernetes: an RC's selector defaults to its template's labels.
                None => template.as_ref().map(|t| SelectorAt {
                    selector: LabelSelector::from_labels(t.template.labels.clone()),
                    span: t.span,
                    labels_span: t.span,
                    expr_spans: Vec::new(),
                }),
            },
        };
        if let (Some(sel), Some(tpl)) = (&selector, &template) {
            self.selector_matches(sel, tpl, kind);
        }
        let (selector, template, replicas) = (selector?, template?, replicas?);
        let mut metadata = ObjectMeta::new(name?, now);
        metadata.labels = labels?;
        Some(match kind {
            Kind::ReplicaSet => Object::ReplicaSet(ReplicaSet {
                metadata,
                spec: ReplicaSetSpec {
                    replicas,
                    selector: selector.selector,
                    template: template.template,
                },
                status: Default::default(),
            }),
            _ => Object::ReplicationController(ReplicationController {
                metadata,
                spec: ReplicationControllerSpec {
                    replicas,
                    selector: selector.selector.match_labels,
                    template: template.template,
                },
                status: Default::default(),
            }),
        })
    }

    fn template(&mut self, f: Field<'a>) -> Option<TemplateAt> {
        let t = self.table(f, "spec.template".into())?;
        self.check_fields(&t, schema::TEMPLATE, &template_hint);
        let labels = match t.get("labels") {
            Some(lf) => self.labels(lf, t.child("labels")),
            None => {
                let d = self
                    .diag(t.at, "missing field `labels`")
                    .with_label("required in spec.template: the selector finds its pods by them")
                    .with_help("add labels = { app = \"web\" } and select them in spec.selector");
                self.push(d);
                None
            }
        };
        let spec = self.pod_spec(&t);
        let (labels, labels_span) = match labels {
            Some((l, s)) => (l, Some(s)),
            None => (Labels::new(), None),
        };
        Some(TemplateAt {
            template: PodTemplate { labels, spec },
            span: t.at,
            labels_span,
        })
    }

    fn rs_selector(&mut self, f: Field<'a>, example: &str) -> Option<SelectorAt> {
        let t = self.table(f, "spec.selector".into())?;
        let plain = !t.fields.is_empty()
            && !t.has("match_labels")
            && !t.has("match_expressions")
            && t.fields.iter().all(|f| f.node_str().is_some());
        if plain {
            let labels: Labels = t
                .fields
                .iter()
                .filter_map(|f| Some((f.key.to_string(), f.node_str()?.to_string())))
                .collect();
            let d = self
                .diag(
                    f.value_span(),
                    "a ReplicaSet's selector is not a plain label map",
                )
                .with_label("expected match_labels and/or match_expressions")
                .with_help(format!(
                    "write selector = {{ match_labels = {} }}",
                    rules::inline_labels(&labels)
                ));
            self.push(d);
            return None;
        }
        self.check_fields(&t, schema::SELECTOR, &|_| None);
        let match_labels = match t.get("match_labels") {
            Some(f) => Some(self.labels(f, t.child("match_labels"))?),
            None => None,
        };
        let mut expressions = Vec::new();
        let mut expr_spans = Vec::new();
        let mut ok = true;
        if let Some(ef) = t.get("match_expressions") {
            for e in self.tables(ef, &t.child("match_expressions"))? {
                match self.requirement(&e) {
                    Some(r) => {
                        expressions.push(r);
                        expr_spans.push(e.at);
                    }
                    None => ok = false,
                }
            }
        }
        if !ok {
            return None;
        }
        let span = f.value_span();
        let (match_labels, labels_span) = match match_labels {
            Some((l, s)) => (l, s),
            None => (Labels::new(), span),
        };
        let selector = LabelSelector {
            match_labels,
            match_expressions: expressions,
        };
        if selector.is_empty() {
            let d = self
                .diag(span, "the selector must not be empty")
                .with_label("an empty selector would select every pod")
                .with_help(format!("add match_labels = {example}"));
            self.push(d);
            return None;
        }
        Some(SelectorAt {
            selector,
            span,
            labels_span,
            expr_spans,
        })
    }

    fn requirement(&mut self, t: &Tbl<'a>) -> Option<Requirement> {
        self.check_fields(t, schema::REQUIREMENT, &|_| None);
        let key = self
            .require(t, "key", Some("add key = \"tier\"".into()))
            .and_then(|f| {
                let k = self.string(f)?;
                if let Err(why) = rules::label_key(&k) {
                    let d = self
                        .diag(f.value_span(), format!("invalid label key `{k}`"))
                        .with_label(why);
                    self.push(d);
                    return None;
                }
                Some(k)
            });
        let op_field = self.require(
            t,
            "operator",
            Some("add operator = \"In\" (In, NotIn, Exists, DoesNotExist)".into()),
        );
        let op = op_field
            .and_then(|f| self.one_of(f, "operator", schema::OPERATORS))
            .map(operator);
        let values = match t.get("values") {
            Some(f) => {
                let vals = self.strings(f)?;
                let mut ok = true;
                for (v, span) in &vals {
                    if let Err(why) = rules::label_value(v) {
                        let d = self
                            .diag(*span, format!("invalid label value \"{v}\""))
                            .with_label(why);
                        self.push(d);
                        ok = false;
                    }
                }
                if !ok {
                    return None;
                }
                vals.into_iter().map(|(v, _)| v).collect()
            }
            None => Vec::new(),
        };
        let r = Requirement {
            key: key?,
            operator: op?,
            values,
        };
        if let Err(why) = rules::requirement(&r) {
            let (span, help) = match t.get("values") {
                Some(vf) => (vf.value_span(), "remove `values`".to_string()),
                None => (
                    op_field.map_or(t.at, |f| f.value_span()),
                    "add values = [\"...\"]".to_string(),
                ),
            };
            let d = self.diag(span, why).with_help(help);
            self.push(d);
            return None;
        }
        Some(r)
    }

    fn rc_selector(&mut self, f: Field<'a>, example: &str) -> Option<SelectorAt> {
        let t = self.table(f, "spec.selector".into())?;
        let mut ok = true;
        for sf in &t.fields {
            if schema::SELECTOR.contains(&sf.key) {
                let help = if sf.key == "match_labels" {
                    format!("write the labels directly: selector = {example}")
                } else {
                    format!(
                        "set-based selectors need kind = \"ReplicaSet\"; or select by labels: \
                         selector = {example}"
                    )
                };
                let d = self
                    .diag(
                        sf.key_span,
                        format!(
                            "`{}` is not supported in a ReplicationController selector",
                            sf.key
                        ),
                    )
                    .with_label("a ReplicationController's selector is a plain label map")
                    .with_help(help);
                self.push(d);
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let (labels, span) = self.labels(f, "spec.selector".into())?;
        if labels.is_empty() {
            let d = self
                .diag(span, "the selector must not be empty")
                .with_label("an empty selector would select every pod")
                .with_help(format!("write selector = {example}"));
            self.push(d);
            return None;
        }
        Some(SelectorAt {
            selector: LabelSelector::from_labels(labels),
            span,
            labels_span: span,
            expr_spans: Vec::new(),
        })
    }

    /// The selector must select the template's pods.
    fn selector_matches(&mut self, sel: &SelectorAt, tpl: &TemplateAt, kind: Kind) {
        let Some(labels_span) = tpl.labels_span else {
            return; // already reported: the template has no labels
        };
        let labels = &tpl.template.labels;
        if sel.selector.matches(labels) {
            return;
        }
        let from = if kind == Kind::ReplicaSet {
            "match_labels"
        } else {
            "the selector"
        };
        let fixes = rules::selector_mismatch(&sel.selector, labels, from);
        let label_fails = sel
            .selector
            .match_labels
            .iter()
            .any(|(k, v)| labels.get(k) != Some(v));
        let primary = if label_fails {
            sel.labels_span
        } else {
            sel.selector
                .match_expressions
                .iter()
                .position(|r| !r.matches(labels))
                .and_then(|i| sel.expr_spans.get(i).copied())
                .unwrap_or(sel.span)
        };
        let second = self.loc(labels_span);
        let d = self
            .diag(primary, "selector does not match template labels")
            .with_label("selector")
            .with_secondary(second, "template.labels")
            .with_help(fixes.join("\n"));
        self.push(d);
    }
}

impl Field<'_> {
    /// The string value, if this is a string.
    pub(crate) fn node_str(&self) -> Option<&str> {
        self.node.as_str()
    }

    pub(crate) fn node_is_empty_array(&self) -> bool {
        self.node.is_empty_array()
    }
}
