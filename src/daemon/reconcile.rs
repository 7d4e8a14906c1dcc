//! The executor of the control plane: runs the pure controllers over the
//! store and applies their plans (style.md §3: "a thin executor applies
//! the plan"). Also the two bits of bookkeeping Kubernetes does in other
//! components: binding pending pods to nodes (the scheduler) and deleting
//! objects whose controller is gone (the garbage collector: pods of a
//! deleted set or Job, Jobs of a deleted CronJob).
//!
//! Single host needs no "expectations" (Kubernetes' guard against a lagging
//! cache): plans are applied to the same in-memory store the next
//! reconcile reads, before it runs.
//!
//! Every step plans while it borrows the store, collects its plans, then
//! applies them (the borrow checker forces that order). The controllers
//! take their pods, nodes and Jobs by reference, so a pass allocates for
//! what it changes, not for every object: this runs after every store
//! change, and a store may hold thousands of pods.
//!
//! Time-driven work (a CronJob's next run, a Job's failure backoff, active
//! deadline or TTL) is not triggered by any change: [`next_wakeup`] says
//! when the next of those is due, and the loop runs the controllers then.

use super::events::{EventLog, NewEvent};
use crate::api::job::JobRef;
use crate::api::{annotations, CronJob, EventType, Job, Kind, Node, Object, ObjectMeta, Pod};
use crate::controllers::cronjob::{self, CronPlan};
use crate::controllers::job::{self, JobPlan, Notice};
use crate::controllers::replicaset::{self, ReplicaView};
use crate::controllers::{scheduler, Op, Plan};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const JOB_SOURCE: &str = "job-controller";
const CRONJOB_SOURCE: &str = "cronjob-controller";

/// One pass of every controller; returns whether it changed anything.
pub fn run_controllers(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) -> bool {
    let before = store.revision();
    run_sets(store, events, now);
    super::daemonsets::run_daemonsets(store, events, now);
    run_cronjobs(store, events, now);
    run_jobs(store, events, now);

    schedule(store, events, now);
    collect_garbage(store, now);
    store.revision() != before
}

