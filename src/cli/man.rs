//! `drover man [--dir D]`: manual pages (roff) generated from the CLI
//! definition: drover(1) on stdout, or drover.1 and one drover-VERB.1 per
//! command written to D (what the package installs).

use super::Cli;
use anyhow::Context as _;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write drover.1 and drover-VERB.1 for every command into this folder
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match args.dir {
        None => {
            let page = render(&cmd)?;
            super::print(&String::from_utf8_lossy(&page))?;
        }
        Some(dir) => {
            for path in write_all(&cmd, &dir)? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn render(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .source(format!("drover {}", env!("CARGO_PKG_VERSION")))
        .manual("drover manual")
        .render(&mut out)?;
    Ok(out)
}

/// drover.1 plus drover-VERB.1 per subcommand; returns the files written.
fn write_all(cmd: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, page: Vec<u8>| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    write("drover".into(), render(cmd)?)?;
    for sub in cmd.get_subcommands() {
        let name = format!("drover-{}", sub.get_name());
        // The page is titled `drover-get`, its synopsis reads `drover get`.
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("drover {}", sub.get_name()));
        write(name, render(&sub)?)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&Cli::command(), dir.path()).unwrap();
        assert!(written.iter().any(|p| p.ends_with("drover-get.1")));
        assert!(written
            .iter()
            .any(|p| p.ends_with("drover-daemon-reload.1")));
        let top = std::fs::read_to_string(dir.path().join("drover.1")).unwrap();
        assert!(
            top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH drover"),
            "{top}"
        );
        let get = std::fs::read_to_string(dir.path().join("drover-get.1")).unwrap();
        assert!(get.contains("drover\\-get"), "{get}");
    }
}
