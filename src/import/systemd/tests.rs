//! Conversions of Debian's own service files (tests/fixtures/import, see
//! its README for the package versions) and of small units written here.

use super::*;
use crate::api::{ProcessSpec, RestartPolicy, RlimitValue};
use crate::import::draft::Field;
use crate::import::{emit, MemoryHost, Severity};

const SYSTEM: &str = "/lib/systemd/system";

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/fixtures/import/systemd/", $name)),
        )
    };
}

const FIXTURES: &[(&str, &str)] = &[
    fixture!("redis-server.service"),
    fixture!("nginx.service"),
    fixture!("memcached.service"),
    fixture!("cron.service"),
    fixture!("ssh.service"),
    fixture!("rsyslog.service"),
    fixture!("logrotate.timer"),
    fixture!("logrotate.service"),
    fixture!("apt-daily.timer"),
    fixture!("apt-daily.service"),
    fixture!("e2scrub_all.timer"),
    fixture!("e2scrub_all.service"),
    fixture!("systemd-tmpfiles-clean.timer"),
    fixture!("systemd-tmpfiles-clean.service"),
];

/// The fixtures where Debian installs them, plus the files they read.
fn debian() -> MemoryHost {
    let mut h = MemoryHost {
        hostname: Some("box".into()),
        ..MemoryHost::default()
    };
    for (name, text) in FIXTURES {
        h = h.with_file(format!("{SYSTEM}/{name}"), *text);
    }
    h.with_file(
        "/etc/default/cron",
        include_str!("../../../tests/fixtures/import/etc/default/cron"),
    )
    .with_file(
        "/etc/default/ssh",
        include_str!("../../../tests/fixtures/import/etc/default/ssh"),
    )
}

fn run(host: &MemoryHost, paths: &[&str]) -> Outcome {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    convert(&paths, host)
}

fn system(name: &str) -> String {
    format!("{SYSTEM}/{name}")
}

/// Converts one Debian file; it must convert.
fn debian_one(name: &str) -> (Draft, Outcome) {
    let out = run(&debian(), &[&system(name)]);
    assert!(out.refusals.is_empty(), "{name}: {:?}", out.refusals);
    assert_eq!(out.drafts.len(), 1, "{name}");
    (out.drafts[0].clone(), out)
}

