//! The keeper: a tiny process that `drover daemon` and `drover up` start
//! as, and that runs the real daemon as its child. It owns what must
//! outlive a daemon crash, and nothing else:
//!
//! - **Exit statuses.** It is a child subreaper, so when the daemon dies
//!   its pods re-parent to the keeper. It reaps every child that is not
//!   the daemon and keeps `(pid, start tick, wait status, time)` of each
//!   session leader (every process the daemon starts leads its own
//!   session) in a bounded table ([`decide::ExitTable`]). The next daemon
//!   gets the table at start ([`link::KeeperLink`]), so a process that
//!   exited while no daemon ran is reported with its real code, not
//!   `Unknown`. Processes that daemon re-adopts stay the keeper's
//!   children: their exits are passed on live, with their statuses.
//! - **The daemon's life.** A daemon killed or crashed is started again
//!   (100 ms doubling to 1 s); one that exits 0 (asked to stop) or fails
//!   before it serves is not: the keeper exits with its code.
//! - **Signals.** SIGTERM, SIGINT, SIGPWR to the keeper become a halt:
//!   the daemon stops every pod with its grace period, then exits, then
//!   the keeper. SIGHUP is passed on (reload). As PID 1 (a container, a
//!   VM, `unshare --pid --fork`) the keeper also reaps every orphan of
//!   the namespace.
//!
//! It decides nothing about pods and reads no state: the daemon's code
//! does not know it exists beyond [`link`] (a lookup of recorded exits,
//! exits through `reap`, a halt event). A daemon started without a
//! keeper (the variable below unset) runs as before.
//!
//! Files: `main_loop.rs` the keeper process; `link.rs` the daemon's end;
//! `wire.rs` the messages; `decide.rs` its pure decisions.

mod decide;
pub mod link;
mod main_loop;
pub mod wire;

pub use decide::TABLE_CAPACITY;
pub use link::{KeeperEvent, KeeperEvents, KeeperLink};

/// Set by the keeper in the daemon it starts: the number of the
/// descriptor of the daemon's end of their socket. Its presence is what
/// makes `drover daemon` the daemon rather than another keeper.
pub const KEEPER_FD_ENV: &str = "DROVER_KEEPER_FD";

/// `DROVER_KEEPER=off` runs the daemon without a keeper (as before it
/// existed: exits while the daemon is down are lost). For comparisons
/// and for debugging the daemon alone.
pub const KEEPER_SWITCH_ENV: &str = "DROVER_KEEPER";

/// Call first thing in `drover daemon` / `drover up`, before any thread
/// or runtime exists. In the daemon (or with the keeper switched off):
/// None, go on. Otherwise this process becomes the keeper, starts the
/// daemon as its child with the same arguments, and returns the exit
/// code once the daemon stopped for good.
pub fn run_as_keeper() -> Option<i32> {
    // A daemon that re-executed itself in place (`runtime::reexec`) is
    // still the daemon, whatever else its environment says.
    if std::env::var_os(KEEPER_FD_ENV).is_some()
        || std::env::var_os(super::reexec::REEXEC_ENV).is_some()
    {
        // The keeper blocks the signals it reads from a signalfd, and a
        // blocked mask survives exec: the daemon would never see SIGCHLD
        // or SIGTERM. Unblock them before any thread inherits the mask.
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        );
        return None;
    }
    if std::env::var(KEEPER_SWITCH_ENV).is_ok_and(|v| v == "off") {
        return None;
    }
    // The binary by path, so a daemon started after an upgrade is the
    // new one (main_loop falls back to /proc/self/exe if it is gone).
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let args = std::env::args_os().skip(1).collect();
    Some(main_loop::run(exe, args))
}
