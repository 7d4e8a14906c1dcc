//! Start-up, the event loop and shutdown.
//!
//! Start-up order matters for re-adoption: the store is loaded and the
//! node agent re-adopts live processes (verifying pid + start time) BEFORE
//! the units folder is applied or any controller runs, so a restarted
//! daemon never starts a duplicate of a process that is still running.
//!
//! `daemon-reexec` (`reexec.rs`) ends an image without ending the loop's
//! process: the next image starts here again, with the listening socket
//! and the state dir's lock handed over, and finds every process alive
//! as its own child.

use super::accounts::{etc_group_gid, Accounts};
use super::connections::Limits;
use super::http::{self, ApiReply, ApiRequest};
use super::{startup, Daemon, DaemonOptions};
use crate::agent::host::{self, Wakeup};
use crate::agent::logs::{ClaimError, LogDir, LogDirClaim};
use crate::agent::{AgentConfig, Outbox};
use crate::api::{Kind, Node, NodeCondition, NodeSpec, NodeStatus, Object, ObjectMeta};
use crate::store::embedded::EmbeddedBackend;
use crate::store::{Backend, Store};
use anyhow::Context;
use nix::fcntl::Flock;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    // A re-executed image: what the previous one handed over (`reexec.rs`).
    let mut handover = host::Handover::from_env();
    // Before the notifier takes the service manager's variables away.
    let reexec = super::reexec::Reexec::at_start();
    let mut systemd = super::systemd_notify::SystemdNotify::from_env();
    let fds = startup::raise_fd_limit();
    tracing::info!(
        "file descriptor limit: {} (was {}, hard limit {})",
        fds.soft,
        fds.was,
        fds.hard
    );
    startup::prepare_state_dir(&opts.state_dir)?;
    let lock = lock_state_dir(&opts.state_dir, handover.take("lock"))?;
    host::tune_allocator();

    let mut backend = EmbeddedBackend::open(&opts.state_dir)?;
    // In a cluster the store is a cache of etcd, filled by its watch.
    let store = match &opts.cluster {
        Some(_) => Store::mirror(),
        None => Store::load(&mut backend)?,
    };
    let (instance, fresh_instance) = instance_id(&opts.state_dir)?;

    let group_gid = etc_group_gid(&opts.socket_group);
    let listener = match handover.take("listen") {
        Some(fd) => inherited_listener(fd, &opts.socket, group_gid)?,
        None => bind_socket(&opts.socket, group_gid)?,
    };
    // Kept to hand the socket to the next image (`daemon-reexec`): the
    // accept task that owns `listener` is stopped before the exec.
    let listener_fd = std::os::fd::AsFd::as_fd(&listener).try_clone_to_owned()?;
    // This daemon's own, named after its control socket (issue 9: two
    // daemons whose sockets share a folder shared one notify.sock).
    let notify_path = crate::agent::notify::path_for(&opts.socket);
    let notify = crate::agent::notify::NotifySocket::bind(&notify_path)
        .with_context(|| format!("binding notify socket {}", notify_path.display()))?;
    let logs = LogDir::new(opts.log_dir.clone(), opts.log_max_bytes);
    startup::prepare_log_dir(&opts.log_dir, group_gid)?;
    let own_default = opts.log_dir == crate::paths::default_log_dir(&opts.state_dir);
    let log_claim = logs.claim(own_default);
    // Before any spawn: the SIGCHLD handler is installed here, so no
    // child's exit can come before it.
    let (agent, mut wakeups) = host::start(AgentConfig {
        node_name: opts.node_name.clone(),
        logs: logs.clone(),
        backoff: opts.backoff,
        base_env: crate::agent::env::base_env_from_daemon(),
        probe_port_is_free: true,
        notify_socket: Some(notify_path.clone()),
        instance,
        background_log_removal: true,
    })
    .context("starting the node agent")?;
    let mut d = Daemon {
        opts: opts.clone(),
        store,
        agent,
        events: Default::default(),
        reconciled_at: 0,
        pending_checks: vec![],
        halting: false,
        requeue: false,
        reap_more: false,
        sync_more: false,
        controllers_ran: None,
        after_commit: Default::default(),
        pacing: Default::default(),
        log_follows: Default::default(),
        cluster: None,
        reexec,
    };
    if d.reexec.generation > 0 {
        tracing::info!(
            "re-executed in place (pid {}, re-exec #{}): taking over this process's children",
            std::process::id(),
            d.reexec.generation
        );
    }
    let (api_tx, mut api_rx) = mpsc::channel::<(ApiRequest, oneshot::Sender<ApiReply>)>(64);
    if let Some(c) = &opts.cluster {
        let side = super::cluster::ClusterSide::start(
            c,
            &opts.node_name,
            opts.node_labels.clone(),
            api_tx.clone(),
        )
        .await
        .context("joining the cluster")?;
        d.cluster = Some(side);
    }
    let single_host = d.cluster.is_none();

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;

    if d.opts.foreground {
        // Started (and given a turn to set up its watches) before any pod,
        // so every line of every pod this `up` starts is shown.
        let root = d.opts.log_dir.clone();
        tokio::spawn(async move {
            use std::io::Write;
            let _ = crate::agent::logs::stream_all(&root, |pod, process, line| {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{pod}/{process} | ");
                let _ = out.write_all(line);
                let _ = out.write_all(b"\n");
            })
            .await;
        });
    }
    tokio::task::yield_now().await;
    if let Some(side) = &mut d.cluster {
        // The node registers through its heartbeat; the agent re-adopts,
        // collects log folders and applies the units folder once the
        // first snapshot of etcd is in (`cluster.rs`).
        side.hold_log_claim(logs.clone(), log_claim);
    } else {
        register_node(&mut d);
        // Re-adopt what is still running before anything else can start
        // pods: first processes whose start never reached the state file,
        // then every recorded one.
        let mut out = Outbox::default();
        if !fresh_instance {
            // (A new instance id is carried by no process yet: no /proc scan.)
            d.agent.recover(&mut d.store, Daemon::now(), &mut out);
        }
        // Before any pod starts: the log folders of pods the store does
        // not know (created, then the daemon died before it wrote them
        // down).
        d.collect_log_folders(&logs, &log_claim);
        d.agent.sync(&mut d.store, Daemon::now(), &mut out);
        if d.reexec.generation > 0 {
            // Children that exited during the exec and that no recorded
            // run claimed (an exec probe, a descendant): reaped now, as
            // their SIGCHLD came before this image had a handler.
            d.reap_all_children(
                single_host.then_some(&mut backend as &mut dyn Backend),
                &mut out,
            );
        }
        d.absorb(out);
        if let Some(dir) = d.opts.units_dir.clone() {
            if dir.exists() {
                match d.reload_units_durably(&mut backend) {
                    Ok(results) => {
                        tracing::info!("applied {} units from {}", results.len(), dir.display())
                    }
                    Err(e) => {
                        if d.opts.foreground {
                            anyhow::bail!("{e}");
                        }
                        tracing::error!("units folder {} not applied:\n{e}", dir.display());
                    }
                }
            } else if d.opts.foreground {
                anyhow::bail!("units folder {} does not exist", dir.display());
            }
        }
    }
    d.settle(single_host.then_some(&mut backend as &mut dyn Backend));

    let door = http::FrontDoor {
        limits: Limits::for_fd_limit(fds.soft),
        daemon_uid: nix::unistd::geteuid().as_raw(),
        daemon_name: Accounts::read()
            .user_name(nix::unistd::geteuid().as_raw())
            .map(str::to_string),
        group: d.opts.socket_group.clone(),
    };
    tracing::info!(
        "control socket: at most {} connections",
        door.limits.max_connections
    );
    let mut serving = tokio::spawn(http::serve(
        listener,
        api_tx.clone(),
        d.store.subscribe(),
        door.clone(),
    ));
    let (probe_tx, mut probe_rx) =
        mpsc::unbounded_channel::<(crate::agent::ProbeKey, crate::agent::probe::ProbeResult)>();
    // Replies to API requests wait until what they changed is on disk: an
    // acknowledged `scale` survives a `kill -9` right after.
    let mut replies: Vec<(oneshot::Sender<ApiReply>, ApiReply)> = vec![];
    let mut controllers_due: Option<Instant> = None;
    let mut wakeup_rev: Option<u64> = None;
    tokio::spawn(crate::agent::logs::watch_sizes(logs));
    tracing::info!(
        "drover {} serving on {} (node {}, state {})",
        env!("CARGO_PKG_VERSION"),
        d.opts.socket.display(),
        d.opts.node_name,
        d.opts.state_dir.display()
    );
    systemd.ready(&d.store, &d.opts.node_name);
    wakeups.serving();

    let mut started_up = false;
    loop {
        // Durability. Whatever an API request changed was persisted (or
        // refused and undone) before its reply was queued (`persist.rs`);
        // what the controllers did about it is written before the reply
        // goes out too. What only the agent changed (pids, restart counts)
        // is written at most every PERSIST_EVERY: a crash loop of many
        // pods must not serialise the whole store per exit, and a process
        // started but not yet written is found again by `recover` after a
        // restart. While writes fail (a full disk), attempts back off and
        // supervision goes on.
        let mut persist_due: Option<Instant> = None;
        if single_host && d.store.is_dirty() {
            let now = Instant::now();
            if d.pacing.should_persist(now, !replies.is_empty(), d.halting) {
                d.persist_paced(&mut backend, "state");
            }
            if d.store.is_dirty() {
                persist_due = d.pacing.due_at();
            }
        }
        if !started_up && (!single_host || !d.store.is_dirty()) {
            // What was found at start is running and on disk.
            host::release_startup_memory();
            started_up = true;
        }
        for (reply, answer) in replies.drain(..) {
            let _ = reply.send(answer);
        }
        if std::mem::take(&mut d.reexec.requested) {
            // Returns only if the exec failed: then serving goes on.
            let failed = reexec_in_place(
                &mut d,
                single_host.then_some(&mut backend as &mut dyn Backend),
                &mut serving,
                &mut api_rx,
                &listener_fd,
                &lock,
            )
            .await;
            tracing::error!("daemon-reexec failed, going on as before: {failed:#}");
            match restart_serving(&listener_fd) {
                Ok(listener) => {
                    serving = tokio::spawn(http::serve(
                        listener,
                        api_tx.clone(),
                        d.store.subscribe(),
                        door.clone(),
                    ))
                }
                Err(e) => anyhow::bail!("serving the control socket again: {e}"),
            }
        }
        d.log_follows.end_finished(&d.store);
        for req in d.pending_checks.drain(..) {
            let tx = probe_tx.clone();
            tokio::spawn(async move {
                let result = crate::agent::probe_net::run(req.check).await;
                let _ = tx.send((req.key, result));
            });
        }
        if d.halting && !d.agent.anything_running() {
            break;
        }
        let next_timer = d.agent.next_deadline();
        let agent_may_act = d.agent_may_act();
        let cluster_due = d.cluster_wakeup();
        // Controllers that wait on the clock (CronJob schedules, Job
        // backoff, deadlines, TTLs) say when; nothing else polls. Asked
        // again only when the store changed: a probe result or a timer
        // that changes nothing must not cost a walk over every object.
        if wakeup_rev != Some(d.store.revision()) {
            let wall = Daemon::wall();
            controllers_due = if d.halting {
                None
            } else {
                super::reconcile::next_wakeup(&d.store, wall)
                    .map(|at| Instant::now() + (at - wall).to_std().unwrap_or_default())
            };
            wakeup_rev = Some(d.store.revision());
        }
        if std::mem::take(&mut d.requeue) && !d.halting {
            // A controller was cut short by its burst cap: another pass
            // now, after whatever else is ready (select! picks among ready
            // branches at random, so API requests are not starved).
            controllers_due = Some(Instant::now());
        }
        tokio::select! {
            ev = cluster_event(&mut d.cluster) => d.on_cluster_event(ev),
            wakeup = wakeups.next(), if agent_may_act => {
                let mut out = Outbox::default();
                let mut keeper_gone = false;
                match wakeup {
                    Wakeup::KeeperGone => keeper_gone = true,
                    Wakeup::Reap => d.reap_children(
                        single_host.then_some(&mut backend as &mut dyn Backend),
                        &mut out,
                    ),
                    Wakeup::AdoptedExit(pid) => {
                        d.agent.on_adopted_exit(&mut d.store, pid, Daemon::now(), &mut out)
                    }
                    Wakeup::Halt => d.halt(),
                    Wakeup::Files => d.agent.on_files(&mut d.store, Daemon::now(), &mut out),
                }
                d.absorb(out);
                if keeper_gone && d.keeper_gone() {
                    break;
                }
            }
            Ok(n) = notify.recv(), if agent_may_act => {
                let mut out = Outbox::default();
                d.agent.on_notify(&mut d.store, n, Daemon::now(), &mut out);
                d.absorb(out);
            }
            Some((key, result)) = probe_rx.recv(), if agent_may_act => {
                let mut out = Outbox::default();
                d.agent.on_probe_result(&mut d.store, key, result, Daemon::now(), &mut out);
                d.absorb(out);
            }
            Some((req, reply)) = api_rx.recv() => {
                if single_host {
                    let answer = d.serve_api(req, &mut backend);
                    replies.push((reply, answer));
                } else {
                    // Answered once etcd has it (`cluster.rs`).
                    d.api_in_cluster(req, reply, 1);
                }
            }
            // Work left by the last batch, after a yield: what else is
            // ready (an API request, another pod's exit, a timer) goes
            // first, and the worker thread's connection tasks get the
            // answers out meanwhile.
            _ = tokio::task::yield_now(), if agent_may_act && d.reap_more => {
                // Exits left by the last batch (`reaping.rs`).
                let mut out = Outbox::default();
                d.reap_children(
                    single_host.then_some(&mut backend as &mut dyn Backend),
                    &mut out,
                );
                d.absorb(out);
            }
            // Pods left by the last batch: `settle` below attends to them.
            _ = tokio::task::yield_now(), if agent_may_act && d.sync_more => {}
            _ = sleep_until(next_timer), if agent_may_act => d.fire_timers(),
            _ = sleep_until(cluster_due) => d.cluster_timer(),
            _ = sleep_until(persist_due) => {}
            _ = sleep_until(controllers_due) => {
                // Nothing changed in the store, but time passed: run the
                // controllers regardless, then ask again when to wake.
                d.reconciled_at = 0;
                d.cluster_controllers_due();
                wakeup_rev = None;
            }
            _ = sighup.recv() => {
                if single_host {
                    if let Err(e) = d.reload_units_durably(&mut backend) {
                        tracing::error!("reload: units folder not applied:\n{e}");
                    }
                } else {
                    d.reload_units_in_cluster(1);
                }
            }
            _ = sigterm.recv() => { if d.shutdown() { break; } }
            _ = sigint.recv() => { if d.shutdown() { break; } }
        }
        d.settle(single_host.then_some(&mut backend as &mut dyn Backend));
        systemd.update(&d.store, &d.opts.node_name);
    }

    systemd.stopping();
    if d.halting && !d.opts.foreground && single_host {
        d.agent.park_halted(&mut d.store);
        // A stopped service leaves no cgroup behind, as systemd removes a
        // stopped unit's; the next start makes its root again.
        d.agent.release_cgroups();
    }
    if d.opts.foreground && single_host {
        // `up` leaves no pods behind: the next `up` starts from its units.
        let pods: Vec<String> = d.store.pods().map(|p| p.metadata.name.clone()).collect();
        for p in pods {
            d.store.delete(Kind::Pod, &p);
        }
        d.agent.release_cgroups();
    }
    if single_host {
        d.store.persist_all(&mut backend)?;
    }
    d.leave_cluster().await;
    let _ = std::fs::remove_file(&d.opts.socket);
    let _ = std::fs::remove_file(notify.path());
    tracing::info!("drover stopped");
    Ok(())
}

