//! Jobs and CronJobs, measured on a real `drover daemon` (release build):
//!
//! 1. A Job of 1000 completions of `true` with parallelism 50: the time
//!    from `drover apply` until the Job is Complete (goal: under 3 s), and
//!    the daemon's own start-to-completion time.
//! 2. Cron firing lateness: a CronJob on `* * * * * *` (every second);
//!    for each run, how long after its scheduled second the Job was
//!    created, and when its process (`date +%s%N`) ran (goal: median
//!    under 10 ms, p99 under 50 ms).
//!
//! Run: `cargo bench --bench jobs` (`-- --cron-runs N --job-rounds N` to
//! change the sample sizes). Everything lives in a temp dir; the daemon
//! and every process it started are killed at the end.

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/stats.rs"]
mod stats;
use stats::{arg_or, summary};

const DROVER: &str = env!("CARGO_BIN_EXE_drover");

struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("drover-bench-jobs-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("units")).unwrap();
        std::fs::write(dir.path().join("drover.toml"), "").unwrap();
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
            .arg("bench")
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
        let d = Daemon { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while d.get("/v1/version").is_none() {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    /// User + system CPU time of the daemon process so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 / hz
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn get(&self, path: &str) -> Option<Value> {
        serde_json::from_str(&self.get_text(path)?).ok()
    }

    /// The body of a 200 answer to GET `path`.
    fn get_text(&self, path: &str) -> Option<String> {
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
        head.contains(" 200 ").then(|| body.to_string())
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

    fn delete(&self, kind: &str, name: &str) {
        let _ = Command::new(DROVER)
            .arg("--socket")
            .arg(self.socket())
            .args(["delete", kind, name])
            .output();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: killpg on the group our child leads; its pods run in
        // their own groups and are killed by pid below.
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        kill_pods_of(self.dir.path());
    }
}

/// Kills, by pid, every process whose working directory is in `dir` (the
/// pods inherit the daemon's).
fn kill_pods_of(dir: &Path) {
    for _ in 0..50 {
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

fn rfc3339_us(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis() * 1000 + i64::from(t.timestamp_subsec_micros() % 1000))
}

/// One Job of `completions` x `true`, `parallelism` at a time: wall time
/// from apply to Complete, and the daemon's start-to-completion time.
/// Returns (apply -> Complete, start_time -> completion_time, the
/// daemon's CPU seconds meanwhile).
fn job_round(d: &Daemon, round: usize, completions: u32, parallelism: u32) -> (f64, f64, f64) {
    let name = format!("bulk{round}");
    let unit = format!(
        "kind = \"Job\"\nname = \"{name}\"\n[spec]\ncompletions = {completions}\n\
         parallelism = {parallelism}\n[spec.template]\nrestart_policy = \"Never\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = [\"true\"]\n"
    );
    let cpu0 = d.cpu_seconds();
    let t0 = Instant::now();
    d.apply(&format!("{name}.toml"), &unit);
    let deadline = t0 + Duration::from_secs(120);
    let job = loop {
        if let Some(j) = d.get(&format!("/v1/jobs/{name}")) {
            let done = j["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Complete"));
            if done {
                break j;
            }
            let failed = j["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Failed"));
            assert!(!failed, "the job failed: {j}");
        }
        assert!(
            Instant::now() < deadline,
            "the job did not complete in 120s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = t0.elapsed().as_secs_f64();
    let cpu = d.cpu_seconds() - cpu0;
    let start = rfc3339_us(&job["status"]["start_time"]).unwrap_or(0);
    let end = rfc3339_us(&job["status"]["completion_time"]).unwrap_or(0);
    assert_eq!(job["status"]["succeeded"], completions);
    d.delete("job", &name);
    // The next round starts once the 1000 pods are gone.
    let deadline = Instant::now() + Duration::from_secs(120);
    while d
        .get("/v1/pods")
        .and_then(|v| v["items"].as_array().map(|a| !a.is_empty()))
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "pods not cleaned up");
        std::thread::sleep(Duration::from_millis(20));
    }
    (wall, (end - start) as f64 / 1e6, cpu)
}

/// Lateness of `runs` runs of an every-second CronJob: Job creation and
/// process start, in ms after the scheduled second.
fn cron_lateness(d: &Daemon, runs: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let unit = "kind = \"CronJob\"\nname = \"tick\"\n[spec]\nschedule = \"* * * * * *\"\n\
        successful_jobs_history_limit = 1000\n[spec.job_template.spec.template]\n\
        restart_policy = \"Never\"\n[[spec.job_template.spec.template.processes]]\n\
        name = \"main\"\ncommand = [\"date\", \"+%s%N\"]\n";
    d.apply("tick.toml", unit);
    let deadline = Instant::now() + Duration::from_secs(runs as u64 + 15);
    let mut created = std::collections::BTreeMap::new();
    let mut started = std::collections::BTreeMap::new();
    while started.len() < runs {
        if Instant::now() > deadline {
            if created.is_empty() {
                eprintln!(
                    "  no CronJob run in {}s: the daemon loop does not wake up for \
                     schedules (reconcile::next_wakeup not wired)",
                    runs + 15
                );
                return None;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        let Some(jobs) = d.get("/v1/jobs") else {
            continue;
        };
        for j in jobs["items"].as_array().into_iter().flatten() {
            let name = j["metadata"]["name"].as_str().unwrap_or("");
            let Some(unix) = name
                .strip_prefix("tick-")
                .and_then(|u| u.parse::<i64>().ok())
            else {
                continue;
            };
            if let Some(c) = rfc3339_us(&j["metadata"]["creation_timestamp"]) {
                created.insert(unix, (c - unix * 1_000_000) as f64 / 1000.0);
            }
        }
        let Some(pods) = d.get("/v1/pods") else {
            continue;
        };
        for p in pods["items"].as_array().into_iter().flatten() {
            let Some(unix) = p["metadata"]["labels"]["job-name"]
                .as_str()
                .and_then(|n| n.strip_prefix("tick-"))
                .and_then(|u| u.parse::<i64>().ok())
            else {
                continue;
            };
            if started.contains_key(&unix) || p["status"]["phase"] != "Succeeded" {
                continue;
            }
            // The process printed the time it ran at (`date +%s%N`).
            let name = p["metadata"]["name"].as_str().unwrap_or("");
            let Some(ns) = d
                .get_text(&format!("/v1/pods/{name}/logs"))
                .and_then(|t| t.trim().parse::<i128>().ok())
            else {
                continue;
            };
            started.insert(unix, (ns - i128::from(unix) * 1_000_000_000) as f64 / 1e6);
        }
    }
    d.delete("cronjob", "tick");
    // The first run may have been scheduled before the CronJob existed
    // in full; keep the complete samples.
    Some((
        created.into_values().collect(),
        started.into_values().collect(),
    ))
}

fn main() {
    let rounds = arg_or("--job-rounds", 3);
    let cron_runs = arg_or("--cron-runs", 60);
    println!("drover jobs benchmark ({} on {} cores)", DROVER, num_cpus());
    let d = Daemon::start();

    println!("Job: 1000 completions of `true`, parallelism 50 (goal: < 3 s)");
    let mut walls = vec![];
    let mut inside = vec![];
    for r in 0..rounds {
        let (wall, daemon, cpu) = job_round(&d, r, 1000, 50);
        println!(
            "  round {r}: {wall:.2} s from apply to Complete ({daemon:.2} s start to \
             completion in the daemon; daemon CPU {cpu:.2} s)"
        );
        walls.push(wall);
        inside.push(daemon);
    }
    summary("apply -> Complete", walls, " s", 1);
    summary("start_time -> completion_time", inside, " s", 1);

    println!(
        "CronJob `* * * * * *`: lateness after the scheduled second, {cron_runs} runs \
         (goal: median < 10 ms, p99 < 50 ms)"
    );
    if let Some((created, started)) = cron_lateness(&d, cron_runs) {
        summary("job created", created, " ms", 1);
        summary("process ran (date +%s%N)", started, " ms", 1);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
