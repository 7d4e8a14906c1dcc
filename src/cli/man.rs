//! `drover man [--dir D]`: manual pages (roff) generated from the CLI
//! definition: drover(1) on stdout, or drover.1 and one drover-VERB.1 per
//! command written to D (what the package installs). drover(1) ends with
//! what the CLI definition cannot say: the files, who may use the control
//! socket, and the service's lifecycle.

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
    if cmd.get_name() == "drover" {
        out.extend_from_slice(TOP_PAGE_SECTIONS.as_bytes());
    }
    Ok(out)
}

/// The end of drover(1), in roff.
const TOP_PAGE_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/drover/drover.toml\fR
The daemon's configuration (all keys optional; commented defaults in the
packaged file).
.TP
\fI/etc/drover/units/*.toml\fR
Units applied when the daemon starts and on \fBdrover daemon\-reload\fR: a
changed file is applied again, a removed file deletes its unit and its pods.
.TP
\fI/var/lib/drover\fR
The daemon's state: objects, process ids, restart counts.
.TP
\fI/var/log/drover/POD/PROCESS.log\fR
What each process writes, rotated by size.
.TP
\fI/run/drover/drover.sock\fR
The control socket of the system daemon, mode 0660, owner root, group drover.
.PP
Run as another user than root, \fBdrover daemon\fR and \fBdrover up\fR
use $XDG_CONFIG_HOME/drover, $XDG_STATE_HOME/drover and
$XDG_RUNTIME_DIR/drover/drover.sock instead.
.SH THE DROVER GROUP
Root and the members of the \fBdrover\fR group may use the system daemon's
control socket, so its members run the CLI without sudo
(\fBadduser\fR \fIUSER\fR \fBdrover\fR, then log in again). The daemon
reads each caller's uid from the socket: root may do anything; a member
manages pods, whose processes run as that member unless the unit came from
a root\-owned file in the units folder; only root sets \fBuser\fR to another
account. Membership is a privilege: grant it as you would grant the right to
run services.
.PP
Without \fB\-\-socket\fR or DROVER_SOCKET, the CLI uses
\fI/run/drover/drover.sock\fR when it exists and the caller may use it,
and the caller's own daemon's socket otherwise.
.SH SERVICE
The package's \fBdrover.service\fR is \fBType=notify\fR: it is started once
the socket answers and the units are applied, and \fBsystemctl status
drover\fR shows the pod counts. \fBsystemctl reload drover\fR is
\fBdrover daemon\-reload\fR. \fBsystemctl stop drover\fR, machine shutdown
and removing the package stop the daemon and every pod, gracefully
(SIGTERM, then SIGKILL after its termination_grace_period). A crash of the daemon
or an upgrade of the package stops no pod: the daemon that starts next
re\-adopts them.
.SH SEE ALSO
\fBsystemctl\fR(1), \fBsystemd.service\fR(5), \fBsd_notify\fR(3)
"#;

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
        // The group and the files are on the top page only.
        assert!(top.contains(".SH THE DROVER GROUP"), "{top}");
        assert!(top.contains("/run/drover/drover.sock"), "{top}");
        assert!(!get.contains(".SH FILES"), "{get}");
    }
}
