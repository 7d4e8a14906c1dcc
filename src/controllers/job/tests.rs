//! Job reconcile, table by table: what a pass plans for a given set of pods
//! at a given time. No processes, no clock.

use super::*;
use crate::api::job::{default_backoff_initial, default_backoff_max};
use crate::api::{Dur, JobSpec, PodTemplate, TerminatedState};
use crate::controllers::fixtures::*;

fn job(name: &str, completions: u32, parallelism: u32) -> Job {
    let mut spec = pod_spec();
    spec.restart_policy = RestartPolicy::Never;
    Job {
        metadata: meta(name),
        spec: JobSpec {
            completions,
            parallelism,
            backoff_limit: 6,
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            active_deadline: None,
            ttl_after_finished: None,
            completion_mode: CompletionMode::NonIndexed,
            suspend: false,
            template: PodTemplate {
                labels: labels(&[("app", name)]),
                spec,
            },
        },
        status: JobStatus::default(),
    }
}

impl AsOwner for Job {
    fn as_owner(&self) -> OwnerRef {
        owner_ref(self)
    }
}

/// A pod of `j` that ended at `t(at)` with phase Succeeded or Failed.
fn ended(name: &str, j: &Job, ok: bool, at: i64) -> Pod {
    let mut p = pod(name).owned_by(j).on("n1").running();
    p.status.phase = if ok {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    };
    p.status.processes[0].state = ProcessState::Terminated(TerminatedState {
        exit_code: Some(if ok { 0 } else { 1 }),
        signal: None,
        reason: if ok { "Completed" } else { "Error" }.into(),
        message: None,
        started_at: None,
        finished_at: t(at),
    });
    p
}

fn indexed(p: Pod, i: u32) -> Pod {
    let mut p = p;
    p.metadata
        .labels
        .insert(labels::COMPLETION_INDEX.into(), i.to_string());
    p
}

fn creates(plan: &JobPlan) -> Vec<&Pod> {
    plan.ops
        .iter()
        .filter_map(|o| match o {
            Op::CreatePod { pod, .. } => Some(pod),
            _ => None,
        })
        .collect()
}

