//! The pod's cgroup, as the executor uses it (the runtime owns cgroupfs;
//! see `runtime::cgroup` for what is called when):
//!
//! - named at a pod's first sight and made by its first spawn (and
//!   again by a spawn if it was removed); without cgroups the pod runs
//!   without one, and a process with `resources` fails to start with the
//!   runtime's reason;
//! - each spawn goes into the process's own cgroup, with its limits; the
//!   OOM kill count is read before the run and after its exit (SIGKILL
//!   and a count that grew: `OOMKilled`);
//! - signals go to the process's tree: its group and whatever else is in
//!   its cgroup; SIGKILL to a process's cgroup is what the marker sweep
//!   is without one;
//! - once every process of the pod is done, what is left in the cgroup
//!   is killed (at the end of the grace period for a pod being stopped,
//!   at once for one that completed; again at each look while anything
//!   is left), and the cgroup is released when
//!   empty: checked after each reap, by the v2 emptiness watch, and by a
//!   timer backing off (processes that are not our children, after a
//!   daemon restart, end in no reap). A deleted pod leaves the store
//!   only then. Released, not removed: the runtime removes it off the
//!   loop (rmdir of 2,000 pods' cgroups held the loop 1.9 s, issue 9);
//! - at a daemon start, the cgroups of pods it no longer knows (deleted
//!   while it was down, or whose removal failed) are killed and
//!   released.

use super::*;
use crate::runtime::{CgroupError, ExitReason, PodCgroup, ProcessCgroup};
use std::time::Duration;

/// Where emptiness watches report: the daemon's loop looks again.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<()>;

/// A pod's cgroup and, once its processes are done, the wait for it to
/// empty.
#[derive(Debug)]
pub(super) struct PodCg {
    pub cg: PodCgroup,
    /// Its leftovers were killed; waiting for them to die.
    killed: bool,
    /// Rechecks since the kill (the drain timer's backoff).
    rechecks: u32,
    /// The v2 emptiness watch's task.
    watch: Option<tokio::task::AbortHandle>,
}

impl PodCg {
    fn new(cg: PodCgroup) -> PodCg {
        PodCg {
            cg,
            killed: false,
            rechecks: 0,
            watch: None,
        }
    }

    /// Leftovers were killed and have not all died yet.
    pub fn draining(&self) -> bool {
        self.killed
    }
}

impl Drop for PodCg {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
    }
}

/// Delay before looking again at a cgroup whose leftovers were killed:
/// 10ms doubling to 5s (a process in uninterruptible sleep can take a
/// while; nothing is polled once the cgroup is gone).
pub(super) fn drain_delay(rechecks: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(5);
    FIRST
        .checked_mul(1u32 << rechecks.min(16))
        .unwrap_or(MAX)
        .min(MAX)
}

impl<R: ProcessRuntime> Agent<R> {
    /// Where v2 cgroup emptiness watches report (the daemon's loop).
    pub fn set_cgroup_events(&mut self, sink: EventSink) {
        self.cgroup_events = Some(sink);
    }

    /// The pod's cgroup, made by its first spawn (on the spawning
    /// threads: a burst of new pods does not hold the loop for their
    /// mkdirs). None without cgroups (the reason is in
    /// `cgroups_description`; a spawn that needs limits says it).
    pub(super) fn make_pod_cgroup(&mut self, uid: &str) -> Option<PodCg> {
        match self.rt.pod_cgroup(uid) {
            Ok(cg) => Some(PodCg::new(cg)),
            Err(CgroupError::Unavailable { .. }) => None,
            Err(e) => {
                tracing::warn!("pod {uid}: no cgroup ({e}); its processes run without one");
                None
            }
        }
    }

    /// The cgroup of process `idx` of pod `name`, if the pod has one.
    pub(super) fn process_cgroup(
        &self,
        store: &Store,
        name: &str,
        idx: usize,
    ) -> Option<ProcessCgroup> {
        let cg = &self.pods.get(name)?.cgroup.as_ref()?.cg;
        let pod = &store.pod(name)?.spec;
        let spec = pod.process_at(idx)?;
        cg.process_of_pod(&spec.name, pod.process_count()).ok()
    }

    /// OOM kills so far in the cgroup of process `idx` (None without a
    /// cgroup or a memory controller).
    fn oom_count(&self, store: &Store, name: &str, idx: usize) -> Option<u64> {
        let pcg = self.process_cgroup(store, name, idx)?;
        let limits = store.pod(name)?.spec.process_at(idx)?.resources.as_ref();
        self.rt.oom_kills(&pcg, limits).ok()
    }

