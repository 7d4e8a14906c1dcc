//! The routes that change something: apply, reload, delete, label, scale,
//! restart, kill, create job, cordon. Each asks `auth` first (a member
//! acts only on what runs as itself, and what it applies runs as itself),
//! then changes the store, and records who did it: the object's
//! `drover.io/changed-by` annotation and an event ("Scaled to 5 by uid
//! 1001 (alice)"), the event once the change is durable (`persist.rs`).

use super::{accounts_for, not_found, singular, Daemon};
use crate::api::http::{
    ActionResponse, ApplyRequest, ApplyResponse, ApplyResult, CreateJobRequest, KillRequest,
    LabelRequest, ScaleRequest,
};
use crate::api::{annotations, Kind, Object, Signal};
use crate::controllers::cronjob;
use crate::daemon::accounts::Accounts;
use crate::daemon::apply::{self, ReloadError, UNITS_FOLDER};
use crate::daemon::auth::{self, Action, Caller, Decision, Verb};
use crate::daemon::http::{ApiReply, ApiRequest};

impl Daemon {
    pub(super) fn api_apply(&mut self, req: &ApiRequest) -> ApiReply {
        let body: ApplyRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid apply request: {e}")),
        };
        let caller = &req.caller;
        let accounts = accounts_for(caller);
        let mut items = body.items;
        for obj in &mut items {
            let existing = self.store.get(obj.kind(), obj.name());
            let action = match existing {
                Some(_) => Action::Change(Verb::Apply),
                None => Action::Create,
            };
            if let Err(refused) = self.check(caller, action, existing) {
                return refused;
            }
            if let Decision::Deny(why) = auth::run_as_caller(caller, obj, &accounts) {
                return ApiReply::error(403, why);
            }
        }
        let now = Daemon::wall();
        let unavailable = self.agent.limits_unavailable();
        let refused = apply::unenforceable_limits(&items, unavailable.as_deref());
        if !refused.is_empty() {
            return ApiReply::error(400, apply::ApplyError(refused).to_string());
        }
        match apply::apply(&mut self.store, items, false, &caller.describe(), now) {
            Ok(applied) => {
                self.after_commit.restart_pods.extend(applied.restart_pods);
                self.note_applied(&applied.results, caller);
                ApiReply::json(
                    200,
                    &ApplyResponse {
                        results: applied.results,
                    },
                )
            }
            Err(e) => ApiReply::error(400, e.to_string()),
        }
    }

    /// An event per object created or configured.
    fn note_applied(&mut self, results: &[ApplyResult], caller: &Caller) {
        for r in results {
            if !matches!(r.action.as_str(), "created" | "configured") {
                continue;
            }
            let uid = self
                .store
                .get(r.kind, &r.name)
                .map(|o| o.meta().uid.clone())
                .unwrap_or_default();
            let what = format!("{} {}", capitalized(&r.action), r.name);
            self.note_change(r.kind, &r.name, &uid, "Applied", what, caller);
        }
    }

    pub(super) fn api_reload(&mut self, req: &ApiRequest) -> ApiReply {
        if let Err(refused) = self.check(&req.caller, Action::Reload, None) {
            return refused;
        }
        match self.reload_units() {
            Ok(results) => ApiReply::json(200, &ApplyResponse { results }),
            Err(e) => ApiReply::error(400, e.to_string()),
        }
    }

    /// Re-reads the units folder: all of it applies, or none of it. Each
    /// unit acts as its file's author (`apply::unit_author`): root's files
    /// as they are, anyone else's with its processes run as that user.
    /// Pods whose spec changed restart once the change is durable.
    pub(crate) fn reload_units(&mut self) -> Result<Vec<ApplyResult>, ReloadError> {
        let Some(dir) = self.opts.units_dir.clone() else {
            return Err(ReloadError::NoUnitsDir);
        };
        let now = Daemon::wall();
        let mut units = if dir.exists() {
            crate::units::load_units_dir(&dir, now)
                .map_err(|d| ReloadError::Units(d.to_string()))?
        } else {
            vec![]
        };
        let daemon = Caller::daemon();
        let accounts = Accounts::read();
        for u in &mut units {
            let author = apply::unit_author(u.root_owned, &u.source, &daemon, &accounts);
            if let Decision::Deny(why) = auth::run_as_caller(&author, &mut u.object, &accounts) {
                return Err(ReloadError::NotAllowed {
                    file: u.source.clone(),
                    why,
                });
            }
        }
        let keep: Vec<(Kind, String)> = units
            .iter()
            .map(|u| (u.object.kind(), u.object.name().to_string()))
            .collect();
        let node = self.units_node().map(str::to_string);
        let items = units
            .into_iter()
            .map(|u| {
                let mut obj = u.object;
                if let Some(node) = &node {
                    // In a cluster every node has its own folder.
                    obj.meta_mut()
                        .annotations
                        .insert(annotations::SOURCE_NODE.into(), node.clone());
                }
                obj
            })
            .collect::<Vec<_>>();
        let unavailable = self.agent.limits_unavailable();
        let refused = apply::unenforceable_limits(&items, unavailable.as_deref());
        if !refused.is_empty() {
            return Err(apply::ApplyError(refused).into());
        }
        let applied = apply::apply(&mut self.store, items, true, UNITS_FOLDER, now)?;
        self.after_commit.restart_pods.extend(applied.restart_pods);
        let mut results = applied.results;
        results.extend(apply::prune_units_dir(
            &mut self.store,
            &keep,
            node.as_deref(),
            now,
        ));
        Ok(results)
    }

    /// The existing object `plural/name`, if `caller` may `verb` it.
    fn target(
        &self,
        plural: &str,
        name: &str,
        verb: Verb,
        caller: &Caller,
    ) -> Result<(Kind, &Object), ApiReply> {
        let kind = Self::kind_of(plural)?;
        let obj = self
            .store
            .get(kind, name)
            .ok_or_else(|| not_found(kind, name))?;
        self.check(caller, Action::Change(verb), Some(obj))?;
        Ok((kind, obj))
    }

    pub(super) fn api_delete(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let deletable = |k| {
            matches!(
                k,
                Kind::Pod
                    | Kind::ReplicaSet
                    | Kind::ReplicationController
                    | Kind::DaemonSet
                    | Kind::Job
                    | Kind::CronJob
            )
        };
        match Self::kind_of(plural) {
            Ok(k) if !deletable(k) => {
                return ApiReply::error(400, format!("{} cannot be deleted", k.plural()))
            }
            Ok(_) => {}
            Err(e) => return e,
        }
        let (kind, uid) = match self.target(plural, name, Verb::Delete, caller) {
            Ok((kind, obj)) => (kind, obj.meta().uid.clone()),
            Err(e) => return e,
        };
        let orphan = req.query.get("cascade").map(String::as_str) == Some("orphan");
        if !apply::delete_object(&mut self.store, kind, name, orphan, Daemon::wall()) {
            return not_found(kind, name);
        }
        // A pod stops gracefully first: it says who asked meanwhile.
        self.mark_changed_by(kind, name, caller);
        self.note_change(kind, name, &uid, "Deleted", "Deleted".into(), caller);
        ApiReply::json(
            200,
            &ActionResponse {
                message: format!("{} \"{name}\" deleted", singular(kind)),
            },
        )
    }

    /// Sets the `changed-by` annotation of an object (if it still exists).
    fn mark_changed_by(&mut self, kind: Kind, name: &str, caller: &Caller) {
        let who = caller.describe();
        self.store.update(kind, name, |o| {
            let ann = &mut o.meta_mut().annotations;
            if ann.get(annotations::CHANGED_BY) == Some(&who) {
                return false;
            }
            ann.insert(annotations::CHANGED_BY.into(), who.clone());
            true
        });
    }

    pub(super) fn api_label(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let body: LabelRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid label request: {e}")),
        };
        let (kind, obj) = match self.target(plural, name, Verb::Label, caller) {
            Ok(t) => t,
            Err(e) => return e,
        };
        if !body.overwrite {
            for (k, v) in &body.set {
                if let Some(old) = obj.meta().labels.get(k) {
                    if old != v {
                        return ApiReply::error(
                            409,
                            format!("'{k}' already has a value ({old}), and --overwrite is false"),
                        );
                    }
                }
            }
        }
        let uid = obj.meta().uid.clone();
        let who = caller.describe();
        self.store.update(kind, name, |o| {
            let meta = o.meta_mut();
            for (k, v) in &body.set {
                meta.labels.insert(k.clone(), v.clone());
            }
            for k in &body.remove {
                meta.labels.remove(k);
            }
            meta.annotations
                .insert(annotations::CHANGED_BY.into(), who.clone());
            true
        });
        let mut changes: Vec<String> = body.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        changes.extend(body.remove.iter().map(|k| format!("{k}-")));
        let what = format!("Labeled {}", changes.join(" "));
        self.note_change(kind, name, &uid, "Labeled", what, caller);
        ApiReply::json(200, self.store.get(kind, name).expect("exists"))
    }

    pub(super) fn api_scale(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let body: ScaleRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid scale request: {e}")),
        };
        match Self::kind_of(plural) {
            Ok(Kind::ReplicaSet | Kind::ReplicationController | Kind::Job) => {}
            Ok(k) => return ApiReply::error(400, format!("{} cannot be scaled", k.plural())),
            Err(e) => return e,
        }
        let (kind, uid) = match self.target(plural, name, Verb::Scale, caller) {
            Ok((kind, obj)) => (kind, obj.meta().uid.clone()),
            Err(e) => return e,
        };
        let who = caller.describe();
        self.store.update(kind, name, |o| {
            match o {
                Object::ReplicaSet(r) => r.spec.replicas = body.replicas,
                Object::ReplicationController(r) => r.spec.replicas = body.replicas,
                // A Job scales by how many pods run at once.
                Object::Job(j) => j.spec.parallelism = body.replicas,
                _ => return false,
            }
            let meta = o.meta_mut();
            meta.generation += 1;
            meta.annotations
                .insert(annotations::CHANGED_BY.into(), who.clone());
            true
        });
        let what = format!("Scaled to {}", body.replicas);
        self.note_change(kind, name, &uid, "Scaled", what, caller);
        ApiReply::json(200, self.store.get(kind, name).expect("exists"))
    }

    pub(super) fn api_restart(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let (kind, uid) = match self.target(plural, name, Verb::Restart, caller) {
            Ok((kind, obj)) => (kind, obj.meta().uid.clone()),
            Err(e) => return e,
        };
        match kind {
            Kind::Pod => {
                // An action on running processes, not a change of what is
                // wanted: nothing to persist first (`persist.rs`).
                if !self.restart_pod(name) {
                    return ApiReply::error(
                        409,
                        format!("pod \"{name}\" is not running on this node or is being deleted"),
                    );
                }
                self.note_change(
                    kind,
                    name,
                    &uid,
                    "Restart",
                    "Restart requested".into(),
                    caller,
                );
                ApiReply::json(
                    200,
                    &ActionResponse {
                        message: format!("pod/{name} restarted"),
                    },
                )
            }
            Kind::ReplicaSet | Kind::ReplicationController => {
                let at = Daemon::wall().to_rfc3339();
                let who = caller.describe();
                self.store.update(kind, name, |o| {
                    let ann = &mut o.meta_mut().annotations;
                    ann.insert(annotations::RESTARTED_AT.into(), at.clone());
                    ann.insert(annotations::CHANGED_BY.into(), who.clone());
                    true
                });
                self.note_change(
                    kind,
                    name,
                    &uid,
                    "Restart",
                    "Restart requested".into(),
                    caller,
                );
                ApiReply::json(
                    200,
                    &ActionResponse {
                        message: format!(
                            "{}/{name} restarting (one pod at a time)",
                            singular(kind)
                        ),
                    },
                )
            }
            _ => ApiReply::error(400, format!("{} cannot be restarted", kind.plural())),
        }
    }

    pub(super) fn api_kill(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let body: KillRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid kill request: {e}")),
        };
        let signal = match body.signal.parse::<Signal>() {
            Ok(s) => s,
            Err(e) => return ApiReply::error(400, e.to_string()),
        };
        let (kind, uid) = match self.target(plural, name, Verb::Kill, caller) {
            Ok((kind, obj)) => (kind, obj.meta().uid.clone()),
            Err(e) => return e,
        };
        let pods: Vec<String> = match kind {
            Kind::Pod => vec![name.to_string()],
            Kind::ReplicaSet | Kind::ReplicationController | Kind::Job => self
                .store
                .pods()
                .filter(|p| p.metadata.controller().is_some_and(|o| o.uid == uid))
                .map(|p| p.metadata.name.clone())
                .collect(),
            _ => return ApiReply::error(400, format!("{} cannot be signalled", kind.plural())),
        };
        // A set's pods are what its template made, but check each: the
        // signal goes to processes, and those must be the caller's.
        for p in &pods {
            let pod = self.store.get(Kind::Pod, p);
            if let Err(refused) = self.check(caller, Action::Change(Verb::Kill), pod) {
                return refused;
            }
        }
        let n: usize = pods.iter().map(|p| self.kill_pod(p, signal)).sum();
        let what = format!("Sent {signal} to {n} process(es)");
        self.note_change(kind, name, &uid, "Killing", what, caller);
        ApiReply::json(
            200,
            &ActionResponse {
                message: format!(
                    "sent {signal} to {n} process{}",
                    if n == 1 { "" } else { "es" }
                ),
            },
        )
    }

    /// `drover create job NAME --from=cronjob/CJ`: a manual run of a
    /// CronJob's template, controlled by the CronJob (so its concurrency
    /// policy and history limits count it).
    pub(super) fn api_create_job(&mut self, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        let body: CreateJobRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid create request: {e}")),
        };
        let Some((kind, from)) = body
            .from
            .split_once('/')
            .and_then(|(k, n)| Some((Kind::from_cli(k)?, n)))
        else {
            return ApiReply::error(400, format!("--from={}: expected cronjob/NAME", body.from));
        };
        if kind != Kind::CronJob {
            return ApiReply::error(
                400,
                format!(
                    "--from={}: a job can be created from a cronjob only",
                    body.from
                ),
            );
        }
        let cj = match self.target("cronjobs", from, Verb::RunNow, caller) {
            Ok((_, Object::CronJob(cj))) => cj,
            Ok(_) => return not_found(Kind::CronJob, from),
            Err(e) => return e,
        };
        let now = Daemon::wall();
        let name = match body.name {
            Some(n) => n,
            None => manual_job_name(&cj.metadata.name, |n| {
                self.store.get(Kind::Job, n).is_some()
            }),
        };
        if self.store.get(Kind::Job, &name).is_some() {
            return ApiReply::error(409, format!("jobs.batch \"{name}\" already exists"));
        }
        let mut job = cronjob::job_from_template(cj, name.clone(), None, now);
        job.metadata.uid = crate::api::meta::new_uid();
        job.metadata
            .annotations
            .insert(annotations::CHANGED_BY.into(), caller.describe());
        let uid = job.metadata.uid.clone();
        let obj = Object::Job(job);
        if let Err(errs) = crate::units::validate_object(&obj) {
            return ApiReply::error(400, errs.join("; "));
        }
        self.store.put(obj);
        let what = format!("Created from cronjob/{from}");
        self.note_change(Kind::Job, &name, &uid, "Created", what, caller);
        ApiReply::json(200, self.store.get(Kind::Job, &name).expect("just put"))
    }

    pub(super) fn api_cordon(&mut self, name: &str, cordon: bool, req: &ApiRequest) -> ApiReply {
        let caller = &req.caller;
        if let Err(refused) = self.check(caller, Action::Cordon, None) {
            return refused;
        }
        let Some(uid) = self
            .store
            .get(Kind::Node, name)
            .map(|n| n.meta().uid.clone())
        else {
            return not_found(Kind::Node, name);
        };
        let who = caller.describe();
        self.store.update(Kind::Node, name, |o| match o {
            Object::Node(n) if n.spec.unschedulable != cordon => {
                n.spec.unschedulable = cordon;
                n.metadata
                    .annotations
                    .insert(annotations::CHANGED_BY.into(), who.clone());
                true
            }
            _ => false,
        });
        let what = if cordon { "Cordoned" } else { "Uncordoned" };
        self.note_change(Kind::Node, name, &uid, what, what.into(), caller);
        ApiReply::json(200, self.store.get(Kind::Node, name).expect("exists"))
    }
}

/// `CJ-manual-xxxxx` (the prefix shortened so the name still fits 57
/// characters, as a generated Kubernetes name), unused in the store.
fn manual_job_name(cronjob: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut prefix = format!("{cronjob}-manual-");
    prefix.truncate(crate::units::MAX_JOB_NAME - 5);
    crate::daemon::reconcile::generated_name(&prefix, taken)
}

/// "created" -> "Created".
fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
