//! Cluster mode end to end (product.md §6, issue 12): real etcd on free
//! loopback ports, several `drover daemon`s, each its own node with its
//! own socket, state dir and processes (tests/harness/cluster.rs).
//! Leases are 2 s and the eviction timeout 1 s, the shortest etcd allows,
//! so a lost node is replaced within seconds.

use crate::daemonsets::ds_unit;
use crate::harness::cluster::{TestCluster, FAILOVER};
use crate::harness::*;
use std::collections::BTreeMap;
use std::time::Duration;

const SSD: &[(&str, &str)] = &[("disk", "ssd")];
const NONE: &[(&str, &str)] = &[];

/// Node of each running pod of `selector`, as `via` sees them.
fn nodes_of(via: &TestDaemon, selector: &str) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for (_, node) in TestCluster::placement(via, selector) {
        *count.entry(node).or_default() += 1;
    }
    count
}

fn per_node(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

#[track_caller]
fn wait_placement(via: &TestDaemon, selector: &str, want: &[(&str, usize)], within: Duration) {
    let want = per_node(want);
    via.wait_until(&format!("{selector} placed {want:?}"), within, || {
        nodes_of(via, selector) == want
    });
}

#[test]
fn a_daemonset_runs_on_matching_nodes_and_follows_labels_cordons_and_new_nodes() {
    let mut c = TestCluster::start(&[("n1", SSD), ("n2", SSD), ("n3", NONE)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(
        n1,
        &[("n1", "Ready"), ("n2", "Ready"), ("n3", "Ready")],
        SOON,
    );
    n1.apply("agent.toml", &ds_unit("agent", "agent", "disk = \"ssd\""));
    wait_placement(n1, "app=agent", &[("n1", 1), ("n2", 1)], SOON);

    // Labelled through another node: n3 matches now and gets its pod.
    let n2 = c.node("n2");
    n2.drover_ok(&["label", "node", "n3", "disk=ssd"]);
    wait_placement(n2, "app=agent", &[("n1", 1), ("n2", 1), ("n3", 1)], SOON);

    // Cordoned: SchedulingDisabled, and the DaemonSet's pod stays.
    n2.drover_ok(&["cordon", "n1"]);
    TestCluster::wait_nodes(
        n2,
        &[
            ("n1", "Ready,SchedulingDisabled"),
            ("n2", "Ready"),
            ("n3", "Ready"),
        ],
        SOON,
    );
    let listing = n1.drover_ok(&["get", "nodes"]);
    let (headers, rows) = table(&listing);
    assert_eq!(headers, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(rows[0][..3], ["n1", "Ready,SchedulingDisabled", "<none>"]);

    // Relabelled out: n2 loses its pod; the others keep theirs.
    n1.drover_ok(&["label", "node", "n2", "disk-"]);
    wait_placement(n1, "app=agent", &[("n1", 1), ("n3", 1)], SOON);
    let ds = n1.object("daemonsets", "agent").unwrap();
    n1.wait_until("ds status 2/2/2", SOON, || {
        let ds = n1.object("daemonsets", "agent").unwrap();
        ds["status"]["desired_number_scheduled"] == 2 && ds["status"]["number_ready"] == 2
    });
    drop(ds);

    // A node enrolled later gets its pod.
    c.add_node("n4", SSD);
    let n4 = c.node("n4");
    wait_placement(
        n4,
        "app=agent",
        &[("n1", 1), ("n3", 1), ("n4", 1)],
        FAILOVER,
    );
    let page = n4.drover_ok(&["describe", "node", "n4"]);
    assert!(page.contains("Capacity:"), "{page}");
    assert!(page.contains("InternalIP:"), "{page}");
}

#[test]
fn a_crashed_nodes_replicaset_pods_are_recreated_on_survivors_and_its_daemon_pod_stays() {
    let mut c = TestCluster::start(&[("n1", NONE), ("n2", NONE), ("n3", NONE)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(
        n1,
        &[("n1", "Ready"), ("n2", "Ready"), ("n3", "Ready")],
        SOON,
    );
    n1.apply("web.toml", &rs_unit("web", "web", 6));
    n1.apply("agent.toml", &ds_unit("agent", "agent", ""));
    // Spread evenly: two of the set's pods per node.
    wait_placement(n1, "app=web", &[("n1", 2), ("n2", 2), ("n3", 2)], SOON);
    wait_placement(n1, "app=agent", &[("n1", 1), ("n2", 1), ("n3", 1)], SOON);
    let n3_pids: Vec<u32> = c
        .node("n3")
        .pods()
        .iter()
        .filter(|p| p.status.node_name.as_deref() == Some("n3"))
        .flat_map(|p| p.status.processes.iter().filter_map(|s| s.pid))
        .collect();
    assert_eq!(n3_pids.len(), 3);

    c.crash("n3");
    assert!(
        n3_pids.iter().all(|p| !alive(*p)),
        "the crash took n3's processes"
    );
    let n1 = c.node("n1");
    TestCluster::wait_nodes(
        n1,
        &[("n1", "Ready"), ("n2", "Ready"), ("n3", "NotReady")],
        FAILOVER,
    );
    wait_placement(n1, "app=web", &[("n1", 3), ("n2", 3)], FAILOVER);
    // The DaemonSet's pod of n3 is not moved: still bound to n3, and no
    // second copy anywhere.
    let mut agents: Vec<String> = n1
        .selected("app=agent")
        .into_iter()
        .map(|p| p.status.node_name.unwrap_or_default())
        .collect();
    agents.sort();
    assert_eq!(agents, ["n1", "n2", "n3"]);
}

#[test]
fn when_the_leader_dies_another_takes_over_and_the_last_survivor_leads_alone() {
    let mut c = TestCluster::start(&[("n1", NONE), ("n2", NONE), ("n3", NONE)]);
    let any = c.node("n1");
    let leader = any.wait_for("a leader", SOON, || TestCluster::leader(any));
    any.apply("web.toml", &rs_unit("web", "web", 3));
    wait_placement(any, "app=web", &[("n1", 1), ("n2", 1), ("n3", 1)], SOON);

    c.crash(&leader);
    let survivors: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .filter(|n| **n != leader)
        .map(|n| n.to_string())
        .collect();
    let via = c.node(&survivors[0]);
    let second = via.wait_for("another leader", FAILOVER, || {
        TestCluster::leader(via).filter(|l| *l != leader)
    });
    assert!(survivors.contains(&second));
    // The new leader's controllers work: the lost pod is replaced.
    via.wait_until("3 web pods on the survivors", FAILOVER, || {
        let placed = nodes_of(via, "app=web");
        placed.values().sum::<usize>() == 3 && !placed.contains_key(&leader)
    });

    // Down to one node: it leads alone, and gets everything.
    c.crash(&second);
    let last = survivors.iter().find(|n| **n != second).unwrap().clone();
    let via = c.node(&last);
    via.wait_for("the last node leads", FAILOVER, || {
        TestCluster::leader(via).filter(|l| *l == last)
    });
    wait_placement(via, "app=web", &[(last.as_str(), 3)], FAILOVER);
    via.drover_ok(&["scale", "rs", "web", "--replicas", "4"]);
    wait_placement(via, "app=web", &[(last.as_str(), 4)], SOON);
}

#[test]
fn a_frozen_node_is_replaced_then_kills_its_stale_copies_when_it_wakes() {
    let c = TestCluster::start(&[("n1", NONE), ("n2", NONE)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    n1.apply("web.toml", &rs_unit("web", "web", 2));
    wait_placement(n1, "app=web", &[("n1", 1), ("n2", 1)], SOON);
    let on_n2 = n1
        .selected("app=web")
        .into_iter()
        .find(|p| p.status.node_name.as_deref() == Some("n2"))
        .unwrap();
    let stale_pid = main_pid(&on_n2);

    // n2's daemon hangs; its process keeps running (a hung host).
    c.freeze("n2");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "NotReady")], FAILOVER);
    wait_placement(n1, "app=web", &[("n1", 2)], FAILOVER);
    assert!(alive(stale_pid), "frozen, n2 cannot stop its copy");

    // Woken, n2 fences before anything else: the stale copy dies.
    c.thaw("n2");
    let n2 = c.node("n2");
    n2.wait_until("the stale copy killed", FAILOVER, || !alive(stale_pid));
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], FAILOVER);
    assert_eq!(
        nodes_of(n1, "app=web"),
        per_node(&[("n1", 2)]),
        "no new copy on n2"
    );
    let events = n2.events_for(&format!("Pod/{}", on_n2.metadata.name));
    assert!(events.iter().any(|e| e["reason"] == "Fenced"), "{events:?}");
}

#[test]
fn etcd_stopped_for_ten_seconds_restarts_and_moves_nothing() {
    let mut c = TestCluster::start(&[("n1", NONE), ("n2", NONE)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    n1.apply("web.toml", &rs_unit("web", "web", 4));
    wait_placement(n1, "app=web", &[("n1", 2), ("n2", 2)], SOON);
    let before: BTreeMap<String, (u32, u32)> = n1
        .selected("app=web")
        .into_iter()
        .map(|p| (p.metadata.name.clone(), (main_pid(&p), p.restarts())))
        .collect();

    c.etcd.stop_member(0);
    // Longer than the lease (2 s) and the eviction timeout (1 s) together,
    // five times over. Nodes keep running and probing their pods.
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        before.values().all(|(pid, _)| alive(*pid)),
        "nothing stopped"
    );
    c.etcd.start_member(0);

    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], FAILOVER);
    // The same pods, same processes, no restarts, nothing evicted.
    n1.wait_until("the same four pods", FAILOVER, || {
        let now: BTreeMap<String, (u32, u32)> = n1
            .selected("app=web")
            .into_iter()
            .filter(all_running)
            .map(|p| (p.metadata.name.clone(), (main_pid(&p), p.restarts())))
            .collect();
        now == before
    });
}

#[test]
fn a_three_member_etcd_losing_one_member_keeps_the_cluster_working() {
    use crate::harness::etcd::Etcd;
    let mut c = TestCluster::on(
        Etcd::cluster(3),
        &[("n1", NONE), ("n2", NONE)],
        String::new(),
    );
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    n1.apply("web.toml", &rs_unit("web", "web", 2));
    wait_placement(n1, "app=web", &[("n1", 1), ("n2", 1)], SOON);
    let before: Vec<u32> = n1.selected("app=web").iter().map(main_pid).collect();

    // The member every client dials first goes away.
    c.etcd.stop_member(0);
    let n2 = c.node("n2");
    n2.drover_ok(&["scale", "rs", "web", "--replicas", "4"]);
    wait_placement(n2, "app=web", &[("n1", 2), ("n2", 2)], FAILOVER);
    TestCluster::wait_nodes(n2, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    assert!(before.iter().all(|p| alive(*p)), "nothing restarted");
}

#[test]
fn logs_and_events_of_a_pod_on_another_node_kept_across_its_daemons_restart() {
    let mut c = TestCluster::start(&[("n1", NONE), ("n2", SSD)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    n1.apply(
        "talk.toml",
        &format!(
            "kind = \"Pod\"\nname = \"talk\"\nlabels = {{ app = \"talk\" }}\n[spec]\n\
             node_selector = {{ disk = \"ssd\" }}\n[[spec.processes]]\nname = \"main\"\n\
             command = [\"sh\", \"-c\", \"echo hello from $DROVER_NODE_NAME; \
             while [ ! -e {go} ]; do sleep 0.05; done; echo and more; exec sleep 1000\"]\n",
            go = go.display()
        ),
    );
    let pod = n1.wait_running("talk");
    assert_eq!(pod.status.node_name.as_deref(), Some("n2"));
    n1.wait_until("logs through n1", SOON, || {
        n1.drover_ok(&["logs", "talk"]) == "hello from n2\n"
    });
    let page = n1.drover_ok(&["describe", "pod", "talk"]);
    assert!(page.contains("Started"), "the owning node's events: {page}");
    assert!(page.contains("Scheduled") || page.contains("n2"), "{page}");
    // A stream is relayed from n2 as it comes: what was written, then a
    // line written after the stream began.
    let (mut follow, lines) = n1.streaming(&["logs", "-f", "talk"]);
    let next = |what: &str| {
        lines
            .recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("logs -f through n1 printed no {what} line in {SOON:?}"))
    };
    assert_eq!(next("existing"), "hello from n2");
    std::fs::write(&go, "").unwrap();
    assert_eq!(next("new"), "and more");
    let _ = follow.kill();
    let _ = follow.wait();

    // n2's daemon dies and comes back: it re-adopts the pod from its first
    // snapshot of etcd, and keeps the pod's log folder (its store starts
    // empty, so folders must not be collected before that snapshot).
    let pid = pod.status.processes[0].pid.expect("running");
    c.node_mut("n2").restart();
    let n2 = c.node("n2");
    n2.wait_until("talk re-adopted by n2", SOON, || {
        n2.pod("talk")
            .is_some_and(|p| p.status.processes[0].pid == Some(pid))
    });
    let n1 = c.node("n1");
    n1.wait_until("the log through n1 after n2's restart", SOON, || {
        n1.drover_ok(&["logs", "talk"]) == "hello from n2\nand more\n"
    });

    // A relayed stream ends when its pod is deleted on the other node, as
    // a local one does: the CLI exits 0.
    let (mut follow, lines) = n1.streaming(&["logs", "-f", "talk"]);
    assert_eq!(
        lines.recv_timeout(SOON).expect("the log again"),
        "hello from n2"
    );
    n1.drover_ok(&["delete", "pod", "talk"]);
    let mut ended = None;
    n1.wait_until("logs -f to end with its deleted pod", SOON, || {
        ended = follow.try_wait().unwrap();
        ended.is_some()
    });
    assert!(ended.unwrap().success(), "{ended:?}");
}

#[test]
fn usage_of_a_pod_on_another_node_is_measured_there() {
    let c = TestCluster::start(&[("n1", NONE), ("n2", SSD)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    n1.apply(
        "p.toml",
        "kind = \"Pod\"\nname = \"far\"\n[spec]\nnode_selector = { disk = \"ssd\" }\n\
         [[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let far = n1.wait_running("far");
    assert_eq!(far.status.node_name.as_deref(), Some("n2"));

    // Through n1, which cannot measure it: n2 does, for the list and the
    // one pod alike.
    let (header, rows) = table(&n1.drover_ok(&["get", "pods", "-o", "wide"]));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let r = row(&rows, "far");
    assert_eq!(r[col("NODE")], "n2");
    assert!(r[col("MEM")].ends_with("i"), "measured on n2: {r:?}");
    assert!(r[col("CPU")].ends_with('s'), "measured on n2: {r:?}");
    let page = n1.drover_ok(&["describe", "pod", "far"]);
    let usage = page.lines().find(|l| l.trim_start().starts_with("Usage:"));
    assert!(
        usage.is_some_and(|l| l.contains("CPU ") && l.contains("memory ")),
        "{page}"
    );
}

#[test]
fn a_changed_pod_on_another_node_restarts_there_with_its_new_spec() {
    let c = TestCluster::start(&[("n1", NONE), ("n2", SSD)]);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    let unit = |seconds: &str| {
        format!(
            "kind = \"Pod\"\nname = \"p\"\n[spec]\nnode_selector = {{ disk = \"ssd\" }}\n\
             [[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"{seconds}\"]\n"
        )
    };
    n1.apply("p.toml", &unit("1000"));
    let first = n1.wait_running("p");
    assert_eq!(first.status.node_name.as_deref(), Some("n2"));

    // Changed through n1; n2 runs it and restarts it in place, once.
    assert_eq!(n1.apply("p.toml", &unit("2000")), "pod/p configured\n");
    let second = n1.wait_for("p restarted on n2 with its new command", SOON, || {
        n1.pod("p")
            .filter(|p| all_running(p) && main_pid(p) != main_pid(&first))
    });
    assert_eq!(second.metadata.uid, first.metadata.uid, "the same pod");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", main_pid(&second))).unwrap();
    assert_eq!(cmdline, b"sleep\x002000\x00");
    n1.wait_until("the first process gone", SOON, || !alive(main_pid(&first)));

    // A change of labels only restarts nothing.
    let labelled = unit("2000").replace(
        "name = \"p\"\n",
        "name = \"p\"\nlabels = { tier = \"x\" }\n",
    );
    assert_eq!(n1.apply("p.toml", &labelled), "pod/p configured\n");
    n1.wait_until("the label on n2's copy", SOON, || {
        c.node("n2")
            .pod("p")
            .is_some_and(|p| p.metadata.labels.get("tier").map(String::as_str) == Some("x"))
    });
    let third = n1.pod("p").unwrap();
    assert_eq!(
        main_pid(&third),
        main_pid(&second),
        "not restarted for a label"
    );
    assert_eq!(third.restarts(), second.restarts());
}

#[test]
fn a_cluster_with_tls_and_client_certificates() {
    use crate::harness::certs::Pki;
    use crate::harness::etcd::{Etcd, ServerTls};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "drover-test-ca");
    let server = pki.issue("etcd");
    let etcd = Etcd::cluster_tls(
        1,
        ServerTls {
            ca: pki.ca(),
            cert: server.cert,
            key: server.key,
        },
    );
    // Both nodes use one certificate here (one machine, one address); the
    // README makes one per host.
    let node = pki.issue("node");
    let tls = format!(
        "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
        pki.ca().display(),
        node.cert.display(),
        node.key.display()
    );
    let c = TestCluster::on(etcd, &[("n1", NONE), ("n2", SSD)], tls);
    let n1 = c.node("n1");
    TestCluster::wait_nodes(n1, &[("n1", "Ready"), ("n2", "Ready")], SOON);
    n1.apply(
        "talk.toml",
        "kind = \"Pod\"\nname = \"talk\"\nlabels = { app = \"talk\" }\n[spec]\n\
         node_selector = { disk = \"ssd\" }\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sh\", \"-c\", \"echo over TLS; exec sleep 1000\"]\n",
    );
    n1.wait_running("talk");
    n1.wait_until("logs through n1 over mutual TLS", SOON, || {
        n1.drover_ok(&["logs", "talk"]) == "over TLS\n"
    });

    // A daemon with a certificate from another CA is not let in.
    let rogue = pki.rogue().issue("intruder");
    let config = c.config("n3", NONE).replace(
        &node.cert.display().to_string(),
        &rogue.cert.display().to_string(),
    );
    let config = config.replace(
        &node.key.display().to_string(),
        &rogue.key.display().to_string(),
    );
    let n3 = TestDaemon::start_with(
        &[],
        Options {
            config: &config,
            node_name: "n3",
            ..Options::default()
        },
    );
    n3.wait_until("n3 refused by etcd", FAILOVER, || {
        n3.log().contains("not registered")
    });
    assert!(
        TestCluster::node_statuses(n1)
            .iter()
            .all(|(n, _)| n != "n3"),
        "a node without the cluster's certificate never registers"
    );
}
