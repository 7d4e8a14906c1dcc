//! Tier-2 tests of the agent: the executor and the state machine against
//! the fake runtime and made-up time. No processes, no sleeping.

use super::*;
use crate::agent::env;
use crate::agent::notify::{Notification, NotifyMsg};
use crate::api::{
    Dur, Object, ObjectMeta, PodSpec, PodStatus, PortRange, PortRequest, ProcessIdentity,
    ProcessReason, ProcessSpec, ProcessUsage, RestartPolicy, TerminatedState,
};
use crate::runtime::fake::{CgroupCall, SignalSent, SignalTarget, SpawnFailure};
use crate::runtime::{ExitReason, FakeRuntime, ProcessFacts};
use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

struct World {
    fake: FakeRuntime,
    agent: Agent<FakeRuntime>,
    store: Store,
    now: Now,
    _logs: tempfile::TempDir,
}

fn process(name: &str) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        command: vec!["server".into(), "--port=${PORT_HTTP}".into()],
        ..Default::default()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn pod(name: &str, policy: RestartPolicy) -> Pod {
    Pod {
        metadata: ObjectMeta::new(name, t0()),
        spec: PodSpec {
            node_selector: Default::default(),
            restart_policy: policy,
            termination_grace_period: Dur::secs(30),
            ports: vec![PortRequest {
                name: "http".into(),
                range: PortRange {
                    first: 8080,
                    last: 8089,
                },
            }],
            init_processes: Vec::new(),
            processes: vec![process("main")],
        },
        status: PodStatus {
            node_name: Some("n1".into()),
            ..Default::default()
        },
    }
}

fn notify_pod(name: &str) -> Pod {
    let mut p = pod(name, RestartPolicy::Always);
    p.spec.processes[0].notify = true;
    p.spec.processes[0].watchdog = Some(Dur::secs(2));
    p
}

impl World {
    fn new() -> World {
        World::with(FakeRuntime::new())
    }

    /// A host where pods get no cgroup: escaped descendants are found by
    /// their marker.
    fn without_cgroups() -> World {
        World::with(FakeRuntime::without_cgroups("test: no cgroups"))
    }

    fn with(fake: FakeRuntime) -> World {
        let logs = tempfile::tempdir().unwrap();
        let agent = Agent::new(
            fake.clone(),
            AgentConfig {
                node_name: "n1".into(),
                logs: LogDir::new(logs.path().to_path_buf(), 1 << 20),
                backoff: BackoffConfig::default(),
                base_env: vec![("PATH".into(), "/bin".into())],
                probe_port_is_free: false,
                notify_socket: Some("/run/test/drover.sock.notify".into()),
                instance: "test".into(),
                background_log_removal: false,
            },
        );
        World {
            fake,
            agent,
            store: Store::new(),
            now: Now {
                mono: Instant::now(),
                wall: t0(),
            },
            _logs: logs,
        }
    }

    fn add(&mut self, p: Pod) {
        self.store.put(Object::Pod(p));
    }

    fn sync(&mut self) -> Outbox {
        let mut out = Outbox::default();
        self.agent.sync(&mut self.store, self.now, &mut out);
        out
    }

    fn advance(&mut self, d: Duration) {
        self.now.mono += d;
        self.now.wall += chrono::Duration::from_std(d).unwrap();
    }

    /// Moves time to the next timer and fires what is due.
    fn next_timer(&mut self) -> Outbox {
        let at = self.agent.next_deadline().expect("a timer is armed");
        if at > self.now.mono {
            self.advance(at - self.now.mono);
        }
        self.fire()
    }

    fn fire(&mut self) -> Outbox {
        let mut out = Outbox::default();
        self.agent.fire_timers(&mut self.store, self.now, &mut out);
        out
    }

    /// Reaps what the fake queued, and exits of watched processes.
    fn reap(&mut self) -> Outbox {
        let mut out = Outbox::default();
        while self.agent.reap(&mut self.store, self.now, &mut out, false) == Reaped::More {}
        for pid in self.fake.watched_exits() {
            self.agent
                .on_adopted_exit(&mut self.store, pid, self.now, &mut out);
        }
        out
    }

    fn notify(&mut self, pid: i32, uid: u32, text: &[u8]) -> Outbox {
        let mut out = Outbox::default();
        let n = Notification {
            pid,
            uid,
            messages: crate::agent::notify::parse(text),
        };
        self.agent.on_notify(&mut self.store, n, self.now, &mut out);
        out
    }

    fn delete(&mut self, name: &str) -> Outbox {
        self.store.update_pod(name, |p| {
            p.metadata.deletion_timestamp = Some(t0());
            true
        });
        self.sync()
    }

    fn pod(&self, name: &str) -> &Pod {
        self.store.pod(name).expect("pod in store")
    }

    fn status(&self, name: &str) -> &ProcessStatus {
        &self.pod(name).status.processes[0]
    }

    fn pid(&self, name: &str) -> i32 {
        self.status(name).pid.expect("running") as i32
    }
}

fn waiting(st: &ProcessStatus) -> (ProcessReason, String) {
    match &st.state {
        ProcessState::Waiting { reason, message } => {
            (reason.clone(), message.clone().unwrap_or_default())
        }
        other => panic!("expected waiting, got {other:?}"),
    }
}

fn sent(target: SignalTarget, signal: Signal) -> SignalSent {
    SignalSent { target, signal }
}

#[test]
fn a_new_pod_is_started_with_its_environment_and_ports() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    let out = w.sync();
    let spawns = w.fake.spawns();
    assert_eq!(spawns.len(), 1);
    let env = &spawns[0].env;
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("DROVER_POD_NAME").as_deref(), Some("web-1"));
    assert_eq!(get("DROVER_NODE_NAME").as_deref(), Some("n1"));
    assert_eq!(get("PORT_HTTP").as_deref(), Some("8080"));
    assert_eq!(get("NOTIFY_SOCKET"), None, "only with notify = true");
    assert_eq!(spawns[0].argv, ["server", "--port=8080"]);
    let p = w.pod("web-1");
    assert_eq!(p.status.phase, PodPhase::Running);
    assert!(p.status.processes[0].ready);
    assert!(matches!(
        p.status.processes[0].state,
        ProcessState::Running { .. }
    ));
    assert!(out.notes.iter().any(|n| n.reason == "Started"));
}

#[test]
fn many_pods_start_as_one_batch() {
    let mut w = World::new();
    for i in 0..5 {
        let mut p = pod(&format!("p{i}"), RestartPolicy::Always);
        p.spec.ports.clear();
        w.add(p);
    }
    w.sync();
    assert_eq!(w.fake.spawns().len(), 5);
    assert!(w.store.pods().all(|p| p.status.phase == PodPhase::Running));
}

