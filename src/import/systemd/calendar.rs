//! `OnCalendar=` (systemd.time(7), "Calendar events") -> a CronJob
//! schedule, where cron can say the same thing.
//!
//! `[Weekdays] [Year-]Month-Day [Hour:Minute[:Second]] [Time zone]`, each
//! component `*`, a value, a list (`,`), a range (`..`) or a repetition
//! (`value/step`: the value and every step after it), plus the shorthands
//! (`daily`, `weekly`, ...). Cron has no years, no "n-th last day" but the
//! last (`~1` is `L`), no fractional seconds, and it ORs day-of-month with
//! day-of-week where systemd ANDs them: those are refused with the reason,
//! never approximated.
//!
//! A schedule with seconds other than `:00` becomes the 6-field form
//! (seconds first), which drover accepts; one that matches a macro is
//! written as the macro (`@daily`).

/// A cron schedule and the time zone named in the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    pub schedule: String,
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CalendarError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, CalendarError> {
    Err(CalendarError(msg.into()))
}

/// Converts one `OnCalendar=` expression.
pub fn to_cron(expr: &str) -> Result<Cron, CalendarError> {
    let mut words: Vec<&str> = expr.split_whitespace().collect();
    if words.is_empty() {
        return err("the expression is empty");
    }
    let mut time_zone = None;
    if words.len() > 1 {
        let last = words[words.len() - 1];
        if is_time_zone(last) {
            time_zone = Some(last.to_string());
            words.pop();
        }
    }
    let fields = if words.len() == 1 {
        match shorthand(&words[0].to_ascii_lowercase()) {
            Some(f) => f,
            None => parse_words(&words)?,
        }
    } else {
        parse_words(&words)?
    };
    Ok(Cron {
        schedule: fields.render()?,
        time_zone,
    })
}

/// A time zone as the last word: "UTC" or an IANA name.
fn is_time_zone(word: &str) -> bool {
    crate::schedule::parse_time_zone(word).is_ok() && !word.contains([':', '-', '*', ','])
}

/// One component: None is `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Item {
    start: u32,
    end: Option<u32>,
    step: Option<u32>,
}

/// A component: `*` (empty list) or a list of items.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Field {
    items: Vec<Item>,
    /// `~1`: the last day of the month.
    last_day: bool,
}

impl Field {
    fn any() -> Field {
        Field::default()
    }
    fn value(v: u32) -> Field {
        Field {
            items: vec![Item {
                start: v,
                end: None,
                step: None,
            }],
            last_day: false,
        }
    }
    fn values(vs: &[u32]) -> Field {
        Field {
            items: vs
                .iter()
                .map(|v| Item {
                    start: *v,
                    end: None,
                    step: None,
                })
                .collect(),
            last_day: false,
        }
    }
    fn is_any(&self) -> bool {
        self.items.is_empty() && !self.last_day
    }
}

struct Fields {
    weekdays: Field,
    year: Field,
    month: Field,
    day: Field,
    hour: Field,
    minute: Field,
    second: Field,
}

fn shorthand(word: &str) -> Option<Fields> {
    let at = |month: Field, day: Field, hour: Field, minute: Field| Fields {
        weekdays: Field::any(),
        year: Field::any(),
        month,
        day,
        hour,
        minute,
        second: Field::value(0),
    };
    let zero = || Field::value(0);
    Some(match word {
        "minutely" => at(Field::any(), Field::any(), Field::any(), Field::any()),
        "hourly" => at(Field::any(), Field::any(), Field::any(), zero()),
        "daily" => at(Field::any(), Field::any(), zero(), zero()),
        "monthly" => at(Field::any(), Field::value(1), zero(), zero()),
        "weekly" => Fields {
            weekdays: Field::value(1),
            ..at(Field::any(), Field::any(), zero(), zero())
        },
        "yearly" | "annually" => at(Field::value(1), Field::value(1), zero(), zero()),
        "quarterly" => at(
            Field::values(&[1, 4, 7, 10]),
            Field::value(1),
            zero(),
            zero(),
        ),
        "semiannually" => at(Field::values(&[1, 7]), Field::value(1), zero(), zero()),
        _ => return None,
    })
}

