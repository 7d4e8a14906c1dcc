//! The daemon's units folder (issue 10): a root daemon refuses files and
//! folders others could change, and records which units came from files
//! only root can change.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A private folder with one unit in it.
fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    std::fs::create_dir(&units).unwrap();
    chmod(&units, 0o755);
    let file = units.join("p.toml");
    std::fs::write(&file, pod_with("")).unwrap();
    chmod(&file, 0o644);
    (dir, units)
}

#[test]
fn root_owned_units_are_recorded() {
    let (_dir, units) = folder();
    let loaded = load_units_dir(&units, now()).unwrap();
    assert_eq!(loaded.len(), 1);
    // Root owns what root wrote; a user's daemon has a user's files.
    assert_eq!(loaded[0].root_owned, root());
    // `drover apply -f` never vouches for a file.
    let applied = load_path(&units, now()).unwrap();
    assert!(!applied[0].root_owned);
}

#[test]
fn a_group_writable_unit_file_refuses_the_folder() {
    let (_dir, units) = folder();
    std::fs::write(units.join("q.toml"), pod_with("").replace("\"p\"", "\"q\"")).unwrap();
    let file = units.join("p.toml");
    chmod(&file, 0o664);
    let result = load_units_dir(&units, now());
    if !root() {
        // Only a root daemon checks (it is the one others could abuse).
        assert!(result.is_ok());
        return;
    }
    let err = result.unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.path, file);
    assert!(
        d.message.contains("writable by its group (mode 0664)"),
        "{d}"
    );
    assert_eq!(
        d.help.as_deref(),
        Some(&*format!("chmod go-w {}", file.display()))
    );
    // The other file is not loaded either: nothing of the folder is.
    chmod(&file, 0o644);
    assert_eq!(load_units_dir(&units, now()).unwrap().len(), 2);
}

#[test]
fn a_unit_file_owned_by_another_user_is_refused() {
    if !root() {
        return; // only root can give a file away
    }
    let (_dir, units) = folder();
    let file = units.join("p.toml");
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let err = load_units_dir(&units, now()).unwrap_err();
    let d = &err.diagnostics[0];
    assert!(d.message.contains("owned by uid 65534, not by root"), "{d}");
    assert_eq!(
        d.help.as_deref(),
        Some(&*format!("chown root {}", file.display()))
    );
    // apply -f of the same file is the caller's business.
    assert!(load_path(&file, now()).is_ok());
}

#[test]
fn a_world_writable_units_folder_is_refused() {
    if !root() {
        return;
    }
    let (_dir, units) = folder();
    chmod(&units, 0o777);
    let err = load_units_dir(&units, now()).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.path, units.canonicalize().unwrap());
    assert!(
        d.message
            .contains("the units folder is writable by everyone"),
        "{d}"
    );
    // Sticky does not help the units folder itself: anyone could add a unit.
    chmod(&units, 0o1777);
    assert!(load_units_dir(&units, now()).is_err());
}

#[test]
fn a_folder_above_others_can_write_is_refused_unless_sticky() {
    if !root() {
        return;
    }
    let (dir, units) = folder();
    chmod(dir.path(), 0o777);
    let err = load_units_dir(&units, now()).unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("a folder above the units folder is writable by everyone"),
        "{err}"
    );
    chmod(dir.path(), 0o1777);
    let loaded = load_units_dir(&units, now()).unwrap();
    assert!(loaded[0].root_owned);
}
