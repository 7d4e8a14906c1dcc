//! The supervision of ONE process as a pure state machine:
//! [`step`]`(state, rules, event, now) -> (state, effects)`.
//!
//! No clock, no store, no runtime: what happened comes in as an
//! [`Event`], what to do goes out as [`Effect`]s, data the executor
//! (`agent::supervise`) applies through the runtime, the store and the
//! timer queue. `rules` is the part of the pod's spec that governs this
//! process (restart policy, grace, probes, notify), read by the executor
//! from the store at each event, so a spec change needs no state
//! migration.
//!
//! Why one process and not one pod: every transition Kubernetes defines
//! is per container (restart counts, backoff, probes, last state); what
//! is per pod (start order, ports, phase, removal once everything is
//! done) is a thin layer above in the executor. Init processes (issue 14)
//! are that layer's business: it sends [`Event::Start`] to each in turn
//! and to the main processes once they all completed; for the process
//! itself only [`Rules::restart`] reads differently (an init process that
//! exits 0 is done, under any policy), a field of `Rules`.
//!
//! # The table
//!
//! Rows are events, columns phases. `-`: ignored (cannot happen, or too
//! late: a timer or probe result of an older run is dropped before the
//! table). "end(R)": the run ended with reason R, and the restart policy
//! and the backoff decide what follows (see [`Phase::BackingOff`]):
//! `Done`, an immediate restart (`Starting`, restart counted), or
//! `BackingOff` with a timer.
//!
//! | event \ phase        | Waiting        | Starting         | Running                                   | Stopping                                  | BackingOff          | Done          |
//! |----------------------|----------------|------------------|-------------------------------------------|-------------------------------------------|---------------------|---------------|
//! | Start                | Starting,spawn | -                | -                                         | -                                         | -                   | -             |
//! | Started              | -              | Running, probes  | -                                         | -                                         | -                   | KILL it       |
//! | StartFailed          | -              | end(StartError…) | -                                         | -                                         | -                   | -             |
//! | Adopted              | Running, watch | -                | -                                         | -                                         | -                   | -             |
//! | Lost                 | end(Unknown, or the recorded exit) | -                | -                                         | -                                         | -                   | -             |
//! | Exited / AdoptedExit | -              | -                | KILL group; end(Completed/Error/Unknown)  | KILL group, sweep; Restart: Starting; Finish: Done; Fail: end(reason) | - | -        |
//! | WatchUnavailable     | -              | -                | poll: arm Recheck (backoff)               | same                                      | -                   | -             |
//! | Watching             | -              | -                | watched by pidfd                          | same                                      | -                   | -             |
//! | Timer Recheck        | -              | -                | polling: recheck                          | same                                      | -                   | -             |
//! | Timer Probe(k)       | -              | -                | re-arm; start check unless one runs       | -                                         | -                   | -             |
//! | Probe result         | -              | -                | readiness: ready; startup ok: arm others; liveness/startup failed: stop, Fail | - | -            | -             |
//! | Notify READY         | -              | -                | ready (no readiness probe); arm watchdog  | -                                         | -                   | -             |
//! | Notify WATCHDOG=1    | -              | -                | note the ping                             | -                                         | -                   | -             |
//! | Notify WATCHDOG=trig | -              | -                | stop, Fail(WatchdogTimeout)               | -                                         | -                   | -             |
//! | Notify STATUS        | -              | -                | record                                    | record                                    | -                   | -             |
//! | Notify MAINPID       | -              | -                | supervise the new pid                     | -                                         | -                   | -             |
//! | Timer Watchdog       | -              | -                | pinged: re-arm; else stop, Fail(Watchdog) | -                                         | -                   | -             |
//! | Timer Grace          | -              | -                | -                                         | once: KILL group, sweep now               | -                   | -             |
//! | Timer Backoff        | -              | -                | -                                         | -                                         | Starting, counted   | -             |
//! | Stop                 | Done           | Done             | Stopping(Finish): TERM, grace             | then := Finish                            | Done                | -             |
//! | Restart              | -              | -                | Stopping(Restart): TERM, grace            | -                                         | Waiting             | Waiting       |
//! | Kill(sig)            | -              | -                | signal the group                          | signal the group                          | -                   | -             |
//!
//! The same table, row by row, is the test in `tests.rs`.
//!
//! Room for what comes next, each a local change:
//! - cgroups (issue 13): [`Effect::Signal`] and [`Effect::Sweep`] name
//!   the process's tree, not a mechanism; the executor turns them into a
//!   cgroup kill. OOMKilled is a field of [`Event::Exited`]'s payload
//!   read by `end_reason` (one match arm).
//! - init processes (issue 14): see above; a `Role` in [`Rules`].
//! - a remote store (cluster mode): the machine never reads the store;
//!   a status write that conflicts is retried by the executor from the
//!   same effects, and a pod arriving through a watch is a first
//!   [`Event::Start`] or [`Event::Adopted`] like any other.

