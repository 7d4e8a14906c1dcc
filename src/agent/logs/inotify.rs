//! What the log readers and the rotator ask inotify for. The inotify
//! instance itself is `runtime::inotify::Inotify` (registering its fd with
//! tokio is `unsafe`, which only `runtime/` holds); the masks are ours,
//! because only this module knows what the names in ROOT mean.

use nix::sys::inotify::AddWatchFlags;

pub(super) use crate::runtime::inotify::Inotify as Watcher;

/// On ROOT: pod dirs appearing.
pub(super) const ROOT_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

/// On ROOT/POD (or any log's dir): writes, truncations, new files.
pub(super) const POD_MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);
