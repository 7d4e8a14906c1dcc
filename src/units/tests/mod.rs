//! Unit file tests: what is accepted, and what users are told about each
//! mistake (position and wording).

mod fields;
mod folders;
mod jobs;
mod limits;
mod mistakes;
mod selectors;

use crate::units::*;
use chrono::TimeZone;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

pub(super) const FILE: &str = "units/test.toml";

pub(super) fn render(d: &[Diagnostic]) -> String {
    Diagnostics::new(d.to_vec()).to_string()
}

pub(super) fn errors(text: &str) -> Vec<Diagnostic> {
    match parse_unit(Path::new(FILE), text, now()) {
        Ok(obj) => panic!("expected errors, got {obj:#?}"),
        Err(d) => d,
    }
}

/// The one diagnostic of `text`.
pub(super) fn one(text: &str) -> Diagnostic {
    let d = errors(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    d.into_iter().next().unwrap()
}

pub(super) fn ok(text: &str) -> Object {
    match parse_unit(Path::new(FILE), text, now()) {
        Ok(o) => o,
        Err(d) => panic!("expected a valid unit, got:\n{}", render(&d)),
    }
}

/// The object a file describes and its diagnostics, even when there are
/// some (for features this daemon refuses but parses).
pub(super) fn built(text: &str) -> (Object, Vec<Diagnostic>) {
    let src = diagnostic::Source::new(Path::new(FILE), text);
    let v = validate::validate(&src, now());
    (v.object.expect("an object"), v.diags)
}

#[track_caller]
pub(super) fn assert_at(d: &Diagnostic, line: usize, col: usize, message: &str) {
    assert_eq!(
        (d.line, d.col, d.message.as_str()),
        (line, col, message),
        "\n{d}"
    );
}

#[track_caller]
pub(super) fn assert_help(d: &Diagnostic, help: &str) {
    assert_eq!(d.help.as_deref(), Some(help), "\n{d}");
}

/// A Pod whose one process gets `extra` (from line 6).
pub(super) fn pod_with(extra: &str) -> String {
    format!(
        "kind = \"Pod\"\nname = \"p\"\n[[spec.processes]]\nname = \"main\"\ncommand = [\"sleep\", \"60\"]\n{extra}\n"
    )
}
