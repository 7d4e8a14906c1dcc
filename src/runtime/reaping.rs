//! Exited children, one at a time, status first and reaping second.
//!
//! `waitpid` hands a child's status over and frees its pid in one step:
//! once it returns, the status exists only in this process's memory, and
//! a daemon killed before it wrote that status down loses it for good (a
//! Job would run again work that succeeded). `waitid(WNOWAIT)` reads the
//! status and leaves the child a zombie: its status stays in the kernel,
//! and if the daemon dies now the zombie passes to the keeper (the
//! subreaper above it), which reaps it and hands the status to the next
//! daemon. The daemon reaps the zombie only once the exit is on disk.
//!
//! The keeper uses the same two steps for another reason: it reads the
//! zombie's /proc entry (its identity) before the pid means nothing.

use super::ExitReason;
use crate::api::Signal;
use nix::errno::Errno;

/// Exited children for the daemon's loop: first those SIGCHLD named
/// ([`super::exit_hints`]), one `waitid(P_PID)` each; then, once the
/// caller acted on them (it is told by [`Exits::scan_deferred`] and
/// calls again), a scan of every child for exits whose SIGCHLD was
/// merged into another's. Without hints (none installed), every call
/// scans, as [`peek_exited`] alone would.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exits {
    /// Pids SIGCHLD named that may still be exited children of ours,
    /// oldest first. Kept until reaped, so that asking again before the
    /// reap returns the same exit.
    named: Vec<i32>,
    /// A SIGCHLD came since the last scan that found nothing.
    scan_owed: bool,
    /// The last call returned None with the scan still owed.
    deferred: bool,
}

impl Exits {
    /// The next exited child, left a zombie; None when none is known
    /// (see [`Exits::scan_deferred`]).
    pub(crate) fn next(&mut self) -> Option<(i32, ExitReason)> {
        while let Some(pid) = super::exit_hints::take() {
            self.scan_owed = true;
            if !self.named.contains(&pid) {
                self.named.push(pid);
            }
        }
        while let Some(&pid) = self.named.first() {
            if let Some(exit) = peek(libc::P_PID, pid as libc::id_t) {
                return Some(exit);
            }
            // Reaped already (found by a scan), or not an exited child.
            self.named.remove(0);
        }
        if self.scan_owed && !self.deferred {
            self.deferred = true;
            return None;
        }
        let found = peek_exited();
        if found.is_none() {
            self.scan_owed = false;
            self.deferred = false;
        }
        found
    }

    /// Whether the last [`Exits::next`] returned None without scanning
    /// every child: call it again once the exits it returned are acted
    /// on.
    pub(crate) fn scan_deferred(&self) -> bool {
        self.deferred
    }

    /// `pid` was reaped: no longer to be asked about.
    pub(crate) fn reaped(&mut self, pid: i32) {
        self.named.retain(|&p| p != pid);
    }
}

/// The first exited child (the kernel's order: the oldest child first),
/// with its exit, left a zombie; None if no child has exited (or there
/// are no children at all).
pub(crate) fn peek_exited() -> Option<(i32, ExitReason)> {
    peek(libc::P_ALL, 0)
}

/// `waitid(idtype, id, WEXITED | WNOHANG | WNOWAIT)`: the exited child
/// it finds, left a zombie.
fn peek(idtype: libc::idtype_t, id: libc::id_t) -> Option<(i32, ExitReason)> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`.
        let r = unsafe {
            libc::waitid(
                idtype,
                id,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r == 0 {
            let code = info.si_code;
            // SAFETY: waitid filled in a SIGCHLD siginfo, or left it
            // zeroed (pid 0) when no child has exited.
            let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
            if pid <= 0 {
                return None;
            }
            return Some((pid, exit_of(code, status)));
        }
        if Errno::last() != Errno::EINTR {
            return None; // ECHILD: no (such) child at all
        }
    }
}

/// How a child ended, from waitid's `si_code` and `si_status`.
fn exit_of(code: i32, status: i32) -> ExitReason {
    match code {
        libc::CLD_KILLED | libc::CLD_DUMPED => ExitReason::Signal(Signal::from_raw(status)),
        _ => ExitReason::Code(status),
    }
}

/// Reaps the exited child `pid`: its raw wait status, None if `pid` is
/// not a child of ours that has exited.
pub(crate) fn reap_pid(pid: i32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(status);
        }
        if r == -1 && Errno::last() == Errno::EINTR {
            continue;
        }
        return None;
    }
}
