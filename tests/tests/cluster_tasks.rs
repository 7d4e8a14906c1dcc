//! Cluster mode's tasks, each against real etcd (tests/harness/etcd.rs),
//! without a daemon around them: the reflector feeding a cache, the
//! heartbeat (registration, lease, re-registration after an outage), the
//! status writer (latest per pod, gone pods dropped, an outage waited
//! out), the leader task with its guarded writes, batched compare-and-swap
//! commits, and TLS with client certificates for etcd and for the
//! node-to-node channel (certificates made by openssl as README shows).
//!
//! Waits are conditions with deadlines; TTLs are the shortest etcd grants
//! (2 s) to keep the suite quick.

use crate::harness::certs::Pki;
use crate::harness::etcd::{Etcd, ServerTls};
use drover::api::{Kind, Object, Pod, PodPhase, PodStatus};
use drover::cluster::cache::ClusterCache;
use drover::cluster::commit::{commit, writes};
use drover::cluster::heartbeat::{self, Heartbeat, NodeInfo};
use drover::cluster::leader::{self, LeaderEvent};
use drover::cluster::peer::{self, PeerClient, PeerServer, PeerTls};
use drover::cluster::reflector::{self, Reflected};
use drover::cluster::status::{self, StatusUpdate};
use drover::store::etcd::{BatchWrite, EtcdConfig, EtcdStore, StatusReport, TlsFiles, WatchEvent};
use drover::store::versioned::{contract, ObjectStore, StoreError};
use drover::store::Store;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(2);
const WITHIN: Duration = Duration::from_secs(20);

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

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WITHIN, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WITHIN:?}"))
}

/// Polls `cond` every 50 ms until it holds.
async fn until<F: Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    within(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"),
                     "creation_timestamp": "2026-01-01T00:00:00Z"},
        "spec": {"processes": [{"name": "main", "command": ["sleep", "1"]}]},
        "status": {"phase": "Pending", "node_name": node}
    }))
    .unwrap()
}

fn running(node: &str) -> PodStatus {
    PodStatus {
        phase: PodPhase::Running,
        node_name: Some(node.into()),
        ..PodStatus::default()
    }
}

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        labels: [("disk".to_string(), "ssd".to_string())].into(),
        capacity: drover::cluster::capacity::host_capacity(),
        version: "test".into(),
        address: Some("127.0.0.1".parse().unwrap()),
        daemon_port: Some(1),
    }
}

#[test]
fn the_reflector_fills_a_cache_and_relists_when_asked() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let store = connect(etcd.endpoints()).await;
        store.create(Object::Pod(pod("a", "n2"))).await.unwrap();
        let mut task = reflector::spawn(store.clone());
        let mut cache = Store::mirror();
        let mut view = ClusterCache::default();
        let mut apply = |r: Reflected, cache: &mut Store| match r {
            Reflected::Event { event, epoch } => {
                let snapshot = matches!(event, WatchEvent::Snapshot { .. });
                view.apply(cache, event, "n1");
                (snapshot, epoch, view.revision)
            }
            Reflected::Unavailable => panic!("etcd is up"),
        };
        let first = within("the first event", task.events.recv()).await.unwrap();
        assert!(apply(first, &mut cache).0, "a snapshot first");
        assert!(cache.pod("a").is_some());

        // Changes arrive in order; the pod's status merges in.
        store
            .put_pod_status("a", "uid-a", &running("n2"))
            .await
            .unwrap();
        let rev = store.create(Object::Pod(pod("b", "n2"))).await.unwrap();
        let rev = rev.meta().resource_version;
        while view_revision(&mut task, &mut cache, &mut apply).await < rev {}
        assert_eq!(cache.pod("a").unwrap().status.phase, PodPhase::Running);
        assert!(cache.pod("b").is_some());

        // A re-list asked for comes back as a snapshot with its epoch.
        let epoch = task.relist();
        loop {
            let r = within("the re-list", task.events.recv()).await.unwrap();
            let (snapshot, got, _) = apply(r, &mut cache);
            if snapshot && got == epoch {
                break;
            }
        }
        assert!(cache.pod("a").is_some() && cache.pod("b").is_some());
    });

    async fn view_revision(
        task: &mut reflector::ReflectorTask,
        cache: &mut Store,
        apply: &mut impl FnMut(Reflected, &mut Store) -> (bool, u64, u64),
    ) -> u64 {
        let r = within("a change", task.events.recv()).await.unwrap();
        apply(r, cache).2
    }
}

