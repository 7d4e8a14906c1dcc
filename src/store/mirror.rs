//! The store as a mirror of the cluster's store (etcd): the daemon's
//! in-memory [`Store`] becomes a cache fed by a watch (Kubernetes'
//! informer cache), which the controllers, the agent and the API read.
//!
//! Two kinds of writes reach a mirror:
//! - the source's, through `mirror_put`, `mirror_delete` and
//!   `mirror_replace`: objects come with the version the source gave
//!   them, are kept as they are, and are not local changes;
//! - the node's own (the agent writing its pods' status), through the
//!   usual `put`/`update`/`delete`: they keep the version they had (a
//!   mirror never stamps one) and are remembered as local changes, which
//!   [`Store::drain_local_changes`] hands to whoever sends them to the
//!   source.
//!
//! Every write of either kind moves the mirror's own revision, so watchers
//! (`get -w`, the daemon's loop) wake as for the embedded store.
//!
//! Must not: decide what to keep when the source and the node disagree
//! (the cluster's reflector does), or talk to the source.

use super::{Key, Store};
use crate::api::{Kind, Object};

impl Store {
    /// An empty mirror.
    pub fn mirror() -> Store {
        let mut store = Store::new();
        store.mirror = true;
        store
    }

    /// Whether this store mirrors another (cluster mode).
    pub fn is_mirror(&self) -> bool {
        self.mirror
    }

    /// Puts `obj` as the source stored it: its resource_version is kept,
    /// and it is not a local change.
    pub fn mirror_put(&mut self, obj: Object) {
        let key: Key = (obj.kind(), obj.name().to_string());
        self.objects.insert(key, obj);
        self.bump_mirrored();
    }

    /// Removes an object the source deleted (not a local change).
    pub fn mirror_delete(&mut self, kind: Kind, name: &str) -> Option<Object> {
        let removed = self.objects.remove(&(kind, name.to_string()));
        if removed.is_some() {
            self.bump_mirrored();
        }
        removed
    }

    /// Replaces every object but events (which are this daemon's own)
    /// with `objects`, as a source's snapshot. Local changes still
    /// waiting to be sent stay waiting.
    pub fn mirror_replace(&mut self, objects: impl IntoIterator<Item = Object>) {
        self.objects.retain(|(kind, _), _| *kind == Kind::Event);
        for obj in objects {
            self.objects
                .insert((obj.kind(), obj.name().to_string()), obj);
        }
        self.bump_mirrored();
    }

    /// Hands every key the node changed since the last call to `f`, with
    /// the object as it is now (None: deleted), and forgets them.
    pub fn drain_local_changes(&mut self, mut f: impl FnMut(Kind, &str, Option<&Object>)) {
        for key in std::mem::take(&mut self.dirty) {
            f(key.0, &key.1, self.objects.get(&key));
        }
    }

    /// A copy to plan on: same objects and versions, nothing pending, no
    /// watchers. A controller pass or an API request runs on it; what it
    /// changed ([`Store::diff_from`]) becomes compare-and-swap writes to
    /// the source, and the mirror itself changes only when the source
    /// says so.
    pub fn scratch(&self) -> Store {
        let mut copy = Store::new();
        copy.objects = self.objects.clone();
        copy.revision = self.revision;
        copy.mirror = self.mirror;
        copy
    }

    /// Every key this scratch copy changed since it was made from
    /// `original`: the object there before, and here now (events left
    /// out: they are the daemon's own).
    pub fn diff_from(&self, original: &Store) -> Vec<(Option<Object>, Option<Object>)> {
        self.dirty
            .iter()
            .filter(|k| k.0 != Kind::Event)
            .map(|k| {
                (
                    original.objects.get(k).cloned(),
                    self.objects.get(k).cloned(),
                )
            })
            .filter(|(before, after)| before != after)
            .collect()
    }

    fn bump_mirrored(&mut self) {
        self.revision += 1;
        self.watch_tx.send_replace(self.revision);
    }
}

#[cfg(test)]
mod tests {
    use super::super::versioned::contract::node;
    use super::*;

    fn versioned(name: &str, rv: u64) -> Object {
        let mut n = node(name);
        n.meta_mut().resource_version = rv;
        n
    }

