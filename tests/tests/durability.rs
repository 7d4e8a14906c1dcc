//! Acknowledged means durable (issue 9): on a full state disk a change is
//! refused with its reason and not applied, supervision goes on, and once
//! there is room again changes are accepted without a restart.
//!
//! The state dir is a real 4 MiB tmpfs the test mounts (tests run as
//! root) and fills with a file: the flood is confined to it.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test; unmounted (lazily: the daemon may still
/// hold files in it) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .expect("running mount");
        assert!(out.status.success(), "mount tmpfs: {}", show(&out));
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Fills it with `filler` until the disk says no more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.path.display()),
            }
        }
        // Byte by byte for the last partial block.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn replicas(d: &TestDaemon, rs: &str) -> Option<u64> {
    d.api(&format!("/v1/replicasets/{rs}"))
        .and_then(|v| v["spec"]["replicas"].as_u64())
}

fn restarts(d: &TestDaemon, pod: &str) -> u32 {
    d.pod(pod)
        .map(|p| p.status.processes.iter().map(|s| s.restart_count).sum())
        .unwrap_or(0)
}

/// An environment of 8 KiB: every change to an object carrying it needs
/// more than a page of a full disk, whatever room is left at the end of
/// the journal's last page (tmpfs and ext4 both hand out whole blocks).
fn big_env(unit: String) -> String {
    format!("{unit}env = {{ PADDING = \"{}\" }}\n", "x".repeat(8192))
}

/// Before: `apply` printed "created" and `scale` exited 0 while the daemon
/// logged "No space left on device", and after a `kill -9` the new
/// ReplicaSet was gone and the scale reverted.
#[test]
fn a_full_state_disk_refuses_changes_keeps_supervising_and_recovers_without_a_restart() {
    let crashing = big_env(pod_unit("crashing", "Always", &["sh", "-c", "exit 3"], ""));
    let mounted: std::cell::RefCell<Option<Tmpfs>> = Default::default();
    let prepare = |dir: &Path| {
        *mounted.borrow_mut() = Some(Tmpfs::mount(&dir.join("state"), "4m"));
    };
    let mut d = TestDaemon::start_with(
        &[
            ("web.toml", &big_env(rs_unit("web", "web", 1))),
            ("crashing.toml", &crashing),
        ],
        Options {
            prepare: Some(&prepare),
            ..Options::default()
        },
    );
    let tmpfs = mounted.borrow_mut().take().expect("mounted");
    d.wait_pods("app=web", 1);
    d.wait_persisted();

    let filler = tmpfs.fill();
    let state = d.path("state").display().to_string();
    let reason = format!("state not saved: No space left on device ({state}); nothing was changed");

    // Refused, with the reason, and not applied in memory either.
    let refused = d.unit_file("refused.toml", &big_env(rs_unit("refused", "refused", 1)));
    let err = d.drover_fails(&["apply", "-f", refused.to_str().unwrap()], 1);
    assert!(err.contains(&reason), "apply: {err}");
    assert!(
        d.api("/v1/replicasets/refused").is_none(),
        "refused, yet in memory"
    );
    let err = d.drover_fails(&["scale", "rs", "web", "--replicas", "3"], 1);
    assert!(err.contains(&reason), "scale: {err}");
    assert_eq!(
        replicas(&d, "web"),
        Some(1),
        "refused, yet scaled in memory"
    );
    let err = d.drover_fails(&["label", "pod", "crashing", "tier=x"], 1);
    assert!(err.contains(&reason), "label: {err}");

    // Supervision goes on: the crashing pod keeps being restarted.
    let now = restarts(&d, "crashing");
    d.wait_until("the crashing pod restarted twice more", SOON, || {
        restarts(&d, "crashing") >= now + 2
    });
    // Reads still work, and the web pod is still there.
    d.wait_pods("app=web", 1);

    // Room again: accepted at once, no restart of the daemon.
    let pid = d.daemon_pid();
    std::fs::remove_file(&filler).unwrap();
    let later = d.unit_file("later.toml", &rs_unit("later", "later", 1));
    let out = d.drover_ok(&["apply", "-f", later.to_str().unwrap()]);
    assert!(out.contains("created"), "{out}");
    d.wait_pods("app=later", 1);
    assert_eq!(d.daemon_pid(), pid);

    // What was acknowledged survives a kill -9; what was refused never
    // happened.
    d.restart();
    assert!(
        d.api("/v1/replicasets/later").is_some(),
        "acknowledged, then lost"
    );
    assert!(d.api("/v1/replicasets/refused").is_none());
    assert_eq!(replicas(&d, "web"), Some(1));
    d.wait_pods("app=web", 1);
    assert!(
        !d.log().contains("its pod is gone"),
        "a pod created after an acknowledged apply was not persisted\n{}",
        d.log()
    );
    d.teardown();
    drop(tmpfs);
}
