//! Unit files: TOML -> api objects, with diagnostics that name
//! file:line:col, what was expected, and a computed suggestion.
//!
//! (stub: the units helper fills this in)
