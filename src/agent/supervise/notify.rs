//! The agent's side of sd_notify: READY=1 marks a `notify = true` process
//! ready, STATUS= is shown by `describe`, WATCHDOG=1 pings keep a
//! `watchdog` process alive (a missed ping is a liveness failure, like
//! systemd's WatchdogSec), MAINPID= moves supervision to another pid.

use super::*;
use crate::agent::notify::{Notification, NotifyMsg};

impl<R: ProcessRuntime> Agent<R> {
    /// Which pod process a notification comes from: its main pid, or the
    /// marker a helper (`systemd-notify`) inherited from it.
    fn notify_sender(&self, store: &Store, n: &Notification) -> Option<(String, usize)> {
        if let Some(found) = self.by_pid.get(&n.pid) {
            return Some(found.clone());
        }
        let (instance, uid, process, _run) = env::parse_marker(n.marker.as_deref()?)?;
        if instance != self.cfg.instance {
            return None;
        }
        let (name, _) = self.pods.iter().find(|(_, rt)| rt.uid == uid)?;
        let pod = store.pod(name)?;
        let idx = pod.spec.processes.iter().position(|p| p.name == process)?;
        Some((name.clone(), idx))
    }

    pub fn on_notify(
        &mut self,
        store: &mut Store,
        n: Notification,
        now: Instant,
        wall: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some((name, idx)) = self.notify_sender(store, &n) else {
            tracing::debug!("notify message from pid {} that runs no pod process", n.pid);
            return;
        };
        let Some(pod) = store.pod(&name) else { return };
        let spec = pod.spec.processes[idx].clone();
        let grace = pod.spec.termination_grace_period.as_duration();
        if !spec.notify {
            tracing::debug!(
                "notify message for {name}/{} ignored: notify is off",
                spec.name
            );
            return;
        }
        for msg in n.messages {
            match msg {
                NotifyMsg::Ready => {
                    if let (Some(w), Some(proc)) = (
                        spec.watchdog,
                        self.pods
                            .get_mut(&name)
                            .and_then(|rt| rt.procs.get_mut(idx)),
                    ) {
                        if !proc.watchdog_armed && matches!(proc.phase, Phase::Running { .. }) {
                            proc.watchdog_armed = true;
                            proc.last_ping = Some(now);
                            fx.timers.push((
                                now + w.as_duration(),
                                Timer::Watchdog {
                                    pod: name.clone(),
                                    idx,
                                    gen: proc.gen,
                                },
                            ));
                        }
                    }
                    if spec.readiness.is_none() {
                        store.update_pod(&name, |p| {
                            let st = &mut p.status.processes[idx];
                            let changed = !st.ready;
                            st.ready = true;
                            changed
                        });
                    }
                }
                NotifyMsg::Status(text) => {
                    store.update_pod(&name, |p| {
                        let st = &mut p.status.processes[idx];
                        let changed = st.notify_status.as_deref() != Some(text.as_str());
                        st.notify_status = Some(text);
                        changed
                    });
                }
                NotifyMsg::Watchdog => {
                    if let Some(proc) = self
                        .pods
                        .get_mut(&name)
                        .and_then(|rt| rt.procs.get_mut(idx))
                    {
                        proc.last_ping = Some(now);
                    }
                }
                NotifyMsg::WatchdogTrigger => {
                    self.fail_running(
                        store,
                        &name,
                        idx,
                        "WatchdogTimeout".into(),
                        "the process asked for a watchdog restart (WATCHDOG=trigger)".into(),
                        "triggered its watchdog",
                        grace,
                        now,
                        fx,
                    );
                    return;
                }
                NotifyMsg::MainPid(new) => self.move_main_pid(store, &name, idx, new),
                NotifyMsg::Other(_) => {}
            }
        }
        let _ = wall;
    }

    /// MAINPID=N: N is now the process drover supervises (a daemon that
    /// forked). The old main's exit is then not a failure.
    fn move_main_pid(&mut self, store: &mut Store, name: &str, idx: usize, new: i32) {
        let Some(rt) = self.pods.get_mut(name) else {
            return;
        };
        let Some(proc) = rt.procs.get_mut(idx) else {
            return;
        };
        let Phase::Running { pid: old } = proc.phase else {
            return;
        };
        if old == new {
            return;
        }
        let Some(identity) = self.rt.identity(new) else {
            return;
        };
        proc.phase = Phase::Running { pid: new };
        self.by_pid.remove(&old);
        self.by_pid.insert(new, (name.to_string(), idx));
        store.update_pod(name, |p| {
            let st = &mut p.status.processes[idx];
            st.pid = Some(new as u32);
            st.identity = Some(identity);
            true
        });
    }

    /// The watchdog interval passed: pinged since? Then look again one
    /// interval after that ping; else it is hung.
    pub(super) fn watchdog_due(
        &mut self,
        store: &mut Store,
        name: &str,
        idx: usize,
        gen: u64,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Some(pod) = store.pod(name) else { return };
        let Some(interval) = pod.spec.processes.get(idx).and_then(|s| s.watchdog) else {
            return;
        };
        let interval = interval.as_duration();
        let grace = pod.spec.termination_grace_period.as_duration();
        let Some(proc) = self.pods.get_mut(name).and_then(|rt| rt.procs.get_mut(idx)) else {
            return;
        };
        if proc.gen != gen || !matches!(proc.phase, Phase::Running { .. }) {
            return;
        }
        let last = proc.last_ping.unwrap_or(now);
        if last + interval > now {
            fx.timers.push((
                last + interval,
                Timer::Watchdog {
                    pod: name.to_string(),
                    idx,
                    gen,
                },
            ));
            return;
        }
        let text = crate::api::duration::format_duration(interval);
        self.fail_running(
            store,
            name,
            idx,
            "WatchdogTimeout".into(),
            format!("watchdog timeout: no WATCHDOG=1 within {text}"),
            "missed its watchdog",
            grace,
            now,
            fx,
        );
    }
}
