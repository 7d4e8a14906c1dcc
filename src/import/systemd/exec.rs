//! `ExecStart=` and friends (systemd.service(5), "Command lines"), read
//! as systemd reads them, then written as a drover argv.
//!
//! Reading: words split at whitespace; `"..."` and `'...'` quote anywhere
//! in a word; C escapes (`\n`, `\t`, `\s`, `\x41`, `\101`, `\u00e9`, ...)
//! inside and outside quotes, an unknown escape kept as written (systemd
//! warns and does the same); a lone `;` separates commands and `\;` is a
//! literal `;`. The first word may carry the prefixes `-` (failure
//! ignored), `@` (the second word is argv[0]), `:` (no variable
//! expansion), `+` and `!`/`!!` (privileges). `%` specifiers are resolved
//! in every word.
//!
//! Writing ([`to_argv`]): systemd expands variables when it starts the
//! command. `${NAME}` anywhere in a word is the value as one piece, and
//! stays `${NAME}` for drover (which expands the same way from the same
//! `env`) when the unit sets NAME or every process inherits it; `$NAME`
//! alone as a word is the value split into words, which is done here, at
//! import time, from the unit's environment. A variable nothing sets
//! expands to nothing, as in systemd, with a note. Literal `${` becomes
//! drover's `$${`.

use super::specifiers::{self, Context};
use std::collections::BTreeMap;

/// The credentials a command runs with (its prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// No prefix: `User=`/`Group=` apply.
    AsUser,
    /// `+`: full privileges, as root, no sandboxing.
    Full,
    /// `!`: sandboxed, but User=/Group= are not applied (the program drops
    /// privileges itself).
    NoSetuid,
    /// `!!`: as `!` where the kernel lacks ambient capabilities.
    AmbientFallback,
}

/// One command of an `Exec*=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// `-`: a failure exit is treated as success.
    pub ignore_failure: bool,
    /// `@`: argv[0] differs from the program path.
    pub argv0: Option<String>,
    /// `:`: `$VAR` is not expanded.
    pub no_env_expand: bool,
    pub privilege: Privilege,
    /// The program: an absolute path or a name looked up in PATH.
    pub path: String,
    /// The arguments after argv[0], specifiers resolved, variables not yet
    /// expanded.
    pub args: Vec<String>,
}

/// Why a command line cannot be read (systemd ignores such a line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("unbalanced quoting")]
    Unbalanced,
    #[error("empty command line")]
    Empty,
    #[error("the program `{0}` is neither an absolute path nor a plain name")]
    RelativePath(String),
    #[error(transparent)]
    Specifier(#[from] specifiers::SpecifierError),
}

/// Parses an `Exec*=` value into its commands (several only when `;`
/// separates them). `notes` gets unknown escapes and values taken from
/// the importing host.
pub fn parse(
    value: &str,
    ctx: &Context,
    notes: &mut Vec<String>,
) -> Result<Vec<Command>, ExecError> {
    let mut commands = Vec::new();
    let mut p = Cursor::new(value);
    loop {
        p.skip_space();
        if p.at_end() {
            break;
        }
        if p.lone_semicolon() {
            continue;
        }
        let first = p.word(Unescape::C, notes)?.ok_or(ExecError::Empty)?;
        let (mut cmd, rest) = prefixes(&first);
        if rest.is_empty() {
            return Err(ExecError::Empty);
        }
        let path = specifiers::resolve(rest, ctx, notes)?;
        if path.contains('/') && !path.starts_with('/') {
            return Err(ExecError::RelativePath(path));
        }
        let mut words = Vec::new();
        loop {
            p.skip_space();
            if p.at_end() || p.lone_semicolon() {
                break;
            }
            if p.escaped_semicolon() {
                words.push(";".to_string());
                continue;
            }
            match p.word(Unescape::C, notes)? {
                Some(w) => words.push(specifiers::resolve(&w, ctx, notes)?),
                None => break,
            }
        }
        if cmd.argv0.is_some() {
            // `@`: the first word after the path is argv[0].
            if words.is_empty() {
                return Err(ExecError::Empty);
            }
            cmd.argv0 = Some(words.remove(0));
        }
        cmd.path = path;
        cmd.args = words;
        commands.push(cmd);
    }
    if commands.is_empty() {
        return Err(ExecError::Empty);
    }
    Ok(commands)
}

/// Reads the prefix characters off the first word.
fn prefixes(first: &str) -> (Command, &str) {
    let mut cmd = Command {
        ignore_failure: false,
        argv0: None,
        no_env_expand: false,
        privilege: Privilege::AsUser,
        path: String::new(),
        args: Vec::new(),
    };
    let mut rest = first;
    while let Some(c) = rest.chars().next() {
        match c {
            '-' if !cmd.ignore_failure => cmd.ignore_failure = true,
            '@' if cmd.argv0.is_none() => cmd.argv0 = Some(String::new()),
            ':' if !cmd.no_env_expand => cmd.no_env_expand = true,
            '+' if cmd.privilege == Privilege::AsUser => cmd.privilege = Privilege::Full,
            '!' if cmd.privilege == Privilege::AsUser => cmd.privilege = Privilege::NoSetuid,
            '!' if cmd.privilege == Privilege::NoSetuid => {
                cmd.privilege = Privilege::AmbientFallback
            }
            _ => break,
        }
        rest = &rest[1..];
    }
    (cmd, rest)
}

