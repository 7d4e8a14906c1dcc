//! Probes, sd_notify and the watchdog of a running process: when checks
//! run, what their results change, what the process's own messages do.

use super::step::Machine;
use super::*;
use crate::agent::probe::Verdict;

impl Machine<'_> {
    /// A fresh run: results start over; the startup probe runs first
    /// (after its initial delay) and gates the other two. The watchdog
    /// starts with READY=1, as systemd's does for Type=notify.
    pub(super) fn arm_probes(&mut self) {
        self.s.checks = Checks {
            startup_done: self.rules.probe(ProbeKind::Startup).is_none(),
            ..Checks::default()
        };
        self.arm_checks(self.now.mono);
    }

    /// A run found running after a daemon restart or `daemon-reexec`,
    /// running since `since`. Its checks resume where its stored status
    /// says they were: restarting or upgrading drover must not change a
    /// pod's health (Kubernetes users have long reported the kubelet's
    /// reset of Ready on its restart as a bug: kubernetes#78733, #100277).
    /// - Ready means its startup probe had passed (readiness and the
    ///   ready-without-probe rule only run after it): the startup probe
    ///   does not run again, and a failing one can no longer kill a
    ///   process that started long ago. Readiness stays true until
    ///   `failure_threshold` failures, as before the restart.
    /// - Ready under `notify` means READY=1 had come (the only way to be
    ///   ready without a readiness probe; with one, it is assumed): the
    ///   watchdog is armed again, a full interval from now. Before, it
    ///   waited for a READY=1 that a process sends once, so every
    ///   daemon restart silently switched the watchdog off.
    /// - Initial delays count from the process's start, not from the
    ///   adoption: a process that started long ago is probed at once.
    ///
    /// A process that was not ready starts its checks over, as a fresh run.
    pub(super) fn resume_checks(&mut self, since: Instant, ready: bool) {
        let r = self.rules;
        self.s.checks = Checks {
            startup_done: ready || r.probe(ProbeKind::Startup).is_none(),
            ..Checks::default()
        };
        if ready {
            self.s.checks.probes[ProbeKind::Readiness.index()].healthy = Some(true);
            if let (true, Some(w)) = (r.notify, r.watchdog) {
                self.s.checks.watchdog_armed = true;
                self.s.checks.last_ping = Some(self.now.mono);
                self.arm(TimerKind::Watchdog, self.now.mono + w);
            }
        }
        self.arm_checks(since);
    }

    /// Arms the probes that may run now (startup alone until it passed),
    /// each at `since` + its initial delay, and never in the past.
    fn arm_checks(&mut self, since: Instant) {
        let r = self.rules;
        let kinds: &[ProbeKind] = if self.s.checks.startup_done {
            &[ProbeKind::Liveness, ProbeKind::Readiness]
        } else {
            &[ProbeKind::Startup]
        };
        for &kind in kinds {
            if let Some(p) = r.probe(kind) {
                let mut at = (since + p.initial_delay).max(self.now.mono);
                if kind == ProbeKind::Liveness {
                    at += r.liveness_spread;
                }
                self.arm(TimerKind::Probe(kind), at);
            }
        }
    }

    /// A probe's period came round: arm the next one, then run this one
    /// unless the previous check is still going.
    pub(super) fn probe_due(&mut self, kind: ProbeKind) {
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

    pub(super) fn probe_result(&mut self, run: Run, kind: ProbeKind, result: ProbeResult) {
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

    pub(super) fn notice(&mut self, run: Run, notice: Notice) {
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
}
