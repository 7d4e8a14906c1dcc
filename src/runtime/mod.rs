//! The process runtime: the ONLY module that forks, execs, signals, reaps,
//! drops privileges and touches pidfds, and the only one with `unsafe`.
//! Everything above it (the agent) talks to the OS through
//! [`ProcessRuntime`], so the agent's state machine can be tested with a
//! fake. It makes no decisions (restart, escalate, back off): it does what
//! it is told and reports what happened.
//!
//! - [`LinuxRuntime`] (linux.rs): the real thing;
//!   [`FakeRuntime`] (fake.rs): the test double.
//! - [`inotify::Inotify`] (inotify.rs): an inotify fd on tokio's reactor,
//!   for the log readers (registering an fd with tokio is `unsafe`).
//! - [`ExitWatch`] (exit_watch.rs): pidfd-based exit notification and
//!   race-free signalling for processes that are not our children
//!   (re-adopted after a daemon restart).
//! - [`become_subreaper`], [`boot_id`], [`is_same_process`]: daemon start
//!   and re-adoption. [`procfs`]: /proc readers ([`procfs::stat`] gives
//!   state, ppid, pgid of a pid).
//! - [`parse_signal`], [`signal_name`] (signals.rs): user-facing names.
//! - [`user_env`] (credentials.rs): HOME/USER/LOGNAME/SHELL for the agent
//!   to put into a process's env.
//!
//! Hazard for the rest of the daemon: `reap()` is `waitpid(-1)`, so it
//! collects EVERY child of the daemon process. Nothing else in the daemon
//! may start processes with `std::process` or `tokio::process` (for
//! example exec probes): their `wait()` would find the status already
//! stolen (ECHILD). Start them through `spawn` and observe them via
//! `reap` like any other process.

mod child;
mod credentials;
pub mod exit_watch;
pub mod fake;
pub mod inotify;
pub mod linux;
pub mod memory;
pub mod procfs;
pub mod signals;
#[cfg(test)]
mod tests;

pub use credentials::user_env;
pub use exit_watch::ExitWatch;
pub use fake::FakeRuntime;
pub use linux::{become_subreaper, boot_id, is_same_process, LinuxRuntime};
pub use signals::{parse_signal, signal_name};

use crate::api::ProcessIdentity;
use std::path::PathBuf;

/// Everything needed to start one process. `argv` and `env` are final
/// (variables already expanded by the agent); the child gets exactly `env`.
#[derive(Clone, Debug, Default)]
pub struct SpawnRequest {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// Drop to this user (name or numeric uid) before exec; its primary
    /// group and supplementary groups (initgroups) come along.
    pub user: Option<String>,
    /// Override the primary group (name or numeric gid).
    pub group: Option<String>,
    /// stdout and stderr are appended to this file (created 0640).
    pub log_path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spawned {
    pub pid: i32,
    pub identity: ProcessIdentity,
}

/// How a process ended. Shown to users as 128 + N for signal N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    Code(i32),
    Signal(i32),
}

impl ExitReason {
    /// Shell convention: the code, or 128 + signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitReason::Code(c) => c,
            ExitReason::Signal(s) => 128 + s,
        }
    }

    pub fn success(self) -> bool {
        self == ExitReason::Code(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("user \"{user}\" does not exist")]
    UserNotFound { user: String },
    #[error("group \"{group}\" does not exist")]
    GroupNotFound { group: String },
    #[error("exec: \"{command}\": executable file not found")]
    CommandNotFound { command: String },
    #[error("exec: \"{command}\": permission denied")]
    PermissionDenied { command: String },
    #[error("working directory \"{dir}\": {source}")]
    WorkingDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("log file \"{path}\": {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting \"{command}\": {source}")]
    Io {
        command: String,
        source: std::io::Error,
    },
}

impl SpawnError {
    /// The waiting reason Kubernetes would show for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            SpawnError::UserNotFound { .. } | SpawnError::GroupNotFound { .. } => {
                "CreateContainerConfigError"
            }
            _ => "StartError",
        }
    }
}

/// The door to the OS. `&mut self` because a fake records calls.
pub trait ProcessRuntime {
    /// Starts a process in a new session (so it leads its own process
    /// group, pgid == pid), stdin from /dev/null, stdout+stderr to the log.
    fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError>;
    /// `spawn` for each request, results in the same order. A runtime may
    /// start them concurrently (the real one does, one thread per core).
    fn spawn_many(&mut self, reqs: &[SpawnRequest]) -> Vec<Result<Spawned, SpawnError>> {
        reqs.iter().map(|r| self.spawn(r)).collect()
    }
    /// Signals a whole process group (`kill(-pgid, sig)`); ESRCH is Ok.
    fn signal_group(&mut self, pgid: i32, signal: i32) -> std::io::Result<()>;
    /// Signals one process; ESRCH is Ok.
    fn signal(&mut self, pid: i32, signal: i32) -> std::io::Result<()>;
    /// Reaps every exited child without blocking (waitpid(-1, WNOHANG)
    /// until nothing is left), including orphans re-parented to us.
    fn reap(&mut self) -> Vec<(i32, ExitReason)>;
    /// The identity of a live pid, None if it does not exist.
    fn identity(&self, pid: i32) -> Option<ProcessIdentity>;
    /// Pids of live processes whose environment contains `KEY=VALUE`
    /// (how double-forked descendants of a pod are found).
    fn marked(&self, key: &str, value: &str) -> Vec<i32>;
    /// Live session leaders whose `KEY` value starts with `prefix`, with
    /// the value: the main processes a daemon started, found again after
    /// it restarted.
    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)>;
}
