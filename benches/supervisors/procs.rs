//! Processes: the monotonic clock, /proc readings (tree, memory, CPU,
//! context switches), and the cleanup that kills by pid what the
//! benchmark started.
//!
//! The benchmark makes itself a child subreaper, so every process a
//! supervisor starts (daemonised ones too, such as PM2's God daemon) stays
//! in its process tree: "the supervisor's processes" are the benchmark's
//! descendants that are not copies of the workload, and cleanup is
//! "SIGSTOP then SIGKILL every descendant, by pid, until none is left".

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in nanoseconds: the clock the workload records with.
pub fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Collects every exited child (ours, and orphans that reached us).
pub fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

pub fn signal(pid: i32, sig: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) on one pid we started (never 0, -1 or 1).
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Ctrl-C / SIGTERM on the benchmark: long waits notice and unwind, so the
/// guards clean up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn catch_interrupts() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted");
    }
}

/// Sleeps, waking early to notice an interrupt.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        check_interrupted();
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(200)));
    }
}

/// One line of /proc/PID/stat, split after the command name.
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub utime: u64,
    pub stime: u64,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): index = field - 3.
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

pub fn exe(pid: i32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Every live (non-zombie) descendant of this process. The walk goes
/// through zombies: a multi-threaded supervisor killed by SIGKILL can show
/// as a zombie leader while its children are not yet reparented to us.
pub fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut children: BTreeMap<i32, Vec<(i32, bool)>> = BTreeMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return vec![];
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid) {
            let live = s.state != 'Z' && s.state != 'X';
            children.entry(s.ppid).or_default().push((pid, live));
        }
    }
    let mut out = vec![];
    let mut todo = vec![me];
    while let Some(p) = todo.pop() {
        if let Some(kids) = children.get(&p) {
            for &(k, live) in kids {
                if live {
                    out.push(k);
                }
                todo.push(k);
            }
        }
    }
    out
}

/// The supervisor's own processes: descendants that are not the workload.
pub fn supervisor_processes(workload: &Path) -> Vec<i32> {
    descendants()
        .into_iter()
        .filter(|&p| exe(p).as_deref() != Some(workload))
        .collect()
}

/// Rss and Pss in KiB from /proc/PID/smaps_rollup.
pub fn memory_kib(pid: i32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("Rss:")?, field("Pss:")?))
}

/// Per thread: name and voluntary + nonvoluntary context switches.
pub fn thread_switches(pid: i32) -> Vec<(i32, String, u64)> {
    let mut out = vec![];
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let mut name = String::new();
        let mut switches = 0;
        for l in text.lines() {
            if let Some(v) = l.strip_prefix("Name:") {
                name = v.trim().to_string();
            } else if l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
            {
                switches += l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        out.push((tid, name, switches));
    }
    out
}

/// Kills every descendant of the benchmark by pid (SIGSTOP first so no
/// supervisor restarts anything while its copies die, then SIGKILL), and
/// reaps, until none is left. Returns how many were killed.
pub fn kill_all_descendants() -> usize {
    let mut killed = BTreeSet::new();
    for _ in 0..100 {
        reap();
        let pids = descendants();
        if pids.is_empty() {
            return killed.len();
        }
        for &p in &pids {
            signal(p, libc::SIGSTOP);
        }
        for &p in &pids {
            signal(p, libc::SIGKILL);
            killed.insert(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reap();
    killed.len()
}

/// Machine-wide CPU: (busy, total) jiffies from /proc/stat.
pub fn cpu_jiffies() -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = text.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
