//! The etcd backend against real etcd processes (tests/harness/etcd.rs):
//! compare-and-swap between clients, the watch across compaction, leases
//! that lapse, leader election with the old leader fenced, and calls that
//! fail over when a member of a 3-member cluster is down.
//!
//! Lines starting with `measured:` report timings (run with
//! `--nocapture`); nothing here asserts speed, only bounds that follow
//! from the TTLs.

use crate::harness::etcd::Etcd;
use drover::api::{Kind, Object, PodStatus};
use drover::store::etcd::keys::KeyRef;
use drover::store::etcd::{
    campaign, current_leader, Change, Entry, EtcdConfig, EtcdStore, RetryPolicy, WatchEvent,
};
use drover::store::versioned::{contract, ObjectStore, StoreError};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(endpoints: Vec<String>) -> EtcdStore {
    EtcdStore::connect(&EtcdConfig::new(endpoints))
        .await
        .expect("connect to the test etcd")
}

fn labelled(mut obj: Object, value: &str) -> Object {
    obj.meta_mut()
        .labels
        .insert("who".to_string(), value.to_string());
    obj
}

/// Waits for the next watch event, with a deadline.
async fn next_event(watch: &mut drover::store::etcd::Watch) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(15), watch.next())
        .await
        .expect("a watch event within 15s")
        .expect("watch works")
}

#[test]
fn etcd_backend_keeps_the_store_contract() {
    // The same assertions as the embedded store's unit tests
    // (store::versioned::contract), each on a fresh etcd.
    let rt = runtime();
    for rule in 0..3 {
        let started = Instant::now();
        let etcd = Etcd::start();
        eprintln!(
            "measured: 1-member etcd healthy after {:?}",
            started.elapsed()
        );
        rt.block_on(async {
            let store = connect(etcd.endpoints()).await;
            match rule {
                0 => contract::stale_writer_conflicts(&store).await,
                1 => contract::create_update_delete_rules(&store).await,
                _ => contract::list_carries_versions(&store).await,
            }
        });
    }
}

#[test]
fn two_clients_compare_and_swap_and_the_stale_one_conflicts() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let a = connect(etcd.endpoints()).await;
        let b = connect(etcd.endpoints()).await;
        a.create(contract::node("n1")).await.unwrap();
        let seen_by_a = a.get(Kind::Node, "n1").await.unwrap().unwrap();
        let seen_by_b = b.get(Kind::Node, "n1").await.unwrap().unwrap();
        assert_eq!(seen_by_a, seen_by_b);

        let written = b.update_if(labelled(seen_by_b, "b")).await.unwrap();
        match a.update_if(labelled(seen_by_a, "a")).await {
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => assert_eq!(actual, written.meta().resource_version, "{expected}"),
            other => panic!("a's stale write must conflict, got {other:?}"),
        }
        // Level-triggered: a re-reads and runs again.
        let fresh = a.get(Kind::Node, "n1").await.unwrap().unwrap();
        assert_eq!(fresh.meta().labels["who"], "b");
        a.update_if(labelled(fresh, "a")).await.expect("retry wins");

        // Round trip of one compare-and-swap on loopback.
        let mut obj = a.get(Kind::Node, "n1").await.unwrap().unwrap();
        let n = 200u32;
        let started = Instant::now();
        for i in 0..n {
            obj = a.update_if(labelled(obj, &i.to_string())).await.unwrap();
        }
        let each = started.elapsed() / n;
        eprintln!("measured: compare-and-swap round trip on loopback: {each:?} (mean of {n})");
        let started = Instant::now();
        for _ in 0..n {
            a.get(Kind::Node, "n1").await.unwrap();
        }
        let each = started.elapsed() / n;
        eprintln!("measured: get round trip on loopback: {each:?} (mean of {n})");
    });
}

