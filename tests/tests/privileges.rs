//! Who may do what through the control socket (product.md §3, issue 10),
//! with real unprivileged users and a real group created by the test
//! (unique names per run, removed afterwards), calling the real CLI as
//! those users. Also: the state the daemon keeps is private.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A group and users made for one test; removed when dropped.
struct Accounts {
    group: String,
    users: Vec<String>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(out.status.success(), "{cmd} {args:?}: {}", show(&out));
}

impl Accounts {
    /// A group, a member of it (listed in /etc/group, primary group
    /// nogroup) and a user outside it.
    fn create() -> Accounts {
        let tag = format!(
            "{}{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let group = format!("drvg{tag}");
        let member = format!("drvm{tag}");
        let outsider = format!("drvo{tag}");
        run("groupadd", &[&group]);
        let mut a = Accounts {
            group,
            users: vec![],
        };
        for (user, extra) in [(&member, Some(&a.group)), (&outsider, None)] {
            let mut args = vec!["--no-create-home", "--no-user-group", "--gid", "65534"];
            if let Some(g) = extra {
                args.extend(["--groups", g.as_str()]);
            }
            args.extend(["--shell", "/usr/sbin/nologin", user.as_str()]);
            run("useradd", &args);
            a.users.push(user.clone());
        }
        a
    }

    fn member(&self) -> &str {
        &self.users[0]
    }

    fn outsider(&self) -> &str {
        &self.users[1]
    }

    fn uid(&self, user: &str) -> u32 {
        let out = Command::new("id").args(["-u", user]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

/// `drover ARGS` as `user` (with its groups, as a login would give).
fn drover_as(d: &TestDaemon, user: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", user, "--regid", "65534", "--init-groups", "--"])
        .arg(DROVER)
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .env_remove("DROVER_SOCKET")
        .current_dir("/");
    cmd.output().expect("running drover through setpriv")
}

/// POST `body` to `path` on the daemon's socket as `user`, by hand (no
/// CLI, no unit file in between); returns the status and body.
fn api_as(d: &TestDaemon, user: &str, path: &str, body: &str) -> (u16, String) {
    const POST: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = sys.argv[3].encode()
head = "POST %s HTTP/1.1\r\nHost: d\r\nConnection: close\r\n" % sys.argv[2]
head += "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
s.sendall(head.encode() + body)
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
"#;
    let out = Command::new("setpriv")
        .args(["--reuid", user, "--regid", "65534", "--init-groups", "--"])
        .args(["/usr/bin/python3", "-c", POST])
        .arg(d.socket())
        .args([path, body])
        .current_dir("/")
        .output()
        .expect("python3 through setpriv");
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[track_caller]
fn ok_as(d: &TestDaemon, user: &str, args: &[&str]) -> String {
    let out = drover_as(d, user, args);
    assert!(
        out.status.success(),
        "{user}: drover {args:?}: {}",
        show(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn refused_as(d: &TestDaemon, user: &str, args: &[&str], code: i32, why: &str) {
    let out = drover_as(d, user, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{user}: drover {args:?} should fail: {}",
        show(&out)
    );
    assert!(err.contains(why), "{user}: drover {args:?}: {err}");
}

/// Lets other users reach the socket and read unit files in the test dir.
fn open_test_dir(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// A unit file others may read, outside the units folder.
fn readable_unit(d: &TestDaemon, name: &str, text: &str) -> String {
    let path = d.unit_file(name, text);
    for p in [path.parent().unwrap(), path.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.display().to_string()
}

fn config_for(a: &Accounts) -> String {
    format!("{DEFAULT_CONFIG}socket_group = \"{}\"\n", a.group)
}

/// Before: the drover group was silently root: a member's pod with no
/// `user` ran as uid 0, `user = "root"` was accepted from anyone who
/// could reach the socket, and a member could kill or delete root's pods.
#[test]
fn a_member_manages_its_own_pods_and_cannot_reach_roots() {
    let accounts = Accounts::create();
    let config = config_for(&accounts);
    let d = TestDaemon::start_with(
        &[
            (
                "rootpod.toml",
                &pod_unit("rootpod", "Always", &["sleep", "1000"], ""),
            ),
            ("rootrs.toml", &rs_unit("rootrs", "rootrs", 1)),
        ],
        Options {
            config: &config,
            prepare: Some(&open_test_dir),
            ..Options::default()
        },
    );
    let member = accounts.member();
    let member_uid = accounts.uid(member);
    let root_pod = d.wait_running("rootpod");
    let root_pid = main_pid(&root_pod);

    // The socket is the group's.
    let meta = std::fs::metadata(d.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // A member's pod runs as the member.
    let mine = readable_unit(
        &d,
        "mine.toml",
        &pod_unit("mine", "Always", &["sleep", "1000"], ""),
    );
    let out = ok_as(&d, member, &["apply", "-f", &mine]);
    assert!(out.contains("created"), "{out}");
    let pod = d.wait_running("mine");
    assert_eq!(
        uid_of(main_pid(&pod)),
        Some(member_uid),
        "runs as the member"
    );
    assert_eq!(
        pod.spec.processes[0].user.as_deref(),
        Some(member),
        "the daemon set `user` to the caller"
    );
    let who = format!("uid {member_uid} ({member})");
    let obj = d.api("/v1/pods/mine").unwrap();
    assert_eq!(
        obj["metadata"]["annotations"]["drover.io/changed-by"],
        who.as_str()
    );
    let events = d.events_for("Pod/mine");
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str() == Some(&format!("Created mine by {who}"))),
        "{events:#?}"
    );

    // It may not start a process as root, nor escalate.
    for (file, extra) in [
        ("asroot.toml", "user = \"root\"\n"),
        ("asuid0.toml", "user = \"0\"\n"),
    ] {
        let text = pod_unit("sneaky", "Always", &["sleep", "1000"], "") + extra;
        let path = readable_unit(&d, file, &text);
        refused_as(
            &d,
            member,
            &["apply", "-f", &path],
            1,
            "only root may start it",
        );
    }
    // (Through the API itself: whatever a unit file may say.)
    let mut sneaky = d.api("/v1/pods/mine").unwrap();
    sneaky["metadata"]["name"] = "sneaky".into();
    sneaky["spec"]["processes"][0]["allow_privilege_escalation"] = true.into();
    let body = serde_json::json!({ "items": [sneaky] }).to_string();
    let (status, answer) = api_as(&d, member, "/v1/apply", &body);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer.contains("sets allow_privilege_escalation"),
        "{answer}"
    );
    assert!(d.pod("sneaky").is_none());

    // Root's pods and sets are out of its reach...
    refused_as(
        &d,
        member,
        &["kill", "pod", "rootpod"],
        1,
        "only root may signal it",
    );
    refused_as(
        &d,
        member,
        &["delete", "pod", "rootpod"],
        1,
        "only root may delete it",
    );
    refused_as(
        &d,
        member,
        &["restart", "pod", "rootpod"],
        1,
        "only root may restart it",
    );
    refused_as(
        &d,
        member,
        &["label", "pod", "rootpod", "x=y"],
        1,
        "only root may label it",
    );
    refused_as(
        &d,
        member,
        &["scale", "rs", "rootrs", "--replicas", "0"],
        1,
        "only root may scale it",
    );
    refused_as(
        &d,
        member,
        &["cordon", "test-node"],
        1,
        "only root may cordon",
    );
    let still = d.pod("rootpod").expect("root's pod is still there");
    assert_eq!(main_pid(&still), root_pid, "root's pod was not touched");
    assert!(still.metadata.deletion_timestamp.is_none());
    assert!(!still.metadata.labels.contains_key("x"));

    // ... but reading is fine, and its own pod is its to manage.
    let out = ok_as(&d, member, &["get", "pods"]);
    assert!(out.contains("rootpod") && out.contains("mine"), "{out}");
    ok_as(&d, member, &["label", "pod", "mine", "tier=own"]);
    ok_as(&d, member, &["delete", "pod", "mine"]);
    d.wait_gone("mine");
}

/// A caller that is neither root nor a member: the socket's mode keeps it
/// out, and should the mode be opened (a daemon run as root must not rely
/// on it), the daemon refuses it anyway.
#[test]
fn a_caller_outside_the_group_is_refused() {
    let accounts = Accounts::create();
    let config = config_for(&accounts);
    let d = TestDaemon::start_with(
        &[(
            "rootpod.toml",
            &pod_unit("rootpod", "Always", &["sleep", "1000"], ""),
        )],
        Options {
            config: &config,
            prepare: Some(&open_test_dir),
            ..Options::default()
        },
    );
    let outsider = accounts.outsider();
    let root_pid = main_pid(&d.wait_running("rootpod"));
    refused_as(&d, outsider, &["get", "pods"], 3, "Permission denied");

    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let uid = accounts.uid(outsider);
    let why = format!("uid {uid} ({outsider}) is neither root nor a member of the drover group");
    refused_as(&d, outsider, &["get", "pods"], 1, &why);
    refused_as(&d, outsider, &["kill", "pod", "rootpod"], 1, &why);
    let path = readable_unit(
        &d,
        "theirs.toml",
        &pod_unit("theirs", "Always", &["sleep", "1000"], ""),
    );
    refused_as(&d, outsider, &["apply", "-f", &path], 1, &why);
    assert!(d.pod("theirs").is_none());
    assert_eq!(main_pid(&d.wait_running("rootpod")), root_pid);
    // The watch long poll, answered outside the daemon's loop, too.
    let out = drover_as(
        &d,
        outsider,
        &[
            "wait",
            "pod/rootpod",
            "--for=condition=ready",
            "--timeout",
            "5s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

/// Before: the state dir the daemon created was world-readable, and so
/// were store.json and store.journal, which hold every unit's `env`.
#[test]
fn the_state_it_keeps_is_private() {
    let secret =
        pod_unit("secret", "Always", &["sleep", "1000"], "") + "env = { TOKEN = \"hunter2\" }\n";
    let d = TestDaemon::start(&[("secret.toml", &secret)]);
    d.wait_running("secret");
    d.wait_persisted();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&d.path("state")), 0o700, "state dir");
    assert_eq!(mode(&d.path("logs")), 0o750, "log dir");
    for f in ["store.json", "store.journal", "instance-id"] {
        assert_eq!(mode(&d.path("state").join(f)), 0o600, "{f}");
    }
    assert!(
        std::fs::read_to_string(d.path("state/store.json"))
            .unwrap()
            .contains("hunter2"),
        "the secret is in the store: the mode is what protects it"
    );
}

/// A state dir that others may read is warned about at start.
#[test]
fn an_open_state_dir_is_warned_about() {
    let open = |dir: &Path| {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let d = TestDaemon::start_with(
        &[],
        Options {
            prepare: Some(&open),
            ..Options::default()
        },
    );
    let state = d.path("state").display().to_string();
    let log = d.log();
    assert!(
        log.contains(&format!(
            "the state dir {state} is open to other users (mode 0755)"
        )),
        "{log}"
    );
}
