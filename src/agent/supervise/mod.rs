//! The executor of the node agent: turns pods bound to this node into
//! running processes and keeps them that way.
//!
//! It owns the per-process runtime facts the store does not hold (which
//! phase a process is in, its timers' generations) and writes everything
//! users see into the pod's status. It talks to the OS only through
//! [`ProcessRuntime`], and never reads a clock: `now` (monotonic, for
//! timers) and `wall` (for timestamps users see) are arguments, so tests
//! drive it with a fake runtime and made-up time.
//!
//! What it asks the daemon loop to do comes back as [`Effects`]: timers to
//! arm, adopted pids to watch through a pidfd, events to record.

use super::backoff::BackoffConfig;
use super::env::{self, EnvInputs};
use super::logs::LogDir;
use super::ports;
use super::probe::{Check, ProbeKind, ProbeState};
use crate::api::{Pod, PodPhase, ProcessState, ProcessStatus, RestartPolicy, TerminatedState};
use crate::runtime::{ExitReason, ProcessRuntime, SpawnError, SpawnRequest, Spawned};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

pub struct AgentConfig {
    pub node_name: String,
    pub logs: LogDir,
    pub backoff: BackoffConfig,
    /// Variables every process inherits (PATH, LANG, ...).
    pub base_env: Vec<(String, String)>,
    /// Check that an allocated port is really free on the host (off in
    /// tests of the state machine).
    pub probe_port_is_free: bool,
    /// NOTIFY_SOCKET for processes with `notify = true`.
    pub notify_socket: Option<std::path::PathBuf>,
    /// This daemon's instance id (persisted in its state dir), part of
    /// every process's marker.
    pub instance: String,
}

/// A timer the agent asked for. `gen` makes stale timers harmless: a
/// process whose phase moved on has a newer generation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The CrashLoopBackOff delay is over: start again.
    Backoff { pod: String, idx: usize, gen: u64 },
    /// The termination grace period is over: SIGKILL.
    Grace { pod: String, idx: usize, gen: u64 },
    /// A stopped run's escaped descendants (by marker) get SIGKILL.
    Sweep { marker: String },
    /// Time to run a probe (and to arm the next one).
    Probe(ProbeKey),
    /// An exec probe ran past its timeout.
    ProbeTimeout { pid: i32 },
    /// Time to check that a `watchdog` process pinged (WATCHDOG=1).
    Watchdog { pod: String, idx: usize, gen: u64 },
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

#[derive(Debug, Default)]
pub struct Effects {
    pub timers: Vec<(Instant, Timer)>,
    /// Pids adopted after a daemon restart: not our children, so their exit
    /// is learned through a pidfd, not SIGCHLD.
    pub watch: Vec<i32>,
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

/// Which probe of which run a result belongs to (`gen` tells a stale
/// result from a previous run apart).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeKey {
    pub pod: String,
    pub idx: usize,
    pub kind: ProbeKind,
    pub gen: u64,
}

impl Effects {
    fn note(&mut self, pod: &Pod, warning: bool, reason: &str, message: String) {
        self.notes.push(Note {
            pod: pod.metadata.name.clone(),
            pod_uid: pod.metadata.uid.clone(),
            warning,
            reason: reason.into(),
            message,
        });
    }
}

/// Why a running process is being stopped, and what comes after.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Then {
    /// Start it again at once (`drover restart pod`).
    Restart { reason: String },
    /// Leave it stopped (pod deleted, or `drover up` shutting down).
    Finish,
    /// A liveness or startup probe failed: what follows is up to the
    /// restart policy and the backoff, as for a crash.
    Failed { reason: String, message: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Should be started at the next sync.
    Idle,
    Running {
        pid: i32,
    },
    Backoff,
    /// SIGTERM sent to the group; SIGKILL follows when the grace timer
    /// fires (`killed`).
    Stopping {
        pid: i32,
        then: Then,
        killed: bool,
    },
    /// Will not run again.
    Done,
}

