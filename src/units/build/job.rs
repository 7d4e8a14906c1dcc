//! The schema walk of Jobs and CronJobs: `[spec]` of a Job (also a
//! CronJob's `spec.job_template.spec`), the Job's pod template (labels
//! optional, `restart_policy` OnFailure or Never), the CronJob's schedule
//! (each crontab field checked, errors pointing inside the string) and
//! time zone.

use super::super::schema;
use super::super::walk::{Field, Tbl, Walker};
use super::TemplateAt;
use crate::api::job::labels::COMPLETION_INDEX_ENV;
use crate::api::job::{
    default_backoff_initial, default_backoff_max, default_failed_history,
    default_successful_history,
};
use crate::api::{
    CompletionMode, ConcurrencyPolicy, CronJob, CronJobSpec, Job, JobSpec, JobTemplate, Labels,
    Object, ObjectMeta, PodTemplate,
};
use crate::schedule::{parse_time_zone, Schedule};
use chrono::{DateTime, Utc};

fn job_spec_hint(key: &str) -> Option<String> {
    Some(match key {
        "selector" => "a Job selects the pods it creates by itself (labels job-name and \
                       controller-uid): remove `selector`"
            .into(),
        "replicas" => "a Job has `completions` (how many pods must succeed) and \
                       `parallelism` (how many run at once), not `replicas`"
            .into(),
        "labels" => "`labels` belongs to the pod template: write it in [spec.template]".into(),
        k if schema::POD_SPEC.contains(&k) => {
            format!("`{k}` belongs to the pod template: write it in [spec.template]")
        }
        "schedule" | "time_zone" | "concurrency_policy" | "job_template" => {
            format!("`{key}` is a CronJob field: use kind = \"CronJob\" to run on a schedule")
        }
        _ => return None,
    })
}

