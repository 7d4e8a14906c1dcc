//! The keeper (`runtime::keeper`, issue 13): `drover daemon` runs as a
//! keeper K and the daemon D, K's child. K outlives D: it reaps the pods
//! that exit while no daemon runs, hands their statuses to the next D,
//! restarts D after a crash, and as PID 1 turns SIGTERM into a graceful
//! stop of every pod.
//!
//! An outage is made deterministic by freezing K (SIGSTOP) while D is
//! killed: the pod's exit then happens, and waits as a zombie of K, while
//! no daemon runs; K resumes, reaps it, and only then starts the next D.

use crate::harness::*;
use drover::api::{Job, PodPhase};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn argv_of(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// D killed with K frozen; `during` runs while no daemon runs; then K
/// resumes and the harness waits for the D it starts.
fn outage(d: &mut TestDaemon, during: impl FnOnce(&TestDaemon, u32)) {
    let keeper = d.keeper_pid();
    let old = d.daemon_pid();
    send_signal(keeper, libc::SIGSTOP);
    send_signal(old, libc::SIGKILL);
    d.wait_until("the daemon dead", SOON, || !alive(old));
    during(d, keeper);
    send_signal(keeper, libc::SIGCONT);
    d.wait_new_daemon(old);
}

/// Waits until `pid` has exited and waits, unreaped, for `keeper`.
fn wait_zombie_of(d: &TestDaemon, pid: u32, keeper: u32) {
    d.wait_until(
        "the process exited, a zombie of the keeper",
        SOON,
        || matches!(proc_stat(pid), Some(('Z', pp, _)) if pp == keeper),
    );
}

#[test]
fn a_pod_that_exits_while_the_daemon_is_down_reports_its_exit_code() {
    let mut d = TestDaemon::start(&[]);
    let go = d.file("go");
    let ran = d.file("ran");
    // First run: waits for `go`, then exits 7. Later runs: sleep.
    let script = format!(
        "if [ -f {ran} ]; then exec sleep 1000; fi; touch {ran}; \
         while [ ! -f {go} ]; do sleep 0.05; done; exit 7",
        ran = ran.display(),
        go = go.display()
    );
    d.apply(
        "seven.toml",
        &pod_unit("seven", "OnFailure", &argv_of(&sh(&script)), ""),
    );
    let pid = main_pid(&d.wait_running("seven"));
    d.wait_persisted();

    outage(&mut d, |d, keeper| {
        std::fs::write(&go, "").unwrap();
        wait_zombie_of(d, pid, keeper);
    });

    let p = d.wait_for("seven restarted after its exit 7", SOON, || {
        d.pod("seven")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(last.exit_code, Some(7), "{last:?}");
    assert_eq!(last.reason, "Error", "{last:?}");
    assert_eq!(last.signal, None);
    let events = d.events_for("Pod/seven");
    assert!(
        events.iter().any(|e| e["reason"] == "ExitedWhileDown"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("exited with code 7"))),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e["reason"] == "ProcessLost"),
        "{events:#?}"
    );
    d.assert_teardown_leaves_nothing();
}

#[test]
fn a_job_whose_pod_succeeded_during_the_outage_is_not_rerun() {
    let mut d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    let go = d.file("go");
    let script = format!(
        "echo run >> {}; while [ ! -f {} ]; do sleep 0.05; done; exit 0",
        runs.display(),
        go.display()
    );
    let unit = format!(
        "kind = \"Job\"\nname = \"once\"\n[spec]\nbackoff_limit = 3\n[spec.template]\n\
         restart_policy = \"Never\"\ntermination_grace_period = \"2s\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(&argv_of(&sh(&script)))
    );
    d.apply("once.toml", &unit);
    let pod = d.wait_for("the job's pod running", SOON, || {
        d.pods()
            .into_iter()
            .find(|p| p.metadata.labels.get("job-name").map(String::as_str) == Some("once"))
            .filter(all_running)
    });
    let pid = main_pid(&pod);
    d.wait_persisted();

    outage(&mut d, |d, keeper| {
        std::fs::write(&go, "").unwrap();
        wait_zombie_of(d, pid, keeper);
    });

    d.drover_ok(&[
        "wait",
        "job/once",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
    let job: Job = serde_json::from_value(d.object("jobs", "once").unwrap()).unwrap();
    assert_eq!((job.status.succeeded, job.status.failed), (1, 0));
    let text = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(text.lines().count(), 1, "the job ran again: {text:?}");
    let p = d.pod_now(&pod.metadata.name);
    let state = serde_json::to_value(&p.status.processes[0].state).unwrap();
    assert_eq!(state["terminated"]["exit_code"], 0, "{state}");
    assert_eq!(state["terminated"]["reason"], "Completed", "{state}");
    d.assert_teardown_leaves_nothing();
}

#[test]
fn the_keeper_restarts_a_killed_daemon_and_adopted_exits_keep_their_status() {
    let mut d = TestDaemon::start(&[(
        "solo.toml",
        &pod_unit("solo", "Always", &["sleep", "1000"], ""),
    )]);
    let pid = main_pid(&d.wait_running("solo"));
    d.wait_persisted();
    let keeper = d.keeper_pid();
    let first = d.daemon_pid();

    d.crash();
    assert_ne!(d.daemon_pid(), first);
    assert_eq!(d.keeper_pid(), keeper, "the same keeper");
    let p = d.wait_running("solo");
    assert_eq!(
        (main_pid(&p), p.status.processes[0].restart_count),
        (pid, 0),
        "re-adopted, not restarted"
    );
    assert_eq!(proc_stat(pid).map(|s| s.1), Some(keeper), "K is its parent");

    // The adopted process is K's child, not D's: K reaps it and passes
    // its status on (before the keeper: reason Unknown, no exit code).
    send_signal(pid, libc::SIGTERM);
    let p = d.wait_for("solo restarted", SOON, || {
        d.pod("solo")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(
        (last.exit_code, last.signal, last.reason.as_str()),
        (Some(143), Some(libc::SIGTERM), "Error"),
        "{last:?}"
    );
    d.wait_until("no zombies under the keeper", SOON, || {
        zombies_of(keeper).is_empty()
    });

    // A second crash: the same again, and the table K hands over holds
    // the exit above without confusing the new D.
    let before = main_pid(&p);
    d.crash();
    let p = d.wait_running("solo");
    assert_eq!(
        (main_pid(&p), p.status.processes[0].restart_count),
        (before, 1)
    );
    d.assert_teardown_leaves_nothing();
}

/// `drover daemon` as PID 1 of a PID namespace (`unshare --pid --fork`,
/// as in a container): K reaps orphans that were never the daemon's, and
/// SIGTERM stops every pod with its grace period before drover exits.
/// Before the keeper the daemon, as PID 1, exited 250 ms after SIGTERM
/// and the kernel SIGKILLed every pod: no "done" line.
#[test]
fn as_pid_1_drover_reaps_orphans_and_stops_pods_gracefully_on_sigterm() {
    let dir = tempfile::Builder::new()
        .prefix("drover-pid1-")
        .tempdir()
        .unwrap();
    let path = |p: &str| dir.path().join(p);
    std::fs::create_dir_all(path("units")).unwrap();
    let trace = path("trace");
    let script = format!(
        "trap 'echo term >> {t}; sleep 1; echo done >> {t}; exit 0' TERM; \
         echo up >> {t}; while :; do sleep 0.1; done",
        t = trace.display()
    );
    let unit = format!(
        "kind = \"Pod\"\nname = \"graceful\"\n[spec]\nrestart_policy = \"Always\"\n\
         termination_grace_period = \"20s\"\n[[spec.processes]]\nname = \"main\"\n\
         command = {}\n",
        argv(&argv_of(&sh(&script)))
    );
    std::fs::write(path("units/graceful.toml"), unit).unwrap();
    std::fs::write(path("drover.toml"), DEFAULT_CONFIG).unwrap();
    let mut ns = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(DROVER)
        .arg("daemon")
        .arg("--config")
        .arg(path("drover.toml"))
        .arg("--socket")
        .arg(path("sock"))
        .arg("--state-dir")
        .arg(path("state"))
        .arg("--units")
        .arg(path("units"))
        .arg("--log-dir")
        .arg(path("logs"))
        .arg("--node-name")
        .arg("pid1")
        .current_dir(dir.path())
        .env_remove("DROVER_SOCKET")
        .env_remove("DROVER_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(path("daemon.log")).unwrap())
        .spawn()
        .expect("unshare");
    let log = || std::fs::read_to_string(path("daemon.log")).unwrap_or_default();
    let deadline = Instant::now() + SOON;
    let wait = |what: &str, cond: &mut dyn FnMut() -> bool| {
        while !cond() {
            assert!(Instant::now() < deadline, "timed out: {what}\n{}", log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // K is unshare's child (PID 1 inside), D is K's.
    let mut keeper = 0;
    wait("the keeper", &mut || {
        keeper = children_of(ns.id()).first().copied().unwrap_or(0);
        keeper != 0
    });
    wait("the pod running", &mut || {
        std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("up"))
    });
    let daemons = children_of(keeper);
    assert_eq!(daemons.len(), 1, "K runs D alone: {daemons:?}");

    // A stream of orphans from outside the daemon's tree: each `sh`
    // leaves a `sleep` whose parent is gone, so the namespace's PID 1
    // inherits it.
    let status = Command::new("nsenter")
        .args(["--target", &keeper.to_string(), "--pid", "--mount", "--"])
        .args([
            "sh",
            "-c",
            "i=0; while [ $i -lt 40 ]; do sh -c 'sleep 0.5 &'; i=$((i+1)); done",
        ])
        .status()
        .expect("nsenter");
    assert!(status.success());
    let orphans: Vec<u32> = children_of(keeper)
        .into_iter()
        .filter(|p| !daemons.contains(p))
        .collect();
    assert!(
        !orphans.is_empty(),
        "the orphans should be the keeper's children now"
    );
    wait("every orphan reaped", &mut || {
        children_of(keeper) == daemons && zombies_of(keeper).is_empty()
    });

    // SIGTERM to PID 1: the pod gets SIGTERM, runs its trap for a second
    // (well past 250 ms), exits; then drover exits 0.
    send_signal(keeper, libc::SIGTERM);
    let mut exit = None;
    wait("drover exited", &mut || {
        exit = ns.try_wait().unwrap();
        exit.is_some()
    });
    let trace_text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        trace_text.contains("term\ndone"),
        "the pod did not get its grace period: {trace_text:?}\n{}",
        log()
    );
    assert_eq!(exit.unwrap().code(), Some(0), "{}", log());
}

/// A keeper SIGKILLed (by a user, an OOM killer): its daemon exits and
/// leaves the pods running, so the service's next start (a new keeper and
/// daemon) gets the state dir and takes them back. Before, the orphaned
/// daemon served on unseen and every new daemon failed on the state dir
/// lock (found by benches/crash_stress.py).
#[test]
fn a_daemon_whose_keeper_is_killed_exits_and_leaves_its_pods_to_the_next() {
    let mut d = TestDaemon::start(&[(
        "kept.toml",
        &pod_unit("kept", "Always", &["sleep", "1000"], ""),
    )]);
    let pid = main_pid(&d.wait_running("kept"));
    d.wait_persisted();
    let daemon = d.daemon_pid();
    send_signal(d.keeper_pid(), libc::SIGKILL);
    d.wait_until("the daemon exited after its keeper", SOON, || {
        !alive(daemon)
    });
    assert!(alive(pid), "the pod's process was stopped");
    assert!(
        std::fs::read_to_string(d.path("daemon.log"))
            .unwrap()
            .contains("keeper is gone: exiting"),
        "{}",
        d.log()
    );
    d.restart();
    let p = d.wait_running("kept");
    assert_eq!(main_pid(&p), pid, "re-adopted, not restarted");
    assert_eq!(p.status.processes[0].restart_count, 0);
    d.assert_teardown_leaves_nothing();
}

/// `systemctl stop drover` (or a reboot) and start again: every pod is
/// stopped gracefully, then comes back as an enabled systemd service or a
/// supervisord `autostart` program would: in place, the same pods, one
/// restart counted, the stop's exit as their last state. Before, each
/// process was recorded as ended for good: the standalone pod stayed down
/// (Failed, 143) and the ReplicaSet's pods were replaced by new ones.
#[test]
fn pods_stopped_with_drover_start_again_with_it() {
    let mut d = TestDaemon::start(&[
        (
            "solo.toml",
            &pod_unit("solo", "Always", &["sleep", "1000"], ""),
        ),
        (
            "once.toml",
            &pod_unit("once", "Never", &["sleep", "1000"], ""),
        ),
        ("web.toml", &rs_unit("web", "web", 2)),
    ]);
    let solo = d.wait_running("solo");
    let once = d.wait_running("once");
    let web = names(&d.wait_pods("app=web", 2));
    d.wait_persisted();

    d.stop_service();
    for pid in [main_pid(&solo), main_pid(&once)] {
        assert!(!alive(pid), "stopped with drover: {pid}");
    }
    d.restart();

    let solo = d.wait_for("solo running again", SOON, || {
        d.pod("solo").filter(all_running)
    });
    let st = &solo.status.processes[0];
    assert_eq!(st.restart_count, 1, "{st:?}");
    let last = st.last_state.as_ref().expect("the stop as last state");
    assert_eq!(
        (last.exit_code, last.signal),
        (Some(143), Some(libc::SIGTERM))
    );
    d.wait_until("the same two web pods running", SOON, || {
        let now = d.selected("app=web");
        names(&now) == web && now.iter().all(all_running)
    });
    // Never means never: it stays as the stop left it.
    let once = d.pod("once").expect("once kept");
    assert_eq!(once.status.phase, PodPhase::Failed);
    d.assert_teardown_leaves_nothing();
}

/// The other side of the outage above: the daemon itself reaps the Job's
/// pod, then dies before its paced write. The exit must be on disk before
/// the pod's zombie is reaped (`daemon/reaping.rs`); before that fix the
/// next daemon found the pod lost and ran the index again
/// (`benches/crash_stress.py` saw it twice in 200 kills).
///
/// Deterministic: index 0 exits first and its exit is written at once (no
/// write for 100 ms before); index 1 exits right after, inside the 100 ms
/// a paced write waits, and the daemon is SIGKILLed the moment its zombie
/// is gone.
#[test]
fn a_job_pod_reaped_just_before_the_daemon_died_is_not_rerun() {
    let mut d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    for i in 0..2 {
        let fifo = std::ffi::CString::new(d.file(&format!("go{i}")).to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    }
    // Each index writes its pid, blocks until its fifo is opened and
    // closed, records its run and exits 0.
    let dir = d.path("files").display().to_string();
    let script = format!(
        "echo $$ > {dir}/pid$JOB_COMPLETION_INDEX; read x < {dir}/go$JOB_COMPLETION_INDEX; \
         echo run >> {}; exit 0",
        runs.display()
    );
    let unit = format!(
        "kind = \"Job\"\nname = \"twice\"\n[spec]\ncompletions = 2\nparallelism = 2\n\
         completion_mode = \"Indexed\"\nbackoff_limit = 3\n[spec.template]\n\
         restart_policy = \"Never\"\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(&argv_of(&sh(&script)))
    );
    d.apply("twice.toml", &unit);
    let pid_of_index = |i: usize| -> u32 {
        d.wait_for("the index's pid", SOON, || {
            d.read_file(&format!("pid{i}"))
                .and_then(|s| s.trim().parse().ok())
        })
    };
    let (first, second) = (pid_of_index(0), pid_of_index(1));
    d.wait_persisted();
    let release = |i: usize| {
        // Opening blocks until the pod reads; closing ends its `read`.
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(d.file(&format!("go{i}")))
                .unwrap(),
        );
    };
    release(0);
    d.wait_until("index 0 reaped", SOON, || proc_stat(first).is_none());
    release(1);
    // No pause between the reap and the kill: spin on /proc.
    let deadline = Instant::now() + SOON;
    while proc_stat(second).is_some() {
        assert!(Instant::now() < deadline, "index 1 never reaped");
        std::hint::spin_loop();
    }
    let old = d.daemon_pid();
    send_signal(old, libc::SIGKILL);
    d.wait_new_daemon(old);

    d.drover_ok(&[
        "wait",
        "job/twice",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
    let job: Job = serde_json::from_value(d.object("jobs", "twice").unwrap()).unwrap();
    let text = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(text.lines().count(), 2, "an index ran again: {text:?}");
    assert_eq!((job.status.succeeded, job.status.failed), (2, 0));
    d.assert_teardown_leaves_nothing();
}
