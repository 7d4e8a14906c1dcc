//! Where things live in etcd, and how values are encoded. Pure.
//!
//! ```text
//! /drover/<plural>/<name>      an object as JSON (`/drover/pods/web-x2k9q`,
//!                              `/drover/nodes/n1`), resource_version left
//!                              out: it is the key's mod_revision
//! /drover/podstatus/<pod>      a pod's status as its node last reported it,
//!                              with the pod's uid ({"uid":..,"status":..})
//! /drover/leases/<node>        a node's heartbeat: exists while the node's
//!                              lease (10 s) is kept alive
//! /drover/leader               the controllers' leader: holder name, on the
//!                              leader's lease
//! ```
//!
//! Why pod status has a key of its own, written only by the pod's node:
//! the agent writes status often (a process starts, a probe flips
//! readiness, a restart), the control plane writes the pod's metadata and
//! binding (adopt, release, label, delete, `status.node_name`). On one key
//! every readiness flip would move the pod's version and fail the
//! controllers' compare-and-swap, and every controller write would fail
//! the agent's. Apart, neither writer invalidates the other: a pod's
//! `resource_version` is its object key's revision, which status writes
//! do not move. The node's writes are guarded by the pod key existing
//! (no status for a deleted pod) and carry the pod's uid, so a status left
//! by a deleted pod never attaches to a new one of the same name. The
//! binding stays authoritative in the object key: merge keeps its
//! `node_name`. Node heartbeats are apart for the same reason (Kubernetes'
//! node Lease objects): a keep-alive moves no key, so an idle cluster's
//! watch is silent.

use crate::api::{Kind, Object, Pod, PodStatus};
use serde::{Deserialize, Serialize};

pub const ROOT: &str = "/drover/";
pub const LEADER_KEY: &str = "/drover/leader";
const STATUS_DIR: &str = "podstatus";
const LEASE_DIR: &str = "leases";

/// What a key under [`ROOT`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    Object(Kind, String),
    PodStatus(String),
    NodeLease(String),
    Leader,
}

pub fn object_key(kind: Kind, name: &str) -> String {
    format!("{ROOT}{}/{name}", kind.plural())
}

/// Prefix of every object of `kind` (`/drover/pods/`).
pub fn kind_prefix(kind: Kind) -> String {
    format!("{ROOT}{}/", kind.plural())
}

pub fn status_key(pod: &str) -> String {
    format!("{ROOT}{STATUS_DIR}/{pod}")
}

pub fn status_prefix() -> String {
    format!("{ROOT}{STATUS_DIR}/")
}

pub fn node_lease_key(node: &str) -> String {
    format!("{ROOT}{LEASE_DIR}/{node}")
}

pub fn node_lease_prefix() -> String {
    format!("{ROOT}{LEASE_DIR}/")
}

/// The meaning of `key`, or None for keys drover does not own (other
/// tools' keys under /drover/, names with a `/`).
pub fn parse(key: &[u8]) -> Option<KeyRef> {
    let key = std::str::from_utf8(key).ok()?;
    if key == LEADER_KEY {
        return Some(KeyRef::Leader);
    }
    let (dir, name) = key.strip_prefix(ROOT)?.split_once('/')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let name = name.to_string();
    match dir {
        STATUS_DIR => Some(KeyRef::PodStatus(name)),
        LEASE_DIR => Some(KeyRef::NodeLease(name)),
        plural => Kind::ALL
            .into_iter()
            .find(|k| k.plural() == plural)
            .map(|k| KeyRef::Object(k, name)),
    }
}

/// The JSON stored for `obj`: its version is left out (it is the key's
/// mod_revision, known only after the write), and a pod keeps only the
/// control plane's part of its status (see the module comment).
pub fn encode(mut obj: Object) -> Vec<u8> {
    obj.meta_mut().resource_version = 0;
    if let Object::Pod(pod) = &mut obj {
        pod.status = control_plane_status(&pod.status);
    }
    serde_json::to_vec(&obj).expect("objects always serialise")
}

/// An object stored as `value`, whose key's last write was at
/// `mod_revision`.
pub fn decode(value: &[u8], mod_revision: i64) -> serde_json::Result<Object> {
    let mut obj: Object = serde_json::from_slice(value)?;
    obj.meta_mut().resource_version = mod_revision.max(0) as u64;
    Ok(obj)
}

