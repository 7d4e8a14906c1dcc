//! Events, kept in memory (the last 1000): what happened to an object and
//! why. Repeats of the same (object, reason, message) fold into one event
//! with a count, as Kubernetes does, so a crash loop does not flood.

use crate::api::{Event, EventType, InvolvedObject, Kind, ObjectMeta};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

const KEEP: usize = 1000;

/// What happened, to which object, said by whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub kind: Kind,
    pub name: &'a str,
    pub uid: &'a str,
    pub type_: EventType,
    /// One CamelCase word: `Started`, `BackOff`, `SuccessfulCreate`.
    pub reason: &'a str,
    pub message: &'a str,
    /// `kubelet/NODE`, `replicaset-controller`, `scheduler`.
    pub source: &'a str,
}

/// What makes two events the same one: (object uid, reason, message).
type Key = (String, String, String);

#[derive(Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    /// Sequence number of `events[0]`; event `i` has `first + i`.
    first: u64,
    /// Where each kept event is, by its key: a repeat is found in one
    /// lookup (a pass over all kept events per event cost 5,000 pods
    /// scaled to 0 millions of string comparisons).
    index: HashMap<Key, u64>,
    seq: u64,
}

impl EventLog {
    pub fn record(&mut self, new: NewEvent<'_>, now: DateTime<Utc>) {
        let key = (
            new.uid.to_string(),
            new.reason.to_string(),
            new.message.to_string(),
        );
        if let Some(&at) = self.index.get(&key) {
            let e = &mut self.events[(at - self.first) as usize];
            e.count += 1;
            e.last_timestamp = now;
            return;
        }
        if self.events.is_empty() {
            self.first = self.seq + 1;
        }
        self.seq += 1;
        self.index.insert(key, self.seq);
        let mut metadata = ObjectMeta::new(format!("{}.{:x}", new.name, self.seq), now);
        metadata.generation = 0;
        self.events.push_back(Event {
            metadata,
            involved_object: InvolvedObject {
                kind: new.kind,
                name: new.name.to_string(),
                uid: new.uid.to_string(),
            },
            type_: new.type_,
            reason: new.reason.into(),
            message: new.message.into(),
            count: 1,
            first_timestamp: now,
            last_timestamp: now,
            source: new.source.into(),
        });
        while self.events.len() > KEEP {
            if let Some(old) = self.events.pop_front() {
                let key = (old.involved_object.uid, old.reason, old.message);
                if self.index.get(&key) == Some(&self.first) {
                    self.index.remove(&key);
                }
            }
            self.first += 1;
        }
    }

    /// Events of one object (by kind and name), or all, oldest first.
    pub fn list(&self, filter: Option<(Kind, &str)>) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| match filter {
                Some((k, n)) => e.involved_object.kind == k && e.involved_object.name == n,
                None => true,
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_event(type_: EventType, reason: &str) -> NewEvent<'_> {
        NewEvent {
            kind: Kind::Pod,
            name: "p",
            uid: "u",
            type_,
            reason,
            message: "m",
            source: "kubelet",
        }
    }

    #[test]
    fn repeats_fold_into_a_count() {
        let mut log = EventLog::default();
        let t = Utc::now();
        for _ in 0..3 {
            log.record(pod_event(EventType::Warning, "BackOff"), t);
        }
        log.record(pod_event(EventType::Normal, "Started"), t);
        let all = log.list(Some((Kind::Pod, "p")));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].count, 3);
        assert_eq!(all[0].type_, EventType::Warning);
        assert_eq!(all[1].type_, EventType::Normal);
        assert!(log.list(Some((Kind::Pod, "other"))).is_empty());
    }

    #[test]
    fn the_oldest_go_past_the_limit() {
        let mut log = EventLog::default();
        let t = Utc::now();
        for i in 0..KEEP + 5 {
            let message = format!("m{i}");
            log.record(
                NewEvent {
                    message: &message,
                    ..pod_event(EventType::Normal, "Started")
                },
                t,
            );
        }
        let all = log.list(None);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0].message, "m5");
        // A repeat of a dropped one is new; of a kept one, counted.
        log.record(
            NewEvent {
                message: "m0",
                ..pod_event(EventType::Normal, "Started")
            },
            t,
        );
        log.record(
            NewEvent {
                message: "m6",
                ..pod_event(EventType::Normal, "Started")
            },
            t,
        );
        let all = log.list(None);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all.last().unwrap().message, "m0");
        assert_eq!(all.iter().find(|e| e.message == "m6").unwrap().count, 2);
        assert_eq!(log.index.len(), KEEP);
    }
}
