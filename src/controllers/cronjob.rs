//! CronJob reconcile: create a Job at each scheduled time, obey the
//! concurrency policy, keep the history short.
//!
//! Mirrors Kubernetes' `pkg/controller/cronjob` `syncCronJob` (v2) as one
//! pure function of the CronJob, every Job the store holds, and `now`:
//!
//! 1. Its Jobs are the ones it controls (owner uid); `status.active` is
//!    the unfinished ones, `last_successful_time` the latest completion.
//! 2. Finished Jobs beyond `successful_jobs_history_limit` /
//!    `failed_jobs_history_limit` are deleted, oldest first (their pods
//!    and logs go with them).
//! 3. Unless suspended: the most recent scheduled time at or before `now`
//!    that is after the last one handled (`last_schedule_time`,
//!    `last_missed_time`, or the CronJob's creation) is due. After
//!    downtime only that one runs, and only while within
//!    `starting_deadline` (systemd's `Persistent=true`); a run past its
//!    deadline is recorded as missed.
//! 4. `Forbid` skips a due run while a Job is active; `Replace` deletes
//!    the active Jobs first; `Allow` just creates.
//! 5. The Job is named `<cronjob>-<unix time of the schedule>`: a name
//!    that exists means the run was made, so no schedule ever gets two.
//!
//! `requeue_after` is the time to the next scheduled instant; the daemon
//! wakes up then.

use super::job::Notice;
use crate::api::job::job_annotations;
use crate::api::{
    ConcurrencyPolicy, CronJob, CronJobStatus, Job, JobRef, JobStatus, Kind, ObjectMeta, OwnerRef,
};
use crate::schedule::{zone_or_utc, Schedule};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Reasons on deletes, also shown in events.
pub mod reasons {
    pub const HISTORY: &str = "history limit";
    pub const REPLACE: &str = "concurrency policy Replace";
}

/// The outcome of one CronJob reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct CronPlan {
    /// A Job to create (named; uid and timestamps are the executor's).
    pub create: Option<Job>,
    /// Jobs to delete, with why (Replace, history limit).
    pub delete: Vec<(String, String)>,
    pub status: CronJobStatus,
    pub notices: Vec<Notice>,
    /// When the next scheduled time is due.
    pub requeue_after: Option<Duration>,
}

/// `kind/name/uid` of the CronJob, as its Jobs record it.
pub fn owner_ref(cj: &CronJob) -> OwnerRef {
    OwnerRef {
        kind: Kind::CronJob,
        name: cj.metadata.name.clone(),
        uid: cj.metadata.uid.clone(),
    }
}

/// `<cronjob>-<unix seconds>`: the one name a scheduled run can have.
pub fn job_name(cj: &CronJob, scheduled: DateTime<Utc>) -> String {
    format!("{}-{}", cj.metadata.name, scheduled.timestamp())
}

