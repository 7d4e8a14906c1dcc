//! The embedded backend against real files in temp dirs: round trips,
//! torn and corrupt journal tails, compaction and the crash between its two
//! steps, and a state dir written by a drover without a journal.

use super::*;
use crate::api::{Kind, Object};
use crate::controllers::fixtures::{node, pod, rs, PodFixture};
use crate::store::Store;

fn open(dir: &Path) -> (EmbeddedBackend, Store) {
    let mut backend = EmbeddedBackend::open(dir).unwrap();
    let store = Store::load(&mut backend).unwrap();
    (backend, store)
}

/// Everything in the store, in key order.
fn contents(s: &Store) -> Vec<Object> {
    Kind::ALL.iter().flat_map(|k| s.list(*k).cloned()).collect()
}

fn reloaded(dir: &Path) -> Vec<Object> {
    contents(&open(dir).1)
}

fn running(name: &str, restarts: u32) -> Object {
    Object::Pod(
        pod(name)
            .labels(&[("app", "web")])
            .owned_by(&rs("web", 3))
            .on("n1")
            .running()
            .restarted(restarts),
    )
}

fn journal_bytes(dir: &Path) -> Vec<u8> {
    fs::read(dir.join(JOURNAL)).unwrap()
}

/// A store persisted three times, so the journal holds two records after
/// the compaction of the first persist. Returns the contents before the
/// last record and after it, and where the last record starts.
fn three_persists(dir: &Path) -> (Vec<Object>, Vec<Object>, usize) {
    let (mut backend, mut s) = open(dir);
    s.put(Object::Node(node("n1")));
    s.put(running("web-a", 0));
    s.put(running("web-b", 0));
    s.persist(&mut backend).unwrap();
    s.put(running("web-a", 1));
    s.persist(&mut backend).unwrap();
    let before = contents(&s);
    let last_starts = journal_bytes(dir).len();
    s.put(running("web-b", 1));
    s.delete(Kind::Pod, "web-a");
    s.persist(&mut backend).unwrap();
    (before, contents(&s), last_starts)
}

#[test]
fn round_trip_over_several_persists_and_only_the_first_rewrites_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut backend, mut s) = open(dir.path());
    s.put(Object::Node(node("n1")));
    for i in 0..10 {
        s.put(running(&format!("web-{i}"), 0));
    }
    s.persist(&mut backend).unwrap();
    let snapshot = fs::read(dir.path().join(SNAPSHOT)).unwrap();
    assert_eq!(reloaded(dir.path()), contents(&s));
    for round in 1..6u32 {
        s.update_pod(&format!("web-{round}"), |p| {
            p.status.processes[0].restart_count = round;
            true
        });
        s.put(running(&format!("new-{round}"), round));
        s.persist(&mut backend).unwrap();
        assert_eq!(reloaded(dir.path()), contents(&s), "after persist {round}");
    }
    assert_eq!(
        fs::read(dir.path().join(SNAPSHOT)).unwrap(),
        snapshot,
        "small changes went to the journal, not into a new snapshot"
    );
}

#[test]
fn deletes_survive_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (mut backend, mut s) = open(dir.path());
    for name in ["web-a", "web-b", "web-c"] {
        s.put(running(name, 0));
    }
    s.persist(&mut backend).unwrap();
    s.delete(Kind::Pod, "web-a");
    s.persist(&mut backend).unwrap(); // a journal record
    let names =
        |objs: Vec<Object>| -> Vec<String> { objs.iter().map(|o| o.name().to_string()).collect() };
    assert_eq!(names(reloaded(dir.path())), ["web-b", "web-c"]);

    // And after a restart, where the first persist is a new snapshot.
    let (mut backend, mut s) = open(dir.path());
    s.delete(Kind::Pod, "web-b");
    s.persist(&mut backend).unwrap();
    s.delete(Kind::Pod, "web-c");
    s.persist_all(&mut backend).unwrap();
    assert_eq!(names(reloaded(dir.path())), Vec::<String>::new());
}

