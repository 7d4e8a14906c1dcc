//! Job reconcile: run pods until `completions` of them succeeded, at most
//! `parallelism` at a time; fail after `backoff_limit` retries or when
//! `active_deadline` passes; clean up `ttl_after_finished` after the end.
//!
//! Mirrors Kubernetes' `pkg/controller/job` `syncJob` as one pure function
//! of the Job, every pod and node the store holds, and `now`. The steps:
//! keep only the Job's own pods (owner uid; a Job never adopts), classify
//! them, then in this order: a finished Job only waits for its TTL;
//! suspension stops pods; completion; failure (backoff limit, deadline);
//! otherwise create or delete pods towards `min(parallelism, remaining)`,
//! holding creations back while the failure backoff runs
//! (`backoff_initial` doubling per consecutive failure, capped at
//! `backoff_max`).
//!
//! Once a Complete or Failed condition is set the Job is frozen: its
//! counts no longer change and no pod is ever created for it again, which
//! is what keeps a completed Job from running twice across restarts (the
//! condition is persisted with the pods, in one snapshot).
//!
//! Pods and their logs stay after the end, so `drover logs` keeps working,
//! until the TTL (or the CronJob's history limit) removes the Job; its
//! pods then go by garbage collection. A Job from the units folder is
//! declared by its file, so its TTL removes only the pods: deleting the
//! Job would have the next reload create it again and run it twice.

use super::plan::Op;
use super::replicaset::pods_to_delete;
use super::scheduler::{pick_with_load, NodeLoad};
use crate::api::job::labels;
use crate::api::{
    annotations, CompletionMode, Job, JobCondition, JobConditionType, JobStatus, Kind, Node,
    ObjectMeta, OwnerRef, Pod, PodPhase, PodStatus, ProcessState, RestartPolicy,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// At most this many pod creations per pass (Kubernetes' burst cap).
pub const BURST: usize = 500;

/// Reasons on DeletePod ops, also shown in the events.
pub mod reasons {
    pub const FINISHED: &str = "job finished";
    pub const SUSPENDED: &str = "job suspended";
    pub const SURPLUS: &str = "more pods active than the job wants";
    pub const DUPLICATE_INDEX: &str = "another pod runs or completed this index";
    pub const TTL: &str = "ttl after finished";
    pub const BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
    pub const DEADLINE: &str = "DeadlineExceeded";
}

/// Something worth an event on the owning controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Notice {
    pub fn normal(reason: &str, message: impl Into<String>) -> Notice {
        Notice {
            warning: false,
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn warning(reason: &str, message: impl Into<String>) -> Notice {
        Notice {
            warning: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The outcome of one Job reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// `CreatePod` and `DeletePod` only, deletes first.
    pub ops: Vec<Op>,
    pub status: JobStatus,
    /// Events for the Job, only on transitions (so a second pass over the
    /// same state records nothing new).
    pub notices: Vec<Notice>,
    /// The TTL after finishing has passed: delete the Job (its pods follow
    /// by garbage collection).
    pub delete_job: bool,
    /// Call again after this long even if nothing changes: a backoff, the
    /// active deadline or the TTL is due.
    pub requeue_after: Option<Duration>,
}

/// How one of the Job's pods stands.
struct Seen<'a> {
    active: Vec<&'a Pod>,
    terminating: Vec<&'a Pod>,
    succeeded: Vec<&'a Pod>,
    failed: Vec<&'a Pod>,
}

fn owner_ref(job: &Job) -> OwnerRef {
    OwnerRef {
        kind: Kind::Job,
        name: job.metadata.name.clone(),
        uid: job.metadata.uid.clone(),
    }
}

/// The pods that are the Job's: controlled by its uid. Everything else,
/// labels or not, is someone else's (a Job never adopts).
pub fn owned<'a>(job: &Job, pods: &[&'a Pod]) -> Vec<&'a Pod> {
    pods.iter()
        .copied()
        .filter(|p| {
            p.metadata
                .controller()
                .is_some_and(|o| o.uid == job.metadata.uid)
        })
        .collect()
}

