//! One `[program:x]` section -> a Pod, or a ReplicaSet for `numprocs > 1`
//! (or `autostart=false`, at 0 replicas).
//!
//! drover's replicas are identical, so `%(process_num)d` cannot differ
//! between them, except in a port (see `ports.rs`).

use super::expand::{self, Val};
use super::ini::{Entry, Section};
use super::ports::port_argument;
use super::shlex;
use crate::api::{Dur, PortRequest, RestartPolicy, Umask};
use crate::import::draft::{origin, Draft, DraftKind, DraftPod, DraftProcess, Origins};
use crate::import::systemd::exec::escape_literal;
use crate::import::systemd::values::signal_name;
use crate::import::{Host, Refusal, Warning};
use std::collections::BTreeMap;
use std::path::Path;

/// supervisord's default `stopwaitsecs`.
const DEFAULT_STOP_WAIT: u64 = 10;

/// The port a `%(process_num)` argument becomes.
const PORT_NAME: &str = "port";

pub struct Input<'a> {
    pub file: &'a str,
    pub section: &'a Section,
    pub program: &'a str,
    pub group: Option<&'a str>,
    pub here: &'a Path,
    pub host: &'a dyn Host,
}

/// Converts one program. Its warnings name the unit, so that the unit's
/// header lists them and not those of the other programs of the file.
pub fn convert(input: &Input, warnings: &mut Vec<Warning>) -> Result<Draft, Refusal> {
    let mut mine = Vec::new();
    let result = convert_program(input, &mut mine);
    let unit = result.as_ref().ok().map(|d| d.name.clone());
    for mut w in mine {
        w.unit = unit.clone();
        warnings.push(w);
    }
    result
}

/// Collects one program's warnings.
struct Report<'a> {
    file: &'a str,
    out: &'a mut Vec<Warning>,
}

impl Report<'_> {
    fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.out.push(Warning::new(self.file, Some(line), msg));
    }
    fn note(&mut self, line: usize, msg: impl Into<String>) {
        self.out.push(Warning::note(self.file, Some(line), msg));
    }
    fn refuse(&self, line: usize, msg: impl Into<String>) -> Refusal {
        Refusal::new(self.file, Some(line), msg)
    }
}

/// What the whole conversion of a program needs to know.
struct Program<'a> {
    input: &'a Input<'a>,
    /// `%(name)s` values other than process_num.
    names: BTreeMap<String, Val>,
    numprocs: i64,
    numprocs_line: Option<usize>,
    /// process_num of the first process.
    start: i64,
    autostart: bool,
    /// The drover name.
    name: String,
}

impl Program<'_> {
    fn is_pod(&self) -> bool {
        self.numprocs == 1 && self.autostart
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.input.section.get(key)
    }

    /// `e.value` expanded for process `n`; an unknown name is an error, as
    /// in supervisord.
    fn expand(&self, e: &Entry, n: i64, report: &mut Report) -> Result<String, Refusal> {
        let mut names = self.names.clone();
        names.insert("process_num".into(), Val::Int(n));
        let host = self.input.host;
        let lookup = |name: &str| -> Option<Val> {
            let var = name.strip_prefix("ENV_")?;
            Some(Val::Str(host.env(var).unwrap_or_default()))
        };
        let mut used = Vec::new();
        let out = expand::expand(&e.value, &names, &lookup, &mut used).map_err(|err| {
            report.refuse(e.line, format!("{}= cannot be expanded: {err}", e.key))
        })?;
        for var in used.iter().filter_map(|u| u.strip_prefix("ENV_")) {
            match host.env(var) {
                Some(v) => report.note(
                    e.line,
                    format!(
                        "%(ENV_{var})s is `{v}`, from the environment of this shell \
                         (supervisord reads its own at start)"
                    ),
                ),
                None => report.warn(
                    e.line,
                    format!(
                        "%(ENV_{var})s: {var} is not set in this shell; it expands to nothing \
                         (supervisord refuses a config whose variables it lacks)"
                    ),
                ),
            }
        }
        Ok(out)
    }
}

fn convert_program(input: &Input, warnings: &mut Vec<Warning>) -> Result<Draft, Refusal> {
    let mut report = Report {
        file: input.file,
        out: warnings,
    };
    let prog = program(input, &mut report)?;
    let (command, ports) = command(&prog, &mut report)?;
    let cmd_line = prog.entry("command").map_or(0, |e| e.line);
    let mut p = DraftProcess::new("main", command).from("command", origin("command", cmd_line));
    let mut pod = DraftPod {
        ports,
        ..DraftPod::default()
    };
    if !pod.ports.is_empty() {
        pod.origin.insert(
            "ports",
            format!("%(process_num) in command=, line {cmd_line}"),
        );
    }
    let stops = settings(&prog, &mut p, &mut report)?;
    pod.restart_policy = restarts(&prog, &stops, &mut pod.origin, &mut report)?;
    pod.termination_grace_period = Some(stop_wait(stops.stopwait, &mut pod.origin, &mut report));
    pod.processes.push(p);
    let mut origins = Origins::new();
    let kind = kind(&prog, &mut origins, &mut report);
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), prog.name.clone());
    if let Some(g) = input
        .group
        .and_then(|g| crate::import::names::unit_name(g, 63))
    {
        labels.insert("group".to_string(), g);
    }
    Ok(Draft {
        name: prog.name,
        kind,
        labels,
        pod,
        sources: vec![input.file.to_string()],
        about: vec![format!(
            "[program:{}], line {}",
            input.program, input.section.line
        )],
        origin: origins,
    })
}

