//! ReplicaSets and ReplicationControllers (product.md §3).

use crate::harness::*;
use drover::api::{Kind, OwnerRef, Pod};
use std::collections::BTreeSet;

fn rs_uid(d: &TestDaemon, name: &str) -> String {
    d.object("replicasets", name).expect("rs exists")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn owned_by(p: &Pod, kind: Kind, name: &str, uid: &str) -> bool {
    p.metadata.owner_references
        == [OwnerRef {
            kind,
            name: name.into(),
            uid: uid.into(),
        }]
}

fn unmanaged_pod(name: &str, labels: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"{name}\"\nlabels = {{ {labels} }}\n[spec]\n\
         termination_grace_period = \"2s\"\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"1000\"]\n"
    )
}

#[test]
fn keeps_exactly_replicas_and_scales() {
    let d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 2))]);
    let pods = d.wait_pods("app=web", 2);
    let uid = rs_uid(&d, "web");
    for p in &pods {
        assert!(
            owned_by(p, Kind::ReplicaSet, "web", &uid),
            "{:?}",
            p.metadata
        );
        assert!(p.metadata.name.starts_with("web-") && p.metadata.name.len() == "web-".len() + 5);
    }
    d.wait_until("rs status 2/2", SOON, || {
        let rs = d.object("replicasets", "web").unwrap();
        rs["status"]["replicas"] == 2 && rs["status"]["ready_replicas"] == 2
    });

    assert_eq!(
        d.drover_ok(&["scale", "rs", "web", "--replicas", "4"]),
        "replicaset.apps/web scaled\n"
    );
    let four = d.wait_pods("app=web", 4);
    let kept: BTreeSet<String> = names(&pods).into_iter().collect();
    assert!(
        kept.is_subset(&names(&four).into_iter().collect()),
        "scaling up replaced pods"
    );

    d.drover_ok(&["scale", "rs/web", "--replicas", "1"]);
    let one = d.wait_pods("app=web", 1);
    let (header, rows) = table(&d.drover_ok(&["get", "rs"]));
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(rows[0][..4], ["web", "1", "1", "1"]);
    assert_eq!(
        d.object("replicasets", "web").unwrap()["spec"]["replicas"],
        1
    );
    // The scaled-down pods' processes are gone.
    let survivors = pod_processes(&one[0].metadata.uid);
    assert_eq!(survivors.len(), 1);
    for p in four
        .iter()
        .filter(|p| p.metadata.name != one[0].metadata.name)
    {
        d.wait_until("scaled-down pod's process gone", SOON, || {
            !alive(main_pid(p))
        });
    }
}

#[test]
fn killed_process_restarts_in_place_and_deleted_pod_is_replaced() {
    let d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 2))]);
    let pods = d.wait_pods("app=web", 2);
    let victim = pods[0].clone();
    send_signal(main_pid(&victim), libc::SIGKILL);
    let p = d.wait_for("the killed process restarted in place", SOON, || {
        d.pod(&victim.metadata.name)
            .filter(|p| all_running(p) && p.status.processes[0].restart_count == 1)
    });
    let last = p.status.processes[0].last_state.clone().unwrap();
    assert_eq!(
        (last.exit_code, last.signal, last.reason.as_str()),
        (Some(137), Some(9), "Error")
    );
    assert_eq!(p.metadata.uid, victim.metadata.uid);
    let now = d.wait_pods("app=web", 2);
    assert_eq!(names(&now), names(&pods), "no pod was replaced");

    // `delete pod` of a set's pod: a new pod takes its place.
    let gone = pods[1].metadata.name.clone();
    d.drover_ok(&["delete", "pod", &gone]);
    d.wait_gone(&gone);
    let after = d.wait_pods("app=web", 2);
    assert!(names(&after).contains(&pods[0].metadata.name));
    assert!(!names(&after).contains(&gone));
    assert!(!alive(main_pid(&pods[1])));
    let events = d.events_for("ReplicaSet/web");
    let created = events
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .count();
    assert_eq!(created, 3, "{events:#?}");
}

