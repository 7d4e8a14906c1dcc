//! Tests of `LinuxRuntime` and `ExitWatch` with REAL processes (these tests
//! assume they run as root, as the daemon does).
//!
//! Hygiene, and why:
//! - `reap()` is `waitpid(-1)`: in the shared test binary it would steal
//!   the children of tests running in parallel threads (ours, and any
//!   other module's `std::process` children). So tests here never call it
//!   in the shared process: they reap their own pids with `waitpid(pid)`.
//!   The tests that must exercise `reap()` or the subreaper bit (which is
//!   per process and would make every orphan of every test ours) re-run
//!   themselves in a fresh copy of the test binary ([`isolated`]), where
//!   every child is theirs. That replaces a global test mutex, which could
//!   not protect against other modules anyway.
//! - Every spawned process carries a marker variable unique to its test;
//!   the [`Sandbox`] guard SIGKILLs every marked process and every group it
//!   started when dropped, also when an assertion fails. Nothing is killed
//!   by name, and a group is never signalled after its leader was reaped
//!   (pid_max here is 32768: pids are reused quickly).
//! - Waiting is on conditions with a 10 s deadline, never a fixed sleep.
//! - Cgroups: a sandbox made [`Sandbox::with_cgroups`] has an instance
//!   root of its own (`drover-test-PID-N`); its Drop kills every pod
//!   cgroup it made, waits for them to empty and removes them and the
//!   root. Nothing outside that root is touched (the exhaustion test's
//!   own pids cgroup is made and removed by that test).

use super::cgroup::Controller;
use super::linux::decode_status;
use super::procfs;
use super::*;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);
const MARK: &str = "DROVER_TEST_MARK";
const ISOLATED: &str = "DROVER_RUNTIME_TEST_ISOLATED";

/// Polls `f` until it returns Some, failing after [`DEADLINE`].
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `pid`'s line for v1 hierarchy `controller` in /proc/PID/cgroup
/// ("4:memory:/a/b"), failing the test if it has none.
fn v1_cgroup_line(pid: i32, controller: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find(|l| l.split(':').nth(1) == Some(controller))
        .unwrap_or_else(|| panic!("no {controller} line: {text}"))
        .to_string()
}

