//! The control socket's front door: how many connections may be open,
//! which one to close to make room, how much a caller may send, and how
//! fast to retry an accept that failed. Decisions are pure ([`Limits`],
//! [`victim`], [`Backoff`]); [`Table`] holds the open connections.
//!
//! The design, for a socket any member of the drover group can flood:
//! - **A cap** on open connections, a quarter of the file descriptor
//!   limit (at least 8, at most 4096), so connections can never take the
//!   descriptors supervision needs (pidfds, log files, probes).
//! - **Room for the CLI:** a connection is *idle* while it has no request
//!   being answered (before its first request, between keep-alive
//!   requests, and while its answer is being written to a peer that may
//!   not read it). At the cap, a new connection closes an idle one, chosen
//!   by [`victim`]: first those of a *crowded* peer (a process holding
//!   more than two connections, or a user other than root holding more
//!   than a quarter of the cap idle), once idle for [`CROWDED_GRACE`]
//!   (250 ms), oldest first; a lone client (one process, one connection:
//!   a CLI) only once idle for [`LONE_GRACE`] (5 s), so a CLI that a
//!   loaded machine is slow to run still gets to send its request. A
//!   connection whose task has not run yet is never closed. So a flood of
//!   idle connections from one process or one user evicts itself within
//!   a quarter of a second per cap's worth, and 200 CLIs at once all get
//!   in. If no connection may be closed yet (all busy: requests in the
//!   daemon's queue, `watch` long polls), accepting pauses until one ends
//!   or one may be: new clients wait in the kernel's backlog instead of
//!   being refused.
//! - **Timeouts:** a connection must send a request's headers within
//!   [`Limits::header_timeout`] of connecting or of its previous answer
//!   (hyper's header read timeout; this closes idle keep-alive and
//!   slowloris connections alike), and its body within
//!   [`Limits::body_timeout`]. A `watch` long poll is legitimate and
//!   bounded by its own timeout, at most [`Limits::max_watch`].
//! - **Sizes:** the request line and headers at most
//!   [`Limits::max_header`] (64 KiB, else 431), at most
//!   [`Limits::max_headers`] of them; a body at most
//!   [`Limits::max_body`] (32 MiB: an apply of thousands of units fits;
//!   `units` bounds a unit file well below), refused with 413 from its
//!   Content-Length before it is read.
//! - **Accept failures** that mean exhaustion (EMFILE, ENFILE, ENOMEM,
//!   ENOBUFS) first close the oldest idle connection, then retry after a
//!   pause that doubles from 10 ms to 1 s and resets on success: never a
//!   spin, and the log line is folded by `log_limit`.
//!
//! Must not: read or answer requests (that is `http.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// What one caller may send, and how many may be connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// Request body, bytes.
    pub max_body: usize,
    /// The request line and headers, bytes (431 past it).
    pub max_header: usize,
    pub max_headers: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_watch: Duration,
}

impl Limits {
    /// The limits for a daemon whose soft RLIMIT_NOFILE is `nofile`.
    pub fn for_fd_limit(nofile: u64) -> Limits {
        Limits {
            max_connections: max_connections(nofile),
            max_body: 32 << 20,
            max_header: 64 << 10,
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_watch: Duration::from_secs(300),
        }
    }
}

/// A quarter of the descriptors, at least 8 and at most 4096.
pub fn max_connections(nofile: u64) -> usize {
    (nofile / 4).clamp(8, 4096) as usize
}

/// Whether an accept error means a resource ran out (retry later, after
/// freeing what we can) rather than a problem with one connection.
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
    )
}

/// Pauses between failed attempts: 10 ms doubling to 1 s; reset on
/// success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MAX: Duration = Duration::from_secs(1);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The pause after one more failure.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// How eviction sees a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Accepted, its task not run yet: its request may be in the socket
    /// already, unread. Never closed to make room.
    New,
    /// No request being answered, since then.
    Idle(Instant),
    /// A request is being answered.
    Busy,
}

/// Who is on the other end of a connection (SO_PEERCRED), as far as
/// eviction cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    /// Root or the daemon's own user: never crowded as a user (root's
    /// own burst of CLIs is not an attack), only as a process.
    pub root: bool,
}

