//! Following one log like `tail -F`: through copy-truncate rotations and
//! through new runs that replace the file. `Tailer` is the per-file reader
//! shared with `stream_all`; it must not block on anything but reading the
//! file, and must not decide when to look (inotify events do).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::inotify::AddWatchFlags;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::inotify::{Watcher, POD_MASK};
use super::{rotated_path, tail_file};
use crate::runtime::inotify::WatchDescriptor;

/// At most this much is read (and held) per step.
const CHUNK: usize = 64 * 1024;

/// What `Tailer::step` did.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Read bytes into the buffer.
    Data,
    /// Switched to a new file at PATH (a new run, or the first file); the
    /// next bytes start a new stream.
    Reopened,
    /// Nothing more to read until the file changes.
    Idle,
}

/// Reads PATH from an offset on, noticing truncation and replacement.
///
/// A truncation shows as the size dropping below our offset. Were the
/// writer to refill the file past that offset before we look, the start of
/// the refill would be skipped; since rotation happens at `max_bytes` and
/// we look on every write, that takes writing `max_bytes` within one wakeup.
///
/// Blocking reads of a local file are kept on the async thread: they are
/// page-cache reads of at most `CHUNK` bytes, cheaper than a hop to the
/// blocking pool for every write a process makes.
pub(super) struct Tailer {
    path: PathBuf,
    file: Option<File>,
    /// (dev, ino) of `file`, to notice PATH being replaced.
    id: (u64, u64),
    pos: u64,
    /// Inode of PATH.1 when we last looked: a different one after a
    /// truncation means a rotation made a fresh copy.
    rotated_ino: Option<u64>,
    /// The part of the rotated copy we had not read before the truncation:
    /// (copy, from, to).
    catch_up: Option<(File, u64, u64)>,
}

impl Tailer {
    /// A tailer that has no file yet; the first `step` opens PATH from its
    /// start if it exists.
    pub(super) fn new(path: PathBuf) -> Tailer {
        let rotated_ino = inode(&rotated_path(&path));
        Tailer {
            path,
            file: None,
            id: (0, 0),
            pos: 0,
            rotated_ino,
            catch_up: None,
        }
    }

    /// Reads `file` (opened from PATH) from `pos` on.
    pub(super) fn attach(&mut self, file: File, pos: u64) -> io::Result<()> {
        let meta = file.metadata()?;
        self.id = (meta.dev(), meta.ino());
        self.file = Some(file);
        self.pos = pos;
        self.rotated_ino = inode(&rotated_path(&self.path));
        self.catch_up = None;
        Ok(())
    }

    /// Does one thing: reads one chunk into `buf` (replacing its contents),
    /// or moves to a new file, or reports that there is nothing to do.
    /// Call until `Idle`.
    pub(super) fn step(&mut self, buf: &mut Vec<u8>) -> io::Result<Step> {
        loop {
            if let Some((copy, from, to)) = &mut self.catch_up {
                let n = read_chunk(copy, *from, *to - *from, buf)?;
                if n > 0 {
                    *from += n;
                    return Ok(Step::Data);
                }
                self.catch_up = None;
            }
            if let Some(file) = &self.file {
                if read_chunk(file, self.pos, CHUNK as u64, buf)? > 0 {
                    self.pos += buf.len() as u64;
                    return Ok(Step::Data);
                }
                if file.metadata()?.len() < self.pos {
                    self.truncated();
                    continue;
                }
            }
            // At the end of our file: has a new run put another one at PATH?
            let meta = match fs::metadata(&self.path) {
                Ok(meta) => meta,
                // Moved away and the new run has not created it yet.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Step::Idle),
                Err(e) => return Err(e),
            };
            if self.file.is_some() && (meta.dev(), meta.ino()) == self.id {
                return Ok(Step::Idle);
            }
            match File::open(&self.path) {
                Ok(file) => self.attach(file, 0)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Step::Idle),
                Err(e) => return Err(e),
            }
            return Ok(Step::Reopened);
        }
    }

    /// Copy-truncated: what was appended after our last read and before
    /// the truncate is in the fresh PATH.1 from `pos` on; read that first,
    /// then the file from 0.
    fn truncated(&mut self) {
        let rotated = rotated_path(&self.path);
        let ino = inode(&rotated);
        if ino.is_some() && ino != self.rotated_ino {
            if let Ok(copy) = File::open(&rotated) {
                let len = copy.metadata().map(|m| m.len()).unwrap_or(0);
                // Shorter than what we read: not a copy of our file.
                if len >= self.pos {
                    self.catch_up = Some((copy, self.pos, len));
                }
            }
        }
        self.rotated_ino = ino;
        self.pos = 0;
    }
}

fn inode(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.ino())
}

/// Reads up to `max` bytes at `pos` into `buf`; returns how many.
fn read_chunk(file: &File, pos: u64, max: u64, buf: &mut Vec<u8>) -> io::Result<u64> {
    buf.resize(max.min(CHUNK as u64) as usize, 0);
    loop {
        match file.read_at(buf, pos) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        }
    }
}

