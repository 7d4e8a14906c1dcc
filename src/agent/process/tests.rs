//! The table of `mod.rs`, row by row: every (phase, event) pair, with no
//! process and no clock. Rows that do something are written out with
//! their exact effects; every other pair is checked to change nothing.

use super::*;
use crate::agent::probe::ProbeTiming;
use chrono::TimeZone;

const PID: i32 = 4242;

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(),
    }
}

fn later(now: Now, secs: u64) -> Now {
    Now {
        mono: now.mono + Duration::from_secs(secs),
        wall: now.wall + chrono::Duration::seconds(secs as i64),
    }
}

fn id(pid: i32) -> ProcessIdentity {
    ProcessIdentity {
        start_ticks: pid as u64 * 7,
        boot_id: "boot".into(),
    }
}

fn rules() -> Rules {
    Rules {
        pod: "web-1".into(),
        process: "main".into(),
        restart: RestartPolicy::Always,
        grace: Duration::from_secs(30),
        backoff: BackoffConfig::default(),
        notify: false,
        watchdog: None,
        probes: [None, None, None],
        liveness_spread: Duration::ZERO,
        role: Role::Main,
        pid_file: None,
    }
}

fn timing(period: u64, failures: u32) -> ProbeTiming {
    ProbeTiming {
        initial_delay: Duration::from_secs(5),
        period: Duration::from_secs(period),
        timeout: Duration::from_secs(1),
        success_threshold: 1,
        failure_threshold: failures,
        grace: None,
    }
}

fn with_probe(kind: ProbeKind, t: ProbeTiming) -> Rules {
    let mut r = rules();
    r.probes[kind.index()] = Some(t);
    r
}

/// Process PID found running after a daemon restart, started `ran`
/// seconds before `now`, ready or not in its stored status.
fn adopted(now: Now, ran: i64, ready: bool) -> Event {
    Event::Adopted {
        pid: PID,
        identity: id(PID),
        started_at: now.wall - chrono::Duration::seconds(ran),
        ready,
    }
}

/// Watching process PID.
fn watch() -> Effect {
    Effect::Watch {
        pid: PID,
        identity: id(PID),
    }
}

/// Startup, liveness and readiness probes, each 5 s after the start.
fn all_probes() -> Rules {
    let mut r = rules();
    for kind in [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ] {
        r.probes[kind.index()] = Some(timing(10, 3));
    }
    r
}

fn notifying(watchdog: Option<u64>) -> Rules {
    Rules {
        notify: true,
        watchdog: watchdog.map(Duration::from_secs),
        ..rules()
    }
}

fn run_of(now: Now, tracking: Tracking) -> Run {
    Run {
        pid: PID,
        identity: id(PID),
        since: now.mono,
        started_at: now.wall,
        tracking,
    }
}

fn in_phase(phase: Phase) -> Process {
    Process {
        phase,
        run: 1,
        consecutive: 0,
        checks: Checks::default(),
    }
}

fn running(now: Now) -> Process {
    in_phase(Phase::Running(run_of(now, Tracking::Child)))
}

fn stopping(now: Now, then: Then) -> Process {
    in_phase(Phase::Stopping {
        run: run_of(now, Tracking::Child),
        then,
        killed: false,
    })
}

/// Every phase, in a representative state.
fn phases(now: Now) -> Vec<Process> {
    vec![
        Process::new(),
        in_phase(Phase::Starting),
        running(now),
        stopping(now, Then::Finish),
        in_phase(Phase::BackingOff),
        in_phase(Phase::Done),
    ]
}

fn timer(kind: TimerKind) -> Event {
    Event::Timer { kind, run: 1 }
}

fn probe(kind: ProbeKind, result: ProbeResult) -> Event {
    Event::Probe {
        kind,
        run: 1,
        result,
    }
}

fn failure(message: &str) -> ProbeResult {
    ProbeResult::Failure {
        message: message.into(),
    }
}

/// Every event (one of each kind).
fn events(now: Now) -> Vec<Event> {
    vec![
        Event::Start,
        Event::Started {
            pid: 77,
            identity: id(77),
        },
        Event::StartFailed(StartFailure {
            reason: ProcessReason::StartError,
            message: "exec: \"x\": executable file not found".into(),
        }),
        adopted(now, 0, false),
        Event::Lost {
            started_at: Some(now.wall),
            recorded: None,
        },
        Event::Exited(ExitReason::Code(1).into()),
        Event::AdoptedExited,
        Event::WatchUnavailable,
        Event::Watching,
        timer(TimerKind::Backoff),
        timer(TimerKind::Grace),
        timer(TimerKind::Watchdog),
        timer(TimerKind::Probe(ProbeKind::Liveness)),
        timer(TimerKind::Recheck),
        probe(ProbeKind::Liveness, failure("boom")),
        Event::Notify(Notice::Ready),
        Event::Notify(Notice::Watchdog),
        Event::Notify(Notice::WatchdogTrigger),
        Event::Notify(Notice::Status("hi".into())),
        Event::Notify(Notice::MainPid {
            pid: 99,
            identity: id(99),
        }),
        Event::Stop,
        Event::Restart,
        Event::Kill(Signal::HUP),
    ]
}

