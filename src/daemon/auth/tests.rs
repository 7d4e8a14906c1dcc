//! The rules as a table: (caller, action, object) -> allowed or the reason.

use super::*;
use crate::controllers::fixtures::{pod, rs};

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n\
    bob:x:1002:1002::/home/bob:/bin/sh\neve:x:1005:1005::/home/eve:/bin/sh\n";
const GROUP: &str = "root:x:0:\ndrover:x:998:alice,bob\nalice:x:1001:\nbob:x:1002:\n\
    eve:x:1005:\nshared:x:2000:alice\n";
const DROVER_GID: u32 = 998;
/// The daemon runs as root in these cases.
const DAEMON_UID: u32 = 0;

fn accounts() -> Accounts {
    Accounts::parse(PASSWD, GROUP)
}

fn caller(uid: u32) -> Caller {
    Caller::identify(
        uid,
        uid,
        Some(42),
        DAEMON_UID,
        Some(DROVER_GID),
        &accounts(),
    )
}

/// A Pod whose one process runs as `user` (None: unset, i.e. root), with
/// `group` and privilege escalation as given.
fn pod_as(user: Option<&str>, group: Option<&str>, escalate: bool) -> Object {
    let mut p = pod("p");
    for proc_ in &mut p.spec.processes {
        proc_.user = user.map(str::to_string);
        proc_.group = group.map(str::to_string);
        proc_.allow_privilege_escalation = escalate;
    }
    Object::Pod(p)
}

fn rs_as(user: Option<&str>) -> Object {
    let mut r = rs("web", 2);
    for proc_ in &mut r.spec.template.spec.processes {
        proc_.user = user.map(str::to_string);
    }
    Object::ReplicaSet(r)
}

/// One row: caller uid, action, target, the verdict (Err: part of the
/// reason).
type Case<'a> = (u32, Action, Option<&'a Object>, Result<(), &'a str>);

fn verdict(d: Decision) -> Result<(), String> {
    match d {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => Err(why),
    }
}

#[test]
fn roles_come_from_uid_group_and_the_daemons_own_uid() {
    let a = accounts();
    assert_eq!(caller(0).role, Role::Root);
    assert_eq!(caller(1001).role, Role::Member);
    assert_eq!(caller(1005).role, Role::Outsider);
    // The daemon run as a user (`drover up`): that user is root here, and
    // real root still is.
    let me = Caller::identify(1005, 1005, None, 1005, Some(DROVER_GID), &a);
    assert_eq!(me.role, Role::Root);
    // No drover group on the host: nobody but root gets in.
    let alice = Caller::identify(1001, 1001, None, 0, None, &a);
    assert_eq!(alice.role, Role::Outsider);
    // Primary gid as the kernel reports it makes a member too.
    let eve = Caller::identify(1005, DROVER_GID, None, 0, Some(DROVER_GID), &a);
    assert_eq!(eve.role, Role::Member);
    assert_eq!(caller(1001).describe(), "uid 1001 (alice)");
    assert_eq!(
        Caller::identify(4242, 4242, None, 0, Some(DROVER_GID), &a).describe(),
        "uid 4242"
    );
}

