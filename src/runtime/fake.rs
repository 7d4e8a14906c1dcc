//! `FakeRuntime`: a TEST DOUBLE of [`ProcessRuntime`] for the agent's
//! tier-2 tests (youki's `TestHelperSyscall`, Kubernetes'
//! `FakePodControl`). No process is ever started.
//!
//! It hands out increasing fake pids, records every spawn request and
//! every signal, fails spawns on demand, and reports exits the test queues.
//! Processes die only when a test says so ([`FakeRuntime::exit`]), when
//! sent SIGKILL (which nothing can ignore), or when sent a signal the test
//! declared fatal ([`FakeRuntime::dies_on`]).
//!
//! Clones share one state, so a test keeps a handle while the agent owns
//! another. Not behind `cfg(test)`: integration code may use it too; pass
//! it in explicitly, never switch to it on `cfg!(test)`.

use super::{ExitReason, ProcessRuntime, SpawnError, SpawnRequest, Spawned};
use crate::api::ProcessIdentity;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// The boot id of every fake identity.
pub const FAKE_BOOT_ID: &str = "00000000-0000-0000-0000-00000000fake";

/// The first pid handed out.
pub const FIRST_FAKE_PID: i32 = 1000;

/// Which [`SpawnError`] a scripted failure produces; names and paths come
/// from the failing request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnFailure {
    UserNotFound,
    GroupNotFound,
    CommandNotFound,
    PermissionDenied,
    WorkingDir,
    LogFile,
    Io,
}

/// Where a recorded signal went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalTarget {
    Group(i32),
    Process(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalSent {
    pub target: SignalTarget,
    pub signal: i32,
}

#[derive(Clone, Debug)]
struct FakeProcess {
    pgid: i32,
    env: Vec<(String, String)>,
    /// Exit queued, not reaped yet: a zombie.
    exited: bool,
}

#[derive(Debug)]
struct State {
    next_pid: i32,
    spawns: Vec<SpawnRequest>,
    signals: Vec<SignalSent>,
    failures: VecDeque<SpawnFailure>,
    processes: BTreeMap<i32, FakeProcess>,
    exits: VecDeque<(i32, ExitReason)>,
    fatal: BTreeSet<i32>,
}

impl Default for State {
    fn default() -> Self {
        State {
            next_pid: FIRST_FAKE_PID,
            spawns: Vec::new(),
            signals: Vec::new(),
            failures: VecDeque::new(),
            processes: BTreeMap::new(),
            exits: VecDeque::new(),
            fatal: BTreeSet::from([libc::SIGKILL]),
        }
    }
}

impl State {
    fn new_pid(&mut self) -> i32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Queues the exit of a live process (once: a zombie cannot die again).
    fn exit(&mut self, pid: i32, reason: ExitReason) {
        if let Some(p) = self.processes.get_mut(&pid) {
            if !p.exited {
                p.exited = true;
                self.exits.push_back((pid, reason));
            }
        }
    }
}

/// See the module docs. `Default` is an empty fake.
#[derive(Clone, Debug, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its
        // own failure behind a poison error in the next assertion.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The identity every live fake `pid` reports.
    pub fn identity_of(pid: i32) -> ProcessIdentity {
        ProcessIdentity {
            start_ticks: pid as u64 * 100,
            boot_id: FAKE_BOOT_ID.to_string(),
        }
    }

    /// The next spawn fails with `kind` (queued: call twice to fail the
    /// next two). A failed spawn is still recorded in [`Self::spawns`].
    pub fn fail_next_spawn(&self, kind: SpawnFailure) {
        self.state().failures.push_back(kind);
    }

    /// Queues `pid`'s exit for the next `reap()`. Ignored for pids that are
    /// not alive (never spawned, or already exited).
    pub fn exit(&self, pid: i32, reason: ExitReason) {
        self.state().exit(pid, reason);
    }

    /// From now on, sending `signal` kills the receiving process
    /// (SIGKILL always does). Example: `dies_on(SIGTERM)` for a
    /// well-behaved program; leave it out to test the grace-period
    /// escalation to SIGKILL.
    pub fn dies_on(&self, signal: i32) {
        self.state().fatal.insert(signal);
    }

    /// Adds a live process the fake did not spawn: a double-forked
    /// grandchild (give it the pod's marker in `env`), or a survivor of a
    /// previous daemon to re-adopt. It leads its own group. Returns its pid.
    pub fn add_process(&self, env: Vec<(String, String)>) -> i32 {
        let mut s = self.state();
        let pid = s.new_pid();
        s.processes.insert(
            pid,
            FakeProcess {
                pgid: pid,
                env,
                exited: false,
            },
        );
        pid
    }

    /// Every spawn request, in order, failed ones included.
    pub fn spawns(&self) -> Vec<SpawnRequest> {
        self.state().spawns.clone()
    }

    /// Every signal sent, in order.
    pub fn signals(&self) -> Vec<SignalSent> {
        self.state().signals.clone()
    }

    /// Pids that are alive (spawned or added, exit not queued).
    pub fn live_pids(&self) -> Vec<i32> {
        let s = self.state();
        s.processes
            .iter()
            .filter(|(_, p)| !p.exited)
            .map(|(pid, _)| *pid)
            .collect()
    }

    pub fn is_alive(&self, pid: i32) -> bool {
        self.state().processes.get(&pid).is_some_and(|p| !p.exited)
    }

    /// Exits queued and not yet reaped.
    pub fn pending_exits(&self) -> Vec<(i32, ExitReason)> {
        self.state().exits.iter().copied().collect()
    }
}

