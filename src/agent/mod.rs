//! The node agent: supervises the pods bound to this node.

pub mod logs;
