//! Unit file mistakes through the binary: `drover validate` and `drover
//! apply -f` reject them with file:line:col, the message and the
//! suggestion, and apply nothing.

use crate::harness::*;

/// A valid ReplicaSet; the mistakes below replace one of its lines.
const RS: &str = r#"kind = "ReplicaSet"
name = "web"
labels = { app = "web" }

[spec]
replicas = 3

[spec.selector]
match_labels = { app = "web" }

[spec.template]
labels = { app = "web", tier = "frontend" }
restart_policy = "Always"
ports = [{ name = "http", range = "8080-8099" }]

[[spec.template.processes]]
name = "server"
command = ["python3", "-m", "http.server", "${PORT_HTTP}"]

[spec.template.processes.liveness]
http_get = { path = "/", port = "http" }
period = "10s"
success_threshold = 1
"#;

/// `RS` with line `line` (1-based) replaced by `text`.
fn rs_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = RS.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

struct Mistake {
    what: &'static str,
    text: String,
    line: usize,
    col: usize,
    message: &'static str,
    help: Option<&'static str>,
}

fn m(
    what: &'static str,
    text: String,
    at: (usize, usize),
    message: &'static str,
    help: Option<&'static str>,
) -> Mistake {
    Mistake {
        what,
        text,
        line: at.0,
        col: at.1,
        message,
        help,
    }
}

