//! What this host offers, as Kubernetes writes it in `status.capacity`:
//! `cpu` in cores, `memory` in KiB (`16318964Ki`).
//!
//! [`capacity`] is the pure formatting; [`host_capacity`] reads the host
//! (sysinfo for memory, the scheduler's CPU affinity for cores, which is
//! what a process here may actually use).

use std::collections::BTreeMap;

/// `status.capacity` for a host with `cpus` cores and `memory_bytes` of RAM.
pub fn capacity(cpus: usize, memory_bytes: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".to_string(), cpus.to_string()),
        ("memory".to_string(), format!("{}Ki", memory_bytes / 1024)),
    ])
}

/// This host's capacity.
pub fn host_capacity() -> BTreeMap<String, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    capacity(cpus, system.total_memory())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_units() {
        let c = capacity(4, 16 * 1024 * 1024 * 1024 + 1023);
        assert_eq!(c["cpu"], "4");
        assert_eq!(c["memory"], "16777216Ki", "whole KiB, rounded down");
    }

    #[test]
    fn this_host_has_some() {
        let c = host_capacity();
        assert!(c["cpu"].parse::<usize>().unwrap() >= 1);
        let kib: u64 = c["memory"].trim_end_matches("Ki").parse().unwrap();
        assert!(kib > 1024, "more than a MiB of memory: {kib}Ki");
    }
}
