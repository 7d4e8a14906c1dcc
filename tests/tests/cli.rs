//! The command line (product.md §4): tables, JSON, verbs, exit codes.

use crate::harness::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn has_keys(v: &Value, want: &[&str]) {
    let have = keys(v);
    for k in want {
        assert!(have.contains(*k), "missing `{k}` in {v:#}");
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn get_pods_tables() {
    let solo = pod_unit("solo", "Always", &["sleep", "1000"], "");
    let d = TestDaemon::start(&[
        ("web.toml", &rs_unit("web", "web", 2)),
        ("solo.toml", &solo),
    ]);
    let web = d.wait_pods("app=web", 2);
    let solo = d.wait_running("solo");

    let (header, rows) = table(&d.drover_ok(&["get", "pods"]));
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r[1..4], ["1/1", "Running", "0"], "{r:?}");
        assert!(r[4].ends_with('s'), "AGE {:?}", r[4]);
    }

    let (header, rows) = table(&d.drover_ok(&["get", "pods", "-o", "wide"]));
    assert_eq!(
        header[..8],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "PID", "OWNER"]
    );
    let w = row(&rows, &web[0].metadata.name);
    assert_eq!(
        w[5..8],
        [
            "test-node".to_string(),
            main_pid(&web[0]).to_string(),
            "ReplicaSet/web".to_string()
        ]
    );
    let s = row(&rows, "solo");
    assert_eq!(
        s[5..8],
        [
            "test-node".to_string(),
            main_pid(&solo).to_string(),
            "<none>".to_string()
        ]
    );

    // describe measures the running process too (its cgroup here).
    let page = d.drover_ok(&["describe", "pod", "solo"]);
    let usage = page.lines().find(|l| l.trim_start().starts_with("Usage:"));
    assert!(
        usage.is_some_and(|l| l.contains("CPU ") && l.contains("memory ")),
        "{page}"
    );

    let (header, rows) = table(&d.drover_ok(&["get", "pods", "-L", "app"]));
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "APP"]
    );
    assert_eq!(row(&rows, "solo")[5], "solo");
    assert_eq!(row(&rows, &web[1].metadata.name)[5], "web");

    let (_, rows) = table(&d.drover_ok(&["get", "pods", "-l", "app=web"]));
    let listed: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(listed, names(&web).into_iter().collect());

    let out = d.drover(&["get", "pods", "-l", "app=nothing"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No resources found.\n"
    );

    let (header, rows) = table(&d.drover_ok(&["get", "pods", "solo"]));
    assert_eq!(header[0], "NAME");
    assert_eq!(rows.len(), 1);
    let err = d.drover_fails(&["get", "pods", "nope"], 1);
    assert_eq!(err, "error: pods \"nope\" not found\n");
}