fn deletes(plan: &JobPlan) -> Vec<(String, String)> {
    plan.ops
        .iter()
        .filter_map(|o| match o {
            Op::DeletePod { name, reason } => Some((name.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn nodes() -> Vec<Node> {
    vec![node("n1")]
}

#[test]
fn a_new_job_starts_parallelism_pods() {
    let j = job("backup", 5, 2);
    let plan = reconcile(&j, &[], &refs(&nodes()), t(0));
    let made = creates(&plan);
    assert_eq!(made.len(), 2);
    let p = made[0];
    assert_eq!(p.metadata.owner_references, vec![owner_ref(&j)]);
    assert_eq!(p.metadata.labels[labels::JOB_NAME], "backup");
    assert_eq!(p.metadata.labels[labels::CONTROLLER_UID], "uid-backup");
    assert_eq!(p.metadata.labels["app"], "backup");
    assert_eq!(p.status.node_name.as_deref(), Some("n1"));
    assert_eq!(plan.status.active, 2);
    assert_eq!(plan.status.start_time, Some(t(0)));
    assert_eq!(plan.requeue_after, None);
    assert!(plan.notices.is_empty());
}

#[test]
fn never_more_than_parallelism_nor_remaining() {
    // (completions, parallelism, succeeded, active, terminating) -> creates
    let cases: &[(u32, u32, usize, usize, usize, usize)] = &[
        (5, 2, 0, 2, 0, 0),
        (5, 2, 0, 1, 0, 1),
        (5, 2, 4, 0, 0, 1),
        (5, 3, 3, 0, 0, 2),
        (5, 2, 0, 1, 1, 0), // a stopping pod still counts against parallelism
        (1000, 50, 990, 0, 0, 10),
        (2000, 1000, 0, 0, 0, BURST),
        (5, 0, 0, 0, 0, 0),
    ];
    for &(completions, parallelism, succeeded, active, terminating, want) in cases {
        let mut j = job("j", completions, parallelism);
        j.status.start_time = Some(t(0));
        let mut pods = vec![];
        for i in 0..succeeded {
            pods.push(ended(&format!("s{i}"), &j, true, 1));
        }
        for i in 0..active {
            pods.push(pod(&format!("a{i}")).owned_by(&j).on("n1").running());
        }
        for i in 0..terminating {
            pods.push(
                pod(&format!("x{i}"))
                    .owned_by(&j)
                    .on("n1")
                    .running()
                    .terminating(t(1)),
            );
        }
        let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(2));
        assert_eq!(
            creates(&plan).len(),
            want,
            "completions {completions} parallelism {parallelism} succeeded {succeeded} \
             active {active} terminating {terminating}"
        );
        assert!(plan.status.active <= parallelism.max(active as u32));
    }
}

#[test]
fn scaling_down_stops_surplus_pods() {
    let mut j = job("j", 10, 1);
    j.status.start_time = Some(t(0));
    let pods = vec![
        pod("a").owned_by(&j).on("n1").running().created_at(t(1)),
        pod("b").owned_by(&j).on("n1").running().created_at(t(2)),
        pod("c").owned_by(&j).on("n1").running().created_at(t(3)),
    ];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    assert_eq!(
        deletes(&plan),
        [
            ("c".to_string(), reasons::SURPLUS.to_string()),
            ("b".to_string(), reasons::SURPLUS.to_string())
        ]
    );
    assert_eq!(plan.status.active, 1);
}

#[test]
fn foreign_and_orphan_pods_are_never_touched_nor_adopted() {
    let j = job("j", 1, 1);
    let other = rs("web", 1);
    // Same labels as the Job's pods would have, but not the Job's.
    let lookalike = pod("orphan")
        .labels(&[("job-name", "j"), ("controller-uid", "uid-j")])
        .on("n1")
        .running();
    let foreign = pod("foreign").owned_by(&other).on("n1").succeeded();
    let plan = reconcile(&j, &refs(&[lookalike, foreign]), &refs(&nodes()), t(0));
    assert_eq!(creates(&plan).len(), 1, "the job starts its own pod");
    assert!(deletes(&plan).is_empty());
    assert_eq!(plan.status.succeeded, 0);
}

#[test]
fn completes_when_enough_pods_succeeded() {
    let mut j = job("j", 2, 2);
    j.status.start_time = Some(t(0));
    let pods = vec![ended("a", &j, true, 3), ended("b", &j, true, 4)];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    assert!(plan.ops.is_empty());
    assert!(plan.status.is_complete());
    assert_eq!(plan.status.succeeded, 2);
    assert_eq!(plan.status.completion_time, Some(t(5)));
    assert_eq!(
        plan.notices,
        vec![Notice::normal("Completed", "Job completed")]
    );
    // Applied, then reconciled again: nothing more, ever.
    let mut after = j.clone();
    after.status = plan.status.clone();
    let again = reconcile(&after, &refs(&pods), &refs(&nodes()), t(500));
    assert!(again.ops.is_empty());
    assert!(again.notices.is_empty());
    assert_eq!(again.status, plan.status);
}

#[test]
fn a_completed_job_is_never_run_again() {
    // Even when its pods are gone (deleted by hand, or the store lost
    // them), the condition holds: no pod is created.
    let mut j = job("j", 3, 3);
    j.status.succeeded = 3;
    j.status.start_time = Some(t(0));
    j.status.completion_time = Some(t(9));
    set_condition(
        &mut j.status,
        JobConditionType::Complete,
        true,
        "CompletionsReached",
        "",
        t(9),
    );
    let plan = reconcile(&j, &[], &refs(&nodes()), t(100));
    assert!(plan.ops.is_empty());
    assert_eq!(plan.status.succeeded, 3);
}

#[test]
fn failed_pods_are_replaced_after_a_doubling_backoff() {
    let mut j = job("j", 1, 1);
    j.spec.backoff_initial = Dur::secs(10);
    j.spec.backoff_max = Dur::secs(360);
    j.status.start_time = Some(t(0));
    // One failure at t(100): the next pod may start at t(110).
    let one = vec![ended("a", &j, false, 100)];
    let plan = reconcile(&j, &refs(&one), &refs(&nodes()), t(104));
    assert!(creates(&plan).is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    assert_eq!(plan.status.failed, 1);
    let plan = reconcile(&j, &refs(&one), &refs(&nodes()), t(110));
    assert_eq!(creates(&plan).len(), 1);
    // Three failures in a row: 40s after the last.
    let three = vec![
        ended("a", &j, false, 100),
        ended("b", &j, false, 120),
        ended("c", &j, false, 150),
    ];
    let plan = reconcile(&j, &refs(&three), &refs(&nodes()), t(151));
    assert!(creates(&plan).is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(39)));
    // A success resets the count.
    let mut j5 = job("j", 5, 1);
    j5.status.start_time = Some(t(0));
    let mixed = vec![
        ended("a", &j5, false, 100),
        ended("b", &j5, false, 120),
        ended("c", &j5, true, 130),
        ended("d", &j5, false, 140),
    ];
    let plan = reconcile(&j5, &refs(&mixed), &refs(&nodes()), t(145));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(5)));
}

#[test]
fn backoff_table() {
    let s = Duration::from_secs;
    for (n, want) in [
        (0, 0),
        (1, 10),
        (2, 20),
        (3, 40),
        (5, 160),
        (6, 320),
        (7, 360),
        (40, 360),
    ] {
        assert_eq!(failure_backoff(n, s(10), s(360)), s(want), "{n} failures");
    }
}

#[test]
fn backoff_limit_fails_the_job() {
    let mut j = job("j", 1, 1);
    j.spec.backoff_limit = 2;
    j.status.start_time = Some(t(0));
    let two = vec![ended("a", &j, false, 1), ended("b", &j, false, 2)];
    let plan = reconcile(&j, &refs(&two), &refs(&nodes()), t(100));
    assert!(!plan.status.is_failed(), "2 retries are allowed");
    let three = vec![
        ended("a", &j, false, 1),
        ended("b", &j, false, 2),
        ended("c", &j, false, 3),
    ];
    let plan = reconcile(&j, &refs(&three), &refs(&nodes()), t(100));
    let c = plan.status.condition(JobConditionType::Failed).unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(plan.status.failed, 3);
    assert!(creates(&plan).is_empty());
    assert_eq!(plan.notices[0].reason, "BackoffLimitExceeded");
    assert!(plan.notices[0].warning);
}

#[test]
fn restarts_in_place_count_with_on_failure() {
    let mut j = job("j", 1, 1);
    j.spec.template.spec.restart_policy = RestartPolicy::OnFailure;
    j.spec.backoff_limit = 2;
    j.status.start_time = Some(t(0));
    let twice = vec![pod("a").owned_by(&j).on("n1").running().restarted(2)];
    assert!(!reconcile(&j, &refs(&twice), &refs(&nodes()), t(10))
        .status
        .is_failed());
    let thrice = vec![pod("a").owned_by(&j).on("n1").running().restarted(3)];
    let plan = reconcile(&j, &refs(&thrice), &refs(&nodes()), t(10));
    assert!(plan.status.is_failed());
    assert_eq!(
        deletes(&plan),
        [("a".to_string(), "BackoffLimitExceeded".to_string())]
    );
    assert_eq!(plan.status.failed, 1, "the stopped pod counts as failed");
}

#[test]
fn active_deadline_stops_the_pods() {
    let mut j = job("j", 3, 2);
    j.spec.active_deadline = Some(Dur::secs(30));
    j.status.start_time = Some(t(0));
    let pods = vec![
        pod("a").owned_by(&j).on("n1").running(),
        pod("b").owned_by(&j).on("n1").running(),
    ];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(20));
    assert!(plan.ops.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(10)));
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(30));
    let c = plan.status.condition(JobConditionType::Failed).unwrap();
    assert_eq!(c.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(deletes(&plan).len(), 2);
    assert_eq!(plan.status.active, 0);
    assert_eq!(plan.status.failed, 2);
}

