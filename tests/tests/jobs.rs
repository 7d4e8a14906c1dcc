//! Jobs and CronJobs with real processes (product.md §2, §3 "Job /
//! CronJob", issue 4): completions and parallelism, backoff limit, active
//! deadline, Indexed mode, no rerun and re-adoption across `kill -9` of
//! the daemon, cron schedules with seconds, concurrency policies, history
//! limits, missed runs, the CLI verbs and the unit file errors.
//!
//! Processes report what they do by appending to files under
//! `@DIR@/files/`; the tests wait on conditions with deadlines.

use crate::harness::*;
use drover::api::{CronJob, Job, Pod, PodPhase};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Long enough for a few cron periods on a busy 2-core machine.
const CRON_WAIT: Duration = Duration::from_secs(40);

/// A Job unit: `spec` lines go into [spec], the pod runs `command`.
fn job_unit(name: &str, spec: &str, restart_policy: &str, command: &[&str]) -> String {
    format!(
        "kind = \"Job\"\nname = \"{name}\"\n[spec]\n{spec}\n[spec.template]\n\
         labels = {{ app = \"{name}\" }}\nrestart_policy = \"{restart_policy}\"\n\
         termination_grace_period = \"2s\"\n[[spec.template.processes]]\nname = \"main\"\n\
         command = {}\n",
        argv(command)
    )
}

