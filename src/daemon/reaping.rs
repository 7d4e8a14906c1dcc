//! Exited children, written down before they are reaped when it matters.
//!
//! The agent handles exits a batch at a time ([`crate::agent::REAP_BATCH`]),
//! and a turn of the daemon's loop takes batches for at most
//! [`TURN_BUDGET`]: the loop serves API requests and other pods between. An exit that ends
//! a process for good (a Job's pod that succeeded) is held by the agent
//! as a zombie until the store that records it is on disk: a daemon
//! killed in between leaves the zombie, and so the status, to its keeper,
//! and the next daemon does not run the Job's work again. Exits that only
//! count a restart are written with the daemon's other changes, paced.
//!
//! In cluster mode the store is etcd, written asynchronously: nothing is
//! held there (README, "Not yet").

use super::{Daemon, TURN_BUDGET};
use crate::agent::{Outbox, Reaped};
use crate::store::Backend;
use std::time::Instant;

/// The most held exits written one by one in a turn of the loop.
const HELD_PER_TURN: usize = 20;

impl Daemon {
    /// One turn's worth of exited children. `backend`: the single-host
    /// store (None in cluster mode). `reap_more` says whether exits are
    /// left for another turn.
    pub(crate) fn reap_children(
        &mut self,
        mut backend: Option<&mut (dyn Backend + '_)>,
        out: &mut Outbox,
    ) {
        let start = Instant::now();
        let mut held = 0;
        self.reap_more = loop {
            // While writes fail (a full disk) nothing can be made durable:
            // exits are reaped as they come and supervision goes on.
            let hold = backend.is_some() && !self.pacing.failing();
            match self.agent.reap(&mut self.store, Daemon::now(), out, hold) {
                Reaped::All => break false,
                Reaped::More => {}
                Reaped::Held => {
                    if let Some(b) = backend.as_deref_mut() {
                        self.persist_paced(b, "an exit");
                    }
                    self.agent.reap_held();
                    held += 1;
                }
            }
            if start.elapsed() >= TURN_BUDGET || held == HELD_PER_TURN {
                break true;
            }
        };
    }

    /// Every exited child, however many turns it takes (start-up, before
    /// a re-exec).
    pub(crate) fn reap_all_children(
        &mut self,
        mut backend: Option<&mut (dyn Backend + '_)>,
        out: &mut Outbox,
    ) {
        loop {
            self.reap_children(backend.as_deref_mut(), out);
            if !self.reap_more {
                break;
            }
        }
    }
}
