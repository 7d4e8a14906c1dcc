//! Re-executing the daemon in place (`drover daemon-reexec`, and the
//! package's upgrade path): `execve` of the daemon's own program with the
//! same argv, in the same process. The pid does not change, so every pod
//! stays this process's child, and the keeper (its parent) sees nothing.
//!
//! What crosses the exec, and how:
//! - **Descriptors.** Everything the daemon opens is close-on-exec, so
//!   nothing leaks into the new image by accident. What must cross (the
//!   listening control socket, so no client is refused; the state dir's
//!   lock, so no other daemon can take it meanwhile; the keeper's
//!   socket) is made inheritable just before the exec and named in
//!   [`REEXEC_FDS_ENV`] as `NAME=FD,...` ([`Handover`] takes them back,
//!   close-on-exec again). The keeper's socket keeps its own variable,
//!   `DROVER_KEEPER_FD`, and number.
//! - **A marker.** [`REEXEC_ENV`] holds how many times this process has
//!   re-executed: the new image knows it is one (no keeper table to wait
//!   for, processes that are its children already), and a test can see
//!   the new image in /proc/PID/environ.
//! - **Children.** An exit during the exec is not lost: the child waits
//!   as a zombie of this very process (SIGCHLD, ignored by default while
//!   no handler is installed, never reaps). [`reap_own_zombie`] collects
//!   it with its status when the new image looks at the process;
//!   [`is_own_child`] says a live one needs no pidfd (its exit arrives
//!   through SIGCHLD and `reap`, status included).
//!
//! The program is the path this process was started from, read at start
//! ([`Executable::of_this_process`]): after a package upgrade replaced
//! the file, /proc/self/exe names the old, deleted inode, and re-executing
//! means running the new binary at the original path. Only if nothing is
//! there any more does the old image run again, through /proc/self/exe.
//!
//! Decides nothing: the daemon chooses when; this module only does it.

use super::{procfs, ExitReason, KeptExit};
use crate::api::ProcessIdentity;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Set in a re-executed image: how many times this process re-executed
/// itself (1 after the first `daemon-reexec`).
pub const REEXEC_ENV: &str = "DROVER_REEXEC";

/// Set in a re-executed image: the descriptors handed over, by name
/// (`listen=5,lock=7`).
pub const REEXEC_FDS_ENV: &str = "DROVER_REEXEC_FDS";

// The keeper's socket crosses the exec under the number its variable
// already names.
use super::keeper::KEEPER_FD_ENV;

/// The program this process runs, and its arguments, as started.
#[derive(Clone, Debug)]
pub struct Executable {
    /// The path /proc/self/exe named at start.
    pub path: PathBuf,
    /// argv, argv[0] included.
    pub args: Vec<OsString>,
}

impl Executable {
    /// Call at start, before a package upgrade can replace the file (and
    /// /proc/self/exe turns into "PATH (deleted)").
    pub fn of_this_process() -> Executable {
        Executable {
            path: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            args: std::env::args_os().collect(),
        }
    }

