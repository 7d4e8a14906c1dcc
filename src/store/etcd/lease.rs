//! Leases: a TTL that etcd counts down, keys that vanish with it, and the
//! keep-alive loop that renews it (etcd-client sends none by itself).
//!
//! A [`Lease`] renews every third of its TTL from a task of its own, each
//! renewal through the failover (any endpoint will do). It tells its owner
//! when it is lost, judged locally and conservatively: no renewal was
//! acknowledged within a TTL of the last acknowledged one being *sent*, so
//! by then etcd may already have let it expire. etcd's own count is the
//! truth; a process frozen past its TTL learns of the loss late, which is
//! why leadership writes are also fenced in etcd (`election.rs`).
//!
//! Must not: hide a loss (a lost lease stays lost: grant a new one), or
//! outlive its owner (dropping a [`Lease`] stops the renewals; the lease
//! then expires on its own, which is what a crash looks like).

use super::failover::Failover;
use super::EtcdStore;
use crate::store::versioned::{Result, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// gRPC NotFound: etcd's "requested lease not found".
const NOT_FOUND: i32 = 5;

pub struct Lease {
    id: i64,
    ttl: Duration,
    lost: watch::Receiver<bool>,
    /// Until when the lease surely holds (a TTL after the last
    /// acknowledged renewal was sent).
    expires: watch::Receiver<Instant>,
    keeper: tokio::task::JoinHandle<()>,
    store: EtcdStore,
}

impl EtcdStore {
    /// Grants a lease of `ttl` (etcd rounds it up to whole seconds, and
    /// grants at least its minimum, 2 s on a default cluster) and starts
    /// keeping it alive.
    pub async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let asked = ttl.as_secs_f64().ceil().max(1.0) as i64;
        let sent = Instant::now();
        let granted = self
            .failover()
            .call(|_, mut c| async move { c.lease_grant(asked, None).await })
            .await?;
        let ttl = Duration::from_secs(granted.ttl().max(1) as u64);
        let (tx, lost) = watch::channel(false);
        let (expires_tx, expires) = watch::channel(sent + ttl);
        let keeper = tokio::spawn(keep_alive(
            self.failover().clone(),
            granted.id(),
            ttl,
            sent,
            tx,
            expires_tx,
        ));
        Ok(Lease {
            id: granted.id(),
            ttl,
            lost,
            expires,
            keeper,
            store: self.clone(),
        })
    }
}

impl Lease {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL etcd granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Until when the lease surely holds, judged locally: a TTL after the
    /// last acknowledged renewal was sent. Moves with every renewal.
    pub fn expires(&self) -> watch::Receiver<Instant> {
        self.expires.clone()
    }

    /// Resolves once the lease is lost (at once if it already is).
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // An Err means the keeper ended without saying so: only when it
        // was aborted, which happens when the Lease is dropped.
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Stops renewing and revokes the lease: every key attached to it is
    /// deleted now rather than at expiry. A lease already gone is fine.
    pub async fn revoke(self) -> Result<()> {
        self.keeper.abort();
        let id = self.id;
        self.store
            .failover()
            .call(|_, mut c| async move {
                match c.lease_revoke(id).await {
                    Err(etcd_client::Error::GRpcStatus(s)) if s.code() as i32 == NOT_FOUND => {
                        Ok(())
                    }
                    other => other.map(drop),
                }
            })
            .await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// When the next renewal goes out: a third of the TTL after the last one
/// was sent, or sooner (half a second, never past the expiry) after one
/// failed.
fn next_renewal(sent: Instant, ttl: Duration, failed: bool, expires: Instant) -> Instant {
    let every = ttl / 3;
    if failed {
        (sent + every.min(Duration::from_millis(500))).min(expires)
    } else {
        sent + every
    }
}

async fn keep_alive(
    failover: Arc<Failover>,
    id: i64,
    ttl: Duration,
    granted_at: Instant,
    lost: watch::Sender<bool>,
    expiry: watch::Sender<Instant>,
) {
    let mut expires = granted_at + ttl;
    let mut next = next_renewal(granted_at, ttl, false, expires);
    loop {
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        if sent >= expires {
            tracing::warn!(
                lease = id,
                "lease lost: no renewal acknowledged within its TTL"
            );
            lost.send_replace(true);
            return;
        }
        // Never wait past the expiry for an answer: by then it is lost.
        let renewal = failover.call(|_, mut c| async move { c.lease_keep_alive(id).await });
        match tokio::time::timeout(expires - sent, renewal).await {
            Ok(Ok(_keeper_and_stream)) => {
                expires = sent + ttl;
                expiry.send_replace(expires);
                next = next_renewal(sent, ttl, false, expires);
            }
            Ok(Err(StoreError::LeaseExpired)) => {
                tracing::warn!(lease = id, "lease lost: etcd no longer has it");
                lost.send_replace(true);
                return;
            }
            Ok(Err(err)) => {
                tracing::debug!(lease = id, "lease renewal failed: {err}");
                next = next_renewal(sent, ttl, true, expires);
            }
            Err(_) => next = expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_are_every_third_of_the_ttl_and_sooner_after_a_failure() {
        let ttl = Duration::from_secs(9);
        let t0 = Instant::now();
        let expires = t0 + ttl;
        assert_eq!(
            next_renewal(t0, ttl, false, expires),
            t0 + Duration::from_secs(3)
        );
        assert_eq!(
            next_renewal(t0, ttl, true, expires),
            t0 + Duration::from_millis(500)
        );
        // A 1 s TTL retries after a third of it, and never past the expiry.
        let short = Duration::from_secs(1);
        let almost = t0 + Duration::from_millis(100);
        assert_eq!(next_renewal(t0, short, true, almost), almost);
    }
}
