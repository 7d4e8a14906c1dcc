//! Starting a child the cheap way: `clone(CLONE_VM | CLONE_VFORK)`, as
//! glibc's posix_spawn does, rather than fork.
//!
//! Why not `std::process::Command`: std can only use posix_spawn when the
//! child needs nothing posix_spawn cannot express; we need setsid, a full
//! signal reset, close_range, setgroups/setgid/setuid and no_new_privs, so
//! std falls back to fork(). fork copies the daemon's page tables and
//! then both sides take copy-on-write faults until exec: measured, 37% of
//! the daemon's CPU while it starts 1000 processes. A vfork-style child
//! borrows the parent's memory instead and the parent sleeps until the
//! child has exec'd (or failed), so there is nothing to copy.
//!
//! THE RULE for [`ChildPlan::run`], which runs in the child on a small
//! stack of its own, in the PARENT's memory:
//! - only raw syscalls and async-signal-safe libc functions; no
//!   allocation, no `format!`, no logging, no panics (no slice indexing:
//!   iterators only);
//! - nothing the parent will see later may be written, except
//!   [`ChildPlan::errno`] and `failed_step`;
//! - glibc's setuid/setgid/setgroups wrappers are forbidden: the child
//!   shares the parent's memory, so glibc believes it is the
//!   multi-threaded parent and runs its "every thread changes user"
//!   protocol (`__nptl_setxid`), which takes a lock another parent thread
//!   may hold (deadlock: the parent waits for us) and walks the parent's
//!   thread list. Raw syscalls change only the child, with no lock;
//! - everything is computed before clone: argv, envp, the list of paths
//!   to try (the PATH search), credentials, rlimits, file descriptors
//!   (the cgroup's too: the child only writes to them).
//!
//! In the child, in order: join the cgroup (unless clone3 started it
//! there), setsid, signal dispositions, close-on-exec above 2, stdio,
//! chdir, rlimits, umask, groups/gid/uid, no_new_privs, signal mask,
//! exec. A failure reports its [`Step`] and errno.

use super::cgroup;
use super::credentials::Credentials;
use super::rlimits::Rlimit;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// glibc's execvp search path when the environment has no PATH
/// (confstr(_CS_PATH)).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The child's stack. Its code makes a few dozen syscalls through small
/// frames; 64 KiB is generous (glibc's posix_spawn uses 32 KiB plus argv).
const STACK_SIZE: usize = 64 * 1024;

/// What a request adds to the child beyond argv, env, stdio and user:
/// its cgroup and its hardening. Descriptors stay owned by the caller and
/// must stay open until `spawn` returns.
#[derive(Debug, Default)]
pub(super) struct Confinement {
    /// Files the child writes "0" (itself) into first: v1 `tasks`, v2
    /// `cgroup.procs` (see `cgroup::place::Placement::procs`).
    pub join: Vec<RawFd>,
    /// v2: the cgroup directory to be born in (clone3); `join` is then
    /// the fallback where clone3 is refused.
    pub clone_into: Option<RawFd>,
    pub rlimits: Vec<Rlimit>,
    pub umask: u32,
    pub no_new_privs: bool,
}

/// The step of the child's work that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// clone itself (the child never ran).
    Clone,
    /// Joining `Confinement::join[i]`.
    Cgroup(usize),
    Session,
    Stdio,
    WorkingDir,
    /// Setting `Confinement::rlimits[i]`.
    Rlimit(usize),
    Credentials,
    NoNewPrivs,
    SignalMask,
    Exec,
}

impl Step {
    fn encode(self) -> u32 {
        match self {
            Step::Clone => 1,
            Step::Session => 2,
            Step::Stdio => 3,
            Step::WorkingDir => 4,
            Step::Credentials => 5,
            Step::NoNewPrivs => 6,
            Step::SignalMask => 7,
            Step::Exec => 8,
            Step::Cgroup(i) => 0x1_0000 | i as u32,
            Step::Rlimit(i) => 0x2_0000 | i as u32,
        }
    }

    fn decode(code: u32) -> Step {
        let i = (code & 0xffff) as usize;
        match code {
            1 => Step::Clone,
            2 => Step::Session,
            3 => Step::Stdio,
            4 => Step::WorkingDir,
            5 => Step::Credentials,
            6 => Step::NoNewPrivs,
            7 => Step::SignalMask,
            c if c >> 16 == 1 => Step::Cgroup(i),
            c if c >> 16 == 2 => Step::Rlimit(i),
            _ => Step::Exec,
        }
    }
}

