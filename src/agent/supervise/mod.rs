//! The executor of the node agent: turns pods bound to this node into
//! running processes and keeps them that way.
//!
//! It holds each process's state ([`Process`]) and feeds it events; what
//! happens is decided by the pure [`step`](super::process::step), and
//! this module only applies the effects: spawns (batched), signals,
//! sweeps, timers, probes, status writes, events. What is per pod lives
//! here too: which processes start when, ports, the pod's phase, removal
//! once a deleted pod's processes all stopped.
//!
//! Per pod, beside the processes: the init sequence (`init.rs`: each
//! init process in turn, then the processes), the pod's cgroup
//! (`cgroups.rs`: made at first sight, limits and OOM kills per process,
//! the whole tree killed at the end of the grace period, removed once
//! empty), and the pid files of daemons that fork themselves
//! (`pid_files.rs`).
//!
//! It talks to the OS only through [`ProcessRuntime`] and never reads a
//! clock: [`Now`] is an argument, so tests drive it with the fake runtime
//! and made-up time. What it asks the daemon loop to do comes back in an
//! [`Outbox`]: events to record, network checks to run, pods removed.

use super::backoff::BackoffConfig;
use super::logs::LogDir;
use super::probe::{Check, ProbeKind};
use super::process::{Event, Now, Phase, Process, RecordedExit, Rules};
use super::timers::{TimerKey, TimerQueue};
use crate::api::{Pod, PodPhase, ProcessState, ProcessStatus, Signal};
use crate::runtime::ProcessRuntime;
use crate::store::Store;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

mod cgroups;
mod dispatch;
mod halted;
mod init;
mod log_removal;
mod notify;
mod pid_files;
mod probes;
mod recover;
mod sweep;
#[cfg(test)]
mod tests;

pub struct AgentConfig {
    pub node_name: String,
    pub logs: LogDir,
    pub backoff: BackoffConfig,
    /// Variables every process inherits (PATH, LANG, ...).
    pub base_env: Vec<(String, String)>,
    /// Check that an allocated port is really free on the host (off in
    /// tests of the executor).
    pub probe_port_is_free: bool,
    /// NOTIFY_SOCKET for processes with `notify = true`.
    pub notify_socket: Option<std::path::PathBuf>,
    /// This daemon's instance id (persisted in its state dir), part of
    /// every process's marker.
    pub instance: String,
    /// Remove deleted pods' logs on a thread of their own (the daemon);
    /// off: at once (tests).
    pub background_log_removal: bool,
}

/// Something worth an event on the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub pod: String,
    pub pod_uid: String,
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// What the agent asks of the daemon's loop.
#[derive(Debug, Default)]
pub struct Outbox {
    pub notes: Vec<Note>,
    /// Pods whose processes all stopped after deletion and that were
    /// removed from the store.
    pub removed: Vec<String>,
    /// HTTP and TCP checks to run as tasks; their results come back
    /// through [`Agent::on_probe_result`].
    pub checks: Vec<CheckRequest>,
}

/// One network probe to run, and where its result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    pub key: ProbeKey,
    pub check: Check,
}

/// Which probe of which run a result belongs to (`run` tells a result of
/// an earlier run apart).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeKey {
    pub pod: String,
    /// Tells a pod re-created under the same name apart.
    pub uid: String,
    pub idx: usize,
    pub kind: ProbeKind,
    pub run: u64,
}

/// A pod's processes, as this node supervises them. Processes are
/// numbered init processes first (`PodSpec::all_processes`).
#[derive(Debug)]
struct PodRt {
    uid: String,
    procs: Vec<Process>,
    /// How many of `procs` are init processes (the first ones).
    inits: usize,
    /// The session each live run leads (what notify senders are matched
    /// against), by process index.
    sessions: Vec<Option<i32>>,
    /// Set once the pod is being stopped for good.
    stopping: bool,
    /// When the pod's stop began plus its grace period: what is left in
    /// its cgroup then is killed.
    stop_deadline: Option<Instant>,
    /// The pod's cgroup, while it exists (None: cgroups unavailable, or
    /// removed once the pod finished).
    cgroup: Option<cgroups::PodCg>,
    /// OOM kills counted in each process's cgroup before its current run.
    oom_before: Vec<Option<u64>>,
    /// The spec its processes run: a newer one restarts them in place.
    spec: SpecSeen,
}

