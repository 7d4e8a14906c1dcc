//! Label selectors: kubectl's `-l` syntax (`LabelSelector::parse`, which
//! the daemon runs on every `GET /v1/pods?selector=`), and matching.
//!
//! The input is the selector, then optionally a newline and `k=v,...`
//! labels to match against. A parsed selector, printed, must parse back to
//! itself when its keys and values are plain label text.
#![no_main]

use drover::api::{LabelSelector, Labels};
use libfuzzer_sys::fuzz_target;

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (selector, labels) = text.split_once('\n').unwrap_or((text, ""));
    let labels: Labels = labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sel = match LabelSelector::parse(selector) {
        Ok(sel) => sel,
        Err(_) => return,
    };
    let matched = sel.matches(&labels);
    let all_plain = sel.match_labels.iter().all(|(k, v)| plain(k) && plain(v))
        && sel
            .match_expressions
            .iter()
            .all(|r| plain(&r.key) && r.values.iter().all(|v| plain(v)) && !r.values.is_empty());
    if all_plain {
        let printed = sel.to_string();
        let again = LabelSelector::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (printed from {selector:?}): {e}"));
        assert_eq!(
            again.matches(&labels),
            matched,
            "{printed:?} vs {selector:?}"
        );
    }
    // The from_labels path (ReplicationController selectors) as well.
    assert!(LabelSelector::from_labels(labels.clone()).matches(&labels));
});
