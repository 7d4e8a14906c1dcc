//! `drover up [DIR]`: the daemon in the foreground for development: runs
//! the units of DIR (default ./units), streams every process's output, and
//! stops every pod on Ctrl-C.

use super::daemon::{resolve, start, Config, NodeArgs};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The units folder
    #[arg(value_name = "DIR", default_value = "units")]
    dir: PathBuf,
    /// The units folder (the same as DIR)
    #[arg(long, value_name = "DIR", conflicts_with = "dir")]
    units: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: Args, socket: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = args.units.unwrap_or(args.dir);
    if !dir.is_dir() {
        anyhow::bail!(
            "units folder {} does not exist (drover up [DIR] runs the *.toml units of DIR)",
            dir.display()
        );
    }
    let opts = resolve(
        &args.node,
        Some(dir),
        socket,
        Config::default(),
        Path::new("."),
        true,
    )?;
    start(opts)
}
