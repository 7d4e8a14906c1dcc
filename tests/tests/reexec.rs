//! `drover daemon-reexec` (issue 13): the daemon re-executes itself in
//! place. Same pid, so its keeper sees nothing and every pod stays its
//! child: no pid, no restart count changes, nothing is re-adopted, and a
//! pod that exits during the exec reports its real exit code.

use crate::harness::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// pid and restart count of every pod's process, by pod name.
fn pids_and_restarts(d: &TestDaemon) -> BTreeMap<String, (u32, u32)> {
    d.pods()
        .iter()
        .map(|p| {
            let st = &p.status.processes[0];
            (
                p.metadata.name.clone(),
                (st.pid.expect("running"), st.restart_count),
            )
        })
        .collect()
}

/// The daemon's image as its API names it.
fn image_id(d: &TestDaemon) -> String {
    let v = d.api("/v1/version").expect("version");
    v["image_id"].as_str().expect("image_id").to_string()
}

fn environ_value(pid: u32, key: &str) -> Option<String> {
    environ(pid)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The inode of the socket listening at `path` (/proc/net/unix).
fn listening_inode(path: &std::path::Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path; flag 0x10000:
        // listening.
        let listening = u32::from_str_radix(f.get(3)?, 16).ok()? & 0x10000 != 0;
        (listening && f.get(7).copied() == path.to_str()).then(|| f[6].to_string())
    })
}

/// How many of `pid`'s descriptors point at `target` (a path, or
/// `socket:[INODE]`).
fn fds_to(pid: u32, target: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_str() == Some(target)))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn daemon_reexec_keeps_every_pid_and_restart_count() {
    let mut d = TestDaemon::start(&[]);
    d.apply("web.toml", &rs_unit("web", "web", 2));
    let pods = d.wait_pods("app=web", 2);
    // One pod has restarted once: its count must survive too.
    let crashed = pods[0].metadata.name.clone();
    send_signal(main_pid(&pods[0]), libc::SIGKILL);
    d.wait_until("the killed pod restarted once", SOON, || {
        d.pod(&crashed)
            .is_some_and(|p| all_running(&p) && p.status.processes[0].restart_count == 1)
    });
    let before = pids_and_restarts(&d);
    let daemon = d.daemon_pid();
    let keeper = d.keeper_pid();
    let image = image_id(&d);
    let socket = listening_inode(&d.socket()).expect("the control socket listens");
    let socket_fd = format!("socket:[{socket}]");
    // The listener, and the copy kept to hand it over.
    let socket_fds = fds_to(daemon, &socket_fd);
    assert!(socket_fds >= 1, "the daemon holds its listening socket");
    let lock = d.path("state").join("lock").display().to_string();
    assert_eq!(fds_to(daemon, &lock), 1);
    assert_eq!(environ_value(daemon, "DROVER_REEXEC"), None);

    let out = d.drover_ok(&["daemon-reexec"]);
    assert!(
        out.contains(&format!("re-executed in place (pid {daemon})")),
        "{out}"
    );

    // The same process, with a new image that knows it is one.
    let v = d.api("/v1/version").expect("version");
    assert_eq!(v["pid"].as_u64(), Some(daemon as u64));
    assert_ne!(image_id(&d), image, "the image was replaced");
    assert_eq!(v["reexecs"].as_u64(), Some(1));
    assert_eq!(environ_value(daemon, "DROVER_REEXEC").as_deref(), Some("1"));
    // The keeper saw nothing: still the daemon's parent, still alive.
    assert!(matches!(proc_stat(daemon), Some((_, pp, _)) if pp == keeper));
    assert!(alive(keeper));
    // What crossed the exec is held once: nothing leaked, nothing was
    // bound anew (the listening socket is the same one).
    assert_eq!(
        listening_inode(&d.socket()).as_deref(),
        Some(socket.as_str()),
        "the listening socket was handed over"
    );
    assert_eq!(fds_to(daemon, &socket_fd), socket_fds);
    assert_eq!(fds_to(daemon, &lock), 1, "the lock was handed over");

    // Every pod as it was: same pids, same counts, still the daemon's
    // children, nothing re-adopted.
    assert_eq!(pids_and_restarts(&d), before);
    for (pid, _) in before.values() {
        assert!(
            matches!(proc_stat(*pid), Some((_, pp, _)) if pp == daemon),
            "pid {pid} is still the daemon's child"
        );
    }
    for name in before.keys() {
        let events = d.events_for(&format!("Pod/{name}"));
        assert!(
            !events.iter().any(|e| {
                matches!(
                    e["reason"].as_str(),
                    Some("Recovered" | "ProcessLost" | "ExitedWhileDown")
                )
            }),
            "{events:#?}"
        );
    }

    // Supervision goes on: a pod started by the old image is reaped with
    // its real status (SIGKILL: 137) and restarted...
    let (pid, _) = before[&crashed];
    send_signal(pid, libc::SIGKILL);
    let p = d.wait_for("the pod restarted after the re-exec", SOON, || {
        d.pod(&crashed)
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 2)
    });
    assert_ne!(main_pid(&p), pid);
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(last.exit_code, Some(137), "{last:?}");

    // ... a second re-exec works the same way ...
    let before = pids_and_restarts(&d);
    d.drover_ok(&["daemon-reexec"]);
    assert_eq!(environ_value(daemon, "DROVER_REEXEC").as_deref(), Some("2"));
    assert_eq!(pids_and_restarts(&d), before);
    assert_eq!(fds_to(daemon, &lock), 1);
    assert_eq!(fds_to(daemon, &socket_fd), socket_fds);

    // ... and a delete stops every pod.
    d.drover_ok(&["delete", "rs", "web"]);
    d.wait_until("the set's pods gone", SOON, || d.pods().is_empty());
    for (pid, _) in before.values() {
        d.wait_until("the pod's process gone", SOON, || !alive(*pid));
    }
    assert_eq!(d.daemon_pid(), daemon);
    d.assert_teardown_leaves_nothing();
}

