//! The two ways supervisord splits text, both Python's `shlex`:
//!
//! - `command=`: `shlex.split` (POSIX mode): words at blanks; `'...'`
//!   literal; `"..."` where a backslash escapes only `"` and `\`; outside
//!   quotes a backslash escapes any character; quotes may sit inside a
//!   word; `""` is an empty argument.
//! - `environment=`: `shlex.shlex` in its non-POSIX mode, with `/.+-():`
//!   added to the word characters: a quoted token keeps its quotes, any
//!   other character is a token of its own; tokens are then read as
//!   `KEY = VALUE` followed by one separator (supervisord never checks
//!   that it is a comma), quotes stripped from the value.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    #[error("no closing quotation")]
    NoClosingQuote,
    #[error("no escaped character after a trailing backslash")]
    NoEscapedChar,
    #[error("unexpected end of key/value pairs in `{0}`")]
    Pairs(String),
}

/// `shlex.split(text)`.
pub fn split(text: &str) -> Result<Vec<String>, ShlexError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(ShlexError::NoClosingQuote),
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(ShlexError::NoClosingQuote),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err(ShlexError::NoClosingQuote),
                            Some(e @ ('"' | '\\')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                        },
                        Some(c) => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    None => return Err(ShlexError::NoEscapedChar),
                    Some(e) => cur.push(e),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// supervisord's `dict_of_key_value_pairs`: `KEY="val",KEY2=val2`.
pub fn key_value_pairs(text: &str) -> Result<BTreeMap<String, String>, ShlexError> {
    let tokens = non_posix_tokens(text)?;
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        let group = &tokens[i..(i + 3).min(tokens.len())];
        if group.len() != 3 || group[1] != "=" {
            return Err(ShlexError::Pairs(text.to_string()));
        }
        let value = group[2].trim_matches(['\'', '"']);
        out.insert(group[0].clone(), value.to_string());
        i += 4;
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_/.+-():".contains(c)
}

/// Python's `shlex.shlex(text)` tokens (non-POSIX; `#` starts a comment).
fn non_posix_tokens(text: &str) -> Result<Vec<String>, ShlexError> {
    #[derive(PartialEq)]
    enum St {
        Space,
        Word,
        Quote(char),
    }
    let mut tokens = Vec::new();
    let mut tok = String::new();
    let mut st = St::Space;
    let mut chars = text.chars().peekable();
    let skip_line = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        for c in chars.by_ref() {
            if c == '\n' {
                break;
            }
        }
    };
    while let Some(c) = chars.next() {
        match st {
            St::Space => {
                if c.is_whitespace() {
                    continue;
                } else if c == '#' {
                    skip_line(&mut chars);
                } else if is_word_char(c) {
                    tok.push(c);
                    st = St::Word;
                } else if c == '"' || c == '\'' {
                    tok.push(c);
                    st = St::Quote(c);
                } else {
                    tokens.push(c.to_string());
                }
            }
            St::Word => {
                if c.is_whitespace() {
                    tokens.push(std::mem::take(&mut tok));
                    st = St::Space;
                } else if c == '#' {
                    // Python's non-POSIX shlex skips the rest of the line
                    // and goes on with the same token.
                    skip_line(&mut chars);
                } else if is_word_char(c) || c == '"' || c == '\'' {
                    tok.push(c);
                } else {
                    tokens.push(std::mem::take(&mut tok));
                    tokens.push(c.to_string());
                    st = St::Space;
                }
            }
            St::Quote(q) => {
                tok.push(c);
                if c == q {
                    tokens.push(std::mem::take(&mut tok));
                    st = St::Space;
                }
            }
        }
    }
    match st {
        St::Quote(_) => return Err(ShlexError::NoClosingQuote),
        St::Word => tokens.push(tok),
        St::Space => {}
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_split_as_python_does() {
        let cases: &[(&str, &[&str])] = &[
            (
                "/usr/bin/python3 -m http.server 8000",
                &["/usr/bin/python3", "-m", "http.server", "8000"],
            ),
            (
                "sh -c 'echo $HOME; sleep 1'",
                &["sh", "-c", "echo $HOME; sleep 1"],
            ),
            ("echo \"a \\\"b\\\" \\n\"", &["echo", "a \"b\" \\n"]),
            ("echo a\\ b", &["echo", "a b"]),
            ("echo a\"b c\"d", &["echo", "ab cd"]),
            ("echo \"\" ''", &["echo", "", ""]),
            ("  spaced   out  ", &["spaced", "out"]),
        ];
        for (text, want) in cases {
            assert_eq!(split(text).unwrap(), *want, "{text}");
        }
        assert_eq!(split("echo 'open"), Err(ShlexError::NoClosingQuote));
        assert_eq!(split("echo \\"), Err(ShlexError::NoEscapedChar));
    }

    #[test]
    fn environment_pairs_as_supervisord_reads_them() {
        let pairs = |t: &str| key_value_pairs(t).map(|m| m.into_iter().collect::<Vec<_>>());
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            pairs("KEY=\"val\",KEY2=val2").unwrap(),
            vec![kv("KEY", "val"), kv("KEY2", "val2")]
        );
        assert_eq!(
            pairs("PATH=\"/usr/bin:/bin\",\n  HOME=/home/app, LANG=\"C.UTF-8\"").unwrap(),
            vec![
                kv("HOME", "/home/app"),
                kv("LANG", "C.UTF-8"),
                kv("PATH", "/usr/bin:/bin")
            ]
        );
        assert_eq!(
            pairs("A='x, y',B=1.5,C=-3,D=\"\"").unwrap(),
            vec![kv("A", "x, y"), kv("B", "1.5"), kv("C", "-3"), kv("D", "")]
        );
        assert_eq!(pairs("").unwrap(), vec![]);
        // An unquoted value with other characters breaks the pairs, as in
        // supervisord.
        assert!(pairs("A=b@c").is_err());
        assert!(pairs("A=").is_err());
        assert!(pairs("A=\"open").is_err());
    }
}