#[test]
fn json_output_has_the_documented_shape() {
    let once = pod_unit(
        "once",
        "Always",
        &[
            "sh",
            "-c",
            "if [ -e @DIR@/files/ran ]; then exec sleep 1000; fi; touch @DIR@/files/ran; exit 4",
        ],
        "",
    );
    let d = TestDaemon::start(&[
        ("web.toml", &rs_unit("web", "web", 1)),
        ("once.toml", &once),
    ]);
    let web = d.wait_pods("app=web", 1);
    d.wait_until("once restarted", SOON, || {
        d.pod("once")
            .is_some_and(|p| all_running(&p) && p.status.processes[0].restart_count == 1)
    });

    let list = json(&d.drover_ok(&["get", "pods", "-o", "json"]));
    assert_eq!(
        keys(&list),
        BTreeSet::from(["kind".to_string(), "items".to_string()])
    );
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["kind"], "Pod");
        has_keys(item, &["kind", "metadata", "spec", "status"]);
        has_keys(
            &item["metadata"],
            &[
                "name",
                "uid",
                "labels",
                "owner_references",
                "creation_timestamp",
            ],
        );
        let created = item["metadata"]["creation_timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created).is_ok(),
            "{created}"
        );
        has_keys(&item["status"], &["phase", "node_name", "processes"]);
        assert_eq!(item["status"]["phase"], "Running");
        assert_eq!(item["status"]["node_name"], "test-node");
        let p = &item["status"]["processes"][0];
        has_keys(p, &["name", "pid", "ready", "restart_count", "state"]);
        assert_eq!(p["name"], "main");
        assert_eq!(p["ready"], true);
        has_keys(&p["state"]["running"], &["started_at"]);
    }
    let web_json = items
        .iter()
        .find(|i| i["metadata"]["name"] == web[0].metadata.name.as_str())
        .unwrap();
    let rs = d.object("replicasets", "web").unwrap();
    assert_eq!(
        web_json["metadata"]["owner_references"],
        serde_json::json!([{ "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"] }])
    );
    assert_eq!(
        web_json["metadata"]["labels"],
        serde_json::json!({ "app": "web" })
    );
    assert_eq!(web_json["status"]["processes"][0]["pid"], main_pid(&web[0]));

    // One object by name: the object itself, not a list.
    let once = json(&d.drover_ok(&["get", "pods", "once", "-o", "json"]));
    assert_eq!(once["kind"], "Pod");
    assert!(once.get("items").is_none());
    assert_eq!(once["metadata"]["name"], "once");
    assert_eq!(once["metadata"]["owner_references"], serde_json::json!([]));
    let p = &once["status"]["processes"][0];
    assert_eq!(p["restart_count"], 1);
    has_keys(
        &p["last_state"],
        &["exit_code", "reason", "started_at", "finished_at"],
    );
    assert_eq!(p["last_state"]["exit_code"], 4);
    assert_eq!(p["last_state"]["reason"], "Error");
    assert_eq!(
        json(&d.drover_ok(&["get", "pod/once", "-o", "json"]))["metadata"]["uid"],
        once["metadata"]["uid"]
    );

    let rs = json(&d.drover_ok(&["get", "rs", "web", "-o", "json"]));
    assert_eq!(rs["kind"], "ReplicaSet");
    assert_eq!(
        (
            rs["status"]["replicas"].clone(),
            rs["status"]["ready_replicas"].clone()
        ),
        (1.into(), 1.into())
    );

    let node = json(&d.drover_ok(&["get", "nodes", "test-node", "-o", "json"]));
    assert_eq!(node["kind"], "Node");
    assert_eq!(node["spec"]["unschedulable"], false);
    let cond = &node["status"]["conditions"][0];
    assert_eq!(
        (cond["type"].clone(), cond["status"].clone()),
        ("Ready".into(), "True".into())
    );
}

#[test]
fn nodes_cordon_and_uncordon() {
    let d = TestDaemon::start(&[]);
    let (header, rows) = table(&d.drover_ok(&["get", "nodes"]));
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..3], ["test-node", "Ready", "<none>"]);
    assert_eq!(rows[0][4], env!("CARGO_PKG_VERSION"));

    assert_eq!(
        d.drover_ok(&["cordon", "test-node"]),
        "node/test-node cordoned\n"
    );
    let (_, rows) = table(&d.drover_ok(&["get", "nodes"]));
    assert_eq!(rows[0][1], "Ready,SchedulingDisabled");
    d.apply(
        "late.toml",
        &pod_unit("late", "Always", &["sleep", "1000"], ""),
    );
    let p = d.wait_for("late Unschedulable", SOON, || {
        d.pod("late")
            .filter(|p| p.status.reason.as_deref() == Some("Unschedulable"))
    });
    assert_eq!(p.status.phase, drover::api::PodPhase::Pending);
    assert_eq!(p.status.node_name, None);
    assert!(p.status.processes.iter().all(|s| s.pid.is_none()));
    let events = d.events_for("Pod/late");
    assert!(
        events.iter().any(|e| e["reason"] == "FailedScheduling"),
        "{events:#?}"
    );

    assert_eq!(
        d.drover_ok(&["uncordon", "node/test-node"]),
        "node/test-node uncordoned\n"
    );
    let p = d.wait_running("late");
    assert_eq!(p.status.node_name.as_deref(), Some("test-node"));
    let (_, rows) = table(&d.drover_ok(&["get", "nodes"]));
    assert_eq!(rows[0][1], "Ready");
    let err = d.drover_fails(&["cordon", "no-such-node"], 1);
    assert_eq!(err, "error: nodes \"no-such-node\" not found\n");
}

