//! Process logs on disk: ROOT/POD/PROCESS.log for the current run,
//! ROOT/POD/PROCESS.previous.log for the run before (`logs --previous`),
//! size rotation by copy-truncate, tail and follow.
//!
//! Each supervised process writes stdout and stderr straight into its
//! PROCESS.log through an `O_APPEND` fd the runtime hands it. The daemon is
//! never in the data path: processes survive a daemon restart, and logging
//! costs the daemon no CPU. That fixes the shape of everything here:
//!
//! - rotation is copy-truncate (PROCESS.log -> PROCESS.log.1, then truncate),
//!   because we cannot make the writer reopen its fd; `O_APPEND` makes it
//!   continue at offset 0 after the truncate;
//! - readers (`tail`, `follow`, `stream_all`) only read the files, and are
//!   woken by inotify, never by timers: an idle node causes zero wakeups.
//!
//! This module owns the layout of ROOT and the files in it, and removes the
//! folders no pod owns (`collect.rs`). It must not open the files for the
//! processes (the runtime does) nor spawn processes.
//!
//! Layout of one process's files:
//!
//! | file                          | what                                   |
//! |-------------------------------|----------------------------------------|
//! | PROCESS.log                   | current run, written by the process    |
//! | PROCESS.log.1                 | current run, before the last rotation  |
//! | PROCESS.previous.log          | the run before                         |
//! | PROCESS.previous.log.1        | the run before, before its rotation    |

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod collect;
mod follow;
mod inotify;
mod losses;
mod rotate;
mod stream;

pub use collect::{ClaimError, LogDirClaim};
pub use follow::{follow, Follow};
pub use rotate::{rotate_if_needed, watch_sizes, Rotated};
pub use stream::stream_all;

#[derive(Clone, Debug)]
pub struct LogDir {
    pub root: PathBuf,
    /// Rotate PROCESS.log once it grows past this; 0 disables rotation.
    pub max_bytes: u64,
}

impl LogDir {
    pub fn new(root: PathBuf, max_bytes: u64) -> LogDir {
        LogDir { root, max_bytes }
    }

    /// ROOT/POD/PROCESS.log
    pub fn current(&self, pod: &str, process: &str) -> PathBuf {
        self.root.join(pod).join(format!("{process}.log"))
    }

    /// ROOT/POD/PROCESS.previous.log
    pub fn previous(&self, pod: &str, process: &str) -> PathBuf {
        self.root.join(pod).join(format!("{process}.previous.log"))
    }

    /// Before a process's first run: its log's path, touching nothing (a
    /// first run has no earlier log to move). The runtime creates ROOT/POD
    /// when it opens the log, in its spawning threads, so a thousand new
    /// pods do not wait for a thousand mkdirs one after the other.
    pub fn first_run(&self, pod: &str, process: &str) -> io::Result<PathBuf> {
        check_name("pod", pod)?;
        check_name("process", process)?;
        Ok(self.current(pod, process))
    }

    /// Before a process (re)starts: create ROOT/POD, move the current log
    /// (if any) to the previous one, and return the current path.
    ///
    /// The rotated copy PROCESS.log.1 moves along to PROCESS.previous.log.1,
    /// so that each file holds one run only.
    pub fn start_run(&self, pod: &str, process: &str) -> io::Result<PathBuf> {
        check_name("pod", pod)?;
        check_name("process", process)?;
        let current = self.current(pod, process);
        if created_now(&self.root.join(pod))? {
            // A directory we just made holds no earlier run: nothing to
            // move (saves three lookups per process on a pod's first start).
            return Ok(current);
        }
        let previous = self.previous(pod, process);
        rename_if_exists(&current, &previous)?;
        let previous_rotated = rotated_path(&previous);
        if !rename_if_exists(&rotated_path(&current), &previous_rotated)? {
            // An older run's copy must not pass for the run that just ended.
            remove_if_exists(&previous_rotated)?;
        }
        Ok(current)
    }

