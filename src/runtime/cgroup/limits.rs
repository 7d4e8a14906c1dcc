//! `resources` as cgroup files: which file gets which value, in which
//! order ([`limit_writes`], pure), and writing them.
//!
//! Decisions written down here:
//! - memory is a hard limit on memory AND swap (v2 `memory.swap.max 0`,
//!   v1 `memory.memsw.limit_in_bytes` = the limit, where the kernel has
//!   swap accounting): a process over its limit is OOM-killed, as
//!   Kubernetes users expect, instead of swapping slowly past it. Hosts
//!   without swap accounting have no such file and get the memory limit
//!   alone.
//! - cpu is a CFS quota over the default 100 ms period: "0.5" is 50 ms
//!   of CPU time per 100 ms; the kernel's minimum quota is 1 ms (10m).
//! - pids counts tasks (threads too), as `TasksMax=` and Kubernetes'
//!   pod pids limit do.
//! - A process cgroup that already existed (a restart) gets every limit
//!   written, unset ones back to "no limit"; a fresh one only the set ones.
//!   On such a reused cgroup a write that would not change the file is
//!   skipped ([`unchanged`]):
//!   v1's cpu.cfs_* writes cost about 2 ms each, and a restart of a pod
//!   without limits paid them every time for nothing.

use super::controller::{Controller, Controllers};
use super::hierarchy::{read, write, Tree};
use super::CgroupError;
use crate::api::Resources;
use std::path::Path;

/// The CFS period drover uses, in microseconds (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel refuses a smaller quota.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// One write into a process's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LimitWrite {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
    /// Skipped when the kernel has no such file (swap accounting).
    pub optional: bool,
}

/// Microseconds of CPU per period for `millicores`.
pub(crate) fn cpu_quota_us(millicores: u64) -> u64 {
    (millicores.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_CPU_QUOTA_US)
}

/// The writes that give a process cgroup `res`, in order. `reset`: also
/// write "no limit" for what `res` leaves unset (an existing cgroup).
/// Only controllers in `have` are touched.
pub(crate) fn limit_writes(
    v2: bool,
    res: &Resources,
    reset: bool,
    have: Controllers,
) -> Vec<LimitWrite> {
    let w = |controller, file, value: String, optional| LimitWrite {
        controller,
        file,
        value,
        optional,
    };
    let mut out = Vec::new();
    let memory = res.memory.map(|m| m.0);
    if have.contains(Controller::Memory) && (memory.is_some() || reset) {
        if v2 {
            let (max, swap) = match memory {
                Some(b) => (b.to_string(), "0".to_string()),
                None => ("max".to_string(), "max".to_string()),
            };
            out.push(w(Controller::Memory, "memory.max", max, false));
            out.push(w(Controller::Memory, "memory.swap.max", swap, true));
        } else {
            // memsw must stay >= the memory limit at every step: lift it,
            // set the limit, then bring memsw down to the limit.
            out.push(w(
                Controller::Memory,
                "memory.memsw.limit_in_bytes",
                "-1".into(),
                true,
            ));
            let limit = memory.map_or("-1".to_string(), |b| b.to_string());
            out.push(w(
                Controller::Memory,
                "memory.limit_in_bytes",
                limit.clone(),
                false,
            ));
            if memory.is_some() {
                out.push(w(
                    Controller::Memory,
                    "memory.memsw.limit_in_bytes",
                    limit,
                    true,
                ));
            }
        }
    }
    let cpu = res.cpu.map(|c| cpu_quota_us(c.0));
    if have.contains(Controller::Cpu) && (cpu.is_some() || reset) {
        if v2 {
            let quota = cpu.map_or("max".to_string(), |q| q.to_string());
            out.push(w(
                Controller::Cpu,
                "cpu.max",
                format!("{quota} {CPU_PERIOD_US}"),
                false,
            ));
        } else {
            let quota = cpu.map_or("-1".to_string(), |q| q.to_string());
            out.push(w(
                Controller::Cpu,
                "cpu.cfs_period_us",
                CPU_PERIOD_US.to_string(),
                false,
            ));
            out.push(w(Controller::Cpu, "cpu.cfs_quota_us", quota, false));
        }
    }
    if have.contains(Controller::Pids) && (res.pids.is_some() || reset) {
        let max = res.pids.map_or("max".to_string(), |n| n.to_string());
        out.push(w(Controller::Pids, "pids.max", max, false));
    }
    out
}

/// The controllers `res` needs.
pub(crate) fn needed(res: &Resources) -> Controllers {
    let mut s = Controllers::NONE;
    if res.memory.is_some() {
        s = s.with(Controller::Memory);
    }
    if res.cpu.is_some() {
        s = s.with(Controller::Cpu);
    }
    if res.pids.is_some() {
        s = s.with(Controller::Pids);
    }
    s
}

