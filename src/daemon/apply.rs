//! Applying objects to the store, all or nothing: from `drover apply`
//! (kept until deleted) and from the units folder (owned by their files:
//! a changed file is re-applied, a removed file deletes its unit, and
//! imperative changes such as `scale` survive until the file changes).

use super::accounts::Accounts;
use super::auth::{Caller, Role};
use super::reconcile::{from_units_dir, mark_deleted};
use crate::api::http::ApplyResult;
use crate::api::{annotations, Kind, Object};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::path::Path;

/// What the `changed-by` annotation says for what the units folder
/// applied.
pub const UNITS_FOLDER: &str = "units folder";

/// Who a unit of the units folder acts as (product.md §3): the daemon
/// itself (root) when only root can change its file (`units` records
/// that: `LoadedUnit::root_owned`), or when the daemon is not root (`drover
/// up`: the folder is its user's, and `units` refused files anyone else
/// could change). Otherwise, which a root daemon never loads, the file's
/// owner as a member: its processes run as that user.
pub fn unit_author(
    root_owned: bool,
    source: &Path,
    daemon: &Caller,
    accounts: &Accounts,
) -> Caller {
    if root_owned || daemon.uid != 0 {
        return daemon.clone();
    }
    let owner = super::startup::owner_of(source).unwrap_or(65534);
    let gid = accounts.primary_gid(owner).unwrap_or(owner);
    let mut author = Caller::identify(owner, gid, None, daemon.uid, None, accounts);
    author.role = Role::Member;
    if author.name.is_none() {
        author.name = Some(owner.to_string());
    }
    author
}

/// Why one object of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{kind}/{name}: kind {kind} cannot be applied")]
    NotAppliable { kind: Kind, name: String },
    #[error("{kind}/{name}: {problem}")]
    Invalid {
        kind: Kind,
        name: String,
        problem: String,
    },
    /// A Job's pods are made from a template that is fixed once it ran
    /// (Kubernetes: `field is immutable`).
    #[error(
        "Job/{name}: {} cannot change once the job exists; delete it first \
         (drover delete job {name}) to run it again with the new spec",
        fields.join(", ")
    )]
    Immutable {
        name: String,
        fields: Vec<&'static str>,
    },
    /// `resources` where this node cannot enforce them: refused, never
    /// run unlimited.
    #[error(
        "{kind}/{name}: {at} cannot be enforced on this node: {reason}; \
         limits need the daemon to run as root on a host with cgroups \
         (remove `resources` to run the unit without limits)"
    )]
    LimitsUnavailable {
        kind: Kind,
        name: String,
        at: String,
        reason: String,
    },
}

/// A batch that was not applied (nothing of it was), with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.0))]
pub struct ApplyError(pub Vec<Rejection>);

fn join(rejections: &[Rejection]) -> String {
    let all: Vec<String> = rejections.iter().map(|r| r.to_string()).collect();
    all.join("; ")
}

/// Why the units folder was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A unit asks for what its file's owner may not (`auth`).
    #[error("{file}: {why}")]
    NotAllowed {
        file: std::path::PathBuf,
        why: String,
    },
    /// The change could not be persisted (a full disk): nothing was
    /// applied.
    #[error("state not saved: {0}; nothing was changed")]
    NotSaved(String),
    #[error("this daemon has no units folder (--units)")]
    NoUnitsDir,
    /// The files' diagnostics (file:line:col, what was expected).
    #[error("{0}")]
    Units(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

pub struct Applied {
    pub results: Vec<ApplyResult>,
    /// Pods whose spec changed: their processes must restart.
    pub restart_pods: Vec<String>,
}

/// Kinds a user may apply.
fn appliable(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Pod
            | Kind::ReplicaSet
            | Kind::ReplicationController
            | Kind::DaemonSet
            | Kind::Job
            | Kind::CronJob
    )
}

/// Kinds whose objects the units folder owns.
const UNIT_KINDS: [Kind; 6] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
];

/// A Job's pods are made from a template that is fixed once it ran
/// (Kubernetes: `field is immutable`); what may change is how it runs.
fn immutable_change(existing: &Object, new: &Object) -> Option<Rejection> {
    let (Object::Job(old), Object::Job(new)) = (existing, new) else {
        return None;
    };
    let fields = [
        ("spec.template", old.spec.template != new.spec.template),
        (
            "spec.completions",
            old.spec.completions != new.spec.completions,
        ),
        (
            "spec.completion_mode",
            old.spec.completion_mode != new.spec.completion_mode,
        ),
    ];
    let changed: Vec<&'static str> = fields.iter().filter(|(_, c)| *c).map(|(f, _)| *f).collect();
    if changed.is_empty() {
        return None;
    }
    Some(Rejection::Immutable {
        name: old.metadata.name.clone(),
        fields: changed,
    })
}

