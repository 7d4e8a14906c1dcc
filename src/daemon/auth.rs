//! Who may do what through the control socket (product.md §3, "Who may do
//! what"). Pure: the caller comes in as kernel credentials already
//! resolved ([`Caller`]), accounts as parsed files ([`Accounts`]); the
//! answer is [`Decision`], with the reason a refused user reads.
//!
//! The rules:
//! - **root** may do anything. "root" is uid 0, and also the daemon's own
//!   uid when it does not run as root (`drover up` as a user): that user
//!   owns everything such a daemon starts.
//! - a **member** of the socket's group (`drover`) may read everything and
//!   manage pods, but processes it starts run as itself: every process of
//!   what it applies gets `user` = the caller ([`run_as_caller`]). Naming
//!   another account in `user`, a group it is not in, or
//!   `allow_privilege_escalation` is refused. It may change, delete,
//!   label, scale, restart or signal only objects it could have created:
//!   those whose every process runs as itself ([`decide`] with
//!   [`Action::Change`]). Nodes (cordon) and the daemon itself
//!   (`daemon-reexec`) are root's.
//! - anyone else (an **outsider**: the socket's mode normally keeps them
//!   out, but a daemon run as root must not rely on it) is refused.
//!
//! Units of the units folder are not callers' requests: the daemon applies
//! what root-owned files say (see `apply::UnitSource`).
//!
//! Must not: look at anything a request says about who sent it.

use super::accounts::Accounts;
use crate::api::{Kind, Object, PodSpec, ProcessSpec};

/// The account whose group may use the socket, unless the config says
/// another (`socket_group`).
pub const DEFAULT_GROUP: &str = "drover";

/// Who sent a request, from SO_PEERCRED on its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The peer's pid when it connected (for the record only: a pid may
    /// be reused, uid and gid decide).
    pub pid: Option<i32>,
    /// The account name of `uid` in /etc/passwd, if any.
    pub name: Option<String>,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Root,
    Member,
    Outsider,
}

impl Caller {
    /// Resolves kernel credentials: root is uid 0 or `daemon_uid`; a
    /// member belongs to the socket group (`group_gid`, if that group
    /// exists) by /etc/group, /etc/passwd or the gid the kernel reports.
    pub fn identify(
        uid: u32,
        gid: u32,
        pid: Option<i32>,
        daemon_uid: u32,
        group_gid: Option<u32>,
        accounts: &Accounts,
    ) -> Caller {
        let role = if uid == 0 || uid == daemon_uid {
            Role::Root
        } else if group_gid.is_some_and(|g| accounts.in_group(uid, gid, g)) {
            Role::Member
        } else {
            Role::Outsider
        };
        let name = match uid {
            0 => Some("root".to_string()),
            _ => accounts.user_name(uid).map(str::to_string),
        };
        Caller {
            uid,
            gid,
            pid,
            name,
            role,
        }
    }

    /// The daemon itself (start-up, SIGHUP): root.
    pub fn daemon() -> Caller {
        Caller {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            pid: Some(std::process::id() as i32),
            name: None,
            role: Role::Root,
        }
    }

    /// "uid 1001 (alice)", as events and the `changed-by` annotation say.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("uid {} ({n})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }

    /// The account its processes run as: its name, or its uid as a
    /// number when it has no passwd entry.
    pub fn account(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }
}

/// What a request does, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Every GET: lists, objects, logs, events, watch.
    Read,
    /// Apply a new object, or create a Job (checked further, and
    /// rewritten, by [`run_as_caller`]).
    Create,
    /// Act on an existing object.
    Change(Verb),
    /// Cordon or uncordon a node.
    Cordon,
    /// Re-read the units folder (what root's files say).
    Reload,
    /// Re-execute the daemon in place (`daemon-reexec`): root's.
    Reexec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Delete,
    Label,
    Scale,
    Restart,
    Kill,
    /// Run a CronJob's template now (`create job --from`).
    RunNow,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Apply => "change",
            Verb::Delete => "delete",
            Verb::Label => "label",
            Verb::Scale => "scale",
            Verb::Restart => "restart",
            Verb::Kill => "signal",
            Verb::RunNow => "run",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused (403), with why.
    Deny(String),
}

