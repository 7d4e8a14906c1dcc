//! systemd `.service` and `.timer` files -> drover units.
//!
//! - A service becomes a Pod (one process, restarted on this host as
//!   `Restart=` says), or a Job for `Type=oneshot`.
//! - A timer and its service (named by `Unit=`, else the timer's name with
//!   `.service`; read beside the timer when not given) become a CronJob.
//! - `foo@bar.service` is read from `foo@bar.service`, or else from the
//!   template `foo@.service` beside it, with `%i` = `bar`.
//! - `After=`/`Requires=`/`Wants=`/`BindsTo=` naming another unit converted
//!   in the same run becomes an init process that waits for it (`drover
//!   wait pod/NAME --for=condition=ready`); `Before=` the same, on the
//!   other side. drover has no dependency graph; this is its idiom.
//!
//! Names: the unit name without its type, as a DNS label
//! (`getty@tty1.service` -> `getty-tty1`); each unit is labelled
//! `app = NAME`.

pub mod calendar;
mod directives;
mod envfile;
pub mod exec;
mod link;
pub mod parse;
mod service;
pub mod specifiers;
mod timer;
mod unit_section;
pub mod values;

use super::draft::{Draft, DraftKind, Origins};
use super::{names, Host, Outcome, Refusal, Warning};
use link::{link, Peers};
use parse::UnitFile;
use specifiers::UnitName;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use unit_section::{Dependency, UnitInfo};

/// Collects one file's warnings and notes.
pub struct Report<'a> {
    file: &'a str,
    out: &'a mut Vec<Warning>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str, out: &'a mut Vec<Warning>) -> Report<'a> {
        Report { file, out }
    }

    fn at(line: usize) -> Option<usize> {
        (line > 0).then_some(line)
    }

    /// Not carried over; line 0 is the file as a whole.
    pub fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.out
            .push(Warning::new(self.file, Self::at(line), message));
    }

    /// Carried over differently, or not needed.
    pub fn note(&mut self, line: usize, message: impl Into<String>) {
        self.out
            .push(Warning::note(self.file, Self::at(line), message));
    }

    pub fn refuse(&self, line: Option<usize>, reason: impl Into<String>) -> Refusal {
        Refusal::new(self.file, line, reason)
    }
}

/// A unit file read and parsed.
struct Loaded {
    /// As the user named it (or as found beside a timer).
    path: String,
    name: UnitName,
    unit: UnitFile,
}

