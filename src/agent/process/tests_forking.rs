//! The state machine's new roles (issue 13, 14), driven through `step`
//! alone: a `pid_file` process (its starter, then the process its pid
//! file names), an OOM kill, and init processes' restart policy.

use super::*;
use chrono::TimeZone;

const STARTER: i32 = 100;
const DAEMON: i32 = 200;

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap(),
    }
}

fn id(pid: i32) -> ProcessIdentity {
    ProcessIdentity {
        start_ticks: pid as u64,
        boot_id: "boot".into(),
    }
}

fn rules(role: Role, restart: RestartPolicy, pid_file: Option<&str>) -> Rules {
    Rules {
        pod: "p".into(),
        process: "main".into(),
        restart,
        grace: Duration::from_secs(30),
        backoff: BackoffConfig::default(),
        notify: false,
        watchdog: None,
        probes: [None, None, None],
        liveness_spread: Duration::ZERO,
        role,
        pid_file: pid_file.map(PathBuf::from),
    }
}

fn started(pid: i32) -> Event {
    Event::Started {
        pid,
        identity: id(pid),
    }
}

fn exited(reason: ExitReason) -> Event {
    Event::Exited(reason.into())
}

/// The status change of the run that ended, if any.
fn ended(effects: &[Effect]) -> Option<(TerminatedState, bool)> {
    effects.iter().find_map(|e| match e {
        Effect::Status(StatusChange::Ended { last, terminal }) => Some((last.clone(), *terminal)),
        _ => None,
    })
}

/// A `pid_file` process through its starter's run: Forking, exited 0.
fn forked(r: &Rules, now: Now) -> Process {
    let (p, _) = step(&Process::new(), r, Event::Start, now);
    let (p, fx) = step(&p, r, started(STARTER), now);
    assert_eq!(
        p.phase,
        Phase::Forking {
            starter: STARTER,
            exited: false
        }
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Status(_))),
        "the starter is not the process: no status yet"
    );
    assert_eq!(p.pid(), Some(STARTER), "its exit is ours to reap");
    let (p, fx) = step(&p, r, exited(ExitReason::Code(0)), now);
    assert_eq!(
        p.phase,
        Phase::Forking {
            starter: STARTER,
            exited: true
        }
    );
    assert_eq!(
        fx,
        vec![
            Effect::Arm {
                timer: TimerKind::PidFile,
                at: now.mono + PID_FILE_DEADLINE
            },
            Effect::AwaitPidFile
        ]
    );
    p
}

#[test]
fn a_pid_file_process_becomes_the_process_its_file_names() {
    let now = t0();
    let r = rules(Role::Main, RestartPolicy::Always, Some("/run/mc.pid"));
    let p = forked(&r, now);
    let (p, fx) = step(&p, &r, started(DAEMON), now);
    assert!(matches!(&p.phase, Phase::Running(run) if run.pid == DAEMON));
    assert_eq!(fx[0], Effect::Cancel(TimerKind::PidFile));
    assert!(fx.contains(&Effect::Status(StatusChange::Running {
        pid: DAEMON,
        identity: id(DAEMON),
        started_at: now.wall,
        ready: true,
    })));
    // The forked daemon killed: an ordinary crash of the main process.
    let (p, fx) = step(&p, &r, exited(ExitReason::Signal(Signal::KILL)), now);
    let (last, terminal) = ended(&fx).expect("the run ended");
    assert_eq!(
        (last.exit_code, last.signal, terminal),
        (Some(137), Some(9), false)
    );
    assert_ne!(p.phase, Phase::Done, "restarted under Always");
}

