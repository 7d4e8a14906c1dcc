//! drover names (DNS-1123 labels) for systemd unit names and supervisord
//! program names, which allow `_`, `.`, `@`, `\x2d` and capitals.

/// `raw` as a DNS-1123 label of at most `max` characters: lowercased,
/// every run of other characters one '-', no '-' at either end. None if no
/// letter or digit is left.
pub fn unit_name(raw: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        let cases = [
            ("redis-server", 63, Some("redis-server")),
            ("getty@tty1", 63, Some("getty-tty1")),
            ("My_App.worker", 63, Some("my-app-worker")),
            ("__x__", 63, Some("x")),
            ("a--b", 63, Some("a-b")),
            ("@@", 63, None),
            ("abcdef", 3, Some("abc")),
            // Cut at a '-': the '-' goes too.
            ("ab-cdef", 3, Some("ab")),
        ];
        for (raw, max, want) in cases {
            assert_eq!(unit_name(raw, max).as_deref(), want, "{raw}");
        }
    }
}
