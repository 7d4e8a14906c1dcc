//! Whole-tree stop through the pod's cgroup: a descendant that left its
//! process group and session (setsid + double fork) survives a group
//! kill but not a cgroup kill; v1 (freeze, kill, thaw) and v2
//! (cgroup.kill, clone3 into the cgroup, emptiness as an inotify event).

use super::*;

/// `sh` starts a grandchild that escapes: `setsid sh -c 'sleep &'` puts a
/// sleep in a new session, whose parent exits (double fork), then
/// execs a sleep itself. Returns (leader, escaped).
fn start_with_escapee(sb: &mut Sandbox, pod: &PodCgroup) -> (i32, i32) {
    start_with_escapee_in(sb, pod.process("main").unwrap())
}

/// [`start_with_escapee`] in cgroup `cg`.
fn start_with_escapee_in(sb: &mut Sandbox, cg: ProcessCgroup) -> (i32, i32) {
    let script = "setsid sh -c 'sleep 1001 & echo escaped $!'; echo ready; exec sleep 1000";
    let mut req = sb.req(&["sh", "-c", script]);
    req.cgroup = Some(cg);
    let leader = sb.spawn(&req).unwrap().pid;
    let log = sb.wait_log("ready");
    let escaped: i32 = log
        .lines()
        .find_map(|l| l.strip_prefix("escaped "))
        .and_then(|p| p.trim().parse().ok())
        .expect("escaped pid in the log");
    let (l, e) = (
        procfs::stat(leader).unwrap(),
        procfs::stat(escaped).unwrap(),
    );
    assert_ne!(e.pgrp, l.pgrp, "the escapee left the process group");
    assert_ne!(e.session, l.session, "and the session");
    wait_until("the escapee to be orphaned to us", || {
        (procfs::stat(escaped)?.ppid == std::process::id() as i32).then_some(())
    });
    (leader, escaped)
}

fn escaped_child_is_killed_with_its_pod(version: u8) {
    become_subreaper().unwrap();
    let mut sb = Sandbox::with_cgroups(version);
    let pod = sb.pod("escape");
    let (leader, escaped) = start_with_escapee(&mut sb, &pod);
    let mut in_cgroup = sb.rt.cgroup_pids(&pod).unwrap();
    in_cgroup.sort();
    let mut want = vec![leader, escaped];
    want.sort();
    assert_eq!(in_cgroup, want, "both are in the pod's cgroup");

    // What stopping by process group alone leaves behind.
    sb.rt.signal_group(leader, Signal::KILL).unwrap();
    let got = sb.reap_until(&[leader]);
    assert_eq!(got[&leader], ExitReason::Signal(Signal::KILL));
    assert!(alive(escaped), "a group kill misses the escapee");
    assert!(!sb.rt.cgroup_is_empty(&pod).unwrap());

    sb.rt.kill_cgroup(&pod).unwrap();
    let got = sb.reap_until(&[escaped]);
    assert_eq!(got[&escaped], ExitReason::Signal(Signal::KILL));
    wait_until("the pod cgroup to empty", || {
        sb.rt.cgroup_is_empty(&pod).unwrap().then_some(())
    });
    assert!(sb.rt.reap().is_empty(), "no other child left");
    let dirs = sb.rt.cgroups().pod_dirs(&pod);
    assert!(!dirs.is_empty() && dirs.iter().all(|d| d.is_dir()));
    sb.rt.remove_pod_cgroup(&pod).unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "removed: {dirs:?}");
}

#[test]
fn escaped_child_is_killed_with_its_pod_v1() {
    run_isolated(
        module_path!(),
        "escaped_child_is_killed_with_its_pod_v1_isolated",
    );
}

#[test]
#[ignore = "run in its own process by escaped_child_is_killed_with_its_pod_v1"]
fn escaped_child_is_killed_with_its_pod_v1_isolated() {
    if !isolated() {
        return;
    }
    escaped_child_is_killed_with_its_pod(1);
}

