//! Sets larger than one controller pass (issue 9).

use crate::harness::*;

/// A ReplicaSet above the burst cap (500 pods per pass) used to stop at
/// 2,000 pods (four passes of the daemon's bounded settle) until an
/// unrelated write woke the controllers. Its pods ask for a node label no
/// node has, so they stay Pending and no process is started: what is
/// measured is the controller's convergence alone.
#[test]
fn a_replicaset_above_the_burst_cap_converges_without_another_write() {
    let unit = rs_unit("big", "big", 2500).replace(
        "[spec.template]\n",
        "[spec.template]\nnode_selector = { disk = \"none-has-this\" }\n",
    );
    let d = TestDaemon::start(&[("big.toml", &unit)]);
    d.wait_until("2,500 pods of ReplicaSet big", SOON * 4, || {
        d.api("/v1/replicasets/big")
            .is_some_and(|rs| rs["status"]["replicas"].as_u64() == Some(2500))
    });
    let pods = d.api("/v1/pods").expect("pods")["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(pods, 2500, "exactly the replicas, no more");
}