/// The first run waits for `go`, then for the daemon's new image (its
/// environment gains DROVER_REEXEC at the exec), stops the daemon right
/// there (SIGSTOP: before the new image can handle SIGCHLD) and exits 7,
/// so the exit lands inside the exec. Later runs sleep. (`$${..}`: a
/// literal `${..}` for bash, not one of drover's variables.)
#[test]
fn a_pod_that_exits_during_daemon_reexec_reports_its_exit_code() {
    let mut d = TestDaemon::start(&[]);
    let go = d.file("go");
    let ran = d.file("ran");
    let script = format!(
        "if [ -f {ran} ]; then exec sleep 1000; fi; touch {ran}; \
         while [ ! -f {go} ]; do sleep 0.05; done; daemon=$PPID; \
         while :; do mapfile -d '' vars < /proc/$daemon/environ; \
         case \" $${{vars[*]}} \" in *' DROVER_REEXEC='*) break;; esac; done; \
         kill -STOP $daemon; exit 7",
        ran = ran.display(),
        go = go.display()
    );
    d.apply(
        "seven.toml",
        &pod_unit("seven", "OnFailure", &["/bin/bash", "-c", &script], ""),
    );
    let pid = main_pid(&d.wait_running("seven"));
    let daemon = d.daemon_pid();
    assert!(matches!(proc_stat(pid), Some((_, pp, _)) if pp == daemon));

    std::fs::write(&go, "").unwrap();
    let cli = d
        .command(&["daemon-reexec"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drover daemon-reexec");
    d.wait_until(
        "the pod exited during the exec, a zombie of the stopped daemon",
        SOON,
        || {
            matches!(proc_stat(pid), Some(('Z', pp, _)) if pp == daemon)
                && matches!(proc_stat(daemon), Some(('T', _, _)))
        },
    );
    send_signal(daemon, libc::SIGCONT);
    let out = cli.wait_with_output().expect("the CLI finished");
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());

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
    let events = d.events_for("Pod/seven");
    assert!(
        !events.iter().any(|e| e["reason"] == "ProcessLost"),
        "{events:#?}"
    );
    assert_eq!(d.daemon_pid(), daemon);
    assert!(matches!(proc_stat(main_pid(&p)), Some((_, pp, _)) if pp == daemon));
    d.assert_teardown_leaves_nothing();
}

/// A group and a member of it, made for one test; removed when dropped.
struct Member {
    group: String,
    user: String,
}

impl Member {
    fn create() -> Member {
        let tag = std::process::id();
        let m = Member {
            group: format!("drvrg{tag}"),
            user: format!("drvrm{tag}"),
        };
        let run = |cmd: &str, args: &[&str]| {
            let out = Command::new(cmd).args(args).output().expect(cmd);
            assert!(out.status.success(), "{cmd} {args:?}: {}", show(&out));
        };
        run("groupadd", &[&m.group]);
        run(
            "useradd",
            &[
                "--no-create-home",
                "--no-user-group",
                "--gid",
                "65534",
                "--groups",
                &m.group,
                "--shell",
                "/usr/sbin/nologin",
                &m.user,
            ],
        );
        m
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).output();
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

#[test]
fn only_root_may_reexec_the_daemon() {
    let m = Member::create();
    let config = format!("{DEFAULT_CONFIG}socket_group = \"{}\"\n", m.group);
    let open = |dir: &std::path::Path| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap()
    };
    let mut d = TestDaemon::start_with(
        &[],
        Options {
            config: &config,
            prepare: Some(&open),
            ..Options::default()
        },
    );
    let daemon = d.daemon_pid();
    let image = image_id(&d);
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            &m.user,
            "--regid",
            "65534",
            "--init-groups",
            "--",
        ])
        .arg(DROVER)
        .arg("--socket")
        .arg(d.socket())
        .arg("daemon-reexec")
        .env_remove("DROVER_SOCKET")
        .current_dir("/")
        .output()
        .expect("drover through setpriv");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: only root may re-execute the daemon"),
        "{err}"
    );
    assert_eq!(image_id(&d), image, "not re-executed");
    assert_eq!(environ_value(daemon, "DROVER_REEXEC"), None);
    d.assert_teardown_leaves_nothing();
}

