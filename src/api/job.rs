//! Jobs and CronJobs: run pods to completion, once or on a schedule.
//!
//! A Job runs pods from its template until `completions` of them
//! succeeded, at most `parallelism` at a time, and fails after
//! `backoff_limit` retries or `active_deadline`. It owns only the pods it
//! created (they carry its uid as owner and the labels `job-name` and
//! `controller-uid`); it never adopts. A CronJob creates a Job from its
//! `job_template` at every scheduled time, named `<cronjob>-<unix time of
//! the schedule>`.

use super::{Dur, Labels, ObjectMeta, PodTemplate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The labels every pod of a Job carries (Kubernetes' legacy names, so
/// `-l job-name=backup` works as kubectl users expect).
pub mod labels {
    pub const JOB_NAME: &str = "job-name";
    pub const CONTROLLER_UID: &str = "controller-uid";
    /// Indexed Jobs: the pod's completion index, also exported to its
    /// processes as `JOB_COMPLETION_INDEX`.
    pub const COMPLETION_INDEX: &str = "job-completion-index";
    /// The environment variable of an Indexed Job's processes.
    pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
}

/// Annotations on Jobs.
pub mod job_annotations {
    /// The scheduled time (RFC 3339) a CronJob created this Job for.
    pub const SCHEDULED_AT: &str = "drover.io/scheduled-at";
    /// "manual" on Jobs made with `drover create job --from=cronjob/NAME`.
    pub const INSTANTIATE: &str = "drover.io/instantiate";
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompletionMode {
    /// Any `completions` successful pods complete the Job.
    #[default]
    NonIndexed,
    /// Each index 0..completions needs one successful pod; the pod's index
    /// is in `JOB_COMPLETION_INDEX`.
    Indexed,
}

pub fn default_one() -> u32 {
    1
}
pub fn default_backoff_limit() -> u32 {
    6
}
/// First delay before re-creating a failed pod; doubles per failure.
pub fn default_backoff_initial() -> Dur {
    Dur::secs(10)
}
/// The cap of that delay.
pub fn default_backoff_max() -> Dur {
    Dur::secs(360)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    #[serde(default = "default_one")]
    pub completions: u32,
    #[serde(default = "default_one")]
    pub parallelism: u32,
    /// Retries before the Job fails: failed pods (restart_policy Never)
    /// plus process restarts (OnFailure).
    #[serde(default = "default_backoff_limit")]
    pub backoff_limit: u32,
    /// Delay before a failed pod is replaced: `backoff_initial`, doubling
    /// with each consecutive failure, capped at `backoff_max`.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial: Dur,
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Dur,
    /// Counted from the start time; when it passes, running pods are
    /// stopped and the Job fails (`DeadlineExceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline: Option<Dur>,
    /// After the Job finished, it (and its pods and logs) is removed after
    /// this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_after_finished: Option<Dur>,
    #[serde(default)]
    pub completion_mode: CompletionMode,
    /// Stops running pods and creates none until resumed.
    #[serde(default)]
    pub suspend: bool,
    pub template: PodTemplate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobConditionType {
    Complete,
    Failed,
    Suspended,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCondition {
    #[serde(rename = "type")]
    pub type_: JobConditionType,
    /// "True" | "False", as Kubernetes.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub last_transition_time: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Pods not yet terminal and not being deleted.
    #[serde(default)]
    pub active: u32,
    #[serde(default)]
    pub succeeded: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub conditions: Vec<JobCondition>,
    /// Indexed Jobs: the indexes that succeeded, as "0-3,5".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub completed_indexes: String,
}

impl JobStatus {
    pub fn condition(&self, t: JobConditionType) -> Option<&JobCondition> {
        self.conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    }

    /// Complete or Failed: a finished Job never runs again.
    pub fn finished(&self) -> Option<&JobCondition> {
        self.condition(JobConditionType::Complete)
            .or_else(|| self.condition(JobConditionType::Failed))
    }

    pub fn is_complete(&self) -> bool {
        self.condition(JobConditionType::Complete).is_some()
    }

    pub fn is_failed(&self) -> bool {
        self.condition(JobConditionType::Failed).is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub metadata: ObjectMeta,
    pub spec: JobSpec,
    #[serde(default)]
    pub status: JobStatus,
}

impl Job {
    /// STATUS column: Complete, Failed, Suspended or Running.
    pub fn display_status(&self) -> &'static str {
        if self.status.is_complete() {
            "Complete"
        } else if self.status.is_failed() {
            "Failed"
        } else if self.spec.suspend {
            "Suspended"
        } else {
            "Running"
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConcurrencyPolicy {
    /// Runs may overlap.
    #[default]
    Allow,
    /// A run due while the previous one is active is skipped.
    Forbid,
    /// A run due while the previous one is active replaces it.
    Replace,
}

/// `spec.job_template`: the Job's labels and spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobTemplate {
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    pub spec: JobSpec,
}

pub fn default_successful_history() -> u32 {
    3
}
pub fn default_failed_history() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronJobSpec {
    /// 5-field crontab, a macro such as `@daily`, or 6 fields with seconds.
    pub schedule: String,
    /// IANA zone name; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// A run that could not start within this long after its scheduled
    /// time (daemon down, ...) is skipped. Without it, the most recent
    /// missed run starts when the daemon is back (systemd's
    /// `Persistent=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline: Option<Dur>,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default = "default_successful_history")]
    pub successful_jobs_history_limit: u32,
    #[serde(default = "default_failed_history")]
    pub failed_jobs_history_limit: u32,
    pub job_template: JobTemplate,
}

/// A Job a CronJob is running.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobRef {
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJobStatus {
    /// Jobs created by this CronJob that have not finished.
    #[serde(default)]
    pub active: Vec<JobRef>,
    /// The scheduled time of the last Job created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// When the last Job that completed successfully did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// The last scheduled time that did not get a Job (past its
    /// starting deadline, or skipped by `Forbid`), so it is reported once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_missed_time: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronJob {
    pub metadata: ObjectMeta,
    pub spec: CronJobSpec,
    #[serde(default)]
    pub status: CronJobStatus,
}
