//! Limits through cgroups, with real processes, in the hierarchy the
//! daemon would choose on this host (v1 on the build machine, whose v2
//! mount has no controllers; v2 on a systemd host): OOM kills, the pids
//! limit, the CPU quota, usage, and the refusal of limits where no cgroup
//! can enforce them.

use super::*;
use crate::api::{CpuQuantity, MemoryQuantity, Resources};
use std::path::Path;

fn limited(
    sb: &Sandbox,
    pod: &PodCgroup,
    process: &str,
    argv: &[&str],
    res: Resources,
) -> SpawnRequest {
    let mut req = sb.req(argv);
    req.cgroup = Some(pod.process(process).unwrap());
    req.resources = Some(res);
    req
}

fn memory(bytes: u64) -> Resources {
    Resources {
        memory: Some(MemoryQuantity(bytes)),
        ..Default::default()
    }
}

/// The memory limit file of the chosen hierarchy, and its "no limit".
fn memory_limit_file(sb: &Sandbox) -> (&'static str, &'static str) {
    match sb.rt.cgroups().version() {
        Some(2) => ("memory.max", "max"),
        _ => ("memory.limit_in_bytes", "9223372036854771712"),
    }
}

/// The controller-specific file of a process, as a number.
fn read_keyed(path: &Path, key: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}: {text}", path.display()))
}

#[test]
fn memory_hog_is_oom_killed_and_counted_as_such() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("hog");
    let hog = pod.process("hog").unwrap();
    // 256 MiB of bytes, written, against a 48 MiB limit.
    let req = limited(
        &sb,
        &pod,
        "hog",
        &["python3", "-c", "x = b'x' * (256 << 20); print('survived')"],
        memory(48 << 20),
    );
    let limits = req.resources.clone();
    let before = sb.rt.oom_kills(&hog, limits.as_ref()).unwrap();
    assert_eq!(before, 0, "no cgroup yet, so no OOM kill in it");
    let pid = sb.spawn(&req).unwrap().pid;
    let (limit_file, _) = memory_limit_file(&sb);
    let limit = fs::read_to_string(sb.cgroup_file(Controller::Memory, &hog, limit_file)).unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    let exit = sb.wait_exit(pid);
    assert_eq!(exit, ExitReason::Signal(Signal::KILL), "log: {}", sb.log());
    assert_eq!(exit.exit_code(), 137);
    assert_eq!(
        sb.rt.oom_kills(&hog, limits.as_ref()).unwrap(),
        before + 1,
        "the OOM killer did it"
    );
    assert!(!sb.log().contains("survived"));

    // Any other SIGKILL is not an OOM kill: the count does not move.
    let other = pod.process("other").unwrap();
    let req = limited(&sb, &pod, "other", &["sleep", "1000"], memory(48 << 20));
    let pid = sb.spawn(&req).unwrap().pid;
    sb.rt.signal(pid, Signal::KILL).unwrap();
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
    assert_eq!(sb.rt.oom_kills(&other, limits.as_ref()).unwrap(), 0);
}

#[test]
fn a_restarted_process_gets_its_limits_reset() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("reset");
    let cg = pod.process("main").unwrap();
    let pid = sb
        .spawn(&limited(&sb, &pod, "main", &["true"], memory(32 << 20)))
        .unwrap()
        .pid;
    sb.wait_exit(pid);
    let (limit_file, _) = memory_limit_file(&sb);
    let file = sb.cgroup_file(Controller::Memory, &cg, limit_file);
    assert_eq!(
        fs::read_to_string(&file).unwrap().trim(),
        (32u64 << 20).to_string()
    );
    // Same cgroup, another limit: rewritten.
    let pid = sb
        .spawn(&limited(&sb, &pod, "main", &["true"], memory(48 << 20)))
        .unwrap()
        .pid;
    sb.wait_exit(pid);
    assert_eq!(
        fs::read_to_string(&file).unwrap().trim(),
        (48u64 << 20).to_string()
    );
    // Same cgroup, no resources this time: no limit left anywhere. On v1
    // the process no longer joins the memory hierarchy, and its memory
    // cgroup (with the old limit) is gone.
    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(cg.clone());
    let pid = sb.spawn(&req).unwrap().pid;
    match sb.rt.cgroups().version() {
        Some(2) => assert_eq!(fs::read_to_string(&file).unwrap().trim(), "max"),
        _ => {
            assert!(!file.exists(), "{} left with its old limit", file.display());
            let line = v1_cgroup_line(pid, "memory");
            assert!(
                !line.contains(&sb.marker),
                "outside the memory hierarchy: {line}"
            );
        }
    }
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

