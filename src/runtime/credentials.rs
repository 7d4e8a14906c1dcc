//! Who a process runs as: resolving `user`/`group` (names or numbers) into
//! uid, gid and supplementary groups BEFORE the child is started.
//!
//! Lookups go through NSS (getpwnam_r, getgrouplist), which may allocate,
//! take locks or talk to LDAP: none of that is allowed between clone and
//! exec, so the child only receives the finished numbers (see
//! `child.rs`).

use super::SpawnError;
use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::io;

/// The finished numbers the child switches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups (what initgroups would set), primary gid
    /// included.
    pub groups: Vec<libc::gid_t>,
}

fn lookup_user(user: &str) -> io::Result<Option<User>> {
    if let Some(u) = User::from_name(user)? {
        return Ok(Some(u));
    }
    match user.parse::<u32>() {
        Ok(uid) => Ok(User::from_uid(Uid::from_raw(uid))?),
        Err(_) => Ok(None),
    }
}

fn lookup_group(group: &str) -> io::Result<Option<libc::gid_t>> {
    if let Some(g) = Group::from_name(group)? {
        return Ok(Some(g.gid.as_raw()));
    }
    match group.parse::<u32>() {
        // A numeric gid needs no entry in /etc/group to be set.
        Ok(gid) => Ok(Some(
            Group::from_gid(Gid::from_raw(gid))?.map_or(gid, |g| g.gid.as_raw()),
        )),
        Err(_) => Ok(None),
    }
}

/// Resolves the request's user and group. `Ok(None)`: nothing to change.
///
/// - user by name (or a number with a passwd entry): its uid, its primary
///   gid (or `group`), and its supplementary groups from getgrouplist;
/// - a number without a passwd entry (Kubernetes' `runAsUser` habit):
///   that uid, gid = `group` or else the same number (never root's gid 0,
///   Docker's trap), no supplementary groups;
/// - group only: the daemon's uid with that gid and no supplementary
///   groups.
pub(crate) fn resolve(
    command: &str,
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Credentials>, SpawnError> {
    let io_err = |source: io::Error| SpawnError::Io {
        command: command.to_string(),
        source,
    };
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let group_gid = match group {
        Some(g) => {
            Some(
                lookup_group(g)
                    .map_err(io_err)?
                    .ok_or_else(|| SpawnError::GroupNotFound {
                        group: g.to_string(),
                    })?,
            )
        }
        None => None,
    };
    let creds = match user {
        None => {
            let gid = group_gid.expect("group is set when user is not");
            Credentials {
                uid: nix::unistd::geteuid().as_raw(),
                gid,
                groups: vec![gid],
            }
        }
        Some(name) => match lookup_user(name).map_err(io_err)? {
            Some(pw) => {
                let gid = group_gid.unwrap_or(pw.gid.as_raw());
                let cname = CString::new(pw.name.as_str()).map_err(|e| io_err(e.into()))?;
                let groups = nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
                    .map_err(|e| io_err(e.into()))?
                    .into_iter()
                    .map(|g| g.as_raw())
                    .collect();
                Credentials {
                    uid: pw.uid.as_raw(),
                    gid,
                    groups,
                }
            }
            None => match name.parse::<u32>() {
                Ok(uid) => {
                    let gid = group_gid.unwrap_or(uid);
                    Credentials {
                        uid,
                        gid,
                        groups: vec![gid],
                    }
                }
                Err(_) => {
                    return Err(SpawnError::UserNotFound {
                        user: name.to_string(),
                    })
                }
            },
        },
    };
    let who = user.or(group).unwrap_or_default();
    Ok(must_switch(&creds, who).map_err(io_err)?.then_some(creds))
}

/// Without root, switching identity fails with EPERM in the child: say so
/// before starting it. The exception is a "switch" to ourselves (a
/// developer running `drover up` with `user = "$USER"`), which is a no-op.
fn must_switch(creds: &Credentials, who: &str) -> io::Result<bool> {
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if euid == 0 {
        return Ok(true);
    }
    if creds.uid == euid && creds.gid == egid {
        return Ok(false);
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("running as \"{who}\" needs root (drover runs as uid {euid})"),
    ))
}

/// HOME, USER, LOGNAME and SHELL for a user (name or uid), as login(1)
/// would set them; None if the user has no passwd entry. The runtime never
/// adds these itself (the agent builds the environment, and the child gets
/// exactly that); this is the agent's helper for doing so.
pub fn user_env(user: &str) -> Option<Vec<(String, String)>> {
    let pw = lookup_user(user).ok()??;
    Some(vec![
        ("HOME".to_string(), pw.dir.to_string_lossy().into_owned()),
        ("USER".to_string(), pw.name.clone()),
        ("LOGNAME".to_string(), pw.name),
        ("SHELL".to_string(), pw.shell.to_string_lossy().into_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(user: &str) -> Vec<(String, String)> {
        user_env(user).unwrap_or_else(|| panic!("{user} has a passwd entry"))
    }

    #[test]
    fn user_env_by_name_and_number() {
        let nobody = env_of("nobody");
        assert_eq!(
            nobody,
            vec![
                ("HOME".to_string(), "/nonexistent".to_string()),
                ("USER".to_string(), "nobody".to_string()),
                ("LOGNAME".to_string(), "nobody".to_string()),
                ("SHELL".to_string(), "/usr/sbin/nologin".to_string()),
            ]
        );
        assert_eq!(env_of("65534"), nobody);
        assert_eq!(env_of("0")[0], ("HOME".to_string(), "/root".to_string()));
        assert_eq!(user_env("no-such-user-drover"), None);
        assert_eq!(user_env("4000000000"), None);
    }

    #[test]
    fn resolve_users_and_groups() {
        assert_eq!(resolve("x", None, None).unwrap(), None);
        let nobody = resolve("x", Some("nobody"), None).unwrap().unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
        assert!(nobody.groups.contains(&65534));
        let by_number = resolve("x", Some("65534"), Some("daemon"))
            .unwrap()
            .unwrap();
        assert_eq!((by_number.uid, by_number.gid), (65534, 1));
        // A uid without a passwd entry: its own number as gid, never 0.
        let bare = resolve("x", Some("4242"), None).unwrap().unwrap();
        assert_eq!(
            bare,
            Credentials {
                uid: 4242,
                gid: 4242,
                groups: vec![4242]
            }
        );
        let bare_gid = resolve("x", Some("nobody"), Some("4243")).unwrap().unwrap();
        assert_eq!(bare_gid.gid, 4243);
        assert!(matches!(
            resolve("x", Some("no-such-user-drover"), None),
            Err(SpawnError::UserNotFound { user }) if user == "no-such-user-drover"
        ));
        assert!(matches!(
            resolve("x", Some("nobody"), Some("no-such-group-drover")),
            Err(SpawnError::GroupNotFound { group }) if group == "no-such-group-drover"
        ));
    }
}