/// Which spec a pod's processes were started with: its generation, and a
/// hash of the spec (generation also counts changes of labels and
/// annotations, which restart nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpecSeen {
    generation: u64,
    hash: u64,
}

impl SpecSeen {
    fn of(pod: &Pod) -> SpecSeen {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_vec(&pod.spec)
            .expect("a pod spec serialises")
            .hash(&mut h);
        SpecSeen {
            generation: pod.metadata.generation,
            hash: h.finish(),
        }
    }
}

impl PodRt {
    fn new(uid: &str, inits: usize, n: usize) -> PodRt {
        PodRt {
            uid: uid.to_string(),
            procs: (0..n).map(|_| Process::new()).collect(),
            inits,
            sessions: vec![None; n],
            stopping: false,
            stop_deadline: None,
            cgroup: None,
            oom_before: vec![None; n],
            spec: SpecSeen {
                generation: 0,
                hash: 0,
            },
        }
    }
}

pub struct Agent<R: ProcessRuntime> {
    rt: R,
    cfg: AgentConfig,
    pods: HashMap<String, PodRt>,
    /// Main pids -> (pod, process index).
    by_pid: HashMap<i32, (String, usize)>,
    /// Sessions of live runs -> (pod, process index).
    by_session: HashMap<i32, (String, usize)>,
    /// Pids that could not be watched (no fd for a pidfd): warned about
    /// once, not at every recheck (208 of them wrote 12 MB of log an hour).
    unwatched: std::collections::HashSet<i32>,
    /// Exec probes running now.
    probe_pids: HashMap<i32, ProbeKey>,
    timers: TimerQueue,
    sweeper: sweep::Sweeper,
    /// Spawns gathered while handling events, started as one batch.
    pending_spawns: Vec<(String, usize, crate::runtime::SpawnRequest)>,
    log_remover: log_removal::LogRemover,
    /// Pid files awaited, and the inotify watches on their folders.
    pid_files: pid_files::PidFiles,
    /// Where v2 cgroup emptiness watches report (the daemon's loop);
    /// None: emptiness is checked after reaps and by a timer only.
    cgroup_events: Option<cgroups::EventSink>,
    /// Pods whose processes are done and whose cgroup is not empty yet.
    draining: std::collections::BTreeSet<String>,
    /// Cgroups of terminal pods found at start (`collect_cgroups`), until
    /// the pod is first seen.
    leftover_cgroups: HashSet<crate::runtime::PodCgroup>,
    /// What a halt stopped, to start again with the next daemon.
    halted: halted::Halted,
    /// A zombie whose exit was recorded and is not reaped until the
    /// daemon has written it down (`reap`).
    held: Option<i32>,
    /// Deleted pods to stop past the last [`SYNC_BATCH`].
    sync_left: Vec<String>,
}

/// The most deleted pods one call to [`Agent::sync_some`] stops: a stop
/// lists the pod's cgroup and signals its tree, 0.1 to 2 ms on a busy
/// host; the daemon calls again while its turn's time allows.
pub const SYNC_BATCH: usize = 25;

/// The most exits one call to [`Agent::reap`] handles: the rest wait,
/// zombies, for the next turn of the daemon's loop, so 5,000 pods scaled
/// to 0 do not hold up API requests and other pods' restarts for the
/// whole lot. A zombie keeps its pid: none is reused while its exit waits.
pub const REAP_BATCH: usize = 25;

/// How a call to [`Agent::reap`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaped {
    /// No exited child is left.
    All,
    /// [`REAP_BATCH`] exits were handled; more may be waiting.
    More,
    /// An exit that ends its process for good was recorded and its
    /// zombie left: write the store, then [`Agent::reap_held`].
    Held,
}