#[test]
fn fork_loop_stops_at_its_pids_limit() {
    run_isolated(module_path!(), "fork_loop_stops_at_its_pids_limit_isolated");
}

#[test]
#[ignore = "run in its own process by fork_loop_stops_at_its_pids_limit"]
fn fork_loop_stops_at_its_pids_limit_isolated() {
    if !isolated() {
        return;
    }
    // Orphaned sleeps come to us, so every one is reaped here.
    become_subreaper().unwrap();
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("forks");
    let cg = pod.process("loop").unwrap();
    let script =
        "i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done; echo loop-done; wait";
    let res = Resources {
        pids: Some(20),
        ..Default::default()
    };
    let leader = sb
        .spawn(&limited(&sb, &pod, "loop", &["sh", "-c", script], res))
        .unwrap()
        .pid;
    let events = sb.cgroup_file(Controller::Pids, &cg, "pids.events");
    // The kernel counts each fork refused at the limit.
    wait_until("a fork refused at pids.max", || {
        (read_keyed(&events, "max") > 0).then_some(())
    });
    let current = sb.cgroup_file(Controller::Pids, &cg, "pids.current");
    let count: u64 = fs::read_to_string(&current)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(count <= 20, "{count} tasks under pids.max 20");
    let pids = sb.rt.cgroup_pids(&pod).unwrap();
    assert!(
        pids.len() <= 20 && pids.len() >= 15,
        "{} processes: {pids:?}",
        pids.len()
    );
    // The shell's complaint reaches its log a moment after the kernel
    // counted the refusal (an empty log failed this under load).
    wait_until("the shell to log its refused forks", || {
        sb.log().contains("fork").then_some(())
    });

    sb.rt.kill_cgroup(&pod).unwrap();
    let mut all = pids.clone();
    all.push(leader);
    all.sort();
    all.dedup();
    sb.reap_until(&all);
    wait_until("the pod cgroup to empty", || {
        sb.rt.cgroup_is_empty(&pod).unwrap().then_some(())
    });
}

#[test]
fn cpu_spinner_under_a_fifth_of_a_core_gets_about_a_fifth() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("spin");
    let cg = pod.process("spin").unwrap();
    let res = Resources {
        cpu: Some(CpuQuantity(200)),
        ..Default::default()
    };
    let pid = sb
        .spawn(&limited(
            &sb,
            &pod,
            "spin",
            &["sh", "-c", "while :; do :; done"],
            res,
        ))
        .unwrap()
        .pid;
    // The cgroup's own accounting on both sides: CPU time used
    // (cpuacct, v2 cpu.stat) over the CFS periods it was runnable in
    // (cpu.stat nr_periods), not
    // wall time, so a loaded machine cannot make it look throttled.
    let stat = sb.cgroup_file(Controller::Cpu, &cg, "cpu.stat");
    let used = || sb.rt.cgroups().process_usage(&cg).unwrap().cpu.unwrap();
    // Let it settle into the quota first.
    let p0 = wait_until("the spinner to be runnable", || {
        let p = read_keyed(&stat, "nr_periods");
        (p >= 2).then_some(p)
    });
    let (u0, t0) = (used(), read_keyed(&stat, "nr_throttled"));
    // 20 periods of 100 ms: about 2 s.
    let p1 = wait_until("20 CFS periods", || {
        let p = read_keyed(&stat, "nr_periods");
        (p >= p0 + 20).then_some(p)
    });
    let (u1, t1) = (used(), read_keyed(&stat, "nr_throttled"));
    let share = (u1 - u0).as_secs_f64() / ((p1 - p0) as f64 * 0.1);
    assert!(
        (0.1..=0.35).contains(&share),
        "share of a core {share:.3} over {} periods",
        p1 - p0
    );
    assert!(t1 > t0, "the quota throttled it (it would have used more)");
    let pod_cpu = sb.rt.cgroup_usage(&pod).unwrap().cpu.unwrap();
    assert!(pod_cpu >= u1, "the pod's usage includes its process's");
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

