//! Tables and JSON for the CLI.