#[test]
fn pod_status_has_its_own_key_and_never_conflicts_with_control_plane_writes() {
    use drover::api::{Pod, PodPhase};
    let etcd = Etcd::start();
    runtime().block_on(async {
        let store = connect(etcd.endpoints()).await;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "uid": "u1",
                         "creation_timestamp": "2026-01-01T00:00:00Z"},
            "spec": {"processes": [{"name": "main", "command": ["sleep", "1"]}]},
            "status": {"phase": "Pending", "node_name": "n1"}
        }))
        .unwrap();
        let stored = store.create(Object::Pod(pod)).await.unwrap();
        let rv = stored.meta().resource_version;

        let running = PodStatus {
            phase: PodPhase::Running,
            node_name: Some("n1".into()),
            ..PodStatus::default()
        };
        store.put_pod_status("web-1", "u1", &running).await.unwrap();
        let Some(Object::Pod(read)) = store.get(Kind::Pod, "web-1").await.unwrap() else {
            panic!("pod readable")
        };
        assert_eq!(read.status.phase, PodPhase::Running, "the node's status");
        assert_eq!(
            read.metadata.resource_version, rv,
            "status moved no version"
        );
        // A controller's write at the version it read still lands.
        store
            .update_if(labelled(Object::Pod(read), "controller"))
            .await
            .expect("no conflict with the node's status write");

        // Deleting the pod takes its status along; a late status write
        // from the node is refused instead of resurrecting it.
        let current = store.get(Kind::Pod, "web-1").await.unwrap().unwrap();
        store
            .delete_if(Kind::Pod, "web-1", current.meta().resource_version)
            .await
            .unwrap();
        assert!(matches!(
            store.put_pod_status("web-1", "u1", &running).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.list(Kind::Pod).await.unwrap().objects.is_empty());
    });
}

#[test]
fn watch_resumes_from_a_revision_and_relists_after_compaction() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let store = connect(etcd.endpoints()).await;
        let a = store.create(contract::node("a")).await.unwrap();
        store.create(contract::node("b")).await.unwrap();
        let before = store.revision().await.unwrap();

        // From a revision still in history: the changes after it, in order.
        store.update_if(labelled(a, "x")).await.unwrap();
        let mut watch = store.watch(Some(before + 1));
        match next_event(&mut watch).await {
            WatchEvent::Changes { changes, .. } => match &changes[..] {
                [Change::Put(Entry::Object(o))] => assert_eq!(o.meta().labels["who"], "x"),
                other => panic!("one put of a, got {other:?}"),
            },
            other => panic!("changes, got {other:?}"),
        }

        // Compacted history: the watcher gets a snapshot of now instead.
        let b = store.get(Kind::Node, "b").await.unwrap().unwrap();
        store
            .delete_if(Kind::Node, "b", b.meta().resource_version)
            .await
            .unwrap();
        store.create(contract::node("c")).await.unwrap();
        let now = store.revision().await.unwrap();
        store.compact(now).await.unwrap();
        let mut late = store.watch(Some(before + 1));
        let snapshot_rev = match next_event(&mut late).await {
            WatchEvent::Snapshot { revision, entries } => {
                let mut names: Vec<&str> = entries
                    .iter()
                    .map(|e| match e {
                        Entry::Object(o) => o.name(),
                        other => panic!("only objects were written, got {other:?}"),
                    })
                    .collect();
                names.sort();
                assert_eq!(names, ["a", "c"], "b was deleted");
                assert_eq!(revision, now);
                revision
            }
            other => panic!("a snapshot after compaction, got {other:?}"),
        };
        // ... and then the changes after that snapshot, none missed.
        store.create(contract::node("d")).await.unwrap();
        match next_event(&mut late).await {
            WatchEvent::Changes { revision, changes } => {
                assert!(revision > snapshot_rev);
                assert!(
                    matches!(&changes[..], [Change::Put(Entry::Object(o))] if o.name() == "d"),
                    "{changes:?}"
                );
            }
            other => panic!("changes, got {other:?}"),
        }
        // A deletion arrives as the key it removed.
        let d = store.get(Kind::Node, "d").await.unwrap().unwrap();
        store
            .delete_if(Kind::Node, "d", d.meta().resource_version)
            .await
            .unwrap();
        match next_event(&mut late).await {
            WatchEvent::Changes { changes, .. } => assert_eq!(
                changes,
                [Change::Delete(KeyRef::Object(Kind::Node, "d".into()))]
            ),
            other => panic!("changes, got {other:?}"),
        }
    });
}