#[test]
fn decide_table() {
    use Action::*;
    let a = accounts();
    let root_pod = pod_as(None, None, false);
    let alice_pod = pod_as(Some("alice"), None, false);
    let alice_by_uid = pod_as(Some("1001"), None, false);
    let bob_pod = pod_as(Some("bob"), None, false);
    let alice_shared = pod_as(Some("alice"), Some("shared"), false);
    let bob_shared = pod_as(Some("bob"), Some("shared"), false);
    let alice_escalating = pod_as(Some("alice"), None, true);
    let root_rs = rs_as(None);
    let alice_rs = rs_as(Some("alice"));
    let a_node = Object::Node(crate::controllers::fixtures::node("n1"));
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // root may do anything
        (0, Change(Verb::Delete), Some(&root_pod), Ok(())),
        (0, Change(Verb::Kill), Some(&bob_pod), Ok(())),
        (0, Cordon, None, Ok(())),
        (0, Reexec, None, Ok(())),
        // a member reads everything, reloads root's folder, creates
        (1001, Read, None, Ok(())),
        (1001, Reload, None, Ok(())),
        (1001, Create, None, Ok(())),
        // ... acts on what runs as itself, by name or by number
        (1001, Change(Verb::Delete), Some(&alice_pod), Ok(())),
        (1001, Change(Verb::Kill), Some(&alice_by_uid), Ok(())),
        (1001, Change(Verb::Scale), Some(&alice_rs), Ok(())),
        (1001, Change(Verb::Label), Some(&alice_shared), Ok(())),
        // ... and on nothing else
        (1001, Change(Verb::Kill), Some(&root_pod), Err("Pod/p (process main) runs as root (no `user`): only root may signal it")),
        (1001, Change(Verb::Delete), Some(&root_pod), Err("only root may delete it")),
        (1001, Change(Verb::Restart), Some(&bob_pod), Err("Pod/p (process main) runs as user bob: only root may restart it")),
        (1002, Change(Verb::Label), Some(&bob_shared), Err("runs with group shared, which is not yours")),
        (1001, Change(Verb::Apply), Some(&alice_escalating), Err("sets allow_privilege_escalation")),
        (1001, Change(Verb::Scale), Some(&root_rs), Err("ReplicaSet/web (process main) runs as root (no `user`): only root may scale it")),
        (1001, Change(Verb::RunNow), Some(&root_rs), Err("only root may run it")),
        (1001, Cordon, None, Err("only root may cordon or uncordon a node")),
        (1001, Reexec, None, Err("only root may re-execute the daemon")),
        (1005, Reexec, None, Err("neither root nor a member")),
        (1001, Change(Verb::Label), Some(&a_node), Err("only root may change a node")),
        (0, Change(Verb::Label), Some(&a_node), Ok(())),
        // an outsider nothing at all
        (1005, Read, None, Err("uid 1005 (eve) is neither root nor a member of the drover group")),
        (1005, Change(Verb::Delete), Some(&bob_pod), Err("neither root nor a member")),
    ];
    for (uid, action, target, want) in cases {
        let got = verdict(decide(&caller(uid), action, target, &a));
        match (&got, want) {
            (Ok(()), Ok(())) => {}
            (Err(why), Err(part)) if why.contains(part) => {}
            _ => panic!(
                "uid {uid} {action:?} on {:?}: got {got:?}, want {want:?}",
                target.map(|t| t.name())
            ),
        }
    }
}

#[test]
fn a_members_processes_run_as_the_member() {
    let a = accounts();
    let alice = caller(1001);
    // Unset user: filled in with the caller, in every template and in init
    // processes too.
    let mut obj = rs_as(None);
    if let Object::ReplicaSet(r) = &mut obj {
        r.spec.template.spec.init_processes = r.spec.template.spec.processes.clone();
    }
    assert_eq!(run_as_caller(&alice, &mut obj, &a), Decision::Allow);
    let Object::ReplicaSet(r) = &obj else {
        unreachable!()
    };
    let spec = &r.spec.template.spec;
    for p in spec.init_processes.iter().chain(&spec.processes) {
        assert_eq!(p.user.as_deref(), Some("alice"));
    }
    // Its own account, by name or number, and its groups: kept.
    for (user, group) in [("alice", None), ("1001", None), ("alice", Some("shared"))] {
        let mut obj = pod_as(Some(user), group, false);
        assert_eq!(
            run_as_caller(&alice, &mut obj, &a),
            Decision::Allow,
            "{user} {group:?}"
        );
    }
    // Anything else: refused, with the process named.
    for (user, group, escalate, why) in [
        (
            Some("root"),
            None,
            false,
            "Pod/p: process main runs as user root: only root may start it",
        ),
        (Some("0"), None, false, "runs as user 0"),
        (Some("bob"), None, false, "runs as user bob"),
        (
            None,
            Some("root"),
            false,
            "runs with group root, which is not yours",
        ),
        (None, None, true, "sets allow_privilege_escalation"),
    ] {
        let mut obj = pod_as(user, group, escalate);
        match run_as_caller(&alice, &mut obj, &a) {
            Decision::Deny(got) => assert!(got.contains(why), "{got}"),
            Decision::Allow => panic!("{user:?} {group:?} {escalate} was allowed"),
        }
    }
    // A caller without a passwd entry: its processes get its uid.
    let ghost = Caller::identify(4242, DROVER_GID, None, 0, Some(DROVER_GID), &a);
    let mut obj = pod_as(None, None, false);
    assert_eq!(run_as_caller(&ghost, &mut obj, &a), Decision::Allow);
    let Object::Pod(p) = &obj else { unreachable!() };
    assert_eq!(p.spec.processes[0].user.as_deref(), Some("4242"));
    // Root's objects are left alone: root may run anything as anyone.
    let mut obj = pod_as(None, None, true);
    assert_eq!(run_as_caller(&caller(0), &mut obj, &a), Decision::Allow);
    let Object::Pod(p) = &obj else { unreachable!() };
    assert_eq!(p.spec.processes[0].user, None);
}
