//! Control-plane writes in cluster mode: a controller pass or an API
//! request works on the daemon's cache as on the embedded store, and what
//! it changed (each key's object before and after) becomes etcd writes,
//! every one a compare-and-swap on the version the cache had
//! ([`writes`], pure). [`commit`] sends them in batches; the cache hears of
//! them back through the watch, like every other node's.
//!
//! A refused write (the object changed meanwhile, or was deleted, or the
//! name was taken) is not retried here: the caller waits until its cache
//! has caught up with etcd ([`CommitOutcome::wait_for`]) and decides again
//! on what it sees then (Kubernetes' controllers requeue on conflict the
//! same way).
//!
//! Must not: write events (they are each daemon's own, kept in memory), or
//! write without a version check.

use crate::api::{Kind, Object};
use crate::store::etcd::{BatchWrite, EtcdStore, LeaderGuard};
use crate::store::versioned::StoreError;

/// The etcd writes that turn `before` into `after`, key by key. Events
/// are left out; so are keys that did not change.
pub fn writes(
    changes: impl IntoIterator<Item = (Option<Object>, Option<Object>)>,
) -> Vec<BatchWrite> {
    let mut out = Vec::new();
    for (before, after) in changes {
        match (before, after) {
            (Some(b), _) | (_, Some(b)) if b.kind() == Kind::Event => {}
            (None, None) => {}
            (None, Some(a)) => out.push(BatchWrite::Create(a)),
            (Some(b), None) => out.push(delete(&b)),
            (Some(b), Some(mut a)) => {
                if b.meta().uid != a.meta().uid {
                    // Deleted and made again under the same name.
                    out.push(delete(&b));
                    a.meta_mut().resource_version = 0;
                    out.push(BatchWrite::Create(a));
                } else if same_content(&b, &a) {
                    // Touched but not changed.
                } else {
                    a.meta_mut().resource_version = b.meta().resource_version;
                    out.push(BatchWrite::Update(a));
                }
            }
        }
    }
    out
}

fn delete(obj: &Object) -> BatchWrite {
    BatchWrite::Delete {
        kind: obj.kind(),
        name: obj.name().to_string(),
        expected: obj.meta().resource_version,
    }
}

fn same_content(a: &Object, b: &Object) -> bool {
    let mut b = b.clone();
    b.meta_mut().resource_version = a.meta().resource_version;
    *a == b
}

/// What came of a commit.
#[derive(Debug, Default, PartialEq)]
pub struct CommitOutcome {
    /// The highest revision written (0: nothing was).
    pub revision: u64,
    /// Writes etcd refused because the object is not as the cache had
    /// it: (kind, name, why).
    pub refused: Vec<(Kind, String, String)>,
    /// The cache must reach this revision before the caller decides again
    /// (its own writes, and whatever made the refused ones fail).
    pub wait_for: u64,
}

/// Sends `writes`; leadership-guarded when `guard` is given (the
/// controllers' writes). `Err` only for NotLeader (stop writing) and
/// Unavailable (some writes may have been applied: re-read, retry later).
pub async fn commit(
    store: &EtcdStore,
    writes: &[BatchWrite],
    guard: Option<&LeaderGuard>,
) -> Result<CommitOutcome, StoreError> {
    if writes.is_empty() {
        return Ok(CommitOutcome::default());
    }
    let results = store.write_all(writes, guard).await?;
    let mut outcome = CommitOutcome::default();
    for (w, r) in writes.iter().zip(results) {
        match r {
            Ok(rev) => outcome.revision = outcome.revision.max(rev),
            Err(e) => outcome
                .refused
                .push((w.kind(), w.name().to_string(), e.to_string())),
        }
    }
    outcome.wait_for = outcome.revision;
    if !outcome.refused.is_empty() {
        // Whatever refused them is at or before etcd's revision now.
        outcome.wait_for = outcome.wait_for.max(store.revision().await?);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::fixtures::{pod, PodFixture};

    fn at(mut obj: Object, rv: u64) -> Object {
        obj.meta_mut().resource_version = rv;
        obj
    }

    #[test]
    fn writes_table() {
        let a = Object::Pod(pod("a"));
        let a_bound = Object::Pod(pod("a").on("n1"));
        let mut a_again = Object::Pod(pod("a"));
        a_again.meta_mut().uid = "another".into();
        type Case = (
            &'static str,
            Option<Object>,
            Option<Object>,
            Vec<BatchWrite>,
        );
        let cases: Vec<Case> = vec![
            (
                "created",
                None,
                Some(a.clone()),
                vec![BatchWrite::Create(a.clone())],
            ),
            (
                "changed: compare on the version read",
                Some(at(a.clone(), 7)),
                Some(at(a_bound.clone(), 99)),
                vec![BatchWrite::Update(at(a_bound.clone(), 7))],
            ),
            (
                "deleted at the version read",
                Some(at(a.clone(), 7)),
                None,
                vec![BatchWrite::Delete {
                    kind: Kind::Pod,
                    name: "a".into(),
                    expected: 7,
                }],
            ),
            (
                "touched but equal: nothing",
                Some(at(a.clone(), 7)),
                Some(at(a.clone(), 8)),
                vec![],
            ),
            (
                "replaced by another object of the same name",
                Some(at(a.clone(), 7)),
                Some(at(a_again.clone(), 8)),
                vec![
                    BatchWrite::Delete {
                        kind: Kind::Pod,
                        name: "a".into(),
                        expected: 7,
                    },
                    BatchWrite::Create(at(a_again.clone(), 0)),
                ],
            ),
            ("nothing either side", None, None, vec![]),
        ];
        for (name, before, after, want) in cases {
            assert_eq!(writes([(before, after)]), want, "{name}");
        }
    }

    #[test]
    fn events_stay_local() {
        let ev = Object::Event(crate::api::Event {
            metadata: crate::api::ObjectMeta::new("e", crate::controllers::fixtures::t(0)),
            involved_object: crate::api::InvolvedObject {
                kind: Kind::Pod,
                name: "a".into(),
                uid: String::new(),
            },
            type_: crate::api::EventType::Normal,
            reason: "Started".into(),
            message: String::new(),
            count: 1,
            first_timestamp: crate::controllers::fixtures::t(0),
            last_timestamp: crate::controllers::fixtures::t(0),
            source: "kubelet/n1".into(),
        });
        assert!(writes([(None, Some(ev.clone())), (Some(ev), None)]).is_empty());
    }
}