fn failure(kind: SpawnFailure, req: &SpawnRequest) -> SpawnError {
    let command = req.argv.first().cloned().unwrap_or_default();
    let fake_io = |msg: &str| io::Error::other(format!("fake: {msg}"));
    match kind {
        SpawnFailure::UserNotFound => SpawnError::UserNotFound {
            user: req.user.clone().unwrap_or_default(),
        },
        SpawnFailure::GroupNotFound => SpawnError::GroupNotFound {
            group: req.group.clone().unwrap_or_default(),
        },
        SpawnFailure::CommandNotFound => SpawnError::CommandNotFound { command },
        SpawnFailure::PermissionDenied => SpawnError::PermissionDenied { command },
        SpawnFailure::WorkingDir => SpawnError::WorkingDir {
            dir: req
                .working_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".")),
            source: io::Error::from(io::ErrorKind::NotFound),
        },
        SpawnFailure::LogFile => SpawnError::LogFile {
            path: req.log_path.clone(),
            source: fake_io("log file"),
        },
        SpawnFailure::Io => SpawnError::Io {
            command,
            source: fake_io("spawn failed"),
        },
    }
}

impl ProcessRuntime for FakeRuntime {
    fn spawn(&mut self, req: &SpawnRequest) -> Result<Spawned, SpawnError> {
        let mut s = self.state();
        s.spawns.push(req.clone());
        if let Some(kind) = s.failures.pop_front() {
            return Err(failure(kind, req));
        }
        let pid = s.new_pid();
        s.processes.insert(
            pid,
            FakeProcess {
                pgid: pid,
                env: req.env.clone(),
                exited: false,
            },
        );
        Ok(Spawned {
            pid,
            identity: FakeRuntime::identity_of(pid),
        })
    }

    fn signal_group(&mut self, pgid: i32, signal: i32) -> io::Result<()> {
        let mut s = self.state();
        s.signals.push(SignalSent {
            target: SignalTarget::Group(pgid),
            signal,
        });
        if s.fatal.contains(&signal) {
            let members: Vec<i32> = s
                .processes
                .iter()
                .filter(|(_, p)| p.pgid == pgid)
                .map(|(pid, _)| *pid)
                .collect();
            for pid in members {
                s.exit(pid, ExitReason::Signal(signal));
            }
        }
        Ok(())
    }

    fn signal(&mut self, pid: i32, signal: i32) -> io::Result<()> {
        let mut s = self.state();
        s.signals.push(SignalSent {
            target: SignalTarget::Process(pid),
            signal,
        });
        if s.fatal.contains(&signal) {
            s.exit(pid, ExitReason::Signal(signal));
        }
        Ok(())
    }

    fn reap(&mut self) -> Vec<(i32, ExitReason)> {
        let mut s = self.state();
        let exits: Vec<_> = s.exits.drain(..).collect();
        for (pid, _) in &exits {
            s.processes.remove(pid);
        }
        exits
    }

    fn identity(&self, pid: i32) -> Option<ProcessIdentity> {
        // Zombies (exit queued, not reaped) still have an identity, as in
        // /proc.
        self.state()
            .processes
            .contains_key(&pid)
            .then(|| FakeRuntime::identity_of(pid))
    }

    fn marked(&self, key: &str, value: &str) -> Vec<i32> {
        // Zombies have an empty environ in /proc: not listed.
        self.state()
            .processes
            .iter()
            .filter(|(_, p)| !p.exited && p.env.iter().any(|(k, v)| k == key && v == value))
            .map(|(pid, _)| *pid)
            .collect()
    }

