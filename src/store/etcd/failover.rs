//! Every etcd call goes through [`Failover::call`]: one client per
//! endpoint, a sticky "current" endpoint, and on a transport failure the
//! next endpoint, round after round with a doubling pause, until the
//! call's budget is spent.
//!
//! Why not etcd-client's own balancing: with several endpoints and one
//! dead, its balancer keeps sending a share of calls (about 30% measured)
//! to the dead one, and such a call fails instead of moving on. Here a
//! failed endpoint is left at once and stays left while the next answers.
//!
//! A call that times out after it was sent may have been applied: a retry
//! of a compare-and-swap then sees a conflict (its own write), a retry of
//! a create sees "already exists". Callers are level-triggered and re-read
//! on either, so retrying is safe.
//!
//! Must not: retry what a retry cannot fix (a failed compare, a refused
//! request), or wait past the budget.

use super::config::{ConfigError, Endpoint, EtcdConfig, RetryPolicy};
use crate::store::versioned::StoreError;
use etcd_client::{Client, ConnectOptions};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub(crate) struct Failover {
    clients: Vec<Client>,
    urls: Vec<String>,
    current: AtomicUsize,
    pub(crate) policy: RetryPolicy,
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// The endpoint or the cluster is (perhaps briefly) unable to answer:
    /// try the next endpoint.
    Retry,
    /// Retrying cannot help.
    Fatal,
}

/// gRPC codes as numbers (tonic's `Code` is not re-exported by
/// etcd-client; the numbers are fixed by the gRPC spec).
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const ABORTED: i32 = 10;
    pub const UNAVAILABLE: i32 = 14;
}

pub(crate) const LEASE_NOT_FOUND: &str = "lease not found";

/// Classifies an etcd-client error. Transport failures, timeouts, "no
/// leader", "leader changed" and overload are worth another endpoint;
/// invalid requests, permission errors and the like are not.
pub(crate) fn classify(err: &etcd_client::Error) -> Class {
    use etcd_client::Error as E;
    match err {
        // etcd-client's only signal that a keep-alive found no lease (its
        // `keep_alive` checks the first answer's TTL and returns this).
        E::LeaseKeepAliveError(m) if m == LEASE_NOT_FOUND => Class::Fatal,
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => {
            Class::Retry
        }
        E::GRpcStatus(status) => classify_code(status.code() as i32),
        _ => Class::Fatal,
    }
}

/// The gRPC half of [`classify`].
fn classify_code(code: i32) -> Class {
    match code {
        code::CANCELLED
        | code::UNKNOWN
        | code::DEADLINE_EXCEEDED
        | code::RESOURCE_EXHAUSTED
        | code::ABORTED
        | code::UNAVAILABLE => Class::Retry,
        _ => Class::Fatal,
    }
}

impl Failover {
    /// One lazily connected client per endpoint: nothing is dialled
    /// until the first call, so a dead endpoint does not fail the start.
    pub(crate) async fn connect(
        config: &EtcdConfig,
        endpoints: &[Endpoint],
        options: ConnectOptions,
    ) -> Result<Failover, ConfigError> {
        let mut clients = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let client = Client::connect([e.url.as_str()], Some(options.clone()))
                .await
                .map_err(|err| ConfigError::Client(format!("{}: {err}", e.url)))?;
            clients.push(client);
        }
        Ok(Failover {
            clients,
            urls: endpoints.iter().map(|e| e.url.clone()).collect(),
            current: AtomicUsize::new(0),
            policy: config.retry,
        })
    }

    pub(crate) fn endpoints(&self) -> &[String] {
        &self.urls
    }

    /// Runs `op` against the current endpoint, moving on to the next one
    /// on each retryable failure or per-attempt timeout, with a pause
    /// after every full round, until it succeeds, fails for good, or the
    /// budget is spent ([`StoreError::Unavailable`]). `op` gets the index
    /// of the endpoint it talks to (see [`Failover::abandon`]).
    pub(crate) async fn call<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(usize, Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.clients.len();
        let deadline = Instant::now() + self.policy.budget;
        let start = self.current.load(Ordering::Relaxed);
        let mut attempts = 0u32;
        let mut last = String::new();
        for round in 0u32.. {
            for i in 0..n {
                let idx = (start + i) % n;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                attempts += 1;
                let attempt = op(idx, self.clients[idx].clone());
                let timeout = self.policy.request_timeout.min(left);
                match tokio::time::timeout(timeout, attempt).await {
                    Ok(Ok(value)) => {
                        self.current.store(idx, Ordering::Relaxed);
                        return Ok(value);
                    }
                    Ok(Err(err)) => match classify(&err) {
                        Class::Fatal => return Err(fatal(err)),
                        Class::Retry => last = format!("{}: {err}", self.urls[idx]),
                    },
                    Err(_) => last = format!("{}: no answer within {timeout:?}", self.urls[idx]),
                }
                tracing::debug!(attempt = attempts, "etcd call failed: {last}");
            }
            let pause = self.policy.backoff(round);
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Err(StoreError::Unavailable {
            attempts,
            endpoints: n,
            last,
        })
    }

    /// A stream on endpoint `idx` broke: start the next call elsewhere
    /// (unless another call already moved on).
    pub(crate) fn abandon(&self, idx: usize) {
        let next = (idx + 1) % self.clients.len();
        let _ = self
            .current
            .compare_exchange(idx, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The pause before a stream is re-opened after breaking `round`
    /// times in a row.
    pub(crate) fn reopen_pause(&self, round: u32) -> Duration {
        self.policy.backoff(round)
    }
}

fn fatal(err: etcd_client::Error) -> StoreError {
    match err {
        etcd_client::Error::LeaseKeepAliveError(m) if m == LEASE_NOT_FOUND => {
            StoreError::LeaseExpired
        }
        other => StoreError::Refused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        use etcd_client::Error as E;
        let cases: Vec<(E, Class)> = vec![
            (
                E::IoError(std::io::ErrorKind::ConnectionRefused.into()),
                Class::Retry,
            ),
            (E::WatchError("stream closed".into()), Class::Retry),
            (
                E::LeaseKeepAliveError("channel closed".into()),
                Class::Retry,
            ),
            (
                E::LeaseKeepAliveError("lease not found".into()),
                Class::Fatal,
            ),
            (E::InvalidArgs("empty key".into()), Class::Fatal),
            (E::ElectError("bad".into()), Class::Fatal),
        ];
        for (err, want) in cases {
            assert_eq!(classify(&err), want, "{err}");
        }
        // gRPC codes etcd answers with (etcdserver/api/v3rpc/rpctypes).
        let codes = [
            (1, Class::Retry),  // Cancelled: the connection went away
            (2, Class::Retry),  // Unknown: transport trouble
            (4, Class::Retry),  // DeadlineExceeded
            (8, Class::Retry),  // ResourceExhausted: "too many requests"
            (10, Class::Retry), // Aborted
            (14, Class::Retry), // Unavailable: "no leader", "leader changed", "request timed out"
            (3, Class::Fatal),  // InvalidArgument: "request is too large"
            (5, Class::Fatal),  // NotFound: "requested lease not found"
            (7, Class::Fatal),  // PermissionDenied
            (11, Class::Fatal), // OutOfRange: "required revision has been compacted"
            (16, Class::Fatal), // Unauthenticated
        ];
        for (code, want) in codes {
            assert_eq!(classify_code(code), want, "code {code}");
        }
    }
}
