//! Unit files: TOML -> api objects, with diagnostics that name
//! file:line:col, what was expected, and a computed suggestion; and the
//! rules every object must follow, whether it came from a file or as JSON.
//!
//! This module reads files and checks objects; it starts nothing and
//! writes nothing (the daemon applies what it returns).
//!
//! # The format
//!
//! One object per file (`units/web.toml` holds the ReplicaSet `web`); a
//! folder is every `*.toml` file directly in it, in name order, not
//! recursive, skipping hidden files (names starting with '.', such as editor
//! backups). The same kind and name in two files is an error naming both.
//! A file is at most 1 MiB ([`MAX_UNIT_FILE_BYTES`]); a larger one is
//! refused before it is parsed.
//!
//! ```toml
//! kind = "ReplicaSet"       # Pod | ReplicaSet | ReplicationController | DaemonSet | Job | CronJob
//! api_version = "apps/v1"   # optional; checked against kind
//! name = "web"              # DNS-1123 label; at most 57 characters for a set
//! labels = { app = "web" }
//!
//! [spec]
//! replicas = 2              # default 1, at most 10000 (MAX_REPLICAS)
//! # allow_broad_selector = true   # see below
//! [spec.selector]           # an RC's is a plain map: selector = { app = "web" }
//! match_labels = { app = "web" }
//! [spec.template]           # a Pod's [spec] holds these fields, bar labels
//! labels = { app = "web" }
//! ports = [{ name = "http", range = "8080-8099" }]   # exported as PORT_HTTP
//! [[spec.template.init_processes]]   # run one after another, to completion, first
//! name = "migrate"
//! command = ["/srv/web/migrate"]
//! [[spec.template.processes]]
//! name = "server"
//! command = ["python3", "-m", "http.server", "${PORT_HTTP}"]
//! rlimits = { nofile = 65536, core = "unlimited" }
//! umask = "0027"            # default 0022
//! # resources = { memory = "256Mi", cpu = "0.5", pids = 100 }
//! # pid_file = "/run/web.pid"          # for daemons that fork themselves
//! # allow_privilege_escalation = true  # leaves no_new_privs off (setuid works)
//! ```
//!
//! A process has `name`, `command` (an argv, no shell), `user`, `group`,
//! `working_dir`, `env`, `notify`, `watchdog`, `resources` (memory and cpu
//! as Kubernetes quantities, pids a count), `rlimits` (by setrlimit name:
//! nofile, core, nproc, memlock, stack, fsize, as, cpu, data, msgqueue,
//! nice, rtprio, sigpending; a number or "unlimited"), `umask` (octal
//! digits), `pid_file` (an absolute path), `allow_privilege_escalation`
//! and the probes `liveness`, `readiness`, `startup`. Init processes have
//! the same fields but no probes, as in Kubernetes; process names are
//! unique across both lists.
//!
//! A DaemonSet's `[spec]` has a ReplicaSet's `selector` and `template`, no
//! `replicas` (one pod per node). A Job's `[spec]` has `completions`,
//! `parallelism` (both at most 10000), `backoff_limit`,
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
//! The full list of fields is product.md §2 and the raw structs of `raw`.
//! A ReplicaSet or DaemonSet must have a selector; a ReplicationController's
//! defaults to its template's labels (as in Kubernetes); either must select
//! the template. A selector with no positive term (no `match_labels`, no
//! `In` or `Exists` expression: only `NotIn` or `DoesNotExist`, or an empty
//! one) would adopt every unmanaged pod on the host, since drover has no
//! namespaces: it is refused unless `[spec]` sets `allow_broad_selector =
//! true`.
//!
//! `${VAR}` in `command` names a variable of the process's `env`, a port of
//! the pod (`PORT_<NAME>`, the name upper-cased with '-' as '_'),
//! `DROVER_POD_NAME`, `DROVER_NODE_NAME`, `DROVER_POD_UID`, or one of the
//! inherited `PATH HOME USER LOGNAME SHELL LANG`; anything else is an error.
//! `$${` is a literal `${` (`$${HOME}` passes `${HOME}` to the program),
//! and a `$` not followed by `{` is literal.
//!
//! # Limits
//!
//! Checked at validation, for files and JSON alike, so that nothing is
//! accepted that would fail at every start: one argument or `KEY=VALUE`
//! at most 128 KiB (Linux's MAX_ARG_STRLEN), a process's arguments and
//! environment together at most 2 MiB (ARG_MAX) less 64 KiB kept for the
//! variables drover adds, `${VAR}`s counted as what they expand to;
//! `replicas`, `completions` and `parallelism` at most 10000; no NUL byte
//! in any string. See [`rules::limits`].
//!
//! Features the daemon does not carry out yet are parsed, checked, and
//! then refused by name ([`NOT_YET_SUPPORTED`]), so that nothing runs
//! without what its unit asked for.
//!
//! # The units folder
//!
//! [`load_units_dir`] reads the daemon's units folder. A daemon running as
//! root refuses the whole folder if a unit file, the folder, or a folder
//! above it (unless sticky, as /tmp) is owned by another user or writable
//! by its group or everyone, as sshd's StrictModes. Each loaded unit
//! records whether it came from such a root-owned file
//! ([`LoadedUnit::root_owned`]).
//!
//! # Diagnostics
//!
//! A file is read twice with serde: first its `kind`, then the whole file
//! into the raw structs of that kind, whose every value keeps its position
//! and whose every mistake is kept rather than stopping the parse
//! (`spanned`). One validator (`validate`) then builds the object,
//! reporting unknown fields (serde's own field list as what was expected,
//! and a did-you-mean by edit distance), wrong types and malformed values,
//! and runs the object rules (`rules`), each problem placed at the field
//! it names; so all the errors of a file are reported at once. A TOML
//! syntax error is one diagnostic at its position. Any error rejects the
//! file, and [`load_path`] returns nothing at all if any file has one.

