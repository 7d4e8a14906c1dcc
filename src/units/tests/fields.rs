//! The process and pod fields of product.md §2 beyond the first version:
//! resources, rlimits, umask, pid_file, allow_privilege_escalation, init
//! processes, DaemonSets; and the list of what is parsed but not run yet.

use super::*;
use crate::api::{CpuQuantity, MemoryQuantity, RlimitValue, Umask};

#[test]
fn every_new_process_field_is_read() {
    let text = pod_with(
        r#"resources = { memory = "256Mi", cpu = 0.5, pids = 100 }
rlimits = { nofile = 65536, core = "unlimited" }
umask = "0027"
pid_file = "/run/p.pid"
allow_privilege_escalation = true"#,
    );
    let (obj, _) = built(&text);
    let Object::Pod(pod) = obj else { panic!() };
    let p = &pod.spec.processes[0];
    let r = p.resources.as_ref().unwrap();
    assert_eq!(r.memory, Some(MemoryQuantity(256 << 20)));
    assert_eq!(r.cpu, Some(CpuQuantity(500)));
    assert_eq!(r.pids, Some(100));
    assert_eq!(p.rlimits["nofile"], RlimitValue::Limit(65536));
    assert_eq!(p.rlimits["core"], RlimitValue::Unlimited);
    assert_eq!(p.umask, Some(Umask(0o027)));
    assert_eq!(p.pid_file.as_deref(), Some(Path::new("/run/p.pid")));
    assert!(p.allow_privilege_escalation);
    // cpu as a string, memory as bytes.
    let (obj, _) = built(&pod_with(
        r#"resources = { memory = 1048576, cpu = "250m" }"#,
    ));
    let Object::Pod(pod) = obj else { panic!() };
    let r = pod.spec.processes[0].resources.clone().unwrap();
    assert_eq!(
        (r.memory, r.cpu),
        (Some(MemoryQuantity(1 << 20)), Some(CpuQuantity(250)))
    );
}

#[test]
fn what_the_runtime_carries_out_is_accepted() {
    let Object::Pod(pod) = ok(&pod_with(
        "rlimits = { nofile = 1024 }\numask = \"077\"\nallow_privilege_escalation = false",
    )) else {
        panic!()
    };
    let p = &pod.spec.processes[0];
    assert_eq!(p.umask, Some(Umask(0o077)));
    assert!(!p.allow_privilege_escalation);
    // The API shape: allow_privilege_escalation is left out when false.
    let json = serde_json::to_value(p).unwrap();
    assert!(json.get("allow_privilege_escalation").is_none(), "{json}");
}

#[test]
fn an_unknown_rlimit_suggests_the_closest() {
    let d = one(&pod_with("rlimits = { nofiles = 1024 }"));
    assert_at(&d, 6, 13, "unknown rlimit `nofiles`");
    assert_help(&d, "did you mean `nofile`?");
    assert!(
        d.label.as_deref().unwrap().contains("nofile, core, nproc"),
        "{d}"
    );
}

#[test]
fn rlimit_values() {
    let d = one(&pod_with("rlimits = { core = \"infinity\" }"));
    assert_at(&d, 6, 20, "invalid rlimit \"infinity\" for `core`");
    assert_help(&d, "write core = \"unlimited\"");
    let d = one(&pod_with("rlimits = { nofile = -1 }"));
    assert_at(&d, 6, 22, "invalid rlimit -1 for `nofile`");
    let d = one(&pod_with("rlimits = { nofile = true }"));
    assert_at(
        &d,
        6,
        22,
        "expected a number or \"unlimited\", found a boolean",
    );
}

#[test]
fn umask_pid_file_and_privilege_escalation_values() {
    let d = one(&pod_with("umask = \"0089\""));
    assert_at(&d, 6, 9, "invalid umask \"0089\"");
    let d = one(&pod_with("umask = 27"));
    assert_at(&d, 6, 9, "expected a string, found an integer");
    assert_help(&d, "quote it: umask = \"27\"");
    let d = one(&pod_with("allow_privilege_escalation = \"true\""));
    assert_help(&d, "drop the quotes: allow_privilege_escalation = true");
    if !NOT_YET_SUPPORTED.contains(&Feature::PidFile) {
        let d = one(&pod_with("pid_file = \"run/p.pid\""));
        assert_at(&d, 6, 12, "pid_file \"run/p.pid\" is not an absolute path");
    } else {
        let (_, d) = built(&pod_with("pid_file = \"run/p.pid\""));
        assert!(
            d.iter()
                .any(|d| d.message == "pid_file \"run/p.pid\" is not an absolute path"),
            "{}",
            render(&d)
        );
    }
}

#[test]
fn resource_quantities() {
    let (_, d) = built(&pod_with("resources = { memory = \"256MB\" }"));
    let d: Vec<_> = d
        .iter()
        .filter(|d| !d.message.contains("not supported"))
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_at(d[0], 6, 24, "invalid memory quantity \"256MB\"");
    assert_eq!(
        d[0].label.as_deref(),
        Some("expected a size such as \"256Mi\", \"1Gi\" or \"500M\"")
    );
    let (_, d) = built(&pod_with("resources = { pids = 0, cpu = \"half\" }"));
    let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.contains(&"`pids` must be more than 0"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"invalid cpu quantity \"half\""),
        "{messages:?}"
    );
    let (_, d) = built(&pod_with(
        "resources = { memory = \"1Gi\", swap = \"1Gi\" }",
    ));
    assert!(
        d.iter().any(|d| d.message == "unknown field `swap`"
            && d.label.as_deref() == Some("expected one of: memory, cpu, pids")),
        "{}",
        render(&d)
    );
}

