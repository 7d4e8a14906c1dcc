//! The scheduler: which node a pod goes to.
//!
//! A node fits when it is Ready, not cordoned (`spec.unschedulable`) and its
//! labels contain all of the pod's `node_selector`. Among fitting nodes the
//! one with the fewest non-terminal pods bound to it wins, ties by name, so
//! replicas spread across nodes. When none fits, the error is the message
//! Kubernetes' scheduler would give (`0/2 nodes are available: 1 node(s)
//! didn't match node selector, 1 node(s) were unschedulable`).
//!
//! Pure: the caller passes every node and pod it knows, borrowed (the
//! daemon lends them from its store rather than copying them per pass);
//! nothing is bound here. Binding (setting `status.node_name`) is the
//! executor's write.

use crate::api::{Node, Pod, PodPhase, PodSpec};
use std::collections::BTreeMap;

/// Why a node cannot take a pod, in the order the checks run (Kubernetes'
/// filter order: NodeUnschedulable, then taints such as not-ready, then
/// NodeAffinity/selector). A node is counted under its first failure only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Unfit {
    Cordoned,
    NotReady,
    NodeSelector,
}

impl Unfit {
    fn describe(self) -> &'static str {
        match self {
            Unfit::Cordoned => "node(s) were unschedulable",
            Unfit::NotReady => "node(s) were not ready",
            Unfit::NodeSelector => "node(s) didn't match node selector",
        }
    }
}

fn check(spec: &PodSpec, node: &Node) -> Result<(), Unfit> {
    if node.spec.unschedulable {
        return Err(Unfit::Cordoned);
    }
    if !node.is_ready() {
        return Err(Unfit::NotReady);
    }
    let labels = &node.metadata.labels;
    if !spec
        .node_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
    {
        return Err(Unfit::NodeSelector);
    }
    Ok(())
}

/// How many non-terminal pods are bound to each node. The reconcile keeps
/// one across a pass and bumps it for every pod it places, so a burst of
/// creates spreads instead of piling onto the emptiest node.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeLoad(BTreeMap<String, usize>);

impl NodeLoad {
    pub(crate) fn from_pods(pods: &[&Pod]) -> NodeLoad {
        let mut load = NodeLoad::default();
        for pod in pods.iter().filter(|p| !p.is_terminal()) {
            if let Some(node) = bound_node(pod) {
                load.add(node);
            }
        }
        load
    }

    pub(crate) fn add(&mut self, node: &str) {
        *self.0.entry(node.to_string()).or_default() += 1;
    }

    fn get(&self, node: &str) -> usize {
        self.0.get(node).copied().unwrap_or(0)
    }
}

/// `status.node_name`, treating an empty string as unbound.
pub(crate) fn bound_node(pod: &Pod) -> Option<&str> {
    pod.status.node_name.as_deref().filter(|n| !n.is_empty())
}

/// The node for a pod with `spec`, given every known pod (for spreading),
/// or the kubectl-like reason why none fits.
pub fn pick_node(spec: &PodSpec, nodes: &[&Node], pods: &[&Pod]) -> Result<String, String> {
    pick_with_load(spec, nodes, &NodeLoad::from_pods(pods))
}

pub(crate) fn pick_with_load(
    spec: &PodSpec,
    nodes: &[&Node],
    load: &NodeLoad,
) -> Result<String, String> {
    if nodes.is_empty() {
        // Kubernetes' ErrNoNodesAvailable.
        return Err("no nodes available to schedule pods".to_string());
    }
    let mut unfit: BTreeMap<Unfit, usize> = BTreeMap::new();
    let mut best: Option<(usize, &str)> = None;
    for node in nodes {
        let name = node.metadata.name.as_str();
        match check(spec, node) {
            Err(why) => *unfit.entry(why).or_default() += 1,
            Ok(()) => {
                let candidate = (load.get(name), name);
                if best.is_none_or(|b| candidate < b) {
                    best = Some(candidate);
                }
            }
        }
    }
    match best {
        Some((_, name)) => Ok(name.to_string()),
        None => {
            // Kubernetes' FitError: "<count> <reason>" strings, sorted.
            let mut reasons: Vec<String> = unfit
                .iter()
                .map(|(why, n)| format!("{n} {}", why.describe()))
                .collect();
            reasons.sort();
            Err(format!(
                "0/{} nodes are available: {}",
                nodes.len(),
                reasons.join(", ")
            ))
        }
    }
}

/// Is this pod waiting for a node? Pending, unbound, not being deleted.
fn needs_node(pod: &Pod) -> bool {
    pod.status.phase == PodPhase::Pending
        && bound_node(pod).is_none()
        && pod.metadata.deletion_timestamp.is_none()
}

