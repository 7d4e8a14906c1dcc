//! Compare-and-swap for the in-memory [`Store`], with etcd's semantics:
//! an object's `metadata.resource_version` is the store revision of its
//! last write (stamped by `Store::changed` on every put, update or delete,
//! whoever made it), and [`Store::create`], [`Store::update_if`] and
//! [`Store::delete_if`] refuse to act on a version the caller did not read.
//!
//! The revision survives restarts through the objects themselves: load
//! resumes after the newest stored version ([`resume_after`]), so a
//! version handed out before a restart never names a different write
//! after it. (Writes that never became durable are the exception: their
//! versions may be handed out again. The daemon acknowledges only durable
//! writes, so no client holds one.)
//!
//! Must not: persist (the daemon's loop does), or wait.

use super::versioned::{Result, StoreError};
use super::{Key, Store};
use crate::api::{Kind, Object};

/// The revision a store loaded with `objects` continues from: past every
/// stored version, and at least 1 (a loaded store has had a first write).
pub(super) fn resume_after<'a>(objects: impl Iterator<Item = &'a Object>) -> u64 {
    objects
        .map(|o| o.meta().resource_version)
        .max()
        .unwrap_or(0)
        .max(1)
}

impl Store {
    /// Stores `obj` under a name not taken yet; returns it as stored.
    pub fn create(&mut self, obj: Object) -> Result<Object> {
        let key: Key = (obj.kind(), obj.name().to_string());
        if self.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists {
                kind: key.0,
                name: key.1,
            });
        }
        self.put(obj);
        Ok(self.objects[&key].clone())
    }

    /// Replaces the stored object if its version is still the one `obj`
    /// was read at (`obj.meta().resource_version`); returns it as stored.
    pub fn update_if(&mut self, obj: Object) -> Result<Object> {
        let key: Key = (obj.kind(), obj.name().to_string());
        self.check(&key, obj.meta().resource_version)?;
        // Another incarnation under the same name (deleted and created
        // again) is a conflict even if its version happens to match: the
        // embedded store's revision is not durable past the last persist.
        let stored = &self.objects[&key];
        if !obj.meta().uid.is_empty() && stored.meta().uid != obj.meta().uid {
            return Err(StoreError::Conflict {
                kind: key.0,
                name: key.1,
                expected: obj.meta().resource_version,
                actual: stored.meta().resource_version,
            });
        }
        self.put(obj);
        Ok(self.objects[&key].clone())
    }

    /// Deletes the object if its version is still `expected`.
    pub fn delete_if(&mut self, kind: Kind, name: &str, expected: u64) -> Result<Object> {
        let key: Key = (kind, name.to_string());
        self.check(&key, expected)?;
        Ok(self.delete(kind, name).expect("checked present"))
    }

    fn check(&self, key: &Key, expected: u64) -> Result<()> {
        let Some(stored) = self.objects.get(key) else {
            return Err(StoreError::NotFound {
                kind: key.0,
                name: key.1.clone(),
            });
        };
        let actual = stored.meta().resource_version;
        if actual != expected {
            return Err(StoreError::Conflict {
                kind: key.0,
                name: key.1.clone(),
                expected,
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::versioned::contract::node;
    use super::super::{Backend, Changes};
    use super::*;

    /// A backend that keeps what it was given, like a journal would.
    #[derive(Default)]
    struct Memory(Vec<Object>);
    impl Backend for Memory {
        fn load(&mut self) -> anyhow::Result<Vec<Object>> {
            Ok(self.0.clone())
        }
        fn persist(&mut self, c: &Changes) -> anyhow::Result<()> {
            self.0 = c.all().cloned().collect();
            Ok(())
        }
    }

    #[test]
    fn every_write_stamps_the_revision_blind_ones_too() {
        let mut s = Store::new();
        s.put(node("a"));
        assert_eq!(s.get(Kind::Node, "a").unwrap().meta().resource_version, 1);
        s.update(Kind::Node, "a", |o| {
            o.meta_mut().labels.insert("x".into(), "y".into());
            true
        });
        let rv = s.get(Kind::Node, "a").unwrap().meta().resource_version;
        assert_eq!(rv, s.revision());
        assert_eq!(rv, 2);
        // A blind put by older code paths still moves the version, so a
        // CAS writer holding 2 cannot overwrite it.
        s.put(node("a"));
        let mut stale = node("a");
        stale.meta_mut().resource_version = 2;
        assert!(matches!(
            s.update_if(stale),
            Err(StoreError::Conflict {
                expected: 2,
                actual: 3,
                ..
            })
        ));
    }

    #[test]
    fn an_unchanged_update_keeps_the_version() {
        let mut s = Store::new();
        s.put(node("a"));
        assert!(!s.update(Kind::Node, "a", |_| false));
        assert_eq!(s.get(Kind::Node, "a").unwrap().meta().resource_version, 1);
    }

    #[test]
    fn versions_go_on_after_a_reload() {
        let mut backend = Memory::default();
        let mut s = Store::new();
        s.put(node("a"));
        s.put(node("b"));
        s.put(node("c"));
        s.delete(Kind::Node, "c");
        s.persist(&mut backend).unwrap();
        let before = s.get(Kind::Node, "b").unwrap().clone();
        assert_eq!(before.meta().resource_version, 2);

        let mut s = Store::load(&mut backend).unwrap();
        assert_eq!(s.get(Kind::Node, "b"), Some(&before), "versions persist");
        let after = s.create(node("d")).unwrap();
        assert!(after.meta().resource_version > 2);
        // The holder of b's version from before the restart still writes.
        assert!(s.update_if(before).is_ok());
    }

    #[test]
    fn resume_after_table() {
        let at = |v: u64| {
            let mut n = node("n");
            n.meta_mut().resource_version = v;
            n
        };
        let cases: [(&str, Vec<Object>, u64); 3] = [
            ("empty store", vec![], 1),
            ("old store without versions", vec![at(0), at(0)], 1),
            ("newest version wins", vec![at(7), at(42), at(3)], 42),
        ];
        for (name, objects, want) in cases {
            assert_eq!(resume_after(objects.iter()), want, "{name}");
        }
    }
}
