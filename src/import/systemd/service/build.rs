//! Building the pod from the collected `[Service]` settings.

use super::super::exec::{self, Command, Env, Privilege};
use super::super::values::{self, Span};
use super::super::{specifiers, Report};
use super::environment::{env_origin, environment};
use super::lifecycle::{grace, oneshot, reload, restart_policy, stopping, truncate_ms};
use super::limits::{limits, resources};
use super::{Input, ServicePod, Settings};
use crate::api::{Dur, Umask};
use crate::import::draft::origin;
use crate::import::{DraftKind, DraftPod, DraftProcess, Refusal};
use std::collections::BTreeMap;
use std::time::Duration;

/// Variables every drover process inherits, which `${NAME}` may name
/// without the unit setting them (drover's validator knows the same list).
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "DROVER_POD_NAME",
    "DROVER_NODE_NAME",
    "DROVER_POD_UID",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServiceType {
    Simple,
    Notify,
    Forking,
    Oneshot,
}

pub fn build(input: &Input, s: &Settings, report: &mut Report) -> Result<ServicePod, Refusal> {
    let ty = service_type(s, report);
    let mut pod = DraftPod::default();

    let (env, dirs_init) = environment(input, s, report);

    // ExecStart=: one command, or several for oneshot.
    let mut starts: Vec<(Command, usize)> = Vec::new();
    for e in &s.exec_start {
        for c in parse_exec(input, e.value.as_str(), e.line, "ExecStart", report)? {
            starts.push((c, e.line));
        }
    }
    let Some((main_cmd, main_line)) = starts.pop() else {
        return Err(report.refuse(
            None,
            "no ExecStart=: there is nothing to run (a unit that only groups others has no \
             drover equivalent)",
        ));
    };
    if !starts.is_empty() && ty != ServiceType::Oneshot {
        return Err(report.refuse(
            Some(main_line),
            "more than one ExecStart= is only allowed for Type=oneshot (systemd refuses this \
             unit too)",
        ));
    }

    let user = s
        .user
        .map(|e| (resolve(input, &e.value, e.line, report), e.line));
    let group = s
        .group
        .map(|e| (resolve(input, &e.value, e.line, report), e.line));
    let working_dir = working_dir(input, s, report);

    // The settings every command of the service shares.
    let mut base = DraftProcess::default();
    if let Some((u, line)) = &user {
        base.spec.user = Some(u.clone());
        base.origin.insert("user", origin("User", *line));
    }
    if let Some((g, line)) = &group {
        base.spec.group = Some(g.clone());
        base.origin.insert("group", origin("Group", *line));
    }
    if let Some((w, line)) = working_dir {
        base.spec.working_dir = Some(w.into());
        base.origin
            .insert("working_dir", origin("WorkingDirectory", line));
    }
    limits(s, &mut base, report);
    if let Some(e) = s.umask {
        match Umask::try_from(e.value.clone()) {
            Ok(u) => {
                base.spec.umask = Some(u);
                base.origin.insert("umask", origin("UMask", e.line));
            }
            Err(why) => report.warn(e.line, format!("UMask={}: {why}; not converted", e.value)),
        }
    }
    // drover expands `${NAME}` in env values too: a literal `${` in a
    // value is written `$${`. Commands expand from the values as read.
    if !env.is_empty() {
        base.spec.env = env
            .iter()
            .map(|(k, v)| (k.clone(), exec::escape_literal(v)))
            .collect();
        base.origin.insert("env", env_origin(s));
    }

    // The main process.
    let mut main = base.clone();
    main.spec.name = "main".into();
    main.spec.command = command_argv(&main_cmd, main_line, "ExecStart", &env, report);
    main.origin
        .insert("command", origin("ExecStart", main_line));
    if main_cmd.ignore_failure {
        report.warn(
            main_line,
            "the `-` prefix of ExecStart= (a failure counts as success) has no drover \
             equivalent: a non-zero exit is a failure for restart_policy",
        );
    }
    privileges(&main_cmd, main_line, "ExecStart", &mut main, report);
    match ty {
        ServiceType::Notify => {
            main.spec.notify = true;
            main.origin
                .insert("notify", origin("Type", line_of(s.kind)));
        }
        ServiceType::Forking => match s.pid_file {
            Some(e) => {
                let path = resolve(input, &e.value, e.line, report);
                main.spec.pid_file = Some(path.into());
                main.origin.insert(
                    "pid_file",
                    format!(
                        "Type=forking, line {}; PIDFile=, line {}",
                        line_of(s.kind),
                        e.line
                    ),
                );
            }
            None => {
                return Err(report.refuse(
                    Some(line_of(s.kind)),
                    "Type=forking without PIDFile=: once the started process forks and exits, \
                     drover cannot tell which process to supervise; add PIDFile= (where the \
                     daemon writes its pid), or run the daemon in the foreground (most have a \
                     flag such as -f or --foreground) with Type=simple",
                ))
            }
        },
        ServiceType::Simple | ServiceType::Oneshot => {}
    }
    if let (Some(e), false) = (s.pid_file, ty == ServiceType::Forking) {
        report.note(
            e.line,
            "PIDFile= only matters for Type=forking: drover supervises the process it starts",
        );
    }
    watchdog(s, ty, &mut main, report);
    resources(s, &mut main, report);
    if let Some(e) = s.no_new_privileges {
        if values::boolean(&e.value) == Some(false) {
            report.note(
                e.line,
                "NoNewPrivileges=no: drover sets no_new_privs on every process unless the unit \
                 sets allow_privilege_escalation = true (root-owned units only); set it if the \
                 service runs setuid programs",
            );
        }
    }

    // Init processes: folders, ExecStartPre=, then earlier oneshot commands.
    if let Some(init) = dirs_init {
        pod.init_processes.push(init);
    }
    let mut pre: Vec<(Command, usize)> = Vec::new();
    for e in &s.exec_start_pre {
        for c in parse_exec(input, e.value.as_str(), e.line, "ExecStartPre", report)? {
            pre.push((c, e.line));
        }
    }
    let numbered = |prefix: &str, i: usize, n: usize| {
        if n == 1 {
            prefix.to_string()
        } else {
            format!("{prefix}-{}", i + 1)
        }
    };
    let n = pre.len();
    for (i, (c, line)) in pre.iter().enumerate() {
        let p = init_process(
            &base,
            &numbered("start-pre", i, n),
            c,
            *line,
            "ExecStartPre",
            &env,
            report,
        );
        pod.init_processes.push(p);
    }
    let n = starts.len();
    for (i, (c, line)) in starts.iter().enumerate() {
        let p = init_process(
            &base,
            &numbered("start", i, n),
            c,
            *line,
            "ExecStart",
            &env,
            report,
        );
        pod.init_processes.push(p);
    }
    pod.processes.push(main);

    // How it restarts and stops.
    let policy = restart_policy(s, report, &mut pod.origin);
    let kind = match ty {
        ServiceType::Oneshot => oneshot(input, s, policy, &mut pod, report),
        _ => {
            pod.restart_policy = policy;
            if let Some(e) = s.remain_after_exit {
                if values::boolean(&e.value) == Some(true) {
                    report.warn(
                        e.line,
                        "RemainAfterExit=yes only means something for Type=oneshot; not converted",
                    );
                }
            }
            DraftKind::Pod
        }
    };
    grace(s, &mut pod, report);
    stopping(s, report);
    reload(input, s, &kind, report);
    Ok(ServicePod { kind, pod })
}

