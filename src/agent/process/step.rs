//! The transition function. One function per phase, each matching every
//! event by name: a new event or phase does not compile until each case
//! says what it does. See the table in `mod.rs`. How a run ends is in
//! `ending.rs`, probes, notify and the watchdog in `checks.rs`.

use super::*;
use crate::api::duration::format_duration;

/// What `event` does to `state`: the next state and the effects, in the
/// order the executor must apply them.
pub fn step(state: &Process, rules: &Rules, event: Event, now: Now) -> (Process, Vec<Effect>) {
    let mut m = Machine {
        s: state.clone(),
        rules,
        now,
        fx: Vec::new(),
    };
    // A timer or probe result of an earlier attempt: that run is over.
    let stale = match &event {
        Event::Timer { run, .. } | Event::Probe { run, .. } => *run != state.run,
        _ => false,
    };
    if !stale {
        match state.phase.clone() {
            Phase::Waiting => m.waiting(event),
            Phase::Starting => m.starting(event),
            Phase::Forking { starter, exited } => m.forking(starter, exited, event),
            Phase::Running(run) => m.running(run, event),
            Phase::Stopping { run, then, killed } => m.stopping(run, then, killed, event),
            Phase::BackingOff => m.backing_off(event),
            Phase::Done => m.done(event),
        }
    }
    (m.s, m.fx)
}

/// Delay before the next look at a process whose exit cannot be watched
/// (no pidfd): 500ms doubling to 10s. Only such processes are polled, and
/// only while descriptors are short.
pub fn recheck_delay(attempt: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(10);
    FIRST
        .checked_mul(1u32 << attempt.min(16))
        .unwrap_or(MAX)
        .min(MAX)
}

/// How a run ended, before it is written down.
pub(super) enum RunEnd {
    Exited(Exit),
    /// Seen through a pidfd or a recheck: the status is not ours.
    ExitedUnknown,
    /// While the daemon was down, nobody knows how.
    Lost,
    /// While the daemon was down, as the keeper recorded it.
    ExitedWhileDown(RecordedExit),
    StartFailed(StartFailure),
}

pub(super) struct Machine<'a> {
    pub(super) s: Process,
    pub(super) rules: &'a Rules,
    pub(super) now: Now,
    pub(super) fx: Vec<Effect>,
}