    /// While the pod stops, SIGKILL to what its processes left in their
    /// cgroups waits for the end of its grace period (they got SIGTERM
    /// with their process).
    fn kill_waits_for_deadline(&self, name: &str, now: Now) -> bool {
        self.pods
            .get(name)
            .and_then(|rt| rt.stop_deadline.filter(|_| rt.stopping))
            .is_some_and(|d| d > now.mono)
    }

    /// `Effect::Signal`: the process group, and with a cgroup the rest of
    /// the process's cgroup. `killed`: the cgroup was killed already in
    /// this batch of effects.
    pub(super) fn signal_tree(
        &mut self,
        name: &str,
        pcg: Option<&ProcessCgroup>,
        pid: i32,
        signal: Signal,
        now: Now,
        killed: &mut bool,
    ) {
        let Some(pcg) = pcg else {
            let _ = self.rt.signal_group(pid, signal);
            return;
        };
        if signal != Signal::KILL {
            if let Err(e) = self.rt.signal_tree(pid, pcg, signal) {
                tracing::warn!("pod {name}: signalling {pcg:?}: {e}");
            }
            return;
        }
        let _ = self.rt.signal_group(pid, Signal::KILL);
        if !*killed && !self.kill_waits_for_deadline(name, now) {
            *killed = true;
            if let Err(e) = self.rt.kill_process_cgroup(pcg) {
                tracing::warn!("pod {name}: killing {pcg:?}: {e}");
            }
        }
    }

    /// `Effect::Sweep` with a cgroup: what the run left goes now (a new
    /// run starts in the same cgroup), or, while the pod stops, at the
    /// end of its grace period (`settle_cgroup`).
    pub(super) fn sweep_cgroup(
        &mut self,
        name: &str,
        pcg: &ProcessCgroup,
        now: Now,
        killed: &mut bool,
    ) {
        if *killed || self.kill_waits_for_deadline(name, now) {
            return;
        }
        *killed = true;
        if let Err(e) = self.rt.kill_process_cgroup(pcg) {
            tracing::warn!("pod {name}: killing {pcg:?}: {e}");
        }
    }

    /// OOM kills so far in the cgroup of process `idx`, read before its
    /// run (None without a cgroup or a memory controller).
    pub(super) fn note_oom_count(&mut self, store: &Store, name: &str, idx: usize) {
        let count = self.oom_count(store, name, idx);
        if let Some(slot) = self
            .pods
            .get_mut(name)
            .and_then(|rt| rt.oom_before.get_mut(idx))
        {
            *slot = count;
        }
    }

    /// Whether a run that died by SIGKILL was killed by the OOM killer:
    /// its cgroup's count grew since the run started.
    pub(super) fn was_oom_killed(
        &self,
        store: &Store,
        name: &str,
        idx: usize,
        exit: ExitReason,
    ) -> bool {
        if exit != ExitReason::Signal(Signal::KILL) {
            return false;
        }
        let Some(before) = self
            .pods
            .get(name)
            .and_then(|rt| rt.oom_before.get(idx).copied().flatten())
        else {
            return false;
        };
        self.oom_count(store, name, idx)
            .is_some_and(|after| after > before)
    }

    /// A pod whose processes are all done: its cgroup's leftovers are
    /// killed when due and the cgroup removed once empty. True once the
    /// pod has no cgroup left.
    pub(super) fn settle_cgroup(&mut self, name: &str, now: Now) -> bool {
        let Some(rt) = self.pods.get(name) else {
            return true;
        };
        let Some(pc) = rt.cgroup.as_ref() else {
            self.draining.remove(name);
            return true;
        };
        let uid = rt.uid.clone();
        let key = TimerKey::Cgroup {
            pod: name.to_string(),
            uid: uid.clone(),
        };
        let empty = match self.rt.cgroup_is_empty(&pc.cg) {
            Ok(empty) => empty,
            Err(e) => {
                tracing::warn!("pod {name}: its cgroup cannot be read ({e}): left as it is");
                true
            }
        };
        if empty {
            let cg = pc.cg.clone();
            self.rt.release_pod_cgroup(&cg);
            if let Some(rt) = self.pods.get_mut(name) {
                rt.cgroup = None;
            }
            self.timers.cancel(&key);
            self.draining.remove(name);
            return true;
        }
        let deadline = rt
            .stop_deadline
            .filter(|_| rt.stopping)
            .filter(|d| *d > now.mono);
        if let Some(at) = deadline {
            // Leftovers keep the rest of the grace period (they got
            // SIGTERM with their process).
            self.timers.arm(key, at, 0);
            self.draining.insert(name.to_string());
            return false;
        }
        // Killed again at each later look while anything is left: on v1
        // a child forked while the kill ran can be listed only after it
        // (runtime/cgroup/stop.rs, `Hold::Fence`), and a kill of what is
        // already dying costs a listing and a few signals.
        let (cg, first) = (pc.cg.clone(), !pc.killed);
        if let Err(e) = self.rt.kill_cgroup(&cg) {
            tracing::warn!("pod {name}: killing its cgroup: {e}");
        }
        if first {
            let watch = self.watch_empty(&cg);
            if let Some(pc) = self.pods.get_mut(name).and_then(|rt| rt.cgroup.as_mut()) {
                pc.killed = true;
                pc.watch = watch;
            }
        }
        self.drain(name, now)
    }