fn mistakes() -> Vec<Mistake> {
    vec![
        m("misspelt field", rs_with(6, "replica = 3"), (6, 1), "unknown field `replica`", Some("did you mean `replicas`?")),
        m(
            "misspelt enum value",
            rs_with(13, r#"restart_policy = "Allways""#),
            (13, 18),
            "unknown restart_policy \"Allways\"",
            Some("did you mean \"Always\"?"),
        ),
        m(
            "selector does not select the template",
            rs_with(9, r#"match_labels = { app = "web", env = "prod" }"#),
            (9, 16),
            "selector does not match template labels",
            Some("add `env = \"prod\"` to template.labels, or drop it from match_labels"),
        ),
        m(
            "match_expressions in a ReplicationController",
            "kind = \"ReplicationController\"\nname = \"worker\"\n[spec]\nreplicas = 2\n[spec.selector]\n\
             match_expressions = [{ key = \"app\", operator = \"Exists\" }]\n[spec.template]\n\
             labels = { app = \"worker\" }\n[[spec.template.processes]]\nname = \"work\"\ncommand = [\"sleep\", \"60\"]\n"
                .into(),
            (6, 1),
            "`match_expressions` is not supported in a ReplicationController selector",
            None,
        ),
        m(
            "a pod without processes",
            "kind = \"Pod\"\nname = \"lonely\"\n[spec]\nprocesses = []\n".into(),
            (4, 13),
            "a pod needs at least one process",
            None,
        ),
        m(
            "two processes with one name",
            "kind = \"Pod\"\nname = \"pair\"\n[[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"1\"]\n\
             [[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"2\"]\n"
                .into(),
            (7, 8),
            "duplicate process name \"main\"",
            None,
        ),
        m("negative replicas", rs_with(6, "replicas = -1"), (6, 12), "`replicas` must be a non-negative integer, found -1", None),
        m("duration without a unit", rs_with(22, r#"period = "10""#), (22, 10), "invalid duration \"10\"", None),
        m("duration as a number", rs_with(22, "period = 10"), (22, 10), "expected a duration string such as \"10s\", found an integer", Some("write period = \"10s\"")),
        m(
            "probe on an undeclared port",
            rs_with(21, r#"http_get = { path = "/", port = "htp" }"#),
            (21, 33),
            "unknown port \"htp\"",
            Some("did you mean \"http\"?"),
        ),
        m(
            "two probe handlers",
            rs_with(22, r#"exec = { command = ["true"] }"#),
            (22, 1),
            "a probe has exactly one handler, found `http_get` and `exec`",
            None,
        ),
        m("liveness success threshold", rs_with(23, "success_threshold = 2"), (23, 21), "`success_threshold` must be 1 for a liveness probe", None),
        m(
            "empty port range",
            rs_with(14, r#"ports = [{ name = "http", range = "8099-8080" }]"#),
            (14, 35),
            "invalid port range \"8099-8080\"",
            None,
        ),
        m("unknown kind", rs_with(1, r#"kind = "ReplicaSett""#), (1, 8), "unknown kind \"ReplicaSett\"", Some("did you mean \"ReplicaSet\"?")),
        m(
            "api_version of another kind",
            RS.replacen("name = \"web\"", "api_version = \"v1\"\nname = \"web\"", 1),
            (2, 15),
            "api_version \"v1\" does not match kind `ReplicaSet`",
            Some("write api_version = \"apps/v1\", or leave it out"),
        ),
        m("TOML syntax error", "kind = \"Pod\"\nname = \n".into(), (2, 8), "invalid TOML: invalid string", None),
        m(
            "integer label value",
            rs_with(3, "labels = { app = \"web\", version = 2 }"),
            (3, 35),
            "expected a string, found an integer",
            Some("quote it: version = \"2\""),
        ),
        m(
            "command as a shell line",
            rs_with(18, r#"command = "python3 -m http.server""#),
            (18, 11),
            "expected an array of strings, found a string",
            Some("write command = [\"python3\", \"-m\", \"http.server\"]"),
        ),
        m(
            "unknown variable in command",
            rs_with(18, r#"command = ["python3", "-m", "http.server", "${PORT_HTPP}"]"#),
            (18, 45),
            "unknown variable `${PORT_HTPP}` in command",
            Some("did you mean `${PORT_HTTP}`?"),
        ),
        m("watchdog without notify", rs_with(19, "watchdog = \"30s\""), (19, 1), "`watchdog` needs `notify = true`", None),
        m("invalid name", rs_with(2, r#"name = "Web_1""#), (2, 8), "invalid name \"Web_1\"", Some("did you mean \"web-1\"?")),
        m("relative working_dir", rs_with(19, r#"working_dir = "srv/web""#), (19, 15), "working_dir \"srv/web\" is not an absolute path", None),
        m("missing command", rs_with(18, "user = \"www-data\""), (16, 1), "missing field `command`", None),
        m("Kubernetes spelling", rs_with(22, "periodSeconds = 10"), (22, 1), "unknown field `periodSeconds`", Some("did you mean `period`?")),
        m(
            "pod field in a set's spec",
            rs_with(6, r#"restart_policy = "Always""#),
            (6, 1),
            "unknown field `restart_policy`",
            Some("`restart_policy` belongs to the pod template: write it in [spec.template]"),
        ),
        m("missing kind", "name = \"x\"\n[spec]\n".into(), (1, 1), "missing field `kind`", None),
    ]
}

#[track_caller]
fn assert_diagnostic(err: &str, path: &std::path::Path, case: &Mistake) {
    let ctx = format!("{}:\n{err}", case.what);
    assert!(
        err.starts_with(&format!("error: {}\n", case.message)),
        "{ctx}"
    );
    let at = format!("{}:{}:{}", path.display(), case.line, case.col);
    let arrow = err.lines().nth(1).unwrap_or("");
    assert!(
        arrow.trim_start().starts_with(&format!("--> {at}")),
        "expected --> {at} in {ctx}"
    );
    if let Some(help) = case.help {
        assert!(
            err.contains(&format!("= help: {help}\n")),
            "expected help `{help}` in {ctx}"
        );
    }
    assert!(
        err.ends_with("1 error in 1 file; nothing was applied\n"),
        "{ctx}"
    );
}

#[test]
fn validate_rejects_each_mistake_with_its_position() {
    let cases = mistakes();
    assert!(cases.len() >= 15);
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, &case.text).unwrap();
        let out = std::process::Command::new(DROVER)
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: {}", case.what, show(&out));
        assert!(out.stdout.is_empty(), "{}: {}", case.what, show(&out));
        assert_diagnostic(&String::from_utf8(out.stderr).unwrap(), &path, case);
    }
    // The base unit itself is fine.
    let good = dir.path().join("good.toml");
    std::fs::write(&good, RS).unwrap();
    let out = std::process::Command::new(DROVER)
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ReplicaSet/web ok\n", good.display())
    );
}

fn nothing_applied(d: &TestDaemon) {
    for plural in ["pods", "replicasets", "replicationcontrollers"] {
        let list = d.api(&format!("/v1/{plural}")).unwrap();
        assert_eq!(
            list["items"],
            serde_json::json!([]),
            "{plural} were applied"
        );
    }
}

#[test]
fn apply_rejects_each_mistake_and_applies_nothing() {
    let d = TestDaemon::start(&[]);
    for (i, case) in mistakes().iter().enumerate() {
        let path = d.unit_file(&format!("bad-{i}.toml"), &case.text);
        let err = d.drover_fails(&["apply", "-f", path.to_str().unwrap()], 1);
        assert_diagnostic(&err, &path, case);
    }
    nothing_applied(&d);
}

#[test]
fn a_folder_with_one_bad_file_applies_nothing() {
    let d = TestDaemon::start(&[]);
    let dir = d.path("folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a-pod.toml"),
        pod_unit("a", "Always", &["sleep", "1000"], ""),
    )
    .unwrap();
    std::fs::write(
        dir.join("b-web.toml"),
        rs_unit("web", "web", 1).replace("replicas = 1", "replica = 1"),
    )
    .unwrap();
    std::fs::write(
        dir.join("c-rc.toml"),
        rs_unit("worker", "worker", 1)
            .replace("ReplicaSet", "ReplicationController")
            .replace(
                "[spec.selector]\nmatch_labels = { app = \"worker\" }",
                "selector = { app = \"worker\" }",
            ),
    )
    .unwrap();
    let path = dir.to_str().unwrap();

    let out = std::process::Command::new(DROVER)
        .args(["validate", path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = d.drover_fails(&["apply", "-f", path], 1);
    assert!(
        err.contains(&format!("{}:5:1", dir.join("b-web.toml").display())),
        "{err}"
    );
    assert!(err.contains("did you mean `replicas`?"), "{err}");
    assert!(
        err.ends_with("1 error in 1 file; nothing was applied\n"),
        "{err}"
    );
    nothing_applied(&d);
    let out = d.drover(&["get", "pods"]);
    assert_eq!(out.stdout, b"");

    // Fixed: everything is applied at once.
    std::fs::write(dir.join("b-web.toml"), rs_unit("web", "web", 1)).unwrap();
    let out = d.drover_ok(&["apply", "-f", path]);
    assert_eq!(
        out,
        "pod/a created\nreplicaset.apps/web created\nreplicationcontroller/worker created\n"
    );
    d.wait_running("a");
    d.wait_pods("app=web", 1);
    d.wait_pods("app=worker", 1);
    // Re-applying the same files changes nothing.
    let out = d.drover_ok(&["apply", "-f", path]);
    assert_eq!(
        out,
        "pod/a unchanged\nreplicaset.apps/web unchanged\nreplicationcontroller/worker unchanged\n"
    );
}

#[test]
fn a_bad_units_folder_at_start_applies_nothing() {
    let good = pod_unit("good", "Always", &["sleep", "1000"], "");
    let bad = "kind = \"Pod\"\nname = \"bad\"\n[spec]\nrestart_polcy = \"Never\"\n[[spec.processes]]\nname = \"m\"\ncommand = [\"true\"]\n";
    let d = TestDaemon::start(&[("good.toml", &good), ("bad.toml", bad)]);
    // The units folder is applied before the socket answers.
    nothing_applied(&d);
    assert!(
        d.log().contains("unknown field `restart_polcy`"),
        "{}",
        d.log()
    );
}

/// `drover validate FILE` fails with exit 1; returns stderr.
fn validate_fails(path: &std::path::Path) -> String {
    let out = std::process::Command::new(DROVER)
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    String::from_utf8(out.stderr).unwrap()
}

/// Issue 9: what a caller sends is bounded at validation. Each of these
/// was accepted before, and failed later: E2BIG at every start (and a
/// 50 MB argument rewritten into the store at every restart), a crash
/// loop when pids ran out, a 100 MB file read into memory.
#[test]
fn limits_are_checked_at_validation_and_nothing_is_applied() {
    let d = TestDaemon::start(&[]);
    let padded = {
        let mut text = rs_unit("big", "big", 1);
        let comment = format!("# {}\n", "x".repeat(1000));
        while text.len() <= 2 << 20 {
            text.push_str(&comment);
        }
        text
    };
    let cases = [
        (
            "a 2 MiB unit file",
            padded,
            "error: the file is larger than 1024 KiB, the most a unit file may be",
        ),
        (
            "a million replicas",
            rs_unit("many", "many", 1_000_000),
            "error: `replicas` must be at most 10000, found 1000000",
        ),
        (
            "a 200 KiB argument",
            pod_unit("arg", "Never", &["echo", &"x".repeat(200 * 1024)], ""),
            "error: this argument is 204800 bytes long",
        ),
        (
            "a NUL byte in an argument",
            pod_unit("nul", "Never", &["echo", "a\u{0}b"], ""),
            "error: a NUL byte in a string",
        ),
    ];
    for (what, text, error) in cases {
        let path = d.unit_file(&format!("{}.toml", what.replace(' ', "-")), &text);
        let err = validate_fails(&path);
        assert!(err.starts_with(&format!("{error}\n")), "{what}:\n{err}");
        assert!(
            err.ends_with("1 error in 1 file; nothing was applied\n"),
            "{what}:\n{err}"
        );
        let err = d.drover_fails(&["apply", "-f", path.to_str().unwrap()], 1);
        assert!(err.starts_with(&format!("{error}\n")), "{what}:\n{err}");
    }
    nothing_applied(&d);
}

/// Issue 10: a selector of only `DoesNotExist` adopted every unmanaged pod
/// and deleted unrelated ones. It is refused unless the unit says it
/// means it.
#[test]
fn a_selector_with_no_positive_term_needs_allow_broad_selector() {
    let d = TestDaemon::start(&[]);
    let broad = rs_unit("broad", "broad", 1).replace(
        "match_labels = { app = \"broad\" }",
        "match_expressions = [{ key = \"legacy\", operator = \"DoesNotExist\" }]",
    );
    let path = d.unit_file("broad.toml", &broad);
    let err = validate_fails(&path);
    assert!(
        err.starts_with("error: the selector matches too much"),
        "{err}"
    );
    assert!(err.contains("allow_broad_selector = true"), "{err}");
    d.drover_fails(&["apply", "-f", path.to_str().unwrap()], 1);
    nothing_applied(&d);

    let allowed = broad.replace("replicas = 1", "replicas = 1\nallow_broad_selector = true");
    let out = d.apply("broad.toml", &allowed);
    assert_eq!(out, "replicaset.apps/broad created\n");
    d.wait_pods("app=broad", 1);
    let rs = d.object("replicasets", "broad").unwrap();
    assert_eq!(rs["spec"]["allow_broad_selector"], true);
}

/// Issue 10, sshd's StrictModes: a root daemon refuses a units folder
/// that someone else could write to, naming the file, and applies nothing
/// of it.
#[test]
fn a_group_writable_units_file_is_refused_with_its_reason() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDaemon::start(&[]);
    assert!(
        nix::unistd::geteuid().is_root(),
        "the harness runs the daemon as root"
    );
    d.write_unit("a.toml", &pod_unit("a", "Always", &["sleep", "1000"], ""));
    d.write_unit("b.toml", &pod_unit("b", "Always", &["sleep", "1000"], ""));
    let b = d.units_dir().join("b.toml");
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o664)).unwrap();
    let err = d.drover_fails(&["daemon-reload"], 1);
    assert!(err.contains(&b.display().to_string()), "{err}");
    assert!(err.contains("writable by its group (mode 0664)"), "{err}");
    assert!(
        err.contains(&format!("chmod go-w {}", b.display())),
        "{err}"
    );
    nothing_applied(&d);

    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        d.drover_ok(&["daemon-reload"]),
        "pod/a created\npod/b created\n"
    );
    d.wait_running("b");
}
