//! Typed reading of a parsed TOML document that reports every problem with
//! its position instead of stopping at the first: the readers return
//! `None` (or a default) after recording a diagnostic, and the walk goes on.

use super::diagnostic::{Diagnostic, Location, Source, Span};
use super::{schema, suggest};
use crate::api::duration::parse_duration;
use crate::api::Dur;
use toml_edit::{Item, Table, TableLike, Value};

/// A TOML value wherever it sits: a table's item, an array element, a
/// table of an array of tables.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        }
    }

    fn table(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(Value::InlineTable(t)) => Some(t),
            Node::Value(_) => None,
            Node::Table(t) => Some(t),
        }
    }

    fn array(self) -> Option<Vec<Node<'a>>> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => Some(a.iter().map(Node::Table).collect()),
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                Some(a.iter().map(Node::Value).collect())
            }
            _ => None,
        }
    }

    fn span(self) -> Option<Span> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
        .map(Span::from)
    }

    /// "a string", "an integer", ... for "expected X, found Y".
    fn describe(self) -> &'static str {
        match self {
            Node::Item(Item::None) => "nothing",
            Node::Item(Item::Table(_)) | Node::Table(_) => "a table",
            Node::Item(Item::ArrayOfTables(_)) => "an array of tables",
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::String(_) => "a string",
                Value::Integer(_) => "an integer",
                Value::Float(_) => "a float",
                Value::Boolean(_) => "a boolean",
                Value::Datetime(_) => "a date-time",
                Value::Array(_) => "an array",
                Value::InlineTable(_) => "a table",
            },
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self.value() {
            Some(Value::String(s)) => Some(s.value().as_str()),
            _ => None,
        }
    }

    pub fn as_integer(self) -> Option<i64> {
        match self.value() {
            Some(Value::Integer(i)) => Some(*i.value()),
            _ => None,
        }
    }

    pub fn is_empty_array(self) -> bool {
        self.array().is_some_and(|a| a.is_empty())
    }

    fn is_scalar(self) -> bool {
        matches!(
            self.value(),
            Some(Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_))
        )
    }
}

/// A key and its value.
#[derive(Clone, Copy)]
pub(crate) struct Field<'a> {
    pub key: &'a str,
    pub key_span: Span,
    pub node: Node<'a>,
    /// An element of the array `key`, not the value of `key` itself.
    pub element: bool,
}

impl Field<'_> {
    /// Where the value is (a table's header line), or its key.
    pub fn value_span(&self) -> Span {
        self.node.span().unwrap_or(self.key_span)
    }
}

/// A table with its fields in file order.
pub(crate) struct Tbl<'a> {
    /// Where it sits, as users write it: `spec.template.processes[0]`.
    pub path: String,
    /// Its header line, opening brace or key: where "missing field" points.
    pub at: Span,
    pub fields: Vec<Field<'a>>,
}

impl<'a> Tbl<'a> {
    fn from_table(t: &'a dyn TableLike, path: String, at: Span) -> Tbl<'a> {
        let fields = t
            .iter()
            .filter_map(|(k, _)| t.get_key_value(k))
            .map(|(key, item)| Field {
                key: key.get(),
                key_span: key.span().map(Span::from).unwrap_or(at),
                node: Node::Item(item),
                element: false,
            })
            .collect();
        Tbl { path, at, fields }
    }

    pub fn root(t: &'a Table) -> Tbl<'a> {
        Tbl::from_table(t, String::new(), Span::new(0, 0))
    }

    pub fn get(&self, name: &str) -> Option<Field<'a>> {
        self.fields.iter().find(|f| f.key == name).copied()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `spec.template` + `labels` -> `spec.template.labels`.
    pub fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// "at the top of the file" or "in spec.template".
    pub fn place(&self) -> String {
        if self.path.is_empty() {
            "at the top of the file".into()
        } else {
            format!("in {}", self.path)
        }
    }
}

/// Walks one file, collecting diagnostics.
pub(crate) struct Walker<'a> {
    pub src: &'a Source<'a>,
    pub diags: Vec<Diagnostic>,
    /// Variables `${VAR}` may name besides the usual ones, while walking
    /// a template that provides them (`JOB_COMPLETION_INDEX`).
    pub extra_vars: Vec<String>,
}

impl<'a> Walker<'a> {
    pub fn new(src: &'a Source<'a>) -> Walker<'a> {
        Walker {
            src,
            diags: Vec::new(),
            extra_vars: Vec::new(),
        }
    }

    pub fn loc(&self, span: Span) -> Location {
        self.src.locate(span)
    }

