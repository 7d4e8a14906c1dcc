//! The init sequence (Kubernetes' init containers): which of a pod's
//! processes may start now. Init processes run one at a time, in order,
//! each to completion (exit 0); the processes start together once they
//! all completed. An init process that fails is retried by its own state
//! machine (restart policy and backoff, see `process::Role`); one that
//! failed for good (restart policy Never) ends the pod: its processes
//! never start. Pure: phases and the pod's status in, indices out.

use super::PodRt;
use crate::agent::process::Phase;
use crate::api::{PodStatus, ProcessState};

/// What the pod layer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Start these processes (their turn came).
    Start(Vec<usize>),
    /// An init process failed for good: these waiting processes will
    /// never run (they are told to stop, and the pod fails).
    Abandon(Vec<usize>),
    Nothing,
}

pub(super) fn next(rt: &PodRt, status: &PodStatus) -> Next {
    let waiting = |range: std::ops::Range<usize>| -> Vec<usize> {
        range
            .filter(|&i| rt.procs[i].phase == Phase::Waiting)
            .collect()
    };
    for i in 0..rt.inits {
        if completed(rt, status, i) {
            continue;
        }
        let list = match rt.procs[i].phase {
            Phase::Waiting => return Next::Start(vec![i]),
            Phase::Done if !rt.stopping => waiting(i + 1..rt.procs.len()),
            _ => return Next::Nothing,
        };
        return if list.is_empty() {
            Next::Nothing
        } else {
            Next::Abandon(list)
        };
    }
    let list = waiting(rt.inits..rt.procs.len());
    if list.is_empty() {
        Next::Nothing
    } else {
        Next::Start(list)
    }
}

/// The processes `drover restart pod` restarts: every process, and the
/// init processes that did not complete (one that failed for good must
/// run again before the processes can); completed ones are not rerun.
pub(super) fn to_restart(rt: &PodRt, status: &PodStatus) -> Vec<usize> {
    (0..rt.procs.len())
        .filter(|&i| i >= rt.inits || !completed(rt, status, i))
        .collect()
}

/// Init process `i` exited 0 and will not run again.
fn completed(rt: &PodRt, status: &PodStatus, i: usize) -> bool {
    rt.procs[i].phase == Phase::Done
        && matches!(
            status.init_processes.get(i).map(|s| &s.state),
            Some(ProcessState::Terminated(t)) if t.exit_code == Some(0)
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ProcessReason, ProcessStatus, TerminatedState};

    fn rt(phases: &[Phase], inits: usize) -> PodRt {
        let mut rt = PodRt::new("uid", inits, phases.len());
        for (p, phase) in rt.procs.iter_mut().zip(phases) {
            p.phase = phase.clone();
        }
        rt
    }

    fn exited(code: i32) -> ProcessStatus {
        let mut st = ProcessStatus::waiting("x", ProcessReason::ContainerCreating);
        st.state = ProcessState::Terminated(TerminatedState {
            exit_code: Some(code),
            signal: None,
            reason: if code == 0 {
                ProcessReason::Completed
            } else {
                ProcessReason::Error
            },
            message: None,
            started_at: None,
            finished_at: chrono::Utc::now(),
        });
        st
    }

    fn status(inits: Vec<ProcessStatus>) -> PodStatus {
        PodStatus {
            init_processes: inits,
            ..Default::default()
        }
    }

    fn waiting() -> ProcessStatus {
        ProcessStatus::waiting("x", ProcessReason::ContainerCreating)
    }

    #[test]
    fn one_init_process_at_a_time_then_the_processes_together() {
        use Phase::*;
        let cases: Vec<(&str, Vec<Phase>, Vec<ProcessStatus>, Next)> = vec![
            (
                "fresh: the first init process",
                vec![Waiting, Waiting, Waiting, Waiting],
                vec![waiting(), waiting()],
                Next::Start(vec![0]),
            ),
            (
                "the first runs: nothing else",
                vec![Starting, Waiting, Waiting, Waiting],
                vec![waiting(), waiting()],
                Next::Nothing,
            ),
            (
                "the first completed: the second",
                vec![Done, Waiting, Waiting, Waiting],
                vec![exited(0), waiting()],
                Next::Start(vec![1]),
            ),
            (
                "both completed: the processes, together",
                vec![Done, Done, Waiting, Waiting],
                vec![exited(0), exited(0)],
                Next::Start(vec![2, 3]),
            ),
            (
                "an init process backing off: the processes wait",
                vec![Done, BackingOff, Waiting, Waiting],
                vec![exited(0), exited(1)],
                Next::Nothing,
            ),
            (
                "an init process failed for good: the rest never runs",
                vec![Done, Done, Waiting, Waiting],
                vec![exited(0), exited(1)],
                Next::Abandon(vec![2, 3]),
            ),
            (
                "already abandoned: nothing",
                vec![Done, Done, Done, Done],
                vec![exited(0), exited(1)],
                Next::Nothing,
            ),
        ];
        for (name, phases, inits, want) in cases {
            assert_eq!(next(&rt(&phases, 2), &status(inits)), want, "{name}");
        }
        // Without init processes, every waiting process starts.
        assert_eq!(
            next(&rt(&[Waiting, Done, Waiting], 0), &status(vec![])),
            Next::Start(vec![0, 2])
        );
    }

    #[test]
    fn restart_reruns_what_did_not_complete() {
        use Phase::*;
        let r = rt(&[Done, Done, Done], 2);
        assert_eq!(
            to_restart(&r, &status(vec![exited(0), exited(1)])),
            vec![1, 2]
        );
        assert_eq!(to_restart(&r, &status(vec![exited(0), exited(0)])), vec![2]);
    }
}
