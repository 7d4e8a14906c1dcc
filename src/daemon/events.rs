//! Events, kept in memory (the last 1000): what happened to an object and
//! why. Repeats of the same (object, reason, message) fold into one event
//! with a count, as Kubernetes does, so a crash loop does not flood.

use crate::api::{Event, EventType, InvolvedObject, Kind, ObjectMeta};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

const KEEP: usize = 1000;

#[derive(Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    seq: u64,
}

impl EventLog {
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        kind: Kind,
        name: &str,
        uid: &str,
        warning: bool,
        reason: &str,
        message: &str,
        source: &str,
        now: DateTime<Utc>,
    ) {
        if let Some(e) =
            self.events.iter_mut().rev().find(|e| {
                e.involved_object.uid == uid && e.reason == reason && e.message == message
            })
        {
            e.count += 1;
            e.last_timestamp = now;
            return;
        }
        self.seq += 1;
        let mut metadata = ObjectMeta::new(format!("{name}.{:x}", self.seq), now);
        metadata.generation = 0;
        self.events.push_back(Event {
            metadata,
            involved_object: InvolvedObject {
                kind,
                name: name.to_string(),
                uid: uid.to_string(),
            },
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            message: message.into(),
            count: 1,
            first_timestamp: now,
            last_timestamp: now,
            source: source.into(),
        });
        while self.events.len() > KEEP {
            self.events.pop_front();
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

    #[test]
    fn repeats_fold_into_a_count() {
        let mut log = EventLog::default();
        let t = Utc::now();
        for _ in 0..3 {
            log.record(Kind::Pod, "p", "u", true, "BackOff", "m", "kubelet", t);
        }
        log.record(Kind::Pod, "p", "u", false, "Started", "m", "kubelet", t);
        let all = log.list(Some((Kind::Pod, "p")));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].count, 3);
        assert!(log.list(Some((Kind::Pod, "other"))).is_empty());
    }
}
