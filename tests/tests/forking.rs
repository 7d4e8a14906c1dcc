//! Daemons that fork themselves (issue 13): with `pid_file`, the process
//! the pid file names is the one supervised. A real `memcached -d`.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;

fn memcached_version(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"version\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

fn pid_in(d: &TestDaemon, file: &str) -> Option<u32> {
    d.read_file(file)?.trim().parse().ok()
}

#[test]
fn memcached_d_with_pid_file_is_supervised_restarted_and_stopped() {
    let d = TestDaemon::start(&[]);
    let port = d.ports.0;
    let pidfile = d.file("mc.pid");
    let unit = format!(
        "{}pid_file = \"{}\"\n",
        pod_unit(
            "mc",
            "Always",
            &[
                "memcached",
                "-d",
                "-P",
                pidfile.to_str().unwrap(),
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-u",
                "root",
            ],
            ""
        ),
        pidfile.display()
    );
    d.apply("mc.toml", &unit);
    let pod = d.wait_running("mc");
    let daemon = pid_of(&pod, "main");
    assert_eq!(Some(daemon), pid_in(&d, "mc.pid"), "the pid file's process");
    assert!(alive(daemon));
    let v = d.wait_for("memcached answers", SOON, || memcached_version(port));
    assert!(v.starts_with("VERSION "), "{v}");
    assert_eq!(pod.status.processes[0].restart_count, 0);

    // SIGKILL of the forked daemon: noticed, and it is started again.
    send_signal(daemon, libc::SIGKILL);
    let again = d.wait_for("memcached restarted", SOON, || {
        let p = d.pod("mc").filter(all_running)?;
        let st = &p.status.processes[0];
        (st.restart_count == 1 && st.pid != Some(daemon)).then_some(p)
    });
    let second = pid_of(&again, "main");
    assert_eq!(Some(second), pid_in(&d, "mc.pid"));
    let t = match &again.status.processes[0].last_state {
        Some(t) => t.clone(),
        None => panic!("no last state: {again:#?}"),
    };
    assert_eq!(t.exit_code, Some(137), "{t:?}");
    d.wait_for("memcached answers again", SOON, || memcached_version(port));

    // delete stops it.
    d.drover_ok(&["delete", "pod", "mc"]);
    d.wait_gone("mc");
    d.wait_until("memcached stopped", SOON, || !alive(second));
    assert!(memcached_version(port).is_none());
}

#[test]
fn without_pid_file_a_self_forking_daemon_crash_loops_and_leaves_nothing() {
    // The starter's exit is the main process's exit; what it left
    // behind is killed (issue 13: "treated as today").
    let d = TestDaemon::start(&[]);
    let port = d.ports.0 + 1;
    d.apply(
        "mc.toml",
        &pod_unit(
            "mc",
            "Always",
            &[
                "memcached",
                "-d",
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-u",
                "root",
            ],
            "",
        ),
    );
    d.wait_until("restarted twice", SOON, || {
        d.pod("mc").is_some_and(|p| {
            p.status
                .processes
                .first()
                .is_some_and(|s| s.restart_count >= 2)
        })
    });
    d.drover_ok(&["delete", "pod", "mc"]);
    d.wait_gone("mc");
    d.wait_until("no memcached left", SOON, || {
        memcached_version(port).is_none()
    });
}
