//! Re-adoption: the daemon dies (`kill -9`) or stops, its processes keep
//! running, and the next daemon takes them over: no process lost, none
//! duplicated, restart counts kept (product.md §5).

use crate::harness::*;
use drover::api::Pod;
use std::collections::BTreeMap;

/// name -> (pid, restart count, uid) of every process-0 of every pod.
fn snapshot(pods: &[Pod]) -> BTreeMap<String, (u32, u32, String)> {
    pods.iter()
        .map(|p| {
            (
                p.metadata.name.clone(),
                (
                    main_pid(p),
                    p.status.processes[0].restart_count,
                    p.metadata.uid.clone(),
                ),
            )
        })
        .collect()
}

#[track_caller]
fn assert_one_process_per_pod(snap: &BTreeMap<String, (u32, u32, String)>) {
    for (name, (pid, _, uid)) in snap {
        assert_eq!(pod_processes(uid), [*pid], "processes of pod {name}");
    }
}

#[test]
fn kill9_keeps_processes_and_a_restart_readopts_them() {
    let solo = pod_unit("solo", "Always", &["sleep", "1000"], "");
    let mut d = TestDaemon::start(&[
        ("web.toml", &rs_unit("web", "web", 2)),
        ("solo.toml", &solo),
    ]);
    d.wait_pods("app=web", 2);
    let solo_pod = d.wait_running("solo");
    // Give solo a restart, so there is a count to keep.
    send_signal(main_pid(&solo_pod), libc::SIGKILL);
    d.wait_until("solo restarted", SOON, || {
        d.pod("solo")
            .is_some_and(|p| all_running(&p) && p.status.processes[0].restart_count == 1)
    });
    let before = snapshot(&d.pods());
    assert_eq!(before.len(), 3);
    assert_eq!(before["solo"].1, 1);
    d.wait_persisted();

    d.kill9();
    for (name, (pid, _, _)) in &before {
        assert!(alive(*pid), "{name}'s process {pid} died with the daemon");
    }
    assert_one_process_per_pod(&before);

    d.restart();
    let after = snapshot(
        &d.wait_pods("app=web", 2)
            .into_iter()
            .chain([d.wait_running("solo")])
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        after, before,
        "pids, restart counts or pods changed across the restart"
    );
    assert_one_process_per_pod(&after);
    assert_eq!(d.pods().len(), 3);

    // An adopted process (not the daemon's child) that dies is noticed,
    // restarted and counted.
    let (web0, (pid, _, _)) = after.iter().find(|(n, _)| n.starts_with("web-")).unwrap();
    send_signal(*pid, libc::SIGKILL);
    let p = d.wait_for("the adopted process restarted", SOON, || {
        d.pod(web0)
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    assert_ne!(main_pid(&p), *pid);
    assert_eq!(pod_processes(&p.metadata.uid), [main_pid(&p)]);
    assert_eq!(d.pods().len(), 3);

    // A second crash of the daemon, then a clean stop: the same again.
    let before = snapshot(&d.pods());
    d.wait_persisted();
    d.kill9();
    d.restart();
    assert_eq!(snapshot(&d.pods()), before);
    d.stop();
    for (pid, _, _) in before.values() {
        assert!(alive(*pid), "a process died with a SIGTERMed daemon");
    }
    d.restart();
    assert_eq!(snapshot(&d.pods()), before);
    assert_one_process_per_pod(&before);

    d.assert_teardown_leaves_nothing();
}

#[test]
fn a_process_that_died_while_the_daemon_was_down_is_restarted() {
    let mut d = TestDaemon::start(&[(
        "lost.toml",
        &pod_unit("lost", "Always", &["sleep", "1000"], ""),
    )]);
    let p = d.wait_running("lost");
    let pid = main_pid(&p);
    d.wait_persisted();
    d.kill9();
    send_signal(pid, libc::SIGKILL);
    // Dead and reaped (by init, its new parent): the pid is gone.
    d.wait_until("the orphaned process reaped", SOON, || {
        proc_stat(pid).is_none()
    });

    d.restart();
    let p = d.wait_for("lost restarted", SOON, || {
        d.pod("lost")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    assert_ne!(main_pid(&p), pid);
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(last.reason, "Unknown");
    assert_eq!(last.exit_code, None);
    assert_eq!(
        last.message.as_deref(),
        Some("the process ended while the drover daemon was not running")
    );
    let events = d.events_for("Pod/lost");
    assert!(
        events.iter().any(|e| e["reason"] == "ProcessLost"),
        "{events:#?}"
    );
    assert_eq!(pod_processes(&p.metadata.uid), [main_pid(&p)]);
    d.assert_teardown_leaves_nothing();
}

/// The same, when the dead process is still a zombie (its new parent has
/// not reaped it yet) as the daemon starts: a zombie is not a running
/// process and must not be re-adopted.
#[test]
fn a_zombie_is_not_readopted() {
    let mut d = TestDaemon::start_with(
        &[(
            "lost.toml",
            &pod_unit("lost", "Always", &["sleep", "1000"], ""),
        )],
        Options {
            keeper: true,
            ..Options::default()
        },
    );
    let p = d.wait_running("lost");
    let pid = main_pid(&p);
    d.wait_persisted();
    d.kill9();
    send_signal(pid, libc::SIGKILL);
    d.wait_until("the process a zombie of the keeper", SOON, || {
        matches!(proc_stat(pid), Some(('Z', _, _)))
    });
    d.restart();
    let p = d.wait_for("lost restarted", SOON, || {
        d.pod("lost")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(
        (last.reason.as_str(), last.message.as_deref()),
        (
            "Unknown",
            Some("the process ended while the drover daemon was not running")
        )
    );
    let events = d.events_for("Pod/lost");
    assert!(
        events.iter().any(|e| e["reason"] == "ProcessLost"),
        "{events:#?}"
    );
    d.assert_teardown_leaves_nothing();
}

#[test]
fn a_restarted_daemon_never_runs_more_than_replicas() {
    let mut d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 3))]);
    let pods = d.wait_pods("app=web", 3);
    d.wait_persisted();
    d.kill9();
    d.restart();
    // Sample the first moments after the restart: never a fourth pod,
    // never a fourth process.
    let mut samples = 0;
    d.wait_until("30 samples after the restart", SOON, || {
        let now = d.pods();
        assert!(
            now.len() <= 3,
            "{} pods after the restart: {:?}",
            now.len(),
            names(&now)
        );
        let by_pod = processes_by_pod();
        let procs: usize = now
            .iter()
            .map(|p| by_pod.get(&p.metadata.uid).map_or(0, Vec::len))
            .sum();
        assert!(procs <= 3, "{procs} processes after the restart");
        samples += 1;
        samples >= 30
    });
    assert_eq!(names(&d.wait_pods("app=web", 3)), names(&pods));
    assert_eq!(
        d.own_processes().len(),
        3 + 2,
        "three pods, the daemon and its keeper"
    );

    d.assert_teardown_leaves_nothing();
}

/// A change the daemon acknowledged (`scale` exited 0) survives a `kill -9`
/// that follows at once, and a process started for a pod that was never
/// persisted is not left running unsupervised.
#[test]
fn an_acknowledged_scale_survives_an_immediate_kill9() {
    let mut d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 1))]);
    d.wait_pods("app=web", 1);
    d.wait_persisted();
    for round in 0..10 {
        let n = 2 + round;
        d.drover_ok(&["scale", "rs", "web", "--replicas", &n.to_string()]);
        d.kill9();
        d.restart();
        let replicas = d.object("replicasets", "web").unwrap()["spec"]["replicas"].clone();
        assert_eq!(
            replicas, n,
            "round {round}: the acknowledged scale was lost"
        );
        let pods = d.wait_pods("app=web", n as usize);
        d.wait_until("one process per pod, nothing unsupervised", SOON, || {
            d.own_processes().len() == pods.len() + 2
        });
    }
    d.assert_teardown_leaves_nothing();
}

