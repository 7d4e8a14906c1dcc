//! How the watch of etcd becomes the daemon's cache: each [`WatchEvent`]
//! is applied to the daemon's mirror [`Store`] (objects) and to a
//! [`ClusterCache`] (what is not an object: which nodes' heartbeats are
//! alive, who leads, each pod's status as its node reported it, and the
//! etcd revision the cache has reached). Pure: no I/O, no clock.
//!
//! A pod as users see it is its object merged with its status key
//! (`keys::merge_status`). The exception is this node's own pods: their
//! status is what the local agent wrote last, not the echo of an earlier
//! write coming back through the watch, so an object update (a label, a
//! deletion mark) keeps the local status and takes only the binding. The
//! cache holds no local status for a pod it has not seen yet (at start,
//! after a restart of the daemon): then etcd's copy is taken, which is how
//! a restarted daemon finds the pids to re-adopt.
//!
//! Must not: talk to etcd, decide what the agent does with a change
//! (fencing does), or mark mirrored writes as local changes.

use crate::api::{Object, Pod};
use crate::store::etcd::keys::{merge_status, KeyRef, NodeStatus};
use crate::store::etcd::{Change, Entry, WatchEvent};
use crate::store::Store;
use std::collections::{BTreeSet, HashMap};

/// What the cache knows besides objects.
#[derive(Debug, Default)]
pub struct ClusterCache {
    /// Nodes whose heartbeat key exists (their lease is alive).
    pub alive: BTreeSet<String>,
    /// The controllers' leader, by node name.
    pub leader: Option<String>,
    /// The etcd revision applied last: the cache reflects every write up
    /// to it (the leader's expectations wait on this).
    pub revision: u64,
    /// Each pod's status as its node last reported it, by pod name.
    statuses: HashMap<String, NodeStatus>,
}

/// What one [`ClusterCache::apply`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The node heartbeats alive (the node lifecycle's input).
    pub leases: bool,
    pub leader: bool,
}

impl ClusterCache {
    /// Applies one watch event to `store` (a mirror) and to self.
    /// `local_node` is this daemon's node.
    pub fn apply(&mut self, store: &mut Store, event: WatchEvent, local_node: &str) -> Applied {
        let before = (self.alive.clone(), self.leader.clone());
        match event {
            WatchEvent::Snapshot { revision, entries } => {
                self.alive.clear();
                self.leader = None;
                self.statuses.clear();
                let mut objects = Vec::new();
                for entry in entries {
                    match entry {
                        Entry::Object(obj) => objects.push(obj),
                        other => self.note(other),
                    }
                }
                let objects: Vec<Object> = objects
                    .into_iter()
                    .map(|obj| self.merged(store, obj, local_node))
                    .collect();
                store.mirror_replace(objects);
                self.revision = revision;
            }
            WatchEvent::Changes { revision, changes } => {
                for change in changes {
                    self.change(store, change, local_node);
                }
                self.revision = self.revision.max(revision);
            }
        }
        Applied {
            leases: before.0 != self.alive,
            leader: before.1 != self.leader,
        }
    }

    fn change(&mut self, store: &mut Store, change: Change, local_node: &str) {
        match change {
            Change::Put(Entry::Object(obj)) => {
                let obj = self.merged(store, obj, local_node);
                store.mirror_put(obj);
            }
            Change::Put(Entry::PodStatus { pod, status }) => {
                let updated = store
                    .pod(&pod)
                    .filter(|p| !is_local(p, local_node) && p.metadata.uid == status.uid)
                    .map(|p| {
                        let mut p = p.clone();
                        merge_status(&mut p, Some(&status));
                        p
                    });
                self.statuses.insert(pod, status);
                if let Some(p) = updated {
                    store.mirror_put(Object::Pod(p));
                }
            }
            Change::Put(other) => self.note(other),
            Change::Delete(KeyRef::Object(kind, name)) => {
                store.mirror_delete(kind, &name);
            }
            Change::Delete(KeyRef::PodStatus(pod)) => {
                self.statuses.remove(&pod);
            }
            Change::Delete(KeyRef::NodeLease(node)) => {
                self.alive.remove(&node);
            }
            Change::Delete(KeyRef::Leader) => self.leader = None,
        }
    }

    /// Records an entry that is not an object.
    fn note(&mut self, entry: Entry) {
        match entry {
            Entry::Object(_) => unreachable!("objects go to the store"),
            Entry::PodStatus { pod, status } => {
                self.statuses.insert(pod, status);
            }
            Entry::NodeLease { node } => {
                self.alive.insert(node);
            }
            Entry::Leader { holder } => self.leader = Some(holder),
        }
    }

