//! What a cgroup has used (memory now, CPU time so far) and how often
//! the OOM killer struck in it. Reads only.

use super::controller::Controller;
use super::hierarchy::{keyed, needed_by_process, read, read_if_made, Tree};
use super::{limits, stop, CgroupError};
use crate::api::Resources;
use crate::runtime::procfs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cgroup's usage, its descendants included. `None` where the
/// hierarchy has no controller to tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory charged now, page cache included (`memory.current`, v1
    /// `memory.usage_in_bytes`): what the memory limit compares against.
    /// In a v1 cgroup outside the memory hierarchy (a process without a
    /// memory limit: hierarchy.rs, `needed_by_process`), the resident
    /// memory of its processes, summed from /proc.
    pub memory_bytes: Option<u64>,
    /// CPU time used since the cgroup was made (v2 `cpu.stat`
    /// usage_usec, v1 `cpuacct.usage`); outside the cpuacct hierarchy,
    /// that of its live processes and of the children they waited for,
    /// from /proc.
    pub cpu: Option<Duration>,
}

pub(crate) fn usage(tree: &Tree, rel: &str) -> Result<Usage, CgroupError> {
    let v2 = tree.is_v2();
    let memory_file = if v2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let mut memory_bytes = match tree.dir_for(Controller::Memory, rel) {
        Some(dir) => read_number(&dir.join(memory_file))?,
        None => None,
    };
    let mut cpu = if v2 {
        // cpu.stat exists in every v2 cgroup, cpu controller or not.
        let dir = tree.membership().root.join(rel);
        let text = read(&dir.join("cpu.stat"))?;
        keyed(&text, "usage_usec").map(Duration::from_micros)
    } else {
        match tree.dir_for(Controller::Cpuacct, rel) {
            Some(dir) => read_number(&dir.join("cpuacct.usage"))?.map(Duration::from_nanos),
            None => None,
        }
    };
    if !v2 && (memory_bytes.is_none() || cpu.is_none()) {
        let (memory, time) = procfs::summed_usage(&stop::pids(tree, rel));
        memory_bytes.get_or_insert(memory);
        cpu.get_or_insert(time);
    }
    Ok(Usage { memory_bytes, cpu })
}

/// A number file of `rel`'s directory in one hierarchy; None if the
/// directory was not made there (the process did not join it).
fn read_number(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_if_made(path)?
        .map(|text| number(&text, path))
        .transpose()
}

/// How many processes the OOM killer has killed in `rel` and below
/// (the kernel counts global OOM kills there too). Compare the values
/// before a spawn and after the exit to tell an OOM kill from any other
/// SIGKILL. `res`: the process's limits. A process cgroup not made yet,
/// or with no memory cgroup of its own, has had none that it can tell: 0.
pub(crate) fn oom_kills(tree: &Tree, rel: &str, res: &Resources) -> Result<u64, CgroupError> {
    let Some(file) = oom_kill_file(tree, rel, res) else {
        return Ok(0);
    };
    // Not made (read before a first spawn): none in it.
    let Some(text) = read_if_made(&file)? else {
        return Ok(0);
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

/// The file that counts the OOM kills of a process with limits `res`,
/// None if it has no memory cgroup of its own: in v1 a process joins the
/// memory hierarchy only for a memory limit (hierarchy.rs,
/// `needed_by_process`). Looking for the file anyway cost two failed
/// cgroupfs lookups on every crash to replacement, one after the exit
/// and one before the restart.
fn oom_kill_file(tree: &Tree, rel: &str, res: &Resources) -> Option<PathBuf> {
    if tree.is_v2() {
        return tree
            .dir_for(Controller::Memory, rel)
            .map(|d| d.join("memory.events"));
    }
    let need = needed_by_process(limits::needed(res), tree.controllers());
    if !tree.joined_controllers(need).contains(Controller::Memory) {
        return None;
    }
    tree.dir_for(Controller::Memory, rel)
        .map(|d| d.join("memory.oom_control"))
}

fn number(text: &str, path: &Path) -> Result<u64, CgroupError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MemoryQuantity;
    use crate::runtime::cgroup::hierarchy::tests::{five, h};

    fn memory_limit() -> Resources {
        Resources {
            memory: Some(MemoryQuantity(64 << 20)),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_process_in_a_memory_cgroup_of_its_own_has_oom_kills_to_read() {
        let none = Resources::default();
        let pids = Resources {
            pids: Some(5),
            ..Default::default()
        };
        let tree = five();
        assert_eq!(oom_kill_file(&tree, "u/p", &none), None);
        assert_eq!(oom_kill_file(&tree, "u/p", &pids), None);
        assert_eq!(
            oom_kill_file(&tree, "u/p", &memory_limit()),
            Some(PathBuf::from("/m/u/p/memory.oom_control"))
        );
        // No pids or freezer hierarchy: memory's holds every process.
        let memory_member = Tree::V1(vec![
            h(&[Controller::Memory], "/m"),
            h(&[Controller::Cpu], "/c"),
        ]);
        assert_eq!(
            oom_kill_file(&memory_member, "u", &none),
            Some(PathBuf::from("/m/u/memory.oom_control"))
        );
        // v2: every process is in the one hierarchy, memory included.
        let v2 = Tree::V2(h(&[Controller::Memory, Controller::Pids], "/u"));
        assert_eq!(
            oom_kill_file(&v2, "x/p", &none),
            Some(PathBuf::from("/u/x/p/memory.events"))
        );
        let v2_no_memory = Tree::V2(h(&[Controller::Pids], "/u"));
        assert_eq!(oom_kill_file(&v2_no_memory, "x/p", &none), None);
    }
}
