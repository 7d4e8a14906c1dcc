//! Pods: environment, restart policies, crash loops, users, start errors.

use crate::harness::*;
use drover::api::{PodPhase, ProcessState};
use std::time::Duration;

#[test]
fn env_ports_and_argv_expansion() {
    let unit = r#"kind = "Pod"
name = "envy"
[spec]
ports = [{ name = "http", range = "@PORTS@" }, { name = "admin-api", range = "@PORTS@" }]
[[spec.processes]]
name = "main"
env = { GREETING = "hi from ${DROVER_NODE_NAME}" }
command = ["sh", "-c", "echo \"$DROVER_POD_NAME|$DROVER_NODE_NAME|$PORT_HTTP|$PORT_ADMIN_API|$GREETING\" > @DIR@/files/env.tmp; echo \"$0|$1\" >> @DIR@/files/env.tmp; mv @DIR@/files/env.tmp @DIR@/files/env; exec sleep 1000", "${DROVER_POD_NAME}", "port=${PORT_HTTP}"]
"#;
    let d = TestDaemon::start(&[("envy.toml", unit)]);
    let pod = d.wait_running("envy");
    let http = pod.status.ports["http"];
    let admin = pod.status.ports["admin-api"];
    assert!(
        (d.ports.0..=d.ports.1).contains(&http) && (d.ports.0..=d.ports.1).contains(&admin),
        "ports {http} {admin} outside {:?}",
        d.ports
    );
    assert_ne!(http, admin, "two ports of one pod must differ");
    let text = d.wait_for("the process to write its env", SOON, || d.read_file("env"));
    assert_eq!(
        text,
        format!("envy|test-node|{http}|{admin}|hi from test-node\nenvy|port={http}\n")
    );
    // The marker drover relies on to find a pod's processes.
    let env = environ(main_pid(&pod));
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("DROVER_POD_UID"), Some(pod.metadata.uid.clone()));
    assert_eq!(get("DROVER_POD_NAME").as_deref(), Some("envy"));
}

/// A command that exits with `code` the first time only, then sleeps.
fn exits_once(d: &TestDaemon, name: &str, code: i32) -> Vec<String> {
    let flag = d.file(&format!("{name}.ran"));
    let flag = flag.display();
    vec![
        "sh".into(),
        "-c".into(),
        format!("if [ -e {flag} ]; then exec sleep 1000; fi; touch {flag}; exit {code}"),
    ]
}

fn pod_text(name: &str, policy: &str, command: &[String]) -> String {
    let refs: Vec<&str> = command.iter().map(String::as_str).collect();
    pod_unit(name, policy, &refs, "")
}

