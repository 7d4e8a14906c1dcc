//! `LinuxRuntime`: the real [`ProcessRuntime`]. It starts processes with
//! a vfork-style clone (child.rs: exec failures come back as errnos),
//! reaps with `waitpid(-1)`, signals with `kill(2)`.
//!
//! It must not block: `reap` uses WNOHANG, `spawn` only waits for the
//! child's exec. It must not make decisions either (when to restart, when
//! to escalate TERM to KILL): that is the agent's state machine.

use super::cgroup::{CgroupError, Cgroups, EmptyWatch, PodCgroup, ProcessCgroup, Usage};
use super::child::{ChildError, ChildPlan, Confinement, Step};
use super::credentials;
use super::exit_watch::{ExitEvents, Watcher};
use super::keeper::KeeperLink;
use super::procfs;
use super::reaping::Exits;
use super::rlimits::{self, Rlimit};
use super::{
    ExitReason, KeptExit, ProcessFacts, ProcessRuntime, SpawnError, SpawnRequest, Spawned, Watch,
    DEFAULT_UMASK,
};
use crate::api::{ProcessIdentity, ProcessUsage, Resources, Signal};
use nix::errno::Errno;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

/// The real runtime. Holds this boot's id (read once: it cannot change
/// while we run), /dev/null (every child's stdin, opened once), the
/// number of CPUs and the cgroup hierarchy pods go in.
#[derive(Clone, Debug)]
pub struct LinuxRuntime {
    boot_id: String,
    dev_null: Arc<File>,
    /// CPUs this process may use: threads for `spawn_many`.
    cores: usize,
    cgroups: Arc<Cgroups>,
    /// Pidfds of processes that are not our children.
    watcher: Watcher,
    /// The keeper this daemon runs under, if any (`keeper`): exits it
    /// recorded, and those of adopted processes, which are its children.
    keeper: Option<Arc<KeeperLink>>,
    /// Exited children: those SIGCHLD named, then a scan (reaping.rs).
    exits: Exits,
}

impl LinuxRuntime {
    /// A runtime without cgroups: requests with `resources` are refused.
    /// The daemon uses [`LinuxRuntime::with_cgroups`].
    pub fn new() -> LinuxRuntime {
        LinuxRuntime::with_cgroups(Cgroups::unavailable(
            "cgroups were not set up for this runtime",
        ))
    }

    /// A runtime putting pods into `cgroups` (usually
    /// `Cgroups::detect(instance)`, once, at daemon start).
    pub fn with_cgroups(cgroups: Cgroups) -> LinuxRuntime {
        let dev_null = File::open("/dev/null")
            .and_then(above_stdio)
            .expect("/dev/null can be opened");
        LinuxRuntime {
            boot_id: procfs::boot_id(),
            dev_null: Arc::new(dev_null),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cgroups: Arc::new(cgroups),
            watcher: Watcher::new(),
            keeper: None,
            exits: Exits::default(),
        }
    }

    /// Takes exits and adopted processes' statuses from `keeper`.
    pub fn with_keeper(mut self, keeper: Option<Arc<KeeperLink>>) -> LinuxRuntime {
        self.keeper = keeper;
        self
    }

    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    /// The exits to wait for (SIGCHLD, watched processes): once per
    /// runtime, inside the tokio runtime, before the first spawn.
    pub fn exit_events(&self) -> io::Result<ExitEvents> {
        ExitEvents::new(&self.watcher, self.keeper.clone())
    }
}

impl Default for LinuxRuntime {
    fn default() -> Self {
        LinuxRuntime::new()
    }
}

/// Makes this process the reaper of every orphan below it
/// (`PR_SET_CHILD_SUBREAPER`): a double-forked grandchild of a pod is
/// re-parented to the daemon instead of PID 1, so its exit reaches `reap`
/// and it leaves no zombie. Call once at daemon start, before spawning.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> String {
    procfs::boot_id()
}

/// Whether `pid` is still the process recorded as `identity` (same start
/// tick, same boot). A restarted daemon calls this before trusting, let
/// alone signalling, a pid read from its state. See
/// [`procfs::is_same_process`] for the zombie case.
pub fn is_same_process(pid: i32, identity: &ProcessIdentity) -> bool {
    procfs::is_same_process(pid, identity)
}

