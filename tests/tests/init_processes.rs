//! Init processes (issue 14, Kubernetes' init containers): one after
//! another, each to completion, before the pod's processes; shown as
//! `Init:N/M`, and a failure that is final stops the pod there.

use crate::harness::*;
use drover::api::PodPhase;

/// A pod whose init processes and process run `sh -c` scripts.
fn pod_with_inits(name: &str, policy: &str, inits: &[&str], main: &str) -> String {
    let mut text = format!(
        "kind = \"Pod\"\nname = \"{name}\"\n[spec]\nrestart_policy = \"{policy}\"\n\
         termination_grace_period = \"2s\"\n"
    );
    for (i, script) in inits.iter().enumerate() {
        text += &format!(
            "[[spec.init_processes]]\nname = \"init{i}\"\ncommand = {}\n",
            argv(&["sh", "-c", script])
        );
    }
    text += &format!(
        "[[spec.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(&["sh", "-c", main])
    );
    text
}

fn status_column(d: &TestDaemon, name: &str) -> Option<String> {
    let (_, rows) = table(&d.drover_ok(&["get", "pods"]));
    rows.into_iter()
        .find(|r| r[0] == name)
        .map(|r| r[2].clone())
}

#[test]
fn init_processes_run_in_order_before_the_processes() {
    let d = TestDaemon::start(&[]);
    let trace = d.file("trace");
    let go = d.file("go");
    let t = trace.display();
    d.apply(
        "app.toml",
        &pod_with_inits(
            "app",
            "Always",
            &[
                &format!("echo init0 >> {t}"),
                // Waits for the test to let it finish.
                &format!(
                    "echo init1 >> {t}; while [ ! -e {} ]; do sleep 0.05; done",
                    go.display()
                ),
            ],
            &format!("echo main >> {t}; exec sleep 1000"),
        ),
    );
    d.wait_until("the second init process runs", SOON, || {
        d.read_file("trace").as_deref() == Some("init0\ninit1\n")
    });
    assert_eq!(status_column(&d, "app").as_deref(), Some("Init:1/2"));
    let pod = d.pod_now("app");
    assert_eq!(pod.status.phase, PodPhase::Pending);
    assert!(pod.status.processes[0].pid.is_none(), "main waits");

    std::fs::write(&go, "").unwrap();
    let pod = d.wait_running("app");
    assert_eq!(d.read_file("trace").unwrap(), "init0\ninit1\nmain\n");
    assert_eq!(status_column(&d, "app").as_deref(), Some("Running"));
    assert_eq!(pod.status.init_processes.len(), 2);
    assert!(pod.status.init_processes.iter().all(
        |s| matches!(&s.state, drover::api::ProcessState::Terminated(t) if t.exit_code == Some(0))
    ));
    let page = d.drover_ok(&["describe", "pod", "app"]);
    assert!(page.contains("init0") && page.contains("init1"), "{page}");
}

#[test]
fn a_failed_init_process_under_never_fails_the_pod_and_main_never_runs() {
    let d = TestDaemon::start(&[]);
    let trace = d.file("trace");
    let t = trace.display();
    d.apply(
        "bad.toml",
        &pod_with_inits(
            "bad",
            "Never",
            &[
                &format!("echo init0 >> {t}; exit 3"),
                &format!("echo init1 >> {t}"),
            ],
            &format!("echo main >> {t}; exec sleep 1000"),
        ),
    );
    d.wait_until("the pod failed", SOON, || {
        d.pod("bad")
            .is_some_and(|p| p.status.phase == PodPhase::Failed)
    });
    assert_eq!(status_column(&d, "bad").as_deref(), Some("Init:Error"));
    assert_eq!(d.read_file("trace").unwrap(), "init0\n");
}

#[test]
fn a_failing_init_process_is_retried_under_always_and_shows_crash_loop() {
    let d = TestDaemon::start(&[]);
    d.apply(
        "loop.toml",
        &pod_with_inits("loop", "Always", &["exit 1"], "exec sleep 1000"),
    );
    d.wait_until("Init:CrashLoopBackOff", SOON, || {
        status_column(&d, "loop").as_deref() == Some("Init:CrashLoopBackOff")
    });
    let pod = d.pod_now("loop");
    assert!(pod.status.init_processes[0].restart_count >= 1);
    assert!(pod.status.processes[0].pid.is_none(), "main waits");
}
