//! Size rotation of PROCESS.log by copy-truncate, and the task that keeps
//! every log under its size. It must not wake up unless a log was written:
//! inotify events are the only trigger, there is no timer.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, WatchDescriptor};

use super::inotify::{Watcher, POD_MASK, ROOT_MASK};
use super::{process_of, rotated_path, with_suffix, LogDir};

/// If PATH is larger than `max_bytes` (and `max_bytes` is not 0): copy it to
/// PATH.1, replacing the older copy, and truncate it. Returns whether it
/// rotated; a missing PATH is no rotation.
///
/// The writer keeps its `O_APPEND` fd and goes on at offset 0. Hazard,
/// inherent to copy-truncate: bytes written between the last copy reaching
/// the end and the truncate are lost. The window is one `ftruncate` wide,
/// because the copy runs again just before it.
pub fn rotate_if_needed(path: &Path, max_bytes: u64) -> io::Result<bool> {
    if max_bytes == 0 {
        return Ok(false);
    }
    let mut src = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = src.metadata()?;
    if meta.len() <= max_bytes {
        return Ok(false);
    }
    // Copy into a temporary first so that PATH.1 is always a whole copy for
    // its readers, and with the log's own mode (logs may hold secrets).
    let tmp = with_suffix(path, ".1.tmp");
    let mut copy = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.permissions().mode() & 0o777)
        .open(&tmp)?;
    io::copy(&mut src, &mut copy)?;
    // Rename before truncating: a follower that sees the truncation finds
    // the new PATH.1 and reads from it what it had not read yet.
    fs::rename(&tmp, rotated_path(path))?;
    // Bytes appended during the copy and the rename (the fd still points at
    // the renamed file, and `src`'s offset is where the first copy ended).
    io::copy(&mut src, &mut copy)?;
    src.set_len(0)?;
    Ok(true)
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
    // Logs that exist now may already be too big.
    scan_root(&watcher, &dir.root, &mut pods, &mut touched)?;
    loop {
        for path in std::mem::take(&mut touched) {
            check_size(path, dir.max_bytes).await;
        }
        for ev in watcher.next_batch().await? {
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
/// check stays inline since it runs on every write.
async fn check_size(path: PathBuf, max_bytes: u64) {
    match fs::metadata(&path) {
        Ok(meta) if meta.len() > max_bytes => {}
        _ => return,
    }
    let rotated = tokio::task::spawn_blocking({
        let path = path.clone();
        move || rotate_if_needed(&path, max_bytes)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)));
    match rotated {
        Ok(true) => tracing::debug!(log = %path.display(), "rotated"),
        Ok(false) => {}
        Err(e) => tracing::warn!(log = %path.display(), "cannot rotate: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{wait_until, writer};
    use super::*;
    use std::io::Write;

    #[test]
    fn rotate_copies_truncates_and_the_writer_goes_on_at_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let mut w = writer(&path);
        w.write_all(b"0123456789\n").unwrap();

        assert!(!rotate_if_needed(&path, 11).unwrap(), "not past the limit");
        assert!(!rotate_if_needed(&path, 0).unwrap(), "0 disables rotation");
        assert!(!rotate_if_needed(&tmp.path().join("none.log"), 1).unwrap());

        w.write_all(b"old\n").unwrap();
        assert!(rotate_if_needed(&path, 11).unwrap());
        assert_eq!(fs::read(rotated_path(&path)).unwrap(), b"0123456789\nold\n");
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);

        // Same fd, O_APPEND: continues at 0, no hole of zeros.
        w.write_all(b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");

        // The next rotation replaces the copy.
        w.write_all(b"0123456789\n").unwrap();
        assert!(rotate_if_needed(&path, 11).unwrap());
        assert_eq!(fs::read(rotated_path(&path)).unwrap(), b"new\n0123456789\n");
        assert!(!with_suffix(&path, ".1.tmp").exists());
    }

    #[test]
    fn rotated_copy_keeps_the_log_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        writer(&path).write_all(b"secret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(rotate_if_needed(&path, 1).unwrap());
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
