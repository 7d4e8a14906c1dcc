//! Each controller's pass over the store, and the executor that applies
//! the plans: creates and deletes pods (with their events), adopts and
//! releases, creates and deletes Jobs, writes statuses.

use super::{generated_name, mark_deleted};
use crate::api::job::JobRef;
use crate::api::{CronJob, EventType, Job, Kind, Node, Object, ObjectMeta, Pod};
use crate::controllers::cronjob::{self, CronPlan};
use crate::controllers::job::{self, JobPlan, Notice};
use crate::controllers::replicaset::{self, ReplicaView};
use crate::controllers::{Op, Plan};
use crate::daemon::events::{EventLog, NewEvent};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const JOB_SOURCE: &str = "job-controller";
const CRONJOB_SOURCE: &str = "cronjob-controller";

/// ReplicaSets and ReplicationControllers; returns whether one of them
/// asked to be requeued (cut short by the burst cap).
pub(super) fn run_sets(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) -> bool {
    if store.replicasets().next().is_none() && store.replication_controllers().next().is_none() {
        return false;
    }
    let plans: Vec<(Kind, ObjectMeta, Plan)> = {
        let pods: Vec<&Pod> = store.pods().collect();
        let nodes: Vec<&Node> = store.nodes().collect();
        let sets = store.replicasets().map(ReplicaView::from_rs);
        let rcs = store.replication_controllers().map(ReplicaView::from_rc);
        sets.chain(rcs)
            .map(|view| {
                let plan = replicaset::reconcile(&view, &pods, &nodes, now);
                (view.kind, view.meta.clone(), plan)
            })
            .collect()
    };
    let requeue = plans.iter().any(|(_, _, plan)| plan.requeue);
    for (kind, meta, plan) in plans {
        apply_plan(store, events, kind, &meta, plan, now);
    }
    requeue
}

pub(super) fn jobs(store: &Store) -> impl Iterator<Item = &Job> {
    store.list(Kind::Job).filter_map(|o| match o {
        Object::Job(j) => Some(j),
        _ => None,
    })
}

pub(super) fn cronjobs(store: &Store) -> impl Iterator<Item = &CronJob> {
    store.list(Kind::CronJob).filter_map(|o| match o {
        Object::CronJob(c) => Some(c),
        _ => None,
    })
}

/// The pods of each of `owners` (uids), by the uid of their controller.
/// Only those owners get an entry: the store's other pods (a ReplicaSet's
/// thousand) are looked at, never copied into the map.
pub(super) fn pods_by_owner<'a>(
    store: &'a Store,
    owners: impl Iterator<Item = &'a str>,
) -> HashMap<&'a str, Vec<&'a Pod>> {
    let mut by: HashMap<&str, Vec<&Pod>> = owners.map(|uid| (uid, Vec::new())).collect();
    if by.is_empty() {
        return by;
    }
    for p in store.pods() {
        if let Some(own) = p
            .metadata
            .controller()
            .and_then(|o| by.get_mut(o.uid.as_str()))
        {
            own.push(p);
        }
    }
    by
}

/// Jobs: plans are computed over borrowed pods (a store may hold
/// thousands of finished Job pods), then applied.
pub(super) fn run_jobs(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if store.list(Kind::Job).next().is_none() {
        return;
    }
    let plans: Vec<(ObjectMeta, JobPlan)> = {
        let by_owner = pods_by_owner(store, jobs(store).map(|j| j.metadata.uid.as_str()));
        let nodes: Vec<&Node> = store.nodes().collect();
        // Every pod, listed only once some Job needs it (most passes,
        // with finished Jobs only, never do).
        let mut all: Option<Vec<&Pod>> = None;
        let mut plans = Vec::new();
        for j in jobs(store) {
            let own = by_owner.get(j.metadata.uid.as_str());
            let own = own.map(Vec::as_slice).unwrap_or(&[]);
            // The scheduler spreads over every pod; ownership is
            // filtered again inside reconcile.
            let pods = if own.iter().all(|p| p.is_terminal()) && !wants_pods(j) {
                own
            } else {
                all.get_or_insert_with(|| store.pods().collect())
            };
            plans.push((j.metadata.clone(), job::reconcile(j, pods, &nodes, now)));
        }
        plans
    };
    for (meta, plan) in plans {
        apply_job_plan(store, events, &meta, plan, now);
    }
}

/// Whether a Job may create pods this pass (so the node load matters).
fn wants_pods(j: &Job) -> bool {
    j.status.finished().is_none() && !j.spec.suspend
}

fn apply_job_plan(
    store: &mut Store,
    events: &mut EventLog,
    meta: &ObjectMeta,
    plan: JobPlan,
    now: DateTime<Utc>,
) {
    for op in plan.ops {
        apply_pod_op(store, events, Kind::Job, meta, op, JOB_SOURCE, now);
    }
    for n in &plan.notices {
        note(events, Kind::Job, meta, n, JOB_SOURCE, now);
    }
    let status = plan.status;
    store.update(Kind::Job, &meta.name, |o| match o {
        Object::Job(j) if j.metadata.uid == meta.uid && j.status != status => {
            j.status = status;
            true
        }
        _ => false,
    });
    if plan.delete_job {
        // Its pods (and their logs) follow by garbage collection.
        if store.delete(Kind::Job, &meta.name).is_some() {
            tracing::info!("job {} deleted: ttl after finished", meta.name);
        }
    }
}

