//! supervisord's config syntax: Python's `configparser` as supervisord
//! sets it up (`RawConfigParser` with `inline_comment_prefixes=(';','#')`
//! and `strict=False`).
//!
//! `[section]` headers; `key = value` or `key: value` (keys lower-cased);
//! full-line comments start with `#` or `;`; an inline comment needs a
//! blank before its `;` or `#` (`command=a;b` keeps the `;`); a line
//! indented deeper than its key continues the value (joined with a
//! newline; comment lines inside are skipped, blank ones kept). A
//! repeated key or section: the last value wins, sections merge.

/// One `key = value`, with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// A line that is neither a header, an option, nor a continuation:
/// configparser refuses the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Vec<Section>, SyntaxError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut cur: Option<usize> = None;
    // The option being read (index in the section) and its key's indent.
    let mut option: Option<(usize, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let raw = raw.trim_end_matches('\r');
        let stripped = raw.trim();
        if stripped.starts_with(['#', ';']) {
            continue;
        }
        let value = strip_inline_comment(raw).trim();
        let indent = raw.len() - raw.trim_start().len();
        if value.is_empty() {
            // A blank line inside a value is kept (and trailing ones
            // trimmed at the end).
            if let (Some(s), Some((o, _))) = (cur, option) {
                sections[s].entries[o].value.push('\n');
            }
            continue;
        }
        if let (Some(s), Some((o, key_indent))) = (cur, option) {
            if indent > key_indent {
                let v = &mut sections[s].entries[o].value;
                if !v.is_empty() {
                    v.push('\n');
                }
                v.push_str(value);
                continue;
            }
        }
        if let Some(rest) = value.strip_prefix('[') {
            if let Some(name) = rest.strip_suffix(']') {
                let name = name.to_string();
                cur = Some(match sections.iter().position(|s| s.name == name) {
                    Some(i) => i,
                    None => {
                        sections.push(Section {
                            name,
                            line: line_no,
                            entries: Vec::new(),
                        });
                        sections.len() - 1
                    }
                });
                option = None;
                continue;
            }
        }
        let Some(s) = cur else {
            return Err(SyntaxError {
                line: line_no,
                message: "an option before any [section] header (supervisord refuses the file)"
                    .into(),
            });
        };
        let Some(at) = value.find(['=', ':']) else {
            return Err(SyntaxError {
                line: line_no,
                message: format!("`{value}` is neither `key = value` nor a [section]"),
            });
        };
        let key = value[..at].trim().to_ascii_lowercase();
        let v = value[at + 1..].trim().to_string();
        sections[s].entries.push(Entry {
            key,
            value: v,
            line: line_no,
        });
        option = Some((sections[s].entries.len() - 1, indent));
    }
    for s in &mut sections {
        for e in &mut s.entries {
            let t = e.value.trim_end_matches('\n').len();
            e.value.truncate(t);
        }
    }
    Ok(sections)
}

/// Cuts an inline comment: `;` or `#` at the start or after a blank.
fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if (*b == b';' || *b == b'#') && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_options_comments_continuations() {
        let text = "; a comment\n[program:web]\ncommand = /usr/bin/python3 -m http.server 8000 ; port\nDirectory: /srv\nenvironment=\n    A=\"1\",\n    # inside\n    B=2\n\nuser=www;data\n[program:web]\nuser = nobody\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 1);
        let p = &s[0];
        assert_eq!(p.name, "program:web");
        assert_eq!(
            p.get("command").unwrap().value,
            "/usr/bin/python3 -m http.server 8000"
        );
        assert_eq!(p.get("directory").unwrap().value, "/srv");
        assert_eq!(p.get("environment").unwrap().value, "A=\"1\",\nB=2");
        assert_eq!(p.get("environment").unwrap().line, 5);
        // The last value wins; sections merge.
        assert_eq!(p.get("user").unwrap().value, "nobody");
        assert_eq!(p.get("user").unwrap().line, 12);
        assert!(p.entries.iter().any(|e| e.value == "www;data"));
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let e = parse("command=x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("[program:a]\njust words\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
