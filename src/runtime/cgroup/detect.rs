//! Finding a cgroup hierarchy drover may use, at daemon start.
//!
//! Pure first: [`candidates`] reads /proc/self/mountinfo and
//! /proc/self/cgroup (given as text) into the hierarchies this process
//! sits in, and [`order`] ranks v2 against v1. Then the side effects:
//! [`setup_v2`] / [`setup_v1`] make the instance root (`drover-NAME`)
//! inside the cgroup the daemon was started in: under systemd with
//! `Delegate=yes` that is the service's own, delegated subtree; elsewhere
//! (root on a host without systemd, this build machine) the daemon's
//! cgroup in each hierarchy. Nesting there, never at the top, keeps pods
//! under whatever limits the daemon itself was given.

use super::controller::Controllers;
use super::hierarchy::{make_dir, read, write, Hierarchy};
use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy this process belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Our own cgroup's directory in the mounted cgroupfs.
    pub own: PathBuf,
    /// Our own cgroup as /proc/self/cgroup names it ("/" for the root).
    pub own_in_hierarchy: String,
    /// v1: the hierarchy's controllers that drover uses. v2: unknown
    /// here (read from `own/cgroup.controllers` by the caller).
    pub controllers: Controllers,
    /// The middle field of the /proc/self/cgroup line ("" for v2).
    pub proc_key: String,
}

/// What /proc says about this process's cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Candidates {
    pub v2: Option<Candidate>,
    /// One per hierarchy holding a controller drover uses, cgroup v1.
    pub v1: Vec<Candidate>,
}

/// The hierarchies this process sits in, from the text of
/// /proc/self/mountinfo and /proc/self/cgroup. A hierarchy mounted only
/// below our own cgroup's ancestor (a container's view) is reachable when
/// the mount's root is a prefix of our path; otherwise it is left out.
pub(crate) fn candidates(mountinfo: &str, proc_cgroup: &str) -> Candidates {
    let lines: Vec<(&str, &str)> = proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_id, key, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((key, path))
        })
        .collect();
    let mut found = Candidates::default();
    for m in mountinfo.lines().filter_map(parse_mount) {
        let v2 = m.fstype == "cgroup2";
        let controllers = Controllers::parse(&m.superopts).intersect(Controllers::V1_WANTED);
        if !v2 && (m.fstype != "cgroup" || controllers.is_empty()) {
            continue;
        }
        let line = lines.iter().find(|(key, _)| {
            if v2 {
                key.is_empty()
            } else {
                !key.is_empty() && Controllers::parse(key) == Controllers::parse(&m.superopts)
            }
        });
        let Some((key, path)) = line else { continue };
        let Some(own) = own_dir(&m.point, &m.root, path) else {
            continue;
        };
        let c = Candidate {
            own,
            own_in_hierarchy: path.to_string(),
            controllers: if v2 { Controllers::NONE } else { controllers },
            proc_key: key.to_string(),
        };
        if v2 {
            found.v2.get_or_insert(c);
        } else if !found.v1.iter().any(|o| o.proc_key == c.proc_key) {
            found.v1.push(c);
        }
    }
    found
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    superopts: String,
}

