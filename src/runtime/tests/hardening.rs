//! What every child gets unless its request says otherwise (issue 10):
//! no_new_privs, umask 0022; and what a request may set: rlimits, umask.

use super::*;
use crate::api::{RlimitValue, Umask};

/// The "Max ..." row of /proc/PID/limits: (soft, hard).
fn limit_row(pid: i32, row: &str) -> (String, String) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no {row}: {text}"));
    let mut cols = line[row.len()..].split_whitespace();
    (
        cols.next().unwrap().to_string(),
        cols.next().unwrap().to_string(),
    )
}

fn status_field(pid: i32, field: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field}"))
        .trim()
        .to_string()
}

fn kill_and_wait(sb: &mut Sandbox, pid: i32) {
    sb.rt.signal(pid, Signal::KILL).unwrap();
    sb.wait_exit(pid);
}

#[test]
fn rlimits_and_umask_are_set_in_the_child() {
    let mut sb = Sandbox::new();
    let mut req = sb.req(&["sleep", "1000"]);
    req.rlimits = [
        ("nofile", RlimitValue::Limit(1234)),
        ("core", RlimitValue::Unlimited),
        ("nproc", RlimitValue::Limit(77)),
        ("memlock", RlimitValue::Limit(65536)),
        ("stack", RlimitValue::Limit(4 << 20)),
        ("fsize", RlimitValue::Limit(1 << 30)),
        ("sigpending", RlimitValue::Limit(99)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    req.umask = Some(Umask(0o027));
    let pid = sb.spawn(&req).unwrap().pid;
    let both = |v: &str| (v.to_string(), v.to_string());
    assert_eq!(limit_row(pid, "Max open files"), both("1234"));
    assert_eq!(limit_row(pid, "Max core file size"), both("unlimited"));
    assert_eq!(limit_row(pid, "Max processes"), both("77"));
    assert_eq!(limit_row(pid, "Max locked memory"), both("65536"));
    assert_eq!(limit_row(pid, "Max stack size"), both("4194304"));
    assert_eq!(limit_row(pid, "Max file size"), both("1073741824"));
    assert_eq!(limit_row(pid, "Max pending signals"), both("99"));
    assert_eq!(status_field(pid, "Umask"), "0027");
    kill_and_wait(&mut sb, pid);
    // The parent kept its own.
    let me = std::process::id() as i32;
    assert_ne!(limit_row(me, "Max open files").0, "1234");
    assert_ne!(limit_row(me, "Max processes").0, "77");
}

#[test]
fn bad_rlimits_fail_the_spawn_with_the_limit_named() {
    let mut sb = Sandbox::new();
    let mut req = sb.req(&["true"]);
    req.rlimits = [("files".to_string(), RlimitValue::Limit(10))].into();
    match spawn_err(&mut sb, &req) {
        SpawnError::Rlimit { name, source } => {
            assert_eq!(name, "files");
            assert!(
                source.to_string().contains("nofile"),
                "lists the known names: {source}"
            );
        }
        e => panic!("want Rlimit, got {e:?}"),
    }
    // Above fs.nr_open the kernel refuses even root, in the child.
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    req.rlimits = [("nofile".to_string(), RlimitValue::Limit(nr_open + 1))].into();
    match spawn_err(&mut sb, &req) {
        SpawnError::Rlimit { name, source } => {
            assert_eq!(name, "nofile");
            assert_eq!(source.raw_os_error(), Some(libc::EPERM));
        }
        e => panic!("want Rlimit, got {e:?}"),
    }
}

#[test]
fn no_new_privs_by_default_and_off_only_when_escalation_is_allowed() {
    let mut sb = Sandbox::new();
    // No `user`: before issue 10, no_new_privs was set only with one.
    let req = sb.req(&["sleep", "1000"]);
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    kill_and_wait(&mut sb, pid);

    let mut req = sb.req(&["sleep", "1000"]);
    req.allow_privilege_escalation = true;
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(status_field(pid, "NoNewPrivs"), "0");
    kill_and_wait(&mut sb, pid);

    let mut req = sb.req(&["sleep", "1000"]);
    req.user = Some("nobody".into());
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    kill_and_wait(&mut sb, pid);
}

#[test]
fn umask_is_0022_whatever_the_daemon_has() {
    run_isolated(
        module_path!(),
        "umask_is_0022_whatever_the_daemon_has_isolated",
    );
}

#[test]
#[ignore = "run in its own process by umask_is_0022_whatever_the_daemon_has"]
fn umask_is_0022_whatever_the_daemon_has_isolated() {
    if !isolated() {
        return;
    }
    // A daemon started with a restrictive umask (the umask is per
    // process: only in this isolated copy).
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0o077) };
    let mut sb = Sandbox::new();
    let req = sb.req(&["sleep", "1000"]);
    let pid = sb.spawn(&req).unwrap().pid;
    assert_eq!(status_field(pid, "Umask"), "0022");
    kill_and_wait(&mut sb, pid);
    assert_eq!(status_field(std::process::id() as i32, "Umask"), "0077");
}
