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

use super::procfs;
use crate::api::ProcessIdentity;
use nix::errno::Errno;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        self.send(signal, 0)
    }

    /// Sends `signal` to this process's group. Uses
    /// PIDFD_SIGNAL_PROCESS_GROUP where the kernel has it (6.9+); older
    /// kernels (Debian 12's 6.1) get `kill(-pid)` after checking through
    /// the pidfd that the leader is still alive, which pins its pid (and
    /// so the pgid it leads) against reuse.
    pub fn signal_group(&self, signal: i32) -> io::Result<()> {
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
