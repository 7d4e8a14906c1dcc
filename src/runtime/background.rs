//! Housekeeping threads (removing deleted pods' logs and cgroups) run at
//! a lower priority than the daemon's loop: on a busy host (5,000 pods
//! scaled to 0 on two cores) the loop, which answers the API and restarts
//! crashed pods, goes first, and the removals take the time left over.

/// The calling thread's nice value, raised by this much.
const NICER_BY: i32 = 10;

/// Lowers the calling thread's CPU priority (and only its own: on Linux
/// `setpriority` with a thread id applies to that thread). Failure leaves
/// it as it was: only the ordering suffers.
pub fn lower_this_threads_priority() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain integers; errno is cleared first because -1 is also
    // a valid nice value.
    let current = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t)
    };
    // SAFETY: plain integers.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, current + NICER_BY) };
    if r != 0 {
        tracing::debug!(
            "could not lower a housekeeping thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_gets_nicer() {
        let nice = || {
            // SAFETY: as above.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        let before = nice();
        let inside = std::thread::spawn(move || {
            lower_this_threads_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (before + NICER_BY).min(19));
        assert_eq!(nice(), before, "this thread is untouched");
    }
}