impl Machine<'_> {
    fn waiting(&mut self, event: Event) {
        match event {
            Event::Start => self.spawn(),
            Event::Adopted {
                pid,
                identity,
                started_at,
                ready,
            } => {
                let ran = (self.now.wall - started_at).to_std().unwrap_or_default();
                let since = self.now.mono.checked_sub(ran).unwrap_or(self.now.mono);
                self.s.run += 1;
                self.fx.push(Effect::Watch {
                    pid,
                    identity: identity.clone(),
                });
                self.s.phase = Phase::Running(Run {
                    pid,
                    identity,
                    since,
                    started_at,
                    tracking: Tracking::Pidfd,
                });
                self.resume_checks(since, ready);
            }
            Event::Lost {
                started_at,
                recorded: Some(r),
            } => {
                self.note(
                    r.exit != ExitReason::Code(0),
                    "ExitedWhileDown",
                    format!(
                        "process {} exited with code {} while the daemon was down",
                        self.rules.process,
                        r.exit.exit_code()
                    ),
                );
                let ran_for = started_at
                    .and_then(|s| (r.at - s).to_std().ok())
                    .unwrap_or_default();
                self.end(RunEnd::ExitedWhileDown(r), started_at, ran_for);
            }
            Event::Lost {
                started_at,
                recorded: None,
            } => {
                self.note(
                    true,
                    "ProcessLost",
                    format!(
                        "process {} ended while the daemon was down",
                        self.rules.process
                    ),
                );
                self.end(RunEnd::Lost, started_at, Duration::ZERO);
            }
            Event::Stop => self.s.phase = Phase::Done,
            Event::Restart => self.s.consecutive = 0,
            Event::Started { .. }
            | Event::StartFailed(_)
            | Event::Exited(_)
            | Event::AdoptedExited
            | Event::WatchUnavailable
            | Event::Watching
            | Event::Timer { .. }
            | Event::Probe { .. }
            | Event::Notify(_)
            | Event::Kill(_) => {}
        }
    }

    fn starting(&mut self, event: Event) {
        match event {
            // A forking daemon's starter: its exit 0 says where to look.
            Event::Started { pid, .. } if self.rules.pid_file.is_some() => {
                self.s.phase = Phase::Forking {
                    starter: pid,
                    exited: false,
                }
            }
            Event::Started { pid, identity } => self.started(pid, identity),
            Event::StartFailed(failure) => self.start_failed(failure),
            // The spawn's result comes next; a process started for a
            // stopped pod is killed then (see `done`).
            Event::Stop => self.s.phase = Phase::Done,
            Event::Restart => self.s.consecutive = 0,
            Event::Start
            | Event::Adopted { .. }
            | Event::Lost { .. }
            | Event::Exited(_)
            | Event::AdoptedExited
            | Event::WatchUnavailable
            | Event::Watching
            | Event::Timer { .. }
            | Event::Probe { .. }
            | Event::Notify(_)
            | Event::Kill(_) => {}
        }
    }

    /// The process to supervise runs (spawned, or named by its pid file).
    fn started(&mut self, pid: i32, identity: ProcessIdentity) {
        let r = self.rules;
        self.s.phase = Phase::Running(Run {
            pid,
            identity: identity.clone(),
            since: self.now.mono,
            started_at: self.now.wall,
            tracking: Tracking::Child,
        });
        self.arm_probes();
        // Without readiness or startup probes, or READY=1 to wait
        // for, a running process is ready.
        let ready = r.probe(ProbeKind::Readiness).is_none()
            && r.probe(ProbeKind::Startup).is_none()
            && !r.notify;
        self.fx.push(Effect::Status(StatusChange::Running {
            pid,
            identity,
            started_at: self.now.wall,
            ready,
        }));
        self.note(false, "Started", format!("Started process {}", r.process));
    }

    fn start_failed(&mut self, failure: StartFailure) {
        self.note(
            true,
            "Failed",
            format!(
                "Error: {} (process {})",
                failure.message, self.rules.process
            ),
        );
        self.end(RunEnd::StartFailed(failure), None, Duration::ZERO);
    }

    /// A `pid_file` process between its starter's spawn and the pid
    /// file naming the process to supervise. Whatever fails here is a
    /// failed start; whatever the starter left behind goes (its group
    /// while it runs, the rest of its tree by the sweep).
    fn forking(&mut self, starter: i32, exited: bool, event: Event) {
        let kill_tree = |m: &mut Self| {
            if !exited {
                m.fx.push(Effect::Signal {
                    pid: starter,
                    signal: Signal::KILL,
                });
            }
            m.fx.push(Effect::Sweep {
                grace: Duration::ZERO,
            });
        };
        let pid_file = self
            .rules
            .pid_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match event {
            Event::Exited(exit) if !exited => {
                if exit.reason == ExitReason::Code(0) {
                    self.s.phase = Phase::Forking {
                        starter,
                        exited: true,
                    };
                    self.arm(TimerKind::PidFile, self.now.mono + PID_FILE_DEADLINE);
                    self.fx.push(Effect::AwaitPidFile);
                    return;
                }
                kill_tree(self);
                let ended = match exit.reason {
                    ExitReason::Code(c) => format!("exited with code {c}"),
                    ExitReason::Signal(s) => format!("was killed by {s}"),
                };
                self.start_failed(StartFailure {
                    reason: ProcessReason::StartError,
                    message: format!(
                        "the process {ended} instead of forking and exiting 0 \
                         (pid_file {pid_file})"
                    ),
                });
            }
            Event::Started { pid, identity } if exited => {
                self.fx.push(Effect::Cancel(TimerKind::PidFile));
                self.started(pid, identity);
            }
            Event::StartFailed(failure) => {
                if exited {
                    self.fx.push(Effect::Cancel(TimerKind::PidFile));
                }
                kill_tree(self);
                self.start_failed(failure);
            }
            Event::Timer {
                kind: TimerKind::PidFile,
                ..
            } if exited => {
                kill_tree(self);
                self.start_failed(StartFailure {
                    reason: ProcessReason::StartError,
                    message: format!(
                        "pid_file {pid_file} named no live process of the pod within {} \
                         of the process exiting 0",
                        format_duration(PID_FILE_DEADLINE)
                    ),
                });
            }
            Event::Stop => {
                if exited {
                    self.fx.push(Effect::Cancel(TimerKind::PidFile));
                }
                kill_tree(self);
                self.s.phase = Phase::Done;
            }
            Event::Restart => self.s.consecutive = 0,
            Event::Kill(signal) if !exited => self.fx.push(Effect::Signal {
                pid: starter,
                signal,
            }),
            Event::Exited(_)
            | Event::Started { .. }
            | Event::Timer { .. }
            | Event::Kill(_)
            | Event::Start
            | Event::Adopted { .. }
            | Event::Lost { .. }
            | Event::AdoptedExited
            | Event::WatchUnavailable
            | Event::Watching
            | Event::Probe { .. }
            | Event::Notify(_) => {}
        }
    }

    fn running(&mut self, run: Run, event: Event) {
        match event {
            Event::Exited(exit) => self.ended(run, RunEnd::Exited(exit)),
            Event::AdoptedExited => self.ended(run, RunEnd::ExitedUnknown),
            Event::WatchUnavailable => {
                let run = self.poll(run);
                self.s.phase = Phase::Running(run);
            }
            Event::Watching => {
                self.s.phase = Phase::Running(Run {
                    tracking: Tracking::Pidfd,
                    ..run
                })
            }
            Event::Timer { kind, .. } => self.running_timer(run, kind),
            Event::Probe { kind, result, .. } => self.probe_result(run, kind, result),
            Event::Notify(notice) => self.notice(run, notice),
            Event::Stop => self.stop(run, Then::Finish, self.rules.grace),
            Event::Restart => {
                self.s.consecutive = 0;
                self.stop(run, Then::Restart, self.rules.grace);
            }
            Event::Kill(signal) => self.fx.push(Effect::Signal {
                pid: run.pid,
                signal,
            }),
            Event::Start
            | Event::Started { .. }
            | Event::StartFailed(_)
            | Event::Adopted { .. }
            | Event::Lost { .. } => {}
        }
    }

    fn running_timer(&mut self, run: Run, kind: TimerKind) {
        match kind {
            TimerKind::Probe(k) => self.probe_due(k),
            TimerKind::Watchdog => {
                let Some(interval) = self.rules.watchdog else {
                    return;
                };
                let last = self.s.checks.last_ping.unwrap_or(self.now.mono);
                if last + interval > self.now.mono {
                    self.arm(TimerKind::Watchdog, last + interval);
                    return;
                }
                let message = format!(
                    "watchdog timeout: no WATCHDOG=1 within {}",
                    format_duration(interval)
                );
                self.fail(
                    run,
                    ProcessReason::WatchdogTimeout,
                    message,
                    "missed its watchdog",
                    self.rules.grace,
                );
            }
            TimerKind::Recheck => self.recheck(&run),
            TimerKind::Backoff | TimerKind::Grace | TimerKind::PidFile => {}
        }
    }

    fn stopping(&mut self, run: Run, then: Then, killed: bool, event: Event) {
        match event {
            Event::Exited(exit) => self.stopped(run, then, RunEnd::Exited(exit)),
            Event::AdoptedExited => self.stopped(run, then, RunEnd::ExitedUnknown),
            Event::WatchUnavailable => {
                let run = self.poll(run);
                self.s.phase = Phase::Stopping { run, then, killed };
            }
            Event::Watching => {
                let run = Run {
                    tracking: Tracking::Pidfd,
                    ..run
                };
                self.s.phase = Phase::Stopping { run, then, killed };
            }
            Event::Timer { kind, .. } => match kind {
                TimerKind::Grace if !killed => {
                    self.fx.push(Effect::Signal {
                        pid: run.pid,
                        signal: Signal::KILL,
                    });
                    self.fx.push(Effect::Sweep {
                        grace: Duration::ZERO,
                    });
                    self.s.phase = Phase::Stopping {
                        run,
                        then,
                        killed: true,
                    };
                }
                TimerKind::Recheck => self.recheck(&run),
                TimerKind::Grace
                | TimerKind::Backoff
                | TimerKind::Watchdog
                | TimerKind::Probe(_)
                | TimerKind::PidFile => {}
            },
            Event::Notify(Notice::Status(text)) => self
                .fx
                .push(Effect::Status(StatusChange::NotifyStatus(text))),
            // Stopping for good now, whatever it was stopping for.
            Event::Stop => {
                self.s.phase = Phase::Stopping {
                    run,
                    then: Then::Finish,
                    killed,
                }
            }
            Event::Kill(signal) => self.fx.push(Effect::Signal {
                pid: run.pid,
                signal,
            }),
            Event::Notify(
                Notice::Ready | Notice::Watchdog | Notice::WatchdogTrigger | Notice::MainPid { .. },
            )
            | Event::Probe { .. }
            | Event::Restart
            | Event::Start
            | Event::Started { .. }
            | Event::StartFailed(_)
            | Event::Adopted { .. }
            | Event::Lost { .. } => {}
        }
    }

    fn backing_off(&mut self, event: Event) {
        match event {
            Event::Timer {
                kind: TimerKind::Backoff,
                ..
            } => {
                self.status(StatusChange::CountRestart);
                self.spawn();
            }
            Event::Stop => {
                self.fx.push(Effect::Cancel(TimerKind::Backoff));
                self.s.phase = Phase::Done;
            }
            Event::Restart => {
                self.fx.push(Effect::Cancel(TimerKind::Backoff));
                self.s.consecutive = 0;
                self.s.phase = Phase::Waiting;
            }
            Event::Timer {
                kind:
                    TimerKind::Grace
                    | TimerKind::Watchdog
                    | TimerKind::Probe(_)
                    | TimerKind::Recheck
                    | TimerKind::PidFile,
                ..
            }
            | Event::Start
            | Event::Started { .. }
            | Event::StartFailed(_)
            | Event::Adopted { .. }
            | Event::Lost { .. }
            | Event::Exited(_)
            | Event::AdoptedExited
            | Event::WatchUnavailable
            | Event::Watching
            | Event::Probe { .. }
            | Event::Notify(_)
            | Event::Kill(_) => {}
        }
    }

    fn done(&mut self, event: Event) {
        match event {
            // Started after its pod was stopped (Stop came while the spawn
            // was under way): nobody wants it.
            Event::Started { pid, .. } => self.fx.push(Effect::Signal {
                pid,
                signal: Signal::KILL,
            }),
            Event::Restart => {
                self.s.consecutive = 0;
                self.s.phase = Phase::Waiting;
            }
            Event::Start
            | Event::StartFailed(_)
            | Event::Adopted { .. }
            | Event::Lost { .. }
            | Event::Exited(_)
            | Event::AdoptedExited
            | Event::WatchUnavailable
            | Event::Watching
            | Event::Timer { .. }
            | Event::Probe { .. }
            | Event::Notify(_)
            | Event::Stop
            | Event::Kill(_) => {}
        }
    }

    // ---- helpers ----------------------------------------------------------

    pub(super) fn cancel_probe_timers(&mut self) {
        for kind in ProbeKind::ALL {
            if self.rules.probe(kind).is_some() {
                self.fx.push(Effect::Cancel(TimerKind::Probe(kind)));
            }
        }
        if self.s.checks.watchdog_armed {
            self.fx.push(Effect::Cancel(TimerKind::Watchdog));
        }
    }

    pub(super) fn cancel_run_timers(&mut self, run: &Run) {
        self.cancel_probe_timers();
        if let Tracking::Polling { .. } = run.tracking {
            self.fx.push(Effect::Cancel(TimerKind::Recheck));
        }
    }

    pub(super) fn arm(&mut self, timer: TimerKind, at: Instant) {
        self.fx.push(Effect::Arm { timer, at });
    }

    pub(super) fn status(&mut self, change: StatusChange) {
        self.fx.push(Effect::Status(change));
    }

    pub(super) fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.fx.push(Effect::Event {
            warning,
            reason,
            message,
        });
    }
}