    /// What to execute now: the file at the path (the new binary after
    /// an upgrade), or this very image if nothing is there any more.
    pub fn target(&self) -> PathBuf {
        if is_executable(&self.path) {
            self.path.clone()
        } else {
            PathBuf::from("/proc/self/exe")
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How many times this process re-executed itself (0: it did not; this
/// image is the one its parent started).
pub fn generation() -> u32 {
    std::env::var(REEXEC_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The descriptors the previous image of this process handed over.
#[derive(Debug, Default)]
pub struct Handover {
    fds: Vec<(String, OwnedFd)>,
}

impl Handover {
    /// Takes what [`REEXEC_FDS_ENV`] names. Call once, first thing: a
    /// number that is not an open descriptor is skipped (with a warning),
    /// never taken. Each one taken is close-on-exec again.
    pub fn from_env() -> Handover {
        let Ok(text) = std::env::var(REEXEC_FDS_ENV) else {
            return Handover::default();
        };
        let mut fds = vec![];
        for (name, fd) in parse_fds(&text) {
            // Open? (F_GETFD fails with EBADF otherwise.)
            if fcntl(fd, FcntlArg::F_GETFD).is_err() || fd <= 2 {
                tracing::warn!("{REEXEC_FDS_ENV}: {name}={fd} is not an open descriptor");
                continue;
            }
            // SAFETY: the previous image of this process left `fd` open for
            // this one alone, named in REEXEC_FDS_ENV; nothing in this image
            // opened it, and this runs once, so it is owned only here.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = fcntl(owned.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            fds.push((name, owned));
        }
        Handover { fds }
    }

    /// The descriptor handed over as `name`, if any.
    pub fn take(&mut self, name: &str) -> Option<OwnedFd> {
        let i = self.fds.iter().position(|(n, _)| n == name)?;
        Some(self.fds.remove(i).1)
    }
}

/// `listen=5,lock=7` as pairs; malformed items are skipped.
pub fn parse_fds(text: &str) -> Vec<(String, RawFd)> {
    text.split(',')
        .filter_map(|item| {
            let (name, fd) = item.split_once('=')?;
            let fd: RawFd = fd.trim().parse().ok()?;
            (!name.trim().is_empty() && fd >= 0).then(|| (name.trim().to_string(), fd))
        })
        .collect()
}

/// The environment of the next image: this one's, minus the variables
/// this module sets, plus `extra` (which wins over what is there), plus
/// the marker and the descriptors.
pub fn next_environment(
    current: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[(OsString, OsString)],
    generation: u32,
    fds: &[(&str, RawFd)],
) -> Vec<(OsString, OsString)> {
    let ours =
        |k: &OsString| k == REEXEC_ENV || k == REEXEC_FDS_ENV || extra.iter().any(|(e, _)| e == k);
    let mut env: Vec<(OsString, OsString)> =
        current.into_iter().filter(|(k, _)| !ours(k)).collect();
    env.extend(extra.iter().cloned());
    env.push((REEXEC_ENV.into(), generation.to_string().into()));
    if !fds.is_empty() {
        let list: Vec<String> = fds.iter().map(|(n, fd)| format!("{n}={fd}")).collect();
        env.push((REEXEC_FDS_ENV.into(), list.join(",").into()));
    }
    env
}

/// Why the exec did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReexecError {
    #[error("{what} contains a NUL byte")]
    Nul { what: String },
    #[error("making descriptor {fd} ({name}) inheritable: {source}")]
    Inherit {
        name: String,
        fd: RawFd,
        source: io::Error,
    },
    #[error("executing {}: {source}", .path.display())]
    Exec { path: PathBuf, source: io::Error },
}

/// Replaces this process's image with `exe` (same argv), keeping `fds`
/// open under their numbers and the keeper's socket under its own. The
/// environment is [`next_environment`] of this one. Returns only if the
/// exec failed; every descriptor is then close-on-exec again, as before.
///
/// The caller has stopped everything that must not be cut mid-way (the
/// store is on disk): nothing of this image runs after the exec, its
/// other threads included.
pub fn exec(
    exe: &Executable,
    generation: u32,
    fds: &[(&str, BorrowedFd<'_>)],
    extra_env: &[(OsString, OsString)],
) -> ReexecError {
    let raw: Vec<(&str, RawFd)> = fds.iter().map(|(n, fd)| (*n, fd.as_raw_fd())).collect();
    let keeper = keeper_socket();
    // A keeper socket that is gone is not named to the next image: it
    // runs on without a keeper, as this one does.
    let current = std::env::vars_os().filter(|(k, _)| keeper.is_some() || k != KEEPER_FD_ENV);
    let env = next_environment(current, extra_env, generation, &raw);
    let path = exe.target();
    let cstr = |what: &str, bytes: &[u8]| {
        CString::new(bytes).map_err(|_| ReexecError::Nul {
            what: what.to_string(),
        })
    };
    let prepared = (|| {
        let c_path = cstr("the program's path", path.as_os_str().as_bytes())?;
        let args = exe
            .args
            .iter()
            .map(|a| cstr("an argument", a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let env = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstr("an environment variable", &kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ReexecError>((c_path, args, env))
    })();
    let (c_path, args, env) = match prepared {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut inherited: Vec<RawFd> = vec![];
    let all = raw.iter().copied().chain(keeper.map(|fd| ("keeper", fd)));
    for (name, fd) in all {
        if let Err(e) = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())) {
            restore_cloexec(&inherited);
            return ReexecError::Inherit {
                name: name.to_string(),
                fd,
                source: e.into(),
            };
        }
        inherited.push(fd);
    }
    let source = match nix::unistd::execve(&c_path, &args, &env) {
        Ok(never) => match never {},
        Err(e) => io::Error::from(e),
    };
    restore_cloexec(&inherited);
    ReexecError::Exec { path, source }
}

/// The descriptor [`KEEPER_FD_ENV`] names, if it still is this daemon's
/// end of the keeper's socket: a socket whose peer is this process's
/// parent (the keeper made the pair). A number whose socket was closed
/// (the keeper link failed at start) may name another file by now: that
/// one must not be made inheritable.
fn keeper_socket() -> Option<RawFd> {
    let fd: RawFd = std::env::var(KEEPER_FD_ENV).ok()?.parse().ok()?;
    if fd <= 2 || fcntl(fd, FcntlArg::F_GETFD).is_err() {
        return None;
    }
    // SAFETY: `fd` is open (checked above) and only borrowed for this
    // call, during which nothing in this thread closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let peer =
        nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    (peer.pid() == nix::unistd::getppid().as_raw()).then_some(fd)
}

fn restore_cloexec(fds: &[RawFd]) {
    for fd in fds {
        let _ = fcntl(*fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
}

/// Whether `pid` is this process's own child, the process `identity`
/// (alive or a zombie): its exit comes through SIGCHLD and `reap`, with
/// its status. After a re-exec every pod the previous image started is.
pub fn is_own_child(pid: i32, identity: &ProcessIdentity) -> bool {
    procfs::stat(pid).is_some_and(|st| {
        st.ppid as u32 == std::process::id()
            && st.start_ticks == identity.start_ticks
            && procfs::boot_id() == identity.boot_id
    })
}

/// If `pid` is a zombie child of this process and the process
/// `identity`, reaps it and returns how it ended (at: now, give or take
/// the exec). A re-executed image calls this for a recorded process it
/// finds dead: it exited during the exec, and nobody else could reap it.
pub fn reap_own_zombie(pid: i32, identity: &ProcessIdentity) -> Option<KeptExit> {
    let st = procfs::stat(pid)?;
    if !st.is_zombie() || !is_own_child(pid, identity) {
        return None;
    }
    // A zombie child of ours (checked above): reaped at once, that one.
    let status = super::reaping::reap_pid(pid)?;
    let exit: ExitReason = super::linux::decode_status(status)?;
    Some(KeptExit {
        exit,
        at: std::time::SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_named_in_one_variable() {
        assert_eq!(
            parse_fds("listen=5,lock=7"),
            [("listen".to_string(), 5), ("lock".to_string(), 7)]
        );
        assert_eq!(
            parse_fds("listen=x,=3,lock=-1,ok=4"),
            [("ok".to_string(), 4)]
        );
        assert!(parse_fds("").is_empty());
    }

    #[test]
    fn the_next_environment_replaces_the_markers_and_keeps_the_rest() {
        let current = [
            ("PATH", "/usr/bin"),
            (REEXEC_ENV, "1"),
            (REEXEC_FDS_ENV, "listen=9"),
            ("NOTIFY_SOCKET", "stale"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let extra = [("NOTIFY_SOCKET".into(), "/run/systemd/notify".into())];
        let env = next_environment(current, &extra, 2, &[("listen", 5), ("lock", 7)]);
        let get = |k: &str| -> Vec<&OsString> {
            env.iter().filter(|(n, _)| n == k).map(|(_, v)| v).collect()
        };
        assert_eq!(get("PATH"), [&OsString::from("/usr/bin")]);
        assert_eq!(get(REEXEC_ENV), [&OsString::from("2")]);
        assert_eq!(get(REEXEC_FDS_ENV), [&OsString::from("listen=5,lock=7")]);
        assert_eq!(
            get("NOTIFY_SOCKET"),
            [&OsString::from("/run/systemd/notify")]
        );
        let none = next_environment(vec![], &[], 1, &[]);
        assert_eq!(none, [(OsString::from(REEXEC_ENV), OsString::from("1"))]);
    }

    #[test]
    fn the_target_is_the_path_while_a_program_is_there() {
        let exe = Executable {
            path: "/bin/sh".into(),
            args: vec![],
        };
        assert_eq!(exe.target(), PathBuf::from("/bin/sh"));
        let gone = Executable {
            path: "/nonexistent/drover".into(),
            args: vec![],
        };
        assert_eq!(gone.target(), PathBuf::from("/proc/self/exe"));
    }

    #[test]
    // The child is reaped below by waitpid(pid), which is the point.
    #[allow(clippy::zombie_processes)]
    fn a_zombie_child_is_reaped_with_its_status_and_a_stranger_is_not() {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let identity = procfs::identity(pid, &procfs::boot_id()).unwrap();
        // Wait (WNOWAIT: left a zombie) for it to exit.
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as u32,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(r, 0);
        assert!(is_own_child(pid, &identity));
        let other = ProcessIdentity {
            start_ticks: identity.start_ticks + 1,
            ..identity.clone()
        };
        assert!(reap_own_zombie(pid, &other).is_none(), "another process");
        let kept = reap_own_zombie(pid, &identity).expect("reaped");
        assert_eq!(kept.exit, ExitReason::Code(7));
        assert!(procfs::stat(pid).is_none(), "reaped");
        assert!(reap_own_zombie(pid, &identity).is_none());
        // PID 1 is nobody's child here.
        let init = procfs::identity(1, &procfs::boot_id()).unwrap();
        assert!(!is_own_child(1, &init));
        assert!(reap_own_zombie(1, &init).is_none());
    }
}
