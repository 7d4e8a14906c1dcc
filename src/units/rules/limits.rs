//! Limits on what a caller may ask for, so that a unit is refused at
//! validation instead of failing at every start (or filling the store, the
//! pid table or the disk): the size of a unit file, of a process's
//! arguments and environment, the number of pods one object may ask for,
//! and NUL bytes, which no Linux string can carry.

use super::{Part, Problem};
use crate::api::job::labels::COMPLETION_INDEX_ENV;
use crate::api::Object;
use std::collections::BTreeMap;

/// The largest unit file drover reads (1 MiB): the biggest real unit is a
/// few KiB; a larger file is a mistake (or an attack) and is refused
/// before it is parsed.
pub const MAX_UNIT_FILE_BYTES: u64 = 1024 * 1024;

/// The most pods one object may ask for at once: `replicas`, a Job's
/// `completions` and `parallelism`. Each pod is at least one process and
/// a few file descriptors; a host that needs more than this runs several
/// objects.
pub const MAX_REPLICAS: u32 = 10_000;

/// Linux's limit on one argument or one `KEY=VALUE` environment string,
/// its terminating NUL included (MAX_ARG_STRLEN, 32 pages): execve fails
/// with E2BIG past it.
pub const MAX_ARG_STRLEN: usize = 128 * 1024;

/// Linux's limit on argv and the environment together (ARG_MAX): a quarter
/// of the stack limit, 2 MiB with the usual 8 MiB stack. The kernel counts
/// every string with its NUL plus one pointer (8 bytes) per string.
pub const ARG_MAX: usize = 2 * 1024 * 1024;

/// What is kept free of [`ARG_MAX`] for the variables drover and the
/// process's account add to what the unit asks for: PATH, LANG, HOME,
/// USER, LOGNAME, SHELL, DROVER_*, PORT_*, NOTIFY_SOCKET,
/// JOB_COMPLETION_INDEX. Together they are a few KiB; 64 KiB leaves room
/// for a long PATH.
pub const ENV_HEADROOM: usize = 64 * 1024;

/// How long a `${VAR}` a unit does not set itself may expand to: ports
/// are at most 5 digits, pod names 63 characters, node names 64 (a host
/// name), uids 36, a completion index 10; an inherited variable (PATH,
/// HOME, ...) at most PATH_MAX.
fn expansion_bound(name: &str) -> usize {
    match name {
        "DROVER_POD_NAME" => 63,
        "DROVER_NODE_NAME" => 64,
        "DROVER_POD_UID" => 36,
        n if n == COMPLETION_INDEX_ENV => 10,
        n if n.starts_with("PORT_") => 5,
        _ => 4096,
    }
}

/// The length of `arg` once its `${VAR}`s are expanded, at most.
fn expanded_len(arg: &str, env: &BTreeMap<String, String>) -> usize {
    let mut len = arg.len();
    for r in super::vars::var_refs(arg) {
        if let super::vars::VarRef::Name { start, end, name } = r {
            let value = env
                .get(&name)
                .map_or_else(|| expansion_bound(&name), String::len);
            len = len - (end - start) + value;
        }
    }
    len
}

/// What an exec of `argv` with `env` costs against [`ARG_MAX`].
fn cost(len: usize) -> usize {
    len + 1 + std::mem::size_of::<usize>()
}

/// Problems with the size of what one exec passes: each argument and each
/// `KEY=VALUE` under [`MAX_ARG_STRLEN`], all of them under [`ARG_MAX`]
/// less [`ENV_HEADROOM`]. `env_path` is `None` for a probe's command (its
/// process's env is checked with the process).
pub fn exec_size(
    argv: &[String],
    argv_path: &str,
    env: &BTreeMap<String, String>,
    env_path: Option<&str>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let too_long = format!(
        "Linux refuses an argument or environment string of {MAX_ARG_STRLEN} bytes or more, \
         its NUL included (MAX_ARG_STRLEN)"
    );
    let mut argv_total = 0;
    for (i, arg) in argv.iter().enumerate() {
        let len = expanded_len(arg, env);
        argv_total += cost(len);
        if len + 1 > MAX_ARG_STRLEN {
            out.push(
                Problem::value(
                    format!("{argv_path}[{i}]"),
                    format!("this argument is {len} bytes long"),
                )
                .label(too_long.clone())
                .help("pass large data in a file, or through standard input"),
            );
        }
    }
    let mut env_total = 0;
    for (k, v) in env {
        let len = k.len() + 1 + v.len();
        env_total += cost(len);
        if let Some(path) = env_path.filter(|_| len + 1 > MAX_ARG_STRLEN) {
            out.push(
                Problem::value(
                    super::join(path, k),
                    format!("the variable `{k}` is {len} bytes long"),
                )
                .label(too_long.clone())
                .help("pass large data in a file, and its path in the variable"),
            );
        }
    }
    let limit = ARG_MAX - ENV_HEADROOM;
    if argv_total + env_total > limit {
        let at = match env_path {
            Some(path) if env_total > argv_total => path.to_string(),
            _ => argv_path.to_string(),
        };
        out.push(
            Problem::value(
                at,
                format!(
                    "`command` and `env` take {} bytes at exec, over the {limit} a unit may use",
                    argv_total + env_total
                ),
            )
            .label(format!(
                "Linux refuses arguments and environment over {ARG_MAX} bytes together \
                 (ARG_MAX); {ENV_HEADROOM} are kept for the variables drover adds"
            ))
            .help("pass large data in a file, or through standard input"),
        );
    }
    out
}

