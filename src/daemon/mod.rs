//! The daemon: wires the store, the controllers and the node agent into one
//! event loop, and serves the HTTP+JSON API on the control socket.

use std::path::PathBuf;

/// Everything `drover daemon` and `drover up` are started with.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// The units folder: applied at start and on reload; its files own
    /// their units (a removed file deletes its unit).
    pub units_dir: Option<PathBuf>,
    pub node_name: String,
    /// Labels of this node (from the config file).
    pub node_labels: std::collections::BTreeMap<String, String>,
    pub log_dir: PathBuf,
    /// `drover up`: stream every pod's log lines to stdout with a
    /// `POD/PROCESS | ` prefix, and stop every pod on Ctrl-C / SIGTERM
    /// before exiting. (`drover daemon` exits on SIGTERM leaving its
    /// processes running, to re-adopt them when it starts again.)
    pub foreground: bool,
    /// Size at which a process log is rotated (copy-truncate).
    pub log_max_bytes: u64,
}

/// Runs the daemon until it is told to stop. Builds its own tokio runtime.
pub fn run(_opts: DaemonOptions) -> anyhow::Result<()> {
    anyhow::bail!("daemon not built yet")
}
