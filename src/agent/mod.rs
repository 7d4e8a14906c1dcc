//! The node agent: supervises the pods bound to this node. It spawns,
//! restarts with backoff, stops with grace, re-adopts after a daemon
//! restart, and writes what it sees into each pod's status. It is the only
//! user of `runtime`.

pub mod backoff;
pub mod env;
pub mod logs;
pub mod notify;
pub mod ports;
pub mod probe;
pub mod probe_net;
pub mod supervise;

pub use supervise::{Agent, AgentConfig, CheckRequest, Effects, Note, ProbeKey, Timer};