#[derive(Debug)]
struct Proc {
    phase: Phase,
    gen: u64,
    /// Restarts in a row, for the backoff.
    consecutive: u32,
    started: Option<Instant>,
    /// Probe results of the current run, by `ProbeKind::index()`.
    probes: [ProbeState; 3],
    /// A check of that kind is running (the next period skips, rather
    /// than piling checks on a hung server).
    probe_inflight: [bool; 3],
    /// The startup probe succeeded (or there is none): liveness and
    /// readiness may run.
    startup_done: bool,
    /// Last WATCHDOG=1 of this run.
    last_ping: Option<Instant>,
    /// READY=1 came and the watchdog timer runs.
    watchdog_armed: bool,
}

impl Proc {
    fn new() -> Proc {
        Proc {
            phase: Phase::Idle,
            gen: 0,
            consecutive: 0,
            started: None,
            probes: Default::default(),
            probe_inflight: [false; 3],
            startup_done: false,
            last_ping: None,
            watchdog_armed: false,
        }
    }
}

#[derive(Debug)]
struct PodRt {
    uid: String,
    procs: Vec<Proc>,
    /// Set once the pod is being stopped for good.
    stopping: bool,
}

pub struct Agent<R: ProcessRuntime> {
    rt: R,
    cfg: AgentConfig,
    pods: HashMap<String, PodRt>,
    by_pid: HashMap<i32, (String, usize)>,
    /// Exec probes running now.
    probe_pids: HashMap<i32, ProbeKey>,
}

impl<R: ProcessRuntime> Agent<R> {
    pub fn new(rt: R, cfg: AgentConfig) -> Agent<R> {
        Agent {
            rt,
            cfg,
            pods: HashMap::new(),
            by_pid: HashMap::new(),
            probe_pids: HashMap::new(),
        }
    }

    pub fn runtime(&mut self) -> &mut R {
        &mut self.rt
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

    /// Brings every pod bound to this node in line with the store: new
    /// pods start (or are re-adopted after a daemon restart), deleted pods
    /// stop, idle processes start, vanished pods are stopped.
    pub fn sync(&mut self, store: &mut Store, now: Instant, wall: DateTime<Utc>, fx: &mut Effects) {
        let node = self.cfg.node_name.clone();
        let mine: Vec<String> = store
            .pods()
            .filter(|p| p.status.node_name.as_deref() == Some(node.as_str()))
            .filter(|p| self.needs_attention(p))
            .map(|p| p.metadata.name.clone())
            .collect();
        // Processes to start are gathered over every pod and started as
        // one batch: the runtime may start them in parallel.
        let mut batch = Vec::new();
        for name in mine {
            self.sync_pod(store, &name, now, wall, fx, &mut batch);
        }
        self.start_batch(store, batch, now, wall, fx);
        // A pod that left the store without being stopped (e.g. the store
        // was edited by hand): stop its processes, nobody will see them.
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|n| store.pod(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            if let Some(rt) = self.pods.remove(&name) {
                for p in rt.procs {
                    if let Phase::Running { pid } | Phase::Stopping { pid, .. } = p.phase {
                        let _ = self.rt.signal_group(pid, SIGKILL);
                        self.by_pid.remove(&pid);
                    }
                }
            }
        }
    }

    fn needs_attention(&self, pod: &Pod) -> bool {
        match self.pods.get(&pod.metadata.name) {
            None => true,
            Some(rt) => {
                (pod.metadata.deletion_timestamp.is_some() && !rt.stopping)
                    || rt.procs.iter().any(|p| p.phase == Phase::Idle)
                    || rt.uid != pod.metadata.uid
            }
        }
    }

    fn sync_pod(
        &mut self,
        store: &mut Store,
        name: &str,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
        batch: &mut Vec<(String, usize, SpawnRequest)>,
    ) {
        let Some(pod) = store.pod(name) else { return };
        // A pod re-created under the same name is a different pod.
        if self
            .pods
            .get(name)
            .is_some_and(|rt| rt.uid != pod.metadata.uid)
        {
            self.forget(name);
        }
        let taken = if pod.status.ports.is_empty() && !pod.spec.ports.is_empty() {
            taken_ports(store, &self.cfg.node_name, name)
        } else {
            HashSet::new()
        };
        if !self.pods.contains_key(name) {
            let rt = self.adopt_or_prepare(store, name, now, wall, fx);
            self.pods.insert(name.to_string(), rt);
        }
        let deleting = store
            .pod(name)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        if deleting {
            self.stop_pod(store, name, now, fx);
            return;
        }
        store.update_pod(name, |pod| {
            if pod.is_terminal() {
                return false;
            }
            if pod.status.ports.is_empty() && !pod.spec.ports.is_empty() {
                let check = self.cfg.probe_port_is_free;
                match ports::allocate(&pod.spec.ports, &taken, |p| {
                    !check || ports::tcp_port_is_free(p)
                }) {
                    Ok(p) => pod.status.ports = p,
                    Err(msg) => {
                        pod.status.reason = Some("PortsUnavailable".into());
                        pod.status.message = Some(msg.clone());
                        fx.note(pod, true, "FailedScheduling", msg);
                        return true;
                    }
                }
            }
            let idle: Vec<usize> = self.pods[name]
                .procs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.phase == Phase::Idle)
                .map(|(i, _)| i)
                .collect();
            for idx in idle {
                if let Some(req) = self.prepare_start(pod, idx, now, wall, fx) {
                    batch.push((name.to_string(), idx, req));
                }
            }
            true
        });
    }