/// `daemon-reexec`, asked for and answered: stop accepting (new clients
/// wait in the socket's backlog for the next image), refuse what is
/// queued, persist, let the answers out, exec (`reexec.rs`). Returns why
/// it did not happen; on success it never returns.
async fn reexec_in_place(
    d: &mut Daemon,
    backend: Option<&mut dyn Backend>,
    serving: &mut tokio::task::JoinHandle<()>,
    api_rx: &mut mpsc::Receiver<(ApiRequest, oneshot::Sender<ApiReply>)>,
    listener: &OwnedFd,
    lock: &Flock<std::fs::File>,
) -> anyhow::Error {
    serving.abort();
    while let Ok((_, reply)) = api_rx.try_recv() {
        let _ = reply.send(ApiReply::error(
            503,
            "the daemon is re-executing itself: try again in a moment",
        ));
    }
    if let Err(e) = d.prepare_reexec(backend) {
        return e.context("persisting the state before the exec");
    }
    // The connection tasks, on the runtime's worker thread, write the
    // answers already made (the 202 of the request among them): a few
    // hundred bytes on a local socket, well inside this pause. One cut
    // by the exec is no error: the CLI then waits for the new image all
    // the same (`cli/reexec.rs`).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let failed = d.exec_in_place(&[("listen", listener.as_fd()), ("lock", (**lock).as_fd())]);
    anyhow::Error::new(failed)
}

