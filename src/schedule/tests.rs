//! Next-run computation, table-driven: the crontab forms, the 6-field form,
//! and daylight saving time in two zones (Europe/Berlin switches at 02:00
//! local time on the last Sundays of March and October; America/New_York at
//! 02:00 on the second Sunday of March and the first Sunday of November).

use super::*;
use chrono::TimeZone;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn zone(name: &str) -> Zone {
    parse_time_zone(name).unwrap()
}

/// The next `n` runs after `from` (a local wall time in `tz`), as local
/// wall times with their UTC offset, e.g. "2024-03-31 03:00 +02:00".
fn runs(schedule: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
    let tz = zone(tz);
    let s = Schedule::parse(schedule).unwrap();
    let naive = chrono::NaiveDateTime::parse_from_str(from, "%Y-%m-%d %H:%M:%S").unwrap();
    let start = tz
        .from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    s.upcoming(tz, start, n)
        .into_iter()
        .map(|t| {
            let fmt = if s.has_seconds() {
                "%Y-%m-%d %H:%M:%S %:z"
            } else {
                "%Y-%m-%d %H:%M %:z"
            };
            t.with_timezone(&tz).format(fmt).to_string()
        })
        .collect()
}

#[test]
fn crontab_forms() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "*/15 * * * *",
            "2024-05-01 10:07:00",
            &["2024-05-01 10:15 +00:00", "2024-05-01 10:30 +00:00"],
        ),
        (
            "0 9-17/4 * * MON-FRI",
            "2024-05-03 12:00:00", // a Friday
            &[
                "2024-05-03 13:00 +00:00",
                "2024-05-03 17:00 +00:00",
                "2024-05-06 09:00 +00:00",
            ],
        ),
        (
            "30 2 1,15 * *",
            "2024-05-02 00:00:00",
            &["2024-05-15 02:30 +00:00", "2024-06-01 02:30 +00:00"],
        ),
        // Day-of-month OR day-of-week, as crontab(5): the 13th, or a Friday.
        (
            "0 0 13 * 5",
            "2024-09-10 00:00:00",
            &["2024-09-13 00:00 +00:00", "2024-09-20 00:00 +00:00"],
        ),
        // Sunday is 0 and 7.
        (
            "0 12 * * 7",
            "2024-05-01 00:00:00",
            &["2024-05-05 12:00 +00:00"],
        ),
        (
            "0 0 1 jan,jul *",
            "2024-02-01 00:00:00",
            &["2024-07-01 00:00 +00:00", "2025-01-01 00:00 +00:00"],
        ),
        (
            "@hourly",
            "2024-05-01 10:07:00",
            &["2024-05-01 11:00 +00:00"],
        ),
        (
            "@daily",
            "2024-05-01 10:07:00",
            &["2024-05-02 00:00 +00:00"],
        ),
        (
            "@midnight",
            "2024-05-01 10:07:00",
            &["2024-05-02 00:00 +00:00"],
        ),
        (
            "@weekly",
            "2024-05-01 10:07:00",
            &["2024-05-05 00:00 +00:00"],
        ),
        (
            "@monthly",
            "2024-05-01 10:07:00",
            &["2024-06-01 00:00 +00:00"],
        ),
        (
            "@yearly",
            "2024-05-01 10:07:00",
            &["2025-01-01 00:00 +00:00"],
        ),
        (
            "@annually",
            "2024-05-01 10:07:00",
            &["2025-01-01 00:00 +00:00"],
        ),
    ];
    for (schedule, from, want) in cases {
        assert_eq!(
            runs(schedule, "UTC", from, want.len()),
            *want,
            "schedule {schedule:?} from {from}"
        );
    }
}