mod checks;
mod ending;
mod step;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forking;

pub use step::{recheck_delay, step};

use super::backoff::BackoffConfig;
use super::probe::{ProbeKind, ProbeResult, ProbeState, ProbeTiming};
use crate::api::{ProcessIdentity, ProcessReason, RestartPolicy, Signal, TerminatedState};
use crate::runtime::ExitReason;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long after its starter exited 0 a `pid_file` process's pid file
/// may take to name a live process of the pod (the forked daemon may
/// write it after its parent exited, as memcached does).
pub const PID_FILE_DEADLINE: Duration = Duration::from_secs(10);

/// Both clocks: monotonic for timers and durations, wall for what users
/// see. Always an argument, never read inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

/// What of the pod's spec governs one process.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Names, for the messages users read.
    pub pod: String,
    pub process: String,
    pub restart: RestartPolicy,
    /// The pod's termination grace period.
    pub grace: Duration,
    pub backoff: BackoffConfig,
    pub notify: bool,
    /// WATCHDOG=1 interval (with `notify`).
    pub watchdog: Option<Duration>,
    /// By [`ProbeKind::index`].
    pub probes: [Option<ProbeTiming>; 3],
    /// A fixed offset within one period for the first liveness check,
    /// different for each pod (no lock-step bursts).
    pub liveness_spread: Duration,
    /// A main process or an init process.
    pub role: Role,
    /// `pid_file`: the process started forks the real one and exits 0;
    /// the file names the process to supervise.
    pub pid_file: Option<PathBuf>,
}

/// What a process is to its pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// One of `processes`: restarted per the restart policy.
    #[default]
    Main,
    /// One of `init_processes`: runs to completion before the pod's
    /// processes start. Exit 0 ends it (Done) under any policy; a failure
    /// is retried with backoff under Always and OnFailure (Kubernetes
    /// treats Always as OnFailure for init containers), and ends the pod
    /// under Never.
    Init,
}

impl Rules {
    pub fn probe(&self, kind: ProbeKind) -> Option<&ProbeTiming> {
        self.probes[kind.index()].as_ref()
    }
}

/// The state of one process across its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Process {
    pub phase: Phase,
    /// Attempts so far (each start or adoption): timers and probe results
    /// carry the attempt they belong to, and older ones are dropped.
    pub run: u64,
    /// Restarts in a row, for the backoff.
    pub consecutive: u32,
    /// Probe and watchdog bookkeeping of the current run.
    pub checks: Checks,
}

impl Process {
    pub fn new() -> Process {
        Process {
            phase: Phase::Waiting,
            run: 0,
            consecutive: 0,
            checks: Checks::default(),
        }
    }

    /// The pid being supervised, if any.
    pub fn pid(&self) -> Option<i32> {
        match &self.phase {
            Phase::Running(run) | Phase::Stopping { run, .. } => Some(run.pid),
            Phase::Forking {
                starter,
                exited: false,
            } => Some(*starter),
            Phase::Forking { exited: true, .. }
            | Phase::Waiting
            | Phase::Starting
            | Phase::BackingOff
            | Phase::Done => None,
        }
    }

    /// Whether a process runs (or is being stopped).
    pub fn is_live(&self) -> bool {
        self.pid().is_some()
    }
}