#[test]
fn the_heartbeat_registers_keeps_its_key_and_comes_back_after_an_outage() {
    let mut etcd = Etcd::start();
    let rt = runtime();
    let (store, mut hb) = rt.block_on(async {
        let store = connect(etcd.endpoints()).await;
        let mut hb = heartbeat::spawn(store.clone(), info("n1"), TTL);
        let up = within("registration", hb.events.recv()).await;
        assert_eq!(up, Some(Heartbeat::Up { after_loss: false }));
        let Some(Object::Node(node)) = store.get(Kind::Node, "n1").await.unwrap() else {
            panic!("the node is registered")
        };
        assert!(node.is_ready());
        assert_eq!(node.metadata.labels["disk"], "ssd");
        assert_eq!(node.peer_address().as_deref(), Some("127.0.0.1:1"));
        assert!(node.status.capacity.contains_key("memory"));
        let valid = hb.valid_until.borrow().expect("a lease is held");
        assert!(valid > tokio::time::Instant::now());
        (store, hb)
    });

    // A key that exists exactly while the lease lives: the watch sees it.
    rt.block_on(async {
        let mut watch = store.watch(None);
        let Ok(WatchEvent::Snapshot { entries, .. }) = watch.next().await else {
            panic!("a snapshot")
        };
        assert!(entries.iter().any(|e| matches!(
            e,
            drover::store::etcd::Entry::NodeLease { node } if node == "n1"
        )));
    });

    // etcd away for longer than the lease: lost, then registered again,
    // and this time the daemon is told to fence.
    etcd.stop_member(0);
    rt.block_on(async {
        let lost = within("the lease loss", hb.events.recv()).await;
        assert_eq!(lost, Some(Heartbeat::LeaseLost));
        assert!(hb.valid_until.borrow().is_none());
    });
    etcd.start_member(0);
    rt.block_on(async {
        let up = within("re-registration", hb.events.recv()).await;
        assert_eq!(up, Some(Heartbeat::Up { after_loss: true }));
        assert!(hb.valid_until.borrow().is_some());
        hb.task.abort();
    });
}

#[test]
fn the_status_writer_sends_the_latest_drops_gone_pods_and_waits_out_an_outage() {
    let mut etcd = Etcd::start();
    let rt = runtime();
    let (store, tx) = rt.block_on(async {
        let store = connect(etcd.endpoints()).await;
        for name in ["a", "b"] {
            store.create(Object::Pod(pod(name, "n1"))).await.unwrap();
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(status::run(store.clone(), rx));
        (store, tx)
    });
    let report = |name: &str, phase: PodPhase| {
        StatusUpdate::Report(StatusReport {
            pod: name.into(),
            uid: format!("uid-{name}"),
            status: PodStatus {
                phase,
                ..running("n1")
            },
        })
    };
    let phase_of = |store: &EtcdStore, name: &'static str| {
        let store = store.clone();
        async move {
            match store.get(Kind::Pod, name).await {
                Ok(Some(Object::Pod(p))) => Some(p.status.phase),
                _ => None,
            }
        }
    };
    rt.block_on(async {
        tx.send(report("a", PodPhase::Running)).unwrap();
        tx.send(report("ghost", PodPhase::Running)).unwrap(); // no such pod
        tx.send(report("b", PodPhase::Running)).unwrap();
        until("both reports written", || async {
            phase_of(&store, "a").await == Some(PodPhase::Running)
                && phase_of(&store, "b").await == Some(PodPhase::Running)
        })
        .await;
        // The final removal of a pod its node stopped.
        tx.send(StatusUpdate::Removed {
            pod: "b".into(),
            uid: "uid-b".into(),
        })
        .unwrap();
        until("b removed", || async {
            phase_of(&store, "b").await.is_none()
        })
        .await;
    });

    // While etcd is away, reports queue; the latest is written when it is
    // back.
    etcd.stop_member(0);
    rt.block_on(async {
        tx.send(report("a", PodPhase::Pending)).unwrap();
        tx.send(report("a", PodPhase::Failed)).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await; // writer tries, fails
    });
    etcd.start_member(0);
    rt.block_on(async {
        until("the queued report written", || async {
            phase_of(&store, "a").await == Some(PodPhase::Failed)
        })
        .await;
        assert!(
            store.get(Kind::Pod, "ghost").await.unwrap().is_none(),
            "a report never creates a pod"
        );
    });
}

