//! Size rotation of PROCESS.log by copy-truncate, and the task that keeps
//! every log under its size. It must not wake up unless a log was written:
//! inotify events are the only trigger, there is no timer (except the one
//! that reports losses, armed only while a loss waits to be reported).
//!
//! A rotation costs O(`max_bytes`), never O(size of the file): a process
//! that writes faster than we rotate (`yes`) would otherwise grow the file
//! during the copy, the next copy would be longer, and so on until the disk
//! is full. So when the file has outgrown twice the limit, only its last
//! `max_bytes` are copied and the rest is dropped (and reported, see
//! [`super::losses`]). Bounds, whatever the write rate:
//!
//! - PROCESS.log.1 (and its temporary while it is written) holds at most
//!   `2 × max_bytes`, and `max_bytes` after a rotation that dropped bytes;
//! - PROCESS.log holds at most `max_bytes` plus what the process writes
//!   between its growing past the limit and the truncate (one inotify
//!   wakeup and one bounded in-kernel copy).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::inotify::{AddWatchFlags, WatchDescriptor};

use super::inotify::{Watcher, POD_MASK, ROOT_MASK};
use super::losses::Losses;
use super::{process_of, rotated_path, with_suffix, LogDir};

/// What one rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// Bytes now in PATH.1.
    pub kept: u64,
    /// Bytes of PATH that were in neither PATH.1 nor PATH after the
    /// rotation: the oldest part of a file that outgrew twice the limit,
    /// what was written during the copy beyond what PATH.1 may hold, or
    /// everything when the copy found the disk full.
    pub dropped: u64,
    /// The copy failed for lack of space (ENOSPC, EDQUOT): PATH was
    /// truncated anyway, the older PATH.1 kept.
    pub disk_full: bool,
}

/// If PATH is larger than `max_bytes` (and `max_bytes` is not 0): copy its
/// end to PATH.1, replacing the older copy, and truncate it. Returns what it
/// did, None when there was nothing to do (a missing PATH included).
///
/// The copy is the whole file while it holds at most `2 × max_bytes` (a
/// normal writer: nothing is lost and PATH.1 continues where PATH's reader
/// was), else its last `max_bytes`: the writer outran rotation, and copying
/// everything is what let it fill the disk. The copy runs in the kernel
/// (`copy_file_range`). A follower (`follow.rs`) reads PATH.1 from the
/// offset it had reached in PATH, which is right for a whole copy; after a
/// partial one it misses bytes it had not read yet (it never repeats any),
/// which a writer that outruns rotation loses anyway.
///
/// The writer keeps its `O_APPEND` fd and goes on at offset 0. Hazard,
/// inherent to copy-truncate: bytes written between the last copy reaching
/// the end and the truncate are lost. The window is one `ftruncate` wide,
/// because the copy runs again just before it (for at most what PATH.1 may
/// still hold, and not after a partial copy).
///
/// When the disk is full the log is truncated without a copy: a log that
/// cannot be rotated must not grow, and truncating frees the space.
pub fn rotate_if_needed(path: &Path, max_bytes: u64) -> io::Result<Option<Rotated>> {
    if max_bytes == 0 {
        return Ok(None);
    }
    let src = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = src.metadata()?;
    let end = meta.len();
    if end <= max_bytes {
        return Ok(None);
    }
    let copy_cap = max_bytes.saturating_mul(2);
    let start = if end <= copy_cap { 0 } else { end - max_bytes };
    let tmp = with_suffix(path, ".1.tmp");
    let copied = copy_to_temporary(&src, start, end, &tmp, meta.permissions().mode());
    let copy = match copied {
        Ok(copy) => copy,
        Err(e) if is_disk_full(&e) => {
            remove_quietly(&tmp);
            let dropped = src.metadata()?.len();
            src.set_len(0)?;
            return Ok(Some(Rotated {
                kept: 0,
                dropped,
                disk_full: true,
            }));
        }
        Err(e) => {
            remove_quietly(&tmp);
            return Err(e);
        }
    };
    // Rename before truncating: a follower that sees the truncation finds
    // the new PATH.1 and reads from it what it had not read yet.
    if let Err(e) = fs::rename(&tmp, rotated_path(path)) {
        remove_quietly(&tmp);
        return Err(e);
    }
    // Bytes appended during the copy and the rename (the fd still points
    // at the renamed file), as long as PATH.1 stays within its bound. Not
    // for a writer that already outran us (`start > 0`): it loses bytes
    // anyway, and a second copy would only give it longer to write before
    // the truncate.
    let mut kept = end - start;
    let mut dropped = start;
    let now = src.metadata()?.len();
    let appended = now.saturating_sub(end);
    if appended > 0 && start == 0 && kept + appended <= copy_cap {
        match copy_range(&src, end, &copy, kept, appended) {
            Ok(()) => kept += appended,
            Err(e) if is_disk_full(&e) => {
                // Keep PATH.1 what `kept` says, not a partial tail.
                let _ = copy.set_len(kept);
                dropped += appended;
            }
            Err(e) => return Err(e),
        }
    } else {
        dropped += appended;
    }
    // What came after our last look is lost with the truncate; count it.
    dropped += src.metadata()?.len().saturating_sub(now);
    src.set_len(0)?;
    Ok(Some(Rotated {
        kept,
        dropped,
        disk_full: false,
    }))
}

