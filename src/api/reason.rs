//! Why a process is waiting or why its run ended: the `reason` of
//! `state.waiting` and of `last_state`, Kubernetes' vocabulary.
//!
//! A closed enum inside drover (code matches on it, never compares
//! strings); in JSON a plain string, exactly as before. A string drover
//! does not know (a store written by another version) is kept as
//! [`ProcessReason::Other`] rather than refused.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ProcessReason {
    /// Exited 0.
    Completed,
    /// Exited non-zero or was killed by a signal, on its own.
    Error,
    /// Killed by the kernel's OOM killer (its cgroup's memory limit).
    OomKilled,
    /// The start failed before exec (missing binary, bad working dir).
    StartError,
    /// The start failed on configuration (unknown user or group).
    CreateContainerConfigError,
    /// Waiting out the restart backoff after repeated failures.
    CrashLoopBackOff,
    /// Not started yet.
    ContainerCreating,
    /// Stopped because its liveness probe failed.
    LivenessProbeFailed,
    /// Stopped because its startup probe failed.
    StartupProbeFailed,
    /// Stopped because it missed (or triggered) its sd_notify watchdog.
    WatchdogTimeout,
    /// Stopped by `drover restart`.
    Restarted,
    /// Stopped for good (pod deleted, `drover up` halting) and did not
    /// exit 0.
    Killed,
    /// Ended while the daemon was not running: status unknown.
    Unknown,
    /// Any other string (kept, shown as is).
    Other(String),
}

impl ProcessReason {
    pub fn as_str(&self) -> &str {
        match self {
            ProcessReason::Completed => "Completed",
            ProcessReason::Error => "Error",
            ProcessReason::OomKilled => "OOMKilled",
            ProcessReason::StartError => "StartError",
            ProcessReason::CreateContainerConfigError => "CreateContainerConfigError",
            ProcessReason::CrashLoopBackOff => "CrashLoopBackOff",
            ProcessReason::ContainerCreating => "ContainerCreating",
            ProcessReason::LivenessProbeFailed => "LivenessProbeFailed",
            ProcessReason::StartupProbeFailed => "StartupProbeFailed",
            ProcessReason::WatchdogTimeout => "WatchdogTimeout",
            ProcessReason::Restarted => "Restarted",
            ProcessReason::Killed => "Killed",
            ProcessReason::Unknown => "Unknown",
            ProcessReason::Other(s) => s,
        }
    }

    /// Every named reason (not `Other`), for round-trip tests.
    pub const KNOWN: [ProcessReason; 13] = [
        ProcessReason::Completed,
        ProcessReason::Error,
        ProcessReason::OomKilled,
        ProcessReason::StartError,
        ProcessReason::CreateContainerConfigError,
        ProcessReason::CrashLoopBackOff,
        ProcessReason::ContainerCreating,
        ProcessReason::LivenessProbeFailed,
        ProcessReason::StartupProbeFailed,
        ProcessReason::WatchdogTimeout,
        ProcessReason::Restarted,
        ProcessReason::Killed,
        ProcessReason::Unknown,
    ];
}

impl From<&str> for ProcessReason {
    fn from(s: &str) -> ProcessReason {
        ProcessReason::KNOWN
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or_else(|| ProcessReason::Other(s.to_string()))
    }
}

impl From<String> for ProcessReason {
    fn from(s: String) -> ProcessReason {
        match ProcessReason::from(s.as_str()) {
            ProcessReason::Other(_) => ProcessReason::Other(s),
            known => known,
        }
    }
}

impl From<ProcessReason> for String {
    fn from(r: ProcessReason) -> String {
        match r {
            ProcessReason::Other(s) => s,
            known => known.as_str().to_string(),
        }
    }
}

impl fmt::Display for ProcessReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// So `assert_eq!(last.reason, "Restarted")` reads as it always did.
impl PartialEq<&str> for ProcessReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ProcessReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_plain_string_both_ways() {
        for r in ProcessReason::KNOWN {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<ProcessReason>(&json).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&ProcessReason::OomKilled).unwrap(),
            "\"OOMKilled\""
        );
        let other: ProcessReason = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(other, ProcessReason::Other("SomethingNew".into()));
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"SomethingNew\"");
    }

    #[test]
    fn compares_with_text() {
        assert_eq!(ProcessReason::Restarted, "Restarted");
        assert_eq!(ProcessReason::from("Error"), ProcessReason::Error);
        assert_eq!(ProcessReason::from(""), ProcessReason::Other(String::new()));
    }
}
