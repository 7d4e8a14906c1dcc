//! Reading `/proc`: process identity (start time + boot id), state, owner
//! and usage, and the environment scan that finds a pod's descendants by
//! their marker variable.
//!
//! Read-only: nothing here signals or waits. Every reader tolerates a
//! process vanishing between `readdir` and `open` (that is the normal case
//! on a busy host, not an error).

use crate::api::ProcessIdentity;
use std::collections::HashSet;
use std::fs;
use std::io::Read;

/// The fields of `/proc/PID/stat` the runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z (zombie: exited, not yet reaped), T, X, ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 5: process group id.
    pub pgrp: i32,
    /// Field 6: session id.
    pub session: i32,
    /// Fields 14 and 15: CPU time in user and kernel mode, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Fields 16 and 17: the same, of its children that it has waited
    /// for.
    pub cutime: u64,
    pub cstime: u64,
    /// Field 22: start time in clock ticks since boot. Together with the
    /// boot id it names one process for the lifetime of the machine, which
    /// a pid alone does not (pids are reused).
    pub start_ticks: u64,
    /// Field 24: resident set size, pages.
    pub rss_pages: u64,
}

impl ProcStat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Parses the text of `/proc/PID/stat`. Field 2 (`comm`) is in parentheses
/// and may itself contain spaces and `)`, so the fixed fields are read after
/// the LAST `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 of stat(5), so field N is fields[N - 3].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
        cutime: fields.get(13)?.parse().ok()?,
        cstime: fields.get(14)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
        rss_pages: fields.get(21)?.parse().ok()?,
    })
}

/// `/proc/PID/stat` of a process, None if it does not exist (zombies do
/// exist: check [`ProcStat::is_zombie`]).
pub fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    // One read into a buffer on the stack: read_to_string would also stat
    // the file (procfs reports size 0) and allocate; this runs once per
    // process started. A stat line is well under 1 KiB (comm is at most
    // 15 bytes; 52 numbers follow).
    let mut buf = [0u8; 1024];
    let n = fs::File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut f| f.read(&mut buf))
        .ok()?;
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// What `pids` use together: resident memory (summed, so pages they
/// share count once per process, as `ps` adds them up) and CPU time,
/// including that of children they have waited for (a shell's finished
/// commands); a zombie counts nothing. For a cgroup's processes when the
/// cgroup has no accounting controller (hierarchy.rs, v1
/// `needed_by_process`).
pub fn summed_usage(pids: &[i32]) -> (u64, std::time::Duration) {
    let (mut pages, mut ticks) = (0u64, 0u64);
    for st in pids
        .iter()
        .filter_map(|p| stat(*p))
        .filter(|s| !s.is_zombie())
    {
        pages += st.rss_pages;
        ticks += st.utime + st.stime + st.cutime + st.cstime;
    }
    let secs = ticks as f64 / clock_ticks_per_second();
    (
        pages * page_size(),
        std::time::Duration::from_secs_f64(secs),
    )
}

/// Clock ticks per second, the unit of stat's times.
pub fn clock_ticks_per_second() -> f64 {
    sysconf_or(libc::_SC_CLK_TCK, 100) as f64
}

/// Bytes per page, the unit of stat's rss.
pub fn page_size() -> u64 {
    sysconf_or(libc::_SC_PAGESIZE, 4096)
}

/// sysconf(`name`), or `fallback` if it reports nothing usable.
fn sysconf_or(name: libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(name) };
    if n > 0 {
        n as u64
    } else {
        fallback
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), empty if unreadable
/// (without /proc nothing in this module works anyway).
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The identity of `pid` given this boot's id.
pub fn identity(pid: i32, boot_id: &str) -> Option<ProcessIdentity> {
    stat(pid).map(|s| ProcessIdentity {
        start_ticks: s.start_ticks,
        boot_id: boot_id.to_string(),
    })
}

