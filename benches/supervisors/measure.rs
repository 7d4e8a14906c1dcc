//! One run of one supervisor at one N: start and time it, then (on the
//! first run only) the idle, crash and `get pods` figures, then stop and
//! check that nothing is left.

use crate::adapters::{Adapter, RunSpec};
use crate::procs::{self, mono_ns};
use crate::workload::Records;
use crate::{Env, Options};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// From the launch until the last of the N copies recorded its start.
    pub all_ms: f64,
    /// ... until the first copy did.
    pub first_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Idle {
    pub n: usize,
    pub seconds: f64,
    pub processes: usize,
    pub threads: usize,
    /// utime + stime of the supervisor's processes over the window.
    pub cpu_ms: f64,
    /// voluntary + nonvoluntary context switches, summed over threads.
    pub wakeups: u64,
    /// The threads that woke, most first (name, pid/tid, wakeups).
    pub busiest: Vec<(String, String, u64)>,
    /// Copies recorded during the window (should be 0).
    pub copies_started: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Crash {
    pub n: usize,
    pub gap_ms: u64,
    /// Kill to the replacement's recorded start, one per distinct copy.
    pub samples_ms: Vec<f64>,
    pub timeouts: usize,
    pub stopped_early: Option<String>,
    /// CPU (utime+stime) the supervisor's processes spent during the
    /// kills, per kill: the work one crash costs it.
    pub cpu_ms_per_kill: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GetPods {
    pub n: usize,
    /// `drover get pods -o json` (the CLI, its stdout read to the end).
    pub cli_ms: Vec<f64>,
    /// The daemon's answer alone: GET /v1/pods on the socket.
    pub api_ms: Vec<f64>,
    pub json_bytes: usize,
    pub items: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub startup: Option<Startup>,
    pub memory: Option<Memory>,
    pub idle: Option<Idle>,
    pub crash: Option<Crash>,
    pub get_pods: Option<GetPods>,
    pub errors: Vec<String>,
    pub left_behind: usize,
    /// The run's folder: removed only when the whole benchmark ends, so
    /// that deleting thousands of files does not slow the next runs' file
    /// creation (ext4 without a journal skips recently deleted inodes).
    #[serde(skip)]
    pub dir: Option<tempfile::TempDir>,
}

/// Which extra figures this run takes.
pub struct Extras {
    pub idle: bool,
    pub crash: bool,
    pub get_pods: bool,
}

/// Kills every process of the run when dropped (also on panic).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        procs::kill_all_descendants();
    }
}

pub fn one(
    env: &Env,
    opts: &Options,
    adapter: &mut dyn Adapter,
    n: usize,
    extras: &Extras,
) -> Outcome {
    let mut out = Outcome::default();
    let tmp = match tempfile::Builder::new()
        .prefix(&format!("drover-bench-{}-{n}-", adapter.name()))
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(format!("temp dir: {e}"));
            return out;
        }
    };
    let spec = RunSpec {
        dir: tmp.path().to_path_buf(),
        n,
        workload: env.workload.clone(),
        record: tmp.path().join("records"),
    };
    if let Err(e) = adapter.prepare(env, &spec) {
        out.errors.push(format!("prepare: {e}"));
        return out;
    }
    let mut records = match Records::create(&spec.record) {
        Ok(r) => r,
        Err(e) => {
            out.errors.push(format!("record file: {e}"));
            return out;
        }
    };

    let guard = Cleanup;
    let t0 = mono_ns();
    if let Err(e) = adapter.start(env, &spec) {
        out.errors.push(format!("start: {e}"));
        return out;
    }
    let timeout = opts.startup_timeout(n);
    let started = records.wait_until(
        Instant::now() + timeout,
        false,
        Duration::from_millis(10),
        |e| e.len() >= n,
    );
    if !started {
        out.errors.push(format!(
            "only {} of {n} copies started within {:?}",
            records.entries.len(),
            timeout
        ));
    } else {
        let first = &records.entries[..n];
        let last = first.iter().map(|e| e.1).max().unwrap_or(t0);
        let earliest = first.iter().map(|e| e.1).min().unwrap_or(t0);
        out.startup = Some(Startup {
            all_ms: (last - t0) as f64 / 1e6,
            first_ms: (earliest - t0) as f64 / 1e6,
        });

        procs::sleep(opts.settle);
        out.memory = Some(memory(adapter, &spec));
        if extras.idle {
            out.idle = Some(idle(adapter, &spec, &mut records, opts.idle, n));
        }
        if extras.crash {
            let pids = adapter.supervisor_pids(&spec);
            let before = cpu_ticks(&pids);
            let mut c = crash(env, opts, &mut records, n);
            let kills = (c.samples_ms.len() + c.timeouts).max(1);
            c.cpu_ms_per_kill = cpu_ticks(&pids).saturating_sub(before) as f64 * 1000.0
                / drover::runtime::procfs::clock_ticks_per_second()
                / kills as f64;
            out.crash = Some(c);
        }
        if extras.get_pods {
            match get_pods(env, adapter, n, opts.get_pods_reps) {
                Ok(g) => out.get_pods = Some(g),
                Err(e) => out.errors.push(format!("get pods: {e}")),
            }
        }
    }

    adapter.stop();
    drop(guard);
    // Nothing of the workload may remain: every recorded pid is gone.
    records.refresh();
    let left = records.live_copies(&env.workload);
    if !left.is_empty() {
        out.errors.push(format!(
            "{} copies left running after stop: {:?}",
            left.len(),
            &left[..left.len().min(10)]
        ));
        for p in &left {
            procs::signal(*p, libc::SIGKILL);
        }
    }
    out.left_behind = left.len() + procs::descendants().len();
    procs::reap();
    out.dir = Some(tmp);
    out
}

