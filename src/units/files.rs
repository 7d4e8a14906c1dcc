//! Unit files on disk: which files a path names, reading one within the
//! size cap, and whether the units folder can be trusted by a daemon that
//! runs as root (sshd's StrictModes).
//!
//! A root daemon starts what the units folder says, as whatever user it
//! says: anyone who can change a file there, or the folder, or a folder
//! above it, is root. So when the daemon runs as root, every unit file
//! and the units folder must be owned by root and writable by nobody
//! else, and every folder above it must be too (or sticky, as /tmp is:
//! there only an entry's owner may rename it). Otherwise nothing of the
//! folder is applied, and the diagnostic says which file and why.

use super::diagnostic::Diagnostic;
use super::rules::limits::MAX_UNIT_FILE_BYTES;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The unit files `path` names: itself, or the `*.toml` files in it
/// (sorted, not recursive, hidden files skipped).
pub(crate) fn unit_files(path: &Path) -> Result<Vec<PathBuf>, Box<Diagnostic>> {
    let fail = |m: String| Box::new(Diagnostic::file(path, m));
    let meta = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let cannot_list = |e: std::io::Error| fail(format!("cannot list {}: {e}", path.display()));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(cannot_list)? {
        let name = entry.map_err(cannot_list)?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let file = path.join(&*name);
        if std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// A unit file's text, and the owner and mode of the file that was read.
pub(crate) struct UnitText {
    pub text: String,
    pub uid: u32,
    pub mode: u32,
}

/// Reads a unit file, refusing one over [`MAX_UNIT_FILE_BYTES`] before
/// reading it (and reading no more than that, should it grow meanwhile or
/// be a device).
pub(crate) fn read_unit(file: &Path) -> Result<UnitText, Box<Diagnostic>> {
    let fail = |m: String| Box::new(Diagnostic::file(file, m));
    let f = std::fs::File::open(file).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let too_big = || {
        Box::new(
            Diagnostic::file(
                file,
                format!(
                    "the file is larger than {} KiB, the most a unit file may be",
                    MAX_UNIT_FILE_BYTES / 1024
                ),
            )
            .with_help("a unit is a few KiB: keep large data in files the unit's processes read"),
        )
    };
    if meta.len() > MAX_UNIT_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    f.take(MAX_UNIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_UNIT_FILE_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not a text file: invalid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(UnitText {
        text,
        uid: meta.uid(),
        mode: meta.mode(),
    })
}

/// Why a file or folder could be changed by someone other than root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Owned by this uid, not root.
    Owner(u32),
    /// Writable by its group (mode).
    GroupWritable(u32),
    /// Writable by everyone (mode).
    WorldWritable(u32),
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Untrusted::Owner(uid) => write!(f, "owned by uid {uid}, not by root"),
            Untrusted::GroupWritable(mode) => {
                write!(f, "writable by its group (mode {:04o})", mode & 0o7777)
            }
            Untrusted::WorldWritable(mode) => {
                write!(f, "writable by everyone (mode {:04o})", mode & 0o7777)
            }
        }
    }
}

/// Whether a daemon running as `euid` may trust a unit file, or the units
/// folder, of this `mode` and owner `uid`: only a root daemon checks; it
/// trusts what root owns and nobody else may write.
pub fn untrusted(mode: u32, uid: u32, euid: u32) -> Option<Untrusted> {
    if euid != 0 {
        return None;
    }
    if uid != 0 {
        Some(Untrusted::Owner(uid))
    } else if mode & 0o002 != 0 {
        Some(Untrusted::WorldWritable(mode))
    } else if mode & 0o020 != 0 {
        Some(Untrusted::GroupWritable(mode))
    } else {
        None
    }
}

/// [`untrusted`] for a folder above the units folder: a sticky folder
/// writable by others (/tmp) is fine, since only an entry's owner may
/// rename or remove it there.
pub fn untrusted_above(mode: u32, uid: u32, euid: u32) -> Option<Untrusted> {
    const STICKY: u32 = 0o1000;
    match untrusted(mode, uid, euid) {
        Some(Untrusted::GroupWritable(_) | Untrusted::WorldWritable(_)) if mode & STICKY != 0 => {
            None
        }
        other => other,
    }
}

/// The refusal of an untrusted file or folder.
pub(crate) fn refusal(path: &Path, why: Untrusted, what: &str) -> Diagnostic {
    let help = match why {
        Untrusted::Owner(_) => format!("chown root {}", path.display()),
        _ => format!("chmod go-w {}", path.display()),
    };
    Diagnostic::file(
        path,
        format!(
            "refused: {what} is {why}; drover runs as root and would run what others write \
             there (nothing of the units folder was applied)"
        ),
    )
    .with_help(help)
}

/// The units folder and every folder above it, for a root daemon.
pub(crate) fn check_folder(dir: &Path, euid: u32) -> Result<(), Box<Diagnostic>> {
    let dir = dir.canonicalize().map_err(|e| {
        Box::new(Diagnostic::file(
            dir,
            format!("cannot read {}: {e}", dir.display()),
        ))
    })?;
    for (i, folder) in dir.ancestors().enumerate() {
        let meta = std::fs::metadata(folder).map_err(|e| {
            Box::new(Diagnostic::file(
                folder,
                format!("cannot read {}: {e}", folder.display()),
            ))
        })?;
        let (why, what) = if i == 0 {
            (untrusted(meta.mode(), meta.uid(), euid), "the units folder")
        } else {
            (
                untrusted_above(meta.mode(), meta.uid(), euid),
                "a folder above the units folder",
            )
        };
        if let Some(why) = why {
            return Err(Box::new(refusal(folder, why, what)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_modes_table() {
        use Untrusted::*;
        // (mode, owner uid, daemon euid) -> verdict, for a file or the folder.
        let cases = [
            (0o100644, 0, 0, None),
            (0o100600, 0, 0, None),
            (0o100640, 0, 0, None),
            (0o100664, 0, 0, Some(GroupWritable(0o100664))),
            (0o100666, 0, 0, Some(WorldWritable(0o100666))),
            (0o100646, 0, 0, Some(WorldWritable(0o100646))),
            (0o100644, 1000, 0, Some(Owner(1000))),
            (0o100600, 1000, 0, Some(Owner(1000))),
            (0o040755, 0, 0, None),
            (0o040775, 0, 0, Some(GroupWritable(0o040775))),
            (0o041777, 0, 0, Some(WorldWritable(0o041777))),
            // A daemon that is not root runs what it is given as itself.
            (0o100666, 1000, 1000, None),
            (0o100644, 0, 1000, None),
        ];
        for (mode, uid, euid, want) in cases {
            assert_eq!(untrusted(mode, uid, euid), want, "{mode:o} {uid} {euid}");
        }
        // Above the folder, sticky and writable is fine (/tmp), but not
        // another owner's folder.
        assert_eq!(untrusted_above(0o041777, 0, 0), None);
        assert_eq!(
            untrusted_above(0o040777, 0, 0),
            Some(WorldWritable(0o040777))
        );
        assert_eq!(untrusted_above(0o041777, 1000, 0), Some(Owner(1000)));
    }

    #[test]
    fn refusals_name_the_file_and_the_fix() {
        let d = refusal(
            Path::new("/etc/drover/units/web.toml"),
            Untrusted::GroupWritable(0o100664),
            "this unit file",
        );
        assert!(
            d.message.contains("writable by its group (mode 0664)"),
            "{d}"
        );
        assert_eq!(
            d.help.as_deref(),
            Some("chmod go-w /etc/drover/units/web.toml")
        );
    }
}
