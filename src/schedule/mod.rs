//! Cron schedules: parsing a CronJob's `schedule` and `time_zone`, and the
//! one question a controller asks of them, [`next_after`].
//!
//! Built on `croner` (crontab(5) semantics: Sunday is 0 or 7, day-of-month
//! OR day-of-week, names, ranges, steps, `L`/`W`/`#`). Two forms are
//! accepted, told apart by their field count:
//!
//! - the standard 5 fields `minute hour day-of-month month day-of-week`,
//!   parsed strictly (no seconds, no year), plus the macros `@yearly`,
//!   `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
//! - 6 fields with seconds first (`*/10 * * * * *`).
//!
//! Time zones are IANA names (`Europe/Berlin`), UTC when none is given,
//! read from the system's tz database ([`zone`]).
//! Daylight saving time is handled as cronie does it: a local time that is
//! skipped (spring forward) runs once right after the gap, a local time
//! that happens twice (fall back) runs once; schedules that fire at least
//! hourly run on the wall clock as it goes.
//!
//! Pure: no clock is read; every instant is an argument. Errors carry the
//! byte range of the offending field so unit file diagnostics can point
//! at it.

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use std::fmt;
pub use zone::Zone;

mod zone;

/// A parsed schedule, as written.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: Cron,
    /// The 6-field form (seconds first).
    with_seconds: bool,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Why a schedule or a time zone was rejected. `span` is the byte range in
/// the text of the field at fault, when one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError {
    pub message: String,
    pub span: Option<(usize, usize)>,
    pub help: Option<String>,
}

impl ScheduleError {
    fn new(message: impl Into<String>) -> ScheduleError {
        ScheduleError {
            message: message.into(),
            span: None,
            help: None,
        }
    }

    fn at(mut self, start: usize, end: usize) -> ScheduleError {
        self.span = Some((start, end));
        self
    }

