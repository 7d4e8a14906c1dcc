//! Limits on what a unit may ask for (issue 9): file size, argument and
//! environment size, pod counts, NUL bytes. Each was accepted before, and
//! failed later (E2BIG at every start, a crash loop when pids ran out).

use super::*;
use std::io::Write;

#[test]
fn a_unit_file_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let unit = pod_with("");
    // Valid TOML to the byte: comment lines padding the unit.
    let padded = |size: usize| {
        let mut text = unit.clone();
        while text.len() < size {
            let room = size - text.len();
            let line = "#".repeat(room.min(1000).saturating_sub(1));
            text.push_str(&line);
            text.push('\n');
        }
        text
    };
    let cap = MAX_UNIT_FILE_BYTES as usize;
    let at_cap = padded(cap);
    assert_eq!(at_cap.len(), cap);
    std::fs::write(dir.path().join("a.toml"), &at_cap).unwrap();
    assert_eq!(load_path(dir.path(), now()).unwrap().len(), 1);

    let over = padded(2 * cap);
    std::fs::write(dir.path().join("a.toml"), &over).unwrap();
    let err = load_path(dir.path(), now()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err.diagnostics[0].message,
        "the file is larger than 1024 KiB, the most a unit file may be"
    );
    let err = parse_unit(Path::new(FILE), &over, now()).unwrap_err();
    assert!(
        err[0].message.starts_with("the file is larger"),
        "{}",
        err[0]
    );
}

#[test]
fn a_huge_unit_file_is_not_read() {
    // 100 MB, sparse: refused from its size alone (reading it would
    // take the daemon's memory and time).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(pod_with("").as_bytes()).unwrap();
    f.set_len(100_000_000).unwrap();
    let err = load_path(&path, now()).unwrap_err();
    assert!(
        err.diagnostics[0].message.starts_with("the file is larger"),
        "{err}"
    );
}

#[test]
fn one_argument_over_max_arg_strlen() {
    let big = "x".repeat(MAX_ARG_STRLEN);
    let text = format!(
        "kind = \"Pod\"\nname = \"p\"\n[[spec.processes]]\nname = \"main\"\ncommand = [\"echo\", \"{big}\"]\n"
    );
    let d = one(&text);
    assert_at(&d, 5, 20, "this argument is 131072 bytes long");
    assert!(
        d.label.as_deref().unwrap().contains("MAX_ARG_STRLEN"),
        "{d}"
    );
    // The drawn line is cut around the marker.
    assert!(d.to_string().len() < 1000, "{}", d.to_string().len());
    // One byte less (the NUL makes it 128 KiB) runs.
    ok(&text.replacen('x', "", 1));
}

#[test]
fn an_environment_string_over_max_arg_strlen() {
    let big = "v".repeat(MAX_ARG_STRLEN);
    let d = one(&pod_with(&format!("env = {{ BIG = \"{big}\" }}")));
    assert_at(&d, 6, 15, "the variable `BIG` is 131076 bytes long");
}

#[test]
fn a_variable_counts_as_what_it_expands_to() {
    let big = "v".repeat(100 * 1024);
    let text = pod_with(&format!("env = {{ BIG = \"{big}\" }}"))
        .replace("[\"sleep\", \"60\"]", "[\"echo\", \"${BIG}${BIG}\"]");
    let d = one(&text);
    assert_eq!(d.message, "this argument is 204800 bytes long", "{d}");
    assert_eq!((d.line, d.col), (5, 20));
}

#[test]
fn arguments_and_environment_together_over_arg_max() {
    // A file is at most 1 MiB, but variables expand: 20 arguments of
    // 100 KiB each fit one by one, not together.
    let big = "v".repeat(100 * 1024);
    let args = vec!["\"${BIG}\""; 20].join(", ");
    let text = pod_with(&format!("env = {{ BIG = \"{big}\" }}"))
        .replace("[\"sleep\", \"60\"]", &format!("[{args}]"));
    let d = one(&text);
    assert_eq!(
        d.message,
        // 20 x (102400 + NUL + pointer) + "BIG=..." + NUL + pointer
        "`command` and `env` take 2150593 bytes at exec, over the 2031616 a unit may use"
    );
    assert_eq!((d.line, d.col), (5, 11));
    assert!(d.label.as_deref().unwrap().contains("ARG_MAX"), "{d}");
    // 18 of them fit (19 would take 2048184 bytes).
    ok(&text.replacen("\"${BIG}\", ", "", 2));
}

#[test]
fn pod_counts_have_a_ceiling() {
    let rs = |n: u64| {
        format!(
            "kind = \"ReplicaSet\"\nname = \"web\"\n[spec]\nreplicas = {n}\n[spec.selector]\n\
             match_labels = {{ app = \"web\" }}\n[spec.template]\nlabels = {{ app = \"web\" }}\n\
             [[spec.template.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"60\"]\n"
        )
    };
    ok(&rs(u64::from(MAX_REPLICAS)));
    let d = one(&rs(1_000_000));
    assert_at(&d, 4, 12, "`replicas` must be at most 10000, found 1000000");
    let job = |field: &str| {
        format!(
            "kind = \"Job\"\nname = \"j\"\n[spec]\n{field} = 20000\n[spec.template]\n\
             restart_policy = \"Never\"\n[[spec.template.processes]]\nname = \"main\"\n\
             command = [\"true\"]\n"
        )
    };
    for field in ["completions", "parallelism"] {
        let d = one(&job(field));
        assert_at(
            &d,
            4,
            field.len() + 4,
            &format!("`{field}` must be at most 10000, found 20000"),
        );
    }
    // As JSON too.
    let Object::ReplicaSet(mut obj) = ok(&rs(1)) else {
        panic!()
    };
    obj.spec.replicas = 1_000_000;
    let errs = validate_object(&Object::ReplicaSet(obj)).unwrap_err();
    assert!(
        errs[0].starts_with("spec.replicas: `replicas` must be at most 10000"),
        "{errs:?}"
    );
}

#[test]
fn nul_bytes_are_refused_in_every_string() {
    let d = one(&pod_with("").replace("\"60\"", "\"6\\u00000\""));
    assert_at(&d, 5, 21, "a NUL byte in a string");
    assert_eq!(
        d.label.as_deref(),
        Some("Linux strings end at the first NUL: this one would read \"6\"")
    );
    // An invalid variable name, and a NUL in it: both at the key.
    let (_, d) = built(&pod_with("env = { \"A\\u0000B\" = \"x\" }"));
    assert!(
        d.iter().all(|d| (d.line, d.col) == (6, 9)),
        "{}",
        render(&d)
    );
    assert!(d.iter().any(|d| d.message == "a NUL byte in a string"));
    let (_, d) = built(&pod_with("working_dir = \"/srv\\u0000/x\""));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_at(&d[0], 6, 15, "a NUL byte in a string");

    let Object::Pod(mut pod) = ok(&pod_with("")) else {
        panic!()
    };
    pod.metadata.labels.insert("app".into(), "w\u{0}eb".into());
    let errs = validate_object(&Object::Pod(pod)).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("metadata.labels.app: a NUL byte in a string")),
        "{errs:?}"
    );
}
