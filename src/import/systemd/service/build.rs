//! Building the pod from the collected `[Service]` settings.

use super::super::exec::{self, Command, Env, Privilege};
use super::super::values::{self, Size, Span};
use super::super::{directives, envfile, specifiers, Report};
use super::{Input, ServicePod, Settings};
use crate::api::{CpuQuantity, Dur, MemoryQuantity, Resources, RestartPolicy, RlimitValue, Umask};
use crate::import::draft::{origin, Origins};
use crate::import::{DraftKind, DraftPod, DraftProcess, Refusal};
use std::collections::BTreeMap;
use std::io;
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

/// systemd's DefaultTimeoutStopSec.
const SYSTEMD_STOP_TIMEOUT: Dur = Dur::secs(90);

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

fn line_of(e: Option<&super::Entry>) -> usize {
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

fn resolve(input: &Input, text: &str, line: usize, report: &mut Report) -> String {
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

/// `Environment=`, `EnvironmentFile=` (read now), `UnsetEnvironment=`,
/// and the folders of `RuntimeDirectory=` and its siblings (an init
/// process that makes them, and their variables).
fn environment(
    input: &Input,
    s: &Settings,
    report: &mut Report,
) -> (BTreeMap<String, String>, Option<DraftProcess>) {
    let mut env = BTreeMap::new();
    for e in &s.environment {
        let mut notes = Vec::new();
        let words = match exec::split_words(&e.value, &mut notes) {
            Ok(w) => w,
            Err(err) => {
                report.warn(
                    e.line,
                    format!("Environment= cannot be read ({err}); systemd ignores it too"),
                );
                continue;
            }
        };
        for n in notes {
            report.note(e.line, n);
        }
        for w in words {
            let w = resolve(input, &w, e.line, report);
            match w.split_once('=') {
                Some((k, v)) if valid_env_name(k) => {
                    env.insert(k.to_string(), v.to_string());
                }
                _ => report.warn(
                    e.line,
                    format!("`{w}` is not a valid assignment (NAME=VALUE); systemd ignores it too"),
                ),
            }
        }
    }
    // Later files override Environment= and earlier files, as in systemd.
    for e in &s.environment_files {
        let (optional, raw) = match e.value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, e.value.as_str()),
        };
        let path = resolve(input, raw, e.line, report);
        if path.contains(['*', '?', '[']) {
            report.warn(
                e.line,
                format!("EnvironmentFile={path}: wildcards are not expanded; list the files"),
            );
            continue;
        }
        match input.host.read(path.as_ref()) {
            Ok(text) => {
                let mut n = 0;
                for a in envfile::parse(&text) {
                    if valid_env_name(&a.key) {
                        env.insert(a.key, a.value);
                        n += 1;
                    } else {
                        report.note(
                            e.line,
                            format!(
                                "{path}:{}: `{}` is not a valid variable name; systemd drops it too",
                                a.line, a.key
                            ),
                        );
                    }
                }
                report.note(
                    e.line,
                    format!(
                        "EnvironmentFile={path} was read now: {n} variable(s) copied into env; \
                         drover does not re-read the file, so edit env (or import again) when it \
                         changes"
                    ),
                );
            }
            Err(err) if optional && err.kind() == io::ErrorKind::NotFound => report.note(
                e.line,
                format!("EnvironmentFile=-{path} does not exist: skipped, as systemd skips it"),
            ),
            Err(err) => report.warn(
                e.line,
                format!(
                    "EnvironmentFile={path} cannot be read ({err}): its variables are missing \
                     from the drover unit{}",
                    if optional {
                        ""
                    } else {
                        " (systemd would refuse to start the service)"
                    }
                ),
            ),
        }
    }
    for e in &s.unset_environment {
        for w in e.value.split_whitespace() {
            match w.split_once('=') {
                Some((k, v)) => {
                    if env.get(k).is_some_and(|cur| cur == v) {
                        env.remove(k);
                    }
                }
                None => {
                    env.remove(w);
                }
            }
        }
    }
    let init = directories(input, s, &mut env, report);
    (env, init)
}

