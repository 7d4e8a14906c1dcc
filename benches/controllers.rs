//! The controllers' cost per pass, in process (no daemon, no processes):
//! what `Daemon::settle` and the loop pay after every store change, i.e.
//! `reconcile::run_controllers` followed by `reconcile::next_wakeup`.
//!
//! The store: one node, one ReplicaSet of N pods (default 1000) bound to
//! it, all Running and ready; a CronJob with three finished Jobs in its
//! history and one finished stand-alone Job (no TTL, so no Job waits on
//! the clock). Two cases, each timed over P passes (default 200):
//!
//! 1. steady: nothing changed, every controller finds nothing to do;
//! 2. one pod restarted: before each pass one pod's `restart_count` goes
//!    up (what the agent writes when a process crashes and restarts).
//!
//! Prints median and p99 of the wall time per pass, and of the heap
//! allocations per pass (a counting global allocator): the work should
//! follow what changed, not N.
//!
//! Run: `cargo bench --bench controllers` (`-- --pods N --passes P`).

use chrono::{DateTime, TimeZone, Utc};
use drover::api::{
    JobCondition, JobConditionType, JobStatus, Kind, Node, NodeCondition, NodeSpec, NodeStatus,
    Object, ObjectMeta, PodPhase, ProcessState, ProcessStatus,
};
use drover::controllers::cronjob;
use drover::daemon::events::EventLog;
use drover::daemon::reconcile::{next_wakeup, run_controllers};
use drover::store::Store;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;
use stats::{arg_or, summary};

/// Counts allocations so a pass's copying shows up as a number.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to `System`; only adds a relaxed counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NODE: &str = "bench";

/// A fixed instant: nothing here depends on the clock.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
}

fn unit(name: &str, text: &str) -> Object {
    drover::units::parse_unit(Path::new(name), text, now() - chrono::Duration::days(30))
        .unwrap_or_else(|_| panic!("{name} does not parse"))
}

/// A Job status: Complete at `at`, one pod succeeded.
fn complete(at: DateTime<Utc>) -> JobStatus {
    JobStatus {
        succeeded: 1,
        start_time: Some(at),
        completion_time: Some(at),
        conditions: vec![JobCondition {
            type_: JobConditionType::Complete,
            status: "True".into(),
            reason: Some("CompletionsReached".into()),
            message: None,
            last_transition_time: at,
        }],
        ..Default::default()
    }
}

/// The store described in the module docs, settled (a pass changes nothing).
fn build(pods: usize) -> Store {
    let mut store = Store::new();
    store.put(Object::Node(Node {
        metadata: ObjectMeta::new(NODE, now()),
        spec: NodeSpec::default(),
        status: NodeStatus {
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(now()),
                ..NodeCondition::default()
            }],
            drover_version: String::new(),
            ..NodeStatus::default()
        },
    }));
    store.put(unit(
        "web.toml",
        &format!(
            "kind = \"ReplicaSet\"\nname = \"web\"\n[spec]\nreplicas = {pods}\n\
             [spec.selector]\nmatch_labels = {{ app = \"web\" }}\n\
             [spec.template]\nlabels = {{ app = \"web\" }}\n\
             [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"infinity\"]\n"
        ),
    ));
    let report = unit(
        "report.toml",
        "kind = \"CronJob\"\nname = \"report\"\n[spec]\nschedule = \"30 2 * * *\"\n\
         [spec.job_template.spec.template]\nrestart_policy = \"Never\"\n\
         [[spec.job_template.spec.template.processes]]\nname = \"main\"\ncommand = [\"true\"]\n",
    );
    let Object::CronJob(mut cj) = report else {
        unreachable!()
    };
    // Ran today and the two days before; the next run is tomorrow.
    for day in 0..3 {
        let at = Utc.with_ymd_and_hms(2026, 1, 10 - day, 2, 30, 0).unwrap();
        let name = cronjob::job_name(&cj, at);
        let mut job = cronjob::job_from_template(&cj, name, Some(at), at);
        job.metadata.uid = drover::api::meta::new_uid();
        job.status = complete(at);
        store.put(Object::Job(job));
        cj.status.last_schedule_time = cj.status.last_schedule_time.max(Some(at));
    }
    store.put(Object::CronJob(cj));
    let backup = unit(
        "backup.toml",
        "kind = \"Job\"\nname = \"backup\"\n[spec.template]\nrestart_policy = \"Never\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = [\"true\"]\n",
    );
    let Object::Job(mut backup) = backup else {
        unreachable!()
    };
    backup.status = complete(now() - chrono::Duration::days(1));
    store.put(Object::Job(backup));

    // The controllers create the pods (bound to the one node) ...
    let mut events = EventLog::default();
    while run_controllers(&mut store, &mut events, now()).changed {}
    // ... and the agent would start them: Running and ready.
    let names: Vec<String> = store.pods().map(|p| p.metadata.name.clone()).collect();
    assert_eq!(names.len(), pods, "the ReplicaSet made its pods");
    for name in &names {
        store.update_pod(name, |p| {
            assert_eq!(p.status.node_name.as_deref(), Some(NODE));
            p.status.phase = PodPhase::Running;
            p.status.processes = vec![ProcessStatus {
                pid: Some(4242),
                ready: true,
                started: true,
                state: ProcessState::Running { started_at: now() },
                ..ProcessStatus::waiting("main", "")
            }];
            true
        });
    }
    while run_controllers(&mut store, &mut events, now()).changed {}
    assert!(store.list(Kind::Job).count() == 4, "no Job was collected");
    store
}

/// Times `passes` passes; `before` runs ahead of each, untimed.
fn measure(
    store: &mut Store,
    passes: usize,
    mut before: impl FnMut(&mut Store, usize),
) -> (Vec<f64>, Vec<f64>) {
    let mut events = EventLog::default();
    let mut micros = Vec::with_capacity(passes);
    let mut allocs = Vec::with_capacity(passes);
    for i in 0..passes {
        before(store, i);
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let changed = run_controllers(store, &mut events, now()).changed;
        let wake = next_wakeup(store, now());
        let spent = t0.elapsed();
        allocs.push((ALLOCS.load(Ordering::Relaxed) - a0) as f64);
        micros.push(spent.as_secs_f64() * 1e6);
        assert!(!changed, "a pass changed the store: not a steady state");
        std::hint::black_box(wake);
    }
    (micros, allocs)
}

fn main() {
    let pods = arg_or("--pods", 1000);
    let passes = arg_or("--passes", 200);
    println!(
        "drover controllers benchmark: run_controllers + next_wakeup, \
         1 ReplicaSet x {pods} pods, 1 CronJob, 4 finished Jobs, {passes} passes"
    );
    let mut store = build(pods);
    let names: Vec<String> = store.pods().map(|p| p.metadata.name.clone()).collect();

    println!("steady state (nothing to do)");
    let (t, a) = measure(&mut store, passes, |_, _| {});
    summary("time per pass", t, " us", 1);
    summary("allocations per pass", a, "", 1);

    println!("one pod restarted before each pass");
    let (t, a) = measure(&mut store, passes, |s, i| {
        let name = &names[i % names.len()];
        assert!(s.update_pod(name, |p| {
            p.status.processes[0].restart_count += 1;
            true
        }));
    });
    summary("time per pass", t, " us", 1);
    summary("allocations per pass", a, "", 1);
}