/// A test's processes, log dir and runtime. Drop kills everything it
/// started (see the module docs).
struct Sandbox {
    rt: LinuxRuntime,
    dir: tempfile::TempDir,
    marker: String,
    /// Leaders spawned and not yet reaped.
    unreaped: Vec<i32>,
    /// Pod cgroups made, removed by Drop.
    pods: Vec<PodCgroup>,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox::with_runtime(LinuxRuntime::new())
    }

    fn with_runtime(rt: LinuxRuntime) -> Sandbox {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Sandbox {
            rt,
            dir: tempfile::tempdir().expect("temp dir"),
            marker: format!(
                "{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            unreaped: Vec::new(),
            pods: Vec::new(),
        }
    }

    /// A sandbox whose runtime puts pods in cgroups of `version` (1 or
    /// 2; 0: whichever the daemon would choose here), under an instance
    /// root of its own.
    fn with_cgroups(version: u8) -> Sandbox {
        let mut sb = Sandbox::new();
        let instance = format!("test-{}", sb.marker);
        let cgroups = match version {
            0 => {
                let c = Cgroups::detect(&instance);
                if c.is_available() {
                    Ok(c)
                } else {
                    Err(c.describe())
                }
            }
            1 => Cgroups::detect_v1(&instance),
            _ => Cgroups::detect_v2(&instance),
        }
        .unwrap_or_else(|e| panic!("cgroup v{version} here: {e}"));
        sb.rt = LinuxRuntime::with_cgroups(cgroups);
        sb
    }

    /// Makes a pod cgroup (removed when the sandbox drops).
    fn pod(&mut self, name: &str) -> PodCgroup {
        let pod = self
            .rt
            .create_pod_cgroup(&format!("{name}-{}", self.marker))
            .expect("pod cgroup");
        self.pods.push(pod.clone());
        pod
    }

    /// A pod cgroup handle with nothing made yet (what the agent holds
    /// before a pod's first spawn; removed when the sandbox drops).
    fn unmade_pod(&mut self, name: &str) -> PodCgroup {
        let pod = self
            .rt
            .cgroups()
            .pod(&format!("{name}-{}", self.marker))
            .expect("pod cgroup handle");
        self.pods.push(pod.clone());
        pod
    }

    /// The directory of `cg` in the hierarchy holding `controller`.
    fn cgroup_file(&self, controller: Controller, cg: &ProcessCgroup, file: &str) -> PathBuf {
        self.rt
            .cgroups()
            .dir_of(controller, cg)
            .unwrap_or_else(|| panic!("no {} here", controller.name()))
            .join(file)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    /// A request with a plain PATH, the marker, cwd "/" and the log.
    fn req(&self, argv: &[&str]) -> SpawnRequest {
        SpawnRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                (MARK.to_string(), self.marker.clone()),
            ],
            working_dir: Some(PathBuf::from("/")),
            log_path: self.log_path(),
            ..Default::default()
        }
    }

    fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        let spawned = self.rt.spawn(req)?;
        self.unreaped.push(spawned.pid);
        Ok(spawned)
    }

    fn start(&mut self, argv: &[&str]) -> Spawned {
        let req = self.req(argv);
        self.spawn(&req)
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
    }

    /// Reaps our child `pid` with waitpid(pid): never steals other tests'
    /// children.
    fn wait_exit(&mut self, pid: i32) -> ExitReason {
        let reason = wait_until(&format!("pid {pid} to exit"), || {
            let mut status = 0;
            // SAFETY: valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            assert!(r >= 0, "waitpid({pid}): {}", io::Error::last_os_error());
            (r == pid).then(|| decode_status(status).expect("exit status"))
        });
        self.reaped(pid);
        reason
    }

    /// Calls `reap()` (isolated tests only) until every pid in `pids` has
    /// been collected; returns everything collected.
    fn reap_until(&mut self, pids: &[i32]) -> BTreeMap<i32, ExitReason> {
        assert!(isolated(), "reap() is only called in an isolated process");
        let mut got = BTreeMap::new();
        wait_until(&format!("reap() to return {pids:?}"), || {
            for (pid, reason) in self.rt.reap() {
                self.reaped(pid);
                got.insert(pid, reason);
            }
            pids.iter().all(|p| got.contains_key(p)).then_some(())
        });
        got
    }

    fn reaped(&mut self, pid: i32) {
        self.unreaped.retain(|p| *p != pid);
    }

    fn marked(&self) -> Vec<i32> {
        let mine = std::collections::HashSet::from([self.marker.clone()]);
        self.rt
            .marked(MARK, &mine)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str) -> String {
        wait_until(&format!("{needle:?} in the log"), || {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pod in &self.pods {
            let _ = self.rt.kill_cgroup(pod);
        }
        for pid in self.marked() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.unreaped {
            // Unreaped, so the pid (and the pgid it leads) is still ours.
            // SAFETY: as above; status pointer valid.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if self.rt.cgroups().is_available() {
            // Best effort, without panicking in a drop: the kill above
            // takes effect within milliseconds.
            let deadline = Instant::now() + DEADLINE;
            for pod in &self.pods {
                while !self.rt.cgroup_is_empty(pod).unwrap_or(true) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if let Err(e) = self.rt.remove_pod_cgroup(pod) {
                    eprintln!("cleanup: {e}");
                }
            }
            if let Err(e) = self.rt.cgroups().remove_root() {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn isolated() -> bool {
    std::env::var_os(ISOLATED).is_some()
}

/// Runs the `#[ignore]`d test `name` of module `module` (pass
/// `module_path!()`) alone in a new process of this test binary (see the
/// module docs) and asserts it passed.
fn run_isolated(module: &str, name: &str) {
    run_isolated_with(module, name, &[]);
}

/// `run_isolated` with extra environment for the isolated process.
fn run_isolated_with(module: &str, name: &str, env: &[(&str, &str)]) {
    // Test names omit the crate: "runtime::tests::x::name".
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    let full = format!("{module}::{name}");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &full,
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ISOLATED, "1")
        .envs(env.iter().copied())
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "isolated {full} failed:\n{stdout}\n{stderr}"
    );
}

fn spawn_err(sb: &mut Sandbox, req: &SpawnRequest) -> SpawnError {
    match sb.spawn(req) {
        Ok(s) => panic!("spawn {:?} should fail, got pid {}", req.argv, s.pid),
        Err(e) => e,
    }
}

fn alive(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The SigIgn/SigBlk/... mask of `pid` from /proc/PID/status.
fn sig_mask(pid: i32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .expect("field present");
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

mod cgroups;
mod exhaustion;
mod hardening;
mod identity;
mod kill_and_reap;
mod spawn;
mod tree_stop;
