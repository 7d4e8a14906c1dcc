//! `drover create job [NAME] --from=cronjob/CJ`: run a CronJob's job
//! template now, once, as kubectl's `create job --from`. The Job is
//! controlled by the CronJob (its concurrency policy and history limits
//! count it); without NAME it is called `CJ-manual-xxxxx`.

use super::target::parse_kind;
use super::{print, CliError};
use crate::api::http::CreateJobRequest;
use crate::api::{Job, Kind};
use crate::client::Client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to create: job
    kind: String,
    /// The new Job's name (default: CRONJOB-manual-xxxxx)
    name: Option<String>,
    /// The CronJob whose job template to run: cronjob/NAME
    #[arg(long, value_name = "cronjob/NAME")]
    from: String,
}

/// Checks the arguments without talking to the daemon.
fn request(args: &Args) -> Result<CreateJobRequest, CliError> {
    let kind = parse_kind(&args.kind, &[Kind::Job], "create")?;
    debug_assert_eq!(kind, Kind::Job);
    let ok = args
        .from
        .split_once('/')
        .is_some_and(|(k, n)| Kind::from_cli(k) == Some(Kind::CronJob) && !n.is_empty());
    if !ok {
        return Err(CliError::Usage(format!(
            "--from={}: expected cronjob/NAME",
            args.from
        )));
    }
    if let Some(name) = &args.name {
        crate::units::dns_label(name, crate::units::MAX_JOB_NAME)
            .map_err(|why| CliError::Usage(format!("invalid job name \"{name}\": {why}")))?;
    }
    Ok(CreateJobRequest {
        from: args.from.clone(),
        name: args.name.clone(),
    })
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let body = request(&args)?;
    let job: Job = client.post("/v1/jobs", &body).await?;
    print(&format!("job.batch/{} created\n", job.metadata.name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: &str, name: Option<&str>, from: &str) -> Args {
        Args {
            kind: kind.into(),
            name: name.map(str::to_string),
            from: from.into(),
        }
    }

    #[test]
    fn arguments_are_checked_before_asking() {
        let r = request(&args("job", None, "cronjob/nightly")).unwrap();
        assert_eq!(r.from, "cronjob/nightly");
        assert_eq!(r.name, None);
        assert!(request(&args("job", Some("run-1"), "cj/nightly")).is_ok());
        let e = request(&args("job", None, "rs/web")).unwrap_err();
        assert_eq!(e.to_string(), "--from=rs/web: expected cronjob/NAME");
        assert!(request(&args("pod", None, "cronjob/x")).is_err());
        assert!(request(&args("job", Some("Bad_Name"), "cronjob/x")).is_err());
        assert!(request(&args("job", None, "cronjob/")).is_err());
    }
}
