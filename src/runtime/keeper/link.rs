//! The daemon's end of the keeper socket: the exits the keeper recorded
//! before this daemon started (read once, at start; not again by an
//! image the daemon re-executed in place, `runtime::reexec`), the exits of
//! processes this daemon adopted from its predecessor (they are the
//! keeper's children, so it reaps them and passes each status on), and
//! the keeper's requests (halt).

use super::wire::{self, ExitRecord, Message};
use super::KEEPER_FD_ENV;
use crate::api::ProcessIdentity;
use crate::runtime::linux::decode_status;
use crate::runtime::{procfs, ExitReason, KeptExit, Watch};
use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::unix::AsyncFd;

/// Exits received that no watched process claimed yet, at most: the
/// exits of descendants and probes are of no use, and the keeper's own
/// table has them anyway.
const UNCLAIMED_CAP: usize = 4096;

/// How long a daemon waits for its keeper's table at start.
const TABLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The link to this daemon's keeper. Shared by the runtime (lookups,
/// watches, reaps) and its exit events (reading the socket).
#[derive(Debug)]
pub struct KeeperLink {
    fd: OwnedFd,
    keeper_pid: i32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// What the keeper recorded before this daemon started.
    table: Vec<ExitRecord>,
    /// Received since, and not (yet) claimed by a watch.
    unclaimed: VecDeque<ExitRecord>,
    /// Adopted processes whose exits come from the keeper: pid -> start
    /// ticks (a pid alone may be reused).
    watched: HashMap<i32, u64>,
    /// Claimed exits for the next `reap`.
    ready: Vec<(i32, ExitReason)>,
    /// Halt requests not yet handed to the daemon's loop.
    halts: u32,
}

fn kept(r: &ExitRecord) -> Option<KeptExit> {
    Some(KeptExit {
        exit: decode_status(r.status)?,
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(r.at_ms.max(0) as u64),
    })
}

