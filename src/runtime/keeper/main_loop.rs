//! The keeper process K: a single-threaded loop on `poll(2)` over a
//! signalfd and the socket to the daemon, nothing else. It never reads
//! the state, the units or the store; it starts the daemon, reaps, keeps
//! exit statuses and passes signals on. See the module docs of `keeper`.

use super::decide::TABLE_CAPACITY;
use super::decide::{after_daemon_exit, AfterDaemon, DaemonEnd, ExitTable, RestartPacing};
use super::wire::{self, ExitRecord, Message};
use super::KEEPER_FD_ENV;
use crate::runtime::{procfs, reaping};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Messages waiting for room in the daemon's socket, at most: what falls
/// off is still in the table for the next daemon.
const OUTBOX_CAP: usize = 4096;

/// The daemon K runs now.
struct Daemon {
    pid: i32,
    sock: OwnedFd,
    started: Instant,
    ready: bool,
    /// It closed its end: nothing more to read or send.
    closed: bool,
    outbox: VecDeque<Vec<u8>>,
}

struct Keeper {
    exe: PathBuf,
    args: Vec<OsString>,
    daemon: Option<Daemon>,
    table: ExitTable,
    pacing: RestartPacing,
    restart_at: Option<Instant>,
    /// SIGTERM, SIGINT or SIGPWR came: the next daemon is told to halt
    /// too, and none is started after this one exits.
    halting: bool,
    /// Whether any daemon ever said it serves.
    ever_ready: bool,
    exit: Option<i32>,
}

/// Runs the keeper until the daemon stops for good; returns the exit
/// code. `exe` and `args` start the daemon (the keeper's own binary and
/// arguments: the daemon knows it is one by [`KEEPER_FD_ENV`]).
pub fn run(exe: PathBuf, args: Vec<OsString>) -> i32 {
    match run_inner(exe, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drover keeper: {e}");
            1
        }
    }
}

fn run_inner(exe: PathBuf, args: Vec<OsString>) -> std::io::Result<i32> {
    // Orphans below us come to us, the daemon's pods first among them.
    nix::sys::prctl::set_child_subreaper(true)?;
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        signals.add(s);
    }
    // Blocked, then read from a signalfd: no handler runs at a random
    // point, and as PID 1 a blocked signal is still delivered to the fd.
    // The mask survives exec: the daemon clears it first thing
    // (`run_as_keeper`).
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)?;
    let sigfd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let mut k = Keeper {
        exe,
        args,
        daemon: None,
        table: ExitTable::new(TABLE_CAPACITY),
        pacing: RestartPacing::default(),
        restart_at: None,
        halting: false,
        ever_ready: false,
        exit: None,
    };
    k.start_daemon()?;
    // The keeper's loop uses a sliver of the binary: give back the pages
    // its start-up touched (argument parsing, tracing set-up), as the
    // daemon does once running (2.3 MiB of PSS measured here).
    crate::runtime::memory::release_startup_memory();
    loop {
        if let Some(code) = k.exit {
            return Ok(code);
        }
        let timeout = match k.restart_at {
            Some(at) => {
                let ms = at.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms.min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let (sig_ready, sock_in, sock_out) = {
            let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
            if let Some(d) = k.daemon.as_ref().filter(|d| !d.closed) {
                let mut flags = PollFlags::POLLIN;
                if !d.outbox.is_empty() {
                    flags |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(d.sock.as_fd(), flags));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let has = |i: usize, f: PollFlags| {
                fds.get(i)
                    .and_then(|p| p.revents())
                    .is_some_and(|r| r.intersects(f))
            };
            let gone = PollFlags::POLLHUP | PollFlags::POLLERR;
            (
                has(0, PollFlags::POLLIN),
                has(1, PollFlags::POLLIN | gone),
                has(1, PollFlags::POLLOUT),
            )
        };
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                k.on_signal(info.ssi_signo as i32);
            }
        }
        if sock_in {
            k.read_daemon();
        }
        if sock_out {
            k.flush();
        }
        if k.restart_at.is_some_and(|at| Instant::now() >= at) {
            k.restart_at = None;
            k.start_daemon()?;
        }
    }
}

