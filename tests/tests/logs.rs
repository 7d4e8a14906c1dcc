//! `drover logs`: following through the daemon's API (`logs -f` streams
//! from the daemon, never from the files: the CLI may run in another mount
//! namespace or, in a cluster, on another node), and the log folders the
//! daemon collects at start.
//!
//! Pods here write on demand: `cat` reads a FIFO the test writes into
//! (opened read-write, so `cat` never sees an end), and every run first
//! prints `start`.

use crate::harness::*;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pod `name` whose process prints `start`, then whatever is written
/// into the FIFO `fifo` (see [`feed`]).
fn fed_pod(name: &str, restart_policy: &str, fifo: &Path) -> String {
    let fifo = fifo.display();
    pod_unit(
        name,
        restart_policy,
        &["sh", "-c", &format!("echo start; exec cat <>{fifo}")],
        "",
    )
}

fn make_fifo(d: &TestDaemon, name: &str) -> PathBuf {
    let path = d.file(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    path
}

/// Writes `text` into the FIFO a pod's `cat` reads. Non-blocking: with no
/// reader the open fails (ENXIO) instead of hanging the test.
fn feed(d: &TestDaemon, fifo: &Path, text: &str) {
    let mut f = d.wait_for("a reader on the FIFO", SOON, || {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .ok()
    });
    f.write_all(text.as_bytes()).unwrap();
}

/// `drover logs -f ...` running in the background, its stdout collected.
struct Follower {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Follower {
    fn start(d: &TestDaemon, args: &[&str]) -> Follower {
        Self::start_command(d.command(&[&["logs", "-f"], args].concat()))
    }

    fn start_command(mut cmd: std::process::Command) -> Follower {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Follower { child, out }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until everything printed so far is `want`.
    #[track_caller]
    fn wait_output(&self, d: &TestDaemon, want: &str) {
        d.wait_until(&format!("logs -f printed {want:?}"), SOON, || {
            let seen = self.output();
            assert!(
                want.starts_with(&seen),
                "logs -f printed {seen:?}, expected {want:?}"
            );
            seen == want
        });
    }

    #[track_caller]
    fn wait_exit(&mut self, d: &TestDaemon) -> ExitStatus {
        d.wait_for("logs -f to exit", SOON, || self.child.try_wait().unwrap())
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn restarts(d: &TestDaemon, pod: &str) -> u32 {
    d.pod_now(pod).status.processes[0].restart_count
}

#[test]
fn logs_follow_streams_appends_through_rotation_and_restarts() {
    // Rotate past 200 bytes, so one long line forces a copy-truncate.
    let config = format!("{DEFAULT_CONFIG}log_max_size = 200\n");
    let d = TestDaemon::start_with(
        &[],
        Options {
            config: &config,
            ..Options::default()
        },
    );
    let fifo = make_fifo(&d, "feed");
    d.apply("feed.toml", &fed_pod("feed", "Always", &fifo));
    d.wait_running("feed");
    d.wait_until("the first run logged", SOON, || {
        d.drover_ok(&["logs", "feed"]) == "start\n"
    });

    let f = Follower::start(&d, &["feed"]);
    let mut want = String::from("start\n");
    f.wait_output(&d, &want);

    // Lines written after `logs -f` started.
    feed(&d, &fifo, "one\n");
    want.push_str("one\n");
    f.wait_output(&d, &want);

    // A rotation: nothing is lost or repeated across the truncate.
    let long = format!("{}\n", "x".repeat(300));
    feed(&d, &fifo, &long);
    want.push_str(&long);
    let rotated = d.path("logs/feed/main.log.1");
    d.wait_until("the log rotated", SOON, || rotated.exists());
    feed(&d, &fifo, "after rotation\n");
    want.push_str("after rotation\n");
    f.wait_output(&d, &want);

    // A new run of the process: followed from its first line.
    d.drover_ok(&["restart", "pod", "feed"]);
    d.wait_until("the second run running", SOON, || {
        restarts(&d, "feed") == 1 && all_running(&d.pod_now("feed"))
    });
    want.push_str("start\n");
    f.wait_output(&d, &want);
    feed(&d, &fifo, "second run\n");
    want.push_str("second run\n");
    f.wait_output(&d, &want);
}

#[test]
fn logs_follow_ends_when_the_pod_is_deleted() {
    let d = TestDaemon::start(&[]);
    let fifo = make_fifo(&d, "feed");
    d.apply("feed.toml", &fed_pod("feed", "Always", &fifo));
    d.wait_running("feed");
    let mut f = Follower::start(&d, &["pod/feed"]);
    f.wait_output(&d, "start\n");
    feed(&d, &fifo, "bye\n");
    f.wait_output(&d, "start\nbye\n");

    d.drover_ok(&["delete", "pod", "feed"]);
    let status = f.wait_exit(&d);
    assert!(status.success(), "{status}: {}", f.stderr());
    assert_eq!(f.output(), "start\nbye\n");
}

#[test]
fn logs_follow_ends_when_the_pod_finishes() {
    let d = TestDaemon::start(&[]);
    let fifo = make_fifo(&d, "feed");
    // Reads one line, says so, exits 0: the pod Succeeds.
    let once = pod_unit(
        "once",
        "Never",
        &[
            "sh",
            "-c",
            &format!("echo start; read x <>{}; echo got $x", fifo.display()),
        ],
        "",
    );
    d.apply("once.toml", &once);
    d.wait_running("once");
    let mut f = Follower::start(&d, &["once"]);
    f.wait_output(&d, "start\n");
    feed(&d, &fifo, "bye\n");
    let status = f.wait_exit(&d);
    assert!(status.success(), "{status}: {}", f.stderr());
    assert_eq!(f.output(), "start\ngot bye\n");

    // A finished pod's log is printed whole, and `-f` returns, as kubectl
    // does for a terminated container.
    let out = d.drover_ok(&["logs", "-f", "once"]);
    assert_eq!(out, "start\ngot bye\n");
    let out = d.drover_ok(&["logs", "-f", "once", "--tail", "1"]);
    assert_eq!(out, "got bye\n");
}

#[test]
fn logs_follow_with_tail_process_and_previous() {
    let d = TestDaemon::start(&[]);
    let fifo = make_fifo(&d, "feed");
    let duo = format!(
        "kind = \"Pod\"\nname = \"duo\"\n[spec]\ntermination_grace_period = \"2s\"\n\
         [[spec.processes]]\nname = \"quiet\"\ncommand = [\"sh\", \"-c\", \"echo hush; exec sleep 1000\"]\n\
         [[spec.processes]]\nname = \"talk\"\n\
         command = [\"sh\", \"-c\", \"echo a; echo b; echo c; exec cat <>{}\"]\n",
        fifo.display()
    );
    d.apply("duo.toml", &duo);
    d.wait_running("duo");
    d.wait_until("talk logged", SOON, || {
        d.drover_ok(&["logs", "duo", "-c", "talk"]) == "a\nb\nc\n"
    });
    let err = d.drover_fails(&["logs", "-f", "duo"], 1);
    assert_eq!(
        err,
        "error: a process name must be specified for pod duo with -c, choose one of: [quiet talk]\n"
    );

    let f = Follower::start(&d, &["duo", "-c", "talk", "--tail", "2"]);
    f.wait_output(&d, "b\nc\n");
    feed(&d, &fifo, "d\n");
    f.wait_output(&d, "b\nc\nd\n");
    drop(f);

    // `-f --previous`: the run before, printed once (it will not grow).
    d.drover_ok(&["kill", "pod", "duo", "--signal", "KILL"]);
    d.wait_until("both processes restarted", SOON, || {
        let p = d.pod_now("duo");
        all_running(&p) && p.status.processes.iter().all(|s| s.restart_count == 1)
    });
    let out = d.drover_ok(&["logs", "-f", "duo", "-c", "talk", "--previous"]);
    assert_eq!(out, "a\nb\nc\nd\n");
}

/// The count of inotify instances the daemon holds open.
fn inotify_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.as_os_str() == "anon_inode:inotify")
        .count()
}

#[test]
fn logs_follow_releases_its_watch_when_the_client_goes_away() {
    let d = TestDaemon::start(&[]);
    let fifo = make_fifo(&d, "feed");
    d.apply("feed.toml", &fed_pod("feed", "Always", &fifo));
    d.wait_running("feed");
    let daemon = d.daemon_pid();
    let before = inotify_fds(daemon);

    let mut f = Follower::start(&d, &["feed"]);
    f.wait_output(&d, "start\n");
    assert_eq!(inotify_fds(daemon), before + 1, "one watch per follow");
    // The client goes while the log is idle: no write will come to fail.
    let _ = f.child.kill();
    let _ = f.child.wait();
    d.wait_until("the daemon dropped the follow's watch", SOON, || {
        inotify_fds(daemon) == before
    });
    // And the daemon still serves everything else.
    feed(&d, &fifo, "later\n");
    d.wait_until("the pod logged on", SOON, || {
        d.drover_ok(&["logs", "feed"]) == "start\nlater\n"
    });
}

#[test]
fn logs_follow_of_a_process_not_started_yet_is_refused() {
    let d = TestDaemon::start(&[]);
    // No node has this label: the pod stays Pending, nothing started.
    d.apply(
        "nowhere.toml",
        &pod_unit(
            "nowhere",
            "Always",
            &["sleep", "1000"],
            "node_selector = { disk = \"none\" }",
        ),
    );
    d.wait_until("the pod stored", SOON, || d.pod("nowhere").is_some());
    let err = d.drover_fails(&["logs", "-f", "nowhere"], 1);
    assert_eq!(
        err,
        "error: process \"main\" in pod \"nowhere\" is waiting to start\n"
    );
}

/// The CLI reads nothing but the socket: run in a mount namespace where the
/// log folder is an empty tmpfs, `logs -f` still streams the pod's log.
/// (Before the fix, the CLI asked for the file's path and followed it
/// itself, and failed here with "No such file or directory".)
#[test]
fn logs_follow_works_where_the_log_files_cannot_be_seen() {
    let d = TestDaemon::start(&[]);
    let fifo = make_fifo(&d, "feed");
    d.apply("feed.toml", &fed_pod("feed", "Always", &fifo));
    d.wait_running("feed");
    let logs = d.path("logs");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(&logs)
        .arg(DROVER)
        .arg("--socket")
        .arg(d.socket())
        .args(["logs", "-f", "feed"])
        .stdin(Stdio::null());
    let mut f = Follower::start_command(cmd);
    f.wait_output(&d, "start\n");
    feed(&d, &fifo, "seen through the socket\n");
    f.wait_output(&d, "start\nseen through the socket\n");
    assert!(f.running());
    // The tmpfs went with the namespace: the daemon's folder is intact.
    assert!(logs.join("feed/main.log").exists());
}

/// Issue 9: a log folder whose pod never reached the state file (the daemon
/// was killed between creating it and writing the pod down) is removed at
/// the next start; the folder of a pod that exists is kept, with its log.
#[test]
fn log_folders_no_pod_owns_are_removed_at_start() {
    let mut d = TestDaemon::start(&[]);
    d.apply(
        "keep.toml",
        &pod_unit(
            "keep",
            "Always",
            &["sh", "-c", "echo kept; exec sleep 1000"],
            "",
        ),
    );
    d.wait_running("keep");
    d.wait_until("keep logged", SOON, || {
        d.drover_ok(&["logs", "keep"]) == "kept\n"
    });
    d.wait_persisted();
    d.kill9();

    // What a crash leaves: a pod's folder and log, and no pod in the store.
    let ghost = d.path("logs/ghost-x1y2z");
    std::fs::create_dir(&ghost).unwrap();
    std::fs::write(ghost.join("main.log"), "never saved\n").unwrap();
    std::fs::write(ghost.join("main.previous.log"), "older\n").unwrap();
    // Not folders of pods: left alone.
    std::fs::write(d.path("logs/README"), "a file\n").unwrap();

    d.restart();
    d.wait_until("the ghost folder removed", SOON, || !ghost.exists());
    assert!(d.path("logs/README").exists());
    assert_eq!(d.drover_ok(&["logs", "keep"]), "kept\n");
    assert!(d.path("logs/keep/main.log").exists());
    assert!(d
        .log()
        .contains("removed the log folders of gone pods: ghost-x1y2z"));
}

/// A tmpfs of `mib` MiB mounted at PATH for one test: a disk small enough
/// to fill. Unmounted lazily when dropped, since a process the test
/// started may still hold a file in it open.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", show(&out));
        Tmpfs(path.to_path_buf())
    }

    /// (bytes used, bytes still free)
    fn usage(&self) -> (u64, u64) {
        let st = nix::sys::statvfs::statvfs(&self.0).unwrap();
        let block = st.fragment_size();
        (
            (st.blocks() - st.blocks_free()) * block,
            st.blocks_available() * block,
        )
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A daemon rotating logs at 1 MiB whose log folder is a tmpfs of `mib` MiB.
fn daemon_with_small_log_disk(mib: u64) -> (TestDaemon, Tmpfs) {
    let config = format!("{DEFAULT_CONFIG}log_max_size = \"1Mi\"\n");
    let mut d = TestDaemon::start_with(
        &[],
        Options {
            config: &config,
            ..Options::default()
        },
    );
    // The daemon made the folder; it must watch the tmpfs, not what the
    // mount hides, so it starts again on top of it.
    d.kill9();
    let disk = Tmpfs::mount(&d.path("logs"), mib);
    d.restart();
    (d, disk)
}

/// Bytes a process has written so far (`wchar` in /proc/PID/io).
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .map_or(0, |n| n.parse().unwrap())
}

/// Issue 9: `yes` reached 17.2 GB plus a 12.6 GB rotated copy in 15 s
/// against a 10 MiB limit: each rotation copied the whole file, which grew
/// faster than it was copied. Now a rotation copies at most the last
/// `max_bytes`, so `yes` writes four times the size of a 128 MiB disk
/// through a 1 MiB limit and the folder stays at most half the disk.
/// (Before the fix the tmpfs filled and `yes` died of ENOSPC.)
#[test]
fn a_process_flooding_its_log_cannot_fill_the_disk() {
    const MIB: u64 = 1 << 20;
    // The rotated copy and its temporary (2 MiB each at most), the log
    // (1 MiB) and what `yes` writes between its log passing 1 MiB and the
    // truncate: a copy of 1 MiB takes milliseconds, but on a loaded machine
    // the rotator may wait for a CPU for tens of them, while `yes` writes
    // some hundred MB a second (peaks of 11 to 19 MiB were seen on 2 busy
    // cores). The old rotation filled the disk within seconds.
    const BOUND: u64 = 64 * MIB;
    let (d, disk) = daemon_with_small_log_disk(128);
    d.apply("yes.toml", &pod_unit("yes", "Always", &["yes"], ""));
    let pid = main_pid(&d.wait_running("yes"));

    let mut peak = 0;
    let stop = Instant::now() + Duration::from_secs(60);
    while written(pid) < 512 * MIB {
        let (used, free) = disk.usage();
        peak = peak.max(used);
        assert!(
            free > 0 && used <= BOUND,
            "the log folder holds {used} bytes ({free} free), more than {BOUND}\n{}",
            d.log()
        );
        // The safety stop: were `yes` throttled, the test ends anyway.
        assert!(
            Instant::now() < stop,
            "yes wrote only {} bytes",
            written(pid)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Never restarted: its writes never failed for lack of space.
    assert_eq!(d.pod_now("yes").status.processes[0].restart_count, 0);
    d.drover_ok(&["delete", "pod", "yes"]);
    d.wait_gone("yes");
    eprintln!("log folder peak: {:.1} MiB", peak as f64 / MIB as f64);
    // The loss was reported.
    assert!(d
        .log()
        .contains("the process writes faster than its log is rotated"));
}

/// Issue 9: with the disk full, the copy of a log fails with ENOSPC; the
/// rotator used to give up ("cannot rotate"), so the log kept its size and
/// the disk stayed full. Now it truncates the log anyway, which frees the
/// space, and says so in the daemon's log.
#[test]
fn a_log_that_cannot_be_copied_for_lack_of_space_is_truncated_anyway() {
    const MIB: u64 = 1 << 20;
    let (d, disk) = daemon_with_small_log_disk(8);
    // Leave 3 MiB: room for the log the pod writes (2.5 MiB in one write,
    // past twice the 1 MiB limit), none for the 1 MiB copy of its end.
    let (_, free) = disk.usage();
    std::fs::write(d.path("logs/filler"), vec![0u8; (free - 3 * MIB) as usize]).unwrap();
    let log = d.path("logs/big/main.log");
    d.apply(
        "big.toml",
        &pod_unit(
            "big",
            "Always",
            &[
                "python3",
                "-c",
                "import os, time\nos.write(1, b'x' * (5 << 19))\ntime.sleep(1000)",
            ],
            "",
        ),
    );
    d.wait_running("big");
    d.wait_until("the log truncated without a copy", SOON, || {
        d.log()
            .contains("the disk is full, so the log was truncated without a copy")
            && std::fs::metadata(&log).is_ok_and(|m| m.len() == 0)
    });
    assert!(!d.path("logs/big/main.log.1.tmp").exists());
    assert!(disk.usage().1 >= 2 * MIB, "the space came back");
    let pod = d.pod_now("big");
    assert_eq!(pod.status.processes[0].restart_count, 0);
}
