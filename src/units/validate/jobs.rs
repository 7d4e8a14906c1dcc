//! Jobs and CronJobs: a Job's `[spec]` (also a CronJob's
//! `spec.job_template.spec`), its pod template (labels optional,
//! `restart_policy` required: the rules refuse `Always`), and a CronJob's
//! schedule, time zone and history.

use super::pod::PodFields;
use super::sets::template_hint;
use super::{Field, Tab, Validator};
use crate::api::job::{
    default_backoff_initial, default_backoff_max, default_failed_history,
    default_successful_history,
};
use crate::api::{
    CompletionMode, ConcurrencyPolicy, CronJob, CronJobSpec, Job, JobSpec, JobTemplate, Labels,
    Object, ObjectMeta, PodSpec, PodTemplate,
};
use crate::units::raw::{RawCronJobSpec, RawJobSpec, RawJobTemplate, RawPodSpec, RawTemplate};
use crate::units::serde_names::fields_of;
use crate::units::spanned::Table;

fn job_spec_hint(key: &str) -> Option<String> {
    Some(match key {
        "selector" => "a Job selects the pods it creates by itself (labels job-name and \
                       controller-uid): remove `selector`"
            .into(),
        "replicas" => "a Job has `completions` (how many pods must succeed) and \
                       `parallelism` (how many run at once), not `replicas`"
            .into(),
        "labels" => "`labels` belongs to the pod template: write it in [spec.template]".into(),
        k if fields_of::<RawPodSpec>().contains(&k) => {
            format!("`{k}` belongs to the pod template: write it in [spec.template]")
        }
        k if fields_of::<RawCronJobSpec>().contains(&k) => {
            format!("`{key}` is a CronJob field: use kind = \"CronJob\" to run on a schedule")
        }
        _ => return None,
    })
}

fn cronjob_spec_hint(key: &str) -> Option<String> {
    if fields_of::<RawJobSpec>().contains(&key) {
        return Some(format!(
            "`{key}` belongs to the Job a CronJob creates: write it in [spec.job_template.spec]"
        ));
    }
    match key {
        "timezone" | "tz" => Some("did you mean `time_zone`?".into()),
        _ => None,
    }
}

fn job_template_hint(key: &str) -> Option<String> {
    if fields_of::<RawJobSpec>().contains(&key) {
        return Some(format!(
            "`{key}` goes in [spec.job_template.spec], under the Job's spec"
        ));
    }
    None
}

