//! Dependencies between the units of one run: `After=`, `Requires=`,
//! `Wants=`, `BindsTo=`, `Requisite=` (and `Before=`, seen from the other
//! side) naming a unit converted in the same run become an init process
//! that waits for it; naming anything else, a note or a warning that says
//! why nothing waits.

use super::unit_section::Dependency;
use super::{directives, Converted, Plan, Report};
use crate::import::draft::{DraftKind, DraftProcess};
use crate::import::{names, Warning};
use std::collections::BTreeMap;

/// The units of this run by every name other units may call them.
#[derive(Default)]
pub(super) struct Peers {
    /// systemd unit name -> (drover name, kind); None for a service a timer
    /// runs (nothing to wait for).
    by_unit: BTreeMap<String, Option<(String, DraftKind)>>,
}

impl Peers {
    pub(super) fn add(&mut self, p: &Plan) {
        match &p.service {
            None => {
                let v = Some((p.name.clone(), p.kind.clone()));
                self.by_unit.insert(p.main.name.full.clone(), v.clone());
                for e in p.main.unit.entries("Install") {
                    if e.key == "Alias" {
                        for a in e.value.split_whitespace() {
                            self.by_unit.insert(a.to_string(), v.clone());
                        }
                    }
                }
            }
            Some(s) => {
                self.by_unit.insert(s.name.full.clone(), None);
                self.by_unit.insert(
                    p.main.name.full.clone(),
                    Some((p.name.clone(), p.kind.clone())),
                );
            }
        }
    }
}

/// `waiter` waits for `target` (of `kind`), because of `why` at
/// `file:line`.
struct Edge {
    waiter: String,
    target: String,
    kind: DraftKind,
    why: String,
    file: String,
    line: usize,
}

/// Dependencies between units of this run become init processes that
/// wait; the others are reported.
pub(super) fn link(units: &mut [Converted], peers: &Peers, warnings: &mut Vec<Warning>) {
    let mut edges: Vec<Edge> = Vec::new();
    for c in units.iter() {
        for (file, d) in &c.needs {
            let mut report = Report::new(file, warnings);
            if let Some((target, kind)) = peer(peers, &d.unit, &c.draft.name, d, &mut report) {
                edges.push(Edge {
                    waiter: c.draft.name.clone(),
                    target,
                    kind,
                    why: format!("{}={}", d.directive, d.unit),
                    file: file.clone(),
                    line: d.line,
                });
            }
        }
        for (file, d) in &c.before {
            let mut report = Report::new(file, warnings);
            if let Some((other, _)) = peer(peers, &d.unit, &c.draft.name, d, &mut report) {
                edges.push(Edge {
                    waiter: other,
                    target: c.draft.name.clone(),
                    kind: c.draft.kind.clone(),
                    why: format!("Before={}", d.unit),
                    file: file.clone(),
                    line: d.line,
                });
            }
        }
    }
    for e in edges {
        let Some(c) = units.iter_mut().find(|c| c.draft.name == e.waiter) else {
            continue;
        };
        let pod = &mut c.draft.pod;
        let (what, condition) = e.kind.wait_target(&e.target);
        let name =
            names::unit_name(&format!("wait-{}", e.target), 63).unwrap_or_else(|| "wait".into());
        if pod.init_processes.iter().any(|p| p.spec.name == name) {
            continue;
        }
        // Waits come first, in the order found.
        let waits = pod
            .init_processes
            .iter()
            .take_while(|p| p.spec.name.starts_with("wait-"))
            .count();
        let p = DraftProcess::new(
            &name,
            vec![
                "drover".into(),
                "wait".into(),
                what.clone(),
                condition.into(),
            ],
        )
        .from("command", format!("{}, line {}", e.why, e.line));
        pod.init_processes.insert(waits, p);
        warnings.push(Warning::new(
            &e.file,
            Some(e.line),
            format!(
                "{}: drover has no dependency graph; `{}` waits for {what} with an init process \
                 (drover wait {what} {condition}, which gives up after 30s, and then \
                 restart_policy applies)",
                e.why, e.waiter
            ),
        ));
    }
}

/// The unit a dependency names, if it is converted in this run and can
/// be waited for; otherwise reports why not.
fn peer(
    peers: &Peers,
    unit: &str,
    me: &str,
    d: &Dependency,
    report: &mut Report,
) -> Option<(String, DraftKind)> {
    match peers.by_unit.get(unit) {
        Some(Some((name, kind))) if name != me => Some((name.clone(), kind.clone())),
        Some(Some(_)) => None,
        Some(None) => {
            report.warn(
                d.line,
                format!(
                    "{}={unit}: that service runs on a timer here (a CronJob): there is nothing \
                     to wait for; not converted",
                    d.directive
                ),
            );
            None
        }
        None if unit.ends_with(".socket") => {
            report.warn(
                d.line,
                format!(
                    "{}={unit}: socket activation has no drover equivalent; the service must \
                     open its own sockets (most daemons do when started without one)",
                    d.directive
                ),
            );
            None
        }
        None if directives::is_boot_target(unit) => {
            report.note(
                d.line,
                format!(
                    "{}={unit}: drover has no boot targets; its units start once drover runs \
                     (its service starts after network.target)",
                    d.directive
                ),
            );
            None
        }
        None => {
            report.warn(
                d.line,
                format!(
                    "{}={unit}: not converted in this run, so nothing waits for it; import it in \
                     the same command to make this unit wait for it",
                    d.directive
                ),
            );
            None
        }
    }
}
