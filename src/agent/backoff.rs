//! Restart pacing for crashing processes (Kubernetes' CrashLoopBackOff):
//! the first restart is immediate, then 10s doubling up to 5m; a process
//! that ran for 10m before it exited starts the count afresh.
//!
//! Pure: time comes in as arguments.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the second restart in a row (the first is immediate).
    pub initial: Duration,
    /// The delay never grows past this.
    pub max: Duration,
    /// A run at least this long resets the count.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffConfig {
    /// How long to wait before restarting, given how many restarts in a
    /// row already happened (`consecutive`, before this one) and how long
    /// the run that just ended lasted. Returns the delay and the new
    /// consecutive count.
    pub fn next_delay(&self, consecutive: u32, ran_for: Duration) -> (Duration, u32) {
        let consecutive = if ran_for >= self.reset_after {
            0
        } else {
            consecutive
        };
        let delay = if consecutive == 0 {
            Duration::ZERO
        } else {
            // initial * 2^(consecutive-1), saturating at max.
            let shift = (consecutive - 1).min(31);
            self.initial
                .checked_mul(1u32 << shift)
                .unwrap_or(self.max)
                .min(self.max)
        };
        (delay, consecutive + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_schedule() {
        let c = BackoffConfig::default();
        let short = Duration::from_secs(1);
        let mut n = 0;
        let mut delays = vec![];
        for _ in 0..8 {
            let (d, next) = c.next_delay(n, short);
            delays.push(d.as_secs());
            n = next;
        }
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_long_run_resets_the_count() {
        let c = BackoffConfig::default();
        let (d, n) = c.next_delay(5, Duration::from_secs(600));
        assert_eq!((d, n), (Duration::ZERO, 1));
        let (d, _) = c.next_delay(5, Duration::from_secs(599));
        assert_eq!(d, Duration::from_secs(160));
    }

    #[test]
    fn configurable_numbers() {
        let c = BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(250),
            reset_after: Duration::from_secs(1),
        };
        assert_eq!(
            c.next_delay(1, Duration::ZERO).0,
            Duration::from_millis(100)
        );
        assert_eq!(
            c.next_delay(2, Duration::ZERO).0,
            Duration::from_millis(200)
        );
        assert_eq!(
            c.next_delay(3, Duration::ZERO).0,
            Duration::from_millis(250)
        );
    }
}
