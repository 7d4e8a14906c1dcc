//! Unit files: `drover::units::parse_unit` on arbitrary text, as
//! `drover apply -f`, `validate` and the units folder use it.
//!
//! A rejected file must render its diagnostics (file:line:col, the
//! caret line); an accepted one must pass `validate_object` (what the
//! daemon checks again on apply) and survive the store's JSON round trip
//! unchanged, or a daemon restart would read back something else.
#![no_main]

use drover::api::Object;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    match drover::units::parse_unit(Path::new("units/fuzz.toml"), text, now) {
        Err(diagnostics) => {
            for d in &diagnostics {
                let _ = d.to_string();
            }
        }
        Ok(object) => {
            if let Err(errors) = drover::units::validate_object(&object) {
                panic!("parse_unit accepted what validate_object refuses: {errors:?}");
            }
            let json = serde_json::to_vec(&object).expect("an accepted unit serialises");
            let back: Object = serde_json::from_slice(&json).unwrap_or_else(|e| {
                panic!(
                    "the store could not read back {}: {e}",
                    String::from_utf8_lossy(&json)
                )
            });
            assert_eq!(back, object, "the JSON round trip changed the object");
        }
    }
});