/// A count over [`MAX_REPLICAS`].
pub fn ceiling(n: u32, path: &str) -> Option<Problem> {
    if n <= MAX_REPLICAS {
        return None;
    }
    let field = path.rsplit('.').next().unwrap_or(path);
    Some(
        Problem::value(
            path,
            format!("`{field}` must be at most {MAX_REPLICAS}, found {n}"),
        )
        .label("drover's ceiling for one object: every pod is at least one process")
        .help(format!(
            "split the work over several objects of at most {MAX_REPLICAS} pods"
        )),
    )
}

/// Every string of `obj`'s metadata and spec (keys included) that holds a
/// NUL byte: Linux strings end at the first one, so the process would see
/// a different argument, variable, path or name than the unit says.
pub fn nul_bytes(obj: &Object) -> Vec<Problem> {
    let mut out = Vec::new();
    let Ok(serde_json::Value::Object(top)) = serde_json::to_value(obj) else {
        return out;
    };
    for part in ["metadata", "spec"] {
        if let Some(v) = top.get(part) {
            walk(v, part, &mut out);
        }
    }
    out
}

fn walk(v: &serde_json::Value, path: &str, out: &mut Vec<Problem>) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Some(p) = nul(s, path, Part::Value) {
                out.push(p);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let at = super::join(path, k);
                if let Some(p) = nul(k, &at, Part::Key) {
                    out.push(p);
                }
                walk(item, &at, out);
            }
        }
        _ => {}
    }
}

fn nul(s: &str, path: &str, part: Part) -> Option<Problem> {
    let cut = s.find('\0')?;
    let mut p = Problem::value(path, "a NUL byte in a string")
        .label(format!(
            "Linux strings end at the first NUL: this one would read \"{}\"",
            &s[..cut]
        ))
        .help("remove the \\u0000");
    p.at.part = part;
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_counts_what_a_variable_becomes() {
        let e = env(&[("BIG", &"x".repeat(1000))]);
        assert_eq!(expanded_len("a${BIG}b", &e), 1002);
        assert_eq!(expanded_len("${PORT_HTTP}", &e), 5);
        assert_eq!(expanded_len("${DROVER_POD_NAME}", &e), 63);
        assert_eq!(expanded_len("${PATH}", &e), 4096);
        assert_eq!(expanded_len("plain", &e), 5);
    }

    #[test]
    fn one_string_over_max_arg_strlen() {
        let argv = vec!["echo".to_string(), "x".repeat(MAX_ARG_STRLEN)];
        let p = exec_size(&argv, "c", &BTreeMap::new(), Some("e"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].at.path, "c[1]");
        // One byte less fits (with its NUL).
        let argv = vec!["echo".to_string(), "x".repeat(MAX_ARG_STRLEN - 1)];
        assert!(exec_size(&argv, "c", &BTreeMap::new(), Some("e")).is_empty());

        let e = env(&[("K", &"v".repeat(MAX_ARG_STRLEN))]);
        let p = exec_size(&["true".to_string()], "c", &e, Some("e"));
        assert_eq!(p[0].at.path, "e.K");
        // A variable expanded into an argument counts there too.
        let e = env(&[("K", &"v".repeat(100 * 1024))]);
        let p = exec_size(&["${K}${K}".to_string()], "c", &e, Some("e"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].at.path, "c[0]");
    }

    #[test]
    fn all_strings_over_arg_max_less_the_headroom() {
        // 20 arguments of 100 KiB: each fits, together they do not.
        let argv: Vec<String> = (0..20).map(|_| "x".repeat(100 * 1024)).collect();
        let p = exec_size(&argv, "c", &BTreeMap::new(), Some("e"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].at.path, "c");
        let argv: Vec<String> = (0..19).map(|_| "x".repeat(100 * 1024)).collect();
        assert!(exec_size(&argv, "c", &BTreeMap::new(), Some("e")).is_empty());
    }

    #[test]
    fn ceilings() {
        assert!(ceiling(MAX_REPLICAS, "spec.replicas").is_none());
        let p = ceiling(1_000_000, "spec.replicas").unwrap();
        assert_eq!(p.message, "`replicas` must be at most 10000, found 1000000");
    }
}