/// The expansions, numprocs, autostart and the drover name.
fn program<'a>(input: &'a Input<'a>, report: &mut Report) -> Result<Program<'a>, Refusal> {
    let s = input.section;
    let int = |key: &str, default: i64, min: i64| -> Result<(i64, Option<usize>), Refusal> {
        match s.get(key) {
            None => Ok((default, None)),
            Some(e) => match e.value.trim().parse::<i64>() {
                Ok(n) if n >= min => Ok((n, Some(e.line))),
                _ => Err(report.refuse(
                    e.line,
                    format!(
                        "{key}={} is not a number of at least {min} (supervisord refuses it too)",
                        e.value
                    ),
                )),
            },
        }
    };
    let (numprocs, numprocs_line) = int("numprocs", 1, 1)?;
    let (start, _) = int("numprocs_start", 0, 0)?;
    let autostart = match s.get("autostart") {
        None => true,
        Some(e) => boolean(&e.value).unwrap_or_else(|| {
            report.warn(
                e.line,
                format!("autostart={} is not a boolean; true is used", e.value),
            );
            true
        }),
    };
    let mut names = BTreeMap::new();
    let text = |s: &str| Val::Str(s.to_string());
    names.insert("program_name".into(), text(input.program));
    names.insert(
        "group_name".into(),
        text(input.group.unwrap_or(input.program)),
    );
    names.insert(
        "host_node_name".into(),
        text(&input.host.hostname().unwrap_or_default()),
    );
    names.insert("here".into(), text(&input.here.display().to_string()));
    names.insert("numprocs".into(), Val::Int(numprocs));
    let max_name = if numprocs == 1 && autostart {
        DraftKind::Pod.max_name()
    } else {
        DraftKind::ReplicaSet { replicas: 0 }.max_name()
    };
    let Some(name) = super::drover_name(input.program, max_name) else {
        return Err(report.refuse(
            s.line,
            format!(
                "`{}` leaves no letters or digits for a drover name",
                input.program
            ),
        ));
    };
    if name != input.program {
        report.note(
            s.line,
            format!("named `{name}`: drover names are lowercase letters, digits and '-'"),
        );
    }
    Ok(Program {
        input,
        names,
        numprocs,
        numprocs_line,
        start,
        autostart,
        name,
    })
}

/// The argv (the same for every process, but for a port) and the ports.
fn command(
    prog: &Program,
    report: &mut Report,
) -> Result<(Vec<String>, Vec<PortRequest>), Refusal> {
    let Some(e) = prog.entry("command") else {
        return Err(report.refuse(
            prog.input.section.line,
            format!("[program:{}] has no command=", prog.input.program),
        ));
    };
    let mut argvs = Vec::new();
    for k in 0..prog.numprocs {
        let text = prog.expand(e, prog.start + k, report)?;
        let argv = shlex::split(&text)
            .map_err(|err| report.refuse(e.line, format!("command= cannot be split: {err}")))?;
        if argv.is_empty() {
            return Err(report.refuse(e.line, "command= is empty"));
        }
        argvs.push(argv);
    }
    // supervisord does not expand `${`: for drover it is `$${`.
    let mut command: Vec<String> = argvs[0].iter().map(|a| escape_literal(a)).collect();
    let mut ports = Vec::new();
    if argvs.iter().all(|a| *a == argvs[0]) {
        return Ok((command, ports));
    }
    let var = format!("PORT_{}", PORT_NAME.to_ascii_uppercase());
    match port_argument(&argvs) {
        Some(arg) => {
            command[arg.index] = format!("{}${{{var}}}", escape_literal(&arg.prefix));
            report.note(
                e.line,
                format!(
                    "%(process_num) makes the port of each process ({}..{}): each pod gets a \
                     free port from ports = {{ name = \"{PORT_NAME}\", range = \"{}\" }} as \
                     ${{{var}}}",
                    arg.range.first,
                    arg.range.last,
                    String::from(arg.range),
                ),
            );
            ports.push(PortRequest {
                name: PORT_NAME.into(),
                range: arg.range,
            });
        }
        None => report.warn(
            e.line,
            format!(
                "command= differs between the {} processes (%(process_num)); drover's replicas \
                 are identical: every pod runs it with process_num={}",
                prog.numprocs, prog.start
            ),
        ),
    }
    Ok((command, ports))
}

