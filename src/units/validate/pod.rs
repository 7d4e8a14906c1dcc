//! A pod's fields (a Pod's `[spec]`, every controller's `spec.template`):
//! ports, init processes and processes with everything a process may set.

use super::{entries_of, items_of, Field, Tab, Validator};
use crate::api::resources::{parse_cpu, parse_memory};
use crate::api::{
    default_grace, CpuQuantity, MemoryQuantity, Object, ObjectMeta, Pod, PodSpec, PortRange,
    PortRequest, ProcessSpec, Resources, RestartPolicy, RlimitValue, Umask,
};
use crate::units::raw::{Command, RawPodSpec, RawPort, RawProcess, RawResources, RawTemplate};
use crate::units::spanned::{Map, Scalar, Table, Val};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The pod fields of a Pod's `[spec]` or of a template.
pub(super) struct PodFields<'t> {
    pub node_selector: Field<'t, Map<String>>,
    pub restart_policy: Field<'t, String>,
    pub termination_grace_period: Field<'t, String>,
    pub ports: Field<'t, Vec<Val<Table<RawPort>>>>,
    pub init_processes: Field<'t, Vec<Val<Table<RawProcess>>>>,
    pub processes: Field<'t, Vec<Val<Table<RawProcess>>>>,
}

macro_rules! pod_fields {
    ($tab:expr) => {{
        let (tab, v) = ($tab, $tab.v());
        PodFields {
            node_selector: tab.field("node_selector", &v.node_selector),
            restart_policy: tab.field("restart_policy", &v.restart_policy),
            termination_grace_period: tab
                .field("termination_grace_period", &v.termination_grace_period),
            ports: tab.field("ports", &v.ports),
            init_processes: tab.field("init_processes", &v.init_processes),
            processes: tab.field("processes", &v.processes),
        }
    }};
}

