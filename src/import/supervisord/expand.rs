//! supervisord's expansions: Python's `value % {names}` formatting, as in
//! `%(program_name)s`, `%(ENV_HOME)s`, `%(process_num)02d`, `%%`.

use std::collections::BTreeMap;

/// A value to format: supervisord's expansions are strings or integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Str(String),
    Int(i64),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("`%({0})` names nothing supervisord knows here")]
    Unknown(String),
    #[error("`{0}` is not a format supervisord accepts (write `%%` for a percent sign)")]
    Format(String),
    #[error("`%({0})d` needs a number, and {0} is text")]
    NotANumber(String),
}

/// Formats `text` with `names`; `lookup` is asked for names not in the
/// map (supervisord's `ENV_X`), and the names used are returned.
pub fn expand(
    text: &str,
    names: &BTreeMap<String, Val>,
    lookup: &dyn Fn(&str) -> Option<Val>,
    used: &mut Vec<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let Some(body) = after.strip_prefix('(') else {
            return Err(ExpandError::Format(format!(
                "%{}",
                after.chars().take(2).collect::<String>()
            )));
        };
        let Some(close) = body.find(')') else {
            return Err(ExpandError::Format(format!("%{after}")));
        };
        let name = &body[..close];
        let spec = &body[close + 1..];
        // flags, width, precision, length modifier, conversion
        let flags_len = spec
            .find(|c: char| !"#0- +".contains(c))
            .unwrap_or(spec.len());
        let flags = &spec[..flags_len];
        let s2 = &spec[flags_len..];
        let width_len = s2.find(|c: char| !c.is_ascii_digit()).unwrap_or(s2.len());
        let width: usize = s2[..width_len].parse().unwrap_or(0);
        let mut s3 = &s2[width_len..];
        if let Some(p) = s3.strip_prefix('.') {
            let n = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            s3 = &p[n..];
        }
        s3 = s3.trim_start_matches(['h', 'l', 'L']);
        let Some(conv) = s3.chars().next() else {
            return Err(ExpandError::Format(format!("%({name}){spec}")));
        };
        let val = match names.get(name) {
            Some(v) => v.clone(),
            None => lookup(name).ok_or_else(|| ExpandError::Unknown(name.to_string()))?,
        };
        if !used.iter().any(|u| u == name) {
            used.push(name.to_string());
        }
        let body_text = match (conv, &val) {
            ('s' | 'r' | 'a', Val::Str(s)) => s.clone(),
            ('s' | 'r' | 'a' | 'd' | 'i' | 'u', Val::Int(n)) => n.to_string(),
            ('x', Val::Int(n)) => format!("{n:x}"),
            ('X', Val::Int(n)) => format!("{n:X}"),
            ('o', Val::Int(n)) => format!("{n:o}"),
            ('d' | 'i' | 'u' | 'x' | 'X' | 'o', Val::Str(_)) => {
                return Err(ExpandError::NotANumber(name.to_string()))
            }
            _ => return Err(ExpandError::Format(format!("%({name}){spec}"))),
        };
        let padded = if body_text.chars().count() >= width {
            body_text
        } else if flags.contains('-') {
            format!("{body_text:<width$}")
        } else if flags.contains('0') && matches!(val, Val::Int(_)) {
            match body_text.strip_prefix('-') {
                Some(digits) => format!("-{digits:0>w$}", w = width - 1),
                None => format!("{body_text:0>width$}"),
            }
        } else {
            format!("{body_text:>width$}")
        };
        out.push_str(&padded);
        rest = &s3[conv.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, ExpandError> {
        let names: BTreeMap<String, Val> = [
            ("program_name".to_string(), Val::Str("web".into())),
            ("process_num".to_string(), Val::Int(3)),
            ("here".to_string(), Val::Str("/etc/supervisor".into())),
        ]
        .into_iter()
        .collect();
        let lookup = |n: &str| (n == "ENV_HOME").then(|| Val::Str("/root".into()));
        expand(text, &names, &lookup, &mut Vec::new())
    }

    #[test]
    fn python_percent_formatting() {
        let cases = [
            ("%(program_name)s", "web"),
            ("%(program_name)s-%(process_num)d", "web-3"),
            ("80%(process_num)02d", "8003"),
            ("%(process_num)3d|", "  3|"),
            ("%(process_num)-3d|", "3  |"),
            ("%(process_num)x", "3"),
            ("%(here)s/app.py", "/etc/supervisor/app.py"),
            ("%(ENV_HOME)s/.cache", "/root/.cache"),
            ("100%%", "100%"),
            ("plain", "plain"),
        ];
        for (text, want) in cases {
            assert_eq!(run(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn what_supervisord_refuses() {
        assert_eq!(run("%(nope)s"), Err(ExpandError::Unknown("nope".into())));
        assert!(matches!(run("50% off"), Err(ExpandError::Format(_))));
        assert!(matches!(
            run("%(program_name)d"),
            Err(ExpandError::NotANumber(_))
        ));
        assert!(matches!(run("%(program_name"), Err(ExpandError::Format(_))));
    }
}
