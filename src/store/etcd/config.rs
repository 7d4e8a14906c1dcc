//! How drover reaches etcd: endpoints, TLS files, timeouts, and the rule
//! for which endpoints are acceptable ([`validate_endpoints`], pure).
//!
//! The rule (product.md §6): cluster traffic is protected by etcd's TLS
//! with client certificates. Plain `http://` is accepted only for loopback
//! endpoints (tests, one-box labs) unless the operator says
//! `insecure = true` (`--insecure-etcd`); `https://` needs a CA, a client
//! certificate and its key.
//!
//! Must not: connect, or read the TLS files (the connect step does).

use hyper::Uri;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[cluster]` in the daemon's config, or `--etcd` and friends.
#[derive(Clone, Debug, PartialEq)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    pub tls: Option<TlsFiles>,
    /// Accept plain http to hosts other than loopback.
    pub insecure: bool,
    pub retry: RetryPolicy,
}

impl EtcdConfig {
    /// Plain endpoints with the default retry policy (loopback http, or
    /// https once `tls` is set).
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            insecure: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// PEM files for mutual TLS with etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How hard one store call tries before it reports
/// [`super::super::versioned::StoreError::Unavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// One attempt against one endpoint (connect included). A frozen
    /// member costs this much before the next endpoint is tried.
    pub request_timeout: Duration,
    /// Total time for one call, every attempt and pause included.
    pub budget: Duration,
    /// Pause after the first round over all endpoints; doubles per round.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// A call gives up after 5 s: longer than an etcd leader election on
    /// loopback (~2.2 s measured), shorter than a node lease (10 s), so a
    /// caller hears of an outage while its lease still holds.
    fn default() -> RetryPolicy {
        RetryPolicy {
            request_timeout: Duration::from_secs(2),
            budget: Duration::from_secs(5),
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after `round` full rounds over the endpoints failed
    /// (0-based): `first_backoff * 2^round`, capped at `max_backoff`.
    pub fn backoff(&self, round: u32) -> Duration {
        let factor = 1u32.checked_shl(round.min(16)).unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// One checked endpoint, as the client will dial it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub scheme: Scheme,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("no etcd endpoints given")]
    NoEndpoints,
    #[error("etcd endpoint `{endpoint}`: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error(
        "etcd endpoint `{endpoint}` is plain http to a host other than loopback: \
         use https with a CA, client certificate and key ([cluster] ca, cert, key), \
         or accept the risk with --insecure-etcd"
    )]
    PlainHttpOffLoopback { endpoint: String },
    #[error(
        "etcd endpoint `{endpoint}` is https but no TLS files are configured: \
         set [cluster] ca, cert and key"
    )]
    HttpsWithoutTls { endpoint: String },
    #[error("etcd endpoints mix http and https (`{http}`, `{https}`): use one scheme")]
    MixedSchemes { http: String, https: String },
    #[error("reading {what} {path}: {reason}")]
    ReadTls {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("etcd client: {0}")]
    Client(String),
}

/// Checks `endpoints` against the TLS rule. `tls` says whether CA, client
/// certificate and key are configured. Returns the endpoints in the order
/// given, duplicates dropped.
pub fn validate_endpoints(
    endpoints: &[String],
    tls: bool,
    insecure: bool,
) -> Result<Vec<Endpoint>, ConfigError> {
    let mut out: Vec<Endpoint> = Vec::new();
    for raw in endpoints {
        let endpoint = parse(raw.trim())?;
        match endpoint.scheme {
            Scheme::Http if !insecure && !is_loopback_url(&endpoint.url) => {
                return Err(ConfigError::PlainHttpOffLoopback {
                    endpoint: raw.clone(),
                })
            }
            Scheme::Https if !tls => {
                return Err(ConfigError::HttpsWithoutTls {
                    endpoint: raw.clone(),
                })
            }
            _ => {}
        }
        if !out.contains(&endpoint) {
            out.push(endpoint);
        }
    }
    let http = out.iter().find(|e| e.scheme == Scheme::Http);
    let https = out.iter().find(|e| e.scheme == Scheme::Https);
    if let (Some(a), Some(b)) = (http, https) {
        return Err(ConfigError::MixedSchemes {
            http: a.url.clone(),
            https: b.url.clone(),
        });
    }
    if out.is_empty() {
        return Err(ConfigError::NoEndpoints);
    }
    Ok(out)
}