#[test]
fn two_pods_never_get_the_same_port() {
    let mut w = World::new();
    w.add(pod("a", RestartPolicy::Always));
    w.sync();
    w.add(pod("b", RestartPolicy::Always));
    w.sync();
    assert_eq!(w.pod("a").status.ports["http"], 8080);
    assert_eq!(w.pod("b").status.ports["http"], 8081);
}

#[test]
fn crash_loop_restarts_at_once_then_backs_off() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let first = w.pid("web-1");
    w.fake.exit(first, ExitReason::Code(1));
    w.reap();
    // First restart: immediate, no timer.
    assert_eq!(w.fake.spawns().len(), 2);
    assert_eq!(w.agent.next_deadline(), None);
    let st = w.status("web-1");
    assert_eq!(st.restart_count, 1);
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(1));
    assert_eq!(
        w.fake.signals(),
        [sent(SignalTarget::Group(first), Signal::KILL)],
        "what the process left in its group goes with it"
    );
    // Second crash: 10s backoff, CrashLoopBackOff shown.
    let second = w.pid("web-1");
    w.fake.exit(second, ExitReason::Signal(Signal::KILL));
    let out = w.reap();
    assert_eq!(w.fake.spawns().len(), 2, "no spawn during backoff");
    let st = w.status("web-1");
    assert_eq!(st.restart_count, 1, "a restart counts when it happens");
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(137));
    assert_eq!(st.last_state.as_ref().unwrap().signal, Some(9));
    let (reason, message) = waiting(st);
    assert_eq!(reason, ProcessReason::CrashLoopBackOff);
    assert!(message.contains("back-off 10s"), "{message:?}");
    assert_eq!(w.pod("web-1").display_status(), "CrashLoopBackOff");
    assert!(out.notes.iter().any(|n| n.reason == "BackOff" && n.warning));
    assert_eq!(
        w.agent.next_deadline(),
        Some(w.now.mono + Duration::from_secs(10))
    );
    w.next_timer();
    assert_eq!(w.fake.spawns().len(), 3);
    assert_eq!(w.status("web-1").restart_count, 2);
    assert_eq!(w.pod("web-1").status.phase, PodPhase::Running);
}

#[test]
fn restarts_of_named_exits_go_out_before_the_scan_for_merged_ones() {
    let mut w = World::new();
    w.add(pod("a", RestartPolicy::Always));
    w.add(pod("b", RestartPolicy::Always));
    w.sync();
    let (a, b) = (w.pid("a"), w.pid("b"));
    w.fake.exit(a, ExitReason::Code(1));
    // b's SIGCHLD was merged into a's: only the runtime's scan finds it.
    w.fake.exit_unnamed(b, ExitReason::Code(2));
    let mut out = Outbox::default();
    assert_eq!(
        w.agent.reap(&mut w.store, w.now, &mut out, false),
        Reaped::More,
        "the scan is still owed"
    );
    assert_eq!(w.fake.spawns().len(), 3, "a restarted before the scan");
    assert_eq!(w.status("b").restart_count, 0);
    assert_eq!(
        w.agent.reap(&mut w.store, w.now, &mut out, false),
        Reaped::All
    );
    assert_eq!(w.fake.spawns().len(), 4);
    assert_eq!(w.status("a").restart_count, 1);
    let b_status = w.status("b");
    assert_eq!(b_status.restart_count, 1);
    assert_eq!(b_status.last_state.as_ref().unwrap().exit_code, Some(2));
}

#[test]
fn restart_policies_decide_what_follows_an_exit() {
    // (policy, exit code) -> (restarted?, final phase if not)
    let cases = [
        (RestartPolicy::Always, 0, true, PodPhase::Running),
        (RestartPolicy::OnFailure, 0, false, PodPhase::Succeeded),
        (RestartPolicy::OnFailure, 2, true, PodPhase::Running),
        (RestartPolicy::Never, 0, false, PodPhase::Succeeded),
        (RestartPolicy::Never, 2, false, PodPhase::Failed),
    ];
    for (policy, code, restarted, phase) in cases {
        let mut w = World::new();
        w.add(pod("p", policy));
        w.sync();
        let pid = w.pid("p");
        w.fake.exit(pid, ExitReason::Code(code));
        w.reap();
        let spawned = w.fake.spawns().len();
        assert_eq!(spawned == 2, restarted, "{policy:?} exit {code}");
        assert_eq!(w.pod("p").status.phase, phase, "{policy:?} exit {code}");
    }
}

#[test]
fn deleting_a_pod_terms_then_kills_after_the_grace_period_then_removes_it() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let pid = w.pid("web-1");
    let out = w.delete("web-1");
    assert_eq!(
        w.fake.signals(),
        [sent(SignalTarget::Group(pid), Signal::TERM)]
    );
    assert!(out.notes.iter().any(|n| n.reason == "Killing"));
    assert_eq!(
        w.agent.next_deadline(),
        Some(w.now.mono + Duration::from_secs(30))
    );
    // The process ignores SIGTERM: the grace timer escalates.
    w.next_timer();
    assert!(w
        .fake
        .signals()
        .contains(&sent(SignalTarget::Group(pid), Signal::KILL)));
    assert!(!w.fake.is_alive(pid), "SIGKILL always kills");
    let out = w.reap();
    assert_eq!(out.removed, ["web-1"]);
    assert!(w.store.pod("web-1").is_none());
    assert_eq!(w.fake.spawns().len(), 1, "a deleted pod is not restarted");
}

#[test]
fn a_well_behaved_process_stops_on_sigterm_without_a_kill() {
    let mut w = World::without_cgroups();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    w.delete("web-1");
    let out = w.reap();
    assert_eq!(out.removed, ["web-1"]);
    // The grace timer went with the pod: what is left is one look for
    // escaped descendants, soon, and then nothing.
    assert!(w.agent.next_deadline() < Some(w.now.mono + Duration::from_secs(1)));
    w.next_timer();
    assert_eq!(w.agent.next_deadline(), None);
    assert!(!w
        .fake
        .signals()
        .iter()
        .any(|s| s.signal == Signal::KILL && matches!(s.target, SignalTarget::Process(_))));
}

#[test]
fn escaped_descendants_are_found_by_marker_and_killed() {
    let mut w = World::without_cgroups();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let uid = w.pod("web-1").metadata.uid.clone();
    // A grandchild that left the group, and ignores SIGTERM.
    let grandchild = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    // A process of another run (or another pod) is not touched.
    let stranger = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 7),
    )]);
    let scans = w.fake.scans();
    w.delete("web-1");
    let out = w.reap();
    // The pod goes at once; the exit itself scanned nothing.
    assert_eq!(out.removed, ["web-1"]);
    assert_eq!(w.fake.scans(), scans, "no /proc scan on the exit path");
    // The sweep comes in its batch: SIGTERM, then SIGKILL after the grace
    // period.
    w.next_timer();
    assert!(w
        .fake
        .signals()
        .contains(&sent(SignalTarget::Process(grandchild), Signal::TERM)));
    w.next_timer();
    assert!(!w.fake.is_alive(grandchild));
    assert!(w.fake.is_alive(stranger));
    assert_eq!(w.fake.scans(), scans + 2);
    assert_eq!(w.agent.next_deadline(), None);
}

