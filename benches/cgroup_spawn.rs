//! What one cgroup per pod costs on spawn: N pods of one `true` each,
//! started one after another, without cgroups and with them (made per
//! pod; with and without limits), alternating so that drift hits every
//! variant alike. Timed per pod: the cgroup's creation plus the spawn
//! (clone until the child has exec'd), then, untimed, the exit; a second
//! spawn into the same process cgroup (what a crash's replacement
//! costs); and the cgroup's removal. Run as root (cgroups), on the
//! hierarchy the daemon would choose here.
//!
//! Then batches as the daemon starts many pods: `--batch` B requests of
//! a `sleep`, announced with `will_spawn` (cgroups made ahead) and
//! started by one `spawn_many` (a thread per core), with and without
//! cgroups, `--rounds` times alternating; timed from the first
//! announcement to the return of `spawn_many`: the wall-clock cost of a
//! cgroup per pod when every core is busy starting pods (on cgroup v1 a
//! pod's mkdir and its process's join both take the kernel's global
//! `cgroup_mutex`, so that work does not spread over cores freely).
//!
//! Run: `cargo bench --bench cgroup_spawn` (`-- --n 1000 --batch 500
//! --rounds 5`).

use drover::api::{CpuQuantity, MemoryQuantity, Resources};
use drover::runtime::{Cgroups, LinuxRuntime, ProcessRuntime, SpawnRequest};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;
use stats::{arg_or, percentile, summary};

fn request() -> SpawnRequest {
    SpawnRequest {
        argv: vec!["true".into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        log_path: "/dev/null".into(),
        ..Default::default()
    }
}

fn wait(pid: i32) {
    // SAFETY: our child; status pointer may be null.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

fn micros(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

fn main() {
    let n: usize = arg_or("--n", 1000);
    let instance = format!("bench-{}", std::process::id());
    let cgroups = Cgroups::detect(&instance);
    println!("cgroups: {}", cgroups.describe());
    if !cgroups.is_available() {
        eprintln!("no cgroups here (run as root): nothing to compare");
        std::process::exit(1);
    }
    let mut plain = LinuxRuntime::new();
    let mut grouped = LinuxRuntime::with_cgroups(cgroups);
    let limits = Resources {
        memory: Some(MemoryQuantity(256 << 20)),
        cpu: Some(CpuQuantity(500)),
        pids: Some(100),
    };
    let (mut base, mut with, mut with_limits, mut removal) = (vec![], vec![], vec![], vec![]);
    let mut restart = vec![];
    for i in 0..n {
        let t = Instant::now();
        let pid = plain.spawn(&request()).expect("spawn").pid;
        base.push(micros(t));
        wait(pid);

        for (variant, samples) in [(None, &mut with), (Some(&limits), &mut with_limits)] {
            let uid = format!("pod-{i}-{}", variant.is_some() as u8);
            let t = Instant::now();
            // As the daemon does for a pod of one process: a handle, the
            // directories made by the spawn, the process in the pod's own
            // cgroup (v1).
            let pod = grouped.pod_cgroup(&uid).expect("pod cgroup");
            let mut req = request();
            req.cgroup = Some(pod.sole_process("main").unwrap());
            req.resources = variant.cloned();
            let pid = grouped.spawn(&req).expect("spawn in cgroup").pid;
            samples.push(micros(t));
            wait(pid);
            if variant.is_none() {
                // A crash's replacement: the same process cgroup again.
                let t = Instant::now();
                let pid = grouped.spawn(&req).expect("spawn again").pid;
                restart.push(micros(t));
                wait(pid);
            }
            let t = Instant::now();
            grouped.remove_pod_cgroup(&pod).expect("remove");
            removal.push(micros(t));
        }
    }
    println!("per pod, N={n} (microseconds):");
    summary("spawn, no cgroup             ", base, "us", 1);
    summary("cgroup made + spawn in it     ", with, "us", 1);
    summary("same, memory+cpu+pids limits  ", with_limits, "us", 1);
    summary("spawn again in the same cgroup", restart, "us", 1);
    summary("cgroup removed after the exit ", removal, "us", 1);

    let batch: usize = arg_or("--batch", 500);
    let rounds: usize = arg_or("--rounds", 5);
    let (mut plain_ms, mut grouped_ms) = (vec![], vec![]);
    for round in 0..rounds {
        plain_ms.push(spawn_batch(&mut plain, batch, None));
        grouped_ms.push(spawn_batch(&mut grouped, batch, Some(round)));
    }
    grouped
        .cgroups()
        .remove_root()
        .expect("remove the bench root");
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        percentile(&xs, 50.0)
    };
    let (p, g) = (median(plain_ms.clone()), median(grouped_ms.clone()));
    println!(
        "batches of {batch} sleeps, {} threads, median of {rounds} (ms):",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    summary("spawn_many, no cgroup         ", plain_ms, "ms", 2);
    summary("will_spawn + spawn_many, cgroup", grouped_ms, "ms", 2);
    println!(
        "cgroups cost {:.1} us per pod of a batch",
        (g - p) * 1000.0 / batch as f64
    );
}

/// Starts `batch` sleeps in one `spawn_many` (each in a new pod cgroup
/// of its own when `round` is given, announced first), returns the
/// milliseconds it took, then kills and reaps them and removes their
/// cgroups.
fn spawn_batch(rt: &mut LinuxRuntime, batch: usize, round: Option<usize>) -> f64 {
    let mut pods = vec![];
    let reqs: Vec<SpawnRequest> = (0..batch)
        .map(|i| {
            let mut req = request();
            req.argv = vec!["sleep".into(), "1000".into()];
            if let Some(r) = round {
                let pod = rt
                    .pod_cgroup(&format!("batch-{r}-{i}"))
                    .expect("pod cgroup");
                req.cgroup = Some(pod.sole_process("main").unwrap());
                pods.push(pod);
            }
            req
        })
        .collect();
    let t = Instant::now();
    for req in &reqs {
        rt.will_spawn(req);
    }
    let spawned = rt.spawn_many(&reqs);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    for s in spawned {
        let pid = s.expect("spawn").pid;
        rt.signal(pid, drover::api::Signal::KILL).expect("kill");
        wait(pid);
    }
    for pod in &pods {
        // The kernel may still hold a killed child's cgroup a moment.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while rt.remove_pod_cgroup(pod).is_err() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    ms
}
