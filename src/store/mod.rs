//! The store: every object drover knows, with a revision that grows on
//! each change, so watchers (`get -w`, `wait`) and the reconcile loop can
//! ask "has anything changed since N?".
//!
//! [`Store`] is the in-memory view the daemon's loop works on; a
//! [`Backend`] makes it durable. The embedded backend (`embedded.rs`) is
//! the single-host default: one snapshot file written crash-safely
//! (write-temp, fsync, rename, fsync dir). The etcd backend for clusters
//! plugs in behind the same trait.
//!
//! Must not: spawn processes, read clocks, or know about controllers.

pub mod embedded;

use crate::api::{Kind, Node, Object, Pod, ReplicaSet, ReplicationController};
use std::collections::BTreeMap;

/// Durability for the store's objects.
pub trait Backend: Send {
    /// Every object stored at the last successful persist.
    fn load(&mut self) -> anyhow::Result<Vec<Object>>;
    /// Make `snapshot` (every object, serialised) durable, atomically:
    /// after a crash either the old or the new snapshot is found.
    fn persist(&mut self, snapshot: &[u8]) -> anyhow::Result<()>;
}

type Key = (Kind, String);

pub struct Store {
    objects: BTreeMap<Key, Object>,
    revision: u64,
    /// Revision at the last snapshot handed to the backend.
    persisted_revision: u64,
    watch_tx: tokio::sync::watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let (watch_tx, _) = tokio::sync::watch::channel(0);
        Store {
            objects: BTreeMap::new(),
            revision: 0,
            persisted_revision: 0,
            watch_tx,
        }
    }

    /// A store holding what the backend had.
    pub fn load(backend: &mut dyn Backend) -> anyhow::Result<Store> {
        let mut store = Store::new();
        for obj in backend.load()? {
            store
                .objects
                .insert((obj.kind(), obj.name().to_string()), obj);
        }
        store.revision = 1;
        store.persisted_revision = 1;
        store.watch_tx.send_replace(store.revision);
        Ok(store)
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Resolves when the revision passes the one the receiver last saw.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.watch_tx.subscribe()
    }

    fn bump(&mut self) {
        self.revision += 1;
        self.watch_tx.send_replace(self.revision);
    }

    pub fn get(&self, kind: Kind, name: &str) -> Option<&Object> {
        self.objects.get(&(kind, name.to_string()))
    }

    /// Every object of one kind, by name.
    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects
            .range((kind, String::new())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|(_, o)| o)
    }

    /// Creates or replaces an object.
    pub fn put(&mut self, obj: Object) {
        self.objects
            .insert((obj.kind(), obj.name().to_string()), obj);
        self.bump();
    }

    /// Changes an object in place; the revision moves only if `f` says it
    /// changed something (returns true).
    pub fn update<F>(&mut self, kind: Kind, name: &str, f: F) -> bool
    where
        F: FnOnce(&mut Object) -> bool,
    {
        let changed = match self.objects.get_mut(&(kind, name.to_string())) {
            Some(obj) => f(obj),
            None => false,
        };
        if changed {
            self.bump();
        }
        changed
    }

    pub fn delete(&mut self, kind: Kind, name: &str) -> Option<Object> {
        let removed = self.objects.remove(&(kind, name.to_string()));
        if removed.is_some() {
            self.bump();
        }
        removed
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.list(Kind::Pod).filter_map(|o| match o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
    }

    pub fn pod(&self, name: &str) -> Option<&Pod> {
        match self.get(Kind::Pod, name) {
            Some(Object::Pod(p)) => Some(p),
            _ => None,
        }
    }

    /// Changes a pod in place (see [`Store::update`]).
    pub fn update_pod<F>(&mut self, name: &str, f: F) -> bool
    where
        F: FnOnce(&mut Pod) -> bool,
    {
        self.update(Kind::Pod, name, |o| match o {
            Object::Pod(p) => f(p),
            _ => false,
        })
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.list(Kind::Node).filter_map(|o| match o {
            Object::Node(n) => Some(n),
            _ => None,
        })
    }

    pub fn replicasets(&self) -> impl Iterator<Item = &ReplicaSet> {
        self.list(Kind::ReplicaSet).filter_map(|o| match o {
            Object::ReplicaSet(r) => Some(r),
            _ => None,
        })
    }

    pub fn replication_controllers(&self) -> impl Iterator<Item = &ReplicationController> {
        self.list(Kind::ReplicationController)
            .filter_map(|o| match o {
                Object::ReplicationController(r) => Some(r),
                _ => None,
            })
    }

    /// Whether there are changes no snapshot has captured yet.
    pub fn is_dirty(&self) -> bool {
        self.revision != self.persisted_revision
    }

    /// Serialises every object (events excluded: they are kept in memory)
    /// and marks the current revision as handed over for persisting.
    pub fn take_snapshot(&mut self) -> (u64, Vec<u8>) {
        let items: Vec<&Object> = self
            .objects
            .values()
            .filter(|o| o.kind() != Kind::Event)
            .collect();
        let bytes = serde_json::to_vec(&items).expect("objects serialise");
        self.persisted_revision = self.revision;
        (self.revision, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NodeSpec, NodeStatus, ObjectMeta};
    use chrono::TimeZone;

    fn node(name: &str) -> Object {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Object::Node(Node {
            metadata: ObjectMeta::new(name, t),
            spec: NodeSpec::default(),
            status: NodeStatus::default(),
        })
    }

    #[test]
    fn revisions_move_only_on_change() {
        let mut s = Store::new();
        s.put(node("a"));
        let r = s.revision();
        assert!(!s.update(Kind::Node, "a", |_| false));
        assert_eq!(s.revision(), r);
        assert!(s.update(Kind::Node, "a", |o| {
            o.meta_mut().labels.insert("x".into(), "y".into());
            true
        }));
        assert_eq!(s.revision(), r + 1);
        assert!(s.delete(Kind::Node, "missing").is_none());
        assert_eq!(s.revision(), r + 1);
    }

    #[test]
    fn list_is_per_kind_and_sorted() {
        let mut s = Store::new();
        s.put(node("b"));
        s.put(node("a"));
        let names: Vec<_> = s.list(Kind::Node).map(|o| o.name().to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(s.list(Kind::Pod).count(), 0);
    }

    #[test]
    fn snapshot_round_trips_through_the_embedded_backend() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = embedded::EmbeddedBackend::open(dir.path()).unwrap();
        let mut s = Store::load(&mut backend).unwrap();
        s.put(node("a"));
        assert!(s.is_dirty());
        let (_, bytes) = s.take_snapshot();
        assert!(!s.is_dirty());
        backend.persist(&bytes).unwrap();
        let mut again = embedded::EmbeddedBackend::open(dir.path()).unwrap();
        let s2 = Store::load(&mut again).unwrap();
        assert_eq!(s2.get(Kind::Node, "a"), s.get(Kind::Node, "a"));
    }
}