/// Whether `pid` is still the process described by `identity`: the pid
/// exists, started at the same tick, in the same boot. This is how a
/// restarted daemon checks a pid from its state before trusting it (a pid
/// alone may have been reused). A zombie still counts: its pid cannot be
/// reused until it is reaped, and signalling it is harmless; an
/// `ExitWatch` on it resolves at once.
pub fn is_same_process(pid: i32, identity: &ProcessIdentity) -> bool {
    match stat(pid) {
        Some(s) => s.start_ticks == identity.start_ticks && boot_id() == identity.boot_id,
        None => false,
    }
}

/// The real uid of a process: the first number of the `Uid:` line of
/// `/proc/PID/status`.
pub fn real_uid(pid: i32) -> Option<u32> {
    if pid <= 0 {
        return None;
    }
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_real_uid(&text)
}

/// `Uid:\treal\teffective\tsaved\tfs` -> real.
pub fn parse_real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether a NUL-separated environment block holds exactly `entry`.
pub fn environ_contains(environ: &[u8], entry: &[u8]) -> bool {
    environ.split(|b| *b == 0).any(|e| e == entry)
}

/// Live processes (other than our own) whose `KEY` variable holds one of
/// `values`, with the value: one pass over /proc for any number of
/// markers, so a batch of stopped runs costs one scan, not one each.
/// Processes we may not read, and ones that vanish, are skipped. Zombies
/// have an empty environ and are never listed.
pub fn marked(key: &str, values: &HashSet<String>) -> Vec<(i32, String)> {
    if values.is_empty() {
        return Vec::new();
    }
    let prefix = format!("{key}=");
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<(i32, String)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let value = env
                .split(|b| *b == 0)
                .find_map(|e| e.strip_prefix(prefix.as_bytes()))?;
            let value = std::str::from_utf8(value).ok()?;
            values.contains(value).then(|| (pid, value.to_string()))
        })
        .collect();
    found.sort_unstable();
    found
}

/// Live session leaders (pid == sid; every process the runtime starts is
/// one) whose `KEY` variable starts with `prefix`, with its whole value.
/// One pass over /proc: how a restarted daemon finds processes it started
/// but never got to record.
pub fn marked_leaders(key: &str, prefix: &str) -> Vec<(i32, String)> {
    let entry = format!("{key}={prefix}");
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<(i32, String)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let value = env
                .split(|b| *b == 0)
                .find_map(|e| e.strip_prefix(entry.as_bytes()))?;
            let st = stat(pid)?;
            (st.session == pid && !st.is_zombie()).then(|| {
                let value = format!("{prefix}{}", String::from_utf8_lossy(value));
                (pid, value)
            })
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_after_the_last_paren() {
        // comm may contain ") " itself: a naive split would shift fields.
        let line = "4242 (evil) S 1 2 (x)) R 7 4242 4242 0 -1 4194560 100 0 0 0 \
                    1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.state, 'R');
        assert_eq!((s.ppid, s.pgrp, s.session), (7, 4242, 4242));
        assert_eq!(s.start_ticks, 987654);
        assert_eq!((s.utime, s.stime, s.rss_pages), (1, 2, 10));
    }

    #[test]
    fn real_uid_is_the_first_uid() {
        let status = "Name:\tsleep\nUid:\t1001\t0\t0\t0\nGid:\t5\t5\t5\t5\n";
        assert_eq!(parse_real_uid(status), Some(1001));
        assert_eq!(parse_real_uid("Name:\tx\n"), None);
        assert_eq!(
            real_uid(std::process::id() as i32),
            Some(nix::unistd::getuid().as_raw())
        );
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn environ_match_is_exact() {
        let env = b"A=1\0DROVER_POD_UID=abc\0B=2\0";
        assert!(environ_contains(env, b"DROVER_POD_UID=abc"));
        assert!(!environ_contains(env, b"DROVER_POD_UID=ab"));
        assert!(!environ_contains(env, b"POD_UID=abc"));
        assert!(!environ_contains(
            b"X=DROVER_POD_UID=abc\0",
            b"DROVER_POD_UID=abc"
        ));
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        assert!(!s.is_zombie());
        let id = identity(me, &boot_id()).expect("own identity");
        assert!(is_same_process(me, &id));
        assert_eq!(boot_id().len(), 36, "boot_id is a uuid");
        assert_eq!(stat(0), None);
        assert_eq!(stat(-5), None);
    }
}