/// The settings that decide how the program restarts and stops.
#[derive(Default)]
struct Stops<'a> {
    autorestart: Option<&'a Entry>,
    exitcodes: Option<&'a Entry>,
    stopwait: Option<&'a Entry>,
}

/// Every key of the section, in file order: the process's fields, or a
/// warning or note at its line.
fn settings<'a>(
    prog: &Program<'a>,
    p: &mut DraftProcess,
    report: &mut Report,
) -> Result<Stops<'a>, Refusal> {
    let mut stops = Stops::default();
    for e in &prog.input.section.entries {
        match e.key.as_str() {
            "command" | "numprocs" | "numprocs_start" | "autostart" => {}
            "autorestart" => stops.autorestart = Some(e),
            "exitcodes" => stops.exitcodes = Some(e),
            "stopwaitsecs" => stops.stopwait = Some(e),
            "user" => {
                p.spec.user = Some(prog.expand(e, prog.start, report)?);
                p.origin.insert("user", origin("user", e.line));
            }
            "directory" => {
                let v = prog.expand(e, prog.start, report)?;
                if v.starts_with('/') {
                    p.spec.working_dir = Some(v.into());
                    p.origin.insert("working_dir", origin("directory", e.line));
                } else {
                    report.warn(
                        e.line,
                        format!("directory={v} is not an absolute path; not converted"),
                    );
                }
            }
            "umask" => match Umask::try_from(e.value.clone()) {
                Ok(u) => {
                    p.spec.umask = Some(u);
                    p.origin.insert("umask", origin("umask", e.line));
                }
                Err(why) => report.warn(e.line, format!("umask={}: {why}; not converted", e.value)),
            },
            "environment" => environment(prog, e, p, report)?,
            _ => unmapped(prog, e, report),
        }
    }
    Ok(stops)
}

/// `environment=KEY="val",KEY2=val2` -> env.
fn environment(
    prog: &Program,
    e: &Entry,
    p: &mut DraftProcess,
    report: &mut Report,
) -> Result<(), Refusal> {
    let texts: Vec<String> = (0..prog.numprocs)
        .map(|k| prog.expand(e, prog.start + k, report))
        .collect::<Result<_, _>>()?;
    if texts.iter().any(|t| *t != texts[0]) {
        report.warn(
            e.line,
            format!(
                "environment= differs between the {} processes (%(process_num)); every pod \
                 gets process_num={}",
                prog.numprocs, prog.start
            ),
        );
    }
    let pairs = shlex::key_value_pairs(&texts[0])
        .map_err(|err| report.refuse(e.line, format!("environment= cannot be read: {err}")))?;
    for (k, v) in pairs {
        if valid_env_name(&k) {
            // drover expands `${` in env values; supervisord does not.
            p.spec.env.insert(k, escape_literal(&v));
        } else {
            report.warn(
                e.line,
                format!("`{k}` is not a valid variable name; not converted"),
            );
        }
    }
    p.origin.insert("env", origin("environment", e.line));
    Ok(())
}

/// The settings drover has no field for.
fn unmapped(prog: &Program, e: &Entry, report: &mut Report) {
    let key = e.key.as_str();
    let v = e.value.as_str();
    match key {
        "process_name" if prog.numprocs > 1 => report.note(
            e.line,
            "process_name= is not needed: a ReplicaSet names its pods NAME-xxxxx",
        ),
        "process_name" => report.note(
            e.line,
            "process_name= is not needed: the pod is named after the program",
        ),
        "startsecs" => report.note(
            e.line,
            format!(
                "startsecs={v}: drover counts a process as started at once (a startup or \
                 readiness probe says when it is really up); one that keeps exiting early is \
                 restarted with backoff (CrashLoopBackOff) rather than marked FATAL"
            ),
        ),
        "startretries" => report.warn(
            e.line,
            format!(
                "startretries={v}: drover never gives up restarting; it backs off (10s doubling \
                 to 5m)"
            ),
        ),
        "stopsignal" => {
            if signal_name(v).as_deref() != Some("TERM") {
                report.warn(
                    e.line,
                    format!(
                        "stopsignal={v}: drover stops processes with SIGTERM (then SIGKILL after \
                         termination_grace_period); the program must stop on SIGTERM too"
                    ),
                );
            }
        }
        "stopasgroup" | "killasgroup" => {
            if boolean(v) == Some(false) {
                report.note(
                    e.line,
                    format!("{key}=false: drover signals the program's whole process group"),
                );
            }
        }
        "priority" => report.warn(
            e.line,
            format!(
                "priority={v}: drover starts units in no particular order; to wait for another, \
                 add an init process running drover wait"
            ),
        ),
        "redirect_stderr" => report.note(
            e.line,
            "redirect_stderr=: drover writes stdout and stderr to one log (drover logs)",
        ),
        k if k.starts_with("stdout_") || k.starts_with("stderr_") => report.warn(
            e.line,
            format!(
                "{key}={v}: drover keeps the output in its own log, rotated by size (drover logs \
                 POD); not converted"
            ),
        ),
        "serverurl" => report.note(e.line, "serverurl= is for supervisorctl; not needed"),
        _ => report.warn(
            e.line,
            format!("{key}= is not a [program:x] setting drover import knows; not converted"),
        ),
    }
}

