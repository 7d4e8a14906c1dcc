//! Selectors that match too much (issue 10): with no positive term a
//! selector adopts every unmanaged pod on the host, so it is refused
//! unless the unit says `allow_broad_selector = true`.

use super::*;
use crate::api::Operator;

/// A ReplicaSet with `selector` lines under [spec.selector] (line 6 on)
/// and `spec` lines under [spec] (line 4).
fn rs(spec: &str, selector: &str) -> String {
    format!(
        "kind = \"ReplicaSet\"\nname = \"web\"\n[spec]\n{spec}\n[spec.selector]\n{selector}\n\
         [spec.template]\nlabels = {{ app = \"web\" }}\n[[spec.template.processes]]\n\
         name = \"main\"\ncommand = [\"sleep\", \"60\"]\n"
    )
}

#[test]
fn a_selector_of_only_does_not_exist_is_refused() {
    let text = rs(
        "",
        r#"match_expressions = [{ key = "legacy", operator = "DoesNotExist" }]"#,
    );
    let d = one(&text);
    assert_at(
        &d,
        5,
        1,
        "the selector matches too much: it has no `match_labels` and no `In` or `Exists` expression",
    );
    assert_help(
        &d,
        "add match_labels = { app = \"web\" }, or set allow_broad_selector = true in [spec] \
         if that is what you mean",
    );
}

#[test]
fn a_selector_of_only_not_in_is_refused() {
    let d = one(&rs(
        "",
        r#"match_expressions = [{ key = "app", operator = "NotIn", values = ["db"] }]"#,
    ));
    assert!(
        d.message.starts_with("the selector matches too much"),
        "{d}"
    );
}

#[test]
fn allow_broad_selector_accepts_it() {
    let text = rs(
        "allow_broad_selector = true",
        r#"match_expressions = [{ key = "legacy", operator = "DoesNotExist" }]"#,
    );
    let Object::ReplicaSet(obj) = ok(&text) else {
        panic!()
    };
    assert!(obj.spec.allow_broad_selector);
    assert_eq!(
        obj.spec.selector.match_expressions[0].operator,
        Operator::DoesNotExist
    );
    let json = serde_json::to_value(&obj.spec).unwrap();
    assert_eq!(json["allow_broad_selector"], true);
    // And as JSON, the same rule.
    let mut strict = obj.clone();
    strict.spec.allow_broad_selector = false;
    let errs = validate_object(&Object::ReplicaSet(strict.clone())).unwrap_err();
    assert!(
        errs[0].starts_with("spec.selector: the selector matches too much"),
        "{errs:?}"
    );
    // Left out of the JSON when false.
    let json = serde_json::to_value(&strict.spec).unwrap();
    assert!(json.get("allow_broad_selector").is_none(), "{json}");
}

#[test]
fn a_positive_term_is_enough() {
    for selector in [
        r#"match_labels = { app = "web" }"#,
        r#"match_expressions = [{ key = "app", operator = "In", values = ["web"] }, { key = "legacy", operator = "DoesNotExist" }]"#,
        r#"match_expressions = [{ key = "app", operator = "Exists" }]"#,
    ] {
        ok(&rs("", selector));
    }
}

#[test]
fn an_empty_replication_controller_selector_is_broad() {
    let text = "kind = \"ReplicationController\"\nname = \"w\"\n[spec]\nselector = {}\n\
                [spec.template]\nlabels = { app = \"w\" }\n[[spec.template.processes]]\n\
                name = \"main\"\ncommand = [\"sleep\", \"60\"]\n";
    let d = one(text);
    assert_at(&d, 4, 12, "the selector must not be empty");
    assert_help(&d, "write selector = { app = \"w\" }");
    let allowed = text.replace(
        "selector = {}",
        "selector = {}\nallow_broad_selector = true",
    );
    let Object::ReplicationController(rc) = ok(&allowed) else {
        panic!()
    };
    assert!(rc.spec.selector.is_empty() && rc.spec.allow_broad_selector);
}

#[test]
fn a_daemonset_selector_is_checked_the_same() {
    let text = "kind = \"DaemonSet\"\nname = \"agent\"\n[spec.selector]\n\
                match_expressions = [{ key = \"legacy\", operator = \"DoesNotExist\" }]\n\
                [spec.template]\nlabels = { app = \"agent\" }\n[[spec.template.processes]]\n\
                name = \"main\"\ncommand = [\"sleep\", \"60\"]\n";
    let (_, d) = built(text);
    assert!(
        d.iter()
            .any(|d| d.message.starts_with("the selector matches too much") && d.line == 3),
        "{}",
        render(&d)
    );
    let allowed = text.replace(
        "[spec.selector]",
        "[spec]\nallow_broad_selector = true\n[spec.selector]",
    );
    let (obj, d) = built(&allowed);
    assert!(
        d.iter().all(|d| !d.message.contains("matches too much")),
        "{}",
        render(&d)
    );
    let Object::DaemonSet(ds) = obj else { panic!() };
    assert!(ds.spec.allow_broad_selector);
}

#[test]
fn a_pod_has_no_selector_to_allow() {
    let d = one(&pod_with("").replace(
        "[[spec.processes]]",
        "[spec]\nallow_broad_selector = true\n[[spec.processes]]",
    ));
    assert_at(&d, 4, 1, "unknown field `allow_broad_selector`");
}
