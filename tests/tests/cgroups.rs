//! A cgroup per pod (issue 13), with real processes and the host's real
//! cgroups: memory, pids and CPU limits enforced, an OOM kill reported as
//! Kubernetes reports it, and a pod's whole tree killed on delete, even
//! a descendant that left its session and dropped drover's environment.

use crate::harness::*;
use drover::api::ProcessState;
use std::time::{Duration, Instant};

/// A unit with one process and `resources` (TOML inline table body).
fn limited(name: &str, policy: &str, command: &[&str], resources: &str) -> String {
    format!(
        "{}resources = {{ {resources} }}\n",
        pod_unit(name, policy, command, "")
    )
}

fn terminated(d: &TestDaemon, name: &str) -> drover::api::TerminatedState {
    d.wait_for(&format!("{name} terminated"), SOON, || {
        match d.pod(name)?.status.processes.first()?.state.clone() {
            ProcessState::Terminated(t) => Some(t),
            _ => None,
        }
    })
}

#[test]
fn a_memory_hog_is_oom_killed_with_reason_oomkilled_and_137() {
    // Allocates 1 MB at a time, touching it, for ever (or 2 GB).
    let hog = "a = []\nfor _ in range(2000):\n    a.append(b'x' * 1000000)\n";
    let d = TestDaemon::start(&[(
        "hog.toml",
        &limited("hog", "Never", &["python3", "-c", hog], "memory = \"64Mi\""),
    )]);
    let t = terminated(&d, "hog");
    assert_eq!(t.reason.to_string(), "OOMKilled", "{t:?}\n{}", d.log());
    assert_eq!(t.exit_code, Some(137));
    assert_eq!(t.signal, Some(9));
    let (_, rows) = table(&d.drover_ok(&["get", "pods"]));
    assert_eq!(rows[0][2], "OOMKilled", "{rows:?}");
    let page = d.drover_ok(&["describe", "pod", "hog"]);
    assert!(page.contains("OOMKilled"), "{page}");
    assert!(page.contains("137"), "{page}");
    let events = d.events_for("Pod/hog");
    assert!(
        events.iter().any(|e| e["reason"] == "OOMKilled"),
        "{events:#?}"
    );
}

#[test]
fn a_fork_loop_stops_at_its_pids_limit() {
    // Forks sleeping children until fork fails (or 60: a safety stop),
    // then writes how many it made.
    let script = "import os, signal, sys\nn = 0\nwhile n < 60:\n    try:\n        pid = os.fork()\n    \
                  except OSError:\n        break\n    if pid == 0:\n        signal.pause()\n        \
                  os._exit(0)\n    n += 1\nopen(sys.argv[1], 'w').write(str(n))\nsignal.pause()\n";
    let d = TestDaemon::start(&[]);
    let count = d.file("count");
    let unit = limited(
        "forker",
        "Never",
        &["python3", "-c", script, count.to_str().unwrap()],
        "pids = 10",
    );
    d.apply("forker.toml", &unit);
    let n: u32 = d.wait_for("the fork loop stopped", SOON, || {
        d.read_file("count")?.trim().parse().ok()
    });
    // The starter counts: 1 + 9 children = 10.
    assert_eq!(n, 9, "forks allowed under pids = 10");
    d.drover_ok(&["delete", "pod", "forker"]);
    d.wait_gone("forker");
}

/// CPU time (user + system) of `pid` so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

#[test]
fn a_spinner_under_cpu_one_fifth_gets_about_a_fifth_of_a_core() {
    let d = TestDaemon::start(&[(
        "spin.toml",
        &limited(
            "spin",
            "Always",
            &["sh", "-c", "while :; do :; done"],
            "cpu = \"0.2\"",
        ),
    )]);
    let pid = pid_of(&d.wait_running("spin"), "main");
    let (start, used0) = (Instant::now(), cpu_time(pid).unwrap());
    // Until it used 0.6 s of CPU: 3 s at a fifth of a core, 0.6 s
    // unlimited.
    let used = d.wait_for("0.6s of CPU used", Duration::from_secs(30), || {
        let used = cpu_time(pid)? - used0;
        (used >= Duration::from_millis(600)).then_some(used)
    });
    let share = used.as_secs_f64() / start.elapsed().as_secs_f64();
    assert!(share < 0.3, "the spinner used {share:.2} of a core");
    assert!(share > 0.1, "the spinner used only {share:.2} of a core");
}

