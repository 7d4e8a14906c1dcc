//! Tier-1 tests for the ReplicaSet/RC reconcile: tables of situations built
//! from fixtures, each checked for its plan, its status and the idempotence
//! property (same inputs, same plan; plan applied, nothing left to do).

use super::*;
use crate::controllers::fixtures::*;

fn now() -> DateTime<Utc> {
    t(1000)
}

/// A pod of rs `web` (uid `uid-web`), labelled `app=web`.
fn web_pod(name: &str) -> Pod {
    pod(name).labels(&[("app", "web")]).owned_by(&rs("web", 0))
}

/// An unmanaged pod labelled `app=web`.
fn orphan(name: &str) -> Pod {
    pod(name).labels(&[("app", "web")])
}

/// One op as a line a reader can check at a glance.
fn show(op: &Op) -> String {
    match op {
        Op::CreatePod { generate_name, pod } => match &pod.status.node_name {
            Some(node) => format!("create {generate_name}* on {node}"),
            None => format!(
                "create {generate_name}* {}: {}",
                pod.status.reason.as_deref().unwrap_or("?"),
                pod.status.message.as_deref().unwrap_or("?")
            ),
        },
        Op::DeletePod { name, reason } => format!("delete {name}: {reason}"),
        Op::Adopt { name, owner } => format!("adopt {name} by {owner}"),
        Op::Release { name } => format!("release {name}"),
    }
}

fn shown(plan: &Plan) -> Vec<String> {
    plan.ops.iter().map(show).collect()
}