#[test]
fn indexed_jobs_run_each_index_once() {
    let mut j = job("j", 4, 2);
    j.spec.completion_mode = CompletionMode::Indexed;
    let plan = reconcile(&j, &[], &refs(&nodes()), t(0));
    let made = creates(&plan);
    let idx: Vec<u32> = made.iter().filter_map(|p| pod_index(p)).collect();
    assert_eq!(idx, [0, 1]);
    assert_eq!(
        made[1].spec.processes[0].env[labels::COMPLETION_INDEX_ENV],
        "1"
    );
    assert!(matches!(&plan.ops[1], Op::CreatePod { generate_name, .. } if generate_name == "j-1-"));

    j.status.start_time = Some(t(0));
    // 0 done, 1 failed, 2 running: next are 1 and 3, one slot free.
    let pods = vec![
        indexed(ended("a", &j, true, 1), 0),
        indexed(ended("b", &j, false, 1), 1),
        indexed(pod("c").owned_by(&j).on("n1").running(), 2),
    ];
    j.spec.backoff_initial = Dur::secs(0);
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    let idx: Vec<u32> = creates(&plan).iter().filter_map(|p| pod_index(p)).collect();
    assert_eq!(idx, [1]);
    assert_eq!(plan.status.completed_indexes, "0");

    // A second pod for a completed index, or a duplicate, goes.
    let pods = vec![
        indexed(ended("a", &j, true, 1), 0),
        indexed(pod("late").owned_by(&j).on("n1").running(), 0),
        indexed(pod("c").owned_by(&j).on("n1").running().created_at(t(1)), 2),
        indexed(pod("d").owned_by(&j).on("n1").running().created_at(t(2)), 2),
    ];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    let gone: Vec<String> = deletes(&plan).into_iter().map(|(n, _)| n).collect();
    assert_eq!(gone, ["late", "d"]);

    // All indexes done (a duplicate success does not count twice).
    let pods: Vec<Pod> = (0..4)
        .map(|i| indexed(ended(&format!("p{i}"), &j, true, 1), i))
        .chain([indexed(ended("dup", &j, true, 1), 3)])
        .collect();
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    assert!(plan.status.is_complete());
    assert_eq!(plan.status.completed_indexes, "0-3");
}

