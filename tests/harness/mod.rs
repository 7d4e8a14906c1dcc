//! The test harness: a real `drover daemon` per test, in its own temp dir
//! (socket, state, units, logs), driven through the CLI and, for polling,
//! through the HTTP API on its socket (cheaper than spawning the CLI every
//! 20ms on a 2-core machine).
//!
//! Waiting is always on a condition against a deadline
//! ([`TestDaemon::wait_until`]), never a fixed sleep (style.md §7).
//!
//! `drover daemon` runs as two processes: the keeper K (our child, or the
//! python keeper's) and the daemon D, K's child, which serves the API
//! (`runtime::keeper`). [`TestDaemon::daemon_pid`] is D;
//! [`TestDaemon::keeper_pid`] is K. [`TestDaemon::kill9`] kills both
//! (K first, or it would start another D): the daemon is down until
//! [`TestDaemon::restart`]. [`TestDaemon::crash`] kills D alone, as a
//! crash would, and waits for the D that K starts in its place.
//!
//! Clean-up (Drop): SIGKILL the daemon and its keeper, then every process any of this
//! test's pods started, found by pid through /proc: its environment holds
//! `DROVER_POD_UID=<uid>` of one of this test's pods, or its working
//! directory is inside this test's temp dir (the daemon runs there, and
//! pods inherit it); a group leader found so is killed with its group.
//! Nothing is ever killed by name.

#![allow(dead_code)]

pub mod certs;
pub mod cluster;
pub mod etcd;

use drover::api::{Pod, ProcessState};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The drover binary under test.
pub const DROVER: &str = env!("CARGO_BIN_EXE_drover");

/// Deadline for things that should happen "at once" (a pod starts, a
/// controller reacts): generous, as tests share 2 cores.
pub const SOON: Duration = Duration::from_secs(15);

/// Restart pacing for tests: a crash loop is visible without waiting 10s.
pub const DEFAULT_CONFIG: &str = "backoff_initial = \"200ms\"\nbackoff_max = \"1s\"\n";

/// Every daemon gets its own 20-port range, so tests running in parallel
/// never compete for a port.
static NEXT_PORT_BLOCK: AtomicU16 = AtomicU16::new(0);
const PORT_BASE: u16 = 31000;
const PORT_BLOCK: u16 = 20;

pub struct TestDaemon {
    dir: tempfile::TempDir,
    /// `--node-name` (a cluster's daemons each have their own).
    node_name: String,
    /// Our child: the daemon, or its keeper (see [`Options::keeper`]).
    child: Option<Child>,
    daemon_pid: Option<u32>,
    /// drover's keeper (D's parent), when it runs one.
    keeper_pid: Option<u32>,
    keeper: bool,
    /// Keepers of daemons that were killed: they hold the zombies.
    old_keepers: Vec<Child>,
    /// First and last port of this test's range (`@PORTS@` in units).
    pub ports: (u16, u16),
    /// Every pod uid this test has seen (for clean-up).
    uids: Mutex<BTreeSet<String>>,
    /// Every process pid this test has seen in a pod status.
    pids: Mutex<BTreeSet<u32>>,
    /// RLIMIT_NOFILE (soft and hard) of the daemon from the next launch
    /// on: how tests run out of descriptors.
    pub nofile: Option<u64>,
}

/// What `start_with` can vary.
pub struct Options<'a> {
    /// The daemon's config file (TOML).
    pub config: &'a str,
    /// Start the daemon under a "keeper": a python3 process that is a
    /// child subreaper and never reaps. When the daemon is killed, its
    /// processes are re-parented to the keeper, and one that dies then
    /// stays a zombie (as under a PID 1 that is slow to reap) until the
    /// test ends.
    pub keeper: bool,
    /// `--node-name` (default `test-node`).
    pub node_name: &'a str,
    /// The daemon starts with this RLIMIT_NOFILE, soft and hard (as under
    /// `ulimit -n N`), so it cannot raise it.
    pub nofile: Option<u64>,
    /// Called with the test dir before the daemon first starts (mount a
    /// tmpfs as the state dir, open the dir to other users, ...).
    pub prepare: Option<&'a dyn Fn(&Path)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            config: DEFAULT_CONFIG,
            keeper: false,
            node_name: "test-node",
            nofile: None,
            prepare: None,
        }
    }
}

