//! `drover scale rs|rc|job NAME --replicas N` (also `rs/NAME`); a Job's
//! replicas are its parallelism (how many pods run at once).

use super::print;
use super::target::{parse_target, words};
use crate::api::http::ScaleRequest;
use crate::api::Kind;
use crate::client::{object_path, Client};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// rs, rc or job; or KIND/NAME
    kind: String,
    /// The object's name
    name: Option<String>,
    /// The number of pods wanted (a job: how many run at once)
    #[arg(long, value_name = "N")]
    replicas: u32,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let target = parse_target(
        &words(&args.kind, args.name.as_deref()),
        &[Kind::ReplicaSet, Kind::ReplicationController, Kind::Job],
        "scale",
    )?;
    let path = format!("{}/scale", object_path(target.kind, &target.name));
    let _: Value = client
        .post(
            &path,
            &ScaleRequest {
                replicas: args.replicas,
            },
        )
        .await?;
    print(&format!("{} scaled\n", target.resource_ref()))?;
    Ok(())
}
