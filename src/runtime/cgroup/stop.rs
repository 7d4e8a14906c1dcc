//! Stopping a pod's whole tree through its cgroup, and knowing when it
//! is empty.
//!
//! A cgroup holds every descendant of a pod's processes, including those
//! that left the process group or the session (setsid, double fork), so
//! killing the cgroup leaves no survivor:
//! - v2: one write to `cgroup.kill` (kernel 5.14+): the kernel kills every
//!   process below, and forks racing with it land in a dying cgroup;
//! - v1: `pids.max` 0 on the cgroup (a fence: nothing below it can
//!   fork), SIGKILL every pid listed until a round lists nothing new,
//!   then the old limit back ([`Hold::Fence`]). Processes do not join the
//!   freezer hierarchy where the pids one exists: one hierarchy fewer to
//!   make, join and remove for every spawn (hierarchy.rs,
//!   `needed_by_process`);
//! - v1 without pids, and v2 without cgroup.kill: freeze, SIGKILL every
//!   pid listed, thaw. Frozen processes cannot fork or exit, so the list
//!   is complete and no listed pid can be reused by a stranger before
//!   the kill. The kernel reports freezing as done only when asked
//!   (`freezer.state` reads FROZEN): that wait is a short bounded poll,
//!   on the stop path only. With neither, the sweep repeats until
//!   nothing new is listed.
//!
//! Empty means no live process: v2 `cgroup.events` says `populated 0`
//! (and changes of that file can be watched: [`EmptyWatch`]); v1 has no
//! such event, so emptiness is read from the procs files, which the agent
//! does after each reap (every process of a pod is a descendant of the
//! subreaping daemon, so its exit ends in a reap).

use super::controller::Controller;
use super::hierarchy::{keyed, parse_pids, read, read_if_made, walk, write, Tree};
use super::CgroupError;
use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Rounds of freeze-list-kill-thaw before giving up on a tree that keeps
/// producing processes (it cannot while frozen: this is a safety stop).
const MAX_ROUNDS: usize = 16;
/// How long to wait for a freeze to complete (a process in
/// uninterruptible sleep delays it; the kill goes ahead anyway).
const FREEZE_DEADLINE: Duration = Duration::from_millis(500);

/// Kills every process in `rel` and below. Returns how many pids were
/// signalled by the sweep (None: the kernel did it, v2 `cgroup.kill`).
/// The processes die asynchronously: see [`is_empty`].
pub(crate) fn kill(tree: &Tree, rel: &str) -> Result<Option<usize>, CgroupError> {
    let member = tree.membership();
    let dir = member.root.join(rel);
    if !dir.exists() {
        return Ok(Some(0));
    }
    if tree.is_v2() {
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            write(&kill_file, "1")?;
            return Ok(None);
        }
        return sweep(&dir, Some(Hold::Freeze(Freezer::V2(dir.clone())))).map(Some);
    }
    // Every process is in the membership hierarchy (the others may not
    // hold it: `needed_by_process`), so that is where it is held.
    let hold = if member.controllers.contains(Controller::Pids) {
        Some(Hold::Fence(dir.clone()))
    } else if member.controllers.contains(Controller::Freezer) {
        Some(Hold::Freeze(Freezer::V1(dir.clone())))
    } else {
        None
    };
    sweep(&dir, hold).map(Some)
}

/// What keeps a tree from growing while it is killed.
enum Hold {
    /// Frozen for each round: nothing in it runs.
    Freeze(Freezer),
    /// `pids.max` 0 on the cgroup for the whole sweep, the old value put
    /// back after: no fork succeeds below it (the limit is hierarchical),
    /// so each round can only find children of forks that were already
    /// past the check when the fence went up, and the rounds end. A child
    /// of such a fork that is listed only after the last round (the
    /// kernel adds it to its cgroup a moment after the fork can no longer
    /// be stopped) survives this kill: the agent kills again while the
    /// pod is not empty (agent/supervise/cgroups.rs, `settle_cgroup`), as
    /// systemd's v1 kill loop does. Unlike the freezer, a listed process
    /// may exit before its SIGKILL: its pid could only be a stranger's if
    /// it was reaped and the kernel's pid counter wrapped around in those
    /// microseconds.
    Fence(PathBuf),
}

fn sweep(dir: &Path, hold: Option<Hold>) -> Result<usize, CgroupError> {
    let fenced = match &hold {
        Some(Hold::Fence(d)) => Some(Fence::raise(d)?),
        _ => None,
    };
    let freezer = match &hold {
        Some(Hold::Freeze(f)) => Some(f),
        _ => None,
    };
    let mut killed = BTreeSet::new();
    let mut outcome = Ok(());
    for _ in 0..MAX_ROUNDS {
        if let Some(f) = freezer {
            f.freeze()?;
        }
        let listed = list(dir);
        let fresh: Vec<i32> = listed.into_iter().filter(|p| !killed.contains(p)).collect();
        for &pid in &fresh {
            // SAFETY: kill has no memory-safety preconditions; pid > 0
            // (read from cgroup.procs), ESRCH is fine.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(f) = freezer {
            if let Err(e) = f.thaw() {
                outcome = Err(e);
                break;
            }
        }
        if fresh.is_empty() {
            break;
        }
        killed.extend(fresh);
    }
    if let Some(f) = fenced {
        f.lower()?;
    }
    outcome.map(|()| killed.len())
}

