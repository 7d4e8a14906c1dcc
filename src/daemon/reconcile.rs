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
//! Time-driven work (a CronJob's next run, a Job's failure backoff, active
//! deadline or TTL) is not triggered by any change: [`next_wakeup`] says
//! when the next of those is due, and the loop runs the controllers then.

use super::events::EventLog;
use crate::api::job::JobRef;
use crate::api::{annotations, CronJob, Job, Kind, Node, Object, ObjectMeta, Pod};
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
    let nodes: Vec<Node> = store.nodes().cloned().collect();
    run_sets(store, events, &nodes, now);
    run_cronjobs(store, events, now);
    run_jobs(store, events, &nodes, now);

    schedule(store, events, now);
    collect_garbage(store, now);
    store.revision() != before
}

/// ReplicaSets and ReplicationControllers.
fn run_sets(store: &mut Store, events: &mut EventLog, nodes: &[Node], now: DateTime<Utc>) {
    if store.replicasets().next().is_none() && store.replication_controllers().next().is_none() {
        return;
    }
    let pods: Vec<Pod> = store.pods().cloned().collect();
    let mut plans: Vec<(Kind, ObjectMeta, Plan)> = vec![];
    for rs in store.replicasets() {
        let view = ReplicaView::from_rs(rs);
        plans.push((
            Kind::ReplicaSet,
            rs.metadata.clone(),
            replicaset::reconcile(&view, &pods, nodes, now),
        ));
    }
    for rc in store.replication_controllers() {
        let view = ReplicaView::from_rc(rc);
        plans.push((
            Kind::ReplicationController,
            rc.metadata.clone(),
            replicaset::reconcile(&view, &pods, nodes, now),
        ));
    }
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

/// Every pod by the uid of its controller.
fn pods_by_owner(store: &Store) -> HashMap<&str, Vec<&Pod>> {
    let mut by: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for p in store.pods() {
        if let Some(o) = p.metadata.controller() {
            by.entry(o.uid.as_str()).or_default().push(p);
        }
    }
    by
}

/// Jobs: plans are computed over borrowed pods (a store may hold
/// thousands of finished Job pods), then applied.
fn run_jobs(store: &mut Store, events: &mut EventLog, nodes: &[Node], now: DateTime<Utc>) {
    if store.list(Kind::Job).next().is_none() {
        return;
    }
    let plans: Vec<(ObjectMeta, JobPlan)> = {
        let by_owner = pods_by_owner(store);
        let all: Vec<&Pod> = store.pods().collect();
        jobs(store)
            .map(|j| {
                let own = by_owner.get(j.metadata.uid.as_str());
                let own = own.map(Vec::as_slice).unwrap_or(&[]);
                // The scheduler spreads over every pod; ownership is
                // filtered again inside reconcile.
                let plan = if own.iter().all(|p| p.is_terminal()) && !wants_pods(j) {
                    job::reconcile_refs(j, own, nodes, now)
                } else {
                    job::reconcile_refs(j, &all, nodes, now)
                };
                (j.metadata.clone(), plan)
            })
            .collect()
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
    let all_jobs: Vec<Job> = jobs(store).cloned().collect();
    let plans: Vec<(ObjectMeta, CronPlan)> = cronjobs(store)
        .map(|cj| (cj.metadata.clone(), cronjob::reconcile(cj, &all_jobs, now)))
        .collect();
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
                Kind::CronJob,
                &meta.name,
                &meta.uid,
                false,
                "SuccessfulDelete",
                &format!("Deleted job {name} ({reason})"),
                CRONJOB_SOURCE,
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
        kind, &meta.name, &meta.uid, n.warning, &n.reason, &n.message, source, now,
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
    let by_owner = pods_by_owner(store);
    for j in jobs(store) {
        let waits_on_clock = match j.status.finished() {
            Some(_) => j.spec.ttl_after_finished.is_some(),
            None => !j.spec.suspend,
        };
        if !waits_on_clock {
            continue;
        }
        let own = by_owner
            .get(j.metadata.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let plan = job::reconcile_refs(j, own, &[], now);
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
        let all_jobs: Vec<Job> = jobs(store).cloned().collect();
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
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "Adopted",
                    &format!("Adopted pod: {name}"),
                    source,
                    now,
                );
            }
            Op::Release { name } => {
                store.update_pod(&name, |p| {
                    p.metadata.owner_references.clear();
                    true
                });
                events.record(
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "Released",
                    &format!("Released pod: {name} (labels no longer match)"),
                    source,
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
fn apply_pod_op(
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
            let name = unique_name(store, &generate_name);
            pod.metadata.name = name.clone();
            pod.metadata.uid = crate::api::meta::new_uid();
            pod.metadata.creation_timestamp = now;
            pod.metadata.generation = 1;
            store.put(Object::Pod(pod));
            events.record(
                kind,
                &owner.name,
                &owner.uid,
                false,
                "SuccessfulCreate",
                &format!("Created pod: {name}"),
                source,
                now,
            );
        }
        Op::DeletePod { name, reason } => {
            if mark_deleted(store, &name, now) {
                events.record(
                    kind,
                    &owner.name,
                    &owner.uid,
                    false,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name} ({reason})"),
                    source,
                    now,
                );
            }
        }
        Op::Adopt { .. } | Op::Release { .. } => {
            unreachable!("only sets adopt and release; they apply those themselves")
        }
    }
}

/// `generate_name` + 5 random characters, as the Kubernetes API server.
fn unique_name(store: &Store, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let suffix: String = bytes[..5]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let name = format!("{prefix}{suffix}");
        if store.pod(&name).is_none() {
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
    let pending: Vec<Pod> = store
        .pods()
        .filter(|p| {
            p.status.node_name.is_none()
                && p.metadata.deletion_timestamp.is_none()
                && !p.is_terminal()
        })
        .cloned()
        .collect();
    if pending.is_empty() {
        return;
    }
    let all: Vec<Pod> = store.pods().cloned().collect();
    let nodes: Vec<Node> = store.nodes().cloned().collect();
    for (name, result) in scheduler::schedule_pending(&all, &nodes) {
        let Some(pod) = pending.iter().find(|p| p.metadata.name == name) else {
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
                    Kind::Pod,
                    &name,
                    &pod.metadata.uid,
                    false,
                    "Scheduled",
                    &format!("Successfully assigned {name} to {node}"),
                    "scheduler",
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
                        Kind::Pod,
                        &name,
                        &pod.metadata.uid,
                        true,
                        "FailedScheduling",
                        &msg,
                        "scheduler",
                        now,
                    );
                }
            }
        }
    }
}

