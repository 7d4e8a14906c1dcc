//! The agent's timers, by key: arming a key again moves it, cancelling it
//! removes it, so a process has at most one timer of each kind and a
//! stopped run leaves none behind. Pure: deadlines are given, and the
//! daemon's loop sleeps until [`TimerQueue::next_due`].

use super::probe::ProbeKind;
use super::process::TimerKind;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Which timer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// One of a process's timers; `uid` tells a pod re-created under the
    /// same name apart.
    Process {
        pod: String,
        uid: String,
        idx: usize,
        kind: TimerKind,
    },
    /// An exec probe ran past its timeout.
    ProbeTimeout { pid: i32 },
    /// Escaped descendants of stopped runs are due a look (one batch).
    Sweep,
    /// A finished pod's cgroup: its leftovers are due their SIGKILL (the
    /// grace period ended), or a look whether they all died.
    Cgroup { pod: String, uid: String },
}

impl TimerKey {
    pub fn probe_kind(&self) -> Option<ProbeKind> {
        match self {
            TimerKey::Process {
                kind: TimerKind::Probe(k),
                ..
            } => Some(*k),
            TimerKey::Process { .. }
            | TimerKey::ProbeTimeout { .. }
            | TimerKey::Sweep
            | TimerKey::Cgroup { .. } => None,
        }
    }
}

/// A due timer: its key and the run it was armed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub key: TimerKey,
    pub run: u64,
}

#[derive(Debug, Default)]
pub struct TimerQueue {
    /// By deadline; `seq` keeps equal deadlines apart, in arming order.
    by_due: BTreeMap<(Instant, u64), TimerKey>,
    by_key: HashMap<TimerKey, (Instant, u64, u64)>,
    seq: u64,
}

impl TimerQueue {
    /// Arms `key` at `at` (replacing an earlier deadline of the same key).
    pub fn arm(&mut self, key: TimerKey, at: Instant, run: u64) {
        self.cancel(&key);
        self.seq += 1;
        self.by_due.insert((at, self.seq), key.clone());
        self.by_key.insert(key, (at, self.seq, run));
    }

    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some((at, seq, _)) = self.by_key.remove(key) {
            self.by_due.remove(&(at, seq));
        }
    }

    /// Cancels every timer of a pod of `processes` processes (it left
    /// this node): a few lookups per process, not a pass over every timer
    /// (5,000 pods deleted at once would make that quadratic).
    pub fn cancel_pod(&mut self, name: &str, uid: &str, processes: usize) {
        for idx in 0..processes {
            for kind in TimerKind::ALL {
                self.cancel(&TimerKey::Process {
                    pod: name.to_string(),
                    uid: uid.to_string(),
                    idx,
                    kind,
                });
            }
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(at, _)| *at)
    }

    pub fn deadline(&self, key: &TimerKey) -> Option<Instant> {
        self.by_key.get(key).map(|(at, _, _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<Due> {
        let entry = self.by_due.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let key = entry.remove();
        let (_, _, run) = self.by_key.remove(&key)?;
        Some(Due { key, run })
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(pod: &str, kind: TimerKind) -> TimerKey {
        TimerKey::Process {
            pod: pod.into(),
            uid: "u".into(),
            idx: 0,
            kind,
        }
    }

    #[test]
    fn rearming_moves_and_cancelling_removes() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = TimerQueue::default();
        q.arm(key("a", TimerKind::Grace), t0 + 5 * s, 1);
        q.arm(key("b", TimerKind::Backoff), t0 + 2 * s, 1);
        q.arm(key("a", TimerKind::Grace), t0 + s, 2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next_due(), Some(t0 + s));
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(
            q.pop_due(t0 + 3 * s),
            Some(Due {
                key: key("a", TimerKind::Grace),
                run: 2
            })
        );
        q.cancel(&key("b", TimerKind::Backoff));
        assert_eq!(q.pop_due(t0 + 10 * s), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_pods_timers_go_with_it() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.arm(key("a", TimerKind::Grace), t0, 1);
        q.arm(key("a", TimerKind::Probe(ProbeKind::Liveness)), t0, 1);
        q.arm(key("b", TimerKind::Grace), t0, 1);
        q.arm(TimerKey::Sweep, t0, 0);
        q.cancel_pod("a", "u", 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(t0).unwrap().key, key("b", TimerKind::Grace));
        assert_eq!(q.pop_due(t0).unwrap().key, TimerKey::Sweep);
    }
}
