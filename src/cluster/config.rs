//! Cluster mode's settings: the `[cluster]` table of the daemon's config
//! file, overridden by `--etcd URL,...` and `--insecure-etcd`, resolved
//! into [`ClusterOptions`] (pure: nothing is read or dialled here).
//!
//! ```toml
//! [cluster]
//! endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
//! ca = "/etc/drover/pki/ca.crt"      # the cluster's CA
//! cert = "/etc/drover/pki/node.crt"  # this node's certificate (client and server)
//! key = "/etc/drover/pki/node.key"
//! lease_ttl = "10s"                  # a node is NotReady this long after its last heartbeat
//! pod_eviction_timeout = "5s"        # then its controller-owned pods are recreated elsewhere
//! listen = "0.0.0.0:10250"           # node-to-node listener (logs, describe)
//! advertise = "10.0.0.5"             # the address other nodes reach this one at
//! # insecure = true                  # plain http to etcd off loopback (--insecure-etcd)
//! ```
//!
//! The same certificate serves etcd (as a client) and the node-to-node
//! listener (as server and client), so it needs both extended key usages
//! (`serverAuth, clientAuth`) and this node's address in its SANs.
//!
//! Must not: connect, read the certificate files, or look up addresses.

use crate::api::duration::parse_duration;
use crate::controllers::node_lifecycle::DEFAULT_POD_EVICTION_TIMEOUT;
use crate::store::etcd::{validate_endpoints, ConfigError, EtcdConfig, TlsFiles};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Node leases: 10 s (product.md §7; Kubernetes waits 40 s).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The node-to-node listener's port when etcd is not on loopback
/// (Kubernetes' kubelet port).
pub const DEFAULT_PEER_PORT: u16 = 10250;

/// `[cluster]` as written in the config file (all keys optional).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterTable {
    #[serde(default)]
    pub endpoints: Vec<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    pub lease_ttl: Option<String>,
    pub pod_eviction_timeout: Option<String>,
    pub listen: Option<String>,
    pub advertise: Option<String>,
}

/// Everything cluster mode runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterOptions {
    pub etcd: EtcdConfig,
    /// The node's lease (and the leader's).
    pub lease_ttl: Duration,
    pub pod_eviction_timeout: Duration,
    /// Where the node-to-node listener binds (port 0: any free port).
    pub listen: SocketAddr,
    /// The address published in the Node object; None: the address this
    /// host uses to reach etcd, found at start.
    pub advertise: Option<IpAddr>,
}

impl ClusterOptions {
    /// Plain loopback endpoints, default timings, the node-to-node
    /// listener on a free loopback port: what tests and one-box labs use.
    pub fn loopback(endpoints: impl IntoIterator<Item = impl Into<String>>) -> ClusterOptions {
        ClusterOptions {
            etcd: EtcdConfig::new(endpoints),
            lease_ttl: DEFAULT_LEASE_TTL,
            pod_eviction_timeout: DEFAULT_POD_EVICTION_TIMEOUT,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertise: None,
        }
    }

    /// Whether node-to-node traffic uses the cluster's certificates.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.etcd.tls.as_ref()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClusterConfigError {
    #[error("[cluster]: {0}")]
    Etcd(#[from] ConfigError),
    #[error(
        "[cluster]: ca, cert and key go together (missing: {missing}); \
         the node's certificate serves etcd and the node-to-node listener"
    )]
    PartialTls { missing: String },
    #[error("[cluster] {key} = \"{value}\": {reason}")]
    Bad {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// Flags over the config file's `[cluster]` table. `None`: no endpoints
/// anywhere, single-host mode. Relative paths are relative to
/// `config_dir`.
pub fn resolve(
    etcd_flag: &[String],
    insecure_flag: bool,
    table: Option<ClusterTable>,
    config_dir: &Path,
) -> Result<Option<ClusterOptions>, ClusterConfigError> {
    let table = table.unwrap_or_default();
    let endpoints: Vec<String> = if etcd_flag.is_empty() {
        table.endpoints.clone()
    } else {
        etcd_flag.to_vec()
    };
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        return Ok(None);
    }
    let tls = tls_files(&table, config_dir)?;
    let insecure = insecure_flag || table.insecure;
    let checked = validate_endpoints(&endpoints, tls.is_some(), insecure)?;
    let all_loopback = checked.iter().all(|e| is_loopback_url(&e.url));

    let duration = |key: &'static str, value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| ClusterConfigError::Bad {
            key,
            value: text.clone(),
            reason: e.to_string(),
        }),
    };
    let lease_ttl = duration("lease_ttl", &table.lease_ttl, DEFAULT_LEASE_TTL)?;
    if lease_ttl < Duration::from_secs(2) {
        return Err(ClusterConfigError::Bad {
            key: "lease_ttl",
            value: table.lease_ttl.clone().unwrap_or_default(),
            reason: "etcd grants leases of 2s at least".into(),
        });
    }
    let pod_eviction_timeout = duration(
        "pod_eviction_timeout",
        &table.pod_eviction_timeout,
        DEFAULT_POD_EVICTION_TIMEOUT,
    )?;

    let listen = match &table.listen {
        Some(text) => text.parse().map_err(|_| ClusterConfigError::Bad {
            key: "listen",
            value: text.clone(),
            reason: "expected IP:PORT (0.0.0.0:10250, 127.0.0.1:0)".into(),
        })?,
        // A one-box cluster stays on loopback; a real one listens on
        // every address at the usual port.
        None if all_loopback => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PEER_PORT),
    };
    let advertise = match &table.advertise {
        Some(text) => Some(text.parse().map_err(|_| ClusterConfigError::Bad {
            key: "advertise",
            value: text.clone(),
            reason: "expected an IP address".into(),
        })?),
        None if !listen.ip().is_unspecified() => Some(listen.ip()),
        None => None,
    };
    if tls.is_none() && !insecure && !listen.ip().is_loopback() {
        return Err(ClusterConfigError::Bad {
            key: "listen",
            value: listen.to_string(),
            reason: "without the cluster's certificates the node-to-node listener \
                     stays on loopback (set ca, cert and key, or --insecure-etcd)"
                .into(),
        });
    }

    Ok(Some(ClusterOptions {
        etcd: EtcdConfig {
            endpoints,
            tls,
            insecure,
            retry: Default::default(),
        },
        lease_ttl,
        pod_eviction_timeout,
        listen,
        advertise,
    }))
}

