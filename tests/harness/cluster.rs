//! A cluster on one machine: a real etcd on free loopback ports, and one
//! real `drover daemon` per node, each with its own socket, state dir,
//! units folder and node name (the [`TestDaemon`] harness), all pointed at
//! that etcd with the shortest leases etcd grants, so a lost node is
//! noticed in seconds.
//!
//! A node "crashes" with [`TestCluster::crash`]: its daemon and every
//! process its pods started are SIGKILLed by pid (found as for any test's
//! teardown), which is what a host losing power looks like to the others.
//! [`TestCluster::freeze`] / [`TestCluster::thaw`] SIGSTOP and SIGCONT the
//! daemon alone (its pods keep running, as on a hung host).

use super::etcd::Etcd;
use super::{Options, TestDaemon, SOON};
use serde_json::Value;
use std::time::Duration;

/// Leases in tests: the shortest etcd grants.
pub const LEASE_TTL: &str = "2s";
/// Eviction after NotReady, in tests.
pub const EVICTION_TIMEOUT: &str = "1s";

/// Long enough for a lease to lapse, the eviction timeout to pass and the
/// controllers to react, on a loaded 2-core machine.
pub const FAILOVER: Duration = Duration::from_secs(30);

pub struct TestCluster {
    pub etcd: Etcd,
    /// By name, in the order added.
    pub nodes: Vec<(String, TestDaemon)>,
    /// Extra `[cluster]` lines (TLS files) for every node's config.
    pub extra: String,
}

impl TestCluster {
    /// `names` nodes (with their labels) on a fresh 1-member etcd.
    pub fn start(names: &[(&str, &[(&str, &str)])]) -> TestCluster {
        TestCluster::on(Etcd::start(), names, String::new())
    }

    /// Nodes on `etcd`; `extra` goes into every `[cluster]` table.
    pub fn on(etcd: Etcd, names: &[(&str, &[(&str, &str)])], extra: String) -> TestCluster {
        let mut c = TestCluster {
            etcd,
            nodes: Vec::new(),
            extra,
        };
        for (name, labels) in names {
            c.add_node(name, labels);
        }
        c
    }

    /// The config file of node `name`.
    pub fn config(&self, name: &str, labels: &[(&str, &str)]) -> String {
        let endpoints: Vec<String> = self
            .etcd
            .endpoints()
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        let mut text = format!(
            "backoff_initial = \"200ms\"\nbackoff_max = \"1s\"\nnode_name = \"{name}\"\n\
             [node_labels]\n"
        );
        for (k, v) in labels {
            text.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        text.push_str(&format!(
            "[cluster]\nendpoints = [{}]\nlease_ttl = \"{LEASE_TTL}\"\n\
             pod_eviction_timeout = \"{EVICTION_TIMEOUT}\"\n{}",
            endpoints.join(", "),
            self.extra
        ));
        text
    }

    /// Starts one more node; returns it once its socket answers.
    pub fn add_node(&mut self, name: &str, labels: &[(&str, &str)]) -> &TestDaemon {
        let config = self.config(name, labels);
        let d = TestDaemon::start_with(
            &[],
            Options {
                config: &config,
                node_name: name,
                ..Options::default()
            },
        );
        self.nodes.push((name.to_string(), d));
        &self.nodes.last().unwrap().1
    }

    #[track_caller]
    pub fn node(&self, name: &str) -> &TestDaemon {
        self.nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    #[track_caller]
    pub fn node_mut(&mut self, name: &str) -> &mut TestDaemon {
        self.nodes
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Any node still running, to ask the cluster through.
    pub fn any(&self) -> &TestDaemon {
        &self.nodes[0].1
    }

    /// SIGKILL the node's daemon and every process of its pods.
    pub fn crash(&mut self, name: &str) {
        let left = self.node_mut(name).teardown();
        assert!(left.is_empty(), "{name}: could not kill {left:?}");
    }

    /// SIGSTOP the node's daemon (its pods keep running).
    pub fn freeze(&self, name: &str) {
        super::send_signal(self.node(name).daemon_pid(), libc::SIGSTOP);
    }

    pub fn thaw(&self, name: &str) {
        super::send_signal(self.node(name).daemon_pid(), libc::SIGCONT);
    }

    /// The cluster's nodes as `via` sees them: (name, STATUS column).
    pub fn node_statuses(via: &TestDaemon) -> Vec<(String, String)> {
        let list = via.api("/v1/nodes").expect("nodes");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let node: drover::api::Node = serde_json::from_value(n.clone()).unwrap();
                let mut status = if node.is_ready() {
                    "Ready".to_string()
                } else {
                    "NotReady".to_string()
                };
                if node.spec.unschedulable {
                    status.push_str(",SchedulingDisabled");
                }
                (node.metadata.name.clone(), status)
            })
            .collect()
    }

    /// Waits until `via` lists exactly `want` (name, status) nodes.
    #[track_caller]
    pub fn wait_nodes(via: &TestDaemon, want: &[(&str, &str)], within: Duration) {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        via.wait_until(&format!("nodes {want:?}"), within, || {
            TestCluster::node_statuses(via) == want
        });
    }

    /// The node of each live pod matching `selector`, as `via` sees them:
    /// (pod name, node name), running ones only.
    pub fn placement(via: &TestDaemon, selector: &str) -> Vec<(String, String)> {
        via.selected(selector)
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && super::all_running(p))
            .map(|p| {
                (
                    p.metadata.name.clone(),
                    p.status.node_name.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Who leads the controllers, from etcd's leader key (via the API's
    /// nodes list is not enough: ask the daemon's `/v1/cluster`).
    pub fn leader(via: &TestDaemon) -> Option<String> {
        let v: Value = via.api("/v1/cluster")?;
        v["leader"].as_str().map(str::to_string)
    }

    pub fn soon() -> Duration {
        SOON
    }
}
