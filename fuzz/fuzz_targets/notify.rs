//! sd_notify datagrams: `agent::notify::parse` on arbitrary bytes, exactly
//! what any process that can write to the notify socket sends.
//!
//! Each non-empty line is one message, and MAINPID is honoured only as a
//! pid above 1.
#![no_main]

use drover::agent::notify::{parse, NotifyMsg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let messages = parse(data);
    let lines = String::from_utf8_lossy(data)
        .lines()
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(messages.len(), lines);
    for m in &messages {
        if let NotifyMsg::MainPid(pid) = m {
            assert!(*pid > 1, "MAINPID={pid} accepted");
        }
    }
});
