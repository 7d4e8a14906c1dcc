//! Issue 9: when pids run out, starting processes is an error, never a
//! panic. Confined: the test moves its own (isolated) process into a
//! pids cgroup of its own with no slot left, never touching the machine's
//! pid table, and removes that cgroup at the end.

use super::*;
use std::path::Path;

const PIDS_DIR: &str = "DROVER_TEST_PIDS_DIR";

/// This process's pids cgroup directory and the one to return to.
fn own_pids_cgroup() -> PathBuf {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = text
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
        .expect("a v1 pids hierarchy");
    PathBuf::from("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'))
}

#[test]
fn spawning_without_a_pid_slot_is_an_error_not_a_panic() {
    let dir = own_pids_cgroup().join(format!("drover-test-exhaust-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    // The isolated copy moves itself in; whatever happens to it, the
    // cgroup is removed here once it is gone.
    let result = std::panic::catch_unwind(|| {
        run_isolated_with(
            module_path!(),
            "spawning_without_a_pid_slot_is_an_error_not_a_panic_isolated",
            &[(PIDS_DIR, dir.to_str().unwrap())],
        )
    });
    let removed = wait_until_removed(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    removed.unwrap();
}

fn wait_until_removed(dir: &Path) -> io::Result<()> {
    // The isolated process has exited; its killed children may take a
    // moment to leave.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return other,
        }
    }
}

#[test]
#[ignore = "run in its own process by spawning_without_a_pid_slot_is_an_error_not_a_panic"]
fn spawning_without_a_pid_slot_is_an_error_not_a_panic_isolated() {
    if !isolated() {
        return;
    }
    let dir = PathBuf::from(std::env::var(PIDS_DIR).expect("set by the wrapper"));
    let home = own_pids_cgroup();
    let mut sb = Sandbox::new();
    // Everything the spawns need, before the slots run out.
    let reqs: Vec<SpawnRequest> = (0..40).map(|_| sb.req(&["sleep", "1000"])).collect();
    fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).unwrap();
    let current = fs::read_to_string(dir.join("pids.current")).unwrap();
    let current: u64 = current.trim().parse().unwrap();

    // No slot at all: spawn_many cannot make its thread and no clone
    // succeeds. Before issue 9 this panicked ("failed to spawn thread").
    fs::write(dir.join("pids.max"), current.to_string()).unwrap();
    let results = sb.rt.spawn_many(&reqs);
    assert_eq!(results.len(), reqs.len());
    for r in &results {
        match r {
            Err(SpawnError::ProcessLimit { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::EAGAIN))
            }
            other => panic!("want ProcessLimit, got {other:?}"),
        }
    }

    // Two slots: two start (on this thread), the third is refused.
    fs::write(dir.join("pids.max"), (current + 2).to_string()).unwrap();
    let results = sb.rt.spawn_many(&reqs[..3]);
    let started: Vec<i32> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|s| s.pid)
        .collect();
    sb.unreaped.extend(&started);
    assert_eq!(started.len(), 2, "{results:?}");
    assert!(matches!(results[2], Err(SpawnError::ProcessLimit { .. })));
    for pid in started {
        sb.rt.signal(pid, Signal::KILL).unwrap();
        sb.wait_exit(pid);
    }
    fs::write(home.join("cgroup.procs"), std::process::id().to_string()).unwrap();
}