#[test]
fn label_refuses_to_overwrite_and_removes() {
    let d = TestDaemon::start(&[(
        "lbl.toml",
        &pod_unit("lbl", "Always", &["sleep", "1000"], ""),
    )]);
    d.wait_running("lbl");
    let err = d.drover_fails(&["label", "pod", "lbl", "app=changed"], 1);
    assert_eq!(
        err,
        "error: 'app' already has a value (lbl), and --overwrite is false\n"
    );
    assert_eq!(d.pod_now("lbl").metadata.labels["app"], "lbl");

    assert_eq!(
        d.drover_ok(&["label", "pod", "lbl", "env=prod", "tier=db"]),
        "pod/lbl labeled\n"
    );
    let labels = d.pod_now("lbl").metadata.labels;
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            ("app".into(), "lbl".into()),
            ("env".into(), "prod".into()),
            ("tier".into(), "db".into())
        ]
    );
    d.drover_ok(&["label", "pod/lbl", "env-"]);
    d.drover_ok(&["label", "pod", "lbl", "app=changed", "--overwrite"]);
    let labels = d.pod_now("lbl").metadata.labels;
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            ("app".into(), "changed".into()),
            ("tier".into(), "db".into())
        ]
    );
    let (_, rows) = table(&d.drover_ok(&["get", "pods", "-l", "tier=db"]));
    assert_eq!(rows.len(), 1);
    // A malformed label is a usage error.
    d.drover_fails(&["label", "pod", "lbl", "bad"], 2);
}