/// Applies a plan as the executor would, but deterministically: a created
/// pod is named `<generate_name>NNNNN` (first free number), a deleted pod
/// gets a deletion timestamp and stays (terminating), adopt and release
/// rewrite the owner.
fn apply(plan: &Plan, pods: &[Pod], now: DateTime<Utc>) -> Vec<Pod> {
    let mut out = pods.to_vec();
    let find = |out: &mut Vec<Pod>, name: &str| -> usize {
        out.iter()
            .position(|p| p.metadata.name == name)
            .unwrap_or_else(|| panic!("plan names pod {name}, which does not exist"))
    };
    for op in &plan.ops {
        match op {
            Op::CreatePod { generate_name, pod } => {
                let name = (0..)
                    .map(|n| format!("{generate_name}{n:05}"))
                    .find(|name| !out.iter().any(|p| &p.metadata.name == name))
                    .unwrap();
                let mut pod = pod.clone();
                pod.metadata.uid = format!("uid-{name}");
                pod.metadata.name = name;
                out.push(pod);
            }
            Op::DeletePod { name, .. } => {
                let i = find(&mut out, name);
                assert!(
                    out[i].metadata.deletion_timestamp.is_none(),
                    "{name} deleted twice"
                );
                out[i].metadata.deletion_timestamp = Some(now);
            }
            Op::Adopt { name, owner } => {
                let i = find(&mut out, name);
                assert!(
                    out[i].metadata.controller().is_none(),
                    "{name} already owned"
                );
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

/// A ReplicaSet or a ReplicationController, to build a view from.
enum Ctl {
    Rs(ReplicaSet),
    Rc(ReplicationController),
}

impl Ctl {
    fn view(&self) -> ReplicaView<'_> {
        match self {
            Ctl::Rs(rs) => ReplicaView::from_rs(rs),
            Ctl::Rc(rc) => ReplicaView::from_rc(rc),
        }
    }
}

struct Case {
    name: &'static str,
    ctl: Ctl,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    want: &'static [&'static str],
    /// (status.replicas, status.ready_replicas)
    status: (u32, u32),
    /// Applying the plan leaves nothing to do. False only for a restart
    /// step, which deletes now and creates the replacement next pass.
    converges: bool,
}

fn case(name: &'static str, ctl: ReplicaSet) -> Case {
    Case {
        name,
        ctl: Ctl::Rs(ctl),
        pods: vec![],
        nodes: vec![node("n1")],
        want: &[],
        status: (0, 0),
        converges: true,
    }
}

impl Case {
    fn pods(mut self, pods: Vec<Pod>) -> Case {
        self.pods = pods;
        self
    }
    fn nodes(mut self, nodes: Vec<Node>) -> Case {
        self.nodes = nodes;
        self
    }
    fn want(mut self, ops: &'static [&'static str], replicas: u32, ready: u32) -> Case {
        self.want = ops;
        self.status = (replicas, ready);
        self
    }
    fn restart_step(mut self) -> Case {
        self.converges = false;
        self
    }
}

fn cases() -> Vec<Case> {
    let other = rs("other", 1);
    let mut changed_template = rs("web", 2);
    changed_template.spec.template.spec.processes[0].command = vec!["./web-v2".into()];
    vec![
        case("scale up from zero", rs("web", 3)).want(
            &[
                "create web-* on n1",
                "create web-* on n1",
                "create web-* on n1",
            ],
            0,
            0,
        ),
        case("steady state: nothing to do", rs("web", 2))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                web_pod("b").on("n1").ready(),
            ])
            .want(&[], 2, 2),
        case("scale down removes not-ready, then newest", rs("web", 1))
            .pods(vec![
                web_pod("old").on("n1").ready().created_at(t(0)),
                web_pod("new").on("n1").ready().created_at(t(10)),
                web_pod("sick").on("n1").running().created_at(t(5)),
            ])
            .want(&["delete sick: surplus", "delete new: surplus"], 3, 2),
        case("scale to zero", rs("web", 0))
            .pods(vec![web_pod("a").on("n1").ready()])
            .want(&["delete a: surplus"], 1, 1),
        case("adopts a matching unmanaged pod", rs("web", 2))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                orphan("stray").on("n1").ready(),
            ])
            .want(&["adopt stray by ReplicaSet/web"], 2, 2),
        case("adopts, then creates the rest", rs("web", 3))
            .pods(vec![orphan("stray").on("n1").ready()])
            .want(
                &[
                    "adopt stray by ReplicaSet/web",
                    "create web-* on n1",
                    "create web-* on n1",
                ],
                1,
                1,
            ),
        case("surplus after adoption is deleted", rs("web", 2))
            .pods(vec![
                web_pod("a").on("n1").ready().created_at(t(0)),
                web_pod("b").on("n1").ready().created_at(t(1)),
                orphan("c").on("n1").running().created_at(t(2)),
            ])
            .want(&["adopt c by ReplicaSet/web", "delete c: surplus"], 3, 2),
        case(
            "never touches or counts another controller's pods",
            rs("web", 2),
        )
        .pods(vec![
            pod("x")
                .labels(&[("app", "web")])
                .owned_by(&other)
                .on("n1")
                .ready(),
            pod("y")
                .labels(&[("app", "web")])
                .owned_by(&other)
                .on("n1")
                .failed(),
            pod("z")
                .labels(&[("app", "db")])
                .owned_by(&other)
                .on("n1")
                .ready(),
        ])
        .want(&["create web-* on n1", "create web-* on n1"], 0, 0),
        case("relabelled pod is released and replaced", rs("web", 2))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                web_pod("b").labels(&[("app", "debug")]).on("n1").ready(),
            ])
            .nodes(vec![node("n1"), node("n2")])
            .want(&["release b", "create web-* on n2"], 1, 1),
        case("terminal pods are deleted and replaced", rs("web", 2))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                web_pod("crashed").on("n1").failed(),
                web_pod("done").on("n1").succeeded(),
            ])
            .want(
                &[
                    "delete crashed: pod terminated",
                    "delete done: pod terminated",
                    "create web-* on n1",
                ],
                1,
                1,
            ),
        case("terminal orphans are not adopted", rs("web", 1))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                orphan("old").on("n1").failed(),
            ])
            .want(&[], 1, 1),
        case(
            "terminating pods are not counted nor deleted again",
            rs("web", 2),
        )
        .pods(vec![
            web_pod("a").on("n1").ready(),
            web_pod("b").on("n1").ready().terminating(t(900)),
            orphan("c").on("n1").ready().terminating(t(900)),
        ])
        .want(&["create web-* on n1"], 1, 1),
        case(
            "template change leaves running pods alone",
            changed_template,
        )
        .pods(vec![
            web_pod("a").on("n1").ready(),
            web_pod("b").on("n1").ready(),
        ])
        .want(&[], 2, 2),
        Case {
            ctl: Ctl::Rc(rc("db", 2)),
            ..case("RC selector via from_rc", rs("unused", 0))
                .pods(vec![
                    pod("p1")
                        .labels(&[("app", "db")])
                        .owned_by(&rc("db", 0))
                        .on("n1")
                        .ready(),
                    pod("p2")
                        .labels(&[("app", "db"), ("extra", "x")])
                        .on("n1")
                        .running(),
                    pod("p3").labels(&[("app", "web")]).on("n1").ready(),
                ])
                .want(&["adopt p2 by ReplicationController/db"], 2, 1)
        },
        case(
            "node_selector limits placement; pods spread",
            rs("web", 4).node_selector(&[("disk", "ssd")]),
        )
        .nodes(vec![
            node("n1"),
            node("n2").labels(&[("disk", "ssd")]),
            node("n3").labels(&[("disk", "ssd")]),
        ])
        .want(
            &[
                "create web-* on n2",
                "create web-* on n3",
                "create web-* on n2",
                "create web-* on n3",
            ],
            0,
            0,
        ),
        case("spreading counts pods already there", rs("web", 3))
            .pods(vec![
                web_pod("a").on("n1").ready(),
                pod("other").on("n1").ready(),
            ])
            .nodes(vec![node("n1"), node("n2")])
            .want(&["create web-* on n2", "create web-* on n2"], 1, 1),
        case(
            "no node fits: created unschedulable",
            rs("web", 1).node_selector(&[("gpu", "yes")]),
        )
        .nodes(vec![node("n1"), node("n2").unschedulable()])
        .want(
            &["create web-* Unschedulable: 0/2 nodes are available: \
                   1 node(s) didn't match node selector, 1 node(s) were unschedulable"],
            0,
            0,
        ),
        case("cordoned and not-ready nodes are skipped", rs("web", 2))
            .nodes(vec![
                node("n1").unschedulable(),
                node("n2"),
                node("n3").not_ready(),
            ])
            .want(&["create web-* on n2", "create web-* on n2"], 0, 0),
        case(
            "controller being deleted plans nothing",
            rs("web", 3).deleting(t(900)),
        )
        .pods(vec![
            web_pod("a").on("n1").ready(),
            web_pod("gone").on("n1").failed(),
            web_pod("moved").labels(&[("app", "x")]).on("n1").ready(),
            orphan("stray").on("n1").ready(),
        ])
        .want(&[], 1, 1),
        case(
            "restart replaces the oldest outdated pod",
            rs("web", 3).restarted_at(t(100)),
        )
        .pods(vec![
            web_pod("b").on("n1").ready().created_at(t(10)),
            web_pod("a").on("n1").ready().created_at(t(0)),
            web_pod("fresh").on("n1").ready().created_at(t(200)),
        ])
        .want(&["delete a: restart"], 3, 3)
        .restart_step(),
        case(
            "restart waits while a pod is not ready",
            rs("web", 3).restarted_at(t(100)),
        )
        .pods(vec![
            web_pod("a").on("n1").ready().created_at(t(0)),
            web_pod("b").on("n1").ready().created_at(t(10)),
            web_pod("fresh").on("n1").running().created_at(t(200)),
        ])
        .want(&[], 3, 2),
        case(
            "restart waits for a missing replica",
            rs("web", 3).restarted_at(t(100)),
        )
        .pods(vec![
            web_pod("a").on("n1").ready().created_at(t(0)),
            web_pod("b").on("n1").ready().created_at(t(10)),
            web_pod("old")
                .on("n1")
                .ready()
                .created_at(t(5))
                .terminating(t(150)),
        ])
        .want(&["create web-* on n1"], 2, 2),
        case(
            "restart done: every pod is newer",
            rs("web", 2).restarted_at(t(100)),
        )
        .pods(vec![
            web_pod("a").on("n1").ready().created_at(t(100)),
            web_pod("b").on("n1").ready().created_at(t(300)),
        ])
        .want(&[], 2, 2),
    ]
}

