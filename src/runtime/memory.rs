//! Keeping the long-running daemon's own memory small (the budget: 4 MiB
//! PSS with 100 pods). glibc-specific; elsewhere these do nothing.

/// Call first thing in the daemon.
///
/// - One malloc arena: glibc gives each thread that allocates an arena of
///   its own, and keeps it; `spawn_many`'s short-lived threads would each
///   leave one behind, for nothing (the daemon's allocation rate is low).
/// - A fixed mmap threshold: buffers over 128 KiB (a store snapshot at
///   1000 pods is ~2 MiB) go to their own mapping and back to the kernel
///   when freed. By default glibc raises the threshold to the size of the
///   first such buffer freed, and every later snapshot then grows the
///   heap instead.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Call once the daemon has started what it found (units parsed, pods
/// started, state written): gives back what only start-up needed.
///
/// - malloc_trim: free heap pages (parsing, the first snapshot) go back
///   to the kernel.
/// - The binary's code pages are unmapped (MADV_DONTNEED on a read-only
///   file mapping: they are clean, the page cache keeps them, the next
///   use maps them again). Argument parsing, the unit-file parser and the
///   CLI's tables are then no longer counted in the daemon's resident
///   set, only the code it keeps running.
pub fn release_startup_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    extern "C" {
        // Set by the GNU and LLVM linkers: the first byte of the
        // executable's image and the end of its code.
        static __executable_start: u8;
        static etext: u8;
    }
    // SAFETY: only the symbols' addresses are used, never their bytes.
    // The range is the binary's code: a private, read-only, never written
    // file mapping, so dropping its pages loses nothing.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let start = std::ptr::addr_of!(__executable_start) as usize & !(page - 1);
        let end = std::ptr::addr_of!(etext) as usize & !(page - 1);
        if end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}