/// Usage covers a process's whole tree, here a child it forked that
/// holds the memory. Without limits (v1: outside the memory and cpuacct
/// hierarchies) it is summed from /proc over the cgroup's processes.
#[test]
fn usage_reports_memory_and_cpu_of_the_whole_tree() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("usage");
    let cg = pod.process("main").unwrap();
    let mut req = sb.req(&[
        "python3",
        "-c",
        "import os, time\n\
         if os.fork() == 0:\n\
         \x20   x = b'x' * (40 << 20); sum(range(3_000_000)); print('ready', flush=True); time.sleep(1000)\n\
         time.sleep(1000)",
    ]);
    req.cgroup = Some(cg.clone());
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_log("ready");
    let main_alone = sb.rt.usage(pid).unwrap();
    assert!(main_alone.memory_bytes < 20 << 20, "{main_alone:?}");
    for usage in [
        sb.rt.cgroup_usage(&pod).unwrap(),
        sb.rt.cgroups().process_usage(&cg).unwrap(),
    ] {
        let memory = usage.memory_bytes.unwrap();
        assert!(memory >= 40 << 20, "memory {memory}: the child's counts");
        // The child's loop, not the main process's start alone.
        assert!(
            usage.cpu.unwrap().as_secs_f64() > main_alone.cpu_seconds + 0.01,
            "{usage:?} against {main_alone:?}"
        );
    }
    sb.rt.kill_cgroup(&pod).unwrap();
    sb.wait_exit(pid);
}

/// With a memory limit, memory is what the cgroup is charged, as the
/// limit counts it.
#[test]
fn usage_of_a_memory_limited_process_is_its_cgroup_charge() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("charged");
    let cg = pod.process("main").unwrap();
    let req = limited(
        &sb,
        &pod,
        "main",
        &[
            "python3",
            "-c",
            "x = b'x' * (20 << 20); print('ready', flush=True); import time; time.sleep(1000)",
        ],
        memory(256 << 20),
    );
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_log("ready");
    let file = sb.cgroup_file(
        Controller::Memory,
        &cg,
        match sb.rt.cgroups().version() {
            Some(2) => "memory.current",
            _ => "memory.usage_in_bytes",
        },
    );
    let usage = sb.rt.cgroups().process_usage(&cg).unwrap();
    let memory = usage.memory_bytes.unwrap();
    assert!(memory >= 20 << 20, "memory {memory}");
    let charged: u64 = fs::read_to_string(&file).unwrap().trim().parse().unwrap();
    // Read one after the other: the charge moves a little in between.
    assert!(
        memory.abs_diff(charged) < 4 << 20,
        "{memory} against {charged}"
    );
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

