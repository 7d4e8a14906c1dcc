//! Port allocation: one free port per named range per pod, chosen when the
//! pod first starts and kept for its life.

use crate::api::PortRequest;
use std::collections::{BTreeMap, HashSet};

/// Picks, for every request, the lowest port of its range that no other
/// pod on this node holds and that `is_free` confirms (nothing else on the
/// host listens there). Err names the exhausted range.
pub fn allocate(
    requests: &[PortRequest],
    taken: &HashSet<u16>,
    is_free: impl Fn(u16) -> bool,
) -> Result<BTreeMap<String, u16>, String> {
    let mut out = BTreeMap::new();
    let mut mine: HashSet<u16> = HashSet::new();
    for req in requests {
        let found = (req.range.first..=req.range.last)
            .find(|p| !taken.contains(p) && !mine.contains(p) && is_free(*p));
        match found {
            Some(p) => {
                mine.insert(p);
                out.insert(req.name.clone(), p);
            }
            None => {
                return Err(format!(
                    "no free port left in range {}-{} for port \"{}\"",
                    req.range.first, req.range.last, req.name
                ))
            }
        }
    }
    Ok(out)
}

/// Whether a TCP port can be bound on all interfaces right now.
pub fn tcp_port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PortRange;

    fn req(name: &str, first: u16, last: u16) -> PortRequest {
        PortRequest {
            name: name.into(),
            range: PortRange { first, last },
        }
    }

    #[test]
    fn lowest_free_port_skipping_taken_and_busy() {
        let taken: HashSet<u16> = [8080].into();
        let got = allocate(&[req("http", 8080, 8090)], &taken, |p| p != 8081).unwrap();
        assert_eq!(got["http"], 8082);
    }

    #[test]
    fn two_names_never_share_a_port() {
        let got = allocate(
            &[req("a", 9000, 9001), req("b", 9000, 9001)],
            &HashSet::new(),
            |_| true,
        )
        .unwrap();
        assert_eq!((got["a"], got["b"]), (9000, 9001));
    }

    #[test]
    fn exhausted_range_is_an_error() {
        let taken: HashSet<u16> = [7000].into();
        let err = allocate(&[req("x", 7000, 7000)], &taken, |_| true).unwrap_err();
        assert!(err.contains("7000-7000"), "{err}");
    }
}
