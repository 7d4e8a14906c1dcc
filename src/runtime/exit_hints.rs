//! Which children SIGCHLD named: hints that let the daemon read an exit
//! with one `waitid(P_PID)` instead of scanning every child.
//!
//! `waitid(P_ALL)` walks the list of the daemon's children, every one of
//! them, each time it finds no more exits. With 1,000 pods that last,
//! empty walk was the largest single cost between a crash and its
//! replacement's spawn: 0.18 ms of the 0.59 ms from the reap to the
//! clone, with the daemon's system calls traced (`perf record -e
//! raw_syscalls:*` during `supervisors --n 1000 --kills 400`); 20 us
//! untraced for a process with 1,000 sleeping children and hot caches.
//!
//! The hints are only hints. SIGCHLD is a standard signal: while one is
//! pending, the next child's exit sends none, so its pid is never named.
//! A full scan still follows every batch of named exits
//! ([`super::reaping::Exits`]), after what those exits need (a restart's
//! spawn) is done. A pid named twice, or named and then found by the
//! scan, is harmless: `waitid(P_PID)` on a pid that is no longer an
//! exited child of ours finds nothing.
//!
//! The handler runs in signal context: it only stores the pid into a
//! fixed array of atomics. When the array is full the pid is dropped,
//! and the scan finds its exit.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

/// Named pids not yet taken. A batch larger than this is left to the
/// scan, which is what it costs today anyway.
const SLOTS: usize = 64;

static NAMED: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

static INSTALL: Once = Once::new();

/// Adds the SIGCHLD action that records each named pid, once per
/// process image (beside tokio's, which wakes the loop: both run for
/// every SIGCHLD, through `signal-hook-registry`, which tokio installs
/// its own handler with).
pub(crate) fn install() -> io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        // SAFETY: the action is async-signal-safe: it reads the siginfo
        // the kernel passed (a SIGCHLD one, which carries the child's
        // pid) and stores into static atomics; it neither allocates nor
        // locks.
        let registered = unsafe {
            signal_hook_registry::register_sigaction(libc::SIGCHLD, |info: &libc::siginfo_t| {
                name(info.si_pid())
            })
        };
        result = registered.map(|_| ());
    });
    result
}

/// Records `pid` as named by a SIGCHLD (signal context).
pub(crate) fn name(pid: i32) {
    if pid <= 0 {
        return;
    }
    for slot in &NAMED {
        if slot
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// One named pid, taken out; None when none is left.
pub(crate) fn take() -> Option<i32> {
    NAMED.iter().find_map(|slot| {
        if slot.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(slot.swap(0, Ordering::AcqRel)).filter(|&pid| pid != 0)
    })
}