#[test]
fn a_torn_last_record_loads_the_state_before_it_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (before, _, last_starts) = three_persists(dir.path());
    let full = journal_bytes(dir.path());
    let snapshot = fs::read(dir.path().join(SNAPSHOT)).unwrap();
    assert!(
        full.len() - last_starts > 100,
        "the last record is a real one"
    );
    for cut in last_starts..full.len() {
        // Every run starts from the same snapshot and a journal cut at `cut`.
        write_atomically(dir.path(), SNAPSHOT, &snapshot).unwrap();
        fs::write(dir.path().join(JOURNAL), &full[..cut]).unwrap();
        let (mut backend, mut s) = open(dir.path());
        assert_eq!(contents(&s), before, "journal cut at byte {cut}");
        s.put(running("web-z", 7));
        s.persist(&mut backend).unwrap();
        s.update_pod("web-z", |p| {
            p.status.processes[0].restart_count = 8;
            true
        });
        s.persist(&mut backend).unwrap(); // appended after the compaction
        assert_eq!(
            reloaded(dir.path()),
            contents(&s),
            "appends after a cut at {cut}"
        );
    }
}

#[test]
fn a_corrupt_byte_in_the_last_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after, last_starts) = three_persists(dir.path());
    let full = journal_bytes(dir.path());
    assert_eq!(reloaded(dir.path()), after);
    for at in last_starts..full.len() {
        let mut bad = full.clone();
        bad[at] ^= 0x10;
        fs::write(dir.path().join(JOURNAL), &bad).unwrap();
        assert_eq!(reloaded(dir.path()), before, "byte {at} flipped");
    }
}

#[test]
fn the_journal_is_compacted_once_it_outgrows_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut backend, mut s) = open(dir.path());
    s.put(running("web-a", 0));
    s.persist(&mut backend).unwrap();
    let big = "x".repeat(100 * 1024);
    let mut shrank = false;
    let mut last_len = journal_bytes(dir.path()).len();
    for i in 0..15u32 {
        s.update_pod("web-a", |p| {
            p.metadata
                .annotations
                .insert("big".into(), format!("{i}{big}"));
            true
        });
        s.persist(&mut backend).unwrap();
        let len = journal_bytes(dir.path()).len();
        shrank |= len < last_len;
        last_len = len;
        assert!(len as u64 <= JOURNAL_FLOOR, "journal of {len} bytes");
    }
    assert!(shrank, "15 records of 100 KiB passed the 1 MiB floor");
    assert_eq!(reloaded(dir.path()), contents(&s));
}

#[test]
fn a_crash_between_new_snapshot_and_new_journal_loads_the_right_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_, after, _) = three_persists(dir.path());
    let old_journal = journal_bytes(dir.path());

    // Compaction's first step done, the second (the new journal) lost.
    let (mut backend, mut s) = open(dir.path());
    assert_eq!(contents(&s), after);
    s.persist_all(&mut backend).unwrap();
    fs::write(dir.path().join(JOURNAL), &old_journal).unwrap();
    assert_eq!(
        reloaded(dir.path()),
        after,
        "old journal beside the new snapshot"
    );

    // Even replayed over the new snapshot, the old records change nothing:
    // they are whole-object puts and deletes the snapshot already holds.
    let snapshot = fs::read(dir.path().join(SNAPSHOT)).unwrap();
    let mut replayed = journal::header(&snapshot);
    replayed.extend_from_slice(&old_journal[journal::HEADER_LEN..]);
    fs::write(dir.path().join(JOURNAL), &replayed).unwrap();
    assert_eq!(reloaded(dir.path()), after, "old records replayed over it");
}

