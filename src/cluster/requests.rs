//! API requests that change something, in cluster mode: the daemon
//! applies a request to its cache as on the embedded store, sends what it
//! changed to etcd (compare-and-swap on the versions it read), and answers
//! only once etcd has acknowledged the writes AND its cache shows them, so
//! a client's next request (on this node) sees its own change. A write
//! refused because the object changed meanwhile (a controller updating a
//! set's status while a user scales it) is retried on the fresher cache,
//! as kubectl's server-side patch is, a few times; then the client gets
//! the conflict (409).
//!
//! [`Pending`] is that bookkeeping, pure: the loop owns the replies and
//! the requests; this says what to do with each and when.
//!
//! Must not: hold a reply forever (every path ends in a reply: written,
//! conflict, unavailable), or reply before the cache has the write.

use super::commit::CommitOutcome;
use crate::store::versioned::StoreError;
use std::collections::BTreeMap;

/// Attempts per request before a conflict is the client's.
pub const MAX_ATTEMPTS: u32 = 5;

/// What the loop does with a request now.
#[derive(Debug)]
pub enum Next<T> {
    /// Written and visible in the cache: send the reply.
    Reply(T),
    /// Refused by a conflict, and the cache now has the newer object: run
    /// the request again (pass `attempts` back to [`Pending::add`]).
    Retry { item: T, attempts: u32 },
    /// Still conflicting after [`MAX_ATTEMPTS`]: answer 409.
    Conflict { item: T, refused: String },
    /// etcd did not answer (or refused): answer 503 with this.
    Failed { item: T, error: StoreError },
}

enum State {
    /// Its writes are out.
    Committing,
    /// Done in etcd; waiting for the cache to reach `revision`, then
    /// reply, or retry after a conflict.
    Catching {
        revision: u64,
        conflict: Option<String>,
    },
}

struct Entry<T> {
    item: T,
    attempts: u32,
    state: State,
}

/// Requests whose writes are on their way, by id.
pub struct Pending<T> {
    next_id: u64,
    entries: BTreeMap<u64, Entry<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            next_id: 1,
            entries: BTreeMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Tracks a request whose writes are being committed; `attempts` is 1
    /// for a new request, or what [`Next::Retry`] said. Returns its id.
    pub fn add(&mut self, item: T, attempts: u32) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                item,
                attempts,
                state: State::Committing,
            },
        );
        id
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The commit of request `id` finished; the cache is at
    /// `cache_revision`.
    pub fn committed(
        &mut self,
        id: u64,
        result: Result<CommitOutcome, StoreError>,
        cache_revision: u64,
    ) -> Vec<Next<T>> {
        let Some(entry) = self.entries.get_mut(&id) else {
            return Vec::new();
        };
        match result {
            Err(error) => {
                let entry = self.entries.remove(&id).expect("present");
                return vec![Next::Failed {
                    item: entry.item,
                    error,
                }];
            }
            Ok(outcome) => {
                let conflict = (!outcome.refused.is_empty()).then(|| {
                    outcome
                        .refused
                        .iter()
                        .map(|(kind, name, why)| format!("{kind}/{name}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                entry.state = State::Catching {
                    revision: outcome.wait_for,
                    conflict,
                };
            }
        }
        self.cache_at(cache_revision)
    }

    /// The cache reached `revision`: what can go on now.
    pub fn cache_at(&mut self, revision: u64) -> Vec<Next<T>> {
        let ready: Vec<u64> = self
            .entries
            .iter()
            .filter(
                |(_, e)| matches!(e.state, State::Catching { revision: r, .. } if r <= revision),
            )
            .map(|(id, _)| *id)
            .collect();
        ready
            .into_iter()
            .map(|id| {
                let entry = self.entries.remove(&id).expect("present");
                let State::Catching { conflict, .. } = entry.state else {
                    unreachable!("filtered")
                };
                match conflict {
                    None => Next::Reply(entry.item),
                    Some(_) if entry.attempts < MAX_ATTEMPTS => Next::Retry {
                        item: entry.item,
                        attempts: entry.attempts + 1,
                    },
                    Some(refused) => Next::Conflict {
                        item: entry.item,
                        refused,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    fn written(rev: u64) -> Result<CommitOutcome, StoreError> {
        Ok(CommitOutcome {
            revision: rev,
            refused: vec![],
            wait_for: rev,
        })
    }

    fn conflicted(wait_for: u64) -> Result<CommitOutcome, StoreError> {
        Ok(CommitOutcome {
            revision: 0,
            refused: vec![(Kind::ReplicaSet, "web".into(), "changed".into())],
            wait_for,
        })
    }

    fn names<T: Clone>(next: &[Next<T>]) -> Vec<(&'static str, T)> {
        next.iter()
            .map(|n| match n {
                Next::Reply(t) => ("reply", t.clone()),
                Next::Retry { item, .. } => ("retry", item.clone()),
                Next::Conflict { item, .. } => ("conflict", item.clone()),
                Next::Failed { item, .. } => ("failed", item.clone()),
            })
            .collect()
    }

    #[test]
    fn a_reply_waits_for_the_cache_to_show_the_write() {
        let mut p = Pending::default();
        let id = p.add("scale", 1);
        assert!(names(&p.committed(id, written(40), 39)).is_empty());
        assert!(names(&p.cache_at(39)).is_empty());
        assert_eq!(names(&p.cache_at(41)), [("reply", "scale")]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_write_already_in_the_cache_replies_at_once() {
        let mut p = Pending::default();
        let id = p.add("label", 1);
        assert_eq!(
            names(&p.committed(id, written(40), 40)),
            [("reply", "label")]
        );
        let id = p.add("no-op", 1);
        assert_eq!(names(&p.committed(id, written(0), 0)), [("reply", "no-op")]);
    }

    #[test]
    fn a_conflict_retries_on_the_fresher_cache_then_gives_up() {
        let mut p = Pending::default();
        let mut attempts = 1;
        for round in 0..MAX_ATTEMPTS {
            let id = p.add("scale", attempts);
            let next = p.committed(id, conflicted(50 + round as u64), 0);
            assert!(next.is_empty(), "waits for the cache first");
            let next = p.cache_at(60);
            match next.into_iter().next().unwrap() {
                Next::Retry { attempts: a, .. } => attempts = a,
                Next::Conflict { refused, .. } => {
                    assert_eq!(round + 1, MAX_ATTEMPTS);
                    assert!(refused.contains("ReplicaSet/web"), "{refused}");
                    return;
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn etcd_unavailable_fails_the_request_and_unknown_ids_are_ignored() {
        let mut p = Pending::default();
        let id = p.add("apply", 1);
        let err = StoreError::Unavailable {
            attempts: 3,
            endpoints: 1,
            last: "down".into(),
        };
        assert_eq!(names(&p.committed(id, Err(err), 0)), [("failed", "apply")]);
        assert!(p.committed(id, written(1), 1).is_empty());
    }
}
