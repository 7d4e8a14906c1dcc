//! `drover validate FILE|DIR...`: the checks of `apply`, without a daemon.

use super::apply::load_all;
use super::print;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Unit files or folders of them (*.toml)
    #[arg(value_name = "FILE|DIR", required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let units = load_all(&args.paths)?;
    if units.is_empty() {
        eprintln!("no unit files found");
        return Ok(());
    }
    let lines: String = units
        .iter()
        .map(|u| {
            format!(
                "{}: {}/{} ok\n",
                u.source.display(),
                u.object.kind(),
                u.object.name()
            )
        })
        .collect();
    print(&lines)?;
    Ok(())
}
