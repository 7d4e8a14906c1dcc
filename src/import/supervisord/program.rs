//! One `[program:x]` section -> a Pod, or a ReplicaSet for `numprocs > 1`.
//!
//! drover's replicas are identical, so `%(process_num)d` cannot differ
//! between them, with one exception that covers its common use: when the
//! processes' commands differ in one argument that holds consecutive
//! numbers (`--port=80%(process_num)02d` -> 8000, 8001, ...), those become
//! a port range and the argument `${PORT_PORT}`: each pod gets its own
//! free port from the range.

use super::expand::{self, Val};
use super::ini::{Entry, Section};
use super::shlex;
use crate::api::{Dur, PortRange, PortRequest, RestartPolicy, Umask};
use crate::import::draft::{origin, Draft, DraftKind, DraftPod, DraftProcess, Origins};
use crate::import::systemd::exec::escape_literal;
use crate::import::systemd::values::signal_name;
use crate::import::{Host, Refusal, Warning};
use std::collections::BTreeMap;
use std::path::Path;

/// supervisord's default `stopwaitsecs`.
const DEFAULT_STOP_WAIT: u64 = 10;

/// The port the `%(process_num)` argument becomes.
const PORT_NAME: &str = "port";

pub struct Input<'a> {
    pub file: &'a str,
    pub section: &'a Section,
    pub program: &'a str,
    pub group: Option<&'a str>,
    pub here: &'a Path,
    pub host: &'a dyn Host,
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

/// The expansions of one program, for one process number.
struct Expander<'a> {
    input: &'a Input<'a>,
    names: BTreeMap<String, Val>,
}

impl Expander<'_> {
    fn with_process(&self, n: i64) -> BTreeMap<String, Val> {
        let mut names = self.names.clone();
        names.insert("process_num".into(), Val::Int(n));
        names
    }

    /// `e.value` expanded for process `n`; unknown names are an error.
    fn expand(&self, e: &Entry, n: i64, report: &mut Report) -> Result<String, Refusal> {
        let names = self.with_process(n);
        let host = self.input.host;
        let lookup = |name: &str| -> Option<Val> {
            let var = name.strip_prefix("ENV_")?;
            Some(Val::Str(host.env(var).unwrap_or_default()))
        };
        let mut used = Vec::new();
        let out = expand::expand(&e.value, &names, &lookup, &mut used).map_err(|err| {
            report.refuse(e.line, format!("{}= cannot be expanded: {err}", e.key))
        })?;
        for u in used {
            if let Some(var) = u.strip_prefix("ENV_") {
                match host.env(var) {
                    Some(v) => report.note(
                        e.line,
                        format!(
                            "%({u})s is `{v}`, from the environment of this shell (supervisord \
                             reads its own at start)"
                        ),
                    ),
                    None => report.warn(
                        e.line,
                        format!(
                            "%({u})s: {var} is not set in this shell; it expands to nothing \
                             (supervisord would refuse the config if its own environment lacks it)"
                        ),
                    ),
                }
            }
        }
        Ok(out)
    }
}

pub fn convert(input: &Input, warnings: &mut Vec<Warning>) -> Result<Draft, Refusal> {
    let mut mine = Vec::new();
    let result = convert_program(input, &mut mine);
    // A config holds many programs: each warning says which unit it is
    // about, so that unit's header lists it.
    let unit = result.as_ref().ok().map(|d| d.name.clone());
    for mut w in mine {
        w.unit = unit.clone();
        warnings.push(w);
    }
    result
}

