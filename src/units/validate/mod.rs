//! The unit file validator: one pass over the raw structs (every value
//! with its position) that builds the api object and reports, at its
//! position, everything a TOML file can get wrong: unknown fields (with
//! serde's field list and a did-you-mean), wrong types, misspelt enum
//! values, malformed durations, ports and quantities, missing fields. Then
//! it runs [`rules::check`] on the object it built, the same rules JSON
//! objects go through, and turns each problem's field path back into the
//! position it was written at.
//!
//! While it builds, the validator records where each field of the object
//! was written (its path in the object's JSON shape -> key and value
//! spans), and which paths held a mistake: a default stands in for a wrong
//! value so that the object can be built and the rest checked, and the
//! rules' problems about such a stand-in are dropped (one mistake, one
//! diagnostic).

mod jobs;
mod pod;
mod probe;
mod sets;
mod unit;

pub(crate) use unit::validate;

use super::diagnostic::{Diagnostic, Location, Source, Span};
use super::rules::{self, Part, Problem, Target};
use super::serde_names;
use super::spanned::{Found, Map, Shape, Table, Val};
use super::suggest;
use crate::api::duration::parse_duration;
use crate::api::{Dur, Labels};
use std::collections::HashMap;

/// Names users bring from systemd, supervisord, docker or Kubernetes,
/// with drover's field for them (used when edit distance finds nothing).
const ALIASES: &[(&str, &str)] = &[
    ("cwd", "working_dir"),
    ("workdir", "working_dir"),
    ("working_directory", "working_dir"),
    ("directory", "working_dir"),
    ("environment", "env"),
    ("args", "command"),
    ("argv", "command"),
    ("cmd", "command"),
    ("exec_start", "command"),
    ("restart", "restart_policy"),
    ("grace_period", "termination_grace_period"),
    ("node_labels", "node_selector"),
    ("port", "ports"),
    ("process", "processes"),
    ("containers", "processes"),
    ("matchers", "match_expressions"),
    ("delay", "initial_delay"),
    ("interval", "period"),
    ("http", "http_get"),
    ("tcp", "tcp_socket"),
];

/// Where a field of the object was written.
#[derive(Clone, Copy, Debug, Default)]
struct Spans {
    key: Option<Span>,
    value: Option<Span>,
}

/// Reads one file.
pub(crate) struct Validator<'a> {
    src: &'a Source<'a>,
    diags: Vec<Diagnostic>,
    /// Path in the object's JSON shape -> where it was written.
    index: HashMap<String, Spans>,
    /// Paths that held a mistake (a default stands in for them).
    failed: Vec<String>,
}

/// A table being read.
pub(crate) struct Tab<'t, T> {
    pub t: &'t Table<T>,
    /// Its path in the object's JSON shape (`""` at the top of the file).
    pub path: String,
    /// Its header, opening brace or key: where "missing field" points.
    pub at: Span,
}

impl<'t, T> Tab<'t, T> {
    pub fn v(&self) -> &'t T {
        &self.t.value
    }

    /// "at the top of the file" or "in spec.template".
    pub fn place(&self) -> String {
        if self.path.is_empty() {
            "at the top of the file".into()
        } else {
            format!("in {}", self.path)
        }
    }

    /// The field `name` of this table, given as `&self.v().name`.
    pub fn field<S>(&self, name: &'static str, val: &'t Option<Val<S>>) -> Field<'t, S> {
        Field {
            path: rules::join(&self.path, name),
            key: name.to_string(),
            key_span: self.t.key(name).and_then(|k| k.span),
            val: val.as_ref(),
            table_at: self.at,
            place: self.place(),
            element: false,
        }
    }
}

/// A field (or an array element) about to be read.
pub(crate) struct Field<'t, S> {
    /// In the object's JSON shape: `spec.template.processes[0].command`.
    pub path: String,
    /// As written: `command` (an element: its array's key).
    pub key: String,
    pub key_span: Option<Span>,
    pub val: Option<&'t Val<S>>,
    /// The table it belongs to, for "missing field".
    table_at: Span,
    place: String,
    /// An element of an array, not a field of a table.
    element: bool,
}