/// Pending pods with no node (unmanaged Pods, or controller pods created
/// when no node fitted): which node each gets now, oldest first, each
/// placement counted for the next so they spread. An `Err` carries the
/// message for the pod's `status.message` (reason `Unschedulable`).
pub fn schedule_pending(pods: &[&Pod], nodes: &[&Node]) -> Vec<(String, Result<String, String>)> {
    let mut load = NodeLoad::from_pods(pods);
    let mut pending: Vec<&Pod> = pods.iter().copied().filter(|p| needs_node(p)).collect();
    pending.sort_by(|a, b| {
        (a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(b.metadata.creation_timestamp, &b.metadata.name))
    });
    pending
        .into_iter()
        .map(|pod| {
            let placed = pick_with_load(&pod.spec, nodes, &load);
            if let Ok(node) = &placed {
                load.add(node);
            }
            (pod.metadata.name.clone(), placed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::fixtures::*;

    fn spec_with_selector(sel: &[(&str, &str)]) -> PodSpec {
        rs("web", 1).node_selector(sel).spec.template.spec
    }

    #[test]
    fn pick_node_table() {
        struct Case {
            name: &'static str,
            selector: &'static [(&'static str, &'static str)],
            nodes: Vec<Node>,
            pods: Vec<Pod>,
            want: Result<&'static str, &'static str>,
        }
        let cases = vec![
            Case {
                name: "single ready node",
                selector: &[],
                nodes: vec![node("n1")],
                pods: vec![],
                want: Ok("n1"),
            },
            Case {
                name: "ties go by name",
                selector: &[],
                nodes: vec![node("n2"), node("n1")],
                pods: vec![],
                want: Ok("n1"),
            },
            Case {
                name: "fewest bound pods wins",
                selector: &[],
                nodes: vec![node("n1"), node("n2")],
                pods: vec![pod("a").on("n1").running()],
                want: Ok("n2"),
            },
            Case {
                name: "terminal pods don't count",
                selector: &[],
                nodes: vec![node("n1"), node("n2")],
                pods: vec![
                    pod("a").on("n1").succeeded(),
                    pod("b").on("n1").failed(),
                    pod("c").on("n2").running(),
                ],
                want: Ok("n1"),
            },
            Case {
                name: "node_selector limits placement",
                selector: &[("disk", "ssd")],
                nodes: vec![node("n1"), node("n2").labels(&[("disk", "ssd")])],
                pods: vec![pod("a").on("n2").running()],
                want: Ok("n2"),
            },
            Case {
                name: "cordoned node skipped",
                selector: &[],
                nodes: vec![node("n1").unschedulable(), node("n2")],
                pods: vec![pod("a").on("n2").running()],
                want: Ok("n2"),
            },
            Case {
                name: "not ready node skipped",
                selector: &[],
                nodes: vec![node("n1").not_ready(), node("n2")],
                pods: vec![pod("a").on("n2").running()],
                want: Ok("n2"),
            },
            Case {
                name: "nothing fits: reasons counted and sorted",
                selector: &[("disk", "ssd")],
                nodes: vec![
                    node("n1"),
                    node("n2").labels(&[("disk", "ssd")]).unschedulable(),
                ],
                pods: vec![],
                want: Err(
                    "0/2 nodes are available: 1 node(s) didn't match node selector, \
                           1 node(s) were unschedulable",
                ),
            },
            Case {
                name: "each node counted under its first failure",
                selector: &[("disk", "ssd")],
                nodes: vec![
                    node("n1").unschedulable().not_ready(),
                    node("n2").not_ready(),
                    node("n3"),
                    node("n4"),
                ],
                pods: vec![],
                want: Err("0/4 nodes are available: 1 node(s) were not ready, \
                           1 node(s) were unschedulable, 2 node(s) didn't match node selector"),
            },
            Case {
                name: "no nodes at all",
                selector: &[],
                nodes: vec![],
                pods: vec![],
                want: Err("no nodes available to schedule pods"),
            },
        ];
        for c in cases {
            let got = pick_node(
                &spec_with_selector(c.selector),
                &refs(&c.nodes),
                &refs(&c.pods),
            );
            let want = c.want.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, want, "case: {}", c.name);
        }
    }

    #[test]
    fn schedule_pending_spreads_oldest_first() {
        let nodes = [node("n1"), node("n2")];
        let pods = [
            pod("late").created_at(t(30)),
            pod("bound").on("n1").running().created_at(t(0)),
            pod("early").created_at(t(10)),
            pod("middle").created_at(t(20)),
            pod("gone").created_at(t(5)).terminating(t(40)),
            pod("done").created_at(t(5)).failed(),
        ];
        let got = schedule_pending(&refs(&pods), &refs(&nodes));
        let want = vec![
            ("early".to_string(), Ok("n2".to_string())),
            ("middle".to_string(), Ok("n1".to_string())),
            ("late".to_string(), Ok("n2".to_string())),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn schedule_pending_reports_why_not() {
        let nodes = [node("n1").unschedulable()];
        let pods = [pod("a").node_selector(&[("gpu", "yes")])];
        assert_eq!(
            schedule_pending(&refs(&pods), &refs(&nodes)),
            vec![(
                "a".to_string(),
                Err("0/1 nodes are available: 1 node(s) were unschedulable".to_string())
            )]
        );
    }
}
