//! What is set in the child before exec (issue 13): rlimits and umask,
//! seen by the kernel (/proc/PID/limits, /proc/PID/status); and limits
//! refused, never silently dropped, where the daemon has no cgroups.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The line of /proc/PID/limits that starts with `name`, its soft and
/// hard values.
fn limit(pid: u32, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap();
    let f: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (f[0].to_string(), f[1].to_string())
}

#[test]
fn rlimits_and_umask_are_visible_in_the_child() {
    let d = TestDaemon::start(&[(
        "lim.toml",
        &format!(
            "{}rlimits = {{ nofile = 1234, core = 0, nproc = 512, stack = 4194304 }}\n\
             umask = \"0027\"\n",
            pod_unit("lim", "Always", &["sleep", "1000"], "")
        ),
    )]);
    let pid = pid_of(&d.wait_running("lim"), "main");
    assert_eq!(limit(pid, "Max open files"), ("1234".into(), "1234".into()));
    assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
    assert_eq!(limit(pid, "Max processes"), ("512".into(), "512".into()));
    assert_eq!(
        limit(pid, "Max stack size"),
        ("4194304".into(), "4194304".into())
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Umask:\t0027\n"), "{status}");
}

#[test]
fn a_resources_unit_is_refused_under_drover_up_as_non_root() {
    let dir = tempfile::Builder::new()
        .prefix("drover-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let units = dir.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let ran = dir.path().join("ran");
    std::fs::write(
        units.join("web.toml"),
        format!(
            "{}resources = {{ memory = \"64Mi\" }}\n",
            pod_unit(
                "web",
                "Always",
                &[
                    "sh",
                    "-c",
                    &format!("touch {}; exec sleep 1000", ran.display())
                ],
                ""
            )
        ),
    )
    .unwrap();
    let mut child = Command::new(DROVER)
        .arg("up")
        .arg(&units)
        .arg("--socket")
        .arg(dir.path().join("sock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .arg("--node-name")
        .arg("test-node")
        .env_remove("DROVER_SOCKET")
        .env_remove("DROVER_STATE_DIR")
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir(dir.path())
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SOON;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: killpg(2) of the group our child leads.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            panic!("drover up ran a unit with resources without cgroups");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("Pod/web: spec.processes[0].resources cannot be enforced on this node"),
        "{err}"
    );
    assert!(err.contains("root"), "says how to get limits: {err}");
    assert!(!ran.exists(), "the process ran unlimited");
}
