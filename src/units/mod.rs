//! Unit files: TOML -> api objects, with diagnostics that name
//! file:line:col, what was expected, and a computed suggestion.
//!
//! # The format
//!
//! One object per file (`units/web.toml` holds the ReplicaSet `web`); a
//! folder is every `*.toml` file directly in it, in name order, not
//! recursive, skipping hidden files (names starting with '.', such as editor
//! backups). The same kind and name in two files is an error naming both.
//!
//! ```toml
//! kind = "ReplicaSet"       # Pod | ReplicaSet | ReplicationController | Job | CronJob
//! api_version = "apps/v1"   # optional; checked against kind
//! name = "web"              # DNS-1123 label; at most 57 characters for a set
//! labels = { app = "web" }
//!
//! [spec]
//! replicas = 2              # default 1
//! [spec.selector]           # an RC's is a plain map: selector = { app = "web" }
//! match_labels = { app = "web" }
//! [spec.template]           # a Pod's [spec] holds these fields, bar labels
//! labels = { app = "web" }
//! ports = [{ name = "http", range = "8080-8099" }]   # exported as PORT_HTTP
//! [[spec.template.processes]]
//! name = "server"
//! command = ["python3", "-m", "http.server", "${PORT_HTTP}"]
//! ```
//!
//! A Job's `[spec]` has `completions`, `parallelism`, `backoff_limit`,
//! `backoff_initial`/`backoff_max` (the delay before a failed pod is
//! replaced), `active_deadline`, `ttl_after_finished`, `completion_mode`,
//! `suspend` and a `[spec.template]` whose `restart_policy` must be
//! `OnFailure` or `Never` (its labels are optional: a Job labels its pods
//! `job-name` and `controller-uid` itself). A CronJob's `[spec]` has
//! `schedule` (5 crontab fields, a macro, or 6 fields with seconds),
//! `time_zone`, `concurrency_policy`, `starting_deadline`, `suspend`, the
//! history limits and `[spec.job_template.spec]`, a Job's spec. In an
//! Indexed Job, `${JOB_COMPLETION_INDEX}` may be used in `command`.
//!
//! The full list of fields is product.md §2 and `schema`. A ReplicaSet
//! must have a selector; a ReplicationController's defaults to its
//! template's labels (as in Kubernetes); either must select the template.
//!
//! `${VAR}` in `command` names a variable of the process's `env`, a port of
//! the pod (`PORT_<NAME>`, the name upper-cased with '-' as '_'),
//! `DROVER_POD_NAME`, `DROVER_NODE_NAME`, `DROVER_POD_UID`, or one of the
//! inherited `PATH HOME USER LOGNAME SHELL LANG`; anything else is an error.
//! `$${` is a literal `${` (`$${HOME}` passes `${HOME}` to the program),
//! and a `$` not followed by `{` is literal.
//!
//! # Diagnostics
//!
//! The file is parsed with `toml_edit`, which keeps the position of every
//! key and value, then walked with a schema that knows every table's
//! fields, so all the errors of a file are reported at once, each at the
//! offending key or value: unknown fields (with the expected list and a
//! did-you-mean by edit distance), wrong types, impossible values, and the
//! checks across fields (the selector must match the template's labels, a
//! probe's named port must be declared). A TOML syntax error is one
//! diagnostic at its position. Any error rejects the file, and
//! [`load_path`] returns nothing at all if any file has one.

mod build;
mod diagnostic;
mod rules;
mod schema;
mod suggest;
mod validate;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_job;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Secondary, Span};
pub use rules::{dns_label, port_var};
/// The longest Job name (its pods are `NAME-xxxxx`, at most 63).
pub const MAX_JOB_NAME: usize = schema::MAX_SET_NAME;
pub use validate::validate_object;

use crate::api::meta::annotations;
use crate::api::{Kind, Object};
use build::Built;
use chrono::{DateTime, Utc};
use diagnostic::Source;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml_edit::ImDocument;

/// One unit file, loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedUnit {
    /// The object, with a fresh uid and the annotations
    /// `drover.io/source-file` (the path as given) and
    /// `drover.io/source-hash` ([`source_hash`] of the file).
    pub object: Object,
    /// The file it came from, as given (`units/web.toml`).
    pub source: PathBuf,
    /// [`source_hash`] of the file's bytes.
    pub hash: String,
}

