//! The node-to-node channel: how `drover logs POD` (`-f` too, relayed as
//! it streams) and `describe pod` reach a pod on another node. The owning node's daemon serves what only
//! it has (the pod's log files, the agent's events) on a listener of its
//! own, and the asking daemon relays it to its CLI. Never through etcd:
//! logs are large and private to the node.
//!
//! With the cluster's certificates ([`tls`]) both ends authenticate with
//! them (mutual TLS against the cluster's CA); a loopback cluster without
//! certificates talks plain HTTP on loopback, which is no weaker than the
//! plain-http etcd it already trusts.
//!
//! - [`server`]: the listener, handing GET requests to the daemon's
//!   handler.
//! - [`client`]: one GET to another node.
//! - [`tls`]: the rustls configurations from the PEM files.

pub mod client;
pub mod server;
pub mod tls;

pub use client::{PeerClient, PeerError};
pub use server::{full, text, Handler, PeerBody, PeerRequest, PeerServer};
pub use tls::{PeerTls, TlsError};
