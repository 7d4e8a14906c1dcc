//! Controllers: pure reconcile functions, desired + observed -> [`Plan`].
//!
//! Everything here is a function of its arguments: no tokio, no clock reads
//! (time comes in as `now`), no I/O, no randomness, and never
//! `use crate::runtime`. The daemon's executor applies the returned ops
//! through the store; it assigns pod names and uids, so the same inputs
//! always give the same plan.
//!
//! - [`replicaset`]: ReplicaSet / ReplicationController reconcile (claim,
//!   scale, restart one pod at a time) and the deletion ranking.
//! - [`job`]: Job reconcile (completions, parallelism, backoff, deadline,
//!   Indexed mode, suspend, TTL).
//! - [`cronjob`]: CronJob reconcile (schedule, concurrency policy,
//!   history limits, missed runs).
//! - [`daemonset`]: one pod per matching node (cordoned included), with
//!   `node_should_run`.
//! - [`node_lifecycle`]: nodes whose lease lapsed are NotReady; their
//!   controller-owned pods are evicted after a grace period, unless every
//!   node lapsed at once.
//! - [`scheduler`]: which node a new or pending pod goes to.
//! - [`plan`]: the [`Op`]s and [`Plan`] they return.

pub mod cronjob;
pub mod daemonset;
pub mod job;
pub mod node_lifecycle;
pub mod plan;
pub mod replicaset;
pub mod scheduler;

#[cfg(test)]
pub(crate) mod fixtures;

pub use plan::{Op, Plan};