impl<S> Field<'_, S> {
    /// Where the value is; its key, or its table, when it has none.
    pub fn value_span(&self) -> Span {
        self.val
            .and_then(|v| v.span)
            .or(self.key_span)
            .unwrap_or(self.table_at)
    }

    pub fn is_set(&self) -> bool {
        self.val.is_some()
    }

    /// The same field, recorded under another path (`name` at the top of
    /// a file is the object's `metadata.name`).
    pub fn at_path(mut self, path: &str) -> Self {
        self.path = path.to_string();
        self
    }
}

/// The elements `items` of the array field `f`, each as a field `path[i]`.
pub(crate) fn items_of<'t, S, E>(f: &Field<'t, S>, items: &'t [Val<E>]) -> Vec<Field<'t, E>> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| Field {
            path: format!("{}[{i}]", f.path),
            key: f.key.clone(),
            key_span: v.span,
            val: Some(v),
            table_at: f.value_span(),
            place: format!("in {}", f.path),
            element: true,
        })
        .collect()
}

/// The entries of the map field `f`, each as a field `path.KEY`.
pub(crate) fn entries_of<'t, S, E>(f: &Field<'t, S>, map: &'t Map<E>) -> Vec<Field<'t, E>> {
    map.0
        .iter()
        .map(|(key, val)| Field {
            path: rules::join(&f.path, &key.name),
            key: key.name.clone(),
            key_span: key.span,
            val: Some(val),
            table_at: f.value_span(),
            place: format!("in {}", f.path),
            element: false,
        })
        .collect()
}

