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
//!   not read it). At the cap, a new connection closes the one idle the
//!   longest, once it has been idle for [`IDLE_GRACE`] (250 ms: a client
//!   that just connected gets that long to send its request; a
//!   connection whose task has not run yet is never closed). A flood of
//!   idle clients only ever evicts itself, and a CLI, which sends its
//!   request as soon as it connects, gets in. If no connection may be
//!   closed (all busy: requests in the daemon's queue, `watch` long
//!   polls), accepting pauses until one ends or one may be: new clients
//!   wait in the kernel's backlog instead of being refused.
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

/// The choice of a connection to close to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    Close(u64),
    /// None may be closed yet; the oldest idle one may at this instant.
    NotBefore(Instant),
    /// Every connection is busy or new.
    None,
}

/// The connection to close to make room at the cap: the one idle the
/// longest (ties: the oldest connection), once it has been idle for
/// `grace`. The grace is for clients that just connected and have not
/// sent their request yet (a CLI on a loaded machine); a flood of idle
/// clients is older than that.
pub fn victim(
    conns: impl IntoIterator<Item = (u64, State)>,
    now: Instant,
    grace: Duration,
) -> Victim {
    let oldest = conns
        .into_iter()
        .filter_map(|(id, state)| match state {
            State::Idle(since) => Some((since, id)),
            State::New | State::Busy => None,
        })
        .min();
    match oldest {
        Some((since, id)) if now.duration_since(since) >= grace => Victim::Close(id),
        Some((since, _)) => Victim::NotBefore(since + grace),
        None => Victim::None,
    }
}

/// How long a connection must have been idle before it may be closed to
/// make room.
pub const IDLE_GRACE: Duration = Duration::from_millis(250);

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

    /// Closes the oldest idle connection past its grace (to free a
    /// descriptor after an accept failed); false if there is none.
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
        let candidates = self
            .conns
            .iter()
            .filter(|(_, s)| s.close.is_some())
            .map(|(id, s)| (*id, s.state));
        let choice = victim(candidates, now, IDLE_GRACE);
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
    pub fn started(&self, now: Instant) {
        self.table.lock().set(self.id, State::Idle(now));
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

    #[test]
    fn the_oldest_idle_connection_goes_first_new_and_busy_ones_never() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let now = t0 + ms(1000);
        let grace = ms(250);
        let idle = |at: u64| State::Idle(t0 + ms(at));
        use State::{Busy, New};
        let cases = [
            (
                vec![(1, Busy), (2, idle(5)), (3, idle(1))],
                Victim::Close(3),
            ),
            (vec![(1, Busy), (2, New)], Victim::None),
            (vec![(7, idle(1)), (4, idle(1))], Victim::Close(4)),
            (vec![], Victim::None),
            // Idle for less than the grace: not yet, but then.
            (
                vec![(1, idle(900)), (2, New)],
                Victim::NotBefore(t0 + ms(1150)),
            ),
            (vec![(1, idle(900)), (2, idle(700))], Victim::Close(2)),
        ];
        for (conns, want) in cases {
            assert_eq!(victim(conns.clone(), now, grace), want, "{conns:?}");
        }
    }

    #[tokio::test]
    async fn at_the_cap_an_idle_connection_makes_room_and_busy_or_new_ones_wait() {
        let table = Table::new(2);
        let t0 = Instant::now();
        let later = t0 + IDLE_GRACE * 4;
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
        a.started(t0);
        woken.await.unwrap();
        b.started(t0 + Duration::from_millis(1));
        // Both idle, but only just: wait until the oldest has had its grace.
        match table.admit(t0 + Duration::from_millis(10)) {
            Room::Wait(Some(at)) => assert_eq!(at, t0 + IDLE_GRACE),
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
