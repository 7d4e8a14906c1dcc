//! The daemon's loop in cluster mode (`--etcd`, `[cluster]`): what
//! changes when the store is a mirror of etcd instead of the embedded
//! store. The single-host paths stay as they are; each hook here is taken
//! only when [`Daemon::cluster`] is set.
//!
//! - Start: the daemon joins through [`Member::start`]; its agent waits
//!   for the first snapshot of etcd, then re-adopts its processes from it
//!   and applies its units folder ([`Daemon::resume_agent`]).
//! - Controllers run on the leader only, on a scratch copy of the cache;
//!   what a pass changed becomes leadership-guarded compare-and-swap
//!   writes, and the next pass waits until the cache shows them
//!   ([`Daemon::settle_cluster`]). The node lifecycle runs in the same
//!   pass.
//! - The agent runs on the cache as on the embedded store; its writes
//!   become status reports ([`Member::report_local_changes`]). It pauses
//!   while the node fences after losing its lease.
//! - API requests that change something run on a scratch copy too; their
//!   writes go to etcd and the reply waits until etcd acknowledged them
//!   and the cache shows them ([`Daemon::api_in_cluster`]); what they set
//!   off (events, restarts) runs then, as it runs once the change is on
//!   disk in single-host mode. Reading a pod
//!   that runs elsewhere (its logs, its events) is asked of its node over
//!   the node-to-node channel ([`super::peer`]).
//!
//! Must not: write to the cache what etcd did not send (only the agent's
//! own pods' status, reported back), or block the loop on etcd.

use super::api::{flag, wants_usage};
use super::events::NewEvent;
use super::http::{ApiReply, ApiRequest, ApiSender};
use super::persist::AfterCommit;
use super::Daemon;
use crate::agent::logs::{ClaimError, LogDir, LogDirClaim};
use crate::agent::Outbox;
use crate::api::{EventType, Kind, Signal};
use crate::cluster::cache::pods_bound_to;
use crate::cluster::fence::{self, AgentGate, Resume};
use crate::cluster::member::{Event, Member, MemberError};
use crate::cluster::requests::{Next, Pending};
use crate::cluster::ClusterOptions;
use hyper::Method;
use std::time::Instant;
use tokio::sync::oneshot;

/// The cluster half of the daemon's state.
pub(crate) struct ClusterSide {
    pub member: Member,
    /// API requests whose writes are on their way.
    pending: Pending<Waiting>,
    /// The controllers must run again although the cache did not change
    /// (a commit finished, a timer fired, the leadership was won).
    controllers_dirty: bool,
    /// The cache's revision the last pass ran on.
    reconciled_at: u64,
    /// The log folder and this daemon's claim on it (held while the
    /// daemon runs): its stale pod folders are collected once the first
    /// snapshot says which pods exist.
    log_claim: Option<(LogDir, Result<LogDirClaim, ClaimError>)>,
}

/// Writes on their way to etcd, and what to do once they are there.
struct Waiting {
    origin: Origin,
    /// What the request set off (events, restarts of changed pods): run
    /// once etcd has the change, as single-host mode runs it once the
    /// change is on disk (`persist.rs`).
    after: AfterCommit,
}

/// An API request waiting for its writes, and the answer it will get.
struct Client {
    req: ApiRequest,
    reply: oneshot::Sender<ApiReply>,
    answer: ApiReply,
}

/// Whose writes they are.
enum Origin {
    /// An API request: answered once written.
    Client(Box<Client>),
    /// The units folder (at start, on SIGHUP): nobody waits; a conflict
    /// re-reads the folder on the fresher cache.
    UnitsFolder,
}

/// What an API request is, for cluster mode.
enum Route {
    /// Reads the cache (or local files).
    Read,
    /// Changes objects: on a scratch copy, then to etcd.
    Write,
    /// Acts on local processes (restart or signal a pod here).
    Local,
    /// About a pod on another node: asked of that node.
    Remote { node: String, addr: Option<String> },
    /// `get pods -o wide`: the list from the cache, with each pod's usage
    /// asked of the node that runs it (measured there, never stored).
    UsageOfEveryNode,
}

