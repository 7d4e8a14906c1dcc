//! Default locations (product.md §5): system paths when run as root, the
//! user's XDG directories otherwise, so `drover up` works without root.

use std::path::PathBuf;

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

/// The control socket: /run/drover/drover.sock, or
/// $XDG_RUNTIME_DIR/drover/drover.sock (falling back to the state dir).
pub fn default_socket() -> PathBuf {
    if is_root() {
        return PathBuf::from("/run/drover/drover.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v).join("drover/drover.sock"),
        _ => default_state_dir().join("drover.sock"),
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
