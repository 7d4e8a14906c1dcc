//! Tables of systemd directives drover has no field for, grouped by why,
//! so each gets a message that says what the drover unit does instead.

/// Sandboxing (systemd.exec(5), "Sandboxing", "Capabilities", "Security",
/// "System Call Filtering"): drover runs the process as its user, with
/// no_new_privs, and nothing more.
pub const SANDBOXING: &[&str] = &[
    "AmbientCapabilities",
    "BindPaths",
    "BindReadOnlyPaths",
    "CapabilityBoundingSet",
    "DeviceAllow",
    "DevicePolicy",
    "ExecPaths",
    "InaccessibleDirectories",
    "InaccessiblePaths",
    "IPAddressAllow",
    "IPAddressDeny",
    "KeyringMode",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "MountAPIVFS",
    "MountFlags",
    "NoExecPaths",
    "PrivateDevices",
    "PrivateIPC",
    "PrivateMounts",
    "PrivateNetwork",
    "PrivateTmp",
    "PrivateUsers",
    "ProcSubset",
    "ProtectClock",
    "ProtectControlGroups",
    "ProtectHome",
    "ProtectHostname",
    "ProtectKernelLogs",
    "ProtectKernelModules",
    "ProtectKernelTunables",
    "ProtectProc",
    "ProtectSystem",
    "ReadOnlyDirectories",
    "ReadOnlyPaths",
    "ReadWriteDirectories",
    "ReadWritePaths",
    "RemoveIPC",
    "RestrictAddressFamilies",
    "RestrictFileSystems",
    "RestrictNamespaces",
    "RestrictNetworkInterfaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "RootDirectory",
    "RootImage",
    "SecureBits",
    "SocketBindAllow",
    "SocketBindDeny",
    "SystemCallArchitectures",
    "SystemCallErrorNumber",
    "SystemCallFilter",
    "SystemCallLog",
    "TemporaryFileSystem",
];

/// Scheduling and priority knobs.
pub const SCHEDULING: &[&str] = &[
    "CPUAffinity",
    "CPUSchedulingPolicy",
    "CPUSchedulingPriority",
    "CPUSchedulingResetOnFork",
    "IOSchedulingClass",
    "IOSchedulingPriority",
    "Nice",
    "NUMAMask",
    "NUMAPolicy",
    "OOMPolicy",
    "OOMScoreAdjust",
    "TimerSlackNSec",
];

/// cgroup knobs other than MemoryMax=, CPUQuota=, TasksMax=.
pub const CGROUP: &[&str] = &[
    "AllowedCPUs",
    "AllowedMemoryNodes",
    "BlockIOWeight",
    "CPUAccounting",
    "CPUQuotaPeriodSec",
    "CPUShares",
    "CPUWeight",
    "Delegate",
    "IOAccounting",
    "IODeviceLatencyTargetSec",
    "IODeviceWeight",
    "IOReadBandwidthMax",
    "IOReadIOPSMax",
    "IOWeight",
    "IOWriteBandwidthMax",
    "IOWriteIOPSMax",
    "IPAccounting",
    "ManagedOOMMemoryPressure",
    "ManagedOOMSwap",
    "MemoryAccounting",
    "MemoryHigh",
    "MemoryLow",
    "MemoryMin",
    "MemorySwapMax",
    "Slice",
    "StartupCPUWeight",
    "StartupIOWeight",
    "TasksAccounting",
];

/// Standard input and output: drover writes both outputs to its log files
/// (`drover logs`) and gives the process /dev/null as input.
pub const STDIO: &[&str] = &[
    "LogExtraFields",
    "LogLevelMax",
    "LogNamespace",
    "LogRateLimitBurst",
    "LogRateLimitIntervalSec",
    "StandardError",
    "StandardInput",
    "StandardInputData",
    "StandardInputText",
    "StandardOutput",
    "SyslogFacility",
    "SyslogIdentifier",
    "SyslogLevel",
    "SyslogLevelPrefix",
    "TTYPath",
    "TTYReset",
    "TTYVHangup",
    "TTYVTDisallocate",
    "UtmpIdentifier",
    "UtmpMode",
];

/// `Limit*=` -> drover's `rlimits` key (the setrlimit names drover
/// takes). `LimitLOCKS=` and `LimitRSS=` do nothing on Linux, and drover
/// has no `rttime`: those are reported instead.
pub const LIMITS: &[(&str, &str)] = &[
    ("LimitAS", "as"),
    ("LimitCORE", "core"),
    ("LimitCPU", "cpu"),
    ("LimitDATA", "data"),
    ("LimitFSIZE", "fsize"),
    ("LimitMEMLOCK", "memlock"),
    ("LimitMSGQUEUE", "msgqueue"),
    ("LimitNICE", "nice"),
    ("LimitNOFILE", "nofile"),
    ("LimitNPROC", "nproc"),
    ("LimitRTPRIO", "rtprio"),
    ("LimitSIGPENDING", "sigpending"),
    ("LimitSTACK", "stack"),
];

/// `RuntimeDirectory=` and its siblings: (directive, base folder,
/// environment variable, chowned to User=/Group=).
pub const DIRECTORIES: &[(&str, &str, &str, bool)] = &[
    ("RuntimeDirectory", "/run", "RUNTIME_DIRECTORY", true),
    ("StateDirectory", "/var/lib", "STATE_DIRECTORY", true),
    ("CacheDirectory", "/var/cache", "CACHE_DIRECTORY", true),
    ("LogsDirectory", "/var/log", "LOGS_DIRECTORY", true),
    (
        "ConfigurationDirectory",
        "/etc",
        "CONFIGURATION_DIRECTORY",
        false,
    ),
];

/// Targets drover's own service is ordered after, or that mean "the
/// system is up": waiting for them is what starting under drover does.
pub fn is_boot_target(unit: &str) -> bool {
    unit.ends_with(".target")
}

pub fn contains(table: &[&str], key: &str) -> bool {
    table.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_an_rlimit_drover_takes() {
        for (directive, name) in LIMITS {
            assert!(
                crate::api::RLIMIT_NAMES.contains(name),
                "{directive} -> {name}, which drover does not take"
            );
        }
    }
}