/// A stable hash of a unit file's bytes (FNV-1a, 64 bits, 16 hex digits):
/// the same file gives the same hash in every drover version and on every
/// machine, so a daemon can tell a changed file from an unchanged one.
pub fn source_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Loads a unit file, or every `*.toml` file of a folder (sorted, not
/// recursive, hidden files skipped). The errors of all files are
/// collected; if there is any, nothing is returned.
pub fn load_path(path: &Path, now: DateTime<Utc>) -> Result<Vec<LoadedUnit>, Diagnostics> {
    let files = unit_files(path).map_err(|m| Diagnostics::new(vec![Diagnostic::file(path, m)]))?;
    let mut diags = Vec::new();
    let mut units = Vec::new();
    // (kind, name) -> (file, where its name is)
    let mut seen: HashMap<(Kind, String), (PathBuf, Location)> = HashMap::new();
    for file in files {
        let text = match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    diags.push(Diagnostic::file(
                        &file,
                        format!(
                            "not a text file: invalid UTF-8 at byte {}",
                            e.utf8_error().valid_up_to()
                        ),
                    ));
                    continue;
                }
            },
            Err(e) => {
                diags.push(Diagnostic::file(
                    &file,
                    format!("cannot read the file: {e}"),
                ));
                continue;
            }
        };
        match parse(&file, &text, now) {
            Ok((built, name_at)) => {
                let key = (built.object.kind(), built.object.name().to_string());
                if let Some((first_file, first_at)) = seen.get(&key) {
                    diags.push(
                        Diagnostic::at(name_at, format!("{} `{}` is defined twice", key.0, key.1))
                            .with_label("defined again here")
                            .with_secondary(first_at.clone(), "first defined here")
                            .with_help(format!(
                                "rename one, or delete {} or {}",
                                first_file.display(),
                                file.display()
                            )),
                    );
                    continue;
                }
                seen.insert(key, (file.clone(), name_at));
                units.push(LoadedUnit {
                    object: built.object,
                    hash: source_hash(text.as_bytes()),
                    source: file,
                });
            }
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(units)
    } else {
        Err(Diagnostics::new(diags))
    }
}

/// The unit files `path` names: itself, or the `*.toml` files in it.
fn unit_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let cannot_list = |e: std::io::Error| format!("cannot list {}: {e}", path.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(cannot_list)? {
        let name = entry.map_err(cannot_list)?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let file = path.join(&*name);
        if std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one unit file's text. `path` is only used in diagnostics and in
/// the `drover.io/source-file` annotation.
pub fn parse_unit(path: &Path, text: &str, now: DateTime<Utc>) -> Result<Object, Vec<Diagnostic>> {
    parse(path, text, now).map(|(built, _)| built.object)
}

/// Parses and walks one file; also returns where its name is.
fn parse(
    path: &Path,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(Built, Location), Vec<Diagnostic>> {
    let src = Source::new(path, text);
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => return Err(vec![syntax_error(&src, &e)]),
    };
    let mut walker = walk::Walker::new(&src);
    let built = walker.build(doc.as_table(), now);
    let mut diags = walker.diags;
    // In file order (the walk goes by schema).
    diags.sort_by_key(|d| (d.line, d.col));
    let Some(mut built) = built.filter(|_| diags.is_empty()) else {
        return Err(diags);
    };
    let name_at = src.locate(built.name_span);
    // The walker applies every rule; this catches a rule it would miss.
    if let Err(messages) = validate_object(&built.object) {
        diags.extend(
            messages
                .into_iter()
                .map(|m| Diagnostic::at(name_at.clone(), m)),
        );
        return Err(diags);
    }
    let meta = built.object.meta_mut();
    meta.annotations.insert(
        annotations::SOURCE_FILE.to_string(),
        path.display().to_string(),
    );
    meta.annotations.insert(
        annotations::SOURCE_HASH.to_string(),
        source_hash(text.as_bytes()),
    );
    Ok((built, name_at))
}

/// A TOML syntax error: its first line is the message, the rest (what was
/// expected) goes under the marker.
fn syntax_error(src: &Source, e: &toml_edit::TomlError) -> Diagnostic {
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
