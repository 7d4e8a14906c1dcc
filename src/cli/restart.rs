//! `drover restart pod|rs|rc NAME`: a pod in place; a set's pods one at a
//! time, each waiting until its replacement is ready (the daemon does the
//! pacing).

use super::print;
use super::target::{parse_target, words};
use crate::api::http::ActionResponse;
use crate::api::Kind;
use crate::client::{object_path, Client};

const KINDS: [Kind; 4] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, rs or rc; or KIND/NAME
    kind: String,
    /// The object's name
    name: Option<String>,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let target = parse_target(&words(&args.kind, args.name.as_deref()), &KINDS, "restart")?;
    let path = format!("{}/restart", object_path(target.kind, &target.name));
    let answer: ActionResponse = client.post_empty(&path).await?;
    print(&format!("{}\n", answer.message))?;
    Ok(())
}
