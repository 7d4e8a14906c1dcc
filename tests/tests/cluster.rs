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
