//! Controllers: pure reconcile functions, desired + observed -> plan.
//! No tokio, no clock reads, no processes (never `use crate::runtime`).
//!
//! (stub: the controllers helper fills this in)