#[test]
fn six_fields_have_seconds() {
    assert_eq!(
        runs("*/20 * * * * *", "UTC", "2024-05-01 10:00:05", 3),
        [
            "2024-05-01 10:00:20 +00:00",
            "2024-05-01 10:00:40 +00:00",
            "2024-05-01 10:01:00 +00:00"
        ]
    );
    assert!(Schedule::parse("*/20 * * * * *").unwrap().has_seconds());
    assert!(!Schedule::parse("* * * * *").unwrap().has_seconds());
}

#[test]
fn next_after_is_strict_and_ignores_subseconds() {
    let s = Schedule::parse("* * * * * *").unwrap();
    let t = utc(2024, 5, 1, 10, 0, 0);
    assert_eq!(
        next_after(&s, Zone::utc(), t),
        Some(utc(2024, 5, 1, 10, 0, 1))
    );
    let half = t + chrono::Duration::milliseconds(500);
    assert_eq!(
        next_after(&s, Zone::utc(), half),
        Some(utc(2024, 5, 1, 10, 0, 1))
    );
    assert_eq!(s.last_at_or_before(Zone::utc(), half), Some(t));
}

#[test]
fn spring_forward_berlin() {
    // 2024-03-31: 02:00 CET becomes 03:00 CEST; 02:xx does not exist.
    // A fixed time in the gap runs once, right after it.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2024-03-30 12:00:00", 3),
        [
            "2024-03-31 03:00 +02:00",
            "2024-04-01 02:30 +02:00",
            "2024-04-02 02:30 +02:00"
        ]
    );
    // Frequent schedules run on the wall clock: nothing in the gap.
    assert_eq!(
        runs("*/30 * * * *", "Europe/Berlin", "2024-03-31 01:00:00", 3),
        [
            "2024-03-31 01:30 +01:00",
            "2024-03-31 03:00 +02:00",
            "2024-03-31 03:30 +02:00"
        ]
    );
}

#[test]
fn fall_back_berlin() {
    // 2024-10-27: 03:00 CEST becomes 02:00 CET; 02:xx happens twice.
    // A fixed time in the overlap runs once, at its first occurrence.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2024-10-26 12:00:00", 3),
        [
            "2024-10-27 02:30 +02:00",
            "2024-10-28 02:30 +01:00",
            "2024-10-29 02:30 +01:00"
        ]
    );
    // Hourly runs each real hour, both passes of 02:00.
    assert_eq!(
        runs("0 * * * *", "Europe/Berlin", "2024-10-27 01:30:00", 3),
        [
            "2024-10-27 02:00 +02:00",
            "2024-10-27 02:00 +01:00",
            "2024-10-27 03:00 +01:00"
        ]
    );
}

#[test]
fn spring_forward_new_york() {
    // 2024-03-10: 02:00 EST becomes 03:00 EDT.
    assert_eq!(
        runs("15 2 * * *", "America/New_York", "2024-03-09 12:00:00", 2),
        ["2024-03-10 03:00 -04:00", "2024-03-11 02:15 -04:00"]
    );
    // With seconds, in the gap: once, at the first second after it.
    assert_eq!(
        runs(
            "30 30 2 * * *",
            "America/New_York",
            "2024-03-10 00:00:00",
            1
        ),
        ["2024-03-10 03:00:00 -04:00"]
    );
}

#[test]
fn fall_back_new_york() {
    // 2024-11-03: 02:00 EDT becomes 01:00 EST; 01:xx happens twice.
    assert_eq!(
        runs("30 1 * * *", "America/New_York", "2024-11-02 12:00:00", 2),
        ["2024-11-03 01:30 -04:00", "2024-11-04 01:30 -05:00"]
    );
}