#[test]
fn escaped_child_is_killed_with_its_pod_v2() {
    run_isolated(
        module_path!(),
        "escaped_child_is_killed_with_its_pod_v2_isolated",
    );
}

#[test]
#[ignore = "run in its own process by escaped_child_is_killed_with_its_pod_v2"]
fn escaped_child_is_killed_with_its_pod_v2_isolated() {
    if !isolated() {
        return;
    }
    escaped_child_is_killed_with_its_pod(2);
}

/// Issue 13: on v1 processes no longer join the freezer hierarchy, so a
/// kill cannot freeze the tree: it fences the pod with `pids.max` 0 and
/// kills until nothing new is listed. A fork bomb (every process forking
/// for ever, confined by a pids limit of 48) still dies whole,
/// killed again at each look while anything is left, as the agent does;
/// the fence is lowered after, and the process's own limit is untouched.
#[test]
fn a_fork_bomb_dies_whole_under_the_v1_pids_fence() {
    run_isolated(
        module_path!(),
        "a_fork_bomb_dies_whole_under_the_v1_pids_fence_isolated",
    );
}

#[test]
#[ignore = "run in its own process by a_fork_bomb_dies_whole_under_the_v1_pids_fence"]
fn a_fork_bomb_dies_whole_under_the_v1_pids_fence_isolated() {
    if !isolated() {
        return;
    }
    become_subreaper().unwrap();
    let mut sb = Sandbox::with_cgroups(1);
    let pod = sb.pod("bomb");
    let cg = pod.process("main").unwrap();
    // Every process forks for ever, and waits a little when the limit
    // refuses (a shell bomb gives up at its first refused fork, and can
    // be gone before anyone kills it).
    let mut req = sb.req(&[
        "perl",
        "-e",
        "while (1) { defined(fork) or select(undef, undef, undef, 0.01) }",
    ]);
    req.cgroup = Some(cg.clone());
    req.resources = Some(crate::api::Resources {
        pids: Some(48),
        ..Default::default()
    });
    let leader = sb.spawn(&req).unwrap().pid;
    let current = sb.cgroup_file(Controller::Pids, &cg, "pids.current");
    wait_until("the bomb to reach its limit", || {
        let n: u32 = fs::read_to_string(&current).ok()?.trim().parse().ok()?;
        (n >= 40).then_some(())
    });
    let mut kills = 0;
    let mut reaped = 0;
    wait_until("the pod's cgroup to empty", || {
        reaped += sb.rt.reap().len();
        if sb.rt.cgroup_is_empty(&pod).unwrap() {
            return Some(());
        }
        kills += 1;
        sb.rt.kill_cgroup(&pod).unwrap();
        None
    });
    assert!(reaped >= 40, "the bomb's processes were reaped ({reaped})");
    assert!(kills >= 1);
    assert!(!alive(leader));
    let limit = sb.cgroup_file(Controller::Pids, &cg, "pids.max");
    assert_eq!(fs::read_to_string(&limit).unwrap().trim(), "48");
    let fence = limit.parent().unwrap().with_file_name("pids.max");
    assert_eq!(fs::read_to_string(fence).unwrap().trim(), "max", "lowered");
}

#[test]
fn v2_child_is_born_in_its_cgroup_and_emptiness_is_an_event() {
    let mut sb = Sandbox::with_cgroups(2);
    let pod = sb.pod("born");
    let cg = pod.process("main").unwrap();
    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(cg.clone());
    let pid = sb.spawn(&req).unwrap().pid;
    assert!(
        super::super::cgroup::clone_into_known_to_work(),
        "clone3 with CLONE_INTO_CGROUP was used (kernel 5.7+, x86_64)"
    );
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("0::/drover-test-{}/{}/main", sb.marker, pod.pod_uid());
    assert!(text.lines().any(|l| l == want), "{text}");
    assert_eq!(sb.rt.cgroup_of(pid), Some(cg));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let watch = sb
            .rt
            .watch_cgroup_empty(&pod)
            .unwrap()
            .expect("v2 has the event");
        assert!(!sb.rt.cgroup_is_empty(&pod).unwrap());
        sb.rt.kill_cgroup(&pod).unwrap();
        while !sb.rt.cgroup_is_empty(&pod).unwrap() {
            tokio::time::timeout(DEADLINE, watch.changed())
                .await
                .expect("cgroup.events changed")
                .unwrap();
        }
    });
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
}