/// The choice of a connection to close to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    Close(u64),
    /// None may be closed yet; one may at this instant.
    NotBefore(Instant),
    /// Every connection is busy or new.
    None,
}

/// How long an idle connection of a crowded peer is kept at the cap.
pub const CROWDED_GRACE: Duration = Duration::from_millis(250);
/// How long an idle connection of a lone client is kept at the cap: time
/// for a CLI that has connected to send its request on a loaded machine.
pub const LONE_GRACE: Duration = Duration::from_secs(5);
/// A process holding more connections than this is crowded.
const PER_PROCESS: usize = 2;

/// The connection to close to make room at the cap (`cap` connections),
/// from every connection's state and peer: an idle connection of a
/// crowded peer past [`CROWDED_GRACE`] before any other, then one of a
/// lone client past [`LONE_GRACE`]; oldest idle first within each (ties:
/// the oldest connection).
pub fn victim(conns: &[(u64, State, Peer)], now: Instant, cap: usize) -> Victim {
    use std::collections::HashMap;
    let mut per_pid: HashMap<i32, usize> = HashMap::new();
    let mut idle_per_uid: HashMap<u32, usize> = HashMap::new();
    for (_, state, peer) in conns {
        if let Some(pid) = peer.pid {
            *per_pid.entry(pid).or_default() += 1;
        }
        if let (State::Idle(_), Some(uid), false) = (state, peer.uid, peer.root) {
            *idle_per_uid.entry(uid).or_default() += 1;
        }
    }
    let crowded = |p: &Peer| {
        p.pid.is_some_and(|pid| per_pid[&pid] > PER_PROCESS)
            || (!p.root && p.uid.is_some_and(|uid| idle_per_uid[&uid] > cap / 4))
    };
    // (not crowded, idle since, id): crowded peers sort first.
    let mut best: Option<(bool, Instant, u64)> = None;
    let mut soonest: Option<Instant> = None;
    for (id, state, peer) in conns {
        let State::Idle(since) = *state else {
            continue;
        };
        let crowded = crowded(peer);
        let grace = if crowded { CROWDED_GRACE } else { LONE_GRACE };
        if now.duration_since(since) >= grace {
            let key = (!crowded, since, *id);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        } else if soonest.is_none_or(|s| since + grace < s) {
            soonest = Some(since + grace);
        }
    }
    match (best, soonest) {
        (Some((_, _, id)), _) => Victim::Close(id),
        (None, Some(at)) => Victim::NotBefore(at),
        (None, None) => Victim::None,
    }
}

/// The open connections, shared by the accept loop and each connection's
/// task.
#[derive(Clone)]
pub struct Table {
    inner: Arc<Mutex<Inner>>,
    /// Signalled whenever a connection ends or becomes idle, which may
    /// make room (only the accept loop waits on it).
    changed: Arc<Notify>,
}

struct Inner {
    max: usize,
    next_id: u64,
    conns: BTreeMap<u64, Slot>,
    /// Connections asked to close that have not ended yet.
    closing: usize,
}

struct Slot {
    state: State,
    peer: Peer,
    /// Dropping or firing it closes the connection; None once asked.
    close: Option<oneshot::Sender<()>>,
}

/// One admitted connection; dropping it takes it off the table.
pub struct Ticket {
    id: u64,
    table: Table,
}

/// What the accept loop may do now.
pub enum Room {
    /// Accept one more; here is its ticket and the signal that closes it.
    Yes(Ticket, oneshot::Receiver<()>),
    /// At the cap: wait until a connection ends or turns idle
    /// ([`Table::changed`]) or, if given, until this instant (an idle one
    /// may be closed then).
    Wait(Option<Instant>),
}