/// Writes the last `tail_lines` lines of PATH (all of it with None), then
/// every byte appended to it, like `tail -F`; see [`Follow`].
pub async fn follow<W: AsyncWrite + Unpin>(
    path: &Path,
    tail_lines: Option<usize>,
    out: &mut W,
) -> io::Result<()> {
    Follow::open(path, tail_lines)?
        .run(out, std::future::pending())
        .await
}

/// One log being followed (`logs -f`), set up in two steps so that a
/// server can refuse a follow (a missing directory) before it answers,
/// and stream after: [`Follow::open`] watches and reads the tail,
/// [`Follow::run`] writes it and everything appended after.
///
/// Survives rotation by copy-truncate (nothing written before the truncate
/// is lost) and new runs (PATH renamed to .previous.log and created again:
/// follows the new file from its start). A PATH that does not exist yet is
/// waited for.
pub struct Follow {
    watcher: Watcher,
    dir_wd: WatchDescriptor,
    name: OsString,
    tailer: Tailer,
    /// The tail read by `open`, written first by `run`.
    head: Vec<u8>,
}

impl Follow {
    /// Watches PATH's directory, then opens PATH and reads its last
    /// `tail_lines` lines. A missing directory is `NotFound`. Must be
    /// called inside a tokio runtime.
    pub fn open(path: &Path, tail_lines: Option<usize>) -> io::Result<Follow> {
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "log path has no file name")
            })?
            .to_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // Watch before opening, so no write between the two goes unnoticed.
        let watcher = Watcher::new()?;
        // IN_DELETE: only removing the pod deletes a log (new runs rename it).
        let dir_wd = watcher.add_watch(dir, POD_MASK | AddWatchFlags::IN_DELETE)?;

        let mut tailer = Tailer::new(path.to_path_buf());
        let mut head = Vec::new();
        match File::open(path) {
            Ok(file) => {
                // With no limit the tailer streams the whole file in chunks
                // instead of `tail` loading it at once.
                let pos = match tail_lines {
                    None => 0,
                    Some(n) => {
                        let (bytes, end) = tail_file(&file, Some(n), super::TAIL_BLOCK)?;
                        head = bytes;
                        end
                    }
                };
                tailer.attach(file, pos)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Follow {
            watcher,
            dir_wd,
            name,
            tailer,
            head,
        })
    }

    /// Writes the tail, then every byte appended, until the log is deleted
    /// (the pod was removed) or `end` completes (the caller knows no more
    /// output will come: the pod finished); either way what is already in
    /// the file is delivered first, then Ok. The writer's error when `out`
    /// fails (the client went away).
    pub async fn run<W: AsyncWrite + Unpin>(
        self,
        out: &mut W,
        end: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let Follow {
            watcher,
            dir_wd,
            name,
            mut tailer,
            head,
        } = self;
        out.write_all(&head).await?;
        drop(head);
        let mut end = std::pin::pin!(end);
        let mut buf = Vec::new();
        loop {
            while tailer.step(&mut buf)? != Step::Idle {
                out.write_all(&buf).await?;
            }
            buf.clear();
            out.flush().await?;
            // Sleep until something happens to our file; other processes of
            // the pod write in the same directory.
            let mut wake = false;
            while !wake {
                let events = tokio::select! {
                    events = watcher.next_batch() => events?,
                    () = &mut end => return drain(&mut tailer, &mut buf, out).await,
                };
                for ev in events {
                    let ours = ev.name.as_deref() == Some(name.as_os_str());
                    // The log was deleted, or its directory is gone
                    // (IN_IGNORED comes only if no file in it is open, so
                    // the delete is the signal to rely on): deliver what is
                    // left, then stop.
                    let gone = (ours && ev.mask.contains(AddWatchFlags::IN_DELETE))
                        || (ev.wd == dir_wd && ev.mask.contains(AddWatchFlags::IN_IGNORED));
                    if gone {
                        return drain(&mut tailer, &mut buf, out).await;
                    }
                    wake |= ours || ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW);
                }
            }
        }
    }
}

/// Writes what is left to read, then flushes.
async fn drain<W: AsyncWrite + Unpin>(
    tailer: &mut Tailer,
    buf: &mut Vec<u8>,
    out: &mut W,
) -> io::Result<()> {
    while tailer.step(buf)? != Step::Idle {
        out.write_all(buf).await?;
    }
    out.flush().await
}

#[cfg(test)]
mod tests {
    use super::super::tests::writer;
    use super::super::{rotate_if_needed, LogDir};
    use super::*;
    use std::io::Write;
    use std::time::Duration;
    use tokio::io::{AsyncRead, AsyncReadExt};

