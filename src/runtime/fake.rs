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
//! Spawned processes are children: their exits come out of `reap`.
//! Processes added with [`FakeRuntime::add_process`] are not (survivors
//! of a previous daemon, escaped grandchildren): their exits are
//! reported only if they are watched ([`FakeRuntime::watched_exits`]),
//! and a watch can be refused on demand ([`FakeRuntime::refuse_watches`])
//! as when the daemon runs out of descriptors.
//!
//! Cgroups are pretended (available unless made with
//! [`FakeRuntime::without_cgroups`]): pod cgroups are recorded, a spawn
//! with `cgroup` puts the fake process in it, `kill_cgroup` kills every
//! process in it, and a test scripts OOM kills ([`FakeRuntime::oom_kill`])
//! and usage ([`FakeRuntime::set_usage`]). Without cgroups, a spawn with
//! `resources` fails as the real one does. A released pod cgroup is
//! removed only when the test says ([`FakeRuntime::run_removals`]), as
//! the real runtime's thread does it later; making it again first
//! cancels the removal, as there.
//!
//! Clones share one state, so a test keeps a handle while the agent owns
//! another. Not behind `cfg(test)`: integration code may use it too; pass
//! it in explicitly, never switch to it on `cfg!(test)`.

use super::cgroup::{CgroupError, PodCgroup, ProcessCgroup, Usage};
use super::{ExitReason, ProcessFacts, ProcessRuntime, SpawnError, SpawnRequest, Spawned, Watch};
use crate::api::{ProcessIdentity, ProcessUsage, Resources, Signal};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
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
    LimitsUnavailable,
    ProcessLimit,
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
    pub signal: Signal,
}

#[derive(Clone, Debug)]
struct FakeProcess {
    pgid: i32,
    env: Vec<(String, String)>,
    facts: ProcessFacts,
    usage: ProcessUsage,
    /// Spawned by the fake (its exit is reaped), or added.
    child: bool,
    /// Exit queued, not reaped yet: a zombie.
    exited: bool,
    cgroup: Option<ProcessCgroup>,
}

#[derive(Debug)]
struct State {
    next_pid: i32,
    spawns: Vec<SpawnRequest>,
    signals: Vec<SignalSent>,
    failures: VecDeque<SpawnFailure>,
    processes: BTreeMap<i32, FakeProcess>,
    exits: VecDeque<(i32, ExitReason)>,
    /// Exits found only by a scan ([`FakeRuntime::exit_unnamed`]).
    unnamed: VecDeque<(i32, ExitReason)>,
    /// `next_exit` last returned None with `unnamed` not scanned.
    deferred: bool,
    fatal: BTreeSet<Signal>,
    /// Pids that survive every signal but SIGKILL ([`FakeRuntime::ignores_signals`]).
    ignoring: BTreeSet<i32>,
    /// Watched non-children, and their exits not yet taken.
    watched: BTreeSet<i32>,
    watched_exits: VecDeque<i32>,
    /// Watches still to refuse (as with no descriptor left).
    refuse_watches: usize,
    /// Every watch asked for, refused ones included.
    watch_calls: Vec<i32>,
    /// Passes over the (fake) process table by `marked`.
    scans: usize,
    /// None: cgroups available; Some(reason): not.
    no_cgroups: Option<String>,
    pod_cgroups: BTreeSet<PodCgroup>,
    /// Released pod cgroups, not removed yet.
    releasing: BTreeSet<PodCgroup>,
    cgroup_calls: Vec<CgroupCall>,
    oom_kills: BTreeMap<ProcessCgroup, u64>,
    usage: BTreeMap<PodCgroup, Usage>,
    process_usage: BTreeMap<ProcessCgroup, Usage>,
}

