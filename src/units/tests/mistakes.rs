//! Unit file mistakes and what users are told about them, position and
//! wording; the example units; folders.

use crate::api::{Dur, Operator, PortRef, ProbeHandler, RestartPolicy};
use crate::units::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

const FILE: &str = "units/test.toml";

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse_unit(Path::new(FILE), text, now()) {
        Ok(obj) => panic!("expected errors, got {obj:#?}"),
        Err(d) => d,
    }
}

/// The one diagnostic of `text`.
fn one(text: &str) -> Diagnostic {
    let d = errors(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    d.into_iter().next().unwrap()
}

fn render(d: &[Diagnostic]) -> String {
    Diagnostics::new(d.to_vec()).to_string()
}

#[track_caller]
fn assert_at(d: &Diagnostic, line: usize, col: usize, message: &str) {
    assert_eq!(
        (d.line, d.col, d.message.as_str()),
        (line, col, message),
        "\n{d}"
    );
}

#[track_caller]
fn assert_help(d: &Diagnostic, help: &str) {
    assert_eq!(d.help.as_deref(), Some(help), "\n{d}");
}

#[track_caller]
fn assert_label(d: &Diagnostic, label: &str) {
    assert_eq!(d.label.as_deref(), Some(label), "\n{d}");
}

fn ok(text: &str) -> Object {
    match parse_unit(Path::new(FILE), text, now()) {
        Ok(o) => o,
        Err(d) => panic!("expected a valid unit, got:\n{}", render(&d)),
    }
}

/// A valid ReplicaSet, for mistakes made by replacing one line.
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

/// `RS` with its line `line` (1-based) replaced.
fn rs_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = RS.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

#[test]
fn the_base_replicaset_is_valid() {
    let Object::ReplicaSet(rs) = ok(RS) else {
        panic!("not a ReplicaSet")
    };
    assert_eq!(rs.metadata.name, "web");
    assert_eq!(rs.spec.replicas, 3);
    assert_eq!(rs.spec.selector.match_labels["app"], "web");
    assert_eq!(rs.spec.template.labels["tier"], "frontend");
    let p = &rs.spec.template.spec.processes[0];
    assert_eq!(p.command[3], "${PORT_HTTP}");
    let live = p.liveness.as_ref().unwrap();
    assert_eq!(live.period, Dur::secs(10));
    assert_eq!(live.timeout, Dur::secs(1));
    assert_eq!(live.failure_threshold, 3);
    assert!(matches!(
        &live.handler,
        ProbeHandler::HttpGet { port: PortRef::Name(n), host, .. } if n == "http" && host == "127.0.0.1"
    ));
    assert_eq!(
        rs.metadata.annotations[annotations::SOURCE_FILE],
        "units/test.toml"
    );
    assert_eq!(
        rs.metadata.annotations[annotations::SOURCE_HASH],
        source_hash(RS.as_bytes())
    );
    assert_eq!(rs.metadata.creation_timestamp, now());
    assert!(!rs.metadata.uid.is_empty());
    assert!(validate_object(&Object::ReplicaSet(rs)).is_ok());
}

// ---- 1. unknown field, with the schema's list and a suggestion ----------

#[test]
fn unknown_field_suggests_the_closest() {
    let d = one(&rs_with(6, "replica = 3"));
    assert_at(&d, 6, 1, "unknown field `replica`");
    assert_label(
        &d,
        "expected one of: replicas, selector, template, allow_broad_selector",
    );
    assert_help(&d, "did you mean `replicas`?");
    assert_eq!(d.width, "replica".len());
}

// ---- 2. enum value misspelt ----------------------------------------------

#[test]
fn misspelt_restart_policy() {
    let d = one(&rs_with(13, r#"restart_policy = "Allways""#));
    assert_at(&d, 13, 18, "unknown restart_policy \"Allways\"");
    assert_label(&d, "expected one of: Always, OnFailure, Never");
    assert_help(&d, "did you mean \"Always\"?");
}

// ---- 3. selector does not match the template -----------------------------

#[test]
fn selector_must_match_template_labels() {
    let text = rs_with(
        9,
        r#"match_labels = { app = "web", tier = "backend", env = "prod" }"#,
    );
    let d = one(&text);
    assert_at(&d, 9, 16, "selector does not match template labels");
    assert_eq!(d.secondary.len(), 1);
    let second = &d.secondary[0];
    assert_eq!(
        (
            second.location.line,
            second.location.col,
            second.label.as_str()
        ),
        (12, 10, "template.labels")
    );
    assert_help(
        &d,
        "add `env = \"prod\"` to template.labels, or drop it from match_labels\n\
         template.labels has `tier = \"frontend\"` but the selector wants `tier = \"backend\"`",
    );
}

#[test]
fn selector_expression_must_match_too() {
    let text = rs_with(
        9,
        r#"match_expressions = [{ key = "tier", operator = "In", values = ["backend", "db"] }]"#,
    );
    let d = one(&text);
    assert_at(&d, 9, 22, "selector does not match template labels");
    assert_help(
        &d,
        "template.labels has `tier = \"frontend\"` but the selector wants one of \"backend\", \"db\"",
    );
}

// ---- 4. match_expressions in a ReplicationController ---------------------

#[test]
fn replication_controller_selector_is_a_plain_map() {
    let text = r#"kind = "ReplicationController"
name = "worker"
[spec]
replicas = 2
[spec.selector]
match_expressions = [{ key = "app", operator = "Exists" }]
[spec.template]
labels = { app = "worker" }
[[spec.template.processes]]
name = "work"
command = ["sleep", "60"]
"#;
    let d = one(text);
    assert_at(
        &d,
        6,
        1,
        "`match_expressions` is not supported in a ReplicationController selector",
    );
    assert_label(
        &d,
        "a ReplicationController's selector is a plain label map",
    );
    assert_help(
        &d,
        "set-based selectors need kind = \"ReplicaSet\"; or select by labels: \
         selector = { app = \"worker\" }",
    );
}

// ---- 5. no processes -----------------------------------------------------

#[test]
fn empty_processes() {
    let text = r#"kind = "Pod"
name = "lonely"
[spec]
processes = []
"#;
    let d = one(text);
    assert_at(&d, 4, 13, "a pod needs at least one process");
    assert!(d
        .help
        .as_deref()
        .unwrap()
        .starts_with("add one: spec.processes = [{"));
}

#[test]
fn missing_processes() {
    let text = "kind = \"Pod\"\nname = \"lonely\"\n[spec]\nrestart_policy = \"Never\"\n";
    let d = one(text);
    assert_at(&d, 3, 1, "missing field `processes`");
    assert_label(&d, "required in spec");
}

// ---- 6. duplicate process names ------------------------------------------

#[test]
fn duplicate_process_names() {
    let text = r#"kind = "Pod"
name = "pair"
[[spec.processes]]
name = "main"
command = ["sleep", "1"]
[[spec.processes]]
name = "main"
command = ["sleep", "2"]
"#;
    let d = one(text);
    assert_at(&d, 7, 8, "duplicate process name \"main\"");
    assert_eq!(d.secondary[0].location.line, 4);
    assert_eq!(d.secondary[0].label, "first defined here");
}

// ---- 7. negative replicas ------------------------------------------------

#[test]
fn negative_replicas() {
    let d = one(&rs_with(6, "replicas = -1"));
    assert_at(
        &d,
        6,
        12,
        "`replicas` must be a non-negative integer, found -1",
    );
}

// ---- 8. a duration without a unit ----------------------------------------

#[test]
fn duration_without_unit() {
    let d = one(&rs_with(22, r#"period = "10""#));
    assert_at(&d, 22, 10, "invalid duration \"10\"");
    assert_label(
        &d,
        "a duration needs a unit: write \"10s\" for seconds (units: ms, s, m, h)",
    );
}

#[test]
fn duration_as_a_number() {
    let d = one(&rs_with(22, "period = 10"));
    assert_at(
        &d,
        22,
        10,
        "expected a duration string such as \"10s\", found an integer",
    );
    assert_help(&d, "write period = \"10s\"");
}

// ---- 9. a probe names a port the pod does not declare --------------------

#[test]
fn unknown_probe_port_name() {
    let d = one(&rs_with(21, r#"http_get = { path = "/", port = "htp" }"#));
    assert_at(&d, 21, 33, "unknown port \"htp\"");
    assert_label(&d, "expected a port number or one of the pod's ports: http");
    assert_help(&d, "did you mean \"http\"?");
}

// ---- 10. two probe handlers ----------------------------------------------

#[test]
fn two_probe_handlers() {
    let d = one(&rs_with(
        22,
        r#"exec = { command = ["curl", "-f", "localhost"] }"#,
    ));
    assert_at(
        &d,
        22,
        1,
        "a probe has exactly one handler, found `http_get` and `exec`",
    );
    assert_eq!(d.secondary[0].location.line, 21);
}

#[test]
fn probe_without_handler() {
    let d = one(&rs_with(21, "timeout = \"2s\""));
    assert_at(&d, 20, 1, "the liveness probe has no handler");
    assert_label(&d, "expected one of: http_get, tcp_socket, exec");
}

// ---- 11. liveness success_threshold must be 1 ----------------------------

#[test]
fn liveness_success_threshold_is_one() {
    let d = one(&rs_with(23, "success_threshold = 2"));
    assert_at(
        &d,
        23,
        21,
        "`success_threshold` must be 1 for a liveness probe",
    );
    assert_label(&d, "found 2");
}

// ---- 12. a port range that is empty --------------------------------------

#[test]
fn bad_port_range() {
    let d = one(&rs_with(
        14,
        r#"ports = [{ name = "http", range = "8099-8080" }]"#,
    ));
    assert_at(&d, 14, 35, "invalid port range \"8099-8080\"");
    assert_label(
        &d,
        "port range `8099-8080` is empty: write it as \"FIRST-LAST\" with 1 <= FIRST <= LAST",
    );
}

#[test]
fn duplicate_port_names() {
    let d = one(&rs_with(
        14,
        r#"ports = [{ name = "http", range = "8080-8099" }, { name = "http", range = "9000" }]"#,
    ));
    assert_at(&d, 14, 59, "duplicate port name \"http\"");
}

// ---- 13. unknown kind ----------------------------------------------------

#[test]
fn unknown_kind() {
    let d = one(&rs_with(1, r#"kind = "ReplicaSett""#));
    assert_at(&d, 1, 8, "unknown kind \"ReplicaSett\"");
    assert_label(
        &d,
        "expected one of: Pod, ReplicaSet, ReplicationController, DaemonSet, Job, CronJob",
    );
    assert_help(&d, "did you mean \"ReplicaSet\"?");
}

#[test]
fn kind_not_supported_yet() {
    // Parsed and checked like any kind, then refused by name while the
    // daemon cannot run it (see tests::fields for the whole list).
    if !NOT_YET_SUPPORTED.contains(&Feature::DaemonSets) {
        return;
    }
    let text = "kind = \"DaemonSet\"\nname = \"agent\"\n[spec.selector]\n\
                match_labels = { app = \"agent\" }\n[spec.template]\nlabels = { app = \"agent\" }\n\
                [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"60\"]\n";
    let d = one(text);
    assert_at(
        &d,
        1,
        8,
        "kind `DaemonSet` is not supported by this version of drover yet",
    );
}

// ---- 14. api_version that does not fit the kind --------------------------

#[test]
fn api_version_mismatch() {
    let text = RS.replacen("name = \"web\"", "api_version = \"v1\"\nname = \"web\"", 1);
    let d = one(&text);
    assert_at(
        &d,
        2,
        15,
        "api_version \"v1\" does not match kind `ReplicaSet`",
    );
    assert_label(&d, "expected \"apps/v1\"");
    assert_help(&d, "write api_version = \"apps/v1\", or leave it out");
}

// ---- 15. TOML syntax error -----------------------------------------------

#[test]
fn toml_syntax_error() {
    let d = one("kind = \"Pod\"\nname = \n");
    assert_at(&d, 2, 8, "invalid TOML: invalid string");
    assert_label(&d, "expected `\"`, `'`");
}

#[test]
fn toml_duplicate_key() {
    let d = one("kind = \"Pod\"\nkind = \"Pod\"\n");
    assert_eq!(
        (d.line, d.message.starts_with("invalid TOML")),
        (2, true),
        "{d}"
    );
}

// ---- 16. wrong types -----------------------------------------------------

#[test]
fn wrong_type_integer_for_string() {
    let d = one(&rs_with(3, "labels = { app = \"web\", version = 2 }"));
    assert_at(&d, 3, 35, "expected a string, found an integer");
    assert_help(&d, "quote it: version = \"2\"");
}

#[test]
fn wrong_type_string_for_integer() {
    let d = one(&rs_with(6, "replicas = \"3\""));
    assert_at(&d, 6, 12, "expected an integer, found a string");
}

#[test]
fn command_as_a_shell_line() {
    let d = one(&rs_with(18, r#"command = "python3 -m http.server""#));
    assert_at(&d, 18, 11, "expected an array of strings, found a string");
    assert_help(&d, "write command = [\"python3\", \"-m\", \"http.server\"]");
}

// ---- 17. unknown ${VAR} --------------------------------------------------

#[test]
fn unknown_variable_in_command() {
    let d = one(&rs_with(
        18,
        r#"command = ["python3", "-m", "http.server", "${PORT_HTPP}"]"#,
    ));
    // points at the `${PORT_HTPP}` inside the string
    assert_at(&d, 18, 45, "unknown variable `${PORT_HTPP}` in command");
    assert_eq!(d.width, "${PORT_HTPP}".len());
    assert_help(&d, "did you mean `${PORT_HTTP}`?");
}

#[test]
fn variables_that_are_known_and_escapes() {
    let text = rs_with(
        18,
        r#"command = ["sh", "-c", "echo ${DROVER_POD_NAME} ${HOME} ${GREETING} $${NOT_EXPANDED} $PLAIN"]
env = { GREETING = "hi" }"#,
    );
    ok(&text);
}

// ---- 18. watchdog without notify -----------------------------------------

#[test]
fn watchdog_without_notify() {
    let d = one(&rs_with(19, "watchdog = \"30s\""));
    assert_at(&d, 19, 1, "`watchdog` needs `notify = true`");
    assert_help(
        &d,
        "add notify = true, and send WATCHDOG=1 from the process",
    );
}

// ---- 19. invalid names ---------------------------------------------------

#[test]
fn invalid_name() {
    let d = one(&rs_with(2, r#"name = "Web_1""#));
    assert_at(&d, 2, 8, "invalid name \"Web_1\"");
    assert_label(
        &d,
        "use lowercase letters, digits and '-', starting and ending with a letter or digit",
    );
    assert_help(&d, "did you mean \"web-1\"?");
}

#[test]
fn name_too_long_for_a_replicaset() {
    let long = "a".repeat(58);
    let d = one(&rs_with(2, &format!("name = \"{long}\"")));
    assert_at(&d, 2, 8, &format!("invalid name \"{long}\""));
    assert_label(
        &d,
        "use at most 57 characters (found 58), so that its pods' names fit in 63",
    );
}

// ---- 20. resources are not supported yet ---------------------------------

#[test]
fn resources_not_supported() {
    if !NOT_YET_SUPPORTED.contains(&Feature::Resources) {
        return;
    }
    let d = one(&rs_with(19, r#"resources = { memory = "256Mi" }"#));
    assert_at(
        &d,
        19,
        1,
        "`resources` is not supported by this version of drover yet",
    );
    assert_help(&d, "remove `resources` to run the unit without it");
}

// ---- 21. more impossible values ------------------------------------------

#[test]
fn relative_working_dir() {
    let d = one(&rs_with(19, r#"working_dir = "srv/web""#));
    assert_at(
        &d,
        19,
        15,
        "working_dir \"srv/web\" is not an absolute path",
    );
}

#[test]
fn invalid_env_name() {
    let d = one(&rs_with(19, r#"env = { "1ST" = "x" }"#));
    assert_at(&d, 19, 9, "invalid environment variable name `1ST`");
}

#[test]
fn in_operator_needs_values() {
    let d = one(&rs_with(
        9,
        r#"match_expressions = [{ key = "app", operator = "In" }]"#,
    ));
    assert_at(
        &d,
        9,
        48,
        "operator `In` needs at least one value in `values`",
    );
    assert_help(&d, "add values = [\"...\"]");
}

#[test]
fn exists_takes_no_values() {
    let d = one(&rs_with(
        9,
        r#"match_expressions = [{ key = "app", operator = "Exists", values = ["web"] }]"#,
    ));
    assert_at(&d, 9, 67, "operator `Exists` takes no `values`");
}

#[test]
fn missing_command() {
    let d = one(&rs_with(18, "user = \"www-data\""));
    assert_at(&d, 16, 1, "missing field `command`");
    assert_label(&d, "required in spec.template.processes[0]");
}

#[test]
fn empty_selector() {
    let d = one(&rs_with(9, "match_labels = {}"));
    assert_at(&d, 8, 1, "the selector must not be empty");
    assert_help(
        &d,
        "add match_labels = { app = \"web\", tier = \"frontend\" }",
    );
}

#[test]
fn replicaset_selector_written_as_a_plain_map() {
    let d = one(&rs_with(9, r#"app = "web""#));
    assert_at(&d, 8, 1, "a ReplicaSet's selector is not a plain label map");
    assert_help(&d, "write selector = { match_labels = { app = \"web\" } }");
}

#[test]
fn kubernetes_spelling_is_folded() {
    let d = one(&rs_with(22, r#"periodSeconds = 10"#));
    assert_at(&d, 22, 1, "unknown field `periodSeconds`");
    assert_help(&d, "did you mean `period`?");
}

#[test]
fn pod_fields_placed_in_a_replicaset_spec() {
    let d = one(&rs_with(6, r#"restart_policy = "Always""#));
    assert_at(&d, 6, 1, "unknown field `restart_policy`");
    assert_help(
        &d,
        "`restart_policy` belongs to the pod template: write it in [spec.template]",
    );
}

#[test]
fn invalid_label_value() {
    let d = one(&rs_with(3, r#"labels = { app = "web,db" }"#));
    assert_at(&d, 3, 18, "invalid label value \"web,db\"");
}

#[test]
fn missing_kind() {
    let d = one("name = \"x\"\n[spec]\n");
    assert_at(&d, 1, 1, "missing field `kind`");
}

// ---- all errors of a file at once ----------------------------------------

#[test]
fn all_errors_of_a_file_are_reported() {
    let text = r#"kind = "ReplicaSet"
name = "web"
[spec]
replica = 3
[spec.selector]
match_labels = { app = "web" }
[spec.template]
labels = { app = "web" }
restart_policy = "Allways"
[[spec.template.processes]]
name = "server"
command = ["sleep", "1"]
[spec.template.processes.liveness]
exec = { command = ["true"] }
period = "10"
"#;
    let d = errors(text);
    let at: Vec<(usize, usize, &str)> = d
        .iter()
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(
        at,
        vec![
            (4, 1, "unknown field `replica`"),
            (9, 18, "unknown restart_policy \"Allways\""),
            (15, 10, "invalid duration \"10\""),
        ]
    );
}

// ---- rendering -----------------------------------------------------------

#[test]
fn rendering_matches_the_style_guide() {
    let d = errors(&rs_with(6, "replica = 3"));
    let shown = Diagnostics::new(d).to_string();
    let expected = "\
error: unknown field `replica`
  --> units/test.toml:6:1
   |
 6 | replica = 3
   | ^^^^^^^ expected one of: replicas, selector, template, allow_broad_selector
   = help: did you mean `replicas`?
1 error in 1 file; nothing was applied";
    assert_eq!(shown, expected);
}

#[test]
fn rendering_with_two_positions() {
    let text = rs_with(9, r#"match_labels = { app = "web", env = "prod" }"#);
    let shown = Diagnostics::new(errors(&text)).to_string();
    let expected = "\
error: selector does not match template labels
   --> units/test.toml:9:16   (selector)   units/test.toml:12:10   (template.labels)
    |
  9 | match_labels = { app = \"web\", env = \"prod\" }
    |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ selector
 12 | labels = { app = \"web\", tier = \"frontend\" }
    |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ template.labels
    = help: add `env = \"prod\"` to template.labels, or drop it from match_labels
2 errors in 1 file; nothing was applied";
    // (one error; the count line is checked below)
    let expected = expected.replace("2 errors", "1 error");
    assert_eq!(shown, expected);
}

// ---- folders -------------------------------------------------------------

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const TICK: &str = "kind = \"Pod\"\nname = \"tick\"\n[[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"60\"]\n";

#[test]
fn a_folder_with_one_bad_file_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-good.toml", TICK);
    write(dir.path(), "b-bad.toml", &rs_with(6, "replica = 3"));
    write(dir.path(), "c-worse.toml", "kind = \"Pod\"\nname = \n");
    write(dir.path(), "notes.txt", "not a unit");
    let err = load_path(dir.path(), now()).unwrap_err();
    assert_eq!((err.len(), err.files), (2, 2));
    assert!(err.diagnostics[0].path.ends_with("b-bad.toml"));
    assert!(err.diagnostics[1].path.ends_with("c-worse.toml"));
    assert!(err
        .to_string()
        .ends_with("2 errors in 2 files; nothing was applied"));
}

#[test]
fn a_folder_loads_every_toml_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.toml", TICK);
    write(dir.path(), "a.toml", &TICK.replace("\"tick\"", "\"tack\""));
    write(dir.path(), ".hidden.toml", "garbage = ");
    let units = load_path(dir.path(), now()).unwrap();
    let names: Vec<&str> = units.iter().map(|u| u.object.name()).collect();
    assert_eq!(names, ["tack", "tick"]);
    assert_eq!(units[0].source, dir.path().join("a.toml"));
    assert_eq!(units[1].hash, source_hash(TICK.as_bytes()));
    assert_eq!(
        units[1].object.meta().annotations[annotations::SOURCE_FILE],
        dir.path().join("b.toml").display().to_string()
    );
}

#[test]
fn the_same_unit_in_two_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "one.toml", TICK);
    write(dir.path(), "two.toml", &format!("# copy\n{TICK}"));
    let err = load_path(dir.path(), now()).unwrap_err();
    assert_eq!(err.len(), 1);
    let d = &err.diagnostics[0];
    assert_at(d, 3, 8, "Pod `tick` is defined twice");
    assert!(d.path.ends_with("two.toml"));
    assert!(d.secondary[0].location.path.ends_with("one.toml"));
    assert_eq!(d.secondary[0].location.line, 2);
    assert!(d.help.as_deref().unwrap().contains("one.toml"));
}

#[test]
fn a_missing_path_is_one_error() {
    let err = load_path(Path::new("/nonexistent/units"), now()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err.diagnostics[0].line, 0);
    assert!(err
        .to_string()
        .starts_with("error: cannot read /nonexistent/units"));
}

#[test]
fn the_example_units_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let units = match load_path(&dir, now()) {
        Ok(u) => u,
        Err(d) => panic!("{d}"),
    };
    let mut kinds: Vec<Kind> = units.iter().map(|u| u.object.kind()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            Kind::Pod,
            Kind::ReplicaSet,
            Kind::ReplicationController,
            Kind::DaemonSet,
            Kind::Job,
            Kind::CronJob
        ]
    );
    for u in &units {
        assert_eq!(validate_object(&u.object), Ok(()), "{}", u.source.display());
    }
    let web = units.iter().find(|u| u.object.name() == "web").unwrap();
    let Object::ReplicaSet(rs) = &web.object else {
        panic!("web is not a ReplicaSet")
    };
    assert_eq!(rs.spec.replicas, 2);
    assert_eq!(rs.spec.template.spec.ports[0].range.first, 8080);
    assert_eq!(rs.spec.template.spec.restart_policy, RestartPolicy::Always);
}

// ---- other kinds and defaults --------------------------------------------

#[test]
fn pod_and_replication_controller_defaults() {
    let Object::Pod(pod) = ok(TICK) else { panic!() };
    assert_eq!(pod.spec.termination_grace_period, Dur::secs(30));
    assert_eq!(pod.spec.restart_policy, RestartPolicy::Always);

    let rc = r#"kind = "ReplicationController"
name = "worker"
[spec.template]
labels = { app = "worker" }
[[spec.template.processes]]
name = "work"
command = ["sleep", "60"]
"#;
    let Object::ReplicationController(rc) = ok(rc) else {
        panic!()
    };
    assert_eq!(rc.spec.replicas, 1);
    assert_eq!(rc.spec.selector["app"], "worker");
}

#[test]
fn selector_expressions_are_built() {
    let text = rs_with(
        9,
        r#"match_expressions = [{ key = "tier", operator = "In", values = ["frontend"] }, { key = "legacy", operator = "DoesNotExist" }]"#,
    );
    let Object::ReplicaSet(rs) = ok(&text) else {
        panic!()
    };
    let ops: Vec<Operator> = rs
        .spec
        .selector
        .match_expressions
        .iter()
        .map(|r| r.operator)
        .collect();
    assert_eq!(ops, [Operator::In, Operator::DoesNotExist]);
}

// ---- validate_object on objects that did not come from a file ------------

#[test]
fn validate_object_checks_json_objects() {
    let Object::ReplicaSet(mut rs) = ok(RS) else {
        panic!()
    };
    rs.metadata.name = "Web_1".into();
    rs.spec
        .selector
        .match_labels
        .insert("tier".into(), "db".into());
    rs.spec.template.spec.processes[0].command = vec![];
    rs.spec.template.spec.processes[0]
        .liveness
        .as_mut()
        .unwrap()
        .success_threshold = 2;
    let errs = validate_object(&Object::ReplicaSet(rs)).unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("metadata.name: invalid name \"Web_1\""));
    assert!(
        errs[1].starts_with("spec.selector.match_labels: selector does not match template labels")
    );
    assert!(errs[2].starts_with("spec.template.processes[0].command: `command` must not be empty"));
    assert!(errs[3].starts_with(
        "spec.template.processes[0].liveness.success_threshold: \
         `success_threshold` must be 1 for a liveness probe (found 2)"
    ));
}

#[test]
fn source_hash_is_fnv1a() {
    // FNV-1a 64 test vectors.
    assert_eq!(source_hash(b""), "cbf29ce484222325");
    assert_eq!(source_hash(b"a"), "af63dc4c8601ec8c");
}

#[test]
fn single_brackets_for_an_array_of_tables() {
    let text =
        "kind = \"Pod\"\nname = \"p\"\n[spec.processes]\nname = \"main\"\ncommand = [\"x\"]\n";
    let d = one(text);
    assert_at(&d, 3, 1, "expected an array of tables, found a table");
    assert_help(
        &d,
        "write [[spec.processes]] with double brackets: each entry is one element of an array",
    );
}

#[test]
fn empty_file() {
    let d = one("# nothing yet\n");
    assert_at(&d, 1, 1, "empty unit file");
    assert_help(&d, "start with kind = \"Pod\" and name = \"test\"");
}

#[test]
fn probe_port_number_written_as_a_string() {
    let d = one(&rs_with(21, r#"http_get = { path = "/", port = "8080" }"#));
    assert_at(&d, 21, 33, "unknown port \"8080\"");
    assert_help(&d, "write it as a number: port = 8080");
}

#[test]
fn shell_syntax_in_a_command_string_suggests_sh_c() {
    let d = one(&rs_with(18, r#"command = "echo hi | tee /tmp/x""#));
    assert_help(
        &d,
        "write command = [\"/bin/sh\", \"-c\", \"echo hi | tee /tmp/x\"]",
    );
}

#[test]
fn https_probes_are_refused_until_drover_speaks_tls() {
    let text = "kind = \"Pod\"\nname = \"p\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
                command = [\"sleep\", \"1\"]\n[spec.processes.liveness]\n\
                http_get = { path = \"/\", port = 8443, scheme = \"https\" }\n";
    let errs = parse_unit(std::path::Path::new("p.toml"), text, chrono::Utc::now())
        .expect_err("https is refused");
    let all: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    assert!(
        all.iter()
            .any(|e| e.contains("unknown scheme \"https\"") && e.contains("p.toml:8:48")),
        "{all:?}"
    );
}
