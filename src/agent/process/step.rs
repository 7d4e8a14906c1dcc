//! The transition function. One function per phase, each matching every
//! event by name: a new event or phase does not compile until each case
//! says what it does. See the table in `mod.rs`.

use super::*;
use crate::agent::probe::Verdict;
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
enum RunEnd {
    Exited(ExitReason),
    /// Seen through a pidfd or a recheck: the status is not ours.
    ExitedUnknown,
    /// While the daemon was down.
    Lost,
    StartFailed(StartFailure),
}

struct Machine<'a> {
    s: Process,
    rules: &'a Rules,
    now: Now,
    fx: Vec<Effect>,
}

impl Machine<'_> {
    fn waiting(&mut self, event: Event) {
        match event {
            Event::Start => self.spawn(),
            Event::Adopted {
                pid,
                identity,
                started_at,
            } => {
                let ran = (self.now.wall - started_at).to_std().unwrap_or_default();
                self.s.run += 1;
                self.fx.push(Effect::Watch {
                    pid,
                    identity: identity.clone(),
                });
                self.s.phase = Phase::Running(Run {
                    pid,
                    identity,
                    since: self.now.mono.checked_sub(ran).unwrap_or(self.now.mono),
                    started_at,
                    tracking: Tracking::Pidfd,
                });
                self.arm_probes();
            }
            Event::Lost { started_at } => {
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
            Event::Started { pid, identity } => {
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
            Event::StartFailed(failure) => {
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
            TimerKind::Backoff | TimerKind::Grace => {}
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
                | TimerKind::Probe(_) => {}
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
                    TimerKind::Grace | TimerKind::Watchdog | TimerKind::Probe(_) | TimerKind::Recheck,
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

    // ---- runs -----------------------------------------------------------

    fn spawn(&mut self) {
        self.s.run += 1;
        self.s.phase = Phase::Starting;
        self.fx.push(Effect::Spawn);
    }

    /// A run that was not being stopped ended on its own.
    fn ended(&mut self, run: Run, end: RunEnd) {
        self.cancel_run_timers(&run);
        // Whatever the main process left in its group goes with it, as
        // systemd does for a service's control group.
        self.fx.push(Effect::Signal {
            pid: run.pid,
            signal: Signal::KILL,
        });
        let ran_for = self.now.mono.saturating_duration_since(run.since);
        self.end(end, Some(run.started_at), ran_for);
    }

    /// A run being stopped ended: `then` decides.
    fn stopped(&mut self, run: Run, then: Then, end: RunEnd) {
        self.fx.push(Effect::Cancel(TimerKind::Grace));
        if let Tracking::Polling { .. } = run.tracking {
            self.fx.push(Effect::Cancel(TimerKind::Recheck));
        }
        self.fx.push(Effect::Signal {
            pid: run.pid,
            signal: Signal::KILL,
        });
        // Descendants that left the group still carry this run's marker:
        // SIGTERM now, SIGKILL when the grace period ends, without holding
        // up the restart or the removal. Before the restart is counted:
        // the marker names this run.
        self.fx.push(Effect::Sweep {
            grace: self.rules.grace,
        });
        let (exit_code, signal) = exit_fields(&end);
        let (started_at, finished_at) = (Some(run.started_at), self.now.wall);
        let terminated = |reason: ProcessReason, message: Option<String>| TerminatedState {
            exit_code,
            signal,
            reason,
            message,
            started_at,
            finished_at,
        };
        match then {
            Then::Restart => {
                self.status(StatusChange::Ended {
                    last: terminated(ProcessReason::Restarted, None),
                    terminal: false,
                });
                self.status(StatusChange::CountRestart);
                self.spawn();
            }
            Then::Finish => {
                let reason = match end {
                    RunEnd::Exited(ExitReason::Code(0)) => ProcessReason::Completed,
                    RunEnd::Exited(_)
                    | RunEnd::ExitedUnknown
                    | RunEnd::Lost
                    | RunEnd::StartFailed(_) => ProcessReason::Killed,
                };
                self.status(StatusChange::Ended {
                    last: terminated(reason, None),
                    terminal: true,
                });
                self.s.phase = Phase::Done;
            }
            Then::Fail { reason, message } => {
                let last = terminated(reason, Some(message));
                let ran_for = self.now.mono.saturating_duration_since(run.since);
                self.after_run(last, end_succeeded(&end), None, ran_for);
            }
        }
    }

    /// Writes down how a run ended, then restarts it now, later, or never.
    fn end(&mut self, end: RunEnd, started_at: Option<DateTime<Utc>>, ran_for: Duration) {
        let (exit_code, signal) = exit_fields(&end);
        let (reason, message) = match &end {
            RunEnd::Exited(ExitReason::Code(0)) => (ProcessReason::Completed, None),
            RunEnd::Exited(_) => (ProcessReason::Error, None),
            RunEnd::ExitedUnknown => (ProcessReason::Unknown, None),
            RunEnd::Lost => (
                ProcessReason::Unknown,
                Some("the process ended while the drover daemon was not running".to_string()),
            ),
            RunEnd::StartFailed(f) => (f.reason.clone(), Some(f.message.clone())),
        };
        let last = TerminatedState {
            exit_code,
            signal,
            reason,
            message,
            started_at,
            finished_at: self.now.wall,
        };
        let failure = match end {
            RunEnd::StartFailed(f) => Some(f),
            RunEnd::Exited(_) | RunEnd::ExitedUnknown | RunEnd::Lost => None,
        };
        let succeeded = last.exit_code == Some(0) && failure.is_none();
        self.after_run(last, succeeded, failure, ran_for);
    }

    fn after_run(
        &mut self,
        last: TerminatedState,
        succeeded: bool,
        failure: Option<StartFailure>,
        ran_for: Duration,
    ) {
        let restart = match self.rules.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !succeeded,
            RestartPolicy::Never => false,
        };
        if !restart {
            self.status(StatusChange::Ended {
                last,
                terminal: true,
            });
            self.s.phase = Phase::Done;
            return;
        }
        self.status(StatusChange::Ended {
            last,
            terminal: false,
        });
        let (delay, consecutive) = self.rules.backoff.next_delay(self.s.consecutive, ran_for);
        self.s.consecutive = consecutive;
        if delay.is_zero() {
            self.status(StatusChange::CountRestart);
            self.spawn();
            return;
        }
        let (pod, process) = (&self.rules.pod, &self.rules.process);
        let wait = format_duration(delay);
        let (reason, message) = match failure {
            Some(f) => {
                let reason = match f.reason {
                    ProcessReason::CreateContainerConfigError => f.reason,
                    _ => ProcessReason::CrashLoopBackOff,
                };
                let message = format!(
                    "{}; back-off {wait} restarting process={process} pod={pod}",
                    f.message
                );
                (reason, message)
            }
            None => (
                ProcessReason::CrashLoopBackOff,
                format!("back-off {wait} restarting failed process={process} pod={pod}"),
            ),
        };
        let note = format!("Back-off restarting failed process {process}");
        self.status(StatusChange::Waiting { reason, message });
        self.note(true, "BackOff", note);
        self.arm(TimerKind::Backoff, self.now.mono + delay);
        self.s.phase = Phase::BackingOff;
    }

    /// SIGTERM to the tree now, SIGKILL after `grace`; `then` after.
    fn stop(&mut self, run: Run, then: Then, grace: Duration) {
        self.cancel_probe_timers();
        self.fx.push(Effect::Signal {
            pid: run.pid,
            signal: Signal::TERM,
        });
        self.arm(TimerKind::Grace, self.now.mono + grace);
        self.s.phase = Phase::Stopping {
            run,
            then,
            killed: false,
        };
    }

    /// A running process judged broken (liveness, startup, watchdog):
    /// stopped like any stop; its exit then goes to the restart policy
    /// and the backoff as a failure with this reason.
    fn fail(
        &mut self,
        run: Run,
        reason: ProcessReason,
        message: String,
        what: &str,
        grace: Duration,
    ) {
        self.stop(run, Then::Fail { reason, message }, grace);
        let note = format!("Process {} {what}, will be restarted", self.rules.process);
        self.note(false, "Killing", note);
        self.status(StatusChange::Ready(false));
    }

    fn poll(&mut self, run: Run) -> Run {
        let attempt = match run.tracking {
            Tracking::Polling { attempt } => attempt + 1,
            Tracking::Child | Tracking::Pidfd => 0,
        };
        self.arm(TimerKind::Recheck, self.now.mono + recheck_delay(attempt));
        Run {
            tracking: Tracking::Polling { attempt },
            ..run
        }
    }

    fn recheck(&mut self, run: &Run) {
        match run.tracking {
            Tracking::Polling { .. } => self.fx.push(Effect::Recheck {
                pid: run.pid,
                identity: run.identity.clone(),
            }),
            Tracking::Child | Tracking::Pidfd => {}
        }
    }

    // ---- probes and notify ------------------------------------------------

    /// A fresh run: results start over; the startup probe runs first
    /// (after its initial delay) and gates the other two. The watchdog
    /// starts with READY=1, as systemd's does for Type=notify.
    fn arm_probes(&mut self) {
        let r = self.rules;
        self.s.checks = Checks {
            startup_done: r.probe(ProbeKind::Startup).is_none(),
            ..Checks::default()
        };
        let kinds: &[ProbeKind] = if self.s.checks.startup_done {
            &[ProbeKind::Liveness, ProbeKind::Readiness]
        } else {
            &[ProbeKind::Startup]
        };
        for &kind in kinds {
            if let Some(p) = r.probe(kind) {
                let mut at = self.now.mono + p.initial_delay;
                if kind == ProbeKind::Liveness {
                    at += r.liveness_spread;
                }
                self.arm(TimerKind::Probe(kind), at);
            }
        }
    }

    /// A probe's period came round: arm the next one, then run this one
    /// unless the previous check is still going.
    fn probe_due(&mut self, kind: ProbeKind) {
        let Some(p) = self.rules.probe(kind) else {
            return;
        };
        if kind == ProbeKind::Startup && self.s.checks.startup_done {
            return;
        }
        self.arm(TimerKind::Probe(kind), self.now.mono + p.period);
        let k = kind.index();
        if !self.s.checks.inflight[k] {
            self.s.checks.inflight[k] = true;
            self.fx.push(Effect::Probe(kind));
        }
    }

    fn probe_result(&mut self, run: Run, kind: ProbeKind, result: ProbeResult) {
        let r = self.rules;
        let Some(timing) = r.probe(kind) else {
            return;
        };
        let k = kind.index();
        self.s.checks.inflight[k] = false;
        if let ProbeResult::Failure { message } = &result {
            self.note(true, "Unhealthy", format!("{kind} probe failed: {message}"));
        }
        let verdict = self.s.checks.probes[k].record(timing, result);
        match (kind, verdict) {
            (_, Verdict::Unchanged) | (ProbeKind::Liveness, Verdict::BecameHealthy) => {}
            (ProbeKind::Readiness, v) => {
                self.status(StatusChange::Ready(v == Verdict::BecameHealthy))
            }
            (ProbeKind::Startup, Verdict::BecameHealthy) => {
                self.s.checks.startup_done = true;
                for kind in [ProbeKind::Liveness, ProbeKind::Readiness] {
                    if let Some(p) = r.probe(kind) {
                        let at = (run.since + p.initial_delay).max(self.now.mono);
                        self.arm(TimerKind::Probe(kind), at);
                    }
                }
                if r.probe(ProbeKind::Readiness).is_none() && !r.notify {
                    self.status(StatusChange::Ready(true));
                }
            }
            (
                kind @ (ProbeKind::Liveness | ProbeKind::Startup),
                Verdict::BecameUnhealthy { message },
            ) => {
                let reason = match kind {
                    ProbeKind::Startup => ProcessReason::StartupProbeFailed,
                    ProbeKind::Liveness | ProbeKind::Readiness => {
                        ProcessReason::LivenessProbeFailed
                    }
                };
                let message = format!("{kind} probe failed: {message}");
                let what = format!("failed {} probe", kind.to_string().to_lowercase());
                let grace = timing.grace.unwrap_or(r.grace);
                self.fail(run, reason, message, &what, grace);
            }
        }
    }

    fn notice(&mut self, run: Run, notice: Notice) {
        let r = self.rules;
        if !r.notify {
            return;
        }
        match notice {
            Notice::Ready => {
                if let Some(w) = r.watchdog {
                    if !self.s.checks.watchdog_armed {
                        self.s.checks.watchdog_armed = true;
                        self.s.checks.last_ping = Some(self.now.mono);
                        self.arm(TimerKind::Watchdog, self.now.mono + w);
                    }
                }
                if r.probe(ProbeKind::Readiness).is_none() {
                    self.status(StatusChange::Ready(true));
                }
            }
            Notice::Watchdog => self.s.checks.last_ping = Some(self.now.mono),
            Notice::WatchdogTrigger => self.fail(
                run,
                ProcessReason::WatchdogTimeout,
                "the process asked for a watchdog restart (WATCHDOG=trigger)".into(),
                "triggered its watchdog",
                r.grace,
            ),
            Notice::Status(text) => self.status(StatusChange::NotifyStatus(text)),
            Notice::MainPid { pid, identity } => {
                if pid == run.pid {
                    return;
                }
                let tracking = match run.tracking {
                    // Our descendant: re-parented to us (a subreaper)
                    // when its parent exits, and reaped.
                    Tracking::Child => Tracking::Child,
                    Tracking::Pidfd | Tracking::Polling { .. } => {
                        self.fx.push(Effect::Watch {
                            pid,
                            identity: identity.clone(),
                        });
                        Tracking::Pidfd
                    }
                };
                self.status(StatusChange::MainPid {
                    pid,
                    identity: identity.clone(),
                });
                self.s.phase = Phase::Running(Run {
                    pid,
                    identity,
                    tracking,
                    ..run
                });
            }
        }
    }

    // ---- helpers ----------------------------------------------------------

    fn cancel_probe_timers(&mut self) {
        for kind in ProbeKind::ALL {
            if self.rules.probe(kind).is_some() {
                self.fx.push(Effect::Cancel(TimerKind::Probe(kind)));
            }
        }
        if self.s.checks.watchdog_armed {
            self.fx.push(Effect::Cancel(TimerKind::Watchdog));
        }
    }

    fn cancel_run_timers(&mut self, run: &Run) {
        self.cancel_probe_timers();
        if let Tracking::Polling { .. } = run.tracking {
            self.fx.push(Effect::Cancel(TimerKind::Recheck));
        }
    }

    fn arm(&mut self, timer: TimerKind, at: Instant) {
        self.fx.push(Effect::Arm { timer, at });
    }

    fn status(&mut self, change: StatusChange) {
        self.fx.push(Effect::Status(change));
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.fx.push(Effect::Event {
            warning,
            reason,
            message,
        });
    }
}

/// `exit_code` and `signal` as users read them: 128 + N after signal N;
/// 128 for a start that failed before exec (as before: the JSON did not
/// change when the agent stopped using it as a sentinel).
fn exit_fields(end: &RunEnd) -> (Option<i32>, Option<i32>) {
    match end {
        RunEnd::Exited(exit @ ExitReason::Code(_)) => (Some(exit.exit_code()), None),
        RunEnd::Exited(exit @ ExitReason::Signal(s)) => (Some(exit.exit_code()), Some(s.number())),
        RunEnd::ExitedUnknown | RunEnd::Lost => (None, None),
        RunEnd::StartFailed(_) => (Some(128), None),
    }
}

fn end_succeeded(end: &RunEnd) -> bool {
    matches!(end, RunEnd::Exited(ExitReason::Code(0)))
}
