//! Semantic checks on an object that is already built (the daemon re-runs
//! them on objects POSTed as JSON, which never went through a unit file).
//! The same rules as the unit file walker, reported as
//! `spec.template.processes[0].command: must not be empty`.

use super::{rules, schema};
use crate::api::job::labels::COMPLETION_INDEX_ENV;
use crate::api::{
    CompletionMode, Kind, LabelSelector, Labels, Object, ObjectMeta, PodSpec, PortRef, Probe,
    ProbeHandler, ProcessSpec, RestartPolicy,
};
use crate::api::{JobSpec, PodTemplate};
use std::collections::BTreeSet;

/// Checks an object as a unit file's would be checked. Pods, ReplicaSets,
/// ReplicationControllers, Jobs and CronJobs can be applied; a Node or
/// Event is an error.
pub fn validate_object(obj: &Object) -> Result<(), Vec<String>> {
    let mut v = Validator::default();
    match obj {
        Object::Pod(p) => {
            v.meta(&p.metadata, Kind::Pod);
            v.pod_spec(&p.spec, "spec");
        }
        Object::ReplicaSet(rs) => {
            v.meta(&rs.metadata, Kind::ReplicaSet);
            v.selector(&rs.spec.selector, &rs.spec.template.labels);
            v.labels(&rs.spec.template.labels, "spec.template.labels");
            v.pod_spec(&rs.spec.template.spec, "spec.template");
        }
        Object::ReplicationController(rc) => {
            v.meta(&rc.metadata, Kind::ReplicationController);
            v.labels(&rc.spec.selector, "spec.selector");
            let selector = LabelSelector::from_labels(rc.spec.selector.clone());
            v.selector(&selector, &rc.spec.template.labels);
            v.labels(&rc.spec.template.labels, "spec.template.labels");
            v.pod_spec(&rc.spec.template.spec, "spec.template");
        }
        Object::Job(j) => {
            v.meta(&j.metadata, Kind::Job);
            v.job_spec(&j.spec, "spec");
        }
        Object::CronJob(cj) => {
            v.meta(&cj.metadata, Kind::CronJob);
            if let Err(e) = crate::schedule::Schedule::parse(&cj.spec.schedule) {
                v.err("spec.schedule", e.to_string());
            }
            if let Some(tz) = &cj.spec.time_zone {
                if let Err(e) = crate::schedule::parse_time_zone(tz) {
                    v.err("spec.time_zone", e.to_string());
                }
            }
            if cj.spec.starting_deadline.is_some_and(|d| d.0.is_zero()) {
                v.err("spec.starting_deadline", "must be longer than 0s");
            }
            v.labels(&cj.spec.job_template.labels, "spec.job_template.labels");
            v.job_spec(&cj.spec.job_template.spec, "spec.job_template.spec");
        }
        Object::DaemonSet(_) | Object::Node(_) | Object::Event(_) => v.err(
            "kind",
            format!(
                "kind `{}` cannot be applied; expected one of: {}",
                obj.kind(),
                schema::list(schema::SUPPORTED_KINDS)
            ),
        ),
    }
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(v.errors)
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
    /// Variables `${VAR}` may name besides the usual ones
    /// (`JOB_COMPLETION_INDEX` in an Indexed Job).
    extra_vars: Vec<String>,
}

impl Validator {
    fn err(&mut self, path: &str, msg: impl AsRef<str>) {
        self.errors.push(format!("{path}: {}", msg.as_ref()));
    }

    fn meta(&mut self, m: &ObjectMeta, kind: Kind) {
        let max = match kind {
            Kind::Pod => schema::MAX_POD_NAME,
            Kind::CronJob => schema::MAX_CRONJOB_NAME,
            _ => schema::MAX_SET_NAME,
        };
        if let Err(why) = rules::dns_label(&m.name, max) {
            self.err(
                "metadata.name",
                format!("invalid name \"{}\": {why}", m.name),
            );
        }
        self.labels(&m.labels, "metadata.labels");
    }

    fn labels(&mut self, labels: &Labels, path: &str) {
        for (k, val) in labels {
            if let Err(why) = rules::label_key(k) {
                self.err(path, format!("invalid label key `{k}`: {why}"));
            }
            if let Err(why) = rules::label_value(val) {
                self.err(
                    path,
                    format!("invalid label value \"{val}\" of `{k}`: {why}"),
                );
            }
        }
    }

