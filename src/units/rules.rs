//! The rules on values, shared by the unit file walker (which reports them
//! with positions) and [`validate_object`](super::validate_object) (which
//! checks objects that arrive as JSON).

use super::schema;
use crate::api::{LabelSelector, Labels, Operator, Requirement};

// Each rule returns why a value is rejected, as a phrase that fits after
// "invalid name \"Web_1\": " or under a `^^^` marker.

/// A DNS-1123 label: lowercase letters, digits and '-', starting and ending
/// with a letter or digit, at most `max` characters.
pub fn dns_label(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name must not be empty".into());
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = !name.starts_with('-') && !name.ends_with('-');
    if !ok_chars || !ok_ends {
        return Err(
            "use lowercase letters, digits and '-', starting and ending with a letter or digit"
                .into(),
        );
    }
    let len = name.chars().count();
    if len > max {
        return Err(format!("use at most {max} characters (found {len})"));
    }
    Ok(())
}

/// The valid DNS-1123 label nearest to `name` (`Web_1` -> `web-1`), if it
/// differs from it.
pub fn dns_label_suggestion(name: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty() && out != name).then_some(out)
}

/// A Kubernetes label name segment: at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending with a letter or digit.
fn label_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS-1123 subdomain (a label key's optional prefix): dot-separated
/// labels, at most 253 characters.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|part| dns_label(part, 63).is_ok())
}

/// A label key: `name` or `prefix/name` (`app`, `drover.io/role`).
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if !dns_subdomain(p) {
            return Err(format!(
                "the prefix `{p}` must be a DNS subdomain such as `example.com`"
            ));
        }
    }
    if !label_segment(name) {
        return Err(
            "use at most 63 letters, digits, '-', '_' or '.', starting and ending \
                    with a letter or digit (optionally after a `domain/` prefix)"
                .into(),
        );
    }
    Ok(())
}

/// A label value: empty, or as a label key's name part.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || label_segment(value) {
        Ok(())
    } else {
        Err(
            "use at most 63 letters, digits, '-', '_' or '.', starting and ending \
             with a letter or digit"
                .into(),
        )
    }
}

/// An environment variable name that `${VAR}` can name: a letter or '_',
/// then letters, digits and '_'.
pub fn env_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("use letters, digits and '_', not starting with a digit".into())
    }
}

/// A port name: a DNS-1123 label of at most 15 characters with a letter in
/// it (Kubernetes' IANA service names).
pub fn port_name(name: &str) -> Result<(), String> {
    dns_label(name, schema::MAX_PORT_NAME)?;
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("a port name needs at least one letter".into());
    }
    Ok(())
}

/// `PORT_HTTP` for the port named `http` ('-' becomes '_').
pub fn port_var(name: &str) -> String {
    format!("PORT_{}", name.to_ascii_uppercase().replace('-', "_"))
}

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
    known.extend(schema::DROVER_VARS.iter().map(|s| s.to_string()));
    known.extend(schema::INHERITED_VARS.iter().map(|s| s.to_string()));
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
    let help = match super::suggest::closest(name, &candidates) {
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

/// Why a requirement's values do not fit its operator.
pub fn requirement(r: &Requirement) -> Result<(), String> {
    match r.operator {
        Operator::In | Operator::NotIn if r.values.is_empty() => Err(format!(
            "operator `{:?}` needs at least one value in `values`",
            r.operator
        )),
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
            Err(format!("operator `{:?}` takes no `values`", r.operator))
        }
        _ => Ok(()),
    }
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to change so that `selector` matches `labels` (a template's), one
/// suggestion per failing term; empty when it matches. `from` names where
/// the selector's plain labels are written (`match_labels`, `the selector`).
pub fn selector_mismatch(selector: &LabelSelector, labels: &Labels, from: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &selector.match_labels {
        match labels.get(k) {
            None => out.push(format!(
                "add `{} = \"{v}\"` to template.labels, or drop it from {from}",
                toml_key(k)
            )),
            Some(have) if have != v => out.push(format!(
                "template.labels has `{k} = \"{have}\"` but the selector wants `{k} = \"{v}\"`"
            )),
            Some(_) => {}
        }
    }
    for r in &selector.match_expressions {
        if r.matches(labels) {
            continue;
        }
        let k = &r.key;
        out.push(match r.operator {
            Operator::In => match (labels.get(k), r.values.first()) {
                (None, Some(first)) => format!(
                    "add `{k} = \"{first}\"` to template.labels, or drop the `{k} In` expression"
                ),
                (have, _) => format!(
                    "template.labels has `{k} = \"{}\"` but the selector wants one of {}",
                    have.map(String::as_str).unwrap_or_default(),
                    quoted(&r.values)
                ),
            },
            Operator::NotIn => format!(
                "template.labels has `{k} = \"{}\"`, which the selector excludes ({k} NotIn {})",
                labels.get(k).map(String::as_str).unwrap_or_default(),
                quoted(&r.values)
            ),
            Operator::Exists => {
                format!("add a `{k}` label to template.labels, or drop the `{k} Exists` expression")
            }
            Operator::DoesNotExist => format!(
                "remove `{k}` from template.labels, or drop the `{k} DoesNotExist` expression"
            ),
        });
    }
    out
}

/// A key as TOML needs it: bare when it can be, quoted otherwise.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

/// `{ app = "web", tier = "frontend" }`, for suggestions.
pub fn inline_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{} = {v:?}", toml_key(k)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns_label("web-1", 63).is_ok());
        assert!(dns_label("Web_1", 63).is_err());
        assert!(dns_label("-web", 63).is_err());
        assert!(dns_label(&"a".repeat(58), 57).is_err());
        assert_eq!(dns_label_suggestion("Web_1", 63).as_deref(), Some("web-1"));
        assert!(label_key("drover.io/role").is_ok());
        assert!(label_key("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("a,b").is_err());
        assert!(env_name("PORT_HTTP").is_ok());
        assert!(env_name("1X").is_err());
        assert_eq!(port_var("admin-api"), "PORT_ADMIN_API");
    }

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