fn label(p: &Process) -> &'static str {
    match p.phase {
        Phase::Waiting => "Waiting",
        Phase::Starting => "Starting",
        Phase::Forking { .. } => "Forking",
        Phase::Running(_) => "Running",
        Phase::Stopping { .. } => "Stopping",
        Phase::BackingOff => "BackingOff",
        Phase::Done => "Done",
    }
}

fn event_label(e: &Event) -> &'static str {
    match e {
        Event::Start => "Start",
        Event::Started { .. } => "Started",
        Event::StartFailed(_) => "StartFailed",
        Event::Adopted { .. } => "Adopted",
        Event::Lost { .. } => "Lost",
        Event::Exited(_) => "Exited",
        Event::AdoptedExited => "AdoptedExited",
        Event::WatchUnavailable => "WatchUnavailable",
        Event::Watching => "Watching",
        Event::Timer { kind, .. } => match kind {
            TimerKind::Backoff => "Timer Backoff",
            TimerKind::Grace => "Timer Grace",
            TimerKind::Watchdog => "Timer Watchdog",
            TimerKind::Probe(_) => "Timer Probe",
            TimerKind::Recheck => "Timer Recheck",
            TimerKind::PidFile => "Timer PidFile",
        },
        Event::Probe { .. } => "Probe",
        Event::Notify(n) => match n {
            Notice::Ready => "Notify Ready",
            Notice::Watchdog => "Notify Watchdog",
            Notice::WatchdogTrigger => "Notify WatchdogTrigger",
            Notice::Status(_) => "Notify Status",
            Notice::MainPid { .. } => "Notify MainPid",
        },
        Event::Stop => "Stop",
        Event::Restart => "Restart",
        Event::Kill(_) => "Kill",
    }
}

fn ended(reason: ProcessReason, code: Option<i32>, terminal: bool, now: Now) -> Effect {
    Effect::Status(StatusChange::Ended {
        last: TerminatedState {
            exit_code: code,
            signal: None,
            reason,
            message: None,
            started_at: Some(now.wall),
            finished_at: now.wall,
        },
        terminal,
    })
}

fn sig(signal: Signal) -> Effect {
    Effect::Signal { pid: PID, signal }
}

fn arm(timer: TimerKind, at: Instant) -> Effect {
    Effect::Arm { timer, at }
}

fn event(warning: bool, reason: &'static str, message: &str) -> Effect {
    Effect::Event {
        warning,
        reason,
        message: message.into(),
    }
}

/// One row: from `given`, under `rules`, `event` leads to `phase` with
/// exactly `effects`.
struct Row {
    name: &'static str,
    given: Process,
    rules: Rules,
    event: Event,
    phase: &'static str,
    effects: Vec<Effect>,
}

