//! Pods stopped because drover itself stops (`systemctl stop drover`, the
//! machine shutting down, SIGTERM to drover as PID 1): they are stopped
//! gracefully, and start again when drover starts, as systemd starts an
//! enabled service at boot and supervisord an `autostart` program.
//!
//! Without this, a stopped process was recorded as ended for good (exit
//! 143) and its pod as Failed, so after a reboot a standalone Pod with
//! `restart_policy = "Always"` stayed down, and every ReplicaSet pod was
//! replaced by a new one. Now each process the stop ended, and that its
//! restart policy would restart after such an exit, waits ("Stopped") with
//! that exit as its last state and one more restart counted, and its pod
//! stays Running; the next daemon starts it at once (Kubernetes restarts
//! containers in place after a node reboot the same way). A process its
//! policy would not restart (`Never`; `OnFailure` after exit 0) keeps its
//! end, so a Job's pod interrupted under `Never` fails and is replaced.
//!
//! `drover up` is unaffected: it forgets every pod on exit and starts
//! again from its units.

use crate::api::{Pod, PodPhase, ProcessState, RestartPolicy};
use crate::store::Store;
use std::collections::HashMap;

/// The waiting reason of a process stopped with drover.
pub const STOPPED: &str = "Stopped";

/// Which processes of which pods the halt found running (by process
/// index, init processes first).
#[derive(Debug, Default)]
pub(super) struct Halted(HashMap<String, Vec<bool>>);

impl Halted {
    pub(super) fn record(&mut self, pod: &str, live: Vec<bool>) {
        if live.iter().any(|l| *l) {
            self.0.insert(pod.to_string(), live);
        }
    }

    /// Rewrites, in `store`, the pods the halt stopped (see the module
    /// docs). Pods being deleted are left as they ended.
    pub(super) fn park(&mut self, store: &mut Store) {
        for (name, live) in self.0.drain() {
            let deleting = store
                .pod(&name)
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            if !deleting {
                store.update_pod(&name, |pod| park_pod(pod, &live));
            }
        }
    }
}

/// One pod; true if it changed.
fn park_pod(pod: &mut Pod, live: &[bool]) -> bool {
    let policy = pod.spec.restart_policy;
    let inits = pod.spec.init_processes.len();
    let mut parked_init = false;
    let mut parked = false;
    for (idx, was_live) in live.iter().enumerate() {
        if !was_live {
            continue;
        }
        let Some(st) = pod.process_status_mut(idx) else {
            continue;
        };
        let ProcessState::Terminated(end) = &st.state else {
            continue;
        };
        let restarts = match policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => end.exit_code != Some(0),
            RestartPolicy::Never => false,
        };
        if !restarts {
            continue;
        }
        st.last_state = Some(end.clone());
        st.state = ProcessState::Waiting {
            reason: STOPPED.into(),
            message: Some("stopped with drover; starts again when drover starts".into()),
        };
        st.restart_count += 1;
        parked = true;
        parked_init |= idx < inits;
    }
    if parked {
        pod.status.phase = if parked_init {
            PodPhase::Pending
        } else {
            PodPhase::Running
        };
    }
    parked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ProcessStatus, TerminatedState};

    fn ended(code: i32) -> ProcessState {
        ProcessState::Terminated(TerminatedState {
            exit_code: Some(code),
            signal: None,
            reason: "Error".into(),
            message: None,
            started_at: None,
            finished_at: chrono::DateTime::UNIX_EPOCH,
        })
    }

    fn pod_with(policy: RestartPolicy, states: &[ProcessState]) -> Pod {
        let mut p = crate::controllers::fixtures::pod("p");
        p.spec.restart_policy = policy;
        let proto = p.spec.processes[0].clone();
        p.spec.processes = (0..states.len())
            .map(|i| {
                let mut s = proto.clone();
                s.name = format!("p{i}");
                s
            })
            .collect();
        p.status.processes = states
            .iter()
            .enumerate()
            .map(|(i, s)| ProcessStatus {
                state: s.clone(),
                ..ProcessStatus::waiting(&format!("p{i}"), "ContainerCreating")
            })
            .collect();
        p.status.phase = PodPhase::Failed;
        p
    }

    #[test]
    fn what_the_policy_would_restart_waits_for_the_next_start() {
        let cases = [
            (RestartPolicy::Always, 143, true),
            (RestartPolicy::Always, 0, true),
            (RestartPolicy::OnFailure, 143, true),
            (RestartPolicy::OnFailure, 0, false),
            (RestartPolicy::Never, 143, false),
        ];
        for (policy, code, want) in cases {
            let mut p = pod_with(policy, &[ended(code)]);
            assert_eq!(park_pod(&mut p, &[true]), want, "{policy:?} {code}");
            let st = &p.status.processes[0];
            if want {
                assert!(
                    matches!(&st.state, ProcessState::Waiting { reason, .. } if reason == STOPPED),
                    "{policy:?} {code}: {st:?}"
                );
                assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(code));
                assert_eq!(st.restart_count, 1);
                assert_eq!(p.status.phase, PodPhase::Running);
            } else {
                assert_eq!(st.state, ended(code), "{policy:?} {code}");
                assert_eq!(p.status.phase, PodPhase::Failed);
            }
        }
    }

    #[test]
    fn only_processes_the_halt_found_running_are_parked() {
        // p0 ended on its own before the halt; p1 was stopped by it.
        let mut p = pod_with(RestartPolicy::Always, &[ended(1), ended(143)]);
        assert!(park_pod(&mut p, &[false, true]));
        assert_eq!(p.status.processes[0].state, ended(1));
        assert!(matches!(
            p.status.processes[1].state,
            ProcessState::Waiting { .. }
        ));
    }
}