/// Which directives the env came from, for its comment.
fn env_origin(s: &Settings) -> String {
    let mut from: Vec<String> = Vec::new();
    for (key, entries) in [
        ("Environment", &s.environment),
        ("EnvironmentFile", &s.environment_files),
    ] {
        if !entries.is_empty() {
            let lines: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
            from.push(format!("{key}=, line {}", lines.join(", ")));
        }
    }
    if !s.directories.is_empty() {
        from.push("the folders made for the service".into());
    }
    from.join("; ")
}

fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `RuntimeDirectory=redis` -> an init process running
/// `install -d -m 0755 /run/redis && chown redis:redis /run/redis`, and
/// `RUNTIME_DIRECTORY=/run/redis` in env.
fn directories(
    input: &Input,
    s: &Settings,
    env: &mut BTreeMap<String, String>,
    report: &mut Report,
) -> Option<DraftProcess> {
    let owner = match (s.user, s.group) {
        (Some(u), Some(g)) => Some(format!("{}:{}", u.value, g.value)),
        // `chown user:` gives the folder the user's login group.
        (Some(u), None) => Some(format!("{}:", u.value)),
        (None, Some(g)) => Some(format!(":{}", g.value)),
        (None, None) => None,
    };
    let mut steps = Vec::new();
    let mut from = Vec::new();
    for (i, entries) in &s.directories {
        let (directive, base, var, chown) = directives::DIRECTORIES[*i];
        let mut paths = Vec::new();
        for e in entries {
            for name in e.value.split_whitespace() {
                let name = resolve(input, name, e.line, report);
                if name.starts_with('/') || name.split('/').any(|c| c == "..") {
                    report.warn(
                        e.line,
                        format!("{directive}={name} must be a relative path; not converted"),
                    );
                    continue;
                }
                paths.push(format!("{base}/{name}"));
            }
        }
        if paths.is_empty() {
            continue;
        }
        from.push(format!(
            "{directive}=, line {}",
            entries.first().map_or(0, |e| e.line)
        ));
        if let Some(m) = s.directory_modes.get(i) {
            from.push(format!("{directive}Mode=, line {}", m.line));
        }
        let mode = match s.directory_modes.get(i) {
            Some(m) => match Umask::try_from(m.value.clone()) {
                Ok(u) => format!("{:04o}", u.0),
                Err(_) => {
                    report.warn(
                        m.line,
                        format!(
                            "{directive}Mode={} is not an octal mode; 0755 is used",
                            m.value
                        ),
                    );
                    "0755".into()
                }
            },
            None => "0755".into(),
        };
        let quoted: Vec<String> = paths.iter().map(|p| sh_quote(p)).collect();
        let mut step = format!("install -d -m {mode} {}", quoted.join(" "));
        let owned_by = owner.as_ref().filter(|_| chown);
        if let Some(o) = owned_by {
            step.push_str(&format!(" && chown {} {}", sh_quote(o), quoted.join(" ")));
        }
        steps.push(step);
        env.insert(var.to_string(), paths.join(":"));
        let first = entries.first().map_or(0, |e| e.line);
        report.note(
            first,
            format!(
                "{directive}=: an init process creates {} (mode {mode}{}) before the service \
                 starts, and ${var} is set; drover does not remove the folder when the pod stops",
                paths.join(" "),
                owned_by.map_or(String::new(), |o| format!(", owner {o}")),
            ),
        );
    }
    if steps.is_empty() {
        return None;
    }
    let mut p = DraftProcess::new(
        "make-directories",
        vec!["/bin/sh".into(), "-c".into(), steps.join(" && ")],
    );
    p.origin.insert("command", from.join("; "));
    Some(p)
}

/// Single-quotes a word for sh when it needs it.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn limits(s: &Settings, p: &mut DraftProcess, report: &mut Report) {
    let mut lines = Vec::new();
    for (name, e) in &s.limits {
        match rlimit(name, &e.value) {
            Ok((v, note)) => {
                p.spec.rlimits.insert(name.to_string(), v);
                lines.push(format!("{}, line {}", e.key, e.line));
                if let Some(n) = note {
                    report.warn(e.line, n);
                }
            }
            Err(why) => report.warn(
                e.line,
                format!("{}={}: {why}; not converted", e.key, e.value),
            ),
        }
    }
    if !lines.is_empty() {
        p.origin.insert("rlimits", lines.join("; "));
    }
}