    fn selector(&mut self, sel: &LabelSelector, template_labels: &Labels) {
        if sel.is_empty() {
            self.err(
                "spec.selector",
                "the selector must not be empty: an empty selector would select every pod",
            );
            return;
        }
        self.labels(&sel.match_labels, "spec.selector.match_labels");
        for (i, r) in sel.match_expressions.iter().enumerate() {
            let path = format!("spec.selector.match_expressions[{i}]");
            if let Err(why) = rules::label_key(&r.key) {
                self.err(&path, format!("invalid label key `{}`: {why}", r.key));
            }
            if let Err(why) = rules::requirement(r) {
                self.err(&path, why);
            }
        }
        if template_labels.is_empty() {
            self.err(
                "spec.template.labels",
                "the template needs labels for the selector to find its pods",
            );
        } else if !sel.matches(template_labels) {
            let fixes = rules::selector_mismatch(sel, template_labels, "the selector");
            self.err(
                "spec.selector",
                format!(
                    "selector does not match template labels: {}",
                    fixes.join("; ")
                ),
            );
        }
    }

    fn job_spec(&mut self, spec: &JobSpec, path: &str) {
        let PodTemplate { labels, spec: pod } = &spec.template;
        let tpath = format!("{path}.template");
        self.labels(labels, &format!("{tpath}.labels"));
        if pod.restart_policy == RestartPolicy::Always {
            self.err(
                &format!("{tpath}.restart_policy"),
                "a Job's pods cannot restart Always; expected OnFailure or Never",
            );
        }
        if spec.backoff_max < spec.backoff_initial {
            self.err(
                &format!("{path}.backoff_max"),
                format!(
                    "must be at least backoff_initial ({})",
                    spec.backoff_initial
                ),
            );
        }
        if spec.active_deadline.is_some_and(|d| d.0.is_zero()) {
            self.err(&format!("{path}.active_deadline"), "must be longer than 0s");
        }
        if spec.completion_mode == CompletionMode::Indexed {
            self.extra_vars = vec![COMPLETION_INDEX_ENV.to_string()];
        }
        self.pod_spec(pod, &tpath);
        self.extra_vars.clear();
    }

    fn pod_spec(&mut self, spec: &PodSpec, path: &str) {
        self.labels(&spec.node_selector, &format!("{path}.node_selector"));
        let mut port_names = Vec::new();
        for (i, p) in spec.ports.iter().enumerate() {
            let pp = format!("{path}.ports[{i}]");
            if let Err(why) = rules::port_name(&p.name) {
                self.err(&pp, format!("invalid port name \"{}\": {why}", p.name));
            }
            if port_names.contains(&p.name) {
                self.err(&pp, format!("duplicate port name \"{}\"", p.name));
            }
            if p.range.first == 0 || p.range.first > p.range.last {
                self.err(
                    &pp,
                    "port range is empty: write it as \"FIRST-LAST\" with 1 <= FIRST <= LAST",
                );
            }
            port_names.push(p.name.clone());
        }
        if spec.processes.is_empty() {
            self.err(
                &format!("{path}.processes"),
                "a pod needs at least one process",
            );
        }
        let mut names = BTreeSet::new();
        for (i, p) in spec.processes.iter().enumerate() {
            let pp = format!("{path}.processes[{i}]");
            if !names.insert(p.name.as_str()) {
                self.err(&pp, format!("duplicate process name \"{}\"", p.name));
            }
            self.process(p, &pp, &port_names);
        }
    }

