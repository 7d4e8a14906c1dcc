//! sd_notify, so daemons written for systemd run unchanged: one datagram
//! socket (NOTIFY_SOCKET) for the whole node, like /run/systemd/notify.
//! The kernel stamps each datagram with the sender's pid (SCM_CREDENTIALS);
//! a sender that is not a main process (`systemd-notify` run from a shell
//! script) is traced to its process by the marker variable it inherited,
//! which is systemd's NotifyAccess=all.
//!
//! Parsing is pure; the socket is a thin tokio wrapper.

use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags};
use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// One assignment of a notify message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyMsg {
    /// READY=1: startup finished (Type=notify).
    Ready,
    /// STATUS=...: free text shown by `describe`.
    Status(String),
    /// WATCHDOG=1: still alive.
    Watchdog,
    /// WATCHDOG=trigger: ask to be treated as hung right now.
    WatchdogTrigger,
    /// MAINPID=N: the service's main process is now N.
    MainPid(i32),
    /// STOPPING=1, RELOADING=1 and the rest: accepted, not acted on.
    Other(String),
}

/// Parses a datagram: newline-separated KEY=VALUE assignments.
pub fn parse(datagram: &[u8]) -> Vec<NotifyMsg> {
    String::from_utf8_lossy(datagram)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once('=') {
            Some(("READY", "1")) => NotifyMsg::Ready,
            Some(("STATUS", s)) => NotifyMsg::Status(s.to_string()),
            Some(("WATCHDOG", "1")) => NotifyMsg::Watchdog,
            Some(("WATCHDOG", "trigger")) => NotifyMsg::WatchdogTrigger,
            Some(("MAINPID", n)) => match n.trim().parse() {
                Ok(pid) if pid > 1 => NotifyMsg::MainPid(pid),
                _ => NotifyMsg::Other(line.to_string()),
            },
            _ => NotifyMsg::Other(line.to_string()),
        })
        .collect()
}

/// A received datagram: who sent it and what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub pid: i32,
    /// The sender's `DROVER_PROCESS_ID` marker, when it has one.
    pub marker: Option<String>,
    pub messages: Vec<NotifyMsg>,
}

pub struct NotifySocket {
    sock: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds the socket (replacing a stale one), world-writable like
    /// systemd's: who may send is decided by the sender's pid, not by
    /// file permissions.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        socket::setsockopt(&sock, sockopt::PassCred, &true).map_err(io::Error::from)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))?;
        Ok(NotifySocket {
            sock: tokio::net::UnixDatagram::from_std(sock)?,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram that carried credentials.
    pub async fn recv(&self) -> io::Result<Notification> {
        loop {
            self.sock.readable().await?;
            match self.sock.try_io(tokio::io::Interest::READABLE, || {
                receive(self.sock.as_raw_fd())
            }) {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn receive(fd: std::os::fd::RawFd) -> io::Result<Option<Notification>> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let msg = socket::recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut pid = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmCredentials(cred) = c {
            pid = Some(cred.pid());
        }
    }
    let len = msg.bytes;
    let Some(pid) = pid else {
        return Ok(None);
    };
    Ok(Some(Notification {
        pid,
        marker: marker_of(pid),
        messages: parse(&buf[..len]),
    }))
}

/// The marker variable of a live process, read from /proc/PID/environ.
pub fn marker_of(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{}=", super::env::MARKER);
    environ
        .split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_systemd_vocabulary() {
        let msgs =
            parse(b"READY=1\nSTATUS=Serving 3 clients\nWATCHDOG=1\nMAINPID=4242\nSTOPPING=1\n");
        assert_eq!(
            msgs,
            vec![
                NotifyMsg::Ready,
                NotifyMsg::Status("Serving 3 clients".into()),
                NotifyMsg::Watchdog,
                NotifyMsg::MainPid(4242),
                NotifyMsg::Other("STOPPING=1".into()),
            ]
        );
        assert_eq!(parse(b"WATCHDOG=trigger"), vec![NotifyMsg::WatchdogTrigger]);
        assert_eq!(
            parse(b"MAINPID=1"),
            vec![NotifyMsg::Other("MAINPID=1".into())]
        );
    }

    #[tokio::test]
    async fn receives_with_the_senders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = NotifySocket::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up", &path).unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv())
            .await
            .expect("a datagram within 5s")
            .unwrap();
        assert_eq!(n.pid, std::process::id() as i32);
        assert_eq!(
            n.messages,
            vec![NotifyMsg::Ready, NotifyMsg::Status("up".into())]
        );
    }
}