/// Converts the given `.service` and `.timer` files.
pub fn convert(paths: &[String], host: &dyn Host) -> Outcome {
    let mut out = Outcome::default();
    let mut services: Vec<Loaded> = Vec::new();
    let mut timers: Vec<Loaded> = Vec::new();
    for path in paths {
        match load(path, host, &mut out.warnings) {
            Ok(l) if l.name.suffix == "timer" => timers.push(l),
            Ok(l) => services.push(l),
            Err(r) => out.refusals.push(r),
        }
    }

    // Pair each timer with its service.
    let mut timed: Vec<(Loaded, Loaded)> = Vec::new();
    for t in timers {
        let wanted = t
            .unit
            .last("Timer", "Unit")
            .filter(|e| !e.value.is_empty())
            .map(|e| e.value.clone())
            .unwrap_or_else(|| format!("{}.service", t.name.stem()));
        if let Some(i) = services.iter().position(|s| s.name.full == wanted) {
            let s = services.remove(i);
            timed.push((t, s));
            continue;
        }
        let beside = beside(&t.path, &wanted);
        match load(&beside, host, &mut out.warnings) {
            Ok(s) => {
                out.warnings.push(Warning::note(
                    &t.path,
                    None,
                    format!("its service {wanted} was read from {beside}"),
                ));
                timed.push((t, s));
            }
            Err(r) => out.refusals.push(Refusal::new(
                &t.path,
                None,
                format!(
                    "the timer starts {wanted}, which cannot be read: {}",
                    r.reason
                ),
            )),
        }
    }

    // The drover name and kind of every unit, so that dependencies and
    // name clashes can be judged before converting.
    let mut peers = Peers::default();
    let mut plans: Vec<Plan> = Vec::new();
    for s in services {
        let kind = if is_oneshot(&s.unit) {
            DraftKind::Job { backoff_limit: 0 }
        } else {
            DraftKind::Pod
        };
        plans.push(Plan::new(s, None, kind));
    }
    for (t, s) in timed {
        let placeholder = DraftKind::CronJob {
            schedule: String::new(),
            time_zone: None,
            concurrency_policy: crate::api::ConcurrencyPolicy::Forbid,
            starting_deadline: None,
            backoff_limit: 0,
        };
        plans.push(Plan::new(t, Some(s), placeholder));
    }
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    let mut kept = Vec::new();
    for mut p in plans {
        let stem = p.main.name.stem().to_string();
        let Some(name) = names::unit_name(&stem, p.kind.max_name()) else {
            out.refusals.push(Refusal::new(
                &p.main.path,
                None,
                format!("`{stem}` leaves no letters or digits for a drover name"),
            ));
            continue;
        };
        if let Some(first) = named.get(&name) {
            out.refusals.push(Refusal::new(
                &p.main.path,
                None,
                format!("its drover name `{name}` is already taken by the unit from {first}"),
            ));
            continue;
        }
        if name != stem {
            out.warnings.push(Warning::note(
                &p.main.path,
                None,
                format!("named `{name}`: drover names are lowercase letters, digits and '-'"),
            ));
        }
        named.insert(name.clone(), p.main.path.clone());
        p.name = name;
        peers.add(&p);
        kept.push(p);
    }

    // Convert.
    let mut converted: Vec<Converted> = Vec::new();
    for p in kept {
        match convert_plan(&p, host, &mut out.warnings) {
            Ok(c) => converted.push(c),
            Err(r) => out.refusals.push(r),
        }
    }
    link(&mut converted, &peers, &mut out.warnings);
    out.drafts = converted.into_iter().map(|c| c.draft).collect();
    out.sort_warnings();
    out
}

/// `dir/of/timer/NAME`.
fn beside(timer_path: &str, name: &str) -> String {
    match Path::new(timer_path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name).display().to_string(),
        _ => name.to_string(),
    }
}

fn is_oneshot(unit: &UnitFile) -> bool {
    unit.last("Service", "Type")
        .is_some_and(|e| e.value == "oneshot")
}

/// Reads and parses one unit file (or its template).
fn load(path: &str, host: &dyn Host, warnings: &mut Vec<Warning>) -> Result<Loaded, Refusal> {
    let file_name = Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(name) = UnitName::parse(&file_name) else {
        return Err(Refusal::new(
            path,
            None,
            "not a systemd unit file name (NAME.service or NAME.timer)",
        ));
    };
    match name.suffix.as_str() {
        "service" | "timer" => {}
        "socket" => {
            return Err(Refusal::new(
                path,
                None,
                "socket activation has no drover equivalent: convert the service, which then \
                 opens its own socket (most daemons can)",
            ))
        }
        other => {
            return Err(Refusal::new(
                path,
                None,
                format!("a .{other} unit has no drover equivalent: only .service and .timer units are converted"),
            ))
        }
    }
    if name.is_template() {
        return Err(Refusal::new(
            path,
            None,
            format!(
                "{file_name} is a template: name an instance, e.g. {}@NAME.{}",
                name.prefix, name.suffix
            ),
        ));
    }
    let text = match host.read(Path::new(path)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound && name.instance.is_some() => {
            let template = beside(path, &format!("{}@.{}", name.prefix, name.suffix));
            let t = host.read(Path::new(&template)).map_err(|e2| {
                Refusal::new(
                    path,
                    None,
                    format!("cannot read it ({e}), nor its template {template} ({e2})"),
                )
            })?;
            warnings.push(Warning::note(
                path,
                None,
                format!(
                    "read from the template {template}, with instance `{}`",
                    name.instance.as_deref().unwrap_or("")
                ),
            ));
            t
        }
        Err(e) => return Err(Refusal::new(path, None, format!("cannot read it: {e}"))),
    };
    let (unit, problems) = parse::parse(&text);
    for p in problems {
        warnings.push(Warning::new(path, Some(p.line), p.message));
    }
    for s in &unit.sections {
        let expected: &[&str] = match name.suffix.as_str() {
            "timer" => &["Unit", "Timer", "Install"],
            _ => &["Unit", "Service", "Install"],
        };
        if !expected.contains(&s.name.as_str()) && !s.name.starts_with("X-") {
            warnings.push(Warning::new(
                path,
                Some(s.line),
                format!("section [{}] is not converted", s.name),
            ));
        }
    }
    Ok(Loaded {
        path: path.to_string(),
        name,
        unit,
    })
}

