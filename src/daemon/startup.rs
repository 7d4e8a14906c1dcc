//! What the daemon sets up around itself before it loads anything: its
//! file descriptor limit, and the folders for its state and logs with
//! modes that keep what they hold private.
//!
//! - **RLIMIT_NOFILE:** systemd's default soft limit is 1,024, and the
//!   daemon holds a pidfd per re-adopted process plus one descriptor per
//!   connection, so the soft limit is raised to the hard one at start
//!   (the usual practice; systemd's own docs recommend it for programs
//!   that need many descriptors).
//! - **State dir 0700:** store.json and store.journal hold every unit's
//!   `env` (passwords, tokens) and the instance id that marks the
//!   daemon's processes. A state dir found readable by others is warned
//!   about, not changed: the admin may have a reason, and must know.
//! - **Log dir 0750, group `drover` when that group exists:** members of
//!   the group may read what the pods print (`drover logs` reads through
//!   the daemon anyway).
//!
//! Folders that exist keep their mode (except the warning); folders made
//! here get exactly these modes, whatever the umask.

use anyhow::Context;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The descriptor limit before and after [`raise_fd_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    pub was: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and says what it got.
/// A failure leaves the limit as it was (it is logged, not fatal: the
/// daemon then caps its connections lower, see `connections.rs`).
pub fn raise_fd_limit() -> FdLimit {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FdLimit {
            was: 1024,
            soft: 1024,
            hard: 1024,
        };
    };
    let mut limit = FdLimit {
        was: soft,
        soft,
        hard,
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => limit.soft = hard,
            Err(e) => tracing::warn!(
                "could not raise the file descriptor limit from {soft} to {hard}: {e}"
            ),
        }
    }
    limit
}

/// Creates the state dir 0700 if it is missing; warns if one that exists
/// can be read or entered by others.
pub fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .permissions()
            .mode();
        if let Some(warning) = open_state_dir_warning(dir, mode) {
            tracing::warn!("{warning}");
        }
        return Ok(());
    }
    create_with_mode(dir, 0o700).with_context(|| format!("creating state dir {}", dir.display()))
}

/// The warning for a state dir of `mode`, if others may read or enter it.
pub fn open_state_dir_warning(dir: &Path, mode: u32) -> Option<String> {
    (mode & 0o007 != 0).then(|| {
        format!(
            "the state dir {} is open to other users (mode {:04o}): it holds the units' \
             environment (secrets); run `chmod 700 {}`",
            dir.display(),
            mode & 0o7777,
            dir.display()
        )
    })
}

/// Creates the log dir 0750 if it is missing, owned by `group` when that
/// group exists and the daemon may give it (runs as root).
pub fn prepare_log_dir(dir: &Path, group: Option<u32>) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    create_with_mode(dir, 0o750).with_context(|| format!("creating log dir {}", dir.display()))?;
    if let Some(gid) = group {
        if let Err(e) = nix::unistd::chown(dir, None, Some(nix::unistd::Gid::from_raw(gid))) {
            tracing::warn!("giving {} to group {gid}: {e}", dir.display());
        }
    }
    Ok(())
}

/// `mkdir -p`, then exactly `mode` on the last folder (not left to the
/// umask).
fn create_with_mode(dir: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// The owner uid of `path`, if it can be read.
pub fn owner_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_folders_get_exact_modes_and_open_state_dirs_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("a/state");
        prepare_state_dir(&state).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&state), 0o700);
        let logs = tmp.path().join("logs");
        prepare_log_dir(&logs, None).unwrap();
        assert_eq!(mode(&logs), 0o750);
        // Existing folders are left as they are.
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_log_dir(&logs, None).unwrap();
        assert_eq!(mode(&logs), 0o755);

        assert_eq!(open_state_dir_warning(&state, 0o40700), None);
        assert_eq!(open_state_dir_warning(&state, 0o750), None);
        let w = open_state_dir_warning(Path::new("/var/lib/drover"), 0o40755).unwrap();
        assert!(
            w.contains("/var/lib/drover is open to other users (mode 0755)"),
            "{w}"
        );
        assert!(w.contains("chmod 700 /var/lib/drover"), "{w}");
        assert!(
            open_state_dir_warning(&state, 0o701).is_some(),
            "others may enter"
        );
    }

    #[test]
    fn the_soft_fd_limit_ends_at_the_hard_one() {
        let limit = raise_fd_limit();
        assert_eq!(limit.soft, limit.hard);
        assert!(limit.was <= limit.soft);
        assert_eq!(
            getrlimit(Resource::RLIMIT_NOFILE).unwrap(),
            (limit.soft, limit.hard)
        );
    }
}