#[test]
fn reconcile_table() {
    for c in cases() {
        let view = c.ctl.view();
        let plan = reconcile(&view, &refs(&c.pods), &refs(&c.nodes), now());
        assert_eq!(shown(&plan), c.want, "case: {}", c.name);
        let status = (plan.status.replicas, plan.status.ready_replicas);
        assert_eq!(status, c.status, "case: {} (replicas, ready)", c.name);
    }
}

/// Same inputs, same plan; and once the plan is applied, reconcile has
/// nothing left to do (a restart step needs its next pass to create the
/// replacement, then it is quiet too until the replacement is ready).
#[test]
fn reconcile_is_idempotent() {
    for c in cases() {
        let view = c.ctl.view();
        let first = reconcile(&view, &refs(&c.pods), &refs(&c.nodes), now());
        let again = reconcile(&view, &refs(&c.pods), &refs(&c.nodes), now());
        assert_eq!(
            first, again,
            "case: {}: same inputs, different plan",
            c.name
        );

        let mut pods = apply(&first, &c.pods, now());
        if !c.converges {
            let next = reconcile(&view, &refs(&pods), &refs(&c.nodes), now());
            assert_eq!(shown(&next), ["create web-* on n1"], "case: {}", c.name);
            pods = apply(&next, &pods, now());
        }
        let after = reconcile(&view, &refs(&pods), &refs(&c.nodes), now());
        assert!(
            after.is_empty(),
            "case: {}: plan not empty after applying it: {:?}",
            c.name,
            shown(&after)
        );
    }
}

