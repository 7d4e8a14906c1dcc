//! drover: Kubernetes' replication model for plain processes.
//!
//! The folders are the layers, and dependencies point one way:
//! `cli` -> `client` -> `api`; `daemon` -> `agent`, `controllers`,
//! `store`, `units` -> `api`; `agent` -> `runtime`.
//!
//! The rules that hold (and what to grep for when they are in doubt):
//! - `runtime` is the only module that starts, signals, reaps or watches
//!   processes, reads /proc about them, and the only one with `unsafe`
//!   (`grep -rn unsafe src`). It decides nothing.
//! - Only `agent` uses `runtime`. The daemon reaches processes through the
//!   agent (`agent::host` for the real runtime and its wake-ups), never
//!   `runtime` directly; `controllers` never do.
//! - Decisions are pure functions of their inputs and of a time given to
//!   them: `agent::process::step` for one process's supervision,
//!   `controllers::*::reconcile` for the controllers, `agent::backoff`.
//! - The CLI talks only to the daemon, through its HTTP API: it imports
//!   neither `runtime` nor `agent`, and reads no /proc (CPU and memory of
//!   `get pods -o wide` come in the pod's status, measured by the daemon).
//! - `api` holds the types everyone shares (objects, `Signal`,
//!   `ProcessReason`): no I/O, no clock, nothing from the rest of drover.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod controllers;
pub mod daemon;
pub mod import;
pub mod output;
pub mod paths;
pub mod runtime;
pub mod schedule;
pub mod store;
pub mod units;