/// Below this many processes a batch is started from the calling thread
/// alone: a thread costs more than it saves.
const PARALLEL_FROM: usize = 8;

impl LinuxRuntime {
    /// `spawn`, callable from several threads at once: each clone runs
    /// on its thread's own stack and sleeps only that thread, and nothing
    /// reaps meanwhile (`spawn_many` holds `&mut self`), so an exec
    /// failure's child is reaped by the thread that started it.
    fn spawn_one(&self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        let command = match req.argv.first() {
            Some(c) if !c.is_empty() => c.clone(),
            _ => {
                return Err(SpawnError::Io {
                    command: String::new(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
                })
            }
        };
        // Limits that cannot be enforced are refused before anything
        // else, so nothing is made or opened for a request that fails.
        let resources = req.limits();
        if let Some(res) = resources {
            let refusal = self.cgroups.refuses(res).or_else(|| {
                req.cgroup
                    .is_none()
                    .then(|| "the request names no cgroup to enforce them in".to_string())
            });
            if let Some(reason) = refusal {
                return Err(SpawnError::LimitsUnavailable { reason });
            }
        }
        let limits = rlimits::resolve(&req.rlimits).map_err(|name| SpawnError::Rlimit {
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown limit (known: {})",
                    rlimits::RLIMIT_NAMES.map(|(n, _)| n).join(", ")
                ),
            ),
            name,
        })?;
        // Everything that can fail for a reason other than exec is checked
        // here, before clone, so that ENOENT from spawn means "no such
        // binary" and nothing else.
        let creds = credentials::resolve(&command, req.user.as_deref(), req.group.as_deref())?;
        if let Some(dir) = &req.working_dir {
            check_working_dir(dir)?;
        }
        let log = open_log(&req.log_path)?;
        let placement =
            match &req.cgroup {
                Some(cg) => Some(self.cgroups.prepare(cg, resources).map_err(|source| {
                    SpawnError::Cgroup {
                        command: command.clone(),
                        source,
                    }
                })?),
                None => None,
            };
        let confinement = Confinement {
            join: placement
                .iter()
                .flat_map(|p| p.procs.iter().map(|fd| fd.as_raw_fd()))
                .collect(),
            clone_into: placement
                .as_ref()
                .and_then(|p| p.clone_into.as_ref())
                .map(|fd| fd.as_raw_fd()),
            rlimits: limits.clone(),
            umask: req.umask.map_or(DEFAULT_UMASK, |u| u.0),
            no_new_privs: !req.allow_privilege_escalation,
        };
        let plan = ChildPlan::new(
            &req.argv,
            &req.env,
            req.working_dir.as_deref(),
            &*self.dev_null,
            &log,
            creds,
            confinement,
        )
        .map_err(|source| SpawnError::Io {
            command: command.clone(),
            source,
        })?;
        let pid = plan.spawn().map_err(|e| {
            let procs_paths = placement.as_ref().map(|p| p.procs_paths.as_slice());
            child_error(&command, req, &limits, procs_paths.unwrap_or_default(), e)
        })?;
        // The placement's descriptors were only for the child to join.
        drop(placement);
        // The child has its own copy of the log descriptor now.
        drop(log);
        // Our unreaped child always has a /proc entry (a zombie at worst),
        // unless something else in this process reaped it: a bug there.
        let identity = procfs::identity(pid, &self.boot_id).ok_or_else(|| SpawnError::Io {
            command: command.clone(),
            source: io::Error::other(format!(
                "pid {pid} vanished right after start (reaped elsewhere?)"
            )),
        })?;
        Ok(Spawned { pid, identity })
    }
}

