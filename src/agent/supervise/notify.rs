//! Who may speak for a pod process over sd_notify, decided from kernel
//! facts only (issue 10): the sender's pid and uid as SCM_CREDENTIALS
//! stamped them, and its session as /proc says.
//!
//! - The sender must be in the process's own tree: the process itself,
//!   or a process of the session it leads (every process drover starts
//!   leads its own session; `systemd-notify` run from its shell script is
//!   in it). A cgroup per pod will replace the session.
//! - It must run as the process's user, or as root.
//! - MAINPID= is honoured only for a process of that same session running
//!   as that same user, as systemd does; never for a process elsewhere.
//!
//! Anything else is dropped with a warning. A process that left the
//! session (setsid, a classic double-forking daemon) cannot notify until
//! pods have cgroups: `pid_file` is the way for those.

use super::*;
use crate::agent::notify::{Notification, NotifyMsg};
use crate::agent::process::Notice;
use crate::runtime::ProcessFacts;

/// Why a message is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The sender is in no supervised process's session (or is gone).
    NotInAPodTree,
    /// In the tree, but running as another user.
    WrongUser { sender: u32, owner: u32 },
}

/// Whether a sender may speak for a run: same session, and the run's
/// user or root. `sender_uid` is the kernel-stamped one.
pub fn authorize(
    sender_uid: u32,
    sender: Option<ProcessFacts>,
    run_session: i32,
    owner_uid: u32,
) -> Result<(), Refusal> {
    match sender {
        Some(f) if f.session == run_session => {}
        _ => return Err(Refusal::NotInAPodTree),
    }
    if sender_uid == owner_uid || sender_uid == 0 {
        Ok(())
    } else {
        Err(Refusal::WrongUser {
            sender: sender_uid,
            owner: owner_uid,
        })
    }
}

/// Whether `MAINPID=` may name `target`: in the run's session, as the
/// run's user.
pub fn may_become_main(target: Option<ProcessFacts>, run_session: i32, owner_uid: u32) -> bool {
    target.is_some_and(|t| t.session == run_session && t.uid == owner_uid)
}

impl<R: ProcessRuntime> Agent<R> {
    pub fn on_notify(&mut self, store: &mut Store, n: Notification, now: Now, out: &mut Outbox) {
        // The main process itself needs no /proc lookup (and cannot have
        // vanished in between).
        let main = self.by_pid.get(&n.pid).cloned();
        let sender = self.rt.facts(n.pid);
        let found = main.clone().or_else(|| {
            sender
                .as_ref()
                .and_then(|f| self.by_session.get(&f.session).cloned())
        });
        let Some((name, idx)) = found else {
            tracing::warn!(
                "notify message from pid {} (uid {}) dropped: not a process of any pod",
                n.pid,
                n.uid
            );
            return;
        };
        let Some(pid) = self.pods.get(&name).and_then(|rt| rt.procs[idx].pid()) else {
            return;
        };
        let session = self.pods[&name].sessions[idx].unwrap_or(pid);
        let Some(owner) = self.rt.facts(pid).map(|f| f.uid) else {
            return;
        };
        let sender = if main.is_some() {
            Some(ProcessFacts {
                session,
                uid: n.uid,
            })
        } else {
            sender
        };
        if let Err(refusal) = authorize(n.uid, sender, session, owner) {
            tracing::warn!(
                "notify message from pid {} (uid {}) for pod {name} dropped: {refusal:?}",
                n.pid,
                n.uid
            );
            return;
        }
        for msg in n.messages {
            let notice = match msg {
                NotifyMsg::Ready => Notice::Ready,
                NotifyMsg::Status(text) => Notice::Status(text),
                NotifyMsg::Watchdog => Notice::Watchdog,
                NotifyMsg::WatchdogTrigger => Notice::WatchdogTrigger,
                NotifyMsg::MainPid(target) => {
                    let facts = self.rt.facts(target);
                    let identity = self.rt.identity(target);
                    match identity {
                        Some(identity) if may_become_main(facts, session, owner) => {
                            Notice::MainPid {
                                pid: target,
                                identity,
                            }
                        }
                        _ => {
                            tracing::warn!(
                                "MAINPID={target} from pid {} for pod {name} refused: \
                                 not a process of that pod running as its user",
                                n.pid
                            );
                            continue;
                        }
                    }
                }
                NotifyMsg::Other(_) => continue,
            };
            self.dispatch(store, &name, idx, Event::Notify(notice), now, out);
        }
        self.flush(store, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(session: i32, uid: u32) -> Option<ProcessFacts> {
        Some(ProcessFacts { session, uid })
    }

    #[test]
    fn senders_are_judged_by_session_and_uid() {
        // (sender uid, sender facts, run session, owner uid) -> verdict
        let cases = [
            (1000, facts(500, 1000), 500, 1000, Ok(())),
            (0, facts(500, 0), 500, 1000, Ok(())),
            (
                1001,
                facts(500, 1001),
                500,
                1000,
                Err(Refusal::WrongUser {
                    sender: 1001,
                    owner: 1000,
                }),
            ),
            (
                1000,
                facts(600, 1000),
                500,
                1000,
                Err(Refusal::NotInAPodTree),
            ),
            (1000, None, 500, 1000, Err(Refusal::NotInAPodTree)),
            (0, facts(600, 0), 500, 0, Err(Refusal::NotInAPodTree)),
        ];
        for (uid, sender, session, owner, want) in cases {
            assert_eq!(
                authorize(uid, sender, session, owner),
                want,
                "{uid} {sender:?} {session} {owner}"
            );
        }
    }

    #[test]
    fn mainpid_must_be_of_the_same_tree_and_user() {
        assert!(may_become_main(facts(500, 1000), 500, 1000));
        assert!(!may_become_main(facts(1, 0), 500, 1000), "init, root");
        assert!(
            !may_become_main(facts(500, 0), 500, 1000),
            "root in the tree"
        );
        assert!(
            !may_become_main(facts(600, 1000), 500, 1000),
            "same user, elsewhere"
        );
        assert!(!may_become_main(None, 500, 1000), "gone");
    }
}
