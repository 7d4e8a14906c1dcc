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
//!   (re-adopted after a daemon restart); [`ExitEvents`]: the stream the
//!   daemon's loop waits on (SIGCHLD, and exits of watched processes).
//!   [`FileWatch`] (file_watch.rs): inotify on folders, for the pid files
//!   of daemons that fork themselves.
//! - [`keeper`]: the keeper process that stays the parent of the daemon
//!   and, once the daemon dies, of its pods: it keeps their exit
//!   statuses for the next daemon ([`ProcessRuntime::kept_exit`], and
//!   live through `reap`), restarts the daemon, and is PID 1's reaper.
//! - [`become_subreaper`], [`boot_id`], [`is_same_process`]: daemon start
//!   and re-adoption. [`procfs`]: /proc readers ([`procfs::stat`] gives
//!   state, ppid, pgid of a pid).
//! - [`reexec`]: the daemon re-executing itself in place (same pid, its
//!   children stay its children): the exec, the descriptors handed
//!   over, and the children that exited meanwhile.
//! - signals.rs: checks `api::Signal`'s table against libc.
//! - [`user_env`] (credentials.rs): HOME/USER/LOGNAME/SHELL for the agent
//!   to put into a process's env.
//! - [`cgroup`]: a cgroup per pod, a child per process: limits
//!   (`resources`), OOM kills, usage, whole-tree stop. Its module docs
//!   list what the agent calls and when. rlimits.rs: `rlimits` names.
//!
//! Every child is hardened unless its request says otherwise: umask 0022
//! ([`DEFAULT_UMASK`]), no_new_privs (unless
//! `allow_privilege_escalation`), its rlimits, its cgroup joined before
//! exec.
//!
//! Hazard for the rest of the daemon: `reap()` is `waitpid(-1)`, so it
//! collects EVERY child of the daemon process. Nothing else in the daemon
//! may start processes with `std::process` or `tokio::process` (for
//! example exec probes): their `wait()` would find the status already
//! stolen (ECHILD). Start them through `spawn` and observe them via
//! `reap` like any other process.

pub mod background;
pub mod cgroup;
mod child;
mod credentials;
pub(crate) mod exit_hints;
pub mod exit_watch;
pub mod fake;
pub mod file_watch;
pub mod inotify;
pub mod keeper;
pub mod linux;
pub mod memory;
pub mod procfs;
mod reaping;
pub mod reexec;
mod rlimits;
pub mod signals;
#[cfg(test)]
mod tests;
pub(crate) mod work_queue;

pub use cgroup::{CgroupError, Cgroups, EmptyWatch, PodCgroup, ProcessCgroup, Usage};
pub use credentials::user_env;
pub use exit_watch::{ExitEvent, ExitEvents, ExitWatch};
pub use fake::FakeRuntime;
pub use file_watch::FileWatch;
pub use linux::{become_subreaper, boot_id, is_same_process, LinuxRuntime};
pub use rlimits::RLIMIT_NAMES;

use crate::api::{
    ProcessIdentity, ProcessReason, ProcessUsage, Resources, RlimitValue, Signal, Umask,
};
use std::collections::{BTreeMap, HashSet};
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
    /// The cgroup to start the process in (made if missing; see
    /// [`cgroup`]). None: it stays in the daemon's own cgroup.
    pub cgroup: Option<ProcessCgroup>,
    /// Limits for `cgroup`. Some (and not empty) where cgroups cannot
    /// enforce them, or without `cgroup`: the spawn fails with
    /// [`SpawnError::LimitsUnavailable`]; never runs unlimited.
    pub resources: Option<Resources>,
    /// setrlimit (soft and hard) by name ([`RLIMIT_NAMES`]) before exec.
    pub rlimits: BTreeMap<String, RlimitValue>,
    /// The file mode creation mask; None: 0022 (never the daemon's own).
    pub umask: Option<Umask>,
    /// `false` (the default): no_new_privs is set, so exec can never gain
    /// privileges (setuid binaries, file capabilities). `true` only for
    /// units a root-owned file allows it (the daemon checks that).
    pub allow_privilege_escalation: bool,
}

impl SpawnRequest {
    /// The limits that bind: `resources` unless empty (an empty table
    /// limits nothing, and asks for no cgroup controller).
    pub fn limits(&self) -> Option<&Resources> {
        self.resources.as_ref().filter(|r| !r.is_empty())
    }
}

/// An exit the keeper recorded: the status and when it was reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptExit {
    pub exit: ExitReason,
    pub at: std::time::SystemTime,
}