fn cronjob_spec_hint(key: &str) -> Option<String> {
    if schema::JOB_SPEC.contains(&key) {
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
    if schema::JOB_SPEC.contains(&key) {
        return Some(format!(
            "`{key}` goes in [spec.job_template.spec], under the Job's spec"
        ));
    }
    None
}

fn completion_mode(name: &str) -> CompletionMode {
    match name {
        "Indexed" => CompletionMode::Indexed,
        _ => CompletionMode::NonIndexed,
    }
}

fn concurrency(name: &str) -> ConcurrencyPolicy {
    match name {
        "Forbid" => ConcurrencyPolicy::Forbid,
        "Replace" => ConcurrencyPolicy::Replace,
        _ => ConcurrencyPolicy::Allow,
    }
}

impl<'a> Walker<'a> {
    /// A Job from its [spec].
    pub(super) fn job(
        &mut self,
        spec: &Tbl<'a>,
        name: Option<String>,
        labels: Option<Labels>,
        now: DateTime<Utc>,
    ) -> Option<Object> {
        let job_spec = self.job_spec(spec);
        let mut metadata = ObjectMeta::new(name?, now);
        metadata.labels = labels?;
        Some(Object::Job(Job {
            metadata,
            spec: job_spec?,
            status: Default::default(),
        }))
    }

    /// A Job's spec: a Job's [spec] or a CronJob's spec.job_template.spec.
    fn job_spec(&mut self, spec: &Tbl<'a>) -> Option<JobSpec> {
        self.check_fields(spec, schema::JOB_SPEC, &job_spec_hint);
        let count = |w: &mut Self, key: &str, default: u32| match spec.get(key) {
            Some(f) => w.count(f, 0),
            None => Some(default),
        };
        let completions = count(self, "completions", 1);
        let parallelism = count(self, "parallelism", 1);
        let backoff_limit = count(self, "backoff_limit", 6);
        let backoff_initial = match spec.get("backoff_initial") {
            Some(f) => self.duration(f),
            None => Some(default_backoff_initial()),
        };
        let backoff_max = match spec.get("backoff_max") {
            Some(f) => self.positive_duration(f).and_then(|max| {
                let initial = backoff_initial?;
                if max < initial {
                    let d = self
                        .diag(
                            f.value_span(),
                            format!("`backoff_max` ({max}) is shorter than `backoff_initial` ({initial})"),
                        )
                        .with_label("the cap of the doubling delay")
                        .with_help(format!("write backoff_max = \"{initial}\" or longer"));
                    self.push(d);
                    return None;
                }
                Some(max)
            }),
            None => Some(default_backoff_max().max(backoff_initial.unwrap_or_default())),
        };
        let active_deadline = match spec.get("active_deadline") {
            Some(f) => self.positive_duration(f).map(Some),
            None => Some(None),
        };
        let ttl_after_finished = match spec.get("ttl_after_finished") {
            Some(f) => self.duration(f).map(Some),
            None => Some(None),
        };
        let mode = match spec.get("completion_mode") {
            Some(f) => self
                .one_of(f, "completion_mode", schema::COMPLETION_MODES)
                .map(completion_mode),
            None => Some(CompletionMode::NonIndexed),
        };
        let suspend = match spec.get("suspend") {
            Some(f) => self.boolean(f),
            None => Some(false),
        };
        let path = spec.child("template");
        let template = self
            .require(
                spec,
                "template",
                Some(format!(
                    "add [{path}] with restart_policy = \"OnFailure\" and [[{path}.processes]]"
                )),
            )
            .and_then(|f| {
                if mode == Some(CompletionMode::Indexed) {
                    self.extra_vars = vec![COMPLETION_INDEX_ENV.to_string()];
                }
                let t = self.job_pod_template(f, path.clone());
                self.extra_vars.clear();
                t
            });
        Some(JobSpec {
            completions: completions?,
            parallelism: parallelism?,
            backoff_limit: backoff_limit?,
            backoff_initial: backoff_initial?,
            backoff_max: backoff_max?,
            active_deadline: active_deadline?,
            ttl_after_finished: ttl_after_finished?,
            completion_mode: mode?,
            suspend: suspend?,
            template: template?.template,
        })
    }

    /// A Job's pod template: labels optional (the Job labels its pods
    /// itself), `restart_policy` OnFailure or Never.
    fn job_pod_template(&mut self, f: Field<'a>, path: String) -> Option<TemplateAt> {
        let t = self.table(f, path.clone())?;
        self.check_fields(&t, schema::TEMPLATE, &super::template_hint);
        let labels = match t.get("labels") {
            Some(lf) => self.labels(lf, t.child("labels")),
            None => Some((Labels::new(), t.at)),
        };
        let mut ok = true;
        match t.get("restart_policy") {
            Some(rf) if rf.node_str() == Some("Always") => {
                let d = self
                    .diag(
                        rf.value_span(),
                        "a Job's pods cannot have restart_policy \"Always\"",
                    )
                    .with_label(format!(
                        "expected one of: {}",
                        schema::list(schema::JOB_RESTART_POLICIES)
                    ))
                    .with_help(
                        "use \"OnFailure\" to restart a failed process in place, or \"Never\" \
                         for a new pod per failure",
                    );
                self.push(d);
                ok = false;
            }
            Some(_) => {}
            None => {
                let d = self
                    .diag(t.at, "missing field `restart_policy`")
                    .with_label(format!(
                        "required in {path}: a Job's pods must not restart Always"
                    ))
                    .with_help("add restart_policy = \"OnFailure\" (or \"Never\")");
                self.push(d);
                ok = false;
            }
        }
        let spec = self.pod_spec(&t);
        let (labels, labels_span) = labels?;
        ok.then_some(TemplateAt {
            template: PodTemplate { labels, spec },
            span: t.at,
            labels_span: Some(labels_span),
        })
    }

    /// A CronJob from its [spec].
    pub(super) fn cronjob(
        &mut self,
        spec: &Tbl<'a>,
        name: Option<String>,
        labels: Option<Labels>,
        now: DateTime<Utc>,
    ) -> Option<Object> {
        self.check_fields(spec, schema::CRONJOB_SPEC, &cronjob_spec_hint);
        let schedule = self
            .require(
                spec,
                "schedule",
                Some(
                    "add schedule = \"30 2 * * *\" (minute hour day-of-month month day-of-week)"
                        .into(),
                ),
            )
            .and_then(|f| self.schedule(f));
        let time_zone = match spec.get("time_zone") {
            Some(f) => self.time_zone(f).map(Some),
            None => Some(None),
        };
        let concurrency_policy = match spec.get("concurrency_policy") {
            Some(f) => self
                .one_of(f, "concurrency_policy", schema::CONCURRENCY_POLICIES)
                .map(concurrency),
            None => Some(ConcurrencyPolicy::Allow),
        };
        let starting_deadline = match spec.get("starting_deadline") {
            Some(f) => self.positive_duration(f).map(Some),
            None => Some(None),
        };
        let suspend = match spec.get("suspend") {
            Some(f) => self.boolean(f),
            None => Some(false),
        };
        let history = |w: &mut Self, key: &str, default: u32| match spec.get(key) {
            Some(f) => w.count(f, 0),
            None => Some(default),
        };
        let successful = history(
            self,
            "successful_jobs_history_limit",
            default_successful_history(),
        );
        let failed = history(self, "failed_jobs_history_limit", default_failed_history());
        let job_template = self
            .require(
                spec,
                "job_template",
                Some(
                    "add [spec.job_template.spec.template] with restart_policy and \
                     [[spec.job_template.spec.template.processes]]"
                        .into(),
                ),
            )
            .and_then(|f| self.job_template(f));
        let mut metadata = ObjectMeta::new(name?, now);
        metadata.labels = labels?;
        Some(Object::CronJob(CronJob {
            metadata,
            spec: CronJobSpec {
                schedule: schedule?,
                time_zone: time_zone?,
                concurrency_policy: concurrency_policy?,
                starting_deadline: starting_deadline?,
                suspend: suspend?,
                successful_jobs_history_limit: successful?,
                failed_jobs_history_limit: failed?,
                job_template: job_template?,
            },
            status: Default::default(),
        }))
    }

    fn job_template(&mut self, f: Field<'a>) -> Option<JobTemplate> {
        let t = self.table(f, "spec.job_template".into())?;
        self.check_fields(&t, schema::JOB_TEMPLATE, &job_template_hint);
        let labels = match t.get("labels") {
            Some(lf) => self.labels(lf, t.child("labels")).map(|(l, _)| l),
            None => Some(Labels::new()),
        };
        let spec = self
            .require(
                &t,
                "spec",
                Some(
                    "add [spec.job_template.spec] with the Job's [spec.job_template.spec.template]"
                        .into(),
                ),
            )
            .and_then(|sf| self.table(sf, "spec.job_template.spec".into()))
            .and_then(|st| self.job_spec(&st));
        Some(JobTemplate {
            labels: labels?,
            spec: spec?,
        })
    }

    /// The schedule string, each field checked; an error points at the
    /// field inside the string when it is written without escapes.
    fn schedule(&mut self, f: Field<'a>) -> Option<String> {
        let text = self.string(f)?;
        match Schedule::parse(&text) {
            Ok(_) => Some(text),
            Err(e) => {
                let span = match e.span {
                    Some((start, end)) => self.inner_span(f.value_span(), &text, start, end),
                    None => f.value_span(),
                };
                let mut d = self
                    .diag(span, format!("invalid schedule \"{text}\": {}", e.message))
                    .with_label(
                        "expected 5 fields (minute hour day-of-month month day-of-week), \
                         6 with seconds first, or @hourly, @daily, ...",
                    );
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                self.push(d);
                None
            }
        }
    }

    fn time_zone(&mut self, f: Field<'a>) -> Option<String> {
        let text = self.string(f)?;
        match parse_time_zone(&text) {
            Ok(_) => Some(text),
            Err(e) => {
                let mut d = self
                    .diag(f.value_span(), e.message)
                    .with_label("expected an IANA time zone name such as \"Europe/Berlin\"");
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                self.push(d);
                None
            }
        }
    }
}
