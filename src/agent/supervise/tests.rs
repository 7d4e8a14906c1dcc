//! Tier-2 tests of the agent: the real state machine against the fake
//! runtime and made-up time. No processes, no sleeping.

use super::*;
use crate::api::{
    Dur, Object, ObjectMeta, PodSpec, PodStatus, PortRange, PortRequest, ProcessSpec,
};
use crate::runtime::fake::{SignalSent, SignalTarget, SpawnFailure};
use crate::runtime::FakeRuntime;
use chrono::TimeZone;

struct World {
    fake: FakeRuntime,
    agent: Agent<FakeRuntime>,
    store: Store,
    now: Instant,
    wall: DateTime<Utc>,
    _logs: tempfile::TempDir,
}

fn process(name: &str) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        command: vec!["server".into(), "--port=${PORT_HTTP}".into()],
        user: None,
        group: None,
        working_dir: None,
        env: Default::default(),
        notify: false,
        watchdog: None,
        liveness: None,
        readiness: None,
        startup: None,
        ..Default::default()
    }
}

fn pod(name: &str, policy: RestartPolicy) -> Pod {
    let t = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    Pod {
        metadata: ObjectMeta::new(name, t),
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

impl World {
    fn new() -> World {
        let fake = FakeRuntime::new();
        let logs = tempfile::tempdir().unwrap();
        let agent = Agent::new(
            fake.clone(),
            AgentConfig {
                node_name: "n1".into(),
                logs: LogDir::new(logs.path().to_path_buf(), 1 << 20),
                backoff: BackoffConfig::default(),
                base_env: vec![("PATH".into(), "/bin".into())],
                probe_port_is_free: false,
                notify_socket: Some("/run/test/notify.sock".into()),
                instance: "test".into(),
            },
        );
        World {
            fake,
            agent,
            store: Store::new(),
            now: Instant::now(),
            wall: Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(),
            _logs: logs,
        }
    }

    fn add(&mut self, p: Pod) {
        self.store.put(Object::Pod(p));
    }

    fn sync(&mut self) -> Effects {
        let mut fx = Effects::default();
        self.agent
            .sync(&mut self.store, self.now, self.wall, &mut fx);
        fx
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.wall += chrono::Duration::seconds(secs as i64);
    }

    /// Reaps what the fake queued and feeds it to the agent.
    fn reap(&mut self) -> Effects {
        let mut fx = Effects::default();
        for (pid, exit) in self.fake.reap_now() {
            self.agent.on_exit(
                &mut self.store,
                pid,
                Some(exit),
                self.now,
                self.wall,
                &mut fx,
            );
        }
        fx
    }

    fn fire(&mut self, t: Timer) -> Effects {
        let mut fx = Effects::default();
        self.agent
            .on_timer(&mut self.store, t, self.now, self.wall, &mut fx);
        fx
    }

    fn pod(&self, name: &str) -> &Pod {
        self.store.pod(name).expect("pod in store")
    }

    fn pid(&self, name: &str) -> i32 {
        self.pod(name).status.processes[0].pid.expect("running") as i32
    }
}

trait ReapNow {
    fn reap_now(&self) -> Vec<(i32, ExitReason)>;
}

impl ReapNow for FakeRuntime {
    fn reap_now(&self) -> Vec<(i32, ExitReason)> {
        let mut me = self.clone();
        ProcessRuntime::reap(&mut me)
    }
}

#[test]
fn a_new_pod_is_started_with_its_environment_and_ports() {
    let mut w = World::new();
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let spawns = w.fake.spawns();
    assert_eq!(spawns.len(), 1);
    let env = &spawns[0].env;
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("DROVER_POD_NAME").as_deref(), Some("web-1"));
    assert_eq!(get("DROVER_NODE_NAME").as_deref(), Some("n1"));
    assert_eq!(get("PORT_HTTP").as_deref(), Some("8080"));
    assert_eq!(spawns[0].argv, ["server", "--port=8080"]);
    let p = w.pod("web-1");
    assert_eq!(p.status.phase, PodPhase::Running);
    assert!(p.status.processes[0].ready);
    assert!(matches!(
        p.status.processes[0].state,
        ProcessState::Running { .. }
    ));
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
    let fx = w.reap();
    // First restart: immediate.
    assert_eq!(w.fake.spawns().len(), 2);
    assert!(fx.timers.is_empty());
    let st = &w.pod("web-1").status.processes[0];
    assert_eq!(st.restart_count, 1);
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(1));
    // Second crash: 10s backoff, CrashLoopBackOff shown.
    let second = w.pid("web-1");
    w.fake.exit(second, ExitReason::Signal(9));
    let fx = w.reap();
    assert_eq!(w.fake.spawns().len(), 2, "no spawn during backoff");
    let st = &w.pod("web-1").status.processes[0];
    assert_eq!(st.restart_count, 1, "a restart counts when it happens");
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(137));
    assert_eq!(st.last_state.as_ref().unwrap().signal, Some(9));
    match &st.state {
        ProcessState::Waiting { reason, message } => {
            assert_eq!(reason, "CrashLoopBackOff");
            assert!(
                message.as_ref().unwrap().contains("back-off 10s"),
                "{message:?}"
            );
        }
        other => panic!("expected waiting, got {other:?}"),
    }
    assert_eq!(w.pod("web-1").display_status(), "CrashLoopBackOff");
    let (at, timer) = fx.timers[0].clone();
    assert_eq!(at, w.now + Duration::from_secs(10));
    w.advance(10);
    w.fire(timer);
    assert_eq!(w.fake.spawns().len(), 3);
    assert_eq!(w.pod("web-1").status.processes[0].restart_count, 2);
    assert_eq!(w.pod("web-1").status.phase, PodPhase::Running);
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
    w.store.update_pod("web-1", |p| {
        p.metadata.deletion_timestamp = Some(Utc::now());
        true
    });
    let fx = w.sync();
    assert_eq!(
        w.fake.signals(),
        [SignalSent {
            target: SignalTarget::Group(pid),
            signal: SIGTERM
        }]
    );
    let (at, timer) = fx.timers[0].clone();
    assert_eq!(at, w.now + Duration::from_secs(30));
    // The process ignores SIGTERM: the grace timer escalates.
    w.advance(30);
    w.fire(timer);
    assert!(w.fake.signals().contains(&SignalSent {
        target: SignalTarget::Group(pid),
        signal: SIGKILL
    }));
    assert!(!w.fake.is_alive(pid), "SIGKILL always kills");
    let fx = w.reap();
    assert_eq!(fx.removed, ["web-1"]);
    assert!(w.store.pod("web-1").is_none());
    assert_eq!(w.fake.spawns().len(), 1, "a deleted pod is not restarted");
}

