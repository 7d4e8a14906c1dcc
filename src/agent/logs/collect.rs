//! Garbage collection of pod log folders no pod owns.
//!
//! A pod's folder ROOT/POD is made when its first process starts, and the
//! pod is written to the state file up to 100 ms later: a daemon killed in
//! between leaves a folder whose pod never existed for the store, and
//! nothing would ever remove it (`remove_pod` runs when a pod is deleted).
//! At start the daemon removes every such folder.
//!
//! Removing folders is only safe where every folder is a pod's, and only
//! one daemon's pods live. So the daemon first *claims* ROOT:
//! ROOT/.drover marks a folder as drover's log root, and an exclusive
//! flock on it, held while the daemon runs, keeps a second daemon
//! configured with the same `log_dir` from collecting the first one's
//! folders. A folder that is not drover's (say `log_dir = "/var/log"`) is
//! never claimed: its subfolders may be anybody's.

use std::fs::{self, File, OpenOptions};
use std::io;

use nix::fcntl::{Flock, FlockArg};

use super::{check_name, LogDir};

/// The claim file in ROOT.
const CLAIM_FILE: &str = ".drover";

/// This daemon's claim on ROOT, held until dropped (the kernel releases it
/// if the daemon dies).
#[derive(Debug)]
pub struct LogDirClaim {
    _lock: Flock<File>,
}

/// Why ROOT cannot be claimed; the daemon then collects nothing.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("it holds files drover did not make (create {CLAIM_FILE} in it to let drover remove folders of pods that no longer exist)")]
    NotDrovers,
    #[error("another drover daemon uses it (two daemons should not share a log_dir)")]
    Held,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl LogDir {
    /// Claims ROOT (making it if missing). It is drover's if it holds the
    /// claim file, or is empty, or `own_default` says ROOT is drover's own
    /// default location (/var/log/drover, STATE_DIR/logs: made by an older
    /// drover, before the claim file existed).
    pub fn claim(&self, own_default: bool) -> Result<LogDirClaim, ClaimError> {
        fs::create_dir_all(&self.root)?;
        let path = self.root.join(CLAIM_FILE);
        let drovers = own_default || path.exists() || fs::read_dir(&self.root)?.next().is_none();
        if !drovers {
            return Err(ClaimError::NotDrovers);
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(
                |(_, errno)| match errno {
                    nix::errno::Errno::EWOULDBLOCK => ClaimError::Held,
                    e => ClaimError::Io(e.into()),
                },
            )?;
        Ok(LogDirClaim { _lock: lock })
    }

    /// Removes ROOT/NAME for every folder whose NAME `owned` does not
    /// know (pass: "is there a pod NAME in the store"). Files, symlinks and
    /// dot-folders in ROOT are left alone. Returns the names removed; a
    /// folder that cannot be removed is logged and skipped.
    pub fn remove_unowned(
        &self,
        _claim: &LogDirClaim,
        owned: impl Fn(&str) -> bool,
    ) -> io::Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            // `file_type` does not follow symlinks: a link to elsewhere is
            // never a pod folder of ours.
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || check_name("pod", &name).is_err() || owned(&name) {
                continue;
            }
            match self.remove_pod(&name) {
                Ok(()) => removed.push(name),
                Err(e) => tracing::warn!("removing the log folder of gone pod {name}: {e}"),
            }
        }
        removed.sort();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::writer;
    use super::*;
    use std::io::Write;

    #[test]
    fn folders_no_pod_owns_go_and_owned_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().join("logs"), 0);
        let claim = dir.claim(false).expect("a new ROOT is drover's");
        for pod in ["live", "ghost", "ghost-2"] {
            writer(&dir.start_run(pod, "main").unwrap())
                .write_all(b"x\n")
                .unwrap();
        }
        fs::write(dir.root.join("notes.txt"), b"not a folder").unwrap();
        fs::create_dir(dir.root.join(".hidden")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), dir.root.join("link")).unwrap();

        let removed = dir.remove_unowned(&claim, |name| name == "live").unwrap();
        assert_eq!(removed, ["ghost", "ghost-2"]);
        assert_eq!(fs::read(dir.current("live", "main")).unwrap(), b"x\n");
        assert!(!dir.root.join("ghost").exists());
        for kept in ["notes.txt", ".hidden", "link", CLAIM_FILE] {
            assert!(dir.root.join(kept).symlink_metadata().is_ok(), "{kept}");
        }
        assert!(tmp.path().exists(), "a symlink is not followed");
        // Idempotent: nothing left to collect.
        assert!(dir
            .remove_unowned(&claim, |n| n == "live")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_folder_drover_did_not_make_is_not_claimed() {
        let tmp = tempfile::tempdir().unwrap();
        // Say `log_dir = "/var/log"`: full of other programs' folders.
        fs::create_dir(tmp.path().join("nginx")).unwrap();
        let dir = LogDir::new(tmp.path().to_path_buf(), 0);
        assert!(matches!(dir.claim(false), Err(ClaimError::NotDrovers)));
        assert!(!tmp.path().join(CLAIM_FILE).exists());
        // drover's own default location, made by an older drover.
        drop(dir.claim(true).expect("the default location is drover's"));
        // Claimed once, it stays drover's.
        drop(dir.claim(false).expect("the claim file marks it"));
    }

    #[test]
    fn a_root_claimed_by_a_running_daemon_is_not_claimed_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().join("logs"), 0);
        let first = dir.claim(false).unwrap();
        assert!(matches!(dir.claim(false), Err(ClaimError::Held)));
        drop(first);
        dir.claim(false)
            .expect("free again once the first daemon is gone");
    }
}