/// One `Limit*=` value as drover's rlimit (soft and hard alike).
fn rlimit(name: &str, value: &str) -> Result<(RlimitValue, Option<String>), String> {
    let (soft, note) = match value.split_once(':') {
        Some((soft, hard)) if soft != hard => (
            soft,
            Some(format!(
                "`{value}` is a soft and a hard limit; drover sets one value as both: the soft \
                 limit {soft} (the process cannot raise it to {hard})"
            )),
        ),
        Some((soft, _)) => (soft, None),
        None => (value, None),
    };
    let soft = soft.trim();
    if soft == "infinity" {
        return Ok((RlimitValue::Unlimited, note));
    }
    let n: u64 = match name {
        "cpu" => match values::time_span(soft, Duration::from_secs(1)) {
            Some(Span::Finite(d)) => d.as_secs().max(1),
            Some(Span::Infinite) => return Ok((RlimitValue::Unlimited, note)),
            None => return Err("expected seconds".into()),
        },
        "rttime" => match values::time_span(soft, Duration::from_micros(1)) {
            Some(Span::Finite(d)) => d.as_micros() as u64,
            Some(Span::Infinite) => return Ok((RlimitValue::Unlimited, note)),
            None => return Err("expected a time span".into()),
        },
        "as" | "core" | "data" | "fsize" | "memlock" | "msgqueue" | "rss" | "stack" => {
            match values::size(soft) {
                Some(Size::Bytes(b)) => b,
                Some(Size::Infinite) => return Ok((RlimitValue::Unlimited, note)),
                _ => return Err("expected a size such as 64M".into()),
            }
        }
        "nice" => {
            // `+5`/`-5` is a nice level; a bare number is the raw limit.
            if let Some(level) = soft.strip_prefix(['+', '-']) {
                let level: i64 = level.parse().map_err(|_| "expected a nice level")?;
                let level = if soft.starts_with('-') { -level } else { level };
                if !(-20..=19).contains(&level) {
                    return Err("a nice level is -20..19".into());
                }
                (20 - level) as u64
            } else {
                soft.parse().map_err(|_| "expected a number")?
            }
        }
        _ => soft.parse().map_err(|_| "expected a number or infinity")?,
    };
    Ok((RlimitValue::Limit(n), note))
}

fn resources(s: &Settings, p: &mut DraftProcess, report: &mut Report) {
    let mut r = Resources::default();
    let mut from = Vec::new();
    if let Some(e) = s.memory_max {
        match values::size(&e.value) {
            Some(Size::Bytes(b)) => {
                r.memory = Some(MemoryQuantity(b));
                from.push(format!("{}, line {}", e.key, e.line));
            }
            Some(Size::Infinite) => {}
            Some(Size::Percent(_)) => report.warn(
                e.line,
                format!(
                    "{}={}: a share of the host's memory is not converted; give a size",
                    e.key, e.value
                ),
            ),
            None => report.warn(
                e.line,
                format!("{}={} is not a size; not converted", e.key, e.value),
            ),
        }
    }
    if let Some(e) = s.cpu_quota {
        let pct = e
            .value
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok());
        match pct {
            Some(p) if p > 0.0 => {
                r.cpu = Some(CpuQuantity((p * 10.0).round() as u64));
                from.push(format!("CPUQuota, line {}", e.line));
            }
            _ => report.warn(
                e.line,
                format!("CPUQuota={} is not a percentage; not converted", e.value),
            ),
        }
    }
    if let Some(e) = s.tasks_max {
        match e.value.as_str() {
            "infinity" => {}
            v => match v.parse::<u64>() {
                Ok(n) => {
                    r.pids = Some(n);
                    from.push(format!("TasksMax, line {}", e.line));
                }
                Err(_) => report.warn(
                    e.line,
                    format!(
                        "TasksMax={v}: only a number of tasks is converted (not a share of \
                         the host's limit)"
                    ),
                ),
            },
        }
    }
    if !r.is_empty() {
        p.spec.resources = Some(r);
        p.origin.insert("resources", from.join("; "));
    }
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

fn truncate_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