fn parse_words(words: &[&str]) -> Result<Fields, CalendarError> {
    let mut rest = words;
    let mut weekdays = Field::any();
    if let Some(first) = rest.first() {
        if first.starts_with(|c: char| c.is_ascii_alphabetic()) {
            weekdays = parse_weekdays(first)?;
            rest = &rest[1..];
        }
    }
    let (mut year, mut month, mut day) = (Field::any(), Field::any(), Field::any());
    // Without a time, 00:00:00.
    let (mut hour, mut minute, mut second) = (Field::value(0), Field::value(0), Field::value(0));
    let mut saw_date = false;
    let mut saw_time = false;
    for w in rest {
        if w.contains(':') && !saw_time {
            saw_time = true;
            let parts: Vec<&str> = w.split(':').collect();
            if !(2..=3).contains(&parts.len()) {
                return err(format!("`{w}` is not a time (HH:MM or HH:MM:SS)"));
            }
            hour = parse_field(parts[0], 0, 23, "hour")?;
            minute = parse_field(parts[1], 0, 59, "minute")?;
            second = match parts.get(2) {
                Some(s) => parse_seconds(s)?,
                None => Field::value(0),
            };
        } else if w.contains(['-', '~']) && !saw_date && !saw_time {
            saw_date = true;
            let (date, last) = match w.split_once('~') {
                Some((d, l)) => (d, Some(l)),
                None => (*w, None),
            };
            let parts: Vec<&str> = date.split('-').collect();
            let (y, m, d) = match (parts.len(), last) {
                (3, None) => (parts[0], parts[1], parts[2]),
                (2, None) => ("*", parts[0], parts[1]),
                (2, Some(l)) => (parts[0], parts[1], l),
                (1, Some(l)) => ("*", parts[0], l),
                _ => return err(format!("`{w}` is not a date (YYYY-MM-DD or MM-DD)")),
            };
            year = parse_field(y, 1970, 2199, "year")?;
            month = parse_field(m, 1, 12, "month")?;
            if let Some(l) = last {
                let n: u32 = l
                    .parse()
                    .map_err(|_| CalendarError(format!("`~{l}` is not a day count")))?;
                if n != 1 {
                    return err(format!(
                        "`~{l}` (the {} last day of the month) has no cron equivalent; \
                         only `~1`, the last day, has (`L`)",
                        ordinal(n)
                    ));
                }
                day = Field {
                    items: Vec::new(),
                    last_day: true,
                };
            } else {
                day = parse_field(d, 1, 31, "day")?;
            }
        } else {
            return err(format!("`{w}` is neither a date nor a time here"));
        }
    }
    Ok(Fields {
        weekdays,
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

fn ordinal(n: u32) -> String {
    match n {
        2 => "second".into(),
        3 => "third".into(),
        _ => format!("{n}th"),
    }
}

/// `Mon`, `Mon..Fri`, `Mon-Fri`, `Sat,Sun`: Monday is 1, Sunday 7.
fn parse_weekdays(word: &str) -> Result<Field, CalendarError> {
    let day = |name: &str| -> Result<u32, CalendarError> {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        const LONG: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let l = name.to_ascii_lowercase();
        DAYS.iter()
            .position(|d| *d == l)
            .or_else(|| LONG.iter().position(|d| *d == l))
            .map(|i| i as u32 + 1)
            .ok_or_else(|| CalendarError(format!("`{name}` is not a weekday")))
    };
    let mut items = Vec::new();
    for part in word.split(',') {
        let range = part.split_once("..").or_else(|| part.split_once('-'));
        match range {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return err(format!("the weekday range `{part}` goes backwards"));
                }
                items.push(Item {
                    start: a,
                    end: Some(b),
                    step: None,
                });
            }
            None => items.push(Item {
                start: day(part)?,
                end: None,
                step: None,
            }),
        }
    }
    Ok(Field {
        items,
        last_day: false,
    })
}

fn parse_field(text: &str, min: u32, max: u32, what: &str) -> Result<Field, CalendarError> {
    if text == "*" {
        return Ok(Field::any());
    }
    let num = |s: &str| -> Result<u32, CalendarError> {
        let v: u32 = s
            .parse()
            .map_err(|_| CalendarError(format!("`{s}` is not a valid {what}")))?;
        if !(min..=max).contains(&v) {
            return err(format!("{v} is out of range for the {what} ({min}-{max})"));
        }
        Ok(v)
    };
    let mut items = Vec::new();
    for part in text.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((b, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| CalendarError(format!("`/{s}` is not a repetition")))?;
                (b, Some(step))
            }
            None => (part, None),
        };
        if base == "*" {
            return err(format!(
                "`{part}`: systemd repeats from a value (`0/{}`), not from `*`",
                step.unwrap_or(1)
            ));
        }
        let (start, end) = match base.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return err(format!("the range `{base}` goes backwards"));
                }
                (a, Some(b))
            }
            None => (num(base)?, None),
        };
        items.push(Item { start, end, step });
    }
    Ok(Field {
        items,
        last_day: false,
    })
}