#[test]
fn restart_policies() {
    let d = TestDaemon::start(&[]);
    let always = pod_text("always", "Always", &exits_once(&d, "always", 0));
    let onfail_ok = pod_text(
        "onfail-ok",
        "OnFailure",
        &["sh".into(), "-c".into(), "exit 0".into()],
    );
    let onfail_bad = pod_text("onfail-bad", "OnFailure", &exits_once(&d, "onfail-bad", 3));
    let never_bad = pod_text(
        "never-bad",
        "Never",
        &["sh".into(), "-c".into(), "exit 3".into()],
    );
    let never_ok = pod_text("never-ok", "Never", &["true".into()]);
    for (name, text) in [
        ("always", &always),
        ("onfail-ok", &onfail_ok),
        ("onfail-bad", &onfail_bad),
        ("never-bad", &never_bad),
        ("never-ok", &never_ok),
    ] {
        d.apply(&format!("{name}.toml"), text);
    }

    // Always: exit 0 is restarted too.
    let p = d.wait_for("always restarted once", SOON, || {
        d.pod("always")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    assert_eq!(p.status.phase, PodPhase::Running);
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!(
        (last.exit_code, last.reason.as_str()),
        (Some(0), "Completed")
    );

    // OnFailure: exit 0 ends the pod, Succeeded.
    let p = d.wait_for("onfail-ok Succeeded", SOON, || {
        d.pod("onfail-ok")
            .filter(|p| p.status.phase == PodPhase::Succeeded)
    });
    assert_eq!(p.status.processes[0].restart_count, 0);
    match &p.status.processes[0].state {
        ProcessState::Terminated(t) => {
            assert_eq!((t.exit_code, t.reason.as_str()), (Some(0), "Completed"))
        }
        s => panic!("expected terminated, got {s:?}"),
    }

    // OnFailure: exit 3 is restarted.
    let p = d.wait_for("onfail-bad restarted once", SOON, || {
        d.pod("onfail-bad")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let last = p.status.processes[0]
        .last_state
        .clone()
        .expect("last state");
    assert_eq!((last.exit_code, last.reason.as_str()), (Some(3), "Error"));

    // Never: Failed with the code, or Succeeded.
    let p = d.wait_for("never-bad Failed", SOON, || {
        d.pod("never-bad")
            .filter(|p| p.status.phase == PodPhase::Failed)
    });
    assert_eq!(p.status.processes[0].restart_count, 0);
    match &p.status.processes[0].state {
        ProcessState::Terminated(t) => {
            assert_eq!((t.exit_code, t.reason.as_str()), (Some(3), "Error"))
        }
        s => panic!("expected terminated, got {s:?}"),
    }
    let p = d.wait_for("never-ok Succeeded", SOON, || {
        d.pod("never-ok")
            .filter(|p| p.status.phase == PodPhase::Succeeded)
    });
    assert_eq!(p.status.processes[0].restart_count, 0);

    // What `get pods` shows for each.
    let (header, rows) = table(&d.drover_ok(&["get", "pods"]));
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
            .clone()
    };
    assert_eq!(row("always")[1..3], ["1/1", "Running"]);
    assert!(row("always")[3].starts_with("1 ("), "{:?}", row("always"));
    assert_eq!(row("onfail-ok")[1..4], ["0/1", "Completed", "0"]);
    assert_eq!(row("never-bad")[1..4], ["0/1", "Error", "0"]);
    assert_eq!(row("never-ok")[1..4], ["0/1", "Completed", "0"]);
}

#[test]
fn restart_counts_are_per_process_and_summed() {
    let d = TestDaemon::start(&[]);
    let a = d.file("a.ran").display().to_string();
    let b = d.file("b.ran").display().to_string();
    let unit = format!(
        r#"kind = "Pod"
name = "multi"
[spec]
[[spec.processes]]
name = "one"
command = ["sh", "-c", "if [ -e {a} ]; then exec sleep 1000; fi; touch {a}; exit 1"]
[[spec.processes]]
name = "two"
command = ["sh", "-c", "if [ -e {b} ]; then exec sleep 1000; fi; touch {b}; exit 2"]
"#
    );
    d.apply("multi.toml", &unit);
    let p = d.wait_for("both processes restarted once", SOON, || {
        d.pod("multi")
            .filter(|p| all_running(p) && p.status.processes.iter().all(|s| s.restart_count == 1))
    });
    let codes: Vec<Option<i32>> = p
        .status
        .processes
        .iter()
        .map(|s| s.last_state.as_ref().and_then(|t| t.exit_code))
        .collect();
    assert_eq!(codes, [Some(1), Some(2)]);
    let (_, rows) = table(&d.drover_ok(&["get", "pods", "multi"]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], "2/2");
    assert!(
        rows[0][3].starts_with("2 ("),
        "RESTARTS is the sum: {:?}",
        rows[0]
    );
}

fn slow_backoff() -> Options<'static> {
    Options {
        config: "backoff_initial = \"3s\"\nbackoff_max = \"6s\"\n",
        ..Options::default()
    }
}

#[test]
fn crash_loop_backs_off_after_an_immediate_first_restart() {
    let d = TestDaemon::start_with(&[], slow_backoff());
    // First restart: immediate, although the back-off is 3s.
    let once = exits_once(&d, "once", 1);
    d.apply("once.toml", &pod_text("once", "Always", &once));
    let p = d.wait_for("once restarted", SOON, || {
        d.pod("once")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let st = &p.status.processes[0];
    let finished = st.last_state.as_ref().expect("last state").finished_at;
    let ProcessState::Running { started_at } = st.state else {
        panic!("not running: {st:?}")
    };
    let gap = (started_at - finished).to_std().unwrap_or_default();
    assert!(
        gap < Duration::from_millis(1500),
        "first restart took {gap:?}"
    );

    // Always crashing: CrashLoopBackOff while waiting.
    d.apply(
        "crash.toml",
        &pod_unit(
            "crash",
            "Always",
            &["sh", "-c", "echo crashing; exit 7"],
            "",
        ),
    );
    let p = d.wait_for("crash in CrashLoopBackOff", SOON, || {
        d.pod("crash")
            .filter(|p| waiting_reason(p, 0).as_deref() == Some("CrashLoopBackOff"))
    });
    let st = &p.status.processes[0];
    assert_eq!(st.pid, None);
    assert!(!st.ready);
    let last = st.last_state.as_ref().expect("last state");
    assert_eq!((last.exit_code, last.reason.as_str()), (Some(7), "Error"));
    let ProcessState::Waiting { message, .. } = &st.state else {
        unreachable!()
    };
    let message = message.clone().unwrap_or_default();
    assert!(
        message.starts_with("back-off 3s restarting failed process=main pod=crash"),
        "{message}"
    );
    let (_, rows) = table(&d.drover_ok(&["get", "pods", "crash"]));
    assert_eq!(rows[0][2], "CrashLoopBackOff");
    let events = d.events_for("Pod/crash");
    assert!(
        events.iter().any(|e| e["reason"] == "BackOff"
            && e["type"] == "Warning"
            && e["message"] == "Back-off restarting failed process main"),
        "{events:#?}"
    );
    // And it is started again after the back-off.
    let before = st.restart_count;
    d.wait_until("crash restarted after its back-off", SOON, || {
        d.pod("crash")
            .is_some_and(|p| p.status.processes[0].restart_count > before)
    });
}

/// Kubernetes counts restarts done: during the first CrashLoopBackOff
/// (after the second exit) `restartCount` is 1, not 2.
#[test]
fn restart_count_during_the_first_back_off_is_one() {
    let d = TestDaemon::start_with(&[], slow_backoff());
    d.apply(
        "crash.toml",
        &pod_unit("crash", "Always", &["sh", "-c", "exit 1"], ""),
    );
    let p = d.wait_for("crash in CrashLoopBackOff", SOON, || {
        d.pod("crash")
            .filter(|p| waiting_reason(p, 0).as_deref() == Some("CrashLoopBackOff"))
    });
    assert_eq!(p.status.processes[0].restart_count, 1);
}

#[test]
fn runs_as_another_user() {
    let d = TestDaemon::start(&[]);
    d.apply(
        "who.toml",
        &format!(
            "kind = \"Pod\"\nname = \"who\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
             user = \"nobody\"\nworking_dir = \"/\"\ncommand = {}\n",
            argv(&["sh", "-c", "id -u; id -g; exec sleep 1000"])
        ),
    );
    let p = d.wait_running("who");
    let logs = d.wait_for("id output in the log", SOON, || {
        let out = d.drover_ok(&["logs", "who"]);
        (out.lines().count() >= 2).then_some(out)
    });
    assert_eq!(logs, "65534\n65534\n");
    assert_eq!(uid_of(main_pid(&p)), Some(65534));
}

#[test]
fn missing_executable_is_a_start_error() {
    let d = TestDaemon::start(&[]);
    d.apply(
        "ghost.toml",
        &pod_unit(
            "ghost",
            "Always",
            &["/nonexistent/drover-test-binary", "x"],
            "",
        ),
    );
    let p = d.wait_for("ghost waiting in CrashLoopBackOff", SOON, || {
        d.pod("ghost")
            .filter(|p| waiting_reason(p, 0).as_deref() == Some("CrashLoopBackOff"))
    });
    let st = &p.status.processes[0];
    assert_eq!(st.pid, None);
    let last = st.last_state.as_ref().expect("last state");
    assert_eq!(last.reason, "StartError");
    assert_eq!(
        last.message.as_deref(),
        Some("exec: \"/nonexistent/drover-test-binary\": executable file not found")
    );
    let ProcessState::Waiting { message, .. } = &st.state else {
        unreachable!()
    };
    assert!(
        message
            .as_deref()
            .unwrap_or("")
            .contains("executable file not found"),
        "{message:?}"
    );
    let events = d.events_for("Pod/ghost");
    assert!(
        events.iter().any(|e| e["type"] == "Warning"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("executable file not found")),
        "{events:#?}"
    );
    let out = d.drover_ok(&["events", "--for", "pod/ghost"]);
    assert!(out.contains("executable file not found"), "{out}");
    let (_, rows) = table(&d.drover_ok(&["get", "pods", "ghost"]));
    assert_eq!(rows[0][1..3], ["0/1", "CrashLoopBackOff"]);
}

#[test]
fn unknown_user_is_a_config_error() {
    let d = TestDaemon::start(&[]);
    d.apply(
        "nouser.toml",
        "kind = \"Pod\"\nname = \"nouser\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         user = \"nosuchuser\"\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let p = d.wait_for(
        "nouser waiting with CreateContainerConfigError",
        SOON,
        || {
            d.pod("nouser")
                .filter(|p| waiting_reason(p, 0).as_deref() == Some("CreateContainerConfigError"))
        },
    );
    let st = &p.status.processes[0];
    let ProcessState::Waiting { message, .. } = &st.state else {
        unreachable!()
    };
    assert!(
        message
            .as_deref()
            .unwrap_or("")
            .starts_with("user \"nosuchuser\" does not exist"),
        "{message:?}"
    );
    assert_eq!(
        st.last_state.as_ref().map(|t| t.reason.as_str()),
        Some("CreateContainerConfigError")
    );
    let events = d.events_for("Pod/nouser");
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("user \"nosuchuser\" does not exist")),
        "{events:#?}"
    );
    let (_, rows) = table(&d.drover_ok(&["get", "pods", "nouser"]));
    assert_eq!(rows[0][2], "CreateContainerConfigError");
}