/// CronJobs: each may create a Job (named for its schedule) and delete
/// Jobs (Replace, history limits).
pub(super) fn run_cronjobs(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if store.list(Kind::CronJob).next().is_none() {
        return;
    }
    let plans: Vec<(ObjectMeta, CronPlan)> = {
        let all_jobs: Vec<&Job> = jobs(store).collect();
        cronjobs(store)
            .map(|cj| (cj.metadata.clone(), cronjob::reconcile(cj, &all_jobs, now)))
            .collect()
    };
    for (meta, plan) in plans {
        apply_cron_plan(store, events, &meta, plan, now);
    }
}

fn apply_cron_plan(
    store: &mut Store,
    events: &mut EventLog,
    meta: &ObjectMeta,
    plan: CronPlan,
    now: DateTime<Utc>,
) {
    for (name, reason) in &plan.delete {
        if store.delete(Kind::Job, name).is_some() {
            events.record(
                NewEvent {
                    kind: Kind::CronJob,
                    name: &meta.name,
                    uid: &meta.uid,
                    type_: EventType::Normal,
                    reason: "SuccessfulDelete",
                    message: &format!("Deleted job {name} ({reason})"),
                    source: CRONJOB_SOURCE,
                },
                now,
            );
        }
    }
    let mut status = plan.status;
    if let Some(mut job) = plan.create {
        let name = job.metadata.name.clone();
        if store.get(Kind::Job, &name).is_none() {
            job.metadata.uid = crate::api::meta::new_uid();
            job.metadata.creation_timestamp = now;
            let uid = job.metadata.uid.clone();
            store.put(Object::Job(job));
            for r in status.active.iter_mut().filter(|r| r.name == name) {
                r.uid = uid.clone();
            }
        } else {
            status.active.retain(|r: &JobRef| r.name != name);
        }
    }
    for n in &plan.notices {
        note(events, Kind::CronJob, meta, n, CRONJOB_SOURCE, now);
    }
    store.update(Kind::CronJob, &meta.name, |o| match o {
        Object::CronJob(c) if c.metadata.uid == meta.uid && c.status != status => {
            c.status = status;
            true
        }
        _ => false,
    });
}

fn note(
    events: &mut EventLog,
    kind: Kind,
    meta: &ObjectMeta,
    n: &Notice,
    source: &str,
    now: DateTime<Utc>,
) {
    events.record(
        NewEvent {
            kind,
            name: &meta.name,
            uid: &meta.uid,
            type_: if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: &n.reason,
            message: &n.message,
            source,
        },
        now,
    );
}

fn apply_plan(
    store: &mut Store,
    events: &mut EventLog,
    kind: Kind,
    owner: &ObjectMeta,
    plan: Plan,
    now: DateTime<Utc>,
) {
    let source = match kind {
        Kind::ReplicationController => "replication-controller",
        _ => "replicaset-controller",
    };
    for op in plan.ops {
        match op {
            Op::Adopt {
                name,
                owner: owner_ref,
            } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references = vec![owner_ref];
                    true
                });
                events.record(
                    NewEvent {
                        kind,
                        name: &owner.name,
                        uid: &owner.uid,
                        type_: EventType::Normal,
                        reason: "Adopted",
                        message: &format!("Adopted pod: {name}"),
                        source,
                    },
                    now,
                );
            }
            Op::Release { name } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references.clear();
                    true
                });
                events.record(
                    NewEvent {
                        kind,
                        name: &owner.name,
                        uid: &owner.uid,
                        type_: EventType::Normal,
                        reason: "Released",
                        message: &format!("Released pod: {name} (labels no longer match)"),
                        source,
                    },
                    now,
                );
            }
            op @ (Op::CreatePod { .. } | Op::DeletePod { .. }) => {
                apply_pod_op(store, events, kind, owner, op, source, now)
            }
        }
    }
    let status = plan.status;
    store.update(kind, &owner.name, |o| match o {
        Object::ReplicaSet(rs) if rs.status != status => {
            rs.status = status;
            true
        }
        Object::ReplicationController(rc) if rc.status != status => {
            rc.status = status;
            true
        }
        _ => false,
    });
}

/// Creates or deletes one pod for a controller, with its event.
pub(super) fn apply_pod_op(
    store: &mut Store,
    events: &mut EventLog,
    kind: Kind,
    owner: &ObjectMeta,
    op: Op,
    source: &str,
    now: DateTime<Utc>,
) {
    match op {
        Op::CreatePod {
            generate_name,
            mut pod,
        } => {
            let name = generated_name(&generate_name, |n| store.pod(n).is_some());
            pod.metadata.name = name.clone();
            pod.metadata.uid = crate::api::meta::new_uid();
            pod.metadata.creation_timestamp = now;
            pod.metadata.generation = 1;
            store.put(Object::Pod(pod));
            events.record(
                NewEvent {
                    kind,
                    name: &owner.name,
                    uid: &owner.uid,
                    type_: EventType::Normal,
                    reason: "SuccessfulCreate",
                    message: &format!("Created pod: {name}"),
                    source,
                },
                now,
            );
        }
        Op::DeletePod { name, reason } => {
            if mark_deleted(store, &name, now) {
                events.record(
                    NewEvent {
                        kind,
                        name: &owner.name,
                        uid: &owner.uid,
                        type_: EventType::Normal,
                        reason: "SuccessfulDelete",
                        message: &format!("Deleted pod: {name} ({reason})"),
                        source,
                    },
                    now,
                );
            }
        }
        Op::Adopt { .. } | Op::Release { .. } => {
            unreachable!("only sets adopt and release; they apply those themselves")
        }
    }
}
