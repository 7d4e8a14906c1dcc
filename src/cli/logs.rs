//! `drover logs POD|job/NAME [-c PROCESS] [-f] [--previous] [--tail N]`
//!
//! `job/NAME` reads a pod of the Job, as kubectl does: a running one if
//! any, else the newest (a finished Job's pods and logs stay until its TTL
//! or its CronJob's history limit removes them).
//!
//! Everything comes from the daemon, which may run on another node or in
//! another mount namespace: without `-f` it sends the text; with `-f` it
//! streams the log as it grows (`follow=true`, a chunked answer) and ends
//! the stream when the pod is deleted or finished. Ctrl-C ends it here.

use crate::api::{Kind, Pod};
use crate::client::{encode, object_path, Client};
use anyhow::Context as _;
use std::io::{self, Write as _};

/// The pod of Job `job` whose log to show: a running one, else the newest.
async fn job_pod(client: &Client, job: &str) -> anyhow::Result<String> {
    let j: crate::api::Job = client.get(&object_path(Kind::Job, job)).await?;
    let selector = format!(
        "{}={}",
        crate::api::job::labels::CONTROLLER_UID,
        j.metadata.uid
    );
    let list: crate::api::http::List = client
        .get(&crate::client::list_path(Kind::Pod, Some(&selector)))
        .await?;
    let pods: Vec<Pod> = list
        .items
        .into_iter()
        .filter_map(|o| match o {
            crate::api::Object::Pod(p) => Some(p),
            _ => None,
        })
        .collect();
    pick_job_pod(&pods)
        .map(str::to_string)
        .with_context(|| format!("job {job} has no pods"))
}

fn pick_job_pod(pods: &[Pod]) -> Option<&str> {
    pods.iter()
        .max_by_key(|p| {
            (
                p.status.phase == crate::api::PodPhase::Running,
                p.metadata.creation_timestamp,
                p.metadata.name.clone(),
            )
        })
        .map(|p| p.metadata.name.as_str())
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pod (NAME or pod/NAME), or job/NAME for a pod of that job
    #[arg(value_name = "POD")]
    pod: String,
    /// The process, when the pod has several
    #[arg(
        short = 'c',
        long = "process",
        visible_alias = "container",
        value_name = "PROCESS"
    )]
    process: Option<String>,
    /// Keep printing what the process writes (Ctrl-C stops)
    #[arg(short, long)]
    follow: bool,
    /// The log of the run before the last restart
    #[arg(short, long)]
    previous: bool,
    /// Only the last N lines (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    tail: Option<i64>,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let pod = match args
        .pod
        .split_once('/')
        .filter(|(k, _)| Kind::from_cli(k) == Some(Kind::Job))
    {
        Some((_, job)) => job_pod(client, job).await?,
        None => args
            .pod
            .strip_prefix("pod/")
            .or_else(|| args.pod.strip_prefix("pods/"))
            .unwrap_or(&args.pod)
            .to_string(),
    };
    let process = match args.process {
        Some(p) => p,
        None => {
            let p: Pod = client.get(&object_path(Kind::Pod, &pod)).await?;
            only_process(&p)?
        }
    };
    let tail = args.tail.and_then(|n| usize::try_from(n).ok());
    let mut query = format!("process={}", encode(&process));
    if args.previous {
        query.push_str("&previous=true");
    }
    if let Some(n) = tail {
        query.push_str(&format!("&tail={n}"));
    }
    let base = object_path(Kind::Pod, &pod);

    if !args.follow {
        let bytes = client.get_bytes(&format!("{base}/logs?{query}")).await?;
        let mut out = io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()?;
        return Ok(());
    }

    // Each chunk is flushed at once, so partial lines show up as written.
    let print = |chunk: &[u8]| {
        let mut out = io::stdout().lock();
        out.write_all(chunk)?;
        out.flush()
    };
    let path = format!("{base}/logs?{query}&follow=true");
    tokio::select! {
        r = client.get_stream(&path, print) => match r? {
            Ok(()) => {}
            // The reader went away (`logs -f | head`): done, as for `tail -f`.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the log to stdout"),
        },
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// The process to show when none is named: the only one, or an error
/// listing the choices (kubectl's message, with "process" for "container").
fn only_process(pod: &Pod) -> anyhow::Result<String> {
    let names: Vec<&str> = pod.spec.processes.iter().map(|p| p.name.as_str()).collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => anyhow::bail!("pod {} has no processes", pod.metadata.name),
        many => anyhow::bail!(
            "a process name must be specified for pod {} with -c, choose one of: [{}]",
            pod.metadata.name,
            many.join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::columns::fixtures;
    use super::*;

    #[test]
    fn the_only_process_is_the_default() {
        let pod: Pod = serde_json::from_value(fixtures::pod()).unwrap();
        assert_eq!(only_process(&pod).unwrap(), "server");
        let mut two = pod.clone();
        let mut side = two.spec.processes[0].clone();
        side.name = "sidecar".into();
        two.spec.processes.push(side);
        assert_eq!(
            only_process(&two).unwrap_err().to_string(),
            "a process name must be specified for pod web-x1y2z with -c, choose one of: [server sidecar]"
        );
    }
}