/// Copies `src[start..end]` into a fresh TMP with the log's mode (logs may
/// hold secrets), so that PATH.1 is always a whole copy for its readers.
fn copy_to_temporary(src: &File, start: u64, end: u64, tmp: &Path, mode: u32) -> io::Result<File> {
    let copy = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode & 0o777)
        .open(tmp)?;
    copy_range(src, start, &copy, 0, end - start)?;
    Ok(copy)
}

/// Copies `len` bytes of `src` at `from` into `dst` at `to`; stops early
/// if `src` ends sooner (truncated meanwhile). `std::io::copy` between
/// files is `copy_file_range`, in the kernel (with a read/write fallback
/// where a filesystem lacks it); `take` bounds it.
fn copy_range(src: &File, from: u64, dst: &File, to: u64, len: u64) -> io::Result<()> {
    let (mut src, mut dst) = (src, dst);
    src.seek(SeekFrom::Start(from))?;
    dst.seek(SeekFrom::Start(to))?;
    io::copy(&mut src.take(len), &mut dst)?;
    Ok(())
}

/// No room left for the copy: the one failure after which we truncate
/// anyway, since keeping the log would only keep the disk full.
fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), "cannot remove: {e}");
        }
    }
}

/// Keeps every ROOT/POD/PROCESS.log at most about `dir.max_bytes`, forever.
///
/// Watches ROOT (for new pod dirs) and every ROOT/POD (for writes), drains
/// all pending events at once and checks each written file once. Errors are
/// logged; the task ends if inotify fails or ROOT is removed.
pub async fn watch_sizes(dir: LogDir) {
    if dir.max_bytes == 0 {
        tracing::debug!("log rotation disabled (max_bytes = 0)");
        return;
    }
    if let Err(e) = run_watch_sizes(&dir).await {
        tracing::error!(root = %dir.root.display(), "log rotation stopped: {e}");
    }
}

async fn run_watch_sizes(dir: &LogDir) -> io::Result<()> {
    fs::create_dir_all(&dir.root)?;
    let watcher = Watcher::new()?;
    let root_wd = watcher.add_watch(&dir.root, ROOT_MASK)?;
    let mut pods: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
    let mut touched = BTreeSet::new();
    let mut losses = Losses::default();
    // Logs that exist now may already be too big.
    scan_root(&watcher, &dir.root, &mut pods, &mut touched)?;
    loop {
        for path in std::mem::take(&mut touched) {
            check_size(path, dir.max_bytes, &mut losses).await;
        }
        losses.report(Instant::now());
        let batch = match losses.next_report() {
            None => watcher.next_batch().await?,
            // A loss waits for the end of its rate limit: wake up then,
            // even if no log is written meanwhile.
            Some(at) => tokio::select! {
                batch = watcher.next_batch() => batch?,
                () = tokio::time::sleep_until(at.into()) => continue,
            },
        };
        for ev in batch {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Events were dropped: look at everything.
                scan_root(&watcher, &dir.root, &mut pods, &mut touched)?;
            } else if ev.wd == root_wd {
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    tracing::warn!(root = %dir.root.display(), "log root removed");
                    return Ok(());
                }
                if ev.mask.contains(AddWatchFlags::IN_ISDIR) {
                    if let Some(name) = &ev.name {
                        let pod_dir = dir.root.join(name);
                        watch_pod(&watcher, pod_dir, &mut pods, &mut touched);
                    }
                }
            } else if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                pods.remove(&ev.wd); // the pod's dir was removed
            } else if let (Some(pod_dir), Some(name)) = (pods.get(&ev.wd), &ev.name) {
                if name.to_str().and_then(process_of).is_some() {
                    touched.insert(pod_dir.join(name));
                }
            }
        }
    }
}

/// Watches every pod dir under ROOT and marks every current log in them.
fn scan_root(
    watcher: &Watcher,
    root: &Path,
    pods: &mut HashMap<WatchDescriptor, PathBuf>,
    touched: &mut BTreeSet<PathBuf>,
) -> io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            watch_pod(watcher, entry.path(), pods, touched);
        }
    }
    Ok(())
}

/// Watches a pod dir, then marks the logs already in it: those written
/// before the watch existed sent no event.
fn watch_pod(
    watcher: &Watcher,
    pod_dir: PathBuf,
    pods: &mut HashMap<WatchDescriptor, PathBuf>,
    touched: &mut BTreeSet<PathBuf>,
) {
    let entries = watcher.add_watch(&pod_dir, POD_MASK).and_then(|wd| {
        pods.insert(wd, pod_dir.clone());
        fs::read_dir(&pod_dir)
    });
    let entries = match entries {
        Ok(entries) => entries,
        // Removed again already, or not a dir: nothing to watch.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return
        }
        Err(e) => {
            tracing::warn!(dir = %pod_dir.display(), "cannot watch pod logs: {e}");
            return;
        }
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().and_then(process_of).is_some() {
            touched.insert(entry.path());
        }
    }
}