/// Issue 9 (crash stress): the daemon dies while a pod is being deleted
/// (its process ignores SIGTERM, so the grace period runs), and the
/// process dies too before the daemon is back. The new daemon removes the
/// pod without starting it again. It used to restart the lost process,
/// then remove the pod before the start's result came back: a `sleep` of
/// no pod, stopped only by the daemon restart after that.
#[test]
fn a_pod_deleted_before_a_crash_is_not_restarted_after_it() {
    let mut d = TestDaemon::start(&[]);
    d.apply(
        "doomed.toml",
        &pod_unit(
            "doomed",
            "Always",
            &["/bin/sh", "-c", "trap '' TERM; exec sleep 1000"],
            "",
        )
        .replace("\"2s\"", "\"60s\""),
    );
    let p = d.wait_running("doomed");
    let (pid, uid) = (main_pid(&p), p.metadata.uid.clone());
    d.drover_ok(&["delete", "pod", "doomed"]);
    // Acknowledged, so on disk: the pod is being deleted, its process
    // sits out the grace period.
    let p = d.pod_now("doomed");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert!(alive(pid));
    d.kill9();
    send_signal(pid, libc::SIGKILL);
    d.wait_until("the process reaped", SOON, || proc_stat(pid).is_none());

    d.restart();
    d.wait_gone("doomed");
    assert_eq!(
        pod_processes(&uid),
        Vec::<u32>::new(),
        "no run of a deleted pod"
    );
    d.assert_teardown_leaves_nothing();
}

