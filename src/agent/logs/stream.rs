//! Every process's log as one stream of lines, for `drover up`: follows all
//! ROOT/POD/PROCESS.log, including pods and processes that appear later. It
//! must not poll: one inotify instance watches ROOT and every pod dir.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, WatchDescriptor};

use super::follow::{Step, Tailer};
use super::inotify::{Watcher, POD_MASK, ROOT_MASK};
use super::process_of;

/// A line longer than this is delivered in pieces, so that a process that
/// never writes a newline cannot make us buffer without bound.
const MAX_LINE: usize = 64 * 1024;

/// Calls `on_line(pod, process, line)` for every complete line (without its
/// newline) appended to any ROOT/POD/PROCESS.log, forever.
///
/// Files that exist at call time are followed from their current end;
/// files that appear later (new pods, new processes, new runs) from their
/// start. Rotations and new runs are handled as in [`super::follow`]; a run's
/// unfinished last line is delivered when the next run starts. Returns Ok
/// when ROOT is removed; errors setting up inotify are returned, errors
/// reading one file are logged.
pub async fn stream_all<F: FnMut(&str, &str, &[u8])>(
    root: &Path,
    mut on_line: F,
) -> io::Result<()> {
    fs::create_dir_all(root)?;
    let watcher = Watcher::new()?;
    let root_wd = watcher.add_watch(root, ROOT_MASK | AddWatchFlags::IN_DELETE)?;
    let mut logs = Logs::default();
    logs.scan_root(&watcher, root, Start::End)?;
    let mut buf = Vec::new();
    loop {
        let mut touched = BTreeSet::new();
        for ev in watcher.next_batch().await? {
            let name = ev.name.as_deref().and_then(|n| n.to_str());
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Events were dropped: anything may have changed.
                logs.scan_root(&watcher, root, Start::Beginning)?;
                touched.extend(logs.files.keys().cloned());
            } else if ev.wd == root_wd {
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    logs.finish(|_, _| true, &mut buf, &mut on_line);
                    return Ok(());
                }
                let Some(pod) = name.filter(|_| ev.mask.contains(AddWatchFlags::IN_ISDIR)) else {
                    continue;
                };
                if ev.mask.contains(AddWatchFlags::IN_DELETE) {
                    // A pod dir was removed. Its watch only ends (IN_IGNORED)
                    // once no file in it is open, so this is the signal.
                    let gone: Vec<_> = (logs.pods.iter())
                        .filter(|(_, name)| *name == pod)
                        .map(|(wd, _)| *wd)
                        .collect();
                    for wd in gone {
                        logs.pods.remove(&wd);
                        logs.finish(|_, log| log.wd == wd, &mut buf, &mut on_line);
                    }
                } else {
                    touched.extend(logs.add_pod(&watcher, root, pod, Start::Beginning));
                }
            } else if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                logs.pods.remove(&ev.wd);
                logs.finish(|_, log| log.wd == ev.wd, &mut buf, &mut on_line);
            } else if let (Some(pod), Some(process)) =
                (logs.pods.get(&ev.wd), name.and_then(process_of))
            {
                let key = (pod.clone(), process.to_string());
                if ev.mask.contains(AddWatchFlags::IN_DELETE) {
                    // Only removing the pod deletes a log: deliver the rest.
                    let wd = ev.wd;
                    logs.finish(|k, log| *k == key && log.wd == wd, &mut buf, &mut on_line);
                    continue;
                }
                let path = root.join(pod).join(name.unwrap_or_default());
                logs.files
                    .entry(key.clone())
                    .or_insert_with(|| Log::new(ev.wd, path.as_path(), Start::Beginning));
                touched.insert(key);
            }
        }
        for key in touched {
            if let Some(log) = logs.files.get_mut(&key) {
                log.pump(&key.0, &key.1, &mut buf, &mut on_line);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Start {
    /// Only what is appended from now on.
    End,
    /// The whole file.
    Beginning,
}

#[derive(Default)]
struct Logs {
    /// Watched pod dirs: watch -> pod name.
    pods: HashMap<WatchDescriptor, String>,
    /// Followed logs by (pod, process).
    files: BTreeMap<(String, String), Log>,
}

impl Logs {
    /// Adds every pod dir under ROOT (those already known are kept).
    fn scan_root(&mut self, watcher: &Watcher, root: &Path, start: Start) -> io::Result<()> {
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            if let (true, Some(pod)) = (entry.file_type()?.is_dir(), entry.file_name().to_str()) {
                self.add_pod(watcher, root, pod, start);
            }
        }
        Ok(())
    }

    /// Watches ROOT/POD, then follows the logs already in it (those created
    /// before the watch sent no event). Returns the keys of new logs.
    fn add_pod(
        &mut self,
        watcher: &Watcher,
        root: &Path,
        pod: &str,
        start: Start,
    ) -> Vec<(String, String)> {
        let dir = root.join(pod);
        let mask = POD_MASK | AddWatchFlags::IN_DELETE;
        let entries = watcher.add_watch(&dir, mask).and_then(|wd| {
            self.pods.insert(wd, pod.to_string());
            Ok((wd, fs::read_dir(&dir)?))
        });
        let (wd, entries) = match entries {
            Ok(found) => found,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Vec::new()
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot follow pod logs: {e}");
                return Vec::new();
            }
        };
        let mut added = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(process) = file_name.to_str().and_then(process_of) else {
                continue;
            };
            let key = (pod.to_string(), process.to_string());
            if !self.files.contains_key(&key) {
                self.files
                    .insert(key.clone(), Log::new(wd, &entry.path(), start));
                added.push(key);
            }
        }
        added
    }

    /// Delivers what is left of the logs `which` selects, and drops them.
    fn finish(
        &mut self,
        which: impl Fn(&(String, String), &Log) -> bool,
        buf: &mut Vec<u8>,
        on_line: &mut dyn FnMut(&str, &str, &[u8]),
    ) {
        self.files.retain(|key, log| {
            if !which(key, log) {
                return true;
            }
            log.pump(&key.0, &key.1, buf, on_line);
            log.flush(&key.0, &key.1, on_line);
            false
        });
    }
}