/// `rotate_if_needed`, with the copy off the async threads; the cheap size
/// check stays inline since it runs on every write. What was lost, and
/// failures, go to `losses`, which reports them rate-limited.
async fn check_size(path: PathBuf, max_bytes: u64, losses: &mut Losses) {
    match fs::metadata(&path) {
        Ok(meta) if meta.len() > max_bytes => {}
        _ => return,
    }
    let started = Instant::now();
    let rotated = tokio::task::spawn_blocking({
        let path = path.clone();
        move || rotate_if_needed(&path, max_bytes)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)));
    match rotated {
        Ok(Some(rotated)) => {
            let took = started.elapsed();
            tracing::debug!(log = %path.display(), ?rotated, ?took, "rotated");
            losses.add(path, &rotated);
        }
        Ok(None) => {}
        Err(e) => losses.add_error(path, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{wait_until, writer};
    use super::*;
    use std::io::Write;

    fn whole(kept: u64) -> Option<Rotated> {
        Some(Rotated {
            kept,
            dropped: 0,
            disk_full: false,
        })
    }

    #[test]
    fn rotate_copies_truncates_and_the_writer_goes_on_at_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let mut w = writer(&path);
        w.write_all(b"0123456789\n").unwrap();

        assert_eq!(
            rotate_if_needed(&path, 11).unwrap(),
            None,
            "not past the limit"
        );
        assert_eq!(
            rotate_if_needed(&path, 0).unwrap(),
            None,
            "0 disables rotation"
        );
        assert_eq!(
            rotate_if_needed(&tmp.path().join("none.log"), 1).unwrap(),
            None
        );

        w.write_all(b"old\n").unwrap();
        assert_eq!(rotate_if_needed(&path, 11).unwrap(), whole(15));
        assert_eq!(fs::read(rotated_path(&path)).unwrap(), b"0123456789\nold\n");
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);

        // Same fd, O_APPEND: continues at 0, no hole of zeros.
        w.write_all(b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");

        // The next rotation replaces the copy.
        w.write_all(b"0123456789\n").unwrap();
        assert_eq!(rotate_if_needed(&path, 11).unwrap(), whole(15));
        assert_eq!(fs::read(rotated_path(&path)).unwrap(), b"new\n0123456789\n");
        assert!(!with_suffix(&path, ".1.tmp").exists());
    }

    /// Issue 9: `yes` outran a rotation that copied the whole file, and
    /// filled the disk. Past twice the limit only the last `max_bytes` are
    /// copied, whatever the size, and what was dropped is counted.
    #[test]
    fn a_log_past_twice_the_limit_keeps_only_its_last_max_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let mut w = writer(&path);
        let lines: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i:04}\n").into_bytes())
            .collect();
        w.write_all(&lines).unwrap(); // 5000 bytes, limit 50

        let rotated = rotate_if_needed(&path, 50).unwrap().unwrap();
        assert_eq!(
            rotated,
            Rotated {
                kept: 50,
                dropped: 4950,
                disk_full: false
            }
        );
        assert_eq!(fs::read(rotated_path(&path)).unwrap(), &lines[4950..]);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        w.write_all(b"next\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"next\n");

        // Exactly twice the limit is still copied whole.
        w.write_all(&lines[..95]).unwrap();
        assert_eq!(rotate_if_needed(&path, 50).unwrap(), whole(100));
    }

    #[test]
    fn rotated_copy_keeps_the_log_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        writer(&path).write_all(b"secret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(rotate_if_needed(&path, 1).unwrap().is_some());
        let mode = fs::metadata(rotated_path(&path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn watch_sizes_rotates_logs_that_grow_past_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().join("logs"), 64);
        // A log that is too big before the watcher starts.
        let early = dir.start_run("early", "p").unwrap();
        writer(&early).write_all(&[b'x'; 100]).unwrap();

        let task = tokio::spawn(watch_sizes(dir.clone()));
        tokio::task::yield_now().await; // let it set its watches up

        // A pod dir that appears later, written in small steps.
        let late = dir.start_run("late", "p").unwrap();
        let mut w = writer(&late);
        for _ in 0..5 {
            w.write_all(b"0123456789abcdef\n").unwrap();
        }
        let big_copy = |p: &Path| fs::metadata(rotated_path(p)).is_ok_and(|m| m.len() > 64);
        wait_until("early log rotated", || big_copy(&early)).await;
        wait_until("late log rotated", || big_copy(&late)).await;
        assert!(fs::metadata(&early).unwrap().len() <= 64);

        // Under the limit: left alone.
        w.write_all(b"small\n").unwrap();
        let small = dir.start_run("late", "q").unwrap();
        writer(&small).write_all(b"small\n").unwrap();
        tokio::task::yield_now().await;
        assert!(!rotated_path(&small).exists());

        task.abort();
        let _ = task.await;
    }
}