fn classify<'a>(pods: Vec<&'a Pod>) -> Seen<'a> {
    let mut seen = Seen {
        active: vec![],
        terminating: vec![],
        succeeded: vec![],
        failed: vec![],
    };
    for p in pods {
        match p.status.phase {
            PodPhase::Succeeded => seen.succeeded.push(p),
            PodPhase::Failed => seen.failed.push(p),
            PodPhase::Pending | PodPhase::Running => {
                if p.metadata.deletion_timestamp.is_some() {
                    seen.terminating.push(p)
                } else {
                    seen.active.push(p)
                }
            }
        }
    }
    seen
}

/// The completion index of an Indexed Job's pod.
pub fn pod_index(pod: &Pod) -> Option<u32> {
    pod.metadata
        .labels
        .get(labels::COMPLETION_INDEX)
        .and_then(|v| v.parse().ok())
}

/// When a pod's last process ended (its creation if none recorded).
pub fn finished_at(pod: &Pod) -> DateTime<Utc> {
    pod.status
        .processes
        .iter()
        .filter_map(|p| match &p.state {
            ProcessState::Terminated(t) => Some(t.finished_at),
            _ => p.last_state.as_ref().map(|t| t.finished_at),
        })
        .max()
        .unwrap_or(pod.metadata.creation_timestamp)
}

