//! Escaped descendants of stopped runs: processes that left the run's
//! process group (double fork + setsid) and so missed the group kill.
//! They still carry the run's marker, and only a pass over /proc finds
//! them; such a pass reads every process's environment.
//!
//! So the exit path never scans: an exit only adds the run's marker
//! here, and one pass serves every marker gathered since the last one
//! (SIGTERM to what it finds, SIGKILL when that run's grace period is
//! over, found by a second pass). Passes are at least [`SPACING`] apart:
//! 5,000 pods scaled to 0 cost a few passes a second, not one per exit
//! (issue 9: one per exit froze the daemon for a minute). A cgroup per
//! pod will make this a cgroup kill.

use crate::api::Signal;
use crate::runtime::ProcessRuntime;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The least time between two passes over /proc.
pub const SPACING: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct Sweeper {
    /// Markers of runs that just ended: SIGTERM at the next pass, SIGKILL
    /// `grace` after it.
    fresh: Vec<(String, Duration)>,
    /// Markers whose descendants get SIGKILL at the first pass after the
    /// deadline.
    kill: Vec<(Instant, String)>,
    last_pass: Option<Instant>,
}

impl Sweeper {
    /// A stopped run's descendants: SIGTERM soon and SIGKILL `grace`
    /// later, or SIGKILL soon if `grace` is zero.
    pub fn add(&mut self, marker: String, grace: Duration, now: Instant) {
        if grace.is_zero() {
            self.kill.push((now, marker));
        } else {
            self.fresh.push((marker, grace));
        }
    }

    /// When the next pass is due, if anything waits for one.
    pub fn next_pass(&self, now: Instant) -> Option<Instant> {
        let earliest = self.last_pass.map_or(now, |t| t + SPACING).max(now);
        if !self.fresh.is_empty() {
            return Some(earliest);
        }
        let kill = self.kill.iter().map(|(at, _)| *at).min()?;
        Some(kill.max(earliest))
    }

    /// One pass over /proc for every marker that is due. Returns how
    /// many processes were signalled.
    pub fn pass(&mut self, rt: &mut impl ProcessRuntime, key: &str, now: Instant) -> usize {
        let fresh = std::mem::take(&mut self.fresh);
        let (due, later): (Vec<_>, Vec<_>) = self.kill.drain(..).partition(|(at, _)| *at <= now);
        self.kill = later;
        let kill: HashSet<String> = due.into_iter().map(|(_, m)| m).collect();
        if fresh.is_empty() && kill.is_empty() {
            return 0;
        }
        self.last_pass = Some(now);
        let mut wanted: HashSet<String> = fresh.iter().map(|(m, _)| m.clone()).collect();
        wanted.extend(kill.iter().cloned());
        let found = rt.marked(key, &wanted);
        let mut termed: HashSet<&str> = HashSet::new();
        for (pid, marker) in &found {
            let signal = if kill.contains(marker) {
                Signal::KILL
            } else {
                termed.insert(marker);
                Signal::TERM
            };
            let _ = rt.signal(*pid, signal);
        }
        // Only runs that left something behind are looked at again.
        for (marker, grace) in fresh {
            if termed.contains(marker.as_str()) {
                self.kill.push((now + grace, marker));
            }
        }
        found.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::{SignalSent, SignalTarget};
    use crate::runtime::FakeRuntime;

    fn marked(rt: &FakeRuntime, marker: &str) -> i32 {
        rt.add_process(vec![("M".into(), marker.into())])
    }

    #[test]
    fn many_stopped_runs_cost_one_pass_then_one_more_for_the_kill() {
        let mut rt = FakeRuntime::new();
        let t0 = Instant::now();
        let grace = Duration::from_secs(30);
        let mut s = Sweeper::default();
        let escaped: Vec<i32> = (0..100)
            .map(|i| {
                let m = format!("run-{i}");
                s.add(m.clone(), grace, t0);
                marked(&rt, &m)
            })
            .collect();
        let stranger = marked(&rt, "another-run");
        assert_eq!(s.next_pass(t0), Some(t0));
        assert_eq!(s.pass(&mut rt, "M", t0), 100);
        assert_eq!(rt.scans(), 1, "one pass for a hundred runs");
        assert!(rt
            .signals()
            .iter()
            .all(|s| s.signal == Signal::TERM && s.target != SignalTarget::Process(stranger)));
        // They ignore SIGTERM: SIGKILL when the grace period ends.
        assert_eq!(s.next_pass(t0), Some(t0 + grace));
        assert_eq!(s.pass(&mut rt, "M", t0 + grace), 100);
        assert_eq!(rt.scans(), 2);
        for pid in escaped {
            assert!(!rt.is_alive(pid));
        }
        assert!(rt.is_alive(stranger));
        assert_eq!(s.next_pass(t0 + grace), None, "nothing left to do");
    }

    #[test]
    fn passes_are_spaced_and_a_kill_now_is_a_kill() {
        let mut rt = FakeRuntime::new();
        let t0 = Instant::now();
        let mut s = Sweeper::default();
        let p = marked(&rt, "a");
        s.add("a".into(), Duration::ZERO, t0);
        s.pass(&mut rt, "M", t0);
        assert_eq!(
            rt.signals(),
            [SignalSent {
                target: SignalTarget::Process(p),
                signal: Signal::KILL
            }]
        );
        s.add("b".into(), Duration::from_secs(1), t0);
        assert_eq!(s.next_pass(t0), Some(t0 + SPACING));
        assert_eq!(s.pass(&mut rt, "M", t0 + SPACING), 0, "nothing carries b");
        assert_eq!(s.next_pass(t0 + SPACING), None, "so no second look");
    }
}
