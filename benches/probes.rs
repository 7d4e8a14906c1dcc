//! Probe overhead, measured on a real `drover daemon` (release build):
//! a ReplicaSet of N tiny HTTP servers (benches/probes/server.c), each
//! with an HTTP liveness probe every second.
//!
//! Reports:
//! 1. the daemon's CPU (utime + stime from /proc) over the window, as a
//!    share of one core (goal: under 5% with 1000 pods);
//! 2. how regular the probes are: each server logs the monotonic arrival
//!    time of every request; the gap between consecutive probes of one pod
//!    minus the 1 s period is the lateness (goal: p99 under 20 ms).
//!
//! Run: `cargo bench --bench probes` (`-- --pods N --seconds S`, or
//! `-- --quick` for 50 pods over 5 s). Everything lives in a temp dir; the
//! daemon and every process it started are killed at the end, by pid.

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DROVER: &str = env!("CARGO_BIN_EXE_drover");
const PERIOD_NS: i64 = 1_000_000_000;

struct Args {
    pods: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        pods: 1000,
        seconds: 30,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--quick" => {
                a.pods = 50;
                a.seconds = 5;
            }
            "--pods" => {
                i += 1;
                a.pods = argv[i].parse().expect("--pods N");
            }
            "--seconds" => {
                i += 1;
                a.seconds = argv[i].parse().expect("--seconds S");
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

/// The daemon and, on drop, the clean-up of everything it started.
struct Bench {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let pids = pod_pids(self.dir.path());
        // SAFETY: killpg/kill(2) by pid on processes this benchmark started.
        unsafe {
            libc::killpg(self.daemon.id() as i32, libc::SIGKILL);
            for &pid in &pids {
                libc::killpg(pid as i32, libc::SIGKILL);
            }
        }
        let _ = self.daemon.wait();
        // Then their cgroups, once they are gone (the daemon cannot).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && pids
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let id = std::fs::read_to_string(self.dir.path().join("state/instance-id"));
        if let Ok(id) = id {
            drover::runtime::cgroup::remove_leftovers(id.trim());
        }
    }
}

