//! The daemon: wires the store, the controllers and the node agent into one
//! event loop, and serves the HTTP+JSON API on the control socket.
//!
//! One task owns all state ([`Daemon`]); everything else sends it
//! messages: SIGCHLD (reap), pidfd exits of re-adopted processes, API
//! requests, timers (backoff, grace periods), SIGHUP (reload), SIGTERM and
//! SIGINT (stop). Nothing polls: with no events and no timers the loop
//! sleeps in the kernel.

pub mod accounts;
mod api;
pub mod apply;
pub mod auth;
mod cluster;
pub mod connections;
pub mod events;
pub mod http;
mod lifecycle;
pub mod log_limit;
mod log_stream;
mod peer;
mod persist;
mod reaping;
pub mod reconcile;
mod reexec;
pub mod startup;
mod systemd_notify;

pub use crate::agent::backoff::BackoffConfig;
use crate::agent::host::HostAgent;
use crate::agent::{Now, Outbox};
use crate::api::{EventType, Kind, Signal};
use crate::store::Store;
use events::{EventLog, NewEvent};
use std::path::PathBuf;
use std::time::Instant;

/// Everything `drover daemon` and `drover up` are started with.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// The units folder: applied at start and on reload; its files own
    /// their units (a removed file deletes its unit).
    pub units_dir: Option<PathBuf>,
    pub node_name: String,
    /// Labels of this node (from the config file).
    pub node_labels: std::collections::BTreeMap<String, String>,
    pub log_dir: PathBuf,
    /// `drover up`: stream every pod's log lines to stdout with a
    /// `POD/PROCESS | ` prefix, and stop every pod on Ctrl-C / SIGTERM
    /// before exiting. (`drover daemon` exits on SIGTERM leaving its
    /// processes running, to re-adopt them when it starts again.)
    pub foreground: bool,
    /// Size at which a process log is rotated (copy-truncate).
    pub log_max_bytes: u64,
    /// Restart pacing for crashing processes (config file keys
    /// `backoff_initial`, `backoff_max`, `backoff_reset`).
    pub backoff: BackoffConfig,
    /// Cluster mode (`--etcd`, `[cluster]`); None: single host.
    pub cluster: Option<crate::cluster::ClusterOptions>,
    /// The group whose members may use the control socket (config key
    /// `socket_group`, default `drover`): it owns the socket and the log
    /// dir, and membership decides what a caller may do (`auth`).
    pub socket_group: String,
}

/// Runs the daemon until it is told to stop. Builds its own tokio runtime
/// (one thread: all state lives in one task, so a second worker would only
/// cost memory).
pub fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    // First `drover daemon` is the keeper, which runs the daemon (this
    // binary again) as its child and outlives it (`runtime::keeper`).
    if let Some(code) = crate::agent::host::run_as_keeper() {
        std::process::exit(code);
    }
    // The loop runs on this thread (`block_on`), and everything it spawns
    // (the control socket's connections, network probes) on one worker
    // thread: with a single thread, each step of a connection (accept,
    // read, every socket-buffer of a large answer) waited for a whole
    // turn of the loop, and a mass exit's turns made `get pods` take
    // seconds (`benches/scale_to_zero.py`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("drover-io")
        .enable_all()
        .build()?;
    rt.block_on(lifecycle::run(opts))
}

/// The state the loop owns.
pub(crate) struct Daemon {
    pub opts: DaemonOptions,
    pub store: Store,
    pub agent: HostAgent,
    pub events: EventLog,
    /// Revision at which the controllers last ran.
    pub reconciled_at: u64,
    /// Network probes to start as tasks (drained by the loop).
    pub pending_checks: Vec<crate::agent::CheckRequest>,
    /// `drover up` is stopping everything.
    pub halting: bool,
    /// A controller stopped short of its goal (the burst cap): the loop
    /// runs them again as soon as pending events had their turn.
    pub requeue: bool,
    /// The last reap left exits for another turn (`reaping.rs`).
    pub reap_more: bool,
    /// The agent's last sync left pods for another turn
    /// ([`crate::agent::SYNC_BATCH`]).
    pub sync_more: bool,
    /// When the controllers last ran (`settle`).
    pub controllers_ran: Option<Instant>,
    /// What the API request being answered sets off once its change is
    /// durable (`persist.rs`).
    pub after_commit: persist::AfterCommit,
    /// When to persist what the daemon changed on its own.
    pub pacing: persist::Pacing,
    /// `logs -f` streams, ended when their pod is deleted or finishes.
    pub log_follows: log_stream::Follows,
    /// Cluster mode: the store is a mirror of etcd (`cluster.rs`).
    pub cluster: Option<cluster::ClusterSide>,
    /// `daemon-reexec`: this image, and a re-exec asked for (`reexec.rs`).
    pub reexec: reexec::Reexec,
}

impl Daemon {
    pub fn wall() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// Both clocks, read once for one event.
    pub fn now() -> Now {
        Now {
            mono: Instant::now(),
            wall: Self::wall(),
        }
    }