/// One followed log and its unfinished last line.
struct Log {
    /// The watch of its pod dir, to tell a removed dir from a new one with
    /// the same name.
    wd: WatchDescriptor,
    tailer: Tailer,
    partial: Vec<u8>,
}

impl Log {
    fn new(wd: WatchDescriptor, path: &Path, start: Start) -> Log {
        let mut tailer = Tailer::new(path.to_path_buf());
        if let Start::End = start {
            // If this fails the file is read from its start once it can be.
            let end = File::open(path).and_then(|f| {
                let len = f.metadata()?.len();
                tailer.attach(f, len)
            });
            if let Err(e) = end {
                tracing::debug!(log = %path.display(), "cannot open log: {e}");
            }
        }
        Log {
            wd,
            tailer,
            partial: Vec::new(),
        }
    }

    /// Reads everything new and delivers the complete lines.
    fn pump(
        &mut self,
        pod: &str,
        process: &str,
        buf: &mut Vec<u8>,
        on_line: &mut dyn FnMut(&str, &str, &[u8]),
    ) {
        loop {
            match self.tailer.step(buf) {
                Ok(Step::Idle) => return,
                // The last run ended without a newline: its line is over.
                Ok(Step::Reopened) => self.flush(pod, process, on_line),
                Ok(Step::Data) => self.split(pod, process, buf, on_line),
                Err(e) => {
                    tracing::warn!(pod, process, "cannot read log: {e}");
                    return;
                }
            }
        }
    }

    fn split(
        &mut self,
        pod: &str,
        process: &str,
        data: &[u8],
        on_line: &mut dyn FnMut(&str, &str, &[u8]),
    ) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                on_line(pod, process, &rest[..i]);
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                on_line(pod, process, &self.partial);
                self.partial.clear();
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() >= MAX_LINE {
            self.flush(pod, process, on_line);
        }
    }

    fn flush(&mut self, pod: &str, process: &str, on_line: &mut dyn FnMut(&str, &str, &[u8])) {
        if !self.partial.is_empty() {
            on_line(pod, process, &self.partial);
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::writer;
    use super::super::{rotate_if_needed, LogDir};
    use super::*;
    use std::io::Write;
    use std::time::Duration;
    use tokio::sync::mpsc;

    type Line = (String, String, String);

    fn line(pod: &str, process: &str, text: &str) -> Line {
        (pod.into(), process.into(), text.into())
    }

    async fn expect_lines(rx: &mut mpsc::UnboundedReceiver<Line>, want: &[Line]) {
        for w in want {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {w:?}"))
                .expect("stream_all ended");
            assert_eq!(&got, w);
        }
    }

    #[tokio::test]
    async fn stream_all_follows_existing_and_new_pods() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path().join("logs"), 0);
        let old = dir.start_run("old", "p").unwrap();
        let mut w_old = writer(&old);
        w_old.write_all(b"before the stream started\n").unwrap();

        let (tx, mut rx) = mpsc::unbounded_channel();
        let streamed = stream_all(&dir.root, |pod, process, text| {
            let text = String::from_utf8_lossy(text).into_owned();
            tx.send((pod.to_string(), process.to_string(), text))
                .unwrap();
        });
        let script = async {
            tokio::task::yield_now().await; // let it look at what exists
            w_old.write_all(b"after\n").unwrap();
            expect_lines(&mut rx, &[line("old", "p", "after")]).await;

            // A pod that appears later, its line written in two parts.
            let web = dir.start_run("web", "srv").unwrap();
            let mut w = writer(&web);
            w.write_all(b"hello\nwor").unwrap();
            expect_lines(&mut rx, &[line("web", "srv", "hello")]).await;
            w.write_all(b"ld\n").unwrap();
            fs::write(dir.previous("web", "srv"), b"not a current log\n").unwrap();
            fs::write(tmp.path().join("logs/web/srv.log.1"), b"nor this\n").unwrap();
            expect_lines(&mut rx, &[line("web", "srv", "world")]).await;

            // A second process in the same pod; a line cut by rotation.
            let mut side = writer(&dir.start_run("web", "side").unwrap());
            side.write_all(b"side 1\n").unwrap();
            w.write_all(b"cut by ").unwrap();
            // 19 bytes, within twice the limit: copied whole.
            assert!(rotate_if_needed(&web, 10).unwrap().is_some());
            w.write_all(b"rotation\n").unwrap();
            expect_lines(&mut rx, &[line("web", "side", "side 1")]).await;
            expect_lines(&mut rx, &[line("web", "srv", "cut by rotation")]).await;

            // A new run: the old run's unfinished line ends there.
            w.write_all(b"no newline").unwrap();
            dir.start_run("web", "srv").unwrap();
            writer(&web).write_all(b"run 2\n").unwrap();
            expect_lines(
                &mut rx,
                &[
                    line("web", "srv", "no newline"),
                    line("web", "srv", "run 2"),
                ],
            )
            .await;

            // A removed pod delivers its unfinished line.
            side.write_all(b"bye").unwrap();
            dir.remove_pod("web").unwrap();
            expect_lines(&mut rx, &[line("web", "side", "bye")]).await;
        };
        tokio::select! {
            r = streamed => panic!("stream_all ended: {r:?}"),
            () = script => {}
        }
    }
}
