//! Answers API requests against the daemon's state (the routes are listed
//! in `crate::api::http`). Runs inside the loop task, so every request sees
//! and changes a consistent store.

use super::apply;
use super::http::{ApiReply, ApiRequest, LogFollow};
use super::Daemon;
use crate::api::http::{
    ActionResponse, ApplyRequest, ApplyResponse, CreateJobRequest, KillRequest, LabelRequest, List,
    ScaleRequest, VersionInfo,
};
use crate::api::{annotations, Kind, LabelSelector, Object, Signal};
use crate::controllers::cronjob;
use hyper::Method;

impl Daemon {
    pub(crate) fn handle_api(&mut self, req: ApiRequest) -> ApiReply {
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        match (&req.method, segs.as_slice()) {
            (&Method::GET, ["version"]) => ApiReply::json(
                200,
                &VersionInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    node_name: self.opts.node_name.clone(),
                    pid: std::process::id(),
                    state_dir: self.opts.state_dir.display().to_string(),
                },
            ),
            (&Method::GET, ["cluster"]) => self.cluster_info(),
            (&Method::POST, ["apply"]) => self.api_apply(&req),
            (&Method::POST, ["reload"]) => match self.reload_units() {
                Ok(results) => ApiReply::json(200, &ApplyResponse { results }),
                Err(e) => ApiReply::error(400, e.to_string()),
            },
            (&Method::GET, ["events"]) => {
                let filter = req.query.get("for").and_then(|f| {
                    let (k, n) = f.split_once('/')?;
                    Some((Kind::from_cli(k)?, n.to_string()))
                });
                let events = self
                    .events
                    .list(filter.as_ref().map(|(k, n)| (*k, n.as_str())));
                ApiReply::json(
                    200,
                    &List::new(events.into_iter().map(Object::Event).collect()),
                )
            }
            (&Method::POST, ["jobs"]) => self.api_create_job(&req),
            (&Method::GET, [plural]) => self.api_list(plural, &req),
            (&Method::GET, [plural, name]) => match self.lookup(plural, name) {
                Ok(Object::Pod(pod)) if wants_usage(&req) => {
                    let mut pod = pod.clone();
                    self.fill_usage(&mut pod);
                    ApiReply::json(200, &Object::Pod(pod))
                }
                Ok(obj) => ApiReply::json(200, obj),
                Err(e) => e,
            },
            (&Method::DELETE, [plural, name]) => self.api_delete(plural, name, &req),
            (&Method::POST, [plural, name, "labels"]) => self.api_label(plural, name, &req),
            (&Method::POST, [plural, name, "scale"]) => self.api_scale(plural, name, &req),
            (&Method::POST, [plural, name, "restart"]) => self.api_restart(plural, name),
            (&Method::POST, [plural, name, "kill"]) => self.api_kill(plural, name, &req),
            (&Method::POST, ["nodes", name, verb @ ("cordon" | "uncordon")]) => {
                let unschedulable = *verb == "cordon";
                let changed = self.store.update(Kind::Node, name, |o| match o {
                    Object::Node(n) => {
                        n.spec.unschedulable = unschedulable;
                        true
                    }
                    _ => false,
                });
                if !changed {
                    return not_found(Kind::Node, name);
                }
                ApiReply::json(200, self.store.get(Kind::Node, name).expect("exists"))
            }
            (&Method::GET, ["pods", name, "logs"]) => self.api_logs(name, &req),
            _ => ApiReply::error(
                404,
                format!("no route {} /v1/{}", req.method, req.segments.join("/")),
            ),
        }
    }

    fn kind_of(plural: &str) -> Result<Kind, ApiReply> {
        Kind::from_cli(plural)
            .ok_or_else(|| ApiReply::error(404, format!("unknown resource type \"{plural}\"")))
    }

    fn lookup(&self, plural: &str, name: &str) -> Result<&Object, ApiReply> {
        let kind = Self::kind_of(plural)?;
        self.store
            .get(kind, name)
            .ok_or_else(|| not_found(kind, name))
    }

    fn api_list(&self, plural: &str, req: &ApiRequest) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let selector = match req.query.get("selector").filter(|s| !s.is_empty()) {
            Some(s) => match LabelSelector::parse(s) {
                Ok(sel) => Some(sel),
                Err(e) => return ApiReply::error(400, e),
            },
            None => None,
        };
        let mut items: Vec<Object> = self
            .store
            .list(kind)
            .filter(|o| {
                selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&o.meta().labels))
            })
            .cloned()
            .collect();
        if kind == Kind::Pod && wants_usage(req) {
            for item in &mut items {
                if let Object::Pod(pod) = item {
                    self.fill_usage(pod);
                }
            }
        }
        ApiReply::json(200, &List::new(items))
    }

    fn api_apply(&mut self, req: &ApiRequest) -> ApiReply {
        let body: ApplyRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid apply request: {e}")),
        };
        let now = Daemon::wall();
        match apply::apply(&mut self.store, body.items, false, now) {
            Ok(applied) => {
                self.restart_changed_pods(&applied.restart_pods);
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

    fn restart_changed_pods(&mut self, pods: &[String]) {
        if self.cluster.is_some() {
            // The request runs on a scratch copy of the cache; and the pod
            // may run on another node. (Not restarted in place: known gap.)
            return;
        }
        for p in pods {
            self.restart_pod(p);
        }
    }

    /// Re-reads the units folder: all of it applies, or none of it.
    pub(crate) fn reload_units(
        &mut self,
    ) -> Result<Vec<crate::api::http::ApplyResult>, apply::ReloadError> {
        let Some(dir) = self.opts.units_dir.clone() else {
            return Err(apply::ReloadError::NoUnitsDir);
        };
        let now = Daemon::wall();
        let units = if dir.exists() {
            crate::units::load_units_dir(&dir, now)
                .map_err(|d| apply::ReloadError::Units(d.to_string()))?
        } else {
            vec![]
        };
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
            .collect();
        let applied = apply::apply(&mut self.store, items, true, now)?;
        self.restart_changed_pods(&applied.restart_pods);
        let mut results = applied.results;
        results.extend(apply::prune_units_dir(
            &mut self.store,
            &keep,
            node.as_deref(),
            now,
        ));
        Ok(results)
    }

    fn api_delete(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        if !matches!(
            kind,
            Kind::Pod
                | Kind::ReplicaSet
                | Kind::ReplicationController
                | Kind::DaemonSet
                | Kind::Job
                | Kind::CronJob
        ) {
            return ApiReply::error(400, format!("{} cannot be deleted", kind.plural()));
        }
        let orphan = req.query.get("cascade").map(String::as_str) == Some("orphan");
        if !apply::delete_object(&mut self.store, kind, name, orphan, Daemon::wall()) {
            return not_found(kind, name);
        }
        ApiReply::json(
            200,
            &ActionResponse {
                message: format!("{} \"{name}\" deleted", singular(kind)),
            },
        )
    }

    fn api_label(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let body: LabelRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid label request: {e}")),
        };
        let Some(obj) = self.store.get(kind, name) else {
            return not_found(kind, name);
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
        self.store.update(kind, name, |o| {
            let labels = &mut o.meta_mut().labels;
            for (k, v) in &body.set {
                labels.insert(k.clone(), v.clone());
            }
            for k in &body.remove {
                labels.remove(k);
            }
            true
        });
        ApiReply::json(200, self.store.get(kind, name).expect("exists"))
    }

    fn api_scale(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let body: ScaleRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid scale request: {e}")),
        };
        if !matches!(
            kind,
            Kind::ReplicaSet | Kind::ReplicationController | Kind::Job
        ) {
            return ApiReply::error(400, format!("{} cannot be scaled", kind.plural()));
        }
        let found = self.store.update(kind, name, |o| {
            match o {
                Object::ReplicaSet(r) => r.spec.replicas = body.replicas,
                Object::ReplicationController(r) => r.spec.replicas = body.replicas,
                // A Job scales by how many pods run at once.
                Object::Job(j) => j.spec.parallelism = body.replicas,
                _ => return false,
            }
            o.meta_mut().generation += 1;
            true
        });
        if !found {
            return not_found(kind, name);
        }
        ApiReply::json(200, self.store.get(kind, name).expect("exists"))
    }

    fn api_restart(&mut self, plural: &str, name: &str) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        match kind {
            Kind::Pod => {
                if !self.restart_pod(name) {
                    return match self.store.pod(name) {
                        Some(_) => ApiReply::error(
                            409,
                            format!(
                                "pod \"{name}\" is not running on this node or is being deleted"
                            ),
                        ),
                        None => not_found(kind, name),
                    };
                }
                ApiReply::json(
                    200,
                    &ActionResponse {
                        message: format!("pod/{name} restarted"),
                    },
                )
            }
            Kind::ReplicaSet | Kind::ReplicationController => {
                let at = Daemon::wall().to_rfc3339();
                let found = self.store.update(kind, name, |o| {
                    o.meta_mut()
                        .annotations
                        .insert(annotations::RESTARTED_AT.into(), at.clone());
                    true
                });
                if !found {
                    return not_found(kind, name);
                }
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

    fn api_kill(&mut self, plural: &str, name: &str, req: &ApiRequest) -> ApiReply {
        let kind = match Self::kind_of(plural) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let body: KillRequest = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return ApiReply::error(400, format!("invalid kill request: {e}")),
        };
        let signal = match body.signal.parse::<Signal>() {
            Ok(s) => s,
            Err(e) => return ApiReply::error(400, e.to_string()),
        };
        let pods: Vec<String> = match kind {
            Kind::Pod => match self.store.pod(name) {
                Some(_) => vec![name.to_string()],
                None => return not_found(kind, name),
            },
            Kind::ReplicaSet | Kind::ReplicationController | Kind::Job => {
                let Some(owner) = self.store.get(kind, name) else {
                    return not_found(kind, name);
                };
                let uid = owner.meta().uid.clone();
                self.store
                    .pods()
                    .filter(|p| p.metadata.controller().is_some_and(|o| o.uid == uid))
                    .map(|p| p.metadata.name.clone())
                    .collect()
            }
            _ => return ApiReply::error(400, format!("{} cannot be signalled", kind.plural())),
        };
        let n: usize = pods.iter().map(|p| self.kill_pod(p, signal)).sum();
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
    fn api_create_job(&mut self, req: &ApiRequest) -> ApiReply {
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
        let Some(Object::CronJob(cj)) = self.store.get(Kind::CronJob, from) else {
            return not_found(Kind::CronJob, from);
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
        let obj = Object::Job(job);
        if let Err(errs) = crate::units::validate_object(&obj) {
            return ApiReply::error(400, errs.join("; "));
        }
        self.store.put(obj);
        ApiReply::json(200, self.store.get(Kind::Job, &name).expect("just put"))
    }

    /// `logs`: the text of a log, or with `follow` the log for the HTTP
    /// task to stream (`log_stream`); the loop only looks the pod up.
    fn api_logs(&mut self, name: &str, req: &ApiRequest) -> ApiReply {
        let Some(pod) = self.store.pod(name) else {
            return not_found(Kind::Pod, name);
        };
        let names: Vec<&str> = pod.spec.processes.iter().map(|p| p.name.as_str()).collect();
        let process = match req.query.get("process").filter(|p| !p.is_empty()) {
            Some(p) if names.contains(&p.as_str()) => p.clone(),
            Some(p) => {
                return ApiReply::error(
                    400,
                    format!(
                        "process {p} is not valid for pod {name}; choose one of: [{}]",
                        names.join(" ")
                    ),
                )
            }
            None if names.len() == 1 => names[0].to_string(),
            None => {
                return ApiReply::error(
                    400,
                    format!(
                        "a process name must be specified for pod {name}, choose one of: [{}]",
                        names.join(" ")
                    ),
                )
            }
        };
        let logs = &self.agent.config().logs;
        let previous = flag(req, "previous");
        let path = if previous {
            logs.previous(name, &process)
        } else {
            logs.current(name, &process)
        };
        let tail = req.query.get("tail").and_then(|t| t.parse::<usize>().ok());
        // A previous run is over: `-f --previous` prints it and ends, as
        // kubectl does for a terminated container.
        if flag(req, "follow") && !previous {
            let uid = pod.metadata.uid.clone();
            return ApiReply::follow(LogFollow {
                until: self.log_follows.add(name, &uid),
                pod: name.to_string(),
                process,
                path,
                tail,
            });
        }
        match crate::agent::logs::tail(&path, tail) {
            Ok(bytes) => ApiReply::text(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if previous {
                    ApiReply::error(
                        400,
                        format!(
                            "previous terminated process \"{process}\" in pod \"{name}\" not found"
                        ),
                    )
                } else {
                    ApiReply::text(vec![])
                }
            }
            Err(e) => ApiReply::error(500, format!("reading {}: {e}", path.display())),
        }
    }
}

/// `CJ-manual-xxxxx` (the prefix shortened so the name still fits 57
/// characters, as a generated Kubernetes name), unused in the store.
fn manual_job_name(cronjob: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut prefix = format!("{cronjob}-manual-");
    prefix.truncate(crate::units::MAX_JOB_NAME - 5);
    super::reconcile::generated_name(&prefix, taken)
}

/// A yes/no query parameter: `?follow`, `?follow=1`, `?follow=true`.
fn flag(req: &ApiRequest, key: &str) -> bool {
    req.query
        .get(key)
        .is_some_and(|v| matches!(v.as_str(), "" | "1" | "true"))
}

/// `?usage=true` (`get pods -o wide`): CPU and memory of each process,
/// measured now.
fn wants_usage(req: &ApiRequest) -> bool {
    req.query.get("usage").is_some_and(|v| v == "true")
}

fn not_found(kind: Kind, name: &str) -> ApiReply {
    ApiReply::error(404, format!("{} \"{name}\" not found", resource(kind)))
}

/// kubectl's name for one object's type in messages: `replicaset.apps`,
/// `pod`.
fn singular(kind: Kind) -> String {
    let name = kind.as_str().to_ascii_lowercase();
    match kind.api_version().split_once('/') {
        Some((group, _)) => format!("{name}.{group}"),
        None => name,
    }
}

/// kubectl's `resource.group` naming: `replicasets.apps`, `pods`.
fn resource(kind: Kind) -> String {
    match kind.api_version().split_once('/') {
        Some((group, _)) => format!("{}.{group}", kind.plural()),
        None => kind.plural().to_string(),
    }
}