/// A CronJob unit whose Jobs run `command` once each.
fn cron_unit(name: &str, schedule: &str, spec: &str, command: &[&str]) -> String {
    format!(
        "kind = \"CronJob\"\nname = \"{name}\"\n[spec]\nschedule = \"{schedule}\"\n{spec}\n\
         [spec.job_template.spec]\nbackoff_initial = \"0s\"\n\
         [spec.job_template.spec.template]\nrestart_policy = \"Never\"\n\
         termination_grace_period = \"1s\"\n\
         [[spec.job_template.spec.template.processes]]\nname = \"main\"\ncommand = {}\n",
        argv(command)
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn job(d: &TestDaemon, name: &str) -> Option<Job> {
    d.object("jobs", name)
        .map(|v| serde_json::from_value(v).expect("a job"))
}

fn job_now(d: &TestDaemon, name: &str) -> Job {
    job(d, name).unwrap_or_else(|| panic!("job {name} not found\n{}", d.log()))
}

fn jobs(d: &TestDaemon) -> Vec<Job> {
    let list = d.api("/v1/jobs").expect("jobs");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| serde_json::from_value(v.clone()).expect("a job"))
        .collect()
}

fn cronjob(d: &TestDaemon, name: &str) -> CronJob {
    serde_json::from_value(d.object("cronjobs", name).expect("cronjob")).expect("a cronjob")
}

/// The pods of Job `name` (by its `job-name` label).
fn job_pods(d: &TestDaemon, name: &str) -> Vec<Pod> {
    d.pods()
        .into_iter()
        .filter(|p| p.metadata.labels.get("job-name").map(String::as_str) == Some(name))
        .collect()
}

fn lines(d: &TestDaemon, file: &str) -> Vec<String> {
    d.read_file(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The largest number of intervals open at once, from "S <ns>" / "E <ns>"
/// lines (an end at the same instant as a start closes first).
fn max_overlap(events: &[String]) -> usize {
    let mut points: Vec<(u128, i32)> = events
        .iter()
        .filter_map(|l| {
            let (kind, at) = l.split_once(' ')?;
            let at: u128 = at.trim().parse().ok()?;
            Some((at, if kind == "S" { 1 } else { -1 }))
        })
        .collect();
    points.sort();
    let (mut open, mut max) = (0i32, 0i32);
    for (_, delta) in points {
        open += delta;
        max = max.max(open);
    }
    max as usize
}

#[test]
fn completions_and_parallelism_are_respected() {
    let d = TestDaemon::start(&[]);
    let log = d.file("intervals");
    let script = format!(
        "echo \"S $(date +%s%N)\" >> {f}; echo out-$DROVER_POD_NAME; sleep 0.3; \
         echo \"E $(date +%s%N)\" >> {f}",
        f = log.display()
    );
    let unit = job_unit(
        "work",
        "completions = 6\nparallelism = 2",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(d.apply("work.toml", &unit), "job.batch/work created\n");
    let mut most_active = 0;
    d.wait_until("job work complete", Duration::from_secs(60), || {
        let j = job_now(&d, "work");
        most_active = most_active.max(j.status.active);
        j.status.is_complete()
    });
    assert!(most_active <= 2, "status.active reached {most_active}");
    let events = lines(&d, "intervals");
    assert_eq!(events.len(), 12, "{events:?}");
    let overlap = max_overlap(&events);
    assert!(overlap <= 2, "{overlap} processes ran at once: {events:?}");
    assert_eq!(overlap, 2, "parallelism 2 was never used: {events:?}");

    let j = job_now(&d, "work");
    assert_eq!(
        (j.status.succeeded, j.status.failed, j.status.active),
        (6, 0, 0)
    );
    assert!(j.status.start_time.is_some() && j.status.completion_time.is_some());
    // The pods and their logs stay after completion.
    let pods = job_pods(&d, "work");
    assert_eq!(pods.len(), 6);
    assert!(pods.iter().all(|p| p.status.phase == PodPhase::Succeeded));
    let name = &pods[0].metadata.name;
    assert_eq!(d.drover_ok(&["logs", name]), format!("out-{name}\n"));
    let any = d.drover_ok(&["logs", "job/work"]);
    assert!(
        pods.iter()
            .any(|p| any == format!("out-{}\n", p.metadata.name)),
        "{any}"
    );
    // `wait` on a completed job returns at once; `get` and `describe`.
    assert_eq!(
        d.drover_ok(&[
            "wait",
            "job/work",
            "--for=condition=complete",
            "--timeout",
            "5s"
        ]),
        "job.batch/work condition met\n"
    );
    let (header, rows) = table(&d.drover_ok(&["get", "jobs"]));
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    assert_eq!(rows[0][..3], ["work", "Complete", "6/6"]);
    let page = d.drover_ok(&["describe", "job", "work"]);
    assert_eq!(
        fields(&page, "Pods Statuses"),
        ["0 Active (0 Ready) / 6 Succeeded / 0 Failed"]
    );
}

#[test]
fn backoff_limit_fails_the_job_with_the_failed_count() {
    let d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    let script = format!("echo run >> {}; exit 3", runs.display());
    let unit = job_unit(
        "flaky",
        "backoff_limit = 2\nbackoff_initial = \"0s\"",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    d.apply("flaky.toml", &unit);
    let out = d.drover(&[
        "wait",
        "job/flaky",
        "--for=condition=complete",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job.batch/flaky failed: BackoffLimitExceeded"),
        "{err}"
    );
    let j = job_now(&d, "flaky");
    assert_eq!((j.status.failed, j.status.succeeded), (3, 0));
    assert_eq!(lines(&d, "runs").len(), 3, "backoff_limit 2: three runs");
    let pods = job_pods(&d, "flaky");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.status.phase == PodPhase::Failed));
    assert!(d
        .events_for("Job/flaky")
        .iter()
        .any(|e| e["reason"] == "BackoffLimitExceeded"));
    assert_eq!(
        d.drover_ok(&[
            "wait",
            "job/flaky",
            "--for=condition=failed",
            "--timeout",
            "5s"
        ]),
        "job.batch/flaky condition met\n"
    );
}

#[test]
fn on_failure_restarts_in_place_until_the_limit() {
    let d = TestDaemon::start(&[]);
    let unit = job_unit("retry", "backoff_limit = 1", "OnFailure", &["/bin/false"]);
    d.apply("retry.toml", &unit);
    d.wait_until("job retry failed", SOON, || {
        job_now(&d, "retry").status.is_failed()
    });
    let j = job_now(&d, "retry");
    let c = j
        .status
        .conditions
        .iter()
        .find(|c| c.status == "True")
        .unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        j.status.failed, 1,
        "one pod, restarted in place, then stopped"
    );
    d.wait_until("the one pod stopped and went", SOON, || {
        job_pods(&d, "retry").is_empty()
    });
}

#[test]
fn a_failed_pod_is_replaced_after_its_backoff() {
    let d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    let script = format!("date +%s%N >> {}; exit 1", runs.display());
    let unit = job_unit(
        "slow",
        "backoff_limit = 2\nbackoff_initial = \"400ms\"\nbackoff_max = \"1s\"",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    d.apply("slow.toml", &unit);
    d.wait_until("job slow failed", Duration::from_secs(30), || {
        job_now(&d, "slow").status.is_failed()
    });
    let t: Vec<u128> = lines(&d, "runs")
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(t.len(), 3);
    // 400ms, then 800ms, after each failure (a process takes a few ms).
    assert!(t[1] - t[0] >= 400_000_000, "{t:?}");
    assert!(t[2] - t[1] >= 800_000_000, "{t:?}");
}

#[test]
fn active_deadline_stops_running_pods() {
    let d = TestDaemon::start(&[]);
    let unit = job_unit(
        "stuck",
        "active_deadline = \"1s\"\nparallelism = 2\ncompletions = 2",
        "Never",
        &["sleep", "1000"],
    );
    d.apply("stuck.toml", &unit);
    let pids: Vec<u32> = d.wait_for("two pods running", SOON, || {
        let pods = job_pods(&d, "stuck");
        (pods.len() == 2 && pods.iter().all(all_running))
            .then(|| pods.iter().map(main_pid).collect())
    });
    d.wait_until("job stuck failed", SOON, || {
        job_now(&d, "stuck").status.is_failed()
    });
    let j = job_now(&d, "stuck");
    let c = j
        .status
        .conditions
        .iter()
        .find(|c| c.status == "True")
        .unwrap();
    assert_eq!(c.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!((j.status.active, j.status.failed), (0, 2));
    for pid in pids {
        d.wait_until("the pod's process killed", SOON, || !alive(pid));
    }
}

#[test]
fn indexed_mode_runs_each_index_once() {
    let d = TestDaemon::start(&[]);
    let out = d.file("indexes");
    let script = format!(
        "echo $JOB_COMPLETION_INDEX-${{JOB_COMPLETION_INDEX}} >> {}",
        out.display()
    );
    let unit = job_unit(
        "shards",
        "completions = 5\nparallelism = 3\ncompletion_mode = \"Indexed\"",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    d.apply("shards.toml", &unit);
    d.drover_ok(&[
        "wait",
        "job/shards",
        "--for=condition=complete",
        "--timeout",
        "60s",
    ]);
    let mut seen = lines(&d, "indexes");
    seen.sort();
    assert_eq!(seen, ["0-0", "1-1", "2-2", "3-3", "4-4"]);
    let j = job_now(&d, "shards");
    assert_eq!(j.status.completed_indexes, "0-4");
    let mut idx: Vec<String> = job_pods(&d, "shards")
        .iter()
        .map(|p| p.metadata.labels["job-completion-index"].clone())
        .collect();
    idx.sort();
    assert_eq!(idx, ["0", "1", "2", "3", "4"]);
}

/// Waits until the state file holds Job `name` with a Complete condition.
fn wait_complete_persisted(d: &TestDaemon, name: &str) {
    d.wait_until("the completed job in the state file", SOON, || {
        let Value::Array(items) = d.stored_state() else {
            return false;
        };
        items.iter().any(|o| {
            o["kind"] == "Job"
                && o["metadata"]["name"] == name
                && o["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Complete"))
        })
    });
}

#[test]
fn a_completed_job_is_not_rerun_after_kill_9() {
    let mut d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    let script = format!("echo run >> {}", runs.display());
    let unit = job_unit(
        "once",
        "completions = 2",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // From the units folder: re-applied at every start.
    d.write_unit("once.toml", &unit);
    d.drover_ok(&["daemon-reload"]);
    d.drover_ok(&[
        "wait",
        "job/once",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
    wait_complete_persisted(&d, "once");
    d.kill9();
    d.restart();
    // A marker job applied after the restart completes only after the
    // controllers ran: had `once` been rerun, it would show by then.
    let marker = job_unit("marker", "", "Never", &["true"]);
    d.apply("marker.toml", &marker);
    d.drover_ok(&[
        "wait",
        "job/marker",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
    d.drover_ok(&["daemon-reload"]);
    d.drover_ok(&[
        "wait",
        "job/marker",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
    assert_eq!(lines(&d, "runs").len(), 2, "the job ran again");
    let j = job_now(&d, "once");
    assert!(j.status.is_complete());
    assert_eq!(j.status.succeeded, 2);
    assert_eq!(job_pods(&d, "once").len(), 2);
    // Its template is fixed once it ran: a changed file is refused, whole.
    d.write_unit("once.toml", &unit.replace("echo run", "echo again"));
    let err = d.drover_fails(&["daemon-reload"], 1);
    assert!(err.contains("cannot change once the job exists"), "{err}");
    assert_eq!(lines(&d, "runs").len(), 2);
}

#[test]
fn a_pod_running_when_the_daemon_dies_is_adopted() {
    let mut d = TestDaemon::start(&[]);
    let runs = d.file("runs");
    let go = d.file("go");
    let script = format!(
        "echo run >> {}; while [ ! -f {} ]; do sleep 0.05; done",
        runs.display(),
        go.display()
    );
    let unit = job_unit(
        "long",
        "backoff_initial = \"0s\"",
        "Never",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    d.apply("long.toml", &unit);
    let pod = d.wait_for("the job's pod running", SOON, || {
        job_pods(&d, "long").into_iter().find(all_running)
    });
    let pid = main_pid(&pod);
    d.wait_persisted();
    d.kill9();
    assert!(alive(pid), "the process must outlive the daemon");
    d.restart();
    let again = d.wait_running(&pod.metadata.name);
    assert_eq!(main_pid(&again), pid, "re-adopted, not restarted");
    assert_eq!(job_pods(&d, "long").len(), 1, "no second pod");
    assert_eq!(lines(&d, "runs").len(), 1, "started once");
    assert_eq!(job_now(&d, "long").status.active, 1);
    std::fs::write(&go, "").unwrap();
    d.wait_until("the adopted process ended", SOON, || !alive(pid));
    d.drover_ok(&[
        "wait",
        "job/long",
        "--for=condition=complete",
        "--timeout",
        "30s",
    ]);
}

#[test]
fn a_cron_schedule_with_seconds_fires_on_time() {
    let d = TestDaemon::start(&[]);
    let unit = cron_unit("tick", "*/2 * * * * *", "", &["true"]);
    d.apply("tick.toml", &unit);
    let made: Vec<Job> = d.wait_for("two scheduled runs", CRON_WAIT, || {
        let js: Vec<Job> = jobs(&d)
            .into_iter()
            .filter(|j| j.metadata.name.starts_with("tick-"))
            .collect();
        (js.len() >= 2).then_some(js)
    });
    for j in &made {
        let unix: i64 = j.metadata.name["tick-".len()..].parse().unwrap();
        assert_eq!(unix % 2, 0, "{} is not on the schedule", j.metadata.name);
        let late = j.metadata.creation_timestamp.timestamp_millis() - unix * 1000;
        assert!(
            (0..1000).contains(&late),
            "{} created {late}ms after its time",
            j.metadata.name
        );
        assert_eq!(j.metadata.owner_references[0].name, "tick");
    }
    let cj = cronjob(&d, "tick");
    assert!(cj.status.last_schedule_time.is_some());
    d.drover_ok(&[
        "wait",
        &format!("job/{}", made[0].metadata.name),
        "--for=condition=complete",
    ]);
    d.wait_until("last successful time recorded", SOON, || {
        cronjob(&d, "tick").status.last_successful_time.is_some()
    });
    let (header, rows) = table(&d.drover_ok(&["get", "cronjobs"]));
    assert_eq!(
        header,
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ]
    );
    assert_eq!(rows[0][..4], ["tick", "*/2 * * * * *", "<none>", "False"]);
    let page = d.drover_ok(&["describe", "cronjob", "tick"]);
    assert!(page.contains("Next Schedule Times:"), "{page}");
}

#[test]
fn forbid_never_runs_two_at_once() {
    let d = TestDaemon::start(&[]);
    let log = d.file("intervals");
    let script = format!(
        "echo \"S $(date +%s%N)\" >> {f}; sleep 2.2; echo \"E $(date +%s%N)\" >> {f}",
        f = log.display()
    );
    let unit = cron_unit(
        "solo",
        "* * * * * *",
        "concurrency_policy = \"Forbid\"",
        &sh(&script).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    d.apply("solo.toml", &unit);
    d.wait_until("two runs finished", CRON_WAIT, || {
        lines(&d, "intervals")
            .iter()
            .filter(|l| l.starts_with('E'))
            .count()
            >= 2
    });
    assert!(cronjob(&d, "solo").status.active.len() <= 1);
    let events = lines(&d, "intervals");
    assert_eq!(max_overlap(&events), 1, "{events:?}");
    assert!(d
        .events_for("CronJob/solo")
        .iter()
        .any(|e| e["reason"] == "JobAlreadyActive"));
}

#[test]
fn replace_stops_the_running_job() {
    let d = TestDaemon::start(&[]);
    let unit = cron_unit(
        "fresh",
        "*/2 * * * * *",
        "concurrency_policy = \"Replace\"",
        &["sleep", "1000"],
    );
    d.apply("fresh.toml", &unit);
    let first = d.wait_for("a first job's pod running", CRON_WAIT, || {
        d.pods().into_iter().find(all_running)
    });
    let first_job = first.metadata.labels["job-name"].clone();
    d.wait_until("the first job replaced", CRON_WAIT, || {
        job(&d, &first_job).is_none()
    });
    d.wait_until("its process stopped", SOON, || !alive(main_pid(&first)));
    let cj = cronjob(&d, "fresh");
    assert!(cj.status.active.len() <= 1, "{:?}", cj.status.active);
    assert!(d
        .events_for("CronJob/fresh")
        .iter()
        .any(|e| e["reason"] == "SuccessfulDelete"
            && e["message"].as_str().unwrap().contains("Replace")));
}

#[test]
fn history_limits_prune_old_jobs_and_their_pods() {
    let d = TestDaemon::start(&[]);
    let unit = cron_unit(
        "often",
        "* * * * * *",
        "successful_jobs_history_limit = 2\nfailed_jobs_history_limit = 1",
        &["true"],
    );
    d.apply("often.toml", &unit);
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    d.wait_until("five runs made", CRON_WAIT, || {
        for j in jobs(&d) {
            seen.insert(j.metadata.name, ());
        }
        seen.len() >= 5
    });
    d.wait_until("at most 2 finished jobs kept", SOON, || {
        let js = jobs(&d);
        js.iter().filter(|j| j.status.is_complete()).count() <= 2
            && js.iter().filter(|j| j.status.finished().is_none()).count() <= 1
    });
    let first = seen.keys().next().unwrap().clone();
    d.wait_until("the oldest job's pods gone", SOON, || {
        job(&d, &first).is_none() && job_pods(&d, &first).is_empty()
    });
}

/// Applies a yearly CronJob, then rewrites the state file while the
/// daemon is down as if it had been down since `last` (RFC 3339).
fn down_since(d: &mut TestDaemon, name: &str, deadline: &str, last: &str) {
    let unit = cron_unit(
        name,
        "0 0 1 1 *",
        &format!("starting_deadline = \"{deadline}\""),
        &["true"],
    );
    d.apply(&format!("{name}.toml"), &unit);
    d.wait_until("the cronjob in the state file", SOON, || {
        d.stored_state()
            .to_string()
            .contains(&format!("\"name\":\"{name}\""))
    });
    d.kill9();
    let Value::Array(mut items) = d.stored_state() else {
        unreachable!("the state is a list of objects")
    };
    for o in &mut items {
        if o["kind"] == "CronJob" && o["metadata"]["name"] == name {
            o["metadata"]["creation_timestamp"] = last.into();
            o["status"]["last_schedule_time"] = last.into();
        }
    }
    // Rewritten as a snapshot alone: a journal beside an edited snapshot
    // would be ignored (it names the snapshot it follows), so drop it.
    std::fs::write(
        d.path("state/store.json"),
        serde_json::to_vec(&items).unwrap(),
    )
    .unwrap();
    let _ = std::fs::remove_file(d.path("state/store.journal"));
    d.restart();
}

#[test]
fn a_missed_run_is_caught_up_within_its_deadline() {
    let mut d = TestDaemon::start(&[]);
    // Last run two years ago; the last Jan 1 is less than 367 days ago.
    let two_years_ago = (chrono::Utc::now() - chrono::Duration::days(730)).to_rfc3339();
    down_since(&mut d, "yearly", "8800h", &two_years_ago);
    let made = d.wait_for("the missed run started", SOON, || {
        jobs(&d)
            .into_iter()
            .find(|j| j.metadata.name.starts_with("yearly-"))
    });
    let unix: i64 = made.metadata.name["yearly-".len()..].parse().unwrap();
    let at = chrono::DateTime::from_timestamp(unix, 0).unwrap();
    assert_eq!(at.format("%m-%d %H:%M:%S").to_string(), "01-01 00:00:00");
    assert!(chrono::Utc::now() - at < chrono::Duration::days(367));
    d.drover_ok(&[
        "wait",
        &format!("job/{}", made.metadata.name),
        "--for=condition=complete",
    ]);
    assert_eq!(
        jobs(&d).len(),
        1,
        "one missed run, not one per missed schedule"
    );
}

#[test]
fn a_missed_run_past_its_deadline_is_skipped() {
    let mut d = TestDaemon::start(&[]);
    let two_years_ago = (chrono::Utc::now() - chrono::Duration::days(730)).to_rfc3339();
    down_since(&mut d, "late", "1h", &two_years_ago);
    d.wait_until("the miss recorded", SOON, || {
        cronjob(&d, "late").status.last_missed_time.is_some()
    });
    assert!(jobs(&d).is_empty(), "a run past its deadline started");
    assert!(d
        .events_for("CronJob/late")
        .iter()
        .any(|e| e["reason"] == "MissSchedule"));
}

#[test]
fn create_job_from_a_cronjob_and_scale_a_job() {
    let d = TestDaemon::start(&[]);
    let unit = cron_unit("manual", "0 0 1 1 *", "", &["sleep", "1000"]);
    d.apply("manual.toml", &unit);
    let out = d.drover_ok(&["create", "job", "adhoc", "--from=cronjob/manual"]);
    assert_eq!(out, "job.batch/adhoc created\n");
    let j = job_now(&d, "adhoc");
    assert_eq!(j.metadata.owner_references[0].name, "manual");
    d.wait_until("the manual run's pod running", SOON, || {
        job_pods(&d, "adhoc").iter().any(all_running)
    });
    let out = d.drover_ok(&["create", "job", "--from", "cronjob/manual"]);
    assert!(out.starts_with("job.batch/manual-manual-"), "{out}");
    let err = d.drover_fails(&["create", "job", "adhoc", "--from=cronjob/manual"], 1);
    assert!(err.contains("already exists"), "{err}");
    let err = d.drover_fails(&["create", "job", "x", "--from=cronjob/nope"], 1);
    assert!(err.contains("not found"), "{err}");

    // scale job = parallelism.
    let unit = job_unit(
        "wide",
        "completions = 4\nparallelism = 1",
        "Never",
        &["sleep", "1000"],
    );
    d.apply("wide.toml", &unit);
    d.wait_until("one pod", SOON, || job_pods(&d, "wide").len() == 1);
    assert_eq!(
        d.drover_ok(&["scale", "job", "wide", "--replicas", "3"]),
        "job.batch/wide scaled\n"
    );
    d.wait_until("three pods running", SOON, || {
        job_pods(&d, "wide")
            .iter()
            .filter(|p| all_running(p))
            .count()
            == 3
    });
    assert_eq!(job_now(&d, "wide").spec.parallelism, 3);
    d.drover_ok(&["delete", "job", "wide"]);
    d.wait_until("the job's pods gone", SOON, || {
        job_pods(&d, "wide").is_empty()
    });
    // Deleting the CronJob takes its Jobs (and their pods) along.
    d.drover_ok(&["delete", "cronjob", "manual"]);
    d.wait_until("the cronjob's jobs gone", SOON, || jobs(&d).is_empty());
    d.wait_until("and their pods", SOON, || d.pods().is_empty());
}

#[test]
fn bad_units_are_rejected_with_their_position() {
    let d = TestDaemon::start(&[]);
    let good = job_unit("ok", "", "Never", &["true"]);
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("restart_policy = \"Never\"", "restart_policy = \"Always\""),
            "a Job's pods cannot have restart_policy \"Always\"",
        ),
        (
            good.replace("[spec]\n", "[spec]\ncompletions = -1\n"),
            "`completions` must be a non-negative integer, found -1",
        ),
        (
            cron_unit("c", "61 * * * *", "", &["true"]),
            "61 is out of range for the minute field (expected 0-59)",
        ),
        (
            cron_unit("c", "* * *", "", &["true"]),
            "a schedule has 5 fields",
        ),
        (
            cron_unit("c", "@daily", "time_zone = \"Mars/Base\"", &["true"]),
            "unknown time zone \"Mars/Base\"",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let path = d.unit_file(&format!("bad{i}.toml"), text);
        let file = path.to_str().unwrap();
        let err = d.drover_fails(&["apply", "-f", file], 1);
        assert!(err.contains(message), "{message}\n{err}");
        assert!(
            err.contains(&format!("{file}:")),
            "no file:line:col in\n{err}"
        );
        let err = d.drover_fails(&["validate", file], 1);
        assert!(err.contains(message), "{err}");
    }
    assert!(jobs(&d).is_empty(), "a rejected file changed something");
}