impl<'t> PodFields<'t> {
    pub fn of_pod(tab: &Tab<'t, RawPodSpec>) -> PodFields<'t> {
        pod_fields!(tab)
    }

    pub fn of_template(tab: &Tab<'t, RawTemplate>) -> PodFields<'t> {
        pod_fields!(tab)
    }
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

impl Validator<'_> {
    /// A Pod unit from its `[spec]`.
    pub(super) fn pod_unit(&mut self, spec: &Tab<RawPodSpec>, metadata: ObjectMeta) -> Object {
        self.unknown_fields(spec, &pod_spec_hint);
        Object::Pod(Pod {
            metadata,
            spec: self.pod(PodFields::of_pod(spec)),
            status: Default::default(),
        })
    }

    /// The fields of a pod; the caller has checked the field names.
    pub(super) fn pod(&mut self, f: PodFields) -> PodSpec {
        let node_selector = self.labels(&f.node_selector).unwrap_or_default();
        let restart_policy = self
            .variant::<RestartPolicy>(&f.restart_policy, "restart_policy")
            .unwrap_or_default();
        let termination_grace_period = self
            .duration(&f.termination_grace_period)
            .unwrap_or_else(default_grace);
        let ports = self.ports(&f.ports);
        let port_names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
        let init_processes = self.processes(&f.init_processes, &port_names);
        let help = format!(
            "add a process:\n[[{path}]]\nname = \"main\"\ncommand = [\"/bin/sh\", \"-c\", \"...\"]",
            path = f.processes.path
        );
        let processes = match self.require(f.processes, Some(help)) {
            Some(pf) => self.processes(&pf, &port_names),
            None => Vec::new(),
        };
        PodSpec {
            node_selector,
            restart_policy,
            termination_grace_period,
            ports,
            init_processes,
            processes,
        }
    }

    /// The pod's ports. A port with a mistake stays in the list (with a
    /// stand-in range) so that a probe naming it is not a second error.
    fn ports(&mut self, f: &Field<Vec<Val<Table<RawPort>>>>) -> Vec<PortRequest> {
        let Some(tables) = self.tables(f) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for t in tables {
            self.unknown_fields(&t, &|_| None);
            let name = self
                .require(
                    t.field("name", &t.v().name),
                    Some("add name = \"http\"".into()),
                )
                .and_then(|f| self.string(&f));
            let range = self
                .require(
                    t.field("range", &t.v().range),
                    Some("add range = \"8080-8099\"".into()),
                )
                .and_then(|f| self.port_range(&f));
            out.push(PortRequest {
                name: name.unwrap_or_default(),
                range: range.unwrap_or(PortRange { first: 1, last: 1 }),
            });
        }
        out
    }

    fn port_range(&mut self, f: &Field<Scalar>) -> Option<PortRange> {
        let text = match self.get_as(f, "a port range such as \"8080-8099\"")? {
            Scalar::Int(n) => n.to_string(),
            Scalar::Str(s) => s.clone(),
            Scalar::Float(x) => x.to_string(),
        };
        match PortRange::try_from(text.clone()) {
            Ok(r) => Some(r),
            Err(why) => {
                let d = self
                    .diag(f.value_span(), format!("invalid port range \"{text}\""))
                    .with_label(why);
                self.fail(&f.path, d);
                None
            }
        }
    }

    fn processes(
        &mut self,
        f: &Field<Vec<Val<Table<RawProcess>>>>,
        ports: &[String],
    ) -> Vec<ProcessSpec> {
        let Some(tables) = self.tables(f) else {
            return Vec::new();
        };
        tables.iter().map(|t| self.process(t, ports)).collect()
    }

    fn process(&mut self, t: &Tab<RawProcess>, ports: &[String]) -> ProcessSpec {
        self.unknown_fields(t, &process_hint);
        let v = t.v();
        let name = self
            .require(t.field("name", &v.name), Some("add name = \"main\"".into()))
            .and_then(|f| self.string(&f))
            .unwrap_or_default();
        let command = self
            .require(
                t.field("command", &v.command),
                Some("add command = [\"/path/to/program\", \"arg\"]".into()),
            )
            .map(|f| self.command(&f))
            .unwrap_or_default();
        let path = |w: &mut Self, f: Field<String>| w.string(&f).map(PathBuf::from);
        let probe =
            |w: &mut Self, which: &'static str, val| w.probe(t.field(which, val), which, ports);
        ProcessSpec {
            name,
            command,
            user: self.string(&t.field("user", &v.user)),
            group: self.string(&t.field("group", &v.group)),
            working_dir: path(self, t.field("working_dir", &v.working_dir)),
            env: self.labels(&t.field("env", &v.env)).unwrap_or_default(),
            notify: self.boolean(&t.field("notify", &v.notify)).unwrap_or(false),
            watchdog: self.duration(&t.field("watchdog", &v.watchdog)),
            liveness: probe(self, "liveness", &v.liveness),
            readiness: probe(self, "readiness", &v.readiness),
            startup: probe(self, "startup", &v.startup),
            resources: self.resources(&t.field("resources", &v.resources)),
            rlimits: self.rlimits(&t.field("rlimits", &v.rlimits)),
            umask: self.umask(&t.field("umask", &v.umask)),
            pid_file: path(self, t.field("pid_file", &v.pid_file)),
            allow_privilege_escalation: self
                .boolean(&t.field("allow_privilege_escalation", &v.allow_privilege_escalation))
                .unwrap_or(false),
        }
    }

    fn command(&mut self, f: &Field<Command>) -> Vec<String> {
        match self.get(f) {
            None => Vec::new(),
            Some(Command::Line(line)) => {
                let d = self
                    .diag(
                        f.value_span(),
                        "expected an array of strings, found a string",
                    )
                    .with_label("command is an argv, not a shell line")
                    .with_help(format!("write {}", argv_suggestion(line)));
                self.fail(&f.path, d);
                Vec::new()
            }
            Some(Command::Argv(items)) => {
                let mut argv = Vec::new();
                for item in items_of(f, items) {
                    match self.string(&item) {
                        Some(arg) => argv.push(arg),
                        None => self.poison(&f.path),
                    }
                }
                argv
            }
        }
    }

    fn resources(&mut self, f: &Field<Table<RawResources>>) -> Option<Resources> {
        let t = self.table(f)?;
        self.unknown_fields(&t, &|_| None);
        let v = t.v();
        let memory = self.quantity(
            &t.field("memory", &v.memory),
            "memory",
            "a size such as \"256Mi\"",
            |s| parse_memory(s).map_err(|e| e.to_string()),
            Some,
        );
        let cpu = self.quantity(
            &t.field("cpu", &v.cpu),
            "cpu",
            "a number of cores such as \"0.5\"",
            |s| parse_cpu(s).map_err(|e| e.to_string()),
            |n| n.checked_mul(1000),
        );
        let pids = self.count(&t.field("pids", &v.pids)).map(u64::from);
        Some(Resources {
            memory: memory.map(MemoryQuantity),
            cpu: cpu.map(CpuQuantity),
            pids,
        })
    }

    /// A quantity written as a string (`parse`) or a number (`whole`
    /// turns an integer into the unit's value; a float is read as text).
    fn quantity(
        &mut self,
        f: &Field<Scalar>,
        what: &str,
        expected: &str,
        parse: impl Fn(&str) -> Result<u64, String>,
        whole: impl Fn(u64) -> Option<u64>,
    ) -> Option<u64> {
        let (text, parsed) = match self.get_as(f, expected)? {
            Scalar::Str(s) => (s.clone(), parse(s)),
            Scalar::Float(x) => (x.to_string(), parse(&x.to_string())),
            Scalar::Int(n) => (
                n.to_string(),
                u64::try_from(*n)
                    .ok()
                    .and_then(&whole)
                    .ok_or_else(|| format!("expected {expected}")),
            ),
        };
        match parsed {
            Ok(n) => Some(n),
            Err(why) => {
                let d = self
                    .diag(
                        f.value_span(),
                        format!("invalid {what} quantity \"{text}\""),
                    )
                    .with_label(why);
                self.fail(&f.path, d);
                None
            }
        }
    }

    fn rlimits(&mut self, f: &Field<Map<Scalar>>) -> BTreeMap<String, RlimitValue> {
        let Some(map) = self.get(f) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for entry in entries_of(f, map) {
            let expected = "a number or \"unlimited\"";
            let value = match self.get_as(&entry, expected) {
                Some(Scalar::Int(n)) if *n >= 0 => Some(RlimitValue::Limit(*n as u64)),
                Some(Scalar::Str(s)) if s == "unlimited" => Some(RlimitValue::Unlimited),
                Some(other) => {
                    let shown = match other {
                        Scalar::Str(s) => format!("\"{s}\""),
                        Scalar::Int(n) => n.to_string(),
                        Scalar::Float(x) => x.to_string(),
                    };
                    let mut d = self
                        .diag(
                            entry.value_span(),
                            format!("invalid rlimit {shown} for `{}`", entry.key),
                        )
                        .with_label(format!("expected {expected}"));
                    if matches!(other, Scalar::Str(s) if s.eq_ignore_ascii_case("unlimited") || s.starts_with("infinit"))
                    {
                        d = d.with_help(format!("write {} = \"unlimited\"", entry.key));
                    }
                    self.fail(&entry.path, d);
                    None
                }
                None => None,
            };
            if let Some(value) = value {
                out.insert(entry.key.clone(), value);
            }
        }
        out
    }

    fn umask(&mut self, f: &Field<String>) -> Option<Umask> {
        let s = self.string(f)?;
        match Umask::try_from(s.clone()) {
            Ok(u) => Some(u),
            Err(why) => {
                let d = self
                    .diag(f.value_span(), format!("invalid umask \"{s}\""))
                    .with_label(why);
                self.fail(&f.path, d);
                None
            }
        }
    }
}
