//! Time-driven work: when the controllers must run although the store did
//! not change (a CronJob's next run, a Job's backoff, active deadline or
//! TTL).

use super::executor::{cronjobs, jobs, pods_by_owner};
use crate::api::{Job, Kind};
use crate::controllers::{cronjob, job};
use crate::store::Store;
use chrono::{DateTime, Utc};

/// When the controllers must run next although nothing changed: the
/// earliest of every CronJob's next scheduled time and every Job's
/// backoff, active deadline and TTL. `now` itself when something is due
/// already (time passed since the last pass). `None`: nothing is waiting
/// on the clock.
///
/// The daemon loop arms a timer for it and, when it fires, runs
/// [`run_controllers`] even though the store's revision did not move.
pub fn next_wakeup(store: &Store, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut consider = |at: DateTime<Utc>| {
        if earliest.is_none_or(|e| at < e) {
            earliest = Some(at);
        }
    };
    // Runs once per store revision: the pods are indexed only for the
    // Jobs that wait on the clock, and not at all when none does.
    let waiting = || jobs(store).filter(|j| waits_on_clock(j));
    let by_owner = pods_by_owner(store, waiting().map(|j| j.metadata.uid.as_str()));
    for j in waiting() {
        let own = by_owner
            .get(j.metadata.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let plan = job::reconcile(j, own, &[], now);
        let due = !plan.ops.is_empty()
            || plan.delete_job
            || plan.status.conditions != j.status.conditions;
        if due {
            consider(now);
        } else if let Some(after) = plan.requeue_after {
            consider(now + after);
        }
    }
    if store.list(Kind::CronJob).next().is_some() {
        let all_jobs: Vec<&Job> = jobs(store).collect();
        for cj in cronjobs(store) {
            let plan = cronjob::reconcile(cj, &all_jobs, now);
            let due = plan.create.is_some()
                || !plan.delete.is_empty()
                || plan.status.last_missed_time != cj.status.last_missed_time;
            if due {
                consider(now);
            } else if let Some(after) = plan.requeue_after {
                consider(now + after);
            }
        }
    }
    earliest
}

/// A finished Job with a TTL (its deletion), or an unfinished one that is
/// not suspended (backoff, active deadline).
fn waits_on_clock(j: &Job) -> bool {
    match j.status.finished() {
        Some(_) => j.spec.ttl_after_finished.is_some(),
        None => !j.spec.suspend,
    }
}