/// Pods whose controlling owner no longer exists are deleted (Kubernetes'
/// background cascading deletion), and so are Jobs whose CronJob is gone.
/// `--cascade=orphan` clears the owner reference before the owner goes,
/// so those are not touched here.
fn collect_garbage(store: &mut Store, now: DateTime<Utc>) {
    let orphan_jobs: Vec<String> = jobs(store)
        .filter(|j| owner_is_gone(store, &j.metadata))
        .map(|j| j.metadata.name.clone())
        .collect();
    for name in orphan_jobs {
        store.delete(Kind::Job, &name);
    }
    let orphans: Vec<String> = store
        .pods()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| owner_is_gone(store, &p.metadata))
        .map(|p| p.metadata.name.clone())
        .collect();
    for name in orphans {
        mark_deleted(store, &name, now);
    }
}

/// The object has a controlling owner, and no object with that owner's
/// kind, name and uid exists any more (a re-created namesake is another
/// owner).
fn owner_is_gone(store: &Store, meta: &ObjectMeta) -> bool {
    match meta.controller() {
        Some(owner) => store
            .get(owner.kind, &owner.name)
            .is_none_or(|o| o.meta().uid != owner.uid),
        None => false,
    }
}

/// Whether an object came from the units folder (and so belongs to it).
pub fn from_units_dir(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
}