    fn local_changes(s: &mut Store) -> Vec<(String, bool)> {
        let mut seen = Vec::new();
        s.drain_local_changes(|_, name, obj| seen.push((name.to_string(), obj.is_some())));
        seen
    }

    #[test]
    fn a_mirror_keeps_the_source_versions_and_local_writes_do_not_stamp() {
        let mut s = Store::mirror();
        let rx = s.subscribe();
        s.mirror_put(versioned("a", 1200));
        assert_eq!(
            s.get(Kind::Node, "a").unwrap().meta().resource_version,
            1200
        );
        assert!(
            rx.has_changed().unwrap(),
            "watchers wake on mirrored writes"
        );
        assert!(local_changes(&mut s).is_empty(), "not a local change");

        // The node's own write keeps the source's version: only the source
        // gives versions, so a compare-and-swap based on it stays valid.
        s.update(Kind::Node, "a", |o| {
            o.meta_mut().labels.insert("x".into(), "1".into());
            true
        });
        assert_eq!(
            s.get(Kind::Node, "a").unwrap().meta().resource_version,
            1200
        );
        assert_eq!(local_changes(&mut s), [("a".to_string(), true)]);
        assert!(local_changes(&mut s).is_empty(), "drained once");

        s.delete(Kind::Node, "a");
        assert_eq!(local_changes(&mut s), [("a".to_string(), false)]);
    }

    #[test]
    fn a_scratch_copy_reports_what_it_changed_and_leaves_the_mirror_alone() {
        let mut s = Store::mirror();
        s.mirror_put(versioned("a", 5));
        s.mirror_put(versioned("b", 6));
        let mut scratch = s.scratch();
        scratch.update(Kind::Node, "a", |o| {
            o.meta_mut().labels.insert("x".into(), "1".into());
            true
        });
        scratch.update(Kind::Node, "b", |_| true); // touched, not changed
        scratch.delete(Kind::Node, "b");
        scratch.put(node("c"));
        let mut diff = scratch.diff_from(&s);
        diff.sort_by_key(|(b, a)| b.as_ref().or(a.as_ref()).unwrap().name().to_string());
        let shape: Vec<(Option<u64>, Option<&str>)> = diff
            .iter()
            .map(|(b, a)| {
                (
                    b.as_ref().map(|o| o.meta().resource_version),
                    a.as_ref().map(|o| o.name()),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [(Some(5), Some("a")), (Some(6), None), (None, Some("c"))],
            "before carries the version read; after the object wanted"
        );
        assert!(s.get(Kind::Node, "c").is_none(), "the mirror is untouched");
        assert!(local_changes(&mut s).is_empty());
    }

    #[test]
    fn a_snapshot_replaces_everything_but_events_and_pending_local_changes() {
        let mut s = Store::mirror();
        s.mirror_put(versioned("old", 3));
        s.mirror_put(versioned("kept", 4));
        s.put(node("local")); // the node wrote it; not sent yet
        let meta = node("ev").meta().clone();
        let at = meta.creation_timestamp;
        s.put(Object::Event(crate::api::Event {
            metadata: meta,
            involved_object: crate::api::InvolvedObject {
                kind: Kind::Node,
                name: "kept".into(),
                uid: String::new(),
            },
            type_: crate::api::EventType::Normal,
            reason: "Seen".into(),
            message: String::new(),
            count: 1,
            first_timestamp: at,
            last_timestamp: at,
            source: "test".into(),
        }));
        let before = s.revision();
        s.mirror_replace([versioned("kept", 9), versioned("new", 10)]);
        assert!(s.revision() > before);
        let names: Vec<&str> = s.list(Kind::Node).map(|o| o.name()).collect();
        assert_eq!(names, ["kept", "new"]);
        assert_eq!(
            s.get(Kind::Node, "kept").unwrap().meta().resource_version,
            9
        );
        assert_eq!(
            s.list(Kind::Event).count(),
            1,
            "events are the daemon's own"
        );
        let pending: Vec<String> = local_changes(&mut s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(pending, ["local"], "events are never local changes to send");
    }
}
