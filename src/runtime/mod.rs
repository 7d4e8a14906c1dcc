//! The process runtime: the ONLY module that forks, execs, signals, reaps,
//! drops privileges and touches pidfds, and the only one with `unsafe`.
//! Everything above it (the agent) talks to the OS through
//! [`ProcessRuntime`], so the agent's state machine can be tested with a
//! fake. It makes no decisions (restart, escalate, back off): it does what
//! it is told and reports what happened.
//!
//! - [`LinuxRuntime`] (linux.rs): the real thing;
//!   [`FakeRuntime`] (fake.rs): the test double.
//! - [`ExitWatch`] (exit_watch.rs): pidfd-based exit notification and
//!   race-free signalling for processes that are not our children
//!   (re-adopted after a daemon restart); [`ExitEvents`]: the stream the
//!   daemon's loop waits on (SIGCHLD, and exits of watched processes).
//! - [`become_subreaper`], [`boot_id`], [`is_same_process`]: daemon start
//!   and re-adoption. [`procfs`]: /proc readers ([`procfs::stat`] gives
//!   state, ppid, pgid of a pid).
//! - signals.rs: checks `api::Signal`'s table against libc.
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
pub mod linux;
pub mod memory;
pub mod procfs;
pub mod signals;
#[cfg(test)]
mod tests;

pub use credentials::user_env;
pub use exit_watch::{ExitEvent, ExitEvents, ExitWatch};
pub use fake::FakeRuntime;
pub use linux::{become_subreaper, boot_id, is_same_process, LinuxRuntime};

use crate::api::{ProcessIdentity, ProcessReason, ProcessUsage, Signal};
use std::collections::HashSet;
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
    Signal(Signal),
}

impl ExitReason {
    /// Shell convention: the code, or 128 + signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitReason::Code(c) => c,
            ExitReason::Signal(s) => 128 + s.number(),
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
    pub fn reason(&self) -> ProcessReason {
        match self {
            SpawnError::UserNotFound { .. } | SpawnError::GroupNotFound { .. } => {
                ProcessReason::CreateContainerConfigError
            }
            SpawnError::CommandNotFound { .. }
            | SpawnError::PermissionDenied { .. }
            | SpawnError::WorkingDir { .. }
            | SpawnError::LogFile { .. }
            | SpawnError::Io { .. } => ProcessReason::StartError,
        }
    }
}

/// Where a live process belongs, as the kernel says: what the notify
/// socket checks a sender against (never what the sender says of itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessFacts {
    /// Its session id. Every process the runtime starts leads its own
    /// session, so the session of a pod process's descendants is that
    /// process's pid (unless they called setsid themselves).
    pub session: i32,
    /// Its real uid.
    pub uid: u32,
}

/// What [`ProcessRuntime::watch`] achieved.
#[derive(Debug)]
pub enum Watch {
    /// Its exit will be reported (an [`ExitEvent::Watched`] for the real
    /// runtime).
    Watching,
    /// It is not the recorded process any more (exited, pid reused).
    Gone,
    /// It cannot be watched now (no descriptor left: EMFILE, ENFILE,
    /// ENOMEM, or the runtime keeps the rest for other work). It may well
    /// be alive: the caller must look again later, and never take this as
    /// an exit.
    Unavailable(std::io::Error),
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
    fn signal_group(&mut self, pgid: i32, signal: Signal) -> std::io::Result<()>;
    /// Signals one process; ESRCH is Ok.
    fn signal(&mut self, pid: i32, signal: Signal) -> std::io::Result<()>;
    /// Reaps every exited child without blocking (waitpid(-1, WNOHANG)
    /// until nothing is left), including orphans re-parented to us.
    fn reap(&mut self) -> Vec<(i32, ExitReason)>;
    /// The identity of a live pid, None if it does not exist (or is a
    /// zombie: it ended, whoever reaps it).
    fn identity(&self, pid: i32) -> Option<ProcessIdentity>;
    /// Session and uid of a live pid.
    fn facts(&self, pid: i32) -> Option<ProcessFacts>;
    /// CPU time and resident memory of a live pid, now.
    fn usage(&self, pid: i32) -> Option<ProcessUsage>;
    /// Starts watching a process that is not our child (re-adopted after
    /// a daemon restart): its exit is then reported although no SIGCHLD
    /// will come. Checks `identity` after taking hold of the process, so
    /// a pid reused meanwhile is [`Watch::Gone`], not watched.
    fn watch(&mut self, pid: i32, identity: &ProcessIdentity) -> Watch;
    /// Live processes whose `KEY` variable holds one of `values`, with
    /// the value (how double-forked descendants of stopped runs are
    /// found): one pass for the whole set.
    fn marked(&self, key: &str, values: &HashSet<String>) -> Vec<(i32, String)>;
    /// Live session leaders whose `KEY` value starts with `prefix`, with
    /// the value: the main processes a daemon started, found again after
    /// it restarted.
    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)>;
}