/// What the control plane owns in a pod's status: the binding, and the
/// phase and reason it set before any node reported (Pending,
/// `Unschedulable` with the scheduler's message).
pub fn control_plane_status(status: &PodStatus) -> PodStatus {
    PodStatus {
        phase: status.phase,
        node_name: status.node_name.clone(),
        reason: status.reason.clone(),
        message: status.message.clone(),
        ..PodStatus::default()
    }
}

/// The value of a `/drover/podstatus/<pod>` key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The pod this status is about; a status whose uid differs from the
    /// pod's (left by an earlier pod of the same name) is ignored.
    pub uid: String,
    pub status: PodStatus,
}

/// `pod` as users see it: its node's status when there is one for this
/// very pod, with the binding kept from the object key.
pub fn merge_status(pod: &mut Pod, node: Option<&NodeStatus>) {
    let Some(node) = node.filter(|n| n.uid == pod.metadata.uid) else {
        return;
    };
    let binding = pod.status.node_name.take();
    pod.status = node.status.clone();
    pod.status.node_name = binding;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodPhase;
    use crate::controllers::fixtures::{pod, PodFixture};

    #[test]
    fn keys_round_trip() {
        let cases = [
            (
                object_key(Kind::Pod, "web-1"),
                KeyRef::Object(Kind::Pod, "web-1".into()),
            ),
            (
                object_key(Kind::ReplicationController, "rc"),
                KeyRef::Object(Kind::ReplicationController, "rc".into()),
            ),
            (
                object_key(Kind::Node, "n1"),
                KeyRef::Object(Kind::Node, "n1".into()),
            ),
            (status_key("web-1"), KeyRef::PodStatus("web-1".into())),
            (node_lease_key("n1"), KeyRef::NodeLease("n1".into())),
            (LEADER_KEY.to_string(), KeyRef::Leader),
        ];
        for (key, want) in cases {
            assert_eq!(parse(key.as_bytes()), Some(want), "{key}");
        }
        assert_eq!(object_key(Kind::Pod, "a"), "/drover/pods/a");
        assert!(object_key(Kind::Pod, "a").starts_with(&kind_prefix(Kind::Pod)));
    }

    #[test]
    fn foreign_keys_are_not_ours() {
        for key in [
            "/other/pods/a",
            "/drover/pods/",
            "/drover/pods/a/b",
            "/drover/widgets/a",
            "/drover/leaderboard",
            "/drover",
        ] {
            assert_eq!(parse(key.as_bytes()), None, "{key}");
        }
        assert_eq!(parse(&[0xff, 0xfe]), None);
    }

    #[test]
    fn encode_leaves_out_version_and_node_status() {
        let mut p = pod("web").on("n1").ready();
        p.metadata.resource_version = 41;
        let stored = encode(Object::Pod(p.clone()));
        let back = decode(&stored, 57).unwrap();
        let Object::Pod(back) = back else { panic!() };
        assert_eq!(back.metadata.resource_version, 57, "version is the key's");
        assert_eq!(back.status.node_name.as_deref(), Some("n1"), "binding kept");
        assert_eq!(back.status.phase, PodPhase::Running);
        assert!(
            back.status.processes.is_empty(),
            "process status is the node's"
        );
        assert_eq!(back.spec, p.spec);
    }

    #[test]
    fn merge_status_table() {
        let bound = pod("web").on("n1");
        let from_node = |uid: &str, node: Option<&str>| NodeStatus {
            uid: uid.into(),
            status: PodStatus {
                node_name: node.map(String::from),
                ..pod("x").running().status
            },
        };
        // (case, node status, want phase, want node_name)
        let cases = [
            (
                "no report yet: the control plane's status",
                None,
                PodPhase::Pending,
                Some("n1"),
            ),
            (
                "the node's report for this pod",
                Some(from_node("uid-web", Some("n1"))),
                PodPhase::Running,
                Some("n1"),
            ),
            (
                "a report left by an older pod of the same name is ignored",
                Some(from_node("uid-older", Some("n1"))),
                PodPhase::Pending,
                Some("n1"),
            ),
            (
                "the binding comes from the object key, not the report",
                Some(from_node("uid-web", Some("elsewhere"))),
                PodPhase::Running,
                Some("n1"),
            ),
        ];
        for (name, node, phase, node_name) in cases {
            let mut p = bound.clone();
            merge_status(&mut p, node.as_ref());
            assert_eq!(p.status.phase, phase, "{name}");
            assert_eq!(p.status.node_name.as_deref(), node_name, "{name}");
        }
    }
}
