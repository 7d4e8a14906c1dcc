//! `drover kill pod|rs|rc|job NAME [--signal HUP]`: signal the processes, as
//! `systemctl kill -s` does (reload a config, dump state).

use super::target::{parse_target, words};
use super::{print, CliError};
use crate::api::http::{ActionResponse, KillRequest};
use crate::api::{Kind, Signal};
use crate::client::{object_path, Client};

const KINDS: [Kind; 5] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, rs, rc or job; or KIND/NAME
    kind: String,
    /// The object's name
    name: Option<String>,
    /// The signal: a name (HUP, SIGUSR1, RTMIN+1) or a number
    #[arg(short, long, value_name = "SIGNAL", default_value = "TERM")]
    signal: String,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let target = parse_target(&words(&args.kind, args.name.as_deref()), &KINDS, "kill")?;
    // Checked here so a typo is a usage error before anything is sent.
    args.signal
        .parse::<Signal>()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let path = format!("{}/kill", object_path(target.kind, &target.name));
    let answer: ActionResponse = client
        .post(
            &path,
            &KillRequest {
                signal: args.signal,
            },
        )
        .await?;
    print(&format!("{}\n", answer.message))?;
    Ok(())
}
