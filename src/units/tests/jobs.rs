//! Job and CronJob unit files: what is accepted, the defaults, and what
//! users are told about mistakes (position and wording).

use crate::api::{CompletionMode, ConcurrencyPolicy, Dur, RestartPolicy};
use crate::units::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn parse(text: &str) -> Result<Object, Vec<Diagnostic>> {
    parse_unit(Path::new("units/test.toml"), text, now())
}

fn ok(text: &str) -> Object {
    parse(text).unwrap_or_else(|d| panic!("{}", Diagnostics::new(d)))
}

fn one(text: &str) -> Diagnostic {
    let d = parse(text).expect_err("expected an error");
    assert_eq!(d.len(), 1, "{}", Diagnostics::new(d.clone()));
    d.into_iter().next().unwrap()
}

#[track_caller]
fn at(d: &Diagnostic, line: usize, col: usize, message: &str) {
    assert_eq!(
        (d.line, d.col, d.message.as_str()),
        (line, col, message),
        "\n{d}"
    );
}

const JOB: &str = r#"kind = "Job"
name = "backup"

[spec]
completions = 5
parallelism = 2

[spec.template]
restart_policy = "OnFailure"

[[spec.template.processes]]
name = "main"
command = ["/usr/local/bin/backup-shard"]
"#;

const CRONJOB: &str = r#"kind = "CronJob"
name = "nightly"

[spec]
schedule = "30 2 * * *"
time_zone = "Europe/Berlin"
concurrency_policy = "Forbid"

[spec.job_template.spec.template]
restart_policy = "Never"

[[spec.job_template.spec.template.processes]]
name = "main"
command = ["/usr/local/bin/report"]
"#;

fn job_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = JOB.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

fn cron_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = CRONJOB.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