    fn marked_leaders(&self, key: &str, prefix: &str) -> Vec<(i32, String)> {
        self.state()
            .processes
            .iter()
            .filter(|(pid, p)| !p.exited && p.pgid == **pid)
            .filter_map(|(pid, p)| {
                let (_, v) = p
                    .env
                    .iter()
                    .find(|(k, v)| k == key && v.starts_with(prefix))?;
                Some((*pid, v.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: &str) -> SpawnRequest {
        SpawnRequest {
            argv: vec![cmd.to_string()],
            env: vec![("MARK".to_string(), "pod-a".to_string())],
            log_path: PathBuf::from("/tmp/x.log"),
            ..Default::default()
        }
    }

    #[test]
    fn spawns_get_increasing_pids_and_are_recorded() {
        let mut rt = FakeRuntime::new();
        let a = rt.spawn(&req("a")).unwrap();
        let b = rt.spawn(&req("b")).unwrap();
        assert_eq!((a.pid, b.pid), (FIRST_FAKE_PID, FIRST_FAKE_PID + 1));
        assert_eq!(a.identity, FakeRuntime::identity_of(a.pid));
        assert_eq!(rt.identity(a.pid), Some(a.identity));
        assert_eq!(rt.identity(4242), None);
        let argv0: Vec<_> = rt.spawns().iter().map(|r| r.argv[0].clone()).collect();
        assert_eq!(argv0, ["a", "b"]);
        assert_eq!(rt.live_pids(), vec![a.pid, b.pid]);
    }

    #[test]
    fn scripted_failure_applies_to_the_next_spawn_only() {
        let mut rt = FakeRuntime::new();
        let handle = rt.clone();
        handle.fail_next_spawn(SpawnFailure::CommandNotFound);
        let err = rt.spawn(&req("nope")).unwrap_err();
        assert!(matches!(err, SpawnError::CommandNotFound { ref command } if command == "nope"));
        assert_eq!(err.reason(), "StartError");
        handle.fail_next_spawn(SpawnFailure::UserNotFound);
        let err = rt.spawn(&req("x")).unwrap_err();
        assert_eq!(err.reason(), "CreateContainerConfigError");
        assert!(rt.spawn(&req("ok")).is_ok());
        assert_eq!(handle.spawns().len(), 3, "failed spawns are recorded too");
        assert_eq!(handle.live_pids().len(), 1);
    }

    #[test]
    fn queued_exits_come_out_of_reap_once() {
        let mut rt = FakeRuntime::new();
        let p = rt.spawn(&req("a")).unwrap().pid;
        assert!(rt.reap().is_empty());
        rt.exit(p, ExitReason::Code(3));
        rt.exit(p, ExitReason::Code(4)); // a zombie cannot exit again
        assert!(!rt.is_alive(p));
        assert!(
            rt.identity(p).is_some(),
            "zombie keeps its identity until reaped"
        );
        assert_eq!(rt.reap(), vec![(p, ExitReason::Code(3))]);
        assert!(rt.reap().is_empty());
        assert_eq!(rt.identity(p), None);
    }

    #[test]
    fn signals_are_recorded_and_only_kill_and_declared_signals_kill() {
        let mut rt = FakeRuntime::new();
        let p = rt.spawn(&req("a")).unwrap().pid;
        rt.signal_group(p, libc::SIGTERM).unwrap();
        assert!(rt.is_alive(p), "TERM is not fatal unless declared");
        rt.signal_group(p, libc::SIGKILL).unwrap();
        assert_eq!(rt.reap(), vec![(p, ExitReason::Signal(libc::SIGKILL))]);
        let q = rt.spawn(&req("b")).unwrap().pid;
        rt.dies_on(libc::SIGTERM);
        rt.signal(q, libc::SIGTERM).unwrap();
        assert_eq!(rt.reap(), vec![(q, ExitReason::Signal(libc::SIGTERM))]);
        assert_eq!(
            rt.signals(),
            vec![
                SignalSent {
                    target: SignalTarget::Group(p),
                    signal: libc::SIGTERM
                },
                SignalSent {
                    target: SignalTarget::Group(p),
                    signal: libc::SIGKILL
                },
                SignalSent {
                    target: SignalTarget::Process(q),
                    signal: libc::SIGTERM
                },
            ]
        );
    }

    #[test]
    fn marked_finds_spawned_and_added_processes() {
        let mut rt = FakeRuntime::new();
        let p = rt.spawn(&req("a")).unwrap().pid;
        let g = rt.add_process(vec![("MARK".to_string(), "pod-a".to_string())]);
        let other = rt.add_process(vec![("MARK".to_string(), "pod-b".to_string())]);
        assert_eq!(rt.marked("MARK", "pod-a"), vec![p, g]);
        // The grandchild is in its own group: killing p's group misses it.
        rt.signal_group(p, libc::SIGKILL).unwrap();
        assert_eq!(rt.marked("MARK", "pod-a"), vec![g]);
        rt.signal(g, libc::SIGKILL).unwrap();
        assert!(rt.marked("MARK", "pod-a").is_empty());
        assert_eq!(rt.marked("MARK", "pod-b"), vec![other]);
    }
}