fn main_process(d: &Draft) -> &ProcessSpec {
    &d.pod.processes[0].spec
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A warning (or note) at `line` containing `needle`.
fn said(out: &Outcome, line: usize, severity: Severity, needle: &str) -> bool {
    out.warnings
        .iter()
        .any(|w| w.line == Some(line) && w.severity == severity && w.message.contains(needle))
}

fn assert_said(out: &Outcome, line: usize, severity: Severity, needle: &str) {
    assert!(
        said(out, line, severity, needle),
        "no {severity:?} at line {line} with `{needle}`; got:\n{}",
        out.warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn redis_server() {
    let (d, out) = debian_one("redis-server.service");
    assert_eq!(
        (d.name.as_str(), &d.kind),
        ("redis-server", &DraftKind::Pod)
    );
    let p = main_process(&d);
    assert_eq!(
        p.command,
        argv(&[
            "/usr/bin/redis-server",
            "/etc/redis/redis.conf",
            "--supervised",
            "systemd",
            "--daemonize",
            "no"
        ])
    );
    assert_eq!(p.user.as_deref(), Some("redis"));
    assert_eq!(p.group.as_deref(), Some("redis"));
    assert!(p.notify, "Type=notify");
    assert_eq!(p.umask.map(|u| u.0), Some(0o007));
    assert_eq!(p.rlimits.get("nofile"), Some(&RlimitValue::Limit(65535)));
    assert_eq!(
        p.env.get("RUNTIME_DIRECTORY").map(String::as_str),
        Some("/run/redis")
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::Always);
    // RuntimeDirectory=redis with RuntimeDirectoryMode=2755: made first.
    let init = &d.pod.init_processes[0].spec;
    assert_eq!(init.name, "make-directories");
    assert_eq!(
        init.command,
        argv(&[
            "/bin/sh",
            "-c",
            "install -d -m 2755 /run/redis && chown redis:redis /run/redis"
        ])
    );
    assert_eq!(init.user, None, "it must run as root to chown");
    // TimeoutStopSec=0: no bound in systemd; drover keeps its default.
    assert_eq!(d.pod.termination_grace_period, None);
    assert_said(&out, 10, Severity::Warning, "drover needs a bound");
    assert_said(&out, 18, Severity::Warning, "PrivateTmp=true: sandboxing");
    assert_said(&out, 64, Severity::Warning, "Alias=redis.service");
}

#[test]
fn nginx() {
    let (d, out) = debian_one("nginx.service");
    let p = main_process(&d);
    assert_eq!(
        p.command,
        argv(&["/usr/sbin/nginx", "-g", "daemon on; master_process on;"])
    );
    // Type=forking with PIDFile=.
    assert_eq!(
        p.pid_file.as_deref(),
        Some(std::path::Path::new("/run/nginx.pid"))
    );
    let pre = &d.pod.init_processes[0].spec;
    assert_eq!(pre.name, "start-pre");
    assert_eq!(
        pre.command,
        argv(&[
            "/usr/sbin/nginx",
            "-t",
            "-q",
            "-g",
            "daemon on; master_process on;"
        ])
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::Never, "no Restart=");
    assert_eq!(
        d.pod.termination_grace_period,
        Some(crate::api::Dur::secs(5))
    );
    assert_said(
        &out,
        24,
        Severity::Warning,
        "use drover kill pod nginx --signal HUP",
    );
    assert_said(&out, 25, Severity::Warning, "ExecStop= is not run");
    assert_said(&out, 27, Severity::Note, "KillMode=mixed");
    assert_said(&out, 16, Severity::Note, "After=network-online.target");
}

#[test]
fn memcached() {
    let (d, out) = debian_one("memcached.service");
    assert_eq!(
        main_process(&d).command,
        argv(&[
            "/usr/share/memcached/scripts/systemd-memcached-wrapper",
            "/etc/memcached.conf"
        ])
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::Always);
    // No TimeoutStopSec=: systemd's 90s, not drover's 30s.
    assert_eq!(
        d.pod.termination_grace_period,
        Some(crate::api::Dur::secs(90))
    );
    assert_said(
        &out,
        78,
        Severity::Note,
        "PIDFile= only matters for Type=forking",
    );
    assert_said(&out, 39, Severity::Warning, "CapabilityBoundingSet");
}

#[test]
fn cron() {
    let (d, out) = debian_one("cron.service");
    let p = main_process(&d);
    // $EXTRA_OPTS is commented out in /etc/default/cron: no argument.
    assert_eq!(p.command, argv(&["/usr/sbin/cron", "-f"]));
    assert_eq!(p.env.get("READ_ENV").map(String::as_str), Some("yes"));
    assert_eq!(d.pod.restart_policy, RestartPolicy::OnFailure);
    assert_said(
        &out,
        7,
        Severity::Note,
        "EnvironmentFile=/etc/default/cron was read now",
    );
    assert_said(&out, 8, Severity::Note, "`$EXTRA_OPTS` is not set");
    assert_said(&out, 10, Severity::Warning, "KillMode=process");
}

#[test]
fn ssh() {
    let (d, out) = debian_one("ssh.service");
    let p = main_process(&d);
    assert_eq!(p.command, argv(&["/usr/sbin/sshd", "-D"]));
    assert!(p.notify);
    assert_eq!(p.env.get("SSHD_OPTS").map(String::as_str), Some(""));
    let names: Vec<&str> = d
        .pod
        .init_processes
        .iter()
        .map(|p| p.spec.name.as_str())
        .collect();
    assert_eq!(names, vec!["make-directories", "start-pre"]);
    assert_eq!(
        d.pod.init_processes[0].spec.command[2], "install -d -m 0755 /run/sshd",
        "no User=: no chown"
    );
    assert_eq!(
        d.pod.init_processes[1].spec.command,
        argv(&["/usr/sbin/sshd", "-t"])
    );
    assert_said(&out, 5, Severity::Warning, "ConditionPathExists");
    assert_said(
        &out,
        12,
        Severity::Warning,
        "drover kill pod ssh --signal HUP",
    );
    assert_said(&out, 15, Severity::Warning, "RestartPreventExitStatus=255");
    assert_said(
        &out,
        4,
        Severity::Warning,
        "After=auditd.service: not converted in this run",
    );
}

#[test]
fn rsyslog() {
    let (d, out) = debian_one("rsyslog.service");
    let p = main_process(&d);
    assert_eq!(p.command, argv(&["/usr/sbin/rsyslogd", "-n", "-iNONE"]));
    assert!(p.notify);
    assert_eq!(p.rlimits.get("nofile"), Some(&RlimitValue::Limit(16384)));
    assert_said(&out, 3, Severity::Warning, "socket activation");
    assert_said(&out, 11, Severity::Warning, "StandardOutput=null");
}

/// Every assignment of every Debian file is converted (its line is named
/// in a comment of the unit), reported, or one of the few that only
/// describe (Description=, Documentation=) or equal drover's behaviour.
#[test]
fn no_line_is_dropped_silently() {
    let silent_ok = |key: &str, value: &str| {
        matches!(
            (key, value),
            ("Description" | "Documentation", _)
                | ("Type", "simple" | "notify" | "oneshot" | "forking")
                | ("IgnoreSIGPIPE", "false")
                | ("NoNewPrivileges", "true" | "yes")
                | ("KillMode", "control-group")
                | ("KillSignal", "SIGTERM" | "TERM")
                | ("Unit", _)
        )
    };
    for (name, text) in FIXTURES {
        let out = run(&debian(), &[&system(name)]);
        let (unit, _) = parse::parse(text);
        let origins: Vec<String> = out
            .drafts
            .iter()
            .flat_map(|d| {
                let pod = &d.pod;
                d.origin
                    .values()
                    .chain(pod.origin.values())
                    .chain(pod.processes.iter().flat_map(|p| p.origin.values()))
                    .chain(pod.init_processes.iter().flat_map(|p| p.origin.values()))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let refused = !out.refusals.is_empty();
        for s in &unit.sections {
            for e in &s.entries {
                let line = e.line;
                let mentioned = origins.iter().any(|o| {
                    o.contains(&format!("line {line}")) || o.contains(&format!(", {line}"))
                });
                let reported = out.warnings.iter().any(|w| w.line == Some(line))
                    || out.refusals.iter().any(|r| r.line == Some(line));
                assert!(
                    mentioned || reported || silent_ok(&e.key, &e.value) || refused,
                    "{name}:{line}: {}={} is neither converted nor reported",
                    e.key,
                    e.value
                );
            }
        }
    }
}

#[test]
fn a_timer_and_its_service_become_a_cron_job() {
    let out = run(
        &debian(),
        &[&system("logrotate.timer"), &system("logrotate.service")],
    );
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    assert_eq!(out.drafts.len(), 1, "the service is the job's template");
    let d = &out.drafts[0];
    assert_eq!(d.name, "logrotate");
    assert_eq!(
        d.kind,
        DraftKind::CronJob {
            schedule: "@daily".into(),
            time_zone: None,
            concurrency_policy: crate::api::ConcurrencyPolicy::Forbid,
            // Persistent=true: a run missed while down starts later.
            starting_deadline: None,
            backoff_limit: 0,
        }
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::Never);
    assert_eq!(
        main_process(d).command,
        argv(&["/usr/sbin/logrotate", "/etc/logrotate.conf"])
    );
    assert_eq!(
        d.sources,
        vec![system("logrotate.timer"), system("logrotate.service")]
    );
    let timer = system("logrotate.timer");
    assert!(out
        .warnings
        .iter()
        .any(|w| w.file == timer && w.line == Some(7) && w.message.contains("AccuracySec")));
    let service = system("logrotate.service");
    assert!(out
        .warnings
        .iter()
        .any(|w| w.file == service && w.line == Some(12) && w.message.contains("Nice=19")));
}

#[test]
fn a_timer_finds_its_service_beside_it() {
    let out = run(&debian(), &[&system("e2scrub_all.timer")]);
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    let d = &out.drafts[0];
    match &d.kind {
        DraftKind::CronJob {
            schedule,
            starting_deadline,
            ..
        } => {
            assert_eq!(schedule, "10 3 * * 0", "Sun *-*-* 03:10:00");
            assert_eq!(*starting_deadline, None, "Persistent=true");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        main_process(d).env.get("SERVICE_MODE").map(String::as_str),
        Some("1")
    );
    assert!(out
        .warnings
        .iter()
        .any(|w| w.message.contains("e2scrub_all.service was read from")));
}

#[test]
fn apt_daily_keeps_its_failure_tolerant_pre_command() {
    let out = run(&debian(), &[&system("apt-daily.timer")]);
    let d = &out.drafts[0];
    match &d.kind {
        DraftKind::CronJob { schedule, .. } => assert_eq!(schedule, "0 6,18 * * *"),
        other => panic!("{other:?}"),
    }
    // ExecStartPre=-/usr/lib/apt/apt-helper wait-online: failure ignored.
    assert_eq!(
        d.pod.init_processes[0].spec.command,
        argv(&[
            "/bin/sh",
            "-c",
            "\"$@\" || true",
            "sh",
            "/usr/lib/apt/apt-helper",
            "wait-online"
        ])
    );
    let timer = system("apt-daily.timer");
    assert!(out
        .warnings
        .iter()
        .any(|w| w.file == timer && w.line == Some(6) && w.message.contains("RandomizedDelaySec")));
}

#[test]
fn a_timer_without_a_calendar_is_refused_with_the_reason() {
    let out = run(&debian(), &[&system("systemd-tmpfiles-clean.timer")]);
    assert!(out.drafts.is_empty());
    let r = &out.refusals[0];
    assert!(r.reason.contains("no OnCalendar="), "{r}");
    assert!(r.reason.contains("OnBootSec=15min"), "{r}");
    assert!(out.warnings.iter().any(|w| w
        .message
        .contains("OnUnitActiveSec=1d is not a calendar time")));
}

#[test]
fn a_timer_names_its_service_with_unit() {
    let h = host_with(&[
        (
            "/u/backup.timer",
            "[Timer]\nUnit=run-backup.service\nOnCalendar=Mon..Fri 09:00 Europe/Berlin\n",
        ),
        (
            "/u/run-backup.service",
            "[Service]\nType=oneshot\nExecStart=/usr/local/bin/backup\nRestart=always\n",
        ),
    ]);
    let out = run(&h, &["/u/backup.timer"]);
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    let d = &out.drafts[0];
    assert_eq!(d.name, "backup");
    assert_eq!(
        d.kind,
        DraftKind::CronJob {
            schedule: "0 9 * * 1-5".into(),
            time_zone: Some("Europe/Berlin".into()),
            concurrency_policy: crate::api::ConcurrencyPolicy::Forbid,
            // No Persistent=: runs missed while down are skipped.
            starting_deadline: Some(crate::api::Dur::secs(60)),
            backoff_limit: 6,
        }
    );
    // A Job's pods cannot restart Always.
    assert_eq!(d.pod.restart_policy, RestartPolicy::OnFailure);
}

#[test]
fn a_calendar_cron_cannot_say_refuses_the_timer() {
    let h = host_with(&[
        ("/u/once.timer", "[Timer]\nOnCalendar=2030-01-01 00:00\n"),
        ("/u/once.service", "[Service]\nExecStart=/bin/true\n"),
    ]);
    let out = run(&h, &["/u/once.timer"]);
    assert!(out.drafts.is_empty());
    assert_eq!(out.refusals[0].line, Some(2));
    assert!(
        out.refusals[0].reason.contains("cron has no year"),
        "{:?}",
        out.refusals
    );
}

fn host_with(files: &[(&str, &str)]) -> MemoryHost {
    let mut h = MemoryHost::default();
    for (p, t) in files {
        h = h.with_file(*p, *t);
    }
    h
}

#[test]
fn forking_without_a_pid_file_is_refused_with_the_reason() {
    let h = host_with(&[(
        "/x/old.service",
        "[Service]\nType=forking\nExecStart=/usr/sbin/oldd\n",
    )]);
    let out = run(&h, &["/x/old.service"]);
    assert!(out.drafts.is_empty());
    let r = &out.refusals[0];
    assert_eq!(r.line, Some(2));
    assert!(r.reason.contains("without PIDFile="), "{r}");
    assert!(r.reason.contains("foreground"), "{r}");
}

#[test]
fn units_converted_together_wait_for_each_other() {
    let h = host_with(&[
        ("/u/db.service", "[Unit]\nBefore=web.service\n[Service]\nExecStart=/usr/bin/db\n"),
        (
            "/u/app.service",
            "[Unit]\nAfter=db.service network.target\nRequires=db.service\nWants=setup.service\n[Service]\nExecStart=/usr/bin/app\n",
        ),
        ("/u/setup.service", "[Service]\nType=oneshot\nExecStart=/usr/bin/setup\n"),
        ("/u/web.service", "[Service]\nExecStart=/usr/bin/web\n"),
    ]);
    let out = run(
        &h,
        &[
            "/u/db.service",
            "/u/app.service",
            "/u/setup.service",
            "/u/web.service",
        ],
    );
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    let by = |n: &str| out.drafts.iter().find(|d| d.name == n).expect(n);
    let inits = |n: &str| -> Vec<Vec<String>> {
        by(n)
            .pod
            .init_processes
            .iter()
            .map(|p| p.spec.command.clone())
            .collect()
    };
    assert_eq!(
        inits("app"),
        vec![
            argv(&["drover", "wait", "pod/db", "--for=condition=ready"]),
            argv(&["drover", "wait", "job/setup", "--for=condition=complete"]),
        ],
        "After= and Requires= on db give one wait"
    );
    // db has Before=web: web waits for db.
    assert_eq!(
        inits("web"),
        vec![argv(&["drover", "wait", "pod/db", "--for=condition=ready"])]
    );
    assert!(inits("db").is_empty());
    assert!(matches!(
        by("setup").kind,
        DraftKind::Job { backoff_limit: 0 }
    ));
    assert!(out.warnings.iter().any(|w| w.file == "/u/app.service"
        && w.line == Some(2)
        && w.severity == Severity::Warning
        && w.message.contains("`app` waits for pod/db")));
}

#[test]
fn an_instance_is_read_from_its_template() {
    let h = host_with(&[(
        "/u/worker@.service",
        "[Service]\nExecStart=/usr/bin/worker --queue %i --name %n\n",
    )]);
    let out = run(&h, &["/u/worker@emails.service"]);
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    let d = &out.drafts[0];
    assert_eq!(d.name, "worker-emails");
    assert_eq!(
        main_process(d).command,
        argv(&[
            "/usr/bin/worker",
            "--queue",
            "emails",
            "--name",
            "worker@emails.service"
        ])
    );
    // The template itself is not a unit.
    let out = run(&h, &["/u/worker@.service"]);
    assert!(
        out.refusals[0].reason.contains("template"),
        "{:?}",
        out.refusals
    );
}

#[test]
fn environment_as_systemd_builds_it() {
    let unit = "[Service]\n\
        Environment=\"GREETING=hello world\" MODE=fast\n\
        Environment=TEMP=1\n\
        Environment=\n\
        Environment=LEVEL=3 LITERAL=${HOME}x\n\
        EnvironmentFile=-/etc/default/missing\n\
        EnvironmentFile=/etc/default/app\n\
        UnsetEnvironment=DROPME\n\
        ExecStart=/usr/bin/app $OPTS --level=${LEVEL} --greet ${GREETING}\n";
    let h = host_with(&[
        ("/u/app.service", unit),
        (
            "/etc/default/app",
            "# options\nOPTS=\"-v --name 'two words'\"\nGREETING=hi\nDROPME=1\n",
        ),
    ]);
    let out = run(&h, &["/u/app.service"]);
    let p = main_process(&out.drafts[0]);
    let env: Vec<(&str, &str)> = p
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The reset dropped GREETING/MODE/TEMP of Environment=; the file wins
    // over Environment=; a literal `${` is written `$${`.
    assert_eq!(
        env,
        vec![
            ("GREETING", "hi"),
            ("LEVEL", "3"),
            ("LITERAL", "$${HOME}x"),
            ("OPTS", "-v --name 'two words'"),
        ]
    );
    assert_eq!(
        p.command,
        argv(&[
            "/usr/bin/app",
            "-v",
            "--name",
            "two words",
            "--level=${LEVEL}",
            "--greet",
            "${GREETING}"
        ])
    );
    assert_said(&out, 6, Severity::Note, "does not exist: skipped");
    assert_said(&out, 7, Severity::Note, "3 variable(s) copied");
}

#[test]
fn an_unreadable_environment_file_is_a_warning() {
    let h = host_with(&[(
        "/u/a.service",
        "[Service]\nEnvironmentFile=/etc/nope\nExecStart=/bin/a\n",
    )]);
    let out = run(&h, &["/u/a.service"]);
    assert_eq!(out.drafts.len(), 1);
    assert_said(&out, 2, Severity::Warning, "cannot be read");
}

#[test]
fn restart_settings() {
    let cases = [
        ("no", RestartPolicy::Never, None),
        ("always", RestartPolicy::Always, None),
        ("on-failure", RestartPolicy::OnFailure, None),
        (
            "on-abnormal",
            RestartPolicy::OnFailure,
            Some("after a non-zero exit"),
        ),
        (
            "on-abort",
            RestartPolicy::OnFailure,
            Some("after a non-zero exit"),
        ),
        (
            "on-watchdog",
            RestartPolicy::OnFailure,
            Some("after a non-zero exit"),
        ),
        (
            "on-success",
            RestartPolicy::Always,
            Some("also restarts after a failure"),
        ),
    ];
    for (value, want, warning) in cases {
        let text = format!("[Service]\nExecStart=/bin/a\nRestart={value}\nRestartSec=5\n");
        let h = host_with(&[("/u/a.service", &text)]);
        let out = run(&h, &["/u/a.service"]);
        assert_eq!(out.drafts[0].pod.restart_policy, want, "{value}");
        if let Some(w) = warning {
            assert_said(&out, 3, Severity::Warning, w);
        }
        assert_said(&out, 4, Severity::Warning, "backoff is per daemon");
    }
}

#[test]
fn limits_resources_watchdog() {
    let unit = "[Service]\nType=notify\nExecStart=/bin/a\nWatchdogSec=30\n\
        LimitCORE=infinity\nLimitNOFILE=1024:524288\nLimitMEMLOCK=64M\n\
        MemoryMax=512M\nCPUQuota=150%\nTasksMax=100\nMemoryHigh=400M\nUMask=0027\n";
    let h = host_with(&[("/u/a.service", unit)]);
    let out = run(&h, &["/u/a.service"]);
    let p = main_process(&out.drafts[0]);
    assert_eq!(p.watchdog, Some(crate::api::Dur::secs(30)));
    assert_eq!(p.rlimits.get("core"), Some(&RlimitValue::Unlimited));
    assert_eq!(p.rlimits.get("nofile"), Some(&RlimitValue::Limit(1024)));
    assert_eq!(
        p.rlimits.get("memlock"),
        Some(&RlimitValue::Limit(64 << 20))
    );
    let r = p.resources.as_ref().expect("resources");
    assert_eq!(r.memory.map(|m| m.0), Some(512 << 20));
    assert_eq!(r.cpu.map(|c| c.0), Some(1500));
    assert_eq!(r.pids, Some(100));
    assert_eq!(p.umask.map(|u| u.0), Some(0o027));
    assert_said(&out, 6, Severity::Warning, "soft and a hard limit");
    assert_said(&out, 11, Severity::Warning, "MemoryHigh=400M");

    // Without notify, the watchdog cannot be kept.
    let h = host_with(&[(
        "/u/b.service",
        "[Service]\nExecStart=/bin/b\nWatchdogSec=10s\n",
    )]);
    let out = run(&h, &["/u/b.service"]);
    assert_eq!(main_process(&out.drafts[0]).watchdog, None);
    assert_said(&out, 3, Severity::Warning, "needs notify = true");
}

#[test]
fn oneshot_commands_run_in_order() {
    let unit = "[Service]\nType=oneshot\nExecStart=/bin/one\nExecStart=/bin/two ; /bin/three x\n\
        RemainAfterExit=yes\nRestart=on-failure\n";
    let h = host_with(&[("/u/setup.service", unit)]);
    let out = run(&h, &["/u/setup.service"]);
    let d = &out.drafts[0];
    assert_eq!(d.kind, DraftKind::Job { backoff_limit: 6 });
    assert_eq!(d.pod.restart_policy, RestartPolicy::OnFailure);
    let inits: Vec<(&str, &[String])> = d
        .pod
        .init_processes
        .iter()
        .map(|p| (p.spec.name.as_str(), p.spec.command.as_slice()))
        .collect();
    assert_eq!(
        inits,
        vec![
            ("start-1", &argv(&["/bin/one"])[..]),
            ("start-2", &argv(&["/bin/two"])[..])
        ]
    );
    assert_eq!(main_process(d).command, argv(&["/bin/three", "x"]));
    assert_said(&out, 5, Severity::Note, "stays Complete");
}

#[test]
fn more_than_one_exec_start_needs_oneshot() {
    let h = host_with(&[(
        "/u/a.service",
        "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n",
    )]);
    let out = run(&h, &["/u/a.service"]);
    assert!(out.refusals[0]
        .reason
        .contains("only allowed for Type=oneshot"));
    // An empty assignment resets the list (the drop-in idiom).
    let h = host_with(&[(
        "/u/a.service",
        "[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n",
    )]);
    let out = run(&h, &["/u/a.service"]);
    assert_eq!(main_process(&out.drafts[0]).command, argv(&["/bin/b"]));
}

#[test]
fn privileged_prefixes_drop_the_user() {
    let unit = "[Service]\nUser=app\nExecStartPre=+/bin/chown app /srv\nExecStart=/bin/app\n";
    let h = host_with(&[("/u/a.service", unit)]);
    let out = run(&h, &["/u/a.service"]);
    let d = &out.drafts[0];
    assert_eq!(d.pod.init_processes[0].spec.user, None);
    assert_eq!(main_process(d).user.as_deref(), Some("app"));
}

#[test]
fn other_unit_types_are_refused() {
    let h = host_with(&[("/u/ssh.socket", "[Socket]\nListenStream=22\n")]);
    let out = run(&h, &["/u/ssh.socket", "/u/missing.service"]);
    assert!(out.refusals[0].reason.contains("socket activation"));
    assert!(out.refusals[1].reason.contains("cannot read"));
}

#[test]
fn names_become_dns_labels() {
    let h = host_with(&[("/u/My_App.service", "[Service]\nExecStart=/bin/a\n")]);
    let out = run(&h, &["/u/My_App.service"]);
    assert_eq!(out.drafts[0].name, "my-app");
}

/// What emit writes is TOML in the shape of units/*.toml, with the
/// provenance comments.
#[test]
fn emitted_units_are_tidy_toml() {
    let (d, out) = debian_one("nginx.service");
    let warnings: Vec<_> = out.warnings_of(&d).collect();
    let text = emit::render(&d, "drover import systemd", &warnings);
    let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(doc["kind"].as_str(), Some("Pod"));
    assert_eq!(
        doc["spec"]["processes"][0]["pid_file"].as_str(),
        Some("/run/nginx.pid")
    );
    assert!(
        text.starts_with(
            "# Converted by `drover import systemd` from:\n#   /lib/systemd/system/nginx.service\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("# Description: A high performance web server"),
        "{text}"
    );
    assert!(
        text.contains("termination_grace_period = \"5s\"  # TimeoutStopSec=, line 26"),
        "{text}"
    );
    assert!(
        text.contains(":24: ExecReload= has no drover equivalent"),
        "{text}"
    );
    // Notes are on stderr only.
    assert!(!text.contains("KillMode=mixed"), "{text}");
    let text = {
        let (d, out) = debian_one("cron.service");
        let w: Vec<_> = out.warnings_of(&d).collect();
        emit::render(&d, "drover import systemd", &w)
    };
    assert!(text.contains("env = { READ_ENV = \"yes\" }"), "{text}");
}

/// Each converted Debian unit passes the real validator.
#[test]
fn every_converted_unit_validates() {
    let now = chrono::Utc::now();
    let paths = [
        "redis-server.service",
        "nginx.service",
        "memcached.service",
        "cron.service",
        "ssh.service",
        "rsyslog.service",
        "logrotate.timer",
        "apt-daily.timer",
        "e2scrub_all.timer",
    ];
    for name in paths {
        let out = run(&debian(), &[&system(name)]);
        assert!(out.refusals.is_empty(), "{name}: {:?}", out.refusals);
        for d in &out.drafts {
            // Without what a drover may not take yet (drover import warns
            // about those when the loader refuses them).
            let d = [Field::InitProcesses, Field::PidFile, Field::Resources]
                .into_iter()
                .fold(d.clone(), |d, f| d.without(f));
            let w: Vec<_> = out.warnings_of(&d).collect();
            let text = emit::render(&d, "drover import systemd", &w);
            let file = format!("{}.toml", d.name);
            if let Err(diags) = crate::units::parse_unit(std::path::Path::new(&file), &text, now) {
                panic!(
                    "{name} -> {file} does not validate:\n{}\n{text}",
                    crate::units::Diagnostics::new(diags)
                );
            }
        }
    }
}