/// The keeper: PR_SET_CHILD_SUBREAPER (36), fork+exec argv[1..], then
/// wait for signals forever without reaping anything.
const KEEPER: &str = "import ctypes, os, signal, sys\n\
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n\
if os.fork() == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n\
while True:\n    signal.pause()\n";

impl TestDaemon {
    /// A daemon whose units folder holds `units` (file name, TOML; `@DIR@`
    /// and `@PORTS@` are replaced by the test dir and port range).
    pub fn start(units: &[(&str, &str)]) -> TestDaemon {
        Self::start_with(units, Options::default())
    }

    pub fn start_with(units: &[(&str, &str)], opts: Options) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("drover-test-")
            .tempdir()
            .expect("temp dir");
        let block = NEXT_PORT_BLOCK.fetch_add(1, Ordering::SeqCst);
        let first = PORT_BASE + block * PORT_BLOCK;
        let mut d = TestDaemon {
            dir,
            node_name: opts.node_name.to_string(),
            nofile: opts.nofile,
            child: None,
            daemon_pid: None,
            keeper_pid: None,
            keeper: opts.keeper,
            old_keepers: Vec::new(),
            ports: (first, first + PORT_BLOCK - 1),
            uids: Mutex::new(BTreeSet::new()),
            pids: Mutex::new(BTreeSet::new()),
        };
        std::fs::create_dir_all(d.units_dir()).unwrap();
        std::fs::create_dir_all(d.path("files")).unwrap();
        std::fs::write(d.path("drover.toml"), opts.config).unwrap();
        for (name, text) in units {
            d.write_unit(name, text);
        }
        if let Some(prepare) = opts.prepare {
            prepare(d.dir());
        }
        d.launch();
        d
    }

    // ---- paths ----------------------------------------------------------

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("sock")
    }

    pub fn units_dir(&self) -> PathBuf {
        self.path("units")
    }

    /// A file the pods of this test may write (`@DIR@/files/NAME`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path("files").join(name)
    }

    pub fn read_file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.file(name)).ok()
    }

    /// `@DIR@` -> the test dir, `@PORTS@` -> "FIRST-LAST".
    pub fn expand(&self, text: &str) -> String {
        text.replace("@DIR@", &self.dir().display().to_string())
            .replace("@PORTS@", &format!("{}-{}", self.ports.0, self.ports.1))
    }

    pub fn write_unit(&self, name: &str, text: &str) {
        std::fs::write(self.units_dir().join(name), self.expand(text)).unwrap();
    }

    pub fn remove_unit(&self, name: &str) {
        std::fs::remove_file(self.units_dir().join(name)).unwrap();
    }

    /// Writes `text` to `@DIR@/apply/NAME` (outside the units folder) and
    /// returns its path, for `drover apply -f` and `validate`.
    pub fn unit_file(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.path("apply");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, self.expand(text)).unwrap();
        path
    }

    /// `drover apply -f` of one unit; asserts success.
    pub fn apply(&self, name: &str, text: &str) -> String {
        let path = self.unit_file(name, text);
        self.drover_ok(&["apply", "-f", path.to_str().unwrap()])
    }

    // ---- the daemon process -----------------------------------------------

    fn launch(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemon.log"))
            .unwrap();
        let mut cmd = if self.keeper {
            let mut c = Command::new("/usr/bin/python3");
            c.arg("-c").arg(KEEPER).arg(DROVER);
            c
        } else {
            Command::new(DROVER)
        };
        cmd.arg("daemon")
            .arg("--config")
            .arg(self.path("drover.toml"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.path("state"))
            .arg("--units")
            .arg(self.units_dir())
            .arg("--node-name")
            .arg(&self.node_name)
            .arg("--log-dir")
            .arg(self.path("logs"))
            .current_dir(self.dir())
            .env_remove("DROVER_SOCKET")
            .env_remove("DROVER_STATE_DIR")
            .env("DROVER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        if let Some(n) = self.nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawning drover daemon");
        let child_pid = child.id();
        let previous = self.daemon_pid.take();
        self.child = Some(child);
        self.keeper_pid = None;
        // Ready once the socket answers, and it is this daemon answering:
        // our child, or a descendant of it (drover's keeper, and the
        // python keeper above that), and not the one before.
        let deadline = Instant::now() + SOON;
        loop {
            if let Ok((200, body)) = self.try_http("GET", "/v1/version", None) {
                let v: Value = serde_json::from_str(&body).unwrap();
                let pid = v["pid"].as_u64().unwrap_or(0) as u32;
                let ancestors = ancestors(pid, 3);
                if Some(pid) != previous && (pid == child_pid || ancestors.contains(&child_pid)) {
                    self.daemon_pid = Some(pid);
                    self.keeper_pid = ancestors.first().copied().filter(|&k| {
                        k != std::process::id()
                            && (k == child_pid || ancestors.contains(&child_pid))
                    });
                    break;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("drover daemon exited at start: {status}\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!("drover daemon did not answer on its socket\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // As the brief says: `drover get nodes` works.
        let out = self.drover(&["get", "nodes"]);
        assert!(out.status.success(), "get nodes: {}", show(&out));
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon_pid.expect("daemon running")
    }

    /// drover's keeper: the daemon's parent, which restarts it.
    pub fn keeper_pid(&self) -> u32 {
        self.keeper_pid
            .expect("the daemon runs under drover's keeper")
    }

    /// SIGKILL the daemon and its keeper (its processes live on in their
    /// own groups). The keeper first: otherwise it starts the daemon again.
    pub fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(k) = self.keeper_pid.take() {
            send_signal(k, libc::SIGKILL);
            self.wait_dead(k);
        }
        if self.keeper {
            self.old_keepers.push(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self.daemon_pid {
            send_signal(pid, libc::SIGKILL);
            self.wait_dead(pid);
        }
        self.wait_state_unlocked();
    }

    /// Waits until no process holds the state dir's lock. The daemon is
    /// not our child (its keeper is), so nothing waits for its whole
    /// thread group: its leader shows as a zombie while other threads
    /// may still be exiting, with the lock still held.
    fn wait_state_unlocked(&self) {
        let Ok(f) = std::fs::File::open(self.path("state").join("lock")) else {
            return;
        };
        self.wait_until("the state dir unlocked", SOON, || {
            use std::os::fd::AsRawFd;
            // SAFETY: flock(2) on a descriptor we own.
            let locked = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            // SAFETY: as above; releases what we just took.
            locked == 0 && unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) } == 0
        });
    }

    /// SIGKILL the daemon alone, as a crash would: its keeper starts
    /// another; returns once that one answers (its pid is then
    /// [`daemon_pid`](Self::daemon_pid)).
    pub fn crash(&mut self) {
        let old = self.daemon_pid();
        send_signal(old, libc::SIGKILL);
        self.wait_dead(old);
        self.wait_new_daemon(old);
    }

    /// Waits until a daemon other than `old`, started by the same
    /// keeper, answers on the socket.
    pub fn wait_new_daemon(&mut self, old: u32) {
        let keeper = self.keeper_pid();
        let pid = self.wait_for("the keeper's new daemon answering", SOON, || {
            let (status, body) = self.try_http("GET", "/v1/version", None).ok()?;
            let v: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
            let pid = v["pid"].as_u64()? as u32;
            (pid != old && matches!(proc_stat(pid), Some((_, pp, _)) if pp == keeper))
                .then_some(pid)
        });
        self.daemon_pid = Some(pid);
    }

    fn wait_dead(&self, pid: u32) {
        let deadline = Instant::now() + SOON;
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "daemon {pid} did not die\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the daemon (not its keeper): it exits leaving its
    /// processes running, and its keeper exits with it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = self.daemon_pid();
        send_signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + SOON;
        loop {
            let exited = if self.keeper {
                !alive(pid)
            } else {
                child.try_wait().unwrap().is_some()
            };
            if exited {
                break;
            }
            if Instant::now() > deadline {
                send_signal(pid, libc::SIGKILL);
                panic!("the daemon did not exit on SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.keeper {
            self.old_keepers.push(child);
        }
        if let Some(k) = self.keeper_pid.take() {
            self.wait_dead(k);
        }
    }

    /// SIGTERM to drover's keeper, as `systemctl stop drover` and a
    /// machine's shutdown send: every pod is stopped gracefully, then
    /// drover exits. Start it again with [`restart`](Self::restart).
    pub fn stop_service(&mut self) {
        let keeper = self.keeper_pid();
        let daemon = self.daemon_pid();
        send_signal(keeper, libc::SIGTERM);
        self.wait_dead(daemon);
        self.wait_dead(keeper);
        self.keeper_pid = None;
        if let Some(child) = self.child.take() {
            self.old_keepers.push(child);
        }
        self.wait_state_unlocked();
    }

    /// Starts the daemon again on the same dirs (after `kill9` or `stop`).
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(60);
        format!(
            "--- daemon.log (last lines) ---\n{}",
            lines[from..].join("\n")
        )
    }

    // ---- the CLI ----------------------------------------------------------

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DROVER);
        cmd.arg("--socket")
            .arg(self.socket())
            .args(args)
            .env_remove("DROVER_SOCKET")
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        cmd
    }

    pub fn drover(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running drover")
    }

    /// Runs the CLI, asserts exit 0, returns stdout.
    #[track_caller]
    /// A CLI command that streams (`logs -f`), running, and the lines it
    /// prints as they come. The caller kills and waits for it.
    pub fn streaming(
        &self,
        args: &[&str],
    ) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
        let mut child = self.command(args).stdout(Stdio::piped()).spawn().unwrap();
        let lines = line_channel(child.stdout.take().unwrap());
        (child, lines)
    }

    pub fn drover_ok(&self, args: &[&str]) -> String {
        let out = self.drover(args);
        assert!(
            out.status.success(),
            "drover {args:?} failed: {}\n{}",
            show(&out),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI, asserts it failed with `code`, returns stderr.
    #[track_caller]
    pub fn drover_fails(&self, args: &[&str], code: i32) -> String {
        let out = self.drover(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "drover {args:?}: expected exit {code}: {}",
            show(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    // ---- the API (polling) ------------------------------------------------

    fn try_http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut s = UnixStream::connect(self.socket())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: drover\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
        Ok((status, body.to_string()))
    }

    /// GET on the API; None on 404.
    pub fn api(&self, path: &str) -> Option<Value> {
        let (status, body) = self
            .try_http("GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        match status {
            200 => Some(serde_json::from_str(&body).unwrap()),
            404 => None,
            _ => panic!("GET {path}: {status} {body}"),
        }
    }

    pub fn pods(&self) -> Vec<Pod> {
        let list = self.api("/v1/pods").expect("pods list");
        let pods: Vec<Pod> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| serde_json::from_value(v.clone()).expect("a pod"))
            .collect();
        self.remember(&pods);
        pods
    }

    /// Pods not being deleted.
    pub fn live_pods(&self) -> Vec<Pod> {
        self.pods()
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    pub fn pod(&self, name: &str) -> Option<Pod> {
        let v = self.api(&format!("/v1/pods/{name}"))?;
        let pod: Pod = serde_json::from_value(v).expect("a pod");
        self.remember(std::slice::from_ref(&pod));
        Some(pod)
    }

    #[track_caller]
    pub fn pod_now(&self, name: &str) -> Pod {
        self.pod(name)
            .unwrap_or_else(|| panic!("pod {name} not found\n{}", self.log()))
    }

    pub fn object(&self, plural: &str, name: &str) -> Option<Value> {
        self.api(&format!("/v1/{plural}/{name}"))
    }

    fn remember(&self, pods: &[Pod]) {
        let mut uids = self.uids.lock().unwrap();
        let mut pids = self.pids.lock().unwrap();
        for p in pods {
            uids.insert(p.metadata.uid.clone());
            for s in &p.status.processes {
                if let Some(pid) = s.pid {
                    pids.insert(pid);
                }
            }
        }
    }

    /// Every pid seen in a pod status during this test.
    pub fn seen_pids(&self) -> BTreeSet<u32> {
        self.pids.lock().unwrap().clone()
    }

    // ---- waiting ----------------------------------------------------------

    /// Polls `cond` every 20ms until it holds; panics after `timeout` with
    /// `desc`, the pods and the daemon log.
    #[track_caller]
    pub fn wait_until(&self, desc: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        self.wait_for(desc, timeout, || cond().then_some(()))
    }

    /// Polls `f` every 20ms until it returns Some; panics after `timeout`.
    #[track_caller]
    pub fn wait_for<T>(
        &self,
        desc: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let pods = self
                    .try_http("GET", "/v1/pods", None)
                    .map(|(_, b)| b)
                    .unwrap_or_else(|e| format!("(pods unavailable: {e})"));
                panic!(
                    "timed out after {timeout:?} waiting for: {desc}\n--- pods ---\n{pods}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until pod `name` has every process running; returns it.
    #[track_caller]
    pub fn wait_running(&self, name: &str) -> Pod {
        self.wait_for(&format!("pod {name} running"), SOON, || {
            self.pod(name).filter(all_running)
        })
    }

    /// Waits for exactly `n` live pods matching `selector` (e.g. "app=web"),
    /// all running, and no terminating ones; returns them sorted by name.
    #[track_caller]
    pub fn wait_pods(&self, selector: &str, n: usize) -> Vec<Pod> {
        self.wait_for(
            &format!("exactly {n} running pods with {selector}"),
            SOON,
            || {
                let pods = self.selected(selector);
                (pods.len() == n
                    && pods
                        .iter()
                        .all(|p| p.metadata.deletion_timestamp.is_none() && all_running(p)))
                .then_some(pods)
            },
        )
    }

    /// Pods whose labels include every `k=v` of `selector` (comma-separated).
    pub fn selected(&self, selector: &str) -> Vec<Pod> {
        let want: Vec<(&str, &str)> = selector
            .split(',')
            .map(|kv| kv.split_once('=').expect("k=v"))
            .collect();
        let mut pods: Vec<Pod> = self
            .pods()
            .into_iter()
            .filter(|p| {
                want.iter()
                    .all(|(k, v)| p.metadata.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }

    /// Waits until `name` is no longer in the store.
    #[track_caller]
    pub fn wait_gone(&self, name: &str) {
        self.wait_until(&format!("pod {name} gone"), SOON, || {
            self.pod(name).is_none()
        });
    }

    /// Waits until the state file has every pid now running, so a
    /// `kill -9` of the daemon loses nothing that is only in memory.
    #[track_caller]
    pub fn wait_persisted(&self) {
        let pids: Vec<u32> = self
            .pods()
            .iter()
            .flat_map(|p| p.status.processes.iter().filter_map(|s| s.pid))
            .collect();
        self.wait_until("the state file to hold every running pid", SOON, || {
            let stored = stored_pids(&self.stored_state());
            pids.iter().all(|p| stored.contains(p))
        });
    }

    /// What the state dir holds (snapshot plus journal), as a JSON array of
    /// objects; empty if nothing was persisted yet.
    pub fn stored_state(&self) -> Value {
        let objects = drover::store::embedded::read_state(&self.path("state")).unwrap_or_default();
        serde_json::to_value(objects).expect("objects serialise")
    }

    /// Events of `kind/name` (e.g. "Pod/web-x"), as JSON.
    pub fn events_for(&self, target: &str) -> Vec<Value> {
        let v = self
            .api(&format!("/v1/events?for={}", target.replace('/', "%2F")))
            .expect("events");
        v["items"].as_array().unwrap().clone()
    }

    // ---- clean-up ---------------------------------------------------------

    /// Pod uids of this test: seen through the API or in the state file.
    fn all_uids(&self) -> BTreeSet<String> {
        let mut uids = self.uids.lock().unwrap().clone();
        collect_strings(&self.stored_state(), "uid", &mut uids);
        uids
    }

    /// Pids of processes that belong to this test (see the module doc),
    /// and whatever is alive in its daemon's cgroups: a process that
    /// dropped the marker from its environment and left the test's
    /// folder is still there, and would keep its pod's cgroup (and so
    /// the instance's root) from being removed.
    pub fn own_processes(&self) -> Vec<u32> {
        let uids = self.all_uids();
        let me = std::process::id();
        let dir = self.dir().to_path_buf();
        let in_cgroups = self.cgroup_pids();
        all_pids()
            .into_iter()
            .filter(|&pid| pid != me)
            .filter(|&pid| {
                let env_match = environ(pid)
                    .iter()
                    .any(|(k, v)| k == "DROVER_POD_UID" && uids.contains(v));
                let cwd_match = std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .map(|c| c.starts_with(&dir))
                    .unwrap_or(false);
                (env_match || cwd_match || in_cgroups.contains(&pid)) && alive(pid)
            })
            .collect()
    }

    /// The pids in this test's daemon's cgroup roots (its own
    /// `drover-<instance id>`, unique to the test), every hierarchy.
    fn cgroup_pids(&self) -> BTreeSet<u32> {
        let Ok(id) = std::fs::read_to_string(self.path("state").join("instance-id")) else {
            return BTreeSet::new();
        };
        drover::runtime::cgroup::instance_pids(id.trim())
            .into_iter()
            .map(|pid| pid as u32)
            .collect()
    }

    /// Kills the daemon and everything its pods started; returns what
    /// could not be killed (empty unless something is badly wrong).
    pub fn teardown(&mut self) -> Vec<u32> {
        if let Some(child) = &self.child {
            // SAFETY: killpg(2) on the group our child leads.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
        }
        self.kill9();
        for mut keeper in self.old_keepers.drain(..) {
            let _ = keeper.kill();
            let _ = keeper.wait();
        }
        let deadline = Instant::now() + SOON;
        loop {
            let left = self.own_processes();
            if left.is_empty() {
                self.remove_cgroups();
                return left;
            }
            for &pid in &left {
                // A group leader takes its whole group along (members that
                // dropped the marker from their environment included).
                if pgid(pid) == Some(pid) {
                    // SAFETY: killpg(2) of a group led by a process verified
                    // above to be ours.
                    unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
                }
                send_signal(pid, libc::SIGKILL);
            }
            if Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Removes the daemon's cgroup root (`drover-<instance id>`) and what
    /// is under it, once no process of it is left: a SIGKILLed daemon
    /// leaves them behind, and hundreds of tests would leave hundreds.
    fn remove_cgroups(&self) {
        use drover::runtime::cgroup::remove_leftovers;
        let Ok(id) = std::fs::read_to_string(self.path("state").join("instance-id")) else {
            return;
        };
        // A killed process stays in its cgroup until it is reaped (by
        // init or a subreaper, a moment after `alive` calls it dead), and
        // rmdir says busy until then. Its daemon and keeper are dead by
        // now, so init reaps it. With 2 s here, roots with two empty pod
        // cgroups were left now and then (one made at 08:09:44 during
        // `.ci/run` on 2026-12-01, found empty afterwards): most likely
        // init took longer under CI's load. Waiting costs nothing when
        // the removal works.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if remove_leftovers(id.trim()) || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Teardown, then checks by pid that no process this test saw is left.
    #[track_caller]
    pub fn assert_teardown_leaves_nothing(&mut self) {
        let left = self.teardown();
        assert!(left.is_empty(), "processes left after teardown: {left:?}");
        let seen = self.seen_pids();
        let deadline = Instant::now() + SOON;
        loop {
            let alive: Vec<u32> = seen.iter().copied().filter(|p| alive(*p)).collect();
            if alive.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "pids still alive: {alive:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let left = self.teardown();
        if !left.is_empty() {
            eprintln!("warning: could not kill {left:?}");
        }
    }
}

/// The lines `out` prints, as they come (a reader thread that stops when
/// the receiver goes).
fn line_channel(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

// ---- pods -------------------------------------------------------------------

/// Every process of the pod is running (and has a pid).
pub fn all_running(p: &Pod) -> bool {
    !p.status.processes.is_empty()
        && p.status.processes.len() == p.spec.processes.len()
        && p.status
            .processes
            .iter()
            .all(|s| s.pid.is_some() && matches!(s.state, ProcessState::Running { .. }))
}

pub fn pid_of(p: &Pod, process: &str) -> u32 {
    p.status
        .processes
        .iter()
        .find(|s| s.name == process)
        .and_then(|s| s.pid)
        .unwrap_or_else(|| panic!("no pid for {process} in {p:#?}"))
}

pub fn main_pid(p: &Pod) -> u32 {
    p.status.processes[0]
        .pid
        .unwrap_or_else(|| panic!("no pid in {p:#?}"))
}

pub fn waiting_reason(p: &Pod, idx: usize) -> Option<String> {
    match &p.status.processes.get(idx)?.state {
        ProcessState::Waiting { reason, .. } => Some(reason.to_string()),
        _ => None,
    }
}

pub fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.name.clone()).collect()
}

// ---- /proc ------------------------------------------------------------------

/// (state, ppid, starttime) from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f[0].chars().next()?,
        f[1].parse().ok()?,
        f[19].parse().ok()?,
    ))
}

/// The parent, grandparent, ... of `pid`, up to `n` of them.
pub fn ancestors(pid: u32, n: usize) -> Vec<u32> {
    let mut out = vec![];
    let mut p = pid;
    while out.len() < n {
        match proc_stat(p) {
            Some((_, pp, _)) if pp > 1 => {
                out.push(pp);
                p = pp;
            }
            _ => break,
        }
    }
    out
}

/// Live children of `ppid`.
pub fn children_of(ppid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| matches!(proc_stat(pid), Some((s, p, _)) if p == ppid && s != 'Z'))
        .collect()
}

/// The process group of a pid.
pub fn pgid(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((s, _, _)) if s != 'Z' && s != 'X')
}

pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

pub fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Live processes whose environment has `DROVER_POD_UID=uid`.
pub fn pod_processes(uid: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            alive(pid)
                && environ(pid)
                    .iter()
                    .any(|(k, v)| k == "DROVER_POD_UID" && v == uid)
        })
        .collect()
}

/// Live processes by their `DROVER_POD_UID` (one scan of /proc).
pub fn processes_by_pod() -> std::collections::BTreeMap<String, Vec<u32>> {
    let mut out: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for pid in all_pids() {
        if let Some((_, uid)) = environ(pid)
            .into_iter()
            .find(|(k, _)| k == "DROVER_POD_UID")
        {
            if alive(pid) {
                out.entry(uid).or_default().push(pid);
            }
        }
    }
    out
}

/// Zombie children of `ppid`.
pub fn zombies_of(ppid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| matches!(proc_stat(pid), Some(('Z', p, _)) if p == ppid))
        .collect()
}

/// The real uid of a process (from /proc/PID/status).
pub fn uid_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) by pid; tests only signal processes of their own pods.
    unsafe { libc::kill(pid as i32, sig) };
}

fn stored_pids(state: &Value) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    collect_numbers(state, "pid", &mut out);
    out
}

fn collect_strings(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    if let Some(s) = v.as_str() {
                        out.insert(s.to_string());
                    }
                }
                collect_strings(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, key, out)),
        _ => {}
    }
}