fn cpu_ticks(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|&p| procs::stat(p))
        .map(|s| s.utime + s.stime)
        .sum()
}

fn memory(adapter: &dyn Adapter, spec: &RunSpec) -> Memory {
    let pids = adapter.supervisor_pids(spec);
    let (mut rss, mut pss) = (0, 0);
    for &p in &pids {
        if let Some((r, s)) = procs::memory_kib(p) {
            rss += r;
            pss += s;
        }
    }
    Memory {
        processes: pids.len(),
        rss_kib: rss,
        pss_kib: pss,
    }
}

struct Sample {
    ticks: BTreeMap<i32, u64>,
    threads: BTreeMap<(i32, i32), (String, u64)>,
}

fn sample(pids: &[i32]) -> Sample {
    let mut s = Sample {
        ticks: BTreeMap::new(),
        threads: BTreeMap::new(),
    };
    for &p in pids {
        if let Some(st) = procs::stat(p) {
            s.ticks.insert(p, st.utime + st.stime);
        }
        for (tid, name, sw) in procs::thread_switches(p) {
            s.threads.insert((p, tid), (name, sw));
        }
    }
    s
}

fn idle(
    adapter: &dyn Adapter,
    spec: &RunSpec,
    records: &mut Records,
    window: Duration,
    n: usize,
) -> Idle {
    let pids = adapter.supervisor_pids(spec);
    records.refresh();
    let before_records = records.entries.len();
    let a = sample(&pids);
    let t = Instant::now();
    procs::sleep(window);
    let b = sample(&pids);
    let seconds = t.elapsed().as_secs_f64();
    records.refresh();
    let ticks: u64 = b
        .ticks
        .iter()
        .map(|(p, t)| t.saturating_sub(a.ticks.get(p).copied().unwrap_or(*t)))
        .sum();
    let mut busiest = vec![];
    let mut wakeups = 0;
    for (key, (name, sw)) in &b.threads {
        let before = a.threads.get(key).map(|x| x.1).unwrap_or(0);
        let d = sw.saturating_sub(before);
        wakeups += d;
        if d > 0 {
            busiest.push((name.clone(), format!("{}/{}", key.0, key.1), d));
        }
    }
    busiest.sort_by_key(|b| std::cmp::Reverse(b.2));
    busiest.truncate(8);
    Idle {
        n,
        seconds,
        processes: pids.len(),
        threads: b.threads.len(),
        cpu_ms: ticks as f64 * 1000.0 / drover::runtime::procfs::clock_ticks_per_second(),
        wakeups,
        busiest,
        copies_started: records.entries.len() - before_records,
    }
}

fn crash(env: &Env, opts: &Options, records: &mut Records, n: usize) -> Crash {
    let kills = opts.kills.min(n);
    let initial: Vec<i32> = records.entries[..n].iter().map(|e| e.0).collect();
    let mut known: HashSet<i32> = records.entries.iter().map(|e| e.0).collect();
    let mut c = Crash {
        n,
        gap_ms: opts.kill_gap.as_millis() as u64,
        samples_ms: vec![],
        timeouts: 0,
        stopped_early: None,
        cpu_ms_per_kill: 0.0,
    };
    let budget = Instant::now() + opts.crash_budget;
    for i in 0..kills {
        if Instant::now() > budget {
            c.stopped_early = Some(format!(
                "time budget of {:?} spent after {} kills",
                opts.crash_budget, i
            ));
            break;
        }
        // Spread over the copies: each kill hits a different one.
        let target = initial[i * n / kills];
        if !procs::alive(target) || procs::exe(target).as_deref() != Some(env.workload.as_path()) {
            c.stopped_early = Some(format!("copy {target} was not running before its kill"));
            break;
        }
        records.refresh();
        let seen = records.entries.len();
        let t_kill = mono_ns();
        procs::signal(target, libc::SIGKILL);
        let mut replacement = None;
        let ok = records.wait_until(
            Instant::now() + opts.crash_timeout,
            true,
            Duration::ZERO,
            |e| {
                replacement = e[seen..].iter().find(|x| !known.contains(&x.0)).copied();
                replacement.is_some()
            },
        );
        match replacement {
            Some((pid, ts)) if ok => {
                known.insert(pid);
                c.samples_ms.push((ts - t_kill) as f64 / 1e6);
            }
            _ => {
                c.timeouts += 1;
                if c.timeouts >= 3 {
                    c.stopped_early = Some(format!(
                        "{} kills got no replacement within {:?}",
                        c.timeouts, opts.crash_timeout
                    ));
                    break;
                }
            }
        }
        procs::sleep(opts.kill_gap);
    }
    c
}

