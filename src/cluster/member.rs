//! This daemon as a member of the cluster: the handle its loop holds.
//!
//! [`Member::start`] connects to etcd and starts the tasks (reflector,
//! heartbeat, leader campaign, status writer, node-to-node listener). The
//! loop then:
//! - awaits [`Member::next`] beside its other events and hands each to
//!   [`Member::handle`], which applies watch events to the loop's mirror
//!   store and says when the agent may act again (after the first
//!   snapshot, after a fencing re-list);
//! - after the agent ran, calls [`Member::report_local_changes`]: the
//!   agent's writes to its pods become status reports (and final removals)
//!   for the writer task;
//! - runs the controllers only while [`Member::may_run_controllers`], on
//!   its cache, and hands what a pass changed to [`Member::commit_pass`]
//!   (leadership-guarded compare-and-swap); API requests' changes go
//!   through [`Member::commit_request`]; results come back as events.
//!
//! Everything here runs on the loop's task or in the tasks it starts; no
//! call blocks on etcd, so an etcd outage never stalls the loop.
//!
//! Must not: run the agent or the controllers, or write to the cache
//! anything but what etcd sent.

use super::cache::ClusterCache;
use super::commit::{self, CommitOutcome};
use super::fence::{AgentGate, Resume};
use super::heartbeat::{self, Heartbeat, HeartbeatTask, NodeInfo};
use super::leader::{self, Gate, LeaderEvent, LeaderTask, PassResult};
use super::lifecycle::{self, LifecycleRun};
use super::peer::{Handler, PeerClient, PeerServer, PeerTls, TlsError};
use super::reflector::{self, Reflected, ReflectorTask};
use super::status::{self, StatusUpdate};
use super::ClusterOptions;
use crate::api::{Kind, Labels, Object};
use crate::controllers::node_lifecycle::HealthMap;
use crate::store::etcd::{BatchWrite, ConfigError, EtcdStore, StatusReport};
use crate::store::versioned::StoreError;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{0}")]
    Etcd(#[from] ConfigError),
    #[error("node-to-node TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("node-to-node listener on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Whose commit finished.
#[derive(Debug)]
pub enum CommitFor {
    /// The controllers' pass.
    Pass,
    /// An API request, by the loop's id for it.
    Request(u64),
}

#[derive(Debug)]
pub struct Committed {
    pub of: CommitFor,
    pub result: Result<CommitOutcome, StoreError>,
}

/// Something from one of the member's tasks.
#[derive(Debug)]
pub enum Event {
    Watch(Reflected),
    Heartbeat(Heartbeat),
    Leader(LeaderEvent),
    Committed(Committed),
}

/// What the loop must do after [`Member::handle`].
#[derive(Debug, Default)]
pub struct Handled {
    /// The agent may act again; what first.
    pub resume: Option<Resume>,
    /// The cache changed (objects, heartbeats or leadership): the
    /// controllers and the agent have something to look at.
    pub changed: bool,
    /// An API request's commit finished.
    pub request: Option<(u64, Result<CommitOutcome, StoreError>)>,
}

pub struct Member {
    node: String,
    opts: ClusterOptions,
    etcd: EtcdStore,
    reflector: ReflectorTask,
    heartbeat: HeartbeatTask,
    leader: Option<LeaderTask>,
    status_tx: mpsc::UnboundedSender<StatusUpdate>,
    status_task: tokio::task::JoinHandle<()>,
    committed_tx: mpsc::UnboundedSender<Committed>,
    committed_rx: mpsc::UnboundedReceiver<Committed>,
    peer: PeerServer,
    pub peer_client: PeerClient,
    /// What the cache knows besides objects.
    pub cache: ClusterCache,
    /// When the agent may act.
    pub agent: AgentGate,
    /// When the controllers may run (leading, expectations met).
    pub controllers: Gate,
    /// The node lifecycle controller's memory (this leadership's).
    health: HealthMap,
    /// When the node lifecycle must run again although nothing changed.
    lifecycle_due: Option<Instant>,
    /// Uid of each local pod reported, for its final removal.
    local_uids: HashMap<String, String>,
}

impl Member {
    /// Connects and starts every task. `labels` are the node's configured
    /// labels; `peer` answers other nodes' requests.
    pub async fn start(
        opts: ClusterOptions,
        node: &str,
        labels: Labels,
        peer: Handler,
    ) -> Result<Member, MemberError> {
        let etcd = EtcdStore::connect(&opts.etcd).await?;
        let tls = match opts.tls() {
            Some(files) => Some(PeerTls::load(files)?),
            None => None,
        };
        let server = PeerServer::bind(opts.listen, tls.as_ref().map(|t| t.server.clone()), peer)
            .await
            .map_err(|source| MemberError::Listen {
                addr: opts.listen,
                source,
            })?;
        let address = opts
            .advertise
            .or_else(|| super::address_toward(&opts.etcd.endpoints[0]));
        let info = NodeInfo {
            name: node.to_string(),
            labels,
            capacity: super::capacity::host_capacity(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            address,
            daemon_port: Some(server.local_addr().port()),
        };
        tracing::info!(
            "cluster mode: etcd {}, node-to-node listener {} ({}), advertised as {}",
            etcd.endpoints().join(","),
            server.local_addr(),
            if tls.is_some() {
                "mutual TLS"
            } else {
                "plain, loopback"
            },
            address.map_or("<none>".into(), |a| a.to_string())
        );
        let heartbeat = heartbeat::spawn(etcd.clone(), info, opts.lease_ttl);
        let reflector = reflector::spawn(etcd.clone());
        let leader = leader::spawn(etcd.clone(), node.to_string(), opts.lease_ttl);
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        let status_task = tokio::spawn(status::run(etcd.clone(), status_rx));
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        Ok(Member {
            node: node.to_string(),
            opts,
            etcd,
            reflector,
            heartbeat,
            leader: Some(leader),
            status_tx,
            status_task,
            committed_tx,
            committed_rx,
            peer: server,
            peer_client: PeerClient::new(tls.map(|t| t.client)),
            cache: ClusterCache::default(),
            agent: AgentGate::Starting,
            controllers: Gate::default(),
            health: HealthMap::new(),
            lifecycle_due: None,
            local_uids: HashMap::new(),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// The node-to-node listener's address.
    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.peer.local_addr()
    }

    /// The next event of any task. Cancel-safe (every branch is a channel
    /// receive), so the loop may select on it beside its other sources.
    pub async fn next(&mut self) -> Event {
        let leader = async {
            match self.leader.as_mut() {
                Some(l) => l.events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(r) = self.reflector.events.recv() => Event::Watch(r),
            Some(h) = self.heartbeat.events.recv() => Event::Heartbeat(h),
            Some(l) = leader => Event::Leader(l),
            Some(c) = self.committed_rx.recv() => Event::Committed(c),
        }
    }

    /// Applies one event.
    pub fn handle(&mut self, store: &mut Store, event: Event, now: Instant) -> Handled {
        let mut out = Handled::default();
        match event {
            Event::Watch(Reflected::Event { event, epoch }) => {
                let snapshot = matches!(event, crate::store::etcd::WatchEvent::Snapshot { .. });
                let applied = self.cache.apply(store, event, &self.node);
                if snapshot {
                    out.resume = self.agent.snapshot_applied(epoch);
                }
                if applied.leases && self.controllers.is_leader() {
                    self.lifecycle_due = Some(now);
                }
                out.changed = true;
            }
            Event::Watch(Reflected::Unavailable) => {}
            Event::Heartbeat(Heartbeat::Up { after_loss }) => {
                if after_loss {
                    let epoch = self.reflector.relist();
                    tracing::warn!(
                        "node {} is back after losing its lease: fencing (re-list {epoch})",
                        self.node
                    );
                    self.agent.fence(epoch);
                }
            }
            Event::Heartbeat(Heartbeat::LeaseLost) => {
                tracing::warn!(
                    "node {}: lease lost; its pods keep running until etcd answers again",
                    self.node
                );
            }
            Event::Leader(LeaderEvent::Elected { guard }) => {
                self.controllers.elected(guard);
                self.health.clear();
                self.lifecycle_due = Some(now);
                out.changed = true;
            }
            Event::Leader(LeaderEvent::Deposed) => {
                self.controllers.deposed();
                self.lifecycle_due = None;
            }
            Event::Committed(Committed { of, result }) => match of {
                CommitFor::Pass => {
                    let pass = match &result {
                        Ok(o) => PassResult::Done {
                            wait_for: o.wait_for,
                        },
                        Err(StoreError::NotLeader) => PassResult::NotLeader,
                        Err(_) => PassResult::Unavailable,
                    };
                    if let Ok(o) = &result {
                        for (kind, name, why) in &o.refused {
                            tracing::debug!("controller write to {kind}/{name} refused: {why}");
                        }
                    }
                    if let Err(e) = &result {
                        tracing::info!("controller writes: {e}");
                    }
                    self.controllers.finished(pass, now);
                    out.changed = true;
                }
                CommitFor::Request(id) => out.request = Some((id, result)),
            },
        }
        out
    }

    /// Whether the controllers may run a pass now.
    pub fn may_run_controllers(&self, now: Instant) -> bool {
        self.controllers.may_run(self.cache.revision, now)
    }

    /// Whether the node lifecycle is due (a heartbeat changed, or its
    /// eviction deadline came).
    pub fn lifecycle_due(&self, now: Instant) -> bool {
        self.lifecycle_due.is_some_and(|t| now >= t)
    }

    /// Runs the node lifecycle controller on `store` (inside the leader's
    /// pass: its changes are committed with the pass's).
    pub fn run_lifecycle(
        &mut self,
        store: &mut Store,
        wall: DateTime<Utc>,
        now: Instant,
    ) -> LifecycleRun {
        let run = lifecycle::run(
            store,
            &self.cache.alive,
            &mut self.health,
            wall,
            self.opts.pod_eviction_timeout,
        );
        self.lifecycle_due = run.requeue_after.map(|d| now + d);
        run
    }

    /// When the loop must come back although nothing happened: a pass
    /// held back by etcd's unavailability, or an eviction deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [self.controllers.retry_at(), self.lifecycle_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends a controller pass's changes (before, after per key) as
    /// leadership-guarded writes. Returns false when there was nothing to
    /// write (no commit is pending then).
    pub fn commit_pass(&mut self, changes: Vec<(Option<Object>, Option<Object>)>) -> bool {
        let writes = commit::writes(changes);
        let Some(guard) = self.controllers.guard().cloned() else {
            return false;
        };
        if writes.is_empty() {
            self.controllers.idle();
            return false;
        }
        self.controllers.started();
        self.spawn_commit(CommitFor::Pass, writes, Some(guard));
        true
    }

    /// Sends an API request's changes; the outcome comes back as
    /// [`Handled::request`] with `id`.
    pub fn commit_request(&mut self, id: u64, changes: Vec<(Option<Object>, Option<Object>)>) {
        self.spawn_commit(CommitFor::Request(id), commit::writes(changes), None);
    }

    fn spawn_commit(
        &self,
        of: CommitFor,
        writes: Vec<BatchWrite>,
        guard: Option<crate::store::etcd::LeaderGuard>,
    ) {
        let etcd = self.etcd.clone();
        let tx = self.committed_tx.clone();
        tokio::spawn(async move {
            let result = commit::commit(&etcd, &writes, guard.as_ref()).await;
            let _ = tx.send(Committed { of, result });
        });
    }

    /// Hands what the agent changed since the last call to the status
    /// writer: a report per pod of this node, a removal per pod the agent
    /// deleted after stopping it.
    pub fn report_local_changes(&mut self, store: &mut Store) {
        let node = self.node.clone();
        let mut updates = Vec::new();
        store.drain_local_changes(|kind, name, obj| {
            if kind != Kind::Pod {
                return;
            }
            match obj {
                Some(Object::Pod(p)) if p.status.node_name.as_deref() == Some(node.as_str()) => {
                    self.local_uids
                        .insert(name.to_string(), p.metadata.uid.clone());
                    updates.push(StatusUpdate::Report(StatusReport {
                        pod: name.to_string(),
                        uid: p.metadata.uid.clone(),
                        status: p.status.clone(),
                    }));
                }
                Some(_) => {}
                None => {
                    if let Some(uid) = self.local_uids.remove(name) {
                        updates.push(StatusUpdate::Removed {
                            pod: name.to_string(),
                            uid,
                        });
                    }
                }
            }
        });
        for u in updates {
            let _ = self.status_tx.send(u);
        }
    }

    /// The `HOST:PORT` of `node`'s node-to-node listener, from the cache.
    pub fn peer_address(&self, store: &Store, node: &str) -> Option<String> {
        match store.get(Kind::Node, node) {
            Some(Object::Node(n)) => n.peer_address(),
            _ => None,
        }
    }

    /// Steps down (another daemon takes the controllers over at once) and
    /// gives queued statuses a moment to go out. The node's heartbeat is
    /// left to expire: a daemon restarting within the lease keeps its
    /// node Ready and its pods where they are.
    pub async fn shutdown(mut self) {
        if let Some(leader) = self.leader.take() {
            leader.resign().await;
        }
        self.heartbeat.task.abort();
        let Member {
            status_tx,
            status_task,
            ..
        } = self;
        drop(status_tx);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), status_task).await;
    }
}
