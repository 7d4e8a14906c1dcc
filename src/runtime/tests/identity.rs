//! Process identity, ExitWatch (pidfd), and the trait's object safety.

use super::*;

// ---- identity

#[test]
fn identity_names_one_process() {
    let mut sb = Sandbox::new();
    let spawned = sb.start(&["sleep", "1000"]);
    let pid = spawned.pid;
    assert_eq!(spawned.identity.boot_id, boot_id());
    assert_eq!(sb.rt.identity(pid), Some(spawned.identity.clone()));
    assert!(is_same_process(pid, &spawned.identity));
    let mut later = spawned.identity.clone();
    later.start_ticks += 1;
    assert!(
        !is_same_process(pid, &later),
        "same pid, other start: reused pid"
    );
    let mut other_boot = spawned.identity.clone();
    other_boot.boot_id = "00000000-0000-0000-0000-000000000000".to_string();
    assert!(
        !is_same_process(pid, &other_boot),
        "same pid and tick, other boot"
    );

    sb.rt.signal(pid, Signal::KILL).unwrap();
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
    assert_eq!(sb.rt.identity(pid), None);
    assert!(!is_same_process(pid, &spawned.identity));
}

// ---- ExitWatch (pidfd)

#[tokio::test]
async fn exit_watch_resolves_when_a_child_exits() {
    let mut sb = Sandbox::new();
    let pid = sb.start(&["sleep", "1000"]).pid;
    let watch = ExitWatch::open(pid).expect("pidfd");
    assert_eq!(watch.pid(), pid);
    assert!(!watch.has_exited());
    watch.signal(Signal::KILL).expect("pidfd_send_signal");
    tokio::time::timeout(DEADLINE, watch.exited())
        .await
        .expect("pidfd readable within the deadline")
        .unwrap();
    assert!(watch.has_exited());
    watch.signal(Signal::KILL).expect("ESRCH after exit is Ok");
    assert_eq!(sb.wait_exit(pid), ExitReason::Signal(Signal::KILL));
}

#[tokio::test]
async fn exit_watch_adopts_a_process_that_is_not_our_child() {
    let mut sb = Sandbox::new();
    // The subshell exits at once: its `sleep` is re-parented away from us
    // (this test process is not a subreaper), like a pod after a daemon
    // restart.
    let leader = sb.start(&["sh", "-c", "(exec setsid sleep 1000 &)"]).pid;
    assert_eq!(sb.wait_exit(leader), ExitReason::Code(0));
    let me = std::process::id() as i32;
    let orphan = wait_until("the orphan to show up, re-parented", || {
        sb.marked()
            .into_iter()
            .find(|p| procfs::stat(*p).is_some_and(|s| s.ppid != me && s.session == *p))
    });
    let identity = sb.rt.identity(orphan).unwrap();
    let mut stale = identity.clone();
    stale.start_ticks -= 1;
    assert!(
        ExitWatch::adopt(orphan, &stale).unwrap().is_none(),
        "wrong identity"
    );
    let watch = ExitWatch::adopt(orphan, &identity)
        .unwrap()
        .expect("same process");
    assert!(!watch.has_exited());
    watch.signal_group(Signal::TERM).unwrap();
    tokio::time::timeout(DEADLINE, watch.exited())
        .await
        .expect("non-child exit seen through the pidfd")
        .unwrap();
    assert!(!alive(orphan));
}

#[test]
fn exit_watch_outside_a_runtime_is_an_error_not_a_panic() {
    let me = std::process::id() as i32;
    assert!(ExitWatch::open(me).is_err());
}

#[test]
fn runtimes_are_object_safe_and_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LinuxRuntime>();
    assert_send_sync::<FakeRuntime>();
    let rts: Vec<Box<dyn ProcessRuntime + Send>> =
        vec![Box::new(LinuxRuntime::new()), Box::new(FakeRuntime::new())];
    assert_eq!(rts.len(), 2);
}
