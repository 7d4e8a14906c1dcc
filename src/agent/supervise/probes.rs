//! The agent's probe handling: arming probe timers for each run, starting
//! checks (exec through the runtime, HTTP/TCP as effects for the daemon
//! to run as tasks), and acting on results: readiness flips `ready`,
//! a failed startup or liveness probe stops the process (SIGTERM, grace,
//! SIGKILL) and hands it to the restart policy and backoff as a failure.

use super::*;
use crate::agent::probe::{self, ProbeResult, Verdict};
use crate::api::{Probe, ProcessSpec};

fn spec_probe(spec: &ProcessSpec, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Startup => spec.startup.as_ref(),
        ProbeKind::Liveness => spec.liveness.as_ref(),
        ProbeKind::Readiness => spec.readiness.as_ref(),
    }
}

/// A fresh run: results start over; the startup probe runs first (after
/// its initial delay) and gates the other two.
pub(super) fn arm(
    proc: &mut Proc,
    pod: &str,
    idx: usize,
    spec: &ProcessSpec,
    now: Instant,
    fx: &mut Effects,
) {
    proc.probes = Default::default();
    proc.probe_inflight = [false; 3];
    proc.startup_done = spec.startup.is_none();
    // The watchdog starts with READY=1, as systemd's does for Type=notify.
    proc.last_ping = None;
    proc.watchdog_armed = false;
    let kinds: &[ProbeKind] = if proc.startup_done {
        &[ProbeKind::Liveness, ProbeKind::Readiness]
    } else {
        &[ProbeKind::Startup]
    };
    for kind in kinds {
        if let Some(p) = spec_probe(spec, *kind) {
            let key = ProbeKey {
                pod: pod.to_string(),
                idx,
                kind: *kind,
                gen: proc.gen,
            };
            let mut at = now + p.initial_delay.as_duration();
            if *kind == ProbeKind::Liveness {
                at += spread(pod, idx, p.period.as_duration());
            }
            fx.timers.push((at, Timer::Probe(key)));
        }
    }
}

/// A fixed offset within one period, different for each pod: pods created
/// together (a ReplicaSet of 1000) would otherwise probe in lock-step, a
/// burst of checks every period. Only liveness is spread: a readiness
/// check that comes early makes a pod ready sooner, a liveness check
/// within its first period is as good as at its start.
fn spread(pod: &str, idx: usize, period: Duration) -> Duration {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in pod.bytes().chain([idx as u8]) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let ms = period.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(h % ms)
}

/// How an exec probe's exit reads.
pub(super) fn exec_result(exit: Option<ExitReason>) -> ProbeResult {
    match exit {
        Some(ExitReason::Code(0)) => ProbeResult::Success,
        Some(ExitReason::Code(c)) => ProbeResult::Failure {
            message: format!("command exited with {c}"),
        },
        Some(ExitReason::Signal(s)) => ProbeResult::Failure {
            message: format!(
                "command was killed by {}",
                crate::runtime::signals::signal_name(s)
            ),
        },
        None => ProbeResult::Failure {
            message: "command ended with an unknown status".into(),
        },
    }
}

impl<R: ProcessRuntime> Agent<R> {
    /// The environment a process (and its exec probes) runs with.
    pub(super) fn process_env(&self, pod: &Pod, idx: usize) -> Vec<(String, String)> {
        let spec = &pod.spec.processes[idx];
        let user_vars = spec
            .user
            .as_deref()
            .and_then(crate::runtime::user_env)
            .unwrap_or_default();
        let mut environment = env::build_env(&EnvInputs {
            instance: &self.cfg.instance,
            base: &self.cfg.base_env,
            user: &user_vars,
            spec_env: &spec.env,
            pod_name: &pod.metadata.name,
            pod_uid: &pod.metadata.uid,
            node_name: &self.cfg.node_name,
            process: &spec.name,
            run: pod
                .status
                .processes
                .get(idx)
                .map(|p| p.restart_count)
                .unwrap_or(0),
            ports: &pod.status.ports,
        });
        if spec.notify {
            if let Some(sock) = &self.cfg.notify_socket {
                environment.push(("NOTIFY_SOCKET".into(), sock.display().to_string()));
            }
            if let Some(w) = spec.watchdog {
                let usec = w.as_duration().as_micros().to_string();
                environment.push(("WATCHDOG_USEC".into(), usec));
            }
            environment.sort();
        }
        environment
    }