fn parse_seconds(text: &str) -> Result<Field, CalendarError> {
    if text.contains('.') {
        // "00.000000" is whole; "30.5" is not.
        let whole = text.split(['.', ',']).next().unwrap_or(text);
        let frac_zero = text
            .split_once('.')
            .is_some_and(|(_, f)| f.bytes().all(|b| b == b'0'));
        if !frac_zero {
            return err(format!(
                "fractional seconds (`{text}`) have no cron equivalent"
            ));
        }
        return parse_field(whole, 0, 59, "second");
    }
    parse_field(text, 0, 59, "second")
}

impl Fields {
    fn render(&self) -> Result<String, CalendarError> {
        if !self.year.is_any() {
            return err("cron has no year: a calendar with a year fires in that year only");
        }
        if !self.weekdays.is_any() && !self.day.is_any() {
            return err(
                "both weekdays and days of the month are given: systemd wants both to match, \
                 cron fires when either matches",
            );
        }
        let second = render(&self.second, 0, 59);
        let minute = render(&self.minute, 0, 59);
        let hour = render(&self.hour, 0, 23);
        let day = if self.day.last_day {
            "L".to_string()
        } else {
            render(&self.day, 1, 31)
        };
        let month = render(&self.month, 1, 12);
        let weekday = render_weekdays(&self.weekdays);
        let five = format!("{minute} {hour} {day} {month} {weekday}");
        let line = if second == "0" {
            match five.as_str() {
                "0 * * * *" => "@hourly".to_string(),
                "0 0 * * *" => "@daily".to_string(),
                "0 0 1 * *" => "@monthly".to_string(),
                "0 0 1 1 *" => "@yearly".to_string(),
                _ => five,
            }
        } else {
            format!("{second} {five}")
        };
        Ok(line)
    }
}

fn render(f: &Field, min: u32, max: u32) -> String {
    if f.items.is_empty() {
        return "*".into();
    }
    let parts: Vec<String> = f
        .items
        .iter()
        .map(|i| match (i.end, i.step) {
            (None, None) => i.start.to_string(),
            (Some(e), None) => format!("{}-{e}", i.start),
            // systemd: the value, then every step up to the maximum.
            (None, Some(s)) if i.start == min => format!("*/{s}"),
            (None, Some(s)) => format!("{}-{max}/{s}", i.start),
            (Some(e), Some(s)) => format!("{}-{e}/{s}", i.start),
        })
        .collect();
    parts.join(",")
}