impl KeeperLink {
    /// The link this daemon was started with ([`KEEPER_FD_ENV`]), with
    /// the keeper's table read. None: started without a keeper.
    pub fn from_env() -> io::Result<Option<Arc<KeeperLink>>> {
        let Ok(text) = std::env::var(KEEPER_FD_ENV) else {
            return Ok(None);
        };
        let raw: RawFd = text.parse().map_err(|_| {
            io::Error::other(format!("{KEEPER_FD_ENV}={text:?} is not a descriptor"))
        })?;
        let kind = nix::sys::socket::getsockopt(
            // SAFETY: only borrowed for the check, and owned below once
            // the check shows it is the socket the keeper passed.
            &unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) },
            nix::sys::socket::sockopt::SockType,
        )
        .map_err(|e| io::Error::other(format!("{KEEPER_FD_ENV}={raw}: {e}")))?;
        if kind != nix::sys::socket::SockType::SeqPacket {
            return Err(io::Error::other(format!(
                "{KEEPER_FD_ENV}={raw} is not the keeper's socket"
            )));
        }
        // SAFETY: the keeper passed this descriptor for us alone; nothing
        // else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_cloexec(&fd)?;
        let link = KeeperLink {
            fd,
            keeper_pid: nix::unistd::getppid().as_raw(),
            state: Mutex::default(),
        };
        if super::super::reexec::generation() == 0 {
            link.read_table()?;
        } else {
            // The same daemon, re-executed in place: the keeper sent its
            // table to the first image and sends nothing new at an exec
            // it does not see. What it sent since waits in the socket.
            set_nonblocking(&link.fd)?;
        }
        Ok(Some(Arc::new(link)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocking, with a deadline: the table comes first, then the rest.
    fn read_table(&self) -> io::Result<()> {
        let timeout = nix::sys::time::TimeVal::new(TABLE_TIMEOUT.as_secs() as i64, 0);
        nix::sys::socket::setsockopt(
            &self.fd,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &timeout,
        )?;
        let mut buf = vec![0u8; wire::MAX_PACKET];
        loop {
            let n = match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Err(io::Error::other("the keeper closed its socket")),
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(io::Error::other(format!(
                        "reading the keeper's exit table: {e}"
                    )))
                }
            };
            match wire::decode(&buf[..n]) {
                Some(Message::Table(records)) => self.state().table.extend(records),
                Some(Message::TableEnd) => break,
                Some(Message::Halt) => self.state().halts += 1,
                _ => {}
            }
        }
        set_nonblocking(&self.fd)?;
        let n = self.state().table.len();
        if n > 0 {
            tracing::info!("the keeper recorded {n} exits while no daemon ran");
        }
        Ok(())
    }

    /// The keeper's pid (this daemon's parent).
    pub fn keeper_pid(&self) -> i32 {
        self.keeper_pid
    }

    /// Tells the keeper this daemon serves: an exit from now on is a
    /// crash, and the keeper starts another daemon.
    pub fn serving(&self) {
        let _ = nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &wire::encode(&Message::Ready),
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        );
    }

    /// How `pid` ended, if the keeper reaped it (before this daemon
    /// started, or since).
    pub fn kept_exit(&self, pid: i32, identity: &ProcessIdentity) -> Option<KeptExit> {
        self.drain();
        let st = self.state();
        let same = |r: &&ExitRecord| r.pid == pid && r.start_ticks == identity.start_ticks;
        st.table
            .iter()
            .rev()
            .find(same)
            .or_else(|| st.unclaimed.iter().rev().find(same))
            .and_then(kept)
    }

    /// Watches an adopted process through the keeper: if it is the
    /// keeper's child, its exit will come with its status. None: it is
    /// not (a process of a daemon that ran without a keeper): watch it
    /// some other way.
    pub fn watch(&self, pid: i32, identity: &ProcessIdentity) -> Option<Watch> {
        self.drain();
        let mut st = self.state();
        let same = |r: &ExitRecord| r.pid == pid && r.start_ticks == identity.start_ticks;
        if let Some(i) = st.unclaimed.iter().position(same) {
            // Reaped by the keeper after our look at it.
            let r = st.unclaimed.remove(i).expect("index found above");
            if let Some(k) = kept(&r) {
                st.ready.push((pid, k.exit));
            }
            return Some(Watch::Watching);
        }
        if let Some(r) = st.table.iter().find(|r| same(r)).copied() {
            if let Some(k) = kept(&r) {
                st.ready.push((pid, k.exit));
            }
            return Some(Watch::Watching);
        }
        let stat = procfs::stat(pid)?;
        if stat.ppid != self.keeper_pid || stat.start_ticks != identity.start_ticks {
            return None;
        }
        // Alive, or a zombie the keeper is about to reap: either way the
        // keeper reports its exit.
        st.watched.insert(pid, identity.start_ticks);
        Some(Watch::Watching)
    }

    /// Reads what the keeper sent so far, without waiting: at start the
    /// daemon looks at its processes before its loop reads the socket,
    /// and an exit the keeper reaped meanwhile is already there.
    fn drain(&self) {
        let mut buf = [0u8; wire::MAX_PACKET];
        loop {
            match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return,
                Ok(n) => {
                    if let Some(msg) = wire::decode(&buf[..n]) {
                        self.receive(msg);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Exits of watched processes, for `reap`.
    pub fn take_exits(&self) -> Vec<(i32, ExitReason)> {
        std::mem::take(&mut self.state().ready)
    }

    fn has_exits(&self) -> bool {
        !self.state().ready.is_empty()
    }

    fn take_halt(&self) -> bool {
        let mut st = self.state();
        if st.halts == 0 {
            return false;
        }
        st.halts -= 1;
        true
    }

    fn receive(&self, msg: Message) {
        let mut st = self.state();
        match msg {
            Message::Exits(records) | Message::Table(records) => {
                for r in records {
                    if st.watched.get(&r.pid) == Some(&r.start_ticks) {
                        st.watched.remove(&r.pid);
                        if let Some(k) = kept(&r) {
                            st.ready.push((r.pid, k.exit));
                        }
                    } else {
                        if st.unclaimed.len() >= UNCLAIMED_CAP {
                            st.unclaimed.pop_front();
                        }
                        st.unclaimed.push_back(r);
                    }
                }
            }
            Message::Halt => st.halts += 1,
            Message::TableEnd | Message::Ready => {}
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
    Ok(())
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// What the keeper socket woke the daemon for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeeperEvent {
    /// Watched processes exited: reap.
    Exits,
    /// Stop every pod gracefully, then exit.
    Halt,
    /// The keeper is gone (killed): this daemon goes on without one.
    Gone,
}

/// The keeper socket on the daemon's reactor.
#[derive(Debug)]
pub struct KeeperEvents {
    link: Arc<KeeperLink>,
    fd: AsyncFd<OwnedFd>,
}

impl KeeperEvents {
    /// Inside the tokio runtime.
    pub fn new(link: Arc<KeeperLink>) -> io::Result<KeeperEvents> {
        let fd = link.fd.try_clone()?;
        // SAFETY: a fresh duplicate owned by the AsyncFd, so it stays open
        // and the same descriptor until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(KeeperEvents { link, fd })
    }

    pub fn link(&self) -> &KeeperLink {
        &self.link
    }

    pub async fn next(&mut self) -> KeeperEvent {
        let mut buf = vec![0u8; wire::MAX_PACKET];
        loop {
            if self.link.take_halt() {
                return KeeperEvent::Halt;
            }
            if self.link.has_exits() {
                return KeeperEvent::Exits;
            }
            let Ok(mut guard) = self.fd.readable().await else {
                return KeeperEvent::Gone;
            };
            let got = guard.try_io(|fd| {
                nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
                    .map_err(io::Error::from)
            });
            match got {
                Ok(Ok(0)) => return KeeperEvent::Gone,
                Ok(Ok(n)) => {
                    if let Some(msg) = wire::decode(&buf[..n]) {
                        self.link.receive(msg);
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    tracing::warn!("the keeper socket failed ({e}): going on without it");
                    return KeeperEvent::Gone;
                }
                // Would block: readiness cleared, wait again.
                Err(_) => {}
            }
        }
    }
}