    /// Starts what `sync` gathered, then records each outcome in its pod.
    fn start_batch(
        &mut self,
        store: &mut Store,
        batch: Vec<(String, usize, SpawnRequest)>,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        if batch.is_empty() {
            return;
        }
        let (keys, reqs): (Vec<(String, usize)>, Vec<SpawnRequest>) = batch
            .into_iter()
            .map(|(name, idx, req)| ((name, idx), req))
            .unzip();
        let results = self.rt.spawn_many(&reqs);
        for ((name, idx), result) in keys.into_iter().zip(results) {
            store.update_pod(&name, |pod| {
                self.finish_start(pod, idx, result, now, wall, fx);
                true
            });
        }
    }

    /// First sight of a pod: a fresh one gets idle processes; one whose
    /// status names live pids (the daemon restarted) has them re-adopted,
    /// after checking the pid still is the process we started.
    fn adopt_or_prepare(
        &mut self,
        store: &mut Store,
        name: &str,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) -> PodRt {
        let pod = store.pod(name).expect("pod exists");
        let mut rt = PodRt {
            uid: pod.metadata.uid.clone(),
            procs: pod.spec.processes.iter().map(|_| Proc::new()).collect(),
            stopping: false,
        };
        if pod.is_terminal() {
            for p in &mut rt.procs {
                p.phase = Phase::Done;
            }
            return rt;
        }
        let mut lost: Vec<usize> = vec![];
        for (idx, status) in pod.status.processes.iter().enumerate().take(rt.procs.len()) {
            let (Some(pid), Some(identity)) = (status.pid, status.identity.as_ref()) else {
                continue;
            };
            let pid = pid as i32;
            let alive = self.rt.identity(pid).as_ref() == Some(identity);
            let proc = &mut rt.procs[idx];
            if alive {
                proc.phase = Phase::Running { pid };
                let ran = match status.state {
                    ProcessState::Running { started_at } => {
                        (wall - started_at).to_std().unwrap_or_default()
                    }
                    _ => Duration::ZERO,
                };
                proc.started = now.checked_sub(ran).or(Some(now));
                self.by_pid.insert(pid, (name.to_string(), idx));
                fx.watch.push(pid);
                probes::arm(proc, name, idx, &pod.spec.processes[idx], now, fx);
            } else if matches!(status.state, ProcessState::Running { .. }) {
                lost.push(idx);
            }
        }
        if !lost.is_empty() {
            store.update_pod(name, |pod| {
                for idx in lost {
                    let started_at = match pod.status.processes[idx].state {
                        ProcessState::Running { started_at } => Some(started_at),
                        _ => None,
                    };
                    let t = TerminatedState {
                        exit_code: None,
                        signal: None,
                        reason: "Unknown".into(),
                        message: Some(
                            "the process ended while the drover daemon was not running".into(),
                        ),
                        started_at,
                        finished_at: wall,
                    };
                    let pname = pod.spec.processes[idx].name.clone();
                    fx.note(
                        pod,
                        true,
                        "ProcessLost",
                        format!("process {pname} ended while the daemon was down"),
                    );
                    self.after_run(pod, &mut rt, idx, t, None, Duration::ZERO, now, fx);
                }
                true
            });
        }
        rt
    }

