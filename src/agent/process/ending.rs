//! How a run ends: written down (last state, reason, exit code), then
//! restarted now, after a backoff, or never; and how a run is stopped.

use super::step::{Machine, RunEnd};
use super::*;
use crate::api::duration::format_duration;

impl Machine<'_> {
    pub(super) fn spawn(&mut self) {
        self.s.run += 1;
        self.s.phase = Phase::Starting;
        self.fx.push(Effect::Spawn);
    }

    /// A run that was not being stopped ended on its own.
    pub(super) fn ended(&mut self, run: Run, end: RunEnd) {
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
    pub(super) fn stopped(&mut self, run: Run, then: Then, end: RunEnd) {
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
                    RunEnd::Exited(Exit {
                        reason: ExitReason::Code(0),
                        ..
                    }) => ProcessReason::Completed,
                    RunEnd::Exited(Exit {
                        oom_killed: true, ..
                    }) => ProcessReason::OomKilled,
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
    pub(super) fn end(
        &mut self,
        end: RunEnd,
        started_at: Option<DateTime<Utc>>,
        ran_for: Duration,
    ) {
        let (exit_code, signal) = exit_fields(&end);
        if let RunEnd::Exited(Exit {
            oom_killed: true, ..
        }) = end
        {
            self.note(
                true,
                "OOMKilled",
                format!(
                    "Process {} was killed by the OOM killer (out of memory in its cgroup)",
                    self.rules.process
                ),
            );
        }
        let (reason, message) = match &end {
            RunEnd::Exited(Exit {
                reason: ExitReason::Code(0),
                ..
            }) => (ProcessReason::Completed, None),
            RunEnd::Exited(Exit {
                oom_killed: true, ..
            }) => (ProcessReason::OomKilled, None),
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

    pub(super) fn after_run(
        &mut self,
        last: TerminatedState,
        succeeded: bool,
        failure: Option<StartFailure>,
        ran_for: Duration,
    ) {
        let restart = match (self.rules.role, self.rules.restart) {
            (Role::Main, RestartPolicy::Always) => true,
            (Role::Main | Role::Init, RestartPolicy::OnFailure)
            | (Role::Init, RestartPolicy::Always) => !succeeded,
            (Role::Main | Role::Init, RestartPolicy::Never) => false,
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
    pub(super) fn stop(&mut self, run: Run, then: Then, grace: Duration) {
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
    pub(super) fn fail(
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

    pub(super) fn poll(&mut self, run: Run) -> Run {
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

    pub(super) fn recheck(&mut self, run: &Run) {
        match run.tracking {
            Tracking::Polling { .. } => self.fx.push(Effect::Recheck {
                pid: run.pid,
                identity: run.identity.clone(),
            }),
            Tracking::Child | Tracking::Pidfd => {}
        }
    }
}

/// `exit_code` and `signal` as users read them: 128 + N after signal N;
/// 128 for a start that failed before exec (as before: the JSON did not
/// change when the agent stopped using it as a sentinel).
fn exit_fields(end: &RunEnd) -> (Option<i32>, Option<i32>) {
    match end {
        RunEnd::Exited(Exit {
            reason: exit @ ExitReason::Code(_),
            ..
        }) => (Some(exit.exit_code()), None),
        RunEnd::Exited(Exit {
            reason: exit @ ExitReason::Signal(s),
            ..
        }) => (Some(exit.exit_code()), Some(s.number())),
        RunEnd::ExitedUnknown | RunEnd::Lost => (None, None),
        RunEnd::StartFailed(_) => (Some(128), None),
    }
}

fn end_succeeded(end: &RunEnd) -> bool {
    matches!(
        end,
        RunEnd::Exited(Exit {
            reason: ExitReason::Code(0),
            ..
        })
    )
}