/// An upgrade leaves every pod's health where it was. Before, the new
/// image started each adopted process's checks over: a startup probe
/// that had passed long ago ran again (and held liveness back until it
/// passed, or killed the process if it no longer could), and an
/// sd_notify watchdog waited for a second READY=1 that never comes, so
/// after any daemon restart a hung process was never restarted.
#[test]
fn daemon_reexec_keeps_startup_done_and_the_watchdog_armed() {
    let checked = "kind = \"Pod\"\nname = \"checked\"\n[spec]\n[[spec.processes]]\n\
         name = \"main\"\ncommand = [\"sleep\", \"1000\"]\n\
         [spec.processes.startup]\nexec = { command = [\"sh\", \"-c\", \
         \"echo x >> @DIR@/files/startups; test -f @DIR@/files/fresh\"] }\n\
         period = \"100ms\"\nfailure_threshold = 1000\n\
         [spec.processes.liveness]\n\
         exec = { command = [\"sh\", \"-c\", \"echo x >> @DIR@/files/live\"] }\n\
         period = \"100ms\"\n";
    let svc = notifier_pod_unit();
    let mut d = TestDaemon::start(&[("checked.toml", checked), ("svc.toml", &svc)]);
    let (fresh, live) = (d.file("fresh"), d.file("live"));
    std::fs::write(&fresh, "").unwrap();
    std::fs::write(d.file("go"), "").unwrap();
    d.wait_until("both ready, liveness running", SOON, || {
        ["checked", "svc"]
            .iter()
            .all(|n| d.pod(n).is_some_and(|p| p.status.processes[0].ready))
            && live.exists()
    });
    let pids: Vec<u32> = ["checked", "svc"]
        .iter()
        .map(|n| main_pid(&d.pod_now(n)))
        .collect();

    // The startup probe could not pass any more; nothing may ask it to.
    let startups = || {
        std::fs::read_to_string(d.file("startups"))
            .unwrap()
            .lines()
            .count()
    };
    let startups_before = startups();
    std::fs::remove_file(&fresh).unwrap();
    d.drover_ok(&["daemon-reexec"]);
    assert_eq!(d.api("/v1/version").expect("version")["reexecs"], 1);
    // Twice: a check the old image started may still write once.
    for _ in 0..2 {
        std::fs::remove_file(&live).unwrap();
        d.wait_until("liveness runs after the re-exec", SOON, || live.exists());
    }
    assert_eq!(startups(), startups_before, "the startup probe ran again");
    let p = d.pod_now("checked");
    assert!(p.status.processes[0].ready, "{:?}", p.status.processes[0]);
    assert_eq!(main_pid(&p), pids[0]);
    assert_eq!(p.status.processes[0].restart_count, 0);

    // The watchdog still bites.
    assert_eq!(main_pid(&d.pod_now("svc")), pids[1]);
    std::fs::write(d.file("hang"), "").unwrap();
    let p = d.wait_for("svc restarted by its watchdog", SOON, || {
        d.pod("svc")
            .filter(|p| p.status.processes[0].restart_count >= 1)
    });
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(last.reason, "WatchdogTimeout", "{last:?}");
    d.assert_teardown_leaves_nothing();
}