/// A Job from the CronJob's template, controlled by it. `scheduled` is
/// recorded when the run is a scheduled one (none for a manual run).
pub fn job_from_template(
    cj: &CronJob,
    name: String,
    scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Job {
    let mut metadata = ObjectMeta {
        resource_version: 0,
        name,
        uid: String::new(),
        labels: cj.spec.job_template.labels.clone(),
        annotations: Default::default(),
        owner_references: vec![owner_ref(cj)],
        creation_timestamp: now,
        generation: 1,
        deletion_timestamp: None,
    };
    match scheduled {
        Some(at) => metadata
            .annotations
            .insert(job_annotations::SCHEDULED_AT.into(), at.to_rfc3339()),
        None => metadata
            .annotations
            .insert(job_annotations::INSTANTIATE.into(), "manual".into()),
    };
    Job {
        metadata,
        spec: cj.spec.job_template.spec.clone(),
        status: JobStatus::default(),
    }
}

/// One reconcile pass for `cj`, given every Job the store holds
/// (borrowed from the store, not copied).
pub fn reconcile(cj: &CronJob, jobs: &[&Job], now: DateTime<Utc>) -> CronPlan {
    let own: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| {
            j.metadata
                .controller()
                .is_some_and(|o| o.uid == cj.metadata.uid)
        })
        .collect();
    let mut plan = CronPlan {
        create: None,
        delete: vec![],
        status: cj.status.clone(),
        notices: vec![],
        requeue_after: None,
    };
    let mut active: Vec<JobRef> = own
        .iter()
        .filter(|j| j.status.finished().is_none())
        .map(|j| JobRef {
            name: j.metadata.name.clone(),
            uid: j.metadata.uid.clone(),
        })
        .collect();
    active.sort();
    for gone in cj.status.active.iter().filter(|r| !active.contains(r)) {
        match own.iter().find(|j| j.metadata.uid == gone.uid) {
            Some(j) => {
                let how = if j.status.is_complete() {
                    "Complete"
                } else {
                    "Failed"
                };
                plan.notices.push(Notice::normal(
                    "SawCompletedJob",
                    format!("Saw completed job: {}, status: {how}", gone.name),
                ));
            }
            None => plan.notices.push(Notice::normal(
                "MissingJob",
                format!("Active job went missing: {}", gone.name),
            )),
        }
    }
    plan.status.active = active;
    let latest_success = own
        .iter()
        .filter(|j| j.status.is_complete())
        .filter_map(|j| j.status.completion_time)
        .max();
    plan.status.last_successful_time = cj.status.last_successful_time.max(latest_success);

    history(cj, &own, &mut plan);
    if cj.spec.suspend {
        return plan;
    }
    let (Ok(schedule), Ok(tz)) = (
        Schedule::parse(&cj.spec.schedule),
        zone_or_utc(cj.spec.time_zone.as_deref()),
    ) else {
        // Validation keeps these out; a stored object that slipped
        // through is left alone rather than run at a guessed time.
        return plan;
    };
    plan.requeue_after = schedule.next_after(tz, now).map(|next| until(next, now));

    let handled = [
        Some(cj.metadata.creation_timestamp),
        cj.status.last_schedule_time,
        cj.status.last_missed_time,
    ]
    .into_iter()
    .flatten()
    .max()
    .expect("the creation time is always there");
    let Some(due) = schedule.last_at_or_before(tz, now).filter(|t| *t > handled) else {
        return plan;
    };
    if let Some(deadline) = cj.spec.starting_deadline {
        if due + deadline.0 < now {
            plan.notices.push(Notice::warning(
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {} (starting deadline {deadline})",
                    due.to_rfc3339()
                ),
            ));
            plan.status.last_missed_time = Some(due);
            return plan;
        }
    }
    let name = job_name(cj, due);
    if let Some(existing) = jobs.iter().find(|j| j.metadata.name == name) {
        // Made already (the status write may be what was lost).
        if own.iter().any(|j| j.metadata.uid == existing.metadata.uid) {
            plan.status.last_schedule_time = Some(due);
        }
        return plan;
    }
    match cj.spec.concurrency_policy {
        ConcurrencyPolicy::Forbid if !plan.status.active.is_empty() => {
            plan.notices.push(Notice::normal(
                "JobAlreadyActive",
                format!(
                    "Not starting job for {} because prior execution is running and \
                     concurrency policy is Forbid",
                    due.to_rfc3339()
                ),
            ));
            plan.status.last_missed_time = Some(due);
            return plan;
        }
        ConcurrencyPolicy::Replace => {
            for r in std::mem::take(&mut plan.status.active) {
                plan.delete.push((r.name, reasons::REPLACE.into()));
            }
        }
        ConcurrencyPolicy::Allow | ConcurrencyPolicy::Forbid => {}
    }
    plan.status.active.push(JobRef {
        name: name.clone(),
        uid: String::new(),
    });
    plan.status.active.sort();
    plan.status.last_schedule_time = Some(due);
    plan.notices.push(Notice::normal(
        "SuccessfulCreate",
        format!("Created job {name}"),
    ));
    plan.create = Some(job_from_template(cj, name, Some(due), now));
    plan
}

/// Finished Jobs beyond the history limits, oldest first.
fn history(cj: &CronJob, own: &[&Job], plan: &mut CronPlan) {
    let limits = [
        (true, cj.spec.successful_jobs_history_limit),
        (false, cj.spec.failed_jobs_history_limit),
    ];
    for (complete, limit) in limits {
        let mut done: Vec<&&Job> = own
            .iter()
            .filter(|j| j.status.finished().is_some() && j.status.is_complete() == complete)
            .collect();
        let surplus = done.len().saturating_sub(limit as usize);
        done.sort_by_key(|j| {
            (
                j.status.start_time.unwrap_or(j.metadata.creation_timestamp),
                j.metadata.name.clone(),
            )
        });
        for j in done.into_iter().take(surplus) {
            plan.delete
                .push((j.metadata.name.clone(), reasons::HISTORY.into()));
        }
    }
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
