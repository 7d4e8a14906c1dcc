//! Durations as users write them in unit files and see them in output:
//! "500ms", "10s", "5m", "1h", and sums such as "1m30s".

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A `std::time::Duration` that (de)serialises as a human string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

/// Why a duration string was rejected; the message is shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("a duration needs a unit: write \"{0}s\" for seconds (units: ms, s, m, h)")]
    MissingUnit(String),
    #[error("unknown unit `{0}` (units: ms, s, m, h)")]
    UnknownUnit(String),
    #[error("expected a number followed by a unit, such as \"10s\" or \"500ms\"")]
    Malformed,
    #[error("duration is too large")]
    Overflow,
    #[error("`{0}` is finer than a millisecond, the resolution of durations")]
    TooPrecise(String),
}

/// Parses "500ms", "10s", "5m", "1h", "1h30m", "1.5s". Negative values are
/// impossible by construction (a leading '-' is malformed).
///
/// Exact decimal arithmetic in whole milliseconds, the resolution
/// durations are printed and stored in: a value finer than that
/// ("0.5ms", "1.0001s") is an error rather than a value that changes when
/// the store writes it out and reads it back (floating point did that:
/// "500555.07m" came back as 30033304199ms, found by fuzzing).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::MissingUnit(s.to_string()));
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationError::Malformed);
        }
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_ms: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(DurationError::MissingUnit(s.to_string())),
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        total_ms = total_ms
            .checked_add(term_ms(number, unit_ms, unit)?)
            .filter(|ms| *ms <= MAX_MS)
            .ok_or(DurationError::Overflow)?;
    }
    Ok(Duration::from_millis(total_ms as u64))
}

/// The longest duration: 10^12 seconds (some 31,700 years).
const MAX_MS: u128 = 1_000_000_000_000_000;

/// One `NUMBER UNIT` term ("1.5", 1000 ms) in whole milliseconds.
fn term_ms(number: &str, unit_ms: u128, unit: &str) -> Result<u128, DurationError> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(DurationError::Malformed);
    }
    let whole = whole.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    // Past 16 digits a term is over MAX_MS in any unit; past 8 fraction
    // digits it cannot be whole milliseconds (a unit has at most 2^8 and
    // 5^5 as factors).
    if whole.len() > 16 {
        return Err(DurationError::Overflow);
    }
    if frac.len() > 8 {
        return Err(DurationError::TooPrecise(format!("{number}{unit}")));
    }
    let digits = |d: &str| d.parse::<u128>().unwrap_or(0);
    let scale = 10u128.pow(frac.len() as u32);
    let frac_ms = digits(frac) * unit_ms;
    if frac_ms % scale != 0 {
        return Err(DurationError::TooPrecise(format!("{number}{unit}")));
    }
    Ok(digits(whole) * unit_ms + frac_ms / scale)
}

/// Renders like kubectl: "500ms", "10s", "5m", "1h30m", "0s".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut secs = (ms / 1000) as u64;
    let mut out = String::new();
    let h = secs / 3600;
    secs %= 3600;
    let m = secs / 60;
    secs %= 60;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if secs > 0 {
        out.push_str(&format!("{secs}s"));
    }
    out
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl std::str::FromStr for Dur {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Dur)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_of_the_spec() {
        let cases = [
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(
            parse_duration("10"),
            Err(DurationError::MissingUnit("10".into()))
        );
        assert_eq!(
            parse_duration("10d"),
            Err(DurationError::UnknownUnit("d".into()))
        );
        assert_eq!(parse_duration("-5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for malformed in ["1.2.3s", ".s", "s", "1s.5.5s"] {
            assert_eq!(
                parse_duration(malformed),
                Err(DurationError::Malformed),
                "{malformed}"
            );
        }
        assert_eq!(
            parse_duration("0.5ms"),
            Err(DurationError::TooPrecise("0.5ms".into()))
        );
        assert_eq!(
            parse_duration("1.0001s"),
            Err(DurationError::TooPrecise("1.0001s".into()))
        );
        assert_eq!(
            parse_duration("1000000000001s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration(&format!("1{}s", "0".repeat(40))),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn fractions_are_exact() {
        let cases = [
            (".5s", 500),
            ("0.001s", 1),
            ("1.50000000000000000000s", 1_500),
            ("0.0000025h", 9),
            ("2.5m", 150_000),
            ("0001.25h", 4_500_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
    }

    /// Found by fuzzing (fuzz/, quantities): through floating point,
    /// "500555.07m" parsed to a value whose printed form read back as
    /// another; the store would have changed it across a restart.
    #[test]
    fn printed_durations_read_back_the_same() {
        for text in ["500555.07m", "1.5s", "1h0.5m", "999999.999s", "0.1s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text}");
        }
        assert_eq!(
            parse_duration("500555.07m").unwrap().as_millis(),
            30_033_304_200
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "10s", "5m", "1h30m", "0s", "1h1m1s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