impl Default for Process {
    fn default() -> Self {
        Process::new()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// To be started when the pod says so ([`Event::Start`]).
    Waiting,
    /// [`Effect::Spawn`] went out; the result comes as `Started` or
    /// `StartFailed`.
    Starting,
    /// A `pid_file` process's starter runs (`exited` false; its pid is
    /// `starter`), or exited 0 and the pid file is awaited (`exited`):
    /// `Started` with the pid the file names makes it Running, anything
    /// else is a failed start.
    Forking {
        starter: i32,
        exited: bool,
    },
    Running(Run),
    /// SIGTERM went to its tree; SIGKILL follows when the grace timer
    /// fires (`killed`). What comes after the exit is `then`.
    Stopping {
        run: Run,
        then: Then,
        killed: bool,
    },
    /// Waiting out the restart backoff (CrashLoopBackOff); the Backoff
    /// timer starts it again.
    BackingOff,
    /// Will not run again (unless restarted by hand).
    Done,
}

/// One run of the process.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub pid: i32,
    /// What makes `pid` this process and not a later holder of the pid.
    pub identity: ProcessIdentity,
    pub since: Instant,
    pub started_at: DateTime<Utc>,
    pub tracking: Tracking,
}

/// How the exit of a run will be noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    /// Our child: SIGCHLD and `reap`, with its status.
    Child,
    /// Not our child (re-adopted): a pidfd, no status.
    Pidfd,
    /// Not our child and no pidfd could be had: a Recheck timer looks at
    /// its identity, with a backoff; `attempt` counts the rechecks.
    Polling { attempt: u32 },
}

/// Why a running process is being stopped, and what comes after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Then {
    /// Start it again at once (`drover restart pod`).
    Restart,
    /// Leave it stopped (pod deleted, or `drover up` halting).
    Finish,
    /// A liveness or startup probe or the watchdog failed: what follows
    /// is up to the restart policy and the backoff, as for a crash.
    Fail {
        reason: ProcessReason,
        message: String,
    },
}

/// Probe and watchdog bookkeeping of one run (reset at each start).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checks {
    /// Results so far, by [`ProbeKind::index`].
    pub probes: [ProbeState; 3],
    /// A check of that kind is running: the next period skips it rather
    /// than pile checks on a hung server.
    pub inflight: [bool; 3],
    /// The startup probe succeeded (or there is none): liveness and
    /// readiness may run.
    pub startup_done: bool,
    /// Last WATCHDOG=1.
    pub last_ping: Option<Instant>,
    /// READY=1 came and the watchdog timer runs.
    pub watchdog_armed: bool,
}

/// A start that failed before exec: typed, not an exit code. Shown as
/// exit code 128 only when written into the pod's status (as before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFailure {
    pub reason: ProcessReason,
    pub message: String,
}

/// The timers of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    Backoff,
    Grace,
    Watchdog,
    Probe(ProbeKind),
    Recheck,
    /// The pid file of a `pid_file` process is overdue.
    PidFile,
}

impl TimerKind {
    pub const ALL: [TimerKind; 8] = [
        TimerKind::Backoff,
        TimerKind::Grace,
        TimerKind::Watchdog,
        TimerKind::Probe(ProbeKind::Startup),
        TimerKind::Probe(ProbeKind::Liveness),
        TimerKind::Probe(ProbeKind::Readiness),
        TimerKind::Recheck,
        TimerKind::PidFile,
    ];
}

/// An sd_notify message from the process's own tree (the executor
/// authenticated the sender).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Watchdog,
    WatchdogTrigger,
    Status(String),
    /// MAINPID=, checked by the executor: same tree, same user, and this
    /// is its identity.
    MainPid {
        pid: i32,
        identity: ProcessIdentity,
    },
}

