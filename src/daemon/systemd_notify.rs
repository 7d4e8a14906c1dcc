//! The daemon's own sd_notify(3) messages, when a service manager started
//! it as a `Type=notify` service (the packaged drover.service):
//!
//! - `READY=1` once the control socket serves and the units folder is
//!   applied (so `systemctl start drover` returns when the CLI works);
//! - `STATUS=` with the pod counts, sent when they change (shown by
//!   `systemctl status drover`);
//! - `WATCHDOG=1` every half `WatchdogSec=` when the unit sets one;
//! - `STOPPING=1` on the way out.
//!
//! Owns NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID: read once at start
//! and removed from the environment, so no process the daemon starts can
//! talk to the service manager in the daemon's name. (Pods that use
//! sd_notify get drover's own notify socket, `agent::notify`.)
//!
//! Must not block or fail the daemon: a datagram that cannot be sent is
//! logged once and dropped, as sd_notify does. Without NOTIFY_SOCKET every
//! call is a no-op.

use crate::api::{Pod, PodPhase};
use crate::store::Store;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The daemon's link to its service manager (inert when there is none).
#[derive(Default)]
pub struct SystemdNotify {
    link: Option<Link>,
}

struct Link {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Half of WATCHDOG_USEC, when the watchdog is ours.
    watchdog: Option<Duration>,
    /// The last STATUS= sent, and the store revision it was computed at.
    status: String,
    status_rev: Option<u64>,
    /// A failed send is logged once, not per message.
    warned: bool,
}

impl SystemdNotify {
    /// Takes NOTIFY_SOCKET (and the watchdog variables) out of the
    /// environment. Call first thing in the daemon, before any thread
    /// starts.
    pub fn from_env() -> SystemdNotify {
        let take = |name: &str| {
            let value = std::env::var(name).ok();
            // Edition 2021: safe; the daemon has no other thread yet.
            std::env::remove_var(name);
            value
        };
        let socket = take("NOTIFY_SOCKET");
        let usec = take("WATCHDOG_USEC");
        let pid = take("WATCHDOG_PID");
        let Some(socket) = socket.filter(|s| !s.is_empty()) else {
            return SystemdNotify::default();
        };
        let link = notify_address(&socket).and_then(|addr| {
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            Ok(Link {
                socket,
                addr,
                watchdog: watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id()),
                status: String::new(),
                status_rev: None,
                warned: false,
            })
        });
        match link {
            Ok(link) => SystemdNotify { link: Some(link) },
            Err(e) => {
                tracing::warn!("NOTIFY_SOCKET={socket}: {e}; not reporting to the service manager");
                SystemdNotify::default()
            }
        }
    }

    /// `READY=1` with the first status line, and the watchdog pings from
    /// now on. Call once the socket serves and the units are applied.
    pub fn ready(&mut self, store: &Store, node: &str) {
        let Some(link) = &mut self.link else { return };
        link.status = status_line(store.pods(), node);
        link.status_rev = Some(store.revision());
        let message = format!("READY=1\nSTATUS={}", link.status);
        link.send(&message);
        if let Some(every) = link.watchdog {
            if let Ok(socket) = link.socket.try_clone() {
                let addr = link.addr.clone();
                // A task on the daemon's one thread: if the event loop
                // stops turning, the pings stop too.
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        let _ = socket.send_to_addr(b"WATCHDOG=1", &addr);
                    }
                });
            }
        }
    }

    /// `STATUS=` when the pod counts changed (looked at only when the store
    /// did).
    pub fn update(&mut self, store: &Store, node: &str) {
        let Some(link) = &mut self.link else { return };
        if link.status_rev.is_none() || link.status_rev == Some(store.revision()) {
            // Not ready yet, or nothing changed.
            return;
        }
        link.status_rev = Some(store.revision());
        let status = status_line(store.pods(), node);
        if status != link.status {
            link.send(&format!("STATUS={status}"));
            link.status = status;
        }
    }

    /// `STOPPING=1`: the daemon is exiting.
    pub fn stopping(&mut self) {
        if let Some(link) = &mut self.link {
            link.send("STOPPING=1\nSTATUS=stopping");
        }
    }
}

impl Link {
    fn send(&mut self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            if !self.warned {
                tracing::warn!("sd_notify to the service manager: {e}");
                self.warned = true;
            }
        }
    }
}

/// NOTIFY_SOCKET: `@name` is an abstract socket, `/path` a file socket
/// (sd_notify(3)); anything else (vsock) is not supported.
fn notify_address(value: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    if let Some(name) = value.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if value.starts_with('/') {
        SocketAddr::from_pathname(value)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an absolute path or an abstract socket name",
        ))
    }
}