/// One mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS`.
fn parse_mount(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = unescape(l.nth(3)?);
    let point = PathBuf::from(unescape(l.next()?));
    let mut r = right.split(' ');
    let fstype = r.next()?.to_string();
    let superopts = r.nth(1).unwrap_or_default().to_string();
    Some(Mount {
        root,
        point,
        fstype,
        superopts,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where cgroup `path` (as /proc/self/cgroup names it) is in a mount of
/// the hierarchy whose root is `root`.
fn own_dir(point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let rest = if root == "/" {
        path
    } else {
        let r = path.strip_prefix(root)?;
        if !(r.is_empty() || r.starts_with('/')) {
            return None;
        }
        r
    };
    Some(point.join(rest.trim_start_matches('/')))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V1,
}

/// Which hierarchy to try first: the one offering more of the limit
/// controllers (memory, cpu, pids), v2 on a tie (it also kills a tree
/// in one write and reports emptiness as an event). `None`: not mounted.
pub(crate) fn order(v2_limits: Option<u32>, v1_limits: Option<u32>) -> Vec<Version> {
    match (v2_limits, v1_limits) {
        (Some(a), Some(b)) if b > a => vec![Version::V1, Version::V2],
        (Some(_), Some(_)) => vec![Version::V2, Version::V1],
        (Some(_), None) => vec![Version::V2],
        (None, Some(_)) => vec![Version::V1],
        (None, None) => vec![],
    }
}

/// The controllers a v2 cgroup offers its children (`cgroup.controllers`).
pub(crate) fn v2_available(c: &Candidate) -> Controllers {
    read(&c.own.join("cgroup.controllers"))
        .map(|t| Controllers::parse(&t))
        .unwrap_or_default()
}

/// Where v2 pods go, relative to the daemon's own cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum V2Base {
    /// The instance root goes in the daemon's own cgroup (the hierarchy
    /// root, or one the daemon moves out of first: `leave` = true).
    Own { leave: bool },
    /// Beside the daemon: in the delegated cgroup its own is a leaf of
    /// (systemd's `DelegateSubgroup=`), which already passes controllers
    /// down. Nothing moves, and a restarted daemon is put back into its
    /// leaf by systemd.
    Parent,
}

/// The v2 rule that shapes this: a cgroup other than the root that
/// passes controllers to its children may hold no process itself.
/// - own is the root: pods below it;
/// - own is a leaf of a delegated cgroup (systemd marks delegated
///   cgroups with the `trusted.delegate` xattr): pods beside the daemon;
/// - own is delegated itself (systemd before 254 has no
///   `DelegateSubgroup=`), or unmarked with nothing else in it: the
///   daemon moves into a leaf `own/NAME-daemon` and pods go below own.
///   Hazard: systemd then cannot restart the service into `own` while
///   pods live (EBUSY): see the module docs;
/// - else (a login session: other processes live in own): refused.
pub(crate) fn v2_base(
    own_is_root: bool,
    delegated: Delegation,
    others_in_own: usize,
) -> Result<V2Base, String> {
    if own_is_root {
        return Ok(V2Base::Own { leave: false });
    }
    match delegated {
        Delegation::Parent => Ok(V2Base::Parent),
        _ if others_in_own > 0 => Err(format!(
            "the daemon's cgroup holds {others_in_own} other process(es), so controllers \
             cannot be passed below it; run drover in a cgroup of its own (the packaged \
             systemd unit has Delegate=yes; by hand: systemd-run --scope -p Delegate=yes ...)"
        )),
        Delegation::Own | Delegation::None => Ok(V2Base::Own { leave: true }),
    }
}

/// Which cgroup systemd marked as delegated to us, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delegation {
    None,
    Own,
    Parent,
}

/// systemd (251+) sets `trusted.delegate` (and, unprivileged,
/// `user.delegate`) on the cgroups it delegates.
fn is_marked_delegated(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no NUL");
        let mut buf = [0u8; 8];
        // SAFETY: valid NUL-terminated strings and buffer.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        n > 0 && buf[0] == b'1'
    })
}

fn delegation(c: &Candidate) -> Delegation {
    if is_marked_delegated(&c.own) {
        Delegation::Own
    } else if c.own.parent().is_some_and(is_marked_delegated) {
        Delegation::Parent
    } else {
        Delegation::None
    }
}

/// Makes the v2 instance root `NAME` with every limit controller on
/// offer passed down to pods ([`v2_base`] says where). Err: why v2
/// cannot be used.
pub(crate) fn setup_v2(c: &Candidate, name: &str) -> Result<Hierarchy, String> {
    let c = &out_of_own_leaf(c, name);
    let why = |e: super::CgroupError| format!("cgroup v2: {e}");
    let own_is_root = c.own_in_hierarchy == "/";
    let me = std::process::id() as i32;
    let others = if own_is_root {
        0
    } else {
        let procs = read(&c.own.join("cgroup.procs")).map_err(why)?;
        super::hierarchy::parse_pids(&procs)
            .into_iter()
            .filter(|p| *p != me)
            .count()
    };
    let base =
        v2_base(own_is_root, delegation(c), others).map_err(|e| format!("cgroup v2: {e}"))?;
    let (base_dir, base_in_hierarchy) = match base {
        V2Base::Parent => (
            c.own.parent().expect("not the root").to_path_buf(),
            parent_cgroup_path(&c.own_in_hierarchy),
        ),
        V2Base::Own { .. } => (c.own.clone(), c.own_in_hierarchy.clone()),
    };
    let available = v2_available(&Candidate {
        own: base_dir.clone(),
        ..c.clone()
    })
    .intersect(Controllers::LIMITS);
    let enabled = read(&base_dir.join("cgroup.subtree_control"))
        .map(|t| Controllers::parse(&t))
        .map_err(why)?;
    let to_enable = Controllers::of(
        &available
            .iter()
            .filter(|x| !enabled.contains(*x))
            .collect::<Vec<_>>(),
    );
    if base == (V2Base::Own { leave: true }) && !to_enable.is_empty() {
        let leaf = c.own.join(format!("{name}-daemon"));
        make_dir(&leaf).map_err(why)?;
        write(&leaf.join("cgroup.procs"), &me.to_string()).map_err(why)?;
    }
    enable(&base_dir, to_enable).map_err(why)?;
    let root = base_dir.join(name);
    make_dir(&root).map_err(why)?;
    enable(&root, available).map_err(why)?;
    Ok(Hierarchy {
        controllers: available,
        root,
        root_in_hierarchy: join_cgroup_path(&base_in_hierarchy, name),
        proc_key: String::new(),
    })
}

