//! DaemonSets on a single host (product.md §3): one pod on the one node
//! while it matches the node selector, cordoned or not; gone when it stops
//! matching; unmanaged look-alikes on its node terminated; `get ds` and
//! `describe ds` as kubectl prints them. The cluster side is in
//! cluster.rs.

use crate::harness::*;

/// A DaemonSet of `sleep` pods for nodes labelled `disk=ssd`.
pub fn ds_unit(name: &str, app: &str, node_selector: &str) -> String {
    format!(
        "kind = \"DaemonSet\"\nname = \"{name}\"\nlabels = {{ app = \"{app}\" }}\n\
         [spec.selector]\nmatch_labels = {{ app = \"{app}\" }}\n\
         [spec.template]\nlabels = {{ app = \"{app}\" }}\ntermination_grace_period = \"2s\"\n\
         node_selector = {{ {node_selector} }}\n\
         [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"1000\"]\n"
    )
}

fn ssd_node() -> Options<'static> {
    Options {
        config:
            "backoff_initial = \"200ms\"\nbackoff_max = \"1s\"\n[node_labels]\ndisk = \"ssd\"\n",
        ..Options::default()
    }
}

#[test]
fn a_daemonset_runs_one_pod_on_the_matching_node_and_follows_its_labels() {
    let d = TestDaemon::start_with(
        &[("agent.toml", &ds_unit("agent", "agent", "disk = \"ssd\""))],
        ssd_node(),
    );
    let pods = d.wait_pods("app=agent", 1);
    assert_eq!(pods[0].status.node_name.as_deref(), Some("test-node"));
    assert!(pods[0].metadata.name.starts_with("agent-"));
    let first = pods[0].metadata.name.clone();

    // Cordoned: a DaemonSet's pod stays (it bypasses the scheduler).
    d.drover_ok(&["cordon", "test-node"]);
    d.wait_until("status 1/1/1", SOON, || {
        let ds = d.object("daemonsets", "agent").unwrap();
        ds["status"]["desired_number_scheduled"] == 1
            && ds["status"]["current_number_scheduled"] == 1
            && ds["status"]["number_ready"] == 1
    });
    assert_eq!(
        names(&d.wait_pods("app=agent", 1)),
        std::slice::from_ref(&first)
    );
    let listing = d.drover_ok(&["get", "ds"]);
    let (headers, rows) = table(&listing);
    assert_eq!(
        headers,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "NODE SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(rows[0][..5], ["agent", "1", "1", "1", "disk=ssd"]);
    let page = d.drover_ok(&["describe", "ds", "agent"]);
    assert!(
        page.contains("Desired Number of Nodes Scheduled:"),
        "{page}"
    );
    assert!(page.contains("Node-Selector:"), "{page}");

    // Relabelled: no longer matches, the pod goes.
    d.drover_ok(&["label", "node", "test-node", "disk-"]);
    d.wait_until("the daemon pod gone", SOON, || {
        d.selected("app=agent").is_empty()
    });
    // Matches again: a new pod.
    d.drover_ok(&["label", "node", "test-node", "disk=ssd"]);
    let again = d.wait_pods("app=agent", 1);
    assert_ne!(again[0].metadata.name, first);
}

#[test]
fn an_unmanaged_look_alike_on_its_node_is_terminated_and_other_owners_are_left_alone() {
    let d = TestDaemon::start_with(
        &[
            ("rs.toml", &rs_unit("web", "agent-like", 1)),
            (
                "solo.toml",
                "kind = \"Pod\"\nname = \"stray\"\nlabels = { app = \"agent\", extra = \"x\" }\n\
                 [spec]\ntermination_grace_period = \"1s\"\n[[spec.processes]]\nname = \"main\"\n\
                 command = [\"sh\", \"-c\", \"echo other; exec sleep 1000\"]\n",
            ),
        ],
        ssd_node(),
    );
    d.wait_running("stray");
    d.wait_pods("app=agent-like", 1);
    d.apply("agent.toml", &ds_unit("agent", "agent", ""));
    d.wait_gone("stray");
    let pods = d.wait_pods("app=agent", 1);
    assert!(pods[0].metadata.name.starts_with("agent-"));
    // The ReplicaSet's pod is another controller's: untouched.
    d.wait_pods("app=agent-like", 1);
    let events = d.events_for("DaemonSet/agent");
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("stray")),
        "{events:?}"
    );
}
