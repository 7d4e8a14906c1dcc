//! `drover logs -f` served by the daemon: a chunked HTTP/1.1 body that
//! streams one process's log as it grows.
//!
//! The loop task only looks the pod up and hands out the path (see
//! `Daemon::api_logs`); the streaming runs in the connection's own task
//! (a [`LogBody`] fed by [`agent::logs::Follow`]), so a client that
//! follows for hours costs the loop nothing, as `/v1/watch` long polls do.
//! The loop keeps one entry per stream in [`Follows`] and closes it when
//! the pod is deleted or has finished.
//!
//! A stream ends, as `kubectl logs -f` does, when the client disconnects
//! or when no more output can come: the pod was deleted (its log folder
//! goes) or finished (Succeeded/Failed). Unlike kubectl, whose follow ends
//! when the container exits, it goes on across restarts, like `tail -F`:
//! a crash-looping process is followed through each new run.
//!
//! [`agent::logs::Follow`]: crate::agent::logs::Follow

use super::http::{ApiReply, LogFollow};
use crate::agent::logs::Follow;
use crate::api::Pod;
use crate::store::Store;
use bytes::Bytes;
use hyper::body::{Body, Frame};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, DuplexStream, ReadBuf};
use tokio::sync::oneshot;

/// Bytes in flight between the follower and the connection: a slow
/// client holds the follower back (it reads the file no faster than the
/// client takes it) instead of growing memory.
const PIPE: usize = 64 * 1024;

/// Streams the loop has handed out, one entry per `logs -f`.
#[derive(Debug, Default)]
pub(crate) struct Follows(Vec<Followed>);

#[derive(Debug)]
struct Followed {
    pod: String,
    uid: String,
    /// Dropped to end the stream: its receiver is `LogFollow::until`.
    done: oneshot::Sender<()>,
}

impl Follows {
    /// A stream of pod `pod` (with `uid`) starts; it ends when the
    /// returned receiver closes.
    pub(crate) fn add(&mut self, pod: &str, uid: &str) -> oneshot::Receiver<()> {
        let (done, until) = oneshot::channel();
        self.0.push(Followed {
            pod: pod.to_string(),
            uid: uid.to_string(),
            done,
        });
        until
    }

    /// Ends the streams whose pod is deleted or finished, and forgets those
    /// whose client went away. Called by the loop after every event: a
    /// look-up per open stream, nothing when there is none.
    pub(crate) fn end_finished(&mut self, store: &Store) {
        self.0
            .retain(|f| !f.done.is_closed() && more_output_may_come(store.pod(&f.pod), &f.uid));
    }
}

/// Whether the pod a stream follows (`uid`) may still write: it exists
/// (not replaced by a namesake) and has not finished.
fn more_output_may_come(pod: Option<&Pod>, uid: &str) -> bool {
    pod.is_some_and(|p| p.metadata.uid == uid && !p.is_terminal())
}

/// Opens the log for `f` and starts its follower; the answer to send is the
/// returned body, or an error when there is nothing to follow yet.
pub(super) fn start(f: LogFollow) -> Result<LogBody, ApiReply> {
    let follow = match Follow::open(&f.path, f.tail) {
        Ok(follow) => follow,
        // No folder: the process has not started on this node yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ApiReply::error(
                400,
                format!(
                    "process \"{}\" in pod \"{}\" is waiting to start",
                    f.process, f.pod
                ),
            ))
        }
        Err(e) => {
            return Err(ApiReply::error(
                500,
                format!("following {}: {e}", f.path.display()),
            ))
        }
    };
    let (mut pipe, rd) = tokio::io::duplex(PIPE);
    let (client, client_gone) = oneshot::channel::<()>();
    let (failure, failed) = oneshot::channel();
    let until = f.until;
    tokio::spawn(async move {
        let end = async {
            let _ = until.await;
        };
        let result = tokio::select! {
            r = follow.run(&mut pipe, end) => r,
            // hyper dropped the body: the client is gone. Noticed here
            // even while the log is idle, so an abandoned stream does not
            // hold its inotify fd until the next write.
            _ = client_gone => return,
        };
        if let Err(e) = result {
            let _ = failure.send(e);
        }
        // Dropping `pipe` ends the body.
    });
    Ok(LogBody {
        rd,
        scratch: vec![0; PIPE].into_boxed_slice(),
        failed,
        _client: client,
    })
}

/// The response body of a `logs -f`: what the follower writes into the
/// pipe, in chunks. Ends when the follower does; if it failed, the error
/// aborts the response, so the client sees a broken stream, not a clean
/// end.
pub(super) struct LogBody {
    rd: DuplexStream,
    scratch: Box<[u8]>,
    failed: oneshot::Receiver<io::Error>,
    /// Dropped with the body (the client went away): stops the follower.
    _client: oneshot::Sender<()>,
}

impl Body for LogBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let mut buf = ReadBuf::new(&mut this.scratch);
        ready!(Pin::new(&mut this.rd).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            // The follower sends its error before it drops the pipe, so
            // at this point `failed` is decided either way.
            return match Pin::new(&mut this.failed).poll(cx) {
                Poll::Ready(Ok(e)) => Poll::Ready(Some(Err(e))),
                _ => Poll::Ready(None),
            };
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(buf.filled())))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodPhase;

    fn pod(uid: &str, phase: PodPhase) -> Pod {
        let mut p = crate::controllers::fixtures::pod("web");
        p.metadata.uid = uid.into();
        p.status.phase = phase;
        p
    }

    #[test]
    fn a_stream_ends_when_its_pod_is_gone_replaced_or_finished() {
        let cases = [
            (None, false),
            (Some(pod("u1", PodPhase::Pending)), true),
            (Some(pod("u1", PodPhase::Running)), true),
            (Some(pod("u1", PodPhase::Succeeded)), false),
            (Some(pod("u1", PodPhase::Failed)), false),
            // Deleted and created again under the same name.
            (Some(pod("u2", PodPhase::Running)), false),
        ];
        for (p, want) in cases {
            assert_eq!(more_output_may_come(p.as_ref(), "u1"), want, "{p:?}");
        }
    }
}
