//! sd_notify from the point of view of an attacker (issue 10): senders
//! are judged by kernel facts (their session and uid), never by what
//! they carry in their environment; MAINPID= cannot point drover at a
//! process outside the pod. And each daemon has its own notify socket
//! (issue 9). Real unprivileged users, made by the test and removed.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A system user (and its group) made for one test, removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn new() -> TestUser {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "drvt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .output()
            .expect("useradd");
        assert!(out.status.success(), "useradd {name}: {}", show(&out));
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TestUser { name, uid, gid }
    }

    /// `command` as this user, outside any pod.
    fn spawn(&self, command: &mut Command) -> Child {
        command
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning as a test user")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-f", &self.name]).output();
    }
}

/// Processes the test started itself, killed and reaped on drop.
struct Started(Vec<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The pod process: forks a child (same session, same user), says
/// READY=1 with the child's pid in STATUS=, then sends the content of
/// the file `cmd` each time it changes (`{child}` becomes the child's
/// pid).
const POD: &str = "import os, socket, time\n\
child = os.fork()\n\
if child == 0:\n    while True:\n        time.sleep(1000)\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
addr = os.environ['NOTIFY_SOCKET']\n\
s.sendto(('READY=1\\nSTATUS=child %d' % child).encode(), addr)\n\
cmd = os.environ['FILES'] + '/cmd'\n\
last = None\n\
while True:\n    try:\n        text = open(cmd).read()\n    except OSError:\n        text = None\n    \
if text and text != last:\n        last = text\n        s.sendto(text.replace('{child}', str(child)).encode(), addr)\n    \
time.sleep(0.05)\n";

/// Sends argv[1] to $NOTIFY_SOCKET, as any process may try.
const SEND: &str = "import os, socket, sys\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
s.sendto(sys.argv[1].encode(), os.environ['NOTIFY_SOCKET'])\n";

fn pod_unit(user: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"svc\"\n[spec]\ntermination_grace_period = \"1s\"\n\
         [[spec.processes]]\nname = \"main\"\nuser = \"{user}\"\nnotify = true\n\
         env = {{ FILES = \"@DIR@/files\" }}\ncommand = [\"/usr/bin/python3\", \"-c\", {POD:?}]\n"
    )
}

/// A daemon whose test dir other users may traverse (the pod's user must
/// reach the notify socket beside the control socket), running `svc` as
/// `user`, ready. Returns it and the child pid the pod reported.
fn started(user: &TestUser) -> (TestDaemon, u32) {
    let d = TestDaemon::start(&[]);
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d.apply("svc.toml", &pod_unit(&user.name));
    let p = d.wait_for("svc ready after READY=1", SOON, || {
        d.pod("svc").filter(|p| p.status.processes[0].ready)
    });
    assert_eq!(
        uid_of(main_pid(&p)),
        Some(user.uid),
        "runs as the test user"
    );
    let status = p.status.processes[0]
        .notify_status
        .clone()
        .unwrap_or_default();
    let child = status
        .strip_prefix("child ")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("STATUS= {status:?}"));
    (d, child)
}

/// Makes the pod send `text`, then waits until STATUS=`mark` (sent last
/// in the same datagram) shows: everything before it was handled.
fn pod_says(d: &TestDaemon, text: &str, mark: &str) {
    let tmp = d.file("cmd.tmp");
    std::fs::write(&tmp, format!("{text}\nSTATUS={mark}")).unwrap();
    std::fs::rename(&tmp, d.file("cmd")).unwrap();
    d.wait_until(&format!("STATUS={mark}"), SOON, || {
        d.pod("svc")
            .is_some_and(|p| p.status.processes[0].notify_status.as_deref() == Some(mark))
    });
}

fn notify_socket(d: &TestDaemon) -> String {
    format!("{}.notify", d.socket().display())
}