impl<'a> Validator<'a> {
    fn new(src: &'a Source<'a>) -> Validator<'a> {
        Validator {
            src,
            diags: Vec::new(),
            index: HashMap::new(),
            failed: Vec::new(),
        }
    }

    pub fn loc(&self, span: Span) -> Location {
        self.src.locate(span)
    }

    /// A new diagnostic at `span`, not yet recorded.
    pub fn diag(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.loc(span), message)
    }

    /// Records a mistake in the value at `path`.
    pub fn fail(&mut self, path: &str, d: Diagnostic) {
        self.diags.push(d);
        self.failed.push(path.to_string());
    }

    /// The source text of a span (a value as the user wrote it).
    pub fn raw(&self, span: Span) -> &'a str {
        self.src.text.get(span.start..span.end).unwrap_or("")
    }

    fn mark<S>(&mut self, f: &Field<S>) {
        self.index.insert(
            f.path.clone(),
            Spans {
                key: f.key_span,
                value: Some(f.value_span()),
            },
        );
    }

    /// Reports the keys `t` does not have, with `t`'s fields as what was
    /// expected and a suggestion: `hint` first (a field that belongs
    /// elsewhere), then an alias, then the closest name.
    pub fn unknown_fields<T>(&mut self, t: &Tab<T>, hint: &dyn Fn(&str) -> Option<String>) {
        let known = t.t.fields;
        for (key, value) in &t.t.unknown {
            let name = key.name.as_str();
            let help = hint(name)
                .or_else(|| {
                    ALIASES
                        .iter()
                        .find(|(alias, target)| *alias == name && known.contains(target))
                        .map(|(_, target)| format!("did you mean `{target}`?"))
                })
                .or_else(|| suggest::closest(name, known).map(|c| format!("did you mean `{c}`?")));
            let span = key.span.or(value.span).unwrap_or(t.at);
            let mut d = self
                .diag(span, format!("unknown field `{name}`"))
                .with_label(format!("expected one of: {}", known.join(", ")));
            if let Some(help) = help {
                d = d.with_help(help);
            }
            self.diags.push(d);
        }
    }

    /// The field, or a "missing field" diagnostic at its table.
    pub fn require<'t, S>(
        &mut self,
        f: Field<'t, S>,
        help: Option<String>,
    ) -> Option<Field<'t, S>> {
        if f.is_set() {
            return Some(f);
        }
        let mut d = self
            .diag(f.table_at, format!("missing field `{}`", f.key))
            .with_label(format!("required {}", f.place));
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.fail(&f.path.clone(), d);
        None
    }

    /// The value if it has the shape `S`; a diagnostic ("expected a
    /// string, found an integer") if not.
    pub fn get<'t, S: Shape>(&mut self, f: &Field<'t, S>) -> Option<&'t S> {
        self.get_as(f, S::EXPECTED)
    }

    /// [`get`](Self::get), saying what was expected in the user's terms.
    pub fn get_as<'t, S>(&mut self, f: &Field<'t, S>, expected: &str) -> Option<&'t S> {
        let v = f.val?;
        self.mark(f);
        match &v.value {
            Ok(s) => Some(s),
            Err(found) => {
                self.wrong_type(f, *found, expected);
                None
            }
        }
    }

    fn wrong_type<S>(&mut self, f: &Field<S>, found: Found, expected: &str) {
        let span = f.value_span();
        let mut d = self.diag(
            span,
            format!("expected {expected}, found {}", found.describe()),
        );
        if expected == "a string" && found.is_scalar() {
            let raw = self.raw(span);
            d = d.with_help(if f.element {
                format!("quote it: \"{raw}\"")
            } else {
                format!("quote it: {} = \"{raw}\"", f.key)
            });
        }
        if expected == "an array of tables" && found == Found::Table && !f.element {
            d = d.with_help(format!(
                "write [[{path}]] with double brackets: each entry is one element of an array",
                path = self.table_path(f)
            ));
        }
        self.fail(&f.path.clone(), d);
    }

    /// The dotted path of a table's header (`spec.processes` for
    /// `[spec.processes]`), or the key.
    fn table_path<S>(&self, f: &Field<S>) -> String {
        let raw = self.raw(f.value_span());
        let header = raw.lines().next().unwrap_or("").trim();
        match header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(h) if !h.starts_with('[') => h.trim().to_string(),
            _ => f.key.clone(),
        }
    }

    pub fn string(&mut self, f: &Field<String>) -> Option<String> {
        self.get(f).cloned()
    }

    /// An integer of at least 0 that fits in a u32.
    pub fn count(&mut self, f: &Field<i64>) -> Option<u32> {
        let n = *self.get(f)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let what = "a non-negative integer";
                let d = self
                    .diag(
                        f.value_span(),
                        format!("`{}` must be {what}, found {n}", f.key),
                    )
                    .with_label(format!("expected {what}"));
                self.fail(&f.path, d);
                None
            }
        }
    }

    pub fn boolean(&mut self, f: &Field<bool>) -> Option<bool> {
        let v = f.val?;
        self.mark(f);
        match &v.value {
            Ok(b) => Some(*b),
            Err(found) => {
                let span = f.value_span();
                let mut d = self.diag(
                    span,
                    format!("expected a boolean, found {}", found.describe()),
                );
                let raw = self.raw(span).trim_matches(['"', '\'']);
                if *found == Found::String && matches!(raw, "true" | "false") {
                    d = d.with_help(format!("drop the quotes: {} = {raw}", f.key));
                }
                self.fail(&f.path, d);
                None
            }
        }
    }

    /// A duration string: "500ms", "10s", "5m", "1h30m".
    pub fn duration(&mut self, f: &Field<String>) -> Option<Dur> {
        let v = f.val?;
        self.mark(f);
        let span = f.value_span();
        match &v.value {
            Ok(s) => match parse_duration(s) {
                Ok(d) => Some(Dur(d)),
                Err(e) => {
                    let d = self
                        .diag(span, format!("invalid duration \"{s}\""))
                        .with_label(e.to_string());
                    self.fail(&f.path, d);
                    None
                }
            },
            Err(Found::Integer) => {
                let d = self
                    .diag(
                        span,
                        "expected a duration string such as \"10s\", found an integer",
                    )
                    .with_help(format!("write {} = \"{}s\"", f.key, self.raw(span)));
                self.fail(&f.path, d);
                None
            }
            Err(found) => {
                self.wrong_type(f, *found, "a duration string such as \"10s\"");
                None
            }
        }
    }

    /// A string naming a variant of the enum `E` (its serde names), with a
    /// suggestion when it does not.
    pub fn variant<E: serde::de::DeserializeOwned>(
        &mut self,
        f: &Field<String>,
        what: &str,
    ) -> Option<E> {
        let s = self.get(f)?;
        if let Some(e) = serde_names::parse_variant::<E>(s) {
            return Some(e);
        }
        let options = serde_names::variants_of::<E>();
        let mut d = self
            .diag(f.value_span(), format!("unknown {what} \"{s}\""))
            .with_label(format!("expected one of: {}", options.join(", ")));
        if let Some(c) = suggest::closest(s, options) {
            d = d.with_help(format!("did you mean \"{c}\"?"));
        }
        self.fail(&f.path, d);
        None
    }

    /// A table of strings, each entry recorded at `path.KEY`; if one is
    /// not a string, the table is not what was written (`path` marked).
    pub fn string_map(&mut self, f: &Field<Map<String>>) -> Option<Vec<(String, String)>> {
        let map = self.get(f)?;
        let mut out = Vec::new();
        for entry in entries_of(f, map) {
            match self.string(&entry) {
                Some(value) => out.push((entry.key, value)),
                None => self.poison(&f.path),
            }
        }
        Some(out)
    }

    pub fn labels(&mut self, f: &Field<Map<String>>) -> Option<Labels> {
        Some(self.string_map(f)?.into_iter().collect())
    }

    /// The elements of an array, each as a field `path[i]`.
    pub fn elements<'t, S: Shape>(
        &mut self,
        f: &Field<'t, Vec<Val<S>>>,
        expected: &str,
    ) -> Option<Vec<Field<'t, S>>> {
        let items = self.get_as(f, expected)?;
        Some(items_of(f, items))
    }

    /// An array of strings; `None` if any element is not one.
    pub fn strings(&mut self, f: &Field<Vec<Val<String>>>) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for e in self.elements(f, "an array of strings")? {
            match self.string(&e) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub fn table<'t, T: serde::de::DeserializeOwned>(
        &mut self,
        f: &Field<'t, Table<T>>,
    ) -> Option<Tab<'t, T>> {
        let t = self.get(f)?;
        Some(Tab {
            t,
            path: f.path.clone(),
            at: f.value_span(),
        })
    }

    /// The tables of an array of tables (or of an array of inline tables).
    pub fn tables<'t, T: serde::de::DeserializeOwned>(
        &mut self,
        f: &Field<'t, Vec<Val<Table<T>>>>,
    ) -> Option<Vec<Tab<'t, T>>> {
        let mut out = Vec::new();
        for e in self.elements(f, "an array of tables")? {
            if let Some(t) = self.table(&e) {
                out.push(t);
            }
        }
        Some(out)
    }

    /// Records that the value at `path` is not what was written (a part
    /// of it held a mistake, reported there).
    pub fn poison(&mut self, path: &str) {
        self.failed.push(path.to_string());
    }

    /// Whether `path` or one of its parents held a mistake.
    fn is_failed(&self, path: &str) -> bool {
        self.failed.iter().any(|f| {
            path == f
                || (path.starts_with(f.as_str())
                    && matches!(path.as_bytes().get(f.len()), Some(b'.' | b'[')))
        })
    }

    /// Where a rule's target was written: the field itself, else the
    /// nearest enclosing table that was.
    fn resolve(&self, target: &Target) -> Span {
        let mut path = target.path.as_str();
        let mut part = target.part;
        loop {
            if let Some(s) = self.index.get(path) {
                let span = match part {
                    Part::Key => s.key.or(s.value),
                    Part::Value => s.value.or(s.key),
                    Part::Inner(start, end) => s.value.map(|v| self.inner_span(v, start, end)),
                };
                if let Some(span) = span {
                    return span;
                }
            }
            match path.rfind(['.', '[']) {
                Some(i) => {
                    path = &path[..i];
                    part = Part::Value;
                }
                None => return Span::new(0, 0),
            }
        }
    }

    /// Bytes `start..end` of a string's content, when the string is
    /// written without escapes; else the whole value.
    fn inner_span(&self, value: Span, start: usize, end: usize) -> Span {
        let raw = self.raw(value);
        let plain = raw.len() >= 2
            && !raw.starts_with("\"\"\"")
            && !raw.starts_with("'''")
            && ((raw.starts_with('"') && raw.ends_with('"') && !raw.contains('\\'))
                || (raw.starts_with('\'') && raw.ends_with('\'')));
        if plain && end <= raw.len() - 2 {
            Span::new(value.start + 1 + start, value.start + 1 + end)
        } else {
            value
        }
    }

    /// A rule's problem as a diagnostic at the position of its field;
    /// `None` when the field held a mistake already reported.
    fn place(&self, p: Problem) -> Option<Diagnostic> {
        if self.is_failed(&p.at.path) || p.related.iter().any(|(t, _)| self.is_failed(&t.path)) {
            return None;
        }
        let mut d = self.diag(self.resolve(&p.at), p.message);
        if let Some(label) = p.label {
            d = d.with_label(label);
        }
        if let Some(help) = p.help {
            d = d.with_help(help);
        }
        for (t, label) in &p.related {
            d = d.with_secondary(self.loc(self.resolve(t)), label.clone());
        }
        Some(d)
    }
}