#[test]
fn a_pod_with_processes_cannot_be_removed() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("busy");
    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(pod.process("main").unwrap());
    let pid = sb.spawn(&req).unwrap().pid;
    assert!(matches!(
        sb.rt.remove_pod_cgroup(&pod),
        Err(CgroupError::NotEmpty { .. })
    ));
    let v1 = sb.rt.cgroups().version() == Some(1);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let _in_tokio = tokio.enter();
    assert_eq!(
        sb.rt.watch_cgroup_empty(&pod).unwrap().is_none(),
        v1,
        "v1 has no event (check after reaps)"
    );
    sb.rt.kill_cgroup(&pod).unwrap();
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
    assert!(sb.rt.cgroup_is_empty(&pod).unwrap(), "empty once reaped");
    sb.rt.remove_pod_cgroup(&pod).unwrap();
    sb.rt
        .remove_pod_cgroup(&pod)
        .expect("removing twice is fine");
}

/// Issue 13 (the cost of a cgroup per pod): a pod's only process lives
/// in the pod's own cgroup on v1, one directory fewer to make and remove
/// per hierarchy. Its cgroup still holds its whole tree: a pid is found
/// in it, and the kill that clears it before a restart (the process
/// cgroup's) takes the escapee too; the process starts again in it.
#[test]
fn a_sole_process_lives_in_its_pods_own_cgroup_with_its_tree_v1() {
    run_isolated(
        module_path!(),
        "a_sole_process_lives_in_its_pods_own_cgroup_with_its_tree_v1_isolated",
    );
}

#[test]
#[ignore = "run in its own process by a_sole_process_lives_in_its_pods_own_cgroup_with_its_tree_v1"]
fn a_sole_process_lives_in_its_pods_own_cgroup_with_its_tree_v1_isolated() {
    if !isolated() {
        return;
    }
    become_subreaper().unwrap();
    let mut sb = Sandbox::with_cgroups(1);
    let pod = sb.pod("sole");
    let cg = pod.sole_process("main").unwrap();
    let (leader, escaped) = start_with_escapee_in(&mut sb, cg.clone());
    let line = v1_cgroup_line(leader, "pids");
    let pod_path = format!("/drover-test-{}/{}", sb.marker, pod.pod_uid());
    assert!(line.ends_with(&pod_path), "in the pod's cgroup: {line}");
    for pid in [leader, escaped] {
        let found = sb.rt.cgroup_of(pid).expect("a pid of the pod");
        assert!(cg.holds(&found), "{found:?}");
        assert!(!pod.process("main").unwrap().holds(&found));
    }
    let mut listed = sb.rt.cgroups().process_pids(&cg).unwrap();
    listed.sort();
    let mut want = vec![leader, escaped];
    want.sort();
    assert_eq!(listed, want);

    sb.rt.kill_process_cgroup(&cg).unwrap();
    let got = sb.reap_until(&[leader, escaped]);
    assert_eq!(got[&escaped], ExitReason::Signal(Signal::KILL));
    wait_until("the pod cgroup to empty", || {
        sb.rt.cgroup_is_empty(&pod).unwrap().then_some(())
    });

    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(cg.clone());
    let again = sb.spawn(&req).unwrap().pid;
    assert!(sb.rt.cgroup_of(again).is_some_and(|f| cg.holds(&f)));
    sb.rt.kill_cgroup(&pod).unwrap();
    let got = sb.reap_until(&[again]);
    assert_eq!(got[&again], ExitReason::Signal(Signal::KILL));
    assert!(sb.rt.reap().is_empty(), "no other child left");
}
