//! systemd's value syntaxes: booleans, time spans (systemd.time(7)), byte
//! sizes with K/M/G suffixes (base 1024), percentages, signals.

use std::time::Duration;

/// systemd's booleans: 1/yes/y/true/t/on and 0/no/n/false/f/off.
pub fn boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// A time span, or `Infinite` for "infinity" (and, for timeouts, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Finite(Duration),
    Infinite,
}

/// "5", "5s", "1min 30s", "2h", "500ms", "1.5s", "infinity". A bare
/// number is in `default_unit` (seconds for `*Sec=` settings, µs for
/// `LimitRTTIME=`).
pub fn time_span(s: &str, default_unit: Duration) -> Option<Span> {
    let s = s.trim();
    if s == "infinity" {
        return Some(Span::Infinite);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = if unit.is_empty() {
            default_unit.as_secs_f64()
        } else {
            unit_seconds(unit)?
        };
        total += n * secs;
    }
    if !total.is_finite() || total > 1e12 {
        return None;
    }
    Some(Span::Finite(Duration::from_secs_f64(total)))
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "usec" | "us" | "µs" => 1e-6,
        "msec" | "ms" => 1e-3,
        "seconds" | "second" | "sec" | "s" => 1.0,
        "minutes" | "minute" | "min" | "m" => 60.0,
        "hours" | "hour" | "hr" | "h" => 3600.0,
        "days" | "day" | "d" => 86400.0,
        "weeks" | "week" | "w" => 604_800.0,
        "months" | "month" | "M" => 2_629_800.0,
        "years" | "year" | "y" => 31_557_600.0,
        _ => return None,
    })
}

/// A byte size: a number with an optional K, M, G, T, P or E suffix
/// (base 1024, as systemd reads them), or "infinity".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    Percent(u32),
    Infinite,
}

pub fn size(s: &str) -> Option<Size> {
    let s = s.trim();
    if s == "infinity" {
        return Some(Size::Infinite);
    }
    if let Some(p) = s.strip_suffix('%') {
        return p.trim().parse().ok().map(Size::Percent);
    }
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return None,
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let digits = digits.trim();
    if digits.is_empty() {
        return None;
    }
    // "1.5G" is allowed by systemd.
    let n: f64 = digits.parse().ok()?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return None;
    }
    Some(Size::Bytes(bytes as u64))
}

/// A signal by name or number ("SIGTERM", "TERM", "15") -> its name
/// without "SIG", upper case; None if unknown.
pub fn signal_name(s: &str) -> Option<String> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let t = s.trim().to_ascii_uppercase();
    if let Ok(n) = t.parse::<usize>() {
        return NAMES.get(n.checked_sub(1)?).map(|n| n.to_string());
    }
    let bare = t.strip_prefix("SIG").unwrap_or(&t);
    NAMES.contains(&bare).then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn time_spans() {
        let cases: [(&str, Option<Span>); 10] = [
            ("5", Some(Span::Finite(Duration::from_secs(5)))),
            ("5s", Some(Span::Finite(Duration::from_secs(5)))),
            ("1min 30s", Some(Span::Finite(Duration::from_secs(90)))),
            ("1min30s", Some(Span::Finite(Duration::from_secs(90)))),
            ("2h", Some(Span::Finite(Duration::from_secs(7200)))),
            ("500ms", Some(Span::Finite(Duration::from_millis(500)))),
            ("1.5s", Some(Span::Finite(Duration::from_millis(1500)))),
            ("1d", Some(Span::Finite(Duration::from_secs(86400)))),
            ("infinity", Some(Span::Infinite)),
            ("5 parsecs", None),
        ];
        for (text, want) in cases {
            assert_eq!(time_span(text, SEC), want, "{text}");
        }
        assert_eq!(
            time_span("100", Duration::from_micros(1)),
            Some(Span::Finite(Duration::from_micros(100)))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size("64M"), Some(Size::Bytes(64 << 20)));
        assert_eq!(size("1G"), Some(Size::Bytes(1 << 30)));
        assert_eq!(size("1.5K"), Some(Size::Bytes(1536)));
        assert_eq!(size("4096"), Some(Size::Bytes(4096)));
        assert_eq!(size("50%"), Some(Size::Percent(50)));
        assert_eq!(size("infinity"), Some(Size::Infinite));
        assert_eq!(size("lots"), None);
        assert_eq!(size("M"), None);
    }

    #[test]
    fn booleans_and_signals() {
        assert_eq!(boolean("yes"), Some(true));
        assert_eq!(boolean("Off"), Some(false));
        assert_eq!(boolean("maybe"), None);
        assert_eq!(signal_name("SIGTERM").as_deref(), Some("TERM"));
        assert_eq!(signal_name("hup").as_deref(), Some("HUP"));
        assert_eq!(signal_name("15").as_deref(), Some("TERM"));
        assert_eq!(signal_name("SIGNOPE"), None);
    }
}
