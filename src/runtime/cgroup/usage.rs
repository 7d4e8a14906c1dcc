//! What a cgroup has used (memory now, CPU time so far) and how often
//! the OOM killer struck in it. Reads only.

use super::controller::Controller;
use super::hierarchy::{keyed, read, Tree};
use super::CgroupError;
use std::time::Duration;

/// A cgroup's usage, its descendants included. `None` where the
/// hierarchy has no controller to tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory charged now, page cache included (`memory.current`, v1
    /// `memory.usage_in_bytes`): what the memory limit compares against.
    pub memory_bytes: Option<u64>,
    /// CPU time used since the cgroup was made (v2 `cpu.stat`
    /// usage_usec, v1 `cpuacct.usage`).
    pub cpu: Option<Duration>,
}

pub(crate) fn usage(tree: &Tree, rel: &str) -> Result<Usage, CgroupError> {
    let v2 = tree.is_v2();
    let memory_bytes = match tree.dir_for(Controller::Memory, rel) {
        Some(dir) => {
            let file = if v2 {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            Some(number(&read(&dir.join(file))?, &dir.join(file))?)
        }
        None => None,
    };
    let cpu = if v2 {
        // cpu.stat exists in every v2 cgroup, cpu controller or not.
        let dir = tree.membership().root.join(rel);
        let text = read(&dir.join("cpu.stat"))?;
        keyed(&text, "usage_usec").map(Duration::from_micros)
    } else {
        match tree.dir_for(Controller::Cpuacct, rel) {
            Some(dir) => {
                let file = dir.join("cpuacct.usage");
                Some(Duration::from_nanos(number(&read(&file)?, &file)?))
            }
            None => None,
        }
    };
    Ok(Usage { memory_bytes, cpu })
}

/// How many processes the OOM killer has killed in `rel` and below
/// (the kernel counts global OOM kills there too). Compare the values
/// before a spawn and after the exit to tell an OOM kill from any other
/// SIGKILL. A process cgroup not made yet has had none: 0.
pub(crate) fn oom_kills(tree: &Tree, rel: &str) -> Result<u64, CgroupError> {
    let dir =
        tree.dir_for(Controller::Memory, rel)
            .ok_or_else(|| CgroupError::MissingController {
                controller: Controller::Memory.name(),
                hierarchy: super::describe_tree(tree),
            })?;
    let file = dir.join(if tree.is_v2() {
        "memory.events"
    } else {
        "memory.oom_control"
    });
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        // Not made yet (read before a first spawn): no OOM kill in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(CgroupError::io(&file, source)),
    };
    keyed(&text, "oom_kill").ok_or_else(|| {
        CgroupError::io(
            &file,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no oom_kill line (kernel before 4.13?)",
            ),
        )
    })
}

fn number(text: &str, path: &std::path::Path) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| {
        CgroupError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a number: {text:?}"),
            ),
        )
    })
}
