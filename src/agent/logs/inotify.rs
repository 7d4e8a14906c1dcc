//! An inotify instance driven by tokio: the one source of wakeups for the
//! log readers and the rotator. It owns the fd and the draining of events;
//! it must not interpret them (each caller knows what its names mean).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// nix's `Inotify` is `AsFd`; tokio's `AsyncFd` wants `AsRawFd`.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// On ROOT: pod dirs appearing.
pub(super) const ROOT_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

/// On ROOT/POD (or any log's dir): writes, truncations, new files.
pub(super) const POD_MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

pub(super) struct Watcher {
    fd: AsyncFd<Fd>,
}

impl Watcher {
    /// Must be called inside a tokio runtime with IO enabled.
    pub(super) fn new() -> io::Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: `Fd` owns the inotify fd and never replaces or closes it;
        // it is closed only when the `AsyncFd` (and with it `Fd`) drops.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(inotify), Interest::READABLE)? };
        Ok(Watcher { fd })
    }

    pub(super) fn add(&self, path: &Path, mask: AddWatchFlags) -> io::Result<WatchDescriptor> {
        Ok(self.fd.get_ref().0.add_watch(path, mask)?)
    }

    /// Waits for events, then drains every event already queued, so that a
    /// burst of writes costs one wakeup and one check per file.
    pub(super) async fn next_batch(&self) -> io::Result<Vec<InotifyEvent>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut events = Vec::new();
            loop {
                match guard.get_inner().0.read_events() {
                    Ok(batch) => events.extend(batch),
                    Err(Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }
}