    /// Reads from `rd` until everything read so far equals `want`.
    async fn expect_output(rd: &mut (impl AsyncRead + Unpin), seen: &mut Vec<u8>, want: &str) {
        let read = async {
            while seen.len() < want.len() {
                assert!(
                    want.as_bytes().starts_with(seen),
                    "unexpected output {:?}, want {want:?}",
                    String::from_utf8_lossy(seen)
                );
                let mut chunk = [0; 256];
                let n = rd.read(&mut chunk).await.unwrap();
                assert!(n > 0, "follow's output closed");
                seen.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out: saw {:?}, want {want:?}",
                    String::from_utf8_lossy(seen)
                )
            });
        assert_eq!(String::from_utf8_lossy(seen), want);
    }

    #[tokio::test]
    async fn follow_survives_rotation_and_new_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().to_path_buf(), 0);
        let path = dir.start_run("web", "srv").unwrap();
        let mut w = writer(&path);
        w.write_all(b"a\nb\nc\n").unwrap();
        // A neighbour's writes must not disturb anything.
        let mut other = writer(&dir.start_run("web", "sidecar").unwrap());

        let (mut out, mut rd) = tokio::io::duplex(1 << 16);
        let followed = follow(&path, Some(2), &mut out);
        let script = async {
            let mut seen = Vec::new();
            expect_output(&mut rd, &mut seen, "b\nc\n").await;

            w.write_all(b"d\n").unwrap();
            other.write_all(b"noise\n").unwrap();
            expect_output(&mut rd, &mut seen, "b\nc\nd\n").await;

            // Written and rotated away before follow could read it: it is
            // read from the copy, then the truncated file from its start.
            w.write_all(b"d2\n").unwrap();
            // 11 bytes, within twice the limit: copied whole.
            assert!(rotate_if_needed(&path, 6).unwrap().is_some());
            w.write_all(b"e\n").unwrap();
            expect_output(&mut rd, &mut seen, "b\nc\nd\nd2\ne\n").await;

            // A new run: the old file becomes .previous.log.
            w.write_all(b"last words\n").unwrap();
            dir.start_run("web", "srv").unwrap();
            let mut w2 = writer(&path);
            w2.write_all(b"f\n").unwrap();
            expect_output(&mut rd, &mut seen, "b\nc\nd\nd2\ne\nlast words\nf\n").await;

            w2.write_all(b"g\n").unwrap();
            expect_output(&mut rd, &mut seen, "b\nc\nd\nd2\ne\nlast words\nf\ng\n").await;

            // The pod is removed: follow ends, though a writer still holds
            // the deleted file open.
            dir.remove_pod("web").unwrap();
        };
        let (result, ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(followed, script)
        })
        .await
        .expect("follow did not end after the pod dir was removed");
        result.unwrap();
    }

    #[tokio::test]
    async fn follow_waits_for_a_file_that_does_not_exist_yet() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let (mut out, mut rd) = tokio::io::duplex(1 << 16);
        let followed = follow(&path, None, &mut out);
        let script = async {
            tokio::task::yield_now().await;
            writer(&path).write_all(b"hello\n").unwrap();
            expect_output(&mut rd, &mut Vec::new(), "hello\n").await;
        };
        tokio::select! {
            r = followed => panic!("follow ended: {r:?}"),
            () = script => {}
        }

        let err = follow(&tmp.path().join("no/p.log"), None, &mut tokio::io::sink())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn follow_ends_when_told_after_delivering_what_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let mut w = writer(&path);
        w.write_all(b"a\nb\n").unwrap();
        let f = Follow::open(&path, Some(1)).unwrap();
        // Written after open, before run: still delivered.
        w.write_all(b"c\n").unwrap();
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
        let (mut out, mut rd) = tokio::io::duplex(1 << 16);
        let followed = f.run(&mut out, async {
            let _ = end_rx.await;
        });
        let script = async {
            let mut seen = Vec::new();
            expect_output(&mut rd, &mut seen, "b\nc\n").await;
            // The last words and the end arrive together: the words first.
            w.write_all(b"last\n").unwrap();
            drop(end_tx);
            seen
        };
        let (result, mut seen) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(followed, script)
        })
        .await
        .expect("follow did not end when told to");
        result.unwrap();
        drop(out);
        rd.read_to_end(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen), "b\nc\nlast\n");
    }

    #[test]
    fn opening_in_a_missing_folder_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let err = Follow::open(&tmp.path().join("no/p.log"), None)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn log_tasks_can_be_spawned_on_a_multi_thread_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        let path = Path::new("p.log");
        let mut out = tokio::io::sink();
        assert_send(&follow(path, None, &mut out));
        assert_send(&super::super::stream_all(path, |_, _, _| {}));
        assert_send(&super::super::watch_sizes(LogDir::new(path.into(), 1)));
    }

    #[test]
    fn tailer_reads_in_chunks_and_reports_new_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.log");
        let mut t = Tailer::new(path.clone());
        let mut buf = Vec::new();
        assert_eq!(t.step(&mut buf).unwrap(), Step::Idle, "no file yet");

        writer(&path).write_all(&vec![b'x'; CHUNK + 10]).unwrap();
        assert_eq!(t.step(&mut buf).unwrap(), Step::Reopened);
        assert_eq!(t.step(&mut buf).unwrap(), Step::Data);
        assert_eq!(buf.len(), CHUNK);
        assert_eq!(t.step(&mut buf).unwrap(), Step::Data);
        assert_eq!(buf.len(), 10);
        assert_eq!(t.step(&mut buf).unwrap(), Step::Idle);
    }
}