/// The filter at the top: adding pods owned by another controller, in any
/// state, changes neither the plan nor the status.
#[test]
fn foreign_pods_are_invisible() {
    let other = rs("other", 1);
    let foreign = || {
        let web = |n: &str| pod(n).labels(&[("app", "web")]).owned_by(&other).on("n1");
        vec![
            web("f-ready").ready(),
            web("f-pending"),
            web("f-failed").failed(),
            web("f-terminating").ready().terminating(t(900)),
            pod("f-relabelled")
                .labels(&[("app", "x")])
                .owned_by(&other)
                .on("n1"),
        ]
    };
    for c in cases() {
        let view = c.ctl.view();
        let mut with_foreign = c.pods.clone();
        with_foreign.extend(foreign());
        let base = reconcile(&view, &refs(&c.pods), &refs(&c.nodes), now());
        let seen = reconcile(&view, &refs(&with_foreign), &refs(&c.nodes), now());
        assert_eq!(base.status, seen.status, "case: {}", c.name);
        // Foreign pods weigh on spreading (they run on n1), so compare
        // what is done to which pod, not where new ones land.
        let touched = |p: &Plan| -> Vec<Option<String>> {
            p.ops
                .iter()
                .map(|op| op.pod_name().map(str::to_string))
                .collect()
        };
        assert_eq!(touched(&base), touched(&seen), "case: {}", c.name);
    }
}

#[test]
fn created_pod_carries_template_owner_and_placement() {
    // The template may carry more labels than the selector asks for.
    let web = rs("web", 1)
        .selector(&[("app", "web")])
        .template_labels(&[("app", "web"), ("version", "v2")])
        .node_selector(&[("disk", "ssd")]);
    let nodes = [node("n1").labels(&[("disk", "ssd")])];
    let plan = reconcile(&ReplicaView::from_rs(&web), &[], &refs(&nodes), now());
    let [Op::CreatePod { generate_name, pod }] = plan.ops.as_slice() else {
        panic!("want one create, got {:?}", shown(&plan));
    };
    assert_eq!(generate_name, "web-");
    assert_eq!(pod.metadata.name, "", "the executor names the pod");
    assert_eq!(
        pod.metadata.labels,
        labels(&[("app", "web"), ("version", "v2")])
    );
    assert_eq!(
        pod.metadata.owner_references,
        vec![OwnerRef {
            kind: Kind::ReplicaSet,
            name: "web".into(),
            uid: "uid-web".into()
        }]
    );
    assert_eq!(pod.metadata.creation_timestamp, now());
    assert_eq!(pod.spec, web.spec.template.spec);
    assert_eq!(pod.status.phase, PodPhase::Pending);
    assert_eq!(pod.status.node_name.as_deref(), Some("n1"));
    assert_eq!(pod.status.reason, None);
}

#[test]
fn status_reports_observed_generation() {
    let web = rs("web", 2).generation(7);
    let pods = [
        web_pod("a").on("n1").ready(),
        web_pod("b").on("n1").running(),
    ];
    let plan = reconcile(
        &ReplicaView::from_rs(&web),
        &refs(&pods),
        &refs(&[node("n1")]),
        now(),
    );
    assert_eq!(
        plan.status,
        ReplicaSetStatus {
            replicas: 2,
            ready_replicas: 1,
            observed_generation: 7
        }
    );
}

#[test]
fn creates_and_deletes_are_capped_per_pass() {
    let big = rs("web", 1200);
    let plan = reconcile(
        &ReplicaView::from_rs(&big),
        &[],
        &refs(&[node("n1")]),
        now(),
    );
    assert_eq!(plan.ops.len(), BURST_REPLICAS);

    let pods: Vec<Pod> = (0..600)
        .map(|i| web_pod(&format!("p{i:03}")).on("n1").ready())
        .collect();
    let none = rs("web", 0);
    let plan = reconcile(
        &ReplicaView::from_rs(&none),
        &refs(&pods),
        &refs(&[node("n1")]),
        now(),
    );
    assert_eq!(plan.ops.len(), BURST_REPLICAS);
    assert_eq!(plan.status.replicas, 600);
}