    fn process(&mut self, p: &ProcessSpec, path: &str, ports: &[String]) {
        if let Err(why) = rules::dns_label(&p.name, schema::MAX_POD_NAME) {
            self.err(path, format!("invalid process name \"{}\": {why}", p.name));
        }
        match p.command.first() {
            None => self.err(&format!("{path}.command"), "must not be empty"),
            Some(prog) if prog.is_empty() => self.err(
                &format!("{path}.command"),
                "the program to run is an empty string",
            ),
            _ => {}
        }
        for k in p.env.keys() {
            if let Err(why) = rules::env_name(k) {
                self.err(
                    &format!("{path}.env"),
                    format!("invalid environment variable name `{k}`: {why}"),
                );
            }
        }
        let mut known = rules::known_vars(p.env.keys(), ports.iter());
        known.extend(self.extra_vars.iter().cloned());
        for arg in &p.command {
            for r in rules::var_refs(arg) {
                match r {
                    rules::VarRef::Name { name, .. } => {
                        if let Some(p) = rules::unknown_var(&name, &known) {
                            let help = p.help.map(|h| format!(" ({h})")).unwrap_or_default();
                            self.err(&format!("{path}.command"), format!("{}{help}", p.message));
                        }
                    }
                    rules::VarRef::Unterminated { .. } => self.err(
                        &format!("{path}.command"),
                        "unterminated `${` (write `$${` for a literal `${`)",
                    ),
                }
            }
        }
        for (field, value) in [("user", &p.user), ("group", &p.group)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                self.err(&format!("{path}.{field}"), "must not be empty");
            }
        }
        if let Some(dir) = &p.working_dir {
            if !dir.is_absolute() {
                self.err(
                    &format!("{path}.working_dir"),
                    format!("\"{}\" is not an absolute path", dir.display()),
                );
            }
        }
        if let Some(w) = p.watchdog {
            if !p.notify {
                self.err(
                    &format!("{path}.watchdog"),
                    "`watchdog` needs `notify = true`",
                );
            }
            if w.0.is_zero() {
                self.err(&format!("{path}.watchdog"), "must be longer than 0s");
            }
        }
        for (which, probe) in [
            ("liveness", &p.liveness),
            ("readiness", &p.readiness),
            ("startup", &p.startup),
        ] {
            if let Some(probe) = probe {
                self.probe(probe, which, &format!("{path}.{which}"), ports);
            }
        }
    }

    fn probe(&mut self, probe: &Probe, which: &str, path: &str, ports: &[String]) {
        match &probe.handler {
            ProbeHandler::HttpGet {
                path: p,
                port,
                host,
                scheme,
                ..
            } => {
                if !p.starts_with('/') {
                    self.err(&format!("{path}.http_get.path"), "must start with '/'");
                }
                if !schema::SCHEMES.contains(&scheme.as_str()) {
                    self.err(
                        &format!("{path}.http_get.scheme"),
                        format!(
                            "unknown scheme \"{scheme}\"; expected one of: {}",
                            schema::list(schema::SCHEMES)
                        ),
                    );
                }
                self.port_ref(port, &format!("{path}.http_get.port"), ports);
                self.host(host, &format!("{path}.http_get.host"));
            }
            ProbeHandler::TcpSocket { port, host } => {
                self.port_ref(port, &format!("{path}.tcp_socket.port"), ports);
                self.host(host, &format!("{path}.tcp_socket.host"));
            }
            ProbeHandler::Exec { command } => {
                if command.is_empty() {
                    self.err(&format!("{path}.exec.command"), "must not be empty");
                }
            }
        }
        if probe.period.0.is_zero() {
            self.err(&format!("{path}.period"), "must be longer than 0s");
        }
        if probe.timeout.0.is_zero() {
            self.err(&format!("{path}.timeout"), "must be longer than 0s");
        }
        if probe.failure_threshold < 1 {
            self.err(&format!("{path}.failure_threshold"), "must be at least 1");
        }
        if probe.success_threshold < 1 {
            self.err(&format!("{path}.success_threshold"), "must be at least 1");
        } else if probe.success_threshold != 1 && which != "readiness" {
            self.err(
                &format!("{path}.success_threshold"),
                format!("must be 1 for a {which} probe"),
            );
        }
    }

    fn port_ref(&mut self, port: &PortRef, path: &str, ports: &[String]) {
        match port {
            PortRef::Number(0) => self.err(path, "port must be between 1 and 65535, found 0"),
            PortRef::Number(_) => {}
            PortRef::Name(n) if ports.contains(n) => {}
            PortRef::Name(n) => self.err(
                path,
                format!(
                    "unknown port \"{n}\"; expected a port number or one of the pod's ports: {}",
                    if ports.is_empty() {
                        "(none declared)".to_string()
                    } else {
                        ports.join(", ")
                    }
                ),
            ),
        }
    }

    fn host(&mut self, host: &str, path: &str) {
        if host.trim().is_empty() {
            self.err(path, "must not be empty");
        }
    }
}