/// `0-3,5,7-8`, Kubernetes' `completedIndexes` format.
pub fn format_indexes(set: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().expect("peeked");
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The delay before the next pod may be created after `consecutive`
/// failures in a row: `initial`, doubled per failure after the first,
/// capped at `max` (Kubernetes: 10s doubling to 6m).
pub fn failure_backoff(consecutive: u32, initial: Duration, max: Duration) -> Duration {
    if consecutive == 0 {
        return Duration::ZERO;
    }
    let shift = (consecutive - 1).min(30);
    initial.saturating_mul(1u32 << shift).min(max)
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn delete(pod: &Pod, reason: &str) -> Op {
    Op::DeletePod {
        name: pod.metadata.name.clone(),
        reason: reason.to_string(),
    }
}

fn set_condition(
    status: &mut JobStatus,
    type_: JobConditionType,
    value: bool,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    let want = if value { "True" } else { "False" };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == want => {}
        Some(c) => {
            c.status = want.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_transition_time = now;
        }
        None => status.conditions.push(JobCondition {
            type_,
            status: want.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: now,
        }),
    }
}

/// One reconcile pass for `job`, given every pod and node the store holds
/// (borrowed: a store may hold thousands of finished Job pods, and the
/// executor need not copy them).
///
/// The same inputs always give the same plan; applying it and reconciling
/// again gives no ops (time-driven steps come back through
/// `requeue_after`).
pub fn reconcile(job: &Job, pods: &[&Pod], nodes: &[&Node], now: DateTime<Utc>) -> JobPlan {
    let seen = classify(owned(job, pods));
    let mut plan = JobPlan {
        ops: vec![],
        status: job.status.clone(),
        notices: vec![],
        delete_job: false,
        requeue_after: None,
    };
    if job.status.finished().is_some() {
        finished(job, &seen, now, &mut plan);
        return plan;
    }
    if job.spec.suspend {
        suspended(job, &seen, now, &mut plan);
        return plan;
    }
    if job.status.condition(JobConditionType::Suspended).is_some() {
        set_condition(
            &mut plan.status,
            JobConditionType::Suspended,
            false,
            "JobResumed",
            "Job resumed",
            now,
        );
        plan.notices.push(Notice::normal("Resumed", "Job resumed"));
    }
    let start = job.status.start_time.unwrap_or(now);
    plan.status.start_time = Some(start);
    plan.status.succeeded = seen.succeeded.len() as u32;
    plan.status.failed = seen.failed.len() as u32;

    let indexed = job.spec.completion_mode == CompletionMode::Indexed;
    let completed: BTreeSet<u32> = if indexed {
        seen.succeeded
            .iter()
            .filter_map(|p| pod_index(p))
            .filter(|i| *i < job.spec.completions)
            .collect()
    } else {
        BTreeSet::new()
    };
    if indexed {
        plan.status.completed_indexes = format_indexes(&completed);
    }
    let done = if indexed {
        completed.len() as u32 >= job.spec.completions
    } else {
        seen.succeeded.len() as u32 >= job.spec.completions
    };
    if done {
        plan.ops
            .extend(seen.active.iter().map(|p| delete(p, reasons::FINISHED)));
        plan.status.active = 0;
        plan.status.completion_time = Some(now);
        set_condition(
            &mut plan.status,
            JobConditionType::Complete,
            true,
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        );
        plan.notices
            .push(Notice::normal("Completed", "Job completed"));
        plan.requeue_after = ttl_wait(job, now, now);
        return plan;
    }
    if let Some(failure) = failure(job, &seen, start, now) {
        fail(job, &seen, failure, now, &mut plan);
        return plan;
    }
    plan.requeue_after = job.spec.active_deadline.map(|d| until(start + d.0, now));

    // Failures hold creations back: the backoff runs from the last one.
    let backoff_wait = backoff_remaining(job, &seen, now);
    let (mut ops, creates) = if indexed {
        manage_indexed(job, &seen, &completed)
    } else {
        manage_non_indexed(job, &seen)
    };
    let mut active = seen.active.len() as u32
        - ops
            .iter()
            .filter(|o| matches!(o, Op::DeletePod { .. }))
            .count() as u32;
    if !creates.is_empty() {
        if let Some(wait) = backoff_wait.filter(|w| !w.is_zero()) {
            plan.requeue_after = earliest(plan.requeue_after, Some(wait));
        } else {
            let owner = owner_ref(job);
            let mut load = NodeLoad::for_owner(pods, &owner.uid);
            for index in creates {
                ops.push(new_pod(job, &owner, index, nodes, &mut load, now));
                active += 1;
            }
        }
    }
    plan.ops = ops;
    plan.status.active = active;
    plan
}

/// A Complete or Failed Job: counts frozen, pods only leave; the TTL.
fn finished(job: &Job, seen: &Seen, now: DateTime<Utc>, plan: &mut JobPlan) {
    plan.ops
        .extend(seen.active.iter().map(|p| delete(p, reasons::FINISHED)));
    plan.status.active = 0;
    let Some(ended) = job.status.finished().map(|c| c.last_transition_time) else {
        return;
    };
    let Some(ttl) = job.spec.ttl_after_finished else {
        return;
    };
    let due = ended + ttl.0;
    if now < due {
        plan.requeue_after = Some(until(due, now));
        return;
    }
    if is_from_units_dir(&job.metadata) {
        let all = seen
            .succeeded
            .iter()
            .chain(&seen.failed)
            .filter(|p| p.metadata.deletion_timestamp.is_none());
        plan.ops.extend(all.map(|p| delete(p, reasons::TTL)));
    } else {
        plan.delete_job = true;
    }
}

fn is_from_units_dir(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
}

fn ttl_wait(job: &Job, ended: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    job.spec
        .ttl_after_finished
        .map(|ttl| until(ended + ttl.0, now))
}

/// Suspended: running pods are stopped, none is created, the deadline
/// clock stops (it restarts from the resume).
fn suspended(job: &Job, seen: &Seen, now: DateTime<Utc>, plan: &mut JobPlan) {
    plan.ops
        .extend(seen.active.iter().map(|p| delete(p, reasons::SUSPENDED)));
    plan.status.active = 0;
    plan.status.start_time = None;
    plan.status.succeeded = seen.succeeded.len() as u32;
    plan.status.failed = seen.failed.len() as u32;
    if job.status.condition(JobConditionType::Suspended).is_none() {
        set_condition(
            &mut plan.status,
            JobConditionType::Suspended,
            true,
            "JobSuspended",
            "Job suspended",
            now,
        );
        plan.notices
            .push(Notice::normal("Suspended", "Job suspended"));
    }
}

/// Why the Job fails now, if it does: (reason, message).
fn failure(
    job: &Job,
    seen: &Seen,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(&'static str, String)> {
    let restarts: u32 = match job.spec.template.spec.restart_policy {
        RestartPolicy::OnFailure => seen.active.iter().map(|p| p.restarts()).sum(),
        RestartPolicy::Never | RestartPolicy::Always => 0,
    };
    let retries = seen.failed.len() as u32 + restarts;
    if retries > job.spec.backoff_limit {
        return Some((
            reasons::BACKOFF_LIMIT,
            format!(
                "Job has reached the specified backoff limit ({} retries allowed, {retries} made)",
                job.spec.backoff_limit
            ),
        ));
    }
    if let Some(d) = job.spec.active_deadline {
        if now >= start + d.0 {
            return Some((
                reasons::DEADLINE,
                format!("Job was active longer than specified deadline ({d})"),
            ));
        }
    }
    None
}

fn fail(
    job: &Job,
    seen: &Seen,
    (reason, message): (&'static str, String),
    now: DateTime<Utc>,
    plan: &mut JobPlan,
) {
    plan.ops
        .extend(seen.active.iter().map(|p| delete(p, reason)));
    // Pods stopped because the Job failed count as failed (Kubernetes).
    plan.status.failed = (seen.failed.len() + seen.active.len()) as u32;
    plan.status.active = 0;
    set_condition(
        &mut plan.status,
        JobConditionType::Failed,
        true,
        reason,
        &message,
        now,
    );
    plan.notices.push(Notice::warning(reason, message));
    plan.requeue_after = ttl_wait(job, now, now);
}

/// How long creations still wait after the last failure, if any failure
/// since the last success.
fn backoff_remaining(job: &Job, seen: &Seen, now: DateTime<Utc>) -> Option<Duration> {
    let last_success = seen.succeeded.iter().map(|p| finished_at(p)).max();
    let failures: Vec<DateTime<Utc>> = seen
        .failed
        .iter()
        .map(|p| finished_at(p))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let last = failures.iter().max()?;
    let delay = failure_backoff(
        failures.len() as u32,
        job.spec.backoff_initial.0,
        job.spec.backoff_max.0,
    );
    Some(until(*last + delay, now))
}

/// NonIndexed: deletes of surplus pods, and how many to create (as
/// `None` indexes).
fn manage_non_indexed(job: &Job, seen: &Seen) -> (Vec<Op>, Vec<Option<u32>>) {
    let remaining = job
        .spec
        .completions
        .saturating_sub(seen.succeeded.len() as u32);
    let want = remaining.min(job.spec.parallelism) as usize;
    let active = seen.active.len();
    if active > want {
        let victims = pods_to_delete(seen.active.clone(), active - want);
        return (
            victims
                .iter()
                .map(|p| delete(p, reasons::SURPLUS))
                .collect(),
            vec![],
        );
    }
    // Pods still stopping count against parallelism: never more than
    // `parallelism` processes at once.
    let busy = active + seen.terminating.len();
    let n = want.saturating_sub(busy).min(BURST);
    (vec![], vec![None; n])
}

/// Indexed: each index below `completions` gets one successful pod. Pods
/// for an index that completed or that has another active pod go; missing
/// indexes are created lowest first.
fn manage_indexed(
    job: &Job,
    seen: &Seen,
    completed: &BTreeSet<u32>,
) -> (Vec<Op>, Vec<Option<u32>>) {
    let mut ops = vec![];
    let mut by_index: BTreeMap<u32, Vec<&Pod>> = BTreeMap::new();
    for p in &seen.active {
        match pod_index(p) {
            Some(i) if i < job.spec.completions && !completed.contains(&i) => {
                by_index.entry(i).or_default().push(p)
            }
            _ => ops.push(delete(p, reasons::DUPLICATE_INDEX)),
        }
    }
    for pods in by_index.values_mut() {
        if pods.len() > 1 {
            pods.sort_by_key(|p| (p.metadata.creation_timestamp, p.metadata.name.clone()));
            ops.extend(
                pods[1..]
                    .iter()
                    .map(|p| delete(p, reasons::DUPLICATE_INDEX)),
            );
            pods.truncate(1);
        }
    }
    let mut active = by_index.len();
    let remaining = job.spec.completions as usize - completed.len();
    let want = remaining.min(job.spec.parallelism as usize);
    if active > want {
        // Scale down: stop the highest indexes.
        let surplus: Vec<u32> = by_index.keys().rev().take(active - want).copied().collect();
        for i in surplus {
            ops.extend(by_index[&i].iter().map(|p| delete(p, reasons::SURPLUS)));
            by_index.remove(&i);
        }
        return (ops, vec![]);
    }
    let stopping: BTreeSet<u32> = seen
        .terminating
        .iter()
        .filter_map(|p| pod_index(p))
        .collect();
    active += seen.terminating.len();
    let n = want.saturating_sub(active).min(BURST);
    let creates = (0..job.spec.completions)
        .filter(|i| !completed.contains(i) && !by_index.contains_key(i) && !stopping.contains(i))
        .take(n)
        .map(Some)
        .collect();
    (ops, creates)
}

/// A pod from the template: the Job's labels, its owner reference, the
/// completion index (label and `JOB_COMPLETION_INDEX`) when Indexed, and
/// a node from the scheduler.
fn new_pod(
    job: &Job,
    owner: &OwnerRef,
    index: Option<u32>,
    nodes: &[&Node],
    load: &mut NodeLoad,
    now: DateTime<Utc>,
) -> Op {
    let template = &job.spec.template;
    let mut pod_labels = template.labels.clone();
    pod_labels.insert(labels::JOB_NAME.into(), job.metadata.name.clone());
    pod_labels.insert(labels::CONTROLLER_UID.into(), job.metadata.uid.clone());
    let mut spec = template.spec.clone();
    if let Some(i) = index {
        pod_labels.insert(labels::COMPLETION_INDEX.into(), i.to_string());
        for p in &mut spec.processes {
            p.env
                .insert(labels::COMPLETION_INDEX_ENV.into(), i.to_string());
        }
    }
    let mut status = PodStatus {
        phase: PodPhase::Pending,
        ..PodStatus::default()
    };
    match pick_with_load(&spec, nodes, load) {
        Ok(node) => {
            load.add(&node);
            status.node_name = Some(node);
        }
        Err(message) => {
            status.reason = Some(super::plan::reasons::UNSCHEDULABLE.to_string());
            status.message = Some(message);
        }
    }
    let name = &job.metadata.name;
    // `job-3-xxxxx` while it fits a pod name (63), else `job-xxxxx`.
    let generate_name = match index {
        Some(i) if name.len() + i.to_string().len() + 2 <= 58 => format!("{name}-{i}-"),
        _ => format!("{name}-"),
    };
    Op::CreatePod {
        generate_name,
        pod: Pod {
            metadata: ObjectMeta {
                resource_version: 0,
                name: String::new(),
                uid: String::new(),
                labels: pod_labels,
                annotations: Default::default(),
                owner_references: vec![owner.clone()],
                creation_timestamp: now,
                generation: 1,
                deletion_timestamp: None,
            },
            spec,
            status,
        },
    }
}

#[cfg(test)]
mod tests;
