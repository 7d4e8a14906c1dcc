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
}

/// Parses "500ms", "10s", "5m", "1h", "1h30m", "1.5s". Negative values are
/// impossible by construction (a leading '-' is malformed).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::MissingUnit(s.to_string()));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationError::Malformed);
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| DurationError::Malformed)?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(DurationError::MissingUnit(s.to_string())),
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        let secs = number * seconds_per_unit;
        if !secs.is_finite() || secs > 1e12 {
            return Err(DurationError::Overflow);
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
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
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "10s", "5m", "1h30m", "0s", "1h1m1s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
