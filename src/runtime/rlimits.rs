//! `rlimits` by name into the numbers the child passes to prlimit64
//! before exec. Pure: resolving happens before clone, so an unknown name
//! fails the spawn without starting anything.

use crate::api::RlimitValue;
use std::collections::BTreeMap;

/// The names a unit may use, as systemd's `Limit*=` and `ulimit` know
/// them, with their resource numbers.
pub const RLIMIT_NAMES: [(&str, libc::c_int); 13] = [
    ("as", libc::RLIMIT_AS as libc::c_int),
    ("core", libc::RLIMIT_CORE as libc::c_int),
    ("cpu", libc::RLIMIT_CPU as libc::c_int),
    ("data", libc::RLIMIT_DATA as libc::c_int),
    ("fsize", libc::RLIMIT_FSIZE as libc::c_int),
    ("memlock", libc::RLIMIT_MEMLOCK as libc::c_int),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as libc::c_int),
    ("nice", libc::RLIMIT_NICE as libc::c_int),
    ("nofile", libc::RLIMIT_NOFILE as libc::c_int),
    ("nproc", libc::RLIMIT_NPROC as libc::c_int),
    ("rtprio", libc::RLIMIT_RTPRIO as libc::c_int),
    ("sigpending", libc::RLIMIT_SIGPENDING as libc::c_int),
    ("stack", libc::RLIMIT_STACK as libc::c_int),
];

/// One limit for the child: soft and hard alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rlimit {
    pub name: &'static str,
    pub resource: libc::c_int,
    pub value: u64,
}

/// The limits in `map`, or the first unknown name.
pub(crate) fn resolve(map: &BTreeMap<String, RlimitValue>) -> Result<Vec<Rlimit>, String> {
    map.iter()
        .map(|(name, value)| {
            let (name, resource) = RLIMIT_NAMES
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| name.clone())?;
            let value = match value {
                RlimitValue::Limit(n) => *n,
                RlimitValue::Unlimited => libc::RLIM_INFINITY,
            };
            Ok(Rlimit {
                name,
                resource: *resource,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_names_are_named() {
        let map = BTreeMap::from([
            ("nofile".to_string(), RlimitValue::Limit(4096)),
            ("core".to_string(), RlimitValue::Unlimited),
        ]);
        let got = resolve(&map).unwrap();
        assert_eq!(
            got,
            vec![
                Rlimit {
                    name: "core",
                    resource: libc::RLIMIT_CORE as libc::c_int,
                    value: libc::RLIM_INFINITY
                },
                Rlimit {
                    name: "nofile",
                    resource: libc::RLIMIT_NOFILE as libc::c_int,
                    value: 4096
                },
            ]
        );
        let bad = BTreeMap::from([("files".to_string(), RlimitValue::Limit(1))]);
        assert_eq!(resolve(&bad), Err("files".to_string()));
        assert!(resolve(&BTreeMap::new()).unwrap().is_empty());
        let mut names: Vec<&str> = RLIMIT_NAMES.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RLIMIT_NAMES.len());
    }
}