impl ProcessRuntime for LinuxRuntime {
    fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        self.spawn_one(req)
    }

    /// One thread per core, each starting a contiguous share of `reqs`.
    /// Why: the calling thread sleeps in every clone until that child has
    /// exec'd; with a thread per core, one child's exec overlaps another's
    /// setup, and starting 1000 processes takes measurably less time (see
    /// README, benchmarks).
    fn spawn_many(&mut self, reqs: &[SpawnRequest]) -> Vec<Result<Spawned, SpawnError>> {
        let workers = self.cores.min(reqs.len() / PARALLEL_FROM).max(1);
        let this = &*self;
        let start_all = |share: &[SpawnRequest]| -> Vec<_> {
            share.iter().map(|r| this.spawn_one(r)).collect()
        };
        if workers == 1 {
            return start_all(reqs);
        }
        let mut shares = reqs.chunks(reqs.len().div_ceil(workers));
        let mine = shares.next().unwrap_or_default();
        std::thread::scope(|scope| {
            // A thread that cannot be made (EAGAIN when the pid table or
            // a pids limit is exhausted) is no reason to panic: its share
            // is started from this thread instead, after our own.
            let others: Vec<_> = shares
                .map(|share| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, move || start_all(share))
                        .map_err(|_| share)
                })
                .collect();
            let mut results = start_all(mine);
            for other in others {
                match other {
                    Ok(handle) => match handle.join() {
                        Ok(r) => results.extend(r),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    Err(share) => results.extend(start_all(share)),
                }
            }
            results
        })
    }

    fn will_spawn(&mut self, req: &SpawnRequest) {
        if let Some(cg) = &req.cgroup {
            self.cgroups.prepare_ahead(cg, req.limits());
        }
    }

    fn signal_group(&mut self, pgid: i32, signal: Signal) -> io::Result<()> {
        // kill(-1) would signal every process we may signal and kill(0) our
        // own group: never let a bad pgid get there.
        if pgid <= 1 {
            return Err(invalid(format!("refusing to signal process group {pgid}")));
        }
        send(-pgid, signal.number())
    }

    fn signal(&mut self, pid: i32, signal: Signal) -> io::Result<()> {
        if pid <= 1 {
            return Err(invalid(format!("refusing to signal pid {pid}")));
        }
        send(pid, signal.number())
    }

    fn next_exit(&mut self) -> Option<(i32, ExitReason)> {
        self.exits.next()
    }

    fn scan_deferred(&self) -> bool {
        self.exits.scan_deferred()
    }

    fn reap_child(&mut self, pid: i32) {
        super::reaping::reap_pid(pid);
        self.exits.reaped(pid);
    }

    fn kept_exits(&mut self) -> Vec<(i32, ExitReason)> {
        self.keeper
            .as_ref()
            .map(|k| k.take_exits())
            .unwrap_or_default()
    }

    /// A zombie has no identity here: it is dead, whoever reaps it (a
    /// daemon that restarted must not re-adopt a process that already
    /// ended, even if its new parent has not reaped it yet).
    fn identity(&self, pid: i32) -> Option<ProcessIdentity> {
        if procfs::stat(pid).is_none_or(|s| s.is_zombie()) {
            return None;
        }
        procfs::identity(pid, &self.boot_id)
    }

    fn facts(&self, pid: i32) -> Option<ProcessFacts> {
        let st = procfs::stat(pid).filter(|s| !s.is_zombie())?;
        Some(ProcessFacts {
            session: st.session,
            uid: procfs::real_uid(pid)?,
        })
    }

    fn usage(&self, pid: i32) -> Option<ProcessUsage> {
        let st = procfs::stat(pid).filter(|s| !s.is_zombie())?;
        Some(ProcessUsage {
            cpu_seconds: (st.utime + st.stime) as f64 / procfs::clock_ticks_per_second(),
            memory_bytes: st.rss_pages * procfs::page_size(),
        })
    }

    /// The keeper's child (adopted after a daemon crash): the keeper
    /// passes its exit on, with the status, and no pidfd is needed.
    /// Otherwise a pidfd, and no status.
    fn watch(&mut self, pid: i32, identity: &ProcessIdentity) -> Watch {
        // Our own child (after a re-exec): SIGCHLD and `reap` report its
        // exit with its status; a pidfd would race them with no status.
        if super::reexec::is_own_child(pid, identity) {
            return Watch::Watching;
        }
        if let Some(watch) = self.keeper.as_ref().and_then(|k| k.watch(pid, identity)) {
            return watch;
        }
        self.watcher.watch(pid, identity)
    }

    fn kept_exit(&self, pid: i32, identity: &ProcessIdentity) -> Option<KeptExit> {
        self.keeper
            .as_ref()
            .and_then(|k| k.kept_exit(pid, identity))
            .or_else(|| super::reexec::reap_own_zombie(pid, identity))
    }

    fn marked(&self, key: &str, values: &HashSet<String>) -> Vec<(i32, String)> {
        procfs::marked(key, values)
    }

    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)> {
        procfs::marked_leaders(key, prefix)
    }

    fn cgroups_description(&self) -> String {
        self.cgroups.describe()
    }

    fn cgroups_unavailable(&self) -> Option<String> {
        self.cgroups.unavailable_reason().map(str::to_string)
    }

    fn create_pod_cgroup(&mut self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        self.cgroups.create_pod(pod_uid)
    }

    fn pod_cgroup(&mut self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        self.cgroups.pod(pod_uid)
    }

    fn kill_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        self.cgroups.kill(cgroup)
    }

    fn cgroup_is_empty(&self, cgroup: &PodCgroup) -> Result<bool, CgroupError> {
        self.cgroups.is_empty(cgroup)
    }

    fn watch_cgroup_empty(&self, cgroup: &PodCgroup) -> Result<Option<EmptyWatch>, CgroupError> {
        self.cgroups.watch_empty(cgroup)
    }

    fn remove_pod_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        self.cgroups.remove_pod(cgroup)
    }

    fn release_pod_cgroup(&mut self, cgroup: &PodCgroup) {
        self.cgroups.release_pod(cgroup)
    }

    fn existing_pod_cgroups(&self) -> Vec<PodCgroup> {
        self.cgroups.pod_cgroups()
    }

    fn cgroup_usage(&self, cgroup: &PodCgroup) -> Result<Usage, CgroupError> {
        self.cgroups.usage(cgroup)
    }

    fn oom_kills(
        &self,
        cgroup: &ProcessCgroup,
        limits: Option<&Resources>,
    ) -> Result<u64, CgroupError> {
        self.cgroups.oom_kills(cgroup, limits)
    }

    fn cgroup_pids(&self, cgroup: &PodCgroup) -> Result<Vec<i32>, CgroupError> {
        self.cgroups.pids(cgroup)
    }

    fn cgroup_of(&self, pid: i32) -> Option<ProcessCgroup> {
        self.cgroups.process_of(pid)
    }

    fn kill_process_cgroup(&mut self, cgroup: &ProcessCgroup) -> Result<(), CgroupError> {
        self.cgroups.kill_process(cgroup)
    }

    fn signal_tree(
        &mut self,
        pgid: i32,
        cgroup: &ProcessCgroup,
        signal: Signal,
    ) -> Result<(), CgroupError> {
        if pgid > 1 {
            let _ = send(-pgid, signal.number());
        }
        for pid in self.cgroups.process_pids(cgroup)? {
            // Members of the group got it above. A pid read from
            // cgroup.procs a moment ago: one that exited since is ESRCH
            // (fine); the cgroup keeps a reused pid from being a stranger
            // only while it is listed, which is why this is not used for
            // SIGKILL (kill_process_cgroup freezes first).
            let in_group = procfs::stat(pid).is_some_and(|st| st.pgrp == pgid);
            if pid > 1 && !in_group {
                let _ = send(pid, signal.number());
            }
        }
        Ok(())
    }

    fn process_cgroup_usage(&self, cgroup: &ProcessCgroup) -> Result<Usage, CgroupError> {
        self.cgroups.process_usage(cgroup)
    }

    fn remove_cgroup_root(&mut self) -> Result<(), CgroupError> {
        self.cgroups.remove_root()
    }

    fn is_child(&self, pid: i32) -> bool {
        procfs::stat(pid).is_some_and(|st| !st.is_zombie() && st.ppid as u32 == std::process::id())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// kill(2) with a raw signal number (nix's `Signal` cannot name the
/// real-time signals); ESRCH (already gone) is success.
fn send(target: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(target, signal) } == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ESRCH => Ok(()),
        e => Err(e.into()),
    }
}