/// Writes `res` into the process cgroup `rel` ("UID/PROCESS"), in the
/// hierarchies of `joined` (the controllers the process is in: a reset
/// leaves the others alone, no process of ours being there).
pub(crate) fn apply(
    tree: &Tree,
    joined: Controllers,
    rel: &str,
    res: &Resources,
    reset: bool,
) -> Result<(), CgroupError> {
    for lw in limit_writes(tree.is_v2(), res, reset, joined) {
        let Some(dir) = tree.dir_for(lw.controller, rel) else {
            continue;
        };
        let path = dir.join(lw.file);
        if lw.optional && !Path::new(&path).exists() {
            continue;
        }
        // A fresh cgroup holds the defaults, and only set limits are
        // written to it: only a reused one may already say the same.
        if reset && read(&path).is_ok_and(|now| unchanged(&now, &lw.value)) {
            continue;
        }
        write(&path, &lw.value)?;
    }
    Ok(())
}

/// Whether a limit file that reads `now` already holds `value` (as
/// written): v1 reads "no limit" (-1) back as the largest page-aligned
/// counter for memory, as -1 for the CFS quota.
fn unchanged(now: &str, value: &str) -> bool {
    let now = now.trim();
    now == value || (value == "-1" && now.parse::<u64>().is_ok_and(|n| n >= 1 << 62))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CpuQuantity, MemoryQuantity};

    fn files(ws: &[LimitWrite]) -> Vec<String> {
        ws.iter()
            .map(|w| format!("{}={}", w.file, w.value))
            .collect()
    }

    fn full() -> Resources {
        Resources {
            memory: Some(MemoryQuantity(64 << 20)),
            cpu: Some(CpuQuantity(200)),
            pids: Some(20),
        }
    }

    #[test]
    fn v2_limits() {
        let all = Controllers::LIMITS;
        assert_eq!(
            files(&limit_writes(true, &full(), false, all)),
            [
                "memory.max=67108864",
                "memory.swap.max=0",
                "cpu.max=20000 100000",
                "pids.max=20"
            ]
        );
        assert_eq!(
            files(&limit_writes(true, &Resources::default(), true, all)),
            [
                "memory.max=max",
                "memory.swap.max=max",
                "cpu.max=max 100000",
                "pids.max=max"
            ]
        );
        assert!(limit_writes(true, &Resources::default(), false, all).is_empty());
    }

    #[test]
    fn v1_limits_keep_memsw_above_the_limit_at_every_step() {
        let all = Controllers::V1_WANTED;
        assert_eq!(
            files(&limit_writes(false, &full(), false, all)),
            [
                "memory.memsw.limit_in_bytes=-1",
                "memory.limit_in_bytes=67108864",
                "memory.memsw.limit_in_bytes=67108864",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=20000",
                "pids.max=20"
            ]
        );
        assert_eq!(
            files(&limit_writes(false, &Resources::default(), true, all)),
            [
                "memory.memsw.limit_in_bytes=-1",
                "memory.limit_in_bytes=-1",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=-1",
                "pids.max=max"
            ]
        );
    }

    #[test]
    fn only_available_controllers_are_written() {
        let pids_only = Controllers::of(&[Controller::Pids]);
        assert_eq!(
            files(&limit_writes(true, &full(), true, pids_only)),
            ["pids.max=20"]
        );
    }

    #[test]
    fn a_write_is_skipped_only_when_the_file_reads_the_same() {
        // What v1 and v2 read back after each write drover makes.
        assert!(unchanged("-1\n", "-1")); // cpu.cfs_quota_us
        assert!(unchanged("9223372036854771712\n", "-1")); // memory.limit_in_bytes
        assert!(unchanged("100000\n", "100000"));
        assert!(unchanged("max\n", "max"));
        assert!(unchanged("max 100000\n", "max 100000"));
        assert!(unchanged("67108864\n", "67108864"));
        assert!(
            !unchanged("67108864\n", "-1"),
            "a limit set by the last run"
        );
        assert!(!unchanged("20000\n", "-1"));
        assert!(!unchanged("max\n", "100"));
        assert!(!unchanged("50000 100000\n", "max 100000"));
    }

    #[test]
    fn cpu_quota_has_the_kernel_minimum() {
        assert_eq!(cpu_quota_us(500), 50_000);
        assert_eq!(cpu_quota_us(2000), 200_000);
        assert_eq!(cpu_quota_us(10), 1_000);
        assert_eq!(cpu_quota_us(1), 1_000);
        assert_eq!(needed(&full()), Controllers::LIMITS, "memory, cpu and pids");
        assert_eq!(needed(&Resources::default()), Controllers::NONE);
    }
}