fn convert_program(input: &Input, warnings: &mut Vec<Warning>) -> Result<Draft, Refusal> {
    let mut report = Report {
        file: input.file,
        out: warnings,
    };
    let s = input.section;
    let line = s.line;
    let mut names = BTreeMap::new();
    names.insert(
        "program_name".to_string(),
        Val::Str(input.program.to_string()),
    );
    names.insert(
        "group_name".to_string(),
        Val::Str(input.group.unwrap_or(input.program).to_string()),
    );
    names.insert(
        "host_node_name".to_string(),
        Val::Str(input.host.hostname().unwrap_or_default()),
    );
    names.insert(
        "here".to_string(),
        Val::Str(input.here.display().to_string()),
    );
    let mut ex = Expander { input, names };

    let int = |key: &str,
               default: i64,
               min: i64,
               report: &mut Report|
     -> Result<(i64, Option<usize>), Refusal> {
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
    let (numprocs, numprocs_line) = int("numprocs", 1, 1, &mut report)?;
    let (start, _) = int("numprocs_start", 0, 0, &mut report)?;
    ex.names.insert("numprocs".into(), Val::Int(numprocs));

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
    let is_pod = numprocs == 1 && autostart;
    let max_name = if is_pod {
        DraftKind::Pod.max_name()
    } else {
        DraftKind::ReplicaSet { replicas: 0 }.max_name()
    };
    let Some(name) = super::drover_name(input.program, max_name) else {
        return Err(report.refuse(
            line,
            format!(
                "`{}` leaves no letters or digits for a drover name",
                input.program
            ),
        ));
    };
    if name != input.program {
        report.note(
            line,
            format!("named `{name}`: drover names are lowercase letters, digits and '-'"),
        );
    }

    let Some(cmd_entry) = s.get("command") else {
        return Err(report.refuse(line, format!("[program:{}] has no command=", input.program)));
    };

    // The command of every process; they differ only through process_num.
    let mut argvs = Vec::new();
    for k in 0..numprocs {
        let text = ex.expand(cmd_entry, start + k, &mut report)?;
        let argv = shlex::split(&text)
            .map_err(|e| report.refuse(cmd_entry.line, format!("command= cannot be split: {e}")))?;
        if argv.is_empty() {
            return Err(report.refuse(cmd_entry.line, "command= is empty"));
        }
        argvs.push(argv);
    }
    let mut ports = Vec::new();
    let mut command: Vec<String> = argvs[0].iter().map(|a| escape_literal(a)).collect();
    if argvs.iter().any(|a| *a != argvs[0]) {
        match port_argument(&argvs) {
            Some((i, prefix, range, suffix)) => {
                command[i] = format!(
                    "{}${{PORT_{}}}{}",
                    escape_literal(&prefix),
                    PORT_NAME.to_ascii_uppercase(),
                    escape_literal(&suffix)
                );
                report.note(
                    cmd_entry.line,
                    format!(
                        "%(process_num) makes the port of each process ({}..{}): each pod gets a \
                         free port from ports = {{ name = \"{PORT_NAME}\", range = \"{}\" }} as \
                         ${{PORT_{}}}",
                        range.first,
                        range.last,
                        String::from(range),
                        PORT_NAME.to_ascii_uppercase()
                    ),
                );
                ports.push(PortRequest {
                    name: PORT_NAME.into(),
                    range,
                });
            }
            None => report.warn(
                cmd_entry.line,
                format!(
                    "command= differs between the {numprocs} processes (%(process_num)); drover's \
                     replicas are identical: every pod runs it with process_num={start}"
                ),
            ),
        }
    }

    let mut p =
        DraftProcess::new("main", command).from("command", origin("command", cmd_entry.line));
    let mut pod = DraftPod {
        ports,
        ..DraftPod::default()
    };
    if !pod.ports.is_empty() {
        pod.origin.insert(
            "ports",
            format!("%(process_num) in command=, line {}", cmd_entry.line),
        );
    }
    let mut origins = Origins::new();
    let mut autorestart: Option<&Entry> = None;
    let mut exitcodes: Option<&Entry> = None;
    let mut stopwait: Option<&Entry> = None;

    // Every key of the section, in file order.
    for e in &s.entries {
        let key = e.key.as_str();
        match key {
            "command" | "numprocs" | "numprocs_start" => {}
            "process_name" => {
                if numprocs > 1 {
                    report.note(
                        e.line,
                        "process_name= is not needed: a ReplicaSet names its pods NAME-xxxxx",
                    );
                }
            }
            "user" => {
                let v = ex.expand(e, start, &mut report)?;
                p.spec.user = Some(v);
                p.origin.insert("user", origin("user", e.line));
            }
            "directory" => {
                let v = ex.expand(e, start, &mut report)?;
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
            "environment" => {
                let texts: Vec<String> = (0..numprocs)
                    .map(|k| ex.expand(e, start + k, &mut report))
                    .collect::<Result<_, _>>()?;
                if texts.iter().any(|t| *t != texts[0]) {
                    report.warn(
                        e.line,
                        format!(
                            "environment= differs between the {numprocs} processes \
                             (%(process_num)); every pod gets process_num={start}"
                        ),
                    );
                }
                let pairs = shlex::key_value_pairs(&texts[0]).map_err(|err| {
                    report.refuse(e.line, format!("environment= cannot be read: {err}"))
                })?;
                for (k, v) in pairs {
                    if valid_env_name(&k) {
                        p.spec.env.insert(k, escape_literal(&v));
                    } else {
                        report.warn(
                            e.line,
                            format!("`{k}` is not a valid variable name; not converted"),
                        );
                    }
                }
                p.origin.insert("env", origin("environment", e.line));
            }
            "autostart" => {}
            "autorestart" => autorestart = Some(e),
            "exitcodes" => exitcodes = Some(e),
            "stopwaitsecs" => stopwait = Some(e),
            "startsecs" => report.note(
                e.line,
                format!(
                    "startsecs={}: drover counts a process as started at once (a startup or \
                     readiness probe says when it is really up); one that keeps exiting early is \
                     restarted with backoff (CrashLoopBackOff) rather than marked FATAL",
                    e.value
                ),
            ),
            "startretries" => report.warn(
                e.line,
                format!(
                    "startretries={}: drover never gives up restarting; it backs off (10s \
                     doubling to 5m)",
                    e.value
                ),
            ),
            "stopsignal" => match signal_name(&e.value).as_deref() {
                Some("TERM") => {}
                _ => report.warn(
                    e.line,
                    format!(
                        "stopsignal={}: drover stops processes with SIGTERM (then SIGKILL after \
                         termination_grace_period); the program must stop on SIGTERM too",
                        e.value
                    ),
                ),
            },
            "stopasgroup" | "killasgroup" => {
                if boolean(&e.value) == Some(false) {
                    report.note(
                        e.line,
                        format!("{key}=false: drover signals the program's whole process group"),
                    );
                }
            }
            "priority" => report.warn(
                e.line,
                format!(
                    "priority={}: drover starts units in no particular order; to wait for \
                     another, add an init process running drover wait",
                    e.value
                ),
            ),
            "redirect_stderr" => report.note(
                e.line,
                "redirect_stderr=: drover writes stdout and stderr to one log (drover logs)",
            ),
            k if k.starts_with("stdout_") || k.starts_with("stderr_") => report.warn(
                e.line,
                format!(
                    "{key}={}: drover keeps the output in its own log, rotated by size (drover \
                     logs POD); not converted",
                    e.value
                ),
            ),
            "serverurl" => report.note(e.line, "serverurl= is for supervisorctl; not needed"),
            _ => report.warn(
                e.line,
                format!("{key}= is not a [program:x] setting drover import knows; not converted"),
            ),
        }
    }

    // Restarts.
    let policy = match autorestart {
        None => {
            pod.origin.insert(
                "restart_policy",
                "autorestart not set: supervisord's default is unexpected".into(),
            );
            RestartPolicy::OnFailure
        }
        Some(e) => {
            pod.origin
                .insert("restart_policy", origin("autorestart", e.line));
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
    pod.restart_policy = if !is_pod && policy != RestartPolicy::Always {
        // A ReplicaSet replaces a pod that ended, so its processes run
        // again after any exit anyway: say so rather than pretend.
        let l = autorestart.map_or(line, |e| e.line);
        report.warn(
            l,
            format!(
                "autorestart={}: a ReplicaSet keeps its pods running and replaces one whose \
                 process ended, so the program is restarted after any exit (restart_policy \
                 Always)",
                autorestart.map_or("unexpected", |e| e.value.as_str())
            ),
        );
        RestartPolicy::Always
    } else {
        policy
    };
    if let Some(e) = exitcodes {
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
    // Stopping: supervisord's default wait is 10s, not drover's 30s.
    let wait = match stopwait {
        None => {
            pod.origin.insert(
                "termination_grace_period",
                format!("stopwaitsecs not set: supervisord's default is {DEFAULT_STOP_WAIT}"),
            );
            DEFAULT_STOP_WAIT
        }
        Some(e) => match e.value.trim().parse::<u64>() {
            Ok(n) => {
                pod.origin
                    .insert("termination_grace_period", origin("stopwaitsecs", e.line));
                n
            }
            Err(_) => {
                report.warn(
                    e.line,
                    format!("stopwaitsecs={} is not a number of seconds", e.value),
                );
                DEFAULT_STOP_WAIT
            }
        },
    };
    pod.termination_grace_period = Some(Dur::secs(wait.max(1)));

    let replicas = if autostart { numprocs as u32 } else { 0 };
    let kind = if is_pod {
        DraftKind::Pod
    } else {
        match numprocs_line {
            Some(l) => {
                origins.insert("replicas", origin("numprocs", l));
            }
            None => {
                origins.insert("replicas", "numprocs not set: 1".into());
            }
        }
        if !autostart {
            let l = s.get("autostart").map_or(line, |e| e.line);
            origins.insert(
                "replicas",
                format!("autostart=false, line {l}: scale up to start it"),
            );
            report.note(
                l,
                format!(
                    "autostart=false: converted to a ReplicaSet with replicas = 0; start it with \
                     drover scale rs {name} --replicas {numprocs}"
                ),
            );
        }
        DraftKind::ReplicaSet { replicas }
    };
    pod.processes.push(p);
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), name.clone());
    if let Some(g) = input.group {
        if let Some(g) = crate::import::names::unit_name(g, 63) {
            labels.insert("group".to_string(), g);
        }
    }
    Ok(Draft {
        name,
        kind,
        labels,
        pod,
        sources: vec![input.file.to_string()],
        about: vec![format!("[program:{}], line {line}", input.program)],
        origin: origins,
    })
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

/// The one argument in which the processes' commands differ, when it is
/// `prefix N suffix` with N consecutive port numbers: (index, prefix,
/// range, suffix).
fn port_argument(argvs: &[Vec<String>]) -> Option<(usize, String, PortRange, String)> {
    let first = &argvs[0];
    if argvs.iter().any(|a| a.len() != first.len()) {
        return None;
    }
    let differing: Vec<usize> = (0..first.len())
        .filter(|i| argvs.iter().any(|a| a[*i] != first[*i]))
        .collect();
    let [i] = differing[..] else { return None };
    let words: Vec<&str> = argvs.iter().map(|a| a[i].as_str()).collect();
    // The longest common prefix and suffix, then the digits between.
    let prefix_len = common_prefix(&words);
    let suffix_len = common_suffix(&words, prefix_len);
    // Digits of the prefix belong to the number ("80" of "8000").
    let mut p = prefix_len;
    while p > 0 && words[0].as_bytes()[p - 1].is_ascii_digit() {
        p -= 1;
    }
    let mut sfx = suffix_len;
    while sfx > 0 && words[0].as_bytes()[words[0].len() - sfx].is_ascii_digit() {
        sfx -= 1;
    }
    let mut numbers = Vec::new();
    for w in &words {
        let digits = &w[p..w.len() - sfx];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers.push(digits.parse::<u32>().ok()?);
    }
    let consecutive = numbers.windows(2).all(|w| w[1] == w[0] + 1);
    let first_port = u16::try_from(numbers[0]).ok()?;
    let last_port = u16::try_from(*numbers.last()?).ok()?;
    // A port ends its argument (`--port=8001`, `127.0.0.1:8001`) and is
    // not a privileged one; anything else (`/tmp/app-1.sock`) is not.
    if !consecutive || first_port < 1024 || sfx != 0 {
        return None;
    }
    let w = words[0];
    Some((
        i,
        w[..p].to_string(),
        PortRange {
            first: first_port,
            last: last_port,
        },
        w[w.len() - sfx..].to_string(),
    ))
}

fn common_prefix(words: &[&str]) -> usize {
    let first = words[0].as_bytes();
    let mut n = first.len();
    for w in &words[1..] {
        n = n.min(
            first
                .iter()
                .zip(w.as_bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    n
}

fn common_suffix(words: &[&str], prefix: usize) -> usize {
    let first = words[0].as_bytes();
    let mut n = first.len() - prefix;
    for w in &words[1..] {
        let m = first
            .iter()
            .rev()
            .zip(w.as_bytes().iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        n = n.min(m).min(w.len() - prefix);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(words: &[&str]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|w| vec!["app".to_string(), w.to_string(), "-v".to_string()])
            .collect()
    }

    #[test]
    fn a_process_number_in_a_port_becomes_a_port_range() {
        let got = port_argument(&argvs(&["--port=8000", "--port=8001", "--port=8002"])).unwrap();
        assert_eq!(got.0, 1);
        assert_eq!(got.1, "--port=");
        assert_eq!(String::from(got.2), "8000-8002");
        assert_eq!(got.3, "");
        let got = port_argument(&argvs(&["127.0.0.1:9010", "127.0.0.1:9011"])).unwrap();
        assert_eq!(
            (got.1.as_str(), String::from(got.2)),
            ("127.0.0.1:", "9010-9011".into())
        );
        let got = port_argument(&argvs(&["9998", "9999", "10000"])).unwrap();
        assert_eq!(String::from(got.2), "9998-10000");
        // Not a port: in a path, privileged, not numbers, not consecutive,
        // too large.
        assert!(port_argument(&argvs(&["/tmp/a-1024.sock", "/tmp/a-1025.sock"])).is_none());
        assert!(port_argument(&argvs(&["80", "81"])).is_none());
        assert!(port_argument(&argvs(&["worker-a", "worker-b"])).is_none());
        assert!(port_argument(&argvs(&["8000", "8002"])).is_none());
        assert!(port_argument(&argvs(&["70000", "70001"])).is_none());
    }
}
