//! Waiting for files to appear without polling (a forking daemon's pid
//! file): one [`Inotify`] instance, shared by the agent (which adds and
//! removes watches on folders) and the daemon's loop (which waits until
//! something changed in one of them, then asks the agent to look again).
//! It says only that something changed: what a change means is the
//! agent's business.

use super::inotify::{Inotify, WatchDescriptor};
use nix::sys::inotify::AddWatchFlags;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file created, moved in, written or closed after writing.
const MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ONLYDIR);

/// Cheap to clone: both sides hold the same instance.
#[derive(Clone)]
pub struct FileWatch {
    inotify: Arc<Inotify>,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileWatch")
    }
}

impl FileWatch {
    /// Inside a tokio runtime with IO enabled.
    pub fn new() -> io::Result<FileWatch> {
        Ok(FileWatch {
            inotify: Arc::new(Inotify::new()?),
        })
    }

    /// Watches the folder `dir` for files appearing or changing in it.
    pub fn watch_dir(&self, dir: &Path) -> io::Result<WatchDescriptor> {
        self.inotify.add_watch(dir, MASK)
    }

    pub fn unwatch(&self, wd: WatchDescriptor) {
        self.inotify.rm_watch(wd);
    }

    /// Waits until something changed in a watched folder; every event
    /// queued by then is drained, so a burst costs one wakeup.
    pub async fn changed(&self) -> io::Result<()> {
        self.inotify.next_batch().await.map(|_| ())
    }
}