fn restart_policy(s: &Settings, report: &mut Report, origins: &mut Origins) -> RestartPolicy {
    let Some(e) = s.restart else {
        origins.insert(
            "restart_policy",
            "Restart= not set: systemd's default is no".into(),
        );
        return RestartPolicy::Never;
    };
    origins.insert("restart_policy", origin("Restart", e.line));
    match e.value.as_str() {
        "no" => RestartPolicy::Never,
        "always" => RestartPolicy::Always,
        "on-failure" => RestartPolicy::OnFailure,
        v @ ("on-abnormal" | "on-abort" | "on-watchdog") => {
            report.warn(
                e.line,
                format!(
                    "Restart={v} restarts only after a signal or timeout; drover's OnFailure also \
                     restarts after a non-zero exit"
                ),
            );
            RestartPolicy::OnFailure
        }
        "on-success" => {
            report.warn(
                e.line,
                "Restart=on-success has no drover equivalent: converted to Always, which also \
                 restarts after a failure",
            );
            RestartPolicy::Always
        }
        other => {
            report.warn(
                e.line,
                format!("Restart={other} is not a restart setting systemd knows; converted as no"),
            );
            RestartPolicy::Never
        }
    }
}

/// A oneshot service runs to completion: a Job (whose restart_policy must
/// be OnFailure or Never).
fn oneshot(
    input: &Input,
    s: &Settings,
    policy: RestartPolicy,
    pod: &mut DraftPod,
    report: &mut Report,
) -> DraftKind {
    let policy = match policy {
        RestartPolicy::Always => {
            report.warn(
                line_of(s.restart),
                "Restart=always is not allowed for Type=oneshot (systemd refuses it too); \
                 converted as on-failure",
            );
            RestartPolicy::OnFailure
        }
        p => p,
    };
    pod.restart_policy = policy;
    if let Some(e) = s.remain_after_exit {
        if values::boolean(&e.value) == Some(true) {
            report.note(
                e.line,
                "RemainAfterExit=yes: a completed Job stays Complete, as the service stays active",
            );
        }
    }
    let backoff_limit = match policy {
        // systemd runs it once.
        RestartPolicy::Never => 0,
        _ => 6,
    };
    if !input.timed {
        report.note(
            line_of(s.kind),
            "Type=oneshot: converted to a Job, which runs once to completion (and never again, \
             also across drover restarts; delete it to run it again)",
        );
    }
    DraftKind::Job { backoff_limit }
}

fn grace(s: &Settings, pod: &mut DraftPod, report: &mut Report) {
    let Some(e) = s.timeout_stop else {
        pod.termination_grace_period = Some(SYSTEMD_STOP_TIMEOUT);
        pod.origin.insert(
            "termination_grace_period",
            "TimeoutStopSec= not set: systemd's default is 90s".into(),
        );
        return;
    };
    match values::time_span(&e.value, Duration::from_secs(1)) {
        Some(Span::Finite(d)) if !d.is_zero() => {
            pod.termination_grace_period = Some(Dur(truncate_ms(d).max(Duration::from_millis(1))));
            pod.origin
                .insert("termination_grace_period", origin(&e.key, e.line));
        }
        Some(_) => report.warn(
            e.line,
            format!(
                "{}={}: systemd waits without limit for the service to stop; drover needs a \
                 bound and uses its default (30s): set termination_grace_period if the \
                 service needs longer",
                e.key, e.value
            ),
        ),
        None => report.warn(
            e.line,
            format!("{}={} is not a time span; not converted", e.key, e.value),
        ),
    }
}

fn stopping(s: &Settings, report: &mut Report) {
    if let Some(e) = s.kill_signal {
        match values::signal_name(&e.value).as_deref() {
            Some("TERM") => {}
            _ => report.warn(
                e.line,
                format!(
                    "KillSignal={}: drover stops processes with SIGTERM (then SIGKILL after \
                     termination_grace_period); the program must stop on SIGTERM too",
                    e.value
                ),
            ),
        }
    }
    if let Some(e) = s.kill_mode {
        match e.value.as_str() {
            "control-group" => {}
            "mixed" => report.note(
                e.line,
                "KillMode=mixed: drover sends SIGTERM to every process of the service, not only \
                 the main one (as KillMode=control-group); SIGKILL goes to all alike",
            ),
            v => report.warn(
                e.line,
                format!(
                    "KillMode={v}: drover stops the whole process tree; processes the service \
                     leaves behind (such as ssh sessions or cron jobs) do not survive a stop or \
                     restart of the pod"
                ),
            ),
        }
    }
}