impl<R: ProcessRuntime> Agent<R> {
    pub fn new(rt: R, cfg: AgentConfig) -> Agent<R> {
        let log_remover =
            log_removal::LogRemover::new(cfg.logs.clone(), cfg.background_log_removal);
        Agent {
            log_remover,
            rt,
            cfg,
            pods: HashMap::new(),
            by_pid: HashMap::new(),
            by_session: HashMap::new(),
            unwatched: Default::default(),
            probe_pids: HashMap::new(),
            timers: TimerQueue::default(),
            sweeper: sweep::Sweeper::default(),
            pending_spawns: Vec::new(),
            pid_files: pid_files::PidFiles::default(),
            cgroup_events: None,
            draining: Default::default(),
            leftover_cgroups: HashSet::new(),
            halted: Default::default(),
            held: None,
            sync_left: Vec::new(),
        }
    }

    /// Which cgroup hierarchy pods go in, or why none (for the node's
    /// status and the daemon's first log line).
    pub fn cgroups_description(&self) -> String {
        self.rt.cgroups_description()
    }

    /// Why this node cannot enforce `resources` (no usable cgroup
    /// hierarchy: a non-root daemon, a read-only cgroupfs); None where it
    /// can. Units asking for limits are refused then, never run unlimited.
    pub fn limits_unavailable(&self) -> Option<String> {
        self.rt.cgroups_unavailable()
    }

    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// Pids of every process the agent runs now (main processes).
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.by_pid.keys().copied()
    }

    pub fn is_supervising(&self, pid: i32) -> bool {
        self.by_pid.contains_key(&pid)
    }

    /// When the agent's next timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_due()
    }

    /// Brings every pod bound to this node in line with the store: new
    /// pods start (or are re-adopted after a daemon restart), deleted pods
    /// stop, waiting processes start, vanished pods are stopped.
    pub fn sync(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        let mut rescan = true;
        while self.sync_some(store, now, out, rescan) {
            rescan = false;
        }
    }

    /// [`Agent::sync`], stopping at most [`SYNC_BATCH`] deleted pods:
    /// whether pods that need attention are left for another call. 5,000
    /// pods scaled to 0 are stopped a batch per turn of the daemon's loop,
    /// and another pod's crash or an API request is served in between.
    ///
    /// `rescan`: look for pods that need attention among all of them
    /// (something changed), after those the last batch left; otherwise
    /// only go on with those. A pod attended to and still in need (one
    /// that cannot start) waits for the next rescan: a host with more
    /// such pods than a batch does not spin.
    pub fn sync_some(
        &mut self,
        store: &mut Store,
        now: Now,
        out: &mut Outbox,
        rescan: bool,
    ) -> bool {
        let node = self.cfg.node_name.clone();
        let needs = |agent: &Self, p: &Pod| {
            p.status.node_name.as_deref() == Some(node.as_str()) && agent.needs_attention(p)
        };
        let mut mine: Vec<String> = std::mem::take(&mut self.sync_left)
            .into_iter()
            .filter(|n| store.pod(n).is_some_and(|p| needs(self, p)))
            .collect();
        if rescan {
            let left: HashSet<String> = mine.iter().cloned().collect();
            mine.extend(
                store
                    .pods()
                    .filter(|p| !left.contains(&p.metadata.name) && needs(self, p))
                    .map(|p| p.metadata.name.clone()),
            );
        }
        // Only stops are counted: starting is the spawns' cost whatever the
        // batch (and batching 5,000 starts made them slower: each turn
        // also served the API's listings meanwhile), while a stop's
        // turn-sized batches keep exits and requests flowing.
        let stopping = |n: &String| {
            store
                .pod(n)
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        };
        let mut stops = 0;
        let mut left = Vec::new();
        mine.retain(|n| {
            if !stopping(n) {
                return true;
            }
            stops += 1;
            if stops <= SYNC_BATCH {
                return true;
            }
            left.push(n.clone());
            false
        });
        self.sync_left = left;
        for name in mine {
            self.sync_pod(store, &name, now, out);
        }
        // A pod that left the store without being stopped (e.g. the store
        // was edited by hand): stop its processes, nobody will see them.
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|n| store.pod(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            let pids: Vec<i32> = self.pods[&name]
                .procs
                .iter()
                .filter_map(|p| p.pid())
                .collect();
            let cgroup = self.pods[&name].cgroup.as_ref().map(|c| c.cg.clone());
            self.forget(&name);
            for pid in pids {
                let _ = self.rt.signal_group(pid, Signal::KILL);
            }
            if let Some(cg) = cgroup {
                let _ = self.rt.kill_cgroup(&cg);
            }
        }
        self.flush(store, now, out);
        !self.sync_left.is_empty()
    }

    fn needs_attention(&self, pod: &Pod) -> bool {
        match self.pods.get(&pod.metadata.name) {
            None => true,
            Some(rt) => {
                (pod.metadata.deletion_timestamp.is_some() && !rt.stopping)
                    || init::next(rt, &pod.status) != init::Next::Nothing
                    || rt.uid != pod.metadata.uid
                    || rt.spec.generation != pod.metadata.generation
            }
        }
    }

    fn sync_pod(&mut self, store: &mut Store, name: &str, now: Now, out: &mut Outbox) {
        let Some(pod) = store.pod(name) else { return };
        // A pod re-created under the same name is a different pod.
        if self
            .pods
            .get(name)
            .is_some_and(|rt| rt.uid != pod.metadata.uid)
        {
            self.forget(name);
        }
        if !self.pods.contains_key(name) {
            self.first_sight(store, name, now, out);
        }
        let deleting = store
            .pod(name)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        if deleting {
            self.stop_pod(store, name, now, out);
            return;
        }
        if self.restart_if_spec_changed(store, name, now, out) {
            return;
        }
        if !self.allocate_ports(store, name, out) {
            return;
        }
        self.start_next(store, name, now, out);
    }

    /// Starts what the init sequence allows now (see `init.rs`).
    fn start_next(&mut self, store: &mut Store, name: &str, now: Now, out: &mut Outbox) {
        let (Some(rt), Some(pod)) = (self.pods.get(name), store.pod(name)) else {
            return;
        };
        match init::next(rt, &pod.status) {
            init::Next::Start(idxs) => {
                for idx in idxs {
                    self.dispatch(store, name, idx, Event::Start, now, out);
                }
            }
            init::Next::Abandon(idxs) => {
                for idx in idxs {
                    self.dispatch(store, name, idx, Event::Stop, now, out);
                }
                if let Some(rt) = self.pods.get(name) {
                    let procs = &rt.procs;
                    store.update_pod(name, |pod| {
                        let before = pod.status.phase;
                        ensure_status(pod);
                        update_phase(pod, procs);
                        pod.status.phase != before
                    });
                }
                self.finish_if_done(store, name, now, out);
            }
            init::Next::Nothing => {}
        }
    }

    /// First sight of a pod: a fresh one gets waiting processes; one whose
    /// status names live pids (the daemon restarted) has them re-adopted,
    /// after checking the pid still is the process we started.
    fn first_sight(&mut self, store: &mut Store, name: &str, now: Now, out: &mut Outbox) {
        let pod = store.pod(name).expect("pod exists");
        let n = pod.spec.process_count();
        let mut rt = PodRt::new(&pod.metadata.uid, pod.spec.init_processes.len(), n);
        rt.spec = SpecSeen::of(pod);
        if pod.is_terminal() {
            for p in &mut rt.procs {
                p.phase = Phase::Done;
            }
            let uid = rt.uid.clone();
            self.pods.insert(name.to_string(), rt);
            // Left by a daemon that stopped before the pod's cgroup was
            // removed: removed now.
            self.leftover_cgroup(name, &uid, now);
            return;
        }
        rt.cgroup = self.make_pod_cgroup(&pod.metadata.uid);
        let mut found = vec![];
        for idx in 0..n {
            let Some(status) = pod.process_status(idx) else {
                continue;
            };
            let started_at = match status.state {
                ProcessState::Running { started_at } => Some(started_at),
                ProcessState::Waiting { .. } => None,
                // It will not run again (an init process that completed,
                // a process of a pod that goes on without it).
                ProcessState::Terminated(_) => {
                    rt.procs[idx].phase = Phase::Done;
                    continue;
                }
            };
            let (Some(pid), Some(identity)) = (status.pid, status.identity.as_ref()) else {
                continue;
            };
            let pid = pid as i32;
            if self.rt.identity(pid).as_ref() == Some(identity) {
                let started_at = started_at.unwrap_or(now.wall);
                found.push((
                    idx,
                    Event::Adopted {
                        pid,
                        identity: identity.clone(),
                        started_at,
                        ready: status.ready,
                    },
                ));
            } else if started_at.is_some() && pod.metadata.deletion_timestamp.is_none() {
                // Ended while the daemon was down; its keeper may have
                // reaped it meanwhile. A pod being deleted is not restarted
                // for it: it is stopped next, and a run started now would
                // only be killed again (issue 9).
                let recorded = self.rt.kept_exit(pid, identity).map(|k| RecordedExit {
                    exit: k.exit,
                    at: k.at.into(),
                });
                found.push((
                    idx,
                    Event::Lost {
                        started_at,
                        recorded,
                    },
                ));
            }
        }
        self.pods.insert(name.to_string(), rt);
        for (idx, event) in found {
            self.dispatch(store, name, idx, event, now, out);
        }
    }

    /// Ports from the pod's ranges, once. False if none were free (the
    /// pod waits; the reason is in its status).
    fn allocate_ports(&mut self, store: &mut Store, name: &str, out: &mut Outbox) -> bool {
        let Some(pod) = store.pod(name) else {
            return false;
        };
        if pod.is_terminal() || !pod.status.ports.is_empty() || pod.spec.ports.is_empty() {
            return !pod.is_terminal();
        }
        let taken = taken_ports(store, &self.cfg.node_name, name);
        let check = self.cfg.probe_port_is_free;
        let mut ok = true;
        store.update_pod(name, |pod| {
            match super::ports::allocate(&pod.spec.ports, &taken, |p| {
                !check || super::ports::tcp_port_is_free(p)
            }) {
                Ok(p) => pod.status.ports = p,
                Err(msg) => {
                    pod.status.reason = Some("PortsUnavailable".into());
                    pod.status.message = Some(msg.clone());
                    out.notes.push(note(pod, true, "FailedScheduling", msg));
                    ok = false;
                }
            }
            true
        });
        ok
    }

    fn forget(&mut self, name: &str) {
        if let Some(rt) = self.pods.remove(name) {
            for p in &rt.procs {
                if let Some(pid) = p.pid() {
                    self.by_pid.remove(&pid);
                }
            }
            self.timers.cancel_pod(name, &rt.uid, rt.procs.len());
            self.timers.cancel(&TimerKey::Cgroup {
                pod: name.to_string(),
                uid: rt.uid.clone(),
            });
            self.pid_files.forget_pod(name);
            self.draining.remove(name);
            for s in rt.sessions.into_iter().flatten() {
                self.by_session.remove(&s);
            }
        }
    }

    /// Stops every process of a pod for good: SIGTERM to each process
    /// tree now, SIGKILL after the grace period. The pod leaves the store
    /// once everything exited (if it is being deleted).
    pub fn stop_pod(&mut self, store: &mut Store, name: &str, now: Now, out: &mut Outbox) {
        let Some(pod) = store.pod(name) else { return };
        let grace = pod.spec.termination_grace_period.as_duration();
        let Some(rt) = self.pods.get_mut(name) else {
            return;
        };
        if rt.stopping {
            return;
        }
        rt.stopping = true;
        rt.stop_deadline = Some(now.mono + grace);
        if rt.procs.iter().any(Process::is_live) {
            out.notes.push(note(
                pod,
                false,
                "Killing",
                format!(
                    "Stopping processes (grace period {})",
                    crate::api::duration::format_duration(grace)
                ),
            ));
        }
        for idx in 0..rt.procs.len() {
            self.dispatch(store, name, idx, Event::Stop, now, out);
        }
        self.finish_if_done(store, name, now, out);
        self.flush(store, now, out);
    }

    /// Restarts the pod's processes in place if its spec changed since
    /// they were started (an `apply` on any node: in a cluster the change
    /// reaches the owning node through etcd). Idempotent: the node that
    /// took the change pokes it at once, the sync finds it later; either
    /// way the processes restart once. True if they restart.
    pub fn restart_if_spec_changed(
        &mut self,
        store: &mut Store,
        name: &str,
        now: Now,
        out: &mut Outbox,
    ) -> bool {
        let (Some(pod), Some(rt)) = (store.pod(name), self.pods.get_mut(name)) else {
            return false;
        };
        if rt.spec.generation == pod.metadata.generation || rt.uid != pod.metadata.uid {
            return false;
        }
        let seen = SpecSeen::of(pod);
        let changed = seen.hash != rt.spec.hash;
        rt.spec = seen;
        changed && self.restart_pod(store, name, now, out)
    }

    /// `drover restart pod`: stop each running process (SIGTERM, grace,
    /// SIGKILL) and start it again at once; the restart counts. False if
    /// the pod is not supervised here or is being stopped.
    pub fn restart_pod(
        &mut self,
        store: &mut Store,
        name: &str,
        now: Now,
        out: &mut Outbox,
    ) -> bool {
        let Some(pod) = store.pod(name) else {
            return false;
        };
        let Some(rt) = self.pods.get_mut(name) else {
            return false;
        };
        if rt.stopping {
            return false;
        }
        // Its processes start with the spec as it is now.
        rt.spec = SpecSeen::of(pod);
        let rt = &self.pods[name];
        let grace = pod.spec.termination_grace_period.as_duration();
        out.notes.push(note(
            pod,
            false,
            "Killing",
            format!(
                "Restarting processes (grace period {})",
                crate::api::duration::format_duration(grace)
            ),
        ));
        // The processes, and an init process that failed for good (its
        // pod never got further); init processes that completed stay so.
        let restarted = init::to_restart(rt, &pod.status);
        for idx in restarted {
            self.dispatch(store, name, idx, Event::Restart, now, out);
        }
        if self.pods[name]
            .procs
            .iter()
            .any(|p| p.phase == Phase::Waiting)
        {
            store.update_pod(name, |pod| {
                if pod.is_terminal() {
                    pod.status.phase = PodPhase::Running;
                }
                true
            });
            self.sync(store, now, out);
        }
        self.flush(store, now, out);
        true
    }

    /// `drover kill pod --signal S`: signal each running process tree.
    /// Returns how many were signalled.
    pub fn kill_pod(&mut self, store: &mut Store, name: &str, signal: Signal, now: Now) -> usize {
        let Some(rt) = self.pods.get(name) else {
            return 0;
        };
        let live = rt.procs.iter().filter(|p| p.is_live()).count();
        let mut out = Outbox::default();
        for idx in 0..rt.procs.len() {
            self.dispatch(store, name, idx, Event::Kill(signal), now, &mut out);
        }
        live
    }

    /// `drover up` on Ctrl-C: stop every pod, keep them in the store.
    /// Returns whether anything still has to exit.
    pub fn halt_all(&mut self, store: &mut Store, now: Now, out: &mut Outbox) -> bool {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for (name, rt) in &self.pods {
            if !rt.stopping {
                self.halted
                    .record(name, rt.procs.iter().map(Process::is_live).collect());
            }
        }
        for name in names {
            self.stop_pod(store, &name, now, out);
        }
        self.anything_running()
    }

    /// Once a halt stopped everything: the pods it stopped start again
    /// with the next daemon (see `halted.rs`). Daemon mode only: `up`
    /// forgets its pods on exit.
    pub fn park_halted(&mut self, store: &mut Store) {
        self.halted.park(store);
    }

    /// A second Ctrl-C: SIGKILL to everything still running.
    pub fn kill_all(&mut self) {
        let pids: Vec<i32> = self.by_pid.keys().copied().collect();
        for pid in pids {
            let _ = self.rt.signal_group(pid, Signal::KILL);
        }
        let cgroups: Vec<_> = self
            .pods
            .values()
            .filter_map(|rt| rt.cgroup.as_ref().map(|c| c.cg.clone()))
            .collect();
        for cg in cgroups {
            let _ = self.rt.kill_cgroup(&cg);
        }
    }

    /// Whether a process runs, or a finished pod's cgroup still has
    /// processes to see die.
    pub fn anything_running(&self) -> bool {
        self.pods.values().any(|rt| {
            rt.procs.iter().any(Process::is_live)
                || rt.cgroup.as_ref().is_some_and(|c| c.draining())
        })
    }

    /// CPU and memory of each running process of `pod`, measured now:
    /// from its cgroup (its whole tree) where it has one, else from its
    /// main pid.
    pub fn fill_usage(&self, pod: &mut Pod) {
        if pod.status.node_name.as_deref() != Some(self.cfg.node_name.as_str()) {
            return;
        }
        let Some(rt) = self
            .pods
            .get(&pod.metadata.name)
            .filter(|rt| rt.uid == pod.metadata.uid)
        else {
            return;
        };
        let names: Vec<String> = pod.spec.all_processes().map(|p| p.name.clone()).collect();
        let statuses = pod
            .status
            .init_processes
            .iter_mut()
            .chain(pod.status.processes.iter_mut());
        for (idx, st) in statuses.enumerate().take(names.len()) {
            let running = st.pid.filter(|p| self.by_pid.contains_key(&(*p as i32)));
            st.usage = running.and_then(|pid| {
                let measured = rt
                    .cgroup
                    .as_ref()
                    .and_then(|c| c.cg.process_of_pod(&names[idx], names.len()).ok())
                    .and_then(|pcg| self.rt.process_cgroup_usage(&pcg).ok());
                let by_pid = || self.rt.usage(pid as i32);
                match measured {
                    Some(crate::runtime::Usage {
                        memory_bytes: Some(memory_bytes),
                        cpu: Some(cpu),
                    }) => Some(crate::api::ProcessUsage {
                        cpu_seconds: cpu.as_secs_f64(),
                        memory_bytes,
                    }),
                    Some(_) | None => by_pid(),
                }
            });
        }
    }

    /// Once a pod's processes are all done: its cgroup goes once empty
    /// (its leftovers killed at the end of the grace period, or at once
    /// for a pod that completed), then a deleted pod leaves the store
    /// (and its logs go).
    fn finish_if_done(&mut self, store: &mut Store, name: &str, now: Now, out: &mut Outbox) {
        let Some(rt) = self.pods.get(name) else {
            return;
        };
        if rt.procs.iter().any(|p| p.phase != Phase::Done) {
            return;
        }
        // A start still under way (Stop came while it waited in the batch)
        // may yet run a process: the pod stays until its result came back
        // and the machine killed it, or that process would be nobody's.
        if self.pending_spawns.iter().any(|(pod, _, _)| pod == name) {
            return;
        }
        if !self.settle_cgroup(name, now) {
            return;
        }
        let Some(rt) = self.pods.get(name) else {
            return;
        };
        if !rt.stopping {
            return;
        }
        let deleting = store
            .pod(name)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        if deleting {
            self.forget(name);
            store.delete(crate::api::Kind::Pod, name);
            self.log_remover.remove(name);
            out.removed.push(name.to_string());
        }
    }

    /// The rules of process `idx` of `pod`, from its spec.
    fn rules(&self, pod: &Pod, idx: usize) -> Rules {
        let spec = pod.spec.process_at(idx).expect("process index in range");
        let role = if pod.spec.is_init(idx) {
            super::process::Role::Init
        } else {
            super::process::Role::Main
        };
        let timing = |p: &Option<crate::api::Probe>| p.as_ref().map(Into::into);
        let liveness_period = spec
            .liveness
            .as_ref()
            .map(|p| p.period.as_duration())
            .unwrap_or_default();
        Rules {
            pod: pod.metadata.name.clone(),
            process: spec.name.clone(),
            restart: pod.spec.restart_policy,
            grace: pod.spec.termination_grace_period.as_duration(),
            backoff: self.cfg.backoff,
            notify: spec.notify,
            watchdog: spec.watchdog.map(|w| w.as_duration()),
            probes: [
                timing(&spec.startup),
                timing(&spec.liveness),
                timing(&spec.readiness),
            ],
            liveness_spread: probes::spread(&pod.metadata.name, idx, liveness_period),
            role,
            pid_file: spec.pid_file.clone(),
        }
    }
}