#[test]
fn every_row_that_acts() {
    let now = t0();
    let spawned = Event::Started {
        pid: PID,
        identity: id(PID),
    };
    let start_error = StartFailure {
        reason: ProcessReason::CreateContainerConfigError,
        message: "user \"nosuchuser\" does not exist".into(),
    };
    let mut counted = running(now);
    counted.consecutive = 1;
    let rows = vec![
        Row {
            name: "a waiting process starts",
            given: Process::new(),
            rules: rules(),
            event: Event::Start,
            phase: "Starting",
            effects: vec![Effect::Spawn],
        },
        Row {
            name: "started: running, ready without probes, an event",
            given: in_phase(Phase::Starting),
            rules: rules(),
            event: spawned.clone(),
            phase: "Running",
            effects: vec![
                Effect::Status(StatusChange::Running {
                    pid: PID,
                    identity: id(PID),
                    started_at: now.wall,
                    ready: true,
                }),
                event(false, "Started", "Started process main"),
            ],
        },
        Row {
            name: "started with probes: probe timers armed, not ready yet",
            given: in_phase(Phase::Starting),
            rules: Rules {
                liveness_spread: Duration::from_secs(3),
                ..with_probe(ProbeKind::Liveness, timing(10, 3))
            },
            event: spawned.clone(),
            phase: "Running",
            effects: vec![
                arm(
                    TimerKind::Probe(ProbeKind::Liveness),
                    now.mono + Duration::from_secs(8),
                ),
                Effect::Status(StatusChange::Running {
                    pid: PID,
                    identity: id(PID),
                    started_at: now.wall,
                    ready: true,
                }),
                event(false, "Started", "Started process main"),
            ],
        },
        Row {
            name: "started with notify: not ready before READY=1",
            given: in_phase(Phase::Starting),
            rules: notifying(None),
            event: spawned.clone(),
            phase: "Running",
            effects: vec![
                Effect::Status(StatusChange::Running {
                    pid: PID,
                    identity: id(PID),
                    started_at: now.wall,
                    ready: false,
                }),
                event(false, "Started", "Started process main"),
            ],
        },
        Row {
            name: "a failed start restarts at once the first time",
            given: in_phase(Phase::Starting),
            rules: rules(),
            event: Event::StartFailed(start_error.clone()),
            phase: "Starting",
            effects: vec![
                event(
                    true,
                    "Failed",
                    "Error: user \"nosuchuser\" does not exist (process main)",
                ),
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: Some(128),
                        signal: None,
                        reason: ProcessReason::CreateContainerConfigError,
                        message: Some(start_error.message.clone()),
                        started_at: None,
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "then backs off, showing the configuration error",
            given: Process {
                consecutive: 1,
                ..in_phase(Phase::Starting)
            },
            rules: rules(),
            event: Event::StartFailed(start_error.clone()),
            phase: "BackingOff",
            effects: vec![
                event(
                    true,
                    "Failed",
                    "Error: user \"nosuchuser\" does not exist (process main)",
                ),
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: Some(128),
                        signal: None,
                        reason: ProcessReason::CreateContainerConfigError,
                        message: Some(start_error.message.clone()),
                        started_at: None,
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::Waiting {
                    reason: ProcessReason::CreateContainerConfigError,
                    message: "user \"nosuchuser\" does not exist; back-off 10s restarting \
                              process=main pod=web-1"
                        .into(),
                }),
                event(true, "BackOff", "Back-off restarting failed process main"),
                arm(TimerKind::Backoff, now.mono + Duration::from_secs(10)),
            ],
        },
        Row {
            name: "adopted after a daemon restart: watched, probes re-armed",
            given: Process::new(),
            rules: with_probe(ProbeKind::Readiness, timing(10, 3)),
            event: adopted(now, 0, false),
            phase: "Running",
            effects: vec![
                watch(),
                arm(
                    TimerKind::Probe(ProbeKind::Readiness),
                    now.mono + Duration::from_secs(5),
                ),
            ],
        },
        Row {
            name: "adopted not ready, started 2 s before: its startup probe's delay counts from \
                   its start",
            given: Process::new(),
            rules: all_probes(),
            event: adopted(now, 2, false),
            phase: "Running",
            effects: vec![
                watch(),
                arm(
                    TimerKind::Probe(ProbeKind::Startup),
                    now.mono + Duration::from_secs(3),
                ),
            ],
        },
        Row {
            name: "adopted ready: no second startup probe; liveness and readiness at once, \
                   their delays long past",
            given: Process::new(),
            rules: all_probes(),
            event: adopted(now, 60, true),
            phase: "Running",
            effects: vec![
                watch(),
                arm(TimerKind::Probe(ProbeKind::Liveness), now.mono),
                arm(TimerKind::Probe(ProbeKind::Readiness), now.mono),
            ],
        },
        Row {
            name: "adopted ready under notify: its watchdog is armed again, a full interval away",
            given: Process::new(),
            rules: notifying(Some(2)),
            event: adopted(now, 60, true),
            phase: "Running",
            effects: vec![
                watch(),
                arm(TimerKind::Watchdog, now.mono + Duration::from_secs(2)),
            ],
        },
        Row {
            name: "adopted not ready under notify: the watchdog waits for READY=1",
            given: Process::new(),
            rules: notifying(Some(2)),
            event: adopted(now, 60, false),
            phase: "Running",
            effects: vec![watch()],
        },
        Row {
            name: "lost while the daemon was down: Unknown, restarted",
            given: Process::new(),
            rules: rules(),
            event: Event::Lost {
                started_at: Some(now.wall),
                recorded: None,
            },
            phase: "Starting",
            effects: vec![
                event(
                    true,
                    "ProcessLost",
                    "process main ended while the daemon was down",
                ),
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: None,
                        signal: None,
                        reason: ProcessReason::Unknown,
                        message: Some(
                            "the process ended while the drover daemon was not running".into(),
                        ),
                        started_at: Some(now.wall),
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "a crash: the group goes, first restart at once",
            given: running(now),
            rules: rules(),
            event: Event::Exited(ExitReason::Code(1).into()),
            phase: "Starting",
            effects: vec![
                sig(Signal::KILL),
                ended(ProcessReason::Error, Some(1), false, now),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "a second crash: CrashLoopBackOff for 10s",
            given: counted.clone(),
            rules: rules(),
            event: Event::Exited(ExitReason::Signal(Signal::KILL).into()),
            phase: "BackingOff",
            effects: vec![
                sig(Signal::KILL),
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: Some(137),
                        signal: Some(9),
                        reason: ProcessReason::Error,
                        message: None,
                        started_at: Some(now.wall),
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::Waiting {
                    reason: ProcessReason::CrashLoopBackOff,
                    message: "back-off 10s restarting failed process=main pod=web-1".into(),
                }),
                event(true, "BackOff", "Back-off restarting failed process main"),
                arm(TimerKind::Backoff, now.mono + Duration::from_secs(10)),
            ],
        },
        Row {
            name: "exit 0 under OnFailure: completed, done",
            given: running(now),
            rules: Rules {
                restart: RestartPolicy::OnFailure,
                ..rules()
            },
            event: Event::Exited(ExitReason::Code(0).into()),
            phase: "Done",
            effects: vec![
                sig(Signal::KILL),
                ended(ProcessReason::Completed, Some(0), true, now),
            ],
        },
        Row {
            name: "failure under Never: terminal",
            given: running(now),
            rules: Rules {
                restart: RestartPolicy::Never,
                ..rules()
            },
            event: Event::Exited(ExitReason::Code(2).into()),
            phase: "Done",
            effects: vec![
                sig(Signal::KILL),
                ended(ProcessReason::Error, Some(2), true, now),
            ],
        },
        Row {
            name: "an adopted process ended: status unknown",
            given: in_phase(Phase::Running(run_of(now, Tracking::Pidfd))),
            rules: rules(),
            event: Event::AdoptedExited,
            phase: "Starting",
            effects: vec![
                sig(Signal::KILL),
                ended(ProcessReason::Unknown, None, false, now),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "no pidfd: poll with a recheck timer (never an exit)",
            given: in_phase(Phase::Running(run_of(now, Tracking::Pidfd))),
            rules: rules(),
            event: Event::WatchUnavailable,
            phase: "Running",
            effects: vec![arm(
                TimerKind::Recheck,
                now.mono + Duration::from_millis(500),
            )],
        },
        Row {
            name: "still no pidfd: the recheck backs off",
            given: in_phase(Phase::Running(run_of(
                now,
                Tracking::Polling { attempt: 3 },
            ))),
            rules: rules(),
            event: Event::WatchUnavailable,
            phase: "Running",
            effects: vec![arm(TimerKind::Recheck, now.mono + Duration::from_secs(8))],
        },
        Row {
            name: "recheck timer: look at it",
            given: in_phase(Phase::Running(run_of(
                now,
                Tracking::Polling { attempt: 0 },
            ))),
            rules: rules(),
            event: timer(TimerKind::Recheck),
            phase: "Running",
            effects: vec![Effect::Recheck {
                pid: PID,
                identity: id(PID),
            }],
        },
        Row {
            name: "a polled process that exits: found gone by a recheck",
            given: in_phase(Phase::Running(run_of(
                now,
                Tracking::Polling { attempt: 2 },
            ))),
            rules: rules(),
            event: Event::AdoptedExited,
            phase: "Starting",
            effects: vec![
                Effect::Cancel(TimerKind::Recheck),
                sig(Signal::KILL),
                ended(ProcessReason::Unknown, None, false, now),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "probe timer: re-armed, check started",
            given: running(now),
            rules: with_probe(ProbeKind::Liveness, timing(10, 3)),
            event: timer(TimerKind::Probe(ProbeKind::Liveness)),
            phase: "Running",
            effects: vec![
                arm(
                    TimerKind::Probe(ProbeKind::Liveness),
                    now.mono + Duration::from_secs(10),
                ),
                Effect::Probe(ProbeKind::Liveness),
            ],
        },
        Row {
            name: "probe timer while a check runs: re-armed only",
            given: Process {
                checks: Checks {
                    inflight: [false, true, false],
                    ..Checks::default()
                },
                ..running(now)
            },
            rules: with_probe(ProbeKind::Liveness, timing(10, 3)),
            event: timer(TimerKind::Probe(ProbeKind::Liveness)),
            phase: "Running",
            effects: vec![arm(
                TimerKind::Probe(ProbeKind::Liveness),
                now.mono + Duration::from_secs(10),
            )],
        },
        Row {
            name: "liveness fails past its threshold: stopped, to restart as a failure",
            given: running(now),
            rules: with_probe(ProbeKind::Liveness, timing(10, 1)),
            event: probe(
                ProbeKind::Liveness,
                failure("HTTP probe failed with statuscode: 500"),
            ),
            phase: "Stopping",
            effects: vec![
                event(
                    true,
                    "Unhealthy",
                    "Liveness probe failed: HTTP probe failed with statuscode: 500",
                ),
                Effect::Cancel(TimerKind::Probe(ProbeKind::Liveness)),
                sig(Signal::TERM),
                arm(TimerKind::Grace, now.mono + Duration::from_secs(30)),
                event(
                    false,
                    "Killing",
                    "Process main failed liveness probe, will be restarted",
                ),
                Effect::Status(StatusChange::Ready(false)),
            ],
        },
        Row {
            name: "a liveness failure below the threshold: an event only",
            given: running(now),
            rules: with_probe(ProbeKind::Liveness, timing(10, 3)),
            event: probe(ProbeKind::Liveness, failure("boom")),
            phase: "Running",
            effects: vec![event(true, "Unhealthy", "Liveness probe failed: boom")],
        },
        Row {
            name: "readiness success: ready",
            given: running(now),
            rules: with_probe(ProbeKind::Readiness, timing(10, 3)),
            event: probe(ProbeKind::Readiness, ProbeResult::Success),
            phase: "Running",
            effects: vec![Effect::Status(StatusChange::Ready(true))],
        },
        Row {
            name: "startup success: liveness and readiness may run",
            given: running(now),
            rules: Rules {
                probes: [Some(timing(1, 3)), Some(timing(10, 3)), None],
                ..rules()
            },
            event: probe(ProbeKind::Startup, ProbeResult::Success),
            phase: "Running",
            effects: vec![
                arm(
                    TimerKind::Probe(ProbeKind::Liveness),
                    now.mono + Duration::from_secs(5),
                ),
                Effect::Status(StatusChange::Ready(true)),
            ],
        },
        Row {
            name: "READY=1: ready and the watchdog runs",
            given: running(now),
            rules: notifying(Some(2)),
            event: Event::Notify(Notice::Ready),
            phase: "Running",
            effects: vec![
                arm(TimerKind::Watchdog, now.mono + Duration::from_secs(2)),
                Effect::Status(StatusChange::Ready(true)),
            ],
        },
        Row {
            name: "notify messages are ignored without notify = true",
            given: running(now),
            rules: rules(),
            event: Event::Notify(Notice::Ready),
            phase: "Running",
            effects: vec![],
        },
        Row {
            name: "STATUS=: recorded",
            given: running(now),
            rules: notifying(None),
            event: Event::Notify(Notice::Status("serving".into())),
            phase: "Running",
            effects: vec![Effect::Status(StatusChange::NotifyStatus("serving".into()))],
        },
        Row {
            name: "STATUS= while stopping: recorded",
            given: stopping(now, Then::Finish),
            rules: notifying(None),
            event: Event::Notify(Notice::Status("bye".into())),
            phase: "Stopping",
            effects: vec![Effect::Status(StatusChange::NotifyStatus("bye".into()))],
        },
        Row {
            name: "WATCHDOG=trigger: stopped as a watchdog failure",
            given: running(now),
            rules: notifying(Some(2)),
            event: Event::Notify(Notice::WatchdogTrigger),
            phase: "Stopping",
            effects: vec![
                sig(Signal::TERM),
                arm(TimerKind::Grace, now.mono + Duration::from_secs(30)),
                event(
                    false,
                    "Killing",
                    "Process main triggered its watchdog, will be restarted",
                ),
                Effect::Status(StatusChange::Ready(false)),
            ],
        },
        Row {
            name: "MAINPID=: the new pid is supervised",
            given: running(now),
            rules: notifying(None),
            event: Event::Notify(Notice::MainPid {
                pid: 99,
                identity: id(99),
            }),
            phase: "Running",
            effects: vec![Effect::Status(StatusChange::MainPid {
                pid: 99,
                identity: id(99),
            })],
        },
        Row {
            name: "MAINPID= of an adopted run: the new pid is watched",
            given: in_phase(Phase::Running(run_of(now, Tracking::Pidfd))),
            rules: notifying(None),
            event: Event::Notify(Notice::MainPid {
                pid: 99,
                identity: id(99),
            }),
            phase: "Running",
            effects: vec![
                Effect::Watch {
                    pid: 99,
                    identity: id(99),
                },
                Effect::Status(StatusChange::MainPid {
                    pid: 99,
                    identity: id(99),
                }),
            ],
        },
        Row {
            name: "watchdog timer, pinged since: looks again one interval after the ping",
            given: Process {
                checks: Checks {
                    last_ping: Some(now.mono + Duration::from_secs(1)),
                    watchdog_armed: true,
                    ..Checks::default()
                },
                ..running(now)
            },
            rules: notifying(Some(2)),
            event: timer(TimerKind::Watchdog),
            phase: "Running",
            effects: vec![arm(TimerKind::Watchdog, now.mono + Duration::from_secs(3))],
        },
        Row {
            name: "stop: TERM, grace timer, probes cancelled",
            given: running(now),
            rules: with_probe(ProbeKind::Readiness, timing(10, 3)),
            event: Event::Stop,
            phase: "Stopping",
            effects: vec![
                Effect::Cancel(TimerKind::Probe(ProbeKind::Readiness)),
                sig(Signal::TERM),
                arm(TimerKind::Grace, now.mono + Duration::from_secs(30)),
            ],
        },
        Row {
            name: "restart: TERM, grace timer",
            given: counted.clone(),
            rules: rules(),
            event: Event::Restart,
            phase: "Stopping",
            effects: vec![
                sig(Signal::TERM),
                arm(TimerKind::Grace, now.mono + Duration::from_secs(30)),
            ],
        },
        Row {
            name: "kill: the signal goes to the group",
            given: running(now),
            rules: rules(),
            event: Event::Kill(Signal::HUP),
            phase: "Running",
            effects: vec![sig(Signal::HUP)],
        },
        Row {
            name: "kill while stopping: the signal goes too",
            given: stopping(now, Then::Finish),
            rules: rules(),
            event: Event::Kill(Signal::USR1),
            phase: "Stopping",
            effects: vec![sig(Signal::USR1)],
        },
        Row {
            name: "grace expired: KILL the group, sweep now",
            given: stopping(now, Then::Finish),
            rules: rules(),
            event: timer(TimerKind::Grace),
            phase: "Stopping",
            effects: vec![
                sig(Signal::KILL),
                Effect::Sweep {
                    grace: Duration::ZERO,
                },
            ],
        },
        Row {
            name: "stopped for good and exited 0: Completed, done",
            given: stopping(now, Then::Finish),
            rules: rules(),
            event: Event::Exited(ExitReason::Code(0).into()),
            phase: "Done",
            effects: vec![
                Effect::Cancel(TimerKind::Grace),
                sig(Signal::KILL),
                Effect::Sweep {
                    grace: Duration::from_secs(30),
                },
                ended(ProcessReason::Completed, Some(0), true, now),
            ],
        },
        Row {
            name: "stopped for a restart: Restarted, counted, started again",
            given: stopping(now, Then::Restart),
            rules: rules(),
            event: Event::Exited(ExitReason::Signal(Signal::TERM).into()),
            phase: "Starting",
            effects: vec![
                Effect::Cancel(TimerKind::Grace),
                sig(Signal::KILL),
                Effect::Sweep {
                    grace: Duration::from_secs(30),
                },
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: Some(143),
                        signal: Some(15),
                        reason: ProcessReason::Restarted,
                        message: None,
                        started_at: Some(now.wall),
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        },
        Row {
            name: "stopped by a failed probe: its reason, then the backoff decides",
            given: Process {
                consecutive: 1,
                ..stopping(
                    now,
                    Then::Fail {
                        reason: ProcessReason::LivenessProbeFailed,
                        message: "Liveness probe failed: boom".into(),
                    },
                )
            },
            rules: rules(),
            event: Event::Exited(ExitReason::Signal(Signal::KILL).into()),
            phase: "BackingOff",
            effects: vec![
                Effect::Cancel(TimerKind::Grace),
                sig(Signal::KILL),
                Effect::Sweep {
                    grace: Duration::from_secs(30),
                },
                Effect::Status(StatusChange::Ended {
                    last: TerminatedState {
                        exit_code: Some(137),
                        signal: Some(9),
                        reason: ProcessReason::LivenessProbeFailed,
                        message: Some("Liveness probe failed: boom".into()),
                        started_at: Some(now.wall),
                        finished_at: now.wall,
                    },
                    terminal: false,
                }),
                Effect::Status(StatusChange::Waiting {
                    reason: ProcessReason::CrashLoopBackOff,
                    message: "back-off 10s restarting failed process=main pod=web-1".into(),
                }),
                event(true, "BackOff", "Back-off restarting failed process main"),
                arm(TimerKind::Backoff, now.mono + Duration::from_secs(10)),
            ],
        },
        Row {
            name: "a restart being stopped for good: stops for good",
            given: stopping(now, Then::Restart),
            rules: rules(),
            event: Event::Stop,
            phase: "Stopping",
            effects: vec![],
        },
        Row {
            name: "backoff over: counted, started",
            given: in_phase(Phase::BackingOff),
            rules: rules(),
            event: timer(TimerKind::Backoff),
            phase: "Starting",
            effects: vec![Effect::Status(StatusChange::CountRestart), Effect::Spawn],
        },
        Row {
            name: "stop during the backoff: done, timer cancelled",
            given: in_phase(Phase::BackingOff),
            rules: rules(),
            event: Event::Stop,
            phase: "Done",
            effects: vec![Effect::Cancel(TimerKind::Backoff)],
        },
        Row {
            name: "restart during the backoff: waiting for its turn",
            given: in_phase(Phase::BackingOff),
            rules: rules(),
            event: Event::Restart,
            phase: "Waiting",
            effects: vec![Effect::Cancel(TimerKind::Backoff)],
        },
        Row {
            name: "restart of a finished process",
            given: in_phase(Phase::Done),
            rules: rules(),
            event: Event::Restart,
            phase: "Waiting",
            effects: vec![],
        },
        Row {
            name: "stop of a waiting process: done",
            given: Process::new(),
            rules: rules(),
            event: Event::Stop,
            phase: "Done",
            effects: vec![],
        },
        Row {
            name: "stop while starting: done",
            given: in_phase(Phase::Starting),
            rules: rules(),
            event: Event::Stop,
            phase: "Done",
            effects: vec![],
        },
        Row {
            name: "started after its stop: killed",
            given: in_phase(Phase::Done),
            rules: rules(),
            event: spawned.clone(),
            phase: "Done",
            effects: vec![sig(Signal::KILL)],
        },
    ];
    for row in rows {
        let (next, effects) = step(&row.given, &row.rules, row.event.clone(), now);
        assert_eq!(label(&next), row.phase, "{}: phase", row.name);
        assert_eq!(effects, row.effects, "{}: effects", row.name);
    }
}

/// Every (phase, event) pair the table marks `-` changes nothing.
#[test]
fn every_other_pair_changes_nothing() {
    let now = t0();
    // The pairs that act (the rows above), by phase and event label.
    let acting: &[(&str, &[&str])] = &[
        ("Waiting", &["Start", "Adopted", "Lost", "Stop", "Restart"]),
        ("Starting", &["Started", "StartFailed", "Stop", "Restart"]),
        (
            "Running",
            &[
                "Exited",
                "AdoptedExited",
                "WatchUnavailable",
                "Watching",
                "Probe",
                "Notify Ready",
                "Notify Watchdog",
                "Notify WatchdogTrigger",
                "Notify Status",
                "Notify MainPid",
                "Timer Watchdog",
                "Timer Probe",
                "Stop",
                "Restart",
                "Kill",
            ],
        ),
        (
            "Stopping",
            &[
                "Exited",
                "AdoptedExited",
                "WatchUnavailable",
                "Watching",
                "Timer Grace",
                "Notify Status",
                "Stop",
                "Kill",
            ],
        ),
        ("BackingOff", &["Timer Backoff", "Stop", "Restart"]),
        ("Done", &["Started", "Restart"]),
    ];
    let everything = Rules {
        probes: [
            Some(timing(10, 1)),
            Some(timing(10, 1)),
            Some(timing(10, 1)),
        ],
        ..notifying(Some(2))
    };
    let mut checked = 0;
    for given in phases(now) {
        let acts = acting
            .iter()
            .find(|(p, _)| *p == label(&given))
            .map(|(_, e)| *e)
            .unwrap();
        for ev in events(now) {
            let name = event_label(&ev);
            if acts.contains(&name) {
                continue;
            }
            let (next, effects) = step(&given, &everything, ev.clone(), now);
            assert_eq!(
                (&next, effects.as_slice()),
                (&given, &[][..]),
                "{} + {name} should change nothing",
                label(&given)
            );
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} pairs checked");
}

#[test]
fn timers_and_results_of_an_earlier_run_are_dropped() {
    let now = t0();
    let mut p = running(now);
    p.run = 2;
    let r = with_probe(ProbeKind::Liveness, timing(10, 1));
    for ev in [
        Event::Timer {
            kind: TimerKind::Probe(ProbeKind::Liveness),
            run: 1,
        },
        Event::Probe {
            kind: ProbeKind::Liveness,
            run: 1,
            result: failure("old"),
        },
        Event::Timer {
            kind: TimerKind::Watchdog,
            run: 1,
        },
    ] {
        let (next, effects) = step(&p, &r, ev.clone(), now);
        assert_eq!((next, effects), (p.clone(), vec![]), "{ev:?}");
    }
}

/// A ready process adopted after a daemon restart goes on as if the
/// daemon had never gone: no second "became ready", and its watchdog
/// still bites (it used to wait for a READY=1 that never came again).
#[test]
fn a_ready_process_adopted_keeps_its_health_and_its_watchdog() {
    let now = t0();
    let mut rules = notifying(Some(2));
    rules.probes[ProbeKind::Readiness.index()] = Some(timing(10, 3));
    let (p, _) = step(&Process::new(), &rules, adopted(now, 60, true), now);
    let (p, effects) = step(
        &p,
        &rules,
        probe(ProbeKind::Readiness, ProbeResult::Success),
        now,
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Status(_))),
        "already ready: {effects:?}"
    );
    let (p, effects) = step(&p, &rules, timer(TimerKind::Watchdog), later(now, 2));
    let Phase::Stopping { then, .. } = p.phase else {
        panic!("{:?}", p.phase);
    };
    assert_eq!(
        then,
        Then::Fail {
            reason: ProcessReason::WatchdogTimeout,
            message: "watchdog timeout: no WATCHDOG=1 within 2s".into()
        }
    );
    assert!(effects.contains(&sig(Signal::TERM)));
}

#[test]
fn a_missed_watchdog_fails_the_run() {
    let now = t0();
    let given = Process {
        checks: Checks {
            last_ping: Some(now.mono),
            watchdog_armed: true,
            ..Checks::default()
        },
        ..running(now)
    };
    let at = later(now, 2);
    let (next, effects) = step(&given, &notifying(Some(2)), timer(TimerKind::Watchdog), at);
    let Phase::Stopping { then, .. } = next.phase else {
        panic!("{next:?}");
    };
    assert_eq!(
        then,
        Then::Fail {
            reason: ProcessReason::WatchdogTimeout,
            message: "watchdog timeout: no WATCHDOG=1 within 2s".into()
        }
    );
    assert!(effects.contains(&Effect::Cancel(TimerKind::Watchdog)));
    assert!(effects.contains(&sig(Signal::TERM)));
    assert!(effects.contains(&event(
        false,
        "Killing",
        "Process main missed its watchdog, will be restarted"
    )));
}

#[test]
fn a_long_run_resets_the_backoff_and_a_probe_may_shorten_the_grace() {
    let now = t0();
    // Ten restarts in a row, then ten minutes of running: the next restart
    // is immediate again.
    let given = Process {
        consecutive: 10,
        ..running(now)
    };
    let (next, effects) = step(
        &given,
        &rules(),
        Event::Exited(ExitReason::Code(1).into()),
        later(now, 600),
    );
    assert_eq!(next.phase, Phase::Starting);
    assert_eq!(next.consecutive, 1);
    assert!(effects.contains(&Effect::Spawn));
    // A liveness probe with its own grace period uses it.
    let mut t = timing(10, 1);
    t.grace = Some(Duration::from_secs(2));
    let (_, effects) = step(
        &running(now),
        &with_probe(ProbeKind::Liveness, t),
        probe(ProbeKind::Liveness, failure("x")),
        now,
    );
    assert!(effects.contains(&arm(TimerKind::Grace, now.mono + Duration::from_secs(2))));
}

#[test]
fn backoff_and_recheck_delays_are_pure_tables() {
    let delays: Vec<u64> = (0..7)
        .map(|n| recheck_delay(n).as_millis() as u64)
        .collect();
    assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
    assert_eq!(recheck_delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn a_whole_crash_loop_in_virtual_time() {
    // Crash, immediate restart, crash, 10s, crash, 20s: the Kubernetes
    // schedule, driven through `step` alone.
    let r = rules();
    let mut now = t0();
    let mut p = Process::new();
    let mut waits = vec![];
    (p, _) = step(&p, &r, Event::Start, now);
    for _ in 0..4 {
        (p, _) = step(
            &p,
            &r,
            Event::Started {
                pid: PID,
                identity: id(PID),
            },
            now,
        );
        now = later(now, 1);
        let effects;
        (p, effects) = step(&p, &r, Event::Exited(ExitReason::Code(1).into()), now);
        match p.phase {
            Phase::Starting => waits.push(0),
            Phase::BackingOff => {
                let at = effects
                    .iter()
                    .find_map(|e| match e {
                        Effect::Arm {
                            timer: TimerKind::Backoff,
                            at,
                        } => Some(*at),
                        _ => None,
                    })
                    .expect("a backoff timer");
                let wait = at - now.mono;
                waits.push(wait.as_secs());
                now = Now {
                    mono: at,
                    wall: now.wall + chrono::Duration::from_std(wait).unwrap(),
                };
                let run = p.run;
                let backoff = Event::Timer {
                    kind: TimerKind::Backoff,
                    run,
                };
                (p, _) = step(&p, &r, backoff, now);
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(p.phase, Phase::Starting);
    }
    assert_eq!(waits, [0, 10, 20, 40]);
}

/// The keeper reaped the process while no daemon ran (`runtime::keeper`):
/// the next daemon reports the real exit, at the time it happened, and
/// the restart policy reads it as it would a live exit (a Job pod that
/// exited 0 completed; it is not rerun).
#[test]
fn an_exit_recorded_while_the_daemon_was_down_is_reported_as_it_happened() {
    let now = later(t0(), 600);
    let started = t0().wall;
    let exited_at = t0().wall + chrono::Duration::seconds(100);
    let lost = |exit: ExitReason| Event::Lost {
        started_at: Some(started),
        recorded: Some(RecordedExit {
            exit,
            at: exited_at,
        }),
    };
    let last = |code: i32, signal: Option<i32>, reason: ProcessReason| TerminatedState {
        exit_code: Some(code),
        signal,
        reason,
        message: None,
        started_at: Some(started),
        finished_at: exited_at,
    };
    let cases = [
        (
            RestartPolicy::Always,
            ExitReason::Code(7),
            "Starting",
            vec![
                event(
                    true,
                    "ExitedWhileDown",
                    "process main exited with code 7 while the daemon was down",
                ),
                Effect::Status(StatusChange::Ended {
                    last: last(7, None, ProcessReason::Error),
                    terminal: false,
                }),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        ),
        (
            RestartPolicy::Never,
            ExitReason::Code(0),
            "Done",
            vec![
                event(
                    false,
                    "ExitedWhileDown",
                    "process main exited with code 0 while the daemon was down",
                ),
                Effect::Status(StatusChange::Ended {
                    last: last(0, None, ProcessReason::Completed),
                    terminal: true,
                }),
            ],
        ),
        (
            RestartPolicy::OnFailure,
            ExitReason::Signal(Signal::KILL),
            "Starting",
            vec![
                event(
                    true,
                    "ExitedWhileDown",
                    "process main exited with code 137 while the daemon was down",
                ),
                Effect::Status(StatusChange::Ended {
                    last: last(137, Some(9), ProcessReason::Error),
                    terminal: false,
                }),
                Effect::Status(StatusChange::CountRestart),
                Effect::Spawn,
            ],
        ),
    ];
    for (restart, exit, phase, effects) in cases {
        let r = Rules { restart, ..rules() };
        let (after, fx) = step(&Process::new(), &r, lost(exit), now);
        assert_eq!(label(&after), phase, "{restart:?} {exit:?}");
        assert_eq!(fx, effects, "{restart:?} {exit:?}");
    }
}
