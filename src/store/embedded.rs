//! The embedded backend: the whole store as one JSON snapshot,
//! STATE_DIR/store.json, replaced atomically.
//!
//! Crash safety: the snapshot is written to store.json.new, fsynced,
//! renamed over store.json, and the directory is fsynced, so a crash at
//! any point leaves either the old or the new snapshot (s6's
//! `s6_svstatus_write` does the same). A leftover .new is ignored.
//!
//! Why one snapshot rather than a file per object: a pass that starts 1000
//! pods changes 1000 objects; one write + one fsync per pass is what keeps
//! start-up fast. The daemon coalesces: at most one persist in flight, and
//! the next one carries every change made meanwhile.

use super::Backend;
use crate::api::Object;
use anyhow::Context;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct EmbeddedBackend {
    dir: PathBuf,
}

impl EmbeddedBackend {
    pub fn open(dir: &Path) -> anyhow::Result<EmbeddedBackend> {
        fs::create_dir_all(dir).with_context(|| format!("creating state dir {}", dir.display()))?;
        Ok(EmbeddedBackend {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("store.json")
    }
}

impl Backend for EmbeddedBackend {
    fn load(&mut self) -> anyhow::Result<Vec<Object>> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a drover store (move it away to start empty)",
                path.display()
            )
        })
    }

    fn persist(&mut self, snapshot: &[u8]) -> anyhow::Result<()> {
        write_atomically(&self.dir, "store.json", snapshot)
    }
}

/// Replaces DIR/NAME with `bytes` so that a crash at any point leaves the
/// old or the new content: write DIR/NAME.new, fsync, rename, fsync DIR.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.new"));
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
