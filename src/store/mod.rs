//! The store: every object drover knows, with a revision that grows on
//! each change, so watchers (`get -w`, `wait`) and the reconcile loop can
//! ask "has anything changed since N?".
//!
//! [`Store`] is the in-memory view the daemon's loop works on; a
//! [`Backend`] makes it durable. The store remembers which keys changed
//! since the last persist and hands the backend just those ([`Changes`]),
//! so persisting costs what changed, not the size of the store. The
//! embedded backend (`embedded.rs`) is the single-host default: a
//! snapshot plus an append-only journal (`journal.rs`). The etcd backend
//! for clusters plugs in behind the same trait (one put or delete per
//! key).
//!
//! Must not: spawn processes, read clocks, or know about controllers.

pub mod embedded;
pub mod etcd;
mod journal;
mod mirror;
mod revisions;
pub mod versioned;

use crate::api::{Kind, Node, Object, Pod, ReplicaSet, ReplicationController};
use std::collections::{BTreeMap, BTreeSet};

/// Durability for the store's objects.
pub trait Backend: Send {
    /// Every object stored at the last successful persist.
    fn load(&mut self) -> anyhow::Result<Vec<Object>>;
    /// Makes `changes` durable before returning: after a crash, a load
    /// finds either all of them or (if this call did not return Ok) none,
    /// on top of everything earlier calls made durable.
    fn persist(&mut self, changes: &Changes) -> anyhow::Result<()>;
    /// Like [`Backend::persist`], for the last persist before the daemon
    /// exits: a backend that keeps a log may fold it into one snapshot
    /// here, so the next start reads one file.
    fn persist_all(&mut self, changes: &Changes) -> anyhow::Result<()> {
        self.persist(changes)
    }
}

type Key = (Kind, String);

/// What changed since the last successful persist, read straight from the
/// store (nothing is copied): objects put or changed, keys deleted, and
/// for a backend that rewrites everything now and then, every object.
/// Events are never included: they are kept in memory only.
pub struct Changes<'a> {
    objects: &'a BTreeMap<Key, Object>,
    keys: &'a BTreeSet<Key>,
}

impl<'a> Changes<'a> {
    /// Objects created or changed, each whole, by key.
    pub fn put(&self) -> impl Iterator<Item = &'a Object> + '_ {
        self.keys.iter().filter_map(|k| self.objects.get(k))
    }

    /// Keys of objects deleted.
    pub fn deleted(&self) -> impl Iterator<Item = (Kind, &'a str)> + '_ {
        self.keys
            .iter()
            .filter(|k| !self.objects.contains_key(*k))
            .map(|(kind, name)| (*kind, name.as_str()))
    }

    /// Every object of the store after these changes (events excluded).
    pub fn all(&self) -> impl Iterator<Item = &'a Object> {
        self.objects.values().filter(|o| o.kind() != Kind::Event)
    }
}

pub struct Store {
    objects: BTreeMap<Key, Object>,
    revision: u64,
    /// Keys put, changed or deleted since the last successful persist.
    dirty: BTreeSet<Key>,
    watch_tx: tokio::sync::watch::Sender<u64>,
    /// A mirror of another store (cluster mode: etcd, see `mirror.rs`):
    /// versions are the other store's, never stamped here.
    mirror: bool,
    /// The open transaction, if any (see [`Store::begin`]).
    txn: Option<Transaction>,
}

/// Undo records of an open transaction: what each key held before the
/// transaction first changed it, and whether it was already waiting to be
/// persisted then.
#[derive(Default)]
struct Transaction {
    undo: BTreeMap<Key, Undo>,
    changed: bool,
}

struct Undo {
    before: Option<Object>,
    was_dirty: bool,
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
            dirty: BTreeSet::new(),
            watch_tx,
            mirror: false,
            txn: None,
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
        // Revisions go on from the newest stored object's: a writer holding
        // a resource_version from before the restart must never match a
        // different write after it (see `revisions`).
        store.revision = revisions::resume_after(store.objects.values());
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