    /// `obj` as the cache keeps it: a pod merged with its status (see the
    /// module comment for this node's own pods).
    fn merged(&self, store: &Store, obj: Object, local_node: &str) -> Object {
        let Object::Pod(mut pod) = obj else {
            return obj;
        };
        let cached = store
            .pod(&pod.metadata.name)
            .filter(|c| c.metadata.uid == pod.metadata.uid);
        match cached {
            Some(c) if is_local(&pod, local_node) => {
                let binding = pod.status.node_name.take();
                pod.status = c.status.clone();
                pod.status.node_name = binding;
            }
            _ => {
                let status = self.statuses.get(&pod.metadata.name);
                merge_status(&mut pod, status)
            }
        }
        Object::Pod(pod)
    }

    /// Whether every write up to `revision` is in the cache.
    pub fn has_reached(&self, revision: u64) -> bool {
        self.revision >= revision
    }
}

fn is_local(pod: &Pod, node: &str) -> bool {
    pod.status.node_name.as_deref() == Some(node)
}

/// The pods bound to `node` in `store`.
pub fn pods_bound_to<'a>(store: &'a Store, node: &'a str) -> impl Iterator<Item = &'a Pod> {
    store.pods().filter(move |p| is_local(p, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Kind, PodPhase, PodStatus};
    use crate::controllers::fixtures::{pod, PodFixture};

    const HERE: &str = "n1";

    fn versioned(p: Pod, rv: u64) -> Object {
        let mut obj = Object::Pod(p);
        obj.meta_mut().resource_version = rv;
        obj
    }

    fn reported(p: &Pod, phase: PodPhase) -> NodeStatus {
        NodeStatus {
            uid: p.metadata.uid.clone(),
            status: PodStatus {
                phase,
                node_name: p.status.node_name.clone(),
                ..PodStatus::default()
            },
        }
    }

    fn changes(revision: u64, changes: Vec<Change>) -> WatchEvent {
        WatchEvent::Changes { revision, changes }
    }

    fn phase(store: &Store, name: &str) -> PodPhase {
        store.pod(name).expect("cached").status.phase
    }

    #[test]
    fn a_snapshot_merges_statuses_and_records_leases_and_the_leader() {
        let there = pod("web-a").on("n2");
        let mut store = Store::mirror();
        let mut cache = ClusterCache::default();
        let applied = cache.apply(
            &mut store,
            WatchEvent::Snapshot {
                revision: 40,
                entries: vec![
                    Entry::Object(versioned(there.clone(), 31)),
                    Entry::PodStatus {
                        pod: "web-a".into(),
                        status: reported(&there, PodPhase::Running),
                    },
                    Entry::NodeLease { node: "n2".into() },
                    Entry::Leader {
                        holder: "n2".into(),
                    },
                ],
            },
            HERE,
        );
        assert_eq!(
            applied,
            Applied {
                leases: true,
                leader: true
            }
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Running);
        let cached = store.pod("web-a").unwrap();
        assert_eq!(cached.metadata.resource_version, 31, "the object's version");
        assert_eq!(cached.status.node_name.as_deref(), Some("n2"));
        assert_eq!(cache.alive, BTreeSet::from(["n2".to_string()]));
        assert_eq!(cache.leader.as_deref(), Some("n2"));
        assert!(cache.has_reached(40) && !cache.has_reached(41));
    }

    #[test]
    fn a_status_may_come_before_or_after_its_pod() {
        let p = pod("web-a").on("n2");
        let mut store = Store::mirror();
        let mut cache = ClusterCache::default();
        // Status first (its pod is not cached yet), then the pod.
        cache.apply(
            &mut store,
            changes(
                5,
                vec![Change::Put(Entry::PodStatus {
                    pod: "web-a".into(),
                    status: reported(&p, PodPhase::Running),
                })],
            ),
            HERE,
        );
        assert!(store.pod("web-a").is_none());
        cache.apply(
            &mut store,
            changes(6, vec![Change::Put(Entry::Object(versioned(p.clone(), 6)))]),
            HERE,
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Running);
        // A later report updates the cached pod, keeping its version.
        cache.apply(
            &mut store,
            changes(
                7,
                vec![Change::Put(Entry::PodStatus {
                    pod: "web-a".into(),
                    status: reported(&p, PodPhase::Failed),
                })],
            ),
            HERE,
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Failed);
        assert_eq!(store.pod("web-a").unwrap().metadata.resource_version, 6);
        assert_eq!(cache.revision, 7);
    }

    #[test]
    fn a_report_left_by_an_earlier_pod_of_the_same_name_is_ignored() {
        let old = pod("db").on("n2");
        let mut new = pod("db").on("n2");
        new.metadata.uid = "uid-new".into();
        let mut store = Store::mirror();
        let mut cache = ClusterCache::default();
        cache.apply(
            &mut store,
            changes(
                3,
                vec![
                    Change::Put(Entry::Object(versioned(new, 2))),
                    Change::Put(Entry::PodStatus {
                        pod: "db".into(),
                        status: reported(&old, PodPhase::Running),
                    }),
                ],
            ),
            HERE,
        );
        assert_eq!(phase(&store, "db"), PodPhase::Pending);
    }

    #[test]
    fn this_nodes_pods_keep_the_agents_status_over_echoes() {
        let p = pod("web-a").on(HERE);
        let mut store = Store::mirror();
        let mut cache = ClusterCache::default();
        // At start the cache is empty: etcd's report is taken (re-adoption
        // reads the pids from it).
        cache.apply(
            &mut store,
            WatchEvent::Snapshot {
                revision: 10,
                entries: vec![
                    Entry::Object(versioned(p.clone(), 9)),
                    Entry::PodStatus {
                        pod: "web-a".into(),
                        status: reported(&p, PodPhase::Running),
                    },
                ],
            },
            HERE,
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Running);
        // The agent moves on; an older report echoes back: ignored.
        store.update_pod("web-a", |p| {
            p.status.phase = PodPhase::Failed;
            true
        });
        cache.apply(
            &mut store,
            changes(
                11,
                vec![Change::Put(Entry::PodStatus {
                    pod: "web-a".into(),
                    status: reported(&p, PodPhase::Running),
                })],
            ),
            HERE,
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Failed);
        // A control-plane update (marked for deletion) keeps the agent's
        // status, takes the object's metadata and version.
        let mut marked = p.clone();
        marked.metadata.deletion_timestamp = Some(p.metadata.creation_timestamp);
        cache.apply(
            &mut store,
            changes(12, vec![Change::Put(Entry::Object(versioned(marked, 12)))]),
            HERE,
        );
        let cached = store.pod("web-a").unwrap();
        assert_eq!(cached.status.phase, PodPhase::Failed);
        assert!(cached.metadata.deletion_timestamp.is_some());
        assert_eq!(cached.metadata.resource_version, 12);
        // So does a snapshot (a re-list after fencing).
        cache.apply(
            &mut store,
            WatchEvent::Snapshot {
                revision: 20,
                entries: vec![
                    Entry::Object(versioned(p.clone(), 15)),
                    Entry::PodStatus {
                        pod: "web-a".into(),
                        status: reported(&p, PodPhase::Running),
                    },
                ],
            },
            HERE,
        );
        assert_eq!(phase(&store, "web-a"), PodPhase::Failed);
    }

    #[test]
    fn deletes_remove_objects_leases_and_the_leader() {
        let p = pod("web-a").on("n2");
        let mut store = Store::mirror();
        let mut cache = ClusterCache::default();
        cache.apply(
            &mut store,
            changes(
                3,
                vec![
                    Change::Put(Entry::Object(versioned(p, 2))),
                    Change::Put(Entry::NodeLease { node: "n2".into() }),
                    Change::Put(Entry::Leader {
                        holder: "n2".into(),
                    }),
                ],
            ),
            HERE,
        );
        let applied = cache.apply(
            &mut store,
            changes(
                4,
                vec![
                    Change::Delete(KeyRef::Object(Kind::Pod, "web-a".into())),
                    Change::Delete(KeyRef::PodStatus("web-a".into())),
                    Change::Delete(KeyRef::NodeLease("n2".into())),
                    Change::Delete(KeyRef::Leader),
                ],
            ),
            HERE,
        );
        assert!(applied.leases && applied.leader);
        assert!(store.pod("web-a").is_none());
        assert!(cache.alive.is_empty() && cache.leader.is_none());
        let mut local = Vec::new();
        store.drain_local_changes(|_, n, _| local.push(n.to_string()));
        assert!(local.is_empty(), "mirrored writes are not local changes");
    }
}