/// Issue 9: a deletion under way when the daemon restarts keeps its grace
/// period. The new daemon sends the process it finds SIGTERM again (its
/// clean-up runs), not SIGKILL at once as it did, and the pod goes when
/// the process has exited.
#[test]
fn a_deletion_under_way_at_a_restart_keeps_its_grace_period() {
    let mut d = TestDaemon::start(&[]);
    // Sits out the first SIGTERM, cleans up and exits at the second: the
    // one the restarted daemon sends.
    let script = "n=0; trap 'n=$((n+1)); if [ $n -ge 2 ]; then echo done > @DIR@/cleaned; exit 0; fi' TERM; \
                  while :; do sleep 0.05; done";
    d.apply(
        "slow.toml",
        &pod_unit("slow", "Always", &["/bin/sh", "-c", script], "").replace("\"2s\"", "\"60s\""),
    );
    let p = d.wait_running("slow");
    let (pid, uid) = (main_pid(&p), p.metadata.uid.clone());
    d.drover_ok(&["delete", "pod", "slow"]);
    assert!(d.pod_now("slow").metadata.deletion_timestamp.is_some());
    d.kill9();
    assert!(alive(pid), "sits out the grace period");

    d.restart();
    d.wait_gone("slow");
    let cleaned = std::fs::read_to_string(d.path("cleaned")).ok();
    assert_eq!(cleaned.as_deref(), Some("done\n"), "its clean-up ran");
    assert_eq!(pod_processes(&uid), Vec::<u32>::new());
    d.assert_teardown_leaves_nothing();
}

/// Issue 9 (found by benches/crash_stress.py): a daemon restarted right
/// after a SIGKILL can find the state dir still locked for a moment (the
/// kernel still tearing the dead one down); it used to exit at once with
/// "another drover daemon is using the state dir". It waits for the lock
/// instead, and takes its pods back.
#[test]
fn a_restart_waits_for_the_state_dir_lock_of_a_daemon_still_dying() {
    use nix::fcntl::{Flock, FlockArg};
    let mut d = TestDaemon::start(&[(
        "kept.toml",
        &pod_unit("kept", "Always", &["sleep", "1000"], ""),
    )]);
    let pid = main_pid(&d.wait_running("kept"));
    d.wait_persisted();
    d.kill9();
    // The lock held by someone else (here: this test) as the daemon starts.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path("state").join("lock"))
        .unwrap();
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("the lock is free");
    let log = d.path("daemon.log");
    let holder = std::thread::spawn(move || {
        // Released once the daemon says it waits for it.
        let deadline = std::time::Instant::now() + SOON;
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("is locked")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon never waited for the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(lock);
    });
    d.restart();
    holder.join().unwrap();
    let p = d.wait_running("kept");
    assert_eq!(main_pid(&p), pid, "re-adopted, not restarted");
    assert_eq!(p.status.processes[0].restart_count, 0);
    d.assert_teardown_leaves_nothing();
}
