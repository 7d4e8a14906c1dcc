//! Job and CronJob rules: a Job's pods do not restart Always, its counts
//! have a ceiling, its delays make sense; a CronJob's schedule and time
//! zone parse.

use super::{join, Checks, Problem};
use crate::api::job::labels::COMPLETION_INDEX_ENV;
use crate::api::{CompletionMode, CronJobSpec, JobSpec, RestartPolicy};
use crate::schedule::{parse_time_zone, Schedule};

impl Checks {
    pub(super) fn job_spec(&mut self, spec: &JobSpec, path: &str) {
        self.ceiling(spec.completions, &join(path, "completions"));
        self.ceiling(spec.parallelism, &join(path, "parallelism"));
        self.positive(Some(spec.backoff_max), &join(path, "backoff_max"));
        if spec.backoff_max < spec.backoff_initial {
            let (max, initial) = (spec.backoff_max, spec.backoff_initial);
            self.push(
                Problem::value(
                    join(path, "backoff_max"),
                    format!("`backoff_max` ({max}) is shorter than `backoff_initial` ({initial})"),
                )
                .label("the cap of the doubling delay")
                .help(format!("write backoff_max = \"{initial}\" or longer")),
            );
        }
        self.positive(spec.active_deadline, &join(path, "active_deadline"));
        let template = join(path, "template");
        self.labels(&spec.template.labels, &join(&template, "labels"));
        if spec.template.spec.restart_policy == RestartPolicy::Always {
            self.push(
                Problem::value(
                    join(&template, "restart_policy"),
                    "a Job's pods cannot have restart_policy \"Always\"",
                )
                .label("expected one of: OnFailure, Never")
                .help(
                    "use \"OnFailure\" to restart a failed process in place, or \"Never\" \
                     for a new pod per failure",
                ),
            );
        }
        if spec.completion_mode == CompletionMode::Indexed {
            self.extra_vars = vec![COMPLETION_INDEX_ENV.to_string()];
        }
        self.pod_spec(&spec.template.spec, &template);
        self.extra_vars.clear();
    }

    pub(super) fn cronjob(&mut self, spec: &CronJobSpec) {
        if let Err(e) = Schedule::parse(&spec.schedule) {
            let message = format!("invalid schedule \"{}\": {}", spec.schedule, e.message);
            let mut p = match e.span {
                Some(span) => Problem::inner("spec.schedule", span, message),
                None => Problem::value("spec.schedule", message),
            }
            .label(
                "expected 5 fields (minute hour day-of-month month day-of-week), \
                 6 with seconds first, or @hourly, @daily, ...",
            );
            if let Some(h) = e.help {
                p = p.help(h);
            }
            self.push(p);
        }
        if let Some(tz) = &spec.time_zone {
            if let Err(e) = parse_time_zone(tz) {
                let mut p = Problem::value("spec.time_zone", e.message)
                    .label("expected an IANA time zone name such as \"Europe/Berlin\"");
                if let Some(h) = e.help {
                    p = p.help(h);
                }
                self.push(p);
            }
        }
        self.positive(spec.starting_deadline, "spec.starting_deadline");
        self.labels(&spec.job_template.labels, "spec.job_template.labels");
        self.job_spec(&spec.job_template.spec, "spec.job_template.spec");
    }
}