mod diagnostic;
mod files;
mod raw;
pub mod rules;
mod serde_names;
mod spanned;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Secondary, Span};
pub use files::{untrusted, untrusted_above, Untrusted};
pub use rules::limits::{ARG_MAX, ENV_HEADROOM, MAX_ARG_STRLEN, MAX_REPLICAS, MAX_UNIT_FILE_BYTES};
pub use rules::names::{dns_label, port_var};
pub use rules::unsupported::{Feature, NOT_YET_SUPPORTED};
pub use rules::validate_object;
/// The longest Job name (its pods are `NAME-xxxxx`, at most 63).
pub const MAX_JOB_NAME: usize = rules::names::MAX_SET_NAME;

use crate::api::meta::annotations;
use crate::api::{Kind, Object};
use chrono::{DateTime, Utc};
use diagnostic::Source;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// It came from a file of the units folder that only root can change
    /// (the file, the folder and the folders above it owned by root and
    /// writable by nobody else). Its processes may run as the unit says;
    /// anything else runs as the caller who applied it.
    pub root_owned: bool,
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
/// recursive, hidden files skipped), for `drover apply -f` and `drover
/// validate`. The errors of all files are collected; if there is any,
/// nothing is returned.
pub fn load_path(path: &Path, now: DateTime<Utc>) -> Result<Vec<LoadedUnit>, Diagnostics> {
    load(path, now, None)
}

/// Loads the daemon's units folder: as [`load_path`], and, when this
/// process runs as root, refuses the whole folder if anyone else could
/// change a file of it (see the module docs).
pub fn load_units_dir(dir: &Path, now: DateTime<Utc>) -> Result<Vec<LoadedUnit>, Diagnostics> {
    load(dir, now, Some(nix::unistd::geteuid().as_raw()))
}

/// `units_dir`: the euid of a daemon reading its units folder.
fn load(
    path: &Path,
    now: DateTime<Utc>,
    units_dir: Option<u32>,
) -> Result<Vec<LoadedUnit>, Diagnostics> {
    let one = |d: Box<Diagnostic>| Diagnostics::new(vec![*d]);
    let files = files::unit_files(path).map_err(one)?;
    // Whether root alone can change the folder (recorded on each unit),
    // and, for a root daemon, the refusal if not.
    let folder_root_owned = match units_dir {
        Some(euid) => {
            files::check_folder(path, euid).map_err(one)?;
            files::check_folder(path, 0).is_ok()
        }
        None => false,
    };
    let mut diags = Vec::new();
    let mut units = Vec::new();
    // (kind, name) -> (file, where its name is)
    let mut seen: HashMap<(Kind, String), (PathBuf, Location)> = HashMap::new();
    for file in files {
        let read = match files::read_unit(&file) {
            Ok(read) => read,
            Err(d) => {
                diags.push(*d);
                continue;
            }
        };
        if let Some(why) = units_dir.and_then(|euid| untrusted(read.mode, read.uid, euid)) {
            diags.push(files::refusal(&file, why, "this unit file"));
            continue;
        }
        let root_owned = folder_root_owned && untrusted(read.mode, read.uid, 0).is_none();
        match parse(&file, &read.text, now) {
            Ok((object, name_at)) => {
                let key = (object.kind(), object.name().to_string());
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
                    object,
                    hash: source_hash(read.text.as_bytes()),
                    source: file,
                    root_owned,
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

/// Parses one unit file's text. `path` is only used in diagnostics and in
/// the `drover.io/source-file` annotation.
pub fn parse_unit(path: &Path, text: &str, now: DateTime<Utc>) -> Result<Object, Vec<Diagnostic>> {
    parse(path, text, now).map(|(object, _)| object)
}

/// Parses and validates one file; also returns where its name is.
fn parse(
    path: &Path,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(Object, Location), Vec<Diagnostic>> {
    if text.len() as u64 > MAX_UNIT_FILE_BYTES {
        return Err(vec![Diagnostic::file(
            path,
            format!(
                "the file is larger than {} KiB, the most a unit file may be",
                MAX_UNIT_FILE_BYTES / 1024
            ),
        )]);
    }
    let src = Source::new(path, text);
    let validated = validate::validate(&src, now);
    let mut object = match (validated.object, validated.diags.is_empty()) {
        (Some(object), true) => object,
        (_, false) => return Err(validated.diags),
        (None, true) => return Err(vec![Diagnostic::file(path, "not a unit file")]),
    };
    let name_at = validated.name_at;
    let meta = object.meta_mut();
    meta.annotations.insert(
        annotations::SOURCE_FILE.to_string(),
        path.display().to_string(),
    );
    meta.annotations.insert(
        annotations::SOURCE_HASH.to_string(),
        source_hash(text.as_bytes()),
    );
    Ok((object, name_at))
}
