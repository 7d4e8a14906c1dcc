//! `-o yaml`: a small YAML emitter for `serde_json::Value` (serde_yaml is
//! unmaintained, and a JSON value needs only a corner of YAML).
//!
//! The layout is kubectl's: two-space indents, sequence items at the
//! indent of their key (`items:\n- kind: Pod`), `{}` and `[]` for empty
//! collections. A string is quoted whenever a YAML 1.1 or 1.2 reader could
//! take it for something else (a number, a bool, null, a timestamp) or it
//! holds syntax; quoted strings use JSON's escapes, which YAML's double
//! quotes accept.

use serde_json::Value;

/// One YAML document for `value`, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0, false),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

/// `key: value` lines at `indent`; with `inline_first` the first key goes
/// on the current line (after a sequence dash).
fn write_map(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    indent: usize,
    inline_first: bool,
) {
    for (i, (key, value)) in map.iter().enumerate() {
        if !(inline_first && i == 0) {
            push_indent(out, indent);
        }
        out.push_str(&string_text(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, indent + 2, false);
            }
            // kubectl's style: a sequence under a key is not indented.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent, false);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

/// `- item` lines at `indent`; nested collections start on the dash's
/// line (`- - 1`, `- name: x`).
fn write_seq(out: &mut String, items: &[Value], indent: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if !(inline_first && i == 0) {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2, true),
            scalar => {
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A scalar or an empty collection, on one line.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// The string as a plain scalar when that reads back as the same string,
/// double-quoted otherwise.
pub fn string_text(s: &str) -> String {
    if needs_quotes(s) {
        // JSON string escapes are valid inside YAML double quotes.
        serde_json::to_string(s).expect("a string serialises")
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.starts_with(' ') || s.ends_with(' ') {
        return true;
    }
    // Indicators that start other YAML syntax.
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // "-x" and "-1" aside, a lone dash or "- " starts a sequence; keep
        // it simple and quote every leading indicator except a dash that
        // begins a word.
        let dash_word = first == '-' && s.len() > 1 && !s[1..].starts_with(' ');
        if !dash_word || looks_like_number(s) {
            return true;
        }
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return true;
    }
    if s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return true;
    }
    is_reserved_word(s) || looks_like_number(s) || looks_like_timestamp(s)
}

/// Words YAML 1.1 (yes/no/on/off, y/n) or 1.2 reads as bool or null.
fn is_reserved_word(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    )
}

/// Integers, floats (also "1e3", ".5", "1_000", "0x1f", "0o7"), infinities
/// and NaN, as a YAML reader would resolve them.
fn looks_like_number(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | ".nan") {
        return true;
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(oct) = lower.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8) || c == '_');
    }
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    // Sexagesimal numbers of YAML 1.1 ("1:30").
    let sexagesimal = t.contains(':')
        && t.split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    sexagesimal || (cleaned.chars().any(|c| c.is_ascii_digit()) && cleaned.parse::<f64>().is_ok())
}

/// "2024-01-02", "2024-1-2", "2024-01-02T03:04:05Z": what YAML 1.1 reads
/// as a timestamp (YYYY-M-D, then anything).
fn looks_like_timestamp(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let d: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let digits = |t: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit())
    };
    digits(y, 4, 4) && digits(m, 1, 2) && digits(&d, 1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_use_kubectl_layout() {
        let v = json!({
            "kind": "List",
            "items": [
                {
                    "kind": "Pod",
                    "metadata": {"name": "web-1", "labels": {"app": "web"}, "owner_references": []},
                    "spec": {"processes": [{"name": "server", "command": ["sleep", "60"]}]}
                }
            ]
        });
        let want = "\
items:
- kind: Pod
  metadata:
    labels:
      app: web
    name: web-1
    owner_references: []
  spec:
    processes:
    - command:
      - sleep
      - \"60\"
      name: server
kind: List
";
        assert_eq!(to_yaml(&v), want);
    }

    #[test]
    fn scalars_and_empty_collections() {
        let v =
            json!({"a": null, "b": true, "c": 3, "d": 1.5, "e": {}, "f": [], "g": [[1, 2], []]});
        assert_eq!(
            to_yaml(&v),
            "a: null\nb: true\nc: 3\nd: 1.5\ne: {}\nf: []\ng:\n- - 1\n  - 2\n- []\n"
        );
    }

    #[test]
    fn strings_that_would_read_back_differently_are_quoted() {
        let quoted = [
            "",
            "true",
            "No",
            "on",
            "null",
            "~",
            "8080",
            "1.5",
            "-3",
            "1e3",
            "0x1f",
            "1:30",
            ".inf",
            "2024-01-02T03:04:05Z",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "key:",
            "#comment",
            "*ref",
            "&anchor",
            "!tag",
            "[x]",
            "{x}",
            "|",
            ">",
            "'q",
            "\"q",
            "@x",
            "%x",
            "`x",
            "- item",
            "-",
            "line\nbreak",
            "tab\there",
        ];
        for s in quoted {
            let text = string_text(s);
            assert!(text.starts_with('"'), "{s:?} should be quoted, got {text}");
            let back: String = serde_json::from_str(&text).unwrap();
            assert_eq!(back, s);
        }
        let plain = [
            "web",
            "web-x1y2z",
            "app.kubernetes.io/name",
            "Running",
            "http://127.0.0.1:8080/",
            "-x",
            "a:b",
            "a#b",
            "10s",
            "v1",
            "apps/v1",
            "CrashLoopBackOff",
            "héllo",
        ];
        for s in plain {
            assert_eq!(string_text(s), s, "{s:?} needs no quotes");
        }
    }

    #[test]
    fn top_level_scalars() {
        assert_eq!(to_yaml(&json!("yes")), "\"yes\"\n");
        assert_eq!(to_yaml(&json!([])), "[]\n");
    }
}
