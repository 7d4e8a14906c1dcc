//! The store interface both backends offer, shaped as Kubernetes clients
//! use theirs: reads carry each object's `metadata.resource_version` (the
//! store revision of its last write), and every write is a
//! compare-and-swap on it. A writer holding a stale version gets
//! [`StoreError::Conflict`] and never silently overwrites; a level-triggered
//! caller just re-reads and runs again.
//!
//! - [`ObjectStore`]: get, list, create, update_if, delete_if. Implemented
//!   by the etcd backend ([`super::etcd::EtcdStore`]) and, for the single
//!   host, by the in-memory [`Store`] behind a mutex (its CAS methods are
//!   in `revisions.rs`). One contract test runs against both.
//! - [`StoreError`]: the typed outcomes a caller branches on.
//!
//! Must not: decide anything about objects (controllers do), retry a
//! conflict by itself (only the caller can re-decide), or read clocks.

use super::Store;
use crate::api::{Kind, Object};
use std::future::Future;
use std::sync::Mutex;

/// Why a store call did not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object changed since the caller read it (or was created by
    /// someone else): re-read and decide again.
    #[error("{kind}/{name} changed: expected resource_version {expected}, found {actual}")]
    Conflict {
        kind: Kind,
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("{kind}/{name} not found")]
    NotFound { kind: Kind, name: String },
    #[error("{kind}/{name} already exists")]
    AlreadyExists { kind: Kind, name: String },
    /// A write guarded by leadership ran after the lease was lost: this
    /// process is no longer the leader and must stop writing.
    #[error("not the leader any more: the write was refused")]
    NotLeader,
    /// No endpoint answered within the retry budget. The write may or may
    /// not have been applied (a timeout after sending is ambiguous): a
    /// caller re-reads before deciding again.
    #[error("etcd unavailable after {attempts} attempts over {endpoints} endpoint(s): {last}")]
    Unavailable {
        attempts: u32,
        endpoints: usize,
        last: String,
    },
    /// The lease is gone (expired, or revoked): whatever hung on it went
    /// with it.
    #[error("the lease expired or was revoked")]
    LeaseExpired,
    /// A watch asked for history the server has compacted away; the
    /// watcher re-lists (callers of [`super::etcd::Watch`] never see it).
    #[error("revision {requested} was compacted (oldest kept: {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    /// A stored value that does not decode: written by something else, or
    /// by an incompatible drover.
    #[error("{key}: stored value does not decode: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The server refused the request for a reason retrying cannot fix
    /// (permission denied, request too large, ...).
    #[error("etcd refused the request: {0}")]
    Refused(String),
}

impl StoreError {
    /// True for the outcomes a level-triggered caller answers by reading
    /// again and re-running (Kubernetes' `IsConflict`).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Objects of one kind and the store revision they were read at: a watch
/// from `revision + 1` misses nothing and repeats nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub objects: Vec<Object>,
    pub revision: u64,
}

/// The read and compare-and-swap interface of a store backend.
///
/// Versions: every returned object has `metadata.resource_version` set to
/// the revision of its last write. `update_if` and `delete_if` succeed
/// only while the object still has the version the caller read.
pub trait ObjectStore {
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Object>>> + Send;

    fn list(&self, kind: Kind) -> impl Future<Output = Result<Listing>> + Send;