fn note(pod: &Pod, warning: bool, reason: &str, message: String) -> Note {
    Note {
        pod: pod.metadata.name.clone(),
        pod_uid: pod.metadata.uid.clone(),
        warning,
        reason: reason.into(),
        message,
    }
}

/// One status entry per process and per init process, in spec order.
fn ensure_status(pod: &mut Pod) {
    fn fit(specs: &[crate::api::ProcessSpec], statuses: &mut Vec<ProcessStatus>) {
        if statuses.len() == specs.len() {
            return;
        }
        let old = std::mem::take(statuses);
        *statuses = specs
            .iter()
            .map(|s| {
                old.iter()
                    .find(|o| o.name == s.name)
                    .cloned()
                    .unwrap_or_else(|| {
                        ProcessStatus::waiting(
                            &s.name,
                            crate::api::ProcessReason::ContainerCreating,
                        )
                    })
            })
            .collect();
    }
    fit(&pod.spec.processes, &mut pod.status.processes);
    fit(&pod.spec.init_processes, &mut pod.status.init_processes);
}

/// Pod phase from its processes (Kubernetes): terminal once every process
/// is done for good, Succeeded only if all (init processes included)
/// exited 0; Running once a process (not an init process) started.
fn update_phase(pod: &mut Pod, procs: &[Process]) {
    if procs.iter().all(|p| p.phase == Phase::Done) && !procs.is_empty() {
        let all_ok = pod
            .status
            .init_processes
            .iter()
            .chain(&pod.status.processes)
            .all(|p| match &p.state {
                ProcessState::Terminated(t) => t.exit_code == Some(0),
                ProcessState::Running { .. } | ProcessState::Waiting { .. } => false,
            });
        pod.status.phase = if all_ok {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    } else if pod.status.processes.iter().any(|p| p.started) {
        pod.status.phase = PodPhase::Running;
    }
}

/// Ports held by the other pods on this node.
fn taken_ports(store: &Store, node: &str, except: &str) -> HashSet<u16> {
    store
        .pods()
        .filter(|p| {
            p.metadata.name != except
                && p.status.node_name.as_deref() == Some(node)
                && !p.is_terminal()
        })
        .flat_map(|p| p.status.ports.values().copied())
        .collect()
}

/// The marker value of the run of process `idx` now recorded in `pod`:
/// `INSTANCE/POD_UID/PROCESS/RESTART_COUNT`, so each run's descendants
/// are told apart from the next run's.
fn run_marker(instance: &str, pod: &Pod, idx: usize) -> String {
    let restarts = pod.process_status(idx).map_or(0, |p| p.restart_count);
    let name = pod.spec.process_at(idx).map_or("", |p| p.name.as_str());
    super::env::marker_value(instance, &pod.metadata.uid, name, restarts)
}

impl TimerKey {
    fn of(name: &str, uid: &str, idx: usize, kind: super::process::TimerKind) -> TimerKey {
        TimerKey::Process {
            pod: name.to_string(),
            uid: uid.to_string(),
            idx,
            kind,
        }
    }
}