#[test]
fn leadership_moves_on_resign_and_the_old_guard_is_refused() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let store = connect(etcd.endpoints()).await;
        let mut first = leader::spawn(store.clone(), "n1".into(), TTL);
        let LeaderEvent::Elected { guard: old } =
            within("n1 elected", first.events.recv()).await.unwrap()
        else {
            panic!("elected first")
        };
        let mut second = leader::spawn(store.clone(), "n2".into(), TTL);
        let node = contract::node("x");
        let out = commit(&store, &writes([(None, Some(node))]), Some(&old))
            .await
            .expect("the leader writes");
        assert!(out.refused.is_empty() && out.revision > 0);

        first.resign().await;
        let LeaderEvent::Elected { guard: new } =
            within("n2 takes over at once", second.events.recv())
                .await
                .unwrap()
        else {
            panic!("n2 elected")
        };
        assert!(new.term() > old.term());
        let stale = commit(
            &store,
            &writes([(None, Some(contract::node("y")))]),
            Some(&old),
        )
        .await;
        assert!(matches!(stale, Err(StoreError::NotLeader)), "{stale:?}");
        assert!(store.get(Kind::Node, "y").await.unwrap().is_none());
        second.resign().await;
    });
}

#[test]
fn a_batch_applies_what_it_can_and_reports_conflicts_with_what_to_wait_for() {
    let etcd = Etcd::start();
    runtime().block_on(async {
        let store = connect(etcd.endpoints()).await;
        let taken = store.create(contract::node("n-50")).await.unwrap();
        // 100 creates (more than a chunk); one name is taken.
        let batch: Vec<BatchWrite> = (0..100)
            .map(|i| BatchWrite::Create(contract::node(&format!("n-{i}"))))
            .collect();
        let results = store.write_all(&batch, None).await.unwrap();
        assert_eq!(results.len(), 100);
        for (i, r) in results.iter().enumerate() {
            match (i, r) {
                (50, Err(StoreError::AlreadyExists { .. })) => {}
                (50, other) => panic!("n-50 is taken: {other:?}"),
                (_, Ok(rev)) => assert!(*rev > 0),
                (_, Err(e)) => panic!("n-{i}: {e}"),
            }
        }
        assert_eq!(store.list(Kind::Node).await.unwrap().objects.len(), 100);

        // A stale update in a commit: refused, and the outcome says how far
        // the cache must get before deciding again.
        let mut newer = taken.clone();
        newer
            .meta_mut()
            .labels
            .insert("by".into(), "someone".into());
        let newer = store.update_if(newer).await.unwrap();
        let mut mine = taken.clone();
        mine.meta_mut().labels.insert("by".into(), "me".into());
        let out = commit(&store, &writes([(Some(taken), Some(mine))]), None)
            .await
            .unwrap();
        assert_eq!(out.revision, 0);
        assert_eq!(out.refused.len(), 1);
        assert!(out.wait_for >= newer.meta().resource_version);
    });
}

/// Certificates for `etcd`, `n1` and a rogue CA's `intruder`.
fn pki(dir: &std::path::Path) -> (Pki, ServerTls, TlsFiles, TlsFiles) {
    let pki = Pki::new(&dir.join("pki"), "drover-test-ca");
    let server = pki.issue("etcd");
    let n1 = pki.issue("n1");
    let rogue = pki.rogue();
    let intruder = rogue.issue("intruder");
    let etcd_tls = ServerTls {
        ca: pki.ca(),
        cert: server.cert,
        key: server.key,
    };
    let ours = TlsFiles {
        ca: pki.ca(),
        cert: n1.cert,
        key: n1.key,
    };
    let theirs = TlsFiles {
        ca: pki.ca(),
        cert: intruder.cert,
        key: intruder.key,
    };
    (pki, etcd_tls, ours, theirs)
}

fn tls_config(endpoints: Vec<String>, tls: TlsFiles) -> EtcdConfig {
    let mut config = EtcdConfig::new(endpoints);
    config.tls = Some(tls);
    config.retry.budget = Duration::from_secs(2);
    config
}

