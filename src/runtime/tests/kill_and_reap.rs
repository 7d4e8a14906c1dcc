//! Signals, reaping, the subreaper and signal-state hygiene.

use super::*;

// ---- signals

#[test]
fn process_ignoring_term_dies_by_kill_137() {
    let mut sb = Sandbox::new();
    // exec'd: one process, the group leader, ignoring TERM.
    let pid = sb
        .start(&["sh", "-c", "trap '' TERM; echo ready; exec sleep 1000"])
        .pid;
    sb.wait_log("ready");
    wait_until("sleep to be exec'd with TERM ignored", || {
        (sig_mask(pid, "SigIgn") & bit(libc::SIGTERM) != 0).then_some(())
    });
    sb.rt.signal_group(pid, Signal::TERM).unwrap();
    // An ignored signal is discarded when sent: nothing is pending.
    assert!(alive(pid));
    assert_eq!(sig_mask(pid, "SigPnd") & bit(libc::SIGTERM), 0);
    sb.rt.signal_group(pid, Signal::KILL).unwrap();
    let exit = sb.wait_exit(pid);
    assert_eq!(exit, ExitReason::Signal(Signal::KILL));
    assert_eq!(exit.exit_code(), 137);
}

#[test]
fn signal_to_a_gone_process_is_ok_and_bad_targets_are_refused() {
    let mut rt = LinuxRuntime::new();
    // pid_max itself is never handed out: a pid that surely does not exist.
    let pid_max: i32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    rt.signal(pid_max, Signal::TERM).expect("ESRCH is Ok");
    rt.signal_group(pid_max, Signal::TERM).expect("ESRCH is Ok");
    for bad in [-1, 0, 1] {
        assert_eq!(
            rt.signal(bad, Signal::from_raw(0)).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            rt.signal_group(bad, Signal::from_raw(0))
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

// ---- reap() and the subreaper: each in its own process (see module docs)

#[test]
fn reap_reports_codes_and_signals() {
    run_isolated(module_path!(), "reap_reports_codes_and_signals_isolated");
}

#[test]
#[ignore = "run in its own process by reap_reports_codes_and_signals"]
fn reap_reports_codes_and_signals_isolated() {
    if !isolated() {
        return;
    }
    let mut sb = Sandbox::new();
    assert!(sb.rt.reap().is_empty(), "no children: ECHILD ends the loop");
    let sleeper = sb.start(&["sleep", "1000"]).pid;
    assert!(
        sb.rt.reap().is_empty(),
        "live children: WNOHANG returns at once"
    );

    let ok = sb.start(&["true"]).pid;
    let three = sb.start(&["sh", "-c", "exit 3"]).pid;
    let term = sb.start(&["sh", "-c", "kill -TERM $$"]).pid;
    let got = sb.reap_until(&[ok, three, term]);
    assert_eq!(got[&ok], ExitReason::Code(0));
    assert!(got[&ok].success());
    assert_eq!(got[&three], ExitReason::Code(3));
    assert_eq!(got[&three].exit_code(), 3);
    assert_eq!(got[&term], ExitReason::Signal(Signal::TERM));
    assert_eq!(got[&term].exit_code(), 143);

    // A real-time signal: nix's waitpid would reap this child and then
    // fail to convert the status (EINVAL), losing the exit.
    let rt_sig = Signal::from_raw(libc::SIGRTMIN() + 2);
    sb.rt.signal(sleeper, rt_sig).unwrap();
    let got = sb.reap_until(&[sleeper]);
    assert_eq!(got[&sleeper], ExitReason::Signal(rt_sig));
    assert!(sb.rt.reap().is_empty());
}

#[test]
fn an_exit_is_read_before_its_zombie_is_reaped() {
    run_isolated(
        module_path!(),
        "an_exit_is_read_before_its_zombie_is_reaped_isolated",
    );
}

#[test]
fn exits_sigchld_named_come_first_and_a_scan_finds_the_merged_ones() {
    run_isolated(
        module_path!(),
        "exits_sigchld_named_come_first_and_a_scan_finds_the_merged_ones_isolated",
    );
}

/// With SIGCHLD's hints (exit_hints.rs), `next_exit` returns the exits
/// they name, then None with `scan_deferred` (the daemon restarts those
/// first), then on the next call scans every child and finds an exit no
/// SIGCHLD named: two exits a moment apart send one SIGCHLD when the
/// second comes while the first is pending. No handler is installed
/// here: the test names pids itself, so which exit goes unnamed is fixed.
#[test]
#[ignore = "run in its own process by exits_sigchld_named_come_first_and_a_scan_finds_the_merged_ones"]
fn exits_sigchld_named_come_first_and_a_scan_finds_the_merged_ones_isolated() {
    use crate::runtime::exit_hints;
    if !isolated() {
        return;
    }
    let mut sb = Sandbox::new();
    let unnamed = sb.start(&["sh", "-c", "exit 3"]).pid;
    let named = sb.start(&["sh", "-c", "exit 4"]).pid;
    wait_until("both to be zombies", || {
        [unnamed, named]
            .iter()
            .all(|&p| procfs::stat(p).is_some_and(|s| s.is_zombie()))
            .then_some(())
    });
    exit_hints::name(named);
    // The named exit, even though the unnamed one is the older child
    // (a scan returns the oldest first); again until reaped.
    assert_eq!(sb.rt.next_exit(), Some((named, ExitReason::Code(4))));
    assert_eq!(sb.rt.next_exit(), Some((named, ExitReason::Code(4))));
    sb.rt.reap_child(named);
    sb.reaped(named);
    assert_eq!(sb.rt.next_exit(), None, "the scan waits for a call");
    assert!(sb.rt.scan_deferred());
    assert_eq!(sb.rt.next_exit(), Some((unnamed, ExitReason::Code(3))));
    assert!(sb.rt.scan_deferred(), "until a scan finds nothing more");
    sb.rt.reap_child(unnamed);
    sb.reaped(unnamed);
    assert_eq!(sb.rt.next_exit(), None);
    assert!(!sb.rt.scan_deferred());
    // A pid named again after its reap (a SIGCHLD handled late) finds
    // nothing; the scan it owes finds nothing either.
    exit_hints::name(named);
    assert_eq!(sb.rt.next_exit(), None);
    assert!(sb.rt.scan_deferred());
    assert_eq!(sb.rt.next_exit(), None);
    assert!(!sb.rt.scan_deferred());
    // Without hints, every call scans.
    let plain = sb.start(&["sh", "-c", "exit 5"]).pid;
    let exit = wait_until("the plain exit", || sb.rt.next_exit());
    assert_eq!(exit, (plain, ExitReason::Code(5)));
    sb.rt.reap_child(plain);
    sb.reaped(plain);
    assert_eq!(sb.rt.next_exit(), None);
    assert!(!sb.rt.scan_deferred());
}

/// `next_exit` reads an exit and leaves the zombie (so a daemon that dies
/// before writing the exit down leaves it to its keeper); `reap_child`
/// reaps it, once.
#[test]
#[ignore = "run in its own process by an_exit_is_read_before_its_zombie_is_reaped"]
fn an_exit_is_read_before_its_zombie_is_reaped_isolated() {
    if !isolated() {
        return;
    }
    let mut sb = Sandbox::new();
    assert_eq!(sb.rt.next_exit(), None, "no children at all");
    let sleeper = sb.start(&["sleep", "1000"]).pid;
    assert_eq!(sb.rt.next_exit(), None, "live children only");
    let seven = sb.start(&["sh", "-c", "exit 7"]).pid;
    let killed = sb.start(&["sh", "-c", "kill -KILL $$"]).pid;
    let mut got = BTreeMap::new();
    wait_until("both exits read", || {
        let (pid, exit) = sb.rt.next_exit()?;
        // Read again: the same zombie, still there.
        assert_eq!(sb.rt.next_exit(), Some((pid, exit)));
        assert!(procfs::stat(pid).is_some_and(|s| s.is_zombie()));
        sb.rt.reap_child(pid);
        assert!(procfs::stat(pid).is_none(), "reaped");
        sb.reaped(pid);
        got.insert(pid, exit);
        (got.len() == 2).then_some(())
    });
    assert_eq!(got[&seven], ExitReason::Code(7));
    assert_eq!(got[&killed], ExitReason::Signal(Signal::KILL));
    // A real-time signal is read as itself.
    let rt_sig = Signal::from_raw(libc::SIGRTMIN() + 2);
    sb.rt.signal(sleeper, rt_sig).unwrap();
    let exit = wait_until("the sleeper's exit", || sb.rt.next_exit());
    assert_eq!(exit, (sleeper, ExitReason::Signal(rt_sig)));
    sb.rt.reap_child(sleeper);
    sb.reaped(sleeper);
    assert_eq!(sb.rt.next_exit(), None);
}

#[test]
fn term_ignoring_group_with_a_child_dies_by_group_kill() {
    run_isolated(
        module_path!(),
        "term_ignoring_group_with_a_child_dies_by_group_kill_isolated",
    );
}

#[test]
#[ignore = "run in its own process by term_ignoring_group_with_a_child_dies_by_group_kill"]
fn term_ignoring_group_with_a_child_dies_by_group_kill_isolated() {
    if !isolated() {
        return;
    }
    become_subreaper().unwrap();
    let mut sb = Sandbox::new();
    // sh is not exec'd away: it waits for a child sleep; both ignore TERM.
    let leader = sb
        .start(&["sh", "-c", "trap '' TERM; sleep 1000 & echo ready; wait"])
        .pid;
    sb.wait_log("ready");
    let sleeper = wait_until("the sleep child", || {
        sb.marked()
            .into_iter()
            .find(|p| *p != leader && procfs::stat(*p).is_some_and(|s| s.ppid == leader))
    });
    for pid in [leader, sleeper] {
        wait_until("TERM ignored", || {
            (sig_mask(pid, "SigIgn") & bit(libc::SIGTERM) != 0).then_some(())
        });
    }
    sb.rt.signal_group(leader, Signal::TERM).unwrap();
    assert!(alive(leader) && alive(sleeper), "TERM is ignored by both");
    sb.rt.signal_group(leader, Signal::KILL).unwrap();
    // The sleep is re-parented to us (subreaper) when sh dies: reaped too.
    let got = sb.reap_until(&[leader, sleeper]);
    assert_eq!(got[&leader].exit_code(), 137);
    assert_eq!(got[&sleeper], ExitReason::Signal(Signal::KILL));
    assert!(sb.marked().is_empty());
    assert_eq!(procfs::stat(sleeper), None, "no zombie left");
}

#[test]
fn double_forked_grandchild_is_found_by_marker_killed_and_reaped() {
    run_isolated(
        module_path!(),
        "double_forked_grandchild_is_found_by_marker_killed_and_reaped_isolated",
    );
}

#[test]
#[ignore = "run in its own process by double_forked_grandchild_is_found_by_marker_killed_and_reaped"]
fn double_forked_grandchild_is_found_by_marker_killed_and_reaped_isolated() {
    if !isolated() {
        return;
    }
    become_subreaper().unwrap();
    let me = std::process::id() as i32;
    let mut sb = Sandbox::new();
    let leader = sb
        .start(&["sh", "-c", "(setsid sleep 1000 &); exec sleep 1000"])
        .pid;
    // The subshell exits after forking: its child, in a session of its
    // own, is re-parented to us as the subreaper.
    let grandchild = wait_until("the double-forked grandchild, re-parented to us", || {
        sb.marked().into_iter().find(|p| {
            *p != leader && procfs::stat(*p).is_some_and(|s| s.ppid == me && s.session == *p)
        })
    });
    assert_eq!(sb.marked(), {
        let mut v = vec![leader, grandchild];
        v.sort();
        v
    });

    // Killing the pod's group misses the grandchild: that is why the
    // marker exists.
    sb.rt.signal_group(leader, Signal::KILL).unwrap();
    let got = sb.reap_until(&[leader]);
    assert_eq!(got[&leader], ExitReason::Signal(Signal::KILL));
    assert!(alive(grandchild));

    for pid in sb.marked() {
        sb.rt.signal(pid, Signal::KILL).unwrap();
    }
    let got = sb.reap_until(&[grandchild]);
    assert_eq!(got[&grandchild], ExitReason::Signal(Signal::KILL));
    assert_eq!(procfs::stat(grandchild), None, "reaped, not a zombie");
    assert!(sb.marked().is_empty());
    // Nothing of ours is left unreaped (the subshell's zombie included).
    assert!(sb.rt.reap().is_empty());
    let zombies: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|p| procfs::stat(*p).is_some_and(|s| s.ppid == me && s.is_zombie()))
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
}

#[test]
fn signal_mask_and_ignored_signals_are_reset_in_the_child() {
    run_isolated(
        module_path!(),
        "signal_mask_and_ignored_signals_are_reset_in_the_child_isolated",
    );
}

#[test]
#[ignore = "run in its own process by signal_mask_and_ignored_signals_are_reset_in_the_child"]
fn signal_mask_and_ignored_signals_are_reset_in_the_child_isolated() {
    if !isolated() {
        return;
    }
    // As if started by nohup (SIGHUP ignored) with SIGUSR1 blocked, and by
    // glibc's posix_spawn (32 and 33 ignored, which glibc's own sigaction
    // refuses to set or reset); Rust itself ignores SIGPIPE. Process-wide
    // changes: hence isolated.
    // SAFETY: plain signal-disposition and mask calls.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        for sig in [32, 33] {
            let ign = super::child::KernelSigaction {
                handler: libc::SIG_IGN,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            let r = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &ign as *const _,
                std::ptr::null_mut::<super::child::KernelSigaction>(),
                8usize,
            );
            assert_eq!(r, 0, "ignore signal {sig}");
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let me = std::process::id() as i32;
    let ignored = sig_mask(me, "SigIgn");
    assert_ne!(ignored & bit(libc::SIGHUP), 0);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    assert_eq!(ignored & (bit(32) | bit(33)), bit(32) | bit(33));
    let mut sb = Sandbox::new();
    let pid = sb.start(&["sleep", "1000"]).pid;
    assert_eq!(sig_mask(pid, "SigIgn"), 0, "no ignored signals");
    assert_eq!(sig_mask(pid, "SigBlk"), 0, "nothing blocked");
    assert_eq!(
        sig_mask(pid, "SigCgt"),
        0,
        "no handlers (exec resets those)"
    );
    // And the spawning thread got its own mask back.
    let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: query only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
    assert_eq!(unsafe { libc::sigismember(&now, libc::SIGUSR1) }, 1);
    assert_eq!(unsafe { libc::sigismember(&now, libc::SIGTERM) }, 0);
    sb.rt.signal_group(pid, Signal::KILL).unwrap();
    sb.reap_until(&[pid]);
}