pub(super) fn line_of(e: Option<&super::Entry>) -> usize {
    e.map_or(0, |e| e.line)
}

fn service_type(s: &Settings, report: &mut Report) -> ServiceType {
    let Some(e) = s.kind else {
        return ServiceType::Simple;
    };
    match e.value.as_str() {
        "simple" | "exec" | "idle" => ServiceType::Simple,
        "notify" => ServiceType::Notify,
        "notify-reload" => {
            report.warn(
                e.line,
                "Type=notify-reload: converted as notify; drover does not send a reload \
                 signal (use drover kill pod NAME --signal HUP)",
            );
            ServiceType::Notify
        }
        "forking" => ServiceType::Forking,
        "oneshot" => ServiceType::Oneshot,
        "dbus" => {
            report.warn(
                e.line,
                "Type=dbus: drover does not watch the bus name; the service counts as started \
                 once its process runs (as Type=simple)",
            );
            ServiceType::Simple
        }
        other => {
            report.warn(
                e.line,
                format!("Type={other} is not a service type systemd knows; converted as simple"),
            );
            ServiceType::Simple
        }
    }
}

pub(super) fn resolve(input: &Input, text: &str, line: usize, report: &mut Report) -> String {
    let mut notes = Vec::new();
    let out = match specifiers::resolve(text, &input.ctx, &mut notes) {
        Ok(s) => s,
        Err(e) => {
            report.warn(line, format!("{e}; kept as written"));
            text.to_string()
        }
    };
    for n in notes {
        report.note(line, n);
    }
    out
}

