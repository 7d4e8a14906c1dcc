//! The API's request decoding: percent-decoding of path segments and the
//! query string (`daemon::http::{percent_decode, parse_query}`), on any
//! bytes a client on the socket can send, and its agreement with the
//! client's encoder (`client::encode`): what the CLI encodes, the daemon
//! decodes back to the same text.
#![no_main]

use drover::client::encode;
use drover::daemon::http::{parse_query, percent_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let query = parse_query(text);
    // What the daemon does with a selector from the query string.
    if let Some(sel) = query.get("selector") {
        let _ = drover::api::LabelSelector::parse(sel);
    }
    for segment in text.split('/') {
        let _ = percent_decode(segment);
    }
    assert_eq!(percent_decode(&encode(text)), text);
    let pair = format!("k={}", encode(text));
    assert_eq!(parse_query(&pair).get("k").map(String::as_str), Some(text));
});
