//! Ages and times as kubectl shows them: "5s", "3m20s", "2d4h", and
//! RFC 1123 timestamps in `describe`.

use chrono::{DateTime, Local, Utc};
use std::time::Duration;

/// The age of something created at `then`, seen at `now` (kubectl's
/// `HumanDuration`): "45s", "3m20s", "15m", "5h10m", "2d4h", "30d", "2y10d".
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    // A clock a little behind the server's is "now", not an error.
    if secs < -1 {
        return "<invalid>".into();
    }
    human_duration(Duration::from_secs(secs.max(0) as u64))
}

/// kubectl's `HumanDuration`: two significant units while they say
/// something, one unit once the age is large.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// How `describe` prints instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeZone {
    /// The machine's local time, as kubectl does.
    Local,
    /// UTC (tests, reproducible output).
    Utc,
}

/// RFC 1123 with a numeric zone, kubectl's `describe` format:
/// "Mon, 02 Jan 2006 15:04:05 -0700".
pub fn timestamp(t: DateTime<Utc>, tz: TimeZone) -> String {
    const FORMAT: &str = "%a, %d %b %Y %H:%M:%S %z";
    match tz {
        TimeZone::Local => t.with_timezone(&Local).format(FORMAT).to_string(),
        TimeZone::Utc => t.format(FORMAT).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn human_durations_follow_kubectl() {
        let cases = [
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 10 * 60, "5h10m"),
            (8 * 3600 + 59, "8h"),
            (47 * 3600, "47h"),
            (52 * 3600, "2d4h"),
            (3 * 86400, "3d"),
            (30 * 86400, "30d"),
            (740 * 86400, "2y10d"),
            (3650 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn ages_tolerate_small_clock_skew() {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(age(now - chrono::Duration::seconds(90), now), "90s");
        assert_eq!(age(now + chrono::Duration::seconds(1), now), "0s");
        assert_eq!(age(now + chrono::Duration::seconds(30), now), "<invalid>");
    }

    #[test]
    fn timestamps_are_rfc1123() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            timestamp(t, TimeZone::Utc),
            "Tue, 02 Jan 2024 03:04:05 +0000"
        );
    }
}
