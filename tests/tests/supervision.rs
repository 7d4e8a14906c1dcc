//! Stopping process trees: SIGTERM, the grace period, SIGKILL, double
//! forks; reaping.

use crate::harness::*;
use std::time::{Duration, Instant};

const STUBBORN: &[&str] = &["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"];

fn grace_pod(name: &str, command: &[&str], grace: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"{name}\"\n[spec]\ntermination_grace_period = \"{grace}\"\n\
         [[spec.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(command)
    )
}

/// `drover restart pod`, then waits for the new run; returns the pod and
/// how long the restart took.
fn restart(d: &TestDaemon, name: &str) -> (drover::api::Pod, Duration) {
    let before = d.pod_now(name).status.processes[0].restart_count;
    let t0 = Instant::now();
    let out = d.drover_ok(&["restart", "pod", name]);
    assert_eq!(out, format!("pod/{name} restarted\n"));
    let p = d.wait_for(&format!("{name} restarted"), SOON, || {
        d.pod(name)
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == before + 1)
    });
    (p, t0.elapsed())
}

#[test]
fn sigterm_ignored_is_sigkilled_after_the_grace_period() {
    let mut d = TestDaemon::start(&[("stubborn.toml", &grace_pod("stubborn", STUBBORN, "1s"))]);
    let first = d.wait_running("stubborn");
    let old = main_pid(&first);

    let (p, took) = restart(&d, "stubborn");
    assert!(
        took >= Duration::from_millis(900),
        "SIGKILL came before the grace period: {took:?}"
    );
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(
        (last.exit_code, last.signal),
        (Some(137), Some(9)),
        "{last:?}"
    );
    assert_eq!(last.reason, "Restarted");
    assert!(!alive(old), "the old process {old} survived");
    let page = d.drover_ok(&["describe", "pod", "stubborn"]);
    assert_eq!(fields(&page, "Exit Code"), ["137"], "{page}");
    assert_eq!(fields(&page, "Restart Count"), ["1"], "{page}");

    // Delete: the same escalation, and nothing is left.
    let pid = main_pid(&p);
    let t0 = Instant::now();
    assert_eq!(
        d.drover_ok(&["delete", "pod", "stubborn"]),
        "pod \"stubborn\" deleted\n"
    );
    d.wait_gone("stubborn");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "deleted before the grace period"
    );
    d.wait_until("the stubborn process killed", SOON, || !alive(pid));
    assert_eq!(pod_processes(&p.metadata.uid), Vec::<u32>::new());
    d.assert_teardown_leaves_nothing();
}

#[test]
fn well_behaved_process_exits_on_sigterm_with_143() {
    let mut d = TestDaemon::start(&[(
        "polite.toml",
        &grace_pod("polite", &["sleep", "1000"], "30s"),
    )]);
    let first = d.wait_running("polite");
    let (p, took) = restart(&d, "polite");
    assert!(
        took < Duration::from_secs(10),
        "waited for the grace period: {took:?}"
    );
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(
        (last.exit_code, last.signal),
        (Some(143), Some(15)),
        "{last:?}"
    );
    assert_ne!(main_pid(&p), main_pid(&first));
    assert!(!alive(main_pid(&first)));

    let pid = main_pid(&p);
    let t0 = Instant::now();
    d.drover_ok(&["delete", "pod", "polite"]);
    d.wait_gone("polite");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!alive(pid));
    d.assert_teardown_leaves_nothing();
}

#[test]
fn double_forked_grandchildren_are_killed() {
    let cmd = &["sh", "-c", "(setsid sleep 1000 &); exec sleep 1000"];
    let mut d = TestDaemon::start(&[("forky.toml", &grace_pod("forky", cmd, "2s"))]);
    let p = d.wait_running("forky");
    let main = main_pid(&p);
    let uid = p.metadata.uid.clone();
    let grandchild = d.wait_for("the grandchild to appear", SOON, || {
        pod_processes(&uid).into_iter().find(|&pid| pid != main)
    });
    let (_, _, gc_start) = proc_stat(grandchild).unwrap();
    // It left the process group: only the marker finds it.
    assert_ne!(pgid(grandchild), pgid(main));

    // A restart takes the grandchild down with its parent.
    let (p2, _) = restart(&d, "forky");
    d.wait_until("the first grandchild gone", SOON, || {
        !same_process_alive(grandchild, gc_start)
    });
    let main2 = main_pid(&p2);
    let grandchild2 = d.wait_for("the new grandchild", SOON, || {
        pod_processes(&uid).into_iter().find(|&pid| pid != main2)
    });

    d.drover_ok(&["delete", "pod", "forky"]);
    d.wait_gone("forky");
    let daemon = d.daemon_pid();
    d.wait_until("every process of forky gone and reaped", SOON, || {
        pod_processes(&uid).is_empty()
            && !alive(main2)
            && !alive(grandchild2)
            && zombies_of(daemon).is_empty()
    });
    d.assert_teardown_leaves_nothing();
}

fn same_process_alive(pid: u32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, _, t)) if t == start && s != 'Z')
}

#[test]
fn no_zombies_after_many_exits() {
    let d = TestDaemon::start_with(
        &[],
        Options {
            config: "backoff_initial = \"10ms\"\nbackoff_max = \"20ms\"\n",
            ..Options::default()
        },
    );
    // Every run leaves five orphans that end on their own and are
    // re-parented to the daemon (a subreaper), then exits.
    d.apply(
        "churn.toml",
        &pod_unit(
            "churn",
            "Always",
            &[
                "sh",
                "-c",
                "for i in 1 2 3 4 5; do (sleep 0.05 &); done; exit 1",
            ],
            "",
        ),
    );
    d.wait_until("churn restarted 15 times", Duration::from_secs(30), || {
        d.pod("churn")
            .is_some_and(|p| p.status.processes[0].restart_count >= 15)
    });
    let uid = d.pod_now("churn").metadata.uid;
    d.drover_ok(&["delete", "pod", "churn"]);
    d.wait_gone("churn");
    let daemon = d.daemon_pid();
    d.wait_until("no zombie children of the daemon", SOON, || {
        zombies_of(daemon).is_empty() && pod_processes(&uid).is_empty()
    });
    // The daemon itself has no children left at all.
    let children: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&p| matches!(proc_stat(p), Some((_, pp, _)) if pp == daemon))
        .collect();
    assert_eq!(children, Vec::<u32>::new());
}

/// 100 copies SIGKILLed in one burst: fewer SIGCHLDs come than exits (a
/// pending SIGCHLD absorbs the next ones), and more exits than the 64
/// pids the handler keeps (src/runtime/exit_hints.rs). Every copy is
/// restarted once all the same, and no zombie is left: the exits no
/// SIGCHLD named are found by the scan of every child that follows the
/// named ones.
#[test]
fn a_burst_of_crashes_restarts_every_copy() {
    let unit = rs_unit("burst", "burst", 100);
    let d = TestDaemon::start(&[("burst.toml", &unit)]);
    let pids: Vec<u32> = d.wait_pods("app=burst", 100).iter().map(main_pid).collect();
    for &pid in &pids {
        send_signal(pid, libc::SIGKILL);
    }
    d.wait_until("every copy restarted once", SOON, || {
        let pods = d.selected("app=burst");
        pods.len() == 100
            && pods.iter().all(|p| {
                all_running(p)
                    && p.status.processes[0].restart_count == 1
                    && !pids.contains(&main_pid(p))
            })
    });
    assert_eq!(zombies_of(d.daemon_pid()), Vec::<u32>::new());
}
