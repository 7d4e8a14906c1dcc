//! `${VAR}` in a command: where the references are, which names a process
//! can expand, and what to say about one it cannot.

use super::names::{env_name, port_var};

/// Variables a `${VAR}` in `command` may name besides the process's `env`
/// and the pod's `PORT_<NAME>`: what drover sets for every process and what
/// every process inherits from its user and the daemon.
pub const DROVER_VARS: &[&str] = &["DROVER_POD_NAME", "DROVER_NODE_NAME", "DROVER_POD_UID"];
pub const INHERITED_VARS: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG"];

/// A `${...}` found in a command argument; byte offsets into the argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarRef {
    /// `${NAME}`, spanning `start..end`.
    Name {
        start: usize,
        end: usize,
        name: String,
    },
    /// `${` without its `}`.
    Unterminated { start: usize },
}

/// The `${VAR}` references in `text`. `$${` is a literal `${` and is
/// skipped; a `$` not followed by `{` is literal.
pub fn var_refs(text: &str) -> Vec<VarRef> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    // Compared as bytes: `i` steps one byte at a time and may stand
    // inside a multi-byte character, where slicing `text` would panic.
    // It is only sliced at a `$` or a `}`, which are character boundaries.
    while i < bytes.len() {
        if bytes[i..].starts_with(b"$${") {
            i += 3;
        } else if bytes[i..].starts_with(b"${") {
            match text[i + 2..].find('}') {
                Some(rel) => {
                    let end = i + 2 + rel + 1;
                    out.push(VarRef::Name {
                        start: i,
                        end,
                        name: text[i + 2..end - 1].to_string(),
                    });
                    i = end;
                }
                None => {
                    out.push(VarRef::Unterminated { start: i });
                    break;
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The names `${VAR}` may use in a process's command: its `env`, the pod's
/// `PORT_<NAME>`, drover's `DROVER_*` and the inherited PATH, HOME, ...
pub fn known_vars<'a>(
    env_keys: impl IntoIterator<Item = &'a String>,
    port_names: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut known: Vec<String> = env_keys.into_iter().cloned().collect();
    known.extend(port_names.into_iter().map(|p| port_var(p)));
    known.extend(DROVER_VARS.iter().map(|s| s.to_string()));
    known.extend(INHERITED_VARS.iter().map(|s| s.to_string()));
    known
}

/// Why a `${name}` in a command cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarProblem {
    pub message: String,
    /// What is wrong, under the marker.
    pub label: Option<String>,
    pub help: Option<String>,
}

/// Why `${name}` cannot be expanded, with a suggestion, or `None` if it can.
pub fn unknown_var(name: &str, known: &[String]) -> Option<VarProblem> {
    if name.is_empty() || env_name(name).is_err() {
        return Some(VarProblem {
            message: format!("`${{{name}}}` does not name a valid variable"),
            label: Some("use letters, digits and '_', not starting with a digit".into()),
            help: Some("write `$${` for a literal `${`".into()),
        });
    }
    if known.iter().any(|k| k == name) {
        return None;
    }
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    let help = match crate::units::suggest::closest(name, &candidates) {
        Some(c) => format!("did you mean `${{{c}}}`?"),
        None => {
            if let Some(port) = name.strip_prefix("PORT_") {
                format!(
                    "declare the port in the pod: ports = [{{ name = \"{}\", range = \"8080-8099\" }}]",
                    port.to_ascii_lowercase().replace('_', "-")
                )
            } else {
                format!("set it in the process: env = {{ {name} = \"...\" }}, or write `$${{` for a literal `${{`")
            }
        }
    };
    Some(VarProblem {
        message: format!("unknown variable `${{{name}}}` in command"),
        label: Some("not in `env`, the pod's ports, DROVER_* or the inherited variables".into()),
        help: Some(help),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_references() {
        assert_eq!(
            var_refs("--port=${PORT_HTTP} $${LIT} $HOME ${X"),
            vec![
                VarRef::Name {
                    start: 7,
                    end: 19,
                    name: "PORT_HTTP".into()
                },
                VarRef::Unterminated { start: 34 }
            ]
        );
    }

    /// Found by fuzzing (fuzz/, api_json): a multi-byte character before
    /// `${` made the scan slice inside it, and a unit sent to the API
    /// panicked the daemon.
    #[test]
    fn variable_references_after_multi_byte_characters() {
        assert_eq!(
            var_refs("shdar \u{4c4}JOB_COMPLETION_INDEX}; é${X}"),
            vec![VarRef::Name {
                start: 33,
                end: 37,
                name: "X".into()
            }]
        );
        assert_eq!(var_refs("ӄ${"), vec![VarRef::Unterminated { start: 2 }]);
    }
}
