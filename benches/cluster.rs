//! Cluster mode, measured on real processes: etcd on free loopback ports
//! (tests/harness/etcd.rs, fsync off as in the tests) and several
//! `drover daemon`s of this build, each its own node with its own dirs.
//!
//! 1. Failover: 3 nodes, a ReplicaSet of 6 pods (2 per node); one node
//!    crashes (its daemon and its pods' processes SIGKILLed): the time
//!    until all 6 run on the other two, as a survivor sees it. Goal:
//!    lease + eviction timeout + 1 s (16 s with the defaults).
//! 2. Scheduling: a ReplicaSet of 1000 `sleep` pods over 5 nodes: the time
//!    from `drover apply` until every pod runs, as one node sees it.
//!    Goal: under 5 s.
//! 3. Idle: 3 nodes with nothing to do: etcd requests per second per
//!    node, by gRPC method, from etcd's own counters. Goal: lease
//!    keep-alives only.
//!
//! Run: `cargo bench --bench cluster` (release build; `--profile dev`
//! reuses the test build's binary) (defaults: lease 10 s, eviction 5 s,
//! 3 failover runs, 1000 pods, a 30 s idle window); `-- --quick` for CI
//! (lease 2 s, eviction 1 s, 1 run, 100 pods over 3 nodes, 10 s window).
//! Everything lives in temp dirs; every process is killed at the end.

#[path = "../tests/harness/etcd.rs"]
#[allow(dead_code)]
mod etcd;
#[path = "common/stats.rs"]
mod stats;

use etcd::Etcd;
use serde_json::Value;
use stats::{arg_or, summary};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DROVER: &str = env!("CARGO_BIN_EXE_drover");

struct Settings {
    lease: &'static str,
    eviction: &'static str,
    lease_secs: f64,
    eviction_secs: f64,
    failover_runs: usize,
    pods: u32,
    pod_nodes: usize,
    idle_secs: u64,
}