    fn forget(&mut self, name: &str) {
        if let Some(rt) = self.pods.remove(name) {
            for p in rt.procs {
                if let Phase::Running { pid } | Phase::Stopping { pid, .. } = p.phase {
                    self.by_pid.remove(&pid);
                }
            }
        }
    }

    /// Starts process `idx` of `pod` (its runtime entry must exist).
    fn start(
        &mut self,
        pod: &mut Pod,
        idx: usize,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        if let Some(req) = self.prepare_start(pod, idx, now, wall, fx) {
            let result = self.rt.spawn(&req);
            self.finish_start(pod, idx, result, now, wall, fx);
        }
    }

    /// Everything before the spawn of process `idx`: its environment, its
    /// argv, a fresh log. None if that already failed (recorded as a
    /// failed start, with the usual backoff).
    fn prepare_start(
        &mut self,
        pod: &mut Pod,
        idx: usize,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Option<SpawnRequest> {
        ensure_status(pod);
        let name = pod.metadata.name.clone();
        let spec = &pod.spec.processes[idx];
        let environment = self.process_env(pod, idx);
        let argv = env::expand_argv(&spec.command, &environment);
        let st = &pod.status.processes[idx];
        let first_run = st.restart_count == 0 && st.last_state.is_none() && !st.started;
        let log = if first_run {
            self.cfg.logs.first_run(&name, &spec.name)
        } else {
            self.cfg.logs.start_run(&name, &spec.name)
        };
        let log = log.map_err(|source| SpawnError::LogFile {
            path: self.cfg.logs.current(&name, &spec.name),
            source,
        });
        match log {
            Ok(log_path) => Some(SpawnRequest {
                argv,
                env: environment,
                working_dir: spec.working_dir.clone(),
                user: spec.user.clone(),
                group: spec.group.clone(),
                log_path,
                ..Default::default()
            }),
            Err(err) => {
                self.start_failed(pod, idx, err, now, wall, fx);
                None
            }
        }
    }

    /// Records how the spawn of process `idx` went.
    fn finish_start(
        &mut self,
        pod: &mut Pod,
        idx: usize,
        result: Result<Spawned, SpawnError>,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let name = pod.metadata.name.clone();
        let spec = pod.spec.processes[idx].clone();
        match result {
            Ok(spawned) => {
                let rt = self.pods.get_mut(&name).expect("runtime entry");
                let proc = &mut rt.procs[idx];
                proc.phase = Phase::Running { pid: spawned.pid };
                proc.started = Some(now);
                proc.gen += 1;
                probes::arm(proc, &name, idx, &spec, now, fx);
                self.by_pid.insert(spawned.pid, (name.clone(), idx));
                let st = &mut pod.status.processes[idx];
                st.pid = Some(spawned.pid as u32);
                st.identity = Some(spawned.identity);
                st.state = ProcessState::Running { started_at: wall };
                st.started = true;
                // Without readiness or startup probes, or READY=1 to wait
                // for, a running process is ready.
                st.ready = spec.readiness.is_none() && spec.startup.is_none() && !spec.notify;
                pod.status.phase = PodPhase::Running;
                pod.status.start_time.get_or_insert(wall);
                pod.status.reason = None;
                pod.status.message = None;
                fx.note(
                    pod,
                    false,
                    "Started",
                    format!("Started process {}", spec.name),
                );
            }
            Err(err) => self.start_failed(pod, idx, err, now, wall, fx),
        }
    }

    /// A start that failed before exec (missing binary, unknown user):
    /// the process counts as having run and failed, with a reason users
    /// can act on, and is retried per restart policy with backoff so a
    /// typo is visible rather than a silent crash loop.
    fn start_failed(
        &mut self,
        pod: &mut Pod,
        idx: usize,
        err: SpawnError,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let pname = pod.spec.processes[idx].name.clone();
        fx.note(
            pod,
            true,
            "Failed",
            format!("Error: {err} (process {pname})"),
        );
        let t = TerminatedState {
            exit_code: Some(128),
            signal: None,
            reason: err.reason().into(),
            message: Some(err.to_string()),
            started_at: None,
            finished_at: wall,
        };
        let name = pod.metadata.name.clone();
        let mut rt = self.pods.remove(&name).expect("runtime entry");
        self.after_run(
            pod,
            &mut rt,
            idx,
            t,
            Some(err.to_string()),
            Duration::ZERO,
            now,
            fx,
        );
        self.pods.insert(name, rt);
    }

    /// A child was reaped (or an adopted process's pidfd fired, `exit` is
    /// then None: its status is not ours to read).
    pub fn on_exit(
        &mut self,
        store: &mut Store,
        pid: i32,
        exit: Option<ExitReason>,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) -> bool {
        if let Some(key) = self.probe_pids.remove(&pid) {
            let _ = self.rt.signal_group(pid, SIGKILL);
            let result = probes::exec_result(exit);
            self.on_probe_result(store, key, result, now, wall, fx);
            return true;
        }
        let Some((name, idx)) = self.by_pid.remove(&pid) else {
            return false;
        };
        // Whatever the main process left in its group goes with it, as
        // systemd does for a service's control group.
        let _ = self.rt.signal_group(pid, SIGKILL);
        let Some(mut rt) = self.pods.remove(&name) else {
            return true;
        };
        store.update_pod(&name, |pod| {
            ensure_status(pod);
            let started_at = match pod.status.processes[idx].state {
                ProcessState::Running { started_at } => Some(started_at),
                _ => None,
            };
            let ran_for = rt.procs[idx]
                .started
                .map(|s| now.saturating_duration_since(s))
                .unwrap_or_default();
            let (exit_code, signal) = match exit {
                Some(ExitReason::Code(c)) => (Some(c), None),
                Some(ExitReason::Signal(s)) => (Some(128 + s), Some(s)),
                None => (None, None),
            };
            let phase = rt.procs[idx].phase.clone();
            match phase {
                Phase::Stopping { then, .. } => {
                    let reason = match (&then, exit) {
                        (Then::Restart { reason }, _) => reason.clone(),
                        (Then::Failed { reason, .. }, _) => reason.clone(),
                        (Then::Finish, Some(ExitReason::Code(0))) => "Completed".into(),
                        (Then::Finish, _) => "Killed".into(),
                    };
                    let message = match &then {
                        Then::Failed { message, .. } => Some(message.clone()),
                        _ => None,
                    };
                    let t = TerminatedState {
                        exit_code,
                        signal,
                        reason,
                        message,
                        started_at,
                        finished_at: wall,
                    };
                    // Descendants that left the process group (double
                    // fork + setsid) still carry this run's marker: they
                    // get SIGTERM now and SIGKILL when the grace period
                    // ends, without holding up the restart or the removal
                    // (the next run has a different marker).
                    let marker = run_marker(&self.cfg.instance, pod, &rt.uid, idx);
                    let leftovers = self.rt.marked(env::MARKER, &marker);
                    if !leftovers.is_empty() {
                        for p in &leftovers {
                            let _ = self.rt.signal(*p, SIGTERM);
                        }
                        let grace = pod.spec.termination_grace_period.as_duration();
                        fx.timers.push((now + grace, Timer::Sweep { marker }));
                    }
                    if let Then::Failed { .. } = then {
                        self.after_run(pod, &mut rt, idx, t, None, ran_for, now, fx);
                        update_phase(pod, &rt);
                        return true;
                    }
                    set_terminated(pod, idx, t);
                    rt.procs[idx].gen += 1;
                    match then {
                        Then::Restart { .. } => {
                            pod.status.processes[idx].restart_count += 1;
                            rt.procs[idx].phase = Phase::Idle;
                            self.pods
                                .insert(name.clone(), std::mem::replace(&mut rt, empty_rt()));
                            self.start(pod, idx, now, wall, fx);
                            rt = self.pods.remove(&name).expect("runtime entry");
                        }
                        Then::Finish | Then::Failed { .. } => rt.procs[idx].phase = Phase::Done,
                    }
                }
                _ => {
                    let reason = match exit {
                        Some(ExitReason::Code(0)) => "Completed",
                        Some(_) => "Error",
                        None => "Unknown",
                    };
                    let t = TerminatedState {
                        exit_code,
                        signal,
                        reason: reason.into(),
                        message: None,
                        started_at,
                        finished_at: wall,
                    };
                    self.after_run(pod, &mut rt, idx, t, None, ran_for, now, fx);
                }
            }
            update_phase(pod, &rt);
            true
        });
        let finished = rt.stopping && rt.procs.iter().all(|p| p.phase == Phase::Done);
        self.pods.insert(name.clone(), rt);
        if finished {
            self.finish_pod(store, &name, fx);
        }
        true
    }

    /// Decides what follows a run that ended on its own (or never began):
    /// restart now, restart after a backoff, or stay terminated.
    #[allow(clippy::too_many_arguments)]
    fn after_run(
        &mut self,
        pod: &mut Pod,
        rt: &mut PodRt,
        idx: usize,
        t: TerminatedState,
        start_error: Option<String>,
        ran_for: Duration,
        now: Instant,
        fx: &mut Effects,
    ) {
        let wall = t.finished_at;
        ensure_status(pod);
        let failed = t.exit_code != Some(0);
        let restart = !rt.stopping
            && match pod.spec.restart_policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Never => false,
            };
        let pname = pod.spec.processes[idx].name.clone();
        let proc = &mut rt.procs[idx];
        proc.gen += 1;
        if !restart {
            proc.phase = Phase::Done;
            set_terminated(pod, idx, t);
            update_phase(pod, rt);
            return;
        }
        let (delay, consecutive) = self.cfg.backoff.next_delay(proc.consecutive, ran_for);
        proc.consecutive = consecutive;
        let st = &mut pod.status.processes[idx];
        st.last_state = Some(t);
        st.pid = None;
        st.identity = None;
        st.ready = false;
        if delay.is_zero() {
            // Counted when it happens, as Kubernetes shows restarts done.
            st.restart_count += 1;
            proc.phase = Phase::Idle;
            let name = pod.metadata.name.clone();
            // start() needs the runtime entry in the map.
            self.pods
                .insert(name.clone(), std::mem::replace(rt, empty_rt()));
            self.start(pod, idx, now, wall, fx);
            *rt = self.pods.remove(&name).expect("runtime entry");
        } else {
            proc.phase = Phase::Backoff;
            let reason = match &start_error {
                Some(_)
                    if st
                        .last_state
                        .as_ref()
                        .is_some_and(|l| l.reason == "CreateContainerConfigError") =>
                {
                    "CreateContainerConfigError"
                }
                _ => "CrashLoopBackOff",
            };
            let message = match start_error {
                Some(e) => format!(
                    "{e}; back-off {} restarting process={pname} pod={}",
                    crate::api::duration::format_duration(delay),
                    pod.metadata.name
                ),
                None => format!(
                    "back-off {} restarting failed process={pname} pod={}",
                    crate::api::duration::format_duration(delay),
                    pod.metadata.name
                ),
            };
            st.state = ProcessState::Waiting {
                reason: reason.into(),
                message: Some(message.clone()),
            };
            fx.note(
                pod,
                true,
                "BackOff",
                format!("Back-off restarting failed process {pname}"),
            );
            fx.timers.push((
                now + delay,
                Timer::Backoff {
                    pod: pod.metadata.name.clone(),
                    idx,
                    gen: proc.gen,
                },
            ));
        }
        update_phase(pod, rt);
    }

