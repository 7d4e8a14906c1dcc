//! The agent on this host: the real runtime, and what the daemon's loop
//! waits on for it. The daemon reaches the OS only through here (and
//! through the agent), never through `runtime` directly.

use super::supervise::{Agent, AgentConfig};
use crate::runtime::{ExitEvent, ExitEvents, LinuxRuntime};
use std::io;

/// The agent the daemon runs.
pub type HostAgent = Agent<LinuxRuntime>;

/// Something for the agent to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// Children may have exited: [`Agent::reap`].
    Reap,
    /// A re-adopted process exited: [`Agent::on_adopted_exit`].
    AdoptedExit(i32),
}

/// The exits the daemon's loop waits on.
pub struct Wakeups(ExitEvents);

impl Wakeups {
    pub async fn next(&mut self) -> Wakeup {
        match self.0.next().await {
            ExitEvent::Children => Wakeup::Reap,
            ExitEvent::Watched(pid) => Wakeup::AdoptedExit(pid),
        }
    }
}

/// Makes this process the supervisor of what it starts (a child
/// subreaper: double-forked grandchildren come back to it) and builds the
/// agent. Call inside the tokio runtime, before anything is spawned.
pub fn start(cfg: AgentConfig) -> io::Result<(HostAgent, Wakeups)> {
    crate::runtime::become_subreaper()?;
    let rt = LinuxRuntime::new();
    let wakeups = Wakeups(rt.exit_events()?);
    Ok((Agent::new(rt, cfg), wakeups))
}

/// Call first thing in the daemon (see `runtime::memory`).
pub fn tune_allocator() {
    crate::runtime::memory::tune_allocator();
}

/// Call once what was found at start runs and is on disk.
pub fn release_startup_memory() {
    crate::runtime::memory::release_startup_memory();
}
