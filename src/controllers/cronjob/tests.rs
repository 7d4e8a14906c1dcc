//! CronJob reconcile: which Job a pass creates or deletes at a given time.

use super::*;
use crate::api::job::{default_backoff_initial, default_backoff_max};
use crate::api::{
    CompletionMode, CronJobSpec, Dur, JobCondition, JobConditionType, JobSpec, JobTemplate,
    PodTemplate,
};
use crate::controllers::fixtures::{labels, meta, pod_spec, refs, t};

/// A CronJob created at `t(0)` (2023-11-14 22:13:20 UTC).
fn cronjob(schedule: &str) -> CronJob {
    CronJob {
        metadata: meta("report"),
        spec: CronJobSpec {
            schedule: schedule.into(),
            time_zone: None,
            concurrency_policy: ConcurrencyPolicy::Allow,
            starting_deadline: None,
            suspend: false,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            job_template: JobTemplate {
                labels: labels(&[("team", "ops")]),
                spec: JobSpec {
                    completions: 1,
                    parallelism: 1,
                    backoff_limit: 6,
                    backoff_initial: default_backoff_initial(),
                    backoff_max: default_backoff_max(),
                    active_deadline: None,
                    ttl_after_finished: None,
                    completion_mode: CompletionMode::NonIndexed,
                    suspend: false,
                    template: PodTemplate {
                        labels: Default::default(),
                        spec: pod_spec(),
                    },
                },
            },
        },
        status: CronJobStatus::default(),
    }
}

/// A Job of `cj` for the run at `at`, with a uid, running or finished.
fn run_of(cj: &CronJob, at: DateTime<Utc>, finished: Option<bool>) -> Job {
    let mut j = job_from_template(cj, job_name(cj, at), Some(at), at);
    j.metadata.uid = format!("uid-{}", j.metadata.name);
    j.status.start_time = Some(at);
    if let Some(ok) = finished {
        j.status.conditions.push(JobCondition {
            type_: if ok {
                JobConditionType::Complete
            } else {
                JobConditionType::Failed
            },
            status: "True".into(),
            reason: None,
            message: None,
            last_transition_time: at + chrono::Duration::seconds(5),
        });
        if ok {
            j.status.completion_time = Some(at + chrono::Duration::seconds(5));
        }
    }
    j
}

/// Applies what the plan says to the CronJob's status and the Jobs, as
/// the executor would.
fn apply(cj: &mut CronJob, jobs: &mut Vec<Job>, plan: &CronPlan) {
    cj.status = plan.status.clone();
    jobs.retain(|j| !plan.delete.iter().any(|(n, _)| *n == j.metadata.name));
    if let Some(mut j) = plan.create.clone() {
        j.metadata.uid = format!("uid-{}", j.metadata.name);
        for r in &mut cj.status.active {
            if r.name == j.metadata.name {
                r.uid = j.metadata.uid.clone();
            }
        }
        jobs.push(j);
    }
}

const MINUTE: i64 = 60;

#[test]
fn creates_the_job_for_the_due_time_once() {
    // Every 5 seconds; t(0) is a whole minute plus 20s.
    let cj = cronjob("*/5 * * * * *");
    let plan = reconcile(&cj, &[], t(3));
    assert!(plan.create.is_none(), "nothing due before t(5)");
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(2)));

    let mut cj = cj;
    let mut jobs = vec![];
    let plan = reconcile(&cj, &refs(&jobs), t(5));
    let job = plan.create.clone().expect("a job at t(5)");
    assert_eq!(job.metadata.name, format!("report-{}", t(5).timestamp()));
    assert_eq!(job.metadata.owner_references, vec![owner_ref(&cj)]);
    assert_eq!(job.metadata.labels["team"], "ops");
    assert_eq!(plan.status.last_schedule_time, Some(t(5)));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(5)));
    apply(&mut cj, &mut jobs, &plan);
    // The same instant again: nothing new.
    let again = reconcile(&cj, &refs(&jobs), t(5));
    assert!(again.create.is_none());
    assert!(again.notices.is_empty());
    // A status lost in a crash: the name says the run exists.
    let mut forgetful = cj.clone();
    forgetful.status = CronJobStatus::default();
    let plan = reconcile(&forgetful, &refs(&jobs), t(6));
    assert!(plan.create.is_none());
    assert_eq!(plan.status.last_schedule_time, Some(t(5)));
    assert_eq!(plan.status.active.len(), 1);
}

#[test]
fn after_downtime_one_missed_run_within_the_deadline() {
    // Every minute, at second 0: t(40) is the first.
    let mut cj = cronjob("* * * * *");
    cj.spec.starting_deadline = Some(Dur::secs(30));
    cj.status.last_schedule_time = Some(t(40));
    // Down from t(41) to t(40 + 3 minutes + 10s): three runs missed, the
    // last one 10s ago: only it runs.
    let now = t(40 + 3 * MINUTE + 10);
    let plan = reconcile(&cj, &[], now);
    let job = plan.create.expect("the most recent missed run");
    assert_eq!(job.metadata.name, job_name(&cj, t(40 + 3 * MINUTE)));
    // 40s late: beyond the deadline, skipped and reported once.
    let now = t(40 + 3 * MINUTE + 40);
    let plan = reconcile(&cj, &[], now);
    assert!(plan.create.is_none());
    assert_eq!(plan.notices[0].reason, "MissSchedule");
    assert_eq!(plan.status.last_missed_time, Some(t(40 + 3 * MINUTE)));
    cj.status = plan.status;
    let plan = reconcile(&cj, &[], now);
    assert!(plan.notices.is_empty(), "{:?}", plan.notices);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(20)));
}

