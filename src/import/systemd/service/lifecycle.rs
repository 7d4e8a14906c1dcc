//! How a service restarts, stops and reloads: `Restart=`, `Type=oneshot`
//! as a Job, `TimeoutStopSec=`, `KillSignal=`, `KillMode=`, `ExecReload=`.

use super::super::values::{self, Span};
use super::build::line_of;
use super::{Input, Report, Settings};
use crate::api::{Dur, RestartPolicy};
use crate::import::draft::{origin, Origins};
use crate::import::{DraftKind, DraftPod};
use std::time::Duration;

/// systemd's DefaultTimeoutStopSec.
const SYSTEMD_STOP_TIMEOUT: Dur = Dur::secs(90);

/// drover's durations are whole milliseconds.
pub(super) fn truncate_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

pub(super) fn restart_policy(
    s: &Settings,
    report: &mut Report,
    origins: &mut Origins,
) -> RestartPolicy {
    let Some(e) = s.restart else {
        origins.insert(
            "restart_policy",
            "Restart= not set: systemd's default is no".into(),
        );
        return RestartPolicy::Never;
    };
    origins.insert("restart_policy", origin("Restart", e.line));
    match e.value.as_str() {
        "no" => RestartPolicy::Never,
        "always" => RestartPolicy::Always,
        "on-failure" => RestartPolicy::OnFailure,
        v @ ("on-abnormal" | "on-abort" | "on-watchdog") => {
            report.warn(
                e.line,
                format!(
                    "Restart={v} restarts only after a signal or timeout; drover's OnFailure also \
                     restarts after a non-zero exit"
                ),
            );
            RestartPolicy::OnFailure
        }
        "on-success" => {
            report.warn(
                e.line,
                "Restart=on-success has no drover equivalent: converted to Always, which also \
                 restarts after a failure",
            );
            RestartPolicy::Always
        }
        other => {
            report.warn(
                e.line,
                format!("Restart={other} is not a restart setting systemd knows; converted as no"),
            );
            RestartPolicy::Never
        }
    }
}

/// A oneshot service runs to completion: a Job (whose restart_policy must
/// be OnFailure or Never).
pub(super) fn oneshot(
    input: &Input,
    s: &Settings,
    policy: RestartPolicy,
    pod: &mut DraftPod,
    report: &mut Report,
) -> DraftKind {
    let policy = match policy {
        RestartPolicy::Always => {
            report.warn(
                line_of(s.restart),
                "Restart=always is not allowed for Type=oneshot (systemd refuses it too); \
                 converted as on-failure",
            );
            RestartPolicy::OnFailure
        }
        p => p,
    };
    pod.restart_policy = policy;
    if let Some(e) = s.remain_after_exit {
        if values::boolean(&e.value) == Some(true) {
            report.note(
                e.line,
                "RemainAfterExit=yes: a completed Job stays Complete, as the service stays active",
            );
        }
    }
    let backoff_limit = match policy {
        // systemd runs it once.
        RestartPolicy::Never => 0,
        _ => 6,
    };
    if !input.timed {
        report.note(
            line_of(s.kind),
            "Type=oneshot: converted to a Job, which runs once to completion (and never again, \
             also across drover restarts; delete it to run it again)",
        );
    }
    DraftKind::Job { backoff_limit }
}

pub(super) fn grace(s: &Settings, pod: &mut DraftPod, report: &mut Report) {
    let Some(e) = s.timeout_stop else {
        pod.termination_grace_period = Some(SYSTEMD_STOP_TIMEOUT);
        pod.origin.insert(
            "termination_grace_period",
            "TimeoutStopSec= not set: systemd's default is 90s".into(),
        );
        return;
    };
    match values::time_span(&e.value, Duration::from_secs(1)) {
        Some(Span::Finite(d)) if !d.is_zero() => {
            pod.termination_grace_period = Some(Dur(truncate_ms(d).max(Duration::from_millis(1))));
            pod.origin
                .insert("termination_grace_period", origin(&e.key, e.line));
        }
        Some(_) => report.warn(
            e.line,
            format!(
                "{}={}: systemd waits without limit for the service to stop; drover needs a \
                 bound and uses its default (30s): set termination_grace_period if the \
                 service needs longer",
                e.key, e.value
            ),
        ),
        None => report.warn(
            e.line,
            format!("{}={} is not a time span; not converted", e.key, e.value),
        ),
    }
}