/// Issue 13 (the cost of a cgroup per pod): a process joins the v1
/// hierarchies it uses, not all five: pids always (listing and killing),
/// memory and cpu only for their limits, the freezer not at all where
/// pids can fence a kill. At first every process was put in all five,
/// then in memory, cpuacct and pids (each a mkdir, a join and an rmdir:
/// memory's mkdir alone is 0.1 ms).
#[test]
fn a_process_joins_only_the_v1_hierarchies_it_needs() {
    let mut sb = Sandbox::with_cgroups(1);
    let pod = sb.pod("placed");
    let cg = pod.process("main").unwrap();
    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(cg.clone());
    let pid = sb.spawn(&req).unwrap().pid;
    let spun = pod.process("capped").unwrap();
    let res = Resources {
        cpu: Some(CpuQuantity(500)),
        ..Default::default()
    };
    let capped = sb
        .spawn(&limited(&sb, &pod, "capped", &["sleep", "1000"], res))
        .unwrap()
        .pid;
    let bounded = sb
        .spawn(&limited(
            &sb,
            &pod,
            "bounded",
            &["sleep", "1000"],
            memory(64 << 20),
        ))
        .unwrap()
        .pid;
    let root = format!("/drover-test-{}/{}/", sb.marker, pod.pod_uid());
    let joins = |pid: i32, name: &str, wanted: &[&str]| {
        for c in ["memory", "cpu", "pids", "cpuacct", "freezer"] {
            let line = v1_cgroup_line(pid, c);
            if wanted.contains(&c) {
                assert!(line.ends_with(&format!("{root}{name}")), "{line}");
            } else {
                assert!(!line.contains("drover-test"), "{line}: not joined");
            }
        }
    };
    joins(pid, "main", &["pids"]);
    joins(capped, "capped", &["cpu", "pids"]);
    joins(bounded, "bounded", &["memory", "pids"]);
    assert_eq!(sb.rt.cgroup_of(pid), Some(cg));
    assert_eq!(sb.rt.cgroup_of(capped), Some(spun));
    assert_eq!(sb.rt.cgroup_of(std::process::id() as i32), None);
    assert!(sb
        .rt
        .cgroups_description()
        .starts_with("cgroup v1 (memory, cpu, pids, cpuacct, freezer)"));
    // The whole pod still dies in one kill (pids fence, no freezer).
    sb.rt.kill_cgroup(&pod).unwrap();
    sb.wait_exit(pid);
    sb.wait_exit(capped);
    sb.wait_exit(bounded);
    assert!(sb.rt.cgroup_is_empty(&pod).unwrap());
    let main_max = sb.cgroup_file(Controller::Pids, &pod.process("main").unwrap(), "pids.max");
    let pod_max = main_max.parent().unwrap().with_file_name("pids.max");
    let fence = fs::read_to_string(pod_max).unwrap();
    assert_eq!(fence.trim(), "max", "the fence is lowered after the kill");
}

/// A sole process's limits are the pod cgroup's own (v1: it lives
/// there). Should the pod change in place to more processes, they must
/// not go on bounding the whole pod: the first new process cgroup resets
/// them.
#[test]
fn a_sole_processs_limits_do_not_outlive_it_when_its_pod_grows() {
    let mut sb = Sandbox::with_cgroups(1);
    let pod = sb.pod("grown");
    let sole = pod.sole_process("main").unwrap();
    let mut req = sb.req(&["true"]);
    req.cgroup = Some(sole.clone());
    req.resources = Some(Resources {
        pids: Some(5),
        memory: Some(MemoryQuantity(64 << 20)),
        ..Default::default()
    });
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_exit(pid);
    let pod_pids = sb.cgroup_file(Controller::Pids, &sole, "pids.max");
    assert_eq!(
        pod_pids.parent().unwrap().file_name().unwrap(),
        pod.pod_uid(),
        "the sole process's cgroup is its pod's"
    );
    assert_eq!(fs::read_to_string(&pod_pids).unwrap().trim(), "5");
    let mut req = sb.req(&["true"]);
    req.cgroup = Some(pod.process("main").unwrap());
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_exit(pid);
    assert_eq!(fs::read_to_string(&pod_pids).unwrap().trim(), "max");
    // Also in the memory hierarchy, which the new process does not join
    // but a memory-limited sibling would, below the pod's directory.
    let (limit_file, unlimited) = memory_limit_file(&sb);
    let memory = sb.cgroup_file(Controller::Memory, &sole, limit_file);
    assert_eq!(fs::read_to_string(&memory).unwrap().trim(), unlimited);
}

/// A restart into a process cgroup this runtime prepared skips the mkdirs
/// and the limit reads (issue 13). Its directories removed behind its
/// back in between, the next spawn still starts inside a cgroup with its
/// limits: the remembered state is only a hint.
#[test]
fn a_restart_finds_its_cgroup_made_again_if_it_was_removed_meanwhile() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.pod("again");
    let cg = pod.process("main").unwrap();
    let res = Resources {
        pids: Some(7),
        ..Default::default()
    };
    let req = limited(&sb, &pod, "main", &["true"], res.clone());
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_exit(pid);
    let limit = sb.cgroup_file(Controller::Pids, &cg, "pids.max");
    let dir = limit.parent().unwrap().to_path_buf();
    // Gone behind the runtime's back (rmdir by hand): the pod's cgroup
    // and its process's, in every hierarchy.
    for pod_dir in sb.rt.cgroups().pod_dirs(&pod) {
        fs::remove_dir(pod_dir.join("main")).unwrap();
        fs::remove_dir(pod_dir).unwrap();
    }
    assert!(!dir.exists());
    let pid = sb
        .spawn(&limited(&sb, &pod, "main", &["sleep", "1000"], res))
        .unwrap()
        .pid;
    assert_eq!(fs::read_to_string(&limit).unwrap().trim(), "7");
    assert_eq!(sb.rt.cgroup_of(pid), Some(cg));
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

