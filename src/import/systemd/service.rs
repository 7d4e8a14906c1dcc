//! A `.service` file's `[Service]` section -> the pod of a drover unit: a
//! Pod for a long-running service, a Job for `Type=oneshot` (a timer turns
//! that into a CronJob, see `timer.rs`).
//!
//! One pass over `[Service]` in file order collects what maps (the last
//! assignment of a setting wins; an empty assignment resets it, or empties
//! a list) and reports at its line everything that does not. Then the
//! pod is built from what was collected (`build.rs`).

mod build;
mod environment;
mod lifecycle;
mod limits;

use super::directives::{self, CGROUP, LIMITS, SANDBOXING, SCHEDULING, STDIO};
use super::parse::{Entry, UnitFile};
use super::specifiers::Context;
use super::Report;
use crate::import::{DraftKind, DraftPod, Host, Refusal};
use std::collections::BTreeMap;

pub use build::build;

/// The settings of `[Service]` that map to drover, by the entry that set
/// them last.
#[derive(Default)]
pub struct Settings<'a> {
    pub kind: Option<&'a Entry>,
    pub exec_start: Vec<&'a Entry>,
    pub exec_start_pre: Vec<&'a Entry>,
    pub user: Option<&'a Entry>,
    pub group: Option<&'a Entry>,
    pub working_dir: Option<&'a Entry>,
    pub environment: Vec<&'a Entry>,
    pub environment_files: Vec<&'a Entry>,
    pub unset_environment: Vec<&'a Entry>,
    pub restart: Option<&'a Entry>,
    pub timeout_stop: Option<&'a Entry>,
    pub watchdog: Option<&'a Entry>,
    pub pid_file: Option<&'a Entry>,
    /// rlimit name -> entry.
    pub limits: BTreeMap<&'static str, &'a Entry>,
    pub umask: Option<&'a Entry>,
    pub memory_max: Option<&'a Entry>,
    pub cpu_quota: Option<&'a Entry>,
    pub tasks_max: Option<&'a Entry>,
    pub no_new_privileges: Option<&'a Entry>,
    /// Per `directives::DIRECTORIES` index: the entries naming folders,
    /// and the mode.
    pub directories: BTreeMap<usize, Vec<&'a Entry>>,
    pub directory_modes: BTreeMap<usize, &'a Entry>,
    pub kill_signal: Option<&'a Entry>,
    pub kill_mode: Option<&'a Entry>,
    pub remain_after_exit: Option<&'a Entry>,
    /// ExecReload= lines, reported once the pod's name and kind are known.
    pub exec_reload: Vec<&'a Entry>,
}

/// What a service converts to: its pod and the kind it runs as.
pub struct ServicePod {
    pub kind: DraftKind,
    pub pod: DraftPod,
}

/// Everything the conversion of one service needs.
pub struct Input<'a> {
    pub unit: &'a UnitFile,
    pub ctx: Context<'a>,
    pub host: &'a dyn Host,
    /// The drover name the unit gets (for messages such as `drover kill
    /// pod NAME`).
    pub name: &'a str,
    /// Run by a timer: the pod is a CronJob's.
    pub timed: bool,
}

/// Converts `[Service]`; a refusal says why it cannot be converted.
pub fn convert(input: &Input, report: &mut Report) -> Result<ServicePod, Refusal> {
    let settings = collect(input.unit, report);
    build(input, &settings, report)
}