    /// A probe's period came round: arm the next one, then run this one
    /// unless the previous check is still going.
    pub(super) fn probe_due(
        &mut self,
        store: &mut Store,
        key: ProbeKey,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Some(pod) = store.pod(&key.pod) else {
            return;
        };
        let Some(spec) = pod.spec.processes.get(key.idx) else {
            return;
        };
        let Some(probe) = spec_probe(spec, key.kind).cloned() else {
            return;
        };
        let Some(rt) = self.pods.get_mut(&key.pod) else {
            return;
        };
        let Some(proc) = rt.procs.get_mut(key.idx) else {
            return;
        };
        if proc.gen != key.gen || !matches!(proc.phase, Phase::Running { .. }) {
            return;
        }
        if key.kind == ProbeKind::Startup && proc.startup_done {
            return;
        }
        fx.timers
            .push((now + probe.period.as_duration(), Timer::Probe(key.clone())));
        let k = key.kind.index();
        if proc.probe_inflight[k] {
            return;
        }
        let check = match probe::resolve(&probe, &pod.status.ports) {
            Ok(c) => c,
            Err(message) => {
                let wall = pod
                    .status
                    .start_time
                    .unwrap_or(pod.metadata.creation_timestamp);
                self.on_probe_result(store, key, ProbeResult::Failure { message }, now, wall, fx);
                return;
            }
        };
        proc.probe_inflight[k] = true;
        match check {
            Check::Exec { command, timeout } => {
                let environment = self.process_env(pod, key.idx);
                let req = SpawnRequest {
                    argv: env::expand_argv(&command, &environment),
                    env: environment,
                    working_dir: spec.working_dir.clone(),
                    user: spec.user.clone(),
                    group: spec.group.clone(),
                    log_path: "/dev/null".into(),
                    ..Default::default()
                };
                match self.rt.spawn(&req) {
                    Ok(spawned) => {
                        self.probe_pids.insert(spawned.pid, key);
                        fx.timers
                            .push((now + timeout, Timer::ProbeTimeout { pid: spawned.pid }));
                    }
                    Err(e) => {
                        let wall = pod
                            .status
                            .start_time
                            .unwrap_or(pod.metadata.creation_timestamp);
                        let message = e.to_string();
                        self.on_probe_result(
                            store,
                            key,
                            ProbeResult::Failure { message },
                            now,
                            wall,
                            fx,
                        );
                    }
                }
            }
            check => fx.checks.push(CheckRequest { key, check }),
        }
    }

    pub(super) fn probe_timed_out(
        &mut self,
        store: &mut Store,
        pid: i32,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(key) = self.probe_pids.remove(&pid) else {
            return;
        };
        let _ = self.rt.signal_group(pid, SIGKILL);
        let timeout = store
            .pod(&key.pod)
            .and_then(|p| p.spec.processes.get(key.idx))
            .and_then(|s| spec_probe(s, key.kind))
            .map(|p| p.timeout.as_duration())
            .unwrap_or_default();
        let message = format!(
            "command timed out after {}",
            crate::api::duration::format_duration(timeout)
        );
        self.on_probe_result(store, key, ProbeResult::Failure { message }, now, wall, fx);
    }