/// The umask a process gets unless its unit sets one.
pub const DEFAULT_UMASK: u32 = 0o022;

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
    /// `resources` asked where no cgroup can enforce them: refused, never
    /// run unlimited.
    #[error("resources cannot be enforced here: {reason}")]
    LimitsUnavailable { reason: String },
    /// The process cgroup could not be made, limited or joined.
    #[error("starting \"{command}\": cgroup: {source}")]
    Cgroup {
        command: String,
        source: CgroupError,
    },
    /// An `rlimits` name drover does not know, or a value the kernel
    /// refused (above the hard limit without root, above fs.nr_open).
    #[error("rlimit \"{name}\": {source}")]
    Rlimit {
        name: String,
        source: std::io::Error,
    },
    /// clone failed with EAGAIN: the pid table, a pids cgroup limit or
    /// RLIMIT_NPROC is exhausted. Worth retrying later.
    #[error("starting \"{command}\": no process slot left (pid table, pids limit or RLIMIT_NPROC): {source}")]
    ProcessLimit {
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
            | SpawnError::Io { .. }
            | SpawnError::LimitsUnavailable { .. }
            | SpawnError::Cgroup { .. }
            | SpawnError::Rlimit { .. }
            | SpawnError::ProcessLimit { .. } => ProcessReason::StartError,
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
    /// `req` will be spawned soon (gathered for the next `spawn_many`):
    /// a runtime may get ready for it meanwhile, off the caller's thread
    /// (the real one makes its cgroup: `cgroup/ahead.rs`). Nothing may
    /// depend on it: the spawn does whatever was not done.
    fn will_spawn(&mut self, _req: &SpawnRequest) {}
    /// Signals a whole process group (`kill(-pgid, sig)`); ESRCH is Ok.
    fn signal_group(&mut self, pgid: i32, signal: Signal) -> std::io::Result<()>;
    /// Signals one process; ESRCH is Ok.
    fn signal(&mut self, pid: i32, signal: Signal) -> std::io::Result<()>;
    /// The first exited child (oldest first) with its exit, NOT reaped
    /// (`waitid(WNOWAIT)`): it stays a zombie until [`Self::reap_child`],
    /// so a daemon that dies before it wrote the exit down leaves the
    /// status to its keeper ([`reaping`]). None: no child has exited.
    fn next_exit(&mut self) -> Option<(i32, ExitReason)>;
    /// Whether the last [`Self::next_exit`] returned None with children
    /// left unscanned: it returned the exits SIGCHLD named first, and
    /// looks for the rest (exits whose SIGCHLD was merged into another's)
    /// when called again. Act on what it returned, then call again.
    fn scan_deferred(&self) -> bool {
        false
    }
    /// Reaps the exited child `pid` that [`Self::next_exit`] reported.
    fn reap_child(&mut self, pid: i32);
    /// Exits the keeper passed on since the last call: processes adopted
    /// after a daemon crash are its children, not ours.
    fn kept_exits(&mut self) -> Vec<(i32, ExitReason)> {
        Vec::new()
    }
    /// Every exit at once, without blocking: the keeper's, then each
    /// exited child (orphans re-parented to us included), reaped. The
    /// agent reaps through `next_exit` and `reap_child` itself, to hold
    /// exits and to work in batches.
    fn reap(&mut self) -> Vec<(i32, ExitReason)> {
        let mut exits = self.kept_exits();
        loop {
            while let Some((pid, exit)) = self.next_exit() {
                self.reap_child(pid);
                exits.push((pid, exit));
            }
            if !self.scan_deferred() {
                return exits;
            }
        }
    }
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
    /// How `pid` (the process `identity`) ended, if this daemon's keeper
    /// reaped it while no daemon ran ([`keeper`]), or if it is this
    /// process's own child that ended while the daemon re-executed
    /// itself (a zombie: reaped now, [`reexec`]); None when the exit is
    /// not known.
    fn kept_exit(&self, pid: i32, identity: &ProcessIdentity) -> Option<KeptExit> {
        let _ = (pid, identity);
        None
    }
    /// Live processes whose `KEY` variable holds one of `values`, with
    /// the value (how double-forked descendants of stopped runs are
    /// found): one pass for the whole set.
    fn marked(&self, key: &str, values: &HashSet<String>) -> Vec<(i32, String)>;
    /// Live session leaders whose `KEY` value starts with `prefix`, with
    /// the value: the main processes a daemon started, found again after
    /// it restarted.
    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)>;

    // ---- cgroups (see `cgroup` for what to call when). The defaults are
    // a runtime without cgroups: every call says they are unavailable.

    /// Which hierarchy pods go in, or why none: for `describe node` and
    /// the daemon's first log line.
    fn cgroups_description(&self) -> String {
        "none (this runtime has no cgroups); processes with resources are refused".to_string()
    }
    /// Why limits cannot be enforced here (no usable cgroup hierarchy);
    /// None where they can.
    fn cgroups_unavailable(&self) -> Option<String> {
        Some("this runtime has no cgroups".to_string())
    }
    /// Makes pod `pod_uid`'s cgroup (idempotent; call before the pod's
    /// first spawn, and again for a pod re-adopted after a restart).
    fn create_pod_cgroup(&mut self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        let _ = pod_uid;
        Err(no_cgroups())
    }
    /// Pod `pod_uid`'s cgroup for its spawns, which make its directories
    /// (the first spawn does: the caller's loop does not wait for the
    /// mkdirs). Runtimes that cannot wait make it now.
    fn pod_cgroup(&mut self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        self.create_pod_cgroup(pod_uid)
    }
    /// SIGKILLs every process in the pod's cgroup, those that left its
    /// process group or session included. Returns at once.
    fn kill_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// Whether no live process is left in the pod's cgroup.
    fn cgroup_is_empty(&self, cgroup: &PodCgroup) -> Result<bool, CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// v2: wakes when the pod's cgroup may have emptied. None: check
    /// `cgroup_is_empty` after reaps instead.
    fn watch_cgroup_empty(&self, cgroup: &PodCgroup) -> Result<Option<EmptyWatch>, CgroupError> {
        let _ = cgroup;
        Ok(None)
    }
    /// Removes an empty pod cgroup now (Err(NotEmpty) while processes
    /// remain).
    fn remove_pod_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// Removes an empty pod cgroup soon, without waiting for it: rmdir of
    /// a cgroup is slow (see `cgroup`'s removal.rs) and the daemon's loop
    /// must not wait. Failures are logged; a cgroup still busy is tried
    /// again, then left for the next start. A later `create_pod_cgroup`
    /// of the same pod cancels the removal. This default removes at once.
    fn release_pod_cgroup(&mut self, cgroup: &PodCgroup) {
        match self.remove_pod_cgroup(cgroup) {
            Ok(()) | Err(CgroupError::Unavailable { .. }) => {}
            Err(e) => tracing::warn!("removing the cgroup of pod {}: {e}", cgroup.pod_uid()),
        }
    }
    /// The pod cgroups that exist in this daemon's cgroup root (at start:
    /// those of pods no longer known are removed).
    fn existing_pod_cgroups(&self) -> Vec<PodCgroup> {
        Vec::new()
    }
    /// Memory and CPU time of the pod's cgroup.
    fn cgroup_usage(&self, cgroup: &PodCgroup) -> Result<Usage, CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// OOM kills so far in a process's cgroup: read at start and after
    /// the exit; more, with death by SIGKILL, means `OOMKilled`.
    /// `limits`: the process's (without a memory limit, a v1 process has
    /// no memory cgroup to read).
    fn oom_kills(
        &self,
        cgroup: &ProcessCgroup,
        limits: Option<&Resources>,
    ) -> Result<u64, CgroupError> {
        let _ = (cgroup, limits);
        Err(no_cgroups())
    }
    /// Pids in the pod's cgroup.
    fn cgroup_pids(&self, cgroup: &PodCgroup) -> Result<Vec<i32>, CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// The process cgroup (hence pod) `pid` is in, if one of ours.
    fn cgroup_of(&self, pid: i32) -> Option<ProcessCgroup> {
        let _ = pid;
        None
    }
    /// SIGKILLs every process in one process's cgroup (what a run left
    /// there, escaped ones included). Returns at once; an empty cgroup
    /// costs a read.
    fn kill_process_cgroup(&mut self, cgroup: &ProcessCgroup) -> Result<(), CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// Sends `signal` to process group `pgid` (as `signal_group`) and to
    /// every process of `cgroup` outside that group (descendants that
    /// left it), each once.
    fn signal_tree(
        &mut self,
        pgid: i32,
        cgroup: &ProcessCgroup,
        signal: Signal,
    ) -> Result<(), CgroupError> {
        let _ = (pgid, cgroup, signal);
        Err(no_cgroups())
    }
    /// Memory and CPU time of one process's cgroup (its whole tree).
    fn process_cgroup_usage(&self, cgroup: &ProcessCgroup) -> Result<Usage, CgroupError> {
        let _ = cgroup;
        Err(no_cgroups())
    }
    /// Removes this daemon's cgroup root (`drover up` leaving: every pod
    /// is gone). Err(NotEmpty) while pod cgroups remain.
    fn remove_cgroup_root(&mut self) -> Result<(), CgroupError> {
        Err(no_cgroups())
    }

    /// Whether `pid` is a live child of this process (one it started, or
    /// an orphan re-parented to it as the subreaper): how a pid file that
    /// names a process outside the pod's tree is told apart without a
    /// cgroup.
    fn is_child(&self, pid: i32) -> bool;
}

fn no_cgroups() -> CgroupError {
    CgroupError::Unavailable {
        reason: "this runtime has no cgroups".to_string(),
    }
}