#[test]
fn adopts_a_matching_unmanaged_pod_and_creates_none() {
    let d = TestDaemon::start(&[]);
    d.apply("stray.toml", &unmanaged_pod("stray", "app = \"web\""));
    let stray = d.wait_running("stray");
    assert!(stray.metadata.owner_references.is_empty());
    d.apply("web.toml", &rs_unit("web", "web", 1));
    let uid = rs_uid(&d, "web");
    let p = d.wait_for("stray adopted", SOON, || {
        d.pod("stray")
            .filter(|p| owned_by(p, Kind::ReplicaSet, "web", &uid))
    });
    assert_eq!(
        main_pid(&p),
        main_pid(&stray),
        "adoption restarted the process"
    );
    assert_eq!(names(&d.pods()), ["stray"]);
    let events = d.events_for("ReplicaSet/web");
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Adopted" && e["message"] == "Adopted pod: stray"),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e["reason"] == "SuccessfulCreate"),
        "{events:#?}"
    );
    let page = d.drover_ok(&["describe", "pod", "stray"]);
    assert_eq!(fields(&page, "Controlled By"), ["ReplicaSet/web"], "{page}");
    let (header, rows) = table(&d.drover_ok(&["get", "pods", "-o", "wide"]));
    let owner = header.iter().position(|h| h == "OWNER").unwrap();
    assert_eq!(rows[0][owner], "ReplicaSet/web");
}

#[test]
fn deletes_the_surplus_when_more_pods_match() {
    let d = TestDaemon::start(&[]);
    for name in ["a", "b", "c"] {
        d.apply(
            &format!("{name}.toml"),
            &unmanaged_pod(name, "app = \"web\""),
        );
    }
    d.wait_pods("app=web", 3);
    d.apply("web.toml", &rs_unit("web", "web", 1));
    let uid = rs_uid(&d, "web");
    let left = d.wait_pods("app=web", 1);
    assert!(owned_by(&left[0], Kind::ReplicaSet, "web", &uid));
    let events = d.events_for("ReplicaSet/web");
    let deleted = events
        .iter()
        .filter(|e| e["reason"] == "SuccessfulDelete")
        .count();
    assert_eq!(deleted, 2, "{events:#?}");
    assert!(
        !events.iter().any(|e| e["reason"] == "SuccessfulCreate"),
        "{events:#?}"
    );
}

#[test]
fn relabelled_pod_is_released_and_replaced() {
    let d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 1))]);
    let pods = d.wait_pods("app=web", 1);
    let name = pods[0].metadata.name.clone();
    assert_eq!(
        d.drover_ok(&["label", "pod", &name, "app=other", "--overwrite"]),
        format!("pod/{name} labeled\n")
    );
    let released = d.wait_for("the pod released", SOON, || {
        d.pod(&name)
            .filter(|p| p.metadata.owner_references.is_empty())
    });
    assert_eq!(
        main_pid(&released),
        main_pid(&pods[0]),
        "released pod keeps running"
    );
    assert!(all_running(&released));
    assert_eq!(released.metadata.labels["app"], "other");
    let replacement = d.wait_pods("app=web", 1);
    assert_ne!(replacement[0].metadata.name, name);
    let uid = rs_uid(&d, "web");
    assert!(owned_by(&replacement[0], Kind::ReplicaSet, "web", &uid));
    assert_eq!(d.pods().len(), 2);
}

#[test]
fn pods_of_another_controller_are_never_touched() {
    let d = TestDaemon::start(&[]);
    let web2 = r#"kind = "ReplicaSet"
name = "web2"
[spec]
replicas = 2
[spec.selector]
match_labels = { app = "web", owner = "two" }
[spec.template]
labels = { app = "web", owner = "two" }
termination_grace_period = "2s"
[[spec.template.processes]]
name = "main"
command = ["sleep", "1000"]
"#;
    d.apply("web2.toml", web2);
    let theirs = d.wait_pods("owner=two", 2);
    // web1 selects app=web: web2's pods match, but they are not its own.
    d.apply("web1.toml", &rs_unit("web1", "web", 1));
    let uid1 = rs_uid(&d, "web1");
    let uid2 = rs_uid(&d, "web2");
    let all = d.wait_pods("app=web", 3);
    let mine: Vec<&Pod> = all
        .iter()
        .filter(|p| owned_by(p, Kind::ReplicaSet, "web1", &uid1))
        .collect();
    assert_eq!(mine.len(), 1, "{:#?}", all);
    let still: Vec<Pod> = d.selected("owner=two");
    assert_eq!(names(&still), names(&theirs));
    for (now, before) in still.iter().zip(&theirs) {
        assert!(owned_by(now, Kind::ReplicaSet, "web2", &uid2));
        assert_eq!(main_pid(now), main_pid(before));
    }
    // Scaling web1 to 0 deletes only its own pod.
    d.drover_ok(&["scale", "rs", "web1", "--replicas", "0"]);
    d.wait_until("web1's pod gone", SOON, || d.pods().len() == 2);
    assert_eq!(names(&d.selected("owner=two")), names(&theirs));
}