/// `[[spec.init_processes]]` before the pod's one process.
fn with_init(extra: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"p\"\n[[spec.init_processes]]\nname = \"setup\"\ncommand = [\"true\"]\n{extra}\n\
         [[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"60\"]\n"
    )
}

#[test]
fn init_processes_are_processes_without_probes() {
    let (obj, _) = built(&with_init("umask = \"0077\""));
    let Object::Pod(pod) = obj else { panic!() };
    assert_eq!(pod.spec.init_processes.len(), 1);
    assert_eq!(pod.spec.init_processes[0].name, "setup");
    assert_eq!(pod.spec.init_processes[0].umask, Some(Umask(0o077)));
    assert_eq!(pod.spec.processes[0].name, "main");

    let (_, d) = built(&with_init(
        "[spec.init_processes.liveness]\nexec = { command = [\"true\"] }",
    ));
    let d: Vec<_> = d
        .into_iter()
        .filter(|d| !d.message.contains("not supported"))
        .collect();
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_at(&d[0], 6, 22, "an init process has no liveness probe");
    assert_eq!(
        d[0].help.as_deref(),
        Some("remove `liveness`, or move the check into one of `processes`")
    );
}

#[test]
fn process_names_are_unique_across_init_processes_and_processes() {
    let text = with_init("").replace("name = \"main\"", "name = \"setup\"");
    let (_, d) = built(&text);
    let dup: Vec<_> = d
        .iter()
        .filter(|d| d.message == "duplicate process name \"setup\"")
        .collect();
    assert_eq!(dup.len(), 1, "{}", render(&d));
    assert_eq!((dup[0].line, dup[0].col), (8, 8));
    assert_eq!(dup[0].secondary[0].location.line, 4);
}

#[test]
fn an_init_process_is_checked_like_a_process() {
    let (_, d) = built(&with_init("cwd = \"/srv\""));
    assert!(
        d.iter().any(|d| d.message == "unknown field `cwd`"
            && d.help.as_deref() == Some("did you mean `working_dir`?")),
        "{}",
        render(&d)
    );
}

const DAEMONSET: &str = r#"kind = "DaemonSet"
name = "agent"
[spec.selector]
match_labels = { app = "agent" }
[spec.template]
labels = { app = "agent" }
node_selector = { disk = "ssd" }
[[spec.template.processes]]
name = "main"
command = ["sleep", "60"]
"#;

#[test]
fn a_daemonset_is_a_selector_and_a_template() {
    let (obj, _) = built(DAEMONSET);
    let Object::DaemonSet(ds) = obj else {
        panic!("not a DaemonSet")
    };
    assert_eq!(ds.metadata.name, "agent");
    assert_eq!(ds.spec.selector.match_labels["app"], "agent");
    assert_eq!(ds.spec.template.spec.node_selector["disk"], "ssd");
    assert!(!ds.spec.allow_broad_selector);
}

#[test]
fn a_daemonset_has_no_replicas() {
    let text = DAEMONSET.replace("[spec.selector]", "[spec]\nreplicas = 3\n[spec.selector]");
    let (_, d) = built(&text);
    let d: Vec<_> = d
        .into_iter()
        .filter(|d| !d.message.contains("not supported"))
        .collect();
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_at(&d[0], 4, 1, "unknown field `replicas`");
    assert_eq!(
        d[0].help.as_deref(),
        Some(
            "a DaemonSet runs one pod on every node that matches its template's \
             node_selector: remove `replicas`"
        )
    );
}

/// A unit that uses `feature`, and where its use is written.
fn uses(feature: Feature) -> (String, (usize, usize)) {
    match feature {
        Feature::DaemonSets => (DAEMONSET.to_string(), (1, 8)),
        Feature::Resources => (pod_with("resources = { memory = \"64Mi\" }"), (6, 1)),
        Feature::PidFile => (pod_with("pid_file = \"/run/p.pid\""), (6, 1)),
        Feature::InitProcesses => (with_init(""), (3, 8)),
    }
}

#[test]
fn features_not_yet_supported_are_refused_by_name_and_the_others_run() {
    for feature in Feature::ALL {
        let (text, (line, col)) = uses(feature);
        let result = parse_unit(Path::new(FILE), &text, now());
        if NOT_YET_SUPPORTED.contains(&feature) {
            let d = result.expect_err(feature.field());
            assert_eq!(d.len(), 1, "{}", render(&d));
            assert!(
                d[0].message
                    .contains(feature.field().trim_start_matches("kind = "))
                    || d[0].message.contains("`DaemonSet`"),
                "{}",
                d[0]
            );
            assert!(
                d[0].message
                    .ends_with("is not supported by this version of drover yet"),
                "{}",
                d[0]
            );
            assert_eq!((d[0].line, d[0].col), (line, col), "{}", d[0]);
        } else {
            assert!(result.is_ok(), "{feature:?}: {:?}", result.err());
        }
    }
}

#[test]
fn json_objects_are_refused_the_same_features() {
    for feature in NOT_YET_SUPPORTED {
        let (obj, _) = built(&uses(*feature).0);
        let errs = validate_object(&obj).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("is not supported by this version of drover yet")),
            "{errs:?}"
        );
    }
}
