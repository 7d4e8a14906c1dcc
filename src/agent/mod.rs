//! The node agent: supervises the pods bound to this node.