    /// Stores a new object; [`StoreError::AlreadyExists`] if the name is
    /// taken. Returns it as stored (with its resource_version).
    fn create(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send;

    /// Replaces the object if its stored version is still
    /// `obj.meta().resource_version`; returns it as stored.
    fn update_if(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send;

    /// Deletes the object if its stored version is still `expected`.
    fn delete_if(
        &self,
        kind: Kind,
        name: &str,
        expected: u64,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The single-host backend: the daemon's in-memory store (durable through
/// its journal), shared behind a mutex. Every call is immediate.
impl ObjectStore for Mutex<Store> {
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Object>>> + Send {
        let found = self.lock().unwrap().get(kind, name).cloned();
        std::future::ready(Ok(found))
    }

    fn list(&self, kind: Kind) -> impl Future<Output = Result<Listing>> + Send {
        let store = self.lock().unwrap();
        let listing = Listing {
            objects: store.list(kind).cloned().collect(),
            revision: store.revision(),
        };
        std::future::ready(Ok(listing))
    }

    fn create(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        std::future::ready(self.lock().unwrap().create(obj))
    }

    fn update_if(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        std::future::ready(self.lock().unwrap().update_if(obj))
    }

    fn delete_if(
        &self,
        kind: Kind,
        name: &str,
        expected: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        let done = self
            .lock()
            .unwrap()
            .delete_if(kind, name, expected)
            .map(drop);
        std::future::ready(done)
    }
}

/// The contract every backend keeps, as one async function per rule, so
/// the embedded store's unit tests and the etcd integration tests run the
/// same assertions. Each takes a fresh, empty store.
pub mod contract {
    use super::*;
    use crate::api::{Node, NodeSpec, NodeStatus, ObjectMeta};
    use chrono::TimeZone;

    pub fn node(name: &str) -> Object {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Object::Node(Node {
            metadata: ObjectMeta::new(name, t),
            spec: NodeSpec::default(),
            status: NodeStatus::default(),
        })
    }

    fn labelled(mut obj: Object, value: &str) -> Object {
        obj.meta_mut()
            .labels
            .insert("who".to_string(), value.to_string());
        obj
    }

    /// Two writers read the same version; the second write conflicts and
    /// leaves the first one's change in place. A re-read then succeeds.
    pub async fn stale_writer_conflicts(store: &impl ObjectStore) {
        let created = store.create(node("n1")).await.expect("create");
        let v1 = created.meta().resource_version;
        assert!(v1 > 0, "a stored object has a version");
        let a = store
            .update_if(labelled(created.clone(), "a"))
            .await
            .expect("first writer wins");
        assert!(a.meta().resource_version > v1, "a write moves the version");
        match store.update_if(labelled(created, "b")).await {
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => {
                assert_eq!((expected, actual), (v1, a.meta().resource_version));
            }
            other => panic!("stale writer must conflict, got {other:?}"),
        }
        let now = store.get(Kind::Node, "n1").await.unwrap().unwrap();
        assert_eq!(now.meta().labels["who"], "a", "the first write stands");
        assert_eq!(now.meta().resource_version, a.meta().resource_version);
        let b = store
            .update_if(labelled(now, "b"))
            .await
            .expect("re-read and retry succeeds");
        assert_eq!(b.meta().labels["who"], "b");
    }

    /// Create refuses a taken name; update and delete refuse a missing one;
    /// delete refuses a stale version.
    pub async fn create_update_delete_rules(store: &impl ObjectStore) {
        let n = store.create(node("n1")).await.unwrap();
        assert!(matches!(
            store.create(node("n1")).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.update_if(node("ghost")).await,
            Err(StoreError::NotFound { .. })
        ));
        let v = n.meta().resource_version;
        let n2 = store.update_if(labelled(n, "x")).await.unwrap();
        assert!(matches!(
            store.delete_if(Kind::Node, "n1", v).await,
            Err(StoreError::Conflict { .. })
        ));
        store
            .delete_if(Kind::Node, "n1", n2.meta().resource_version)
            .await
            .expect("delete at the current version");
        assert!(store.get(Kind::Node, "n1").await.unwrap().is_none());
        assert!(matches!(
            store.delete_if(Kind::Node, "n1", 0).await,
            Err(StoreError::NotFound { .. })
        ));
        // The name is free again; the new object's version is newer than
        // anything the old one had, so no stale holder can match it.
        let again = store.create(node("n1")).await.unwrap();
        assert!(again.meta().resource_version > n2.meta().resource_version);
    }

    /// A listing's revision is at least every listed object's version, and
    /// lists only the kind asked for.
    pub async fn list_carries_versions(store: &impl ObjectStore) {
        store.create(node("b")).await.unwrap();
        store.create(node("a")).await.unwrap();
        let listing = store.list(Kind::Node).await.unwrap();
        let names: Vec<&str> = listing.objects.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["a", "b"]);
        for o in &listing.objects {
            assert!(o.meta().resource_version > 0);
            assert!(o.meta().resource_version <= listing.revision);
        }
        assert!(store.list(Kind::Pod).await.unwrap().objects.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn embedded_stale_writer_conflicts() {
        run(contract::stale_writer_conflicts(&Mutex::new(Store::new())));
    }

    #[test]
    fn embedded_create_update_delete_rules() {
        run(contract::create_update_delete_rules(&Mutex::new(
            Store::new(),
        )));
    }

    #[test]
    fn embedded_list_carries_versions() {
        run(contract::list_carries_versions(&Mutex::new(Store::new())));
    }
}