/// Every use of `resources` in `items` when this node cannot enforce
/// limits (`unavailable`: why not).
pub fn unenforceable_limits(items: &[Object], unavailable: Option<&str>) -> Vec<Rejection> {
    let Some(reason) = unavailable else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for obj in items {
        let Some((spec, path)) = crate::units::rules::unsupported::pod_spec_of(obj) else {
            continue;
        };
        let lists = [
            ("init_processes", &spec.init_processes),
            ("processes", &spec.processes),
        ];
        for (list, procs) in lists {
            for (i, p) in procs.iter().enumerate() {
                if p.resources.is_some() {
                    out.push(Rejection::LimitsUnavailable {
                        kind: obj.kind(),
                        name: obj.name().to_string(),
                        at: format!("{path}.{list}[{i}].resources"),
                        reason: reason.to_string(),
                    });
                }
            }
        }
    }
    out
}

/// Validates every object first; any error rejects the whole batch.
/// Objects created or changed record `changed_by` (the caller, or "units
/// folder") in their `drover.io/changed-by` annotation.
pub fn apply(
    store: &mut Store,
    items: Vec<Object>,
    units_dir: bool,
    changed_by: &str,
    now: DateTime<Utc>,
) -> Result<Applied, ApplyError> {
    let mut errors = vec![];
    for obj in &items {
        if !appliable(obj.kind()) {
            errors.push(Rejection::NotAppliable {
                kind: obj.kind(),
                name: obj.name().to_string(),
            });
            continue;
        }
        if let Err(errs) = crate::units::validate_object(obj) {
            for problem in errs {
                errors.push(Rejection::Invalid {
                    kind: obj.kind(),
                    name: obj.name().to_string(),
                    problem,
                });
            }
        }
        if let Some(existing) = store.get(obj.kind(), obj.name()) {
            errors.extend(immutable_change(existing, obj));
        }
    }
    if !errors.is_empty() {
        return Err(ApplyError(errors));
    }
    let mut applied = Applied {
        results: vec![],
        restart_pods: vec![],
    };
    for mut obj in items {
        let kind = obj.kind();
        let name = obj.name().to_string();
        {
            let meta = obj.meta_mut();
            if units_dir {
                meta.annotations.insert(
                    annotations::MANAGED_BY.into(),
                    annotations::UNITS_DIR.into(),
                );
            } else {
                meta.annotations.remove(annotations::MANAGED_BY);
            }
        }
        let action = match store.get(kind, &name) {
            None => {
                obj.meta_mut()
                    .annotations
                    .insert(annotations::CHANGED_BY.into(), changed_by.into());
                let meta = obj.meta_mut();
                if meta.uid.is_empty() {
                    meta.uid = crate::api::meta::new_uid();
                }
                meta.creation_timestamp = now;
                meta.generation = 1;
                meta.deletion_timestamp = None;
                meta.owner_references.clear();
                reset_status(&mut obj);
                store.put(obj);
                "created"
            }
            Some(existing) => {
                let unchanged = if units_dir && from_units_dir(existing.meta()) {
                    // Same file content: keep imperative changes (scale, label).
                    existing.meta().annotations.get(annotations::SOURCE_HASH)
                        == obj.meta().annotations.get(annotations::SOURCE_HASH)
                } else {
                    existing.spec_json() == obj.spec_json()
                        && existing.meta().labels == obj.meta().labels
                };
                if unchanged {
                    // Still record who owns it now (a unit moved into the
                    // folder); who changed it last and a restart under way
                    // are the daemon's own notes, kept.
                    let mut ann = obj.meta().annotations.clone();
                    for key in [annotations::CHANGED_BY, annotations::RESTARTED_AT] {
                        if let Some(v) = existing.meta().annotations.get(key) {
                            ann.insert(key.into(), v.clone());
                        }
                    }
                    store.update(kind, &name, |o| {
                        if o.meta().annotations != ann {
                            o.meta_mut().annotations = ann;
                            true
                        } else {
                            false
                        }
                    });
                    "unchanged"
                } else {
                    let spec_changed = existing.spec_json() != obj.spec_json();
                    obj.meta_mut()
                        .annotations
                        .insert(annotations::CHANGED_BY.into(), changed_by.into());
                    store.update(kind, &name, |o| {
                        let generation = o.meta().generation + 1;
                        replace_spec(o, obj);
                        o.meta_mut().generation = generation;
                        true
                    });
                    if kind == Kind::Pod && spec_changed {
                        applied.restart_pods.push(name.clone());
                    }
                    "configured"
                }
            }
        };
        applied.results.push(ApplyResult {
            kind,
            name,
            action: action.into(),
        });
    }
    Ok(applied)
}