    /// Records a change of `key`: a new revision for watchers, and the key
    /// for the next persist (events are never persisted).
    fn changed(&mut self, key: Key) {
        if let Some(txn) = &mut self.txn {
            txn.changed = true;
        }
        self.revision += 1;
        // The object's resource_version is the revision of its last write,
        // whoever wrote it (compare-and-swap: `revisions.rs`). A mirror
        // keeps the versions its source gave (`mirror.rs`).
        if !self.mirror {
            if let Some(obj) = self.objects.get_mut(&key) {
                obj.meta_mut().resource_version = self.revision;
            }
        }
        if key.0 != Kind::Event {
            self.dirty.insert(key);
        }
        self.watch_tx.send_replace(self.revision);
    }

    /// A new revision with no object written (a rolled back transaction).
    fn bump(&mut self) {
        self.revision += 1;
        self.watch_tx.send_replace(self.revision);
    }

    /// Before `key` changes inside a transaction: keeps what it held, the
    /// first time only.
    fn keep_undo(&mut self, key: &Key) {
        let Some(txn) = &mut self.txn else {
            return;
        };
        if txn.undo.contains_key(key) {
            return;
        }
        let undo = Undo {
            before: self.objects.get(key).cloned(),
            was_dirty: self.dirty.contains(key),
        };
        txn.undo.insert(key.clone(), undo);
    }

    /// Opens a transaction: every change from now on can be undone by
    /// [`Store::rollback`] until [`Store::commit`]. The daemon opens one
    /// around each API request, so a change that cannot be persisted is
    /// refused and undone, not kept in memory (what is acknowledged is
    /// what is durable). Transactions do not nest.
    pub fn begin(&mut self) {
        debug_assert!(self.txn.is_none(), "transactions do not nest");
        self.txn = Some(Transaction::default());
    }