/// One unit to write: a service, or a timer and its service.
pub(super) struct Plan {
    /// The service, or the timer.
    main: Loaded,
    /// The timer's service.
    service: Option<Loaded>,
    kind: DraftKind,
    name: String,
}

impl Plan {
    fn new(main: Loaded, service: Option<Loaded>, kind: DraftKind) -> Plan {
        Plan {
            main,
            service,
            kind,
            name: String::new(),
        }
    }

    fn service(&self) -> &Loaded {
        self.service.as_ref().unwrap_or(&self.main)
    }
}

/// Dependencies with the file that names them.
type Deps = Vec<(String, Dependency)>;

/// A unit converted, with the dependencies still to resolve.
pub(super) struct Converted {
    draft: Draft,
    needs: Deps,
    before: Deps,
}

/// Converts one plan.
fn convert_plan(
    p: &Plan,
    host: &dyn Host,
    warnings: &mut Vec<Warning>,
) -> Result<Converted, Refusal> {
    let svc = p.service();
    let hostname = host.hostname();
    let ctx = specifiers::Context {
        unit: &svc.name,
        fragment: &svc.path,
        hostname: hostname.as_deref(),
    };
    let mut report = Report::new(&svc.path, warnings);
    let info = unit_section::read(&svc.unit, &mut report);
    let input = service::Input {
        unit: &svc.unit,
        ctx,
        host,
        name: &p.name,
        timed: p.service.is_some(),
    };
    let converted = service::convert(&input, &mut report)?;
    let mut pod = converted.pod;
    let mut about = info.about.clone();
    let mut sources = vec![svc.path.clone()];
    let mut needs: Deps = info
        .needs
        .iter()
        .map(|d| (svc.path.clone(), d.clone()))
        .collect();
    let mut before: Deps = info
        .before
        .iter()
        .map(|d| (svc.path.clone(), d.clone()))
        .collect();
    let (kind, origin) = if p.service.is_some() {
        let t = &p.main;
        let mut report = Report::new(&t.path, warnings);
        let tinfo: UnitInfo = unit_section::read(&t.unit, &mut report);
        let (kind, origin) = timer::convert(&t.unit, &converted.kind, &mut pod, &mut report)?;
        about = tinfo
            .about
            .iter()
            .chain(info.about.iter())
            .cloned()
            .collect();
        sources.insert(0, t.path.clone());
        needs.extend(tinfo.needs.iter().map(|d| (t.path.clone(), d.clone())));
        before.extend(tinfo.before.iter().map(|d| (t.path.clone(), d.clone())));
        (kind, origin)
    } else {
        (converted.kind, Origins::new())
    };
    let draft = Draft {
        name: p.name.clone(),
        kind,
        labels: [("app".to_string(), p.name.clone())].into_iter().collect(),
        pod,
        sources,
        about,
        origin,
    };
    Ok(Converted {
        draft,
        needs,
        before,
    })
}

#[cfg(test)]
mod tests;
