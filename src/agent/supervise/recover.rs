//! After a daemon restart: processes this daemon started whose start never
//! reached the state file (it died between the spawn and the write).
//! They carry this instance's marker, so one scan of /proc finds them:
//! one whose pod still exists is recorded as that pod's running process
//! (and then re-adopted like any other, never started twice); one whose
//! pod is gone is stopped, as nobody would ever supervise it. So is what
//! is left in the cgroup of a pod that is gone.

use super::*;

impl<R: ProcessRuntime> Agent<R> {
    /// Call once at start, before the first [`Agent::sync`]. Also sees to
    /// the pod cgroups the previous daemon left (`collect_cgroups`).
    pub fn recover(&mut self, store: &mut Store, now: Now, out: &mut Outbox) {
        self.collect_cgroups(store);
        let prefix = format!("{}/", self.cfg.instance);
        for (pid, value) in self.rt.marked_leaders(super::super::env::MARKER, &prefix) {
            let Some((_, uid, process, run)) = super::super::env::parse_marker(&value) else {
                continue;
            };
            // A pod being deleted still owns its processes: they are
            // stopped by `sync` with the pod's grace period, not killed here.
            let found = store.pods().find_map(|p| {
                let idx = p.spec.processes.iter().position(|s| s.name == process)?;
                (p.metadata.uid == uid && !p.is_terminal()).then(|| (p.metadata.name.clone(), idx))
            });
            let identity = self.rt.identity(pid);
            let (Some((name, idx)), Some(identity)) = (found, identity) else {
                tracing::warn!("stopping pid {pid} ({value}): its pod is gone");
                let _ = self.rt.signal_group(pid, Signal::KILL);
                continue;
            };
            // A recorded process that still runs is the pod's (this one is
            // a descendant that called setsid, or a copy of the marker: an
            // environment variable is no proof): left alone.
            let recorded_alive = store
                .pod(&name)
                .and_then(|p| p.status.processes.get(idx))
                .and_then(|st| Some((st.pid?, st.identity.clone()?)))
                .is_some_and(|(p, id)| self.rt.identity(p as i32) == Some(id));
            if recorded_alive {
                continue;
            }
            let mut taken = false;
            {
                store.update_pod(&name, |pod| {
                    ensure_status(pod);
                    let st = &mut pod.status.processes[idx];
                    if st.restart_count > run {
                        // A run older than the recorded one: not ours to keep.
                        return false;
                    }
                    st.pid = Some(pid as u32);
                    st.identity = Some(identity.clone());
                    st.restart_count = run;
                    st.started = true;
                    st.state = ProcessState::Running {
                        started_at: now.wall,
                    };
                    pod.status.phase = PodPhase::Running;
                    out.notes.push(note(
                        pod,
                        false,
                        "Recovered",
                        format!(
                            "Found process {process} (pid {pid}) started before the daemon restarted"
                        ),
                    ));
                    taken = true;
                    true
                });
            }
            let recorded = store
                .pod(&name)
                .and_then(|p| p.status.processes.get(idx))
                .and_then(|s| s.pid);
            if !taken && recorded != Some(pid as u32) {
                let _ = self.rt.signal_group(pid, Signal::KILL);
            }
        }
    }
}