#[test]
fn a_well_behaved_process_stops_on_sigterm_without_a_kill() {
    let mut w = World::new();
    w.fake.dies_on(SIGTERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    w.store.update_pod("web-1", |p| {
        p.metadata.deletion_timestamp = Some(Utc::now());
        true
    });
    let fx = w.sync();
    let timer = fx.timers[0].1.clone();
    let fx2 = w.reap();
    assert_eq!(fx2.removed, ["web-1"]);
    // The stale grace timer does nothing.
    w.fire(timer);
    assert!(!w
        .fake
        .signals()
        .iter()
        .any(|s| s.signal == SIGKILL && matches!(s.target, SignalTarget::Process(_))));
}

#[test]
fn escaped_descendants_are_found_by_marker_and_killed() {
    let mut w = World::new();
    w.fake.dies_on(SIGTERM);
    w.add(pod("web-1", RestartPolicy::Always));
    w.sync();
    let uid = w.pod("web-1").metadata.uid.clone();
    let grandchild = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 0),
    )]);
    // A process of another run (or another pod) is not touched.
    let stranger = w.fake.add_process(vec![(
        env::MARKER.into(),
        env::marker_value("test", &uid, "main", 7),
    )]);
    w.store.update_pod("web-1", |p| {
        p.metadata.deletion_timestamp = Some(Utc::now());
        true
    });
    w.sync();
    let fx = w.reap();
    // The pod goes at once; the escaped grandchild got SIGTERM and a sweep
    // is due at the end of the grace period.
    assert_eq!(fx.removed, ["web-1"]);
    assert!(w.fake.signals().contains(&SignalSent {
        target: SignalTarget::Process(grandchild),
        signal: SIGTERM
    }));
    let (at, sweep) = fx.timers[0].clone();
    assert_eq!(at, w.now + Duration::from_secs(30));
    assert!(matches!(sweep, Timer::Sweep { .. }));
    w.advance(30);
    w.fire(sweep);
    assert!(!w.fake.is_alive(grandchild));
    assert!(w.fake.is_alive(stranger));
}

