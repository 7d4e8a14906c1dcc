//! The embedded backend: STATE_DIR/store.json, a full snapshot (a JSON
//! array of objects, the format drover always wrote), plus
//! STATE_DIR/store.journal, an append-only log of what changed since that
//! snapshot (format in `journal.rs`). A persist appends one record and
//! fdatasyncs once, so one pod's crash costs one pod's JSON, not the
//! whole store's.
//!
//! Crash safety, step by step:
//! - Append: one record = length + CRC-32 + payload, written at the end of
//!   the valid records, then fdatasync (which also makes the new file size
//!   durable). A crash mid-append leaves a short or CRC-failing tail; load
//!   replays the valid records and stops there. That record's persist
//!   never returned, so no reply acknowledged it.
//! - We never append after bytes we did not write in this process: the
//!   first persist after `open` (and the first after a failed sync, or a
//!   failed write whose bytes could not be cut off again, whose on-disk
//!   effect is unknown) compacts instead, which replaces both files. So a
//!   torn tail is never followed by new records. A write that fails
//!   part-way (a full disk) is cut back to the last durable record
//!   (ftruncate + fdatasync); the next persist appends there, so a full
//!   disk recovers as soon as one record fits.
//! - Files are 0600: they hold units' `env`. A write that fails leaves no
//!   temporary file behind (it would keep the space it took).
//! - Compaction: write the whole store to store.json atomically (temp,
//!   fsync, rename, fsync dir), THEN replace the journal atomically by an
//!   empty one whose header names the new snapshot. A crash between the
//!   two leaves the new snapshot with the old journal, whose header names
//!   the old snapshot: load ignores it. Replaying it would be harmless too:
//!   records put or delete whole objects, and the new snapshot already
//!   holds the result of every one of them (tested both ways).
//!
//! Why a journal rather than a file per object: a pass that starts 1000
//! pods changes 1000 objects, and that is still one append and one
//! fdatasync; a file per object would be 1000 renames and fsyncs.

use super::journal;
use super::{Backend, Changes, Key};
use crate::api::Object;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SNAPSHOT: &str = "store.json";
const JOURNAL: &str = "store.journal";
/// The journal may grow to the snapshot's size, but at least to this, so a
/// small store is not rewritten every few persists.
const JOURNAL_FLOOR: u64 = 1 << 20;

pub struct EmbeddedBackend {
    dir: PathBuf,
    /// Set once this process wrote a snapshot and a fresh journal; None
    /// means the next persist compacts (see the module comment).
    journal: Option<Journal>,
    /// Size of store.json as last written or read.
    snapshot_len: u64,
}

struct Journal {
    file: File,
    /// Where the next record goes: the end of the last durable record.
    len: u64,
}

impl EmbeddedBackend {
    pub fn open(dir: &Path) -> anyhow::Result<EmbeddedBackend> {
        fs::create_dir_all(dir).with_context(|| format!("creating state dir {}", dir.display()))?;
        Ok(EmbeddedBackend {
            dir: dir.to_path_buf(),
            journal: None,
            snapshot_len: 0,
        })
    }

    /// Past this size the journal is folded into a new snapshot: replaying
    /// it costs about as much as reading the snapshot by then.
    fn journal_limit(&self) -> u64 {
        self.snapshot_len.max(JOURNAL_FLOOR)
    }

    /// Writes the whole store as a new snapshot and starts an empty journal
    /// after it, in that order (see the module comment for why).
    fn compact(&mut self, changes: &Changes) -> anyhow::Result<()> {
        self.journal = None;
        let all: Vec<&Object> = changes.all().collect();
        let snapshot = serde_json::to_vec(&all).context("serialising the store")?;
        write_atomically(&self.dir, SNAPSHOT, &snapshot)?;
        self.snapshot_len = snapshot.len() as u64;
        let header = journal::header(&snapshot);
        write_atomically(&self.dir, JOURNAL, &header)?;
        let path = self.dir.join(JOURNAL);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        self.journal = Some(Journal {
            file,
            len: header.len() as u64,
        });
        Ok(())
    }
}

