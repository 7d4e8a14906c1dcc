//! Tier-1 tests for node lifecycle: single passes as a table, then
//! sequences of passes over time (the health map carried between them),
//! as the leader would run them.

use super::*;
use crate::api::OwnerRef;
use crate::controllers::fixtures::*;

const TIMEOUT: Duration = DEFAULT_POD_EVICTION_TIMEOUT;

fn alive(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn job_owner() -> OwnerRef {
    OwnerRef {
        kind: Kind::Job,
        name: "batch".into(),
        uid: "uid-batch".into(),
    }
}

/// On n2: one pod of each kind of owner, plus a terminating and a finished
/// ReplicaSet pod; on n1 a ReplicaSet pod.
fn pods() -> Vec<Pod> {
    let web = rs("web", 3);
    vec![
        pod("web-1").owned_by(&web).on("n1").ready(),
        pod("web-2").owned_by(&web).on("n2").ready(),
        pod("legacy-1").owned_by(&rc("legacy", 1)).on("n2").ready(),
        pod("batch-1").owned_by(&job_owner()).on("n2").running(),
        pod("agent-2").owned_by(&ds("agent")).on("n2").ready(),
        pod("solo").on("n2").ready(),
        pod("web-3")
            .owned_by(&web)
            .on("n2")
            .ready()
            .terminating(t(1)),
        pod("web-4").owned_by(&web).on("n2").succeeded(),
    ]
}

fn evicted(plan: &LifecyclePlan) -> Vec<&str> {
    plan.evictions
        .iter()
        .map(|op| match op {
            Op::DeletePod { name, reason } => {
                assert_eq!(reason, EVICTION_REASON);
                name.as_str()
            }
            other => panic!("only deletes, got {other:?}"),
        })
        .collect()
}

fn since(at: i64, ready: bool) -> NodeHealth {
    NodeHealth {
        ready,
        since: t(at),
    }
}

#[test]
fn single_pass_table() {
    struct Case {
        name: &'static str,
        nodes: Vec<Node>,
        alive: &'static [&'static str],
        previous: Vec<(&'static str, NodeHealth)>,
        now: i64,
        conditions: Vec<(&'static str, bool)>,
        evicted: Vec<&'static str>,
        requeue: Option<u64>,
        full: bool,
    }
    let cases = vec![
        Case {
            name: "all alive: nothing to do",
            nodes: vec![node("n1"), node("n2")],
            alive: &["n1", "n2"],
            previous: vec![],
            now: 100,
            conditions: vec![],
            evicted: vec![],
            requeue: None,
            full: false,
        },
        Case {
            name: "a node just registered becomes Ready",
            nodes: vec![node("n1"), node("n2").not_ready()],
            alive: &["n1", "n2"],
            previous: vec![],
            now: 100,
            conditions: vec![("n2", true)],
            evicted: vec![],
            requeue: None,
            full: false,
        },
        Case {
            name: "a lease just lapsed: NotReady, eviction scheduled",
            nodes: vec![node("n1"), node("n2")],
            alive: &["n1"],
            previous: vec![("n1", since(0, true)), ("n2", since(0, true))],
            now: 100,
            conditions: vec![("n2", false)],
            evicted: vec![],
            requeue: Some(5),
            full: false,
        },
        Case {
            name: "not yet past the timeout: the rest of it",
            nodes: vec![node("n1"), node("n2").not_ready()],
            alive: &["n1"],
            previous: vec![("n1", since(0, true)), ("n2", since(98, false))],
            now: 100,
            conditions: vec![],
            evicted: vec![],
            requeue: Some(3),
            full: false,
        },
        Case {
            name: "past the timeout: controller-owned and terminating pods go, DaemonSet and unmanaged stay",
            nodes: vec![node("n1"), node("n2").not_ready()],
            alive: &["n1"],
            previous: vec![("n1", since(0, true)), ("n2", since(95, false))],
            now: 100,
            conditions: vec![],
            evicted: vec!["web-2", "legacy-1", "batch-1", "web-3"],
            requeue: None,
            full: false,
        },
        Case {
            name: "every node lapsed: full disruption, nothing evicted",
            nodes: vec![node("n1").not_ready(), node("n2").not_ready()],
            alive: &[],
            previous: vec![("n1", since(10, false)), ("n2", since(10, false))],
            now: 100,
            conditions: vec![],
            evicted: vec![],
            requeue: None,
            full: true,
        },
        Case {
            name: "a single node lapsing is a full disruption too: nowhere to go",
            nodes: vec![node("n2")],
            alive: &[],
            previous: vec![("n2", since(0, true))],
            now: 100,
            conditions: vec![("n2", false)],
            evicted: vec![],
            requeue: None,
            full: true,
        },
        Case {
            name: "a node back before its timeout: Ready again, nothing evicted",
            nodes: vec![node("n1"), node("n2").not_ready()],
            alive: &["n1", "n2"],
            previous: vec![("n1", since(0, true)), ("n2", since(97, false))],
            now: 100,
            conditions: vec![("n2", true)],
            evicted: vec![],
            requeue: None,
            full: false,
        },
        Case {
            name: "a new leader sees a node down: a full grace period from now",
            nodes: vec![node("n1"), node("n2").not_ready()],
            alive: &["n1"],
            previous: vec![],
            now: 100,
            conditions: vec![],
            evicted: vec![],
            requeue: Some(5),
            full: false,
        },
    ];
    let pods = pods();
    for c in cases {
        let previous: HealthMap = c
            .previous
            .iter()
            .map(|(n, h)| (n.to_string(), *h))
            .collect();
        let plan = reconcile(
            &refs(&c.nodes),
            &alive(c.alive),
            &refs(&pods),
            &previous,
            t(c.now),
            TIMEOUT,
        );
        let conditions: Vec<(&str, bool)> = plan
            .conditions
            .iter()
            .map(|s| (s.node.as_str(), s.ready))
            .collect();
        assert_eq!(conditions, c.conditions, "conditions: {}", c.name);
        assert_eq!(evicted(&plan), c.evicted, "evictions: {}", c.name);
        assert_eq!(
            plan.requeue_after,
            c.requeue.map(Duration::from_secs),
            "requeue: {}",
            c.name
        );
        assert_eq!(plan.full_disruption, c.full, "full disruption: {}", c.name);
    }
}

/// Runs passes at the given times with the given live nodes, carrying the
/// health map and applying condition changes and evictions as the
/// executor would; returns every pod evicted, with the pass's time.
fn run(passes: &[(i64, &[&str])]) -> Vec<(i64, String)> {
    let mut nodes = vec![node("n1"), node("n2"), node("n3")];
    let mut pods = pods();
    let mut health = HealthMap::new();
    let mut out = Vec::new();
    for &(at, live) in passes {
        let plan = reconcile(
            &refs(&nodes),
            &alive(live),
            &refs(&pods),
            &health,
            t(at),
            TIMEOUT,
        );
        for set in &plan.conditions {
            let n = nodes
                .iter_mut()
                .find(|n| n.metadata.name == set.node)
                .unwrap();
            *n = if set.ready {
                node(&set.node)
            } else {
                node(&set.node).not_ready()
            };
        }
        let gone: Vec<String> = evicted(&plan).into_iter().map(String::from).collect();
        for name in gone {
            // Evictions are removals (see the module comment).
            pods.retain(|p| p.metadata.name != name);
            out.push((at, name));
        }
        health = plan.health;
    }
    out
}

#[test]
fn a_crashed_node_is_evicted_once_after_the_timeout() {
    let all: &[&str] = &["n1", "n2", "n3"];
    let without_n2: &[&str] = &["n1", "n3"];
    let got = run(&[
        (0, all),
        (10, without_n2), // lapses
        (14, without_n2), // not yet
        (15, without_n2), // 5 s: evicted
        (20, without_n2), // and only once
    ]);
    let want: Vec<(i64, String)> = ["web-2", "legacy-1", "batch-1", "web-3"]
        .iter()
        .map(|n| (15, n.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn an_etcd_outage_that_lapses_every_node_evicts_nothing_even_after_it_ends() {
    let all: &[&str] = &["n1", "n2", "n3"];
    let none: &[&str] = &[];
    let got = run(&[
        (0, all),
        (10, none), // every lease lapsed: the store, not the nodes
        (30, none),
        (60, all), // back: nothing had been evicted
        (70, all),
    ]);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn after_a_full_disruption_a_node_still_down_gets_a_fresh_grace_period() {
    let all: &[&str] = &["n1", "n2", "n3"];
    let none: &[&str] = &[];
    let without_n2: &[&str] = &["n1", "n3"];
    let got = run(&[
        (0, all),
        (10, none),       // outage: n2 also down, for 50 s
        (60, without_n2), // outage over, n2 stays down: timer restarts at 60
        (64, without_n2),
        (65, without_n2),
    ]);
    assert!(got.iter().all(|(at, _)| *at == 65), "{got:?}");
    assert_eq!(got.len(), 4, "{got:?}");
}
