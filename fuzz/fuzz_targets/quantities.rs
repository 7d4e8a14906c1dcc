//! Durations ("1m30s") and quantities ("256Mi", "0.5"): the parsers every
//! unit field of that kind goes through.
//!
//! The first byte picks the parser, the rest is its text. A value that
//! parses must print to text that parses back to the same value (the
//! store writes the printed form and reads it back after a restart).
#![no_main]

use drover::api::duration::{format_duration, parse_duration};
use drover::api::resources::{parse_cpu, parse_memory, CpuQuantity, MemoryQuantity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(d) = parse_duration(text) {
                let printed = format_duration(d);
                let back = parse_duration(&printed)
                    .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {e}"));
                assert_eq!(back, d, "{text:?} printed as {printed:?}");
            }
        }
        1 => {
            if let Ok(n) = parse_memory(text) {
                let printed = MemoryQuantity(n).to_string();
                assert_eq!(
                    parse_memory(&printed),
                    Ok(n),
                    "{text:?} printed as {printed:?}"
                );
            }
        }
        _ => {
            if let Ok(n) = parse_cpu(text) {
                let printed = CpuQuantity(n).to_string();
                assert_eq!(
                    parse_cpu(&printed),
                    Ok(n),
                    "{text:?} printed as {printed:?}"
                );
            }
        }
    }
});
