//! Default locations (product.md §5): system paths when run as root, the
//! user's XDG directories otherwise, so `drover up` works without root.

use std::path::{Path, PathBuf};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => home().join(fallback),
    }
}

/// The system daemon's control socket (0660 root:drover).
pub const SYSTEM_SOCKET: &str = "/run/drover/drover.sock";

/// Where a daemon listens when neither `--socket` nor the config says:
/// the system socket as root, else the per-user one.
pub fn default_socket() -> PathBuf {
    if is_root() {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    user_socket()
}

/// $XDG_RUNTIME_DIR/drover/drover.sock (the state dir's drover.sock
/// without XDG_RUNTIME_DIR): the socket of a non-root user's own daemon.
fn user_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v).join("drover/drover.sock"),
        _ => xdg("XDG_STATE_HOME", ".local/state").join("drover/drover.sock"),
    }
}

/// The socket the CLI talks to when neither `--socket` nor DROVER_SOCKET
/// names one (product.md §5): the system socket when it exists and this
/// caller may use it (root, or a member of its group), else the caller's
/// own daemon's. See [`choose_client_socket`] for the whole rule.
pub fn client_socket() -> PathBuf {
    let system = PathBuf::from(SYSTEM_SOCKET);
    let user = user_socket();
    match choose_client_socket(is_root(), probe(&system), probe(&user)) {
        Which::System => system,
        Which::User => user,
    }
}

/// What a socket path offers this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketAccess {
    /// No socket there.
    Missing,
    /// A socket this process may not connect to (not in its group, or a
    /// folder on the way it may not enter).
    Denied,
    /// A socket this process may connect to (whether a daemon answers is
    /// another matter).
    Usable,
}

/// Which of the two sockets the CLI uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    System,
    User,
}

/// The rule, in order:
/// 1. root: the system socket (root's own daemon is the system daemon);
/// 2. the system socket when the caller may use it;
/// 3. the caller's own daemon's socket when there is one;
/// 4. the system socket when it exists but refuses the caller, so the
///    error says "Permission denied" there (and how to get access)
///    rather than that no per-user daemon runs;
/// 5. the per-user socket (the error then says to start a daemon).
pub fn choose_client_socket(root: bool, system: SocketAccess, user: SocketAccess) -> Which {
    use SocketAccess::*;
    match (root, system, user) {
        (true, _, _) => Which::System,
        (_, Usable, _) => Which::System,
        (_, _, Usable | Denied) => Which::User,
        (_, Denied, Missing) => Which::System,
        (_, Missing, Missing) => Which::User,
    }
}

/// What `path` offers this process: a socket it may read and write (with
/// its effective uid, gid and supplementary groups, as connect(2) checks).
fn probe(path: &Path) -> SocketAccess {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            let rw = nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK;
            match nix::unistd::eaccess(path, rw) {
                Ok(()) => SocketAccess::Usable,
                Err(_) => SocketAccess::Denied,
            }
        }
        Ok(_) => SocketAccess::Missing,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => SocketAccess::Denied,
        Err(_) => SocketAccess::Missing,
    }
}

/// /var/lib/drover, or $XDG_STATE_HOME/drover (~/.local/state/drover).
pub fn default_state_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/drover")
    } else {
        xdg("XDG_STATE_HOME", ".local/state").join("drover")
    }
}

/// /etc/drover/units, or $XDG_CONFIG_HOME/drover/units.
pub fn default_units_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/etc/drover/units")
    } else {
        xdg("XDG_CONFIG_HOME", ".config").join("drover/units")
    }
}

/// /etc/drover/drover.toml, or $XDG_CONFIG_HOME/drover/drover.toml.
pub fn default_config() -> PathBuf {
    if is_root() {
        PathBuf::from("/etc/drover/drover.toml")
    } else {
        xdg("XDG_CONFIG_HOME", ".config").join("drover/drover.toml")
    }
}

/// Where process logs go when no log dir is configured: /var/log/drover as
/// root with the default state dir, else STATE_DIR/logs (so side-by-side
/// test daemons never share log files).
pub fn default_log_dir(state_dir: &std::path::Path) -> PathBuf {
    if is_root() && state_dir == std::path::Path::new("/var/lib/drover") {
        PathBuf::from("/var/log/drover")
    } else {
        state_dir.join("logs")
    }
}

/// The host name, the default node name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::SocketAccess::*;
    use super::*;

    #[test]
    fn root_always_uses_the_system_socket() {
        for system in [Missing, Denied, Usable] {
            for user in [Missing, Denied, Usable] {
                assert_eq!(choose_client_socket(true, system, user), Which::System);
            }
        }
    }

    #[test]
    fn a_member_of_the_group_uses_the_system_socket_even_with_a_daemon_of_its_own() {
        for user in [Missing, Denied, Usable] {
            assert_eq!(choose_client_socket(false, Usable, user), Which::System);
        }
    }

    #[test]
    fn others_use_their_own_daemon_and_are_told_why_the_system_one_refused() {
        assert_eq!(choose_client_socket(false, Denied, Usable), Which::User);
        assert_eq!(choose_client_socket(false, Missing, Usable), Which::User);
        assert_eq!(choose_client_socket(false, Missing, Denied), Which::User);
        // No daemon of their own: the system socket's EACCES is the
        // useful error.
        assert_eq!(choose_client_socket(false, Denied, Missing), Which::System);
        // Nothing anywhere: the per-user path ("start a daemon").
        assert_eq!(choose_client_socket(false, Missing, Missing), Which::User);
    }

    #[test]
    fn probing_tells_sockets_from_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(probe(&sock), Usable);
        assert_eq!(probe(&dir.path().join("none")), Missing);
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert_eq!(probe(&dir.path().join("file")), Missing);
    }
}
