//! The scheduler: which node a pod goes to.
//!
//! A node fits when it is Ready, not cordoned (`spec.unschedulable`) and its
//! labels contain all of the pod's `node_selector`. Among fitting nodes the
//! one with the fewest non-terminal pods of the same controller wins, then
//! the one with the fewest pods in all, then by name: a controller's
//! replicas spread across nodes even where other pods crowd one of them. When none fits, the error is the message
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

/// How many non-terminal pods are bound to each node, in all and per
/// controller. The reconcile keeps one across a pass and bumps it for
/// every pod it places, so a burst of creates spreads instead of piling
/// onto the emptiest node.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeLoad {
    total: BTreeMap<String, usize>,
    /// By (controller uid, node).
    by_owner: BTreeMap<(String, String), usize>,
    /// The controller whose pods are being placed, if any: its own pods
    /// count first when ranking nodes.
    owner: Option<String>,
}

impl NodeLoad {
    pub(crate) fn from_pods(pods: &[&Pod]) -> NodeLoad {
        let mut load = NodeLoad::default();
        for pod in pods.iter().filter(|p| !p.is_terminal()) {
            if let Some(node) = bound_node(pod) {
                *load.total.entry(node.to_string()).or_default() += 1;
                if let Some(c) = pod.metadata.controller() {
                    *load
                        .by_owner
                        .entry((c.uid.clone(), node.to_string()))
                        .or_default() += 1;
                }
            }
        }
        load
    }

    /// [`NodeLoad::from_pods`] for placing pods of the controller with
    /// `owner_uid`: nodes with fewer of its pods rank first (Kubernetes'
    /// default spreading of a ReplicaSet's pods over hostnames).
    pub(crate) fn for_owner(pods: &[&Pod], owner_uid: &str) -> NodeLoad {
        let mut load = NodeLoad::from_pods(pods);
        load.owner = Some(owner_uid.to_string());
        load
    }

    /// Places pods of another controller (or unmanaged ones: `None`).
    fn placing(&mut self, owner_uid: Option<&str>) {
        self.owner = owner_uid.map(str::to_string);
    }

    pub(crate) fn add(&mut self, node: &str) {
        *self.total.entry(node.to_string()).or_default() += 1;
        if let Some(owner) = &self.owner {
            *self
                .by_owner
                .entry((owner.clone(), node.to_string()))
                .or_default() += 1;
        }
    }

    /// (pods of the owner being placed, pods in all) on `node`: lower is
    /// better.
    fn rank(&self, node: &str) -> (usize, usize) {
        let own = self.owner.as_ref().map_or(0, |o| {
            self.by_owner
                .get(&(o.clone(), node.to_string()))
                .copied()
                .unwrap_or(0)
        });
        (own, self.total.get(node).copied().unwrap_or(0))
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
    let mut best: Option<((usize, usize), &str)> = None;
    for node in nodes {
        let name = node.metadata.name.as_str();
        match check(spec, node) {
            Err(why) => *unfit.entry(why).or_default() += 1,
            Ok(()) => {
                let candidate = (load.rank(name), name);
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
            load.placing(pod.metadata.controller().map(|c| c.uid.as_str()));
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
    fn same_owner_spreads_first_then_fewest_pods() {
        let web = rs("web", 3);
        let other = rs("other", 2);
        // (case, nodes, pods, want)
        let cases: Vec<(&str, Vec<Node>, Vec<Pod>, &str)> = vec![
            (
                "fewest of its own pods wins over fewest pods in all",
                vec![node("n1"), node("n2")],
                vec![
                    pod("w1").owned_by(&web).on("n1").running(),
                    pod("o1").owned_by(&other).on("n2").running(),
                    pod("o2").owned_by(&other).on("n2").running(),
                ],
                "n2",
            ),
            (
                "equal own pods: fewest in all",
                vec![node("n1"), node("n2")],
                vec![
                    pod("w1").owned_by(&web).on("n1").running(),
                    pod("w2").owned_by(&web).on("n2").running(),
                    pod("solo").on("n1").running(),
                ],
                "n2",
            ),
            (
                "terminal pods of its own don't count",
                vec![node("n1"), node("n2")],
                vec![
                    pod("w1").owned_by(&web).on("n1").failed(),
                    pod("o1").owned_by(&other).on("n1").running(),
                    pod("w2").owned_by(&web).on("n2").running(),
                ],
                "n1",
            ),
            (
                "own pods on an unfit node don't pull it in",
                vec![
                    node("n1").unschedulable(),
                    node("n2"),
                    node("n3").not_ready(),
                ],
                vec![pod("w1").owned_by(&web).on("n2").running()],
                "n2",
            ),
        ];
        for (name, nodes, pods, want) in cases {
            let load = NodeLoad::for_owner(&refs(&pods), &web.metadata.uid);
            let got = pick_with_load(&spec_with_selector(&[]), &refs(&nodes), &load);
            assert_eq!(got.as_deref(), Ok(want), "case: {name}");
        }
    }

    #[test]
    fn a_burst_of_one_owner_spreads_evenly_around_other_pods() {
        let web = rs("web", 6);
        let other = rs("other", 3);
        let nodes = [node("n1"), node("n2"), node("n3")];
        let pods: Vec<Pod> = (0..3)
            .map(|i| pod(&format!("o{i}")).owned_by(&other).on("n1").running())
            .collect();
        let mut load = NodeLoad::for_owner(&refs(&pods), &web.metadata.uid);
        let mut placed: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..6 {
            let node = pick_with_load(&spec_with_selector(&[]), &refs(&nodes), &load).unwrap();
            load.add(&node);
            *placed.entry(node).or_default() += 1;
        }
        let want: BTreeMap<String, usize> = [("n1", 2), ("n2", 2), ("n3", 2)]
            .map(|(n, c)| (n.to_string(), c))
            .into();
        assert_eq!(
            placed, want,
            "two per node: the other owner's pods don't skew it"
        );
    }

    #[test]
    fn schedule_pending_spreads_each_owner_on_its_own() {
        let a = rs("a", 2);
        let b = rs("b", 2);
        let nodes = [node("n1"), node("n2")];
        let pods = [
            pod("a-bound").owned_by(&a).on("n1").running(),
            pod("b-bound").owned_by(&b).on("n2").running(),
            pod("a-new").owned_by(&a).created_at(t(10)),
            pod("b-new").owned_by(&b).created_at(t(20)),
        ];
        let got = schedule_pending(&refs(&pods), &refs(&nodes));
        let want = vec![
            ("a-new".to_string(), Ok("n2".to_string())),
            ("b-new".to_string(), Ok("n1".to_string())),
        ];
        assert_eq!(got, want);
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
