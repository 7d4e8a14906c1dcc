//! Waiting for files to appear without polling (a forking daemon's pid
//! file): one inotify instance, shared by the agent (which adds and
//! removes watches on folders) and the daemon's loop (which waits until
//! something changed in one of them, then asks the agent to look again).
//! It says only that something changed: what a change means is the
//! agent's business.

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// nix's `Inotify` is `AsFd`; tokio's `AsyncFd` wants `AsRawFd`.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A file created, moved in, written or closed after writing.
const MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ONLYDIR);

/// Cheap to clone: both sides hold the same instance.
#[derive(Clone)]
pub struct FileWatch {
    fd: Arc<AsyncFd<Fd>>,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileWatch")
    }
}

impl FileWatch {
    /// Inside a tokio runtime with IO enabled.
    pub fn new() -> io::Result<FileWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: `Fd` owns the inotify descriptor and never replaces or
        // closes it; it is closed only when the `AsyncFd` (and with it
        // `Fd`) drops, after tokio deregistered it.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(inotify), Interest::READABLE)? };
        Ok(FileWatch { fd: Arc::new(fd) })
    }

    /// Watches the folder `dir` for files appearing or changing in it.
    pub fn watch_dir(&self, dir: &Path) -> io::Result<WatchDescriptor> {
        Ok(self.fd.get_ref().0.add_watch(dir, MASK)?)
    }

    pub fn unwatch(&self, wd: WatchDescriptor) {
        // EINVAL: already gone with its folder.
        let _ = self.fd.get_ref().0.rm_watch(wd);
    }

    /// Waits until something changed in a watched folder; every event
    /// queued by then is drained, so a burst costs one wakeup.
    pub async fn changed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut got = false;
            loop {
                match guard.get_inner().0.read_events() {
                    Ok(events) => got |= !events.is_empty(),
                    Err(Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if got {
                return Ok(());
            }
        }
    }
}