/// The environment a command's variables expand from.
pub struct Env<'a> {
    /// What the unit sets: `Environment=`, `EnvironmentFile=` (read at
    /// import time) and what the conversion adds (`RUNTIME_DIRECTORY`).
    pub unit: &'a BTreeMap<String, String>,
    /// What every drover process inherits and drover may expand
    /// (`PATH`, `HOME`, ...): kept as `${NAME}`.
    pub inherited: &'a [&'a str],
}

/// The drover argv for a command, and notes on what was decided.
pub fn to_argv(cmd: &Command, env: &Env) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut argv = vec![escape_literal(&cmd.path)];
    for arg in &cmd.args {
        if cmd.no_env_expand {
            argv.push(escape_literal(arg));
            continue;
        }
        if let Some(name) = solo_variable(arg) {
            argv.extend(split_variable(name, env, &mut notes));
            continue;
        }
        argv.push(expand_in_word(arg, env, &mut notes));
    }
    (argv, notes)
}

/// `$NAME` as a whole word (systemd: not `${` and not `$$`).
fn solo_variable(word: &str) -> Option<&str> {
    let rest = word.strip_prefix('$')?;
    (!rest.starts_with(['{', '$'])).then_some(rest)
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `$NAME` as a word: the value split at whitespace (quotes respected),
/// zero words if unset.
fn split_variable(name: &str, env: &Env, notes: &mut Vec<String>) -> Vec<String> {
    if !valid_name(name) {
        notes.push(format!(
            "`${name}` is not a valid variable name: systemd drops the word, so does the drover unit"
        ));
        return Vec::new();
    }
    if let Some(value) = env.unit.get(name) {
        let words = split_value(value);
        if !words.is_empty() {
            notes.push(format!(
                "`${name}` is split into words here, from its value at import time ({}): \
                 edit the command if the value changes",
                show_value(value)
            ));
        }
        return words.iter().map(|w| escape_literal(w)).collect();
    }
    if env.inherited.contains(&name) {
        return vec![format!("${{{name}}}")];
    }
    notes.push(unset_note(name));
    Vec::new()
}

fn show_value(value: &str) -> String {
    if value.is_empty() {
        "empty".into()
    } else {
        format!("`{value}`")
    }
}

fn unset_note(name: &str) -> String {
    let why = match name {
        "MAINPID" => " ($MAINPID exists only in ExecReload=/ExecStop=)",
        "INVOCATION_ID"
        | "MONITOR_SERVICE_RESULT"
        | "MONITOR_EXIT_CODE"
        | "LISTEN_FDS"
        | "LISTEN_PID"
        | "CREDENTIALS_DIRECTORY"
        | "JOURNAL_STREAM" => " (a variable systemd sets and drover does not)",
        _ => "",
    };
    format!("`${name}` is not set by the unit{why}: it expands to nothing, as in systemd")
}

/// systemd's in-word expansion (no flags): `${NAME}` and `$$`; anything
/// else, `$NAME` and `${NAME:-x}` included, is literal.
fn expand_in_word(word: &str, env: &Env, notes: &mut Vec<String>) -> String {
    let mut out = Out::default();
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        out.lit(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.lit("$");
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            match body.find(['}', ':']) {
                Some(end) if body.as_bytes()[end] == b'}' => {
                    let name = &body[..end];
                    rest = &body[end + 1..];
                    if let Some(v) = env.unit.get(name) {
                        out.var(name, Some(v));
                    } else if env.inherited.contains(&name) {
                        out.var(name, None);
                    } else {
                        notes.push(unset_note(name));
                    }
                }
                // `${NAME:-x}` or an unterminated `${`: literal.
                _ => {
                    out.lit("$");
                    rest = after;
                }
            }
        } else {
            out.lit("$");
            rest = after;
        }
    }
    out.lit(rest);
    out.finish()
}

/// A drover word being built from literal text and `${NAME}` references.
#[derive(Default)]
struct Out {
    s: String,
    /// Literal text not yet escaped (escaping needs whole runs: `$` then
    /// `{` from two pieces is still a `${`).
    lit: String,
}

impl Out {
    fn lit(&mut self, s: &str) {
        self.lit.push_str(s);
    }

    /// A reference; `value` is known when the unit sets it.
    fn var(&mut self, name: &str, value: Option<&String>) {
        if self.lit.ends_with('$') {
            // drover reads `$${` as a literal `${`: a literal `$` right
            // before a reference cannot be written, so the value goes in.
            if let Some(v) = value {
                self.lit.push_str(v);
                return;
            }
        }
        self.flush();
        self.s.push_str(&format!("${{{name}}}"));
    }

