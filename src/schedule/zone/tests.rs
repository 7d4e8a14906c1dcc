//! The zone reader against the system's tz database (Debian's tzdata, as
//! on every host the package targets) and against hand-written rules.

use super::*;
use chrono::{DateTime, Utc};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn offset(zone: Zone, at: &str) -> (i32, &'static str) {
    let o = zone.offset_from_utc_datetime(&utc(at).naive_utc());
    (o.utc_offset, o.abbreviation)
}

fn local(zone: Zone, wall: &str) -> LocalResult<i32> {
    let naive = NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M:%S").unwrap();
    zone.offset_from_local_datetime(&naive)
        .map(|o| o.utc_offset)
}

#[test]
fn berlin_switches_on_the_last_sundays_of_march_and_october() {
    let berlin = Zone::named("Europe/Berlin").unwrap();
    assert_eq!(berlin.name(), "Europe/Berlin");
    assert_eq!(offset(berlin, "2026-01-15T12:00:00Z"), (3600, "CET"));
    assert_eq!(offset(berlin, "2026-03-29T00:59:59Z"), (3600, "CET"));
    assert_eq!(offset(berlin, "2026-03-29T01:00:00Z"), (7200, "CEST"));
    assert_eq!(offset(berlin, "2026-10-25T00:59:59Z"), (7200, "CEST"));
    assert_eq!(offset(berlin, "2026-10-25T01:00:00Z"), (3600, "CET"));
    // Past the file's transitions (2037): the footer's rule.
    assert_eq!(offset(berlin, "2061-03-27T00:59:59Z"), (3600, "CET"));
    assert_eq!(offset(berlin, "2061-03-27T01:00:00Z"), (7200, "CEST"));
    // Before standard time (1893): local mean time.
    assert_eq!(offset(berlin, "1890-01-01T00:00:00Z"), (3208, "LMT"));
}

#[test]
fn local_times_in_gaps_are_none_and_repeated_ones_ambiguous() {
    for (year, spring, autumn) in [(2026, 29, 25), (2061, 27, 30)] {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let at = |month, day, time| format!("{year}-{month:02}-{day:02} {time}");
        assert_eq!(local(berlin, &at(3, spring, "02:30:00")), LocalResult::None);
        assert_eq!(
            local(berlin, &at(3, spring, "03:00:00")),
            LocalResult::Single(7200)
        );
        assert_eq!(
            local(berlin, &at(10, autumn, "02:30:00")),
            LocalResult::Ambiguous(7200, 3600),
            "{year}: the earlier instant (summer time) first"
        );
        assert_eq!(
            local(berlin, &at(6, 1, "12:00:00")),
            LocalResult::Single(7200)
        );
    }
}

#[test]
fn southern_zones_have_summer_across_the_new_year() {
    let sydney = Zone::named("Australia/Sydney").unwrap();
    assert_eq!(offset(sydney, "2026-01-15T00:00:00Z"), (39600, "AEDT"));
    assert_eq!(offset(sydney, "2026-07-15T00:00:00Z"), (36000, "AEST"));
    assert_eq!(offset(sydney, "2055-01-15T00:00:00Z"), (39600, "AEDT"));
    assert_eq!(offset(sydney, "2055-07-15T00:00:00Z"), (36000, "AEST"));
    let kolkata = Zone::named("Asia/Kolkata").unwrap();
    assert_eq!(offset(kolkata, "2060-07-15T00:00:00Z"), (19800, "IST"));
    assert_eq!(Zone::named("US/Eastern").unwrap().name(), "US/Eastern");
}