    pub fn on_timer(
        &mut self,
        store: &mut Store,
        timer: Timer,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        match timer {
            Timer::Backoff { pod, idx, gen } => {
                let current = self
                    .pods
                    .get(&pod)
                    .and_then(|rt| rt.procs.get(idx))
                    .map(|p| (p.gen, p.phase.clone()));
                if current != Some((gen, Phase::Backoff)) {
                    return;
                }
                store.update_pod(&pod, |p| {
                    ensure_status(p);
                    p.status.processes[idx].restart_count += 1;
                    self.start(p, idx, now, wall, fx);
                    true
                });
            }
            Timer::Grace { pod, idx, gen } => {
                let Some(rt) = self.pods.get_mut(&pod) else {
                    return;
                };
                let Some(proc) = rt.procs.get_mut(idx) else {
                    return;
                };
                if proc.gen != gen {
                    return;
                }
                let Phase::Stopping {
                    pid,
                    then,
                    killed: false,
                } = proc.phase.clone()
                else {
                    return;
                };
                proc.phase = Phase::Stopping {
                    pid,
                    then,
                    killed: true,
                };
                let uid = rt.uid.clone();
                let _ = self.rt.signal_group(pid, SIGKILL);
                if let Some(p) = store.pod(&pod) {
                    let marker = run_marker(&self.cfg.instance, p, &uid, idx);
                    for p in self.rt.marked(env::MARKER, &marker) {
                        let _ = self.rt.signal(p, SIGKILL);
                    }
                }
            }
            Timer::Sweep { marker } => {
                for p in self.rt.marked(env::MARKER, &marker) {
                    let _ = self.rt.signal(p, SIGKILL);
                }
            }
            Timer::Probe(key) => self.probe_due(store, key, now, fx),
            Timer::Watchdog { pod, idx, gen } => self.watchdog_due(store, &pod, idx, gen, now, fx),
            Timer::ProbeTimeout { pid } => self.probe_timed_out(store, pid, now, wall, fx),
        }
    }