#[test]
fn a_hundred_stopped_pods_cost_one_sweep() {
    let mut w = World::without_cgroups();
    w.fake.dies_on(Signal::TERM);
    for i in 0..100 {
        let mut p = pod(&format!("p{i}"), RestartPolicy::Always);
        p.spec.ports.clear();
        w.add(p);
    }
    w.sync();
    let names: Vec<String> = w.store.pods().map(|p| p.metadata.name.clone()).collect();
    for n in &names {
        w.store.update_pod(n, |p| {
            p.metadata.deletion_timestamp = Some(t0());
            true
        });
    }
    w.sync();
    let out = w.reap();
    assert_eq!(out.removed.len(), 100);
    assert_eq!(w.fake.scans(), 0);
    w.next_timer();
    assert_eq!(w.fake.scans(), 1, "one pass for all hundred");
    assert_eq!(w.agent.next_deadline(), None, "nothing escaped: done");
}

#[test]
fn a_missing_user_is_reported_not_looped() {
    let mut w = World::new();
    w.fake.fail_next_spawn(SpawnFailure::UserNotFound);
    w.fake.fail_next_spawn(SpawnFailure::UserNotFound);
    let mut p = pod("p", RestartPolicy::Always);
    p.spec.processes[0].user = Some("nosuchuser".into());
    w.add(p);
    let out = w.sync();
    // One immediate retry, then a backoff with the reason shown.
    assert_eq!(w.fake.spawns().len(), 2);
    assert!(w.agent.next_deadline().is_some());
    let (reason, message) = waiting(w.status("p"));
    assert_eq!(reason, ProcessReason::CreateContainerConfigError);
    assert!(message.contains("nosuchuser"), "{message:?}");
    let last = w.status("p").last_state.clone().unwrap();
    assert_eq!(last.exit_code, Some(128), "as before, in the JSON");
    assert!(out
        .notes
        .iter()
        .any(|n| n.warning && n.message.contains("does not exist")));
}

fn recorded(pid: i32, restarts: u32, wall: DateTime<Utc>) -> ProcessStatus {
    ProcessStatus {
        pid: Some(pid as u32),
        identity: Some(FakeRuntime::identity_of(pid)),
        restart_count: restarts,
        started: true,
        ready: true,
        state: ProcessState::Running { started_at: wall },
        ..ProcessStatus::waiting("main", "x")
    }
}

#[test]
fn a_restarted_daemon_adopts_live_processes_and_records_lost_ones() {
    let mut w = World::new();
    let live = w.fake.add_process(vec![]);
    let mut a = pod("alive", RestartPolicy::Always);
    a.status.phase = PodPhase::Running;
    a.status.processes = vec![recorded(live, 4, w.now.wall)];
    let mut l = a.clone();
    l.metadata = ObjectMeta::new("lost", w.now.wall);
    l.status.processes = vec![recorded(4242, 4, w.now.wall)];
    w.add(a);
    w.add(l);
    w.sync();
    // The live one is watched, not started again; the lost one restarts.
    assert_eq!(w.fake.watch_calls(), [live]);
    assert_eq!(w.fake.spawns().len(), 1);
    assert_eq!(
        w.fake.spawns()[0]
            .env
            .iter()
            .find(|(k, _)| k == "DROVER_POD_NAME")
            .unwrap()
            .1,
        "lost"
    );
    assert_eq!(w.status("alive").restart_count, 4);
    let lost = w.status("lost");
    assert_eq!(lost.restart_count, 5);
    assert_eq!(lost.last_state.as_ref().unwrap().reason, "Unknown");
    // The adopted process's exit arrives through its pidfd, without status.
    w.fake.exit(live, ExitReason::Code(0));
    w.reap();
    assert_eq!(w.status("alive").restart_count, 5);
    let last = w.status("alive").last_state.clone().unwrap();
    assert_eq!(
        (last.reason, last.exit_code),
        (ProcessReason::Unknown, None)
    );
}

/// Issue 9: a re-adopted process the daemon cannot watch (no descriptor
/// left) is still supervised, never taken for dead.
#[test]
fn an_adopted_process_that_cannot_be_watched_is_polled_not_killed() {
    let mut w = World::new();
    let pids: Vec<i32> = (0..3).map(|_| w.fake.add_process(vec![])).collect();
    for (i, pid) in pids.iter().enumerate() {
        let mut p = pod(&format!("p{i}"), RestartPolicy::Always);
        p.spec.ports.clear();
        p.status.phase = PodPhase::Running;
        p.status.processes = vec![recorded(*pid, 0, w.now.wall)];
        w.add(p);
    }
    // Out of descriptors for two of them.
    w.fake.refuse_watches(2);
    w.sync();
    assert!(w.fake.signals().is_empty(), "nothing was signalled");
    assert!(w.fake.spawns().is_empty(), "nothing was started again");
    for pid in &pids {
        assert!(w.fake.is_alive(*pid));
    }
    // A recheck finds them alive (and now watchable): still nothing.
    w.next_timer();
    assert!(w.fake.signals().is_empty());
    assert_eq!(w.fake.watch_calls().len(), 5, "three, then the two again");
    assert_eq!(
        w.agent.next_deadline(),
        None,
        "watched now: no more polling"
    );
    assert!(w
        .store
        .pods()
        .all(|p| p.status.processes[0].restart_count == 0));

    // Still out of descriptors, and one of them dies: the recheck sees it.
    let mut w = World::new();
    let pid = w.fake.add_process(vec![]);
    let mut p = pod("q", RestartPolicy::Always);
    p.spec.ports.clear();
    p.status.processes = vec![recorded(pid, 0, w.now.wall)];
    w.add(p);
    w.fake.refuse_watches(100);
    w.sync();
    w.next_timer();
    w.next_timer();
    assert!(w.fake.spawns().is_empty(), "alive: not restarted");
    w.fake.exit(pid, ExitReason::Code(0));
    w.reap();
    assert!(w.fake.spawns().is_empty(), "no pidfd, so no report");
    w.next_timer();
    assert_eq!(w.fake.spawns().len(), 1, "the recheck found it gone");
    assert_eq!(w.status("q").restart_count, 1);
}

