//! A [`Draft`] as a drover unit file: TOML written with `toml_edit`, in
//! the order and shape of `units/*.toml`, with a header saying where it
//! came from and what was not carried over, and a comment after each
//! value naming the directive (and line) it came from.

use super::draft::{Draft, DraftKind, DraftPod, DraftProcess, Origins};
use super::{Severity, Warning};
use crate::api::{ConcurrencyPolicy, RlimitValue};
use std::collections::BTreeMap;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// Above this many variables, `env` is a table of its own rather than an
/// inline table on one line.
const INLINE_ENV_MAX: usize = 3;

/// The unit file for `draft`; `warnings` are listed in its header (only
/// those of its source files that say something was not carried over).
pub fn render(draft: &Draft, tool: &str, warnings: &[&Warning]) -> String {
    let mut doc = DocumentMut::new();
    doc["kind"] = value(draft.kind.name());
    doc["name"] = value(draft.name.as_str());
    doc["labels"] = value(labels(&draft.labels));
    header(&mut doc, draft, tool, warnings);

    let mut spec = Table::new();
    match &draft.kind {
        DraftKind::Pod => {
            pod_fields(&mut spec, &draft.pod);
            doc["spec"] = Item::Table(spec);
        }
        DraftKind::ReplicaSet { replicas } => {
            spec["replicas"] = value(i64::from(*replicas));
            comment(&mut spec, "replicas", &draft.origin);
            let mut selector = Table::new();
            selector["match_labels"] = value(labels(&draft.labels));
            spec["selector"] = Item::Table(selector);
            spec["template"] = Item::Table(template(draft));
            doc["spec"] = Item::Table(spec);
        }
        DraftKind::Job { backoff_limit } => {
            spec["backoff_limit"] = value(i64::from(*backoff_limit));
            comment(&mut spec, "backoff_limit", &draft.origin);
            spec["template"] = Item::Table(template(draft));
            doc["spec"] = Item::Table(spec);
        }
        DraftKind::CronJob {
            schedule,
            time_zone,
            concurrency_policy,
            starting_deadline,
            backoff_limit,
        } => {
            spec["schedule"] = value(schedule.as_str());
            comment(&mut spec, "schedule", &draft.origin);
            if let Some(tz) = time_zone {
                spec["time_zone"] = value(tz.as_str());
                comment(&mut spec, "time_zone", &draft.origin);
            }
            spec["concurrency_policy"] = value(match concurrency_policy {
                ConcurrencyPolicy::Allow => "Allow",
                ConcurrencyPolicy::Forbid => "Forbid",
                ConcurrencyPolicy::Replace => "Replace",
            });
            comment(&mut spec, "concurrency_policy", &draft.origin);
            if let Some(d) = starting_deadline {
                spec["starting_deadline"] = value(d.to_string());
            }
            comment(&mut spec, "starting_deadline", &draft.origin);
            let mut job_spec = Table::new();
            job_spec["backoff_limit"] = value(i64::from(*backoff_limit));
            job_spec["template"] = Item::Table(template(draft));
            let mut job_template = Table::new();
            job_template.set_implicit(true);
            job_template["spec"] = Item::Table(job_spec);
            spec["job_template"] = Item::Table(job_template);
            doc["spec"] = Item::Table(spec);
        }
    }
    doc.to_string()
}

fn header(doc: &mut DocumentMut, draft: &Draft, tool: &str, warnings: &[&Warning]) {
    let mut lines = vec![format!("# Converted by `{tool}` from:")];
    for s in &draft.sources {
        lines.push(format!("#   {s}"));
    }
    for a in &draft.about {
        lines.push(format!("# {a}"));
    }
    let not_carried: Vec<&&Warning> = warnings
        .iter()
        .filter(|w| w.severity == Severity::Warning)
        .collect();
    if !not_carried.is_empty() {
        lines.push("#".into());
        lines.push("# Not carried over (drover import printed these too):".into());
        for w in not_carried {
            let text = format!("#   {}: {}", w.location(), w.message);
            lines.push(text.replace('\n', " "));
        }
    }
    let prefix = lines.join("\n") + "\n";
    if let Some(mut key) = doc.as_table_mut().key_mut("kind") {
        key.leaf_decor_mut().set_prefix(prefix);
    }
}

fn labels(map: &BTreeMap<String, String>) -> InlineTable {
    let mut t = InlineTable::new();
    for (k, v) in map {
        t.insert(k, Value::from(v.as_str()));
    }
    t
}