/// Issue 9: a set above the burst cap stopped at 4 passes x 500 = 2,000
/// pods until an unrelated write woke the controllers. A capped plan asks
/// to be requeued; the pass that reaches `replicas` does not.
#[test]
fn a_capped_pass_asks_to_be_requeued_until_it_converges() {
    let nodes = [node("n1")];
    let big = rs("web", 2500);
    let view = ReplicaView::from_rs(&big);
    let mut pods: Vec<Pod> = Vec::new();
    let mut passes = 0;
    loop {
        let plan = reconcile(&view, &refs(&pods), &refs(&nodes), now());
        passes += 1;
        let creates = plan
            .ops
            .iter()
            .filter(|op| matches!(op, Op::CreatePod { .. }))
            .count();
        let left = 2500 - pods.len();
        assert_eq!(creates, left.min(BURST_REPLICAS), "pass {passes}");
        assert_eq!(plan.requeue, left > BURST_REPLICAS, "pass {passes}");
        if creates == 0 {
            break;
        }
        let first = pods.len();
        pods.extend((first..first + creates).map(|i| web_pod(&format!("p{i:04}")).on("n1")));
    }
    assert_eq!(pods.len(), 2500);
    assert_eq!(
        passes, 6,
        "5 capped passes of 500, then one with nothing to do"
    );

    // Scaling down is capped (and requeued) the same way.
    let none = rs("web", 0);
    let plan = reconcile(
        &ReplicaView::from_rs(&none),
        &refs(&pods),
        &refs(&nodes),
        now(),
    );
    assert_eq!(plan.ops.len(), BURST_REPLICAS);
    assert!(plan.requeue);
    let few = rs("web", 2400);
    let plan = reconcile(
        &ReplicaView::from_rs(&few),
        &refs(&pods),
        &refs(&nodes),
        now(),
    );
    assert_eq!(plan.ops.len(), 100);
    assert!(!plan.requeue, "within the cap: done in this pass");
}

/// `drover restart rs web` end to end: one pod at a time, oldest first,
/// never deleting while a replacement is not ready yet.
#[test]
fn restart_goes_one_pod_at_a_time() {
    let web = rs("web", 3).restarted_at(t(100));
    let view = ReplicaView::from_rs(&web);
    let nodes = [node("n1"), node("n2")];
    let mut pods = vec![
        web_pod("c").on("n2").ready().created_at(t(2)),
        web_pod("a").on("n1").ready().created_at(t(0)),
        web_pod("b").on("n1").ready().created_at(t(1)),
    ];
    let live = |pods: &[Pod]| -> Vec<Pod> {
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect()
    };
    let mut replaced = Vec::new();
    let mut done = false;
    for pass in 0..30 {
        let now = t(200 + pass);
        let plan = reconcile(&view, &refs(&pods), &refs(&nodes), now);
        assert!(plan.ops.len() <= 1, "pass {pass}: {:?}", shown(&plan));
        for op in &plan.ops {
            if let Op::DeletePod { name, reason } = op {
                assert_eq!(reason, "restart");
                let live = live(&pods);
                assert!(
                    live.len() == 3 && live.iter().all(|p| p.is_ready()),
                    "pass {pass}: deleted {name} while a replica was missing or not ready"
                );
                replaced.push(name.clone());
            }
        }
        if plan.is_empty() {
            let live = live(&pods);
            if live.iter().all(|p| p.is_ready()) {
                done = true;
                break;
            }
            // The world moves on: replacements become ready, stopped pods
            // disappear.
            pods = live.into_iter().map(|p| p.ready()).collect();
        } else {
            pods = apply(&plan, &pods, now);
        }
    }
    assert!(done, "restart did not finish in 30 passes");
    assert_eq!(replaced, ["a", "b", "c"]);
    let live = live(&pods);
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|p| p.metadata.creation_timestamp >= t(100)));
}

#[test]
fn restart_annotation_that_does_not_parse_is_ignored() {
    let mut web = rs("web", 1);
    web.metadata
        .annotations
        .insert(annotations::RESTARTED_AT.into(), "yesterday".into());
    let pods = [web_pod("a").on("n1").ready()];
    let plan = reconcile(
        &ReplicaView::from_rs(&web),
        &refs(&pods),
        &refs(&[node("n1")]),
        now(),
    );
    assert!(plan.is_empty(), "{:?}", shown(&plan));
    assert_eq!(
        restarted_at(&rs("web", 1).restarted_at(t(5)).metadata),
        Some(t(5))
    );
}