impl Table {
    pub fn new(max: usize) -> Table {
        Table {
            inner: Arc::new(Mutex::new(Inner {
                max,
                next_id: 0,
                conns: BTreeMap::new(),
                closing: 0,
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding it; if something did, the table is
        // still consistent enough to go on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more connection, closing the oldest idle one if
    /// the cap is reached.
    pub fn admit(&self, now: Instant) -> Room {
        let mut t = self.lock();
        let open = t.conns.len() - t.closing;
        if open >= t.max {
            // Connections asked to close still hold their descriptor until
            // their task runs: never more than the cap of those either.
            if t.closing >= t.max {
                return Room::Wait(None);
            }
            match t.close_oldest_idle(now) {
                Victim::Close(_) => {}
                Victim::NotBefore(at) => return Room::Wait(Some(at)),
                Victim::None => return Room::Wait(None),
            }
        }
        t.next_id += 1;
        let id = t.next_id;
        let (close, closed) = oneshot::channel();
        t.conns.insert(
            id,
            Slot {
                state: State::New,
                peer: Peer::default(),
                close: Some(close),
            },
        );
        drop(t);
        Room::Yes(
            Ticket {
                id,
                table: self.clone(),
            },
            closed,
        )
    }

    /// Closes an idle connection past its grace, as [`victim`] chooses (to
    /// free a descriptor after an accept failed); false if there is none.
    pub fn close_oldest_idle(&self, now: Instant) -> bool {
        matches!(self.lock().close_oldest_idle(now), Victim::Close(_))
    }

    /// Resolves when a connection ended or turned idle since the last
    /// call (a permit is kept if nobody was waiting, so the accept loop
    /// that found no room and is about to wait misses nothing).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Open connections (those asked to close included).
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn close_oldest_idle(&mut self, now: Instant) -> Victim {
        let candidates: Vec<(u64, State, Peer)> = self
            .conns
            .iter()
            .filter(|(_, s)| s.close.is_some())
            .map(|(id, s)| (*id, s.state, s.peer))
            .collect();
        let choice = victim(&candidates, now, self.max);
        if let Victim::Close(id) = choice {
            let slot = self.conns.get_mut(&id).expect("chosen from the table");
            if let Some(close) = slot.close.take() {
                let _ = close.send(());
                self.closing += 1;
            }
        }
        choice
    }

    fn set(&mut self, id: u64, state: State) {
        if let Some(s) = self.conns.get_mut(&id) {
            s.state = state;
        }
    }
}

impl Ticket {
    /// The connection's task runs: from now on it is idle until a request
    /// arrives. (Called at the start of the task's first poll, which also
    /// reads a request already waiting in the socket: on the daemon's one
    /// thread, nothing sees the connection idle in between.)
    pub fn started(&self, now: Instant, peer: Peer) {
        let mut t = self.table.lock();
        if let Some(s) = t.conns.get_mut(&self.id) {
            s.peer = peer;
        }
        t.set(self.id, State::Idle(now));
        drop(t);
        self.table.changed.notify_one();
    }

    /// A request is being answered on this connection.
    pub fn busy(&self) {
        self.table.lock().set(self.id, State::Busy);
    }

    /// Its answer is handed over: idle (and so closable) from `now`.
    pub fn idle(&self, now: Instant) {
        self.table.lock().set(self.id, State::Idle(now));
        self.table.changed.notify_one();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut t = self.table.lock();
        if let Some(slot) = t.conns.remove(&self.id) {
            if slot.close.is_none() {
                t.closing -= 1;
            }
        }
        drop(t);
        self.table.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_quarter_of_the_descriptors_within_bounds() {
        assert_eq!(max_connections(0), 8);
        assert_eq!(max_connections(256), 64);
        assert_eq!(max_connections(1024), 256);
        assert_eq!(max_connections(20_000), 4096);
        assert_eq!(max_connections(1 << 20), 4096);
    }

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<u64> = (0..9).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(10));
    }

    #[test]
    fn exhaustion_errors_are_told_apart() {
        let e = |n| std::io::Error::from_raw_os_error(n);
        for n in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOBUFS] {
            assert!(is_exhaustion(&e(n)), "{n}");
        }
        for n in [libc::ECONNABORTED, libc::EINTR, libc::EPERM] {
            assert!(!is_exhaustion(&e(n)), "{n}");
        }
    }

    /// One connection as `victim` sees it.
    type Conn = (u64, State, Peer);

    #[test]
    fn victim_table() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let now = t0 + ms(10_000);
        let idle = |ago: u64| State::Idle(now - ms(ago));
        let cli = |pid: i32| Peer {
            pid: Some(pid),
            uid: Some(0),
            root: true,
        };
        let user = |pid: i32, uid: u32| Peer {
            pid: Some(pid),
            uid: Some(uid),
            root: false,
        };
        use State::{Busy, New};
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<Conn>, Victim)> = vec![
            ("busy and new connections are never closed",
             vec![(1, Busy, cli(10)), (2, New, cli(11))], Victim::None),
            ("nothing at all", vec![], Victim::None),
            ("lone clients: the oldest idle past 5 s",
             vec![(1, idle(6000), cli(10)), (2, idle(7000), cli(11)), (3, Busy, cli(12))],
             Victim::Close(2)),
            ("a lone client idle 1 s is a slow CLI: not yet",
             vec![(1, idle(1000), cli(10)), (2, idle(3000), cli(11))],
             Victim::NotBefore(now + ms(2000))),
            ("one process holding three: crowded, closed after 250 ms, before an older lone one",
             vec![(1, idle(6000), cli(10)), (2, idle(300), cli(20)), (3, idle(400), cli(20)), (4, Busy, cli(20))],
             Victim::Close(3)),
            ("a crowded peer's connection younger than 250 ms: wait for it",
             vec![(2, idle(100), cli(20)), (3, idle(50), cli(20)), (4, idle(10), cli(20))],
             Victim::NotBefore(now + ms(150))),
            ("a user (not root) idle in more than a quarter of the cap, one process each",
             vec![(1, idle(300), user(31, 1001)), (2, idle(300), user(32, 1001)), (3, idle(300), user(33, 1001)), (4, idle(6000), cli(10))],
             Victim::Close(1)),
            ("root's own burst of CLIs is not crowded as a user",
             vec![(1, idle(300), cli(31)), (2, idle(300), cli(32)), (3, idle(300), cli(33))],
             Victim::NotBefore(now + ms(4700))),
            ("ties: the oldest connection",
             vec![(7, idle(6000), cli(1)), (4, idle(6000), cli(2))], Victim::Close(4)),
        ];
        for (what, conns, want) in cases {
            // A cap of 8: more than 2 idle connections of one user crowd it.
            assert_eq!(victim(&conns, now, 8), want, "{what}");
        }
    }

    #[tokio::test]
    async fn at_the_cap_an_idle_connection_makes_room_and_busy_or_new_ones_wait() {
        let table = Table::new(2);
        let t0 = Instant::now();
        let later = t0 + LONE_GRACE * 2;
        let Room::Yes(a, mut a_closed) = table.admit(t0) else {
            panic!("room for the first")
        };
        let Room::Yes(b, _b_closed) = table.admit(t0) else {
            panic!("room for the second")
        };
        // Full, and neither has run yet: wait, and be told when they do
        // (before: nothing woke the accept loop then, so a flood of idle
        // clients was closed only by their header timeout).
        assert!(matches!(table.admit(later), Room::Wait(None)));
        let woken = {
            let table = table.clone();
            tokio::spawn(async move { table.changed().await })
        };
        tokio::task::yield_now().await;
        let lone = |pid| Peer {
            pid: Some(pid),
            uid: Some(0),
            root: true,
        };
        a.started(t0, lone(1));
        woken.await.unwrap();
        b.started(t0 + Duration::from_millis(1), lone(2));
        // Both idle, but only just: wait until the oldest has had its grace.
        match table.admit(t0 + Duration::from_millis(10)) {
            Room::Wait(Some(at)) => assert_eq!(at, t0 + LONE_GRACE),
            _ => panic!("expected to wait for the grace"),
        }
        // Past it: the oldest (a) is asked to close, and c gets in.
        let Room::Yes(c, _c_closed) = table.admit(later) else {
            panic!("an idle connection makes room")
        };
        assert!(a_closed.try_recv().is_ok(), "a was asked to close");
        drop(a);
        assert_eq!(table.len(), 2);
        // Both busy now: no room until one ends.
        b.busy();
        c.busy();
        assert!(matches!(table.admit(later), Room::Wait(None)));
        let waiter = {
            let table = table.clone();
            tokio::spawn(async move { table.changed().await })
        };
        tokio::task::yield_now().await;
        drop(b);
        waiter.await.unwrap();
        assert!(matches!(table.admit(later), Room::Yes(..)), "room again");
    }
}
