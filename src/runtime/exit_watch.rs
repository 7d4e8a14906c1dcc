//! Watching a process that is NOT our child: one re-adopted after a daemon
//! restart (its parent is now init or another subreaper, so `waitpid` and
//! SIGCHLD never tell us about it).
//!
//! A pidfd refers to one process, never to a later holder of the same pid,
//! and becomes readable when that process exits. Signals sent through it
//! cannot hit a stranger that inherited the pid (s6's warning about pids
//! that are not your unreaped children).
//!
//! What a pidfd cannot give for a non-child is the exit status: the agent
//! records such an exit as "unknown".
//!
//! [`Watcher`] holds one pidfd per watched process, within a budget of
//! descriptors (what is left of RLIMIT_NOFILE after a reserve for the
//! API, logs and spawns): past it, or when the kernel refuses one
//! (EMFILE, ENFILE, ENOMEM), a process is reported
//! [`Watch::Unavailable`](super::Watch) and the agent looks at it again
//! later. Running out of descriptors never reads as an exit.
//! [`ExitEvents`] is what the daemon's loop waits on.

use super::keeper::{KeeperEvent, KeeperEvents, KeeperLink};
use super::{procfs, Watch};
use crate::api::{ProcessIdentity, Signal};
use nix::errno::Errno;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;

/// `PIDFD_SIGNAL_PROCESS_GROUP` (linux/pidfd.h, kernel 6.9+; not in libc).
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// A pidfd registered with tokio. Create it inside a tokio runtime.
#[derive(Debug)]
pub struct ExitWatch {
    pid: i32,
    fd: AsyncFd<OwnedFd>,
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no pidfd for pid {pid}"),
        ));
    }
    // SAFETY: raw syscall with plain integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor (pidfds are always O_CLOEXEC) nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl ExitWatch {
    /// Opens a pidfd for `pid`. ESRCH if there is no such process.
    ///
    /// The pid is taken at face value: for a pid read from persisted
    /// state use [`ExitWatch::adopt`].
    /// Must be called inside a tokio runtime with I/O enabled (outside
    /// any runtime this returns an error; tokio panics if the runtime was
    /// built without `enable_io`).
    pub fn open(pid: i32) -> io::Result<ExitWatch> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let pidfd = pidfd_open(pid)?;
        // SAFETY: the OwnedFd is a valid pidfd and AsyncFd owns it, so it
        // stays open and the same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }?;
        Ok(ExitWatch { pid, fd })
    }

    /// Opens a pidfd for `pid` and then checks it is still the recorded
    /// process. The order is the point: once the pidfd exists it pins the
    /// process it was opened for, so an identity that matches AFTER the
    /// open proves the pidfd refers to the recorded process, not to a later
    /// holder of the pid. `Ok(None)`: gone, or the pid now belongs to
    /// someone else.
    pub fn adopt(pid: i32, identity: &ProcessIdentity) -> io::Result<Option<ExitWatch>> {
        let watch = match ExitWatch::open(pid) {
            Ok(w) => w,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(procfs::is_same_process(pid, identity).then_some(watch))
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Resolves once the process has exited (at once if it already has,
    /// zombies included). Errors only if the tokio runtime is shutting
    /// down.
    pub async fn exited(&self) -> io::Result<()> {
        // Once readable a pidfd stays readable: no need to clear readiness.
        self.fd.readable().await.map(|_| ())
    }

    /// Whether the process has exited, without waiting.
    pub fn has_exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    }

    /// Sends `signal` to exactly this process (pidfd_send_signal); ESRCH
    /// (already exited) is success.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        self.send(signal.number(), 0)
    }

    /// Sends `signal` to this process's group. Uses
    /// PIDFD_SIGNAL_PROCESS_GROUP where the kernel has it (6.9+); older
    /// kernels (Debian 12's 6.1) get `kill(-pid)` after checking through
    /// the pidfd that the leader is still alive, which pins its pid (and
    /// so the pgid it leads) against reuse.
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        let signal = signal.number();
        match self.send(signal, PIDFD_SIGNAL_PROCESS_GROUP) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => return other,
        }
        if self.has_exited() || self.pid <= 1 {
            return Ok(());
        }
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(-self.pid, signal) } == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::ESRCH => Ok(()),
            e => Err(e.into()),
        }
    }

    fn send(&self, signal: i32, flags: libc::c_uint) -> io::Result<()> {
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: raw syscall; a null siginfo means "as kill(2) would".
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                flags,
            )
        };
        if r == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::ESRCH => Ok(()),
            e => Err(e.into()),
        }
    }
}

/// Descriptors kept for everything but pidfds: a quarter of the limit,
/// at least this many.
const RESERVED_FDS: u64 = 32;