#[test]
fn template_change_does_not_restart_pods() {
    let d = TestDaemon::start(&[]);
    d.apply("web.toml", &rs_unit("web", "web", 2));
    let pods = d.wait_pods("app=web", 2);
    let changed =
        rs_unit("web", "web", 2).replace("[\"sleep\", \"1000\"]", "[\"sleep\", \"2000\"]");
    let out = d.apply("web.toml", &changed);
    assert_eq!(out, "replicaset.apps/web configured\n");
    let rs = d.wait_for("the controller saw generation 2", SOON, || {
        d.object("replicasets", "web")
            .filter(|rs| rs["status"]["observed_generation"] == 2)
    });
    assert_eq!(rs["spec"]["template"]["processes"][0]["command"][1], "2000");
    let now = d.wait_pods("app=web", 2);
    assert_eq!(names(&now), names(&pods));
    for (a, b) in now.iter().zip(&pods) {
        assert_eq!(main_pid(a), main_pid(b));
        assert_eq!(a.status.processes[0].restart_count, 0);
        assert_eq!(
            a.spec.processes[0].command[1], "1000",
            "running pods keep their spec"
        );
    }
    // New pods get the new template.
    d.drover_ok(&["scale", "rs", "web", "--replicas", "3"]);
    let three = d.wait_pods("app=web", 3);
    let new: Vec<&Pod> = three
        .iter()
        .filter(|p| !names(&pods).contains(&p.metadata.name))
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].spec.processes[0].command[1], "2000");
}

#[test]
fn selector_must_match_the_template() {
    let d = TestDaemon::start(&[]);
    let bad = rs_unit("web", "web", 1).replace(
        "[spec.template]\nlabels = { app = \"web\" }",
        "[spec.template]\nlabels = { app = \"api\" }",
    );
    let path = d.unit_file("web.toml", &bad);
    let err = d.drover_fails(&["apply", "-f", path.to_str().unwrap()], 1);
    assert!(
        err.contains("error: selector does not match template labels"),
        "{err}"
    );
    assert!(err.contains(&format!("{}:7:16", path.display())), "{err}");
    assert!(
        err.ends_with("1 error in 1 file; nothing was applied\n"),
        "{err}"
    );
    assert_eq!(d.drover(&["get", "rs"]).stdout, b"");
    assert!(d.object("replicasets", "web").is_none());
    assert!(d.pods().is_empty());
}

#[test]
fn replication_controller_with_a_plain_selector() {
    let d = TestDaemon::start(&[]);
    let rc = r#"kind = "ReplicationController"
name = "worker"
[spec]
replicas = 2
selector = { app = "worker" }
[spec.template]
labels = { app = "worker" }
termination_grace_period = "2s"
[[spec.template.processes]]
name = "main"
command = ["sleep", "1000"]
"#;
    assert_eq!(
        d.apply("worker.toml", rc),
        "replicationcontroller/worker created\n"
    );
    let pods = d.wait_pods("app=worker", 2);
    let uid = d.object("replicationcontrollers", "worker").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    for p in &pods {
        assert!(
            owned_by(p, Kind::ReplicationController, "worker", &uid),
            "{:?}",
            p.metadata
        );
    }
    let (_, rows) = table(&d.drover_ok(&["get", "rc"]));
    assert_eq!(rows[0][..4], ["worker", "2", "2", "2"]);
    d.drover_ok(&["scale", "rc/worker", "--replicas", "1"]);
    d.wait_pods("app=worker", 1);

    let bad = rc.replace(
        "selector = { app = \"worker\" }",
        "[spec.selector]\nmatch_expressions = [{ key = \"app\", operator = \"Exists\" }]",
    );
    let path = d.unit_file(
        "bad-rc.toml",
        &bad.replace("\"worker\"\n[spec]", "\"worker2\"\n[spec]"),
    );
    let err = d.drover_fails(&["apply", "-f", path.to_str().unwrap()], 1);
    assert!(
        err.contains("`match_expressions` is not supported in a ReplicationController selector"),
        "{err}"
    );
    assert!(err.contains(&format!("{}:6:1", path.display())), "{err}");
    assert!(d.object("replicationcontrollers", "worker2").is_none());
}