/// Issue 9: a process that cannot be watched is warned about once, not at
/// each recheck (the warnings differ by pid, so the daemon's folding of
/// identical lines did not help: 208 such pids wrote 12 MB an hour).
#[test]
fn a_process_that_cannot_be_watched_is_warned_about_once() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let mut w = World::new();
    let pid = w.fake.add_process(vec![]);
    let mut p = pod("q", RestartPolicy::Always);
    p.spec.ports.clear();
    p.status.phase = PodPhase::Running;
    p.status.processes = vec![recorded(pid, 0, w.now.wall)];
    w.add(p);
    w.fake.refuse_watches(100);
    tracing::subscriber::with_default(subscriber, || {
        w.sync();
        for _ in 0..5 {
            w.next_timer();
        }
    });
    assert!(
        w.fake.watch_calls().len() >= 6,
        "each recheck tried again: {:?}",
        w.fake.watch_calls()
    );
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("cannot be watched").count(), 1, "{text}");
    assert!(w.fake.is_alive(pid) && w.fake.signals().is_empty());
}

#[test]
fn restart_pod_stops_and_starts_again_counting_a_restart() {
    let mut w = World::new();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("p", RestartPolicy::Always));
    w.sync();
    let mut out = Outbox::default();
    assert!(w.agent.restart_pod(&mut w.store, "p", w.now, &mut out));
    w.reap();
    assert_eq!(w.fake.spawns().len(), 2);
    let st = w.status("p");
    assert_eq!(st.restart_count, 1);
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(143));
    assert_eq!(st.last_state.as_ref().unwrap().reason, "Restarted");
    // Being deleted: refused.
    w.delete("p");
    let mut out = Outbox::default();
    assert!(!w.agent.restart_pod(&mut w.store, "p", w.now, &mut out));
}

#[test]
fn a_changed_spec_restarts_the_pod_once_and_a_label_change_not_at_all() {
    let mut w = World::new();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("p", RestartPolicy::Always));
    w.sync();
    let bump = |w: &mut World, change: &dyn Fn(&mut Pod)| {
        w.store.update_pod("p", |p| {
            change(p);
            p.metadata.generation += 1;
            true
        });
    };
    // Labels only: a new generation, the same spec.
    bump(&mut w, &|p| {
        p.metadata.labels.insert("tier".into(), "x".into());
    });
    w.sync();
    assert_eq!(w.fake.spawns().len(), 1, "nothing restarted for a label");

    // A new command: restarted in place by the sync (a cluster's owning
    // node), and not again by the poke of the node that took the apply.
    bump(&mut w, &|p| {
        p.spec.processes[0].command = vec!["sleep".into(), "2".into()]
    });
    w.sync();
    w.reap();
    let mut out = Outbox::default();
    assert!(!w
        .agent
        .restart_if_spec_changed(&mut w.store, "p", w.now, &mut out));
    w.sync();
    assert_eq!(w.fake.spawns().len(), 2);
    assert_eq!(w.status("p").restart_count, 1);

    // The poke first (single host), then the sync: once again.
    bump(&mut w, &|p| {
        p.spec.processes[0].command = vec!["sleep".into(), "3".into()]
    });
    let mut out = Outbox::default();
    assert!(w
        .agent
        .restart_if_spec_changed(&mut w.store, "p", w.now, &mut out));
    w.reap();
    w.sync();
    assert_eq!(w.fake.spawns().len(), 3);
    assert_eq!(w.status("p").restart_count, 2);
    assert_eq!(w.fake.spawns()[2].argv, ["sleep", "3"], "the new spec runs");
}

#[test]
fn kill_signals_each_running_process_group() {
    let mut w = World::new();
    w.add(pod("p", RestartPolicy::Always));
    w.sync();
    let pid = w.pid("p");
    assert_eq!(w.agent.kill_pod(&mut w.store, "p", Signal::HUP, w.now), 1);
    assert_eq!(
        w.fake.signals(),
        [sent(SignalTarget::Group(pid), Signal::HUP)]
    );
    assert_eq!(
        w.agent.kill_pod(&mut w.store, "nope", Signal::HUP, w.now),
        0
    );
}

#[test]
fn recover_records_unrecorded_processes_and_stops_strays() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    let uid = w.pod("web-1").metadata.uid.clone();
    // Started by the previous daemon, which died before writing it down.
    let unrecorded = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    // Its pod is gone from the store.
    let stray = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", "no-such-uid", "main", 0),
    )]);
    // Another daemon's process: never touched.
    let foreign = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("other", &uid, "main", 0),
    )]);
    let mut out = Outbox::default();
    w.agent.recover(&mut w.store, w.now, &mut out);
    w.sync();
    assert!(w.fake.spawns().is_empty(), "no duplicate was started");
    assert_eq!(w.fake.watch_calls(), [unrecorded]);
    assert_eq!(w.pid("web-1"), unrecorded);
    assert!(!w.fake.is_alive(stray));
    assert!(w.fake.is_alive(foreign));
}

#[test]
fn a_copied_marker_does_not_replace_a_recorded_live_process() {
    let mut w = World::new();
    let real = w.fake.add_process(vec![]);
    let mut p = pod("web-1", RestartPolicy::Always);
    p.status.processes = vec![recorded(real, 0, w.now.wall)];
    let uid = p.metadata.uid.clone();
    w.add(p);
    let copy = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    let mut out = Outbox::default();
    w.agent.recover(&mut w.store, w.now, &mut out);
    w.sync();
    assert_eq!(w.pid("web-1"), real);
    assert!(w.fake.is_alive(copy), "not ours to kill either");
}

/// Issue 9 (crash stress): the daemon died after a deleted pod's process
/// ended but before the pod's removal was written down. The restarted
/// daemon finds the pod still being deleted and its process gone: the pod
/// goes, and no run of it is started, let alone left running with no pod
/// (it used to be restarted, then the pod removed before the start's
/// result came back: a process nobody owned until the next restart).
#[test]
fn a_deleted_pod_whose_process_ended_while_the_daemon_was_down_is_removed_not_restarted() {
    let mut w = World::new();
    let mut p = pod("web-1", RestartPolicy::Always);
    p.metadata.deletion_timestamp = Some(t0());
    p.status.phase = PodPhase::Running;
    p.status.processes = vec![recorded(4242, 0, w.now.wall)];
    w.add(p);
    let mut out = Outbox::default();
    w.agent.recover(&mut w.store, w.now, &mut out);
    let out = w.sync();
    assert_eq!(
        w.fake.live_pids(),
        Vec::<i32>::new(),
        "nothing left running"
    );
    assert_eq!(out.removed, ["web-1"]);
    assert!(w.store.pod("web-1").is_none());
    assert!(
        w.fake.spawns().is_empty(),
        "a pod being deleted is not started again"
    );
}

