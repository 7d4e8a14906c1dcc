//! The workload (benches/workload.c, built with `cc -O2`) and its record
//! file: one "PID CLOCK_MONOTONIC_ns" line per started copy.

use crate::procs;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Builds the workload into `bench_dir` when the source is newer.
pub fn build(bench_dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workload.c");
    let out = bench_dir.join("workload");
    let newer = |a: &Path, b: &Path| -> bool {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (m(a), m(b)) {
            (Some(a), Some(b)) => a > b,
            _ => true,
        }
    };
    if out.exists() && !newer(&src, &out) {
        return Ok(out);
    }
    std::fs::create_dir_all(bench_dir).map_err(|e| e.to_string())?;
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .map_err(|e| format!("running cc: {e}"))?;
    if !status.success() {
        return Err(format!("cc -O2 {} failed: {status}", src.display()));
    }
    Ok(out)
}

/// Reads the record file as it grows. Wakes on inotify (IN_MODIFY) when
/// asked to, otherwise polls at a coarse interval so that the benchmark
/// does not compete for the two cores while a supervisor starts 1000
/// copies.
pub struct Records {
    file: File,
    offset: u64,
    partial: Vec<u8>,
    inotify: i32,
    /// (pid, start ns), in file order.
    pub entries: Vec<(i32, i64)>,
}

impl Records {
    /// Creates the (empty) record file and starts watching it.
    pub fn create(path: &Path) -> std::io::Result<Records> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        // SAFETY: plain syscalls; the watch path is a valid C string.
        let inotify = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if inotify < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid fd and C string.
        if unsafe { libc::inotify_add_watch(inotify, cpath.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Records {
            file,
            offset: 0,
            partial: vec![],
            inotify,
            entries: vec![],
        })
    }

    /// Reads what was appended since the last call.
    pub fn refresh(&mut self) {
        let mut buf = vec![];
        if self.file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let Ok(n) = self.file.read_to_end(&mut buf) else {
            return;
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            let mut f = text.split_whitespace();
            if let (Some(Ok(pid)), Some(Ok(ns))) =
                (f.next().map(str::parse), f.next().map(str::parse))
            {
                self.entries.push((pid, ns));
            }
        }
    }

    fn drain_inotify(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a stack buffer of the given size.
        while unsafe { libc::read(self.inotify, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }

    /// Waits until `done(entries)` or the deadline; true when done.
    /// `wake_on_write`: inotify wakes us on every append (exact, for single
    /// events); otherwise we look every `poll`.
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        wake_on_write: bool,
        poll: Duration,
        mut done: impl FnMut(&[(i32, i64)]) -> bool,
    ) -> bool {
        loop {
            procs::check_interrupted();
            self.refresh();
            if done(&self.entries) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let left = deadline - now;
            if wake_on_write {
                let mut pfd = libc::pollfd {
                    fd: self.inotify,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.min(Duration::from_millis(200)).as_millis() as i32;
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
                self.drain_inotify();
            } else {
                std::thread::sleep(left.min(poll));
                procs::reap();
            }
        }
    }

    /// Distinct pids recorded so far.
    pub fn pids(&self) -> Vec<i32> {
        let mut seen = HashSet::new();
        self.entries
            .iter()
            .map(|e| e.0)
            .filter(|p| seen.insert(*p))
            .collect()
    }

    /// Recorded pids still running the workload binary.
    pub fn live_copies(&self, workload: &Path) -> Vec<i32> {
        self.pids()
            .into_iter()
            .filter(|&p| procs::alive(p) && procs::exe(p).as_deref() == Some(workload))
            .collect()
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        // SAFETY: our own fd, closed once.
        unsafe { libc::close(self.inotify) };
    }
}
