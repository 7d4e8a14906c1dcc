//! The node agent: supervises the pods bound to this node. It spawns,
//! restarts with backoff, stops with grace, probes, listens to sd_notify,
//! re-adopts after a daemon restart, and writes what it sees into each
//! pod's status. It is the only user of `runtime`.
//!
//! - [`process`]: one process's supervision as a pure state machine
//!   (`step`), with its table of states and events.
//! - [`supervise`]: the executor ([`Agent`]): feeds events to the machine
//!   and applies its effects through the runtime, the store and timers.
//! - [`host`]: the agent on this host (the real runtime, the daemon's
//!   wake-ups). [`timers`], [`backoff`], [`probe`], [`env`], [`ports`]:
//!   pure parts; [`probe_net`], [`notify`], [`logs`]: I/O beside it.

pub mod backoff;
pub mod env;
pub mod host;
pub mod logs;
pub mod notify;
pub mod ports;
pub mod probe;
pub mod probe_net;
pub mod process;
pub mod supervise;
pub mod timers;

pub use process::Now;
pub use supervise::{
    Agent, AgentConfig, CheckRequest, Note, Outbox, ProbeKey, Reaped, REAP_BATCH, SYNC_BATCH,
};
