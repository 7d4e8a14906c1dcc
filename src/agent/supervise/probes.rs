//! Running probe checks for the state machine: exec probes through the
//! runtime (their exit is reaped like any child's, their timeout is a
//! timer), HTTP and TCP checks handed to the daemon as tasks. Results go
//! back to the process as `Event::Probe`.

use super::*;
use crate::agent::env::{self, EnvInputs};
use crate::agent::probe::{self, ProbeResult};
use crate::api::{Probe, ProcessSpec};
use crate::runtime::{ExitReason, SpawnRequest};
use std::time::Duration;

fn spec_probe(spec: &ProcessSpec, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Startup => spec.startup.as_ref(),
        ProbeKind::Liveness => spec.liveness.as_ref(),
        ProbeKind::Readiness => spec.readiness.as_ref(),
    }
}

/// A fixed offset within one period, different for each pod: pods created
/// together (a ReplicaSet of 1000) would otherwise probe in lock-step, a
/// burst of checks every period. Only liveness is spread: a readiness
/// check that comes early makes a pod ready sooner, a liveness check
/// within its first period is as good as at its start.
pub(super) fn spread(pod: &str, idx: usize, period: Duration) -> Duration {
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
            message: format!("command was killed by {s}"),
        },
        None => ProbeResult::Failure {
            message: "command ended with an unknown status".into(),
        },
    }
}

impl<R: ProcessRuntime> Agent<R> {
    /// The environment a process (and its exec probes) runs with.
    pub(super) fn process_env(&self, pod: &Pod, idx: usize) -> Vec<(String, String)> {
        let spec = pod.spec.process_at(idx).expect("process index in range");
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
            run: pod.process_status(idx).map_or(0, |p| p.restart_count),
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

    /// Starts one check of probe `kind` of process `idx`. An event to feed
    /// back at once if the check could not even start (it failed).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_probe(
        &mut self,
        store: &Store,
        name: &str,
        idx: usize,
        kind: ProbeKind,
        run: u64,
        now: Now,
        out: &mut Outbox,
    ) -> Option<Event> {
        let pod = store.pod(name)?;
        let spec = pod.spec.process_at(idx)?;
        let probe = spec_probe(spec, kind)?;
        let failed = |message: String| {
            Some(Event::Probe {
                kind,
                run,
                result: ProbeResult::Failure { message },
            })
        };
        let key = ProbeKey {
            pod: name.to_string(),
            uid: pod.metadata.uid.clone(),
            idx,
            kind,
            run,
        };
        let check = match probe::resolve(probe, &pod.status.ports) {
            Ok(c) => c,
            Err(message) => return failed(message),
        };
        match check {
            Check::Exec { command, timeout } => {
                let environment = self.process_env(pod, idx);
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
                        self.timers.arm(
                            TimerKey::ProbeTimeout { pid: spawned.pid },
                            now.mono + timeout,
                            run,
                        );
                        None
                    }
                    Err(e) => failed(e.to_string()),
                }
            }
            check => {
                out.checks.push(CheckRequest { key, check });
                None
            }
        }
    }

    /// An exec probe ran past its timeout: killed, and a failure.
    pub(super) fn probe_timed_out(
        &mut self,
        store: &mut Store,
        pid: i32,
        now: Now,
        out: &mut Outbox,
    ) {
        let Some(key) = self.probe_pids.remove(&pid) else {
            return;
        };
        let _ = self.rt.signal_group(pid, Signal::KILL);
        let timeout = store
            .pod(&key.pod)
            .and_then(|p| p.spec.process_at(key.idx))
            .and_then(|s| spec_probe(s, key.kind))
            .map(|p| p.timeout.as_duration())
            .unwrap_or_default();
        let message = format!(
            "command timed out after {}",
            crate::api::duration::format_duration(timeout)
        );
        self.on_probe_result(store, key, ProbeResult::Failure { message }, now, out);
    }

    /// An exec probe exited (reaped).
    pub(super) fn exec_probe_ended(
        &mut self,
        store: &mut Store,
        pid: i32,
        key: ProbeKey,
        exit: Option<ExitReason>,
        now: Now,
        out: &mut Outbox,
    ) {
        self.timers.cancel(&TimerKey::ProbeTimeout { pid });
        // Whatever the check left in its group goes with it.
        let _ = self.rt.signal_group(pid, Signal::KILL);
        self.on_probe_result(store, key, exec_result(exit), now, out);
    }

    /// A check finished. Results of an earlier run are dropped by the
    /// state machine.
    pub fn on_probe_result(
        &mut self,
        store: &mut Store,
        key: ProbeKey,
        result: ProbeResult,
        now: Now,
        out: &mut Outbox,
    ) {
        if self.pods.get(&key.pod).is_none_or(|rt| rt.uid != key.uid) {
            return;
        }
        let event = Event::Probe {
            kind: key.kind,
            run: key.run,
            result,
        };
        self.dispatch(store, &key.pod, key.idx, event, now, out);
        self.flush(store, now, out);
    }
}
