//! Tier-1 tests for the DaemonSet reconcile: `node_should_run` as a
//! table, then situations built from fixtures, each checked for its plan,
//! its status, and that applying the plan leaves nothing to do.

use super::*;
use crate::controllers::fixtures::*;

fn now() -> DateTime<Utc> {
    t(1000)
}

/// DaemonSet `agent` on nodes labelled `role=edge`.
fn agent() -> DaemonSet {
    ds("agent").node_selector(&[("role", "edge")])
}

fn edge(name: &str) -> Node {
    node(name).labels(&[("role", "edge")])
}

/// A pod of `agent` (uid `uid-agent`), labelled `app=agent`.
fn agent_pod(name: &str) -> Pod {
    pod(name)
        .labels(&[("app", "agent")])
        .owned_by(&agent())
        .node_selector(&[("role", "edge")])
}

fn show(op: &Op) -> String {
    match op {
        Op::CreatePod { generate_name, pod } => {
            format!(
                "create {generate_name}* on {}",
                pod.status.node_name.as_deref().unwrap_or("?")
            )
        }
        Op::DeletePod { name, reason } => format!("delete {name}: {reason}"),
        Op::Adopt { name, owner } => format!("adopt {name} by {owner}"),
        Op::Release { name } => format!("release {name}"),
    }
}

/// Applies a plan as the executor would: creates get a name, deletes a
/// deletion timestamp, adopt and release rewrite the owner.
fn apply(plan: &DaemonSetPlan, pods: &[Pod]) -> Vec<Pod> {
    let mut out = pods.to_vec();
    let mut n = 0;
    for op in &plan.ops {
        let find = |out: &mut Vec<Pod>, name: &str| {
            out.iter()
                .position(|p| p.metadata.name == name)
                .expect("planned pod exists")
        };
        match op {
            Op::CreatePod { generate_name, pod } => {
                let mut pod = pod.clone();
                pod.metadata.name = format!("{generate_name}{n:05}");
                pod.metadata.uid = format!("uid-{}", pod.metadata.name);
                n += 1;
                out.push(pod);
            }
            Op::DeletePod { name, .. } => {
                let i = find(&mut out, name);
                assert!(
                    out[i].metadata.deletion_timestamp.is_none(),
                    "{name} deleted twice"
                );
                out[i].metadata.deletion_timestamp = Some(now());
            }
            Op::Adopt { name, owner } => {
                let i = find(&mut out, name);
                out[i].metadata.owner_references = vec![owner.clone()];
            }
            Op::Release { name } => {
                let i = find(&mut out, name);
                out[i].metadata.owner_references.clear();
            }
        }
    }
    out
}

#[test]
fn node_should_run_table() {
    let cases = [
        ("matching, ready", edge("n"), (true, true)),
        (
            "matching and cordoned: a DaemonSet bypasses the scheduler",
            edge("n").unschedulable(),
            (true, true),
        ),
        (
            "matching but NotReady: keeps its pod, gets no new one",
            edge("n").not_ready(),
            (false, true),
        ),
        ("not matching", node("n"), (false, false)),
        (
            "other value",
            node("n").labels(&[("role", "core")]),
            (false, false),
        ),
        (
            "not matching and NotReady",
            node("n").not_ready(),
            (false, false),
        ),
        (
            "extra labels don't matter",
            node("n").labels(&[("role", "edge"), ("disk", "ssd")]),
            (true, true),
        ),
    ];
    for (name, n, want) in cases {
        assert_eq!(node_should_run(&n, &agent()), want, "{name}");
    }
    // No node_selector: every node.
    assert_eq!(node_should_run(&node("n"), &ds("all")), (true, true));
}

struct Case {
    name: &'static str,
    ds: DaemonSet,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    want: &'static [&'static str],
    /// (desired_number_scheduled, current_number_scheduled, number_ready)
    status: (u32, u32, u32),
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        ds: agent(),
        nodes: vec![edge("n1"), edge("n2")],
        pods: vec![],
        want: &[],
        status: (0, 0, 0),
    }
}