/// The pass over `[Service]`.
fn collect<'a>(unit: &'a UnitFile, report: &mut Report) -> Settings<'a> {
    let mut s = Settings::default();
    for e in unit.entries("Service") {
        let key = e.key.as_str();
        let empty = e.value.is_empty();
        let scalar = |slot: &mut Option<&'a Entry>| *slot = (!empty).then_some(e);
        let list = |l: &mut Vec<&'a Entry>| {
            if empty {
                l.clear()
            } else {
                l.push(e)
            }
        };
        match key {
            "Type" => scalar(&mut s.kind),
            "ExecStart" => list(&mut s.exec_start),
            "ExecStartPre" => list(&mut s.exec_start_pre),
            "User" => scalar(&mut s.user),
            "Group" => scalar(&mut s.group),
            "WorkingDirectory" => scalar(&mut s.working_dir),
            "Environment" => list(&mut s.environment),
            "EnvironmentFile" => list(&mut s.environment_files),
            "UnsetEnvironment" => list(&mut s.unset_environment),
            "Restart" => scalar(&mut s.restart),
            "TimeoutStopSec" => scalar(&mut s.timeout_stop),
            "TimeoutSec" => {
                scalar(&mut s.timeout_stop);
                report.warn(
                    e.line,
                    "TimeoutSec= also sets a start timeout, which drover does not have (a \
                     startup probe is the closest); its stop part is termination_grace_period",
                );
            }
            "WatchdogSec" => scalar(&mut s.watchdog),
            "PIDFile" => scalar(&mut s.pid_file),
            "UMask" => scalar(&mut s.umask),
            "MemoryMax" | "MemoryLimit" => scalar(&mut s.memory_max),
            "CPUQuota" => scalar(&mut s.cpu_quota),
            "TasksMax" => scalar(&mut s.tasks_max),
            "NoNewPrivileges" => scalar(&mut s.no_new_privileges),
            "KillSignal" => scalar(&mut s.kill_signal),
            "KillMode" => scalar(&mut s.kill_mode),
            "RemainAfterExit" => scalar(&mut s.remain_after_exit),
            "ExecReload" => list(&mut s.exec_reload),
            k if LIMITS.iter().any(|(d, _)| *d == k) => {
                let name = LIMITS.iter().find(|(d, _)| *d == k).expect("found").1;
                if empty {
                    s.limits.remove(name);
                } else {
                    s.limits.insert(name, e);
                }
            }
            k if directives::DIRECTORIES.iter().any(|d| d.0 == k) => {
                let i = directives::DIRECTORIES
                    .iter()
                    .position(|d| d.0 == k)
                    .expect("found");
                let l = s.directories.entry(i).or_default();
                if empty {
                    l.clear();
                } else {
                    l.push(e);
                }
            }
            k if directives::DIRECTORIES
                .iter()
                .any(|d| k.strip_suffix("Mode") == Some(d.0)) =>
            {
                let i = directives::DIRECTORIES
                    .iter()
                    .position(|d| k.strip_suffix("Mode") == Some(d.0))
                    .expect("found");
                if empty {
                    s.directory_modes.remove(&i);
                } else {
                    s.directory_modes.insert(i, e);
                }
            }
            _ => unmapped(e, report),
        }
    }
    s
}

