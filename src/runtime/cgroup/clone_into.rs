//! `clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP)`: a vfork-style
//! child born inside its v2 cgroup, so it never runs a single instruction
//! outside it and no migration is paid (kernel 5.7+).
//!
//! glibc has no clone3 wrapper that runs a function on a new stack (its
//! own is internal), and a raw `syscall(SYS_clone3)` returns in the child
//! on the new stack inside a Rust frame that expects the old one. So the
//! syscall is issued in assembly that, in the child, calls the entry
//! function straight away and exits with what it returns (it never
//! returns: it execs or `_exit`s). x86_64 only; elsewhere, and where the
//! kernel or a seccomp filter refuses clone3, the caller falls back to
//! clone + the child writing itself into `cgroup.procs`.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

/// linux/sched.h; not in every libc release.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const REFUSED: u8 = 2;

/// Whether clone3 with CLONE_INTO_CGROUP worked here: learned on first use.
static STATE: AtomicU8 = AtomicU8::new(if cfg!(target_arch = "x86_64") {
    UNKNOWN
} else {
    REFUSED
});

/// Worth trying (not known to be refused).
pub(crate) fn usable() -> bool {
    STATE.load(Ordering::Relaxed) != REFUSED
}

/// Whether a clone3 into a cgroup has succeeded in this process.
#[cfg(test)]
pub(crate) fn known_to_work() -> bool {
    STATE.load(Ordering::Relaxed) == WORKS
}

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What became of the attempt.
pub(crate) enum Outcome {
    /// The child's pid (it has exec'd or exited: CLONE_VFORK).
    Started(i32),
    /// This kernel (or a seccomp filter) does not do it: fall back.
    Unsupported,
    Failed(io::Error),
}

/// Starts `entry(arg)` in a child on the stack `[stack_low, stack_low +
/// stack_size)`, inside the cgroup directory `cgroup`, and returns when
/// it has exec'd or exited.
///
/// # Safety
/// As for `libc::clone` with CLONE_VM | CLONE_VFORK: `entry` must obey
/// child.rs's RULE and never return into Rust code of the parent (it is
/// called on the new stack; its return value becomes the exit status);
/// the stack must be 16-byte aligned at its top and unused by anyone else.
pub(crate) unsafe fn clone_into_cgroup(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
    stack_low: *mut libc::c_void,
    stack_size: usize,
    cgroup: RawFd,
) -> Outcome {
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack_low as u64,
        stack_size: stack_size as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    let ret = raw_clone3(&args, entry, arg);
    if ret > 0 {
        STATE.store(WORKS, Ordering::Relaxed);
        return Outcome::Started(ret as i32);
    }
    let errno = -ret as i32;
    // ENOSYS: no clone3 (or seccomp says so, as Docker's default profile
    // does); E2BIG / EINVAL: a clone3 that predates CLONE_INTO_CGROUP.
    // Only believed before it ever worked: afterwards they are real.
    let unsupported = matches!(errno, libc::ENOSYS | libc::E2BIG | libc::EINVAL);
    if unsupported && STATE.load(Ordering::Relaxed) == UNKNOWN {
        STATE.store(REFUSED, Ordering::Relaxed);
        return Outcome::Unsupported;
    }
    Outcome::Failed(io::Error::from_raw_os_error(errno))
}

#[cfg(target_arch = "x86_64")]
unsafe fn raw_clone3(
    args: &CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    // Parent: rax = child pid or -errno, nothing else touched but rcx and
    // r11 (syscall). Child: same registers, rax = 0, rsp = top of the new
    // stack (16-byte aligned: the call below pushes the return address as
    // the ABI expects); it calls entry(arg) and exits with its result.
    std::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        "xor ebp, ebp",
        "mov rdi, r13",
        "call r12",
        "mov edi, eax",
        "mov eax, {exit}",
        "syscall",
        "ud2",
        "2:",
        exit = const libc::SYS_exit,
        inlateout("rax") libc::SYS_clone3 => ret,
        in("rdi") args as *const CloneArgs,
        in("rsi") std::mem::size_of::<CloneArgs>(),
        in("r12") entry,
        in("r13") arg,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn raw_clone3(
    _args: &CloneArgs,
    _entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    _arg: *mut libc::c_void,
) -> i64 {
    -(libc::ENOSYS as i64)
}