    fn help(mut self, help: impl Into<String>) -> ScheduleError {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScheduleError {}

/// One field of the crontab line: its name and the values it takes.
struct FieldDef {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: FieldDef = FieldDef {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: FieldDef = FieldDef {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldDef = FieldDef {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldDef = FieldDef {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldDef = FieldDef {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: FieldDef = FieldDef {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

const FIVE: [&FieldDef; 5] = [&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK];
const SIX: [&FieldDef; 6] = [&SECOND, &MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK];

/// The macros accepted, with what they stand for.
pub const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses a 5-field crontab line, a macro, or the 6-field form with
    /// seconds.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        if trimmed.is_empty() {
            return Err(ScheduleError::new("the schedule is empty")
                .help("write 5 fields, e.g. \"30 2 * * *\" for 02:30 every day"));
        }
        if trimmed.starts_with('@') {
            return Self::parse_macro(trimmed, lead);
        }
        let fields: Vec<(usize, &str)> = split_fields(text);
        let defs: &[&FieldDef] = match fields.len() {
            5 => &FIVE,
            6 => &SIX,
            n => {
                return Err(ScheduleError::new(format!(
                    "a schedule has 5 fields (minute hour day-of-month month day-of-week), \
                     or 6 with seconds first; found {n}"
                ))
                .at(lead, lead + trimmed.len())
                .help("e.g. \"*/5 * * * *\" every 5 minutes, \"*/10 * * * * *\" every 10 seconds"))
            }
        };
        for ((start, field), def) in fields.iter().zip(defs) {
            check_field(field, def).map_err(|e| e.at(*start, start + field.len()))?;
        }
        let with_seconds = fields.len() == 6;
        let cron = parser(with_seconds).parse(trimmed).map_err(|e| {
            // Find the field croner objects to by parsing each alone.
            let culprit = fields.iter().enumerate().find(|(i, (_, f))| {
                let mut probe: Vec<&str> = vec!["*"; fields.len()];
                probe[*i] = f;
                parser(with_seconds).parse(&probe.join(" ")).is_err()
            });
            match culprit {
                Some((i, (start, f))) => ScheduleError::new(format!(
                    "invalid {} field `{f}`: {}",
                    defs[i].name,
                    croner_message(&e)
                ))
                .at(*start, start + f.len()),
                None => ScheduleError::new(format!("invalid schedule: {}", croner_message(&e))),
            }
        })?;
        let schedule = Schedule {
            text: trimmed.to_string(),
            cron,
            with_seconds,
        };
        schedule.check_fires(lead, trimmed.len())?;
        Ok(schedule)
    }

    fn parse_macro(trimmed: &str, lead: usize) -> Result<Schedule, ScheduleError> {
        let lower = trimmed.to_ascii_lowercase();
        let span = (lead, lead + trimmed.len());
        if lower == "@reboot" {
            return Err(ScheduleError::new("`@reboot` is not a schedule drover runs")
                .at(span.0, span.1)
                .help(
                    "to run something when drover starts, put a Job (or a Pod) in the units folder",
                ));
        }
        let Some((_, expansion)) = MACROS.iter().find(|(m, _)| *m == lower) else {
            let names: Vec<&str> = MACROS.iter().map(|(m, _)| *m).collect();
            let mut err = ScheduleError::new(format!(
                "unknown schedule macro `{trimmed}`; expected one of: {}",
                names.join(", ")
            ))
            .at(span.0, span.1);
            if let Some(c) = closest(&lower, &names) {
                err = err.help(format!("did you mean `{c}`?"));
            }
            return Err(err);
        };
        let cron = parser(false)
            .parse(expansion)
            .expect("the macros expand to valid schedules");
        Ok(Schedule {
            text: trimmed.to_string(),
            cron,
            with_seconds: false,
        })
    }

    /// A pattern can be valid field by field and still never fire
    /// (`0 0 30 2 *`, February 30th).
    fn check_fires(&self, lead: usize, len: usize) -> Result<(), ScheduleError> {
        let probe = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid instant");
        match self.cron.find_next_occurrence(&probe, false) {
            Ok(_) => Ok(()),
            Err(_) => Err(ScheduleError::new(format!(
                "the schedule `{}` never fires (no such day exists)",
                self.text
            ))
            .at(lead, lead + len)),
        }
    }

    /// The schedule as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it names seconds (the 6-field form).
    pub fn has_seconds(&self) -> bool {
        self.with_seconds
    }

    /// The first scheduled instant strictly after `t`, in zone `tz`.
    pub fn next_after(&self, tz: Zone, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = floor_second(t).with_timezone(&tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last scheduled instant at or before `t`, in zone `tz`.
    pub fn last_at_or_before(&self, tz: Zone, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = floor_second(t).with_timezone(&tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` instants after `t` (for `describe cronjob`).
    pub fn upcoming(&self, tz: Zone, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(tz, at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

/// The first scheduled instant strictly after `t` (the module's contract,
/// as a free function: `next_after(schedule, tz, t)`).
pub fn next_after(schedule: &Schedule, tz: Zone, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(tz, t)
}

/// Parses an IANA time zone name, suggesting the closest one when it is
/// unknown (also the right capitalisation: `europe/berlin`).
pub fn parse_time_zone(name: &str) -> Result<Zone, ScheduleError> {
    let err = match Zone::named(name) {
        Ok(zone) => return Ok(zone),
        Err(e @ zone::ZoneError::Unreadable { .. }) => {
            return Err(ScheduleError::new(e.to_string()))
        }
        Err(e @ zone::ZoneError::Unknown(_)) => ScheduleError::new(e.to_string()),
    };
    let known = zone::names();
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    if names.len() <= 1 {
        return Err(err.help(
            "no time zone database (/usr/share/zoneinfo/tzdata.zi): install tzdata, or use \"UTC\"",
        ));
    }
    let lower = name.to_ascii_lowercase();
    let guess = names
        .iter()
        .find(|n| n.to_ascii_lowercase() == lower)
        .copied()
        .or_else(|| closest(name, &names));
    Err(match guess {
        Some(g) => err.help(format!("did you mean \"{g}\"?")),
        None => err.help("use an IANA name such as \"Europe/Berlin\" or \"UTC\""),
    })
}

/// The zone of a CronJob: its `time_zone`, else UTC.
pub fn zone_or_utc(name: Option<&str>) -> Result<Zone, ScheduleError> {
    match name {
        Some(n) => parse_time_zone(n),
        None => Ok(Zone::utc()),
    }
}

fn parser(with_seconds: bool) -> CronParser {
    CronParser::builder()
        .seconds(if with_seconds {
            Seconds::Required
        } else {
            Seconds::Disallowed
        })
        .year(Year::Disallowed)
        .build()
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0)
        .single()
        .expect("whole seconds are valid")
}

/// Whitespace-separated fields with their byte offsets.
fn split_fields(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// The checks croner's messages are too terse for: values out of range,
/// unknown names, backwards ranges, zero steps.
fn check_field(field: &str, def: &FieldDef) -> Result<(), ScheduleError> {
    let upper = field.to_ascii_uppercase();
    for item in upper.split(',') {
        let item = item.strip_prefix('+').unwrap_or(item);
        if item.is_empty() {
            return Err(ScheduleError::new(format!(
                "empty list element in the {} field `{field}`",
                def.name
            )));
        }
        // L, W and # are croner's to judge (names such as JUL and WED
        // hold those letters too).
        let bare = def
            .names
            .iter()
            .fold(item.to_string(), |s, n| s.replace(n, ""));
        if bare.contains(['L', 'W', '#']) {
            continue;
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(0) => {
                    return Err(ScheduleError::new(format!(
                        "the step in the {} field `{field}` must be at least 1",
                        def.name
                    )))
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(ScheduleError::new(format!(
                        "the step `{step}` in the {} field `{field}` is not a number",
                        def.name
                    )))
                }
            }
        }
        if base == "*" || base == "?" {
            continue;
        }
        let (lo, hi) = match base.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (base, None),
        };
        let lo_v = value(lo, def, field)?;
        if let Some(hi) = hi {
            let hi_v = value(hi, def, field)?;
            // `FRI-SUN` is a range to Sunday as 7.
            let hi_v = if def.name == "day-of-week" && hi_v == 0 && lo_v > 0 {
                7
            } else {
                hi_v
            };
            if lo_v > hi_v {
                return Err(ScheduleError::new(format!(
                    "the range `{base}` in the {} field goes backwards",
                    def.name
                ))
                .help(format!("write it as `{hi}-{lo}`, or as a list")));
            }
        }
    }
    Ok(())
}

fn value(word: &str, def: &FieldDef, field: &str) -> Result<u32, ScheduleError> {
    if let Some(i) = def.names.iter().position(|n| *n == word) {
        return Ok(i as u32 + u32::from(def.name == "month"));
    }
    match word.parse::<u32>() {
        Ok(v) if (def.min..=def.max).contains(&v) => Ok(v),
        Ok(v) => Err(ScheduleError::new(format!(
            "{v} is out of range for the {} field (expected {}-{})",
            def.name, def.min, def.max
        ))),
        Err(_) => {
            let mut err = ScheduleError::new(format!(
                "`{word}` is not a valid value of the {} field `{field}`",
                def.name
            ));
            err = if def.names.is_empty() {
                err.help(format!("expected a number {}-{}", def.min, def.max))
            } else {
                err.help(format!(
                    "expected a number {}-{} or one of {}",
                    def.min,
                    def.max,
                    def.names.join(", ")
                ))
            };
            Err(err)
        }
    }
}

fn croner_message(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::ComponentError(m) | E::InvalidPattern(m) | E::IllegalCharacters(m) => {
            m.trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

/// The candidate nearest to `word` by edit distance, if near enough.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let len = w.chars().count();
    let limit = (len / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        // The distance is at least the difference in length: skip what
        // cannot be near enough without the quadratic comparison (a long
        // garbage time zone was compared with all ~600 zone names).
        if c.chars().count().abs_diff(len) > limit {
            continue;
        }
        let d = levenshtein(&w, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