impl Validator<'_> {
    pub(super) fn job(&mut self, spec: &Tab<RawJobSpec>, metadata: ObjectMeta) -> Object {
        Object::Job(Job {
            metadata,
            spec: self.job_spec(spec),
            status: Default::default(),
        })
    }

    /// A Job's spec: a Job's [spec] or a CronJob's spec.job_template.spec.
    fn job_spec(&mut self, spec: &Tab<RawJobSpec>) -> JobSpec {
        self.unknown_fields(spec, &job_spec_hint);
        let v = spec.v();
        let count = |w: &mut Self, f: Field<i64>, default: u32| w.count(&f).unwrap_or(default);
        let backoff_initial = self
            .duration(&spec.field("backoff_initial", &v.backoff_initial))
            .unwrap_or_else(default_backoff_initial);
        let template = spec.field("template", &v.template);
        let help = format!(
            "add [{path}] with restart_policy = \"OnFailure\" and [[{path}.processes]]",
            path = template.path
        );
        JobSpec {
            completions: count(self, spec.field("completions", &v.completions), 1),
            parallelism: count(self, spec.field("parallelism", &v.parallelism), 1),
            backoff_limit: count(self, spec.field("backoff_limit", &v.backoff_limit), 6),
            backoff_initial,
            backoff_max: self
                .duration(&spec.field("backoff_max", &v.backoff_max))
                .unwrap_or_else(|| default_backoff_max().max(backoff_initial)),
            active_deadline: self.duration(&spec.field("active_deadline", &v.active_deadline)),
            ttl_after_finished: self
                .duration(&spec.field("ttl_after_finished", &v.ttl_after_finished)),
            completion_mode: self
                .variant::<CompletionMode>(
                    &spec.field("completion_mode", &v.completion_mode),
                    "completion_mode",
                )
                .unwrap_or_default(),
            suspend: self
                .boolean(&spec.field("suspend", &v.suspend))
                .unwrap_or(false),
            template: self
                .require(template, Some(help))
                .and_then(|f| self.job_pod_template(&f))
                .unwrap_or_else(|| PodTemplate {
                    labels: Labels::new(),
                    spec: PodSpec::default(),
                }),
        }
    }

    /// A Job's pod template: labels optional (the Job labels its pods
    /// itself), `restart_policy` required.
    fn job_pod_template(&mut self, f: &Field<Table<RawTemplate>>) -> Option<PodTemplate> {
        let t = self.table(f)?;
        self.unknown_fields(&t, &template_hint);
        let v = t.v();
        let labels = self
            .labels(&t.field("labels", &v.labels))
            .unwrap_or_default();
        let policy = t.field("restart_policy", &v.restart_policy);
        if !policy.is_set() {
            let d = self
                .diag(t.at, "missing field `restart_policy`")
                .with_label(format!(
                    "required in {}: a Job's pods must not restart Always",
                    t.path
                ))
                .with_help("add restart_policy = \"OnFailure\" (or \"Never\")");
            self.fail(&policy.path, d);
        }
        Some(PodTemplate {
            labels,
            spec: self.pod(PodFields::of_template(&t)),
        })
    }

    pub(super) fn cronjob(&mut self, spec: &Tab<RawCronJobSpec>, metadata: ObjectMeta) -> Object {
        self.unknown_fields(spec, &cronjob_spec_hint);
        let v = spec.v();
        let schedule = self
            .require(
                spec.field("schedule", &v.schedule),
                Some(
                    "add schedule = \"30 2 * * *\" (minute hour day-of-month month day-of-week)"
                        .into(),
                ),
            )
            .and_then(|f| self.string(&f));
        let history = |w: &mut Self, f: Field<i64>, default: u32| w.count(&f).unwrap_or(default);
        let job_template = self
            .require(
                spec.field("job_template", &v.job_template),
                Some(
                    "add [spec.job_template.spec.template] with restart_policy and \
                     [[spec.job_template.spec.template.processes]]"
                        .into(),
                ),
            )
            .and_then(|f| self.table(&f))
            .map(|t| self.job_template(&t));
        Object::CronJob(CronJob {
            metadata,
            spec: CronJobSpec {
                schedule: schedule.unwrap_or_else(|| "@daily".into()),
                time_zone: self.string(&spec.field("time_zone", &v.time_zone)),
                concurrency_policy: self
                    .variant::<ConcurrencyPolicy>(
                        &spec.field("concurrency_policy", &v.concurrency_policy),
                        "concurrency_policy",
                    )
                    .unwrap_or_default(),
                starting_deadline: self
                    .duration(&spec.field("starting_deadline", &v.starting_deadline)),
                suspend: self
                    .boolean(&spec.field("suspend", &v.suspend))
                    .unwrap_or(false),
                successful_jobs_history_limit: history(
                    self,
                    spec.field(
                        "successful_jobs_history_limit",
                        &v.successful_jobs_history_limit,
                    ),
                    default_successful_history(),
                ),
                failed_jobs_history_limit: history(
                    self,
                    spec.field("failed_jobs_history_limit", &v.failed_jobs_history_limit),
                    default_failed_history(),
                ),
                job_template: job_template.unwrap_or_else(|| JobTemplate {
                    labels: Labels::new(),
                    spec: empty_job_spec(),
                }),
            },
            status: Default::default(),
        })
    }

    fn job_template(&mut self, t: &Tab<RawJobTemplate>) -> JobTemplate {
        self.unknown_fields(t, &job_template_hint);
        let v = t.v();
        let spec = self
            .require(
                t.field("spec", &v.spec),
                Some(
                    "add [spec.job_template.spec] with the Job's [spec.job_template.spec.template]"
                        .into(),
                ),
            )
            .and_then(|f| self.table(&f))
            .map(|st| self.job_spec(&st))
            .unwrap_or_else(empty_job_spec);
        JobTemplate {
            labels: self
                .labels(&t.field("labels", &v.labels))
                .unwrap_or_default(),
            spec,
        }
    }
}

/// A Job spec with every default, standing in for one that is missing
/// (reported, and its path marked).
fn empty_job_spec() -> JobSpec {
    JobSpec {
        completions: 1,
        parallelism: 1,
        backoff_limit: 6,
        backoff_initial: default_backoff_initial(),
        backoff_max: default_backoff_max(),
        active_deadline: None,
        ttl_after_finished: None,
        completion_mode: CompletionMode::NonIndexed,
        suspend: false,
        template: PodTemplate {
            labels: Labels::new(),
            spec: PodSpec::default(),
        },
    }
}