/// Debian's files list every transition up to 2037 and also carry the
/// rule: computed from the rule, each year's changes must fall exactly on
/// the listed transitions, in every zone of the database. (A zone whose
/// list runs past 2037 is one whose changes follow no rule until then:
/// Gaza and Hebron, whose DST follows Ramadan until 2086.)
#[test]
fn the_footer_rule_agrees_with_the_listed_transitions_in_every_zone() {
    let dir = database();
    let mut checked = 0;
    let mut irregular = vec![];
    for name in names() {
        if name == "UTC" {
            continue;
        }
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let data = parse_tzif(&name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(rule) = &data.rule else { continue };
        let Some(dst) = &rule.dst else { continue };
        let last = data.transitions.last().unwrap().0;
        if last > utc("2039-01-01T00:00:00Z").timestamp() {
            irregular.push(name);
            continue;
        }
        for year in 2030..2037 {
            let (start, end) = rule.changes(dst, year);
            if start.max(end) > last {
                break;
            }
            for (at, expected) in [(start, &dst.local), (end, &rule.std)] {
                let listed = data.transitions.iter().find(|(t, _)| *t == at);
                let listed = listed.map(|(_, ty)| &data.types[*ty]);
                assert_eq!(
                    listed.map(|t| t.utc_offset),
                    Some(expected.utc_offset),
                    "{name} {year}: no listed change to {} at {at}",
                    expected.abbreviation
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 500,
        "only {checked} zone-years checked: no database?"
    );
    assert!(irregular.len() <= 4, "rules unchecked in {irregular:?}");
}

#[test]
fn version_1_files_are_read_from_their_32_bit_block() {
    let mut bytes = std::fs::read(database().join("Europe/Berlin")).unwrap();
    bytes[4] = 0;
    let v1 = parse_tzif("Europe/Berlin", &bytes).unwrap();
    assert!(v1.rule.is_none());
    let zone = Zone(Box::leak(Box::new(v1)));
    assert_eq!(offset(zone, "2026-07-01T00:00:00Z"), (7200, "CEST"));
    assert_eq!(offset(zone, "2026-12-01T00:00:00Z"), (3600, "CET"));
}

#[test]
fn names_outside_the_database_list_are_unknown() {
    for name in [
        "../../etc/passwd",
        "/etc/passwd",
        "Europe/../Europe/Berlin",
        "right/Europe/Berlin",
        "posixrules",
        "localtime",
        "Mars/Olympus",
        "",
    ] {
        assert_eq!(
            Zone::named(name).unwrap_err(),
            ZoneError::Unknown(name.into()),
            "{name}"
        );
    }
    let listed = listed_names("# comment\nZ Europe/Berlin 0:53:28 - LMT 1893 Ap\nL Europe/Berlin Arctic/Longyearbyen\nR x 1 2 - -\n");
    assert_eq!(listed, ["Europe/Berlin", "Arctic/Longyearbyen"]);
}

#[test]
fn utc_needs_no_database() {
    let zone = Zone::utc();
    assert_eq!(offset(zone, "2026-07-01T00:00:00Z"), (0, "UTC"));
    assert_eq!(local(zone, "2026-07-01 00:00:00"), LocalResult::Single(0));
    assert_eq!(Zone::named("UTC").unwrap(), zone);
}

#[test]
fn posix_rules() {
    let r = PosixRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    assert_eq!((r.std.utc_offset, r.std.abbreviation), (3600, "CET"));
    let dst = r.dst.as_ref().unwrap();
    assert_eq!(
        (dst.local.utc_offset, dst.local.abbreviation),
        (7200, "CEST")
    );
    assert_eq!(dst.start, (RuleDate::MonthWeekDay(3, 5, 0), 7200));
    assert_eq!(dst.end, (RuleDate::MonthWeekDay(10, 5, 0), 3 * 3600));

    let r = PosixRule::parse("<+0330>-3:30").unwrap();
    assert_eq!(
        (r.std.utc_offset, r.std.abbreviation, r.dst),
        (12600, "+0330", None)
    );

    // Negative and past-midnight change times (RFC 8536 extensions).
    let r = PosixRule::parse("<-02>2<-01>,M3.5.0/-1,M10.5.0/0").unwrap();
    let dst = r.dst.unwrap();
    assert_eq!((r.std.utc_offset, dst.local.utc_offset), (-7200, -3600));
    assert_eq!(dst.start.1, -3600);
    let r = PosixRule::parse("IST-2IDT,M3.4.4/26,M10.5.0").unwrap();
    assert_eq!(r.dst.unwrap().start.1, 26 * 3600);

    // Julian days: J60 is March 1 in every year; 59 is March 1 in leap
    // years only (February 29 counts).
    assert_eq!(
        RuleDate::Julian1(60).day_in(2028).to_string(),
        "2028-03-01 00:00:00"
    );
    assert_eq!(
        RuleDate::Julian0(59).day_in(2028).to_string(),
        "2028-02-29 00:00:00"
    );
    assert_eq!(
        RuleDate::Julian0(59).day_in(2027).to_string(),
        "2027-03-01 00:00:00"
    );
    // The fifth Sunday is the last one.
    assert_eq!(
        RuleDate::MonthWeekDay(10, 5, 0).day_in(2026).to_string(),
        "2026-10-25 00:00:00"
    );

    for bad in [
        "C-1",
        "CET",
        "CET-1CEST,M13.1.0,M1.1.0",
        "CET-1CEST,M3.5.0",
        "CET-1x",
    ] {
        assert!(PosixRule::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn damaged_files_are_refused() {
    assert_eq!(
        parse_tzif("x", b"not a zone").err().unwrap(),
        "not a TZif file"
    );
    let bytes = std::fs::read(database().join("Europe/Berlin")).unwrap();
    assert_eq!(parse_tzif("x", &bytes[..200]).err().unwrap(), "truncated");
}