    /// Whether the open transaction changed anything.
    pub fn txn_changed(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.changed)
    }

    /// Keeps the transaction's changes (they are persisted like any other).
    pub fn commit(&mut self) {
        self.txn = None;
    }

    /// Undoes every change of the open transaction: objects are as they
    /// were at [`Store::begin`], and keys that were not waiting to be
    /// persisted then are not now. Changes made before the transaction
    /// (the agent's) stay pending. Watchers see a new revision (revisions
    /// only grow).
    pub fn rollback(&mut self) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        if !txn.changed {
            return;
        }
        for (key, undo) in txn.undo {
            match undo.before {
                Some(obj) => self.objects.insert(key.clone(), obj),
                None => self.objects.remove(&key),
            };
            if !undo.was_dirty {
                self.dirty.remove(&key);
            }
        }
        self.bump();
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
        let key = (obj.kind(), obj.name().to_string());
        self.keep_undo(&key);
        self.objects.insert(key.clone(), obj);
        self.changed(key);
    }

    /// Changes an object in place; the revision moves only if `f` says it
    /// changed something (returns true).
    pub fn update<F>(&mut self, kind: Kind, name: &str, f: F) -> bool
    where
        F: FnOnce(&mut Object) -> bool,
    {
        let key = (kind, name.to_string());
        if self.txn.is_some() && self.objects.contains_key(&key) {
            // `f` may change it: keep what it was (a copy per key and
            // transaction; transactions are API requests, few and small).
            self.keep_undo(&key);
        }
        let changed = match self.objects.get_mut(&key) {
            Some(obj) => f(obj),
            None => false,
        };
        if changed {
            self.changed(key);
        }
        changed
    }

    pub fn delete(&mut self, kind: Kind, name: &str) -> Option<Object> {
        let key = (kind, name.to_string());
        if self.objects.contains_key(&key) {
            self.keep_undo(&key);
        }
        let removed = self.objects.remove(&key);
        if removed.is_some() {
            self.changed(key);
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

    /// Whether there are changes no persist has made durable yet.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Whether a pod that never started (no process status yet) is not
    /// durable yet: a pod a controller just made. Its processes must not
    /// start before it is on disk, or a crash forgets a pod whose process
    /// ran (a Job's completed index would run again).
    pub fn has_unsaved_new_pods(&self) -> bool {
        self.dirty.iter().any(|key| {
            key.0 == Kind::Pod
                && matches!(self.objects.get(key), Some(Object::Pod(p))
                    if p.status.processes.is_empty() && p.metadata.deletion_timestamp.is_none())
        })
    }

    /// Makes every change since the last successful persist durable
    /// (nothing to do if there is none). On error the changes stay
    /// pending, so the next call retries them with whatever changed
    /// meanwhile; nothing is dropped.
    pub fn persist(&mut self, backend: &mut dyn Backend) -> anyhow::Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        backend.persist(&self.changes())?;
        self.dirty.clear();
        Ok(())
    }

    /// [`Store::persist`] for the daemon's exit: always writes, and lets
    /// the backend fold its log into one snapshot.
    pub fn persist_all(&mut self, backend: &mut dyn Backend) -> anyhow::Result<()> {
        backend.persist_all(&self.changes())?;
        self.dirty.clear();
        Ok(())
    }

    fn changes(&self) -> Changes<'_> {
        Changes {
            objects: &self.objects,
            keys: &self.dirty,
        }
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

    /// A pod a controller just made is "unsaved and new" until a persist;
    /// one that started (has process statuses) or is being deleted is not
    /// what holds its processes back.
    #[test]
    fn new_pods_are_unsaved_until_persisted() {
        use crate::controllers::fixtures::{pod, PodFixture};
        struct Nothing;
        impl Backend for Nothing {
            fn load(&mut self) -> anyhow::Result<Vec<Object>> {
                Ok(vec![])
            }
            fn persist(&mut self, _: &Changes) -> anyhow::Result<()> {
                Ok(())
            }
        }
        let mut s = Store::new();
        s.put(node("n"));
        assert!(!s.has_unsaved_new_pods(), "a node is not a pod");
        s.put(Object::Pod(pod("started").running()));
        assert!(!s.has_unsaved_new_pods(), "it has started");
        s.put(Object::Pod(pod("new")));
        assert!(s.has_unsaved_new_pods());
        s.persist(&mut Nothing).unwrap();
        assert!(!s.has_unsaved_new_pods(), "on disk now");
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        s.put(Object::Pod(pod("going").terminating(t)));
        assert!(!s.has_unsaved_new_pods(), "being deleted");
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
    fn changes_list_puts_and_deletes_since_the_last_persist() {
        struct Recorder(Vec<(Vec<String>, Vec<String>, usize)>);
        impl Backend for Recorder {
            fn load(&mut self) -> anyhow::Result<Vec<Object>> {
                Ok(vec![])
            }
            fn persist(&mut self, c: &Changes) -> anyhow::Result<()> {
                let put = c.put().map(|o| o.name().to_string()).collect();
                let deleted = c.deleted().map(|(_, n)| n.to_string()).collect();
                self.0.push((put, deleted, c.all().count()));
                Ok(())
            }
        }
        let mut backend = Recorder(vec![]);
        let mut s = Store::new();
        s.put(node("a"));
        s.put(node("b"));
        assert!(s.is_dirty());
        s.persist(&mut backend).unwrap();
        assert!(!s.is_dirty());
        s.persist(&mut backend).unwrap(); // nothing changed: not called
        assert!(!s.update(Kind::Node, "a", |_| false));
        assert!(
            !s.is_dirty(),
            "an update that changed nothing is not a change"
        );
        s.delete(Kind::Node, "a");
        s.put(node("c"));
        s.put(node("x"));
        s.delete(Kind::Node, "x"); // created and deleted in between
        s.persist(&mut backend).unwrap();
        let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            backend.0,
            [
                (names(&["a", "b"]), names(&[]), 2),
                (names(&["c"]), names(&["a", "x"]), 2),
            ]
        );
    }

    #[test]
    fn a_rolled_back_transaction_leaves_the_store_as_it_was() {
        struct Recorder(Vec<Vec<String>>);
        impl Backend for Recorder {
            fn load(&mut self) -> anyhow::Result<Vec<Object>> {
                Ok(vec![])
            }
            fn persist(&mut self, c: &Changes) -> anyhow::Result<()> {
                let mut keys: Vec<String> = c.put().map(|o| o.name().to_string()).collect();
                keys.extend(c.deleted().map(|(_, n)| format!("-{n}")));
                self.0.push(keys);
                Ok(())
            }
        }
        let labelled = |s: &Store, n: &str| {
            s.get(Kind::Node, n)
                .map(|o| o.meta().labels.get("x").cloned().unwrap_or_default())
        };
        let mut backend = Recorder(vec![]);
        let mut s = Store::new();
        s.put(node("kept"));
        s.put(node("doomed"));
        s.persist(&mut backend).unwrap();
        // The agent changed "pending" and it is not persisted yet.
        s.put(node("pending"));
        let before = s.revision();

        s.begin();
        assert!(!s.txn_changed());
        s.put(node("new"));
        s.update(Kind::Node, "kept", |o| {
            o.meta_mut().labels.insert("x".into(), "1".into());
            true
        });
        s.update(Kind::Node, "kept", |o| {
            o.meta_mut().labels.insert("x".into(), "2".into());
            true
        });
        s.update(Kind::Node, "pending", |o| {
            o.meta_mut().labels.insert("x".into(), "3".into());
            true
        });
        s.delete(Kind::Node, "doomed");
        assert!(s.txn_changed());
        s.rollback();

        assert_eq!(labelled(&s, "kept").as_deref(), Some(""));
        assert_eq!(labelled(&s, "pending").as_deref(), Some(""));
        assert!(s.get(Kind::Node, "doomed").is_some());
        assert!(s.get(Kind::Node, "new").is_none());
        assert!(s.revision() > before, "watchers see the undo");
        // Only the agent's change is still waiting to be persisted.
        s.persist(&mut backend).unwrap();
        assert_eq!(backend.0.last().unwrap(), &["pending"]);

        // A committed transaction is persisted like any change.
        s.begin();
        s.delete(Kind::Node, "doomed");
        s.commit();
        s.persist(&mut backend).unwrap();
        assert_eq!(backend.0.last().unwrap(), &["-doomed"]);
        // A transaction that changed nothing.
        s.begin();
        assert!(!s.update(Kind::Node, "kept", |_| false));
        assert!(!s.txn_changed());
        let r = s.revision();
        s.rollback();
        assert_eq!(s.revision(), r);
        assert!(!s.is_dirty());
    }

    #[test]
    fn a_failed_persist_keeps_its_changes_for_the_next() {
        struct Flaky(u32, Vec<usize>);
        impl Backend for Flaky {
            fn load(&mut self) -> anyhow::Result<Vec<Object>> {
                Ok(vec![])
            }
            fn persist(&mut self, c: &Changes) -> anyhow::Result<()> {
                self.0 += 1;
                if self.0 == 1 {
                    anyhow::bail!("disk full");
                }
                self.1.push(c.put().count());
                Ok(())
            }
        }
        let mut backend = Flaky(0, vec![]);
        let mut s = Store::new();
        s.put(node("a"));
        assert!(s.persist(&mut backend).is_err());
        assert!(s.is_dirty());
        s.put(node("b"));
        s.persist(&mut backend).unwrap();
        assert_eq!(backend.1, [2], "the retry carries both changes");
    }
}