/// A wait status as an exit reason; None for stop/continue reports (not
/// requested, so not expected).
pub(crate) fn decode_status(status: i32) -> Option<ExitReason> {
    if libc::WIFEXITED(status) {
        Some(ExitReason::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitReason::Signal(Signal::from_raw(libc::WTERMSIG(status))))
    } else {
        None
    }
}

fn check_working_dir(dir: &Path) -> Result<(), SpawnError> {
    let source = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => io::Error::from_raw_os_error(libc::ENOTDIR),
        Err(e) => e,
    };
    Err(SpawnError::WorkingDir {
        dir: dir.to_path_buf(),
        source,
    })
}

/// The log, O_APPEND (so copy-truncate rotation and the two streams
/// never overwrite each other); the child dups it to stdout and stderr.
/// A missing directory is created (the agent leaves a new pod's to us).
fn open_log(path: &Path) -> Result<File, SpawnError> {
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
    };
    open()
        .or_else(|e| match (e.kind(), path.parent()) {
            (io::ErrorKind::NotFound, Some(dir)) => {
                std::fs::create_dir_all(dir)?;
                open()
            }
            _ => Err(e),
        })
        .and_then(above_stdio)
        .map_err(|source| SpawnError::LogFile {
            path: path.to_path_buf(),
            source,
        })
}

