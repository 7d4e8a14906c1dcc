//! The agent on this host: the real runtime, and what the daemon's loop
//! waits on for it. The daemon reaches the OS only through here (and
//! through the agent), never through `runtime` directly.

use super::supervise::{Agent, AgentConfig};
use crate::runtime::{Cgroups, ExitEvent, ExitEvents, FileWatch, LinuxRuntime};
use std::io;
use tokio::sync::mpsc;

/// The agent the daemon runs.
pub type HostAgent = Agent<LinuxRuntime>;

/// Something for the agent to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// Children may have exited: [`Agent::reap`].
    Reap,
    /// A re-adopted process exited: [`Agent::on_adopted_exit`].
    AdoptedExit(i32),
    /// A folder holding an awaited pid file changed, or a pod's cgroup
    /// may have emptied: [`Agent::on_files`].
    Files,
    /// The keeper asks for every pod to stop gracefully, then an exit
    /// (SIGTERM, SIGINT or SIGPWR reached it). A second: kill now.
    Halt,
    /// The keeper died (it was SIGKILLed).
    KeeperGone,
}

/// The exits and file changes the daemon's loop waits on.
pub struct Wakeups {
    exits: ExitEvents,
    files: FileWatch,
    cgroups: mpsc::UnboundedReceiver<()>,
}

impl Wakeups {
    pub async fn next(&mut self) -> Wakeup {
        tokio::select! {
            e = self.exits.next() => match e {
                ExitEvent::Children => Wakeup::Reap,
                ExitEvent::Watched(pid) => Wakeup::AdoptedExit(pid),
                ExitEvent::Halt => Wakeup::Halt,
                ExitEvent::KeeperGone => Wakeup::KeeperGone,
            },
            changed = self.files.changed() => {
                if let Err(e) = changed {
                    tracing::warn!("watching pid file folders: {e}");
                    std::future::pending::<()>().await;
                }
                Wakeup::Files
            }
            Some(()) = self.cgroups.recv() => Wakeup::Files,
        }
    }

    /// Tells the keeper (if any) that the daemon serves: an exit from
    /// now on is a crash it restarts the daemon from.
    pub fn serving(&self) {
        self.exits.serving();
    }
}

/// `drover daemon` and `drover up` start as the keeper
/// (`runtime::keeper`), which runs the daemon as its child: call first,
/// before any thread exists. None: this process is the daemon, go on.
/// Some(code): the keeper is done, exit with `code`.
pub fn run_as_keeper() -> Option<i32> {
    crate::runtime::keeper::run_as_keeper()
}

/// Makes this process the supervisor of what it starts (a child
/// subreaper: double-forked grandchildren come back to it), finds the
/// cgroup hierarchy pods go in (logged first: which one, or why none)
/// and builds the agent. Call inside the tokio runtime, before anything
/// is spawned.
pub fn start(cfg: AgentConfig) -> io::Result<(HostAgent, Wakeups)> {
    crate::runtime::become_subreaper()?;
    let keeper = crate::runtime::keeper::KeeperLink::from_env().unwrap_or_else(|e| {
        tracing::warn!("running without the keeper: {e}");
        None
    });
    let rt = LinuxRuntime::with_cgroups(Cgroups::detect(&cfg.instance)).with_keeper(keeper);
    tracing::info!("cgroups: {}", rt.cgroups().describe());
    let exits = rt.exit_events()?;
    let files = FileWatch::new()?;
    let (sink, cgroups) = mpsc::unbounded_channel();
    let mut agent = Agent::new(rt, cfg);
    agent.set_file_watch(files.clone());
    agent.set_cgroup_events(sink);
    Ok((
        agent,
        Wakeups {
            exits,
            files,
            cgroups,
        },
    ))
}

/// Re-executing the daemon in place (`drover daemon-reexec`): the
/// program resolved at start, the descriptors the previous image handed
/// over, and the exec itself (`runtime::reexec`).
pub use crate::runtime::reexec::{
    exec as reexec, generation as reexec_generation, Executable, Handover, ReexecError,
};

/// Call first thing in the daemon (see `runtime::memory`).
pub fn tune_allocator() {
    crate::runtime::memory::tune_allocator();
}

/// Call once what was found at start runs and is on disk.
pub fn release_startup_memory() {
    crate::runtime::memory::release_startup_memory();
}