#[test]
fn a_missing_user_is_reported_not_looped() {
    let mut w = World::new();
    w.fake.fail_next_spawn(SpawnFailure::UserNotFound);
    w.fake.fail_next_spawn(SpawnFailure::UserNotFound);
    let mut p = pod("p", RestartPolicy::Always);
    p.spec.processes[0].user = Some("nosuchuser".into());
    w.add(p);
    let fx = w.sync();
    // One immediate retry, then a backoff with the reason shown.
    assert_eq!(w.fake.spawns().len(), 2);
    assert_eq!(fx.timers.len(), 1);
    let st = &w.pod("p").status.processes[0];
    match &st.state {
        ProcessState::Waiting { reason, message } => {
            assert_eq!(reason, "CreateContainerConfigError");
            assert!(
                message.as_ref().unwrap().contains("nosuchuser"),
                "{message:?}"
            );
        }
        other => panic!("expected waiting, got {other:?}"),
    }
    assert!(fx
        .notes
        .iter()
        .any(|n| n.warning && n.message.contains("does not exist")));
}

#[test]
fn a_restarted_daemon_adopts_live_processes_and_records_lost_ones() {
    let mut w = World::new();
    let live = w.fake.add_process(vec![]);
    let mut a = pod("alive", RestartPolicy::Always);
    a.status.phase = PodPhase::Running;
    a.status.processes = vec![ProcessStatus {
        pid: Some(live as u32),
        identity: Some(FakeRuntime::identity_of(live)),
        restart_count: 4,
        started: true,
        ready: true,
        state: ProcessState::Running { started_at: w.wall },
        ..ProcessStatus::waiting("main", "x")
    }];
    let mut l = a.clone();
    l.metadata = ObjectMeta::new("lost", w.wall);
    l.status.processes[0].pid = Some(4242);
    l.status.processes[0].identity = Some(FakeRuntime::identity_of(4242));
    w.add(a);
    w.add(l);
    let fx = w.sync();
    // The live one is watched, not started again; the lost one restarts.
    assert_eq!(fx.watch, [live]);
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
    assert_eq!(w.pod("alive").status.processes[0].restart_count, 4);
    let lost = &w.pod("lost").status.processes[0];
    assert_eq!(lost.restart_count, 5);
    assert_eq!(lost.last_state.as_ref().unwrap().reason, "Unknown");
    // The adopted process's exit arrives through its pidfd, without status.
    let mut fx = Effects::default();
    assert!(w
        .agent
        .on_exit(&mut w.store, live, None, w.now, w.wall, &mut fx));
    assert_eq!(w.pod("alive").status.processes[0].restart_count, 5);
}

#[test]
fn restart_pod_stops_and_starts_again_counting_a_restart() {
    let mut w = World::new();
    w.fake.dies_on(SIGTERM);
    w.add(pod("p", RestartPolicy::Always));
    w.sync();
    let mut fx = Effects::default();
    assert!(w
        .agent
        .restart_pod(&mut w.store, "p", w.now, w.wall, &mut fx));
    w.reap();
    assert_eq!(w.fake.spawns().len(), 2);
    let st = &w.pod("p").status.processes[0];
    assert_eq!(st.restart_count, 1);
    assert_eq!(st.last_state.as_ref().unwrap().exit_code, Some(143));
    assert_eq!(st.last_state.as_ref().unwrap().reason, "Restarted");
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
    let mut fx = Effects::default();
    w.agent.recover(&mut w.store, w.wall, &mut fx);
    let fx = w.sync();
    assert!(w.fake.spawns().is_empty(), "no duplicate was started");
    assert_eq!(fx.watch, [unrecorded]);
    assert_eq!(w.pid("web-1"), unrecorded);
    assert!(!w.fake.is_alive(stray));
    assert!(w.fake.is_alive(foreign));
}