/// Why a child did not get to run its program.
#[derive(Debug)]
pub(super) struct ChildError {
    pub step: Step,
    pub source: io::Error,
}

/// Everything the child needs, prepared by the parent.
pub(super) struct ChildPlan {
    /// Paths to try execve on, in order (one, or one per PATH entry).
    candidates: Vec<CString>,
    // The pointer arrays point into these; they must live as long.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    dir: Option<CString>,
    stdin: RawFd,
    output: RawFd,
    creds: Option<Credentials>,
    confinement: Confinement,
    /// SIGRTMAX, read before clone.
    max_signal: i32,
    /// Set by the child when it gives up: the errno of the failed step,
    /// and the step ([`Step::encode`]). Read by the parent once clone
    /// returned (CLONE_VFORK: the child has exec'd or exited by then).
    errno: AtomicI32,
    failed_step: AtomicU32,
}

/// What `child_main` receives: the plan, and whether the child still has
/// to join its cgroup (not when clone3 made it there).
struct ChildCall<'a> {
    plan: &'a ChildPlan,
    join: bool,
}

impl ChildPlan {
    /// `stdin` and `output` must stay open until `spawn` returns. A
    /// string with a NUL byte cannot be passed to exec: InvalidInput.
    pub(super) fn new(
        argv: &[String],
        env: &[(String, String)],
        dir: Option<&Path>,
        stdin: &impl AsRawFd,
        output: &impl AsRawFd,
        creds: Option<Credentials>,
        confinement: Confinement,
    ) -> io::Result<ChildPlan> {
        let cstr = |s: &[u8]| {
            CString::new(s).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte")
            })
        };
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<io::Result<_>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<_>>()?;
        let command = argv.first().map(|c| c.as_bytes()).unwrap_or_default();
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        let candidates = search_candidates(command, path)
            .iter()
            .map(|c| cstr(c))
            .collect::<io::Result<_>>()?;
        let dir = dir.map(|d| cstr(d.as_os_str().as_bytes())).transpose()?;
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        Ok(ChildPlan {
            candidates,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            dir,
            stdin: stdin.as_raw_fd(),
            output: output.as_raw_fd(),
            creds,
            confinement,
            max_signal: libc::SIGRTMAX(),
            errno: AtomicI32::new(0),
            failed_step: AtomicU32::new(0),
        })
    }

    /// Starts the child and waits until it has exec'd. `Err` says which
    /// step failed and its errno (the child has been reaped then).
    ///
    /// Signals are blocked in the calling thread across clone, so no
    /// handler of ours (tokio's) can run in the child, on the parent's
    /// memory, before the child resets every disposition.
    pub(super) fn spawn(&self) -> Result<i32, ChildError> {
        STACK.with(|cached| {
            let mut cached = cached.borrow_mut();
            let stack = match cached.take() {
                Some(s) => s,
                None => Stack::new().map_err(|source| ChildError {
                    step: Step::Clone,
                    source,
                })?,
            };
            let result = self.spawn_on(&stack);
            *cached = Some(stack);
            result
        })
    }

    fn spawn_on(&self, stack: &Stack) -> Result<i32, ChildError> {
        let mut call = ChildCall {
            plan: self,
            join: true,
        };
        let cloned = {
            let _blocked = SignalsBlocked::all();
            let mut cloned = None;
            if let Some(dir) = self
                .confinement
                .clone_into
                .filter(|_| cgroup::clone_into_usable())
            {
                call.join = false;
                // SAFETY: as for libc::clone below; `child_main` never
                // returns into our frames, and the stack's top is
                // page-aligned.
                let outcome = unsafe {
                    cgroup::clone_into_cgroup(
                        child_main,
                        &call as *const ChildCall as *mut libc::c_void,
                        stack.low(),
                        STACK_SIZE,
                        dir,
                    )
                };
                match outcome {
                    cgroup::CloneOutcome::Started(pid) => cloned = Some(Ok(pid)),
                    cgroup::CloneOutcome::Failed(e) => cloned = Some(Err(e)),
                    cgroup::CloneOutcome::Unsupported => call.join = true,
                }
            }
            cloned.unwrap_or_else(|| {
                // SAFETY: `child_main` obeys THE RULE (module docs);
                // `call`, `self` and the stack outlive the child's use of
                // them, because CLONE_VFORK suspends us until the child
                // has exec'd or exited.
                let pid = unsafe {
                    libc::clone(
                        child_main,
                        stack.top(),
                        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                        &call as *const ChildCall as *mut libc::c_void,
                    )
                };
                if pid == -1 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(pid)
                }
            })
        };
        let pid = cloned.map_err(|source| ChildError {
            step: Step::Clone,
            source,
        })?;
        match self.errno.load(Ordering::Acquire) {
            0 => Ok(pid),
            errno => {
                // The child exited: reap it here, so that `reap` never
                // reports a process that never ran.
                let mut status = 0;
                // SAFETY: status is a valid out-pointer; pid is our child.
                while unsafe { libc::waitpid(pid, &mut status, 0) } == -1
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                }
                Err(ChildError {
                    step: Step::decode(self.failed_step.load(Ordering::Acquire)),
                    source: io::Error::from_raw_os_error(errno),
                })
            }
        }
    }

    /// The child's work from clone to exec; returns only on failure, with
    /// the step and the errno to report.
    ///
    /// # Safety
    /// Child side of a CLONE_VM clone only (see THE RULE).
    unsafe fn run(&self, join: bool) -> (Step, i32) {
        let c = &self.confinement;
        // First, so that nothing this process does from here on (let
        // alone its program) runs outside its cgroup.
        if join {
            for (i, fd) in c.join.iter().enumerate() {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return (Step::Cgroup(i), errno());
                }
            }
        }
        // New session: the process leads its own group (pgid == pid), so
        // signal_group reaches its whole tree, and it has no controlling
        // terminal (Ctrl-C at `drover up` is ours to handle).
        if libc::setsid() == -1 {
            return (Step::Session, errno());
        }
        self.reset_signal_dispositions();
        // Descriptors the daemon inherited without CLOEXEC must not leak
        // into pods: mark everything above stderr close-on-exec. Kernels
        // before 5.11 lack close_range: best effort.
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        );
        // The sources are above 2 (see `spawn` in linux.rs), so no dup2
        // here overwrites a source a later one needs.
        if libc::dup2(self.stdin, 0) == -1
            || libc::dup2(self.output, 1) == -1
            || libc::dup2(self.output, 2) == -1
        {
            return (Step::Stdio, errno());
        }
        if let Some(dir) = &self.dir {
            if libc::chdir(dir.as_ptr()) == -1 {
                return (Step::WorkingDir, errno());
            }
        }
        // Before setuid: raising a hard limit needs root. Limits belong
        // to this process alone (no CLONE_THREAD): the parent keeps its.
        for (i, r) in c.rlimits.iter().enumerate() {
            let limit = libc::rlimit64 {
                rlim_cur: r.value,
                rlim_max: r.value,
            };
            if libc::syscall(
                libc::SYS_prlimit64,
                0,
                r.resource,
                &limit as *const libc::rlimit64,
                std::ptr::null_mut::<libc::rlimit64>(),
            ) == -1
            {
                return (Step::Rlimit(i), errno());
            }
        }
        // The child's own copy (no CLONE_FS), as for chdir.
        libc::syscall(libc::SYS_umask, c.umask as libc::c_uint);
        if let Some(cr) = &self.creds {
            // Order matters: groups and gid need root, so before setuid.
            if libc::syscall(libc::SYS_setgroups, cr.groups.len(), cr.groups.as_ptr()) == -1
                || libc::syscall(libc::SYS_setgid, cr.gid) == -1
                || libc::syscall(libc::SYS_setuid, cr.uid) == -1
            {
                return (Step::Credentials, errno());
            }
        }
        // Whoever it runs as, exec can no longer grant privileges
        // (setuid binaries, file capabilities), unless the unit opted out.
        if c.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 {
            return (Step::NoNewPrivs, errno());
        }
        // Last: the parent blocked everything across clone.
        let empty: u64 = 0;
        if libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        ) == -1
        {
            return (Step::SignalMask, errno());
        }
        (Step::Exec, self.exec())
    }

    /// execve on each candidate, as glibc's execvp searches PATH: a
    /// missing file tries the next; EACCES is remembered (reported if
    /// nothing else runs); any other error stops the search.
    ///
    /// # Safety
    /// Child side only; replaces the process image on success.
    unsafe fn exec(&self) -> i32 {
        let mut result = libc::ENOENT;
        let mut denied = false;
        for path in &self.candidates {
            libc::execve(
                path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            );
            result = errno();
            match result {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return result,
            }
        }
        if denied {
            libc::EACCES
        } else {
            result
        }
    }

    /// Every signal back to SIG_DFL. exec would reset caught signals by
    /// itself, but not ignored ones (Rust ignores SIGPIPE, a daemon
    /// started by nohup ignores SIGHUP); and the child's handler table is
    /// its own copy (no CLONE_SIGHAND), so this does not touch the parent.
    ///
    /// Measured: glibc 2.36's posix_spawn (which std and cargo use when
    /// they can) leaves signals 32 and 33 IGNORED in the processes it
    /// starts, and glibc's sigaction() refuses to touch those two
    /// ("internal") signals, so a daemon started that way would pass them
    /// on ignored. Hence the raw rt_sigaction syscall.
    ///
    /// # Safety
    /// Child side only.
    unsafe fn reset_signal_dispositions(&self) {
        for sig in 1..=self.max_signal {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                set_default_disposition(sig);
            }
        }
    }
}

