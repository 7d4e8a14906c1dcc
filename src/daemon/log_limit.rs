//! Rate limiting of the daemon's own log: identical lines repeated within
//! a window are written once, then counted, and the count is written when
//! the window is over:
//!
//! ```text
//! 2026-12-01T10:00:00Z WARN drover::daemon::http: accept on the control socket: Too many open files
//! 2026-12-01T10:00:00Z WARN drover::daemon::http: accept on the control socket: Too many open files (repeated 25858 more times in 10s)
//! ```
//!
//! Installed once where the subscriber is built (`cli/daemon.rs`), as the
//! event formatter wrapped around tracing's own, so every call site in the
//! daemon is covered without knowing about it. Why: a loop that fails the
//! same way thousands of times a second (accept under EMFILE, a persist
//! on a full disk) must not turn its log into the thing that fills the
//! disk (46 GB in ten minutes, issue 9). Back-off at the call site is the
//! first defence; this is the second, for every call site at once.
//!
//! "Identical" means the same call site (so the same level and target)
//! and the same field values, message included. A window starts when a
//! line is written; repeats within it are counted, not written. The count
//! is written as the line (its first occurrence, with that timestamp)
//! plus "(repeated N more times in Ts)", as soon as any line is logged
//! after the window closed. So a flood that stops has its count written
//! with the next line the daemon logs, whatever it is; nothing runs on a
//! timer, and an idle daemon stays idle.
//!
//! Must not: drop a line that is not a repeat, or hold more than
//! [`MAX_TRACKED`] lines (past that, new lines are written unlimited).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How long repeats of a line are counted instead of written.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Lines whose repeats are tracked at once, at most.
pub const MAX_TRACKED: usize = 4096;

/// Wraps an event formatter `F` (tracing's default one) with the limit.
pub struct RateLimited<F> {
    inner: F,
    seen: Mutex<Seen>,
}

impl<F> RateLimited<F> {
    pub fn new(inner: F) -> RateLimited<F> {
        RateLimited {
            inner,
            seen: Mutex::new(Seen::new(WINDOW)),
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for RateLimited<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let key = key_of(event);
        let now = Instant::now();
        // A poisoned lock only means a panic while formatting elsewhere:
        // the counts are still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let write = seen.observe(key, now, &mut out);
        if write {
            let mut line = String::new();
            self.inner
                .format_event(ctx, Writer::new(&mut line), event)?;
            seen.remember(key, &line, now);
            out.push_str(&line);
        }
        drop(seen);
        writer.write_str(&out)
    }
}

/// The identity of a line: its call site and its field values.
fn key_of(event: &Event<'_>) -> u64 {
    struct Fields(std::collections::hash_map::DefaultHasher);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            field.name().hash(&mut self.0);
            // Debug output goes straight into the hasher: no allocation.
            let _ = write!(HashWriter(&mut self.0), "{value:?}");
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            field.name().hash(&mut self.0);
            value.hash(&mut self.0);
        }
    }
    struct HashWriter<'a>(&'a mut std::collections::hash_map::DefaultHasher);
    impl fmt::Write for HashWriter<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            s.hash(self.0);
            Ok(())
        }
    }
    let mut fields = Fields(Default::default());
    event.metadata().callsite().hash(&mut fields.0);
    event.record(&mut fields);
    fields.0.finish()
}

/// The counting, apart from tracing: which lines are written, and the
/// count lines owed for windows that closed. Pure but for the time passed
/// in.
#[derive(Debug)]
pub struct Seen {
    window: Duration,
    lines: HashMap<u64, Entry>,
    /// The earliest `since` of `lines`: nothing closes before it plus the
    /// window, so most lines cost one lookup, not a walk over `lines`.
    oldest: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    /// When the line was last written: the window runs from here.
    since: Instant,
    /// Repeats counted, not written, since then.
    repeats: u64,
    /// The line as written (no trailing newline), for the count line.
    line: String,
}

impl Seen {
    pub fn new(window: Duration) -> Seen {
        Seen {
            window,
            lines: HashMap::new(),
            oldest: None,
        }
    }

