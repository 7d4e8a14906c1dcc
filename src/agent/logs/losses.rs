//! What rotation lost, reported in the daemon's log at most once per
//! `INTERVAL`: a process that writes faster than rotation loses bytes on
//! every rotation (many per second), and one warning per rotation would
//! turn a flooding process into a flooding daemon. The first loss is
//! reported at once, later ones summed per log until the interval is over.
//!
//! Pure bookkeeping: it takes the time as an argument and never sleeps;
//! the rotator (`rotate.rs`) asks `next_report` when to wake up.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::rotate::Rotated;

/// At most one report (one line per log) per this long.
pub(super) const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Losses {
    pending: BTreeMap<PathBuf, Loss>,
    last_report: Option<Instant>,
}

/// Since the last report, for one log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Loss {
    pub bytes: u64,
    /// Rotations that dropped bytes.
    pub rotations: u64,
    /// Of those, rotations that found the disk full and truncated
    /// without a copy.
    pub disk_full: u64,
    /// Rotations that failed, and the last error.
    pub failures: u64,
    pub last_error: Option<String>,
}

impl Losses {
    /// Notes a rotation; one that dropped nothing is not news.
    pub(super) fn add(&mut self, log: PathBuf, rotated: &Rotated) {
        if rotated.dropped == 0 && !rotated.disk_full {
            return;
        }
        let loss = self.pending.entry(log).or_default();
        loss.bytes += rotated.dropped;
        loss.rotations += 1;
        loss.disk_full += u64::from(rotated.disk_full);
    }

    /// Notes a rotation that failed (the log keeps growing until one works).
    pub(super) fn add_error(&mut self, log: PathBuf, e: &io::Error) {
        let loss = self.pending.entry(log).or_default();
        loss.failures += 1;
        loss.last_error = Some(e.to_string());
    }

    /// When the pending losses may be reported; None if there are none.
    pub(super) fn next_report(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(match self.last_report {
            Some(last) => last + INTERVAL,
            // Nothing reported yet: right away. (An Instant in the past
            // would do, but there may be none before the first `now`.)
            None => Instant::now(),
        })
    }

    /// The pending losses if their time has come, emptied.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<(PathBuf, Loss)> {
        let due = self.last_report.is_none_or(|last| now >= last + INTERVAL);
        if self.pending.is_empty() || !due {
            return Vec::new();
        }
        self.last_report = Some(now);
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// Writes what `take_due` returns to the daemon's log.
    pub(super) fn report(&mut self, now: Instant) {
        for (log, loss) in self.take_due(now) {
            let log = log.display();
            if loss.rotations > 0 {
                tracing::warn!(
                    %log,
                    bytes = loss.bytes,
                    rotations = loss.rotations,
                    disk_full = loss.disk_full,
                    "log output dropped: {}",
                    if loss.disk_full > 0 {
                        "the disk is full, so the log was truncated without a copy"
                    } else {
                        "the process writes faster than its log is rotated"
                    }
                );
            }
            if let Some(e) = &loss.last_error {
                tracing::warn!(%log, failures = loss.failures, "cannot rotate: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(bytes: u64, disk_full: bool) -> Rotated {
        Rotated {
            kept: 10,
            dropped: bytes,
            disk_full,
        }
    }

    #[test]
    fn the_first_loss_is_reported_at_once_later_ones_summed_per_interval() {
        let t0 = Instant::now();
        let mut losses = Losses::default();
        assert_eq!(losses.next_report(), None);
        losses.add("a.log".into(), &dropped(0, false));
        assert_eq!(losses.next_report(), None, "a rotation that lost nothing");

        losses.add("a.log".into(), &dropped(100, false));
        assert!(losses.next_report().unwrap() <= Instant::now());
        let first = losses.take_due(t0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.bytes, 100);
        assert_eq!(losses.next_report(), None);

        // Within the interval: summed, held back until it ends.
        losses.add("a.log".into(), &dropped(5, false));
        losses.add("a.log".into(), &dropped(7, true));
        losses.add("b.log".into(), &dropped(1, false));
        losses.add_error("b.log".into(), &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(losses.next_report(), Some(t0 + INTERVAL));
        assert!(losses.take_due(t0 + INTERVAL / 2).is_empty());
        let later = losses.take_due(t0 + INTERVAL);
        let a = Loss {
            bytes: 12,
            rotations: 2,
            disk_full: 1,
            ..Loss::default()
        };
        assert_eq!(later[0], ("a.log".into(), a));
        assert_eq!(later[1].1.bytes, 1);
        assert_eq!(later[1].1.failures, 1);
        assert!(later[1].1.last_error.as_ref().unwrap().contains("denied"));

        // Quiet for longer than the interval: the next loss goes out at once.
        losses.add("a.log".into(), &dropped(1, false));
        assert_eq!(losses.take_due(t0 + INTERVAL * 3).len(), 1);
    }
}