    /// Stops every process of a pod for good: SIGTERM to each process
    /// group now, SIGKILL after the grace period. The pod leaves the store
    /// once everything exited (if it is being deleted).
    pub fn stop_pod(&mut self, store: &mut Store, name: &str, now: Instant, fx: &mut Effects) {
        let Some(pod) = store.pod(name) else { return };
        let grace = pod.spec.termination_grace_period.as_duration();
        let Some(rt) = self.pods.get_mut(name) else {
            return;
        };
        if rt.stopping {
            return;
        }
        rt.stopping = true;
        let mut signalled = vec![];
        for (idx, proc) in rt.procs.iter_mut().enumerate() {
            proc.gen += 1;
            match proc.phase {
                Phase::Running { pid } => {
                    proc.phase = Phase::Stopping {
                        pid,
                        then: Then::Finish,
                        killed: false,
                    };
                    signalled.push((pid, idx, proc.gen));
                }
                Phase::Stopping { .. } => {}
                Phase::Idle | Phase::Backoff | Phase::Done => proc.phase = Phase::Done,
            }
        }
        for (pid, idx, gen) in &signalled {
            let _ = self.rt.signal_group(*pid, SIGTERM);
            fx.timers.push((
                now + grace,
                Timer::Grace {
                    pod: name.to_string(),
                    idx: *idx,
                    gen: *gen,
                },
            ));
        }
        if let Some(pod) = store.pod(name) {
            if !signalled.is_empty() {
                let pod = pod.clone();
                fx.note(
                    &pod,
                    false,
                    "Killing",
                    format!(
                        "Stopping processes (grace period {})",
                        crate::api::duration::format_duration(grace)
                    ),
                );
            }
        }
        let all_done = self.pods[name].procs.iter().all(|p| p.phase == Phase::Done);
        if all_done {
            self.finish_pod(store, name, fx);
        }
    }