fn get_pods(env: &Env, adapter: &dyn Adapter, n: usize, reps: usize) -> Result<GetPods, String> {
    let socket = adapter.socket().ok_or("no socket")?;
    let mut g = GetPods {
        n,
        cli_ms: vec![],
        api_ms: vec![],
        json_bytes: 0,
        items: 0,
    };
    for i in 0..reps {
        procs::check_interrupted();
        let t = Instant::now();
        let out = std::process::Command::new(&env.drover)
            .arg("--socket")
            .arg(&socket)
            .args(["get", "pods", "-o", "json"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            return Err(format!(
                "exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if i == 0 {
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON: {e}"))?;
            g.items = v["items"].as_array().map_or(0, Vec::len);
            g.json_bytes = out.stdout.len();
            if g.items != n {
                return Err(format!("{} items, expected {n}", g.items));
            }
        }
        g.cli_ms.push(ms);
    }
    for _ in 0..reps {
        let t = Instant::now();
        let body = http_get(&socket, "/v1/pods")?;
        g.api_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if body.is_empty() {
            return Err("empty API answer".into());
        }
    }
    Ok(g)
}

/// A bare HTTP/1.1 GET on the control socket, read to the end.
fn http_get(socket: &std::path::Path, path: &str) -> Result<Vec<u8>, String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = vec![];
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "API answered {}",
            String::from_utf8_lossy(&buf[..buf.len().min(40)])
        ));
    }
    Ok(buf)
}

/// The floor: the benchmark itself starts the N copies (std's Command,
/// which uses posix_spawn here: no supervisor work at all) and, on the
/// first run, starts single copies one at a time, timing each from the
/// spawn call to the copy's recorded start (what a crash-to-replacement
/// would cost a supervisor that had nothing to do but spawn). It tells
/// how fast this machine starts the workload at the time of the run.
pub fn baseline(env: &Env, opts: &Options, n: usize, restarts: usize) -> Outcome {
    let mut out = Outcome::default();
    let tmp = match tempfile::Builder::new()
        .prefix(&format!("drover-bench-baseline-{n}-"))
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(format!("temp dir: {e}"));
            return out;
        }
    };
    let record = tmp.path().join("records");
    let mut records = match Records::create(&record) {
        Ok(r) => r,
        Err(e) => {
            out.errors.push(format!("record file: {e}"));
            return out;
        }
    };
    let guard = Cleanup;
    let spawn = |record: &std::path::Path| {
        std::process::Command::new(&env.workload)
            .arg(record)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(|c| c.id())
    };
    let t0 = mono_ns();
    for _ in 0..n {
        if let Err(e) = spawn(&record) {
            out.errors.push(format!("spawn: {e}"));
            return out;
        }
    }
    if records.wait_until(
        Instant::now() + opts.startup_timeout(n),
        false,
        Duration::from_millis(10),
        |e| e.len() >= n,
    ) {
        let first = &records.entries[..n];
        out.startup = Some(Startup {
            all_ms: (first.iter().map(|e| e.1).max().unwrap_or(t0) - t0) as f64 / 1e6,
            first_ms: (first.iter().map(|e| e.1).min().unwrap_or(t0) - t0) as f64 / 1e6,
        });
    } else {
        out.errors.push(format!(
            "only {} of {n} copies started",
            records.entries.len()
        ));
    }
    procs::kill_all_descendants();
    if restarts > 0 {
        let mut c = Crash {
            n: 1,
            gap_ms: opts.kill_gap.as_millis() as u64,
            samples_ms: vec![],
            timeouts: 0,
            stopped_early: None,
            cpu_ms_per_kill: 0.0,
        };
        for _ in 0..restarts {
            records.refresh();
            let seen = records.entries.len();
            let t = mono_ns();
            if let Err(e) = spawn(&record) {
                out.errors.push(format!("spawn: {e}"));
                break;
            }
            if records.wait_until(
                Instant::now() + opts.crash_timeout,
                true,
                Duration::ZERO,
                |e| e.len() > seen,
            ) {
                c.samples_ms
                    .push((records.entries[seen].1 - t) as f64 / 1e6);
            } else {
                c.timeouts += 1;
            }
            procs::kill_all_descendants();
            procs::sleep(opts.kill_gap);
        }
        out.crash = Some(c);
    }
    drop(guard);
    out.dir = Some(tmp);
    out
}