#[test]
fn a_lease_kept_alive_outlives_its_ttl_and_one_left_alone_takes_its_key_along() {
    let mut etcd = Etcd::start();
    let rt = runtime();
    rt.block_on(async {
        let store = connect(etcd.endpoints()).await;
        let ttl = Duration::from_secs(2);
        let kept = store.grant_lease(ttl).await.unwrap();
        store.put_node_lease("kept", &kept).await.unwrap();
        let left = store.grant_lease(ttl).await.unwrap();
        let rev = store.put_node_lease("left", &left).await.unwrap();
        assert_eq!(left.ttl(), ttl, "etcd granted what was asked");

        // Stop renewing `left` (what a crashed or frozen node looks like).
        let dropped_at = Instant::now();
        drop(left);
        let mut watch = store.watch(Some(rev + 1));
        loop {
            match next_event(&mut watch).await {
                WatchEvent::Changes { changes, .. }
                    if changes.contains(&Change::Delete(KeyRef::NodeLease("left".into()))) =>
                {
                    break
                }
                _ => continue,
            }
        }
        let gone_after = dropped_at.elapsed();
        eprintln!("measured: an abandoned 2s lease's key vanished after {gone_after:?}");
        assert!(gone_after < ttl + Duration::from_secs(2), "{gone_after:?}");
        // `kept` was granted first: without renewals it would have gone
        // first. Its key is still there, and the lease is not lost.
        let snapshot = store.watch(None).next().await.unwrap();
        let WatchEvent::Snapshot { entries, .. } = snapshot else {
            panic!("snapshot")
        };
        assert!(entries.contains(&Entry::NodeLease {
            node: "kept".into()
        }));
        assert!(!kept.is_lost());

        // Revoking deletes the key at once.
        kept.revoke().await.unwrap();
        let snapshot = store.watch(None).next().await.unwrap();
        let WatchEvent::Snapshot { entries, .. } = snapshot else {
            panic!("snapshot")
        };
        assert!(entries.is_empty(), "{entries:?}");
    });

    // With etcd gone, the owner hears of the loss within about a TTL.
    rt.block_on(async {
        let store = connect(etcd.endpoints()).await;
        let lease = store.grant_lease(Duration::from_secs(2)).await.unwrap();
        etcd.stop_member(0);
        let stopped = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), lease.lost())
            .await
            .expect("the lease is reported lost");
        let after = stopped.elapsed();
        eprintln!("measured: lease loss noticed {after:?} after etcd stopped (TTL 2s)");
        assert!(after <= Duration::from_secs(3), "{after:?}");
    });
}

#[test]
fn leadership_hands_over_when_the_leader_lapses_and_the_old_leaders_writes_fail() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let ttl = Duration::from_secs(2);
        let a = connect(etcd.endpoints()).await;
        let b = connect(etcd.endpoints()).await;
        a.create(contract::node("n1")).await.unwrap();

        let leader_a = campaign(&a, "a", ttl).await.unwrap();
        assert_eq!(current_leader(&a).await.unwrap().as_deref(), Some("a"));
        let b_store = b.clone();
        let mut contender = tokio::spawn(async move { campaign(&b_store, "b", ttl).await });
        // While a renews, b waits: for several TTLs (a condition on time
        // passing is the point here, so a timeout is the condition).
        assert!(
            tokio::time::timeout(2 * ttl, &mut contender).await.is_err(),
            "b must not lead while a's lease is renewed"
        );
        // a's guarded writes land while it leads.
        let n1 = a.get(Kind::Node, "n1").await.unwrap().unwrap();
        let n1 = a
            .guarded(leader_a.guard())
            .update_if(labelled(n1, "a"))
            .await
            .expect("the leader writes");

        // a freezes: its renewals stop. Keep its guard, as a frozen process
        // would, and let the lease lapse.
        let old_guard = leader_a.guard().clone();
        let froze = Instant::now();
        drop(leader_a);
        let leader_b = tokio::time::timeout(Duration::from_secs(15), contender)
            .await
            .expect("b takes over")
            .unwrap()
            .expect("b's campaign");
        let failover = froze.elapsed();
        eprintln!("measured: leader failover after the leader stopped renewing: {failover:?} (TTL {ttl:?})");
        // The bound is the point: it took a lapse, not anything else.
        assert!(failover < ttl + Duration::from_secs(3), "{failover:?}");
        assert_eq!(current_leader(&b).await.unwrap().as_deref(), Some("b"));
        assert!(leader_b.guard().term() > old_guard.term());

        // a wakes up and writes as if it still led: refused, whatever the
        // object's version.
        assert!(matches!(
            a.guarded(&old_guard).update_if(labelled(n1.clone(), "stale")).await,
            Err(StoreError::NotLeader)
        ));
        assert!(matches!(
            a.guarded(&old_guard).create(contract::node("n2")).await,
            Err(StoreError::NotLeader)
        ));
        b.guarded(leader_b.guard())
            .update_if(labelled(n1, "b"))
            .await
            .expect("the new leader writes");

        // Resigning hands over at once, without waiting for a TTL.
        let c = connect(etcd.endpoints()).await;
        let c_store = c.clone();
        let contender = tokio::spawn(async move { campaign(&c_store, "c", ttl).await });
        tokio::task::yield_now().await;
        let resigned = Instant::now();
        leader_b.resign().await.unwrap();
        let leader_c = tokio::time::timeout(Duration::from_secs(15), contender)
            .await
            .expect("c takes over")
            .unwrap()
            .unwrap();
        eprintln!("measured: leader handover after resign: {:?}", resigned.elapsed());
        assert!(resigned.elapsed() < ttl, "no TTL wait after a resign");
        assert_eq!(current_leader(&c).await.unwrap().as_deref(), Some("c"));
        drop(leader_c);
    });
}

