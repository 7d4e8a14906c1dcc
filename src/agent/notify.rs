//! sd_notify, so daemons written for systemd run unchanged: one datagram
//! socket (NOTIFY_SOCKET) per daemon, like /run/systemd/notify.
//! The kernel stamps each datagram with the sender's pid and uid
//! (SCM_CREDENTIALS): who sent it is decided from those kernel facts only
//! (`supervise::notify`), never from anything the sender says or carries
//! in its environment. The socket is writable by anyone, as systemd's is,
//! because pod processes run as any user; a message from outside a pod
//! process's own tree is dropped.
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

/// A received datagram: who sent it (as the kernel says) and what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub pid: i32,
    pub uid: u32,
    pub messages: Vec<NotifyMsg>,
}

pub struct NotifySocket {
    sock: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds the socket (replacing a stale one: the path is this daemon's
    /// own, see [`path_for`]), writable by anyone like systemd's: who may
    /// send is decided by the sender's credentials, not by file
    /// permissions.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        socket::setsockopt(&sock, sockopt::PassCred, &true).map_err(io::Error::from)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
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
    let mut sender = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmCredentials(cred) = c {
            sender = Some((cred.pid(), cred.uid()));
        }
    }
    let len = msg.bytes;
    let Some((pid, uid)) = sender else {
        return Ok(None);
    };
    Ok(Some(Notification {
        pid,
        uid,
        messages: parse(&buf[..len]),
    }))
}

/// The notify socket of the daemon whose control socket is `control`:
/// beside it and named after it (`drover.sock` -> `drover.sock.notify`),
/// so two daemons whose sockets share a folder never share (or remove)
/// each other's notify socket, and pod processes of any user can reach it
/// (the state dir is private).
pub fn path_for(control: &Path) -> PathBuf {
    let mut name = control
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "drover.sock".into());
    name.push(".notify");
    control.with_file_name(name)
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

    #[test]
    fn each_control_socket_has_its_own_notify_socket() {
        assert_eq!(
            path_for(Path::new("/run/drover/drover.sock")),
            Path::new("/run/drover/drover.sock.notify")
        );
        assert_ne!(
            path_for(Path::new("/tmp/x/a.sock")),
            path_for(Path::new("/tmp/x/b.sock"))
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
        assert_eq!(n.uid, nix::unistd::getuid().as_raw());
        assert_eq!(
            n.messages,
            vec![NotifyMsg::Ready, NotifyMsg::Status("up".into())]
        );
    }
}