impl Journal {
    /// Appends one record and syncs it. On failure, also says whether the
    /// journal is known to be exactly as before (see [`Journal::cut_back`]).
    fn append(&mut self, record: &[u8]) -> Result<(), (std::io::Error, bool)> {
        // At our own offset, not O_APPEND: bytes of a failed earlier write
        // can never end up in front of this record.
        if let Err(e) = self.file.write_all_at(record, self.len) {
            let restored = self.cut_back().is_ok();
            return Err((e, restored));
        }
        // A failed sync leaves the state of earlier pages unknown too
        // (fsync errors are reported once): only a new snapshot is safe.
        self.file.sync_data().map_err(|e| (e, false))?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// After a write that failed part-way (a full disk: ENOSPC): cuts the
    /// file back to the end of the last durable record and syncs that, so
    /// the next record can be appended where this one should have gone.
    /// This is what lets a full disk recover with room for one record,
    /// rather than for a whole new snapshot.
    fn cut_back(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }
}

impl Backend for EmbeddedBackend {
    fn load(&mut self) -> anyhow::Result<Vec<Object>> {
        self.journal = None;
        let (objects, snapshot_len) = read(&self.dir)?;
        self.snapshot_len = snapshot_len;
        Ok(objects)
    }

    fn persist(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let limit = self.journal_limit();
        if let Some(j) = self.journal.as_mut() {
            let record = journal::frame(changes)?;
            if j.len + record.len() as u64 <= limit {
                return match j.append(&record) {
                    Ok(()) => Ok(()),
                    Err((e, restored)) => {
                        if !restored {
                            // What reached the disk is unknown: start over
                            // from a full snapshot next time rather than
                            // append after it.
                            self.journal = None;
                        }
                        Err(e).with_context(|| {
                            format!("appending to {}", self.dir.join(JOURNAL).display())
                        })
                    }
                };
            }
        }
        self.compact(changes)
    }

    fn persist_all(&mut self, changes: &Changes) -> anyhow::Result<()> {
        self.compact(changes)
    }
}

/// Every object in the state dir `dir` (snapshot plus journal), without
/// changing anything: for tests and tools that inspect a state dir. The
/// daemon loads through [`Backend::load`].
pub fn read_state(dir: &Path) -> anyhow::Result<Vec<Object>> {
    Ok(read(dir)?.0)
}

/// The objects in `dir`, and the snapshot's size.
fn read(dir: &Path) -> anyhow::Result<(Vec<Object>, u64)> {
    let snapshot_path = dir.join(SNAPSHOT);
    let Some(snapshot) = read_if_exists(&snapshot_path)? else {
        return Ok((vec![], 0));
    };
    let not_ours = || {
        format!(
            "{} is not a drover store (move it and {JOURNAL} away to start empty)",
            snapshot_path.display()
        )
    };
    let list: Vec<Object> = serde_json::from_slice(&snapshot).with_context(not_ours)?;
    let mut objects: BTreeMap<Key, Object> = list
        .into_iter()
        .map(|o| ((o.kind(), o.name().to_string()), o))
        .collect();

    let journal_path = dir.join(JOURNAL);
    if let Some(bytes) = read_if_exists(&journal_path)? {
        match journal::records_after(&bytes, &snapshot) {
            Some(body) => {
                let (records, valid) = journal::scan(body);
                for (i, payload) in records.iter().enumerate() {
                    journal::apply(payload, &mut objects).with_context(|| {
                        format!(
                            "record {} of {} is not one this drover reads \
                             (written by a newer version?)",
                            i + 1,
                            journal_path.display()
                        )
                    })?;
                }
                if valid < body.len() {
                    tracing::warn!(
                        "{}: ignored {} bytes after record {} (a write cut short by a \
                         crash; it was never acknowledged)",
                        journal_path.display(),
                        body.len() - valid,
                        records.len()
                    );
                }
            }
            None => tracing::info!(
                "{} does not follow {} (left by a compaction cut short); ignored",
                journal_path.display(),
                snapshot_path.display()
            ),
        }
    }
    Ok((objects.into_values().collect(), snapshot.len() as u64))
}

fn read_if_exists(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces DIR/NAME with `bytes` so that a crash at any point leaves the
/// old or the new content: write DIR/NAME.new, fsync, rename, fsync DIR.
///
/// The file is 0600 whatever the umask: the store holds units' `env`
/// (secrets). If a step fails (a full disk), DIR/NAME.new is removed, so a
/// failed attempt does not keep the space it took.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.new"));
    let written = write_synced(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Creates `path` 0600 (or truncates it and makes it 0600), writes and
/// fsyncs.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A file left by an older drover keeps its mode on open: set it.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
