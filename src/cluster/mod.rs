//! Cluster mode: the parts of a daemon that talk to etcd, each a task the
//! daemon's loop exchanges messages with (the loop and the agent never
//! call etcd themselves, so an etcd outage never blocks them), and the
//! pure decisions those exchanges need.
//!
//! - [`config`]: `[cluster]` and `--etcd`, resolved into [`ClusterOptions`].
//! - [`reflector`] (task) and [`cache`] (pure): the watch of etcd becomes
//!   the daemon's cache, a mirror [`crate::store::Store`].
//! - [`heartbeat`] (task): the Node object and the node's lease; tells
//!   the loop when it must fence after losing the lease.
//! - [`status`] (task + queue): the agent's pod statuses to etcd,
//!   latest-per-pod, through outages.
//! - [`leader`] (task + [`leader::Gate`]): the election, and when the
//!   leader's controllers may run again.
//! - [`commit`]: a pass's or request's changes to the cache become
//!   compare-and-swap writes.
//! - [`fence`] (pure): which local pods a node no longer owns, and when
//!   its agent may act.
//! - [`lifecycle`]: the node lifecycle controller's executor (leader).
//! - [`member`]: the handle the daemon's loop holds on all of the above.
//! - [`requests`] (pure): API requests waiting for their writes to be
//!   acknowledged and seen, retried on conflict.
//! - [`peer`]: the node-to-node channel for logs and events.
//! - [`capacity`]: what the host offers (`status.capacity`).
//!
//! Must not: run controllers or the agent (the daemon's loop does), or
//! keep state the loop also keeps.

pub mod cache;
pub mod capacity;
pub mod commit;
pub mod config;
pub mod fence;
pub mod heartbeat;
pub mod leader;
pub mod lifecycle;
pub mod member;
pub mod peer;
pub mod reflector;
pub mod requests;
pub mod status;

pub use config::{ClusterConfigError, ClusterOptions, ClusterTable};

use std::net::{IpAddr, UdpSocket};

/// The address this host uses to reach `endpoint` (a URL): the source
/// address the kernel picks for that route, found without sending a
/// packet (a UDP socket's connect only chooses the route). That is the
/// address other nodes, which reach the same etcd, can reach it at.
pub fn address_toward(endpoint: &str) -> Option<IpAddr> {
    let uri: hyper::Uri = endpoint.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(2379);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_address_toward_loopback_is_loopback() {
        let ip = super::address_toward("http://127.0.0.1:23790").unwrap();
        assert!(ip.is_loopback(), "{ip}");
        assert_eq!(super::address_toward("not a url"), None);
    }
}