/// The rule for `caller` doing `action` to `target` (the existing object
/// for [`Action::Change`]; ignored otherwise).
pub fn decide(
    caller: &Caller,
    action: Action,
    target: Option<&Object>,
    accounts: &Accounts,
) -> Decision {
    match (caller.role, action) {
        (Role::Root, _) => Decision::Allow,
        (Role::Outsider, _) => Decision::Deny(format!(
            "{} is neither root nor a member of the drover group: \
             ask root to add you to it (adduser NAME drover)",
            caller.describe()
        )),
        (Role::Member, Action::Read | Action::Reload | Action::Create) => Decision::Allow,
        (Role::Member, Action::Cordon) => {
            Decision::Deny("only root may cordon or uncordon a node".into())
        }
        (Role::Member, Action::Reexec) => {
            Decision::Deny("only root may re-execute the daemon".into())
        }
        (Role::Member, Action::Change(_)) if target.is_some_and(|t| t.kind() == Kind::Node) => {
            Decision::Deny("only root may change a node".into())
        }
        (Role::Member, Action::Change(verb)) => match target {
            None => Decision::Allow,
            Some(obj) => match foreign_process(caller, obj, accounts) {
                None => Decision::Allow,
                Some(why) => Decision::Deny(format!(
                    "{}/{} {why}: only root may {} it",
                    obj.kind(),
                    obj.name(),
                    verb.as_str()
                )),
            },
        },
    }
}

/// For a member: makes every process of `obj` run as `caller` (sets
/// `user` where it is unset), or says why it cannot: a process names
/// another user, a group the caller is not in, or asks for privilege
/// escalation. Root's objects are left as they are.
pub fn run_as_caller(caller: &Caller, obj: &mut Object, accounts: &Accounts) -> Decision {
    if caller.role == Role::Root {
        return Decision::Allow;
    }
    let (kind, name) = (obj.kind(), obj.name().to_string());
    for spec in pod_specs_mut(obj) {
        for p in spec
            .init_processes
            .iter_mut()
            .chain(spec.processes.iter_mut())
        {
            if let Some(why) = not_the_callers(caller, p, accounts) {
                return Decision::Deny(format!(
                    "{kind}/{name}: process {} {why}: only root may start it",
                    p.name
                ));
            }
            if p.user.is_none() {
                p.user = Some(caller.account());
            }
        }
    }
    Decision::Allow
}

/// Why a process of `obj` is not one `caller` could have started, for the
/// first such process; None if all are.
fn foreign_process(caller: &Caller, obj: &Object, accounts: &Accounts) -> Option<String> {
    for spec in pod_specs(obj) {
        for p in spec.init_processes.iter().chain(&spec.processes) {
            let why = match &p.user {
                None => Some("runs as root (no `user`)".to_string()),
                Some(_) => not_the_callers(caller, p, accounts),
            };
            if let Some(why) = why {
                return Some(format!("(process {}) {why}", p.name));
            }
        }
    }
    None
}

/// Why `p` would not run as `caller` alone (an unset `user` is the
/// caller's to fill in); None if it would.
fn not_the_callers(caller: &Caller, p: &ProcessSpec, accounts: &Accounts) -> Option<String> {
    if let Some(user) = &p.user {
        let same = caller.name.as_deref() == Some(user.as_str())
            || accounts.uid_of(user) == Some(caller.uid);
        if !same {
            return Some(format!("runs as user {user}"));
        }
    }
    if let Some(group) = &p.group {
        let member = accounts
            .gid_of(group)
            .is_some_and(|gid| accounts.in_group(caller.uid, caller.gid, gid));
        if !member {
            return Some(format!("runs with group {group}, which is not yours"));
        }
    }
    if p.allow_privilege_escalation {
        return Some("sets allow_privilege_escalation".into());
    }
    None
}

/// The pod specs an object starts processes from: a pod's own, a set's or
/// a Job's template, a CronJob's Job template.
fn pod_specs(obj: &Object) -> Vec<&PodSpec> {
    match obj {
        Object::Pod(p) => vec![&p.spec],
        Object::ReplicaSet(r) => vec![&r.spec.template.spec],
        Object::ReplicationController(r) => vec![&r.spec.template.spec],
        Object::DaemonSet(d) => vec![&d.spec.template.spec],
        Object::Job(j) => vec![&j.spec.template.spec],
        Object::CronJob(c) => vec![&c.spec.job_template.spec.template.spec],
        Object::Node(_) | Object::Event(_) => vec![],
    }
}

fn pod_specs_mut(obj: &mut Object) -> Vec<&mut PodSpec> {
    match obj {
        Object::Pod(p) => vec![&mut p.spec],
        Object::ReplicaSet(r) => vec![&mut r.spec.template.spec],
        Object::ReplicationController(r) => vec![&mut r.spec.template.spec],
        Object::DaemonSet(d) => vec![&mut d.spec.template.spec],
        Object::Job(j) => vec![&mut j.spec.template.spec],
        Object::CronJob(c) => vec![&mut c.spec.job_template.spec.template.spec],
        Object::Node(_) | Object::Event(_) => vec![],
    }
}

#[cfg(test)]
mod tests;