/// ReplicaSets and ReplicationControllers.
fn run_sets(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if store.replicasets().next().is_none() && store.replication_controllers().next().is_none() {
        return;
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
    for (kind, meta, plan) in plans {
        apply_plan(store, events, kind, &meta, plan, now);
    }
}

fn jobs(store: &Store) -> impl Iterator<Item = &Job> {
    store.list(Kind::Job).filter_map(|o| match o {
        Object::Job(j) => Some(j),
        _ => None,
    })
}

fn cronjobs(store: &Store) -> impl Iterator<Item = &CronJob> {
    store.list(Kind::CronJob).filter_map(|o| match o {
        Object::CronJob(c) => Some(c),
        _ => None,
    })
}

/// The pods of each of `owners` (uids), by the uid of their controller.
/// Only those owners get an entry: the store's other pods (a ReplicaSet's
/// thousand) are looked at, never copied into the map.
fn pods_by_owner<'a>(
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
fn run_jobs(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
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
fn run_cronjobs(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
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

/// `prefix` + 5 random characters, as the Kubernetes API server does for
/// `generate_name`, drawn again until `taken` says the name is free.
pub(super) fn generated_name(prefix: &str, taken: impl Fn(&str) -> bool) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let suffix: String = bytes[..5]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let name = format!("{prefix}{suffix}");
        if !taken(&name) {
            return name;
        }
    }
}

/// Graceful deletion: the agent stops the processes and removes the pod.
/// A pod bound to no node has nothing to stop and goes at once.
pub fn mark_deleted(store: &mut Store, name: &str, now: DateTime<Utc>) -> bool {
    let Some(pod) = store.pod(name) else {
        return false;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if pod.status.node_name.is_none() {
        store.delete(Kind::Pod, name);
        return true;
    }
    store.update_pod(name, |p| {
        p.metadata.deletion_timestamp = Some(now);
        true
    })
}

/// Binds pods that have no node yet; records why when none fits.
fn schedule(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) {
    if !store.pods().any(unbound) {
        return;
    }
    let placements = {
        let all: Vec<&Pod> = store.pods().collect();
        let nodes: Vec<&Node> = store.nodes().collect();
        scheduler::schedule_pending(&all, &nodes)
    };
    for (name, result) in placements {
        // Placements are applied one pod at a time and each touches only
        // its own pod, so the store still shows it as it was planned.
        let Some(uid) = store
            .pod(&name)
            .filter(|p| unbound(p))
            .map(|p| p.metadata.uid.clone())
        else {
            continue;
        };
        match result {
            Ok(node) => {
                store.update_pod(&name, |p| {
                    p.status.node_name = Some(node.clone());
                    p.status.reason = None;
                    p.status.message = None;
                    true
                });
                events.record(
                    NewEvent {
                        kind: Kind::Pod,
                        name: &name,
                        uid: &uid,
                        type_: EventType::Normal,
                        reason: "Scheduled",
                        message: &format!("Successfully assigned {name} to {node}"),
                        source: "scheduler",
                    },
                    now,
                );
            }
            Err(msg) => {
                let changed = store.update_pod(&name, |p| {
                    if p.status.message.as_deref() == Some(msg.as_str()) {
                        return false;
                    }
                    p.status.reason = Some("Unschedulable".into());
                    p.status.message = Some(msg.clone());
                    true
                });
                if changed {
                    events.record(
                        NewEvent {
                            kind: Kind::Pod,
                            name: &name,
                            uid: &uid,
                            type_: EventType::Warning,
                            reason: "FailedScheduling",
                            message: &msg,
                            source: "scheduler",
                        },
                        now,
                    );
                }
            }
        }
    }
}

/// Not bound to a node, not being deleted, not finished: the pods
/// [`schedule`] binds (the scheduler also takes an empty node name for
/// unbound; those are left alone here).
fn unbound(p: &Pod) -> bool {
    p.status.node_name.is_none() && p.metadata.deletion_timestamp.is_none() && !p.is_terminal()
}

/// Pods whose controlling owner no longer exists are deleted (Kubernetes'
/// background cascading deletion), and so are Jobs whose CronJob is gone.
/// `--cascade=orphan` clears the owner reference before the owner goes,
/// so those are not touched here.
///
/// Jobs go first, so the pods of a Job collected now are collected in the
/// same pass.
fn collect_garbage(store: &mut Store, now: DateTime<Utc>) {
    let orphan_jobs: Vec<String> = {
        let mut gone = Owners::new(store);
        jobs(store)
            .filter(|j| gone.owner_is_gone(&j.metadata))
            .map(|j| j.metadata.name.clone())
            .collect()
    };
    for name in orphan_jobs {
        store.delete(Kind::Job, &name);
    }
    let orphans: Vec<String> = {
        let mut gone = Owners::new(store);
        store
            .pods()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| gone.owner_is_gone(&p.metadata))
            .map(|p| p.metadata.name.clone())
            .collect()
    };
    for name in orphans {
        mark_deleted(store, &name, now);
    }
}

/// Whether controlling owners still exist, each looked up in the store
/// once: a store lookup copies the name into its key, and a thousand pods
/// share one ReplicaSet.
struct Owners<'a> {
    store: &'a Store,
    gone: HashMap<(Kind, &'a str, &'a str), bool>,
}

impl<'a> Owners<'a> {
    fn new(store: &'a Store) -> Owners<'a> {
        Owners {
            store,
            gone: HashMap::new(),
        }
    }

    /// The object has a controlling owner, and no object with that
    /// owner's kind, name and uid exists any more (a re-created namesake
    /// is another owner).
    fn owner_is_gone(&mut self, meta: &'a ObjectMeta) -> bool {
        let Some(owner) = meta.controller() else {
            return false;
        };
        let store = self.store;
        let key = (owner.kind, owner.name.as_str(), owner.uid.as_str());
        *self.gone.entry(key).or_insert_with(|| {
            store
                .get(owner.kind, &owner.name)
                .is_none_or(|o| o.meta().uid != owner.uid)
        })
    }
}

/// Whether an object came from the units folder (and so belongs to it).
pub fn from_units_dir(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
}
