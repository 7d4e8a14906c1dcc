//! Signal names and numbers, as users type them (`--signal HUP`) and as
//! `describe` prints them. Linux numbering; pure, no I/O.
//!
//! Signals stay plain `i32` (not nix's `Signal` enum) because the
//! real-time signals (`SIGRTMIN+n`) are valid to send and to die from, and
//! nix's enum cannot represent them.

/// Standard signals, canonical name first; aliases follow procps `kill -l`.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
    // Aliases: accepted, never printed.
    ("IOT", libc::SIGABRT),
    ("CLD", libc::SIGCHLD),
    ("POLL", libc::SIGIO),
];

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Parses "HUP", "SIGHUP", "sighup", "1", "RTMIN+2", "SIGRTMAX-1".
/// Numbers must be 1..=SIGRTMAX (0 only probes for existence: not a
/// signal a user sends to a pod).
pub fn parse_signal(s: &str) -> Result<i32, String> {
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
        Some(n) if (1..=rtmax()).contains(&n) => Ok(n),
        _ => Err(format!(
            "unknown signal \"{text}\": expected a name such as TERM, HUP, KILL, USR1, \
             RTMIN+1, or a number from 1 to {}",
            rtmax()
        )),
    }
}

/// "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (already upper-cased, no SIG).
fn parse_realtime(name: &str) -> Option<i32> {
    let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (rtmin(), rest)
    } else {
        (rtmax(), name.strip_prefix("RTMAX")?)
    };
    let n = if rest.is_empty() {
        base
    } else if let Some(off) = rest.strip_prefix('+') {
        base + off.parse::<i32>().ok()?
    } else {
        base - rest.strip_prefix('-')?.parse::<i32>().ok()?
    };
    (rtmin()..=rtmax()).contains(&n).then_some(n)
}

/// "SIGTERM" for 15; real-time signals as bash's `kill -l` prints them
/// (SIGRTMIN+n for the lower half, SIGRTMAX-n for the upper); `SIG<n>` for
/// numbers without a name, so the output always parses back.
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = NAMES.iter().find(|(_, v)| *v == n) {
        return format!("SIG{name}");
    }
    let (lo, hi) = (rtmin(), rtmax());
    if n == lo {
        "SIGRTMIN".to_string()
    } else if n == hi {
        "SIGRTMAX".to_string()
    } else if n > lo && n < hi {
        if n - lo <= (hi - lo) / 2 {
            format!("SIGRTMIN+{}", n - lo)
        } else {
            format!("SIGRTMAX-{}", hi - n)
        }
    } else {
        format!("SIG{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_signal_table() {
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
            ("RTMIN", libc::SIGRTMIN()),
            ("SIGRTMIN+1", libc::SIGRTMIN() + 1),
            ("rtmax-2", libc::SIGRTMAX() - 2),
            ("RTMAX", libc::SIGRTMAX()),
            ("64", 64),
        ];
        for (input, want) in ok {
            assert_eq!(parse_signal(input), Ok(*want), "input {input:?}");
        }
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
        ] {
            let err = parse_signal(bad).expect_err(bad);
            assert!(err.contains("unknown signal"), "{err}");
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(17), "SIGCHLD");
        assert_eq!(signal_name(29), "SIGIO");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(35), "SIGRTMIN+1");
        assert_eq!(signal_name(50), "SIGRTMAX-14");
        assert_eq!(signal_name(64), "SIGRTMAX");
        assert_eq!(signal_name(32), "SIG32");
        assert_eq!(signal_name(99), "SIG99");
    }

    #[test]
    fn every_name_parses_back() {
        for n in 1..=libc::SIGRTMAX() {
            assert_eq!(parse_signal(&signal_name(n)), Ok(n), "{}", signal_name(n));
        }
    }
}