/// A cgroup operation the fake was asked for, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupCall {
    Create(PodCgroup),
    Kill(PodCgroup),
    Remove(PodCgroup),
    /// `release_pod_cgroup`: removal queued.
    Release(PodCgroup),
    /// `kill_process_cgroup` of a non-empty process cgroup.
    KillProcess(ProcessCgroup),
    /// `signal_tree`: the group, and the members of the cgroup outside it.
    SignalTree(ProcessCgroup, Signal),
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
            unnamed: VecDeque::new(),
            deferred: false,
            fatal: BTreeSet::from([Signal::KILL]),
            ignoring: BTreeSet::new(),
            watched: BTreeSet::new(),
            watched_exits: VecDeque::new(),
            refuse_watches: 0,
            watch_calls: Vec::new(),
            scans: 0,
            no_cgroups: None,
            pod_cgroups: BTreeSet::new(),
            releasing: BTreeSet::new(),
            cgroup_calls: Vec::new(),
            oom_kills: BTreeMap::new(),
            usage: BTreeMap::new(),
            process_usage: BTreeMap::new(),
        }
    }
}

impl State {
    /// Whether `signal` kills `pid`.
    fn dies_of(&self, pid: i32, signal: Signal) -> bool {
        signal == Signal::KILL || (self.fatal.contains(&signal) && !self.ignoring.contains(&pid))
    }

    fn new_pid(&mut self) -> i32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Queues the exit of a live process (once: a zombie cannot die
    /// again). A child's exit is for `reap`; a watched non-child's for
    /// `watched_exits`; any other non-child just vanishes.
    fn exit(&mut self, pid: i32, reason: ExitReason) {
        self.exit_into(pid, reason, false);
    }

    /// `unnamed`: a child's exit goes to `unnamed`, not `exits`.
    fn exit_into(&mut self, pid: i32, reason: ExitReason, unnamed: bool) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        if p.exited {
            return;
        }
        if p.child {
            p.exited = true;
            if unnamed {
                self.unnamed.push_back((pid, reason));
            } else {
                self.exits.push_back((pid, reason));
            }
        } else {
            self.processes.remove(&pid);
            if self.watched.remove(&pid) {
                self.watched_exits.push_back(pid);
            }
        }
    }