#[test]
fn without_a_deadline_the_missed_run_always_starts() {
    let mut cj = cronjob("@hourly");
    cj.status.last_schedule_time = Some(t(0));
    let plan = reconcile(&cj, &[], t(10 * 3600));
    assert!(plan.create.is_some());
}

#[test]
fn forbid_skips_while_a_job_runs() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.spec.concurrency_policy = ConcurrencyPolicy::Forbid;
    let running = run_of(&cj, t(5), None);
    cj.status.last_schedule_time = Some(t(5));
    let jobs = vec![running];
    let plan = reconcile(&cj, &refs(&jobs), t(10));
    assert!(plan.create.is_none());
    assert_eq!(plan.notices[0].reason, "JobAlreadyActive");
    assert_eq!(plan.status.last_missed_time, Some(t(10)));
    // The skipped run is not made up later when the first one ends.
    cj.status = plan.status;
    let done = vec![run_of(&cj, t(5), Some(true))];
    let plan = reconcile(&cj, &refs(&done), t(12));
    assert!(plan.create.is_none());
    let plan = reconcile(&cj, &refs(&done), t(15));
    assert!(plan.create.is_some());
}

#[test]
fn replace_deletes_the_running_job() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.spec.concurrency_policy = ConcurrencyPolicy::Replace;
    cj.status.last_schedule_time = Some(t(5));
    let jobs = vec![run_of(&cj, t(5), None)];
    let plan = reconcile(&cj, &refs(&jobs), t(10));
    assert_eq!(
        plan.delete,
        vec![(job_name(&cj, t(5)), reasons::REPLACE.to_string())]
    );
    assert_eq!(plan.create.unwrap().metadata.name, job_name(&cj, t(10)));
    assert_eq!(plan.status.active.len(), 1);
}

#[test]
fn allow_runs_side_by_side() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.status.last_schedule_time = Some(t(5));
    let jobs = vec![run_of(&cj, t(5), None)];
    let plan = reconcile(&cj, &refs(&jobs), t(10));
    assert!(plan.delete.is_empty());
    assert!(plan.create.is_some());
    assert_eq!(plan.status.active.len(), 2);
}

#[test]
fn history_limits_keep_the_newest() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.spec.successful_jobs_history_limit = 2;
    cj.spec.failed_jobs_history_limit = 1;
    let jobs: Vec<Job> = vec![
        run_of(&cj, t(5), Some(true)),
        run_of(&cj, t(10), Some(false)),
        run_of(&cj, t(15), Some(true)),
        run_of(&cj, t(20), Some(false)),
        run_of(&cj, t(25), Some(true)),
        run_of(&cj, t(30), None),
    ];
    cj.status.last_schedule_time = Some(t(30));
    let plan = reconcile(&cj, &refs(&jobs), t(31));
    let mut gone: Vec<String> = plan.delete.iter().map(|(n, _)| n.clone()).collect();
    gone.sort();
    assert_eq!(gone, [job_name(&cj, t(5)), job_name(&cj, t(10))]);
    assert_eq!(
        plan.status.last_successful_time,
        Some(t(25) + chrono::Duration::seconds(5))
    );
    assert_eq!(
        plan.status.active,
        vec![JobRef {
            name: job_name(&cj, t(30)),
            uid: format!("uid-{}", job_name(&cj, t(30)))
        }]
    );
}

#[test]
fn suspended_creates_nothing() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.spec.suspend = true;
    let plan = reconcile(&cj, &[], t(10));
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn jobs_of_others_are_not_counted() {
    let mut cj = cronjob("*/5 * * * * *");
    cj.spec.concurrency_policy = ConcurrencyPolicy::Forbid;
    let mut stranger = run_of(&cj, t(1), None);
    stranger.metadata.owner_references.clear();
    stranger.metadata.name = "report-manual".into();
    let plan = reconcile(&cj, &refs(&[stranger]), t(5));
    assert!(plan.create.is_some());
    assert!(plan.status.active.len() == 1);
}

#[test]
fn a_finished_job_leaving_active_is_reported_once() {
    let mut cj = cronjob("*/5 * * * * *");
    let running = run_of(&cj, t(5), None);
    cj.status.active = vec![JobRef {
        name: running.metadata.name.clone(),
        uid: running.metadata.uid.clone(),
    }];
    cj.status.last_schedule_time = Some(t(5));
    let done = vec![run_of(&cj, t(5), Some(true))];
    let plan = reconcile(&cj, &refs(&done), t(7));
    assert_eq!(plan.notices[0].reason, "SawCompletedJob");
    assert!(plan.status.active.is_empty());
    cj.status = plan.status;
    assert!(reconcile(&cj, &refs(&done), t(8)).notices.is_empty());
}

#[test]
fn time_zones_shift_the_schedule() {
    // 03:00 in Berlin (CET, +01:00) on 2023-11-15 is 02:00 UTC.
    let mut cj = cronjob("0 3 * * *");
    cj.spec.time_zone = Some("Europe/Berlin".into());
    let two_utc = chrono::TimeZone::with_ymd_and_hms(&Utc, 2023, 11, 15, 2, 0, 0).unwrap();
    let plan = reconcile(&cj, &[], two_utc - chrono::Duration::seconds(1));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
    let plan = reconcile(&cj, &[], two_utc);
    assert_eq!(
        plan.create.unwrap().metadata.name,
        format!("report-{}", two_utc.timestamp())
    );
}
