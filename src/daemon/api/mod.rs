//! Answers API requests against the daemon's state (the routes are listed
//! in `crate::api::http`). Runs inside the loop task, so every request sees
//! and changes a consistent store; `persist.rs` makes each request's
//! changes one transaction.
//!
//! Every route first asks `auth` whether its caller may (reads here;
//! changes in `change.rs`, which also record who made each change).

mod change;
mod reexec;

use super::accounts::Accounts;
use super::auth::{self, Action, Caller, Decision, Role};
use super::http::{ApiReply, ApiRequest, LogFollow};
use super::Daemon;
use crate::api::http::{List, VersionInfo};
use crate::api::{Kind, LabelSelector, Object};
use hyper::Method;

impl Daemon {
    pub(crate) fn handle_api(&mut self, req: ApiRequest) -> ApiReply {
        // Outsiders are refused at the door (`http.rs`); the rule is the
        // same here, for any request that gets this far.
        if let Err(refused) = self.check(&req.caller, Action::Read, None) {
            return refused;
        }
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        match (&req.method, segs.as_slice()) {
            (&Method::GET, ["version"]) => ApiReply::json(
                200,
                &VersionInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    node_name: self.opts.node_name.clone(),
                    pid: std::process::id(),
                    state_dir: self.opts.state_dir.display().to_string(),
                    image_id: self.reexec.image_id.clone(),
                    reexecs: self.reexec.generation,
                },
            ),
            (&Method::GET, ["cluster"]) => self.cluster_info(),
            (&Method::POST, ["apply"]) => self.api_apply(&req),
            (&Method::POST, ["reload"]) => self.api_reload(&req),
            (&Method::POST, ["reexec"]) => self.api_reexec(&req),
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
            (&Method::POST, [plural, name, "restart"]) => self.api_restart(plural, name, &req),
            (&Method::POST, [plural, name, "kill"]) => self.api_kill(plural, name, &req),
            (&Method::POST, ["nodes", name, verb @ ("cordon" | "uncordon")]) => {
                self.api_cordon(name, *verb == "cordon", &req)
            }
            (&Method::GET, ["pods", name, "logs"]) => self.api_logs(name, &req),
            _ => ApiReply::error(
                404,
                format!("no route {} /v1/{}", req.method, req.segments.join("/")),
            ),
        }
    }

    /// Whether `caller` may read (cluster mode asks before it forwards a
    /// read to another node): Err is the 403.
    pub(crate) fn may_read(&self, caller: &Caller) -> Result<(), ApiReply> {
        self.check(caller, Action::Read, None)
    }

    /// Whether `caller` may do `action` (to `target`): Err is the 403.
    fn check(
        &self,
        caller: &Caller,
        action: Action,
        target: Option<&Object>,
    ) -> Result<(), ApiReply> {
        match auth::decide(caller, action, target, &accounts_for(caller)) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(ApiReply::error(403, why)),
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

/// A yes/no query parameter: `?follow`, `?follow=1`, `?follow=true`.
pub(super) fn flag(req: &ApiRequest, key: &str) -> bool {
    req.query
        .get(key)
        .is_some_and(|v| matches!(v.as_str(), "" | "1" | "true"))
}

/// `?usage=true` (`get pods -o wide`): CPU and memory of each process,
/// measured now.
pub(super) fn wants_usage(req: &ApiRequest) -> bool {
    req.query.get("usage").is_some_and(|v| v == "true")
}

/// The accounts the rules need: none for root (root may do anything),
/// /etc/passwd and /etc/group as they are now for anyone else.
fn accounts_for(caller: &Caller) -> Accounts {
    match caller.role {
        Role::Root => Accounts::default(),
        Role::Member | Role::Outsider => Accounts::read(),
    }
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
