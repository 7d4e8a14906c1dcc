//! Local accounts as the files say: /etc/passwd and /etc/group, read and
//! parsed here, never through NSS (getpwnam, getgrnam).
//!
//! Why not NSS: the first lookup loads NSS modules (libnss_systemd, sss,
//! ldap) into the daemon for its whole life, 0.3 MiB of its resident set,
//! and talks to nscd on the way; a daemon without `user =` units would
//! make no other lookup. The files are where the package's postinst
//! creates the drover group (`addgroup --system`) and where `useradd`
//! puts local users. Users of processes (`user =`, `group =`) still go
//! through NSS in the runtime, where directory-served accounts are
//! expected; a caller known only to a directory is treated by its uid.
//!
//! The parsers are pure (text in, answers out); [`Accounts::read`] is the
//! only I/O.

/// The two files, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    users: Vec<UserEntry>,
    groups: Vec<GroupEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct UserEntry {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

impl Accounts {
    /// /etc/passwd and /etc/group as they are now (a missing or unreadable
    /// file reads as empty: nobody is found in it).
    pub fn read() -> Accounts {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Accounts::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// passwd(5) `name:password:UID:GID:gecos:home:shell` and group(5)
    /// `name:password:GID:member,member`; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let users = passwd
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                Some(UserEntry {
                    name: f.first().filter(|n| !n.is_empty())?.to_string(),
                    uid: f.get(2)?.parse().ok()?,
                    gid: f.get(3)?.parse().ok()?,
                })
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                Some(GroupEntry {
                    name: f.first().filter(|n| !n.is_empty())?.to_string(),
                    gid: f.get(2)?.parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .map(str::trim)
                                .filter(|m| !m.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        Accounts { users, groups }
    }

    /// The name of `uid` (the first entry with it).
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.name.as_str())
    }

    /// The uid of the user `name`, or of a number written for one
    /// (Kubernetes' `runAsUser` habit: `user = "1001"`).
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.uid)
            .or_else(|| name.parse().ok())
    }

    /// The primary gid of `uid` as /etc/passwd says.
    pub fn primary_gid(&self, uid: u32) -> Option<u32> {
        self.users.iter().find(|u| u.uid == uid).map(|u| u.gid)
    }

    /// The gid of the group `name`, or of a number written for one.
    pub fn gid_of(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.gid)
            .or_else(|| name.parse().ok())
    }

    /// Whether the user `uid` belongs to group `gid`: as its primary group
    /// (in /etc/passwd, or `current_gid`, the gid the kernel reports for
    /// the process asking) or as a listed member in /etc/group.
    pub fn in_group(&self, uid: u32, current_gid: u32, gid: u32) -> bool {
        if current_gid == gid || self.primary_gid(uid) == Some(gid) {
            return true;
        }
        let Some(name) = self.user_name(uid) else {
            return false;
        };
        self.groups
            .iter()
            .filter(|g| g.gid == gid)
            .any(|g| g.members.iter().any(|m| m == name))
    }
}

/// The gid of group `name` in /etc/group (see the module doc for why not
/// getgrnam).
pub fn etc_group_gid(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    Accounts::parse("", &text)
        .groups
        .into_iter()
        .find(|g| g.name == name)
        .map(|g| g.gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        alice:x:1001:1001:Alice:/home/alice:/bin/sh\n\
        bob:x:1002:998::/home/bob:/bin/sh\n\
        broken:x:nan:1\n\
        carol:x:1003:1003::/home/carol:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ndrover-old:x:5:\ndrover:x:998:alice, dave\n\
        bad:x:nan:\nalice:x:1001:\ncarol:x:1003:\n";

    #[test]
    fn names_and_numbers() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert_eq!(a.user_name(1001), Some("alice"));
        assert_eq!(a.user_name(4242), None);
        assert_eq!(a.uid_of("bob"), Some(1002));
        assert_eq!(a.uid_of("4242"), Some(4242), "a number stands for itself");
        assert_eq!(a.uid_of("nobody-here"), None);
        assert_eq!(a.uid_of("broken"), None, "a malformed line is skipped");
        assert_eq!(a.gid_of("drover"), Some(998));
        assert_eq!(a.gid_of("drove"), None);
        assert_eq!(a.gid_of("bad"), None);
        assert_eq!(a.gid_of("77"), Some(77));
    }

    #[test]
    fn group_membership_by_list_primary_group_or_current_gid() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert!(a.in_group(1001, 1001, 998), "listed member");
        assert!(a.in_group(1002, 1002, 998), "primary group in /etc/passwd");
        assert!(a.in_group(1003, 998, 998), "the gid the kernel reports");
        assert!(!a.in_group(1003, 1003, 998), "none of the three");
        assert!(!a.in_group(4242, 4242, 998), "unknown uid, other gid");
        assert!(!a.in_group(1001, 1001, 5), "member of another group only");
    }
}