/// One node: a daemon in its own temp dir.
struct Node {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Node {
    fn start(name: &str, endpoints: &[String], s: &Settings) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("drover-bench-cluster-{name}-"))
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("units")).unwrap();
        let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        std::fs::write(
            dir.path().join("drover.toml"),
            format!(
                "[cluster]\nendpoints = [{}]\nlease_ttl = \"{}\"\npod_eviction_timeout = \"{}\"\n",
                eps.join(", "),
                s.lease,
                s.eviction
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let child = Command::new(DROVER)
            .arg("daemon")
            .arg("--config")
            .arg(dir.path().join("drover.toml"))
            .arg("--socket")
            .arg(dir.path().join("sock"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--units")
            .arg(dir.path().join("units"))
            .arg("--node-name")
            .arg(name)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .current_dir(dir.path())
            .env("DROVER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawning drover daemon");
        let n = Node {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while n.get("/v1/version").is_none() {
            assert!(Instant::now() < deadline, "{name} did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn get(&self, path: &str) -> Option<Value> {
        let mut s = UnixStream::connect(self.socket()).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: drover\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.contains(" 200 ") {
            return None;
        }
        serde_json::from_str(body).ok()
    }

    fn apply(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(DROVER)
            .arg("--socket")
            .arg(self.socket())
            .args(["apply", "-f"])
            .arg(&path)
            .output()
            .expect("drover apply");
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Running pods with label app=`app`, by node.
    fn running(&self, app: &str) -> BTreeMap<String, usize> {
        let mut by_node = BTreeMap::new();
        let Some(list) = self.get(&format!("/v1/pods?selector=app%3D{app}")) else {
            return by_node;
        };
        for p in list["items"].as_array().into_iter().flatten() {
            let procs = p["status"]["processes"].as_array();
            let running = p["metadata"]["deletion_timestamp"].is_null()
                && procs.is_some_and(|ps| {
                    !ps.is_empty()
                        && ps
                            .iter()
                            .all(|s| s["pid"].is_u64() && s["state"]["running"].is_object())
                });
            if running {
                let node = p["status"]["node_name"].as_str().unwrap_or("").to_string();
                *by_node.entry(node).or_default() += 1;
            }
        }
        by_node
    }

    fn ready_nodes(&self) -> usize {
        self.get("/v1/nodes")
            .and_then(|l| {
                l["items"].as_array().map(|ns| {
                    ns.iter()
                        .filter(|n| {
                            n["status"]["conditions"].as_array().is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                        })
                        .count()
                })
            })
            .unwrap_or(0)
    }

    /// A host crash: the daemon and its pods' processes, SIGKILLed.
    fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: killpg(2) on the group our child leads.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        kill_processes_in(self.dir.path());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.crash();
        // Its pods' cgroups, which the killed daemon cannot remove.
        let id = std::fs::read_to_string(self.dir.path().join("state/instance-id"));
        if let Ok(id) = id {
            drover::runtime::cgroup::remove_leftovers(id.trim());
        }
    }
}

/// Kills, by pid, every process whose working directory is in `dir` (the
/// pods inherit their daemon's).
fn kill_processes_in(dir: &Path) {
    for _ in 0..100 {
        let mut left = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
            if cwd.is_ok_and(|c| c.starts_with(dir)) && pid != std::process::id() as i32 {
                // SAFETY: kill(2) of a process found in our temp dir.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                left += 1;
            }
        }
        if left == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rs(name: &str, replicas: u32) -> String {
    format!(
        "kind = \"ReplicaSet\"\nname = \"{name}\"\n[spec]\nreplicas = {replicas}\n\
         [spec.selector]\nmatch_labels = {{ app = \"{name}\" }}\n[spec.template]\n\
         labels = {{ app = \"{name}\" }}\ntermination_grace_period = \"1s\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"3600\"]\n"
    )
}

fn wait(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed()
}

fn cluster(n: usize, etcd: &Etcd, s: &Settings) -> Vec<Node> {
    let nodes: Vec<Node> = (1..=n)
        .map(|i| Node::start(&format!("n{i}"), &etcd.endpoints(), s))
        .collect();
    wait("every node Ready", Duration::from_secs(60), || {
        nodes[0].ready_nodes() == n
    });
    nodes
}

/// 1. Crash to every pod of the crashed node running elsewhere, seconds.
fn failover(s: &Settings) -> f64 {
    let etcd = Etcd::start();
    let mut nodes = cluster(3, &etcd, s);
    nodes[0].apply("web.toml", &rs("web", 6));
    let spread: BTreeMap<String, usize> = [("n1", 2), ("n2", 2), ("n3", 2)]
        .map(|(n, c)| (n.to_string(), c))
        .into();
    wait("6 pods, 2 per node", Duration::from_secs(60), || {
        nodes[0].running("web") == spread
    });
    let t0 = Instant::now();
    nodes[2].crash();
    let limit = Duration::from_secs_f64(s.lease_secs + s.eviction_secs + 60.0);
    wait("6 pods on the survivors", limit, || {
        let r = nodes[0].running("web");
        r.values().sum::<usize>() == 6 && !r.contains_key("n3")
    });
    t0.elapsed().as_secs_f64()
}

/// 2. Apply to every pod running, seconds.
fn scheduling(s: &Settings) -> (f64, BTreeMap<String, usize>) {
    let etcd = Etcd::start();
    let nodes = cluster(s.pod_nodes, &etcd, s);
    let t0 = Instant::now();
    nodes[0].apply("bulk.toml", &rs("bulk", s.pods));
    let mut last = BTreeMap::new();
    wait("every pod running", Duration::from_secs(300), || {
        last = nodes[0].running("bulk");
        last.values().sum::<usize>() == s.pods as usize
    });
    (t0.elapsed().as_secs_f64(), last)
}

/// Sums of etcd's gRPC counters by method: unary calls started, stream
/// messages received.
fn grpc_counts(metrics: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        // Unary calls are counted when started; a stream's requests are
        // its messages (a lease keep-alive is one message).
        let unary = if line.starts_with("grpc_server_started_total{") {
            true
        } else if line.starts_with("grpc_server_msg_received_total{") {
            false
        } else {
            continue;
        };
        let is_unary = line.contains("grpc_type=\"unary\"");
        if unary != is_unary {
            continue;
        }
        let method = line
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(method.to_string()).or_default() += value;
    }
    out
}

/// 3. etcd requests per second per idle node, by method.
fn idle(s: &Settings) -> BTreeMap<String, f64> {
    let etcd = Etcd::start();
    let n = 3;
    let _nodes = cluster(n, &etcd, s);
    // Let the start-up writes (registration, election) pass.
    std::thread::sleep(Duration::from_secs_f64(s.lease_secs));
    let before = grpc_counts(&etcd.metrics(0).expect("etcd metrics"));
    std::thread::sleep(Duration::from_secs(s.idle_secs));
    let after = grpc_counts(&etcd.metrics(0).expect("etcd metrics"));
    after
        .iter()
        .map(|(m, v)| {
            let rate = (v - before.get(m).copied().unwrap_or(0.0)) / s.idle_secs as f64 / n as f64;
            (m.clone(), rate)
        })
        .filter(|(_, r)| *r > 0.0)
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let s = if quick {
        Settings {
            lease: "2s",
            eviction: "1s",
            lease_secs: 2.0,
            eviction_secs: 1.0,
            failover_runs: 1,
            pods: 100,
            pod_nodes: 3,
            idle_secs: 10,
        }
    } else {
        Settings {
            lease: "10s",
            eviction: "5s",
            lease_secs: 10.0,
            eviction_secs: 5.0,
            failover_runs: arg_or("--failover-runs", 3),
            pods: arg_or("--pods", 1000),
            pod_nodes: 5,
            idle_secs: arg_or("--idle-seconds", 30),
        }
    };
    println!(
        "cluster bench ({}; lease {}, eviction {}; {} cores)",
        if quick { "quick" } else { "full" },
        s.lease,
        s.eviction,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let goal = s.lease_secs + s.eviction_secs + 1.0;
    let runs: Vec<f64> = (0..s.failover_runs).map(|_| failover(&s)).collect();
    summary(
        &format!(
            "failover: node crash -> its 2 ReplicaSet pods running elsewhere (goal <= {goal:.0}s)"
        ),
        runs,
        "s",
        2,
    );

    let (secs, spread) = scheduling(&s);
    println!(
        "  scheduling: {} pods over {} nodes, apply -> all running: {secs:.2}s (goal < 5s); per node {spread:?}",
        s.pods, s.pod_nodes
    );

    let rates = idle(&s);
    let total: f64 = rates.values().sum();
    println!(
        "  idle: etcd requests per second per node: {total:.2} ({} s window, 3 nodes)",
        s.idle_secs
    );
    for (method, rate) in &rates {
        println!("    {method}: {rate:.2}/s");
    }
}
