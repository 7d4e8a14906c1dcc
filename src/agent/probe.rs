//! Probes: what to check (resolved from the spec), and the pure bookkeeping
//! of consecutive results against thresholds (Kubernetes' prober
//! semantics). The checks themselves run elsewhere: HTTP and TCP in
//! `probe_net` (async tasks of the daemon), exec through the runtime.

use crate::api::{PortRef, Probe, ProbeHandler};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        })
    }
}

/// A probe's verdict. The message is what events and `describe` show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure { message: String },
}

/// A check with every name resolved: ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Http {
        host: String,
        port: u16,
        path: String,
        headers: BTreeMap<String, String>,
        timeout: Duration,
    },
    Tcp {
        host: String,
        port: u16,
        timeout: Duration,
    },
    Exec {
        command: Vec<String>,
        timeout: Duration,
    },
}

/// Resolves named ports against the pod's allocated ones.
pub fn resolve(probe: &Probe, ports: &BTreeMap<String, u16>) -> Result<Check, String> {
    let port = |p: &PortRef| match p {
        PortRef::Number(n) => Ok(*n),
        PortRef::Name(name) => ports
            .get(name)
            .copied()
            .ok_or_else(|| format!("port \"{name}\" is not allocated to this pod")),
    };
    let timeout = probe.timeout.as_duration();
    Ok(match &probe.handler {
        ProbeHandler::HttpGet {
            path,
            port: p,
            host,
            scheme,
            headers,
        } => {
            if scheme != "http" {
                return Err(format!("scheme {scheme} is not supported (only http)"));
            }
            Check::Http {
                host: host.clone(),
                port: port(p)?,
                path: path.clone(),
                headers: headers.clone(),
                timeout,
            }
        }
        ProbeHandler::TcpSocket { port: p, host } => Check::Tcp {
            host: host.clone(),
            port: port(p)?,
            timeout,
        },
        ProbeHandler::Exec { command } => Check::Exec {
            command: command.clone(),
            timeout,
        },
    })
}

/// When a probe runs and how its results count: the part of a
/// [`Probe`] the state machine needs (the check itself is resolved by the
/// executor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// Overrides the pod's grace period when this probe kills.
    pub grace: Option<Duration>,
}

impl From<&Probe> for ProbeTiming {
    fn from(p: &Probe) -> ProbeTiming {
        ProbeTiming {
            initial_delay: p.initial_delay.as_duration(),
            period: p.period.as_duration(),
            timeout: p.timeout.as_duration(),
            success_threshold: p.success_threshold,
            failure_threshold: p.failure_threshold,
            grace: p.termination_grace_period.map(|d| d.as_duration()),
        }
    }
}

/// What a new result changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `success_threshold` consecutive successes reached.
    BecameHealthy,
    /// `failure_threshold` consecutive failures reached.
    BecameUnhealthy { message: String },
    /// Nothing crossed a threshold.
    Unchanged,
}

/// Consecutive results of one probe of one process run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeState {
    successes: u32,
    failures: u32,
    /// None until a threshold was first crossed.
    pub healthy: Option<bool>,
    pub last: Option<ProbeResult>,
}

impl ProbeState {
    pub fn record(&mut self, probe: &ProbeTiming, result: ProbeResult) -> Verdict {
        let verdict = match &result {
            ProbeResult::Success => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes >= probe.success_threshold.max(1) && self.healthy != Some(true) {
                    self.healthy = Some(true);
                    Verdict::BecameHealthy
                } else {
                    Verdict::Unchanged
                }
            }
            ProbeResult::Failure { message } => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= probe.failure_threshold.max(1) && self.healthy != Some(false) {
                    self.healthy = Some(false);
                    Verdict::BecameUnhealthy {
                        message: message.clone(),
                    }
                } else {
                    Verdict::Unchanged
                }
            }
        };
        self.last = Some(result);
        verdict
    }

    /// After a liveness kill the counts start over (the next run is new).
    pub fn reset(&mut self) {
        *self = ProbeState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Dur;

    fn probe(success: u32, failure: u32) -> Probe {
        Probe {
            handler: ProbeHandler::TcpSocket {
                port: PortRef::Name("http".into()),
                host: "127.0.0.1".into(),
            },
            initial_delay: Dur::secs(0),
            period: Dur::secs(10),
            timeout: Dur::secs(1),
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period: None,
        }
    }

    fn fail() -> ProbeResult {
        ProbeResult::Failure {
            message: "boom".into(),
        }
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let p = ProbeTiming::from(&probe(2, 3));
        let mut s = ProbeState::default();
        assert_eq!(s.record(&p, fail()), Verdict::Unchanged);
        assert_eq!(s.record(&p, fail()), Verdict::Unchanged);
        // A success in between resets the failure count.
        assert_eq!(s.record(&p, ProbeResult::Success), Verdict::Unchanged);
        assert_eq!(s.record(&p, fail()), Verdict::Unchanged);
        assert_eq!(s.record(&p, fail()), Verdict::Unchanged);
        assert_eq!(
            s.record(&p, fail()),
            Verdict::BecameUnhealthy {
                message: "boom".into()
            }
        );
        // Further failures do not repeat the transition.
        assert_eq!(s.record(&p, fail()), Verdict::Unchanged);
        assert_eq!(s.record(&p, ProbeResult::Success), Verdict::Unchanged);
        assert_eq!(s.record(&p, ProbeResult::Success), Verdict::BecameHealthy);
    }

    #[test]
    fn named_ports_resolve_from_the_pod() {
        let ports: BTreeMap<String, u16> = [("http".to_string(), 8081)].into();
        let c = resolve(&probe(1, 3), &ports).unwrap();
        assert_eq!(
            c,
            Check::Tcp {
                host: "127.0.0.1".into(),
                port: 8081,
                timeout: Duration::from_secs(1)
            }
        );
        assert!(resolve(&probe(1, 3), &BTreeMap::new()).is_err());
    }
}
