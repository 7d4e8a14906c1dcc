//! The command line: kubectl's verbs for drover (product.md §4).
//!
//! `main` parses with clap, runs one verb, prints a failure once as
//! `error: ...` on stderr and maps it to the exit codes documented in
//! `--help`. Each verb has its own file with its `Args` (flags) and `run`;
//! what a verb prints is built by pure functions tested beside it, and only
//! `run` talks to the daemon (through [`crate::client`]).
//!
//! Every verb except `daemon`, `up`, `validate`, `import`, `completion` and `man`
//! runs on a small current-thread tokio runtime made for the invocation.

mod apply;
mod columns;
mod completion;
mod cordon;
mod create;
mod daemon;
mod delete;
mod describe;
mod events;
mod get;
mod import;
mod kill;
mod label;
mod logs;
mod man;
mod reexec;
mod reload;
mod restart;
mod scale;
mod target;
mod up;
mod validate;
mod wait;

use crate::client::{Client, ClientError};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::io::{self, Write as _};
use std::path::PathBuf;

/// Success.
pub const EXIT_OK: i32 = 0;
/// A failure: invalid units, not found, conflict, daemon error, timeout.
pub const EXIT_FAILURE: i32 = 1;
/// Wrong usage: clap's own errors, and arguments clap cannot judge
/// (an unknown resource type, a malformed label).
pub const EXIT_USAGE: i32 = 2;
/// The daemon cannot be reached on its socket.
pub const EXIT_UNREACHABLE: i32 = 3;

const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  failure: invalid unit files, object not found, conflict, an error from
     the daemon, `wait` timed out
  2  usage: unknown command, flag or resource type, malformed argument
  3  the daemon cannot be reached (no socket, connection refused)

Environment:
  DROVER_SOCKET     the control socket, as --socket
  DROVER_STATE_DIR  the state folder of `daemon` and `up`, as --state-dir";

/// drover: Kubernetes' replication model for plain processes.
#[derive(Parser, Debug)]
#[command(
    name = "drover",
    version,
    about = "Run and supervise processes the Kubernetes way: pods, replica sets, jobs, cron jobs, probes",
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The daemon's control socket
    ///
    /// Default: the system daemon's /run/drover/drover.sock for root and
    /// for members of the drover group, else the caller's own daemon's
    /// $XDG_RUNTIME_DIR/drover/drover.sock.
    #[arg(long, global = true, env = "DROVER_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the units of a folder in the foreground and stream their logs; Ctrl-C stops them
    Up(up::Args),
    /// Run the drover daemon (the service the package installs)
    Daemon(daemon::Args),
    /// Validate unit files and apply them, all or nothing
    Apply(apply::Args),
    /// List pods, replica sets, replication controllers, jobs, cron jobs, nodes or events
    Get(get::Args),
    /// Show one object in detail, with its events
    Describe(describe::Args),
    /// Add, change or remove labels of a pod, set or node
    Label(label::Args),
    /// Set the number of replicas of a replica set or replication controller (a job's parallelism)
    Scale(scale::Args),
    /// Run a cron job's job template now: create job [NAME] --from=cronjob/NAME
    Create(create::Args),
    /// Delete objects; a set's pods go with it unless --cascade=orphan
    Delete(delete::Args),
    /// Restart a pod in place, or a set's pods one at a time
    Restart(restart::Args),
    /// Send a signal to the processes of a pod or of a set's pods
    Kill(kill::Args),
    /// Re-read the units folder and apply what changed
    #[command(name = "daemon-reload")]
    DaemonReload(reload::Args),
    /// Re-execute the daemon in place (after an upgrade: the new binary); its pods keep running, untouched
    #[command(name = "daemon-reexec")]
    DaemonReexec(reexec::Args),
    /// Print the output of a pod's process
    Logs(logs::Args),
    /// Mark a node unschedulable: no new pods are placed on it
    Cordon(cordon::Args),
    /// Mark a node schedulable again
    Uncordon(cordon::Args),
    /// List events, oldest first
    Events(events::Args),
    /// Wait until an object is ready, complete (or failed) or deleted
    Wait(wait::Args),
    /// Check unit files without applying them
    Validate(validate::Args),
    /// Write drover units from systemd services and timers or supervisord programs
    Import(import::Args),
    /// Print a shell completion script
    Completion(completion::Args),
    /// Print the manual page, or write one page per command to a folder
    Man(man::Args),
}