    fn flush(&mut self) {
        self.s.push_str(&escape_literal(&self.lit));
        self.lit.clear();
    }

    fn finish(mut self) -> String {
        self.flush();
        self.s
    }
}

/// Literal text as drover must write it: `${` is `$${`.
pub fn escape_literal(s: &str) -> String {
    s.replace("${", "$${")
}

/// A variable's value split as systemd splits `$NAME` (whitespace, quotes
/// respected and removed, a backslash takes the next character).
pub fn split_value(value: &str) -> Vec<String> {
    let mut p = Cursor::new(value);
    let mut words = Vec::new();
    let mut ignored = Vec::new();
    loop {
        p.skip_space();
        match p.word(Unescape::Plain, &mut ignored) {
            Ok(Some(w)) => words.push(w),
            Ok(None) | Err(_) => break,
        }
    }
    words
}

/// Splits a value into words the way `Environment=` is read (quotes, C
/// escapes), for the assignments of one `Environment=` line.
pub fn split_words(value: &str, notes: &mut Vec<String>) -> Result<Vec<String>, ExecError> {
    let mut p = Cursor::new(value);
    let mut words = Vec::new();
    loop {
        p.skip_space();
        match p.word(Unescape::C, notes)? {
            Some(w) => words.push(w),
            None => break,
        }
    }
    Ok(words)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unescape {
    /// C escapes (`\n`, `\x41`, ...); unknown ones kept with a note.
    C,
    /// A backslash takes the next character as is.
    Plain,
}

/// A position in the text being split.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, i: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip_space(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start_matches(is_space).len();
    }

    /// A `;` standing alone: consumed.
    fn lone_semicolon(&mut self) -> bool {
        let r = self.rest();
        if r == ";" || (r.starts_with(';') && r[1..].starts_with(is_space)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `\;` standing alone: consumed.
    fn escaped_semicolon(&mut self) -> bool {
        let r = self.rest();
        if r == "\\;" || (r.starts_with("\\;") && r[2..].starts_with(is_space)) {
            self.i += 2;
            true
        } else {
            false
        }
    }

    /// The next word, quotes removed and escapes applied; None at the end.
    fn word(
        &mut self,
        mode: Unescape,
        notes: &mut Vec<String>,
    ) -> Result<Option<String>, ExecError> {
        self.skip_space();
        if self.at_end() {
            return Ok(None);
        }
        let mut out = String::new();
        let mut quote: Option<char> = None;
        let mut chars = self.rest().char_indices().peekable();
        let start = self.i;
        let mut end = self.s.len();
        while let Some((off, c)) = chars.next() {
            match (quote, c) {
                (_, '\\') => {
                    let rest = &self.s[start + off + 1..];
                    if rest.is_empty() {
                        // A trailing backslash: systemd keeps it when relaxed.
                        out.push('\\');
                        break;
                    }
                    let consumed = match mode {
                        Unescape::Plain => {
                            let c = rest.chars().next().expect("not empty");
                            out.push(c);
                            c.len_utf8()
                        }
                        Unescape::C => match c_escape(rest) {
                            Some((ch, n)) => {
                                out.push(ch);
                                n
                            }
                            None => {
                                let c = rest.chars().next().expect("not empty");
                                notes.push(format!(
                                    "unknown escape `\\{c}` kept as written, as systemd does"
                                ));
                                out.push('\\');
                                out.push(c);
                                c.len_utf8()
                            }
                        },
                    };
                    // Skip what the escape consumed.
                    let target = off + 1 + consumed;
                    while chars.peek().is_some_and(|(o, _)| *o < target) {
                        chars.next();
                    }
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => out.push(c),
                (None, '"' | '\'') => quote = Some(c),
                (None, c) if is_space(c) => {
                    end = start + off;
                    break;
                }
                (None, c) => out.push(c),
            }
        }
        // Relaxed splitting (a variable's value) ends the word instead.
        if quote.is_some() && mode == Unescape::C {
            return Err(ExecError::Unbalanced);
        }
        self.i = end;
        Ok(Some(out))
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// One C escape after the backslash: the character and the bytes used.
fn c_escape(s: &str) -> Option<(char, usize)> {
    let mut it = s.chars();
    let c = it.next()?;
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '"' => Some('"'),
        '\'' => Some('\''),
        's' => Some(' '),
        _ => None,
    };
    if let Some(ch) = simple {
        return Some((ch, 1));
    }
    let hex = |len: usize| -> Option<(char, usize)> {
        let digits = s.get(1..1 + len)?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        (v != 0)
            .then(|| char::from_u32(v))
            .flatten()
            .map(|ch| (ch, 1 + len))
    };
    match c {
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        '0'..='7' => {
            let digits = s.get(0..3)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let v = u32::from_str_radix(digits, 8).ok()?;
            (v != 0 && v < 256)
                .then(|| char::from_u32(v))
                .flatten()
                .map(|ch| (ch, 3))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
