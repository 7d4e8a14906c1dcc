//! What one cgroup per pod costs on spawn: N pods of one `true` each,
//! started one after another, without cgroups and with them (made per
//! pod; with and without limits), alternating so that drift hits every
//! variant alike. Timed per pod: the cgroup's creation plus the spawn
//! (clone until the child has exec'd), then, untimed, the exit; a second
//! spawn into the same process cgroup (what a crash's replacement
//! costs); and the cgroup's removal. Run as root (cgroups), on the
//! hierarchy the daemon would choose here.
//!
//! Run: `cargo bench --bench cgroup_spawn` (`-- --n 1000`).

use drover::api::{CpuQuantity, MemoryQuantity, Resources};
use drover::runtime::{Cgroups, LinuxRuntime, ProcessRuntime, SpawnRequest};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;
use stats::{arg_or, summary};

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
    grouped
        .cgroups()
        .remove_root()
        .expect("remove the bench root");
    println!("per pod, N={n} (microseconds):");
    summary("spawn, no cgroup             ", base, "us", 1);
    summary("cgroup made + spawn in it     ", with, "us", 1);
    summary("same, memory+cpu+pids limits  ", with_limits, "us", 1);
    summary("spawn again in the same cgroup", restart, "us", 1);
    summary("cgroup removed after the exit ", removal, "us", 1);
}