#[test]
fn a_pid_file_process_that_does_not_fork_properly_fails_to_start() {
    let now = t0();
    let r = rules(Role::Main, RestartPolicy::Always, Some("/run/mc.pid"));
    // The pid file names nothing in time.
    let p = forked(&r, now);
    let timer = Event::Timer {
        kind: TimerKind::PidFile,
        run: p.run,
    };
    let (_, fx) = step(&p, &r, timer, now);
    assert!(fx.contains(&Effect::Sweep {
        grace: Duration::ZERO
    }));
    let (last, _) = ended(&fx).expect("a failed start");
    assert_eq!(last.reason, ProcessReason::StartError);
    assert!(
        last.message
            .as_deref()
            .unwrap()
            .contains("named no live process"),
        "{last:?}"
    );
    // The starter exits non-zero instead of forking.
    let (p, _) = step(&Process::new(), &r, Event::Start, now);
    let (p, _) = step(&p, &r, started(STARTER), now);
    let (_, fx) = step(&p, &r, exited(ExitReason::Code(1)), now);
    let (last, _) = ended(&fx).expect("a failed start");
    assert_eq!(last.reason, ProcessReason::StartError);
    assert!(last
        .message
        .unwrap()
        .contains("exited with code 1 instead of forking"));
    // Stopped while the starter runs: its tree goes, the process is done.
    let (p, _) = step(&Process::new(), &r, Event::Start, now);
    let (p, _) = step(&p, &r, started(STARTER), now);
    let (p, fx) = step(&p, &r, Event::Stop, now);
    assert_eq!(p.phase, Phase::Done);
    assert_eq!(
        fx,
        vec![
            Effect::Signal {
                pid: STARTER,
                signal: Signal::KILL
            },
            Effect::Sweep {
                grace: Duration::ZERO
            }
        ]
    );
}

#[test]
fn an_oom_kill_is_reported_as_oomkilled_with_137() {
    let now = t0();
    let r = rules(Role::Main, RestartPolicy::Never, None);
    let (p, _) = step(&Process::new(), &r, Event::Start, now);
    let (p, _) = step(&p, &r, started(DAEMON), now);
    let oom = Event::Exited(Exit {
        reason: ExitReason::Signal(Signal::KILL),
        oom_killed: true,
    });
    let (p, fx) = step(&p, &r, oom, now);
    assert_eq!(p.phase, Phase::Done);
    let (last, terminal) = ended(&fx).expect("the run ended");
    assert_eq!(last.reason, ProcessReason::OomKilled);
    assert_eq!(
        (last.exit_code, last.signal, terminal),
        (Some(137), Some(9), true)
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Event {
            reason: "OOMKilled",
            warning: true,
            ..
        }
    )));
    // A SIGKILL that was not the OOM killer's stays an Error.
    let (p, _) = step(&Process::new(), &r, Event::Start, now);
    let (p, _) = step(&p, &r, started(DAEMON), now);
    let (_, fx) = step(&p, &r, exited(ExitReason::Signal(Signal::KILL)), now);
    assert_eq!(ended(&fx).unwrap().0.reason, ProcessReason::Error);
}

#[test]
fn init_processes_end_on_success_and_retry_failures_under_always() {
    let now = t0();
    // (policy, exit code) -> done for good?
    let cases = [
        (RestartPolicy::Always, 0, true),
        (RestartPolicy::Always, 1, false),
        (RestartPolicy::OnFailure, 0, true),
        (RestartPolicy::OnFailure, 1, false),
        (RestartPolicy::Never, 0, true),
        (RestartPolicy::Never, 1, true),
    ];
    for (policy, code, done) in cases {
        let r = rules(Role::Init, policy, None);
        let (p, _) = step(&Process::new(), &r, Event::Start, now);
        let (p, _) = step(&p, &r, started(DAEMON), now);
        let (p, fx) = step(&p, &r, exited(ExitReason::Code(code)), now);
        assert_eq!(p.phase == Phase::Done, done, "{policy:?} exit {code}");
        assert_eq!(ended(&fx).unwrap().1, done, "{policy:?} exit {code}");
    }
    // A main process under Always is restarted even after exit 0.
    let r = rules(Role::Main, RestartPolicy::Always, None);
    let (p, _) = step(&Process::new(), &r, Event::Start, now);
    let (p, _) = step(&p, &r, started(DAEMON), now);
    let (p, _) = step(&p, &r, exited(ExitReason::Code(0)), now);
    assert_ne!(p.phase, Phase::Done);
}