#[test]
fn etcd_with_client_certificates_serves_ours_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, server, ours, theirs) = pki(dir.path());
    let etcd = Etcd::cluster_tls(1, server);
    runtime().block_on(async {
        let store = EtcdStore::connect(&tls_config(etcd.endpoints(), ours))
            .await
            .expect("TLS config accepted");
        store
            .create(contract::node("n1"))
            .await
            .expect("a client with the cluster's certificate writes");

        // A certificate from another CA: refused by etcd.
        let rogue = EtcdStore::connect(&tls_config(etcd.endpoints(), theirs))
            .await
            .unwrap();
        assert!(
            rogue.get(Kind::Node, "n1").await.is_err(),
            "a certificate from another CA must be refused"
        );

        // No client certificate at all (the CA alone): refused.
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2))
            .with_tls(etcd_client::TlsOptions::new().ca_certificate(
                etcd_client::Certificate::from_pem(std::fs::read(pki.ca()).unwrap()),
            ));
        let bare = etcd_client::Client::connect(etcd.endpoints(), Some(options)).await;
        let refused = match bare {
            Err(_) => true,
            Ok(mut c) => c.get("/drover/nodes/n1", None).await.is_err(),
        };
        assert!(refused, "a client without a certificate must be refused");

        // Plain http to a TLS endpoint is refused by drover's own rule.
        let plain = etcd.endpoints()[0].replace("https://", "http://");
        let mut config = EtcdConfig::new([plain]);
        config.retry.budget = Duration::from_secs(1);
        let plain = EtcdStore::connect(&config).await.unwrap();
        assert!(plain.get(Kind::Node, "n1").await.is_err());
    });
}

/// A handler answering every path with its own name.
fn echo() -> peer::Handler {
    Arc::new(|req: peer::PeerRequest| {
        Box::pin(async move {
            peer::text(
                200,
                format!("{} authenticated={}", req.path, req.authenticated),
            )
        })
    })
}

async fn body(resp: hyper::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn the_node_to_node_channel_is_mutual_tls_with_the_clusters_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _, ours, theirs) = pki(dir.path());
    let n2 = pki.issue("n2");
    runtime().block_on(async {
        let server_tls = PeerTls::load(&TlsFiles {
            ca: pki.ca(),
            cert: n2.cert,
            key: n2.key,
        })
        .expect("the node's certificate loads");
        let server = PeerServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Some(server_tls.server.clone()),
            echo(),
        )
        .await
        .unwrap();
        let addr = server.local_addr().to_string();

        let client = PeerClient::new(Some(PeerTls::load(&ours).unwrap().client));
        let resp = client.get("n2", &addr, "/v1/pods/a/logs").await.unwrap();
        assert_eq!(
            body(resp).await,
            (200, "/v1/pods/a/logs authenticated=true".into())
        );

        // Another CA's certificate: the handshake fails.
        let rogue = PeerClient::new(Some(PeerTls::load(&theirs).unwrap().client));
        let err = rogue.get("n2", &addr, "/v1/pods/a/logs").await.unwrap_err();
        assert!(err.to_string().contains("n2"), "{err}");

        // No certificate, plain http: no answer from a TLS listener.
        let plain = PeerClient::new(None);
        assert!(plain.get("n2", &addr, "/v1/pods/a/logs").await.is_err());
    });
}

#[test]
fn the_node_to_node_channel_without_certificates_only_reads() {
    runtime().block_on(async {
        let server = PeerServer::bind("127.0.0.1:0".parse().unwrap(), None, echo())
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let client = PeerClient::new(None);
        let resp = client.get("n1", &addr, "/v1/events").await.unwrap();
        assert_eq!(
            body(resp).await,
            (200, "/v1/events authenticated=false".into())
        );
        // Anything but GET is refused before the handler sees it.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post("/v1/pods/a")
            .header("host", &addr)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 405);
    });
}

/// Pumps `member`'s events into `store` until `done` holds; returns every
/// resume the agent gate gave meanwhile.
async fn pump(
    member: &mut drover::cluster::member::Member,
    store: &mut Store,
    what: &str,
    mut done: impl FnMut(&drover::cluster::member::Member, &Store) -> bool,
) -> Vec<drover::cluster::fence::Resume> {
    let mut resumes = Vec::new();
    within(what, async {
        while !done(member, store) {
            let ev = member.next().await;
            let handled = member.handle(store, ev, tokio::time::Instant::now());
            resumes.extend(handled.resume);
        }
    })
    .await;
    resumes
}

