//! `drover cordon NODE` / `drover uncordon NODE`: mark a node
//! (un)schedulable. DaemonSet pods still run on a cordoned node.

use super::print;
use crate::api::{Kind, Node};
use crate::client::{object_path, Client};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The node (`drover get nodes` lists them)
    #[arg(value_name = "NODE")]
    node: String,
}

pub async fn run(args: Args, client: &Client, cordon: bool) -> anyhow::Result<()> {
    let name = args
        .node
        .strip_prefix("node/")
        .or_else(|| args.node.strip_prefix("nodes/"))
        .unwrap_or(&args.node);
    let path = object_path(Kind::Node, name);
    let node: Node = client.get(&path).await?;
    let verb = if cordon { "cordoned" } else { "uncordoned" };
    if node.spec.unschedulable == cordon {
        print(&format!("node/{name} already {verb}\n"))?;
        return Ok(());
    }
    let action = if cordon { "cordon" } else { "uncordon" };
    let _: Node = client.post_empty(&format!("{path}/{action}")).await?;
    print(&format!("node/{name} {verb}\n"))?;
    Ok(())
}
