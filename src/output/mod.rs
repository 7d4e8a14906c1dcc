//! What the CLI prints: kubectl-style aligned tables (`table`), ages
//! (`age`), and the `-o json` / `-o yaml` renderings of the server's JSON
//! (`json`, `yaml`).
//!
//! Everything here is a pure function from values to text: no I/O, no
//! clock reads (the current time is an argument), so it is tested directly.

pub mod age;
pub mod json;
pub mod table;
pub mod yaml;