/// The daemon's cgroup as it was before the daemon moved itself into its
/// leaf `NAME-daemon` ([`v2_base`]): a daemon that re-executed itself
/// in place (`runtime::reexec`) starts out in that leaf, and must find
/// the same instance root as before, not one below its leaf.
pub(crate) fn out_of_own_leaf(c: &Candidate, name: &str) -> Candidate {
    let leaf = format!("{name}-daemon");
    let in_leaf = c.own.file_name().is_some_and(|n| *n == *leaf)
        && c.own_in_hierarchy
            .trim_end_matches('/')
            .ends_with(&format!("/{leaf}"));
    match c.own.parent() {
        Some(parent) if in_leaf => Candidate {
            own: parent.to_path_buf(),
            own_in_hierarchy: parent_cgroup_path(&c.own_in_hierarchy),
            ..c.clone()
        },
        _ => c.clone(),
    }
}

fn parent_cgroup_path(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((parent, _)) => parent.to_string(),
    }
}

/// `+memory +cpu ...` into `dir/cgroup.subtree_control`.
pub(crate) fn enable(dir: &Path, controllers: Controllers) -> Result<(), super::CgroupError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let words: Vec<String> = controllers
        .iter()
        .map(|c| format!("+{}", c.name()))
        .collect();
    write(&dir.join("cgroup.subtree_control"), &words.join(" "))
}