/// Issue 9: the daemon's loop removed each finished pod's cgroup itself
/// (rmdir in every hierarchy: 1.9 s of the loop for 2,000 pods). Now it
/// releases it: the call returns at once, even for a cgroup that is still
/// busy; the removal thread removes it once its last process is gone; and
/// a pod that wants its cgroup back before that keeps it.
#[test]
fn a_released_cgroup_is_removed_by_the_thread_once_it_empties() {
    let mut sb = Sandbox::with_cgroups(0);
    let busy = sb.pod("busy");
    let mut req = sb.req(&["sleep", "1000"]);
    req.cgroup = Some(busy.process("main").unwrap());
    let pid = sb.spawn(&req).unwrap().pid;
    let dirs = sb.rt.cgroups().pod_dirs(&busy);
    sb.rt.release_pod_cgroup(&busy);
    assert!(
        dirs.iter().all(|d| d.is_dir()),
        "a process is in it: it stays"
    );
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
    wait_until("the thread to remove the emptied cgroup", || {
        dirs.iter().all(|d| !d.exists()).then_some(())
    });

    // Released, then made again at once (a completed pod restarted): it
    // is there afterwards, whichever came first.
    let again = sb.pod("again");
    sb.rt.release_pod_cgroup(&again);
    sb.rt.create_pod_cgroup(again.pod_uid()).unwrap();
    wait_until("the removal queue to empty", || {
        (sb.rt.cgroups().pending_removals() == 0).then_some(())
    });
    let dirs = sb.rt.cgroups().pod_dirs(&again);
    assert!(dirs.iter().all(|d| d.is_dir()), "taken back: {dirs:?}");
    assert!(sb
        .rt
        .existing_pod_cgroups()
        .iter()
        .any(|p| p.pod_uid() == again.pod_uid()));
}

/// A spawn announced ahead (`will_spawn`, as the agent does while it
/// gathers a batch) has its cgroup made and its limits written before
/// it is started, off the caller's thread; the spawn then starts inside
/// it with those limits.
#[test]
fn a_cgroup_made_ahead_of_its_spawn_is_the_one_it_starts_in() {
    let mut sb = Sandbox::with_cgroups(0);
    let pod = sb.unmade_pod("ahead");
    let cg = pod.process("main").unwrap();
    let res = Resources {
        pids: Some(7),
        ..Default::default()
    };
    let req = limited(&sb, &pod, "main", &["sleep", "1000"], res);
    let limit = sb.cgroup_file(Controller::Pids, &cg, "pids.max");
    assert!(!limit.exists());
    sb.rt.will_spawn(&req);
    wait_until("the cgroup made ahead, with its limit", || {
        fs::read_to_string(&limit).ok().filter(|v| v.trim() == "7")
    });
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.rt.cgroup_of(pid), Some(cg));
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