#[test]
fn delete_with_cascade_orphan_leaves_pods_running() {
    let d = TestDaemon::start(&[]);
    d.apply("web.toml", &rs_unit("web", "web", 2));
    let pods = d.wait_pods("app=web", 2);
    assert_eq!(
        d.drover_ok(&["delete", "rs", "web", "--cascade=orphan"]),
        "replicaset.apps \"web\" deleted\n"
    );
    assert!(d.object("replicasets", "web").is_none());
    let now = d.wait_pods("app=web", 2);
    assert_eq!(names(&now), names(&pods));
    for (a, b) in now.iter().zip(&pods) {
        assert!(a.metadata.owner_references.is_empty(), "{:?}", a.metadata);
        assert_eq!(main_pid(a), main_pid(b));
    }

    // Default cascade: a new set adopts them; deleting it deletes them.
    d.apply("web.toml", &rs_unit("web", "web", 2));
    let uid = rs_uid(&d, "web");
    d.wait_until("the orphans adopted by the new set", SOON, || {
        d.selected("app=web")
            .iter()
            .all(|p| owned_by(p, Kind::ReplicaSet, "web", &uid))
    });
    assert_eq!(names(&d.selected("app=web")), names(&pods));
    d.drover_ok(&["delete", "rs", "web"]);
    d.wait_until("every pod deleted", SOON, || d.pods().is_empty());
    for p in &pods {
        d.wait_until("pod process gone", SOON, || !alive(main_pid(p)));
    }
}

#[test]
fn restart_replaces_pods_one_at_a_time() {
    let d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 3))]);
    let before = d.wait_pods("app=web", 3);
    d.wait_until("rs ready 3", SOON, || {
        d.object("replicasets", "web").unwrap()["status"]["ready_replicas"] == 3
    });
    d.drover_ok(&["restart", "rs", "web"]);
    let old: BTreeSet<String> = names(&before).into_iter().collect();
    let mut min_ready = usize::MAX;
    let mut max_live = 0;
    d.wait_until("every pod replaced", SOON, || {
        let pods = d.pods();
        let live: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready = live.iter().filter(|p| p.is_ready()).count();
        min_ready = min_ready.min(ready);
        max_live = max_live.max(live.len());
        pods.len() == 3 && ready == 3 && pods.iter().all(|p| !old.contains(&p.metadata.name))
    });
    assert!(
        min_ready >= 2,
        "only {min_ready} ready pods during the restart"
    );
    assert!(max_live <= 3, "{max_live} live pods during the restart");
    let events = d.events_for("ReplicaSet/web");
    let deletes = events
        .iter()
        .filter(|e| e["reason"] == "SuccessfulDelete")
        .count();
    assert_eq!(deletes, 3, "{events:#?}");
    for p in &before {
        assert!(!alive(main_pid(p)));
    }
}

/// kubectl names a resource `replicaset.apps/web` (singular), as `drover
/// scale` and `drover delete` do.
#[test]
fn restart_message_names_the_set_like_kubectl() {
    let d = TestDaemon::start(&[("web.toml", &rs_unit("web", "web", 1))]);
    d.wait_pods("app=web", 1);
    let out = d.drover_ok(&["restart", "rs", "web"]);
    assert_eq!(out, "replicaset.apps/web restarting (one pod at a time)\n");
}
