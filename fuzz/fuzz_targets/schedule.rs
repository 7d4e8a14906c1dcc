//! Cron schedules: `Schedule::parse` and the time-zone lookup on arbitrary
//! text (a CronJob's `schedule` and `time_zone`: the input is the schedule,
//! then optionally a newline and the zone).
//!
//! An error's span must lie inside the text on character boundaries (the
//! unit diagnostics point a caret at it); an accepted schedule must fire
//! after and before a given instant consistently, and parse again from
//! its own text.
#![no_main]

use drover::schedule::{parse_time_zone, zone_or_utc, Schedule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (line, zone) = text.split_once('\n').unwrap_or((text, ""));
    let tz = if zone.is_empty() {
        zone_or_utc(None).unwrap()
    } else {
        match parse_time_zone(zone) {
            Ok(tz) => tz,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    };
    let schedule = match Schedule::parse(line) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            if let Some((a, b)) = e.span {
                assert!(a <= b && b <= line.len(), "span {a}..{b} outside {line:?}");
                assert!(
                    line.is_char_boundary(a) && line.is_char_boundary(b),
                    "span {a}..{b} splits a character of {line:?}"
                );
            }
            return;
        }
    };
    let again = Schedule::parse(schedule.as_str()).expect("a schedule parses from its own text");
    assert_eq!(again, schedule);
    // An instant that depends on the input, within a few years of 2026.
    let offset = data
        .iter()
        .fold(0i64, |h, b| (h * 31 + i64::from(*b)) % 100_000_000);
    let t = chrono::DateTime::from_timestamp(1_780_000_000 + offset, 0).unwrap();
    if let Some(next) = schedule.next_after(tz, t) {
        assert!(next > t, "next_after({t}) = {next}");
    }
    if let Some(last) = schedule.last_at_or_before(tz, t) {
        assert!(last <= t, "last_at_or_before({t}) = {last}");
    }
    let upcoming = schedule.upcoming(tz, t, 3);
    assert!(upcoming.windows(2).all(|w| w[0] < w[1]), "{upcoming:?}");
});