/// The control socket served again from the descriptor kept for the
/// next image (a re-exec that failed).
fn restart_serving(listener: &OwnedFd) -> std::io::Result<tokio::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::from(listener.try_clone()?);
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

/// The control socket the previous image of this process listened on
/// (`daemon-reexec`): clients that connected during the exec are in its
/// backlog. Bound anew if it is not the socket at `path` any more.
fn inherited_listener(
    fd: OwnedFd,
    path: &std::path::Path,
    group: Option<u32>,
) -> anyhow::Result<tokio::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::from(fd);
    let bound = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(std::path::Path::to_path_buf));
    if bound.as_deref() != Some(path) || !path.exists() {
        tracing::warn!(
            "the control socket handed over is not {} any more: binding it anew",
            path.display()
        );
        drop(listener);
        return bind_socket(path, group);
    }
    listener.set_nonblocking(true)?;
    Ok(tokio::net::UnixListener::from_std(listener)?)
}

/// The next event of the cluster's tasks (never, in single-host mode).
async fn cluster_event(
    cluster: &mut Option<super::cluster::ClusterSide>,
) -> crate::cluster::member::Event {
    match cluster {
        Some(c) => c.member.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Removes the log folders of pods the store does not know (created,
    /// then the daemon died before it wrote them down). Before any pod
    /// starts.
    pub(crate) fn collect_log_folders(
        &self,
        logs: &LogDir,
        claim: &Result<LogDirClaim, ClaimError>,
    ) {
        match claim {
            Ok(claim) => match logs.remove_unowned(claim, |pod| self.store.pod(pod).is_some()) {
                Ok(gone) if !gone.is_empty() => {
                    tracing::info!("removed the log folders of gone pods: {}", gone.join(", "))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("collecting log folders: {e}"),
            },
            Err(e) => tracing::warn!(
                "not removing stale folders in log dir {}: {e}",
                self.opts.log_dir.display()
            ),
        }
    }

    fn fire_timers(&mut self) {
        let mut out = Outbox::default();
        self.agent
            .fire_timers(&mut self.store, Daemon::now(), &mut out);
        self.absorb(out);
    }

    /// SIGTERM/SIGINT. `daemon`: leave processes running (they are
    /// re-adopted on the next start) and exit now. `up`: stop every pod
    /// gracefully first; a second signal kills what is left.
    fn shutdown(&mut self) -> bool {
        if !self.opts.foreground {
            return true;
        }
        self.halt();
        false
    }

    /// The keeper was SIGKILLed. As a service (`daemon`), this daemon
    /// exits and leaves its pods running, as on SIGTERM: whoever restarts
    /// the service (systemd, an init script) starts a keeper whose daemon
    /// needs this state dir, and re-adopts them. Left running, this daemon
    /// would serve on unseen while every new one failed on the state dir
    /// lock. Under `up`, the process the user started is gone: everything
    /// stops. Returns whether the loop ends now.
    fn keeper_gone(&mut self) -> bool {
        if self.opts.foreground {
            eprintln!("drover's keeper is gone: stopping all pods");
        } else {
            tracing::warn!(
                "drover's keeper is gone: exiting, leaving every pod running for the next daemon"
            );
        }
        // What SIGTERM does in each mode.
        self.shutdown()
    }

    /// Stop every pod gracefully (grace periods honoured), then exit (the
    /// loop ends once nothing runs); asked again: SIGKILL what is left.
    /// `up` on SIGINT/SIGTERM, and the keeper's halt in both modes.
    fn halt(&mut self) {
        if self.halting {
            self.agent.kill_all();
            return;
        }
        if self.opts.foreground {
            eprintln!("stopping all pods (Ctrl-C again to kill them now)");
        } else {
            tracing::info!("stopping all pods, then exiting");
        }
        self.halting = true;
        let mut out = Outbox::default();
        self.agent
            .halt_all(&mut self.store, Daemon::now(), &mut out);
        self.absorb(out);
    }
}

/// This host's node object: created or refreshed (labels from the config,
/// Ready) at every start.
fn register_node(d: &mut Daemon) {
    let now = Daemon::wall();
    let name = d.opts.node_name.clone();
    let labels = d.opts.node_labels.clone();
    let condition = NodeCondition {
        type_: "Ready".into(),
        status: "True".into(),
        last_heartbeat_time: Some(now),
        ..NodeCondition::default()
    };
    let version = env!("CARGO_PKG_VERSION").to_string();
    let cgroups = d.agent.cgroups_description();
    match d.store.get(Kind::Node, &name) {
        Some(_) => {
            d.store.update(Kind::Node, &name, |o| {
                if let Object::Node(n) = o {
                    for (k, v) in &labels {
                        n.metadata.labels.insert(k.clone(), v.clone());
                    }
                    n.status.conditions = vec![condition];
                    n.status.drover_version = version;
                    n.status.cgroups = cgroups;
                }
                true
            });
        }
        None => {
            let mut metadata = ObjectMeta::new(name, now);
            metadata.labels = labels;
            metadata
                .labels
                .insert("kubernetes.io/hostname".into(), d.opts.node_name.clone());
            d.store.put(Object::Node(Node {
                metadata,
                spec: NodeSpec::default(),
                status: NodeStatus {
                    conditions: vec![condition],
                    drover_version: version,
                    cgroups,
                    ..NodeStatus::default()
                },
            }));
        }
    }
}

/// This state dir's instance id, made once (STATE_DIR/instance-id): part
/// of every process's marker, so a restarted daemon recognises its own
/// processes and never those of a daemon beside it.
/// Also says whether the id was made just now.
fn instance_id(dir: &std::path::Path) -> anyhow::Result<(String, bool)> {
    let path = dir.join("instance-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok((id.to_string(), false));
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    crate::store::embedded::write_atomically(dir, "instance-id", id.as_bytes())?;
    Ok((id, true))
}

/// One daemon per state dir: an exclusive flock on STATE_DIR/lock, held
/// for the daemon's life (released by the kernel if it dies).
/// `inherited`: the lock the previous image of this process held (it
/// crossed the exec, so no other daemon could take it meanwhile).
fn lock_state_dir(
    dir: &std::path::Path,
    inherited: Option<OwnedFd>,
) -> anyhow::Result<Flock<std::fs::File>> {
    use nix::fcntl::FlockArg;
    use std::os::unix::fs::MetadataExt;
    let path = dir.join("lock");
    if let Some(fd) = inherited {
        let f = std::fs::File::from(fd);
        let same = match (f.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            // Already ours: flock on the same open file succeeds at once.
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(lock),
                Err((_, e)) => tracing::warn!("the state dir lock handed over: {e}"),
            }
        }
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // A daemon SIGKILLed a moment ago may still hold the lock while the
    // kernel tears it down (its threads, a child between clone and exec
    // with a copy of its fds): a restart right after a crash (systemd,
    // the keeper, a user) waits for that instead of failing. Start-up
    // only; an idle daemon never polls.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    let deadline = std::time::Instant::now() + WAIT;
    let mut f = f;
    let mut warned = false;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) => {
                if std::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "another drover daemon is using the state dir {} (pass a different --state-dir)",
                        dir.display()
                    );
                }
                if !warned {
                    tracing::warn!(
                        "the state dir {} is locked (a daemon that just died, or another one): waiting up to {}s",
                        dir.display(),
                        WAIT.as_secs()
                    );
                    warned = true;
                }
                f = back;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((_, e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}

/// Binds the control socket (0660, owned by the socket group `group`
/// when it exists). A stale socket file from a daemon that died is
/// replaced; a live one is an error.
fn bind_socket(
    path: &std::path::Path,
    group: Option<u32>,
) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another drover daemon is listening on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = group {
        let _ = nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)));
    }
    Ok(listener)
}