#[test]
fn calls_and_the_watch_fail_over_when_a_member_of_three_is_down() {
    let started = Instant::now();
    let mut etcd = Etcd::cluster(3);
    eprintln!(
        "measured: 3-member etcd healthy after {:?}",
        started.elapsed()
    );
    let rt = runtime();
    let store = rt.block_on(connect(etcd.endpoints()));
    let mut watch = store.watch(None);
    let rev = rt.block_on(async {
        let WatchEvent::Snapshot { revision, .. } = next_event(&mut watch).await else {
            panic!("snapshot first")
        };
        revision
    });

    // The first endpoint, where every call starts, goes away.
    etcd.stop_member(0);
    rt.block_on(async {
        let started = Instant::now();
        let first = store
            .create(contract::node("x0"))
            .await
            .expect("fails over");
        eprintln!(
            "measured: first call after its member was SIGKILLed: {:?}",
            started.elapsed()
        );
        assert!(first.meta().resource_version > rev);
        for i in 1..50 {
            let name = format!("x{i}");
            store.create(contract::node(&name)).await.expect("create");
            assert!(store.get(Kind::Node, &name).await.unwrap().is_some());
        }
        // The watch moved to a live member and missed nothing.
        let mut seen = Vec::new();
        while seen.len() < 50 {
            match next_event(&mut watch).await {
                WatchEvent::Changes { changes, .. } => {
                    for c in changes {
                        if let Change::Put(Entry::Object(o)) = c {
                            seen.push(o.name().to_string());
                        }
                    }
                }
                WatchEvent::Snapshot { .. } => panic!("no compaction: no snapshot"),
            }
        }
        let want: Vec<String> = (0..50).map(|i| format!("x{i}")).collect();
        assert_eq!(seen, want, "every change once, in order");
    });

    // Back, and another member down: still fine.
    etcd.start_member(0);
    etcd.stop_member(1);
    rt.block_on(async {
        for i in 50..60 {
            store
                .create(contract::node(&format!("x{i}")))
                .await
                .expect("create with member 1 down");
        }
        assert_eq!(store.list(Kind::Node).await.unwrap().objects.len(), 60);
    });
}

#[test]
fn with_every_member_down_a_call_reports_unavailable_within_its_budget() {
    let mut etcd = Etcd::start();
    let endpoints = etcd.endpoints();
    etcd.stop_member(0);
    runtime().block_on(async {
        let mut config = EtcdConfig::new(endpoints);
        config.retry = RetryPolicy {
            budget: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let store = EtcdStore::connect(&config).await.unwrap();
        let started = Instant::now();
        match store.get(Kind::Node, "n1").await {
            Err(StoreError::Unavailable { attempts, .. }) => assert!(attempts >= 2),
            other => panic!("unavailable, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn plain_http_to_another_host_is_refused_before_any_connection() {
    runtime().block_on(async {
        let err = match EtcdStore::connect(&EtcdConfig::new(["http://192.0.2.1:2379"])).await {
            Err(e) => e,
            Ok(_) => panic!("must be refused"),
        };
        assert!(err.to_string().contains("--insecure-etcd"), "{err}");
    });
}