    /// When a pod is deleted: remove ROOT/POD.
    pub fn remove_pod(&self, pod: &str) -> io::Result<()> {
        // The name check is what keeps "" or ".." from removing ROOT itself.
        check_name("pod", pod)?;
        match fs::remove_dir_all(self.root.join(pod)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The last `lines` lines of a file (all of it with None).
///
/// Reads backwards from the end in blocks, so the cost is proportional to
/// the lines asked for, not to the size of the file. A last line without
/// a newline counts as a line. A missing file is `NotFound`.
pub fn tail(path: &Path, lines: Option<usize>) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut attempt = 0;
    loop {
        match tail_file(&file, lines, TAIL_BLOCK) {
            // The file was truncated (rotated) while we read it: start over
            // from its new end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && attempt < 3 => attempt += 1,
            other => return other.map(|(bytes, _end)| bytes),
        }
    }
}

const TAIL_BLOCK: u64 = 64 * 1024;

/// `tail` on an open file; also returns the offset the tail ends at, where
/// a follower continues.
fn tail_file(file: &File, lines: Option<usize>, block: u64) -> io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    let Some(lines) = lines else {
        let mut all = vec![0; len as usize];
        file.read_exact_at(&mut all, 0)?;
        return Ok((all, len));
    };
    if lines == 0 || len == 0 {
        return Ok((Vec::new(), len));
    }
    // Blocks from the end backwards; the tail is their concatenation.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut newlines = 0;
    let mut end = len;
    'blocks: while end > 0 {
        let begin = end.saturating_sub(block);
        let mut buf = vec![0; (end - begin) as usize];
        file.read_exact_at(&mut buf, begin)?;
        for i in (0..buf.len()).rev() {
            // The newline that ends the file ends the last line; it does
            // not start another one.
            if buf[i] != b'\n' || begin + i as u64 == len - 1 {
                continue;
            }
            newlines += 1;
            if newlines == lines {
                buf.drain(..=i);
                blocks.push(buf);
                break 'blocks;
            }
        }
        blocks.push(buf);
        end = begin;
    }
    let mut out = Vec::with_capacity(blocks.iter().map(Vec::len).sum());
    for b in blocks.iter().rev() {
        out.extend_from_slice(b);
    }
    Ok((out, len))
}

/// PATH.1, where rotation keeps the copy of PATH.
fn rotated_path(path: &Path) -> PathBuf {
    with_suffix(path, ".1")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The process a file name in ROOT/POD belongs to, if it is a current log:
/// "web.log" -> "web"; not "web.previous.log", "web.log.1" or temporaries.
fn process_of(file_name: &str) -> Option<&str> {
    let process = file_name.strip_suffix(".log")?;
    if process.is_empty() || process.ends_with(".previous") {
        return None;
    }
    Some(process)
}

fn check_name(what: &str, name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid {what} name for a log path: {name:?}"),
        ));
    }
    Ok(())
}

