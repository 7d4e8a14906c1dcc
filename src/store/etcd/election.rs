//! Leader election: one key, `/drover/leader`, created on the candidate's
//! lease by a transaction that requires it to be absent. Whoever created
//! it leads until its lease ends (crash, freeze, partition: no renewals)
//! or it resigns; the others watch the key and try again when it goes.
//!
//! The fence: a leader is identified by the key's `create_revision`, a
//! number no later leader can ever have. [`LeaderGuard`] turns it into a
//! transaction condition, and the controllers' writes carry it
//! (`EtcdStore::guarded`), so a leader that was frozen past its lease and
//! wakes up believing it still leads has every write refused
//! (`StoreError::NotLeader`) rather than fighting its successor.
//!
//! Why not etcd's election API (`Campaign`): it blocks in one long call on
//! one endpoint, which does not fit retrying across endpoints; the
//! transaction below is the same algorithm (etcd's concurrency package
//! also compares create revisions), one short call at a time.
//!
//! Must not: lead without a lease, or report leadership it cannot prove.

use super::keys::LEADER_KEY;
use super::{gets, header_revision, EtcdStore, Lease};
use crate::store::versioned::Result;
use etcd_client::{Compare, CompareOp, EventType, KeyValue, PutOptions, Txn, TxnOp, WatchOptions};
use std::time::Duration;

/// Proof of leadership, usable as a transaction condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderGuard {
    create_revision: i64,
}

impl LeaderGuard {
    pub(crate) fn compare(&self) -> Compare {
        Compare::create_revision(LEADER_KEY, CompareOp::Equal, self.create_revision)
    }

    pub(crate) fn key(&self) -> &'static str {
        LEADER_KEY
    }

    /// A guard for a made-up term (pure tests of code that carries one).
    #[cfg(test)]
    pub(crate) fn for_tests(create_revision: i64) -> LeaderGuard {
        LeaderGuard { create_revision }
    }

    /// The leadership's term: the leader key's create revision, larger
    /// for every new leader (for logs and events).
    pub fn term(&self) -> i64 {
        self.create_revision
    }

    /// Whether `leader` (the leader key as read, if present) is still the
    /// one this guard was issued for.
    pub(crate) fn holds(&self, leader: Option<&KeyValue>) -> bool {
        leader.is_some_and(|kv| kv.create_revision() == self.create_revision)
    }
}

/// This process leads while `lease` lives.
pub struct Leadership {
    lease: Lease,
    guard: LeaderGuard,
}

impl Leadership {
    pub fn guard(&self) -> &LeaderGuard {
        &self.guard
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Resolves when the lease is lost: stop the controllers at once.
    pub async fn lost(&self) {
        self.lease.lost().await
    }

    /// Steps down now: the key goes with the revoked lease, and the next
    /// candidate takes over without waiting for a TTL.
    pub async fn resign(self) -> Result<()> {
        self.lease.revoke().await
    }
}

/// Who leads now (the holder name the leader campaigned with).
pub async fn current_leader(store: &EtcdStore) -> Result<Option<String>> {
    let resp = store
        .failover()
        .call(|_, mut c| async move { c.get(LEADER_KEY, None).await })
        .await?;
    Ok(resp
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
}

/// Becomes the leader as `holder` (a node name) with a lease of `ttl`,
/// waiting for as long as someone else leads. Returns an error only when
/// etcd is unavailable for a whole call's budget; callers campaign again.
pub async fn campaign(store: &EtcdStore, holder: &str, ttl: Duration) -> Result<Leadership> {
    loop {
        let lease = store.grant_lease(ttl).await?;
        while !lease.is_lost() {
            let txn = Txn::new()
                .when([Compare::create_revision(LEADER_KEY, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    LEADER_KEY,
                    holder,
                    Some(PutOptions::new().with_lease(lease.id())),
                )])
                .or_else([TxnOp::get(LEADER_KEY, None)]);
            let resp = store.txn(txn).await?;
            let revision = header_revision(resp.header()) as i64;
            if resp.succeeded() {
                return Ok(Leadership {
                    lease,
                    guard: LeaderGuard {
                        create_revision: revision,
                    },
                });
            }
            let leader = gets(&resp)
                .into_iter()
                .next()
                .and_then(|kvs| kvs.into_iter().next());
            let Some(leader) = leader else {
                continue; // gone between the compare and the get: try again
            };
            if leader.lease() == lease.id() {
                // Our own earlier attempt landed but its answer was lost.
                return Ok(Leadership {
                    lease,
                    guard: LeaderGuard {
                        create_revision: leader.create_revision(),
                    },
                });
            }
            tokio::select! {
                _ = lease.lost() => {}
                _ = deleted(store, revision + 1) => {}
            }
        }
    }
}

/// Resolves when the leader key is deleted at or after `from`, or when the
/// watch breaks (the caller re-checks with a transaction either way).
async fn deleted(store: &EtcdStore, from: i64) {
    let opened = store
        .failover()
        .call(|_, mut c| async move {
            c.watch(
                LEADER_KEY,
                Some(WatchOptions::new().with_start_revision(from)),
            )
            .await
        })
        .await;
    let Ok(mut stream) = opened else {
        // Unavailable for a whole budget: pause, then let the caller's
        // transaction report it.
        tokio::time::sleep(store.failover().policy.max_backoff).await;
        return;
    };
    loop {
        match stream.message().await {
            Ok(Some(resp)) => {
                if resp.canceled()
                    || resp
                        .events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}
