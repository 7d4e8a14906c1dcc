//! `[Unit]` and `[Install]`, shared by services and timers: the
//! description for the file's header, the dependencies on other units
//! (which become init processes that wait, when the other unit is
//! converted in the same run), and everything drover does differently.

use super::directives::is_boot_target;
use super::parse::UnitFile;
use super::Report;

/// One unit named by a dependency directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The systemd unit name (`redis-server.service`).
    pub unit: String,
    /// `After`, `Requires`, ... (`Before` is recorded on the other side).
    pub directive: String,
    pub line: usize,
}

/// What `[Unit]` and `[Install]` said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitInfo {
    /// "Description: ...", "Documentation: ..." for the header.
    pub about: Vec<String>,
    /// Units this one starts after or needs.
    pub needs: Vec<Dependency>,
    /// Units this one must start before (`Before=`): they wait for it.
    pub before: Vec<Dependency>,
    /// `Alias=` names: other units may name this one so.
    pub aliases: Vec<String>,
}

/// Dependency directives that order or pull in another unit.
const NEEDS: &[&str] = &[
    "After",
    "Requires",
    "Wants",
    "BindsTo",
    "Requisite",
    "Upholds",
];

/// Reads `[Unit]` and `[Install]`; reports what is not carried over.
/// Dependencies are only recorded here: whether they can be kept depends
/// on which units are converted in the same run (see `super::link`).
pub fn read(unit: &UnitFile, report: &mut Report) -> UnitInfo {
    let mut info = UnitInfo::default();
    for e in unit.entries("Unit") {
        let key = e.key.as_str();
        match key {
            "Description" => info.about.push(format!("Description: {}", e.value)),
            "Documentation" => info.about.push(format!("Documentation: {}", e.value)),
            k if NEEDS.contains(&k) || k == "Before" => {
                for name in e.value.split_whitespace() {
                    let dep = Dependency {
                        unit: name.to_string(),
                        directive: k.to_string(),
                        line: e.line,
                    };
                    if k == "Before" {
                        info.before.push(dep);
                    } else {
                        info.needs.push(dep);
                    }
                }
            }
            "Conflicts" => {
                for name in e.value.split_whitespace() {
                    if is_boot_target(name) {
                        report.note(
                            e.line,
                            format!("Conflicts={name}: drover stops every pod at shutdown itself"),
                        );
                    } else {
                        report.warn(
                            e.line,
                            format!(
                                "Conflicts={name} has no drover equivalent: both may run at once"
                            ),
                        );
                    }
                }
            }
            "PartOf"
            | "PropagatesReloadTo"
            | "ReloadPropagatedFrom"
            | "PropagatesStopTo"
            | "StopPropagatedFrom"
            | "JoinsNamespaceOf"
            | "OnFailure"
            | "OnSuccess"
            | "OnFailureJobMode"
            | "StopWhenUnneeded"
            | "RefuseManualStart"
            | "RefuseManualStop"
            | "AllowIsolate"
            | "IgnoreOnIsolate"
            | "CollectMode"
            | "FailureAction"
            | "SuccessAction"
            | "JobTimeoutSec"
            | "JobRunningTimeoutSec"
            | "JobTimeoutAction"
            | "RebootArgument"
            | "SourcePath" => report.warn(
                e.line,
                format!(
                    "{key}= has no drover equivalent: drover has no dependency graph or job \
                     engine; not converted"
                ),
            ),
            "RequiresMountsFor" | "WantsMountsFor" => report.warn(
                e.line,
                format!(
                    "{key}={}: drover does not wait for mounts; the units folder is read \
                     once drover starts, after local file systems",
                    e.value
                ),
            ),
            "DefaultDependencies" => report.note(
                e.line,
                "DefaultDependencies= is about systemd's boot ordering; drover starts units \
                 once it runs",
            ),
            "StartLimitIntervalSec"
            | "StartLimitInterval"
            | "StartLimitBurst"
            | "StartLimitAction" => report.warn(
                e.line,
                format!(
                    "{key}= has no drover equivalent: drover never gives up on a crashing \
                     process; it backs off (10s doubling to 5m, per the daemon's config)"
                ),
            ),
            k if k.starts_with("Condition") || k.starts_with("Assert") => report.warn(
                e.line,
                format!(
                    "{key}={} is not checked: drover starts the unit unconditionally",
                    e.value
                ),
            ),
            k if k.starts_with("X-") => report.note(
                e.line,
                format!("{key}= is an extension systemd ignores too"),
            ),
            _ => report.warn(
                e.line,
                format!("{key}= in [Unit] is not known to drover import; not converted"),
            ),
        }
    }
    for e in unit.entries("Install") {
        let key = e.key.as_str();
        match key {
            "WantedBy" | "RequiredBy" | "UpheldBy" => {
                for name in e.value.split_whitespace() {
                    if is_boot_target(name) {
                        report.note(
                            e.line,
                            format!(
                                "{key}={name}: nothing to enable; drover starts every unit of its \
                                 units folder (/etc/drover/units) when it starts"
                            ),
                        );
                    } else {
                        report.warn(
                            e.line,
                            format!(
                                "{key}={name}: drover does not start units on behalf of others; \
                                 the unit starts when drover starts"
                            ),
                        );
                    }
                }
            }
            "Alias" => {
                for name in e.value.split_whitespace() {
                    info.aliases.push(name.to_string());
                }
                report.warn(
                    e.line,
                    format!(
                        "Alias={}: the drover unit has one name; other converted units may still \
                         name it by its alias",
                        e.value
                    ),
                );
            }
            "Also" => report.warn(
                e.line,
                format!("Also={}: import those units too if you need them", e.value),
            ),
            "DefaultInstance" => report.note(
                e.line,
                "DefaultInstance= only matters when enabling a template",
            ),
            _ => report.warn(
                e.line,
                format!("{key}= in [Install] is not known to drover import; not converted"),
            ),
        }
    }
    info
}
