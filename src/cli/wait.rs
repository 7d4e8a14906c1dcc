//! `drover wait KIND/NAME --for=condition=ready|complete|failed [--timeout 30s]`
//! (also `--for=delete`, and `KIND -l SELECTOR` for every matching object).
//!
//! A Job waited on for `complete` that fails instead (or for `failed`
//! that completes) ends the wait at once with an error: it will never
//! change its mind.
//!
//! No polling interval: check, then long-poll the daemon's revision until
//! something changes, check again, until the condition holds or the time
//! is up.

use super::target::{parse_kind, parse_target, words, Target};
use super::{print, CliError};
use crate::api::duration::parse_duration;
use crate::api::{
    Job, Kind, LabelSelector, Node, Pod, PodPhase, ReplicaSet, ReplicationController,
};
use crate::client::{list_path, object_path, Client};
use serde_json::Value;
use tokio::time::Instant;

const KINDS: [Kind; 5] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::Job,
    Kind::Node,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, rs, rc, job or node; or KIND/NAME
    kind: String,
    /// The object's name (none with -l)
    name: Option<String>,
    /// condition=ready, condition=complete, condition=failed (jobs) or delete
    #[arg(long = "for", value_name = "CONDITION")]
    condition: String,
    /// Give up after this long ("30s", "5m")
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    timeout: String,
    /// Wait for every object of KIND matching this selector (at least one)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
}

/// What `--for` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Ready,
    Complete,
    Failed,
    Delete,
}

pub fn parse_condition(text: &str) -> Result<Condition, CliError> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "condition=ready" => Ok(Condition::Ready),
        "condition=complete" => Ok(Condition::Complete),
        "condition=failed" => Ok(Condition::Failed),
        "delete" => Ok(Condition::Delete),
        _ => Err(CliError::Usage(format!(
            "unknown --for `{text}`: expected condition=ready, condition=complete, \
             condition=failed or delete"
        ))),
    }
}

/// Whether `object` (as the daemon sent it) meets `cond`. `Err` when the
/// condition makes no sense for the kind.
pub fn holds(kind: Kind, object: &Value, cond: Condition) -> anyhow::Result<bool> {
    let parse_err = |e| anyhow::anyhow!("the daemon sent a {kind} this drover cannot read: {e}");
    Ok(match (kind, cond) {
        (_, Condition::Delete) => false,
        (Kind::Pod, Condition::Ready) => serde_json::from_value::<Pod>(object.clone())
            .map_err(parse_err)?
            .is_ready(),
        (Kind::Pod, Condition::Complete) => {
            serde_json::from_value::<Pod>(object.clone())
                .map_err(parse_err)?
                .status
                .phase
                == PodPhase::Succeeded
        }
        (Kind::ReplicaSet, Condition::Ready) => {
            let rs: ReplicaSet = serde_json::from_value(object.clone()).map_err(parse_err)?;
            set_ready(rs.spec.replicas, &rs.status)
        }
        (Kind::ReplicationController, Condition::Ready) => {
            let rc: ReplicationController =
                serde_json::from_value(object.clone()).map_err(parse_err)?;
            set_ready(rc.spec.replicas, &rc.status)
        }
        (Kind::Node, Condition::Ready) => serde_json::from_value::<Node>(object.clone())
            .map_err(parse_err)?
            .is_ready(),
        (Kind::Job, Condition::Complete | Condition::Failed) => {
            let job: Job = serde_json::from_value(object.clone()).map_err(parse_err)?;
            job_finished(&job, cond)?
        }
        (kind, Condition::Failed) => {
            return Err(CliError::Usage(format!(
                "condition=failed applies to jobs, not {}",
                kind.plural()
            ))
            .into())
        }
        (kind, Condition::Complete) => {
            return Err(CliError::Usage(format!(
                "condition=complete applies to pods and jobs, not {}",
                kind.plural()
            ))
            .into())
        }
        (kind, Condition::Ready) => {
            return Err(CliError::Usage(format!(
                "condition=ready does not apply to {}",
                kind.plural()
            ))
            .into())
        }
    })
}

/// Whether a Job reached the condition waited for; an error when it
/// reached the other one (a finished Job never changes again).
fn job_finished(job: &Job, cond: Condition) -> anyhow::Result<bool> {
    let name = &job.metadata.name;
    let why = |c: &crate::api::JobCondition| {
        let mut s = c.reason.clone().unwrap_or_default();
        if let Some(m) = &c.message {
            s.push_str(": ");
            s.push_str(m);
        }
        s
    };
    match (cond, &job.status) {
        (Condition::Complete, st) if st.is_complete() => Ok(true),
        (Condition::Complete, st) if st.is_failed() => {
            let c = st
                .condition(crate::api::JobConditionType::Failed)
                .expect("failed");
            anyhow::bail!("job.batch/{name} failed: {}", why(c))
        }
        (Condition::Failed, st) if st.is_failed() => Ok(true),
        (Condition::Failed, st) if st.is_complete() => {
            anyhow::bail!("job.batch/{name} completed; it will not fail")
        }
        _ => Ok(false),
    }
}

fn set_ready(desired: u32, status: &crate::api::ReplicaSetStatus) -> bool {
    status.ready_replicas == desired && status.replicas == desired
}

/// What is waited on.
enum Subject {
    One(Target),
    Selected { kind: Kind, selector: String },
}