#[test]
fn a_pod_whose_child_escaped_with_setsid_and_double_fork_is_fully_killed_on_delete() {
    // The escaped process leaves the session and the group, drops every
    // variable drover set (no marker to find it by), and ignores SIGTERM
    // (an ignored signal stays ignored across exec).
    let d = TestDaemon::start(&[]);
    let pidfile = d.file("escaped.pid");
    let escape = format!(
        "(env -i setsid sh -c 'trap \"\" TERM; echo $$ > {}; exec sleep 1000' &); exec sleep 1000",
        pidfile.display()
    );
    d.apply(
        "esc.toml",
        &pod_unit("esc", "Always", &["sh", "-c", &escape], ""),
    );
    let main = pid_of(&d.wait_running("esc"), "main");
    let escaped: u32 = d.wait_for("the escaped pid", SOON, || {
        d.read_file("escaped.pid")?.trim().parse().ok()
    });
    assert!(alive(escaped));
    assert_ne!(pgid(escaped), pgid(main), "it left the group");
    assert_eq!(
        proc_stat(escaped).map(|(_, ppid, _)| ppid),
        Some(d.daemon_pid()),
        "its parent exited: it is the subreaping daemon's now"
    );
    assert!(
        !environ(escaped)
            .iter()
            .any(|(k, _)| k.starts_with("DROVER")),
        "it dropped drover's variables"
    );
    d.drover_ok(&["delete", "pod", "esc"]);
    d.wait_gone("esc");
    d.wait_until("the escaped process is dead", SOON, || !alive(escaped));
    assert!(!alive(main));
    assert!(zombies_of(d.daemon_pid()).is_empty(), "no zombies");
}

#[test]
fn describe_node_says_which_cgroup_hierarchy_pods_go_in() {
    let d = TestDaemon::start(&[]);
    let page = d.drover_ok(&["describe", "node", "test-node"]);
    let line = page
        .lines()
        .find(|l| l.trim_start().starts_with("Cgroups:"))
        .unwrap_or_else(|| panic!("no Cgroups line in:\n{page}"));
    assert!(line.contains("cgroup v"), "{line}");
    assert!(
        d.log().contains("cgroups: cgroup v"),
        "the daemon's log says it"
    );
}

#[test]
fn a_stopped_service_leaves_no_cgroup_behind() {
    // systemd removes a stopped unit's cgroup; `systemctl stop drover`
    // (SIGTERM to the keeper) stops every pod, and then their root goes
    // too. Each stopped daemon used to leave an empty root in every
    // hierarchy.
    let unit = pod_unit("sleeper", "Always", &["sleep", "1000"], "");
    let mut d = TestDaemon::start(&[("sleeper.toml", unit.as_str())]);
    d.wait_running("sleeper");
    let id = std::fs::read_to_string(d.path("state").join("instance-id")).unwrap();
    let present = || -> Vec<std::path::PathBuf> {
        drover::runtime::cgroup::instance_roots(id.trim())
            .into_iter()
            .filter(|r| r.is_dir())
            .collect()
    };
    assert!(
        !present().is_empty(),
        "the running daemon has a cgroup root"
    );
    d.stop_service();
    assert_eq!(present(), Vec::<std::path::PathBuf>::new(), "{}", d.log());
    assert!(!d.log().contains("leaving this daemon's cgroup root"));
    // The next start makes the root again and puts the pod back in it.
    d.restart();
    let pod = d.wait_for("sleeper running again", SOON, || {
        d.pod("sleeper").filter(all_running)
    });
    assert!(!present().is_empty(), "the restarted daemon has its root");
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", main_pid(&pod))).unwrap();
    assert!(
        cgroups.contains(&format!("/drover-{}/", id.trim())),
        "{cgroups}"
    );
    d.assert_teardown_leaves_nothing();
}
