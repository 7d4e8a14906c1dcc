//! A whole file: the syntax, the kind (read first, to pick the `[spec]`
//! struct), the top-level fields, then the kind's spec and the rules.

use super::{Field, Tab, Validator};
use crate::api::{Kind, Object, ObjectMeta};
use crate::units::diagnostic::{Diagnostic, Location, Source, Span};
use crate::units::raw::{
    RawCronJobSpec, RawDaemonSetSpec, RawJobSpec, RawKind, RawPodSpec, RawReplicaSetSpec,
    RawReplicationControllerSpec, RawUnit, RawUnknownSpec,
};
use crate::units::rules::{self, names, UNIT_KINDS};
use crate::units::serde_names::fields_of;
use crate::units::spanned::{Table, Val};
use crate::units::suggest;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Builds the object of a kind from its `[spec]`.
type Build<'a, S> = for<'t> fn(&mut Validator<'a>, &Tab<'t, S>, ObjectMeta) -> Object;

/// What a file holds: the object (built with stand-ins for what was
/// wrong, `None` when the kind is unknown or the file is not TOML), where
/// its name is, and every mistake in file order. The object is good only
/// when there is no diagnostic.
pub(crate) struct Validated {
    pub object: Option<Object>,
    pub name_at: Location,
    pub diags: Vec<Diagnostic>,
}

/// Reads one unit file's text.
pub(crate) fn validate(src: &Source, now: DateTime<Utc>) -> Validated {
    let first = match RawKind::deserialize(toml::Deserializer::new(src.text)) {
        Ok(first) => first,
        Err(e) => {
            return Validated {
                object: None,
                name_at: src.locate(Span::new(0, 0)),
                diags: vec![syntax_error(src, &e)],
            }
        }
    };
    let kind = first
        .kind
        .and_then(|k| k.value.ok())
        .and_then(|s| UNIT_KINDS.into_iter().find(|k| k.as_str() == s));
    let mut v = Validator::new(src);
    let object = match kind {
        Some(Kind::Pod) => v.unit::<RawPodSpec>(kind, now, Some(Validator::pod_unit)),
        Some(Kind::ReplicaSet) => {
            v.unit::<RawReplicaSetSpec>(kind, now, Some(Validator::replicaset))
        }
        Some(Kind::ReplicationController) => v.unit::<RawReplicationControllerSpec>(
            kind,
            now,
            Some(Validator::replication_controller),
        ),
        Some(Kind::DaemonSet) => v.unit::<RawDaemonSetSpec>(kind, now, Some(Validator::daemonset)),
        Some(Kind::Job) => v.unit::<RawJobSpec>(kind, now, Some(Validator::job)),
        Some(Kind::CronJob) => v.unit::<RawCronJobSpec>(kind, now, Some(Validator::cronjob)),
        _ => v.unit::<RawUnknownSpec>(None, now, None),
    };
    let object = match object {
        Ok(object) => object,
        Err(d) => {
            v.diags.push(*d);
            None
        }
    };
    if let Some(object) = &object {
        for p in rules::check(object) {
            if let Some(d) = v.place(p) {
                v.diags.push(d);
            }
        }
    }
    let name_at = v
        .index
        .get("metadata.name")
        .and_then(|s| s.value)
        .unwrap_or(Span::new(0, 0));
    let mut diags = v.diags;
    diags.sort_by_key(|d| (d.line, d.col));
    Validated {
        object,
        name_at: src.locate(name_at),
        diags,
    }
}

/// A TOML syntax error: its first line is the message, the rest (what was
/// expected) goes under the marker.
fn syntax_error(src: &Source, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().map(Span::from).unwrap_or(Span::new(0, 0));
    let mut lines = e.message().lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("syntax error").trim().to_string();
    let rest: Vec<&str> = lines.map(str::trim).collect();
    let mut d = Diagnostic::at(src.locate(span), format!("invalid TOML: {first}"));
    if !rest.is_empty() {
        d = d.with_label(rest.join("; "));
    }
    d
}

fn top_hint(key: &str) -> Option<String> {
    Some(match key {
        "metadata" => "drover units have no `metadata` table: write `name` and `labels` at \
                       the top of the file"
            .into(),
        "unit" | "units" => "a unit file holds one object: put each unit in its own file".into(),
        "status" => "`status` is written by drover, not by unit files".into(),
        k if fields_of::<RawReplicaSetSpec>().contains(&k)
            || fields_of::<RawPodSpec>().contains(&k) =>
        {
            format!("`{k}` goes in the [spec] table")
        }
        _ => return None,
    })
}

