//! Who may turn no_new_privs off. Every process runs with no_new_privs
//! (exec can never gain privileges) unless its unit sets
//! `allow_privilege_escalation = true` AND the unit may: the one rule is
//! [`may_escalate_privileges`]. Until the daemon knows who applied a
//! unit (caller identity), that means a unit of the units folder of a
//! daemon running as root: such a daemon refuses its whole folder unless
//! only root can change it, so root wrote the unit. Anything applied
//! through the socket (by any member of the `drover` group) keeps
//! no_new_privs, with a warning event saying why.

use crate::api::{annotations, ObjectMeta, Pod};
use crate::store::Store;

/// Whether `pod`'s processes may run without no_new_privs when their unit
/// asks: the pod, or the object that owns it (a ReplicaSet, a Job, the
/// CronJob above a Job), came from a root-owned unit file of the units
/// folder of a daemon running as root.
pub fn may_escalate_privileges(store: &Store, pod: &Pod, daemon_is_root: bool) -> bool {
    daemon_is_root && from_units_folder(store, &pod.metadata, 0)
}

/// The object, or the chain of controllers above it, is managed by the
/// units folder.
fn from_units_folder(store: &Store, meta: &ObjectMeta, depth: usize) -> bool {
    if meta
        .annotations
        .get(annotations::MANAGED_BY)
        .map(String::as_str)
        == Some(annotations::UNITS_DIR)
    {
        return true;
    }
    // Pod <- ReplicaSet, Pod <- Job <- CronJob: never deeper.
    if depth >= 3 {
        return false;
    }
    let Some(owner) = meta.controller() else {
        return false;
    };
    store
        .get(owner.kind, &owner.name)
        .filter(|o| o.meta().uid == owner.uid)
        .is_some_and(|o| from_units_folder(store, o.meta(), depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Kind, Object, OwnerRef};

    fn pod(owner: Option<OwnerRef>, managed: bool) -> Pod {
        let mut meta = ObjectMeta::new("p", chrono::Utc::now());
        meta.owner_references.extend(owner);
        if managed {
            meta.annotations.insert(
                annotations::MANAGED_BY.into(),
                annotations::UNITS_DIR.into(),
            );
        }
        Pod {
            metadata: meta,
            spec: Default::default(),
            status: Default::default(),
        }
    }

    #[test]
    fn only_units_folder_objects_of_a_root_daemon_may_escalate() {
        let mut store = Store::new();
        assert!(may_escalate_privileges(&store, &pod(None, true), true));
        assert!(!may_escalate_privileges(&store, &pod(None, true), false));
        assert!(!may_escalate_privileges(&store, &pod(None, false), true));

        // A pod of a units-folder ReplicaSet: through its owner.
        let mut rs = pod(None, true);
        rs.metadata.name = "rs".into();
        let owner = OwnerRef {
            kind: Kind::Pod,
            name: "rs".into(),
            uid: rs.metadata.uid.clone(),
        };
        store.put(Object::Pod(rs));
        assert!(may_escalate_privileges(
            &store,
            &pod(Some(owner.clone()), false),
            true
        ));
        // An owner of the same name but another uid is not that owner.
        let stranger = OwnerRef {
            uid: "other".into(),
            ..owner
        };
        assert!(!may_escalate_privileges(
            &store,
            &pod(Some(stranger), false),
            true
        ));
    }
}