    /// A check finished. Stale results (an older run) are dropped.
    pub fn on_probe_result(
        &mut self,
        store: &mut Store,
        key: ProbeKey,
        result: ProbeResult,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(pod) = store.pod(&key.pod) else {
            return;
        };
        let Some(spec) = pod.spec.processes.get(key.idx).cloned() else {
            return;
        };
        let Some(probe) = spec_probe(&spec, key.kind).cloned() else {
            return;
        };
        let grace = probe
            .termination_grace_period
            .unwrap_or(pod.spec.termination_grace_period)
            .as_duration();
        let Some(rt) = self.pods.get_mut(&key.pod) else {
            return;
        };
        let Some(proc) = rt.procs.get_mut(key.idx) else {
            return;
        };
        if proc.gen != key.gen {
            return;
        }
        let k = key.kind.index();
        proc.probe_inflight[k] = false;
        if !matches!(proc.phase, Phase::Running { .. }) {
            return;
        }
        if let ProbeResult::Failure { message } = &result {
            let pod = store.pod(&key.pod).expect("checked").clone();
            fx.note(
                &pod,
                true,
                "Unhealthy",
                format!("{} probe failed: {message}", key.kind),
            );
        }
        let verdict = proc.probes[k].record(&probe, result);
        match (key.kind, verdict) {
            (_, Verdict::Unchanged) => {}
            (ProbeKind::Readiness, v) => {
                let ready = v == Verdict::BecameHealthy;
                store.update_pod(&key.pod, |p| {
                    let st = &mut p.status.processes[key.idx];
                    let changed = st.ready != ready;
                    st.ready = ready;
                    changed
                });
            }
            (ProbeKind::Startup, Verdict::BecameHealthy) => {
                proc.startup_done = true;
                let gen = proc.gen;
                for kind in [ProbeKind::Liveness, ProbeKind::Readiness] {
                    if let Some(p) = spec_probe(&spec, kind) {
                        let at = proc
                            .started
                            .map(|s| s + p.initial_delay.as_duration())
                            .unwrap_or(now)
                            .max(now);
                        let key = ProbeKey {
                            pod: key.pod.clone(),
                            idx: key.idx,
                            kind,
                            gen,
                        };
                        fx.timers.push((at, Timer::Probe(key)));
                    }
                }
                if spec.readiness.is_none() && !spec.notify {
                    store.update_pod(&key.pod, |p| {
                        p.status.processes[key.idx].ready = true;
                        true
                    });
                }
            }
            (ProbeKind::Liveness, Verdict::BecameHealthy) => {}
            (
                kind @ (ProbeKind::Liveness | ProbeKind::Startup),
                Verdict::BecameUnhealthy { message },
            ) => {
                let reason = format!("{kind}ProbeFailed");
                let message = format!("{kind} probe failed: {message}");
                let what = format!("failed {} probe", kind.to_string().to_lowercase());
                self.fail_running(
                    store, &key.pod, key.idx, reason, message, &what, grace, now, fx,
                );
            }
        }
        let _ = wall;
    }

    /// A running process judged broken (liveness, startup, watchdog): stop
    /// it like any stop (SIGTERM to the group, SIGKILL after the grace
    /// period); its exit then goes to the restart policy and the backoff as
    /// a failure with this reason.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fail_running(
        &mut self,
        store: &mut Store,
        pod_name: &str,
        idx: usize,
        reason: String,
        message: String,
        what: &str,
        grace: Duration,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Some(rt) = self.pods.get_mut(pod_name) else {
            return;
        };
        let Some(proc) = rt.procs.get_mut(idx) else {
            return;
        };
        let Phase::Running { pid } = proc.phase else {
            return;
        };
        proc.gen += 1;
        proc.phase = Phase::Stopping {
            pid,
            then: Then::Failed { reason, message },
            killed: false,
        };
        let gen = proc.gen;
        let _ = self.rt.signal_group(pid, SIGTERM);
        fx.timers.push((
            now + grace,
            Timer::Grace {
                pod: pod_name.to_string(),
                idx,
                gen,
            },
        ));
        let Some(pod) = store.pod(pod_name).cloned() else {
            return;
        };
        let pname = &pod.spec.processes[idx].name;
        fx.note(
            &pod,
            false,
            "Killing",
            format!("Process {pname} {what}, will be restarted"),
        );
        store.update_pod(pod_name, |p| {
            p.status.processes[idx].ready = false;
            true
        });
    }
}