    /// A new diagnostic at `span`, not yet recorded.
    pub fn diag(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.loc(span), message)
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// The source text of a span (a value as the user wrote it).
    pub fn raw(&self, span: Span) -> &'a str {
        self.src.text.get(span.start..span.end).unwrap_or("")
    }

    /// Reports fields that are not in `known`, with the expected list and
    /// a suggestion: `hint` first (a field that belongs elsewhere), then
    /// the schema's aliases, then the closest name by edit distance.
    pub fn check_fields(
        &mut self,
        t: &Tbl<'a>,
        known: &[&str],
        hint: &dyn Fn(&str) -> Option<String>,
    ) {
        for f in &t.fields {
            if known.contains(&f.key) {
                continue;
            }
            let help = hint(f.key)
                .or_else(|| {
                    schema::ALIASES
                        .iter()
                        .find(|(alias, target)| *alias == f.key && known.contains(target))
                        .map(|(_, target)| format!("did you mean `{target}`?"))
                })
                .or_else(|| suggest::closest(f.key, known).map(|c| format!("did you mean `{c}`?")));
            let mut d = self
                .diag(f.key_span, format!("unknown field `{}`", f.key))
                .with_label(format!("expected one of: {}", schema::list(known)));
            if let Some(help) = help {
                d = d.with_help(help);
            }
            self.push(d);
        }
    }

    /// The field `name`, or a "missing field" diagnostic at the table.
    pub fn require(&mut self, t: &Tbl<'a>, name: &str, help: Option<String>) -> Option<Field<'a>> {
        if let Some(f) = t.get(name) {
            return Some(f);
        }
        let mut d = self
            .diag(t.at, format!("missing field `{name}`"))
            .with_label(format!("required {}", t.place()));
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.push(d);
        None
    }

    /// "expected a string, found an integer" at the value.
    pub fn wrong_type(&mut self, f: Field<'a>, expected: &str) {
        let span = f.value_span();
        let mut d = self.diag(
            span,
            format!("expected {expected}, found {}", f.node.describe()),
        );
        if expected == "a string" && f.node.is_scalar() {
            let raw = self.raw(span);
            d = d.with_help(if f.element {
                format!("quote it: \"{raw}\"")
            } else {
                format!("quote it: {} = \"{raw}\"", f.key)
            });
        }
        if expected == "an array of tables" && f.node.table().is_some() && !f.element {
            d = d.with_help(format!(
                "write [[{path}]] with double brackets: each entry is one element of an array",
                path = self.table_path(f)
            ));
        }
        self.push(d);
    }

    /// The dotted path of a table's header (`spec.processes` for
    /// `[spec.processes]`), or the key.
    fn table_path(&self, f: Field<'a>) -> String {
        let raw = self.raw(f.value_span());
        let header = raw.lines().next().unwrap_or("").trim();
        match header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(h) if !h.starts_with('[') => h.trim().to_string(),
            _ => f.key.to_string(),
        }
    }

    pub fn table(&mut self, f: Field<'a>, path: String) -> Option<Tbl<'a>> {
        match f.node.table() {
            Some(t) => {
                let at = f.node.span().unwrap_or(f.key_span);
                Some(Tbl::from_table(t, path, at))
            }
            None => {
                self.wrong_type(f, "a table");
                None
            }
        }
    }

    /// The elements of an array (or array of tables), each as a field
    /// named `key[i]` so errors about it read naturally.
    pub fn array(&mut self, f: Field<'a>, expected: &str) -> Option<Vec<Field<'a>>> {
        match f.node.array() {
            Some(nodes) => Some(
                nodes
                    .into_iter()
                    .map(|node| Field {
                        key: f.key,
                        key_span: node.span().unwrap_or(f.key_span),
                        node,
                        element: true,
                    })
                    .collect(),
            ),
            None => {
                self.wrong_type(f, expected);
                None
            }
        }
    }

    /// The tables of an array of tables (or of an array of inline tables).
    pub fn tables(&mut self, f: Field<'a>, path: &str) -> Option<Vec<Tbl<'a>>> {
        let elems = self.array(f, "an array of tables")?;
        let mut out = Vec::new();
        for (i, e) in elems.into_iter().enumerate() {
            if let Some(t) = self.table(e, format!("{path}[{i}]")) {
                out.push(t);
            }
        }
        Some(out)
    }

    pub fn string(&mut self, f: Field<'a>) -> Option<String> {
        match f.node.value() {
            Some(Value::String(s)) => Some(s.value().clone()),
            _ => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    pub fn integer(&mut self, f: Field<'a>) -> Option<i64> {
        match f.node.value() {
            Some(Value::Integer(i)) => Some(*i.value()),
            _ => {
                self.wrong_type(f, "an integer");
                None
            }
        }
    }

    /// An integer of at least `min` that fits in a u32.
    pub fn count(&mut self, f: Field<'a>, min: u32) -> Option<u32> {
        let n = self.integer(f)?;
        if n < i64::from(min) || n > i64::from(u32::MAX) {
            let what = if min == 0 {
                "a non-negative integer".to_string()
            } else {
                format!("an integer of at least {min}")
            };
            let d = self
                .diag(
                    f.value_span(),
                    format!("`{}` must be {what}, found {n}", f.key),
                )
                .with_label(format!("expected {what}"));
            self.push(d);
            return None;
        }
        Some(n as u32)
    }

    pub fn boolean(&mut self, f: Field<'a>) -> Option<bool> {
        match f.node.value() {
            Some(Value::Boolean(b)) => Some(*b.value()),
            _ => {
                let mut d = self.diag(
                    f.value_span(),
                    format!("expected a boolean, found {}", f.node.describe()),
                );
                if let Some(Value::String(s)) = f.node.value() {
                    if matches!(s.value().as_str(), "true" | "false") {
                        d = d.with_help(format!("drop the quotes: {} = {}", f.key, s.value()));
                    }
                }
                self.push(d);
                None
            }
        }
    }

    /// A duration string: "500ms", "10s", "5m", "1h30m".
    pub fn duration(&mut self, f: Field<'a>) -> Option<Dur> {
        let span = f.value_span();
        match f.node.value() {
            Some(Value::String(s)) => match parse_duration(s.value()) {
                Ok(d) => Some(Dur(d)),
                Err(e) => {
                    let d = self
                        .diag(span, format!("invalid duration \"{}\"", s.value()))
                        .with_label(e.to_string());
                    self.push(d);
                    None
                }
            },
            Some(Value::Integer(i)) => {
                let d = self
                    .diag(
                        span,
                        "expected a duration string such as \"10s\", found an integer",
                    )
                    .with_help(format!("write {} = \"{}s\"", f.key, i.value()));
                self.push(d);
                None
            }
            _ => {
                self.wrong_type(f, "a duration string such as \"10s\"");
                None
            }
        }
    }

    /// A duration that must not be zero (a probe's period, a watchdog).
    pub fn positive_duration(&mut self, f: Field<'a>) -> Option<Dur> {
        let d = self.duration(f)?;
        if d.0.is_zero() {
            let diag = self
                .diag(
                    f.value_span(),
                    format!("`{}` must be longer than 0s", f.key),
                )
                .with_label("expected a duration such as \"10s\"");
            self.push(diag);
            return None;
        }
        Some(d)
    }

    /// An array of strings, each with its span.
    pub fn strings(&mut self, f: Field<'a>) -> Option<Vec<(String, Span)>> {
        let elems = self.array(f, "an array of strings")?;
        let mut out = Vec::new();
        let mut ok = true;
        for e in elems {
            match self.string(e) {
                Some(s) => out.push((s, e.value_span())),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A table of strings (`labels`, `env`, `headers`): (key, key span,
    /// value, value span) in file order.
    pub fn string_map(&mut self, f: Field<'a>, path: String) -> Option<Vec<MapEntry>> {
        let t = self.table(f, path)?;
        let mut out = Vec::new();
        let mut ok = true;
        for e in &t.fields {
            match self.string(*e) {
                Some(v) => out.push(MapEntry {
                    key: e.key.to_string(),
                    key_span: e.key_span,
                    value: v,
                    value_span: e.value_span(),
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A string that must be one of `options` (an enum), with a
    /// suggestion when it is not.
    pub fn one_of(
        &mut self,
        f: Field<'a>,
        what: &str,
        options: &[&'static str],
    ) -> Option<&'static str> {
        let s = self.string(f)?;
        if let Some(o) = options.iter().find(|o| **o == s) {
            return Some(o);
        }
        let mut d = self
            .diag(f.value_span(), format!("unknown {what} \"{s}\""))
            .with_label(format!("expected one of: {}", schema::list(options)));
        if let Some(c) = suggest::closest(&s, options) {
            d = d.with_help(format!("did you mean \"{c}\"?"));
        }
        self.push(d);
        None
    }

    /// Where inside a string value a byte range of its content is, when
    /// the string is written without escapes; else the whole value.
    pub fn inner_span(&self, value_span: Span, content: &str, start: usize, end: usize) -> Span {
        let raw = self.raw(value_span);
        for quote in ["\"", "'"] {
            if raw.len() == content.len() + 2
                && raw.starts_with(quote)
                && raw.ends_with(quote)
                && &raw[1..raw.len() - 1] == content
            {
                return Span::new(value_span.start + 1 + start, value_span.start + 1 + end);
            }
        }
        value_span
    }
}

/// One entry of a table of strings.
#[derive(Clone, Debug)]
pub(crate) struct MapEntry {
    pub key: String,
    pub key_span: Span,
    pub value: String,
    pub value_span: Span,
}