/// A failure that is not an error from the daemon.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Arguments clap cannot judge on its own: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Unit file diagnostics, already rendered (several lines): printed
    /// as they are, exit 1.
    #[error("{0}")]
    Diagnostics(String),
}

/// Runs the command line of this process; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with status 0.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(cli) {
        Ok(()) => EXIT_OK,
        Err(err) => report(&err),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let socket = cli.socket;
    match cli.command {
        // The daemon's socket may also come from its config file.
        Command::Up(args) => up::run(args, socket),
        Command::Daemon(args) => daemon::run(args, socket),
        Command::Validate(args) => validate::run(args),
        Command::Import(args) => import::run(args),
        Command::Completion(args) => completion::run(args),
        Command::Man(args) => man::run(args),
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the I/O runtime")?;
            let client = Client::new(socket.unwrap_or_else(crate::paths::client_socket));
            runtime.block_on(run_verb(command, &client))
        }
    }
}

async fn run_verb(command: Command, client: &Client) -> anyhow::Result<()> {
    match command {
        Command::Apply(args) => apply::run(args, client).await,
        Command::Get(args) => get::run(args, client).await,
        Command::Describe(args) => describe::run(args, client).await,
        Command::Label(args) => label::run(args, client).await,
        Command::Scale(args) => scale::run(args, client).await,
        Command::Create(args) => create::run(args, client).await,
        Command::Delete(args) => delete::run(args, client).await,
        Command::Restart(args) => restart::run(args, client).await,
        Command::Kill(args) => kill::run(args, client).await,
        Command::DaemonReload(args) => reload::run(args, client).await,
        Command::DaemonReexec(args) => reexec::run(args, client).await,
        Command::Logs(args) => logs::run(args, client).await,
        Command::Cordon(args) => cordon::run(args, client, true).await,
        Command::Uncordon(args) => cordon::run(args, client, false).await,
        Command::Events(args) => events::run(args, client).await,
        Command::Wait(args) => wait::run(args, client).await,
        Command::Up(_)
        | Command::Daemon(_)
        | Command::Validate(_)
        | Command::Import(_)
        | Command::Completion(_)
        | Command::Man(_) => unreachable!("handled without the runtime in `run`"),
    }
}

/// Prints the error once and returns its exit status.
fn report(err: &anyhow::Error) -> i32 {
    if is_broken_pipe(err) {
        // `drover get pods | head -1`: the reader left; not a failure.
        return EXIT_OK;
    }
    let code = exit_code(err);
    match err.downcast_ref::<CliError>() {
        Some(CliError::Diagnostics(text)) => {
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
        }
        _ => eprintln!("error: {err:#}"),
    }
    code
}

fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            if e.is_unreachable() {
                return EXIT_UNREACHABLE;
            }
        }
        if let Some(CliError::Usage(_)) = cause.downcast_ref::<CliError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_FAILURE
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stdout at once.
fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// kubectl prints this on stderr for an empty list and exits 0.
fn print_no_resources() {
    eprintln!("No resources found.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status:"), "{help}");
        assert!(help.contains("3  the daemon cannot be reached"), "{help}");
        assert!(help.contains("daemon-reload"), "{help}");
        assert!(help.contains("daemon-reexec"), "{help}");
    }

    #[test]
    fn usage_and_unreachable_map_to_their_codes() {
        let usage = anyhow::Error::new(CliError::Usage("bad".into()));
        assert_eq!(exit_code(&usage), EXIT_USAGE);
        let down = anyhow::Error::new(ClientError::Unreachable {
            socket: "/x".into(),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        })
        .context("getting pods");
        assert_eq!(exit_code(&down), EXIT_UNREACHABLE);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), EXIT_FAILURE);
        let pipe = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe));
    }

    #[test]
    fn kubectl_habits_parse() {
        let cli = Cli::try_parse_from(["drover", "get", "pods", "-o", "wide", "-l", "app=web"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from([
            "drover",
            "--socket",
            "/tmp/s",
            "scale",
            "rs/web",
            "--replicas",
            "3",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from([
            "drover",
            "scale",
            "rs",
            "web",
            "--replicas=3",
            "--socket=/tmp/s",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        let err = Cli::try_parse_from(["drover", "get", "pods", "-o", "table"]).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
    }
}
