//! Signals as users type them (`drover kill --signal HUP`) and as
//! `describe` prints them, and as the agent and the runtime pass them
//! around: a [`Signal`], never a bare `i32` or a literal `9`.
//!
//! Linux numbering (the generic table every mainstream architecture
//! uses: x86, arm, aarch64, riscv, powerpc, s390), with glibc's real-time
//! range (SIGRTMIN is 34: glibc keeps 32 and 33 for its threads). Pure:
//! `runtime::signals` checks this table against libc in a test.

use std::fmt;
use std::str::FromStr;

/// One signal number. Any number the kernel reports is representable
/// (real-time signals included, which nix's enum cannot name); only
/// [`FromStr`] restricts what a user may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// The first real-time signal under glibc.
const RTMIN: i32 = 34;
/// The last signal number (`SIGRTMAX`).
const RTMAX: i32 = 64;

/// Standard signals, canonical name first; aliases follow procps `kill -l`.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
    // Aliases: accepted, never printed.
    ("IOT", 6),
    ("CLD", 17),
    ("POLL", 29),
];

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const ABRT: Signal = Signal(6);
    pub const KILL: Signal = Signal(9);
    pub const USR1: Signal = Signal(10);
    pub const SEGV: Signal = Signal(11);
    pub const USR2: Signal = Signal(12);
    pub const PIPE: Signal = Signal(13);
    pub const ALRM: Signal = Signal(14);
    pub const TERM: Signal = Signal(15);
    pub const CHLD: Signal = Signal(17);
    pub const CONT: Signal = Signal(18);
    pub const STOP: Signal = Signal(19);
    pub const WINCH: Signal = Signal(28);
    /// The first and last real-time signals.
    pub const RTMIN: Signal = Signal(RTMIN);
    pub const RTMAX: Signal = Signal(RTMAX);

    /// A signal number as the kernel reports it (a wait status, a
    /// `/proc` mask): taken as is.
    pub const fn from_raw(n: i32) -> Signal {
        Signal(n)
    }

    /// The number, for the one place that calls kill(2).
    pub const fn number(self) -> i32 {
        self.0
    }

    /// A name for every standard number (aliases resolved), for tables
    /// that must agree with libc.
    pub fn standard_names() -> impl Iterator<Item = (&'static str, Signal)> {
        NAMES.iter().map(|&(n, s)| (n, Signal(s)))
    }

    /// "SIGTERM" for 15; real-time signals as bash's `kill -l` prints them
    /// (SIGRTMIN+n for the lower half, SIGRTMAX-n for the upper); `SIG<n>`
    /// for numbers without a name, so the output always parses back.
    pub fn name(self) -> String {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|(_, v)| *v == n) {
            return format!("SIG{name}");
        }
        if n == RTMIN {
            "SIGRTMIN".to_string()
        } else if n == RTMAX {
            "SIGRTMAX".to_string()
        } else if n > RTMIN && n < RTMAX {
            if n - RTMIN <= (RTMAX - RTMIN) / 2 {
                format!("SIGRTMIN+{}", n - RTMIN)
            } else {
                format!("SIGRTMAX-{}", RTMAX - n)
            }
        } else {
            format!("SIG{n}")
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A signal name or number nobody can send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signal \"{input}\": expected a name such as TERM, HUP, KILL, USR1, \
     RTMIN+1, or a number from 1 to {RTMAX}"
)]
pub struct ParseSignalError {
    pub input: String,
}

impl FromStr for Signal {
    type Err = ParseSignalError;

    /// "HUP", "SIGHUP", "sighup", "1", "RTMIN+2", "SIGRTMAX-1". Numbers
    /// must be 1..=SIGRTMAX (0 only probes for existence: not a signal a
    /// user sends to a pod).
    fn from_str(s: &str) -> Result<Signal, ParseSignalError> {
        let text = s.trim();
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let number = if let Ok(n) = name.parse::<i32>() {
            Some(n)
        } else if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
            Some(n)
        } else {
            parse_realtime(name)
        };
        match number {
            Some(n) if (1..=RTMAX).contains(&n) => Ok(Signal(n)),
            _ => Err(ParseSignalError {
                input: text.to_string(),
            }),
        }
    }
}

/// "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (already upper-cased, no SIG).
fn parse_realtime(name: &str) -> Option<i32> {
    let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (RTMIN, rest)
    } else {
        (RTMAX, name.strip_prefix("RTMAX")?)
    };
    let n = if rest.is_empty() {
        base
    } else if let Some(off) = rest.strip_prefix('+') {
        base.checked_add(off.parse::<i32>().ok()?)?
    } else {
        base.checked_sub(rest.strip_prefix('-')?.parse::<i32>().ok()?)?
    };
    (RTMIN..=RTMAX).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<i32, ParseSignalError> {
        s.parse::<Signal>().map(Signal::number)
    }

    #[test]
    fn names_and_numbers_parse() {
        let ok: &[(&str, i32)] = &[
            ("HUP", 1),
            ("SIGHUP", 1),
            ("sighup", 1),
            ("hup", 1),
            ("SigHup", 1),
            (" TERM ", 15),
            ("1", 1),
            ("9", 9),
            ("SIG9", 9),
            ("KILL", 9),
            ("USR1", 10),
            ("usr2", 12),
            ("CHLD", 17),
            ("CLD", 17),
            ("IOT", 6),
            ("POLL", 29),
            ("WINCH", 28),
            ("RTMIN", 34),
            ("SIGRTMIN+1", 35),
            ("rtmax-2", 62),
            ("RTMAX", 64),
            ("64", 64),
        ];
        for (input, want) in ok {
            assert_eq!(parse(input), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn what_nobody_can_send_is_refused_with_the_input() {
        for bad in [
            "",
            "0",
            "-1",
            "65",
            "SIG",
            "TERMINATE",
            "SIGFOO",
            "RTMIN+99",
            "RTMAX+1",
            "RTMIN-1",
            "1.5",
            "+",
            "SIGSIGTERM",
            "RTMIN+99999999999",
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.input, bad.trim());
            assert!(err.to_string().starts_with("unknown signal"), "{err}");
        }
    }

    #[test]
    fn names_print_as_kill_l_does() {
        let cases = [
            (15, "SIGTERM"),
            (9, "SIGKILL"),
            (6, "SIGABRT"),
            (17, "SIGCHLD"),
            (29, "SIGIO"),
            (34, "SIGRTMIN"),
            (35, "SIGRTMIN+1"),
            (50, "SIGRTMAX-14"),
            (64, "SIGRTMAX"),
            (32, "SIG32"),
            (99, "SIG99"),
        ];
        for (n, name) in cases {
            assert_eq!(Signal::from_raw(n).to_string(), name);
        }
    }

    #[test]
    fn every_name_parses_back() {
        for n in 1..=RTMAX {
            let s = Signal::from_raw(n);
            assert_eq!(s.name().parse::<Signal>(), Ok(s), "{s}");
        }
    }
}