#[test]
fn last_run_before_is_the_one_that_ran() {
    // During the second pass of Berlin's 02:00-03:00 on 2024-10-27, the
    // last run of "30 2 * * *" is the first pass's 02:30 (it runs once).
    let s = Schedule::parse("30 2 * * *").unwrap();
    let tz = zone("Europe/Berlin");
    let second_pass_0245 = utc(2024, 10, 27, 1, 45, 0);
    assert_eq!(
        s.last_at_or_before(tz, second_pass_0245),
        Some(utc(2024, 10, 27, 0, 30, 0))
    );
    // And during New York's spring gap day, after 03:00, the last run of
    // "15 2 * * *" is 03:00 EDT (07:00 UTC).
    let s = Schedule::parse("15 2 * * *").unwrap();
    let tz = zone("America/New_York");
    assert_eq!(
        s.last_at_or_before(tz, utc(2024, 3, 10, 8, 0, 0)),
        Some(utc(2024, 3, 10, 7, 0, 0))
    );
}

#[test]
fn bad_schedules_say_which_field() {
    type Case<'a> = (&'a str, &'a str, Option<(usize, usize)>);
    let cases: &[Case] = &[
        (
            "61 * * * *",
            "61 is out of range for the minute field (expected 0-59)",
            Some((0, 2)),
        ),
        (
            "* * *",
            "a schedule has 5 fields (minute hour day-of-month month day-of-week), \
             or 6 with seconds first; found 3",
            Some((0, 5)),
        ),
        (
            "0 24 * * *",
            "24 is out of range for the hour field (expected 0-23)",
            Some((2, 4)),
        ),
        (
            "0 0 0 * *",
            "0 is out of range for the day-of-month field (expected 1-31)",
            Some((4, 5)),
        ),
        (
            "0 0 * 13 *",
            "13 is out of range for the month field (expected 1-12)",
            Some((6, 8)),
        ),
        (
            "0 0 * * 8",
            "8 is out of range for the day-of-week field (expected 0-7)",
            Some((8, 9)),
        ),
        (
            "0 0 * * FUN",
            "`FUN` is not a valid value of the day-of-week field `FUN`",
            Some((8, 11)),
        ),
        (
            "*/0 * * * *",
            "the step in the minute field `*/0` must be at least 1",
            Some((0, 3)),
        ),
        (
            "0 17-9 * * *",
            "the range `17-9` in the hour field goes backwards",
            Some((2, 6)),
        ),
        (
            "60 * * * * *",
            "60 is out of range for the second field (expected 0-59)",
            Some((0, 2)),
        ),
        (
            "0 0 30 2 *",
            "the schedule `0 0 30 2 *` never fires (no such day exists)",
            Some((0, 10)),
        ),
        (
            "@every5m",
            "unknown schedule macro `@every5m`; expected one of: @yearly, @annually, \
             @monthly, @weekly, @daily, @midnight, @hourly",
            Some((0, 8)),
        ),
        (
            "@reboot",
            "`@reboot` is not a schedule drover runs",
            Some((0, 7)),
        ),
        ("", "the schedule is empty", None),
    ];
    for (text, message, span) in cases {
        let err = Schedule::parse(text).expect_err(text);
        assert_eq!(
            (err.message.as_str(), err.span),
            (*message, *span),
            "{text}"
        );
    }
    // croner's own rules, attributed to their field.
    let err = Schedule::parse("5/2 * * * *").unwrap_err();
    assert!(
        err.message.starts_with("invalid minute field `5/2`: "),
        "{err:?}"
    );
    assert_eq!(err.span, Some((0, 3)));
}

#[test]
fn time_zones() {
    assert_eq!(zone_or_utc(None).unwrap(), Zone::utc());
    assert_eq!(zone("Europe/Berlin").name(), "Europe/Berlin");
    let err = parse_time_zone("europe/berlin").unwrap_err();
    assert_eq!(err.message, "unknown time zone \"europe/berlin\"");
    assert_eq!(err.help.as_deref(), Some("did you mean \"Europe/Berlin\"?"));
    let err = parse_time_zone("Europe/Berln").unwrap_err();
    assert_eq!(err.help.as_deref(), Some("did you mean \"Europe/Berlin\"?"));
    let err = parse_time_zone("Mars/Olympus").unwrap_err();
    assert!(err.help.is_some());
}