impl Case {
    fn nodes(mut self, nodes: Vec<Node>) -> Case {
        self.nodes = nodes;
        self
    }
    fn pods(mut self, pods: Vec<Pod>) -> Case {
        self.pods = pods;
        self
    }
    fn ds(mut self, ds: DaemonSet) -> Case {
        self.ds = ds;
        self
    }
    fn want(mut self, ops: &'static [&'static str], status: (u32, u32, u32)) -> Case {
        self.want = ops;
        self.status = status;
        self
    }
}

fn cases() -> Vec<Case> {
    let other = rs("other", 1);
    let mut lookalike = pod("lookalike")
        .labels(&[("app", "agent")])
        .on("n1")
        .ready();
    lookalike.spec.processes[0].command = vec!["./something-else".into()];
    let own_orphan = || {
        pod("orphan")
            .labels(&[("app", "agent")])
            .node_selector(&[("role", "edge")])
    };
    vec![
        case("one pod per matching node, cordoned included, others skipped")
            .nodes(vec![edge("n1"), edge("n2").unschedulable(), node("n3")])
            .want(&["create agent-* on n1", "create agent-* on n2"], (2, 0, 0)),
        case("steady state: nothing to do")
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").running(),
            ])
            .want(&[], (2, 2, 1)),
        case("a node enrolled later gets its pod")
            .nodes(vec![edge("n1"), edge("n2"), edge("n3")])
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
            ])
            .want(&["create agent-* on n3"], (3, 2, 2)),
        case("a relabelled node loses its pod")
            .nodes(vec![edge("n1"), node("n2").labels(&[("role", "core")])])
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
            ])
            .want(
                &["delete b: node no longer matches the DaemonSet's node selector"],
                (1, 1, 1),
            ),
        case("a lost (NotReady) node keeps its pod, and nothing moves")
            .nodes(vec![edge("n1"), edge("n2").not_ready()])
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
            ])
            .want(&[], (1, 1, 1)),
        case("a NotReady node without a pod gets none yet")
            .nodes(vec![edge("n1"), edge("n2").not_ready()])
            .pods(vec![agent_pod("a").on("n1").ready()])
            .want(&[], (1, 1, 1)),
        case("an unmanaged pod matching its selector on its node is terminated")
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
                lookalike.clone(),
            ])
            .want(
                &["delete lookalike: unmanaged pod matching a DaemonSet's selector"],
                (2, 2, 2),
            ),
        case("an unmanaged matching pod on a node it does not run on is left alone")
            .nodes(vec![edge("n1"), edge("n2"), node("n3")])
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
                {
                    let mut p = lookalike.clone();
                    p.status.node_name = Some("n3".into());
                    p
                },
            ])
            .want(&[], (2, 2, 2)),
        case("pods of other controllers are never touched")
            .pods(vec![
                agent_pod("b").on("n2").ready(),
                pod("foreign")
                    .labels(&[("app", "agent")])
                    .owned_by(&other)
                    .on("n1")
                    .ready(),
            ])
            .want(&["create agent-* on n1"], (2, 1, 1)),
        case("its own orphan (same template) is adopted, not replaced")
            .pods(vec![
                agent_pod("b").on("n2").ready(),
                own_orphan().on("n1").ready(),
            ])
            .want(&["adopt orphan by DaemonSet/agent"], (2, 2, 2)),
        case("its own orphan where a daemon pod runs already is a duplicate: terminated")
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
                own_orphan().on("n1").ready(),
            ])
            .want(
                &["delete orphan: unmanaged pod matching a DaemonSet's selector"],
                (2, 2, 2),
            ),
        case("a failed daemon pod is deleted; its replacement waits until it is gone")
            .pods(vec![
                agent_pod("a").on("n1").failed(),
                agent_pod("b").on("n2").ready(),
            ])
            .want(&["delete a: pod terminated"], (2, 2, 1)),
        case("while its pod terminates, a node gets no second one")
            .pods(vec![
                agent_pod("a").on("n1").ready().terminating(t(900)),
                agent_pod("b").on("n2").ready(),
            ])
            .want(&[], (2, 1, 1)),
        case("duplicates on one node: the oldest stays")
            .pods(vec![
                agent_pod("young").on("n1").ready().created_at(t(50)),
                agent_pod("old").on("n1").ready().created_at(t(10)),
                agent_pod("b").on("n2").ready(),
            ])
            .want(
                &["delete young: more than one daemon pod on the node"],
                (2, 2, 2),
            ),
        case("a pod relabelled out of the selector is released, and replaced")
            .pods(vec![
                agent_pod("a").on("n1").ready().labels(&[("app", "debug")]),
                agent_pod("b").on("n2").ready(),
            ])
            .want(&["release a", "create agent-* on n1"], (2, 1, 1)),
        case("its pod on a node that left the cluster is deleted")
            .nodes(vec![edge("n1")])
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("gone").ready(),
            ])
            .want(
                &["delete b: bound to a node that does not exist"],
                (1, 1, 1),
            ),
        case("a DaemonSet being deleted plans nothing")
            .ds(agent().deleting(t(900)))
            .pods(vec![agent_pod("a").on("n1").ready(), lookalike.clone()])
            .want(&[], (2, 1, 1)),
        case("an empty selector never claims unmanaged pods")
            .ds({
                let mut d = agent();
                d.spec.selector = Default::default();
                d
            })
            .pods(vec![
                agent_pod("a").on("n1").ready(),
                agent_pod("b").on("n2").ready(),
                lookalike,
            ])
            .want(&[], (2, 2, 2)),
    ]
}