/// How many pidfds may be open at once under a soft RLIMIT_NOFILE of
/// `limit`: what is left after a reserve, so that watching a thousand
/// re-adopted processes never starves the control socket, the logs and
/// the spawns of descriptors.
pub fn pidfd_budget(limit: u64) -> usize {
    let reserve = (limit / 4).max(RESERVED_FDS);
    limit.saturating_sub(reserve).min(usize::MAX as u64) as usize
}

fn nofile_soft_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// Watches processes that are not our children, each through a pidfd
/// and a small task that reports its exit on a channel.
#[derive(Clone, Debug)]
pub(crate) struct Watcher {
    tx: mpsc::UnboundedSender<i32>,
    rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<i32>>>>,
    /// Pidfds open now (their tasks decrement on exit).
    open: Arc<AtomicUsize>,
}

impl Watcher {
    pub(crate) fn new() -> Watcher {
        let (tx, rx) = mpsc::unbounded_channel();
        Watcher {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// See [`super::ProcessRuntime::watch`]. Must be called inside a tokio
    /// runtime (the daemon's).
    pub(crate) fn watch(&self, pid: i32, identity: &ProcessIdentity) -> Watch {
        let budget = pidfd_budget(nofile_soft_limit());
        if self.open.load(Ordering::Relaxed) >= budget {
            return Watch::Unavailable(io::Error::other(format!(
                "{budget} pidfds open already (the rest of RLIMIT_NOFILE is kept for other work)"
            )));
        }
        match ExitWatch::adopt(pid, identity) {
            Ok(Some(watch)) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                let tx = self.tx.clone();
                let open = self.open.clone();
                tokio::spawn(async move {
                    let _ = watch.exited().await;
                    drop(watch);
                    open.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send(pid);
                });
                Watch::Watching
            }
            Ok(None) => Watch::Gone,
            // EMFILE, ENFILE, ENOMEM, or no tokio runtime: not an exit.
            Err(e) => Watch::Unavailable(e),
        }
    }

    fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<i32>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Something to reap: SIGCHLD came, or a watched process exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitEvent {
    /// Children may have exited: call `reap`.
    Children,
    /// A watched (non-child) process exited; its status is not ours.
    Watched(i32),
    /// The keeper asks the daemon to stop every pod and exit.
    Halt,
    /// The keeper died (SIGKILLed): whoever restarts the service starts a
    /// new one, whose daemon needs this one's state dir.
    KeeperGone,
}

/// The exits the daemon's loop waits on. One per runtime.
pub struct ExitEvents {
    sigchld: tokio::signal::unix::Signal,
    watched: mpsc::UnboundedReceiver<i32>,
    /// Exits of adopted processes (with their statuses, through `reap`)
    /// and halts, from the keeper; None without one, or once it is gone.
    keeper: Option<KeeperEvents>,
}

impl ExitEvents {
    /// Installs the SIGCHLD handler. Must run inside a tokio runtime,
    /// before the first spawn (a SIGCHLD before the handler is lost).
    pub(crate) fn new(
        watcher: &Watcher,
        keeper: Option<Arc<KeeperLink>>,
    ) -> io::Result<ExitEvents> {
        let watched = watcher
            .take_receiver()
            .ok_or_else(|| io::Error::other("the runtime's exit events were taken already"))?;
        let sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        super::exit_hints::install()?;
        let keeper = keeper.map(KeeperEvents::new).transpose()?;
        Ok(ExitEvents {
            sigchld,
            watched,
            keeper,
        })
    }

    /// Tells the keeper (if any) that the daemon serves.
    pub fn serving(&self) {
        if let Some(k) = &self.keeper {
            k.link().serving();
        }
    }

    pub async fn next(&mut self) -> ExitEvent {
        let from_keeper = async {
            match &mut self.keeper {
                Some(k) => k.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.sigchld.recv() => ExitEvent::Children,
            Some(pid) = self.watched.recv() => ExitEvent::Watched(pid),
            k = from_keeper => match k {
                KeeperEvent::Exits => ExitEvent::Children,
                KeeperEvent::Halt => ExitEvent::Halt,
                KeeperEvent::Gone => {
                    self.keeper = None;
                    ExitEvent::KeeperGone
                }
            },
        }
    }
}

#[cfg(test)]
mod budget_tests {
    use super::pidfd_budget;

    #[test]
    fn a_quarter_of_the_limit_and_at_least_32_descriptors_are_kept() {
        assert_eq!(pidfd_budget(1024), 768);
        assert_eq!(pidfd_budget(128), 96);
        assert_eq!(pidfd_budget(96), 64);
        assert_eq!(pidfd_budget(40), 8);
        assert_eq!(pidfd_budget(16), 0);
        assert_eq!(pidfd_budget(1 << 20), 786_432);
    }
}
