//! The API's JSON request bodies (`api::http`), decoded as the daemon
//! does: the first byte picks the route, the rest is the body. An apply
//! goes through `daemon::apply::apply` into an empty store, the code
//! path of `POST /v1/apply` (validation of every object included).
#![no_main]

use drover::api::http::{ApplyRequest, CreateJobRequest, KillRequest, LabelRequest, ScaleRequest};
use drover::store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((route, body)) = data.split_first() else {
        return;
    };
    match route % 5 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<ApplyRequest>(body) {
                let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
                let mut store = Store::new();
                if drover::daemon::apply::apply(&mut store, req.items, false, "fuzz", now).is_ok() {
                    // What was applied is stored, and the store's JSON
                    // reads back.
                    for kind in drover::api::Kind::ALL {
                        for obj in store.list(kind) {
                            let json = serde_json::to_vec(obj).unwrap();
                            let back: drover::api::Object = serde_json::from_slice(&json)
                                .unwrap_or_else(|e| {
                                    panic!("{}: {e}", String::from_utf8_lossy(&json))
                                });
                            assert_eq!(&back, obj);
                        }
                    }
                }
            }
        }
        1 => {
            let _ = serde_json::from_slice::<LabelRequest>(body);
        }
        2 => {
            let _ = serde_json::from_slice::<ScaleRequest>(body);
        }
        3 => {
            if let Ok(req) = serde_json::from_slice::<KillRequest>(body) {
                // What `kill` accepts prints as a name that parses back
                // (`describe` prints it, a user may paste it).
                if let Ok(signal) = req.signal.parse::<drover::api::Signal>() {
                    assert_eq!(signal.name().parse(), Ok(signal), "{:?}", req.signal);
                }
            }
        }
        _ => {
            let _ = serde_json::from_slice::<CreateJobRequest>(body);
        }
    }
});