#[test]
fn a_state_dir_written_before_the_journal_existed_loads() {
    // What drover wrote until now: store.json alone, a JSON array of
    // objects (`serde_json::to_vec(&Vec<&Object>)`), no journal.
    let dir = tempfile::tempdir().unwrap();
    let objects = [Object::Node(node("n1")), running("web-a", 2)];
    let old = serde_json::to_vec(&objects.iter().collect::<Vec<_>>()).unwrap();
    fs::write(dir.path().join(SNAPSHOT), old).unwrap();
    let (mut backend, mut s) = open(dir.path());
    assert_eq!(
        contents(&s),
        [running("web-a", 2), Object::Node(node("n1"))]
    );
    s.delete(Kind::Pod, "web-a");
    s.persist(&mut backend).unwrap();
    s.put(running("web-b", 0));
    s.persist(&mut backend).unwrap();
    assert_eq!(reloaded(dir.path()), contents(&s));
    // And the snapshot is still that format, for tools that read it.
    let list: Vec<Object> =
        serde_json::from_slice(&fs::read(dir.path().join(SNAPSHOT)).unwrap()).unwrap();
    assert_eq!(list, [Object::Node(node("n1"))]);
}

#[test]
fn a_journal_without_drovers_header_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (_, after, _) = three_persists(dir.path());
    let mut journal = journal_bytes(dir.path());
    journal[0] ^= 0xff;
    fs::write(dir.path().join(JOURNAL), &journal).unwrap();
    let (mut backend, mut s) = open(dir.path());
    assert_ne!(contents(&s), after, "its records were not replayed");
    s.put(running("web-q", 0));
    s.persist(&mut backend).unwrap();
    assert_eq!(reloaded(dir.path()), contents(&s));
}

/// A tmpfs of `size` mounted at `path` (tests run as root), unmounted when
/// dropped: a real disk that can be filled without touching the host's.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "mounting a tmpfs at {} (needs root)", path.display());
        Tmpfs(path.to_path_buf())
    }

    /// Writes `name` until the disk is full, then frees `leave` bytes.
    fn fill(&self, leave: u64) {
        let path = self.0.join("filler");
        let mut f = File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(leave)).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn big_node(name: &str, bytes: usize) -> Object {
    let mut n = node(name);
    n.metadata
        .labels
        .insert("padding".into(), "x".repeat(bytes));
    Object::Node(n)
}

/// Issue 9: a full disk. A record that does not fit is refused and cut
/// back off the journal; once a little room is back, the next persist
/// appends there: it does not need room for a whole new snapshot (before,
/// any failed append meant a compaction next, so a store larger than the
/// free space could not be persisted again), and no temporary file from a
/// failed attempt keeps the space.
#[test]
fn a_full_disk_refuses_a_record_and_recovers_with_room_for_one() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("state"), "2m");
    let dir = disk.0.clone();
    let (mut backend, mut s) = open(&dir);
    // A snapshot of about 600 KiB.
    for i in 0..60 {
        s.put(big_node(&format!("n{i:02}"), 10_000));
    }
    s.persist(&mut backend).unwrap();
    let journal_len = journal_bytes(&dir).len();

    disk.fill(0);
    s.put(big_node("late", 8_000));
    let err = s.persist(&mut backend).unwrap_err();
    let io = err.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.and_then(|e| e.raw_os_error()),
        Some(libc::ENOSPC),
        "{err:#}"
    );
    assert_eq!(
        journal_bytes(&dir).len(),
        journal_len,
        "the torn record is cut off"
    );
    assert!(s.is_dirty(), "the change is still pending");

    // Room for the record (64 KiB), far from room for a snapshot.
    disk.fill(64 * 1024);
    s.persist(&mut backend).unwrap();
    let names: Vec<String> = reloaded(&dir)
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    assert!(names.contains(&"late".to_string()), "{names:?}");
    assert_eq!(names.len(), 61);

    // A snapshot that cannot be written leaves no temporary file behind.
    disk.fill(0);
    let err = backend.persist_all(&s.changes()).unwrap_err();
    assert!(format!("{err:#}").contains("No space left"), "{err:#}");
    assert!(!dir.join("store.json.new").exists());
    drop(backend);
}
