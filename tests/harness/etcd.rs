//! Real etcd for tests: Debian's `/usr/bin/etcd` (package etcd-server) on
//! free loopback ports (never 2379/2380, which a system etcd may own), each
//! member with its own data dir in a temp dir, fsync off. One member
//! ([`Etcd::start`]) or a cluster ([`Etcd::cluster`]) whose members can be
//! stopped (SIGKILL) and started again.
//!
//! Health is waited for as a condition with a deadline: `GET /health` on
//! each member's plain-http metrics port answers `{"health":"true"}` once
//! the member has a leader (the same port serves `/metrics`, whose gRPC
//! counters the cluster benchmark reads). [`Etcd::cluster_tls`] serves
//! clients over TLS with client-certificate auth only. Drop kills
//! every member by the PID this harness started it with; nothing is
//! killed by name.
//!
//! Tests that need etcd fail, not skip, when it is missing: CI installs
//! etcd-server, and a silent pass would hide the cluster code untested.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a member or cluster may take to become healthy (measured:
/// 0.3–1 s for one member, ~3 s for three on an idle machine; tests share
/// 2 cores with several builds).
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

/// The etcd binary: `$DROVER_TEST_ETCD`, else Debian's.
pub fn etcd_binary() -> PathBuf {
    let path = std::env::var_os("DROVER_TEST_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    assert!(
        path.exists(),
        "{} not found: the etcd tests need a real etcd. Install it with \
         `apt-get install etcd-server` (Debian), or point DROVER_TEST_ETCD at an etcd 3.4+ binary",
        path.display()
    );
    path
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    child: Option<Child>,
}

/// Client TLS of a cluster: its server certificate, and the CA its
/// clients' certificates must come from.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Etcd {
    dir: tempfile::TempDir,
    token: String,
    members: Vec<Member>,
    tls: Option<ServerTls>,
}

/// `n` distinct free loopback ports, none of them 2379/2380: all bound at
/// once (so they differ), then released for etcd to take. A port taken
/// by someone else in between makes etcd fail to start, which
/// [`Etcd::cluster`] retries with new ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    while held.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = l.local_addr().unwrap().port();
        if port != 2379 && port != 2380 {
            held.push(l);
        }
    }
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Etcd {
    /// One member, healthy.
    pub fn start() -> Etcd {
        Etcd::cluster(1)
    }

    /// `n` members forming one cluster, all healthy.
    pub fn cluster(n: usize) -> Etcd {
        Etcd::build(n, None)
    }

    /// One member serving clients over https, requiring a client
    /// certificate from `tls.ca` (`--client-cert-auth`).
    pub fn cluster_tls(n: usize, tls: ServerTls) -> Etcd {
        Etcd::build(n, Some(tls))
    }

    fn build(n: usize, tls: Option<ServerTls>) -> Etcd {
        let binary = etcd_binary();
        let mut last = String::new();
        for _ in 0..3 {
            let ports = free_ports(3 * n);
            let id = CLUSTERS.fetch_add(1, Ordering::Relaxed);
            let mut etcd = Etcd {
                dir: tempfile::tempdir().expect("temp dir"),
                token: format!("drover-test-{}-{id}", std::process::id()),
                members: (0..n)
                    .map(|i| Member {
                        name: format!("m{i}"),
                        client_port: ports[3 * i],
                        peer_port: ports[3 * i + 1],
                        metrics_port: ports[3 * i + 2],
                        child: None,
                    })
                    .collect(),
                tls: tls.clone(),
            };
            for i in 0..n {
                etcd.spawn(&binary, i);
            }
            match etcd.wait_healthy_all(HEALTHY_WITHIN) {
                Ok(()) => return etcd,
                Err(why) => last = format!("{why}\n{}", etcd.logs()),
            }
        }
        panic!("etcd did not become healthy (3 tries): {last}");
    }

    fn spawn(&mut self, binary: &Path, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect();
        let m = &self.members[i];
        let data = self.dir.path().join(&m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))
            .expect("etcd log file");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let metrics = format!("http://127.0.0.1:{}", m.metrics_port);
        let mut command = Command::new(binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca);
        }
        let child = command
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--listen-metrics-urls", &metrics])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-token", &self.token])
            // Ignored once the data dir exists (a restarted member).
            .args(["--initial-cluster-state", "new"])
            .args(["--logger=zap", "--log-level=error", "--unsafe-no-fsync"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.members[i].child = Some(child);
    }

    /// Client URL of every member (stopped ones included).
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Member `i`'s Prometheus metrics (gRPC request counters and more).
    pub fn metrics(&self, i: usize) -> Option<String> {
        http_get(self.members[i].metrics_port, "/metrics")
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs member `i` (by its PID) and reaps it.
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its ports and data dir, and waits until
    /// it reports healthy.
    pub fn start_member(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        self.spawn(&etcd_binary(), i);
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while !self.healthy(i) {
            assert!(
                Instant::now() < deadline,
                "member {i} not healthy after restart\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether member `i` answers `/health` with `"health":"true"`.
    pub fn healthy(&self, i: usize) -> bool {
        http_get(self.members[i].metrics_port, "/health")
            .is_some_and(|body| body.contains("\"health\":\"true\""))
    }

    /// Waits until every running member is healthy.
    pub fn wait_healthy_all(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let mut exited = None;
            for (i, m) in self.members.iter_mut().enumerate() {
                if let Some(child) = &mut m.child {
                    if let Ok(Some(status)) = child.try_wait() {
                        exited = Some(format!("member {i} exited: {status}"));
                    }
                }
            }
            if let Some(why) = exited {
                return Err(why);
            }
            let running: Vec<usize> = (0..self.members.len())
                .filter(|&i| self.members[i].child.is_some())
                .collect();
            if running.iter().all(|&i| self.healthy(i)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not healthy within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every member's log, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let path = self.dir.path().join(format!("{}.log", m.name));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                format!("--- etcd {} log:\n{text}", m.name)
            })
            .collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, or None on any failure.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = ("127.0.0.1", port);
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}