fn parse_exec(
    input: &Input,
    value: &str,
    line: usize,
    key: &str,
    report: &mut Report,
) -> Result<Vec<Command>, Refusal> {
    let mut notes = Vec::new();
    let cmds = exec::parse(value, &input.ctx, &mut notes)
        .map_err(|e| report.refuse(Some(line), format!("{key}= cannot be read: {e}")))?;
    for n in notes {
        report.note(line, n);
    }
    Ok(cmds)
}

fn command_argv(
    cmd: &Command,
    line: usize,
    key: &str,
    env: &BTreeMap<String, String>,
    report: &mut Report,
) -> Vec<String> {
    if let Some(argv0) = &cmd.argv0 {
        report.warn(
            line,
            format!(
                "the `@` prefix of {key}= sets argv[0] to `{argv0}`: drover runs the program \
                 with its path as argv[0]"
            ),
        );
    }
    let (argv, notes) = exec::to_argv(
        cmd,
        &Env {
            unit: env,
            inherited: INHERITED,
        },
    );
    for n in notes {
        report.note(line, n);
    }
    argv
}

/// `+`, `!`, `!!`: the command runs without User=/Group=.
fn privileges(cmd: &Command, line: usize, key: &str, p: &mut DraftProcess, report: &mut Report) {
    let why = match cmd.privilege {
        Privilege::AsUser | Privilege::AmbientFallback => return,
        Privilege::Full => "`+` (full privileges)",
        Privilege::NoSetuid => "`!` (the program changes user itself)",
    };
    if p.spec.user.is_some() || p.spec.group.is_some() {
        report.note(
            line,
            format!("{key}= has the prefix {why}: it runs without User=/Group=, as root"),
        );
    }
    p.spec.user = None;
    p.spec.group = None;
    p.origin.remove("user");
    p.origin.remove("group");
}

#[allow(clippy::too_many_arguments)]
fn init_process(
    base: &DraftProcess,
    name: &str,
    cmd: &Command,
    line: usize,
    key: &str,
    env: &BTreeMap<String, String>,
    report: &mut Report,
) -> DraftProcess {
    let mut p = base.clone();
    p.spec.name = name.to_string();
    let argv = command_argv(cmd, line, key, env, report);
    p.spec.command = if cmd.ignore_failure {
        report.note(
            line,
            format!(
                "{key}= has the prefix `-` (a failure is ignored): the init process runs it \
                 as `sh -c '\"$@\" || true'`"
            ),
        );
        let mut wrapped = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "\"$@\" || true".to_string(),
            "sh".to_string(),
        ];
        wrapped.extend(argv);
        wrapped
    } else {
        argv
    };
    p.origin.insert("command", origin(key, line));
    privileges(cmd, line, key, &mut p, report);
    p
}

fn working_dir(input: &Input, s: &Settings, report: &mut Report) -> Option<(String, usize)> {
    let e = s.working_dir?;
    let mut v = e.value.as_str();
    if let Some(rest) = v.strip_prefix('-') {
        report.note(
            e.line,
            "WorkingDirectory=- (ignored when missing): drover fails to start the process \
             when the folder is missing",
        );
        v = rest;
    }
    if v == "~" {
        report.warn(
            e.line,
            "WorkingDirectory=~ (the user's home) is not resolved ahead of time; set \
             working_dir to the home folder",
        );
        return None;
    }
    let path = resolve(input, v, e.line, report);
    if !path.starts_with('/') {
        report.warn(
            e.line,
            format!("WorkingDirectory={path} is not an absolute path; not converted"),
        );
        return None;
    }
    Some((path, e.line))
}

fn watchdog(s: &Settings, ty: ServiceType, p: &mut DraftProcess, report: &mut Report) {
    let Some(e) = s.watchdog else { return };
    match values::time_span(&e.value, Duration::from_secs(1)) {
        Some(Span::Finite(d)) if d.is_zero() => {}
        Some(Span::Infinite) => {}
        Some(Span::Finite(d)) if ty == ServiceType::Notify => {
            p.spec.watchdog = Some(Dur(truncate_ms(d)));
            p.origin.insert("watchdog", origin("WatchdogSec", e.line));
        }
        Some(Span::Finite(_)) => report.warn(
            e.line,
            "WatchdogSec= without Type=notify: drover's watchdog needs notify = true (the \
             process pings it with sd_notify WATCHDOG=1); not converted",
        ),
        None => report.warn(
            e.line,
            format!("WatchdogSec={} is not a time span", e.value),
        ),
    }
}
