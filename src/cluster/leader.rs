//! Who runs the controllers: one daemon at a time, elected through etcd
//! (`store::etcd::campaign`), and when they may run again.
//!
//! - [`spawn`] starts the campaign task: it campaigns as this node, says
//!   [`LeaderEvent::Elected`] (with the guard every controller write must
//!   carry) when it wins, [`LeaderEvent::Deposed`] when the lease is lost
//!   (etcd unreachable past the TTL, or this process was frozen), then
//!   campaigns again. Dropping [`LeaderTask`] resigns (the lease is
//!   revoked, so another daemon takes over at once, not a TTL later).
//! - [`Gate`] (pure) decides when the leader's loop may run a controller
//!   pass: while it leads, one pass's writes at a time, and not before
//!   its cache shows the writes of the last one (Kubernetes'
//!   expectations: a controller that ran on a cache without its own last
//!   writes would create the same pods twice), nor before the pause after
//!   etcd was unavailable.
//!
//! Must not: run controllers (the daemon's loop does, on its cache), or
//! write without the guard.

use crate::store::etcd::{campaign, EtcdStore, LeaderGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderEvent {
    Elected { guard: LeaderGuard },
    Deposed,
}

pub struct LeaderTask {
    pub events: mpsc::Receiver<LeaderEvent>,
    resign: Option<oneshot::Sender<oneshot::Sender<()>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderTask {
    /// Steps down now if leading (the next candidate takes over without
    /// waiting for the lease to expire), and stops campaigning.
    pub async fn resign(mut self) {
        if let Some(tx) = self.resign.take() {
            let (done_tx, done) = oneshot::channel();
            if tx.send(done_tx).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
            }
        }
        self.task.abort();
    }
}

impl Drop for LeaderTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts campaigning as `holder` with leases of `ttl`.
pub fn spawn(store: EtcdStore, holder: String, ttl: Duration) -> LeaderTask {
    let (tx, events) = mpsc::channel(4);
    let (resign_tx, resign_rx) = oneshot::channel();
    let task = tokio::spawn(run(store, holder, ttl, tx, resign_rx));
    LeaderTask {
        events,
        resign: Some(resign_tx),
        task,
    }
}

async fn run(
    store: EtcdStore,
    holder: String,
    ttl: Duration,
    tx: mpsc::Sender<LeaderEvent>,
    mut resign: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let mut pause = Duration::from_millis(200);
    loop {
        let won = tokio::select! {
            won = campaign(&store, &holder, ttl) => won,
            done = &mut resign => {
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        };
        let leadership = match won {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("campaign: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(200);
        let guard = leadership.guard().clone();
        tracing::info!("{holder} leads the controllers (term {})", guard.term());
        if tx.send(LeaderEvent::Elected { guard }).await.is_err() {
            let _ = leadership.resign().await;
            return;
        }
        tokio::select! {
            _ = leadership.lost() => {
                tracing::warn!("{holder} lost the leadership");
                if tx.send(LeaderEvent::Deposed).await.is_err() {
                    return;
                }
            }
            done = &mut resign => {
                let _ = leadership.resign().await;
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

/// When the leader's controllers may run (see the module comment).
#[derive(Debug, Default)]
pub struct Gate {
    guard: Option<LeaderGuard>,
    /// A pass's writes are on their way.
    in_flight: bool,
    /// The cache must reach this revision first.
    wait_for: u64,
    /// Not before this (after etcd was unavailable).
    not_before: Option<Instant>,
    failures: u32,
}

/// What became of a pass's writes.
#[derive(Debug, PartialEq)]
pub enum PassResult {
    /// Written (or partly refused); decide again once the cache has
    /// reached `wait_for`.
    Done { wait_for: u64 },
    /// etcd did not answer: try again after a pause.
    Unavailable,
    /// The leadership is gone.
    NotLeader,
}

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Gate {
    pub fn elected(&mut self, guard: LeaderGuard) {
        *self = Gate {
            guard: Some(guard),
            ..Gate::default()
        };
    }

    pub fn deposed(&mut self) {
        *self = Gate::default();
    }

    pub fn guard(&self) -> Option<&LeaderGuard> {
        self.guard.as_ref()
    }

    pub fn is_leader(&self) -> bool {
        self.guard.is_some()
    }

    /// Whether a pass may run now, with the cache at `cache_revision`.
    pub fn may_run(&self, cache_revision: u64, now: Instant) -> bool {
        self.guard.is_some()
            && !self.in_flight
            && cache_revision >= self.wait_for
            && self.not_before.is_none_or(|t| now >= t)
    }

    /// When a pass held back by a pause may run (for the loop's timer).
    pub fn retry_at(&self) -> Option<Instant> {
        self.not_before.filter(|_| self.guard.is_some())
    }

    /// A pass's writes went out.
    pub fn started(&mut self) {
        self.in_flight = true;
    }

    /// A pass ran and wrote nothing: nothing to wait for.
    pub fn idle(&mut self) {
        self.in_flight = false;
    }

    pub fn finished(&mut self, result: PassResult, now: Instant) {
        self.in_flight = false;
        match result {
            PassResult::Done { wait_for } => {
                self.wait_for = self.wait_for.max(wait_for);
                self.not_before = None;
                self.failures = 0;
            }
            PassResult::Unavailable => {
                let pause = RETRY_FIRST
                    .saturating_mul(1 << self.failures.min(5))
                    .min(RETRY_MAX);
                self.failures += 1;
                self.not_before = Some(now + pause);
            }
            PassResult::NotLeader => self.deposed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> LeaderGuard {
        LeaderGuard::for_tests(7)
    }

    #[test]
    fn only_a_leader_runs_one_pass_at_a_time_on_a_cache_with_its_writes() {
        let now = Instant::now();
        let mut g = Gate::default();
        assert!(!g.may_run(100, now), "not leading");
        g.elected(guard());
        assert!(g.may_run(0, now));
        g.started();
        assert!(!g.may_run(100, now), "writes in flight");
        g.finished(PassResult::Done { wait_for: 120 }, now);
        assert!(!g.may_run(119, now), "the cache lacks the pass's writes");
        assert!(g.may_run(120, now));
        g.started();
        g.idle();
        assert!(g.may_run(120, now));
        g.finished(PassResult::NotLeader, now);
        assert!(!g.is_leader() && !g.may_run(1000, now));
    }

    #[test]
    fn unavailable_pauses_with_a_doubling_backoff() {
        let now = Instant::now();
        let mut g = Gate::default();
        g.elected(guard());
        let mut pauses = Vec::new();
        for _ in 0..7 {
            g.started();
            g.finished(PassResult::Unavailable, now);
            let at = g.retry_at().expect("a retry time");
            pauses.push((at - now).as_millis());
            assert!(!g.may_run(0, now));
            assert!(g.may_run(0, at));
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000]);
        g.started();
        g.finished(PassResult::Done { wait_for: 0 }, now);
        assert_eq!(g.retry_at(), None);
        // Re-elected: a clean slate.
        g.elected(guard());
        assert!(g.may_run(0, now));
    }
}