/// A raised pids fence: the limit it replaced.
struct Fence {
    file: PathBuf,
    old: String,
}

impl Fence {
    fn raise(dir: &Path) -> Result<Fence, CgroupError> {
        let file = dir.join("pids.max");
        let old = read(&file)?.trim().to_string();
        write(&file, "0")?;
        Ok(Fence { file, old })
    }

    fn lower(self) -> Result<(), CgroupError> {
        write(&self.file, &self.old)
    }
}

/// Every pid in `dir` and the cgroups below it.
pub(crate) fn list(dir: &Path) -> Vec<i32> {
    walk(dir)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| parse_pids(&t))
        .collect()
}

/// The pids in `rel` and below (the membership hierarchy's view).
pub(crate) fn pids(tree: &Tree, rel: &str) -> Vec<i32> {
    list(&tree.membership().root.join(rel))
}

/// Whether no live process is left in `rel` and below (a cgroup that
/// does not exist is empty).
///
/// v2: one read of `populated`. v1: first one read of `pids.current`,
/// the kernel's count for the whole subtree: 0 is empty. It also counts
/// zombies not yet reaped (by the keeper, for processes adopted after a
/// restart), which are not live and never reap here: any other count is
/// settled by listing every cgroup's procs, which leaves them out. The
/// agent asks this for every pod that ends, and listing them all cost
/// 2,000 pods scaled to 0 0.6 s of the daemon's loop (debug build, issue
/// 9); the count is one small read.
pub(crate) fn is_empty(tree: &Tree, rel: &str) -> Result<bool, CgroupError> {
    if tree.is_v2() {
        let events = tree.membership().root.join(rel).join("cgroup.events");
        return Ok(read_if_made(&events)?.is_none_or(|text| keyed(&text, "populated") == Some(0)));
    }
    if let Some(dir) = tree.dir_for(Controller::Pids, rel) {
        match read_if_made(&dir.join("pids.current"))? {
            None => return Ok(true),
            Some(text) if text.trim() == "0" => return Ok(true),
            Some(_) => {}
        }
    }
    let dir = tree.membership().root.join(rel);
    if !dir.exists() {
        return Ok(true);
    }
    Ok(list(&dir).is_empty())
}

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Freezer {
    fn freeze(&self) -> Result<(), CgroupError> {
        let (file, value) = self.state_file(true);
        write(&file, value)?;
        let deadline = Instant::now() + FREEZE_DEADLINE;
        while !self.frozen()? && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        let (file, value) = self.state_file(false);
        write(&file, value)
    }

    fn state_file(&self, freeze: bool) -> (PathBuf, &'static str) {
        match self {
            Freezer::V1(d) => (
                d.join("freezer.state"),
                if freeze { "FROZEN" } else { "THAWED" },
            ),
            Freezer::V2(d) => (d.join("cgroup.freeze"), if freeze { "1" } else { "0" }),
        }
    }

    fn frozen(&self) -> Result<bool, CgroupError> {
        Ok(match self {
            Freezer::V1(d) => read(&d.join("freezer.state"))?.trim() == "FROZEN",
            Freezer::V2(d) => keyed(&read(&d.join("cgroup.events"))?, "frozen") == Some(1),
        })
    }
}

/// Wakes when a v2 pod cgroup's `cgroup.events` changes (populated or
/// frozen): an inotify descriptor registered with tokio. Create it inside
/// a tokio runtime, then check [`is_empty`] once (the cgroup may have
/// emptied before the watch existed) and again after each
/// [`EmptyWatch::changed`].
#[derive(Debug)]
pub struct EmptyWatch {
    fd: AsyncFd<OwnedFd>,
}

impl EmptyWatch {
    pub(crate) fn new(events_file: &Path) -> io::Result<EmptyWatch> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(events_file.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: valid fd and NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(io::Error::last_os_error());
        }
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // SAFETY: AsyncFd owns the OwnedFd, so it stays open and the same
        // until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(EmptyWatch { fd })
    }

    /// Waits until the events file changed since the last call.
    pub async fn changed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 1024];
            let mut got = false;
            loop {
                // SAFETY: buf is valid for its length; the fd is ours.
                let n = unsafe {
                    libc::read(
                        self.fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n > 0 {
                    got = true;
                    continue;
                }
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if n < 0 && e.kind() != io::ErrorKind::WouldBlock {
                    return Err(e);
                }
                break;
            }
            guard.clear_ready();
            if got {
                return Ok(());
            }
        }
    }
}
