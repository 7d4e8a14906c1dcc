//! HTTP+JSON client for the daemon's unix socket.
