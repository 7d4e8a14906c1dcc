//! An inotify instance driven by tokio: the wakeup source of the log
//! readers and the rotator (`agent::logs`). It lives here because handing
//! an fd to tokio's reactor (`AsyncFd::register_with_interest`) is
//! `unsafe`, and `runtime/` is the one module that holds `unsafe`.
//!
//! It owns the fd and the draining of events; it must not interpret them
//! (each caller knows what its names mean). Nothing outside this file can
//! reach the fd, so nothing can close or replace it behind tokio's back.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify as RawInotify, InotifyEvent};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use nix::sys::inotify::WatchDescriptor;

/// nix's `Inotify` is `AsFd`; tokio's `AsyncFd` wants `AsRawFd`.
struct Fd(RawInotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct Inotify {
    fd: AsyncFd<Fd>,
}

impl Inotify {
    /// Must be called inside a tokio runtime with I/O enabled (outside any
    /// runtime this returns an error).
    pub fn new() -> io::Result<Inotify> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let inotify = RawInotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: `Fd` owns the inotify fd and this module never replaces
        // or closes it (no `get_mut`, no `into_inner`); it is closed only
        // when the `AsyncFd`, and with it `Fd`, drops.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(inotify), Interest::READABLE)? };
        Ok(Inotify { fd })
    }

    pub fn add_watch(&self, path: &Path, mask: AddWatchFlags) -> io::Result<WatchDescriptor> {
        Ok(self.fd.get_ref().0.add_watch(path, mask)?)
    }

    /// Stops watching; a watch already gone with its folder is no error.
    pub fn rm_watch(&self, wd: WatchDescriptor) {
        let _ = self.fd.get_ref().0.rm_watch(wd);
    }

    /// Waits for events, then drains every event already queued, so that a
    /// burst of writes costs one wakeup and one check per file.
    pub async fn next_batch(&self) -> io::Result<Vec<InotifyEvent>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_a_file_created_in_a_watched_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let inotify = Inotify::new().unwrap();
        let wd = inotify
            .add_watch(tmp.path(), AddWatchFlags::IN_CREATE)
            .unwrap();
        std::fs::write(tmp.path().join("new.log"), b"x").unwrap();
        let events = inotify.next_batch().await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.wd == wd && e.name.as_deref() == Some("new.log".as_ref())),
            "{events:?}"
        );
    }

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        assert!(Inotify::new().is_err());
    }
}