/// Makes `NAME` in each v1 hierarchy that holds a controller drover
/// uses. Hierarchies that refuse (permission, read-only) are left out;
/// Err only when none is left.
pub(crate) fn setup_v1(cands: &[Candidate], name: &str) -> Result<Vec<Hierarchy>, String> {
    let mut made = Vec::new();
    let mut errors = Vec::new();
    for c in cands {
        let root = c.own.join(name);
        match make_dir(&root) {
            Ok(_) => made.push(Hierarchy {
                controllers: c.controllers,
                root,
                root_in_hierarchy: join_cgroup_path(&c.own_in_hierarchy, name),
                proc_key: c.proc_key.clone(),
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if made.is_empty() {
        errors.dedup();
        let detail = if errors.is_empty() {
            "no hierarchy with memory, cpu, pids, cpuacct or freezer is mounted".to_string()
        } else {
            errors.join(", ")
        };
        return Err(format!("cgroup v1: {detail}"));
    }
    Ok(made)
}

/// The v1 controllers all candidates offer together.
pub(crate) fn v1_offered(cands: &[Candidate]) -> Controllers {
    cands
        .iter()
        .fold(Controllers::NONE, |s, c| s.union(c.controllers))
}

fn join_cgroup_path(parent: &str, name: &str) -> String {
    format!("{}/{name}", parent.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cgroup::Controller;

    #[test]
    fn a_daemon_in_its_own_leaf_finds_the_cgroup_it_left() {
        let c = |own: &str, in_h: &str| Candidate {
            own: PathBuf::from(own),
            own_in_hierarchy: in_h.to_string(),
            controllers: Controllers::default(),
            proc_key: String::new(),
        };
        let leaf = c(
            "/sys/fs/cgroup/system.slice/drover.service/drover-ab12-daemon",
            "/system.slice/drover.service/drover-ab12-daemon",
        );
        let left = out_of_own_leaf(&leaf, "drover-ab12");
        assert_eq!(
            left.own,
            PathBuf::from("/sys/fs/cgroup/system.slice/drover.service")
        );
        assert_eq!(left.own_in_hierarchy, "/system.slice/drover.service");
        // Another instance's leaf, or no leaf at all: as it is.
        let other = out_of_own_leaf(&leaf, "drover-cd34");
        assert_eq!(other.own, leaf.own);
        let plain = c(
            "/sys/fs/cgroup/system.slice/drover.service",
            "/system.slice/drover.service",
        );
        assert_eq!(out_of_own_leaf(&plain, "drover-ab12").own, plain.own);
    }

    /// This build machine: v1 controllers in their own hierarchies (cpu
    /// and cpuacct apart), the daemon's memory cgroup nested, a hybrid
    /// v2 mount with no controllers.
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/bba9
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_host_offers_every_v1_controller_and_an_empty_v2() {
        let c = candidates(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let v2 = c.v2.expect("v2 mount");
        assert_eq!(v2.own, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.own_in_hierarchy, "/");
        let v1: Vec<(String, &Path)> =
            c.v1.iter()
                .map(|c| (c.controllers.to_string(), c.own.as_path()))
                .collect();
        assert_eq!(
            v1,
            vec![
                ("cpu".to_string(), Path::new("/sys/fs/cgroup/cpu")),
                ("cpuacct".to_string(), Path::new("/sys/fs/cgroup/cpuacct")),
                (
                    "memory".to_string(),
                    Path::new("/sys/fs/cgroup/memory/process_api/bba9")
                ),
                ("freezer".to_string(), Path::new("/sys/fs/cgroup/freezer")),
                ("pids".to_string(), Path::new("/sys/fs/cgroup/pids")),
            ]
        );
        assert_eq!(v1_offered(&c.v1), Controllers::V1_WANTED);
    }

    #[test]
    fn debian_with_systemd_is_pure_v2_in_the_service_cgroup() {
        let mountinfo = "25 20 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let cgroup = "0::/system.slice/drover.service\n";
        let c = candidates(mountinfo, cgroup);
        let v2 = c.v2.unwrap();
        assert_eq!(
            v2.own,
            PathBuf::from("/sys/fs/cgroup/system.slice/drover.service")
        );
        assert_eq!(v2.own_in_hierarchy, "/system.slice/drover.service");
        assert!(c.v1.is_empty());
    }

    #[test]
    fn co_mounted_controllers_and_container_mount_roots() {
        // cpu,cpuacct together; a container whose mounts show only its
        // own subtree (mount root = its cgroup); a mount point with a space.
        let mountinfo = "\
50 40 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
51 40 0:41 /docker/abc /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory
52 40 0:42 /other /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let cgroup = "3:pids:/docker/abc\n2:memory:/docker/abc/sub\n1:cpu,cpuacct:/docker/abc\n";
        let c = candidates(mountinfo, cgroup);
        assert!(c.v2.is_none());
        assert_eq!(
            c.v1.len(),
            2,
            "pids is mounted from a root we are not under"
        );
        assert_eq!(c.v1[0].own, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(c.v1[0].proc_key, "cpu,cpuacct");
        assert_eq!(
            c.v1[0].controllers,
            Controllers::of(&[Controller::Cpu, Controller::Cpuacct])
        );
        assert_eq!(c.v1[1].own, PathBuf::from("/sys/fs/cgroup/my memory/sub"));
    }

    #[test]
    fn ranking_prefers_more_limit_controllers_then_v2() {
        use Version::*;
        assert_eq!(order(Some(0), Some(3)), vec![V1, V2]);
        assert_eq!(order(Some(3), Some(3)), vec![V2, V1]);
        assert_eq!(order(Some(2), Some(1)), vec![V2, V1]);
        assert_eq!(order(Some(0), None), vec![V2]);
        assert_eq!(order(None, Some(0)), vec![V1]);
        assert_eq!(order(None, None), vec![]);
    }

    #[test]
    fn v2_pods_go_where_no_process_is_left_inside_an_inner_cgroup() {
        use Delegation::*;
        assert_eq!(v2_base(true, None, 5), Ok(V2Base::Own { leave: false }));
        // systemd 254+ with DelegateSubgroup=: beside the daemon's leaf.
        assert_eq!(v2_base(false, Parent, 0), Ok(V2Base::Parent));
        // Delegate=yes alone, or a scope of its own: out of own first.
        assert_eq!(v2_base(false, Own, 0), Ok(V2Base::Own { leave: true }));
        assert_eq!(v2_base(false, None, 0), Ok(V2Base::Own { leave: true }));
        // A login session: the shell is there too.
        let err = v2_base(false, None, 2).unwrap_err();
        assert!(err.contains("2 other process(es)"), "{err}");
        assert!(v2_base(false, Own, 1).is_err());
        assert_eq!(
            parent_cgroup_path("/system.slice/drover.service/supervisor"),
            "/system.slice/drover.service"
        );
        assert_eq!(parent_cgroup_path("/a"), "/");
    }

    #[test]
    fn cgroup_paths_join_without_double_slashes() {
        assert_eq!(join_cgroup_path("/", "drover-x"), "/drover-x");
        assert_eq!(join_cgroup_path("/a/b", "drover-x"), "/a/b/drover-x");
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
