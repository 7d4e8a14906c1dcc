//! Feeding one event to one process's state machine and applying what it
//! decided. Effects that produce events of their own (a spawn's result, a
//! watch that cannot be had) feed them back here, in order, until none is
//! left; spawns wait in a batch the runtime may start in parallel
//! ([`Agent::flush`]).

use super::*;
use crate::agent::env;
use crate::agent::process::{step, Effect, Exit, StartFailure, StatusChange};
use crate::api::RestartPolicy;
use crate::runtime::{ExitReason, SpawnError, SpawnRequest, Watch};
use std::collections::VecDeque;

impl<R: ProcessRuntime> Agent<R> {
    /// Feeds `event` to process `idx` of pod `name`, then whatever its
    /// effects report back.
    pub(super) fn dispatch(
        &mut self,
        store: &mut Store,
        name: &str,
        idx: usize,
        event: Event,
        now: Now,
        out: &mut Outbox,
    ) {
        let mut queue = VecDeque::from([(idx, event)]);
        while let Some((idx, event)) = queue.pop_front() {
            let Some(pod) = store.pod(name) else { return };
            if idx >= pod.spec.process_count() {
                return;
            }
            let rules = self.rules(pod, idx);
            let Some(rt) = self.pods.get_mut(name) else {
                return;
            };
            let Some(state) = rt.procs.get(idx) else {
                return;
            };
            let (next, effects) = step(state, &rules, event, now);
            let (old, new) = (state.pid(), next.pid());
            let awaiting = matches!(next.phase, Phase::Forking { exited: true, .. });
            rt.procs[idx] = next;
            if old != new {
                if let Some(old) = old {
                    self.by_pid.remove(&old);
                }
                if let Some(new) = new {
                    self.by_pid.insert(new, (name.to_string(), idx));
                }
            }
            if new.is_none() {
                if let Some(session) = rt.sessions[idx].take() {
                    self.by_session.remove(&session);
                }
            }
            if !awaiting {
                self.end_pid_file_wait(name, idx);
            }
            self.apply(store, name, idx, effects, now, out, &mut queue);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        store: &mut Store,
        name: &str,
        idx: usize,
        effects: Vec<Effect>,
        now: Now,
        out: &mut Outbox,
        queue: &mut VecDeque<(usize, Event)>,
    ) {
        let uid = match self.pods.get(name) {
            Some(rt) => rt.uid.clone(),
            None => return,
        };
        let run = self.pods[name].procs[idx].run;
        let pcg = self.process_cgroup(store, name, idx);
        // One SIGKILL to the process's cgroup per batch is enough.
        let mut killed = false;
        let mut status = Vec::new();
        for effect in effects {
            // Status changes are written together, but before anything
            // that reads them (a spawn's marker and log are the new run's).
            if !matches!(effect, Effect::Status(_)) && !status.is_empty() {
                self.write_status(store, name, idx, std::mem::take(&mut status), now);
            }
            match effect {
                Effect::Spawn => match self.prepare_spawn(store, name, idx) {
                    Ok(req) => {
                        self.rt.will_spawn(&req);
                        self.pending_spawns.push((name.to_string(), idx, req));
                    }
                    Err(e) => queue.push_back((idx, Event::StartFailed(start_failure(&e)))),
                },
                Effect::Signal { pid, signal } => {
                    self.signal_tree(name, pcg.as_ref(), pid, signal, now, &mut killed);
                }
                Effect::Sweep { grace } => match &pcg {
                    Some(pcg) => self.sweep_cgroup(name, pcg, now, &mut killed),
                    None => {
                        if let Some(pod) = store.pod(name) {
                            let marker = run_marker(&self.cfg.instance, pod, idx);
                            self.sweeper.add(marker, grace, now.mono);
                            self.arm_sweep(now);
                        }
                    }
                },
                Effect::AwaitPidFile => {
                    if let Some(event) = self.await_pid_file(store, name, idx) {
                        queue.push_back((idx, event));
                    }
                }
                Effect::Watch { pid, identity } => {
                    if let Some(event) = self.watch(name, idx, pid, &identity) {
                        queue.push_back((idx, event));
                    }
                }
                Effect::Recheck { pid, identity } => {
                    let event = if self.rt.identity(pid).as_ref() != Some(&identity) {
                        Event::AdoptedExited
                    } else {
                        self.watch(name, idx, pid, &identity)
                            .unwrap_or(Event::Watching)
                    };
                    queue.push_back((idx, event));
                }
                Effect::Arm { timer, at } => {
                    let key = TimerKey::of(name, &uid, idx, timer);
                    self.timers.arm(key, at, run);
                }
                Effect::Cancel(timer) => self.timers.cancel(&TimerKey::of(name, &uid, idx, timer)),
                Effect::Probe(kind) => {
                    if let Some(event) = self.start_probe(store, name, idx, kind, run, now, out) {
                        queue.push_back((idx, event));
                    }
                }
                Effect::Status(change) => status.push(change),
                Effect::Event {
                    warning,
                    reason,
                    message,
                } => {
                    if let Some(pod) = store.pod(name) {
                        out.notes.push(note(pod, warning, reason, message));
                    }
                }
            }
        }
        self.write_status(store, name, idx, status, now);
        self.finish_if_done(store, name, now, out);
    }

    /// Applies one step's status changes to the pod in one store write,
    /// then the pod's phase.
    fn write_status(
        &mut self,
        store: &mut Store,
        name: &str,
        idx: usize,
        changes: Vec<StatusChange>,
        now: Now,
    ) {
        if changes.is_empty() {
            return;
        }
        let Some(rt) = self.pods.get_mut(name) else {
            return;
        };
        let procs = &rt.procs;
        let mut session = None;
        store.update_pod(name, |pod| {
            ensure_status(pod);
            let phase_before = pod.status.phase;
            let mut changed = false;
            for change in changes {
                changed |= apply_status(pod, idx, change, now, &mut session);
            }
            update_phase(pod, procs);
            changed || pod.status.phase != phase_before
        });
        if let Some(s) = session {
            rt.sessions[idx] = Some(s);
            self.by_session.insert(s, (name.to_string(), idx));
        }
    }

    /// Starts what was gathered, as one batch, and feeds each result back
    /// (which may gather more: an immediate restart after a failed start).
    pub(super) fn flush(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        while !self.pending_spawns.is_empty() {
            let batch = std::mem::take(&mut self.pending_spawns);
            let reqs: Vec<SpawnRequest> = batch.iter().map(|(_, _, r)| r.clone()).collect();
            let results = self.rt.spawn_many(&reqs);
            for ((name, idx, _), result) in batch.into_iter().zip(results) {
                if let (Ok(s), None) = (&result, store.pod(&name)) {
                    // Its pod left meanwhile (`finish_if_done` waits for
                    // pending starts, so only a pod removed by hand): no
                    // one would ever stop this run, so it stops now.
                    tracing::warn!("stopping pid {} of pod {name}: the pod is gone", s.pid);
                    let _ = self.rt.signal_group(s.pid, Signal::KILL);
                    continue;
                }
                let event = match result {
                    Ok(s) => Event::Started {
                        pid: s.pid,
                        identity: s.identity,
                    },
                    Err(e) => Event::StartFailed(start_failure(&e)),
                };
                self.dispatch(store, &name, idx, event, now, out);
            }
        }
    }

    /// Everything before the spawn of process `idx`: its environment, its
    /// argv, a fresh log, its cgroup (made again if it was removed) and
    /// limits, the OOM count before the run, no pid file of an old run.
    fn prepare_spawn(
        &mut self,
        store: &Store,
        name: &str,
        idx: usize,
    ) -> Result<SpawnRequest, SpawnError> {
        let pod = store.pod(name).expect("pod exists");
        let spec = pod.spec.process_at(idx).expect("process index in range");
        self.log_remover.before_start(name);
        if self.pods.get(name).is_some_and(|rt| rt.cgroup.is_none()) {
            let made = self.make_pod_cgroup(&pod.metadata.uid);
            if let Some(rt) = self.pods.get_mut(name) {
                rt.cgroup = made;
            }
        }
        let cgroup = match self.pods.get(name).and_then(|rt| rt.cgroup.as_ref()) {
            Some(pc) => Some(
                pc.cg
                    .process_of_pod(&spec.name, pod.spec.process_count())
                    .map_err(|source| SpawnError::Cgroup {
                        command: spec.command.first().cloned().unwrap_or_default(),
                        source,
                    })?,
            ),
            None => None,
        };
        if cgroup.is_some() {
            self.note_oom_count(store, name, idx);
        }
        if let Some(file) = &spec.pid_file {
            pid_files::remove_stale(file);
        }
        let first_run = pod
            .process_status(idx)
            .is_none_or(|st| st.restart_count == 0 && st.last_state.is_none() && !st.started);
        let log = if first_run {
            self.cfg.logs.first_run(name, &spec.name)
        } else {
            self.cfg.logs.start_run(name, &spec.name)
        };
        let log_path = log.map_err(|source| SpawnError::LogFile {
            path: self.cfg.logs.current(name, &spec.name),
            source,
        })?;
        let environment = self.process_env(pod, idx);
        Ok(SpawnRequest {
            argv: env::expand_argv(&spec.command, &environment),
            env: environment,
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            group: spec.group.clone(),
            log_path,
            cgroup,
            resources: spec.resources.clone(),
            rlimits: spec.rlimits.clone(),
            umask: spec.umask,
            // Who may set it is decided at apply (daemon::auth).
            allow_privilege_escalation: spec.allow_privilege_escalation,
        })
    }

    /// Tries to watch a process that is not our child. The event to feed
    /// back: None if it is watched now.
    fn watch(
        &mut self,
        name: &str,
        idx: usize,
        pid: i32,
        identity: &crate::api::ProcessIdentity,
    ) -> Option<Event> {
        match self.rt.watch(pid, identity) {
            Watch::Watching => {
                if self.unwatched.remove(&pid) {
                    tracing::info!("pid {pid} of pod {name} is watched again");
                }
                self.note_session(name, idx, pid);
                None
            }
            Watch::Gone => {
                self.unwatched.remove(&pid);
                Some(Event::AdoptedExited)
            }
            Watch::Unavailable(e) => {
                if self.unwatched.insert(pid) {
                    tracing::warn!(
                        "pid {pid} of pod {name} cannot be watched ({e}): looking at it now and then"
                    );
                }
                self.note_session(name, idx, pid);
                Some(Event::WatchUnavailable)
            }
        }
    }

    /// Records the session of a re-adopted run (its main may have moved
    /// by MAINPID: the session is still the one the run was started in).
    fn note_session(&mut self, name: &str, idx: usize, pid: i32) {
        let Some(facts) = self.rt.facts(pid) else {
            return;
        };
        if let Some(rt) = self.pods.get_mut(name) {
            if rt.sessions[idx].is_none() {
                rt.sessions[idx] = Some(facts.session);
                self.by_session
                    .insert(facts.session, (name.to_string(), idx));
            }
        }
    }

    fn arm_sweep(&mut self, now: Now) {
        match self.sweeper.next_pass(now.mono) {
            Some(at) if self.timers.deadline(&TimerKey::Sweep) != Some(at) => {
                self.timers.arm(TimerKey::Sweep, at, 0)
            }
            Some(_) => {}
            None => self.timers.cancel(&TimerKey::Sweep),
        }
    }

    /// Timers that are due.
    pub fn fire_timers(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        while let Some(due) = self.timers.pop_due(now.mono) {
            match due.key {
                TimerKey::Process {
                    pod,
                    uid,
                    idx,
                    kind,
                } => {
                    if self.pods.get(&pod).is_some_and(|rt| rt.uid == uid) {
                        let event = Event::Timer { kind, run: due.run };
                        self.dispatch(store, &pod, idx, event, now, out);
                    }
                }
                TimerKey::ProbeTimeout { pid } => self.probe_timed_out(store, pid, now, out),
                TimerKey::Sweep => {
                    self.sweeper.pass(&mut self.rt, env::MARKER, now.mono);
                    self.arm_sweep(now);
                }
                TimerKey::Cgroup { pod, uid } => {
                    if self.pods.get(&pod).is_some_and(|rt| rt.uid == uid) {
                        self.finish_if_done(store, &pod, now, out);
                    }
                }
            }
        }
        self.flush(store, now, out);
    }

    /// Exited children: main processes and exec probes, at most
    /// [`REAP_BATCH`] per call; a finished pod whose cgroup was waited on
    /// may be empty now.
    ///
    /// With `hold`, an exit that ends a process for good (see
    /// [`Agent::exit_is_final`]) is recorded but its zombie is left in
    /// place, and the call returns [`Reaped::Held`]: the daemon writes the
    /// store, then calls [`Agent::reap_held`]. A daemon killed in between
    /// leaves the zombie to its keeper, which passes the status on.
    pub fn reap(&mut self, store: &mut Store, now: Now, out: &mut Outbox, hold: bool) -> Reaped {
        // Not released by the daemon (its write failed, or it did not
        // ask): reaped now, or it would be reported twice.
        self.reap_held();
        for (pid, exit) in self.rt.kept_exits() {
            self.on_exit(store, pid, Some(exit), now, out);
        }
        let mut result = Reaped::All;
        let mut handled = 0;
        while let Some((pid, exit)) = self.rt.next_exit() {
            if hold && self.exit_is_final(store, pid) {
                self.on_exit(store, pid, Some(exit), now, out);
                self.held = Some(pid);
                result = Reaped::Held;
                break;
            }
            self.rt.reap_child(pid);
            self.on_exit(store, pid, Some(exit), now, out);
            handled += 1;
            if handled == REAP_BATCH {
                result = Reaped::More;
                break;
            }
        }
        // The runtime returned the exits SIGCHLD named and left its scan
        // of every child for the next call: this batch's restarts go out
        // first (flush below), the scan after.
        if result == Reaped::All && self.rt.scan_deferred() {
            result = Reaped::More;
        }
        if !self.draining.is_empty() {
            self.settle_draining(store, now, out);
        }
        self.flush(store, now, out);
        result
    }

    /// Reaps the zombie whose exit [`Agent::reap`] held, once the daemon
    /// wrote it down (or could not).
    pub fn reap_held(&mut self) {
        if let Some(pid) = self.held.take() {
            self.rt.reap_child(pid);
        }
    }

    /// Whether `pid`'s exit may end its process for good, so that losing
    /// it would change what happens next: a process whose pod does not
    /// restart it unconditionally (a Job's pod, a `Never` or `OnFailure`
    /// pod) or an init process (its completion is not run again), and
    /// that is not being deleted anyway. Exits of `Always` processes only
    /// count restarts: a daemon that loses one finds the process gone and
    /// starts it again, as it would have.
    fn exit_is_final(&self, store: &Store, pid: i32) -> bool {
        let Some((name, idx)) = self.by_pid.get(&pid) else {
            return false;
        };
        store.pod(name).is_some_and(|p| {
            p.metadata.deletion_timestamp.is_none()
                && (p.spec.restart_policy != RestartPolicy::Always || p.spec.is_init(*idx))
        })
    }

    /// A watched (adopted) process exited.
    pub fn on_adopted_exit(&mut self, store: &mut Store, pid: i32, now: Now, out: &mut Outbox) {
        self.on_exit(store, pid, None, now, out);
        self.flush(store, now, out);
    }

    /// One exit: a reaped child (`exit` has its status) or a watched
    /// process (`None`). Costs this process's bookkeeping only.
    fn on_exit(
        &mut self,
        store: &mut Store,
        pid: i32,
        exit: Option<ExitReason>,
        now: Now,
        out: &mut Outbox,
    ) -> bool {
        if let Some(key) = self.probe_pids.remove(&pid) {
            self.exec_probe_ended(store, pid, key, exit, now, out);
            return true;
        }
        let Some((name, idx)) = self.by_pid.get(&pid).cloned() else {
            return false;
        };
        let event = match exit {
            Some(reason) => Event::Exited(Exit {
                reason,
                oom_killed: self.was_oom_killed(store, &name, idx, reason),
            }),
            None => Event::AdoptedExited,
        };
        self.dispatch(store, &name, idx, event, now, out);
        true
    }
}

fn start_failure(e: &SpawnError) -> StartFailure {
    StartFailure {
        reason: e.reason(),
        message: e.to_string(),
    }
}

/// One status change to process `idx`; whether anything changed.
fn apply_status(
    pod: &mut Pod,
    idx: usize,
    change: StatusChange,
    now: Now,
    session: &mut Option<i32>,
) -> bool {
    let init = pod.spec.is_init(idx);
    let Some(st) = pod.process_status_mut(idx) else {
        return false;
    };
    match change {
        StatusChange::Running {
            pid,
            identity,
            started_at,
            ready,
        } => {
            st.pid = Some(pid as u32);
            st.identity = Some(identity);
            st.state = ProcessState::Running { started_at };
            st.started = true;
            st.ready = ready;
            // Every process the runtime starts leads its own session.
            *session = Some(pid);
            // A pod is Pending while its init processes run.
            if !init {
                pod.status.phase = PodPhase::Running;
            }
            pod.status.start_time.get_or_insert(now.wall);
            pod.status.reason = None;
            pod.status.message = None;
            true
        }
        StatusChange::Ready(ready) => {
            let changed = st.ready != ready;
            st.ready = ready;
            changed
        }
        StatusChange::Ended { last, terminal } => {
            st.pid = None;
            st.identity = None;
            st.ready = false;
            if terminal {
                st.state = ProcessState::Terminated(last.clone());
            }
            st.last_state = Some(last);
            true
        }
        StatusChange::Waiting { reason, message } => {
            st.state = ProcessState::Waiting {
                reason,
                message: Some(message),
            };
            true
        }
        StatusChange::CountRestart => {
            st.restart_count += 1;
            true
        }
        StatusChange::NotifyStatus(text) => {
            let changed = st.notify_status.as_deref() != Some(text.as_str());
            st.notify_status = Some(text);
            changed
        }
        StatusChange::MainPid { pid, identity } => {
            st.pid = Some(pid as u32);
            st.identity = Some(identity);
            true
        }
    }
}
