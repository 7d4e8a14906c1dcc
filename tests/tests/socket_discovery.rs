//! Which daemon the CLI talks to without --socket or DROVER_SOCKET
//! (product.md §5): the system socket /run/drover/drover.sock when it
//! exists and the caller may use it (root, a member of its group), else
//! the caller's own daemon's socket under XDG_RUNTIME_DIR.
//!
//! Real users and groups made by the test (useradd, groupadd; removed on
//! drop), real daemons (the harness), and the real fixed paths: each CLI
//! run happens in a mount namespace of its own (`unshare --mount`) with a
//! tmpfs on /run, a test daemon's socket bind-mounted at
//! /run/drover/drover.sock and another one's in the user's
//! XDG_RUNTIME_DIR, so no system daemon is touched and tests run side by
//! side. Needs root (CI runs as root); skipped with a message otherwise.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A name no other test and no earlier run uses (user and group names
/// are at most 32 characters).
fn unique(tag: &str) -> String {
    format!(
        "dt{}x{}{tag}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::SeqCst)
    )
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawning");
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
}

/// A group made for the test, deleted on drop.
struct TestGroup {
    name: String,
}

impl TestGroup {
    fn new() -> TestGroup {
        let name = unique("g");
        run_ok(Command::new("groupadd").arg(&name));
        TestGroup { name }
    }

    fn gid(&self) -> u32 {
        let text = std::fs::read_to_string("/etc/group").unwrap();
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[0] == self.name).then(|| f[2].parse().unwrap())
            })
            .expect("the group exists")
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A user made for the test (no home, no login shell), deleted on drop.
struct TestUser {
    name: String,
}

impl TestUser {
    fn new(groups: &[&TestGroup]) -> TestUser {
        let name = unique("u");
        let mut cmd = Command::new("useradd");
        cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
        if !groups.is_empty() {
            let list: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            cmd.arg("--groups").arg(list.join(","));
        }
        run_ok(cmd.arg(&name));
        TestUser { name }
    }

    fn uid(&self) -> u32 {
        let out = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A daemon with one pod, `pod`, whose socket gets `owner`, `group` and
/// `mode` (what the packaged daemon gives the system socket, or a user's
/// own daemon's). The daemon lets in, besides root, the members of
/// `socket_group` (it decides by the caller's credentials, not by the
/// socket's mode): the test group for the system daemon; for a user's
/// own daemon, which here runs as root, the user's private group, as if
/// it ran as that user.
fn daemon_with_pod(pod: &str, owner: u32, group: u32, mode: u32, socket_group: &str) -> TestDaemon {
    let unit = format!(
        "kind = \"Pod\"\nname = \"{pod}\"\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"infinity\"]\n"
    );
    let config = format!("{DEFAULT_CONFIG}socket_group = \"{socket_group}\"\n");
    let d = TestDaemon::start_with(
        &[("pod.toml", &unit)],
        Options {
            config: &config,
            ..Options::default()
        },
    );
    std::os::unix::fs::chown(d.socket(), Some(owner), Some(group)).unwrap();
    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(mode)).unwrap();
    d
}

/// Runs `drover ARGS` with no --socket and no DROVER_SOCKET, as `user`
/// (root when None), in a mount namespace where `system` is
/// /run/drover/drover.sock and `own` is the user's
/// $XDG_RUNTIME_DIR/drover/drover.sock (each only when given). `env` is
/// added to the CLI's environment.
fn cli(
    user: Option<&TestUser>,
    system: Option<&Path>,
    own: Option<&Path>,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    // The binary is bind-mounted into the tmpfs too: the user may not be
    // allowed into the folders of the build tree.
    const SETUP: &str = r#"set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/drover /run/xdg
touch /run/drover-cli && mount --bind "$DROVER" /run/drover-cli
if [ -n "$SYSTEM" ]; then
    touch /run/drover/drover.sock && mount --bind "$SYSTEM" /run/drover/drover.sock
fi
if [ -n "$OWN" ]; then
    mkdir -p /run/xdg/drover
    touch /run/xdg/drover/drover.sock && mount --bind "$OWN" /run/xdg/drover/drover.sock
fi
chown "$AS" /run/xdg
chmod 0700 /run/xdg
if [ "$AS" = root ]; then exec "$@"; fi
exec runuser -u "$AS" -- "$@"
"#;
    let path = |p: Option<&Path>| p.map(|p| p.display().to_string()).unwrap_or_default();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        SETUP,
        "sh",
    ])
    .args([
        "env",
        "-i",
        "PATH=/usr/bin:/bin",
        "XDG_RUNTIME_DIR=/run/xdg",
        "TZ=UTC",
    ])
    .args(env.iter().map(|(k, v)| format!("{k}={v}")))
    .arg("/run/drover-cli")
    .args(args)
    .env("DROVER", DROVER)
    .env("SYSTEM", path(system))
    .env("OWN", path(own))
    .env("AS", user.map_or("root", |u| u.name.as_str()));
    cmd.output().expect("running unshare")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The defect of issue 14: a member of the socket's group looked only
