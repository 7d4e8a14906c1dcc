//! The process runtime: the ONLY module that forks, execs, signals, reaps,
//! drops privileges and touches pidfds. Everything above it (the agent)
//! talks to the OS through [`ProcessRuntime`], so the agent's state machine
//! can be tested with a fake.
//!
//! (stub: the runtime helper fills this in)

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
}