#[test]
fn rc_with_empty_selector_selects_template_labels() {
    let mut db = rc("db", 1);
    db.spec.selector.clear();
    let view = ReplicaView::from_rc(&db);
    assert_eq!(
        view.selector,
        LabelSelector::from_labels(labels(&[("app", "db")]))
    );
    assert_eq!(view.owner_ref().to_string(), "ReplicationController/db");
}

#[test]
fn pods_to_delete_ranks_as_kubernetes() {
    let cases: Vec<(&str, Vec<Pod>, &str)> = vec![
        (
            "unassigned before assigned",
            vec![pod("bound").on("n1").running(), pod("unbound")],
            "unbound",
        ),
        (
            "pending before running",
            vec![pod("run").on("n1").running(), pod("pend").on("n1")],
            "pend",
        ),
        (
            "not ready before ready",
            vec![pod("ok").on("n1").ready(), pod("sick").on("n1").running()],
            "sick",
        ),
        (
            "crowded node before lonely node",
            vec![
                pod("lonely").on("n2").ready().created_at(t(50)),
                pod("crowd-b").on("n1").ready(),
                pod("crowd-a").on("n1").ready(),
            ],
            "crowd-a",
        ),
        (
            "more restarts first",
            vec![
                pod("calm").on("n1").ready().created_at(t(10)),
                pod("flappy").on("n1").ready().restarted(5),
            ],
            "flappy",
        ),
        (
            "newer first",
            vec![
                pod("old").on("n1").ready().created_at(t(0)),
                pod("new").on("n1").ready().created_at(t(10)),
            ],
            "new",
        ),
        (
            "name breaks ties",
            vec![pod("b").on("n1").ready(), pod("a").on("n1").ready()],
            "a",
        ),
    ];
    for (name, pods, want) in cases {
        let first = pods_to_delete(pods.iter().collect(), 1);
        assert_eq!(first.len(), 1, "case: {name}");
        assert_eq!(first[0].metadata.name, want, "case: {name}");
    }
}

#[test]
fn pods_to_delete_full_order() {
    let pods = [
        pod("ready-old").on("n1").ready().created_at(t(0)),
        pod("ready-new").on("n2").ready().created_at(t(9)),
        pod("crashy").on("n2").ready().restarted(3),
        pod("starting").on("n1").running(),
        pod("pending").on("n1"),
        pod("unscheduled"),
    ];
    let order: Vec<&str> = pods_to_delete(pods.iter().collect(), 10)
        .iter()
        .map(|p| p.metadata.name.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "unscheduled",
            "pending",
            "starting",
            "ready-old",
            "crashy",
            "ready-new"
        ]
    );
}

/// Issue 10: a set whose processes run as a user (what a drover-group
/// member applies) adopts only pods that run as that user: never root's
/// pod, which it could then scale away or signal. A set of root's adopts
/// as before.
#[test]
fn a_users_set_adopts_only_that_users_pods() {
    let as_user = |mut p: Pod, user: Option<&str>| {
        for proc_ in &mut p.spec.processes {
            proc_.user = user.map(str::to_string);
        }
        p
    };
    let nodes = [node("n1")];
    let mut alices = rs("web", 0);
    for proc_ in &mut alices.spec.template.spec.processes {
        proc_.user = Some("alice".into());
    }
    let orphans = [
        as_user(pod("root-db").labels(&[("app", "web")]).on("n1"), None),
        as_user(pod("bobs").labels(&[("app", "web")]).on("n1"), Some("bob")),
        as_user(
            pod("alices").labels(&[("app", "web")]).on("n1"),
            Some("alice"),
        ),
    ];
    let plan = reconcile(
        &ReplicaView::from_rs(&alices),
        &refs(&orphans),
        &refs(&nodes),
        now(),
    );
    let shown: Vec<String> = plan.ops.iter().map(show).collect();
    assert_eq!(
        shown,
        ["adopt alices by ReplicaSet/web", "delete alices: surplus"],
        "only alice's pod is adopted (and, at 0 replicas, deleted)"
    );

    let roots = rs("web", 3);
    let plan = reconcile(
        &ReplicaView::from_rs(&roots),
        &refs(&orphans),
        &refs(&nodes),
        now(),
    );
    let adopted = plan
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Adopt { .. }))
        .count();
    assert_eq!(adopted, 3, "root's set adopts whatever matches");
}
