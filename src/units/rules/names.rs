//! What a name, a label or a variable name may be, as pure functions that
//! say why a value is refused.

use crate::api::Labels;

/// Longest object names: a DNS-1123 label for a Pod; 57 for a controller
/// so that `NAME-xxxxx` pod names still fit in 63.
pub const MAX_POD_NAME: usize = 63;
pub const MAX_SET_NAME: usize = 57;
/// A CronJob's Jobs are named `NAME-<10-digit unix time>` and must still
/// fit in 57.
pub const MAX_CRONJOB_NAME: usize = 46;
/// Port names follow Kubernetes' IANA service names: at most 15 characters.
pub const MAX_PORT_NAME: usize = 15;

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
    dns_label(name, MAX_PORT_NAME)?;
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("a port name needs at least one letter".into());
    }
    Ok(())
}

/// `PORT_HTTP` for the port named `http` ('-' becomes '_').
pub fn port_var(name: &str) -> String {
    format!("PORT_{}", name.to_ascii_uppercase().replace('-', "_"))
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
}
