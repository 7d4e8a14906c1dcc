//! `drover daemon-reexec` in the daemon: what it keeps from its start to
//! re-execute itself later, and the steps before the exec. The loop
//! (`lifecycle.rs`) runs them once the request's answer is out; the exec
//! itself is `runtime::reexec` (through `agent::host`).
//!
//! The steps: stop accepting (new clients wait in the socket's backlog
//! for the next image, which inherits the listening socket), refuse what
//! was queued but not read, reap what exited meanwhile (this image knows
//! those processes best), put everything on disk, give the connection
//! tasks a turn to write the answers already made, exec. The next image
//! loads the state as a restarted daemon would, but finds every process
//! alive as its own child: nothing is adopted from anyone, no pid or
//! restart count changes, and an exit during the exec is a zombie it
//! reaps with its status.
//!
//! Must not: exec with anything unsaved, or leave the daemon unable to
//! serve if the exec fails (it goes on as before, and says why).

use super::Daemon;
use crate::agent::host::{self, Executable};
use crate::store::Backend;
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

/// What the service manager told the daemon through its environment.
/// `systemd_notify` takes them out of it at start (no pod may inherit
/// them); the next image needs them back to talk to systemd.
const SERVICE_VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// The daemon's part of re-executing itself.
#[derive(Debug)]
pub(crate) struct Reexec {
    /// The program and its argv, as started (see `runtime::reexec`).
    exe: Executable,
    /// [`SERVICE_VARS`] as they were at start.
    service_env: Vec<(OsString, OsString)>,
    /// This image: random, new at every start and every re-exec (what
    /// the CLI waits to see change, `VersionInfo::image_id`).
    pub image_id: String,
    /// Re-execs of this process before this image.
    pub generation: u32,
    /// Asked for and answered; the loop carries it out next.
    pub requested: bool,
}

impl Reexec {
    /// Call first thing in the daemon, before `SystemdNotify::from_env`.
    pub fn at_start() -> Reexec {
        let service_env = SERVICE_VARS
            .iter()
            .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?)))
            .collect();
        Reexec {
            exe: Executable::of_this_process(),
            service_env,
            image_id: uuid::Uuid::new_v4().simple().to_string(),
            generation: host::reexec_generation(),
            requested: false,
        }
    }

    /// The program an exec now would run.
    pub fn target(&self) -> PathBuf {
        self.exe.target()
    }
}

impl Daemon {
    /// Reaps what exited, then writes the whole store. Err: the exec must
    /// not happen (something acknowledged is not on disk).
    pub(crate) fn prepare_reexec(
        &mut self,
        mut backend: Option<&mut (dyn Backend + '_)>,
    ) -> anyhow::Result<()> {
        let mut out = crate::agent::Outbox::default();
        self.reap_all_children(backend.as_deref_mut(), &mut out);
        self.absorb(out);
        match backend {
            Some(b) => {
                self.settle(Some(&mut *b));
                self.store.persist(b)
            }
            None => {
                self.settle(None);
                Ok(())
            }
        }
    }

    /// Replaces this process's image, keeping `fds` (the listening socket,
    /// the state dir's lock) open for the next one. Returns only if the
    /// exec failed, with why.
    pub(crate) fn exec_in_place(&self, fds: &[(&str, BorrowedFd<'_>)]) -> host::ReexecError {
        let r = &self.reexec;
        tracing::info!(
            "re-executing {} in place (pid {})",
            r.target().display(),
            std::process::id()
        );
        host::reexec(&r.exe, r.generation + 1, fds, &r.service_env)
    }
}
