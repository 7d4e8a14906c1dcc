//! `LinuxRuntime`: the real [`ProcessRuntime`]. It forks and execs through
//! `std::process::Command` (whose CLOEXEC pipe turns exec failures into
//! `Err`s), reaps with `waitpid(-1)`, signals with `kill(2)`.
//!
//! It must not block: `reap` uses WNOHANG, `spawn` only waits for the
//! child's exec. It must not make decisions either (when to restart, when
//! to escalate TERM to KILL): that is the agent's state machine.

use super::credentials::{self, Credentials};
use super::procfs;
use super::{ExitReason, ProcessRuntime, SpawnError, SpawnRequest, Spawned};
use crate::api::ProcessIdentity;
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The real runtime. Holds nothing but this boot's id (read once: it
/// cannot change while we run).
#[derive(Clone, Debug)]
pub struct LinuxRuntime {
    boot_id: String,
}

impl LinuxRuntime {
    pub fn new() -> LinuxRuntime {
        LinuxRuntime {
            boot_id: procfs::boot_id(),
        }
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

impl ProcessRuntime for LinuxRuntime {
    fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        let command = match req.argv.first() {
            Some(c) if !c.is_empty() => c.clone(),
            _ => {
                return Err(SpawnError::Io {
                    command: String::new(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
                })
            }
        };
        // Everything that can fail for a reason other than exec is checked
        // here, before fork, so that ENOENT from spawn means "no such
        // binary" and nothing else.
        let creds = credentials::resolve(&command, req.user.as_deref(), req.group.as_deref())?;
        if let Some(dir) = &req.working_dir {
            check_working_dir(dir)?;
        }
        let (stdout, stderr) = open_log(&req.log_path)?;

        let mut cmd = Command::new(&command);
        cmd.args(&req.argv[1..])
            .env_clear()
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(dir) = &req.working_dir {
            cmd.current_dir(dir);
        }
        let setup = ChildSetup {
            creds,
            max_signal: libc::SIGRTMAX(),
        };
        // SAFETY: ChildSetup::run only makes async-signal-safe calls (see
        // there); everything it reads was computed before fork.
        unsafe {
            cmd.pre_exec(move || setup.run());
        }
        let child = {
            // Blocked in this thread across fork, so no handler of ours
            // (tokio's) runs in the child before it resets dispositions.
            let _blocked = SignalsBlocked::all();
            cmd.spawn()
        }
        .map_err(|e| exec_error(&command, e))?;
        let pid = child.id() as i32;
        // We reap ourselves (waitpid(-1) in `reap`); dropping a std Child
        // neither waits nor kills.
        drop(child);
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

    fn signal_group(&mut self, pgid: i32, signal: i32) -> io::Result<()> {
        // kill(-1) would signal every process we may signal and kill(0) our
        // own group: never let a bad pgid get there.
        if pgid <= 1 {
            return Err(invalid(format!("refusing to signal process group {pgid}")));
        }
        send(-pgid, signal)
    }

    fn signal(&mut self, pid: i32, signal: i32) -> io::Result<()> {
        if pid <= 1 {
            return Err(invalid(format!("refusing to signal pid {pid}")));
        }
        send(pid, signal)
    }

    fn reap(&mut self) -> Vec<(i32, ExitReason)> {
        reap_all()
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

    fn marked(&self, key: &str, value: &str) -> Vec<i32> {
        procfs::marked(key, value)
    }

    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)> {
        procfs::marked_leaders(key, prefix)
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

/// waitpid(-1, WNOHANG) until no exited child is left.
///
/// libc rather than nix on purpose: nix's `waitpid` converts the status
/// into its `Signal` enum, which fails with EINVAL for a child killed by a
/// real-time signal: after the kernel has already reaped it, so that exit
/// would be lost.
pub(crate) fn reap_all() -> Vec<(i32, ExitReason)> {
    let mut exits = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if let Some(reason) = decode_status(status) {
                exits.push((pid, reason));
            }
            continue;
        }
        if pid == 0 {
            break; // children left, none exited
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::ECHILD => break, // no children at all
            e => {
                tracing::warn!(error = %e, "waitpid(-1) failed");
                break;
            }
        }
    }
    exits
}

/// A wait status as an exit reason; None for stop/continue reports (not
/// requested, so not expected).
pub(crate) fn decode_status(status: i32) -> Option<ExitReason> {
    if libc::WIFEXITED(status) {
        Some(ExitReason::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitReason::Signal(libc::WTERMSIG(status)))
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

/// One open file description (O_APPEND, so copy-truncate rotation and the
/// two streams never overwrite each other), dup'd for stdout and stderr.
fn open_log(path: &Path) -> Result<(File, File), SpawnError> {
    let err = |source| SpawnError::LogFile {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(err)?;
    let dup = file.try_clone().map_err(err)?;
    Ok((file, dup))
}

/// Maps the errno that came back through std's CLOEXEC pipe.
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

/// Blocks every signal in the calling thread until dropped.
struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    fn all() -> SignalsBlocked {
        // SAFETY: sigset_t is plain data; the pointers are valid.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked { old }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `all`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// What the child does between fork and exec, after std has dup'd stdio
/// and changed directory, before std swaps in the environment and calls
/// execvp.
///
/// THE RULE between fork and exec (the daemon is multi-threaded, and fork
/// copies only the calling thread: any lock another thread held, inside
/// malloc, stdio, NSS or tracing, stays locked forever in the child):
/// - only async-signal-safe functions (signal-safety(7)) and raw syscalls;
/// - no allocation or deallocation, no `format!`, no `String`/`Vec`
///   growth, no logging, no panics (a panic unwinds into std's fork code);
/// - no NSS lookups (getpwnam, initgroups): done before fork, the child
///   only receives numbers;
/// - errors are returned as `io::Error::last_os_error()` (just an errno,
///   no allocation); std sends it through the CLOEXEC pipe and `spawn`
///   returns it.
///
/// setgroups/setgid/setuid are glibc wrappers that, in a multi-threaded
/// process, broadcast to every thread; after fork the child has one thread
/// and glibc knows it, so they are single syscalls here (std itself calls
/// them in the same place).
struct ChildSetup {
    creds: Option<Credentials>,
    /// SIGRTMAX, read before fork.
    max_signal: i32,
}

impl ChildSetup {
    fn run(&self) -> io::Result<()> {
        // SAFETY: every call below is async-signal-safe or a raw syscall,
        // and only reads memory owned by `self` (allocated before fork).
        unsafe {
            // New session: the process leads its own group (pgid == pid),
            // so signal_group reaches its whole tree, and it has no
            // controlling terminal (Ctrl-C at `drover up` is ours to handle).
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            self.reset_signal_dispositions();
            // Descriptors the daemon inherited without CLOEXEC must not
            // leak into pods: mark everything above stderr close-on-exec
            // (std's own error pipe already is). Older kernels (< 5.11)
            // lack close_range: best effort.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            );
            if let Some(c) = &self.creds {
                // Order matters: groups and gid need root, so before setuid.
                if libc::setgroups(c.groups.len(), c.groups.as_ptr()) == -1
                    || libc::setgid(c.gid) == -1
                    || libc::setuid(c.uid) == -1
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // Last: the parent blocked everything across fork.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Every signal back to SIG_DFL. exec would reset caught signals by
    /// itself, but not ignored ones (Rust ignores SIGPIPE, a daemon started
    /// by nohup ignores SIGHUP), and a handler still installed when we
    /// unblock could run here, in the child, writing into the parent's
    /// tokio signal pipe.
    ///
    /// Measured: glibc 2.36's posix_spawn (which std and cargo use when
    /// they can) leaves signals 32 and 33 IGNORED in the processes it
    /// starts, and glibc's sigaction() refuses to touch those two
    /// ("internal") signals, so a daemon started that way would pass them
    /// on ignored. Hence the raw rt_sigaction syscall.
    ///
    /// # Safety
    /// Child side of fork only (see [`ChildSetup`]).
    unsafe fn reset_signal_dispositions(&self) {
        for sig in 1..=self.max_signal {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                set_default_disposition(sig);
            }
        }
    }
}

/// The kernel's `struct sigaction` on x86_64 and aarch64 (both have
/// sa_restorer; unused for SIG_DFL).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
pub(super) struct KernelSigaction {
    pub handler: libc::sighandler_t,
    pub flags: libc::c_ulong,
    pub restorer: usize,
    pub mask: u64,
}

/// SIG_DFL for `sig`, straight to the kernel (async-signal-safe; errors
/// ignored: nothing useful to do about them in the child).
///
/// # Safety
/// Changes the calling process's signal disposition.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn set_default_disposition(sig: i32) {
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    libc::syscall(
        libc::SYS_rt_sigaction,
        sig,
        &act as *const KernelSigaction,
        std::ptr::null_mut::<KernelSigaction>(),
        std::mem::size_of::<u64>(),
    );
}

/// Elsewhere, glibc's sigaction (which skips signals 32 and 33).
///
/// # Safety
/// Changes the calling process's signal disposition.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn set_default_disposition(sig: i32) {
    let mut dfl: libc::sigaction = std::mem::zeroed();
    dfl.sa_sigaction = libc::SIG_DFL;
    libc::sigaction(sig, &dfl, std::ptr::null_mut());
}