#[test]
fn suspend_and_resume() {
    let mut j = job("j", 2, 2);
    j.spec.suspend = true;
    j.status.start_time = Some(t(0));
    let pods = vec![pod("a").owned_by(&j).on("n1").running()];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(5));
    assert_eq!(
        deletes(&plan),
        [("a".to_string(), reasons::SUSPENDED.to_string())]
    );
    assert!(plan.status.condition(JobConditionType::Suspended).is_some());
    assert_eq!(plan.status.start_time, None);
    j.status = plan.status;
    j.spec.suspend = false;
    let plan = reconcile(&j, &[], &refs(&nodes()), t(9));
    assert_eq!(creates(&plan).len(), 2);
    assert_eq!(plan.status.start_time, Some(t(9)));
    assert!(plan.status.condition(JobConditionType::Suspended).is_none());
    assert_eq!(plan.notices, vec![Notice::normal("Resumed", "Job resumed")]);
}

#[test]
fn ttl_after_finished() {
    let mut j = job("j", 1, 1);
    j.spec.ttl_after_finished = Some(Dur::secs(60));
    j.status.start_time = Some(t(0));
    set_condition(
        &mut j.status,
        JobConditionType::Complete,
        true,
        "CompletionsReached",
        "",
        t(10),
    );
    let pods = vec![ended("a", &j, true, 9)];
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(30));
    assert!(!plan.delete_job);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(40)));
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(70));
    assert!(plan.delete_job);
    // From the units folder the file declares the Job: only the pods go.
    j.metadata.annotations.insert(
        annotations::MANAGED_BY.into(),
        annotations::UNITS_DIR.into(),
    );
    let plan = reconcile(&j, &refs(&pods), &refs(&nodes()), t(70));
    assert!(!plan.delete_job);
    assert_eq!(
        deletes(&plan),
        [("a".to_string(), reasons::TTL.to_string())]
    );
}

#[test]
fn same_inputs_same_plan() {
    let mut j = job("j", 5, 3);
    j.status.start_time = Some(t(0));
    let pods = vec![
        ended("a", &j, true, 1),
        pod("b").owned_by(&j).on("n1").running(),
    ];
    assert_eq!(
        reconcile(&j, &refs(&pods), &refs(&nodes()), t(3)),
        reconcile(&j, &refs(&pods), &refs(&nodes()), t(3))
    );
}

#[test]
fn indexes_format_as_ranges() {
    let set: BTreeSet<u32> = [0, 1, 2, 3, 5, 7, 8].into_iter().collect();
    assert_eq!(format_indexes(&set), "0-3,5,7-8");
    assert_eq!(format_indexes(&BTreeSet::new()), "");
}