/// Main pids of every pod, asked of the daemon before it is killed (the
/// store is a journal now: this read a `state/store.json` that no longer
/// exists, found nothing, and left every pod running).
fn pod_pids(dir: &Path) -> Vec<u32> {
    let out = Command::new(DROVER)
        .arg("--socket")
        .arg(dir.join("sock"))
        .args(["get", "pods", "-o", "json"])
        .output();
    let v: Value = out
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["status"]["processes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn build_server(out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/probes/server.c");
    let bin = out.join("probe-server");
    let ok = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("running cc")
        .success();
    assert!(ok, "compiling {}", src.display());
    bin
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (f[11], f[12] after the comm).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The keeper `keeper` (the process the bench started) and the daemon it
/// runs: its children named drover (the pods are the daemon's children).
/// Measuring the keeper alone read 0 % since the keeper landed.
fn keeper_and_daemon(keeper: u32) -> Vec<u32> {
    let children = std::fs::read_to_string(format!("/proc/{keeper}/task/{keeper}/children"))
        .unwrap_or_default();
    let mut pids = vec![keeper];
    pids.extend(
        children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
            .filter(|c| {
                std::fs::read_to_string(format!("/proc/{c}/comm"))
                    .is_ok_and(|n| n.trim() == "drover")
            }),
    );
    pids
}

fn running_pods(sock: &Path) -> usize {
    let out = Command::new(DROVER)
        .arg("--socket")
        .arg(sock)
        .args(["get", "pods", "-o", "json"])
        .output()
        .expect("drover get pods");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["status"]["processes"][0]["state"]["running"].is_object())
                .count()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let a = args();
    let dir = tempfile::Builder::new()
        .prefix("drover-bench-probes-")
        .tempdir()
        .expect("temp dir");
    let out = dir.path().join("arrivals");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(dir.path().join("units")).unwrap();
    let server = build_server(dir.path());
    let last_port = 20000 + a.pods.max(1) as u32 * 2;
    let unit = format!(
        "kind = \"ReplicaSet\"\nname = \"probed\"\n[spec]\nreplicas = {n}\n\
         [spec.selector]\nmatch_labels = {{ app = \"probed\" }}\n\
         [spec.template]\nlabels = {{ app = \"probed\" }}\n\
         ports = [{{ name = \"http\", range = \"20000-{last_port}\" }}]\n\
         [[spec.template.processes]]\nname = \"server\"\ncommand = [{server:?}]\n\
         env = {{ PORT = \"${{PORT_HTTP}}\", OUT = {out:?} }}\n\
         [spec.template.processes.liveness]\nhttp_get = {{ path = \"/healthz\", port = \"http\" }}\n\
         period = \"1s\"\ntimeout = \"1s\"\n",
        n = a.pods,
        server = server.display().to_string(),
        out = out.display().to_string(),
    );
    std::fs::write(dir.path().join("units/probed.toml"), unit).unwrap();
    let sock = dir.path().join("sock");
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let daemon = Command::new(DROVER)
        .arg("daemon")
        .arg("--socket")
        .arg(&sock)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--units")
        .arg(dir.path().join("units"))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .arg("--node-name")
        .arg("bench")
        .env("DROVER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("spawning drover daemon");
    let daemon_pid = daemon.id();
    let bench = Bench { dir, daemon };

    let deadline = Instant::now() + Duration::from_secs(120);
    while running_pods(&sock) < a.pods {
        assert!(
            Instant::now() < deadline,
            "pods did not all start within 120s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let every pod's probe settle into its rhythm, then measure.
    std::thread::sleep(Duration::from_secs(3));
    let hz = 100.0; // USER_HZ on Linux
    let t0 = Instant::now();
    let measured = keeper_and_daemon(daemon_pid);
    if measured.len() < 2 {
        eprintln!("warning: no daemon found under {daemon_pid}: its CPU alone is measured");
    }
    let ticks = || measured.iter().map(|&p| cpu_ticks(p)).sum::<u64>();
    let c0 = ticks();
    std::thread::sleep(Duration::from_secs(a.seconds));
    let c1 = ticks();
    let wall = t0.elapsed().as_secs_f64();
    let cpu_share = (c1 - c0) as f64 / hz / wall * 100.0;

    // Lateness: gaps between consecutive probes of one pod, minus 1s.
    let mut late: Vec<i64> = vec![];
    let mut probes = 0usize;
    for entry in std::fs::read_dir(&out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        let times: Vec<i64> = text.lines().filter_map(|l| l.parse().ok()).collect();
        probes += times.len();
        for w in times.windows(2).skip(3) {
            late.push((w[1] - w[0] - PERIOD_NS).abs());
        }
    }
    late.sort_unstable();
    let ms = |ns: i64| ns as f64 / 1e6;
    let failed = {
        let out = Command::new(DROVER)
            .arg("--socket")
            .arg(&sock)
            .args(["get", "pods", "-o", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .map(|p| {
                        p["status"]["processes"][0]["restart_count"]
                            .as_u64()
                            .unwrap_or(0)
                    })
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| daemon CPU, {} pods probed by HTTP every 1 s, over {:.0} s | {:.2} % of one core | < 5 % |",
        a.pods, wall, cpu_share
    );
    println!(
        "| probe period deviation (n = {}) | median {:.2} ms, p99 {:.2} ms, max {:.2} ms | p99 < 20 ms |",
        late.len(),
        ms(percentile(&late, 0.5)),
        ms(percentile(&late, 0.99)),
        ms(*late.last().unwrap_or(&0))
    );
    println!("| probes answered | {probes} | |");
    println!("| restarts during the run (must be 0) | {failed} | 0 |");
    let json = serde_json::json!({
        "pods": a.pods,
        "seconds": wall,
        "daemon_cpu_percent": cpu_share,
        "lateness_ms": {
            "median": ms(percentile(&late, 0.5)),
            "p99": ms(percentile(&late, 0.99)),
            "max": ms(*late.last().unwrap_or(&0)),
            "samples": late.len(),
        },
        "restarts": failed,
    });
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(
        target.join("probes.json"),
        serde_json::to_vec_pretty(&json).unwrap(),
    );
    drop(bench);
}