/// Issue 9: a daemon restarted while a pod was being deleted finishes the
/// deletion as it began: SIGTERM and the pod's grace period, then SIGKILL;
/// not an immediate SIGKILL of a process it found, nor a new run.
#[test]
fn a_deletion_under_way_at_a_restart_keeps_its_grace_period() {
    let mut w = World::new();
    let mut p = pod("web-1", RestartPolicy::Always);
    p.metadata.deletion_timestamp = Some(t0());
    p.status.phase = PodPhase::Running;
    let uid = p.metadata.uid.clone();
    // One process recorded, one whose start never reached the state file.
    let recorded_pid = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    p.status.processes = vec![recorded(recorded_pid, 0, w.now.wall)];
    let mut q = pod("web-2", RestartPolicy::Always);
    q.metadata.deletion_timestamp = Some(t0());
    let unrecorded = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &q.metadata.uid, "main", 0),
    )]);
    w.add(p);
    w.add(q);
    let mut out = Outbox::default();
    w.agent.recover(&mut w.store, w.now, &mut out);
    w.sync();
    assert_eq!(signals_to(&w.fake, recorded_pid), [Signal::TERM]);
    assert_eq!(signals_to(&w.fake, unrecorded), [Signal::TERM]);
    assert!(w.fake.spawns().is_empty());
    assert!(w.store.pod("web-1").is_some() && w.store.pod("web-2").is_some());
    // They ignore SIGTERM: SIGKILL when the grace period is over, and the
    // pods go once their processes are gone.
    w.advance(Duration::from_secs(30));
    w.fire();
    assert_eq!(
        signals_to(&w.fake, recorded_pid),
        [Signal::TERM, Signal::KILL]
    );
    assert_eq!(
        signals_to(&w.fake, unrecorded),
        [Signal::TERM, Signal::KILL]
    );
    let out = w.reap();
    let mut removed = out.removed.clone();
    removed.sort();
    assert_eq!(removed, ["web-1", "web-2"]);
    assert_eq!(w.fake.live_pids(), Vec::<i32>::new());
}

/// Signals sent to `pid` or to the group it leads, in order.
fn signals_to(fake: &FakeRuntime, pid: i32) -> Vec<Signal> {
    fake.signals()
        .iter()
        .filter(|s| s.target == SignalTarget::Group(pid) || s.target == SignalTarget::Process(pid))
        .map(|s| s.signal)
        .collect()
}

// ---- sd_notify ------------------------------------------------------------

/// A notify pod running as uid 1000, and a helper in its session.
fn notify_world() -> (World, i32, i32) {
    let mut w = World::new();
    w.add(notify_pod("svc"));
    w.sync();
    let main = w.pid("svc");
    w.fake.set_facts(
        main,
        ProcessFacts {
            session: main,
            uid: 1000,
        },
    );
    let helper = w.fake.add_process(vec![]);
    w.fake.set_facts(
        helper,
        ProcessFacts {
            session: main,
            uid: 1000,
        },
    );
    (w, main, helper)
}

#[test]
fn notify_from_the_process_and_its_session_is_heard() {
    let (mut w, main, helper) = notify_world();
    assert!(!w.status("svc").ready, "not ready before READY=1");
    w.notify(helper, 1000, b"READY=1\nSTATUS=serving");
    assert!(w.status("svc").ready);
    assert_eq!(w.status("svc").notify_status.as_deref(), Some("serving"));
    // Pings keep the watchdog quiet; a missed one restarts.
    w.advance(Duration::from_secs(1));
    w.notify(main, 1000, b"WATCHDOG=1");
    w.next_timer();
    assert_eq!(w.fake.signals(), [], "pinged within the interval");
    w.next_timer();
    assert_eq!(
        w.fake.signals(),
        [sent(SignalTarget::Group(main), Signal::TERM)]
    );
}

/// Issue 10: a forged WATCHDOG=trigger from another user, or from a
/// process outside the pod's tree, changes nothing; even a forged
/// environment (the old marker) does not help.
#[test]
fn notify_from_outside_the_tree_or_as_another_user_is_dropped() {
    let (mut w, main, _) = notify_world();
    let uid = w.pod("svc").metadata.uid.clone();
    let outsider = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    w.fake.set_facts(
        outsider,
        ProcessFacts {
            session: outsider,
            uid: 1000,
        },
    );
    let other_user = w.fake.add_process(vec![]);
    w.fake.set_facts(
        other_user,
        ProcessFacts {
            session: main,
            uid: 1001,
        },
    );
    for (pid, uid) in [(outsider, 1000), (other_user, 1001), (999_999, 1000)] {
        w.notify(pid, uid, b"READY=1\nWATCHDOG=trigger\nSTATUS=forged");
    }
    let st = w.status("svc");
    assert!(!st.ready);
    assert_eq!(st.notify_status, None);
    assert!(w.fake.signals().is_empty(), "no restart");
    // Root may speak for any process of the tree.
    let root_helper = w.fake.add_process(vec![]);
    w.fake.set_facts(
        root_helper,
        ProcessFacts {
            session: main,
            uid: 0,
        },
    );
    w.notify(root_helper, 0, b"STATUS=from root");
    assert_eq!(w.status("svc").notify_status.as_deref(), Some("from root"));
}

/// Issue 10: MAINPID= naming a process outside the pod, or one of
/// another user, is refused: `kill` and `delete` never reach it.
#[test]
fn mainpid_is_honoured_only_inside_the_tree_as_the_pods_user() {
    let (mut w, main, helper) = notify_world();
    let unrelated_root = w.fake.add_process(vec![]);
    let same_user_elsewhere = w.fake.add_process(vec![]);
    w.fake.set_facts(
        same_user_elsewhere,
        ProcessFacts {
            session: same_user_elsewhere,
            uid: 1000,
        },
    );
    let root_in_tree = w.fake.add_process(vec![]);
    w.fake.set_facts(
        root_in_tree,
        ProcessFacts {
            session: main,
            uid: 0,
        },
    );
    for target in [unrelated_root, same_user_elsewhere, root_in_tree] {
        w.notify(main, 1000, format!("MAINPID={target}").as_bytes());
        assert_eq!(w.pid("svc"), main, "MAINPID={target} refused");
    }
    w.agent.kill_pod(&mut w.store, "svc", Signal::HUP, w.now);
    assert_eq!(
        w.fake.signals(),
        [sent(SignalTarget::Group(main), Signal::HUP)]
    );
    // The legitimate one: a process of the tree, as the pod's user.
    w.notify(main, 1000, format!("MAINPID={helper}").as_bytes());
    assert_eq!(w.pid("svc"), helper);
    assert_eq!(
        w.status("svc").identity,
        Some(FakeRuntime::identity_of(helper))
    );
    // The old main's exit is not a failure now; the new one's is.
    w.fake.exit(main, ExitReason::Code(0));
    w.reap();
    assert_eq!(w.fake.spawns().len(), 1);
}

