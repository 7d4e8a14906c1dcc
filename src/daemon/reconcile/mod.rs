//! The control plane's side of the daemon: runs the pure controllers over
//! the store and applies what they plan, then does the two bits of
//! bookkeeping Kubernetes does in other components. One file per job:
//!
//! - [`executor`]: each controller's pass and the thin executor that
//!   applies its plan (style.md §3: "a thin executor applies the plan").
//! - [`daemonsets`]: the DaemonSet controller's executor (its pods are
//!   made for their node; they bypass binding).
//! - [`bind`]: binding pending pods to nodes (the scheduler's binding).
//! - [`gc`]: deleting objects whose controller is gone (the garbage
//!   collector: pods of a deleted set or Job, Jobs of a deleted CronJob).
//! - [`wakeup`]: when time-driven work (a CronJob's next run, a Job's
//!   backoff, deadline or TTL) is due although nothing changed.
//!
//! Single host needs no "expectations" (Kubernetes' guard against a lagging
//! cache): plans are applied to the same in-memory store the next
//! reconcile reads, before it runs.
//!
//! Every step plans while it borrows the store, collects its plans, then
//! applies them (the borrow checker forces that order). The controllers
//! take their pods, nodes and Jobs by reference, so a pass allocates for
//! what it changes, not for every object: this runs after every store
//! change, and a store may hold thousands of pods.

mod bind;
mod daemonsets;
mod executor;
mod gc;
mod wakeup;

use super::events::EventLog;
use crate::api::{annotations, Kind, ObjectMeta};
use crate::store::Store;
use chrono::{DateTime, Utc};

pub use wakeup::next_wakeup;

/// What one pass of the controllers did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// The pass changed the store.
    pub changed: bool,
    /// A controller stopped short of its goal (the burst cap) and must run
    /// again even if nothing else changes: the caller schedules another
    /// pass soon, after other events had their turn (Kubernetes' requeue).
    pub requeue: bool,
}

/// One pass of every controller.
pub fn run_controllers(store: &mut Store, events: &mut EventLog, now: DateTime<Utc>) -> Pass {
    let before = store.revision();
    let requeue = executor::run_sets(store, events, now);
    daemonsets::run_daemonsets(store, events, now);
    executor::run_cronjobs(store, events, now);
    executor::run_jobs(store, events, now);

    bind::schedule(store, events, now);
    gc::collect_garbage(store, now);
    Pass {
        changed: store.revision() != before,
        requeue,
    }
}

/// `prefix` + 5 random characters, as the Kubernetes API server does for
/// `generate_name`, drawn again until `taken` says the name is free.
pub(in crate::daemon) fn generated_name(prefix: &str, taken: impl Fn(&str) -> bool) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let suffix: String = bytes[..5]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let name = format!("{prefix}{suffix}");
        if !taken(&name) {
            return name;
        }
    }
}

/// Graceful deletion: the agent stops the processes and removes the pod.
/// A pod bound to no node has nothing to stop and goes at once.
pub fn mark_deleted(store: &mut Store, name: &str, now: DateTime<Utc>) -> bool {
    let Some(pod) = store.pod(name) else {
        return false;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if pod.status.node_name.is_none() {
        store.delete(Kind::Pod, name);
        return true;
    }
    store.update_pod(name, |p| {
        p.metadata.deletion_timestamp = Some(now);
        true
    })
}

/// Whether an object came from the units folder (and so belongs to it).
pub fn from_units_dir(meta: &ObjectMeta) -> bool {
    meta.annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
}