    /// `drover restart pod`: stop each running process (SIGTERM, grace,
    /// SIGKILL) and start it again at once; the restart counts.
    pub fn restart_pod(
        &mut self,
        store: &mut Store,
        name: &str,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) -> bool {
        let Some(pod) = store.pod(name) else {
            return false;
        };
        let grace = pod.spec.termination_grace_period.as_duration();
        if self.pods.get(name).is_some_and(|rt| !rt.stopping) {
            let pod = pod.clone();
            fx.note(
                &pod,
                false,
                "Killing",
                format!(
                    "Restarting processes (grace period {})",
                    crate::api::duration::format_duration(grace)
                ),
            );
        }
        let Some(rt) = self.pods.get_mut(name) else {
            return false;
        };
        if rt.stopping {
            return false;
        }
        let mut idle = false;
        for (idx, proc) in rt.procs.iter_mut().enumerate() {
            proc.gen += 1;
            proc.consecutive = 0;
            match proc.phase {
                Phase::Running { pid } => {
                    proc.phase = Phase::Stopping {
                        pid,
                        then: Then::Restart {
                            reason: "Restarted".into(),
                        },
                        killed: false,
                    };
                    let _ = self.rt.signal_group(pid, SIGTERM);
                    fx.timers.push((
                        now + grace,
                        Timer::Grace {
                            pod: name.to_string(),
                            idx,
                            gen: proc.gen,
                        },
                    ));
                }
                Phase::Backoff | Phase::Done => {
                    proc.phase = Phase::Idle;
                    idle = true;
                }
                Phase::Idle | Phase::Stopping { .. } => {}
            }
        }
        if idle {
            store.update_pod(name, |pod| {
                if pod.status.phase == PodPhase::Succeeded || pod.status.phase == PodPhase::Failed {
                    pod.status.phase = PodPhase::Running;
                }
                true
            });
            self.sync(store, now, wall, fx);
        }
        true
    }