#[test]
fn describe_pod_shows_processes_and_events() {
    let d = TestDaemon::start(&[(
        "desc.toml",
        &pod_unit("desc", "Always", &["sleep", "1000"], ""),
    )]);
    let first = d.wait_running("desc");
    d.drover_ok(&["restart", "pod", "desc"]);
    let p = d.wait_for("desc restarted", SOON, || {
        d.pod("desc")
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let page = d.drover_ok(&["describe", "pod", "desc"]);
    assert_eq!(fields(&page, "Name"), ["desc"], "{page}");
    assert_eq!(fields(&page, "Node"), ["test-node"], "{page}");
    assert_eq!(fields(&page, "Status"), ["Running"], "{page}");
    assert_eq!(fields(&page, "Labels"), ["app=desc"], "{page}");
    assert_eq!(fields(&page, "PID"), [main_pid(&p).to_string()], "{page}");
    assert_eq!(fields(&page, "State"), ["Running"], "{page}");
    assert_eq!(fields(&page, "Last State"), ["Terminated"], "{page}");
    assert_eq!(fields(&page, "Reason"), ["Restarted"], "{page}");
    assert_eq!(fields(&page, "Exit Code"), ["143"], "{page}");
    assert_eq!(fields(&page, "Restart Count"), ["1"], "{page}");
    assert_eq!(fields(&page, "Ready"), ["True"], "{page}");
    let events = page
        .split("\nEvents:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no events section: {page}"));
    let started = events
        .lines()
        .filter(|l| l.contains("Started process main"))
        .count();
    assert!(started >= 1, "{page}");
    assert!(events.contains("Scheduled"), "{page}");
    assert_ne!(main_pid(&first), main_pid(&p));
    let err = d.drover_fails(&["describe", "pod", "nope"], 1);
    assert_eq!(err, "error: pods \"nope\" not found\n");
}

fn counting_pod(d: &TestDaemon) -> String {
    let f = d.file("runs").display().to_string();
    pod_unit(
        "talk",
        "Always",
        &[
            "sh",
            "-c",
            &format!("n=$(cat {f} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {f}; echo one; echo two; echo run $n; exec sleep 1000"),
        ],
        "",
    )
}

#[test]
fn logs_tail_previous_and_process() {
    let d = TestDaemon::start(&[]);
    d.apply("talk.toml", &counting_pod(&d));
    d.wait_running("talk");
    let logs = d.wait_for("three lines of log", SOON, || {
        let out = d.drover_ok(&["logs", "talk"]);
        (out.lines().count() == 3).then_some(out)
    });
    assert_eq!(logs, "one\ntwo\nrun 1\n");
    assert_eq!(d.drover_ok(&["logs", "talk", "--tail", "1"]), "run 1\n");
    assert_eq!(
        d.drover_ok(&["logs", "pod/talk", "--tail", "2"]),
        "two\nrun 1\n"
    );
    let err = d.drover_fails(&["logs", "talk", "--previous"], 1);
    assert!(
        err.starts_with("error: previous terminated process \"main\" in pod \"talk\" not found"),
        "{err}"
    );

    d.drover_ok(&["restart", "pod", "talk"]);
    d.wait_until("the second run logged", SOON, || {
        d.drover_ok(&["logs", "talk"]) == "one\ntwo\nrun 2\n"
    });
    assert_eq!(
        d.drover_ok(&["logs", "talk", "--previous"]),
        "one\ntwo\nrun 1\n"
    );
    assert_eq!(
        d.drover_ok(&["logs", "talk", "-p", "--tail", "1"]),
        "run 1\n"
    );

    let two = r#"kind = "Pod"
name = "duo"
[spec]
[[spec.processes]]
name = "one"
command = ["sh", "-c", "echo from one; exec sleep 1000"]
[[spec.processes]]
name = "two"
command = ["sh", "-c", "echo from two; exec sleep 1000"]
"#;
    d.apply("duo.toml", two);
    d.wait_running("duo");
    d.wait_until("duo logged", SOON, || {
        d.drover_ok(&["logs", "duo", "-c", "one"]) == "from one\n"
            && d.drover_ok(&["logs", "duo", "-c", "two"]) == "from two\n"
    });
    let err = d.drover_fails(&["logs", "duo"], 1);
    assert_eq!(
        err,
        "error: a process name must be specified for pod duo with -c, choose one of: [one two]\n"
    );
    let err = d.drover_fails(&["logs", "duo", "-c", "three"], 1);
    assert!(
        err.contains("process three is not valid for pod duo"),
        "{err}"
    );
}

#[test]
fn logs_follow_streams_new_lines() {
    let d = TestDaemon::start(&[]);
    let go = d.file("go").display().to_string();
    let cmd = format!(
        "echo first; while :; do if [ -e {go} ]; then rm {go}; echo second; fi; sleep 0.02; done"
    );
    d.apply(
        "chatty.toml",
        &pod_unit("chatty", "Always", &["sh", "-c", &cmd], ""),
    );
    d.wait_running("chatty");
    d.wait_until("first line logged", SOON, || {
        d.drover_ok(&["logs", "chatty"]) == "first\n"
    });

    let (mut child, rx) = d.streaming(&["logs", "-f", "chatty"]);
    let next = |what: &str| {
        rx.recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("logs -f printed no {what} line in {SOON:?}\n{}", d.log()))
    };
    assert_eq!(next("existing"), "first");
    std::fs::write(&go, "").unwrap();
    assert_eq!(next("new"), "second");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn events_for_an_object() {
    let d = TestDaemon::start(&[("ev.toml", &pod_unit("ev", "Always", &["sleep", "1000"], ""))]);
    d.wait_running("ev");
    let (header, rows) = table(&d.drover_ok(&["events", "--for", "pod/ev"]));
    assert_eq!(header, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    let reasons: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(reasons, ["Scheduled", "Started"], "{rows:?}");
    assert_eq!(rows[1][1], "Normal");
    assert_eq!(rows[1][3], "pod/ev");
    assert_eq!(rows[1][4], "Started process main");
    let err = d.drover_fails(&["events", "--for", "ev"], 2);
    assert!(err.contains("--for takes KIND/NAME"), "{err}");
    let all = d.drover_ok(&["events"]);
    assert!(all.contains("Started process main"), "{all}");
}

#[test]
fn kill_sends_a_signal() {
    let d = TestDaemon::start(&[]);
    let hup = d.file("hup").display().to_string();
    let ready = d.file("ready").display().to_string();
    let cmd =
        format!("trap 'echo got-hup > {hup}' HUP; touch {ready}; while :; do sleep 0.02; done");
    d.apply(
        "hup.toml",
        &pod_unit("hup", "Always", &["sh", "-c", &cmd], ""),
    );
    let p = d.wait_running("hup");
    d.wait_until("the HUP trap installed", SOON, || {
        d.read_file("ready").is_some()
    });
    let out = d.drover_ok(&["kill", "pod", "hup", "--signal", "HUP"]);
    assert_eq!(out, "sent SIGHUP to 1 process\n");
    d.wait_until("the process saw SIGHUP", SOON, || {
        d.read_file("hup").as_deref() == Some("got-hup\n")
    });
    let now = d.pod_now("hup");
    assert_eq!(
        main_pid(&now),
        main_pid(&p),
        "HUP must not restart the process"
    );
    assert_eq!(now.status.processes[0].restart_count, 0);
    d.drover_fails(&["kill", "pod", "hup", "--signal", "NOPE"], 2);
}

#[test]
fn wait_for_ready_and_timeout() {
    let d = TestDaemon::start(&[]);
    d.apply("ok.toml", &pod_unit("ok", "Always", &["sleep", "1000"], ""));
    let out = d.drover_ok(&[
        "wait",
        "pod/ok",
        "--for=condition=ready",
        "--timeout",
        "10s",
    ]);
    assert_eq!(out, "pod/ok condition met\n");
    assert!(d.pod_now("ok").is_ready());

    d.apply(
        "never.toml",
        // Never starts at all, so never ready, not even for a moment.
        &pod_unit("never", "Never", &["/nonexistent/drover-test"], ""),
    );
    let t0 = Instant::now();
    let err = d.drover_fails(
        &[
            "wait",
            "pod/never",
            "--for=condition=ready",
            "--timeout",
            "1s",
        ],
        1,
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "returned after {:?}",
        t0.elapsed()
    );
    assert_eq!(
        err,
        "error: timed out waiting for the condition on pods/never\n"
    );
}

#[test]
fn daemon_reload_follows_the_units_folder() {
    let d = TestDaemon::start(&[]);
    assert!(d.pods().is_empty());
    d.write_unit("b.toml", &pod_unit("b", "Always", &["sleep", "1000"], ""));
    assert_eq!(d.drover_ok(&["daemon-reload"]), "pod/b created\n");
    let first = d.wait_running("b");
    assert_eq!(d.drover_ok(&["daemon-reload"]), "pod/b unchanged\n");

    d.write_unit("b.toml", &pod_unit("b", "Always", &["sleep", "2000"], ""));
    assert_eq!(d.drover_ok(&["daemon-reload"]), "pod/b configured\n");
    let second = d.wait_for("b restarted with its new command", SOON, || {
        d.pod("b")
            .filter(|p| all_running(p) && main_pid(p) != main_pid(&first))
    });
    assert_eq!(second.spec.processes[0].command, ["sleep", "2000"]);
    assert!(!alive(main_pid(&first)));

    d.remove_unit("b.toml");
    assert_eq!(d.drover_ok(&["daemon-reload"]), "pod/b deleted\n");
    d.wait_gone("b");
    d.wait_until("b's process gone", SOON, || !alive(main_pid(&second)));

    // A set's file: removing it deletes the set and, by cascade, its pods.
    d.write_unit("web.toml", &rs_unit("web", "web", 2));
    assert_eq!(
        d.drover_ok(&["daemon-reload"]),
        "replicaset.apps/web created\n"
    );
    let web = d.wait_pods("app=web", 2);
    d.remove_unit("web.toml");
    assert_eq!(
        d.drover_ok(&["daemon-reload"]),
        "replicaset.apps/web deleted\n"
    );
    assert!(d.object("replicasets", "web").is_none());
    d.wait_until("web's pods deleted", SOON, || d.pods().is_empty());
    for p in &web {
        d.wait_until("web's processes gone", SOON, || !alive(main_pid(p)));
    }

    // A bad file: nothing changes, the error names the file.
    d.write_unit("c.toml", &pod_unit("c", "Always", &["sleep", "1000"], ""));
    d.write_unit(
        "d.toml",
        "kind = \"Pod\"\nname = \"d\"\n[spec]\nrestart_polcy = \"Never\"\n",
    );
    let err = d.drover_fails(&["daemon-reload"], 1);
    assert!(err.contains("unknown field `restart_polcy`"), "{err}");
    assert!(err.contains("d.toml:4:1"), "{err}");
    assert!(d.pods().is_empty());
}

#[test]
fn scale_persists_across_restarts_until_the_file_changes() {
    let mut d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 1))]);
    d.wait_pods("app=web", 1);
    d.drover_ok(&["scale", "rs", "web", "--replicas", "3"]);
    let three = d.wait_pods("app=web", 3);
    d.wait_persisted();
    d.stop();
    d.restart();
    assert_eq!(
        d.object("replicasets", "web").unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(names(&d.wait_pods("app=web", 3)), names(&three));
    d.kill9();
    d.restart();
    assert_eq!(
        d.object("replicasets", "web").unwrap()["spec"]["replicas"],
        3
    );
    d.wait_pods("app=web", 3);
    // An unchanged file keeps the scale on reload too.
    assert_eq!(
        d.drover_ok(&["daemon-reload"]),
        "replicaset.apps/web unchanged\n"
    );
    assert_eq!(
        d.object("replicasets", "web").unwrap()["spec"]["replicas"],
        3
    );

    // The file changes (only a comment): it wins again.
    let text = format!("# edited\n{}", rs_unit("web", "web", 1));
    d.write_unit("web.toml", &text);
    assert_eq!(
        d.drover_ok(&["daemon-reload"]),
        "replicaset.apps/web configured\n"
    );
    assert_eq!(
        d.object("replicasets", "web").unwrap()["spec"]["replicas"],
        1
    );
    d.wait_pods("app=web", 1);
}

