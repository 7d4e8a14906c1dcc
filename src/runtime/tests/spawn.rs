//! spawn: errors before the clone and from exec, and what the child gets.

use super::*;

// ---- spawn: exec errors arrive as Err, checked before the clone where possible

#[test]
fn missing_binary_is_command_not_found() {
    let mut sb = Sandbox::new();
    for cmd in ["drover-no-such-command", "/nonexistent/bin/tool"] {
        let req = sb.req(&[cmd]);
        match spawn_err(&mut sb, &req) {
            SpawnError::CommandNotFound { command } => assert_eq!(command, cmd),
            e => panic!("{cmd}: want CommandNotFound, got {e:?}"),
        }
    }
}

#[test]
fn bare_command_is_searched_in_the_child_path_only() {
    let mut sb = Sandbox::new();
    // `true` is on the test's own PATH, but not on the child's.
    let mut req = sb.req(&["true"]);
    req.env[0].1 = "/nonexistent".to_string();
    assert!(matches!(
        spawn_err(&mut sb, &req),
        SpawnError::CommandNotFound { .. }
    ));

    // A tool only on the child's PATH is found.
    let bin = sb.dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let tool = bin.join("drover-test-tool");
    fs::write(&tool, "#!/bin/sh\necho tool-ran\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let mut req = sb.req(&["drover-test-tool"]);
    req.env[0].1 = format!("{}:/usr/bin:/bin", bin.display());
    let pid = sb.spawn(&req).expect("found on the child's PATH").pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    assert!(sb.log().contains("tool-ran"));

    // No PATH at all: glibc's execvp falls back to /bin:/usr/bin.
    let mut req = sb.req(&["true"]);
    req.env.retain(|(k, _)| k != "PATH");
    let pid = sb.spawn(&req).expect("default search path").pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
}

#[test]
fn not_executable_is_permission_denied_and_bad_interpreter_is_io() {
    let mut sb = Sandbox::new();
    let script = sb.dir.path().join("script.sh");
    fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let path = script.to_str().unwrap().to_string();
    let req = sb.req(&[&path]);
    match spawn_err(&mut sb, &req) {
        SpawnError::PermissionDenied { command } => assert_eq!(command, path),
        e => panic!("want PermissionDenied, got {e:?}"),
    }

    fs::write(&script, "#!/no/such/interpreter\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    match spawn_err(&mut sb, &req) {
        SpawnError::Io { command, source } => {
            assert_eq!(command, path);
            assert!(source.to_string().contains("interpreter"), "{source}");
        }
        e => panic!("want Io (bad interpreter), got {e:?}"),
    }
}

#[test]
fn unknown_user_group_dir_and_log_are_reported_before_fork() {
    let mut sb = Sandbox::new();
    let mut req = sb.req(&["true"]);
    req.user = Some("drover-no-such-user".to_string());
    let err = spawn_err(&mut sb, &req);
    assert!(matches!(&err, SpawnError::UserNotFound { user } if user == "drover-no-such-user"));
    assert_eq!(err.reason(), "CreateContainerConfigError");

    let mut req = sb.req(&["true"]);
    req.user = Some("nobody".to_string());
    req.group = Some("drover-no-such-group".to_string());
    assert!(
        matches!(spawn_err(&mut sb, &req), SpawnError::GroupNotFound { group } if group == "drover-no-such-group")
    );

    let mut req = sb.req(&["true"]);
    let missing = sb.dir.path().join("missing");
    req.working_dir = Some(missing.clone());
    match spawn_err(&mut sb, &req) {
        SpawnError::WorkingDir { dir, source } => {
            assert_eq!(dir, missing);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        e => panic!("want WorkingDir, got {e:?}"),
    }
    req.working_dir = Some(PathBuf::from("/etc/passwd"));
    assert!(
        matches!(spawn_err(&mut sb, &req), SpawnError::WorkingDir { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR))
    );

    let mut req = sb.req(&["true"]);
    req.log_path = PathBuf::from("/etc/passwd/x.log");
    assert!(matches!(
        spawn_err(&mut sb, &req),
        SpawnError::LogFile { .. }
    ));
    // A missing directory is not an error: it is made.
    req.log_path = sb.dir.path().join("new-pod").join("x.log");
    let pid = sb.spawn(&req).expect("log dir created").pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    assert!(req.log_path.is_file());

    let req = sb.req(&[]);
    assert!(matches!(spawn_err(&mut sb, &req), SpawnError::Io { .. }));
}

// ---- what the child gets

#[test]
fn env_is_exactly_the_request_env() {
    let mut sb = Sandbox::new();
    let mut req = sb.req(&["/usr/bin/env"]);
    req.env = vec![
        ("A".to_string(), "1".to_string()),
        ("B".to_string(), "two words".to_string()),
        (MARK.to_string(), sb.marker.clone()),
    ];
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    let mut got: Vec<String> = sb.log().lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    want.sort();
    assert_eq!(got, want, "no HOME, PATH, or anything of ours leaks in");
}

#[test]
fn stdout_and_stderr_append_to_the_log_and_stdin_is_dev_null() {
    let mut sb = Sandbox::new();
    fs::write(sb.log_path(), "previous run\n").unwrap();
    fs::set_permissions(sb.log_path(), fs::Permissions::from_mode(0o600)).unwrap();
    let script = "echo to-stdout; echo to-stderr >&2; readlink /proc/$$/fd/0; cat; echo cat-done";
    let pid = sb.start(&["sh", "-c", script]).pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    assert_eq!(
        sb.log(),
        "previous run\nto-stdout\nto-stderr\n/dev/null\ncat-done\n",
        "appended, both streams, stdin at EOF"
    );

    // A new log file is created 0640 (less only through the umask).
    let fresh = sb.dir.path().join("fresh.log");
    let mut req = sb.req(&["true"]);
    req.log_path = fresh.clone();
    let pid = sb.spawn(&req).unwrap().pid;
    sb.wait_exit(pid);
    let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    assert_eq!(mode & 0o600, 0o600, "mode {mode:o}");
}

#[test]
fn child_leads_a_new_session_and_gets_only_fds_0_1_2() {
    let mut sb = Sandbox::new();
    // An fd without CLOEXEC, as a daemon might inherit one.
    let leak = std::ffi::CString::new(sb.dir.path().join("leak-me").to_str().unwrap()).unwrap();
    // SAFETY: valid C string; the fd is closed below.
    let leaked = unsafe { libc::open(leak.as_ptr(), libc::O_RDONLY | libc::O_CREAT, 0o600) };
    assert!(leaked > 2);
    let pid = sb.start(&["sleep", "1000"]).pid;
    // SAFETY: our own fd.
    unsafe { libc::close(leaked) };
    // spawn returns right after execve, while ld.so may still hold a
    // library open for a moment: wait for the table to settle, but fail at
    // once if the leaked file shows up.
    wait_until("the child's fd table to be exactly 0, 1, 2", || {
        let mut fds = Vec::new();
        for entry in fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let entry = entry.unwrap();
            let target = fs::read_link(entry.path()).unwrap_or_default();
            assert!(
                !target.ends_with("leak-me"),
                "leaked into the child: {target:?}"
            );
            fds.push(entry.file_name().to_string_lossy().into_owned());
        }
        fds.sort();
        (fds == ["0", "1", "2"]).then_some(())
    });
    let st = procfs::stat(pid).unwrap();
    assert_eq!(
        (st.pgrp, st.session),
        (pid, pid),
        "setsid: pgid == sid == pid"
    );
    assert_eq!(st.ppid, std::process::id() as i32);
    sb.rt.signal_group(pid, Signal::KILL).unwrap();
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
}

#[test]
fn runs_as_nobody_with_its_groups_and_no_new_privs() {
    let mut sb = Sandbox::new();
    let script = "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status";
    let mut req = sb.req(&["sh", "-c", script]);
    req.user = Some("nobody".to_string());
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    assert_eq!(sb.log(), "65534\n65534\n65534\nNoNewPrivs:\t1\n");

    // Numeric user, group override by name.
    fs::write(sb.log_path(), "").unwrap();
    req.user = Some("65534".to_string());
    req.group = Some("daemon".to_string());
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    assert_eq!(sb.log(), "65534\n1\n1\nNoNewPrivs:\t1\n");
    assert_parent_kept_its_credentials();
}

/// The child shares the parent's memory until exec: whatever it does to
/// change user must change only itself. Checks that every thread of the
/// test process (the parent) is still who it was.
fn assert_parent_kept_its_credentials() {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let tasks = fs::read_dir("/proc/self/task").unwrap();
    let mut seen = 0;
    for task in tasks {
        let status = fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        for (key, want) in [("Uid:", uid), ("Gid:", gid)] {
            let line = status.lines().find(|l| l.starts_with(key));
            let Some(line) = line else { continue };
            let ids: Vec<u32> = line[key.len()..]
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(
                ids, [want; 4],
                "a thread of the parent changed {key} {line}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 2, "read no thread's credentials");
}

#[test]
fn supplementary_groups_come_from_the_group_database() {
    // This machine's postgres user is also in ssl-cert: initgroups data.
    let Some(env) = user_env("postgres") else {
        eprintln!("no postgres user here: skipped");
        return;
    };
    let want = nix::unistd::getgrouplist(
        &std::ffi::CString::new("postgres").unwrap(),
        nix::unistd::User::from_name("postgres")
            .unwrap()
            .unwrap()
            .gid,
    )
    .unwrap();
    assert!(env.iter().any(|(k, v)| k == "USER" && v == "postgres"));
    let mut sb = Sandbox::new();
    let mut req = sb.req(&["id", "-G"]);
    req.user = Some("postgres".to_string());
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(sb.wait_exit(pid), ExitReason::Code(0));
    let mut got: Vec<u32> = sb
        .log()
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<u32> = want.iter().map(|g| g.as_raw()).collect();
    want.sort();
    want.dedup();
    assert!(
        want.len() >= 2,
        "postgres has supplementary groups: {want:?}"
    );
    assert_eq!(got, want);
}

#[test]
fn spawn_many_starts_all_in_order_and_reports_each_failure() {
    let mut sb = Sandbox::new();
    // Enough requests for the runtime to share them out between threads,
    // with failures spread over every share.
    let reqs: Vec<SpawnRequest> = (0..40)
        .map(|i| {
            if i % 7 == 3 {
                sb.req(&["drover-no-such-command"])
            } else {
                sb.req(&["sh", "-c", &format!("echo started-{i}")])
            }
        })
        .collect();
    let results = sb.rt.spawn_many(&reqs);
    assert_eq!(results.len(), reqs.len());
    let mut pids = vec![];
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Err(SpawnError::CommandNotFound { .. }) if i % 7 == 3 => {}
            Ok(s) if i % 7 != 3 => {
                sb.unreaped.push(s.pid);
                pids.push(s.pid);
            }
            other => panic!("request {i}: unexpected {other:?}"),
        }
    }
    for pid in &pids {
        assert_eq!(sb.wait_exit(*pid), ExitReason::Code(0));
    }
    let log = sb.log();
    for i in (0..40).filter(|i| i % 7 != 3) {
        assert!(
            log.contains(&format!("started-{i}\n")),
            "no output of {i}: {log}"
        );
    }
}