/// under its XDG_RUNTIME_DIR and exited 3.
#[test]
fn a_member_of_the_group_uses_the_system_socket() {
    if !is_root() {
        eprintln!("skipped: needs root (users, mount namespaces)");
        return;
    }
    let group = TestGroup::new();
    let member = TestUser::new(&[&group]);
    let system = daemon_with_pod("system-pod", 0, group.gid(), 0o660, &group.name);
    let own = daemon_with_pod("own-pod", member.uid(), 0, 0o600, &member.name);

    // Without a daemon of its own...
    let out = cli(
        Some(&member),
        Some(&system.socket()),
        None,
        &[],
        &["get", "pods"],
    );
    assert!(stdout(&out).contains("system-pod"), "{}", show(&out));
    // ...and with one: the system daemon comes first.
    let out = cli(
        Some(&member),
        Some(&system.socket()),
        Some(&own.socket()),
        &[],
        &["get", "pods"],
    );
    assert!(stdout(&out).contains("system-pod"), "{}", show(&out));
    // DROVER_SOCKET still wins.
    let own_socket = "/run/xdg/drover/drover.sock";
    let out = cli(
        Some(&member),
        Some(&system.socket()),
        Some(&own.socket()),
        &[("DROVER_SOCKET", own_socket)],
        &["get", "pods"],
    );
    assert!(stdout(&out).contains("own-pod"), "{}", show(&out));
    // Root needs no group.
    let out = cli(None, Some(&system.socket()), None, &[], &["get", "pods"]);
    assert!(stdout(&out).contains("system-pod"), "{}", show(&out));
}

#[test]
fn anyone_else_is_refused_by_the_system_socket_and_uses_their_own_daemon() {
    if !is_root() {
        eprintln!("skipped: needs root (users, mount namespaces)");
        return;
    }
    let group = TestGroup::new();
    let other = TestUser::new(&[]);
    let system = daemon_with_pod("system-pod", 0, group.gid(), 0o660, &group.name);
    let own = daemon_with_pod("own-pod", other.uid(), 0, 0o600, &other.name);

    // No daemon of their own: refused at the system socket, and told why.
    let out = cli(
        Some(&other),
        Some(&system.socket()),
        None,
        &[],
        &["get", "pods"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/run/drover/drover.sock: Permission denied")
            && err.contains("adduser USER drover"),
        "{err}"
    );
    // With one: theirs.
    let out = cli(
        Some(&other),
        Some(&system.socket()),
        Some(&own.socket()),
        &[],
        &["get", "pods"],
    );
    assert!(stdout(&out).contains("own-pod"), "{}", show(&out));
    // No system daemon at all: theirs too.
    let out = cli(
        Some(&other),
        None,
        Some(&own.socket()),
        &[],
        &["get", "pods"],
    );
    assert!(stdout(&out).contains("own-pod"), "{}", show(&out));
    // Nothing anywhere: the per-user path, and how to start a daemon.
    let out = cli(Some(&other), None, None, &[], &["get", "pods"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/run/xdg/drover/drover.sock: No such file or directory"),
        "{err}"
    );
}