#[test]
fn unreachable_daemon_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nobody-home.sock");
    for args in [
        &["get", "pods"][..],
        &["scale", "rs", "web", "--replicas", "2"],
        &["logs", "x"],
    ] {
        let out = std::process::Command::new(DROVER)
            .arg("--socket")
            .arg(&sock)
            .args(args)
            .env_remove("DROVER_SOCKET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", show(&out));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "error: cannot reach the drover daemon at {}",
                sock.display()
            )),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    // DROVER_SOCKET works as --socket.
    let out = std::process::Command::new(DROVER)
        .args(["get", "pods"])
        .env("DROVER_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&sock.display().to_string()));
}

#[test]
fn help_and_usage_errors() {
    let run = |args: &[&str]| {
        std::process::Command::new(DROVER)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--help"]);
    assert!(out.status.success(), "{}", show(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "Usage: drover",
        "apply",
        "get",
        "daemon-reload",
        "Exit status:",
        "DROVER_SOCKET",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    for verb in ["get", "logs", "scale", "wait", "daemon"] {
        let out = run(&[verb, "--help"]);
        assert!(out.status.success(), "{verb} --help: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Usage: drover {verb}")));
    }
    let out = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("drover {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["get", "pods", "-o", "table"]).status.code(), Some(2));
    assert_eq!(
        run(&["--socket", "/nonexistent/s", "get", "widgets"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn validate_the_repository_units() {
    let units = concat!(env!("CARGO_MANIFEST_DIR"), "/units");
    let out = std::process::Command::new(DROVER)
        .args(["validate", units])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let count = std::fs::read_dir(units)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(count >= 3);
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" ok")).count(),
        count,
        "{text}"
    );
}
