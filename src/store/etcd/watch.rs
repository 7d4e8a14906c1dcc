//! The watch that feeds a cache: everything under `/drover/`, first as a
//! snapshot, then as changes, resumed across broken streams and endpoint
//! failures from the last revision seen, and re-listed when etcd has
//! compacted the history it would need (Kubernetes' reflector: list, then
//! watch from the list's revision, re-list on "too old").
//!
//! A consumer applies each [`WatchEvent`] in order: a `Snapshot` replaces
//! everything it knew, `Changes` are applied one by one. It never sees a
//! gap: after a snapshot at revision R the next changes start at R + 1.
//!
//! Must not: drop a change silently (a value that does not decode is
//! logged and skipped, the only exception), or give up on its own (an
//! outage surfaces as an `Err` from [`Watch::next`]; call it again).

use super::keys::{self, KeyRef, NodeStatus};
use super::{gets, header_revision, EtcdStore};
use crate::api::Object;
use crate::store::versioned::{Result, StoreError};
use etcd_client::{EventType, GetOptions, KeyValue, Txn, TxnOp, WatchOptions, WatchStream};

/// One decoded key under `/drover/`.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Entry {
    /// With its resource_version set. Pods as stored: merge their
    /// [`Entry::PodStatus`] with [`keys::merge_status`].
    Object(Object),
    PodStatus {
        pod: String,
        status: NodeStatus,
    },
    /// The node's heartbeat key exists: its lease is alive.
    NodeLease {
        node: String,
    },
    Leader {
        holder: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Put(Entry),
    Delete(KeyRef),
}

#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// Everything drover owns at `revision`: replace what you knew.
    Snapshot { revision: u64, entries: Vec<Entry> },
    /// What changed after the previous event, up to `revision`.
    Changes { revision: u64, changes: Vec<Change> },
}

pub struct Watch {
    store: EtcdStore,
    /// The first revision not seen yet; None: start with a snapshot.
    next: Option<i64>,
    /// The open stream and the endpoint it is on.
    stream: Option<(usize, WatchStream)>,
    /// Streams broken in a row (paces re-opening).
    breaks: u32,
}

impl EtcdStore {
    /// A watch of everything drover owns. `from = None` starts with a
    /// snapshot; `Some(r)` delivers changes from revision `r` on (or a
    /// snapshot, if `r` was compacted).
    pub fn watch(&self, from: Option<u64>) -> Watch {
        Watch {
            store: self.clone(),
            next: from.map(|r| r as i64),
            stream: None,
            breaks: 0,
        }
    }
}

impl Watch {
    /// The next snapshot or batch of changes. An `Err` means etcd was
    /// unavailable for a whole call's budget; the watch keeps its place,
    /// so calling again resumes where it was.
    pub async fn next(&mut self) -> Result<WatchEvent> {
        loop {
            let Some(from) = self.next else {
                return self.relist().await;
            };
            if self.stream.is_none() {
                self.open(from).await?;
            }
            let (idx, stream) = self.stream.as_mut().expect("opened above");
            let idx = *idx;
            match stream.message().await {
                Ok(Some(resp)) if resp.canceled() => {
                    self.stream = None;
                    if resp.compact_revision() > 0 {
                        tracing::info!(
                            from,
                            compacted = resp.compact_revision(),
                            "watch history compacted: re-listing"
                        );
                        self.next = None;
                    } else {
                        // "no leader" and the like: another member may do.
                        self.broke(idx);
                    }
                }
                Ok(Some(resp)) => {
                    self.breaks = 0;
                    let Some(last) = resp.events().last() else {
                        continue; // "created", or a progress notice
                    };
                    let revision = last.kv().map_or(from, |kv| kv.mod_revision());
                    let changes = resp.events().iter().filter_map(change).collect();
                    self.next = Some(revision + 1);
                    return Ok(WatchEvent::Changes {
                        revision: revision as u64,
                        changes,
                    });
                }
                Ok(None) | Err(_) => {
                    self.stream = None;
                    self.broke(idx);
                }
            }
        }
    }

    async fn open(&mut self, from: i64) -> Result<()> {
        if self.breaks > 0 {
            let pause = self.store.failover().reopen_pause(self.breaks - 1);
            tokio::time::sleep(pause).await;
        }
        let opened = self
            .store
            .failover()
            .call(|idx, mut c| async move {
                let options = WatchOptions::new().with_prefix().with_start_revision(from);
                c.watch(keys::ROOT, Some(options)).await.map(|s| (idx, s))
            })
            .await?;
        self.stream = Some(opened);
        Ok(())
    }

    fn broke(&mut self, idx: usize) {
        self.store.failover().abandon(idx);
        self.breaks = self.breaks.saturating_add(1);
    }

    async fn relist(&mut self) -> Result<WatchEvent> {
        let txn = Txn::new().and_then([TxnOp::get(
            keys::ROOT,
            Some(GetOptions::new().with_prefix()),
        )]);
        let resp = self.store.txn(txn).await?;
        let revision = header_revision(resp.header());
        let entries = gets(&resp)
            .into_iter()
            .flatten()
            .filter_map(|kv| entry(&kv))
            .collect();
        self.next = Some(revision as i64 + 1);
        self.stream = None;
        Ok(WatchEvent::Snapshot { revision, entries })
    }
}

fn change(event: &etcd_client::Event) -> Option<Change> {
    let kv = event.kv()?;
    match event.event_type() {
        EventType::Put => entry(kv).map(Change::Put),
        EventType::Delete => keys::parse(kv.key()).map(Change::Delete),
    }
}

/// Decodes one key-value; None for keys drover does not own and for
/// values that do not decode (logged: a cache cannot hold them anyway).
fn entry(kv: &KeyValue) -> Option<Entry> {
    let decoded = match keys::parse(kv.key())? {
        KeyRef::Object(..) => keys::decode(kv.value(), kv.mod_revision()).map(Entry::Object),
        KeyRef::PodStatus(pod) => {
            serde_json::from_slice(kv.value()).map(|status| Entry::PodStatus { pod, status })
        }
        KeyRef::NodeLease(node) => Ok(Entry::NodeLease { node }),
        KeyRef::Leader => Ok(Entry::Leader {
            holder: String::from_utf8_lossy(kv.value()).into_owned(),
        }),
    };
    match decoded {
        Ok(entry) => Some(entry),
        Err(source) => {
            let err = StoreError::Corrupt {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                source,
            };
            tracing::warn!("skipping a stored value: {err}");
            None
        }
    }
}
