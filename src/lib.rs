//! drover: Kubernetes' replication model for plain processes.
//!
//! The folders are the layers, and dependencies point one way:
//! `cli`, `daemon` -> `agent`, `controllers`, `store`, `units` -> `api`.
//! Only `agent` uses `runtime`, the one module that forks, signals and reaps.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod controllers;
pub mod daemon;
pub mod output;
pub mod paths;
pub mod runtime;
pub mod schedule;
pub mod store;
pub mod units;