impl Keeper {
    fn on_signal(&mut self, signo: i32) {
        match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => self.reap(),
            Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR) => self.halt(),
            Ok(Signal::SIGHUP) => {
                if let Some(d) = &self.daemon {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid), Signal::SIGHUP);
                }
            }
            _ => {}
        }
    }

    /// Stop everything: the daemon stops its pods with their grace
    /// periods and exits. With no daemon running (between a crash and
    /// its restart) one is started now to do it: it alone knows the
    /// grace periods.
    fn halt(&mut self) {
        self.halting = true;
        match &mut self.daemon {
            Some(d) => queue(d, wire::encode(&Message::Halt)),
            None if self.restart_at.is_some() => self.restart_at = Some(Instant::now()),
            None => self.exit = Some(0),
        }
        self.flush();
    }

    /// Reaps every exited child. The daemon's exit decides what comes
    /// next; any other child's is recorded if it led its own session (as
    /// every process the daemon starts does) and passed on to the daemon.
    /// Others (descendants of pods, or, as PID 1, orphans that were never
    /// ours) are reaped and forgotten.
    fn reap(&mut self) {
        let mut exits = vec![];
        while let Some((pid, _)) = reaping::peek_exited() {
            // Read while it is a zombie: afterwards the pid means nothing.
            let stat = procfs::stat(pid);
            let Some(status) = reaping::reap_pid(pid) else {
                continue;
            };
            if self.daemon.as_ref().is_some_and(|d| d.pid == pid) {
                self.daemon_ended(status);
                continue;
            }
            let Some(stat) = stat.filter(|s| s.session == pid) else {
                continue;
            };
            let record = ExitRecord {
                pid,
                status,
                start_ticks: stat.start_ticks,
                at_ms: unix_ms(SystemTime::now()),
            };
            self.table.record(record);
            exits.push(record);
        }
        if let Some(d) = &mut self.daemon {
            for chunk in exits.chunks(wire::MAX_RECORDS) {
                queue(d, wire::encode(&Message::Exits(chunk.to_vec())));
            }
        }
        self.flush();
    }

    fn daemon_ended(&mut self, status: i32) {
        let Some(d) = self.daemon.take() else { return };
        let end = if libc::WIFSIGNALED(status) {
            DaemonEnd::Killed(libc::WTERMSIG(status))
        } else {
            DaemonEnd::Exited(libc::WEXITSTATUS(status))
        };
        let ran_for = d.started.elapsed();
        match after_daemon_exit(end, d.ready) {
            AfterDaemon::Exit(code) => self.exit = Some(code),
            AfterDaemon::Restart if self.halting && !d.ready && !self.ever_ready => {
                // Halting, and no daemon ever came up: nobody will.
                self.exit = Some(1)
            }
            AfterDaemon::Restart => {
                let delay = if self.halting {
                    Duration::ZERO
                } else {
                    self.pacing.delay(ran_for)
                };
                eprintln!(
                    "drover keeper: the daemon (pid {}) {}; starting it again in {} ms",
                    d.pid,
                    describe(end),
                    delay.as_millis()
                );
                self.restart_at = Some(Instant::now() + delay);
            }
        }
    }

    fn start_daemon(&mut self) -> std::io::Result<()> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        // The daemon's end: blocking, and kept across its exec.
        set_flags(&theirs, false)?;
        let exe = if self.exe.exists() {
            self.exe.as_path()
        } else {
            std::path::Path::new("/proc/self/exe")
        };
        let child = std::process::Command::new(exe)
            .args(&self.args)
            .env(KEEPER_FD_ENV, theirs.as_raw_fd().to_string())
            // Its own group: a Ctrl-C on the terminal reaches the keeper
            // alone, which turns it into one halt (a second Ctrl-C, the
            // second halt, kills).
            .process_group(0)
            .spawn();
        drop(theirs);
        let child = match child {
            Ok(c) => c,
            Err(e) if self.ever_ready => {
                eprintln!("drover keeper: starting the daemon: {e}");
                self.restart_at = Some(Instant::now() + self.pacing.delay(Duration::ZERO));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut d = Daemon {
            pid: child.id() as i32,
            sock: ours,
            started: Instant::now(),
            ready: false,
            closed: false,
            outbox: VecDeque::new(),
        };
        // Not waited for through `child`: `reap` collects it.
        drop(child);
        for packet in wire::table_packets(self.table.iter()) {
            queue(&mut d, packet);
        }
        if self.halting {
            queue(&mut d, wire::encode(&Message::Halt));
        }
        self.daemon = Some(d);
        self.flush();
        Ok(())
    }

    fn read_daemon(&mut self) {
        let Some(d) = &mut self.daemon else { return };
        let mut buf = [0u8; wire::MAX_PACKET];
        loop {
            match nix::sys::socket::recv(d.sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    // The daemon closed its end (it is exiting): reap
                    // tells the rest. The dead socket is not polled again.
                    d.closed = true;
                    d.outbox.clear();
                    return;
                }
                Ok(n) => {
                    if let Some(Message::Ready) = wire::decode(&buf[..n]) {
                        d.ready = true;
                        self.ever_ready = true;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Sends what fits; the rest waits for POLLOUT.
    fn flush(&mut self) {
        let Some(d) = self.daemon.as_mut().filter(|d| !d.closed) else {
            return;
        };
        while let Some(packet) = d.outbox.front() {
            match nix::sys::socket::send(d.sock.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => {
                    d.outbox.pop_front();
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                // EPIPE, ECONNRESET: the daemon is gone; reap will say so.
                Err(_) => {
                    d.outbox.clear();
                    return;
                }
            }
        }
    }
}

fn queue(d: &mut Daemon, packet: Vec<u8>) {
    if d.outbox.len() >= OUTBOX_CAP {
        d.outbox.pop_front();
    }
    d.outbox.push_back(packet);
}

fn describe(end: DaemonEnd) -> String {
    match end {
        DaemonEnd::Exited(code) => format!("exited with code {code}"),
        DaemonEnd::Killed(sig) => format!(
            "was killed by {}",
            Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string())
        ),
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn set_flags(fd: &OwnedFd, cloexec: bool) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = if cloexec {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(flags))?;
    // Blocking for the daemon: it reads the table before its event loop.
    let fl = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    let fl = nix::fcntl::OFlag::from_bits_truncate(fl) & !nix::fcntl::OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl))?;
    Ok(())
}