    /// Called for every line: appends to `out` the count lines of windows
    /// that closed, and says whether this line is to be written (then the
    /// caller formats it and calls [`Seen::remember`]).
    pub fn observe(&mut self, key: u64, now: Instant, out: &mut String) -> bool {
        let window = self.window;
        let closed = |e: &Entry| now.duration_since(e.since) >= window;
        // Windows that closed owe their count; lines without repeats are
        // simply forgotten.
        if self.oldest.is_some_and(|t| now.duration_since(t) >= window) {
            self.lines.retain(|_, e| {
                if !closed(e) {
                    return true;
                }
                if e.repeats > 0 {
                    let secs = now.duration_since(e.since).as_secs().max(1);
                    let _ = writeln!(
                        out,
                        "{} (repeated {} more time{} in {secs}s)",
                        e.line,
                        e.repeats,
                        if e.repeats == 1 { "" } else { "s" }
                    );
                }
                false
            });
            self.oldest = self.lines.values().map(|e| e.since).min();
        }
        match self.lines.get_mut(&key) {
            Some(e) => {
                e.repeats += 1;
                false
            }
            None => true,
        }
    }

    /// Records that `line` (as formatted, with its newline) was written
    /// at `now`.
    pub fn remember(&mut self, key: u64, line: &str, now: Instant) {
        if self.lines.len() >= MAX_TRACKED {
            return;
        }
        self.oldest = Some(self.oldest.map_or(now, |t| t.min(now)));
        self.lines.insert(
            key,
            Entry {
                since: now,
                repeats: 0,
                line: line.trim_end_matches('\n').to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `Seen` like the formatter does; returns what was written.
    fn log(seen: &mut Seen, key: u64, text: &str, at: Instant) -> String {
        let mut out = String::new();
        if seen.observe(key, at, &mut out) {
            let line = format!("{text}\n");
            seen.remember(key, &line, at);
            out.push_str(&line);
        }
        out
    }

    #[test]
    fn repeats_within_the_window_are_counted_then_written_once() {
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let mut seen = Seen::new(Duration::from_secs(10));
        assert_eq!(
            log(&mut seen, 1, "accept: EMFILE", s(0.0)),
            "accept: EMFILE\n"
        );
        for i in 0..25858 {
            let at = s(0.001 + i as f64 * 0.0003);
            assert_eq!(log(&mut seen, 1, "accept: EMFILE", at), "");
        }
        // Another line is written at once, and does not close the window.
        assert_eq!(log(&mut seen, 2, "other", s(5.0)), "other\n");
        // After the window, the next line (any line) carries the count.
        assert_eq!(
            log(&mut seen, 3, "third", s(10.5)),
            "accept: EMFILE (repeated 25858 more times in 10s)\nthird\n"
        );
        // The window is over: the line is written again, once.
        assert_eq!(
            log(&mut seen, 1, "accept: EMFILE", s(11.0)),
            "accept: EMFILE\n"
        );
        assert_eq!(log(&mut seen, 1, "accept: EMFILE", s(12.0)), "");
        assert_eq!(
            log(&mut seen, 1, "accept: EMFILE", s(21.5)),
            "accept: EMFILE (repeated 1 more time in 10s)\naccept: EMFILE\n"
        );
    }

    #[test]
    fn lines_without_repeats_are_forgotten_and_tracking_is_bounded() {
        let t0 = Instant::now();
        let mut seen = Seen::new(Duration::from_secs(10));
        for k in 0..(MAX_TRACKED as u64 + 10) {
            assert!(!log(&mut seen, k, "distinct", t0).is_empty());
        }
        assert_eq!(seen.lines.len(), MAX_TRACKED);
        // Past the bound a new line is still written, every time.
        let extra = MAX_TRACKED as u64 + 100;
        assert!(!log(&mut seen, extra, "x", t0).is_empty());
        assert!(!log(&mut seen, extra, "x", t0).is_empty());
        // A closed window without repeats owes nothing.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(log(&mut seen, 0, "distinct", later), "distinct\n");
        assert_eq!(seen.lines.len(), 1);
    }

    /// Through tracing itself: a subscriber with the formatter, writing
    /// into a buffer.
    #[test]
    fn the_formatter_folds_repeats_of_a_real_call_site() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(RateLimited::new(
                tracing_subscriber::fmt::format().with_ansi(false),
            ))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::warn!("accept on the control socket: {}", "Too many open files");
            }
            tracing::warn!("a different line");
            for pid in [1, 2] {
                tracing::warn!("pid {pid} exited");
            }
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].ends_with("accept on the control socket: Too many open files"));
        assert!(lines[1].ends_with("a different line"));
        assert!(lines[2].ends_with("pid 1 exited"));
        assert!(lines[3].ends_with("pid 2 exited"));
    }
}