#[test]
fn notify_is_parsed_from_what_systemd_sends() {
    assert_eq!(
        crate::agent::notify::parse(b"READY=1\nMAINPID=7"),
        [NotifyMsg::Ready, NotifyMsg::MainPid(7)]
    );
}

// ---- usage ------------------------------------------------------------------

#[test]
fn usage_is_measured_for_running_processes_of_this_node() {
    let mut w = World::new();
    w.add(pod("p", RestartPolicy::Always));
    w.sync();
    let pid = w.pid("p");
    let used = ProcessUsage {
        cpu_seconds: 1.5,
        memory_bytes: 4 << 20,
    };
    w.fake.set_process_usage(pid, used);
    let mut p = w.pod("p").clone();
    w.agent.fill_usage(&mut p);
    assert_eq!(p.status.processes[0].usage, Some(used));
    assert_eq!(w.pod("p").status.processes[0].usage, None, "never stored");
    let mut elsewhere = p.clone();
    elsewhere.status.node_name = Some("n2".into());
    elsewhere.status.processes[0].usage = None;
    w.agent.fill_usage(&mut elsewhere);
    assert_eq!(elsewhere.status.processes[0].usage, None);
}

#[test]
fn identity_is_what_the_fake_reports() {
    // Guards the fixtures above: a recorded identity matches a live fake.
    let w = World::new();
    let pid = w.fake.add_process(vec![]);
    let id: ProcessIdentity = FakeRuntime::identity_of(pid);
    assert_eq!(
        crate::runtime::ProcessRuntime::identity(&w.fake, pid),
        Some(id)
    );
}

// ---- cgroups, init processes, pid files (issues 13, 14) ----------------------

#[test]
fn each_process_is_spawned_into_its_own_cgroup_of_the_pods() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let uid = w.pod("web-1").metadata.uid.clone();
    let spawns = w.fake.spawns();
    let cg = spawns[0].cgroup.clone().expect("spawned into a cgroup");
    assert_eq!(cg.pod().pod_uid(), uid);
    assert_eq!(w.fake.cgroup_of_pid(w.pid("web-1")), Some(cg));
    assert_eq!(w.agent.limits_unavailable(), None);
    assert!(World::without_cgroups()
        .agent
        .limits_unavailable()
        .is_some());
}

#[test]
fn an_oom_kill_is_reported_as_oomkilled_137() {
    let mut w = World::new();
    w.add(pod("hog", RestartPolicy::Never));
    w.sync();
    w.fake.oom_kill(w.pid("hog"));
    let out = w.reap();
    match &w.status("hog").state {
        ProcessState::Terminated(t) => {
            assert_eq!(t.reason, ProcessReason::OomKilled);
            assert_eq!((t.exit_code, t.signal), (Some(137), Some(9)));
        }
        other => panic!("{other:?}"),
    }
    assert!(out.notes.iter().any(|n| n.reason == "OOMKilled"));
    assert_eq!(w.pod("hog").display_status(), "OOMKilled");
}

#[test]
fn a_plain_sigkill_is_not_an_oom_kill() {
    let mut w = World::new();
    w.add(pod("k", RestartPolicy::Never));
    w.sync();
    w.fake.exit(w.pid("k"), ExitReason::Signal(Signal::KILL));
    w.reap();
    match &w.status("k").state {
        ProcessState::Terminated(t) => assert_eq!(t.reason, ProcessReason::Error),
        other => panic!("{other:?}"),
    }
}

#[test]
fn leftovers_in_the_cgroup_die_at_the_end_of_the_grace_period_then_the_pod_goes() {
    let mut w = World::new();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let main = w.pid("web-1");
    let cg = w.fake.cgroup_of_pid(main).unwrap();
    // Escaped: it left the group and is no longer our child's child.
    let escaped = w.fake.add_process_in(&cg, vec![]);
    w.fake.exit(escaped, ExitReason::Signal(Signal::KILL));
    let escaped2 = w.fake.add_process_in(&cg, vec![]);
    w.fake.ignores_signals(escaped2);
    w.delete("web-1");
    let out = w.reap();
    assert!(!w.fake.is_alive(main));
    assert!(out.removed.is_empty(), "its cgroup is not empty yet");
    assert!(w
        .fake
        .cgroup_calls()
        .contains(&CgroupCall::SignalTree(cg.clone(), Signal::TERM)));
    // The grace period ends: the rest of the tree is killed, reaped, and
    // then the pod leaves the store with its cgroup.
    let mut removed = vec![];
    for _ in 0..5 {
        w.next_timer();
        removed.extend(w.reap().removed);
        if !removed.is_empty() {
            break;
        }
    }
    assert_eq!(removed, ["web-1"]);
    assert!(!w.fake.is_alive(escaped2));
    assert_eq!(w.fake.pending_removals(), [cg.pod()], "released once empty");
    w.fake.run_removals();
    assert!(w.fake.pod_cgroups().is_empty(), "its cgroup was removed");
}

/// Issue 13: a v1 kill fences the cgroup with pids.max 0 instead of
/// freezing it, and a child whose fork was already past that check joins
/// the cgroup's list only after the kill's last listing. The agent kills
/// again at each look while the cgroup is not empty (before, it killed
/// once and then only waited: such a survivor kept the pod draining
/// forever).
#[test]
fn a_process_that_appears_in_the_cgroup_after_its_kill_is_killed_at_the_next_look() {
    let mut w = World::new();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let cg = w.fake.cgroup_of_pid(w.pid("web-1")).unwrap();
    let escaped = w.fake.add_process_in(&cg, vec![]);
    w.fake.ignores_signals(escaped);
    w.delete("web-1");
    assert!(w.reap().removed.is_empty(), "the escaped one is left");
    // The grace period ends: the cgroup is killed, and the late child
    // appears in it right after.
    w.next_timer();
    assert!(!w.fake.is_alive(escaped));
    let late = w.fake.add_process_in(&cg, vec![]);
    w.fake.ignores_signals(late);
    let mut removed = vec![];
    for _ in 0..5 {
        removed.extend(w.reap().removed);
        if !removed.is_empty() || w.agent.next_deadline().is_none() {
            break;
        }
        removed.extend(w.next_timer().removed);
    }
    assert!(!w.fake.is_alive(late), "killed at a later look");
    assert_eq!(removed, ["web-1"]);
    let kills = w
        .fake
        .cgroup_calls()
        .iter()
        .filter(|c| **c == CgroupCall::Kill(cg.pod()))
        .count();
    assert!(kills >= 2, "{kills} kills");
}

