//! Acknowledged means durable. An API request's changes to the store are
//! one transaction ([`crate::store::Store::begin`]): persisted before the
//! answer goes out, or, if they cannot be (a full disk), undone and
//! refused, so nothing acknowledged can be lost by a `kill -9` and nothing
//! refused is running in memory. What the request sets off besides the
//! store (restarting a pod whose spec changed, its events) happens only
//! once the change is durable ([`AfterCommit`]).
//!
//! Changes the daemon makes on its own (the agent's pids and restart
//! counts, the controllers' pods) are not anyone's acknowledgement: they
//! stay pending and are retried ([`Pacing`]): every 100 ms at most while
//! writes succeed, backing off to every 5 s while they fail, and at once
//! when an API request persists. Supervision never waits for the disk.

use super::auth::Caller;
use super::events::NewEvent;
use super::http::{ApiReply, ApiRequest};
use super::Daemon;
use crate::api::{EventType, Kind};
use crate::store::Backend;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often changes made by the agent alone (not by an API request) are
/// written at most.
pub const PERSIST_EVERY: Duration = Duration::from_millis(100);
/// The longest pause between attempts while persisting fails.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// When to persist what the daemon changed on its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pacing {
    last: Option<Instant>,
    /// Consecutive failed attempts.
    failures: u32,
}

impl Pacing {
    /// The pause after the last attempt: PERSIST_EVERY, doubling per
    /// consecutive failure up to RETRY_MAX.
    pub fn interval(&self) -> Duration {
        let doubled = PERSIST_EVERY.saturating_mul(1 << self.failures.min(16));
        doubled.min(RETRY_MAX).max(PERSIST_EVERY)
    }

    /// When the next attempt is due (None: at once).
    pub fn due_at(&self) -> Option<Instant> {
        self.last.map(|t| t + self.interval())
    }

    /// Whether to persist now. Replies waiting for what the controllers
    /// did after their request, and `up` stopping, do not wait for the
    /// interval, unless writes are failing: then nothing is gained by
    /// trying more often than the back-off says.
    pub fn should_persist(&self, now: Instant, replies_waiting: bool, halting: bool) -> bool {
        let due = self.due_at().is_none_or(|at| now >= at);
        due || (self.failures == 0 && (replies_waiting || halting))
    }

    /// Whether the last attempt failed.
    pub fn failing(&self) -> bool {
        self.failures > 0
    }

    pub fn record(&mut self, now: Instant, ok: bool) {
        self.last = Some(now);
        self.failures = if ok { 0 } else { self.failures + 1 };
    }
}

/// What an API request sets off once its change is durable.
#[derive(Default)]
pub struct AfterCommit {
    /// Pods whose spec changed: their processes restart.
    pub restart_pods: Vec<String>,
    /// Events recording who changed what.
    pub notes: Vec<ChangeNote>,
}

/// One event about a change a caller made.
pub struct ChangeNote {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
    pub reason: String,
    pub message: String,
}

impl Daemon {
    /// One write of what the daemon changed on its own, recorded in the
    /// pacing (a failure backs the next attempts off). `what`: for the
    /// error in the log.
    pub(crate) fn persist_paced(&mut self, backend: &mut dyn Backend, what: &str) {
        let at = Instant::now();
        let result = self.store.persist(backend);
        if let Err(e) = &result {
            tracing::error!("persisting {what} (will retry): {e:#}");
        }
        self.pacing.record(at, result.is_ok());
    }

