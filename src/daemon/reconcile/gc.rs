//! The garbage collector: objects whose controlling owner is gone.

use super::executor::jobs;
use super::mark_deleted;
use crate::api::{Kind, ObjectMeta};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Pods whose controlling owner no longer exists are deleted (Kubernetes'
/// background cascading deletion), and so are Jobs whose CronJob is gone.
/// `--cascade=orphan` clears the owner reference before the owner goes,
/// so those are not touched here.
///
/// Jobs go first, so the pods of a Job collected now are collected in the
/// same pass.
pub(super) fn collect_garbage(store: &mut Store, now: DateTime<Utc>) {
    let orphan_jobs: Vec<String> = {
        let mut gone = Owners::new(store);
        jobs(store)
            .filter(|j| gone.owner_is_gone(&j.metadata))
            .map(|j| j.metadata.name.clone())
            .collect()
    };
    for name in orphan_jobs {
        store.delete(Kind::Job, &name);
    }
    let orphans: Vec<String> = {
        let mut gone = Owners::new(store);
        store
            .pods()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| gone.owner_is_gone(&p.metadata))
            .map(|p| p.metadata.name.clone())
            .collect()
    };
    for name in orphans {
        mark_deleted(store, &name, now);
    }
}

/// Whether controlling owners still exist, each looked up in the store
/// once: a store lookup copies the name into its key, and a thousand pods
/// share one ReplicaSet.
struct Owners<'a> {
    store: &'a Store,
    gone: HashMap<(Kind, &'a str, &'a str), bool>,
}

impl<'a> Owners<'a> {
    fn new(store: &'a Store) -> Owners<'a> {
        Owners {
            store,
            gone: HashMap::new(),
        }
    }

    /// The object has a controlling owner, and no object with that
    /// owner's kind, name and uid exists any more (a re-created namesake
    /// is another owner).
    fn owner_is_gone(&mut self, meta: &'a ObjectMeta) -> bool {
        let Some(owner) = meta.controller() else {
            return false;
        };
        let store = self.store;
        let key = (owner.kind, owner.name.as_str(), owner.uid.as_str());
        *self.gone.entry(key).or_insert_with(|| {
            store
                .get(owner.kind, &owner.name)
                .is_none_or(|o| o.meta().uid != owner.uid)
        })
    }
}