impl Subject {
    /// `pods/web-x`, as kubectl names it in its timeout message.
    fn describe(&self) -> String {
        match self {
            Subject::One(t) => format!("{}/{}", t.kind.plural(), t.name),
            Subject::Selected { kind, selector } => {
                format!("{} matching {selector}", kind.plural())
            }
        }
    }
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let cond = parse_condition(&args.condition)?;
    let timeout = parse_duration(&args.timeout)
        .map_err(|e| CliError::Usage(format!("--timeout {}: {e}", args.timeout)))?;
    let subject = match &args.selector {
        Some(sel) => {
            if args.name.is_some() || args.kind.contains('/') {
                return Err(CliError::Usage(
                    "with -l, give only the KIND (e.g. `drover wait pods -l app=web`)".into(),
                )
                .into());
            }
            LabelSelector::parse(sel).map_err(CliError::Usage)?;
            Subject::Selected {
                kind: parse_kind(&args.kind, &KINDS, "wait")?,
                selector: sel.clone(),
            }
        }
        None => Subject::One(parse_target(
            &words(&args.kind, args.name.as_deref()),
            &KINDS,
            "wait",
        )?),
    };

    let deadline = Instant::now() + timeout;
    let mut revision = client.revision().await?;
    loop {
        if check(client, &subject, cond).await? {
            let what = match &subject {
                Subject::One(t) => t.resource_ref(),
                Subject::Selected { .. } => subject.describe(),
            };
            let verb = match cond {
                Condition::Ready | Condition::Complete | Condition::Failed => "condition met",
                Condition::Delete => "deleted",
            };
            print(&format!("{what} {verb}\n"))?;
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!(
                "timed out waiting for the condition on {}",
                subject.describe()
            );
        }
        // Whole seconds for the server; the local timeout cuts the last one short.
        let secs = left.as_secs().clamp(1, 30);
        match tokio::time::timeout(left, client.watch(revision, secs)).await {
            Ok(r) => revision = r?,
            Err(_elapsed) => {}
        }
    }
}

async fn check(client: &Client, subject: &Subject, cond: Condition) -> anyhow::Result<bool> {
    match subject {
        Subject::One(t) => match client.get::<Value>(&object_path(t.kind, &t.name)).await {
            Ok(obj) => holds(t.kind, &obj, cond),
            Err(e) if e.is_not_found() && cond == Condition::Delete => Ok(true),
            Err(e) => Err(e.into()),
        },
        Subject::Selected { kind, selector } => {
            let list: Value = client.get(&list_path(*kind, Some(selector))).await?;
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if cond == Condition::Delete {
                return Ok(items.is_empty());
            }
            if items.is_empty() {
                return Ok(false);
            }
            for item in &items {
                if !holds(*kind, item, cond)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::columns::fixtures;
    use super::*;

    #[test]
    fn conditions_parse() {
        assert_eq!(
            parse_condition("condition=ready").unwrap(),
            Condition::Ready
        );
        assert_eq!(
            parse_condition("condition=Complete").unwrap(),
            Condition::Complete
        );
        assert_eq!(parse_condition("delete").unwrap(), Condition::Delete);
        assert_eq!(
            parse_condition("condition=failed").unwrap(),
            Condition::Failed
        );
        assert!(parse_condition("ready").is_err());
    }

    #[test]
    fn readiness_per_kind() {
        assert!(holds(Kind::Pod, &fixtures::pod(), Condition::Ready).unwrap());
        assert!(!holds(Kind::Pod, &fixtures::pod(), Condition::Complete).unwrap());
        let mut done = fixtures::pod();
        done["status"]["phase"] = "Succeeded".into();
        assert!(holds(Kind::Pod, &done, Condition::Complete).unwrap());

        let mut rs = fixtures::replicaset();
        assert!(
            !holds(Kind::ReplicaSet, &rs, Condition::Ready).unwrap(),
            "2 of 3 ready"
        );
        rs["status"]["ready_replicas"] = 3.into();
        assert!(holds(Kind::ReplicaSet, &rs, Condition::Ready).unwrap());
        rs["status"]["replicas"] = 4.into();
        assert!(
            !holds(Kind::ReplicaSet, &rs, Condition::Ready).unwrap(),
            "a surplus pod"
        );
        assert!(holds(Kind::ReplicaSet, &rs, Condition::Complete).is_err());

        assert!(holds(Kind::Node, &fixtures::node(), Condition::Ready).unwrap());
    }

    #[test]
    fn jobs_complete_or_fail_for_good() {
        let job = |conditions: serde_json::Value| {
            serde_json::json!({
                "kind": "Job",
                "metadata": {"name": "backup", "creation_timestamp": "2024-05-01T11:50:00Z"},
                "spec": {"template": {"restart_policy": "Never",
                         "processes": [{"name": "main", "command": ["true"]}]}},
                "status": {"conditions": conditions}
            })
        };
        let running = job(serde_json::json!([]));
        assert!(!holds(Kind::Job, &running, Condition::Complete).unwrap());
        let done = job(serde_json::json!([{"type": "Complete", "status": "True",
            "last_transition_time": "2024-05-01T11:55:00Z"}]));
        assert!(holds(Kind::Job, &done, Condition::Complete).unwrap());
        assert!(holds(Kind::Job, &done, Condition::Failed).is_err());
        let failed = job(serde_json::json!([{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
            "last_transition_time": "2024-05-01T11:55:00Z"}]));
        let err = holds(Kind::Job, &failed, Condition::Complete).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.batch/backup failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        assert!(holds(Kind::Job, &failed, Condition::Failed).unwrap());
        assert!(holds(Kind::Pod, &fixtures::pod(), Condition::Failed).is_err());
    }
}
