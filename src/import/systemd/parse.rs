//! The unit file syntax (systemd.syntax(7)): `[Section]` headers,
//! `Key=Value` assignments, `#` and `;` comment lines, and lines continued
//! by a trailing backslash (replaced by a space; comment lines inside a
//! continuation are skipped, as systemd does).
//!
//! Parsing keeps every assignment in file order with its line; what a
//! repeated key means (the last one wins, or a list that an empty
//! assignment resets) is the converter's business, key by key. Lines
//! systemd itself would ignore (no `=`, outside any section) come back as
//! problems with their line, never silently.

/// One `Key=Value` line (or continued lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// Leading and trailing whitespace removed.
    pub value: String,
    /// Where the assignment starts (1-based).
    pub line: usize,
}

/// All assignments of one section name, in file order (systemd merges
/// repeated `[Service]` headers the same way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitFile {
    pub sections: Vec<Section>,
}

impl UnitFile {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The entries of a section; none if it is absent.
    pub fn entries(&self, name: &str) -> &[Entry] {
        self.section(name).map_or(&[], |s| &s.entries)
    }

    /// The last assignment of `key` in `section` (scalar settings: the
    /// last one wins; an empty value means "back to the default").
    pub fn last(&self, section: &str, key: &str) -> Option<&Entry> {
        self.entries(section).iter().rev().find(|e| e.key == key)
    }
}

/// A line systemd would ignore, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Parses a unit file; never fails (systemd ignores what it cannot read,
/// with a warning: so do we, returning the problems).
pub fn parse(text: &str) -> (UnitFile, Vec<Problem>) {
    let mut unit = UnitFile::default();
    let mut problems = Vec::new();
    let mut current: Option<usize> = None;
    for (line, logical) in logical_lines(text) {
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                problems.push(Problem {
                    line,
                    message: format!("invalid section header `{trimmed}`; ignored"),
                });
                current = None;
                continue;
            };
            current = Some(match unit.sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    unit.sections.push(Section {
                        name: name.to_string(),
                        line,
                        entries: Vec::new(),
                    });
                    unit.sections.len() - 1
                }
            });
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            problems.push(Problem {
                line,
                message: format!("`{trimmed}` is not an assignment (no '='); systemd ignores it"),
            });
            continue;
        };
        let Some(i) = current else {
            problems.push(Problem {
                line,
                message: format!(
                    "`{}` is outside any section; systemd ignores it",
                    key.trim()
                ),
            });
            continue;
        };
        unit.sections[i].entries.push(Entry {
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            line,
        });
    }
    (unit, problems)
}

/// Physical lines joined at trailing backslashes, each with the line it
/// starts on. A continued line's backslash becomes a space; comment lines
/// in the middle of a continuation are skipped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let raw = raw.trim_end_matches('\r');
        if let Some((start, mut acc)) = pending.take() {
            let t = raw.trim_start();
            if t.starts_with(['#', ';']) {
                pending = Some((start, acc));
                continue;
            }
            match continued(raw) {
                Some(head) => {
                    acc.push_str(head);
                    acc.push(' ');
                    pending = Some((start, acc));
                }
                None => {
                    acc.push_str(raw);
                    out.push((start, acc));
                }
            }
            continue;
        }
        let t = raw.trim_start();
        if t.starts_with(['#', ';']) {
            continue;
        }
        match continued(raw) {
            Some(head) => pending = Some((line_no, format!("{head} "))),
            None => out.push((line_no, raw.to_string())),
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// The line without its continuation backslash, if it ends in an odd
/// number of them (`\\` at the end is an escaped backslash, not a
/// continuation).
fn continued(raw: &str) -> Option<&str> {
    let t = raw.trim_end();
    let n = t.len() - t.trim_end_matches('\\').len();
    (n % 2 == 1).then(|| &t[..t.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, String, usize)> {
        let (u, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        u.sections
            .iter()
            .flat_map(|s| {
                s.entries
                    .iter()
                    .map(|e| (s.name.clone(), e.key.clone(), e.value.clone(), e.line))
            })
            .collect()
    }

    fn e(s: &str, k: &str, v: &str, l: usize) -> (String, String, String, usize) {
        (s.into(), k.into(), v.into(), l)
    }

    #[test]
    fn sections_keys_comments() {
        let text = "# comment\n[Unit]\nDescription = A thing \n; other comment\n\n[Service]\nExecStart=/bin/x -y\nEnvironment=A=1\nEnvironment=\n";
        assert_eq!(
            entries(text),
            vec![
                e("Unit", "Description", "A thing", 3),
                e("Service", "ExecStart", "/bin/x -y", 7),
                e("Service", "Environment", "A=1", 8),
                e("Service", "Environment", "", 9),
            ]
        );
    }

    #[test]
    fn continuation_lines_join_with_a_space_and_skip_comments() {
        let text =
            "[Service]\nExecStart=/bin/prog \\\n  --one \\\n# a comment inside\n  --two\nUser=x\n";
        assert_eq!(
            entries(text),
            vec![
                e("Service", "ExecStart", "/bin/prog    --one    --two", 2),
                e("Service", "User", "x", 6),
            ]
        );
    }

    #[test]
    fn an_escaped_backslash_does_not_continue() {
        let text = "[Service]\nExecStart=/bin/echo a\\\\\nUser=x\n";
        assert_eq!(
            entries(text),
            vec![
                e("Service", "ExecStart", "/bin/echo a\\\\", 2),
                e("Service", "User", "x", 3),
            ]
        );
    }

    #[test]
    fn repeated_sections_merge() {
        let text = "[Service]\nUser=a\n[Unit]\nAfter=x\n[Service]\nUser=b\n";
        let (u, _) = parse(text);
        assert_eq!(u.sections.len(), 2);
        assert_eq!(u.last("Service", "User").unwrap().value, "b");
        assert_eq!(u.last("Service", "User").unwrap().line, 6);
    }

    #[test]
    fn lines_systemd_ignores_are_reported() {
        let text = "User=early\n[Service]\nnonsense\n[Broken\n";
        let (_, problems) = parse(text);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![1, 3, 4]);
        assert!(problems[1].message.contains("no '='"), "{problems:?}");
    }
}