/// Ok(true) if `from` was moved, Ok(false) if it did not exist.
/// Makes `dir` (and missing parents); true if `dir` itself did not exist.
fn created_now(dir: &Path) -> io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<bool> {
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Polls `cond` every 10 ms until it holds; panics with `what` after 5 s.
    pub(super) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting: {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Opens PATH the way the runtime does for a process: O_APPEND, created.
    pub(super) fn writer(path: &Path) -> File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn write_file(path: &Path, content: &[u8]) {
        writer(path).write_all(content).unwrap();
    }

    #[test]
    fn start_run_moves_current_to_previous() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().join("logs"), 0);

        let current = dir.start_run("web-1", "srv").unwrap();
        assert_eq!(current, tmp.path().join("logs/web-1/srv.log"));
        assert!(!current.exists(), "start_run only makes the directory");
        write_file(&current, b"run 1\n");
        write_file(&rotated_path(&current), b"run 1, rotated\n");

        dir.start_run("web-1", "srv").unwrap();
        let previous = dir.previous("web-1", "srv");
        assert!(!current.exists());
        assert_eq!(fs::read(&previous).unwrap(), b"run 1\n");
        assert_eq!(
            fs::read(rotated_path(&previous)).unwrap(),
            b"run 1, rotated\n"
        );
        assert!(!rotated_path(&current).exists());

        // Run 2 never rotated: run 1's copy must not stay as run 2's.
        write_file(&current, b"run 2\n");
        dir.start_run("web-1", "srv").unwrap();
        assert_eq!(fs::read(&previous).unwrap(), b"run 2\n");
        assert!(!rotated_path(&previous).exists());
    }

    #[test]
    fn remove_pod_removes_its_dir_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().to_path_buf(), 0);
        write_file(&dir.start_run("a", "p").unwrap(), b"x\n");
        write_file(&dir.start_run("b", "p").unwrap(), b"x\n");
        dir.remove_pod("a").unwrap();
        dir.remove_pod("a").unwrap(); // already gone is fine
        assert!(!tmp.path().join("a").exists());
        assert!(dir.current("b", "p").exists());
        for bad in ["", ".", "..", "a/b"] {
            let err = dir.remove_pod(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(dir.start_run(bad, "p").is_err());
        }
        assert!(tmp.path().exists());
    }

    #[test]
    fn tail_takes_the_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        write_file(&path, b"one\ntwo\nthree\n");
        let t = |n| String::from_utf8(tail(&path, n).unwrap()).unwrap();
        assert_eq!(t(Some(2)), "two\nthree\n");
        assert_eq!(t(Some(1)), "three\n");
        assert_eq!(t(Some(0)), "");
        assert_eq!(t(Some(3)), "one\ntwo\nthree\n");
        assert_eq!(t(Some(100)), "one\ntwo\nthree\n");
        assert_eq!(t(None), "one\ntwo\nthree\n");

        write_file(&path, b"four, unfinished");
        assert_eq!(t(Some(1)), "four, unfinished");
        assert_eq!(t(Some(2)), "three\nfour, unfinished");

        let err = tail(&tmp.path().join("missing.log"), Some(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn tail_agrees_with_a_naive_tail_across_block_boundaries() {
        fn naive(content: &[u8], n: usize) -> Vec<u8> {
            let mut lines: Vec<&[u8]> = content.split_inclusive(|b| *b == b'\n').collect();
            let keep = lines.len().saturating_sub(n);
            lines.drain(..keep);
            lines.concat()
        }
        let tmp = tempfile::tempdir().unwrap();
        let cases: [&[u8]; 7] = [
            b"",
            b"\n",
            b"\n\n\n",
            b"a",
            b"a\nbb\nccc\n\ndddd\n",
            b"a\nbb\nccc\n\ndddd",
            b"long line without newlines at all",
        ];
        for (i, content) in cases.iter().enumerate() {
            let path = tmp.path().join(format!("{i}.log"));
            write_file(&path, content);
            let file = File::open(&path).unwrap();
            for block in [1, 2, 3, 7, 64] {
                for n in 0..8 {
                    let (got, end) = tail_file(&file, Some(n), block).unwrap();
                    assert_eq!(got, naive(content, n), "{content:?} n={n} block={block}");
                    assert_eq!(end, content.len() as u64);
                }
            }
        }
    }

    #[test]
    fn tail_of_a_big_file_reads_only_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.log");
        let mut content = Vec::new();
        for i in 0..50_000 {
            writeln!(content, "line {i}").unwrap();
        }
        write_file(&path, &content);
        assert_eq!(tail(&path, Some(2)).unwrap(), b"line 49998\nline 49999\n");
        let many = tail(&path, Some(20_000)).unwrap();
        assert!(many.starts_with(b"line 30000\n"));
        assert!(many.ends_with(b"line 49999\n"));
    }
}