/// The clone entry point. Never returns: exec replaces the image, or the
/// child records why not and exits 127 (never seen by users: the parent
/// reaps it and reports the step and errno).
extern "C" fn child_main(call: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `call` is the ChildCall `spawn_on` passed, alive until we
    // exec or exit; `run` obeys THE RULE.
    unsafe {
        let call = &*(call as *const ChildCall);
        let plan = call.plan;
        let (step, e) = plan.run(call.join);
        plan.failed_step.store(step.encode(), Ordering::Release);
        plan.errno
            .store(if e == 0 { libc::EINVAL } else { e }, Ordering::Release);
        libc::_exit(127)
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Where execvp would look for `command`: itself if it names a path,
/// else each PATH entry joined with it (an empty entry is the current
/// directory, as for execvp).
fn search_candidates(command: &[u8], path: &str) -> Vec<Vec<u8>> {
    if command.contains(&b'/') {
        return vec![command.to_vec()];
    }
    path.split(':')
        .map(|dir| {
            let dir = if dir.is_empty() { "." } else { dir };
            Path::new(dir)
                .join(OsStr::from_bytes(command))
                .into_os_string()
                .into_vec()
        })
        .collect()
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

thread_local! {
    /// One stack per spawning thread, kept: mapping and unmapping one per
    /// spawn (the unmap flushes TLBs on every CPU) measured 7% of the
    /// daemon's CPU while it started 1000 processes.
    static STACK: std::cell::RefCell<Option<Stack>> = const { std::cell::RefCell::new(None) };
}

/// The child's stack: an anonymous mapping with an inaccessible lowest
/// page, so an overflow faults instead of writing into the parent's heap.
struct Stack {
    base: *mut libc::c_void,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        let page = page_size();
        // SAFETY: a fresh private anonymous mapping; no existing memory
        // is touched.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Stack { base };
            if libc::mprotect(base, page, libc::PROT_NONE) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// The lowest usable address (above the guard page).
    fn low(&self) -> *mut libc::c_void {
        // SAFETY: within our own mapping.
        unsafe { (self.base as *mut u8).add(page_size()) as *mut libc::c_void }
    }

    /// The highest address (stacks grow down on every target we build).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { (self.base as *mut u8).add(STACK_SIZE + page_size()) as *mut libc::c_void }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made.
        unsafe {
            libc::munmap(self.base, STACK_SIZE + page_size());
        }
    }
}

fn page_size() -> usize {
    super::procfs::page_size() as usize
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

#[cfg(test)]
mod tests {
    use super::search_candidates;

    #[test]
    fn path_search_matches_execvp() {
        let c = |cmd: &str, path: &str| -> Vec<String> {
            search_candidates(cmd.as_bytes(), path)
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        };
        assert_eq!(c("/bin/true", "/x"), ["/bin/true"]);
        assert_eq!(c("./run", "/x"), ["./run"]);
        assert_eq!(c("true", "/a:/b/"), ["/a/true", "/b/true"]);
        assert_eq!(c("true", "/a::/b"), ["/a/true", "./true", "/b/true"]);
    }
}
