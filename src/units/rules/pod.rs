//! A pod's rules: ports, processes and init processes (names unique across
//! both), commands and their `${VAR}`s, environment, paths, limits.

use super::names::{self, MAX_POD_NAME};
use super::vars::{self, VarRef};
use super::{join, limits, Checks, Problem};
use crate::api::{PodSpec, ProcessSpec, RLIMIT_NAMES};
use crate::units::suggest;

impl Checks {
    pub(super) fn pod_spec(&mut self, spec: &PodSpec, path: &str) {
        self.labels(&spec.node_selector, &join(path, "node_selector"));
        let mut ports: Vec<String> = Vec::new();
        for (i, p) in spec.ports.iter().enumerate() {
            let at = format!("{path}.ports[{i}]");
            let name_at = join(&at, "name");
            if let Err(why) = names::port_name(&p.name) {
                let mut problem =
                    Problem::value(&name_at, format!("invalid port name \"{}\"", p.name))
                        .label(why);
                if let Some(s) = names::dns_label_suggestion(&p.name, names::MAX_PORT_NAME) {
                    problem = problem.help(format!("did you mean \"{s}\"?"));
                }
                self.push(problem);
            } else if let Some(first) = ports.iter().position(|n| *n == p.name) {
                self.push(
                    Problem::value(&name_at, format!("duplicate port name \"{}\"", p.name))
                        .label("defined again here")
                        .related(format!("{path}.ports[{first}].name"), "first defined here")
                        .help("give each port its own name"),
                );
            }
            if p.range.first == 0 || p.range.first > p.range.last {
                self.push(
                    Problem::value(join(&at, "range"), "the port range is empty")
                        .label("write it as \"FIRST-LAST\" with 1 <= FIRST <= LAST"),
                );
            }
            ports.push(p.name.clone());
        }
        if spec.processes.is_empty() {
            let list = join(path, "processes");
            self.push(
                Problem::value(&list, "a pod needs at least one process")
                    .label("no processes")
                    .help(format!(
                        "add one: {list} = [{{ name = \"main\", command = [\"/bin/sh\", \"-c\", \"...\"] }}]"
                    )),
            );
        }
        // Names are unique across init_processes and processes: logs,
        // status and `-c NAME` address a process by its name alone.
        let mut seen: Vec<(&str, String)> = Vec::new();
        let lists = [
            ("init_processes", &spec.init_processes),
            ("processes", &spec.processes),
        ];
        for (list, processes) in lists {
            for (i, p) in processes.iter().enumerate() {
                let at = format!("{path}.{list}[{i}]");
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == p.name) {
                    self.push(
                        Problem::value(
                            join(&at, "name"),
                            format!("duplicate process name \"{}\"", p.name),
                        )
                        .label("defined again here")
                        .related(join(first, "name"), "first defined here")
                        .help("give each process of a pod its own name"),
                    );
                } else {
                    seen.push((&p.name, at.clone()));
                }
                self.process(p, &at, &ports, list == "init_processes");
            }
        }
    }

    fn process(&mut self, p: &ProcessSpec, path: &str, ports: &[String], init: bool) {
        if let Err(why) = names::dns_label(&p.name, MAX_POD_NAME) {
            let mut problem = Problem::value(
                join(path, "name"),
                format!("invalid process name \"{}\"", p.name),
            )
            .label(why);
            if let Some(s) = names::dns_label_suggestion(&p.name, MAX_POD_NAME) {
                problem = problem.help(format!("did you mean \"{s}\"?"));
            }
            self.push(problem);
        }
        for k in p.env.keys() {
            if let Err(why) = names::env_name(k) {
                self.push(
                    Problem::key(
                        join(&join(path, "env"), k),
                        format!("invalid environment variable name `{k}`"),
                    )
                    .label(why),
                );
            }
        }
        let mut known = vars::known_vars(p.env.keys(), ports.iter());
        known.extend(self.extra_vars.iter().cloned());
        self.command(&p.command, &join(path, "command"), &known);
        for (field, value) in [("user", &p.user), ("group", &p.group)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                self.push(Problem::value(
                    join(path, field),
                    format!("`{field}` must not be empty"),
                ));
            }
        }
        for (field, value) in [("working_dir", &p.working_dir), ("pid_file", &p.pid_file)] {
            if let Some(dir) = value.as_ref().filter(|d| !d.is_absolute()) {
                self.push(
                    Problem::value(
                        join(path, field),
                        format!("{field} \"{}\" is not an absolute path", dir.display()),
                    )
                    .label("expected a path starting with '/'"),
                );
            }
        }
        if p.watchdog.is_some() && !p.notify {
            self.push(
                Problem::key(join(path, "watchdog"), "`watchdog` needs `notify = true`")
                    .label("only a process that talks sd_notify can ping a watchdog")
                    .help("add notify = true, and send WATCHDOG=1 from the process"),
            );
        }
        self.positive(p.watchdog, &join(path, "watchdog"));
        self.resources(p, path);
        for name in p.rlimits.keys() {
            if RLIMIT_NAMES.contains(&name.as_str()) {
                continue;
            }
            let mut problem = Problem::key(
                join(&join(path, "rlimits"), name),
                format!("unknown rlimit `{name}`"),
            )
            .label(format!("expected one of: {}", RLIMIT_NAMES.join(", ")));
            if let Some(c) = suggest::closest(name, RLIMIT_NAMES) {
                problem = problem.help(format!("did you mean `{c}`?"));
            }
            self.push(problem);
        }
        for (which, probe) in [
            ("liveness", &p.liveness),
            ("readiness", &p.readiness),
            ("startup", &p.startup),
        ] {
            let Some(probe) = probe else { continue };
            let at = join(path, which);
            if init {
                self.push(
                    Problem::key(&at, format!("an init process has no {which} probe"))
                        .label("init processes run to completion before the pod's processes start (as in Kubernetes)")
                        .help(format!("remove `{which}`, or move the check into one of `processes`")),
                );
                continue;
            }
            self.probe(probe, which, &at, ports, &p.env);
        }
        self.problems.extend(limits::exec_size(
            &p.command,
            &join(path, "command"),
            &p.env,
            Some(&join(path, "env")),
        ));
    }

    /// argv: not empty, a program, and every `${VAR}` one the process has.
    pub(super) fn command(&mut self, argv: &[String], path: &str, known: &[String]) {
        match argv.first() {
            None => {
                self.push(
                    Problem::value(path, "`command` must not be empty")
                        .label("expected the program and its arguments")
                        .help("write command = [\"/path/to/program\", \"arg\"]"),
                );
                return;
            }
            Some(prog) if prog.is_empty() => self.push(
                Problem::value(
                    format!("{path}[0]"),
                    "the program to run is an empty string",
                )
                .label("expected a program name or path"),
            ),
            Some(_) => {}
        }
        for (i, arg) in argv.iter().enumerate() {
            let at = format!("{path}[{i}]");
            for r in vars::var_refs(arg) {
                match r {
                    VarRef::Name { start, end, name } => {
                        if let Some(v) = vars::unknown_var(&name, known) {
                            let mut problem = Problem::inner(&at, (start, end), v.message);
                            if let Some(label) = v.label {
                                problem = problem.label(label);
                            }
                            if let Some(help) = v.help {
                                problem = problem.help(help);
                            }
                            self.push(problem);
                        }
                    }
                    VarRef::Unterminated { start } => self.push(
                        Problem::inner(&at, (start, start + 2), "unterminated `${` in command")
                            .label("no closing `}`")
                            .help("close it: `${NAME}`, or write `$${` for a literal `${`"),
                    ),
                }
            }
        }
    }

    fn resources(&mut self, p: &ProcessSpec, path: &str) {
        let Some(r) = &p.resources else { return };
        let at = join(path, "resources");
        let zero = [
            ("memory", r.memory.is_some_and(|m| m.0 == 0)),
            ("cpu", r.cpu.is_some_and(|c| c.0 == 0)),
            ("pids", r.pids == Some(0)),
        ];
        for (field, is_zero) in zero {
            if is_zero {
                self.push(
                    Problem::value(join(&at, field), format!("`{field}` must be more than 0"))
                        .label("a limit of 0 would stop the process from running at all")
                        .help(format!("remove `{field}` for no limit")),
                );
            }
        }
    }
}
