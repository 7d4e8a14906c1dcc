//! `drover delete KIND NAME... [--cascade=orphan|background]`

use super::print;
use super::target::{parse_targets, resource};
use crate::api::http::ActionResponse;
use crate::api::Kind;
use crate::client::{object_path, Client};

const KINDS: [Kind; 7] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::Node,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, rs, rc, job, cronjob or node; or KIND/NAME
    kind: String,
    /// The objects' names (or more KIND/NAME)
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// What becomes of a set's or a job's pods (a cronjob's jobs): deleted
    /// with it (background), or left running, unmanaged (orphan)
    #[arg(long, value_enum, default_value_t = Cascade::Background)]
    cascade: Cascade,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Cascade {
    /// Delete the set's pods too
    Background,
    /// Keep the set's pods running, unmanaged
    Orphan,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let words: Vec<String> = std::iter::once(args.kind).chain(args.names).collect();
    let targets = parse_targets(&words, &KINDS, "delete")?;
    for t in targets {
        let mut path = object_path(t.kind, &t.name);
        if args.cascade == Cascade::Orphan {
            path.push_str("?cascade=orphan");
        }
        let _: ActionResponse = client.delete(&path).await?;
        print(&format!("{} \"{}\" deleted\n", resource(t.kind), t.name))?;
    }
    Ok(())
}