/// `autorestart` (and `exitcodes`) -> restart_policy.
fn restarts(
    prog: &Program,
    stops: &Stops,
    origins: &mut Origins,
    report: &mut Report,
) -> Result<RestartPolicy, Refusal> {
    let policy = match stops.autorestart {
        None => {
            origins.insert(
                "restart_policy",
                "autorestart not set: supervisord's default is unexpected".into(),
            );
            RestartPolicy::OnFailure
        }
        Some(e) => {
            origins.insert("restart_policy", origin("autorestart", e.line));
            match e.value.to_ascii_lowercase().as_str() {
                "unexpected" => RestartPolicy::OnFailure,
                v => match boolean(v) {
                    Some(true) => RestartPolicy::Always,
                    Some(false) => RestartPolicy::Never,
                    None => {
                        return Err(report.refuse(
                            e.line,
                            format!("autorestart={} is not true, false or unexpected", e.value),
                        ))
                    }
                },
            }
        }
    };
    if let Some(e) = stops.exitcodes {
        let codes: Vec<&str> = e.value.split(',').map(str::trim).collect();
        if codes != ["0"] {
            report.warn(
                e.line,
                format!(
                    "exitcodes={}: for drover only exit status 0 is expected; OnFailure restarts \
                     after any other",
                    e.value
                ),
            );
        }
    }
    if prog.is_pod() || policy == RestartPolicy::Always {
        return Ok(policy);
    }
    // A ReplicaSet replaces a pod that ended, so its processes run again
    // after any exit anyway: say so rather than pretend.
    let line = stops
        .autorestart
        .map_or(prog.input.section.line, |e| e.line);
    report.warn(
        line,
        format!(
            "autorestart={}: a ReplicaSet keeps its pods running and replaces one whose process \
             ended, so the program is restarted after any exit (restart_policy Always)",
            stops.autorestart.map_or("unexpected", |e| e.value.as_str())
        ),
    );
    Ok(RestartPolicy::Always)
}

/// `stopwaitsecs` -> termination_grace_period (supervisord waits 10s, not
/// drover's 30s, when it is not set).
fn stop_wait(stopwait: Option<&Entry>, origins: &mut Origins, report: &mut Report) -> Dur {
    let secs = match stopwait {
        None => {
            origins.insert(
                "termination_grace_period",
                format!("stopwaitsecs not set: supervisord's default is {DEFAULT_STOP_WAIT}"),
            );
            DEFAULT_STOP_WAIT
        }
        Some(e) => match e.value.trim().parse::<u64>() {
            Ok(n) => {
                origins.insert("termination_grace_period", origin("stopwaitsecs", e.line));
                n
            }
            Err(_) => {
                report.warn(
                    e.line,
                    format!(
                        "stopwaitsecs={} is not a number of seconds; {DEFAULT_STOP_WAIT} is used",
                        e.value
                    ),
                );
                DEFAULT_STOP_WAIT
            }
        },
    };
    Dur::secs(secs.max(1))
}

/// A Pod, or a ReplicaSet of numprocs (0 while autostart=false).
fn kind(prog: &Program, origins: &mut Origins, report: &mut Report) -> DraftKind {
    if prog.is_pod() {
        return DraftKind::Pod;
    }
    let replicas = match prog.numprocs_line {
        Some(l) => {
            origins.insert("replicas", origin("numprocs", l));
            prog.numprocs as u32
        }
        None => {
            origins.insert("replicas", "numprocs not set: 1".into());
            1
        }
    };
    if prog.autostart {
        return DraftKind::ReplicaSet { replicas };
    }
    let line = prog
        .entry("autostart")
        .map_or(prog.input.section.line, |e| e.line);
    origins.insert(
        "replicas",
        format!("autostart=false, line {line}: scale up to start it"),
    );
    report.note(
        line,
        format!(
            "autostart=false: converted to a ReplicaSet with replicas = 0; start it with drover \
             scale rs {} --replicas {replicas}",
            prog.name
        ),
    );
    DraftKind::ReplicaSet { replicas: 0 }
}

fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// supervisord's booleans.
fn boolean(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}