/// Cron's weekdays: Sunday is 0 (7 at the end of a range).
fn render_weekdays(f: &Field) -> String {
    if f.items.is_empty() {
        return "*".into();
    }
    let parts: Vec<String> = f
        .items
        .iter()
        .map(|i| match i.end {
            None => (i.start % 7).to_string(),
            Some(e) if i.start == e => (i.start % 7).to_string(),
            Some(e) => format!("{}-{e}", i.start),
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{zone_or_utc, Schedule};
    use chrono::{Datelike, TimeZone, Timelike, Utc, Weekday};

    #[test]
    fn calendar_expressions_that_cron_can_say() {
        let cases = [
            ("daily", "@daily"),
            ("hourly", "@hourly"),
            ("monthly", "@monthly"),
            ("yearly", "@yearly"),
            ("annually", "@yearly"),
            ("weekly", "0 0 * * 1"),
            ("minutely", "* * * * *"),
            ("quarterly", "0 0 1 1,4,7,10 *"),
            ("semiannually", "0 0 1 1,7 *"),
            ("*-*-* 02:30:00", "30 2 * * *"),
            ("*-*-* 6:00", "0 6 * * *"),
            ("*-*-* 6,18:00", "0 6,18 * * *"),
            ("6:00", "0 6 * * *"),
            ("Mon..Fri 09:00", "0 9 * * 1-5"),
            ("Mon-Fri 9:00", "0 9 * * 1-5"),
            ("Sat,Sun 10:00", "0 10 * * 6,0"),
            ("Fri..Sun 23:00", "0 23 * * 5-7"),
            ("Sun *-*-* 03:10:00", "10 3 * * 0"),
            ("*:0/15", "*/15 * * * *"),
            ("*:5/15", "5-59/15 * * * *"),
            ("*-*-1/5", "0 0 */5 * *"),
            ("*-*-3/5", "0 0 3-31/5 * *"),
            ("*-*-* 9..17:00", "0 9-17 * * *"),
            ("*-*-* 9..17/2:30", "30 9-17/2 * * *"),
            ("01-15 12:00", "0 12 15 1 *"),
            ("*-02-01", "0 0 1 2 *"),
            ("*-*~01", "0 0 L * *"),
            ("*:00:30", "30 0 * * * *"),
            ("*-*-* *:*:*", "* * * * * *"),
            ("*-*-* 00:00:00.000", "@daily"),
        ];
        for (expr, want) in cases {
            let got = to_cron(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(got.schedule, want, "{expr}");
            assert_eq!(got.time_zone, None, "{expr}");
            // drover's own parser accepts what we write.
            Schedule::parse(&got.schedule).unwrap_or_else(|e| panic!("{expr} -> {want}: {e:?}"));
        }
    }

    #[test]
    fn time_zones_come_along() {
        let got = to_cron("*-*-* 02:30:00 Europe/Berlin").unwrap();
        assert_eq!(got.schedule, "30 2 * * *");
        assert_eq!(got.time_zone.as_deref(), Some("Europe/Berlin"));
        let got = to_cron("hourly UTC").unwrap();
        assert_eq!(
            (got.schedule.as_str(), got.time_zone.as_deref()),
            ("@hourly", Some("UTC"))
        );
    }

    #[test]
    fn what_cron_cannot_say_is_refused_with_the_reason() {
        let cases = [
            ("2025-01-01", "no year"),
            ("Mon *-*-1..7", "both weekdays and days of the month"),
            ("*-02~03", "third last day"),
            ("*-*-* 00:00:30.5", "fractional seconds"),
            ("*:*/15", "not from `*`"),
            ("Fri..Mon", "goes backwards"),
            ("Someday", "not a weekday"),
            ("*-*-* 25:00", "out of range"),
            ("1-2-3-4", "not a date"),
        ];
        for (expr, why) in cases {
            let e = to_cron(expr).expect_err(expr);
            assert!(e.0.contains(why), "{expr}: {e}");
        }
    }

    #[test]
    fn weekdays_fire_on_the_days_systemd_fires() {
        // "Mon..Fri 09:00": the next ten runs are weekdays at 09:00.
        let cron = to_cron("Mon..Fri 09:00").unwrap();
        let s = Schedule::parse(&cron.schedule).unwrap();
        let start = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
        for t in s.upcoming(zone_or_utc(None).unwrap(), start, 10) {
            assert!(!matches!(t.weekday(), Weekday::Sat | Weekday::Sun), "{t}");
            assert_eq!((t.hour(), t.minute(), t.second()), (9, 0, 0), "{t}");
        }
        // "weekly" is Monday midnight in systemd (cron's @weekly is Sunday).
        let cron = to_cron("weekly").unwrap();
        let s = Schedule::parse(&cron.schedule).unwrap();
        let t = s.upcoming(zone_or_utc(None).unwrap(), start, 1)[0];
        assert_eq!(t.weekday(), Weekday::Mon);
    }
}