impl ClusterSide {
    pub(crate) async fn start(
        opts: &ClusterOptions,
        node: &str,
        labels: crate::api::Labels,
        api: ApiSender,
    ) -> Result<ClusterSide, MemberError> {
        let member = Member::start(opts.clone(), node, labels, super::peer::handler(api)).await?;
        Ok(ClusterSide {
            member,
            pending: Pending::default(),
            controllers_dirty: true,
            reconciled_at: 0,
            log_claim: None,
        })
    }

    /// Keeps the log folder's claim until the daemon stops.
    pub(crate) fn hold_log_claim(&mut self, logs: LogDir, claim: Result<LogDirClaim, ClaimError>) {
        self.log_claim = Some((logs, claim));
    }
}

impl Daemon {
    /// Whether the agent may act now (always, in single-host mode).
    pub(crate) fn agent_may_act(&self) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|c| c.member.agent.agent_may_act())
    }

    /// When the loop must wake for the cluster (a held-back pass, an
    /// eviction deadline).
    pub(crate) fn cluster_wakeup(&self) -> Option<Instant> {
        let at = self.cluster.as_ref()?.member.next_wakeup()?;
        Some(at.into_std())
    }

    /// A cluster timer fired: let the controllers run again.
    pub(crate) fn cluster_timer(&mut self) {
        if let Some(c) = &mut self.cluster {
            c.controllers_dirty = true;
        }
    }

    /// Time-driven controllers (CronJobs, Job deadlines) are due.
    pub(crate) fn cluster_controllers_due(&mut self) {
        self.cluster_timer();
    }

    /// One event of the cluster's tasks.
    pub(crate) fn on_cluster_event(&mut self, event: Event) {
        let Some(side) = self.cluster.as_mut() else {
            return;
        };
        // The pods this node runs, before the cache changes: one that
        // vanishes from etcd meanwhile (evicted while the node was cut
        // off, then seen in a re-list or in the watch it catches up on)
        // is killed at once, not after a grace period.
        let watch = matches!(event, Event::Watch(_));
        let before: Vec<(String, String)> = if watch && side.member.agent != AgentGate::Starting {
            pods_bound_to(&self.store, side.member.node())
                .filter(|p| p.status.processes.iter().any(|s| s.pid.is_some()))
                .map(|p| (p.metadata.name.clone(), p.metadata.uid.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let handled = side
            .member
            .handle(&mut self.store, event, tokio::time::Instant::now());
        if handled.changed {
            side.controllers_dirty = true;
        }
        let mut next = Vec::new();
        if let Some((id, result)) = handled.request {
            next.extend(
                side.pending
                    .committed(id, result, side.member.cache.revision),
            );
        }
        next.extend(side.pending.cache_at(side.member.cache.revision));
        if !before.is_empty() {
            self.kill_stale(&before);
        }
        if let Some(resume) = handled.resume {
            self.resume_agent(resume);
        }
        self.dispatch(next);
    }

    /// Kills, now, the pods of `before` (name, uid: what this node ran)
    /// that the cache no longer binds to this node.
    fn kill_stale(&mut self, before: &[(String, String)]) {
        let node = self.opts.node_name.clone();
        let wall = Daemon::wall();
        let source = format!("kubelet/{node}");
        let stale = fence::stale_pods(
            before.iter().map(|(n, u)| (n.as_str(), u.as_str())),
            &self.store,
            &node,
        );
        for (name, why) in &stale {
            tracing::warn!("fencing: killing pod {name}: no longer this node's ({why:?})");
            // Now, not after a grace period: its replacement may already
            // run elsewhere.
            let killed = self.kill_pod(name, Signal::KILL);
            let uid = before
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_default();
            let message = format!(
                "Killed {killed} process(es): the pod is no longer bound to node {node} \
                 ({why:?}); it was removed while the node was cut off"
            );
            let event = NewEvent {
                kind: Kind::Pod,
                name,
                uid: &uid,
                type_: EventType::Warning,
                reason: "Fenced",
                message: &message,
                source: &source,
            };
            self.events.record(event, wall);
        }
    }

    /// The agent may act again: at start, re-adopt from the first snapshot
    /// and apply the units folder; after fencing (stale pods were killed
    /// already), go on.
    fn resume_agent(&mut self, resume: Resume) {
        let mut out = Outbox::default();
        match resume {
            Resume::Start => {
                tracing::info!(
                    "cluster: first snapshot applied; re-adopting this node's processes"
                );
                self.agent.recover(&mut self.store, Daemon::now(), &mut out);
                // Before any pod starts, as in single-host mode (every pod
                // of the cluster counts as known: a folder of a pod that
                // moved here and back is kept).
                let claim = self.cluster.as_mut().and_then(|c| c.log_claim.take());
                if let Some((logs, claim)) = claim {
                    self.collect_log_folders(&logs, &claim);
                    if let Some(c) = self.cluster.as_mut() {
                        c.log_claim = Some((logs, claim));
                    }
                }
            }
            Resume::Fence => tracing::info!("cluster: fenced; the agent resumes"),
        }
        self.agent.sync(&mut self.store, Daemon::now(), &mut out);
        self.absorb(out);
        if resume == Resume::Start && self.opts.units_dir.as_ref().is_some_and(|d| d.exists()) {
            self.reload_units_in_cluster(1);
        }
    }

    /// The units folder applied to a scratch copy of the cache, its
    /// changes sent to etcd without waiting (start, SIGHUP).
    pub(crate) fn reload_units_in_cluster(&mut self, attempts: u32) {
        let mut scratch = self.store.scratch();
        std::mem::swap(&mut self.store, &mut scratch);
        let result = self.reload_units();
        std::mem::swap(&mut self.store, &mut scratch);
        let after = std::mem::take(&mut self.after_commit);
        match result {
            Ok(r) => tracing::info!("applying {} units from the units folder", r.len()),
            Err(e) => {
                tracing::error!("units folder not applied:\n{e}");
                return;
            }
        }
        let changes = scratch.diff_from(&self.store);
        let side = self.cluster.as_mut().expect("cluster mode");
        if changes.is_empty() {
            return;
        }
        let waiting = Waiting {
            origin: Origin::UnitsFolder,
            after,
        };
        let id = side.pending.add(waiting, attempts);
        side.member.commit_request(id, changes);
    }

    /// The loop's `settle` in cluster mode: the leader's controllers on a
    /// scratch copy (their changes to etcd), then the agent, then its
    /// reports.
    pub(crate) fn settle_cluster(&mut self) {
        let now = tokio::time::Instant::now();
        let wall = Daemon::wall();
        let Some(side) = self.cluster.as_mut() else {
            return;
        };
        let due = side.controllers_dirty || self.store.revision() != side.reconciled_at;
        if !self.halting && due && side.member.may_run_controllers(now) {
            side.controllers_dirty = false;
            side.reconciled_at = self.store.revision();
            let mut scratch = self.store.scratch();
            let run = side.member.run_lifecycle(&mut scratch, wall, now);
            for n in run.notices {
                let type_ = if n.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                let event = NewEvent {
                    kind: n.kind,
                    name: &n.name,
                    uid: &n.uid,
                    type_,
                    reason: &n.reason,
                    message: &n.message,
                    source: "node-controller",
                };
                self.events.record(event, wall);
            }
            let pass = super::reconcile::run_controllers(&mut scratch, &mut self.events, wall);
            let changes = scratch.diff_from(&self.store);
            let side = self.cluster.as_mut().expect("checked");
            // Cut short by a burst cap: another pass once these writes are
            // in the cache (the next pass waits for them anyway).
            side.controllers_dirty |= pass.requeue;
            side.member.commit_pass(changes);
        }
        let side = self.cluster.as_ref().expect("checked");
        if !self.halting && side.member.agent.agent_may_act() {
            let mut out = Outbox::default();
            let now = crate::agent::Now {
                mono: Instant::now(),
                wall,
            };
            self.agent.sync(&mut self.store, now, &mut out);
            self.absorb(out);
        }
        let side = self.cluster.as_mut().expect("checked");
        side.member.report_local_changes(&mut self.store);
    }

    /// An API request in cluster mode (see the module comment).
    pub(crate) fn api_in_cluster(
        &mut self,
        req: ApiRequest,
        reply: oneshot::Sender<ApiReply>,
        attempts: u32,
    ) {
        match self.route(&req) {
            Route::Read => {
                let _ = reply.send(self.handle_api(req));
            }
            Route::Local => {
                // A signal or a restart here: nothing to write first.
                let answer = self.handle_api(req);
                let after = std::mem::take(&mut self.after_commit);
                self.run_after_commit(after);
                let _ = reply.send(answer);
            }
            Route::UsageOfEveryNode => {
                let local = self.handle_api(req.clone());
                if local.status != 200 {
                    let _ = reply.send(local);
                    return;
                }
                let side = self.cluster.as_ref().expect("cluster mode");
                let me = self.opts.node_name.as_str();
                let nodes: std::collections::BTreeSet<&str> = self
                    .store
                    .pods()
                    .filter_map(|p| p.status.node_name.as_deref())
                    .filter(|n| *n != me)
                    .collect();
                let peers = nodes
                    .into_iter()
                    .filter_map(|n| {
                        Some((n.to_string(), side.member.peer_address(&self.store, n)?))
                    })
                    .collect();
                let client = side.member.peer_client.clone();
                tokio::spawn(super::peer::fill_usage(client, peers, local, reply));
            }
            Route::Remote { node, addr } => {
                // The caller is known here only: this node decides.
                if let Err(refused) = self.may_read(&req.caller) {
                    let _ = reply.send(refused);
                    return;
                }
                let Some(addr) = addr else {
                    let _ = reply.send(ApiReply::error(
                        503,
                        format!("node {node} has not published its node-to-node address"),
                    ));
                    return;
                };
                let client = self
                    .cluster
                    .as_ref()
                    .expect("cluster mode")
                    .member
                    .peer_client
                    .clone();
                // Merged with this node's own events, if that is the ask.
                let local = events_request(&req).then(|| self.handle_api(req.clone()));
                tokio::spawn(super::peer::ask(client, node, addr, req, local, reply));
            }
            Route::Write => {
                let mut scratch = self.store.scratch();
                std::mem::swap(&mut self.store, &mut scratch);
                let answer = self.handle_api(req.clone());
                std::mem::swap(&mut self.store, &mut scratch);
                let after = std::mem::take(&mut self.after_commit);
                let changes = scratch.diff_from(&self.store);
                let side = self.cluster.as_mut().expect("cluster mode");
                if changes.is_empty() || answer.status >= 400 {
                    // Nothing to write (or refused): nothing was set off.
                    let _ = reply.send(answer);
                    return;
                }
                let waiting = Waiting {
                    origin: Origin::Client(Box::new(Client { req, reply, answer })),
                    after,
                };
                let id = side.pending.add(waiting, attempts);
                side.member.commit_request(id, changes);
            }
        }
    }

    fn route(&self, req: &ApiRequest) -> Route {
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let local_only = req.query.contains_key(super::peer::LOCAL_ONLY);
        let remote = |name: &str| -> Option<Route> {
            if local_only {
                return None;
            }
            let pod = self.store.pod(name)?;
            let node = pod.status.node_name.as_deref()?;
            if node == self.opts.node_name {
                return None;
            }
            let addr = self
                .cluster
                .as_ref()?
                .member
                .peer_address(&self.store, node);
            Some(Route::Remote {
                node: node.to_string(),
                addr,
            })
        };
        match (&req.method, segs.as_slice()) {
            // A `logs -f` of a pod on another node is relayed as it comes.
            (&Method::GET, ["pods", name, "logs"]) => remote(name).unwrap_or(Route::Read),
            // Usage is measured where the pod runs.
            (&Method::GET, ["pods", name]) if wants_usage(req) => {
                remote(name).unwrap_or(Route::Read)
            }
            (&Method::GET, ["pods"]) if wants_usage(req) && !local_only => Route::UsageOfEveryNode,
            (&Method::GET, ["events"]) => {
                let target = req.query.get("for").and_then(|f| f.split_once('/'));
                match target {
                    Some((kind, name)) if Kind::from_cli(kind) == Some(Kind::Pod) => {
                        remote(name).unwrap_or(Route::Read)
                    }
                    _ => Route::Read,
                }
            }
            (&Method::GET, _) => Route::Read,
            (&Method::POST, ["pods", _, "restart"]) | (&Method::POST, [_, _, "kill"]) => {
                Route::Local
            }
            _ => Route::Write,
        }
    }

    /// Sends or re-runs requests whose writes came back.
    fn dispatch(&mut self, next: Vec<Next<Waiting>>) {
        for n in next {
            match n {
                Next::Reply(w) => {
                    self.run_after_commit(w.after);
                    if let Origin::Client(c) = w.origin {
                        let _ = c.reply.send(c.answer);
                    }
                }
                Next::Retry { item, attempts } => match item.origin {
                    Origin::Client(c) => {
                        tracing::debug!("retrying {:?} after a conflict", c.req.segments);
                        self.api_in_cluster(c.req, c.reply, attempts);
                    }
                    Origin::UnitsFolder => self.reload_units_in_cluster(attempts),
                },
                Next::Conflict { item, refused } => match item.origin {
                    Origin::Client(c) => {
                        let _ = c.reply.send(ApiReply::error(
                            409,
                            format!(
                                "the object changed while the request was applied, again and \
                                 again ({refused}); nothing was changed: try again"
                            ),
                        ));
                    }
                    Origin::UnitsFolder => tracing::error!(
                        "units folder not applied: its objects kept changing ({refused}); \
                         daemon-reload to try again"
                    ),
                },
                Next::Failed { item, error } => match item.origin {
                    Origin::Client(c) => {
                        let _ = c.reply.send(ApiReply::error(
                            503,
                            format!("etcd: {error} (the change may or may not have been made)"),
                        ));
                    }
                    Origin::UnitsFolder => tracing::error!(
                        "units folder: etcd: {error} (the change may or may not have been \
                         made; daemon-reload to try again)"
                    ),
                },
            }
        }
    }

    /// `GET /v1/cluster`: this daemon's view of the cluster.
    pub(crate) fn cluster_info(&self) -> ApiReply {
        let Some(side) = &self.cluster else {
            return ApiReply::json(
                200,
                &serde_json::json!({"mode": "single-host", "node": self.opts.node_name}),
            );
        };
        let m = &side.member;
        ApiReply::json(
            200,
            &serde_json::json!({
                "mode": "cluster",
                "node": m.node(),
                "leader": m.cache.leader,
                "leading": m.controllers.is_leader(),
                "alive": m.cache.alive,
                "revision": m.cache.revision,
                "agent": format!("{:?}", m.agent),
                "etcd": m.options().etcd.endpoints,
                "peer": m.peer_addr().to_string(),
            }),
        )
    }

    /// Leaves the cluster: hands the leadership over at once.
    pub(crate) async fn leave_cluster(&mut self) {
        if let Some(side) = self.cluster.take() {
            side.member.shutdown().await;
        }
    }

    /// The node name this daemon's units folder is scoped to in a cluster
    /// (every node has its own folder; one's reload must not prune
    /// another's units).
    pub(crate) fn units_node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.member.node())
    }
}

/// `logs -f` (and not of the previous run, which is over), as the API
/// reads it.
pub(super) fn follows(req: &ApiRequest) -> bool {
    flag(req, "follow") && !flag(req, "previous")
}

fn events_request(req: &ApiRequest) -> bool {
    req.segments.len() == 1 && req.segments[0] == "events"
}