    fn insert(&mut self, env: Vec<(String, String)>, child: bool) -> i32 {
        let pid = self.new_pid();
        self.processes.insert(
            pid,
            FakeProcess {
                pgid: pid,
                env,
                facts: ProcessFacts {
                    session: pid,
                    uid: 0,
                },
                usage: ProcessUsage::default(),
                child,
                exited: false,
                cgroup: None,
            },
        );
        pid
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

    /// A fake with no cgroup support (a non-root `drover up`): pod
    /// cgroups cannot be made and `resources` are refused with `reason`.
    pub fn without_cgroups(reason: &str) -> FakeRuntime {
        let fake = FakeRuntime::default();
        fake.state().no_cgroups = Some(reason.to_string());
        fake
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

    /// Queues `pid`'s exit as one whose SIGCHLD was merged into
    /// another's: like the real runtime, `next_exit` returns the other
    /// exits first, then None with [`ProcessRuntime::scan_deferred`], and
    /// this one on the call after.
    pub fn exit_unnamed(&self, pid: i32, reason: ExitReason) {
        self.state().exit_into(pid, reason, true);
    }

    /// From now on, sending `signal` kills the receiving process
    /// (SIGKILL always does). Example: `dies_on(SIGTERM)` for a
    /// well-behaved program; leave it out to test the grace-period
    /// escalation to SIGKILL.
    pub fn dies_on(&self, signal: Signal) {
        self.state().fatal.insert(signal);
    }

    /// `pid` ignores every signal but SIGKILL (`trap "" TERM`).
    pub fn ignores_signals(&self, pid: i32) {
        self.state().ignoring.insert(pid);
    }

    /// Adds a live process the fake did not spawn (not a child: see the
    /// module docs): a double-forked grandchild (give it the pod's marker
    /// in `env`), or a survivor of a previous daemon to re-adopt. It leads
    /// its own group and session, as uid 0. Returns its pid.
    pub fn add_process(&self, env: Vec<(String, String)>) -> i32 {
        self.state().insert(env, false)
    }

    /// Sets the session and uid a live process reports.
    pub fn set_facts(&self, pid: i32, facts: ProcessFacts) {
        if let Some(p) = self.state().processes.get_mut(&pid) {
            p.facts = facts;
        }
    }

    /// Sets the CPU and memory a live process reports.
    pub fn set_process_usage(&self, pid: i32, usage: ProcessUsage) {
        if let Some(p) = self.state().processes.get_mut(&pid) {
            p.usage = usage;
        }
    }

    /// The next `n` watches are refused ([`Watch::Unavailable`]).
    pub fn refuse_watches(&self, n: usize) {
        self.state().refuse_watches = n;
    }

    /// Every pid a watch was asked for, in order (refused ones too).
    pub fn watch_calls(&self) -> Vec<i32> {
        self.state().watch_calls.clone()
    }

    /// Exits of watched processes since the last call (what the pidfds
    /// of the real runtime report).
    pub fn watched_exits(&self) -> Vec<i32> {
        self.state().watched_exits.drain(..).collect()
    }

    /// How many passes `marked` made over the process table.
    pub fn scans(&self) -> usize {
        self.state().scans
    }

    /// `add_process`, inside a process cgroup (a descendant that escaped
    /// its group and session but not its cgroup). Re-parented to the
    /// daemon (a subreaper) when its parent died, it is reaped like a
    /// child.
    pub fn add_process_in(&self, cgroup: &ProcessCgroup, env: Vec<(String, String)>) -> i32 {
        let mut s = self.state();
        let pid = s.insert(env, true);
        if let Some(p) = s.processes.get_mut(&pid) {
            p.cgroup = Some(cgroup.clone());
        }
        pid
    }

    /// The OOM killer kills `pid`: its cgroup's OOM count grows and it
    /// exits by SIGKILL.
    pub fn oom_kill(&self, pid: i32) {
        let mut s = self.state();
        let cgroup = s.processes.get(&pid).and_then(|p| p.cgroup.clone());
        if let Some(cg) = cgroup {
            *s.oom_kills.entry(cg).or_default() += 1;
        }
        s.exit(pid, ExitReason::Signal(Signal::KILL));
    }

    /// What `cgroup_usage` reports for `pod` from now on.
    pub fn set_usage(&self, pod: &PodCgroup, usage: Usage) {
        self.state().usage.insert(pod.clone(), usage);
    }

    /// What `process_cgroup_usage` reports for `process` from now on.
    pub fn set_process_cgroup_usage(&self, process: &ProcessCgroup, usage: Usage) {
        self.state().process_usage.insert(process.clone(), usage);
    }

    /// Every cgroup operation asked for, in order.
    pub fn cgroup_calls(&self) -> Vec<CgroupCall> {
        self.state().cgroup_calls.clone()
    }

    /// Pod cgroups made and not removed (released ones included, until
    /// [`FakeRuntime::run_removals`]).
    pub fn pod_cgroups(&self) -> Vec<PodCgroup> {
        self.state().pod_cgroups.iter().cloned().collect()
    }

    /// Released pod cgroups whose removal has not run yet.
    pub fn pending_removals(&self) -> Vec<PodCgroup> {
        self.state().releasing.iter().cloned().collect()
    }

    /// What the real runtime's removal thread does: removes each
    /// released pod cgroup that is empty (a busy one stays pending).
    pub fn run_removals(&self) {
        let mut s = self.state();
        let released = std::mem::take(&mut s.releasing);
        for cg in released {
            if live_in(&s, &cg).is_empty() {
                s.pod_cgroups.remove(&cg);
            } else {
                s.releasing.insert(cg);
            }
        }
    }

    /// The cgroup a live or zombie fake process is in.
    pub fn cgroup_of_pid(&self, pid: i32) -> Option<ProcessCgroup> {
        self.state()
            .processes
            .get(&pid)
            .and_then(|p| p.cgroup.clone())
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
        SpawnFailure::LimitsUnavailable => SpawnError::LimitsUnavailable {
            reason: "fake: no cgroups".to_string(),
        },
        SpawnFailure::ProcessLimit => SpawnError::ProcessLimit {
            command,
            source: io::Error::from_raw_os_error(libc::EAGAIN),
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
        if req.resources.as_ref().is_some_and(|r| !r.is_empty()) {
            let refusal = match (&s.no_cgroups, &req.cgroup) {
                (Some(reason), _) => Some(reason.clone()),
                (None, None) => Some("the request names no cgroup to enforce them in".into()),
                (None, Some(_)) => None,
            };
            if let Some(reason) = refusal {
                return Err(SpawnError::LimitsUnavailable { reason });
            }
        }
        if let Some(cg) = &req.cgroup {
            if s.no_cgroups.is_some() {
                return Err(SpawnError::Cgroup {
                    command: req.argv.first().cloned().unwrap_or_default(),
                    source: fake_no_cgroups(&s),
                });
            }
            s.releasing.remove(&cg.pod());
            s.pod_cgroups.insert(cg.pod());
        }
        let pid = s.insert(req.env.clone(), true);
        if let Some(p) = s.processes.get_mut(&pid) {
            p.cgroup = req.cgroup.clone();
        }
        Ok(Spawned {
            pid,
            identity: FakeRuntime::identity_of(pid),
        })
    }

    fn signal_group(&mut self, pgid: i32, signal: Signal) -> io::Result<()> {
        let mut s = self.state();
        s.signals.push(SignalSent {
            target: SignalTarget::Group(pgid),
            signal,
        });
        if s.fatal.contains(&signal) {
            let members: Vec<i32> = s
                .processes
                .iter()
                .filter(|(pid, p)| p.pgid == pgid && s.dies_of(**pid, signal))
                .map(|(pid, _)| *pid)
                .collect();
            for pid in members {
                s.exit(pid, ExitReason::Signal(signal));
            }
        }
        Ok(())
    }

    fn signal(&mut self, pid: i32, signal: Signal) -> io::Result<()> {
        let mut s = self.state();
        s.signals.push(SignalSent {
            target: SignalTarget::Process(pid),
            signal,
        });
        if s.dies_of(pid, signal) {
            s.exit(pid, ExitReason::Signal(signal));
        }
        Ok(())
    }

    fn next_exit(&mut self) -> Option<(i32, ExitReason)> {
        let mut s = self.state();
        if s.exits.is_empty() && !s.unnamed.is_empty() {
            s.deferred = !s.deferred;
            if s.deferred {
                return None;
            }
            let found: Vec<_> = s.unnamed.drain(..).collect();
            s.exits.extend(found);
        }
        s.exits.front().cloned()
    }

    fn scan_deferred(&self) -> bool {
        self.state().deferred
    }

    fn reap_child(&mut self, pid: i32) {
        let mut s = self.state();
        s.exits.retain(|(p, _)| *p != pid);
        s.processes.remove(&pid);
    }

    fn identity(&self, pid: i32) -> Option<ProcessIdentity> {
        // Zombies (exit queued, not reaped) have none, as for the real
        // runtime: they ended.
        self.state()
            .processes
            .get(&pid)
            .is_some_and(|p| !p.exited)
            .then(|| FakeRuntime::identity_of(pid))
    }

    fn facts(&self, pid: i32) -> Option<ProcessFacts> {
        let s = self.state();
        s.processes.get(&pid).filter(|p| !p.exited).map(|p| p.facts)
    }

    fn usage(&self, pid: i32) -> Option<ProcessUsage> {
        let s = self.state();
        s.processes.get(&pid).filter(|p| !p.exited).map(|p| p.usage)
    }

    fn watch(&mut self, pid: i32, identity: &ProcessIdentity) -> Watch {
        let mut s = self.state();
        s.watch_calls.push(pid);
        if s.refuse_watches > 0 {
            s.refuse_watches -= 1;
            return Watch::Unavailable(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let alive = s.processes.get(&pid).is_some_and(|p| !p.exited);
        if !alive || *identity != FakeRuntime::identity_of(pid) {
            return Watch::Gone;
        }
        s.watched.insert(pid);
        Watch::Watching
    }

    fn marked(&self, key: &str, values: &HashSet<String>) -> Vec<(i32, String)> {
        // Zombies have an empty environ in /proc: not listed.
        let mut s = self.state();
        s.scans += 1;
        s.processes
            .iter()
            .filter(|(_, p)| !p.exited)
            .filter_map(|(pid, p)| {
                let (_, v) = p.env.iter().find(|(k, v)| k == key && values.contains(v))?;
                Some((*pid, v.clone()))
            })
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

    fn cgroups_unavailable(&self) -> Option<String> {
        self.state().no_cgroups.clone()
    }

    fn cgroups_description(&self) -> String {
        match &self.state().no_cgroups {
            None => "fake cgroups".to_string(),
            Some(reason) => format!("none ({reason}); processes with resources are refused"),
        }
    }

    fn create_pod_cgroup(&mut self, pod_uid: &str) -> Result<PodCgroup, CgroupError> {
        let mut s = self.state();
        if s.no_cgroups.is_some() {
            return Err(fake_no_cgroups(&s));
        }
        let pod = PodCgroup::new(pod_uid)?;
        s.cgroup_calls.push(CgroupCall::Create(pod.clone()));
        s.releasing.remove(&pod);
        s.pod_cgroups.insert(pod.clone());
        Ok(pod)
    }

    fn kill_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        let mut s = self.state();
        s.cgroup_calls.push(CgroupCall::Kill(cgroup.clone()));
        let members = live_in(&s, cgroup);
        for pid in members {
            s.exit(pid, ExitReason::Signal(Signal::KILL));
        }
        Ok(())
    }

    fn cgroup_is_empty(&self, cgroup: &PodCgroup) -> Result<bool, CgroupError> {
        Ok(live_in(&self.state(), cgroup).is_empty())
    }

    fn remove_pod_cgroup(&mut self, cgroup: &PodCgroup) -> Result<(), CgroupError> {
        let mut s = self.state();
        s.cgroup_calls.push(CgroupCall::Remove(cgroup.clone()));
        if !live_in(&s, cgroup).is_empty() {
            return Err(CgroupError::NotEmpty {
                path: PathBuf::from(cgroup.pod_uid()),
            });
        }
        s.releasing.remove(cgroup);
        s.pod_cgroups.remove(cgroup);
        Ok(())
    }

    fn release_pod_cgroup(&mut self, cgroup: &PodCgroup) {
        let mut s = self.state();
        s.cgroup_calls.push(CgroupCall::Release(cgroup.clone()));
        s.releasing.insert(cgroup.clone());
    }

    fn existing_pod_cgroups(&self) -> Vec<PodCgroup> {
        self.pod_cgroups()
    }

    fn cgroup_usage(&self, cgroup: &PodCgroup) -> Result<Usage, CgroupError> {
        Ok(self.state().usage.get(cgroup).copied().unwrap_or_default())
    }

    fn oom_kills(
        &self,
        cgroup: &ProcessCgroup,
        _limits: Option<&Resources>,
    ) -> Result<u64, CgroupError> {
        Ok(self.state().oom_kills.get(cgroup).copied().unwrap_or(0))
    }

    fn cgroup_pids(&self, cgroup: &PodCgroup) -> Result<Vec<i32>, CgroupError> {
        Ok(live_in(&self.state(), cgroup))
    }

    fn cgroup_of(&self, pid: i32) -> Option<ProcessCgroup> {
        let s = self.state();
        s.processes
            .get(&pid)
            .filter(|p| !p.exited)
            .and_then(|p| p.cgroup.clone())
    }

    fn kill_process_cgroup(&mut self, cgroup: &ProcessCgroup) -> Result<(), CgroupError> {
        let mut s = self.state();
        if let Some(reason) = &s.no_cgroups {
            return Err(CgroupError::Unavailable {
                reason: reason.clone(),
            });
        }
        let members = live_in_process(&s, cgroup);
        if !members.is_empty() {
            s.cgroup_calls.push(CgroupCall::KillProcess(cgroup.clone()));
        }
        for pid in members {
            s.exit(pid, ExitReason::Signal(Signal::KILL));
        }
        Ok(())
    }

    fn signal_tree(
        &mut self,
        pgid: i32,
        cgroup: &ProcessCgroup,
        signal: Signal,
    ) -> Result<(), CgroupError> {
        self.signal_group(pgid, signal).ok();
        let mut s = self.state();
        s.cgroup_calls
            .push(CgroupCall::SignalTree(cgroup.clone(), signal));
        let outside: Vec<i32> = live_in_process(&s, cgroup)
            .into_iter()
            .filter(|pid| s.processes.get(pid).is_some_and(|p| p.pgid != pgid))
            .collect();
        for pid in outside {
            s.signals.push(SignalSent {
                target: SignalTarget::Process(pid),
                signal,
            });
            if s.dies_of(pid, signal) {
                s.exit(pid, ExitReason::Signal(signal));
            }
        }
        Ok(())
    }

    fn process_cgroup_usage(&self, cgroup: &ProcessCgroup) -> Result<Usage, CgroupError> {
        Ok(self
            .state()
            .process_usage
            .get(cgroup)
            .copied()
            .unwrap_or_default())
    }

    fn remove_cgroup_root(&mut self) -> Result<(), CgroupError> {
        Ok(())
    }

    fn is_child(&self, pid: i32) -> bool {
        self.state()
            .processes
            .get(&pid)
            .is_some_and(|p| p.child && !p.exited)
    }
}

/// Live processes in one process cgroup.
fn live_in_process(s: &State, cgroup: &ProcessCgroup) -> Vec<i32> {
    s.processes
        .iter()
        .filter(|(_, p)| !p.exited && p.cgroup.as_ref() == Some(cgroup))
        .map(|(pid, _)| *pid)
        .collect()
}

fn fake_no_cgroups(s: &State) -> CgroupError {
    CgroupError::Unavailable {
        reason: s.no_cgroups.clone().unwrap_or_default(),
    }
}

/// Live (not exited) processes in `pod`'s cgroup.
fn live_in(s: &State, pod: &PodCgroup) -> Vec<i32> {
    s.processes
        .iter()
        .filter(|(_, p)| {
            !p.exited
                && p.cgroup
                    .as_ref()
                    .is_some_and(|c| c.pod_uid() == pod.pod_uid())
        })
        .map(|(pid, _)| *pid)
        .collect()
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
        assert_eq!(err.reason(), crate::api::ProcessReason::StartError);
        handle.fail_next_spawn(SpawnFailure::UserNotFound);
        let err = rt.spawn(&req("x")).unwrap_err();
        assert_eq!(
            err.reason(),
            crate::api::ProcessReason::CreateContainerConfigError
        );
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
        assert_eq!(rt.identity(p), None, "a zombie has ended");
        assert_eq!(rt.reap(), vec![(p, ExitReason::Code(3))]);
        assert!(rt.reap().is_empty());
        assert_eq!(rt.identity(p), None);
    }

    #[test]
    fn signals_are_recorded_and_only_kill_and_declared_signals_kill() {
        let mut rt = FakeRuntime::new();
        let p = rt.spawn(&req("a")).unwrap().pid;
        rt.signal_group(p, Signal::TERM).unwrap();
        assert!(rt.is_alive(p), "TERM is not fatal unless declared");
        rt.signal_group(p, Signal::KILL).unwrap();
        assert_eq!(rt.reap(), vec![(p, ExitReason::Signal(Signal::KILL))]);
        let q = rt.spawn(&req("b")).unwrap().pid;
        rt.dies_on(Signal::TERM);
        rt.signal(q, Signal::TERM).unwrap();
        assert_eq!(rt.reap(), vec![(q, ExitReason::Signal(Signal::TERM))]);
        assert_eq!(
            rt.signals(),
            vec![
                SignalSent {
                    target: SignalTarget::Group(p),
                    signal: Signal::TERM
                },
                SignalSent {
                    target: SignalTarget::Group(p),
                    signal: Signal::KILL
                },
                SignalSent {
                    target: SignalTarget::Process(q),
                    signal: Signal::TERM
                },
            ]
        );
    }

    fn marks(values: &[&str]) -> HashSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn pids(found: Vec<(i32, String)>) -> Vec<i32> {
        found.into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn marked_finds_spawned_and_added_processes_in_one_pass() {
        let mut rt = FakeRuntime::new();
        let p = rt.spawn(&req("a")).unwrap().pid;
        let g = rt.add_process(vec![("MARK".to_string(), "pod-a".to_string())]);
        let other = rt.add_process(vec![("MARK".to_string(), "pod-b".to_string())]);
        assert_eq!(pids(rt.marked("MARK", &marks(&["pod-a"]))), vec![p, g]);
        // The grandchild is in its own group: killing p's group misses it.
        rt.signal_group(p, Signal::KILL).unwrap();
        assert_eq!(pids(rt.marked("MARK", &marks(&["pod-a"]))), vec![g]);
        rt.signal(g, Signal::KILL).unwrap();
        assert!(rt.marked("MARK", &marks(&["pod-a"])).is_empty());
        assert_eq!(
            rt.marked("MARK", &marks(&["pod-a", "pod-b"])),
            vec![(other, "pod-b".to_string())]
        );
        assert_eq!(rt.scans(), 4);
    }

    #[test]
    fn watched_non_children_report_exits_and_watches_can_be_refused() {
        let mut rt = FakeRuntime::new();
        let a = rt.add_process(vec![]);
        let b = rt.add_process(vec![]);
        let c = rt.add_process(vec![]);
        assert!(matches!(
            rt.watch(a, &FakeRuntime::identity_of(a)),
            Watch::Watching
        ));
        assert!(matches!(
            rt.watch(b, &FakeRuntime::identity_of(c)),
            Watch::Gone
        ));
        rt.refuse_watches(1);
        assert!(matches!(
            rt.watch(c, &FakeRuntime::identity_of(c)),
            Watch::Unavailable(_)
        ));
        assert_eq!(rt.watch_calls(), [a, b, c]);
        rt.exit(a, ExitReason::Code(0));
        rt.exit(c, ExitReason::Code(0));
        assert!(rt.reap().is_empty(), "not our children");
        assert_eq!(rt.watched_exits(), [a], "c was not watched");
        assert_eq!(rt.identity(c), None);
    }

    #[test]
    fn cgroups_record_calls_kill_their_members_and_script_oom() {
        let mut rt = FakeRuntime::new();
        let pod = rt.create_pod_cgroup("uid-1").unwrap();
        let cg = pod.process("main").unwrap();
        let mut r = req("a");
        r.cgroup = Some(cg.clone());
        r.resources = Some(crate::api::Resources {
            pids: Some(5),
            ..Default::default()
        });
        let main = rt.spawn(&r).unwrap().pid;
        let escaped = rt.add_process_in(&cg, vec![]);
        let outside = rt.spawn(&req("b")).unwrap().pid;
        assert_eq!(rt.cgroup_of(escaped), Some(cg.clone()));
        assert_eq!(rt.cgroup_pids(&pod).unwrap(), vec![main, escaped]);
        assert!(matches!(
            rt.remove_pod_cgroup(&pod),
            Err(CgroupError::NotEmpty { .. })
        ));
        assert_eq!(rt.oom_kills(&cg, None).unwrap(), 0);
        rt.oom_kill(main);
        assert_eq!(rt.oom_kills(&cg, None).unwrap(), 1);
        rt.kill_cgroup(&pod).unwrap();
        assert!(rt.cgroup_is_empty(&pod).unwrap());
        assert!(rt.is_alive(outside));
        let reaped = rt.reap();
        assert_eq!(
            reaped,
            vec![
                (main, ExitReason::Signal(Signal::KILL)),
                (escaped, ExitReason::Signal(Signal::KILL))
            ]
        );
        rt.remove_pod_cgroup(&pod).unwrap();
        assert!(rt.pod_cgroups().is_empty());
        assert_eq!(
            rt.cgroup_calls(),
            vec![
                CgroupCall::Create(pod.clone()),
                CgroupCall::Remove(pod.clone()),
                CgroupCall::Kill(pod.clone()),
                CgroupCall::Remove(pod),
            ]
        );
    }

    #[test]
    fn without_cgroups_resources_are_refused_and_plain_spawns_work() {
        let mut rt = FakeRuntime::without_cgroups("not root");
        assert!(matches!(
            rt.create_pod_cgroup("uid-1"),
            Err(CgroupError::Unavailable { reason }) if reason == "not root"
        ));
        let mut r = req("a");
        r.resources = Some(crate::api::Resources {
            pids: Some(5),
            ..Default::default()
        });
        assert!(matches!(
            rt.spawn(&r),
            Err(SpawnError::LimitsUnavailable { reason }) if reason == "not root"
        ));
        assert!(rt.spawn(&req("b")).is_ok());
        assert!(rt.cgroups_description().contains("not root"));
    }
}
