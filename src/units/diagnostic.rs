//! Diagnostics: one error in one unit file, with its position, the source
//! line, what was expected and a computed suggestion, rendered as in
//! style.md §6:
//!
//! ```text
//! error: unknown field `replica`
//!   --> units/web.toml:9:1
//!    |
//!  9 | replica = 3
//!    | ^^^^^^^ expected one of: replicas, selector, template
//!    = help: did you mean `replicas`?
//! 1 error in 1 file; nothing was applied
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// A byte range in a unit file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

/// A unit file's text with a line index, to turn byte offsets into
/// 1-based line and column (columns count characters, not bytes).
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// The location of `span`: line, column, the text of its first line and
    /// how many characters of that line it covers (at least 1).
    pub fn locate(&self, span: Span) -> Location {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_idx = match self.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx];
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let line_text = self.text[line_start..line_end].trim_end_matches('\r');
        let col = self.text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        let width = self.text[start..end.max(start)]
            .trim_end_matches(['\r', '\n'])
            .chars()
            .count()
            .max(1);
        Location {
            path: self.path.to_path_buf(),
            line: line_idx + 1,
            col,
            width,
            source_line: Some(line_text.to_string()),
        }
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A position in a file, with what is needed to draw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    /// How many characters the `^^^` marker covers.
    pub width: usize,
    /// The text of line `line`, to draw under the header.
    pub source_line: Option<String>,
}

/// Another place an error refers to ("first defined here", the template's
/// labels a selector does not match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secondary {
    pub location: Location,
    pub label: String,
}

/// One error in one unit file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole (unreadable).
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    /// The text under the `^^^`, e.g. "expected one of: replicas, selector, template".
    pub label: Option<String>,
    /// The suggestion, e.g. "did you mean `replicas`?".
    pub help: Option<String>,
    /// How many characters the `^^^` marker covers.
    pub width: usize,
    /// The source line at `line`, to render the diagnostic without the file.
    pub source_line: Option<String>,
    /// Other positions the error refers to.
    pub secondary: Vec<Secondary>,
}

impl Diagnostic {
    /// An error at a location.
    pub fn at(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: location.path,
            line: location.line,
            col: location.col,
            message: message.into(),
            label: None,
            help: None,
            width: location.width,
            source_line: location.source_line,
            secondary: Vec::new(),
        }
    }

    /// An error about a whole file (it cannot be read, ...).
    pub fn file(path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(
            Location {
                path: path.to_path_buf(),
                line: 0,
                col: 0,
                width: 0,
                source_line: None,
            },
            message,
        )
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_secondary(mut self, location: Location, label: impl Into<String>) -> Diagnostic {
        self.secondary.push(Secondary {
            location,
            label: label.into(),
        });
        self
    }

    fn location(&self) -> Location {
        Location {
            path: self.path.clone(),
            line: self.line,
            col: self.col,
            width: self.width,
            source_line: self.source_line.clone(),
        }
    }

    /// `units/web.toml:9:1: unknown field `replica` (did you mean `replicas`?)`:
    /// for one-line error reports (the daemon's API, logs).
    pub fn one_line(&self) -> String {
        let mut out = format!("{}", self.path.display());
        if self.line > 0 {
            out.push_str(&format!(":{}:{}", self.line, self.col));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        if let Some(label) = &self.label {
            out.push_str(&format!(" ({label})"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("; help: {help}"));
        }
        out
    }
}

fn position(l: &Location) -> String {
    if l.line == 0 {
        l.path.display().to_string()
    } else {
        format!("{}:{}:{}", l.path.display(), l.line, l.col)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let primary = self.location();
        let mut spots: Vec<(&Location, Option<&str>)> = vec![(&primary, self.label.as_deref())];
        for s in &self.secondary {
            spots.push((&s.location, Some(s.label.as_str())));
        }
        let digits = spots
            .iter()
            .map(|(l, _)| l.line.to_string().len())
            .max()
            .unwrap_or(1);
        let arrow = " ".repeat(digits + 1);
        let pad = " ".repeat(digits + 2);

        writeln!(f, "error: {}", self.message)?;
        if self.secondary.is_empty() {
            write!(f, "{arrow}--> {}", position(&primary))?;
        } else {
            let parts: Vec<String> = spots
                .iter()
                .map(|(l, label)| match label {
                    Some(label) => format!("{}   ({label})", position(l)),
                    None => position(l),
                })
                .collect();
            write!(f, "{arrow}--> {}", parts.join("   "))?;
        }
        let drawn: Vec<_> = spots
            .iter()
            .filter(|(l, _)| l.line > 0 && l.source_line.is_some())
            .collect();
        if !drawn.is_empty() {
            write!(f, "\n{pad}|")?;
        }
        for (l, label) in drawn {
            let (text, col, width) = window(l.source_line.as_deref().unwrap_or(""), l.col, l.width);
            let indent: String = text
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n {:>digits$} | {text}", l.line)?;
            write!(f, "\n{pad}| {indent}{}", "^".repeat(width.max(1)))?;
            if let Some(label) = label {
                write!(f, " {label}")?;
            }
        }
        if let Some(help) = &self.help {
            for (i, line) in help.lines().enumerate() {
                if i == 0 {
                    write!(f, "\n{pad}= help: {line}")?;
                } else {
                    write!(f, "\n{pad}        {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// The longest source line drawn whole; a longer one (a 200 KiB argument)
/// is cut around the marker.
const MAX_SHOWN: usize = 120;

/// `line` cut to at most [`MAX_SHOWN`] characters around column `col`
/// ("..." where it was cut), with the column and width of the marker in
/// what is shown.
fn window(line: &str, col: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SHOWN {
        return (line.to_string(), col, width);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(MAX_SHOWN / 3);
    let end = (start + MAX_SHOWN).min(chars.len());
    let mut shown = String::new();
    if start > 0 {
        shown.push_str("...");
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push_str("...");
    }
    let col = at - start + 1 + if start > 0 { 3 } else { 0 };
    (shown, col, width.min(end - at).max(1))
}

/// Every error found while loading units: nothing is applied when there is
/// one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub diagnostics: Vec<Diagnostic>,
    /// How many files the errors are in.
    pub files: usize,
}

impl Diagnostics {
    /// Collects diagnostics and counts the distinct files they name.
    pub fn new(diagnostics: Vec<Diagnostic>) -> Diagnostics {
        let mut paths: Vec<&Path> = diagnostics.iter().map(|d| d.path.as_path()).collect();
        paths.sort();
        paths.dedup();
        let files = paths.len();
        Diagnostics { diagnostics, files }
    }

    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// "2 errors in 1 file; nothing was applied".
    pub fn summary(&self) -> String {
        let n = self.diagnostics.len();
        format!(
            "{n} error{} in {} file{}; nothing was applied",
            if n == 1 { "" } else { "s" },
            self.files,
            if self.files == 1 { "" } else { "s" },
        )
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        f.write_str(&self.summary())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_marker() {
        let short = "replica = 3";
        assert_eq!(window(short, 1, 7), (short.to_string(), 1, 7));
        let long = format!("command = [\"echo\", \"{}\"]", "x".repeat(1000));
        let (shown, col, width) = window(&long, 20, 1002);
        assert_eq!(shown.chars().count(), MAX_SHOWN + 3);
        assert!(shown.starts_with("command = [\"echo\", \"xx") && shown.ends_with("x..."));
        assert_eq!((col, width), (20, MAX_SHOWN - 19));
        let (shown, col, _) = window(&long, 900, 5);
        assert!(shown.starts_with("...x"));
        assert_eq!(shown.chars().nth(col - 1), Some('x'));
    }
}