#[test]
fn reconcile_table() {
    for c in cases() {
        let plan = reconcile(&c.ds, &refs(&c.nodes), &refs(&c.pods), now());
        let got: Vec<String> = plan.ops.iter().map(show).collect();
        assert_eq!(got, c.want, "case: {}", c.name);
        let s = &plan.status;
        assert_eq!(
            (
                s.desired_number_scheduled,
                s.current_number_scheduled,
                s.number_ready
            ),
            c.status,
            "status of case: {}",
            c.name
        );
        assert_eq!(s.observed_generation, c.ds.metadata.generation);
        // Same inputs, same plan.
        assert_eq!(
            reconcile(&c.ds, &refs(&c.nodes), &refs(&c.pods), now()),
            plan,
            "{}",
            c.name
        );
        // Applied, nothing is left to do.
        let after = apply(&plan, &c.pods);
        let again = reconcile(&c.ds, &refs(&c.nodes), &refs(&after), now());
        assert!(
            again.ops.is_empty(),
            "case {} after applying: {:?}",
            c.name,
            again.ops
        );
    }
}

#[test]
fn created_pods_are_bound_and_owned() {
    let nodes = [edge("n1").unschedulable()];
    let plan = reconcile(&agent(), &refs(&nodes), &[], now());
    let [Op::CreatePod { pod, generate_name }] = &plan.ops[..] else {
        panic!("one create: {:?}", plan.ops)
    };
    assert_eq!(generate_name, "agent-");
    assert_eq!(
        pod.status.node_name.as_deref(),
        Some("n1"),
        "bound, no scheduler"
    );
    assert_eq!(pod.metadata.owner_references, [agent().as_owner()]);
    assert_eq!(pod.metadata.labels, labels(&[("app", "agent")]));
    assert_eq!(pod.spec, agent().spec.template.spec);
    assert_eq!(pod.status.phase, PodPhase::Pending);
}

#[test]
fn a_failed_pod_is_replaced_once_it_is_gone() {
    let nodes = [edge("n1")];
    let failed = [agent_pod("a").on("n1").failed()];
    let plan = reconcile(&agent(), &refs(&nodes), &refs(&failed), now());
    assert_eq!(
        plan.ops.iter().map(show).collect::<Vec<_>>(),
        ["delete a: pod terminated"]
    );
    // The agent stopped it and the executor removed it: now a new one.
    let plan = reconcile(&agent(), &refs(&nodes), &[], now());
    assert_eq!(
        plan.ops.iter().map(show).collect::<Vec<_>>(),
        ["create agent-* on n1"]
    );
}