/// `file` moved to a descriptor above 2, so the child's dup2s onto 0, 1
/// and 2 never overwrite a source a later dup2 still needs. std reopens a
/// closed 0, 1 or 2 on /dev/null at start-up, so this is a check that
/// costs nothing, not a dup per spawn.
fn above_stdio(file: File) -> io::Result<File> {
    if file.as_raw_fd() > 2 {
        return Ok(file);
    }
    // SAFETY: fcntl on a descriptor we own; the new one is owned by the
    // returned File.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Maps a failed child (or clone) to what the caller is told.
fn child_error(
    command: &str,
    req: &SpawnRequest,
    limits: &[Rlimit],
    procs_paths: &[std::path::PathBuf],
    e: ChildError,
) -> SpawnError {
    let ChildError { step, source } = e;
    match step {
        Step::Exec => exec_error(command, source),
        Step::Clone if source.raw_os_error() == Some(libc::EAGAIN) => SpawnError::ProcessLimit {
            command: command.to_string(),
            source,
        },
        Step::Cgroup(i) => SpawnError::Cgroup {
            command: command.to_string(),
            source: CgroupError::Join {
                path: procs_paths.get(i).cloned().unwrap_or_default(),
                source,
            },
        },
        Step::Rlimit(i) => SpawnError::Rlimit {
            name: limits.get(i).map_or("?", |r| r.name).to_string(),
            source,
        },
        Step::WorkingDir => SpawnError::WorkingDir {
            dir: req.working_dir.clone().unwrap_or_default(),
            source,
        },
        step => SpawnError::Io {
            command: command.to_string(),
            source: io::Error::new(source.kind(), format!("{}: {source}", step_name(step))),
        },
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Clone => "clone",
        Step::Session => "setsid",
        Step::Stdio => "redirecting stdio",
        Step::Credentials => "switching user",
        Step::NoNewPrivs => "setting no_new_privs",
        Step::SignalMask => "unblocking signals",
        Step::Cgroup(_) | Step::Rlimit(_) | Step::WorkingDir | Step::Exec => "starting",
    }
}

/// Maps the errno exec reported.
fn exec_error(command: &str, source: io::Error) -> SpawnError {
    let command = command.to_string();
    match source.raw_os_error() {
        // A path that exists but "is not found": execve could not find the
        // script's interpreter (`#!/no/such/sh`).
        Some(libc::ENOENT) if command.contains('/') && Path::new(&command).is_file() => {
            SpawnError::Io {
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "the file exists but its interpreter (#! line) was not found",
                ),
                command,
            }
        }
        Some(libc::ENOENT) => SpawnError::CommandNotFound { command },
        Some(libc::EACCES) => SpawnError::PermissionDenied { command },
        _ => SpawnError::Io { command, source },
    }
}