/// Issue 9: the pod's cgroup was removed in the daemon's loop (rmdir in
/// every hierarchy: 1.9 s for 2,000 pods, no restart and no API answer
/// meanwhile). Now the loop releases it and goes on: the pod leaves the
/// store while the removal is still pending, and nothing is removed
/// inside the loop's call (before the fix, the fake recorded a `Remove`
/// there).
#[test]
fn a_deleted_pod_leaves_without_waiting_for_its_cgroup_removal() {
    let mut w = World::new();
    w.fake.dies_on(Signal::TERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let cg = w.fake.cgroup_of_pid(w.pid("web-1")).unwrap().pod();
    w.delete("web-1");
    let out = w.reap();
    assert_eq!(out.removed, ["web-1"]);
    assert!(
        !w.fake
            .cgroup_calls()
            .contains(&CgroupCall::Remove(cg.clone())),
        "no rmdir in the loop: {:?}",
        w.fake.cgroup_calls()
    );
    assert_eq!(w.fake.pending_removals(), std::slice::from_ref(&cg));
    w.fake.run_removals();
    assert!(w.fake.pod_cgroups().is_empty());
}

/// A completed pod restarted while its cgroup's removal is pending gets
/// the cgroup back: the removal never runs under the new run.
#[test]
fn a_completed_pod_restarted_takes_its_cgroup_back_from_the_removal() {
    let mut w = World::new();
    w.add(pod("once", RestartPolicy::Never));
    w.sync();
    let cg = w.fake.cgroup_of_pid(w.pid("once")).unwrap();
    w.fake.exit(w.pid("once"), ExitReason::Code(0));
    w.reap();
    assert_eq!(w.pod("once").status.phase, PodPhase::Succeeded);
    assert_eq!(w.fake.pending_removals(), [cg.pod()]);
    let mut out = Outbox::default();
    assert!(w.agent.restart_pod(&mut w.store, "once", w.now, &mut out));
    assert!(w.fake.pending_removals().is_empty(), "taken back");
    w.fake.run_removals();
    assert_eq!(w.fake.cgroup_of_pid(w.pid("once")), Some(cg.clone()));
    assert_eq!(w.fake.pod_cgroups(), [cg.pod()]);
}

/// At start, the cgroups the previous daemon left: a pod it no longer
/// knows has its cgroup killed and released; a known live pod keeps its.
#[test]
fn a_start_kills_and_releases_the_cgroups_of_pods_it_does_not_know() {
    let mut w = World::new();
    let mut rt = w.fake.clone();
    let gone = rt.create_pod_cgroup("uid-of-a-gone-pod").unwrap();
    let left = w
        .fake
        .add_process_in(&gone.process("main").unwrap(), vec![]);
    w.add(pod("web-1", RestartPolicy::Always));
    let known = rt.create_pod_cgroup(&w.pod("web-1").metadata.uid).unwrap();
    let mut out = Outbox::default();
    w.agent.recover(&mut w.store, w.now, &mut out);
    assert!(!w.fake.is_alive(left), "what was left in it is killed");
    assert_eq!(w.fake.pending_removals(), [gone]);
    w.fake.run_removals();
    assert_eq!(w.fake.pod_cgroups(), [known]);
}

fn init_pod(name: &str) -> Pod {
    let mut p = pod(name, RestartPolicy::Always);
    p.spec.init_processes = vec![process("init0"), process("init1")];
    p
}

#[test]
fn init_processes_run_one_at_a_time_before_the_processes() {
    let mut w = World::new();
    w.add(init_pod("app"));
    w.sync();
    let names = |w: &World| -> Vec<String> {
        w.fake
            .spawns()
            .iter()
            .map(|s| {
                s.log_path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(w.fake.spawns().len(), 1);
    assert_eq!(w.pod("app").display_status(), "Init:0/2");
    let init0 = w.pod("app").status.init_processes[0].pid.unwrap() as i32;
    w.fake.exit(init0, ExitReason::Code(0));
    w.reap();
    w.sync();
    assert_eq!(w.fake.spawns().len(), 2);
    assert_eq!(w.pod("app").display_status(), "Init:1/2");
    assert_eq!(w.pod("app").status.phase, crate::api::PodPhase::Pending);
    let init1 = w.pod("app").status.init_processes[1].pid.unwrap() as i32;
    w.fake.exit(init1, ExitReason::Code(0));
    w.reap();
    w.sync();
    assert_eq!(w.fake.spawns().len(), 3, "{:?}", names(&w));
    assert_eq!(w.pod("app").status.phase, crate::api::PodPhase::Running);
    assert_eq!(w.pod("app").display_status(), "Running");
}

#[test]
fn a_pid_file_names_the_process_to_supervise() {
    let mut w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.pid");
    std::fs::write(&file, "1\n").unwrap();
    let mut p = pod("d", RestartPolicy::Always);
    p.spec.processes[0].pid_file = Some(file.clone());
    w.add(p);
    w.sync();
    assert!(
        !file.exists(),
        "a pid file of an earlier run is removed first"
    );
    let starter = w.fake.live_pids()[0];
    assert!(
        w.pod("d").status.processes.iter().all(|s| s.pid.is_none()),
        "the starter is not the process"
    );
    // The starter forks the daemon (in its cgroup), which writes the
    // file; the starter exits 0.
    let cg = w.fake.cgroup_of_pid(starter).unwrap();
    let daemon = w.fake.add_process_in(&cg, vec![]);
    std::fs::write(&file, format!("{daemon}\n")).unwrap();
    w.fake.exit(starter, ExitReason::Code(0));
    w.reap();
    assert_eq!(w.pid("d"), daemon);
    assert_eq!(w.status("d").restart_count, 0);
    // Its death is a crash of the process: restarted.
    w.fake.exit(daemon, ExitReason::Signal(Signal::KILL));
    w.reap();
    assert_eq!(w.status("d").restart_count, 1);
}

// ---- reaping: held exits and batches (`dispatch.rs` reap, daemon/reaping.rs)

/// One `reap` with `hold`, as the daemon calls it.
fn reap_holding(w: &mut World) -> Reaped {
    let mut out = Outbox::default();
    w.agent.reap(&mut w.store, w.now, &mut out, true)
}

#[test]
fn a_final_exit_is_recorded_before_its_zombie_is_reaped() {
    let mut w = World::new();
    w.add(pod("job-0", RestartPolicy::Never));
    w.add(pod("web", RestartPolicy::Always));
    w.sync();
    let (job, web) = (w.pid("job-0"), w.pid("web"));
    w.fake.exit(job, ExitReason::Code(0));
    w.fake.exit(web, ExitReason::Code(1));

    assert_eq!(reap_holding(&mut w), Reaped::Held);
    // Recorded in the store, the zombie left for whoever reaps it.
    let st = w.status("job-0");
    assert!(
        matches!(
            st.state,
            ProcessState::Terminated(TerminatedState {
                exit_code: Some(0),
                ..
            })
        ),
        "{st:?}"
    );
    assert_eq!(
        w.fake.pending_exits(),
        [(job, ExitReason::Code(0)), (web, ExitReason::Code(1))]
    );
    assert_eq!(
        w.status("web").restart_count,
        0,
        "nothing past the held exit"
    );

    // The daemon wrote the store: the zombie goes, and the next reap
    // handles the rest (an Always pod's exit is not held).
    w.agent.reap_held();
    assert_eq!(w.fake.pending_exits(), [(web, ExitReason::Code(1))]);
    assert_eq!(reap_holding(&mut w), Reaped::All);
    assert!(w.fake.pending_exits().is_empty());
    assert_eq!(w.status("web").restart_count, 1);
    assert!(
        matches!(
            w.status("job-0").state,
            ProcessState::Terminated(TerminatedState {
                exit_code: Some(0),
                ..
            })
        ),
        "recorded once, not again"
    );
}

#[test]
fn a_held_exit_the_daemon_did_not_release_is_reaped_once_at_the_next_reap() {
    let mut w = World::new();
    w.add(pod("once", RestartPolicy::OnFailure));
    w.sync();
    let pid = w.pid("once");
    w.fake.exit(pid, ExitReason::Code(3));
    assert_eq!(reap_holding(&mut w), Reaped::Held);
    assert_eq!(w.fake.spawns().len(), 2, "OnFailure restarts it at once");
    // No reap_held (say its write failed): the next reap reaps it first
    // instead of reporting the same exit again.
    let mut out = Outbox::default();
    assert_eq!(
        w.agent.reap(&mut w.store, w.now, &mut out, false),
        Reaped::All
    );
    assert!(w.fake.pending_exits().is_empty());
    assert_eq!(w.status("once").restart_count, 1);
    assert_eq!(w.fake.spawns().len(), 2);
}

#[test]
fn a_deleted_pods_exit_is_not_held() {
    let mut w = World::new();
    w.add(pod("gone", RestartPolicy::Never));
    w.sync();
    let pid = w.pid("gone");
    let mut p = w.pod("gone").clone();
    p.metadata.deletion_timestamp = Some(t0());
    w.add(p);
    w.fake.exit(pid, ExitReason::Code(0));
    assert_eq!(reap_holding(&mut w), Reaped::All);
    assert!(w.fake.pending_exits().is_empty());
}

#[test]
fn exits_are_handled_a_batch_at_a_time() {
    let mut w = World::new();
    let n = REAP_BATCH + 5;
    for i in 0..n {
        let mut p = pod(&format!("web-{i}"), RestartPolicy::Always);
        p.spec.ports.clear(); // ten ports in the range: not for 105 pods
        w.add(p);
    }
    w.sync();
    for i in 0..n {
        let pid = w.pid(&format!("web-{i}"));
        w.fake.exit(pid, ExitReason::Code(1));
    }
    assert_eq!(reap_holding(&mut w), Reaped::More);
    assert_eq!(w.fake.pending_exits().len(), 5, "the rest wait as zombies");
    assert_eq!(reap_holding(&mut w), Reaped::All);
    assert!(w.fake.pending_exits().is_empty());
    let restarted = (0..n)
        .filter(|i| w.status(&format!("web-{i}")).restart_count == 1)
        .count();
    assert_eq!(restarted, n);
}

#[test]
fn deleted_pods_are_stopped_a_batch_at_a_time_those_left_first() {
    let mut w = World::new();
    let n = SYNC_BATCH + 5;
    for i in 0..n {
        let mut p = pod(&format!("web-{i:03}"), RestartPolicy::Always);
        p.spec.ports.clear();
        w.add(p);
    }
    w.sync();
    assert_eq!(w.fake.spawns().len(), n, "starts are not batched");
    for i in 0..n {
        let mut p = w.pod(&format!("web-{i:03}")).clone();
        p.metadata.deletion_timestamp = Some(t0());
        w.add(p);
    }
    let terms = |w: &World| {
        w.fake
            .signals()
            .iter()
            .filter(|s| s.signal == Signal::TERM)
            .count()
    };
    let mut out = Outbox::default();
    assert!(
        w.agent.sync_some(&mut w.store, w.now, &mut out, true),
        "more left"
    );
    assert_eq!(terms(&w), SYNC_BATCH);
    // A new pod meanwhile: started at once, and the five left stopped.
    let mut early = pod("aaa", RestartPolicy::Always);
    early.spec.ports.clear();
    w.add(early);
    assert!(
        !w.agent.sync_some(&mut w.store, w.now, &mut out, true),
        "nothing left"
    );
    assert_eq!(terms(&w), n);
    assert!(w.status("aaa").pid.is_some());
}

#[test]
fn pods_that_cannot_start_do_not_keep_the_agent_busy() {
    let mut w = World::new();
    // Ten ports in the range: the pods past the tenth cannot start, and
    // need attention again at every look; one call looks at each once.
    let n = SYNC_BATCH * 2;
    for i in 0..n {
        w.add(pod(&format!("web-{i:03}"), RestartPolicy::Always));
    }
    let mut out = Outbox::default();
    assert!(!w.agent.sync_some(&mut w.store, w.now, &mut out, true));
    assert_eq!(w.fake.spawns().len(), 10, "ten ports, ten pods running");
    assert!(!w.agent.sync_some(&mut w.store, w.now, &mut out, true));
    assert_eq!(w.fake.spawns().len(), 10);
}

#[test]
fn an_init_process_exit_is_held_in_an_always_pod() {
    let mut w = World::new();
    w.add(init_pod("app"));
    w.sync();
    let init0 = w.pod("app").status.init_processes[0].pid.unwrap() as i32;
    w.fake.exit(init0, ExitReason::Code(0));
    assert_eq!(
        reap_holding(&mut w),
        Reaped::Held,
        "its completion is not run again"
    );
    w.agent.reap_held();
    assert_eq!(reap_holding(&mut w), Reaped::All);
    w.sync();
    let init1 = w.pod("app").status.init_processes[1].pid.unwrap() as i32;
    w.fake.exit(init1, ExitReason::Code(0));
    assert_eq!(reap_holding(&mut w), Reaped::Held);
    w.agent.reap_held();
    assert_eq!(reap_holding(&mut w), Reaped::All);
    w.sync();
    let main = w.pid("app");
    w.fake.exit(main, ExitReason::Code(1));
    assert_eq!(
        reap_holding(&mut w),
        Reaped::All,
        "an Always process's exit is not held"
    );
}
