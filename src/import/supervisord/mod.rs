//! supervisord configs -> drover units: each `[program:x]` becomes a Pod
//! named `x` (a ReplicaSet of `numprocs` pods when there are several, or
//! 0 while `autostart=false`), labelled `app = x`.
//!
//! - `[group:g]` has no drover equivalent beyond labels: its programs get
//!   `group = g`, so `drover get pods -l group=g` lists them.
//! - `[include]` is not followed: name the included files on the same
//!   command line (`drover import supervisord supervisord.conf
//!   conf.d/*.conf`).
//! - The sections about supervisord itself (`[supervisord]`,
//!   `[unix_http_server]`, ...) are noted and skipped; event listeners
//!   and FastCGI programs are not converted.
//!
//! `%(ENV_X)s` is taken from the importing shell's environment (supervisord
//! reads its own at start: a note says what was used), `%(here)s` is the
//! config file's folder.

mod expand;
mod ini;
mod ports;
mod program;
mod shlex;

use super::{names, Host, Outcome, Refusal, Warning};
use ini::Section;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Converts the programs of the given config files.
pub fn convert(paths: &[String], host: &dyn Host) -> Outcome {
    let mut out = Outcome::default();
    // (file, section) for every program of every file.
    let mut programs: Vec<(String, Section, PathBuf)> = Vec::new();
    // group name -> (file, line, program names)
    let mut groups: Vec<(String, String, usize, Vec<String>)> = Vec::new();
    for path in paths {
        let text = match host.read(Path::new(path)) {
            Ok(t) => t,
            Err(e) => {
                out.refusals
                    .push(Refusal::new(path, None, format!("cannot read it: {e}")));
                continue;
            }
        };
        let sections = match ini::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                out.refusals
                    .push(Refusal::new(path, Some(e.line), e.message));
                continue;
            }
        };
        let here = here(path, host);
        for s in sections {
            let (kind, name) = s.name.split_once(':').unwrap_or((s.name.as_str(), ""));
            match kind {
                "program" => programs.push((path.clone(), s.clone(), here.clone())),
                "group" => {
                    let members = s
                        .get("programs")
                        .map(|e| {
                            e.value
                                .split(',')
                                .map(|p| p.trim().to_string())
                                .filter(|p| !p.is_empty())
                                .collect()
                        })
                        .unwrap_or_default();
                    for e in &s.entries {
                        if e.key != "programs" {
                            out.warnings.push(Warning::new(
                                path,
                                Some(e.line),
                                format!("[group:{name}] {}= is not converted (drover has no process groups)", e.key),
                            ));
                        }
                    }
                    groups.push((name.to_string(), path.clone(), s.line, members));
                }
                "include" => {
                    let files = s.get("files").map(|e| e.value.clone()).unwrap_or_default();
                    out.warnings.push(Warning::new(
                        path,
                        Some(s.line),
                        format!(
                            "[include] files = {files}: included files are not read; name them on \
                             the same command line (drover import supervisord {path} {files})"
                        ),
                    ));
                }
                "supervisord" | "supervisorctl" | "unix_http_server" | "inet_http_server"
                | "rpcinterface" => out.warnings.push(Warning::note(
                    path,
                    Some(s.line),
                    format!(
                        "[{}] configures supervisord itself; drover's settings are in \
                         /etc/drover/drover.toml",
                        s.name
                    ),
                )),
                "eventlistener" => out.warnings.push(Warning::new(
                    path,
                    Some(s.line),
                    format!(
                        "[{}]: event listeners have no drover equivalent; not converted",
                        s.name
                    ),
                )),
                "fcgi-program" => out.warnings.push(Warning::new(
                    path,
                    Some(s.line),
                    format!(
                        "[{}]: FastCGI programs (processes sharing a socket supervisord opens) \
                         have no drover equivalent; not converted",
                        s.name
                    ),
                )),
                _ => out.warnings.push(Warning::new(
                    path,
                    Some(s.line),
                    format!(
                        "section [{}] is not known to drover import; not converted",
                        s.name
                    ),
                )),
            }
        }
    }

    // Which group each program is in.
    let mut group_of: BTreeMap<String, (String, String, usize)> = BTreeMap::new();
    for (g, file, line, members) in &groups {
        let mut found = Vec::new();
        for m in members {
            if programs
                .iter()
                .any(|(_, s, _)| s.name == format!("program:{m}"))
            {
                group_of.insert(m.clone(), (g.clone(), file.clone(), *line));
                found.push(m.as_str());
            } else {
                out.warnings.push(Warning::new(
                    file,
                    Some(*line),
                    format!("[group:{g}] names the program `{m}`, which is not in the files given"),
                ));
            }
        }
        if !found.is_empty() {
            out.warnings.push(Warning::new(
                file,
                Some(*line),
                format!(
                    "[group:{g}]: drover has no process groups; {} get the label group={g} \
                     (drover get pods -l group={g})",
                    found.join(", ")
                ),
            ));
        }
    }

    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for (file, section, here) in &programs {
        let program = section
            .name
            .split_once(':')
            .map_or("", |(_, n)| n)
            .to_string();
        let group = group_of.get(&program).map(|(g, _, _)| g.as_str());
        let input = program::Input {
            file,
            section,
            program: &program,
            group,
            here,
            host,
        };
        match program::convert(&input, &mut out.warnings) {
            Ok(draft) => {
                if let Some(first) = taken.get(&draft.name) {
                    out.refusals.push(Refusal::new(
                        file,
                        Some(section.line),
                        format!(
                            "its drover name `{}` is already taken by a program from {first}",
                            draft.name
                        ),
                    ));
                    continue;
                }
                taken.insert(draft.name.clone(), file.clone());
                out.drafts.push(draft);
            }
            Err(r) => out.refusals.push(r),
        }
    }
    out.sort_warnings();
    out
}

/// `%(here)s`: the absolute folder of the config file.
fn here(path: &str, host: &dyn Host) -> PathBuf {
    let p = Path::new(path);
    let dir = p.parent().unwrap_or(Path::new(""));
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match host.current_dir() {
        Some(cwd) => cwd.join(dir),
        None => dir.to_path_buf(),
    }
}

/// A program's drover name.
fn drover_name(program: &str, max: usize) -> Option<String> {
    names::unit_name(program, max)
}

#[cfg(test)]
mod tests;