/// Pods released while their cgroups are still queued to be made ahead
/// (a batch deleted before it started): nothing is made under or after
/// their removal, and nothing is left. Released last first, so that the
/// removal thread meets pods the ahead thread has not reached yet.
#[test]
fn pods_released_before_their_spawn_leave_no_cgroup_made_ahead() {
    let mut sb = Sandbox::with_cgroups(0);
    let pods: Vec<PodCgroup> = (0..400)
        .map(|i| sb.unmade_pod(&format!("gone{i}")))
        .collect();
    for pod in &pods {
        let mut req = sb.req(&["true"]);
        req.cgroup = Some(pod.process("main").unwrap());
        sb.rt.will_spawn(&req);
    }
    for pod in pods.iter().rev() {
        sb.rt.release_pod_cgroup(pod);
    }
    wait_until("the ahead and removal queues to empty", || {
        let c = sb.rt.cgroups();
        (c.pending_ahead() == 0 && c.pending_removals() == 0).then_some(())
    });
    let left: Vec<PathBuf> = pods
        .iter()
        .flat_map(|p| sb.rt.cgroups().pod_dirs(p))
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---- no silent downgrade

#[test]
fn resources_are_refused_without_cgroups_and_plain_requests_still_run() {
    let mut sb = Sandbox::new(); // LinuxRuntime::new(): no cgroups
    let mut req = sb.req(&["true"]);
    req.resources = Some(memory(64 << 20));
    match spawn_err(&mut sb, &req) {
        SpawnError::LimitsUnavailable { reason } => {
            assert!(reason.contains("not set up"), "{reason}")
        }
        e => panic!("want LimitsUnavailable, got {e:?}"),
    }
    assert!(!sb.log_path().exists(), "refused before anything was made");
    assert!(matches!(
        sb.rt.create_pod_cgroup("uid"),
        Err(CgroupError::Unavailable { .. })
    ));
    // Empty resources are no resources.
    req.resources = Some(Resources::default());
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));

    // With cgroups, but the request names none.
    let mut sb = Sandbox::with_cgroups(0);
    let mut req = sb.req(&["true"]);
    req.resources = Some(memory(64 << 20));
    assert!(matches!(
        spawn_err(&mut sb, &req),
        SpawnError::LimitsUnavailable { reason } if reason.contains("no cgroup")
    ));
}

#[test]
fn a_hierarchy_without_the_controller_refuses_that_limit() {
    // This machine's v2 mount has no memory controller.
    let mut sb = Sandbox::with_cgroups(2);
    assert!(!sb.rt.cgroups().controllers().contains(Controller::Memory));
    let pod = sb.pod("v2-nomem");
    let req = limited(&sb, &pod, "main", &["true"], memory(64 << 20));
    match spawn_err(&mut sb, &req) {
        SpawnError::LimitsUnavailable { reason } => {
            assert!(reason.contains("memory controller"), "{reason}")
        }
        e => panic!("want LimitsUnavailable, got {e:?}"),
    }
}

#[test]
fn non_root_gets_no_cgroups_and_resources_are_refused() {
    run_isolated(
        module_path!(),
        "non_root_gets_no_cgroups_and_resources_are_refused_isolated",
    );
}

#[test]
#[ignore = "run in its own process by non_root_gets_no_cgroups_and_resources_are_refused"]
fn non_root_gets_no_cgroups_and_resources_are_refused_isolated() {
    if !isolated() {
        return;
    }
    // As `drover up` run by a user: this whole process becomes nobody.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // Effective and real ids become nobody's (the saved uid stays root,
    // only so that the temp dir can be removed at the end).
    // SAFETY: plain syscalls; this process is ours alone (isolated).
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setresgid(65534, 65534, 0), 0);
        assert_eq!(libc::setresuid(65534, 65534, 0), 0);
    }
    let cgroups = Cgroups::detect("test-nonroot");
    assert!(!cgroups.is_available(), "{}", cgroups.describe());
    let described = cgroups.describe();
    assert!(described.contains("ermission denied"), "{described}");
    let mut rt = LinuxRuntime::with_cgroups(cgroups);
    let req = SpawnRequest {
        argv: vec!["true".into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        log_path: dir.path().join("x.log"),
        resources: Some(memory(64 << 20)),
        ..Default::default()
    };
    match rt.spawn(&req) {
        Err(SpawnError::LimitsUnavailable { reason }) => {
            assert!(reason.contains("ermission denied"), "{reason}")
        }
        other => panic!("want LimitsUnavailable, got {other:?}"),
    }
    let plain = SpawnRequest {
        resources: None,
        ..req
    };
    let pid = rt.spawn(&plain).expect("no resources: runs").pid;
    let mut status = 0;
    // SAFETY: valid out-pointer; our child. Back to root for cleanup.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::setresuid(0, 0, 0);
    }
    assert_eq!(decode_status(status), Some(ExitReason::Code(0)));
}