/// A set's, job's or cron job's `template`: labels, then the pod.
fn template(draft: &Draft) -> Table {
    let mut t = Table::new();
    t["labels"] = value(labels(&draft.labels));
    pod_fields(&mut t, &draft.pod);
    t
}

fn pod_fields(t: &mut Table, pod: &DraftPod) {
    t["restart_policy"] = value(format!("{:?}", pod.restart_policy));
    comment(t, "restart_policy", &pod.origin);
    if let Some(g) = pod.termination_grace_period {
        t["termination_grace_period"] = value(g.to_string());
        comment(t, "termination_grace_period", &pod.origin);
    }
    if !pod.ports.is_empty() {
        let mut ports = Array::new();
        for p in &pod.ports {
            let mut it = InlineTable::new();
            it.insert("name", Value::from(p.name.as_str()));
            it.insert("range", Value::from(String::from(p.range)));
            ports.push(it);
        }
        t["ports"] = value(ports);
        comment(t, "ports", &pod.origin);
    }
    if !pod.init_processes.is_empty() {
        let mut aot = ArrayOfTables::new();
        for p in &pod.init_processes {
            aot.push(process(p));
        }
        t["init_processes"] = Item::ArrayOfTables(aot);
    }
    let mut aot = ArrayOfTables::new();
    for p in &pod.processes {
        aot.push(process(p));
    }
    t["processes"] = Item::ArrayOfTables(aot);
}

fn process(p: &DraftProcess) -> Table {
    let s = &p.spec;
    let mut t = Table::new();
    t["name"] = value(s.name.as_str());
    t["command"] = value(Array::from_iter(s.command.iter().map(String::as_str)));
    if let Some(u) = &s.user {
        t["user"] = value(u.as_str());
    }
    if let Some(g) = &s.group {
        t["group"] = value(g.as_str());
    }
    if let Some(w) = &s.working_dir {
        t["working_dir"] = value(w.display().to_string());
    }
    if s.notify {
        t["notify"] = value(true);
    }
    if let Some(w) = s.watchdog {
        t["watchdog"] = value(w.to_string());
    }
    if let Some(f) = &s.pid_file {
        t["pid_file"] = value(f.display().to_string());
    }
    if let Some(u) = s.umask {
        t["umask"] = value(String::from(u));
    }
    if !s.rlimits.is_empty() {
        let mut it = InlineTable::new();
        for (k, v) in &s.rlimits {
            let v = match v {
                RlimitValue::Limit(n) => Value::from(i64::try_from(*n).unwrap_or(i64::MAX)),
                RlimitValue::Unlimited => Value::from("unlimited"),
            };
            it.insert(k, v);
        }
        t["rlimits"] = value(it);
    }
    if let Some(r) = &s.resources {
        let mut it = InlineTable::new();
        if let Some(m) = r.memory {
            it.insert("memory", Value::from(m.to_string()));
        }
        if let Some(c) = r.cpu {
            it.insert("cpu", Value::from(c.to_string()));
        }
        if let Some(n) = r.pids {
            it.insert("pids", Value::from(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        t["resources"] = value(it);
    }
    if s.allow_privilege_escalation {
        t["allow_privilege_escalation"] = value(true);
    }
    for key in [
        "command",
        "user",
        "group",
        "working_dir",
        "notify",
        "watchdog",
        "pid_file",
        "umask",
        "rlimits",
        "resources",
        "allow_privilege_escalation",
    ] {
        comment(&mut t, key, &p.origin);
    }
    if !s.env.is_empty() {
        if s.env.len() <= INLINE_ENV_MAX {
            let mut it = InlineTable::new();
            for (k, v) in &s.env {
                it.insert(k, Value::from(v.as_str()));
            }
            t["env"] = value(it);
            comment(&mut t, "env", &p.origin);
        } else {
            let mut env = Table::new();
            for (k, v) in &s.env {
                env[k.as_str()] = value(v.as_str());
            }
            if let Some(o) = p.origin.get("env") {
                env.decor_mut().set_prefix(format!("# from {o}\n"));
            }
            t["env"] = Item::Table(env);
        }
    }
    t
}

/// `key = value  # where it came from`.
fn comment(t: &mut Table, key: &str, origins: &Origins) {
    let Some(o) = origins.get(key) else { return };
    if let Some(v) = t.get_mut(key).and_then(Item::as_value_mut) {
        v.decor_mut()
            .set_suffix(format!("  # {}", o.replace('\n', " ")));
    }
}