fn collect_numbers(v: &Value, key: &str, out: &mut BTreeSet<u32>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    if let Some(n) = v.as_u64() {
                        out.insert(n as u32);
                    }
                }
                collect_numbers(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_numbers(v, key, out)),
        _ => {}
    }
}

// ---- output -----------------------------------------------------------------

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The row of a `table` whose first column is `name`.
pub fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a Vec<String> {
    rows.iter()
        .find(|r| r[0] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

/// A table printed by `get`: header words and rows split on runs of 2+
/// spaces (cells such as "1 (3s ago)" hold single spaces).
pub fn table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split(lines.next().unwrap_or(""));
    (header, lines.map(split).collect())
}

/// The values of `Key:` lines of a `describe` page, trimmed, in order.
pub fn fields(page: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    page.lines()
        .map(str::trim_start)
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .collect()
}

// ---- unit texts ---------------------------------------------------------------

/// TOML for an argv (a JSON array of strings is a valid TOML array).
pub fn argv(command: &[&str]) -> String {
    serde_json::to_string(command).unwrap()
}

/// A Pod unit with one process `main`; `extra` lines go into [spec].
pub fn pod_unit(name: &str, restart_policy: &str, command: &[&str], extra: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"{name}\"\nlabels = {{ app = \"{name}\" }}\n[spec]\n\
         restart_policy = \"{restart_policy}\"\ntermination_grace_period = \"2s\"\n{extra}\n\
         [[spec.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(command)
    )
}