    /// `drover kill pod --signal S`: signal each running process group.
    pub fn kill_pod(&mut self, name: &str, signal: i32) -> usize {
        let Some(rt) = self.pods.get(name) else {
            return 0;
        };
        let pids: Vec<i32> = rt
            .procs
            .iter()
            .filter_map(|p| match p.phase {
                Phase::Running { pid } | Phase::Stopping { pid, .. } => Some(pid),
                _ => None,
            })
            .collect();
        for pid in &pids {
            let _ = self.rt.signal_group(*pid, signal);
        }
        pids.len()
    }

    /// `drover up` on Ctrl-C: stop every pod, keep them in the store.
    /// Returns whether anything still has to exit.
    pub fn halt_all(&mut self, store: &mut Store, now: Instant, fx: &mut Effects) -> bool {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            self.stop_pod(store, &name, now, fx);
        }
        self.anything_running()
    }

    pub fn anything_running(&self) -> bool {
        self.pods.values().any(|rt| {
            rt.procs
                .iter()
                .any(|p| matches!(p.phase, Phase::Running { .. } | Phase::Stopping { .. }))
        })
    }

    fn finish_pod(&mut self, store: &mut Store, name: &str, fx: &mut Effects) {
        let deleting = store
            .pod(name)
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        if deleting {
            self.forget(name);
            store.delete(crate::api::Kind::Pod, name);
            let _ = self.cfg.logs.remove_pod(name);
            fx.removed.push(name.to_string());
        }
    }
}

fn empty_rt() -> PodRt {
    PodRt {
        uid: String::new(),
        procs: vec![],
        stopping: false,
    }
}

/// The marker value of the run of process `idx` now recorded in `pod`:
/// `POD_UID/PROCESS/RESTART_COUNT`, so each run's descendants are told
/// apart from the next run's.
fn run_marker(instance: &str, pod: &Pod, uid: &str, idx: usize) -> String {
    let restarts = pod
        .status
        .processes
        .get(idx)
        .map(|p| p.restart_count)
        .unwrap_or(0);
    env::marker_value(instance, uid, &pod.spec.processes[idx].name, restarts)
}

/// One status entry per process, in spec order.
fn ensure_status(pod: &mut Pod) {
    if pod.status.processes.len() != pod.spec.processes.len() {
        let old = std::mem::take(&mut pod.status.processes);
        pod.status.processes = pod
            .spec
            .processes
            .iter()
            .map(|s| {
                old.iter()
                    .find(|o| o.name == s.name)
                    .cloned()
                    .unwrap_or_else(|| ProcessStatus::waiting(&s.name, "ContainerCreating"))
            })
            .collect();
    }
}

fn set_terminated(pod: &mut Pod, idx: usize, t: TerminatedState) {
    let st = &mut pod.status.processes[idx];
    st.pid = None;
    st.identity = None;
    st.ready = false;
    st.last_state = Some(t.clone());
    st.state = ProcessState::Terminated(t);
}

/// Pod phase from its processes (Kubernetes): terminal once every process
/// is done for good, Succeeded only if all exited 0.
fn update_phase(pod: &mut Pod, rt: &PodRt) {
    if rt.procs.iter().all(|p| p.phase == Phase::Done) && !rt.procs.is_empty() {
        let all_ok = pod.status.processes.iter().all(|p| match &p.state {
            ProcessState::Terminated(t) => t.exit_code == Some(0),
            _ => false,
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

mod probes;

mod notify;

mod recover;

#[cfg(test)]
mod tests;
