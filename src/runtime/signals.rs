//! What of signals needs libc: `api::Signal` names and numbers signals
//! without it (pure, so the CLI and the API can parse them); the numbers
//! it assumes are checked here against the C library the daemon runs on.

#[cfg(test)]
mod tests {
    use crate::api::Signal;

    #[test]
    fn the_api_table_agrees_with_libc() {
        let libc_numbers = [
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
            ("IOT", libc::SIGIOT),
            ("CLD", libc::SIGCHLD),
            ("POLL", libc::SIGPOLL),
        ];
        let table: Vec<(&str, i32)> = Signal::standard_names()
            .map(|(n, s)| (n, s.number()))
            .collect();
        assert_eq!(table, libc_numbers);
        assert_eq!(Signal::RTMIN.number(), libc::SIGRTMIN());
        assert_eq!(Signal::RTMAX.number(), libc::SIGRTMAX());
        assert_eq!(Signal::KILL.number(), libc::SIGKILL);
        assert_eq!(Signal::TERM.number(), libc::SIGTERM);
    }
}