#[test]
fn the_product_examples_parse_with_defaults() {
    let Object::Job(job) = ok(JOB) else {
        panic!("not a Job")
    };
    assert_eq!(job.spec.completions, 5);
    assert_eq!(job.spec.parallelism, 2);
    assert_eq!(job.spec.backoff_limit, 6);
    assert_eq!(job.spec.backoff_initial, Dur::secs(10));
    assert_eq!(job.spec.backoff_max, Dur::secs(360));
    assert_eq!(job.spec.completion_mode, CompletionMode::NonIndexed);
    assert_eq!(job.spec.active_deadline, None);
    assert!(!job.spec.suspend);
    assert_eq!(
        job.spec.template.spec.restart_policy,
        RestartPolicy::OnFailure
    );
    assert!(validate_object(&Object::Job(job)).is_ok());

    let Object::CronJob(cj) = ok(CRONJOB) else {
        panic!("not a CronJob")
    };
    assert_eq!(cj.spec.schedule, "30 2 * * *");
    assert_eq!(cj.spec.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(cj.spec.concurrency_policy, ConcurrencyPolicy::Forbid);
    assert_eq!(cj.spec.successful_jobs_history_limit, 3);
    assert_eq!(cj.spec.failed_jobs_history_limit, 1);
    assert_eq!(cj.spec.job_template.spec.completions, 1);
    assert!(validate_object(&Object::CronJob(cj)).is_ok());
}

#[test]
fn every_job_field() {
    let text = r#"kind = "Job"
api_version = "batch/v1"
name = "shards"
[spec]
completions = 4
parallelism = 2
backoff_limit = 0
backoff_initial = "100ms"
backoff_max = "1s"
active_deadline = "5m"
ttl_after_finished = "0s"
completion_mode = "Indexed"
suspend = true
[spec.template]
labels = { app = "shards" }
restart_policy = "Never"
[[spec.template.processes]]
name = "main"
command = ["/bin/sh", "-c", "echo shard ${JOB_COMPLETION_INDEX}"]
"#;
    let Object::Job(job) = ok(text) else { panic!() };
    assert_eq!(job.spec.backoff_limit, 0);
    assert_eq!(job.spec.backoff_initial, Dur::millis(100));
    assert_eq!(job.spec.active_deadline, Some(Dur::secs(300)));
    assert_eq!(job.spec.ttl_after_finished, Some(Dur::secs(0)));
    assert_eq!(job.spec.completion_mode, CompletionMode::Indexed);
    assert!(job.spec.suspend);
    assert!(validate_object(&Object::Job(job)).is_ok());
}

#[test]
fn restart_policy_always_is_refused_for_a_job() {
    let d = one(&job_with(9, "restart_policy = \"Always\""));
    at(
        &d,
        9,
        18,
        "a Job's pods cannot have restart_policy \"Always\"",
    );
    assert_eq!(
        d.label.as_deref(),
        Some("expected one of: OnFailure, Never")
    );
    assert!(d.help.as_deref().unwrap().contains("OnFailure"));

    let d = one(&job_with(9, ""));
    at(&d, 8, 1, "missing field `restart_policy`");

    let d = one(&cron_with(10, "restart_policy = \"Always\""));
    at(
        &d,
        10,
        18,
        "a Job's pods cannot have restart_policy \"Always\"",
    );
}

#[test]
fn invalid_cron_fields_point_inside_the_schedule() {
    let d = one(&cron_with(5, "schedule = \"61 * * * *\""));
    at(
        &d,
        5,
        13,
        "invalid schedule \"61 * * * *\": 61 is out of range for the minute field (expected 0-59)",
    );
    assert_eq!(d.width, 2);

    let d = one(&cron_with(5, "schedule = \"0 0 * * FUN\""));
    at(
        &d,
        5,
        21,
        "invalid schedule \"0 0 * * FUN\": `FUN` is not a valid value of the day-of-week field `FUN`",
    );
    assert_eq!(
        d.help.as_deref(),
        Some("expected a number 0-7 or one of SUN, MON, TUE, WED, THU, FRI, SAT")
    );

    let d = one(&cron_with(5, "schedule = \"* * *\""));
    at(
        &d,
        5,
        13,
        "invalid schedule \"* * *\": a schedule has 5 fields (minute hour day-of-month month \
         day-of-week), or 6 with seconds first; found 3",
    );

    // Valid forms.
    for s in [
        "*/10 * * * * *",
        "@daily",
        "0 9-17/2 * JAN-JUN MON-FRI",
        "0 0 L * *",
    ] {
        ok(&cron_with(5, &format!("schedule = \"{s}\"")));
    }
}

#[test]
fn unknown_time_zone_suggests_one() {
    let d = one(&cron_with(6, "time_zone = \"Europe/Berln\""));
    at(&d, 6, 13, "unknown time zone \"Europe/Berln\"");
    assert_eq!(d.help.as_deref(), Some("did you mean \"Europe/Berlin\"?"));
}

#[test]
fn negative_counts() {
    let d = one(&job_with(5, "completions = -1"));
    at(
        &d,
        5,
        15,
        "`completions` must be a non-negative integer, found -1",
    );
    let d = one(&job_with(6, "parallelism = -2"));
    at(
        &d,
        6,
        15,
        "`parallelism` must be a non-negative integer, found -2",
    );
    let d = one(&job_with(6, "backoff_limit = -1"));
    at(
        &d,
        6,
        17,
        "`backoff_limit` must be a non-negative integer, found -1",
    );
    let d = one(&cron_with(7, "successful_jobs_history_limit = -3"));
    at(
        &d,
        7,
        33,
        "`successful_jobs_history_limit` must be a non-negative integer, found -3",
    );
}

#[test]
fn misplaced_and_unknown_fields() {
    let d = one(&job_with(6, "replicas = 2"));
    at(&d, 6, 1, "unknown field `replicas`");
    assert!(d.help.as_deref().unwrap().contains("`completions`"));
    let d = one(&job_with(6, "selector = { app = \"x\" }"));
    assert!(d.help.as_deref().unwrap().contains("remove `selector`"));
    let d = one(&cron_with(7, "completions = 3"));
    assert_eq!(
        d.help.as_deref(),
        Some("`completions` belongs to the Job a CronJob creates: write it in [spec.job_template.spec]")
    );
    let d = one(&cron_with(7, "concurrency_policy = \"forbid\""));
    at(&d, 7, 22, "unknown concurrency_policy \"forbid\"");
    assert_eq!(d.help.as_deref(), Some("did you mean \"Forbid\"?"));
}

#[test]
fn completion_index_only_in_indexed_jobs() {
    let text = JOB.replace(
        "command = [\"/usr/local/bin/backup-shard\"]",
        "command = [\"/bin/echo\", \"${JOB_COMPLETION_INDEX}\"]",
    );
    let d = one(&text);
    assert_eq!(
        d.message,
        "unknown variable `${JOB_COMPLETION_INDEX}` in command"
    );
    let indexed = text.replace(
        "parallelism = 2",
        "parallelism = 2\ncompletion_mode = \"Indexed\"",
    );
    ok(&indexed);
}

#[test]
fn cronjob_names_leave_room_for_the_schedule_time() {
    let long = "a".repeat(47);
    let d = one(&cron_with(2, &format!("name = \"{long}\"")));
    assert!(
        d.label.as_deref().unwrap().contains("NAME-<unix time>"),
        "{d}"
    );
    ok(&cron_with(2, &format!("name = \"{}\"", "a".repeat(46))));
}

#[test]
fn json_objects_are_checked_too() {
    let Object::Job(mut job) = ok(JOB) else {
        panic!()
    };
    job.spec.template.spec.restart_policy = RestartPolicy::Always;
    let errs = validate_object(&Object::Job(job)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with(
        "spec.template.restart_policy: a Job's pods cannot have restart_policy \"Always\" \
         (expected one of: OnFailure, Never)"
    ));
    let Object::CronJob(mut cj) = ok(CRONJOB) else {
        panic!()
    };
    cj.spec.schedule = "61 * * * *".into();
    cj.spec.time_zone = Some("Nowhere/City".into());
    let errs = validate_object(&Object::CronJob(cj)).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("spec.schedule: invalid schedule \"61 * * * *\": 61 is out of range")
    );
    assert!(errs[1].starts_with("spec.time_zone: unknown time zone \"Nowhere/City\""));
}