#[test]
fn two_members_share_the_cache_elect_one_leader_and_fence_after_an_outage() {
    use drover::cluster::fence::Resume;
    use drover::cluster::member::Member;
    use drover::cluster::ClusterOptions;
    let mut etcd = Etcd::start();
    let rt = runtime();
    let start = |name: &'static str, endpoints: Vec<String>| async move {
        let mut opts = ClusterOptions::loopback(endpoints);
        opts.lease_ttl = TTL;
        Member::start(opts, name, Default::default(), echo())
            .await
            .expect("member starts")
    };
    let (mut a, mut b) = rt.block_on(async {
        (
            start("n1", etcd.endpoints()).await,
            start("n2", etcd.endpoints()).await,
        )
    });
    let (mut sa, mut sb) = (Store::mirror(), Store::mirror());
    rt.block_on(async {
        // Both register and get their first snapshot; one leads.
        let got = pump(&mut a, &mut sa, "n1 sees both nodes", |m, s| {
            m.agent.agent_may_act() && s.nodes().count() == 2
        })
        .await;
        assert_eq!(got, [Resume::Start]);
        pump(&mut b, &mut sb, "n2 sees both nodes", |m, s| {
            m.agent.agent_may_act() && s.nodes().count() == 2
        })
        .await;
        let node = sa.get(Kind::Node, "n2").unwrap().clone();
        let Object::Node(node) = node else { panic!() };
        assert_eq!(
            node.peer_address(),
            Some(format!("127.0.0.1:{}", b.peer_addr().port())),
            "the node publishes its node-to-node listener"
        );
        while a.controllers.is_leader() == b.controllers.is_leader() {
            tokio::select! {
                ev = a.next() => { a.handle(&mut sa, ev, tokio::time::Instant::now()); }
                ev = b.next() => { b.handle(&mut sb, ev, tokio::time::Instant::now()); }
            }
        }
        let (leader, lstore, other, ostore) = if a.controllers.is_leader() {
            (&mut a, &mut sa, &mut b, &mut sb)
        } else {
            (&mut b, &mut sb, &mut a, &mut sa)
        };
        let other_name = other.node().to_string();

        // The leader's pass creates a pod bound to the other node, which
        // sees it in its cache; the other's agent reports a status, which
        // reaches the leader's cache.
        assert!(leader.may_run_controllers(tokio::time::Instant::now()));
        let p = pod("web-1", &other_name);
        assert!(leader.commit_pass(vec![(None, Some(Object::Pod(p)))]));
        assert!(
            !leader.may_run_controllers(tokio::time::Instant::now()),
            "one pass at a time"
        );
        pump(other, ostore, "the pod reaches its node", |_, s| {
            s.pod("web-1").is_some()
        })
        .await;
        pump(leader, lstore, "the pass is done and seen", |m, _| {
            m.may_run_controllers(tokio::time::Instant::now())
        })
        .await;
        ostore.update_pod("web-1", |p| {
            p.status.phase = PodPhase::Running;
            true
        });
        other.report_local_changes(ostore);
        pump(leader, lstore, "the status reaches the leader", |_, s| {
            s.pod("web-1")
                .is_some_and(|p| p.status.phase == PodPhase::Running)
        })
        .await;
    });

    // etcd away past the leases: when it is back each node fences with a
    // fresh re-list before its agent acts again.
    etcd.stop_member(0);
    rt.block_on(async {
        tokio::time::sleep(TTL + Duration::from_millis(500)).await;
    });
    etcd.start_member(0);
    rt.block_on(async {
        let mut resumes = Vec::new();
        within("n1 fences", async {
            while !resumes.contains(&Resume::Fence) {
                let ev = a.next().await;
                resumes.extend(a.handle(&mut sa, ev, tokio::time::Instant::now()).resume);
            }
        })
        .await;
        assert!(a.agent.agent_may_act());
        assert!(
            sa.pod("web-1").is_some(),
            "nothing was evicted: the outage hit everyone"
        );
        a.shutdown().await;
        b.shutdown().await;
    });
}
