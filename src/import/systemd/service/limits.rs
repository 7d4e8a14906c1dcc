//! `Limit*=`, `MemoryMax=`, `CPUQuota=`, `TasksMax=` -> `rlimits` and
//! `resources`.

use super::super::values::{self, Size, Span};
use super::{Report, Settings};
use crate::api::{CpuQuantity, MemoryQuantity, Resources, RlimitValue};
use crate::import::DraftProcess;
use std::time::Duration;

pub(super) fn limits(s: &Settings, p: &mut DraftProcess, report: &mut Report) {
    let mut lines = Vec::new();
    for (name, e) in &s.limits {
        match rlimit(name, &e.value) {
            Ok((v, note)) => {
                p.spec.rlimits.insert(name.to_string(), v);
                lines.push(format!("{}=, line {}", e.key, e.line));
                if let Some(n) = note {
                    report.warn(e.line, n);
                }
            }
            Err(why) => report.warn(
                e.line,
                format!("{}={}: {why}; not converted", e.key, e.value),
            ),
        }
    }
    if !lines.is_empty() {
        p.origin.insert("rlimits", lines.join("; "));
    }
}

/// One `Limit*=` value as drover's rlimit (soft and hard alike).
fn rlimit(name: &str, value: &str) -> Result<(RlimitValue, Option<String>), String> {
    let (soft, note) = match value.split_once(':') {
        Some((soft, hard)) if soft != hard => (
            soft,
            Some(format!(
                "`{value}` is a soft and a hard limit; drover sets one value as both: the soft \
                 limit {soft} (the process cannot raise it to {hard})"
            )),
        ),
        Some((soft, _)) => (soft, None),
        None => (value, None),
    };
    let soft = soft.trim();
    if soft == "infinity" {
        return Ok((RlimitValue::Unlimited, note));
    }
    let n: u64 = match name {
        "cpu" => match values::time_span(soft, Duration::from_secs(1)) {
            Some(Span::Finite(d)) => d.as_secs().max(1),
            Some(Span::Infinite) => return Ok((RlimitValue::Unlimited, note)),
            None => return Err("expected seconds".into()),
        },
        "as" | "core" | "data" | "fsize" | "memlock" | "msgqueue" | "stack" => {
            match values::size(soft) {
                Some(Size::Bytes(b)) => b,
                Some(Size::Infinite) => return Ok((RlimitValue::Unlimited, note)),
                _ => return Err("expected a size such as 64M".into()),
            }
        }
        "nice" => {
            // `+5`/`-5` is a nice level; a bare number is the raw limit.
            if let Some(level) = soft.strip_prefix(['+', '-']) {
                let level: i64 = level.parse().map_err(|_| "expected a nice level")?;
                let level = if soft.starts_with('-') { -level } else { level };
                if !(-20..=19).contains(&level) {
                    return Err("a nice level is -20..19".into());
                }
                (20 - level) as u64
            } else {
                soft.parse().map_err(|_| "expected a number")?
            }
        }
        _ => soft.parse().map_err(|_| "expected a number or infinity")?,
    };
    Ok((RlimitValue::Limit(n), note))
}

pub(super) fn resources(s: &Settings, p: &mut DraftProcess, report: &mut Report) {
    let mut r = Resources::default();
    let mut from = Vec::new();
    if let Some(e) = s.memory_max {
        match values::size(&e.value) {
            Some(Size::Bytes(b)) => {
                r.memory = Some(MemoryQuantity(b));
                from.push(format!("{}=, line {}", e.key, e.line));
            }
            Some(Size::Infinite) => {}
            Some(Size::Percent(_)) => report.warn(
                e.line,
                format!(
                    "{}={}: a share of the host's memory is not converted; give a size",
                    e.key, e.value
                ),
            ),
            None => report.warn(
                e.line,
                format!("{}={} is not a size; not converted", e.key, e.value),
            ),
        }
    }
    if let Some(e) = s.cpu_quota {
        let pct = e
            .value
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok());
        match pct {
            Some(p) if p > 0.0 => {
                r.cpu = Some(CpuQuantity((p * 10.0).round() as u64));
                from.push(format!("CPUQuota=, line {}", e.line));
            }
            _ => report.warn(
                e.line,
                format!("CPUQuota={} is not a percentage; not converted", e.value),
            ),
        }
    }
    if let Some(e) = s.tasks_max {
        match e.value.as_str() {
            "infinity" => {}
            v => match v.parse::<u64>() {
                Ok(n) => {
                    r.pids = Some(n);
                    from.push(format!("TasksMax=, line {}", e.line));
                }
                Err(_) => report.warn(
                    e.line,
                    format!(
                        "TasksMax={v}: only a number of tasks is converted (not a share of \
                         the host's limit)"
                    ),
                ),
            },
        }
    }
    if !r.is_empty() {
        p.spec.resources = Some(r);
        p.origin.insert("resources", from.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits() {
        let ok = |name: &str, v: &str| rlimit(name, v).map(|(v, _)| v);
        assert_eq!(ok("nofile", "65535"), Ok(RlimitValue::Limit(65535)));
        assert_eq!(ok("core", "infinity"), Ok(RlimitValue::Unlimited));
        assert_eq!(ok("memlock", "64M"), Ok(RlimitValue::Limit(64 << 20)));
        assert_eq!(ok("cpu", "1h"), Ok(RlimitValue::Limit(3600)));
        assert_eq!(ok("nice", "-5"), Ok(RlimitValue::Limit(25)));
        assert_eq!(ok("nice", "30"), Ok(RlimitValue::Limit(30)));
        assert_eq!(ok("nofile", "1024:524288"), Ok(RlimitValue::Limit(1024)));
        assert!(rlimit("nofile", "1024:524288").unwrap().1.is_some());
        assert!(rlimit("nofile", "lots").is_err());
    }
}