impl<'a> Validator<'a> {
    /// Reads the file as `RawUnit<S>`, checks its top level and builds the
    /// object (`build` is `None` for a kind that is not known: only the top
    /// level is checked). `Err` only if the file cannot be read at all.
    fn unit<S: DeserializeOwned>(
        &mut self,
        kind: Option<Kind>,
        now: DateTime<Utc>,
        build: Option<Build<'a, S>>,
    ) -> Result<Option<Object>, Box<Diagnostic>> {
        let root = Val::<Table<RawUnit<S>>>::deserialize(toml::Deserializer::new(self.src.text))
            .map_err(|e| Box::new(syntax_error(self.src, &e)))?;
        let Ok(table) = &root.value else {
            return Err(Box::new(
                self.diag(Span::new(0, 0), "a unit file must be a TOML table"),
            ));
        };
        let root = Tab {
            t: table,
            path: String::new(),
            at: Span::new(0, 0),
        };
        if root.t.keys.is_empty() && root.t.unknown.is_empty() {
            let d = self
                .diag(root.at, "empty unit file")
                .with_label("expected kind, name and spec")
                .with_help(format!(
                    "start with kind = \"Pod\" and name = \"{}\"",
                    self.default_name(names::MAX_POD_NAME)
                ));
            self.diags.push(d);
            return Ok(None);
        }
        self.unknown_fields(&root, &top_hint);
        let u = root.v();
        self.kind(root.field("kind", &u.kind));
        if u.api_version.is_some() {
            self.api_version(root.field("api_version", &u.api_version), kind);
        }
        let max = rules::max_name(kind.unwrap_or(Kind::Pod));
        let stem = self.default_name(max);
        let name = self
            .require(
                root.field("name", &u.name).at_path("metadata.name"),
                Some(format!("add name = \"{stem}\"")),
            )
            .and_then(|f| self.string(&f));
        let labels = root.field("labels", &u.labels).at_path("metadata.labels");
        let labels = self.labels(&labels).unwrap_or_default();
        let (Some(kind), Some(build)) = (kind, build) else {
            return Ok(None);
        };
        let mut metadata = ObjectMeta::new(name.unwrap_or_default(), now);
        metadata.labels = labels;
        let spec_help = match kind {
            Kind::Pod => "add a [spec] table with at least one [[spec.processes]]",
            Kind::Job => "add a [spec] table with `completions` and [spec.template]",
            Kind::CronJob => {
                "add a [spec] table with `schedule` and [spec.job_template.spec.template]"
            }
            Kind::DaemonSet => "add a [spec] table with [spec.selector] and [spec.template]",
            _ => "add a [spec] table with `replicas`, [spec.selector] and [spec.template]",
        };
        let spec = self
            .require(root.field("spec", &u.spec), Some(spec_help.into()))
            .and_then(|f| self.table(&f));
        Ok(Some(match spec {
            Some(spec) => build(self, &spec, metadata),
            None => {
                // The spec is missing or not a table (reported, and `spec`
                // marked as failed): build from an empty one, quietly, so
                // that the rules still judge the top level.
                let empty = empty_table::<S>();
                let tab = Tab {
                    t: &empty,
                    path: "spec".into(),
                    at: Span::new(0, 0),
                };
                let reported = self.diags.len();
                let object = build(self, &tab, metadata);
                self.diags.truncate(reported);
                object
            }
        }))
    }

    /// The kind, if a unit file may hold it.
    fn kind(&mut self, f: Field<String>) {
        let help = format!(
            "add kind = \"Pod\" (or {})",
            UNIT_KINDS[1..]
                .iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some(f) = self.require(f, Some(help)) else {
            return;
        };
        let Some(s) = self.string(&f) else { return };
        let expected = format!(
            "expected one of: {}",
            UNIT_KINDS
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        match Kind::ALL.into_iter().find(|k| k.as_str() == s) {
            Some(k) if UNIT_KINDS.contains(&k) => {}
            Some(k) => {
                let why = match k {
                    Kind::Node => "nodes register themselves when `drover daemon` starts",
                    _ => "events are recorded by drover itself",
                };
                let d = self
                    .diag(
                        f.value_span(),
                        format!("kind `{s}` cannot be written in a unit file"),
                    )
                    .with_label(expected)
                    .with_help(why);
                self.fail(&f.path, d);
            }
            None => {
                let names: Vec<&str> = UNIT_KINDS.iter().map(|k| k.as_str()).collect();
                let mut d = self
                    .diag(f.value_span(), format!("unknown kind \"{s}\""))
                    .with_label(expected);
                let guess = suggest::closest(&s, &names).or_else(|| {
                    Kind::from_cli(&s)
                        .filter(|k| UNIT_KINDS.contains(k))
                        .map(|k| k.as_str())
                });
                if let Some(c) = guess {
                    d = d.with_help(format!("did you mean \"{c}\"?"));
                }
                self.fail(&f.path, d);
            }
        }
    }

    fn api_version(&mut self, f: Field<String>, kind: Option<Kind>) {
        let Some(s) = self.string(&f) else { return };
        let known = ["v1", "apps/v1", "batch/v1"];
        match kind {
            Some(k) if k.api_version() != s => {
                let want = k.api_version();
                let d = self
                    .diag(
                        f.value_span(),
                        format!("api_version \"{s}\" does not match kind `{k}`"),
                    )
                    .with_label(format!("expected \"{want}\""))
                    .with_help(format!("write api_version = \"{want}\", or leave it out"));
                self.fail(&f.path, d);
            }
            None if !known.contains(&s.as_str()) => {
                let d = self
                    .diag(f.value_span(), format!("unknown api_version \"{s}\""))
                    .with_label(format!("expected one of: {}", known.join(", ")));
                self.fail(&f.path, d);
            }
            _ => {}
        }
    }

    /// A name made from the file's name, for suggestions.
    fn default_name(&self, max: usize) -> String {
        self.src
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| names::dns_label_suggestion(s, max).unwrap_or_else(|| s.to_string()))
            .filter(|s| names::dns_label(s, max).is_ok())
            .unwrap_or_else(|| "web".into())
    }
}

/// A table with none of `S`'s fields.
fn empty_table<S: DeserializeOwned>() -> Table<S> {
    let no_fields = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
        std::iter::empty::<(String, ())>(),
    );
    Table {
        value: S::deserialize(no_fields).expect("every raw field is optional"),
        keys: Vec::new(),
        unknown: Vec::new(),
        fields: fields_of::<S>(),
    }
}
