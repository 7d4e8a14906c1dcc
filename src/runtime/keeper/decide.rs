//! The keeper's few decisions, pure so they are tested without
//! processes: which exits to keep ([`ExitTable`]), when to start the
//! daemon again ([`RestartPacing`]), and what a daemon's exit means
//! ([`after_daemon_exit`]).

use super::wire::ExitRecord;
use std::collections::VecDeque;
use std::time::Duration;

/// Exits kept for the next daemon, oldest first, at most `cap`: a flood
/// of exits while no daemon runs costs bounded memory, and what falls
/// off is the oldest (the next daemon then reports those as `Unknown`,
/// as before the keeper existed).
#[derive(Clone, Debug)]
pub struct ExitTable {
    records: VecDeque<ExitRecord>,
    cap: usize,
    /// How many fell off so far.
    pub dropped: u64,
}

/// 4,096 records of 32 bytes: 128 KiB at most, allocated as they come.
pub const TABLE_CAPACITY: usize = 4096;

impl ExitTable {
    pub fn new(cap: usize) -> ExitTable {
        ExitTable {
            records: VecDeque::new(),
            cap,
            dropped: 0,
        }
    }

    /// Keeps `r`; a record for the same process replaces the old one.
    pub fn record(&mut self, r: ExitRecord) {
        self.records
            .retain(|old| (old.pid, old.start_ticks) != (r.pid, r.start_ticks));
        if self.cap == 0 {
            self.dropped += 1;
            return;
        }
        while self.records.len() >= self.cap {
            self.records.pop_front();
            self.dropped += 1;
        }
        self.records.push_back(r);
    }

    /// Every record, oldest first. The table is not emptied when a daemon
    /// takes it: a daemon killed before it wrote them down gets them
    /// again, and one that did finds nothing in its state that they
    /// match (they name processes by pid and start tick).
    pub fn iter(&self) -> impl Iterator<Item = &ExitRecord> {
        self.records.iter()
    }
}

/// The pause before the daemon is started again: 100 ms doubling to
/// 1 s, back to 100 ms after a run of 10 s or more. Short, because while
/// no daemon runs no pod is restarted, probed or served by the API; a
/// daemon that cannot start at all ends the keeper instead (see
/// [`AfterDaemon`]), so a 1 s loop only follows repeated crashes, and
/// costs a start-up (a few ms of CPU) per second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPacing {
    next: Duration,
}

pub const FIRST_RESTART: Duration = Duration::from_millis(100);
pub const MAX_RESTART: Duration = Duration::from_secs(1);
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl Default for RestartPacing {
    fn default() -> Self {
        RestartPacing {
            next: FIRST_RESTART,
        }
    }
}

impl RestartPacing {
    /// The delay after a daemon that ran for `ran_for` died.
    pub fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.next = FIRST_RESTART;
        }
        let now = self.next;
        self.next = (self.next * 2).min(MAX_RESTART);
        now
    }
}

/// How the daemon ended, as the keeper saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonEnd {
    Exited(i32),
    Killed(i32),
}

/// What the keeper does when the daemon ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDaemon {
    /// Exit with this code.
    Exit(i32),
    /// Start a new daemon (after the pacing delay).
    Restart,
}

/// - Exit 0 is a requested stop (SIGTERM to the daemon itself, or the
///   end of a halt): the keeper exits too.
/// - A non-zero exit before the daemon said it serves is a start-up
///   failure (a config error, the state dir locked by another daemon):
///   reported with the same code, never retried in a loop.
/// - Anything else (SIGKILL, a panic, an error exit later) is a crash:
///   a new daemon re-adopts the pods.
pub fn after_daemon_exit(end: DaemonEnd, ready: bool) -> AfterDaemon {
    match end {
        DaemonEnd::Exited(0) => AfterDaemon::Exit(0),
        DaemonEnd::Exited(code) if !ready => AfterDaemon::Exit(code),
        DaemonEnd::Exited(_) | DaemonEnd::Killed(_) => AfterDaemon::Restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: i32, start_ticks: u64) -> ExitRecord {
        ExitRecord {
            pid,
            status: 0,
            start_ticks,
            at_ms: 0,
        }
    }

    #[test]
    fn the_table_keeps_the_newest_records_within_its_capacity() {
        let mut t = ExitTable::new(3);
        for pid in 1..=5 {
            t.record(rec(pid, 10));
        }
        let pids: Vec<i32> = t.iter().map(|r| r.pid).collect();
        assert_eq!(pids, [3, 4, 5]);
        assert_eq!(t.dropped, 2);
        // The same process again replaces its record; the same pid with
        // another start tick is another process.
        t.record(ExitRecord {
            status: 9,
            ..rec(4, 10)
        });
        t.record(rec(5, 11));
        let kept: Vec<(i32, u64, i32)> =
            t.iter().map(|r| (r.pid, r.start_ticks, r.status)).collect();
        assert_eq!(kept, [(5, 10, 0), (4, 10, 9), (5, 11, 0)]);
    }

    #[test]
    fn restarts_back_off_and_reset_after_a_long_run() {
        let mut p = RestartPacing::default();
        let short = Duration::from_millis(500);
        let delays: Vec<u128> = (0..9).map(|_| p.delay(short).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000]);
        assert_eq!(p.delay(RESET_AFTER), FIRST_RESTART);
        assert_eq!(p.delay(short), Duration::from_millis(200));
    }

    #[test]
    fn what_a_daemon_exit_means() {
        use AfterDaemon::*;
        use DaemonEnd::*;
        let cases = [
            (Exited(0), false, Exit(0)),
            (Exited(0), true, Exit(0)),
            (Exited(1), false, Exit(1)),
            (Exited(1), true, Restart),
            (Exited(101), true, Restart),
            (Killed(9), false, Restart),
            (Killed(9), true, Restart),
        ];
        for (end, ready, want) in cases {
            assert_eq!(after_daemon_exit(end, ready), want, "{end:?} ready={ready}");
        }
    }
}