/// ExecReload= cannot run; say how to reload under drover.
fn reload(input: &Input, s: &Settings, kind: &DraftKind, report: &mut Report) {
    let noun = match kind {
        DraftKind::Pod => "pod",
        DraftKind::ReplicaSet { .. } => "rs",
        DraftKind::Job { .. } | DraftKind::CronJob { .. } => return reload_job(s, report),
    };
    for e in &s.exec_reload {
        let words: Vec<&str> = e.value.split_whitespace().collect();
        let msg = match reload_signal(&words) {
            Some(sig) => format!(
                "ExecReload= has no drover equivalent: use drover kill {noun} {} --signal {sig}",
                input.name
            ),
            None => format!(
                "ExecReload= has no drover equivalent: if the program reloads on a signal, use \
                 drover kill {noun} {} --signal HUP; else run `{}` by hand",
                input.name, e.value
            ),
        };
        report.warn(e.line, msg);
    }
}

fn reload_job(s: &Settings, report: &mut Report) {
    for e in &s.exec_reload {
        report.warn(
            e.line,
            "ExecReload= has no drover equivalent for a Job; not converted",
        );
    }
}

/// `kill -HUP $MAINPID`, `/bin/kill -s USR1 $MAINPID`: the signal.
fn reload_signal(words: &[&str]) -> Option<String> {
    let prog = words.first()?.trim_start_matches(['-', '@', ':', '+', '!']);
    if !(prog == "kill" || prog.ends_with("/kill")) {
        return None;
    }
    if !words.iter().any(|w| w.contains("MAINPID")) {
        return None;
    }
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        if *w == "-s" || *w == "--signal" {
            return it.next().and_then(|s| values::signal_name(s));
        }
        if let Some(sig) = w.strip_prefix('-') {
            if let Some(name) = values::signal_name(sig) {
                return Some(name);
            }
        }
    }
    Some("TERM".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits() {
        let ok = |name: &str, v: &str| rlimit(name, v).map(|(v, _)| v);
        assert_eq!(ok("nofile", "65535"), Ok(RlimitValue::Limit(65535)));
        assert_eq!(ok("core", "infinity"), Ok(RlimitValue::Unlimited));
        assert_eq!(ok("memlock", "64M"), Ok(RlimitValue::Limit(64 << 20)));
        assert_eq!(ok("cpu", "1h"), Ok(RlimitValue::Limit(3600)));
        assert_eq!(ok("rttime", "5s"), Ok(RlimitValue::Limit(5_000_000)));
        assert_eq!(ok("nice", "-5"), Ok(RlimitValue::Limit(25)));
        assert_eq!(ok("nice", "30"), Ok(RlimitValue::Limit(30)));
        assert_eq!(ok("nofile", "1024:524288"), Ok(RlimitValue::Limit(1024)));
        assert!(rlimit("nofile", "1024:524288").unwrap().1.is_some());
        assert!(rlimit("nofile", "lots").is_err());
    }

    #[test]
    fn reload_signals() {
        let sig = |line: &str| reload_signal(&line.split_whitespace().collect::<Vec<_>>());
        assert_eq!(sig("/bin/kill -HUP $MAINPID").as_deref(), Some("HUP"));
        assert_eq!(sig("kill -s USR1 $MAINPID").as_deref(), Some("USR1"));
        assert_eq!(
            sig("/bin/kill -SIGUSR2 ${MAINPID}").as_deref(),
            Some("USR2")
        );
        assert_eq!(sig("/bin/kill $MAINPID").as_deref(), Some("TERM"));
        assert_eq!(sig("/usr/sbin/sshd -t"), None);
        assert_eq!(sig("/usr/sbin/nginx -s reload"), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/run/redis"), "/run/redis");
        assert_eq!(sh_quote("redis:"), "redis:");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