    /// Answers one API request as a transaction: its store changes are
    /// persisted before the answer, or undone and refused.
    ///
    /// Except signals and a pod's restart: those act on running processes
    /// (what the agent writes about them is its own bookkeeping, retried
    /// like any), and a signal sent cannot be undone anyway.
    pub(crate) fn serve_api(&mut self, req: ApiRequest, backend: &mut dyn Backend) -> ApiReply {
        if acts_on_processes(&req) {
            let reply = self.handle_api(req);
            let after = std::mem::take(&mut self.after_commit);
            self.run_after_commit(after);
            return reply;
        }
        match self.transact(backend, |d| d.handle_api(req)) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!("persisting an API change (refused, undone): {e:#}");
                refusal(&e, &self.opts.state_dir)
            }
        }
    }

    /// Runs `f` as one transaction: what it changes in the store is
    /// persisted, then what it set off runs ([`AfterCommit`]); or, if the
    /// change cannot be persisted, it is undone and the error returned.
    pub(crate) fn transact<T>(
        &mut self,
        backend: &mut dyn Backend,
        f: impl FnOnce(&mut Daemon) -> T,
    ) -> anyhow::Result<T> {
        self.store.begin();
        let out = f(self);
        let after = std::mem::take(&mut self.after_commit);
        if self.store.txn_changed() {
            let result = self.store.persist(backend);
            // Either way it says how the disk is doing: a success ends the
            // back-off for the daemon's own changes too.
            self.pacing.record(Instant::now(), result.is_ok());
            if let Err(e) = result {
                self.store.rollback();
                return Err(e);
            }
        }
        self.store.commit();
        self.run_after_commit(after);
        Ok(out)
    }

    /// The units folder, re-read and applied as one transaction (start-up,
    /// SIGHUP, `daemon-reload`).
    pub(crate) fn reload_units_durably(
        &mut self,
        backend: &mut dyn Backend,
    ) -> Result<Vec<crate::api::http::ApplyResult>, super::apply::ReloadError> {
        match self.transact(backend, |d| d.reload_units()) {
            Ok(result) => result,
            Err(e) => Err(super::apply::ReloadError::NotSaved(format!("{e:#}"))),
        }
    }

    pub(crate) fn run_after_commit(&mut self, after: AfterCommit) {
        let now = Daemon::wall();
        for n in after.notes {
            let event = NewEvent {
                kind: n.kind,
                name: &n.name,
                uid: &n.uid,
                type_: EventType::Normal,
                reason: &n.reason,
                message: &n.message,
                source: "api",
            };
            self.events.record(event, now);
        }
        for p in &after.restart_pods {
            self.restart_if_spec_changed(p);
        }
    }

    /// Records, for after the commit, that `caller` changed an object.
    pub(crate) fn note_change(
        &mut self,
        kind: Kind,
        name: &str,
        uid: &str,
        reason: &str,
        what: String,
        caller: &Caller,
    ) {
        self.after_commit.notes.push(ChangeNote {
            kind,
            name: name.to_string(),
            uid: uid.to_string(),
            reason: reason.to_string(),
            message: format!("{what} by {}", caller.describe()),
        });
    }
}

/// `POST .../kill` and `POST /v1/pods/NAME/restart`.
fn acts_on_processes(req: &ApiRequest) -> bool {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    req.method == hyper::Method::POST
        && matches!(segs.as_slice(), [_, _, "kill"] | ["pods", _, "restart"])
}

/// The answer to a request whose change could not be persisted: 507 when
/// the disk is full, 500 otherwise, with the reason and the promise that
/// nothing changed. The CLI prints it and exits 1.
pub fn refusal(e: &anyhow::Error, state_dir: &Path) -> ApiReply {
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    let (status, reason) = match io.and_then(|io| io.raw_os_error()) {
        Some(code) => {
            let full = matches!(code, libc::ENOSPC | libc::EDQUOT);
            let desc = nix::errno::Errno::from_raw(code).desc();
            (
                if full { 507 } else { 500 },
                format!("{desc} ({})", state_dir.display()),
            )
        }
        None => (500, format!("{e:#}")),
    };
    ApiReply::error(
        status,
        format!("state not saved: {reason}; nothing was changed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_backs_off_while_failing_and_resets() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        assert!(p.should_persist(t0, false, false), "first time: at once");
        p.record(t0, true);
        assert!(!p.should_persist(t0, false, false));
        assert!(p.should_persist(t0, true, false), "a reply is waiting");
        assert!(p.should_persist(t0 + PERSIST_EVERY, false, false));
        let mut waits = vec![];
        for _ in 0..8 {
            p.record(t0, false);
            waits.push(p.interval().as_millis() as u64);
        }
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert!(
            !p.should_persist(t0, true, true),
            "failing: replies and halting wait for the back-off"
        );
        assert!(p.should_persist(t0 + RETRY_MAX, false, false));
        p.record(t0, true);
        assert_eq!(p.interval(), PERSIST_EVERY);
    }

    #[test]
    fn a_full_disk_is_refused_with_its_reason_and_the_state_dir() {
        let full = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("appending to /var/lib/drover/store.journal");
        let r = refusal(&full, Path::new("/var/lib/drover"));
        assert_eq!(r.status, 507);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["error"],
            "state not saved: No space left on device (/var/lib/drover); nothing was changed"
        );
        let other = anyhow::anyhow!("etcd: compare failed");
        let r = refusal(&other, Path::new("/x"));
        assert_eq!(r.status, 500);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["error"],
            "state not saved: etcd: compare failed; nothing was changed"
        );
    }
}