/// Updates labels, annotations and spec; keeps identity, owners and status.
fn replace_spec(current: &mut Object, new: Object) {
    current.meta_mut().labels = new.meta().labels.clone();
    current.meta_mut().annotations = new.meta().annotations.clone();
    match (current, new) {
        (Object::Pod(c), Object::Pod(n)) => c.spec = n.spec,
        (Object::ReplicaSet(c), Object::ReplicaSet(n)) => c.spec = n.spec,
        (Object::ReplicationController(c), Object::ReplicationController(n)) => c.spec = n.spec,
        (Object::DaemonSet(c), Object::DaemonSet(n)) => c.spec = n.spec,
        (Object::Job(c), Object::Job(n)) => c.spec = n.spec,
        (Object::CronJob(c), Object::CronJob(n)) => c.spec = n.spec,
        (Object::Pod(_), _)
        | (Object::ReplicaSet(_), _)
        | (Object::ReplicationController(_), _)
        | (Object::DaemonSet(_), _)
        | (Object::Job(_), _)
        | (Object::CronJob(_), _)
        | (Object::Node(_), _)
        | (Object::Event(_), _) => {}
    }
}

fn reset_status(obj: &mut Object) {
    match obj {
        Object::Pod(p) => p.status = Default::default(),
        Object::ReplicaSet(r) => r.status = Default::default(),
        Object::ReplicationController(r) => r.status = Default::default(),
        Object::DaemonSet(d) => d.status = Default::default(),
        Object::Job(j) => j.status = Default::default(),
        Object::CronJob(c) => c.status = Default::default(),
        Object::Node(_) | Object::Event(_) => {}
    }
}

/// Units-folder objects whose file is gone: deleted (pods by graceful
/// deletion, controllers at once, their pods then by garbage collection).
/// In a cluster (`node` set) only those from this node's folder.
pub fn prune_units_dir(
    store: &mut Store,
    keep: &[(Kind, String)],
    node: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<ApplyResult> {
    let doomed: Vec<(Kind, String)> = UNIT_KINDS
        .iter()
        .flat_map(|k| store.list(*k))
        .filter(|o| from_units_dir(o.meta()))
        .filter(|o| {
            o.meta()
                .annotations
                .get(crate::api::annotations::SOURCE_NODE)
                .map(String::as_str)
                == node
        })
        .map(|o| (o.kind(), o.name().to_string()))
        .filter(|key| !keep.contains(key))
        .collect();
    let mut out = vec![];
    for (kind, name) in doomed {
        delete_object(store, kind, &name, false, now);
        out.push(ApplyResult {
            kind,
            name,
            action: "deleted".into(),
        });
    }
    out
}

/// `drover delete`: pods stop gracefully; a controller goes at once and
/// its pods follow (background cascade) or are left running unmanaged
/// (`orphan`).
pub fn delete_object(
    store: &mut Store,
    kind: Kind,
    name: &str,
    orphan: bool,
    now: DateTime<Utc>,
) -> bool {
    if kind == Kind::Pod {
        if store.pod(name).is_none() {
            return false;
        }
        mark_deleted(store, name, now);
        return true;
    }
    let Some(obj) = store.get(kind, name) else {
        return false;
    };
    let uid = obj.meta().uid.clone();
    if orphan {
        let owned: Vec<String> = store
            .pods()
            .filter(|p| p.metadata.controller().is_some_and(|o| o.uid == uid))
            .map(|p| p.metadata.name.clone())
            .collect();
        for pod in owned {
            store.update_pod(&pod, |p| {
                p.metadata.owner_references.clear();
                true
            });
        }
        // A CronJob's Jobs stay, with their pods, unmanaged.
        let jobs: Vec<String> = store
            .list(Kind::Job)
            .filter(|j| j.meta().controller().is_some_and(|o| o.uid == uid))
            .map(|j| j.name().to_string())
            .collect();
        for job in jobs {
            store.update(Kind::Job, &job, |j| {
                j.meta_mut().owner_references.clear();
                true
            });
        }
    }
    store.delete(kind, name);
    true
}
