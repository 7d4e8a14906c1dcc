//! The embedded store's persist cost: a store of 1000 running pods (from
//! `units/web.toml`'s template: probes, ports, env, an owner, a process
//! identity and a last crash each), then 200 rounds of "one pod's process
//! crashed and was restarted" followed by one persist, timed from the
//! store's change until the persist returns (serialising + writing +
//! fsync: what the daemon's loop pays before it can reply), and the CPU
//! time of the same span (the fsync wait excluded: what the loop's core
//! cannot spend on other events).
//!
//! Run: `cargo bench --bench store` (`-- --pods N --persists N --dir PATH`
//! to change the sizes or measure on another file system; the default is
//! a temp dir under the system's temp dir, removed at the end).

use chrono::{DateTime, Duration, TimeZone, Utc};
use drover::api::{
    Kind, Object, ObjectMeta, OwnerRef, Pod, PodPhase, PodStatus, ProcessIdentity, ProcessState,
    ProcessStatus, TerminatedState,
};
use drover::store::embedded::EmbeddedBackend;
use drover::store::Store;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;
use stats::{arg, arg_or, summary};

const WEB_UNIT: &str = include_str!("../units/web.toml");

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// A pod as the ReplicaSet controller and the agent leave it once it runs:
/// the template's spec, an owner, a node, a port, a process with a pid,
/// an identity (for re-adoption) and the state of its last crash.
fn running_pod(rs: &Object, template: &drover::api::PodTemplate, i: usize) -> Pod {
    let name = format!("web-{i:05x}q");
    let started = t0() + Duration::seconds(i as i64);
    let mut metadata = ObjectMeta::new(name.clone(), t0());
    metadata.uid = format!("6f1c2a4e-{i:04x}-4b7e-9a51-3d2f8c0e{i:04x}");
    metadata.labels = template.labels.clone();
    metadata.owner_references = vec![OwnerRef {
        kind: Kind::ReplicaSet,
        name: rs.name().to_string(),
        uid: rs.meta().uid.clone(),
    }];
    let process = &template.spec.processes[0];
    Pod {
        metadata,
        spec: template.spec.clone(),
        status: PodStatus {
            phase: PodPhase::Running,
            node_name: Some("bench-host".into()),
            ports: [("http".to_string(), 8080 + (i % 20) as u16)].into(),
            start_time: Some(t0()),
            reason: None,
            message: None,
            processes: vec![ProcessStatus {
                pid: Some(20_000 + i as u32),
                ready: true,
                started: true,
                restart_count: 1,
                state: ProcessState::Running {
                    started_at: started,
                },
                last_state: Some(TerminatedState {
                    exit_code: Some(137),
                    signal: Some(9),
                    reason: "Error".into(),
                    message: Some(
                        "liveness probe failed: HTTP probe failed with statuscode: 500".into(),
                    ),
                    started_at: Some(t0()),
                    finished_at: started,
                }),
                identity: Some(ProcessIdentity {
                    start_ticks: 123_456_789 + i as u64,
                    boot_id: "0b6c3f5e-8d1a-4e7b-9c2d-5a4f3e2d1c0b".into(),
                }),
                notify_status: None,
                ..ProcessStatus::waiting(&process.name, "")
            }],
            init_processes: Vec::new(),
        },
    }
}

/// The daemon's persist step (lifecycle.rs), as the bench calls it.
fn persist(store: &mut Store, backend: &mut EmbeddedBackend) {
    store.persist(backend).expect("persist");
}

/// CPU time this thread has used, in ms.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let pods: usize = arg_or("--pods", 1000);
    let rounds: usize = arg_or("--persists", 200);
    let base: Option<PathBuf> = arg("--dir").map(PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::Builder::new()
            .prefix("drover-bench-store-")
            .tempdir_in(b),
        None => tempfile::Builder::new()
            .prefix("drover-bench-store-")
            .tempdir(),
    }
    .expect("temp dir");
    let dir = tmp.path().join("state");

    let rs = drover::units::parse_unit(Path::new("units/web.toml"), WEB_UNIT, t0())
        .expect("units/web.toml parses");
    let template = match &rs {
        Object::ReplicaSet(r) => r.spec.template.clone(),
        _ => panic!("units/web.toml is a ReplicaSet"),
    };

    let mut backend = EmbeddedBackend::open(&dir).expect("state dir");
    let mut store = Store::load(&mut backend).expect("empty store loads");
    store.put(rs.clone());
    for i in 0..pods {
        store.put(Object::Pod(running_pod(&rs, &template, i)));
    }
    persist(&mut store, &mut backend);
    println!(
        "drover store benchmark: {pods} pods, {} bytes on disk in {}",
        dir_bytes(&dir),
        dir.display()
    );

    let names: Vec<String> = store.pods().map(|p| p.metadata.name.clone()).collect();
    let mut times = Vec::with_capacity(rounds);
    let mut cpu = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // A different pod each time, as crashes land across a ReplicaSet.
        let name = &names[(round * 7919) % names.len()];
        let at = t0() + Duration::seconds(3600 + round as i64);
        let t = Instant::now();
        let c = thread_cpu_ms();
        store.update_pod(name, |p| {
            let s = &mut p.status.processes[0];
            s.restart_count += 1;
            s.pid = Some(40_000 + round as u32);
            s.state = ProcessState::Running { started_at: at };
            s.identity.as_mut().expect("identity").start_ticks += 1000;
            true
        });
        persist(&mut store, &mut backend);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(thread_cpu_ms() - c);
    }
    println!("persist after changing one pod ({rounds} persists):");
    summary("change + persist, wall", times, " ms", 3);
    summary("change + persist, CPU ", cpu, " ms", 3);
    println!("  state dir afterwards: {} bytes", dir_bytes(&dir));
}