    /// Waits for a killed cgroup to empty: the next look is after a reap,
    /// a watch event, or the backoff timer. Always false.
    fn drain(&mut self, name: &str, now: Now) -> bool {
        let Some(rt) = self.pods.get_mut(name) else {
            return false;
        };
        let uid = rt.uid.clone();
        if let Some(pc) = rt.cgroup.as_mut() {
            let at = now.mono + drain_delay(pc.rechecks);
            pc.rechecks += 1;
            self.timers.arm(
                TimerKey::Cgroup {
                    pod: name.to_string(),
                    uid,
                },
                at,
                0,
            );
        }
        self.draining.insert(name.to_string());
        false
    }

    /// v2: a task that wakes the daemon's loop whenever the cgroup's
    /// `cgroup.events` changes.
    fn watch_empty(&self, cg: &PodCgroup) -> Option<tokio::task::AbortHandle> {
        let sink = self.cgroup_events.clone()?;
        let watch = self.rt.watch_cgroup_empty(cg).ok()??;
        let task = tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                if sink.send(()).is_err() {
                    break;
                }
            }
        });
        Some(task.abort_handle())
    }

    /// Pods waiting for their cgroup to empty: looked at again (after
    /// reaps, and when a watch or its timer says so).
    pub(super) fn settle_draining(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        let names: Vec<String> = self.draining.iter().cloned().collect();
        for name in names {
            self.finish_if_done(store, &name, now, out);
        }
    }

    /// A terminal pod seen first after a daemon restart: a cgroup left by
    /// the previous daemon goes (its leftovers killed first).
    pub(super) fn leftover_cgroup(&mut self, name: &str, uid: &str, now: Now) {
        let Ok(cg) = PodCgroup::new(uid) else { return };
        if !self.leftover_cgroups.remove(&cg) {
            return;
        }
        if let Some(rt) = self.pods.get_mut(name) {
            rt.cgroup = Some(PodCg::new(cg));
        }
        self.settle_cgroup(name, now);
    }

    /// At start (`recover`): the pod cgroups the previous daemon left.
    /// Those of pods the store does not know are killed and released
    /// now; those of terminal pods when the pod is first seen
    /// (`leftover_cgroup`).
    pub(super) fn collect_cgroups(&mut self, store: &Store) {
        let pods: HashMap<&str, bool> = store
            .pods()
            .map(|p| (p.metadata.uid.as_str(), p.is_terminal()))
            .collect();
        for cg in self.rt.existing_pod_cgroups() {
            match pods.get(cg.pod_uid()) {
                // Used again by the pod's processes.
                Some(false) => continue,
                Some(true) => {
                    self.leftover_cgroups.insert(cg);
                    continue;
                }
                None => {}
            }
            tracing::info!(
                "removing the cgroup of pod uid {}: no such pod",
                cg.pod_uid()
            );
            if let Err(e) = self.rt.kill_cgroup(&cg) {
                tracing::warn!("killing the cgroup of pod uid {}: {e}", cg.pod_uid());
            }
            // Killed processes take a moment to die: the removal tries
            // again while the cgroup is busy.
            self.rt.release_pod_cgroup(&cg);
        }
    }

    /// `drover up` leaving, or the service halted, with every pod
    /// stopped: this daemon's cgroup root.
    pub fn release_cgroups(&mut self) {
        let held = self.pods.values().filter(|rt| rt.cgroup.is_some()).count();
        if held > 0 {
            // Seen once after a long `up` (an empty root left): say why.
            tracing::warn!("leaving this daemon's cgroup root: {held} pods still hold a cgroup");
            return;
        }
        match self.rt.remove_cgroup_root() {
            Ok(()) | Err(CgroupError::Unavailable { .. }) => {}
            Err(e) => tracing::warn!("removing this daemon's cgroups: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_timer_backs_off_to_five_seconds() {
        let ms = |n| drain_delay(n).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(8), ms(20)],
            [10, 20, 40, 2560, 5000]
        );
    }
}
