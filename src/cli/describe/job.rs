//! `describe job` and `describe cronjob`, laid out as kubectl does: the
//! spec's knobs, times, pod (or job) statuses, the template, conditions,
//! the next scheduled times of a CronJob, then the events.

use super::super::columns::job_duration;
use super::{command_line, Clock, Page};
use crate::api::job::labels::{COMPLETION_INDEX, CONTROLLER_UID};
use crate::api::{CronJob, Event, Job, JobSpec, Pod, PodTemplate};
use crate::output::age::{age, timestamp};
use crate::schedule::{zone_or_utc, Schedule};

/// How many upcoming runs `describe cronjob` lists.
const NEXT_RUNS: usize = 3;

pub fn render_job(job: &Job, pods: &[Pod], events: &[Event], clock: Clock) -> String {
    let mut page = Page::default();
    let meta = &job.metadata;
    let status = &job.status;
    let ts = |t| timestamp(t, clock.tz);
    page.field(0, "Name", &meta.name);
    page.field(0, "Selector", format!("{CONTROLLER_UID}={}", meta.uid));
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    if let Some(owner) = meta.controller() {
        page.field(0, "Controlled By", owner);
    }
    spec_fields(&mut page, 0, &job.spec);
    page.field(
        0,
        "Start Time",
        status
            .start_time
            .map(ts)
            .unwrap_or_else(|| "<unset>".into()),
    );
    if let Some(done) = status.completion_time {
        page.field(0, "Completed At", ts(done));
    }
    if status.start_time.is_some() {
        page.field(0, "Duration", job_duration(job, clock.now));
    }
    page.field(0, "Status", job.display_status());
    let ready = pods.iter().filter(|p| p.is_ready()).count();
    page.field(
        0,
        "Pods Statuses",
        format!(
            "{} Active ({ready} Ready) / {} Succeeded / {} Failed",
            status.active, status.succeeded, status.failed
        ),
    );
    if !status.completed_indexes.is_empty() {
        page.field(0, "Completed Indexes", &status.completed_indexes);
    }
    template(&mut page, 0, &job.spec.template);
    if status.conditions.is_empty() {
        page.field(0, "Conditions", "<none>");
    } else {
        page.heading(0, "Conditions:");
        page.raw("  Type\tStatus\tReason\tMessage");
        page.raw("  ----\t------\t------\t-------");
        for c in &status.conditions {
            page.raw(&format!(
                "  {:?}\t{}\t{}\t{}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            ));
        }
    }
    if pods.is_empty() {
        page.field(0, "Pods", "<none>");
    } else {
        let mut pods: Vec<&Pod> = pods.iter().collect();
        pods.sort_by_key(|p| (p.metadata.creation_timestamp, p.metadata.name.clone()));
        page.heading(0, "Pods:");
        page.raw("  Name\tStatus\tIndex\tRestarts\tAge");
        page.raw("  ----\t------\t-----\t--------\t---");
        for p in pods {
            page.raw(&format!(
                "  {}\t{}\t{}\t{}\t{}",
                p.metadata.name,
                p.display_status(),
                p.metadata
                    .labels
                    .get(COMPLETION_INDEX)
                    .map(String::as_str)
                    .unwrap_or("-"),
                p.restarts(),
                age(p.metadata.creation_timestamp, clock.now)
            ));
        }
    }
    page.events(events, clock.now);
    page.finish()
}

/// The Job knobs, as kubectl names them.
fn spec_fields(page: &mut Page, level: usize, spec: &JobSpec) {
    page.field(level, "Parallelism", spec.parallelism);
    page.field(level, "Completions", spec.completions);
    page.field(
        level,
        "Completion Mode",
        format!("{:?}", spec.completion_mode),
    );
    page.field(level, "Suspend", spec.suspend);
    page.field(level, "Backoff Limit", spec.backoff_limit);
    page.field(
        level,
        "Backoff",
        format!("{} doubling to {}", spec.backoff_initial, spec.backoff_max),
    );
    if let Some(d) = spec.active_deadline {
        page.field(level, "Active Deadline", d);
    }
    if let Some(d) = spec.ttl_after_finished {
        page.field(level, "TTL After Finished", d);
    }
}

fn template(page: &mut Page, level: usize, t: &PodTemplate) {
    page.heading(level, "Pod Template:");
    page.labels(level + 1, "Labels", &t.labels);
    page.field(
        level + 1,
        "Restart Policy",
        format!("{:?}", t.spec.restart_policy),
    );
    page.heading(level + 1, "Processes:");
    for p in &t.spec.processes {
        page.heading(level + 2, &format!("{}:", p.name));
        page.field(level + 3, "Command", command_line(&p.command));
        if let Some(user) = &p.user {
            page.field(level + 3, "User", user);
        }
        if p.env.is_empty() {
            page.field(level + 3, "Environment", "<none>");
        } else {
            page.heading(level + 3, "Environment:");
            for (k, v) in &p.env {
                page.field(level + 4, k, v);
            }
        }
    }
}

pub fn render_cronjob(cj: &CronJob, jobs: &[Job], events: &[Event], clock: Clock) -> String {
    let mut page = Page::default();
    let meta = &cj.metadata;
    let spec = &cj.spec;
    let ts = |t| timestamp(t, clock.tz);
    page.field(0, "Name", &meta.name);
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    page.field(0, "Schedule", &spec.schedule);
    page.field(
        0,
        "Time Zone",
        spec.time_zone.as_deref().unwrap_or("UTC (default)"),
    );
    page.field(
        0,
        "Concurrency Policy",
        format!("{:?}", spec.concurrency_policy),
    );
    page.field(0, "Suspend", if spec.suspend { "True" } else { "False" });
    page.field(
        0,
        "Successful Job History Limit",
        spec.successful_jobs_history_limit,
    );
    page.field(
        0,
        "Failed Job History Limit",
        spec.failed_jobs_history_limit,
    );
    page.field(
        0,
        "Starting Deadline",
        spec.starting_deadline
            .map(|d| d.to_string())
            .unwrap_or_else(|| "<unset>".into()),
    );
    page.heading(0, "Job Template:");
    page.labels(1, "Labels", &spec.job_template.labels);
    spec_fields(&mut page, 1, &spec.job_template.spec);
    template(&mut page, 1, &spec.job_template.spec.template);
    page.field(
        0,
        "Last Schedule Time",
        cj.status
            .last_schedule_time
            .map(ts)
            .unwrap_or_else(|| "<unset>".into()),
    );
    page.field(
        0,
        "Last Successful Time",
        cj.status
            .last_successful_time
            .map(ts)
            .unwrap_or_else(|| "<unset>".into()),
    );
    let active: Vec<&str> = cj.status.active.iter().map(|r| r.name.as_str()).collect();
    page.field(
        0,
        "Active Jobs",
        if active.is_empty() {
            "<none>".to_string()
        } else {
            active.join(", ")
        },
    );
    let next = match (
        Schedule::parse(&spec.schedule),
        zone_or_utc(spec.time_zone.as_deref()),
    ) {
        (Ok(s), Ok(tz)) if !spec.suspend => s.upcoming(tz, clock.now, NEXT_RUNS),
        _ => vec![],
    };
    if next.is_empty() {
        page.field(
            0,
            "Next Schedule Times",
            if spec.suspend {
                "<suspended>"
            } else {
                "<none>"
            },
        );
    } else {
        page.heading(0, "Next Schedule Times:");
        for t in next {
            page.raw(&format!("  {}", ts(t)));
        }
    }
    if jobs.is_empty() {
        page.field(0, "Jobs", "<none>");
    } else {
        let mut jobs: Vec<&Job> = jobs.iter().collect();
        jobs.sort_by_key(|j| (j.metadata.creation_timestamp, j.metadata.name.clone()));
        page.heading(0, "Jobs:");
        page.raw("  Name\tStatus\tCompletions\tDuration\tAge");
        page.raw("  ----\t------\t-----------\t--------\t---");
        for j in jobs {
            page.raw(&format!(
                "  {}\t{}\t{}/{}\t{}\t{}",
                j.metadata.name,
                j.display_status(),
                j.status.succeeded,
                j.spec.completions,
                job_duration(j, clock.now),
                age(j.metadata.creation_timestamp, clock.now)
            ));
        }
    }
    page.events(events, clock.now);
    page.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::job::{default_backoff_initial, default_backoff_max};
    use crate::api::{
        CompletionMode, ConcurrencyPolicy, CronJobSpec, CronJobStatus, JobCondition,
        JobConditionType, JobStatus, JobTemplate, ObjectMeta, PodSpec, ProcessSpec, RestartPolicy,
    };
    use crate::output::age::TimeZone;
    use chrono::TimeZone as _;

    fn clock() -> Clock {
        Clock {
            now: chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            tz: TimeZone::Utc,
        }
    }

    fn spec() -> JobSpec {
        JobSpec {
            completions: 5,
            parallelism: 2,
            backoff_limit: 6,
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            active_deadline: None,
            ttl_after_finished: None,
            completion_mode: CompletionMode::NonIndexed,
            suspend: false,
            template: PodTemplate {
                labels: Default::default(),
                spec: PodSpec {
                    node_selector: Default::default(),
                    restart_policy: RestartPolicy::OnFailure,
                    termination_grace_period: crate::api::default_grace(),
                    ports: vec![],
                    init_processes: Vec::new(),
                    processes: vec![ProcessSpec {
                        name: "main".into(),
                        command: vec!["/usr/local/bin/backup-shard".into()],
                        user: None,
                        group: None,
                        working_dir: None,
                        env: Default::default(),
                        notify: false,
                        watchdog: None,
                        liveness: None,
                        readiness: None,
                        startup: None,
                        ..Default::default()
                    }],
                },
            },
        }
    }

    #[test]
    fn a_job_page() {
        let c = clock();
        let mut meta = ObjectMeta::new("backup", c.now - chrono::Duration::seconds(90));
        meta.uid = "u1".into();
        let job = Job {
            metadata: meta,
            spec: spec(),
            status: JobStatus {
                active: 0,
                succeeded: 5,
                failed: 1,
                start_time: Some(c.now - chrono::Duration::seconds(80)),
                completion_time: Some(c.now - chrono::Duration::seconds(20)),
                conditions: vec![JobCondition {
                    type_: JobConditionType::Complete,
                    status: "True".into(),
                    reason: Some("CompletionsReached".into()),
                    message: Some("Reached expected number of succeeded pods".into()),
                    last_transition_time: c.now - chrono::Duration::seconds(20),
                }],
                completed_indexes: String::new(),
            },
        };
        let page = render_job(&job, &[], &[], c);
        for want in [
            "Name:             backup",
            "Selector:         controller-uid=u1",
            "Parallelism:      2",
            "Completions:      5",
            "Completion Mode:  NonIndexed",
            "Backoff Limit:    6",
            "Duration:         60s",
            "Status:           Complete",
            "Pods Statuses:    0 Active (0 Ready) / 5 Succeeded / 1 Failed",
            "    main:",
            "      Command:      /usr/local/bin/backup-shard",
        ] {
            assert!(
                page.lines().any(|l| l == want),
                "missing {want:?} in:\n{page}"
            );
        }
        assert!(
            page.contains("Complete  True    CompletionsReached"),
            "{page}"
        );
    }

    #[test]
    fn a_cronjob_page_lists_the_next_runs() {
        let c = clock();
        let cj = CronJob {
            metadata: ObjectMeta::new("nightly", c.now),
            spec: CronJobSpec {
                schedule: "30 2 * * *".into(),
                time_zone: Some("Europe/Berlin".into()),
                concurrency_policy: ConcurrencyPolicy::Forbid,
                starting_deadline: None,
                suspend: false,
                successful_jobs_history_limit: 3,
                failed_jobs_history_limit: 1,
                job_template: JobTemplate {
                    labels: Default::default(),
                    spec: spec(),
                },
            },
            status: CronJobStatus::default(),
        };
        let page = render_cronjob(&cj, &[], &[], c);
        for want in [
            "Schedule:                      30 2 * * *",
            "Time Zone:                     Europe/Berlin",
            "Concurrency Policy:            Forbid",
            "Next Schedule Times:",
            // 02:30 in Berlin (CEST, +02:00) is 00:30 UTC.
            "  Thu, 02 May 2024 00:30:00 +0000",
            "  Fri, 03 May 2024 00:30:00 +0000",
            "Active Jobs:           <none>",
        ] {
            assert!(
                page.lines().any(|l| l == want),
                "missing {want:?} in:\n{page}"
            );
        }
    }
}
