//! A `.timer` and the service it starts -> a CronJob: `OnCalendar=` is the
//! schedule (see `calendar.rs`), the service's pod the job template.
//!
//! systemd never starts a timer's service while it still runs: that is
//! `concurrency_policy = "Forbid"`. `Persistent=true` (a run missed while
//! the machine was off starts at boot) is drover's default behaviour after
//! downtime; without it systemd skips missed runs, which a short
//! `starting_deadline` reproduces. Monotonic triggers (`OnBootSec=`,
//! `OnUnitActiveSec=`, ...) are not calendar times and have no cron form.

use super::calendar;
use super::parse::UnitFile;
use super::values;
use super::Report;
use crate::api::{ConcurrencyPolicy, Dur, RestartPolicy};
use crate::import::draft::origin;
use crate::import::{DraftKind, DraftPod, Refusal};

/// How long after a scheduled time a run may still start when
/// `Persistent=` is off: long enough for a busy daemon, short enough
/// that a run missed while drover was down is skipped, as systemd skips it.
const NOT_PERSISTENT_DEADLINE: Dur = Dur::secs(60);

/// Turns the service's pod into a CronJob's job template.
pub fn convert(
    timer: &UnitFile,
    service_kind: &DraftKind,
    pod: &mut DraftPod,
    report: &mut Report,
) -> Result<(DraftKind, crate::import::draft::Origins), Refusal> {
    let mut origins = crate::import::draft::Origins::new();
    let mut calendars = Vec::new();
    let mut monotonic = Vec::new();
    let mut persistent = None;
    for e in timer.entries("Timer") {
        let key = e.key.as_str();
        match key {
            "OnCalendar" if e.value.is_empty() => calendars.clear(),
            "OnCalendar" => calendars.push(e),
            "OnActiveSec" | "OnBootSec" | "OnStartupSec" | "OnUnitActiveSec"
            | "OnUnitInactiveSec" => monotonic.push(e),
            "Persistent" => persistent = Some(e),
            // Read by the caller, which found the service through it.
            "Unit" => {}
            "RandomizedDelaySec" | "FixedRandomDelay" => report.warn(
                e.line,
                format!("{key}={}: drover runs a CronJob at its scheduled time, without a random delay", e.value),
            ),
            "AccuracySec" => report.note(
                e.line,
                "AccuracySec= is not needed: drover runs a CronJob at its scheduled time, to the second",
            ),
            "WakeSystem" => report.warn(
                e.line,
                "WakeSystem= has no drover equivalent: a suspended machine is not woken",
            ),
            "RemainAfterElapse" => report.note(
                e.line,
                "RemainAfterElapse= is about the timer's own state; nothing to convert",
            ),
            "OnClockChange" | "OnTimezoneChange" => report.warn(
                e.line,
                format!("{key}= has no drover equivalent; not converted"),
            ),
            _ => report.warn(
                e.line,
                format!("{key}= in [Timer] is not known to drover import; not converted"),
            ),
        }
    }
    for e in &monotonic {
        report.warn(
            e.line,
            format!(
                "{}={} is not a calendar time (it counts from boot or from the last run): cron \
                 has no equivalent{}",
                e.key,
                e.value,
                if calendars.is_empty() {
                    ""
                } else {
                    "; only OnCalendar= is converted"
                }
            ),
        );
    }
    let Some(first) = calendars.first() else {
        let why = if monotonic.is_empty() {
            "the timer has no OnCalendar=: there is no schedule to convert".to_string()
        } else {
            let names: Vec<String> = monotonic
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect();
            format!(
                "the timer has no OnCalendar=, only {}, which count from boot or from the last \
                 run: a CronJob needs a calendar time; add one (e.g. OnCalendar=daily) to a \
                 copy of the timer, or convert the service alone",
                names.join(", ")
            )
        };
        return Err(report.refuse(None, why));
    };
    let cron = calendar::to_cron(&first.value).map_err(|e| {
        report.refuse(
            Some(first.line),
            format!("OnCalendar={} has no cron equivalent: {e}", first.value),
        )
    })?;
    origins.insert("schedule", origin("OnCalendar", first.line));
    for e in &calendars[1..] {
        report.warn(
            e.line,
            format!(
                "OnCalendar={}: a CronJob has one schedule; this one is not converted (a \
                 second CronJob with the same template would run it)",
                e.value
            ),
        );
    }
    if cron.time_zone.is_some() {
        origins.insert("time_zone", origin("OnCalendar", first.line));
    }
    origins.insert(
        "concurrency_policy",
        "systemd does not start a timer's service while it runs".into(),
    );
    let starting_deadline = match persistent {
        Some(e) if values::boolean(&e.value) == Some(true) => {
            origins.insert(
                "starting_deadline",
                format!(
                    "{}; a missed run starts when drover is back",
                    origin("Persistent", e.line)
                ),
            );
            None
        }
        other => {
            let why = match other {
                Some(e) => format!("Persistent=no, line {}", e.line),
                None => "Persistent= not set".into(),
            };
            origins.insert(
                "starting_deadline",
                format!("{why}: systemd skips runs missed while the machine was off"),
            );
            Some(NOT_PERSISTENT_DEADLINE)
        }
    };
    // A Job's pods restart OnFailure or Never.
    if pod.restart_policy == RestartPolicy::Always {
        pod.restart_policy = RestartPolicy::OnFailure;
        report.warn(
            0,
            "Restart=always for a service a timer starts: converted to OnFailure (a Job's pods \
             run to completion)",
        );
    }
    let backoff_limit = match service_kind {
        DraftKind::Job { backoff_limit } => *backoff_limit,
        _ if pod.restart_policy == RestartPolicy::Never => 0,
        _ => 6,
    };
    Ok((
        DraftKind::CronJob {
            schedule: cron.schedule,
            time_zone: cron.time_zone,
            concurrency_policy: ConcurrencyPolicy::Forbid,
            starting_deadline,
            backoff_limit,
        },
        origins,
    ))
}