fn parse(raw: &str) -> Result<Endpoint, ConfigError> {
    let bad = |reason: &str| ConfigError::BadEndpoint {
        endpoint: raw.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = raw
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some(other) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
        None => {
            return Err(bad(
                "no scheme: write http://HOST:PORT (loopback) or https://HOST:PORT",
            ))
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let port = uri
        .port_u16()
        .ok_or_else(|| bad("no port (etcd's client port is usually 2379)"))?;
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(bad("a path or query has no meaning here"));
    }
    let scheme_str = if scheme == Scheme::Http {
        "http"
    } else {
        "https"
    };
    Ok(Endpoint {
        url: format!("{scheme_str}://{host}:{port}"),
        scheme,
    })
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_endpoints_table() {
        let http = |u: &str| Endpoint {
            url: u.to_string(),
            scheme: Scheme::Http,
        };
        let https = |u: &str| Endpoint {
            url: u.to_string(),
            scheme: Scheme::Https,
        };
        type Want = Result<Vec<Endpoint>, &'static str>;
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<&str>, bool, bool, Want)> = vec![
            ("loopback http is fine", vec!["http://127.0.0.1:2379"], false, false,
                Ok(vec![http("http://127.0.0.1:2379")])),
            ("all of 127/8, ::1 and localhost are loopback",
                vec!["http://127.1.2.3:1", "http://[::1]:2", "http://LOCALHOST:3"], false, false,
                Ok(vec![http("http://127.1.2.3:1"), http("http://[::1]:2"), http("http://LOCALHOST:3")])),
            ("plain http off loopback is refused", vec!["http://10.0.0.5:2379"], false, false,
                Err("PlainHttpOffLoopback")),
            ("even with TLS files: the endpoint itself is plain", vec!["http://10.0.0.5:2379"], true, false,
                Err("PlainHttpOffLoopback")),
            ("insecure allows it", vec!["http://10.0.0.5:2379"], false, true,
                Ok(vec![http("http://10.0.0.5:2379")])),
            ("a name that merely starts with 127 is not loopback", vec!["http://127.example.com:2379"], false, false,
                Err("PlainHttpOffLoopback")),
            ("https with TLS files", vec!["https://etcd1:2379", "https://etcd2:2379"], true, false,
                Ok(vec![https("https://etcd1:2379"), https("https://etcd2:2379")])),
            ("https without TLS files", vec!["https://etcd1:2379"], false, false,
                Err("HttpsWithoutTls")),
            ("mixed schemes", vec!["http://127.0.0.1:2379", "https://127.0.0.1:2380"], true, false,
                Err("MixedSchemes")),
            ("no scheme", vec!["127.0.0.1:2379"], false, false, Err("BadEndpoint")),
            ("other scheme", vec!["unix:///run/etcd.sock"], false, false, Err("BadEndpoint")),
            ("no port", vec!["http://127.0.0.1"], false, false, Err("BadEndpoint")),
            ("a path", vec!["http://127.0.0.1:2379/v3"], false, false, Err("BadEndpoint")),
            ("duplicates dropped, order kept",
                vec!["http://127.0.0.1:2", "http://127.0.0.1:1", "http://127.0.0.1:2/"], false, false,
                Ok(vec![http("http://127.0.0.1:2"), http("http://127.0.0.1:1")])),
            ("empty list", vec![], false, false, Err("NoEndpoints")),
        ];
        for (name, eps, tls, insecure, want) in cases {
            let eps: Vec<String> = eps.into_iter().map(String::from).collect();
            let got = validate_endpoints(&eps, tls, insecure);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
                (Err(e), Err(variant)) => {
                    let dbg = format!("{e:?}");
                    assert!(dbg.starts_with(variant), "{name}: got {dbg}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn refusal_says_what_to_do() {
        let err = validate_endpoints(&["http://10.1.1.1:2379".into()], false, false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("https") && text.contains("--insecure-etcd"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = RetryPolicy::default();
        let got: Vec<u128> = (0..7).map(|r| p.backoff(r).as_millis()).collect();
        assert_eq!(got, [50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), p.max_backoff);
    }
}