pub(super) fn stopping(s: &Settings, report: &mut Report) {
    if let Some(e) = s.kill_signal {
        match values::signal_name(&e.value).as_deref() {
            Some("TERM") => {}
            _ => report.warn(
                e.line,
                format!(
                    "KillSignal={}: drover stops processes with SIGTERM (then SIGKILL after \
                     termination_grace_period); the program must stop on SIGTERM too",
                    e.value
                ),
            ),
        }
    }
    if let Some(e) = s.kill_mode {
        match e.value.as_str() {
            "control-group" => {}
            "mixed" => report.note(
                e.line,
                "KillMode=mixed: drover sends SIGTERM to every process of the service, not only \
                 the main one (as KillMode=control-group); SIGKILL goes to all alike",
            ),
            v => report.warn(
                e.line,
                format!(
                    "KillMode={v}: drover stops the whole process tree; processes the service \
                     leaves behind (such as ssh sessions or cron jobs) do not survive a stop or \
                     restart of the pod"
                ),
            ),
        }
    }
}

/// ExecReload= cannot run; say how to reload under drover.
pub(super) fn reload(input: &Input, s: &Settings, kind: &DraftKind, report: &mut Report) {
    let noun = match kind {
        DraftKind::Pod => "pod",
        DraftKind::ReplicaSet { .. } => "rs",
        DraftKind::Job { .. } | DraftKind::CronJob { .. } => return reload_job(s, report),
    };
    for e in &s.exec_reload {
        let words: Vec<&str> = e.value.split_whitespace().collect();
        let msg = match reload_signal(&words) {
            Some(sig) => format!(
                "ExecReload= has no drover equivalent: use drover kill {noun} {} --signal {sig}",
                input.name
            ),
            None => format!(
                "ExecReload= has no drover equivalent: if the program reloads on a signal, use \
                 drover kill {noun} {} --signal HUP; else run `{}` by hand",
                input.name, e.value
            ),
        };
        report.warn(e.line, msg);
    }
}

fn reload_job(s: &Settings, report: &mut Report) {
    for e in &s.exec_reload {
        report.warn(
            e.line,
            "ExecReload= has no drover equivalent for a Job; not converted",
        );
    }
}

/// `kill -HUP $MAINPID`, `/bin/kill -s USR1 $MAINPID`: the signal.
fn reload_signal(words: &[&str]) -> Option<String> {
    let prog = words.first()?.trim_start_matches(['-', '@', ':', '+', '!']);
    if !(prog == "kill" || prog.ends_with("/kill")) {
        return None;
    }
    if !words.iter().any(|w| w.contains("MAINPID")) {
        return None;
    }
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        if *w == "-s" || *w == "--signal" {
            return it.next().and_then(|s| values::signal_name(s));
        }
        if let Some(sig) = w.strip_prefix('-') {
            if let Some(name) = values::signal_name(sig) {
                return Some(name);
            }
        }
    }
    Some("TERM".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_signals() {
        let sig = |line: &str| reload_signal(&line.split_whitespace().collect::<Vec<_>>());
        assert_eq!(sig("/bin/kill -HUP $MAINPID").as_deref(), Some("HUP"));
        assert_eq!(sig("kill -s USR1 $MAINPID").as_deref(), Some("USR1"));
        assert_eq!(
            sig("/bin/kill -SIGUSR2 ${MAINPID}").as_deref(),
            Some("USR2")
        );
        assert_eq!(sig("/bin/kill $MAINPID").as_deref(), Some("TERM"));
        assert_eq!(sig("/usr/sbin/sshd -t"), None);
        assert_eq!(sig("/usr/sbin/nginx -s reload"), None);
    }
}
