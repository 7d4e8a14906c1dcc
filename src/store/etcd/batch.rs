//! Many writes for the price of a few round trips: a controller pass that
//! creates a thousand pods, or a node reporting a thousand statuses, sends
//! them as transactions of [`CHUNK`] writes each, every write keeping its
//! own condition (compare-and-swap on its version, or "the pod exists").
//!
//! A transaction is all or nothing: when one condition fails, nothing of
//! its chunk was written, and the chunk is written again one write at a
//! time, so each write gets its own outcome (the usual case, no conflict,
//! costs one round trip per chunk).
//!
//! Must not: retry a write whose condition failed (the caller re-decides),
//! or go on after the leadership is lost or etcd is unavailable (the rest
//! would fail the same way).

use super::keys::{object_key, status_key};
use super::{header_revision, EtcdStore, LeaderGuard, Write};
use crate::api::{Kind, Object, PodStatus};
use crate::store::versioned::{Result, StoreError};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

/// Writes per transaction: etcd allows 128 operations (and 128
/// conditions) in one (`--max-txn-ops`); a write needs at most two of each,
/// plus the leadership's condition.
pub const CHUNK: usize = 40;

/// One write of a batch.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum BatchWrite {
    /// A new object (the name must be free).
    Create(Object),
    /// Replaces the object if it still has `resource_version`.
    Update(Object),
    /// Deletes the object if it still has version `expected` (a pod's
    /// status key goes with it).
    Delete {
        kind: Kind,
        name: String,
        expected: u64,
    },
}

impl BatchWrite {
    fn as_write(&self) -> Write<'_> {
        match self {
            BatchWrite::Create(o) => Write::Create(o),
            BatchWrite::Update(o) => Write::Update(o),
            BatchWrite::Delete {
                kind,
                name,
                expected,
            } => Write::Delete {
                kind: *kind,
                name,
                expected: *expected,
            },
        }
    }

    pub fn kind(&self) -> Kind {
        self.as_write().kind()
    }

    pub fn name(&self) -> &str {
        match self {
            BatchWrite::Create(o) | BatchWrite::Update(o) => o.name(),
            BatchWrite::Delete { name, .. } => name,
        }
    }
}

/// One pod status report of a batch (see [`EtcdStore::put_pod_status`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusReport {
    pub pod: String,
    pub uid: String,
    pub status: PodStatus,
}

impl EtcdStore {
    /// Applies `writes` in order; each gets its outcome (the revision it
    /// was written at, or why not: Conflict, NotFound, AlreadyExists). An
    /// `Err` for the whole call (NotLeader, Unavailable) means the writes
    /// after those already reported were not applied.
    pub async fn write_all(
        &self,
        writes: &[BatchWrite],
        guard: Option<&LeaderGuard>,
    ) -> Result<Vec<Result<u64>>> {
        let mut out = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(CHUNK) {
            let mut when: Vec<Compare> = Vec::new();
            let mut then: Vec<TxnOp> = Vec::new();
            for w in chunk {
                let (c, o) = w.as_write().parts();
                when.extend(c);
                then.extend(o);
            }
            if let Some(g) = guard {
                when.push(g.compare());
            }
            let resp = self.txn(Txn::new().when(when).and_then(then)).await?;
            if resp.succeeded() {
                let revision = header_revision(resp.header());
                out.extend(chunk.iter().map(|_| Ok(revision)));
                continue;
            }
            // Nothing of the chunk was written: one at a time, to learn
            // which condition failed and to apply the others.
            for w in chunk {
                match self.write(w.as_write(), guard).await {
                    Err(e @ (StoreError::NotLeader | StoreError::Unavailable { .. })) => {
                        return Err(e)
                    }
                    other => out.push(other),
                }
            }
        }
        Ok(out)
    }

    /// [`EtcdStore::put_pod_status`] for many pods: each report is written
    /// only while its pod object exists (else its outcome is NotFound).
    pub async fn put_pod_statuses(&self, reports: &[StatusReport]) -> Result<Vec<Result<u64>>> {
        let mut out = Vec::with_capacity(reports.len());
        for chunk in reports.chunks(CHUNK) {
            let when: Vec<Compare> = chunk
                .iter()
                .map(|r| Compare::version(object_key(Kind::Pod, &r.pod), CompareOp::Greater, 0))
                .collect();
            let then: Vec<TxnOp> = chunk
                .iter()
                .map(|r| TxnOp::put(status_key(&r.pod), status_value(r), None))
                .collect();
            let resp = self.txn(Txn::new().when(when).and_then(then)).await?;
            if resp.succeeded() {
                let revision = header_revision(resp.header());
                out.extend(chunk.iter().map(|_| Ok(revision)));
                continue;
            }
            for r in chunk {
                match self.put_pod_status(&r.pod, &r.uid, &r.status).await {
                    Err(e @ StoreError::Unavailable { .. }) => return Err(e),
                    other => out.push(other),
                }
            }
        }
        Ok(out)
    }
}

/// The value of a pod's status key.
pub(super) fn status_value(r: &StatusReport) -> Vec<u8> {
    serde_json::to_vec(&super::keys::NodeStatus {
        uid: r.uid.clone(),
        status: r.status.clone(),
    })
    .expect("statuses always serialise")
}