fn tls_files(table: &ClusterTable, dir: &Path) -> Result<Option<TlsFiles>, ClusterConfigError> {
    let given = [
        ("ca", &table.ca),
        ("cert", &table.cert),
        ("key", &table.key),
    ];
    let missing: Vec<&str> = given
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(k, _)| *k)
        .collect();
    match missing.len() {
        3 => Ok(None),
        0 => Ok(Some(TlsFiles {
            ca: dir.join(table.ca.as_ref().unwrap()),
            cert: dir.join(table.cert.as_ref().unwrap()),
            key: dir.join(table.key.as_ref().unwrap()),
        })),
        _ => Err(ClusterConfigError::PartialTls {
            missing: missing.join(", "),
        }),
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> ClusterTable {
        toml::from_str(text).expect("a valid [cluster] table")
    }

    #[test]
    fn no_endpoints_is_single_host_mode() {
        assert_eq!(resolve(&[], false, None, Path::new("/")), Ok(None));
        assert_eq!(
            resolve(&[], true, Some(table("lease_ttl = \"3s\"")), Path::new("/")),
            Ok(None)
        );
    }

    #[test]
    fn loopback_defaults() {
        let got = resolve(
            &["http://127.0.0.1:23790".into()],
            false,
            None,
            Path::new("/"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got, {
            let mut want = ClusterOptions::loopback(["http://127.0.0.1:23790"]);
            want.advertise = Some("127.0.0.1".parse().unwrap());
            want
        });
    }

    #[test]
    fn the_table_with_tls_and_relative_paths() {
        let t = table(
            "endpoints = [\"https://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\n\
             ca = \"pki/ca.crt\"\ncert = \"pki/n1.crt\"\nkey = \"/abs/n1.key\"\n\
             lease_ttl = \"4s\"\npod_eviction_timeout = \"1s\"\n",
        );
        let got = resolve(&[], false, Some(t), Path::new("/etc/drover"))
            .unwrap()
            .unwrap();
        assert_eq!(
            got.etcd.tls,
            Some(TlsFiles {
                ca: "/etc/drover/pki/ca.crt".into(),
                cert: "/etc/drover/pki/n1.crt".into(),
                key: "/abs/n1.key".into(),
            })
        );
        assert_eq!(got.lease_ttl, Duration::from_secs(4));
        assert_eq!(got.pod_eviction_timeout, Duration::from_secs(1));
        assert_eq!(got.listen, "0.0.0.0:10250".parse().unwrap());
        assert_eq!(
            got.advertise, None,
            "found at start: the address toward etcd"
        );
    }

    #[test]
    fn the_flag_overrides_the_table_endpoints() {
        let t = table("endpoints = [\"http://127.0.0.1:1\"]");
        let got = resolve(
            &["http://127.0.0.1:2".into()],
            false,
            Some(t),
            Path::new("/"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.etcd.endpoints, ["http://127.0.0.1:2"]);
    }

    #[test]
    fn refusals_table() {
        let cases: Vec<(&str, Vec<&str>, bool, &str, &str)> = vec![
            (
                "plain http off loopback",
                vec!["http://10.0.0.1:2379"],
                false,
                "",
                "--insecure-etcd",
            ),
            (
                "a certificate without its key",
                vec!["https://10.0.0.1:2379"],
                false,
                "ca = \"ca\"\ncert = \"c\"",
                "missing: key",
            ),
            (
                "https without certificates",
                vec!["https://10.0.0.1:2379"],
                false,
                "",
                "no TLS files",
            ),
            (
                "a lease etcd would not grant",
                vec!["http://127.0.0.1:1"],
                false,
                "lease_ttl = \"1s\"",
                "2s at least",
            ),
            (
                "a duration that is not one",
                vec!["http://127.0.0.1:1"],
                false,
                "pod_eviction_timeout = \"soon\"",
                "pod_eviction_timeout",
            ),
            (
                "a plain listener off loopback",
                vec!["http://127.0.0.1:1"],
                false,
                "listen = \"0.0.0.0:10250\"",
                "stays on loopback",
            ),
        ];
        for (name, eps, insecure, text, want) in cases {
            let eps: Vec<String> = eps.into_iter().map(String::from).collect();
            let err = resolve(&eps, insecure, Some(table(text)), Path::new("/"))
                .expect_err(name)
                .to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
        // --insecure-etcd allows both plain http off loopback and a plain
        // listener off loopback.
        let got = resolve(
            &["http://10.0.0.1:2379".into()],
            true,
            Some(table("listen = \"0.0.0.0:10250\"")),
            Path::new("/"),
        );
        assert!(got.is_ok_and(|o| o.is_some_and(|o| o.etcd.insecure)));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<ClusterTable>("endpoint = []").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `endpoint`"),
            "{err}"
        );
    }
}