/// A `notify = true` process: python speaks the sd_notify datagram
/// protocol (as libsystemd would), sending READY=1 and STATUS=serving
/// once the file `go` exists, then WATCHDOG=1 every 100ms until `hang`
/// exists.
const NOTIFIER: &str = "import os, socket, time\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
addr = os.environ['NOTIFY_SOCKET']\n\
d = os.environ['FILES']\n\
while not os.path.exists(d + '/go'):\n    time.sleep(0.05)\n\
s.sendto(b'READY=1\\nSTATUS=serving', addr)\n\
while not os.path.exists(d + '/hang'):\n    s.sendto(b'WATCHDOG=1', addr)\n    time.sleep(0.1)\n\
time.sleep(1000)\n";

/// Pod `svc`: one NOTIFIER process (files `go` and `hang` in the test's
/// files folder) with a 600ms watchdog and a 1s grace period.
pub fn notifier_pod_unit() -> String {
    format!(
        "kind = \"Pod\"\nname = \"svc\"\n[spec]\ntermination_grace_period = \"1s\"\n\
         [[spec.processes]]\nname = \"main\"\nnotify = true\nwatchdog = \"600ms\"\n\
         env = {{ FILES = \"@DIR@/files\" }}\ncommand = [\"python3\", \"-c\", {NOTIFIER:?}]\n"
    )
}

/// A ReplicaSet `name` selecting `app=<app>`, its pods sleeping.
pub fn rs_unit(name: &str, app: &str, replicas: u32) -> String {
    format!(
        "kind = \"ReplicaSet\"\nname = \"{name}\"\nlabels = {{ app = \"{app}\" }}\n[spec]\n\
         replicas = {replicas}\n[spec.selector]\nmatch_labels = {{ app = \"{app}\" }}\n\
         [spec.template]\nlabels = {{ app = \"{app}\" }}\ntermination_grace_period = \"2s\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"1000\"]\n"
    )
}
