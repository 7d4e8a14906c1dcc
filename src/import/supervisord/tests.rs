//! supervisord programs as people write them: a web app with its port per
//! process, a queue worker with a shell loop, a disabled job, a program
//! with a multi-line environment, a legacy daemon with its own signals,
//! and the sections around them.

use super::*;
use crate::api::{Dur, RestartPolicy};
use crate::import::{emit, Draft, DraftKind, MemoryHost, Severity};

const CONF: &str = r#"; /etc/supervisor/conf.d/site.conf
[supervisord]
nodaemon=true

[include]
files = /etc/supervisor/conf.d/*.conf

[program:web]
command=/usr/bin/python3 -m http.server 80%(process_num)02d --bind 127.0.0.1 ; serve
numprocs=3
process_name=%(program_name)s_%(process_num)02d
directory=/srv/www
user=www-data
environment=PYTHONUNBUFFERED="1",HOME="%(ENV_HOME)s",SITE="%(here)s/site"
autorestart=true
stopwaitsecs=5
stdout_logfile=/var/log/web.log

[program:queue_worker]
command=sh -c 'while true; do echo "job ${JOB_ID:-none}"; sleep 1; done'
autorestart=unexpected
exitcodes=0,2
startsecs=3
startretries=10
stopsignal=INT
stopasgroup=true

[program:nightly]
command=/usr/local/bin/report --all
autostart=false
autorestart=false

[program:api]
command = /opt/api/bin/api
    --listen 127.0.0.1:9000
    --workers 2
environment =
    DATABASE_URL="postgres://api@localhost/api",
    LOG_LEVEL=info
umask=027
priority=10
redirect_stderr=true

[program:legacy]
command=/usr/sbin/legacyd -f -c "/etc/legacy/legacy.conf"
stopsignal=QUIT
stopwaitsecs=30
user=legacy
killasgroup=false

[group:site]
programs=web,queue_worker,api

[eventlistener:crashmail]
command=crashmail -a
"#;

fn host() -> MemoryHost {
    let mut h = MemoryHost {
        hostname: Some("box".into()),
        ..MemoryHost::default()
    }
    .with_file("/etc/supervisor/conf.d/site.conf", CONF);
    h.env.insert("HOME".into(), "/root".into());
    h
}

fn run() -> Outcome {
    convert(&["/etc/supervisor/conf.d/site.conf".to_string()], &host())
}

fn draft<'a>(out: &'a Outcome, name: &str) -> &'a Draft {
    out.drafts
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no unit {name}: {:?}", out.drafts))
}

fn said(out: &Outcome, line: usize, needle: &str) -> bool {
    out.warnings
        .iter()
        .any(|w| w.line == Some(line) && w.message.contains(needle))
}

fn assert_said(out: &Outcome, line: usize, needle: &str) {
    assert!(
        said(out, line, needle),
        "nothing at line {line} with `{needle}`:\n{}",
        out.warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn five_programs_convert() {
    let out = run();
    assert!(out.refusals.is_empty(), "{:?}", out.refusals);
    let names: Vec<&str> = out.drafts.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["web", "queue-worker", "nightly", "api", "legacy"]
    );
}

#[test]
fn numprocs_with_a_port_per_process_is_a_replica_set_with_a_port_range() {
    let out = run();
    let d = draft(&out, "web");
    assert_eq!(d.kind, DraftKind::ReplicaSet { replicas: 3 });
    assert_eq!(d.pod.ports.len(), 1);
    assert_eq!(String::from(d.pod.ports[0].range), "8000-8002");
    let p = &d.pod.processes[0].spec;
    assert_eq!(
        p.command,
        argv(&[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "${PORT_PORT}",
            "--bind",
            "127.0.0.1"
        ])
    );
    assert_eq!(p.user.as_deref(), Some("www-data"));
    assert_eq!(
        p.working_dir.as_deref(),
        Some(std::path::Path::new("/srv/www"))
    );
    let env: Vec<(&str, &str)> = p
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("HOME", "/root"),
            ("PYTHONUNBUFFERED", "1"),
            ("SITE", "/etc/supervisor/conf.d/site")
        ]
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::Always);
    assert_eq!(d.pod.termination_grace_period, Some(Dur::secs(5)));
    assert_eq!(d.labels.get("group").map(String::as_str), Some("site"));
    assert_said(&out, 9, "free port from ports");
    assert_said(&out, 14, "%(ENV_HOME)s is `/root`");
    assert_said(&out, 17, "stdout_logfile");
}

#[test]
fn a_shell_loop_keeps_its_quoting_and_its_dollar_signs() {
    let out = run();
    let d = draft(&out, "queue-worker");
    assert_eq!(d.kind, DraftKind::Pod);
    assert_eq!(
        d.pod.processes[0].spec.command,
        // `${` is written `$${` so drover passes it to sh untouched.
        argv(&[
            "sh",
            "-c",
            "while true; do echo \"job $${JOB_ID:-none}\"; sleep 1; done"
        ])
    );
    assert_eq!(d.pod.restart_policy, RestartPolicy::OnFailure);
    // supervisord's default stopwaitsecs is 10, not drover's 30.
    assert_eq!(d.pod.termination_grace_period, Some(Dur::secs(10)));
    assert_said(&out, 19, "named `queue-worker`");
    assert_said(&out, 22, "exitcodes=0,2");
    assert_said(&out, 23, "startsecs=3");
    assert_said(&out, 24, "never gives up");
    assert_said(&out, 25, "stopsignal=INT");
}

#[test]
fn autostart_false_is_a_replica_set_at_zero() {
    let out = run();
    let d = draft(&out, "nightly");
    assert_eq!(d.kind, DraftKind::ReplicaSet { replicas: 0 });
    // A ReplicaSet replaces ended pods: say so rather than pretend.
    assert_eq!(d.pod.restart_policy, RestartPolicy::Always);
    assert_said(&out, 30, "drover scale rs nightly --replicas 1");
    assert_said(&out, 31, "replaces one whose process ended");
}

#[test]
fn continued_values_and_umask() {
    let out = run();
    let d = draft(&out, "api");
    let p = &d.pod.processes[0].spec;
    assert_eq!(
        p.command,
        argv(&[
            "/opt/api/bin/api",
            "--listen",
            "127.0.0.1:9000",
            "--workers",
            "2"
        ])
    );
    assert_eq!(
        p.env.get("DATABASE_URL").map(String::as_str),
        Some("postgres://api@localhost/api")
    );
    assert_eq!(p.env.get("LOG_LEVEL").map(String::as_str), Some("info"));
    assert_eq!(p.umask.map(|u| u.0), Some(0o027));
    assert_said(&out, 41, "priority=10");
    assert_said(&out, 42, "one log");
}

#[test]
fn a_daemon_with_its_own_signal() {
    let out = run();
    let d = draft(&out, "legacy");
    let p = &d.pod.processes[0].spec;
    assert_eq!(
        p.command,
        argv(&["/usr/sbin/legacyd", "-f", "-c", "/etc/legacy/legacy.conf"])
    );
    assert_eq!(p.user.as_deref(), Some("legacy"));
    assert_eq!(d.pod.termination_grace_period, Some(Dur::secs(30)));
    assert_eq!(d.labels.get("group"), None);
    assert_said(&out, 46, "stopsignal=QUIT");
    assert_said(&out, 49, "whole process group");
}

#[test]
fn the_sections_around_programs_are_reported() {
    let out = run();
    assert_said(&out, 2, "configures supervisord itself");
    assert_said(&out, 5, "included files are not read");
    assert_said(&out, 51, "group=site");
    assert_said(&out, 54, "event listeners");
    // Each unit's header lists its own warnings and the file's, not the
    // other programs'.
    let web = draft(&out, "web");
    let mine: Vec<_> = out.warnings_of(web).collect();
    assert!(mine.iter().any(|w| w.line == Some(17)));
    assert!(!mine.iter().any(|w| w.line == Some(25)), "{mine:?}");
    assert!(
        mine.iter().any(|w| w.line == Some(5)),
        "file-wide warnings too"
    );
}

#[test]
fn every_line_is_converted_or_reported() {
    let out = run();
    let silent = [
        "command",
        "numprocs",
        "directory",
        "user",
        "environment",
        "umask",
        "autorestart",
        "stopwaitsecs",
        "autostart",
        "stopasgroup",
        "killasgroup",
        "programs",
        "nodaemon",
        "files",
    ];
    let sections = ini::parse(CONF).unwrap();
    for s in &sections {
        for e in &s.entries {
            let reported = out.warnings.iter().any(|w| w.line == Some(e.line));
            let section_reported = out.warnings.iter().any(|w| w.line == Some(s.line));
            assert!(
                reported || section_reported || silent.contains(&e.key.as_str()),
                "line {}: {}={} is neither converted nor reported",
                e.line,
                e.key,
                e.value
            );
        }
    }
}

#[test]
fn what_supervisord_would_refuse_is_refused() {
    let cases = [
        ("[program:a]\nnumprocs=2\n", "no command="),
        ("[program:a]\ncommand=x 'open\n", "cannot be split"),
        ("[program:a]\ncommand=x %(nope)s\n", "cannot be expanded"),
        (
            "[program:a]\ncommand=x\nenvironment=A=b@c\n",
            "environment= cannot be read",
        ),
        ("[program:a]\ncommand=x\nnumprocs=0\n", "numprocs=0"),
        (
            "[program:a]\ncommand=x\nautorestart=sometimes\n",
            "autorestart=sometimes",
        ),
        ("command=x\n", "before any [section]"),
    ];
    for (text, why) in cases {
        let h = MemoryHost::default().with_file("/c/a.conf", text);
        let out = convert(&["/c/a.conf".to_string()], &h);
        assert!(out.drafts.is_empty(), "{text}");
        assert!(
            out.refusals.iter().any(|r| r.reason.contains(why)),
            "{text}: {:?}",
            out.refusals
        );
    }
}

#[test]
fn emitted_units_parse_as_toml() {
    let out = run();
    for d in &out.drafts {
        let w: Vec<_> = out.warnings_of(d).collect();
        let text = emit::render(d, "drover import supervisord", &w);
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(doc["name"].as_str(), Some(d.name.as_str()));
    }
}

/// Each converted program passes the real validator.
#[test]
fn every_converted_program_validates() {
    let out = run();
    let now = chrono::Utc::now();
    for d in &out.drafts {
        let w: Vec<_> = out.warnings_of(d).collect();
        let text = emit::render(d, "drover import supervisord", &w);
        let file = format!("{}.toml", d.name);
        if let Err(diags) = crate::units::parse_unit(std::path::Path::new(&file), &text, now) {
            panic!(
                "{file} does not validate:\n{}\n{text}",
                crate::units::Diagnostics::new(diags)
            );
        }
    }
    // Notes do not make it into the files.
    assert!(out.warnings.iter().any(|w| w.severity == Severity::Note));
}