/// How often to send WATCHDOG=1: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
/// advises; none when it is unset, zero or unparseable, or when
/// WATCHDOG_PID names another process (the watchdog is not ours).
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// `3 pods: 2 running (1 ready), 1 pending`, over this node's pods (and
/// those not bound yet); `no pods` when there are none.
fn status_line<'a>(pods: impl Iterator<Item = &'a Pod>, node: &str) -> String {
    let (mut total, mut running, mut ready, mut pending, mut succeeded, mut failed) =
        (0, 0, 0, 0, 0, 0);
    for pod in pods {
        if pod.status.node_name.as_deref().is_some_and(|n| n != node) {
            continue;
        }
        total += 1;
        match pod.status.phase {
            PodPhase::Pending => pending += 1,
            PodPhase::Running => running += 1,
            PodPhase::Succeeded => succeeded += 1,
            PodPhase::Failed => failed += 1,
        }
        if pod.status.phase == PodPhase::Running && pod.is_ready() {
            ready += 1;
        }
    }
    if total == 0 {
        return "no pods".into();
    }
    let mut parts = vec![format!("{running} running ({ready} ready)")];
    for (n, what) in [
        (pending, "pending"),
        (succeeded, "succeeded"),
        (failed, "failed"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let noun = if total == 1 { "pod" } else { "pods" };
    format!("{total} {noun}: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_pinged_at_half_its_period_and_only_when_it_is_ours() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn addresses_are_abstract_or_absolute_paths() {
        use std::os::linux::net::SocketAddrExt;
        let abs = notify_address("@/org/freedesktop/systemd1/notify/1").unwrap();
        assert_eq!(
            abs.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/1"[..])
        );
        let path = notify_address("/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(notify_address("vsock:2:1234").is_err());
        assert!(notify_address("relative/notify").is_err());
    }

    fn pod(name: &str, node: Option<&str>, phase: PodPhase, ready: bool) -> Pod {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "uid": name, "creation_timestamp": "2026-01-01T00:00:00Z"},
            "spec": {"processes": [{"name": "main", "command": ["true"]}]},
        }))
        .unwrap();
        pod.status.node_name = node.map(str::to_string);
        pod.status.phase = phase;
        pod.status.processes = vec![crate::api::ProcessStatus::waiting("main", "x")];
        pod.status.processes[0].ready = ready;
        pod
    }

    #[test]
    fn the_status_line_counts_this_nodes_pods_by_phase() {
        assert_eq!(status_line([].iter(), "n1"), "no pods");
        let pods = [
            pod("a", Some("n1"), PodPhase::Running, true),
            pod("b", Some("n1"), PodPhase::Running, false),
            pod("c", None, PodPhase::Pending, false),
            pod("d", Some("n1"), PodPhase::Failed, false),
            pod("elsewhere", Some("n2"), PodPhase::Running, true),
        ];
        assert_eq!(
            status_line(pods.iter(), "n1"),
            "4 pods: 2 running (1 ready), 1 pending, 1 failed"
        );
        assert_eq!(
            status_line(pods[..1].iter(), "n1"),
            "1 pod: 1 running (1 ready)"
        );
    }

    /// A real datagram socket stands in for systemd's: what arrives there
    /// is what the service manager would read.
    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        let mut sd = SystemdNotify {
            link: Some(Link {
                socket,
                addr: notify_address(path.to_str().unwrap()).unwrap(),
                watchdog: None,
                status: String::new(),
                status_rev: None,
                warned: false,
            }),
        };
        let mut store = Store::default();
        let recv = || {
            let mut buf = [0u8; 256];
            let n = manager.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        // Nothing before READY=1, however the store changes.
        sd.update(&store, "n1");
        sd.ready(&store, "n1");
        assert_eq!(recv(), "READY=1\nSTATUS=no pods");
        // The counts changed: a new STATUS=.
        store.put(crate::api::Object::Pod(pod(
            "web-1",
            Some("n1"),
            PodPhase::Running,
            true,
        )));
        sd.update(&store, "n1");
        assert_eq!(recv(), "STATUS=1 pod: 1 running (1 ready)");
        // Same revision, or same counts: nothing sent; the next datagram
        // is STOPPING.
        sd.update(&store, "n1");
        store.put(crate::api::Object::Pod(pod(
            "other-node",
            Some("n2"),
            PodPhase::Running,
            true,
        )));
        sd.update(&store, "n1");
        sd.stopping();
        assert_eq!(recv(), "STOPPING=1\nSTATUS=stopping");
    }
}
