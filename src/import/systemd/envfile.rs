//! `EnvironmentFile=` contents, read as systemd reads them (its
//! `parse_env_file`): `KEY=VALUE` lines, `#` and `;` comment lines,
//! single quotes literal, double quotes with `\"`, `\\`, `` \` ``, `\$`
//! and escaped newlines, unquoted values with trailing blanks cut and a
//! backslash taking the next character (a backslash-newline joins lines).
//! A line without `=` is ignored, as systemd ignores it.

/// One assignment and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub line: usize,
}

pub fn parse(text: &str) -> Vec<Assignment> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
        Comment,
    }
    let mut out = Vec::new();
    let mut st = St::PreKey;
    let mut key = String::new();
    let mut value = String::new();
    // Where trailing blanks of an unquoted value begin.
    let mut blank_from: Option<usize> = None;
    let mut line = 1;
    let mut start_line = 1;
    let push = |out: &mut Vec<Assignment>, key: &mut String, value: &mut String, line: usize| {
        out.push(Assignment {
            key: key.trim_end().to_string(),
            value: std::mem::take(value),
            line,
        });
        key.clear();
    };
    for c in text.chars() {
        let newline = c == '\n' || c == '\r';
        match st {
            St::PreKey => {
                if c == '#' || c == ';' {
                    st = St::Comment;
                } else if !c.is_whitespace() {
                    st = St::Key;
                    start_line = line;
                    key.push(c);
                }
            }
            St::Key => {
                if newline {
                    st = St::PreKey;
                    key.clear();
                } else if c == '=' {
                    st = St::PreValue;
                    blank_from = None;
                } else {
                    key.push(c);
                }
            }
            St::PreValue => {
                if newline {
                    st = St::PreKey;
                    push(&mut out, &mut key, &mut value, start_line);
                } else if c == '\'' {
                    st = St::Single;
                } else if c == '"' {
                    st = St::Double;
                } else if c == '\\' {
                    st = St::ValueEscape;
                } else if !c.is_whitespace() {
                    st = St::Value;
                    value.push(c);
                }
            }
            St::Value => {
                if newline {
                    st = St::PreKey;
                    if let Some(b) = blank_from {
                        value.truncate(b);
                    }
                    push(&mut out, &mut key, &mut value, start_line);
                } else if c == '\\' {
                    st = St::ValueEscape;
                    blank_from = None;
                } else {
                    if !c.is_whitespace() {
                        blank_from = None;
                    } else if blank_from.is_none() {
                        blank_from = Some(value.len());
                    }
                    value.push(c);
                }
            }
            St::ValueEscape => {
                st = St::Value;
                if !newline {
                    value.push(c);
                }
            }
            St::Single => {
                if c == '\'' {
                    st = St::PreValue;
                } else {
                    value.push(c);
                }
            }
            St::Double => {
                if c == '"' {
                    st = St::PreValue;
                } else if c == '\\' {
                    st = St::DoubleEscape;
                } else {
                    value.push(c);
                }
            }
            St::DoubleEscape => {
                st = St::Double;
                if matches!(c, '"' | '\\' | '`' | '$') {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                }
            }
            St::Comment => {
                if newline {
                    st = St::PreKey;
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
    }
    match st {
        St::Value => {
            if let Some(b) = blank_from {
                value.truncate(b);
            }
            push(&mut out, &mut key, &mut value, start_line);
        }
        St::PreValue | St::ValueEscape | St::Single | St::Double | St::DoubleEscape => {
            push(&mut out, &mut key, &mut value, start_line);
        }
        St::PreKey | St::Key | St::Comment => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).into_iter().map(|a| (a.key, a.value)).collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn debian_default_files() {
        // /etc/default/cron and /etc/default/ssh as Debian 12 ships them.
        let cron = include_str!("../../../tests/fixtures/import/etc/default/cron");
        assert_eq!(pairs(cron), vec![p("READ_ENV", "yes")]);
        let ssh = include_str!("../../../tests/fixtures/import/etc/default/ssh");
        assert_eq!(pairs(ssh), vec![p("SSHD_OPTS", "")]);
    }

    #[test]
    fn quoting_rules() {
        let text = "A=plain value   \nB='single $x \\n'\nC=\"double \\\"q\\\" \\$x \\n\"\nD=a\\ b\\\nc\n  E = spaced\nnoequals\n; comment\nF=\"multi\nline\"\n";
        assert_eq!(
            pairs(text),
            vec![
                p("A", "plain value"),
                p("B", "single $x \\n"),
                p("C", "double \"q\" $x \\n"),
                p("D", "a bc"),
                p("E", "spaced"),
                p("F", "multi\nline"),
            ]
        );
        let lines: Vec<usize> = parse(text).iter().map(|a| a.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 6, 9]);
    }
}
