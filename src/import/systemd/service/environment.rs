//! The process environment of a service: `Environment=`,
//! `EnvironmentFile=` (read at import time), `UnsetEnvironment=`, and the
//! folders of `RuntimeDirectory=` and its siblings.

use super::super::directives;
use super::super::{envfile, exec};
use super::build::resolve;
use super::{Input, Report, Settings};
use crate::api::Umask;
use crate::import::DraftProcess;
use std::collections::BTreeMap;
use std::io;

/// `Environment=`, `EnvironmentFile=` (read now), `UnsetEnvironment=`,
/// and the folders of `RuntimeDirectory=` and its siblings (an init
/// process that makes them, and their variables).
pub(super) fn environment(
    input: &Input,
    s: &Settings,
    report: &mut Report,
) -> (BTreeMap<String, String>, Option<DraftProcess>) {
    let mut env = BTreeMap::new();
    for e in &s.environment {
        let mut notes = Vec::new();
        let words = match exec::split_words(&e.value, &mut notes) {
            Ok(w) => w,
            Err(err) => {
                report.warn(
                    e.line,
                    format!("Environment= cannot be read ({err}); systemd ignores it too"),
                );
                continue;
            }
        };
        for n in notes {
            report.note(e.line, n);
        }
        for w in words {
            let w = resolve(input, &w, e.line, report);
            match w.split_once('=') {
                Some((k, v)) if valid_env_name(k) => {
                    env.insert(k.to_string(), v.to_string());
                }
                _ => report.warn(
                    e.line,
                    format!("`{w}` is not a valid assignment (NAME=VALUE); systemd ignores it too"),
                ),
            }
        }
    }
    // Later files override Environment= and earlier files, as in systemd.
    for e in &s.environment_files {
        let (optional, raw) = match e.value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, e.value.as_str()),
        };
        let path = resolve(input, raw, e.line, report);
        if path.contains(['*', '?', '[']) {
            report.warn(
                e.line,
                format!("EnvironmentFile={path}: wildcards are not expanded; list the files"),
            );
            continue;
        }
        match input.host.read(path.as_ref()) {
            Ok(text) => {
                let mut n = 0;
                for a in envfile::parse(&text) {
                    if valid_env_name(&a.key) {
                        env.insert(a.key, a.value);
                        n += 1;
                    } else {
                        report.note(
                            e.line,
                            format!(
                                "{path}:{}: `{}` is not a valid variable name; systemd drops it too",
                                a.line, a.key
                            ),
                        );
                    }
                }
                report.note(
                    e.line,
                    format!(
                        "EnvironmentFile={path} was read now: {n} variable(s) copied into env; \
                         drover does not re-read the file, so edit env (or import again) when it \
                         changes"
                    ),
                );
            }
            Err(err) if optional && err.kind() == io::ErrorKind::NotFound => report.note(
                e.line,
                format!("EnvironmentFile=-{path} does not exist: skipped, as systemd skips it"),
            ),
            Err(err) => report.warn(
                e.line,
                format!(
                    "EnvironmentFile={path} cannot be read ({err}): its variables are missing \
                     from the drover unit{}",
                    if optional {
                        ""
                    } else {
                        " (systemd would refuse to start the service)"
                    }
                ),
            ),
        }
    }
    for e in &s.unset_environment {
        for w in e.value.split_whitespace() {
            match w.split_once('=') {
                Some((k, v)) => {
                    if env.get(k).is_some_and(|cur| cur == v) {
                        env.remove(k);
                    }
                }
                None => {
                    env.remove(w);
                }
            }
        }
    }
    let init = directories(input, s, &mut env, report);
    (env, init)
}

/// Which directives the env came from, for its comment.
pub(super) fn env_origin(s: &Settings) -> String {
    let mut from: Vec<String> = Vec::new();
    for (key, entries) in [
        ("Environment", &s.environment),
        ("EnvironmentFile", &s.environment_files),
    ] {
        if !entries.is_empty() {
            let lines: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
            from.push(format!("{key}=, line {}", lines.join(", ")));
        }
    }
    if !s.directories.is_empty() {
        from.push("the folders made for the service".into());
    }
    from.join("; ")
}

fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `RuntimeDirectory=redis` -> an init process running
/// `install -d -m 0755 /run/redis && chown redis:redis /run/redis`, and
/// `RUNTIME_DIRECTORY=/run/redis` in env.
fn directories(
    input: &Input,
    s: &Settings,
    env: &mut BTreeMap<String, String>,
    report: &mut Report,
) -> Option<DraftProcess> {
    let owner = match (s.user, s.group) {
        (Some(u), Some(g)) => Some(format!("{}:{}", u.value, g.value)),
        // `chown user:` gives the folder the user's login group.
        (Some(u), None) => Some(format!("{}:", u.value)),
        (None, Some(g)) => Some(format!(":{}", g.value)),
        (None, None) => None,
    };
    let mut steps = Vec::new();
    let mut from = Vec::new();
    for (i, entries) in &s.directories {
        let (directive, base, var, chown) = directives::DIRECTORIES[*i];
        let mut paths = Vec::new();
        for e in entries {
            for name in e.value.split_whitespace() {
                let name = resolve(input, name, e.line, report);
                if name.starts_with('/') || name.split('/').any(|c| c == "..") {
                    report.warn(
                        e.line,
                        format!("{directive}={name} must be a relative path; not converted"),
                    );
                    continue;
                }
                paths.push(format!("{base}/{name}"));
            }
        }
        if paths.is_empty() {
            continue;
        }
        from.push(format!(
            "{directive}=, line {}",
            entries.first().map_or(0, |e| e.line)
        ));
        if let Some(m) = s.directory_modes.get(i) {
            from.push(format!("{directive}Mode=, line {}", m.line));
        }
        let mode = match s.directory_modes.get(i) {
            Some(m) => match Umask::try_from(m.value.clone()) {
                Ok(u) => format!("{:04o}", u.0),
                Err(_) => {
                    report.warn(
                        m.line,
                        format!(
                            "{directive}Mode={} is not an octal mode; 0755 is used",
                            m.value
                        ),
                    );
                    "0755".into()
                }
            },
            None => "0755".into(),
        };
        let quoted: Vec<String> = paths.iter().map(|p| sh_quote(p)).collect();
        let mut step = format!("install -d -m {mode} {}", quoted.join(" "));
        let owned_by = owner.as_ref().filter(|_| chown);
        if let Some(o) = owned_by {
            step.push_str(&format!(" && chown {} {}", sh_quote(o), quoted.join(" ")));
        }
        steps.push(step);
        env.insert(var.to_string(), paths.join(":"));
        let first = entries.first().map_or(0, |e| e.line);
        report.note(
            first,
            format!(
                "{directive}=: an init process creates {} (mode {mode}{}) before the service \
                 starts, and ${var} is set; drover does not remove the folder when the pod stops",
                paths.join(" "),
                owned_by.map_or(String::new(), |o| format!(", owner {o}")),
            ),
        );
    }
    if steps.is_empty() {
        return None;
    }
    let mut p = DraftProcess::new(
        "make-directories",
        vec!["/bin/sh".into(), "-c".into(), steps.join(" && ")],
    );
    p.origin.insert("command", from.join("; "));
    Some(p)
}

/// Single-quotes a word for sh when it needs it.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/run/redis"), "/run/redis");
        assert_eq!(sh_quote("redis:"), "redis:");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