/// An exit seen by someone else while the daemon was down: the status,
/// and when it was reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedExit {
    pub exit: ExitReason,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Its turn came: start it.
    Start,
    Started {
        pid: i32,
        identity: ProcessIdentity,
    },
    StartFailed(StartFailure),
    /// Found running after a daemon restart or re-exec (identity
    /// verified). `ready`: what its stored status said; a ready process
    /// keeps the checks it had passed (`Machine::resume_checks`).
    Adopted {
        pid: i32,
        identity: ProcessIdentity,
        started_at: DateTime<Utc>,
        ready: bool,
    },
    /// Recorded as running (since `started_at`), gone after a daemon
    /// restart. `recorded`: how it ended, if the keeper reaped it while
    /// no daemon ran (`runtime::keeper`); None: nobody knows.
    Lost {
        started_at: Option<DateTime<Utc>>,
        recorded: Option<RecordedExit>,
    },
    /// Our child ended (reaped, with its status).
    Exited(Exit),
    /// A process that is not our child ended (pidfd or recheck): no
    /// status.
    AdoptedExited,
    /// Its exit cannot be watched now (no descriptor left): poll.
    WatchUnavailable,
    /// It is watched by a pidfd now.
    Watching,
    Timer {
        kind: TimerKind,
        run: u64,
    },
    Probe {
        kind: ProbeKind,
        run: u64,
        result: ProbeResult,
    },
    Notify(Notice),
    /// The pod is deleted, or `drover up` halts: stop for good.
    Stop,
    /// `drover restart pod`.
    Restart,
    /// `drover kill pod --signal S`.
    Kill(Signal),
}

/// How a child ended, as the executor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub reason: ExitReason,
    /// Its cgroup's OOM kill count grew during the run and it died by
    /// SIGKILL: the kernel's OOM killer did it.
    pub oom_killed: bool,
}

impl From<ExitReason> for Exit {
    fn from(reason: ExitReason) -> Exit {
        Exit {
            reason,
            oom_killed: false,
        }
    }
}

/// What the executor is asked to do, in this order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Start a new run (the executor builds the request: env, argv,
    /// log) and report `Started` or `StartFailed`.
    Spawn,
    /// Signal the process's tree: its process group, and with a cgroup
    /// every process in the process's cgroup (SIGKILL to the rest of the
    /// cgroup waits for the pod's grace period while the pod stops).
    Signal {
        pid: i32,
        signal: Signal,
    },
    /// Descendants of the run that just ended which left its group
    /// (double fork + setsid): SIGTERM now and SIGKILL after `grace`, or
    /// SIGKILL now if `grace` is zero. Without a cgroup they are found by
    /// their marker (batched passes over /proc); with one, what is left
    /// in the process's cgroup is killed (at once, as a new run will
    /// share it; while the pod stops, at the end of its grace period).
    Sweep {
        grace: Duration,
    },
    /// Watch a process that is not our child; the executor reports
    /// `WatchUnavailable` if it cannot, `AdoptedExited` if it is gone.
    Watch {
        pid: i32,
        identity: ProcessIdentity,
    },
    /// Is the polled process still the same? `AdoptedExited` if not;
    /// `Watching` or `WatchUnavailable` after trying the pidfd again.
    Recheck {
        pid: i32,
        identity: ProcessIdentity,
    },
    Arm {
        timer: TimerKind,
        at: Instant,
    },
    Cancel(TimerKind),
    /// Run one check of this probe; report a `Probe` event.
    Probe(ProbeKind),
    /// Read the `pid_file` (now, or when it appears): report `Started`
    /// with the pid it names if that is a live process of this process's
    /// tree (its cgroup), else `StartFailed` with why.
    AwaitPidFile,
    Status(StatusChange),
    /// An event on the pod for users (`drover events`, `describe`).
    Event {
        warning: bool,
        reason: &'static str,
        message: String,
    },
}

/// A change to this process's entry of the pod's status.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusChange {
    Running {
        pid: i32,
        identity: ProcessIdentity,
        started_at: DateTime<Utc>,
        ready: bool,
    },
    Ready(bool),
    /// The run ended: `last_state` is `last`, no pid; `terminal` also
    /// makes it the current state (it will not run again).
    Ended {
        last: TerminatedState,
        terminal: bool,
    },
    Waiting {
        reason: ProcessReason,
        message: String,
    },
    /// One more restart (counted when it happens, as Kubernetes does).
    CountRestart,
    NotifyStatus(String),
    MainPid {
        pid: i32,
        identity: ProcessIdentity,
    },
}
