//! Running out of file descriptors (issue 9): a restarted daemon that
//! cannot watch every re-adopted process through a pidfd still supervises
//! them all, and never takes "no descriptor left" for an exit.

use crate::harness::*;
use std::collections::BTreeMap;

const PODS: u32 = 60;

/// name -> (pid, restart count) of every pod.
fn pids(d: &TestDaemon) -> BTreeMap<String, (u32, u32)> {
    d.pods()
        .iter()
        .map(|p| {
            let st = &p.status.processes[0];
            (
                p.metadata.name.clone(),
                (st.pid.unwrap_or(0), st.restart_count),
            )
        })
        .collect()
}

#[test]
fn processes_a_restarted_daemon_cannot_watch_are_kept_and_still_supervised() {
    let mut d = TestDaemon::start(&[("many.toml", &rs_unit("many", "many", PODS))]);
    d.wait_pods("app=many", PODS as usize);
    d.wait_persisted();
    let before = pids(&d);
    d.kill9();
    // 64 descriptors in all: pidfds for at most half of the sixty, the
    // rest for the API, the store, the logs (see runtime::exit_watch).
    d.nofile = Some(64);
    d.restart();
    let after = pids(&d);
    assert_eq!(after, before, "a re-adopted process was restarted or lost");
    for (name, (pid, _)) in &before {
        assert!(alive(*pid), "{name}'s process {pid} was killed");
    }
    assert!(
        d.log().contains("cannot be watched"),
        "expected some processes to go unwatched\n{}",
        d.log()
    );
    // Every one of them is still supervised: each that dies is noticed
    // (by its pidfd, or by a recheck) and restarted.
    for (pid, _) in before.values() {
        send_signal(*pid, libc::SIGKILL);
    }
    d.wait_until("every pod restarted once", SOON, || {
        let now = pids(&d);
        now.len() == PODS as usize
            && now
                .iter()
                .all(|(name, (pid, restarts))| *restarts == 1 && *pid != before[name].0)
    });
    d.wait_pods("app=many", PODS as usize);
    d.assert_teardown_leaves_nothing();
}