    /// Takes what the agent asked for: network checks to run, events.
    pub fn absorb(&mut self, out: Outbox) {
        self.pending_checks.extend(out.checks);
        let source = format!("kubelet/{}", self.opts.node_name);
        let now = Self::wall();
        for n in out.notes {
            let type_ = if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            let event = NewEvent {
                kind: Kind::Pod,
                name: &n.pod,
                uid: &n.pod_uid,
                type_,
                reason: &n.reason,
                message: &n.message,
                source: &source,
            };
            self.events.record(event, now);
        }
    }

    /// `drover restart pod`: false if the pod does not run on this node
    /// or is being deleted.
    pub fn restart_pod(&mut self, name: &str) -> bool {
        let mut out = Outbox::default();
        let ok = self
            .agent
            .restart_pod(&mut self.store, name, Self::now(), &mut out);
        self.absorb(out);
        ok
    }

    /// A pod whose spec an apply changed: its processes restart in place,
    /// once (see `Agent::restart_if_spec_changed`).
    pub fn restart_if_spec_changed(&mut self, name: &str) -> bool {
        let mut out = Outbox::default();
        let restarted =
            self.agent
                .restart_if_spec_changed(&mut self.store, name, Self::now(), &mut out);
        self.absorb(out);
        restarted
    }

    /// `drover kill`: how many processes of the pod were signalled.
    pub fn kill_pod(&mut self, name: &str, signal: Signal) -> usize {
        self.agent
            .kill_pod(&mut self.store, name, signal, Self::now())
    }

    /// With `-o wide`: CPU and memory of each pod's processes, measured
    /// now by the node's runtime (never stored).
    pub fn fill_usage(&self, pod: &mut crate::api::Pod) {
        self.agent.fill_usage(pod);
    }

    /// Controllers until nothing changes (bounded), then the agent.
    /// `backend`: where pods the controllers made are written before
    /// their processes start (single host; None in cluster mode, where
    /// they are in etcd before this node sees them).
    pub fn settle(&mut self, mut backend: Option<&mut dyn crate::store::Backend>) {
        if self.cluster.is_some() {
            return self.settle_cluster();
        }
        // A mass exit or stop worked through a batch per turn: the
        // controllers (a walk over every object) see its changes every
        // CONTROLLERS_WHILE_BUSY, not after every batch.
        let busy = self.reap_more || self.sync_more;
        let controllers_wait = busy
            && self
                .controllers_ran
                .is_some_and(|at| at.elapsed() < CONTROLLERS_WHILE_BUSY);
        let mut synced = false;
        for _ in 0..4 {
            if controllers_wait || self.store.revision() == self.reconciled_at {
                break;
            }
            let before = self.store.revision();
            let now = Self::wall();
            if !self.halting {
                let pass = reconcile::run_controllers(&mut self.store, &mut self.events, now);
                self.controllers_ran = Some(Instant::now());
                self.requeue = pass.requeue;
                // New pods durable before their processes start: after a
                // crash, a pod whose start was not saved is found again by
                // its marker, but a pod that was never saved is gone, and a
                // process of it that already finished its work (a Job's
                // index) would be run again (benches/crash_stress.py).
                // Only new pods: restarts and statuses keep their pacing.
                if let Some(b) = backend.as_deref_mut() {
                    if self.store.has_unsaved_new_pods() {
                        self.persist_paced(b, "new pods");
                    }
                }
            }
            self.sync_agent(true);
            synced = true;
            // The pass itself changed the store (pods created, statuses
            // written): go round again so the controllers see it (ready
            // counts, adoption), until a pass changes nothing.
            self.reconciled_at = before;
            if self.sync_more {
                // Pods left for the next turns of the loop, after what
                // else is ready; the controllers see this pass's changes
                // then (`reconciled_at` is behind).
                return;
            }
        }
        if !synced && self.sync_more {
            self.sync_agent(false);
        }
        if controllers_wait || self.sync_more {
            return;
        }
        // Bounded: a pass that keeps changing things is picked up again by
        // the next event rather than spinning here; one that asked for a
        // requeue is picked up by the loop at once (`requeue`).
        self.reconciled_at = self.store.revision();
    }

    /// The agent attends to the pods that need it, for at most
    /// [`TURN_BUDGET`]; `sync_more` says whether some are left. `rescan`:
    /// the store changed, look at every pod (else: go on with those left).
    fn sync_agent(&mut self, rescan: bool) {
        if self.halting {
            self.sync_more = false;
            return;
        }
        let start = Instant::now();
        let mut out = Outbox::default();
        let mut rescan = rescan;
        loop {
            self.sync_more = self
                .agent
                .sync_some(&mut self.store, Self::now(), &mut out, rescan);
            rescan = false;
            if !self.sync_more || start.elapsed() >= TURN_BUDGET {
                break;
            }
        }
        self.absorb(out);
    }
}

/// How long a turn of the loop works through a backlog (exits to reap,
/// pods to stop or start) before it serves what else is ready: API
/// requests wait at most about this long behind 5,000 pods scaled to 0.
pub const TURN_BUDGET: std::time::Duration = std::time::Duration::from_millis(5);

/// How often the controllers run while such a backlog lasts.
pub const CONTROLLERS_WHILE_BUSY: std::time::Duration = std::time::Duration::from_millis(100);