/// Reports a `[Service]` setting drover has no field for.
fn unmapped(e: &Entry, report: &mut Report) {
    let key = e.key.as_str();
    let v = e.value.as_str();
    let line = e.line;
    let bool_is = |want: bool| super::values::boolean(v) == Some(want);
    match key {
        "ExecStartPost" => report.warn(
            line,
            "ExecStartPost= has no drover equivalent (drover runs nothing after a process \
             starts): run it from the service itself, or as a Job",
        ),
        "ExecStop" => report.warn(
            line,
            "ExecStop= is not run: drover stops a pod with SIGTERM to its processes, then \
             SIGKILL after termination_grace_period",
        ),
        "ExecStopPost" => report.warn(
            line,
            "ExecStopPost= has no drover equivalent: nothing runs after a pod stops",
        ),
        "ExecCondition" => report.warn(
            line,
            "ExecCondition= has no drover equivalent: the unit starts unconditionally",
        ),
        "RestartSec" | "RestartSteps" | "RestartMaxDelaySec" => report.warn(
            line,
            format!(
                "{key}={v} is not converted: drover's restart backoff is per daemon \
                 (backoff_initial/backoff_max in drover.toml; 10s doubling to 5m, the first \
                 restart immediate)"
            ),
        ),
        "RestartPreventExitStatus" | "RestartForceExitStatus" | "SuccessExitStatus" => {
            report.warn(
                line,
                format!(
                    "{key}={v} is not converted: for drover only exit status 0 is success, \
                     and restart_policy alone decides restarts"
                ),
            )
        }
        "RestartMode" => report.warn(line, format!("{key}= is not converted")),
        "LimitLOCKS" | "LimitRSS" => report.note(
            line,
            format!("{key}={v} has no effect on Linux (the kernel ignores it); not converted"),
        ),
        "LimitRTTIME" => report.warn(
            line,
            format!("{key}={v}: drover's rlimits do not include the real-time CPU limit; not converted"),
        ),
        "TimeoutStartSec" | "TimeoutAbortSec" => report.warn(
            line,
            format!(
                "{key}={v} has no drover equivalent: drover has no start timeout (a startup \
                 probe is the closest)"
            ),
        ),
        "RuntimeMaxSec" | "RuntimeRandomizedExtraSec" => report.warn(
            line,
            format!(
                "{key}= has no drover equivalent for a Pod (a Job has active_deadline); not \
                 converted"
            ),
        ),
        "SendSIGKILL" if bool_is(true) => {}
        "SendSIGKILL" => report.warn(
            line,
            "SendSIGKILL=no: drover always sends SIGKILL after termination_grace_period",
        ),
        "SendSIGHUP" if bool_is(false) => {}
        "SendSIGHUP" => report.warn(
            line,
            "SendSIGHUP=yes: drover sends only SIGTERM (then SIGKILL) when stopping",
        ),
        "FinalKillSignal" | "RestartKillSignal" | "WatchdogSignal" => report.warn(
            line,
            format!(
                "{key}={v}: drover stops with SIGTERM and kills with SIGKILL; not converted"
            ),
        ),
        "IgnoreSIGPIPE" if bool_is(false) => {}
        "IgnoreSIGPIPE" => report.warn(
            line,
            "IgnoreSIGPIPE=yes: drover starts processes with SIGPIPE at its default action \
             (as IgnoreSIGPIPE=no)",
        ),
        "NotifyAccess" => report.warn(
            line,
            format!("NotifyAccess={v}: drover accepts sd_notify messages from the process it started; not converted"),
        ),
        "BusName" => report.warn(
            line,
            "BusName=: drover does not watch D-Bus names; not converted",
        ),
        "GuessMainPID" => report.note(
            line,
            "GuessMainPID= is not needed: drover supervises the process it starts (or the one \
             in pid_file)",
        ),
        "RuntimeDirectoryPreserve" => report.note(
            line,
            "RuntimeDirectoryPreserve=: drover never removes the folder (see RuntimeDirectory=)",
        ),
        "DynamicUser" if bool_is(false) => {}
        "DynamicUser" => report.warn(
            line,
            "DynamicUser=yes has no drover equivalent: create a system user (adduser \
             --system) and set `user`",
        ),
        "SupplementaryGroups" => report.warn(
            line,
            format!(
                "SupplementaryGroups={v}: drover gives a process its user's groups \
                 (/etc/group); add the user to those groups instead"
            ),
        ),
        "PassEnvironment" => report.warn(
            line,
            format!(
                "PassEnvironment={v}: drover does not pass its own environment on; put the \
                 values in `env`"
            ),
        ),
        "PAMName" => report.warn(line, "PAMName=: drover opens no PAM session; not converted"),
        "SetCredential" | "SetCredentialEncrypted" | "LoadCredential"
        | "LoadCredentialEncrypted" | "ImportCredential" => report.warn(
            line,
            format!("{key}=: drover has no credentials store; not converted"),
        ),
        "Sockets" | "FileDescriptorStoreMax" | "FileDescriptorStorePreserve" => report.warn(
            line,
            format!("{key}=: drover does not pass sockets or keep file descriptors; not converted"),
        ),
        "StartLimitInterval" | "StartLimitIntervalSec" | "StartLimitBurst"
        | "StartLimitAction" => report.warn(
            line,
            format!(
                "{key}= has no drover equivalent: drover never gives up on a crashing process; \
                 it backs off"
            ),
        ),
        "Personality" | "SELinuxContext" | "AppArmorProfile" | "SmackProcessLabel" => report.warn(
            line,
            format!("{key}={v}: a security setting drover does not apply; not converted"),
        ),
        k if directives::contains(SANDBOXING, k) => report.warn(
            line,
            format!("{key}={v}: sandboxing, not applied by drover; not converted"),
        ),
        k if directives::contains(SCHEDULING, k) => report.warn(
            line,
            format!("{key}={v}: scheduling settings are not applied by drover; not converted"),
        ),
        k if directives::contains(CGROUP, k) => report.warn(
            line,
            format!(
                "{key}={v} has no drover equivalent (resources has memory, cpu and pids \
                 limits only); not converted"
            ),
        ),
        k if directives::contains(STDIO, k) => report.warn(
            line,
            format!(
                "{key}={v}: drover reads the process's output into its logs (`drover logs`) \
                 and gives it /dev/null as input; not converted"
            ),
        ),
        k if k.starts_with("X-") => {
            report.note(line, format!("{key}= is an extension systemd ignores too"))
        }
        _ => report.warn(
            line,
            format!("{key}= in [Service] is not known to drover import; not converted"),
        ),
    }
}