/// A forged WATCHDOG=trigger (with the pod's own marker copied into the
/// environment) from another user, or from the pod's user outside the
/// pod, changes nothing; the pod's own messages still work, MAINPID= to
/// a process of its tree included.
#[test]
fn forged_notify_messages_from_outside_the_pod_change_nothing() {
    let owner = TestUser::new();
    let attacker = TestUser::new();
    let (mut d, child) = started(&owner);
    let pid = main_pid(&d.pod_now("svc"));
    // What an attacker who can read the pod's environment copies.
    let env = environ(pid);
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in the pod's environment"))
    };
    let (marker, socket) = (var("DROVER_PROCESS_ID"), var("NOTIFY_SOCKET"));
    let forged = "WATCHDOG=trigger\nSTATUS=forged\nMAINPID=1";
    for user in [&attacker, &owner] {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-c", SEND, forged])
            .env_clear()
            .env(&socket.0, &socket.1)
            .env(&marker.0, &marker.1);
        let status = user.spawn(&mut cmd).wait().unwrap();
        assert!(status.success(), "the forged datagram was sent");
    }
    pod_says(&d, "WATCHDOG=1", "checkpoint");
    let p = d.pod_now("svc");
    assert_eq!(main_pid(&p), pid, "not restarted, not moved");
    assert_eq!(p.status.processes[0].restart_count, 0);
    assert!(p.status.processes[0].ready);
    assert!(d.log().contains("dropped"), "{}", d.log());

    // The pod's own MAINPID=, naming a process of its tree: honoured.
    pod_says(&d, "MAINPID={child}", "moved");
    assert_eq!(main_pid(&d.pod_now("svc")), child);
    d.assert_teardown_leaves_nothing();
}

/// The attack of issue 10: a pod names an unrelated process in MAINPID=;
/// `kill` and `delete` must never reach it.
#[test]
fn mainpid_cannot_point_at_a_process_outside_the_pod() {
    let owner = TestUser::new();
    let (mut d, _) = started(&owner);
    let pid = main_pid(&d.pod_now("svc"));
    let root_sleep = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let owner_sleep = owner.spawn(Command::new("sleep").arg("1000"));
    let strangers = Started(vec![root_sleep, owner_sleep]);
    for (i, stranger) in strangers.0.iter().enumerate() {
        pod_says(
            &d,
            &format!("MAINPID={}", stranger.id()),
            &format!("sent {i}"),
        );
        assert_eq!(main_pid(&d.pod_now("svc")), pid, "MAINPID refused");
    }
    let out = d.drover_ok(&["kill", "pod", "svc", "--signal", "HUP"]);
    assert_eq!(out, "sent SIGHUP to 1 process\n");
    d.wait_until("the pod's process ended on SIGHUP", SOON, || !alive(pid));
    d.drover_ok(&["delete", "pod", "svc"]);
    d.wait_gone("svc");
    for s in &strangers.0 {
        assert!(alive(s.id()), "the unrelated process {} was hit", s.id());
    }
    d.assert_teardown_leaves_nothing();
}

/// Issue 9: two daemons whose control sockets share a folder each have
/// their own notify socket; the second one starting does not take the
/// first one's.
#[test]
fn two_daemons_in_one_folder_keep_their_own_notify_sockets() {
    let a = TestDaemon::start(&[]);
    let other = tempfile::tempdir().unwrap();
    let path = |p: &str| other.path().join(p);
    std::fs::create_dir_all(path("units")).unwrap();
    let second_socket = a.dir().join("second.sock");
    let second = Command::new(DROVER)
        .arg("daemon")
        .arg("--config")
        .arg(a.path("drover.toml"))
        .arg("--socket")
        .arg(&second_socket)
        .args(["--state-dir", path("state").to_str().unwrap()])
        .args(["--units", path("units").to_str().unwrap()])
        .args(["--log-dir", path("logs").to_str().unwrap()])
        .args(["--node-name", "second"])
        .env_remove("DROVER_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut second = Started(vec![second]);
    a.wait_until("the second daemon answering", SOON, || {
        std::os::unix::net::UnixStream::connect(&second_socket).is_ok()
    });
    // SEND's argv[1] is the message.
    let script = format!("{SEND}import time\ntime.sleep(1000)\n");
    let unit = format!(
        "kind = \"Pod\"\nname = \"ready\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         notify = true\ncommand = [\"/usr/bin/python3\", \"-c\", {script:?}, \"READY=1\"]\n"
    );
    a.apply("ready.toml", &unit);
    a.wait_until("READY=1 reached the first daemon", SOON, || {
        a.pod("ready")
            .is_some_and(|p| p.status.processes.first().is_some_and(|s| s.ready))
    });
    // Stopped as a service is (SIGTERM to its keeper), the second daemon
    // leaves no cgroup root behind; the guard's SIGKILL would.
    let keeper = &mut second.0[0];
    send_signal(keeper.id(), libc::SIGTERM);
    assert!(keeper.wait().unwrap().success());
}

/// The socket pods of any user send to: beside the control socket,
/// named after it, writable by all (who is heard is checked per message).
#[test]
fn the_notify_socket_is_named_after_the_control_socket() {
    let d = TestDaemon::start(&[]);
    let sock = notify_socket(&d);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o666, "{sock}");
}
