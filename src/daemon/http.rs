//! The HTTP/1.1 server on the control socket. It only parses and answers:
//! every request is handed to the daemon loop (which owns the store) as an
//! [`ApiRequest`] and its [`ApiReply`] is sent back. The one exception is
//! the long poll `/v1/watch`, answered here from the store's revision
//! channel so a waiting client costs the loop nothing. A `logs -f` is
//! handed to the loop like any request, and streamed here once the loop
//! answered with the log to follow (`log_stream`).
//! Routes: see `crate::api::http`.
//!
//! Each connection is identified once, by the kernel (SO_PEERCRED), into
//! the [`Caller`] every request on it carries; a caller that is neither
//! root nor a member of the socket group gets 403 to everything and is
//! never read further. How many connections, how big and how slow a
//! request may be, and how accept failures are retried: `connections.rs`.

use super::accounts::Accounts;
use super::auth::{Caller, Role};
use super::connections::{is_exhaustion, Backoff, Limits, Peer, Room, Table, Ticket};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    /// Path segments after `/v1/`, e.g. ["pods", "web-x1", "logs"].
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Bytes,
    /// Who sent it, from the kernel: never from the request itself.
    pub caller: Caller,
}

#[derive(Debug)]
pub struct ApiReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A `logs -f` to stream instead of `body`; boxed, as it is rare and
    /// every other reply carries it.
    pub stream: Option<Box<Stream>>,
}

/// What a `logs -f` answer streams.
#[derive(Debug)]
pub enum Stream {
    /// A log of this node's, followed here (see `log_stream`).
    Log(LogFollow),
    /// Another node's stream of a pod it runs, relayed as it comes (see
    /// `peer::ask`).
    Relayed(crate::cluster::peer::PeerBody),
}

/// The loop's answer to a `logs -f`: which log to stream, from how far
/// back, and until when.
#[derive(Debug)]
pub struct LogFollow {
    pub pod: String,
    pub process: String,
    pub path: PathBuf,
    /// The last N lines first (all of the file with None).
    pub tail: Option<usize>,
    /// Closed by the loop once the pod is deleted or finished.
    pub until: oneshot::Receiver<()>,
}

impl ApiReply {
    /// Pretty JSON with kubectl's four-space indent: `drover get -o json`
    /// prints these bytes as they come.
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> ApiReply {
        let mut body = Vec::with_capacity(4096);
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut body, formatter);
        value.serialize(&mut ser).expect("serialisable");
        ApiReply {
            status,
            content_type: "application/json",
            body,
            stream: None,
        }
    }

    pub fn error(status: u16, message: impl Into<String>) -> ApiReply {
        ApiReply::json(
            status,
            &crate::api::http::ErrorBody {
                error: message.into(),
            },
        )
    }

    pub fn text(body: Vec<u8>) -> ApiReply {
        ApiReply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body,
            stream: None,
        }
    }

    /// The body of a `logs -f` answer, opened (a log of this node's) or
    /// as relayed; None: the answer is `body`. A log that cannot be
    /// opened turns this reply into the error to send instead.
    pub(super) fn open_stream(&mut self) -> Option<crate::cluster::peer::PeerBody> {
        let opened = match *self.stream.take()? {
            Stream::Log(f) => super::log_stream::start(f).map(BodyExt::boxed),
            Stream::Relayed(body) => Ok(body),
        };
        match opened {
            Ok(body) => Some(body),
            Err(refused) => {
                *self = refused;
                None
            }
        }
    }

    /// `logs -f`: streamed by the HTTP task, not sent from the loop.
    pub fn follow(follow: LogFollow) -> ApiReply {
        ApiReply {
            stream: Some(Box::new(Stream::Log(follow))),
            ..ApiReply::text(vec![])
        }
    }
}

pub type ApiSender = mpsc::Sender<(ApiRequest, oneshot::Sender<ApiReply>)>;

/// What the front door needs to know besides the socket.
#[derive(Clone, Debug)]
pub struct FrontDoor {
    pub limits: Limits,
    /// The daemon's own uid: root for the rules (see `auth`).
    pub daemon_uid: u32,
    /// Its account name, for the record.
    pub daemon_name: Option<String>,
    /// The group whose members may use the socket (`drover`).
    pub group: String,
}

impl FrontDoor {
    /// The caller on `stream`, by SO_PEERCRED. Accounts are read only for
    /// callers that are not root (membership, name).
    fn identify(&self, stream: &UnixStream) -> Option<Caller> {
        let cred = stream.peer_cred().ok()?;
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        if uid == 0 || uid == self.daemon_uid {
            let name = match uid {
                0 => Some("root".to_string()),
                _ => self.daemon_name.clone(),
            };
            return Some(Caller {
                uid,
                gid,
                pid,
                name,
                role: Role::Root,
            });
        }
        let accounts = Accounts::read();
        let group = accounts.gid_of(&self.group);
        Some(Caller::identify(
            uid,
            gid,
            pid,
            self.daemon_uid,
            group,
            &accounts,
        ))
    }
}

/// Where connections come from: the control socket, or a test's script.
pub trait Acceptor {
    fn accept(&mut self) -> impl std::future::Future<Output = std::io::Result<UnixStream>>;
}

impl Acceptor for UnixListener {
    async fn accept(&mut self) -> std::io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Accepts connections until the daemon exits (see `connections.rs` for
/// the cap, the eviction of idle connections and the accept back-off).
pub async fn serve(
    listener: impl Acceptor,
    tx: ApiSender,
    revisions: watch::Receiver<u64>,
    door: FrontDoor,
) {
    let mut listener = listener;
    let table = Table::new(door.limits.max_connections);
    let door = Arc::new(door);
    let mut backoff = Backoff::new();
    loop {
        let (ticket, closed) = match table.admit(Instant::now()) {
            Room::Yes(ticket, closed) => (ticket, closed),
            Room::Wait(until) => {
                // At the cap: new clients wait in the kernel's backlog
                // until a connection ends, or one is (or has been long
                // enough) idle to be closed.
                let until = until.map(tokio::time::Instant::from_std);
                tokio::select! {
                    _ = table.changed() => {}
                    _ = sleep_until(until) => {}
                }
                continue;
            }
        };
        let stream = match listener.accept().await {
            Ok(stream) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                drop(ticket);
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO)
                ) {
                    // That one connection failed; the next may not.
                    continue;
                }
                if is_exhaustion(&e) {
                    // Free a descriptor for the next try, if any is idle.
                    table.close_oldest_idle(Instant::now());
                }
                // The same words every time, so `log_limit` can fold a
                // long run of them into one line and a count.
                tracing::warn!("accept on the control socket: {e} (retrying with back-off)");
                tokio::time::sleep(backoff.failed()).await;
                continue;
            }
        };
        tokio::spawn(connection(
            stream,
            ticket,
            closed,
            door.clone(),
            tx.clone(),
            revisions.clone(),
        ));
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves one connection until it ends, times out, or is asked to close to
/// make room.
async fn connection(
    stream: UnixStream,
    ticket: Ticket,
    closed: oneshot::Receiver<()>,
    door: Arc<FrontDoor>,
    tx: ApiSender,
    revisions: watch::Receiver<u64>,
) {
    let caller = door.identify(&stream);
    let peer = Peer {
        pid: caller.as_ref().and_then(|c| c.pid),
        uid: caller.as_ref().map(|c| c.uid),
        root: caller.as_ref().is_some_and(|c| c.role == Role::Root),
    };
    ticket.started(Instant::now(), peer);
    let refused = peer_refused(&caller);
    let limits = door.limits;
    let ticket = Arc::new(ticket);
    let service = {
        let ticket = ticket.clone();
        hyper::service::service_fn(move |req| {
            let (ticket, tx, revisions, caller) = (
                ticket.clone(),
                tx.clone(),
                revisions.clone(),
                caller.clone(),
            );
            async move {
                ticket.busy();
                let reply = match caller {
                    Some(c) if c.role != Role::Outsider => {
                        route(req, c, tx, revisions, &limits).await
                    }
                    // Refused before anything is read: the body of an
                    // outsider's request is never looked at.
                    Some(c) => refuse_outsider(&c),
                    None => ApiReply::error(403, "the caller's credentials cannot be read"),
                };
                Ok::<_, std::convert::Infallible>(response(reply, &ticket))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // An outsider's connection ends with its one 403.
        .keep_alive(!refused)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header)
        .max_headers(limits.max_headers);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!("connection: {e}");
            }
        }
        // Closed to make room (the oldest idle connection at the cap).
        _ = closed => {}
    }
    drop(ticket);
}

/// Whether every request on this connection is refused.
fn peer_refused(caller: &Option<Caller>) -> bool {
    caller.as_ref().is_none_or(|c| c.role == Role::Outsider)
}

fn refuse_outsider(caller: &Caller) -> ApiReply {
    match super::auth::decide(
        caller,
        super::auth::Action::Read,
        None,
        &Accounts::default(),
    ) {
        super::auth::Decision::Deny(why) => ApiReply::error(403, why),
        super::auth::Decision::Allow => ApiReply::error(403, "refused"),
    }
}

/// A whole answer, or a `logs -f` stream.
type ReplyBody = Either<Full<Bytes>, Streaming>;

/// The response to `reply`. Its connection turns idle now, or, for a
/// `logs -f` stream, once the stream ends.
fn response(mut reply: ApiReply, ticket: &Arc<Ticket>) -> Response<ReplyBody> {
    let body = match reply.open_stream() {
        Some(body) => Either::Right(Streaming {
            body,
            ticket: ticket.clone(),
        }),
        None => Either::Left(Full::new(Bytes::from(std::mem::take(&mut reply.body)))),
    };
    if let Either::Left(_) = body {
        ticket.idle(Instant::now());
    }
    Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(body)
        .expect("valid response")
}

/// A `logs -f` body. Its connection stays busy while it streams, so it is
/// never the idle one closed to make room at the cap (nor timed out as
/// idle); it turns idle when the stream ends or the client goes.
struct Streaming {
    body: crate::cluster::peer::PeerBody,
    ticket: Arc<Ticket>,
}

impl hyper::body::Body for Streaming {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.ticket.idle(Instant::now());
    }
}

async fn route(
    req: Request<Incoming>,
    caller: Caller,
    tx: ApiSender,
    revisions: watch::Receiver<u64>,
    limits: &Limits,
) -> ApiReply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let Some(rest) = path.strip_prefix("/v1/") else {
        return ApiReply::error(404, format!("no route {path}: the API lives under /v1/"));
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if method == Method::GET && segments.len() == 1 && segments[0] == "watch" {
        return watch_revision(revisions, &query, limits.max_watch).await;
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return too_large(limits);
    }
    let body = Limited::new(req.into_body(), limits.max_body).collect();
    let body = match tokio::time::timeout(limits.body_timeout, body).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(limits),
        Ok(Err(e)) => return ApiReply::error(400, format!("reading request body: {e}")),
        Err(_) => {
            return ApiReply::error(
                408,
                format!(
                    "the request body did not arrive within {}s",
                    limits.body_timeout.as_secs()
                ),
            )
        }
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let request = ApiRequest {
        method,
        segments,
        query,
        body,
        caller,
    };
    if tx.send((request, reply_tx)).await.is_err() {
        return ApiReply::error(503, "the daemon is shutting down");
    }
    reply_rx
        .await
        .unwrap_or_else(|_| ApiReply::error(503, "the daemon is shutting down"))
}

fn too_large(limits: &Limits) -> ApiReply {
    ApiReply::error(
        413,
        format!(
            "request body too large: the limit is {} MiB (apply fewer units at once)",
            limits.max_body >> 20
        ),
    )
}

/// Long poll: answers once the store's revision passes `since` (or after
/// `timeout` seconds, default 30, at most `max`) with the current
/// revision.
async fn watch_revision(
    mut revisions: watch::Receiver<u64>,
    query: &HashMap<String, String>,
    max: Duration,
) -> ApiReply {
    let since: u64 = query.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs: u64 = query
        .get("timeout")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let _ = tokio::time::timeout(
        Duration::from_secs(secs).min(max),
        revisions.wait_for(|r| *r > since),
    )
    .await;
    let revision = *revisions.borrow();
    ApiReply::json(200, &crate::api::http::WatchResponse { revision })
}

pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// `%XX` and `+` decoding of a URL component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An accept that fails with `errno` every time, recording when it
    /// was called (tokio's clock, paused in the test).
    struct Failing {
        errno: i32,
        calls: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
    }

    impl Acceptor for Failing {
        async fn accept(&mut self) -> std::io::Result<UnixStream> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(tokio::time::Instant::now());
                calls.len()
            };
            if n > 100 {
                // A loop that retries without pausing got here at once;
                // stop it so the assertions can say so.
                std::future::pending::<()>().await;
            }
            Err(std::io::Error::from_raw_os_error(self.errno))
        }
    }

    /// Issue 9: EMFILE on accept was retried at once, forever: 25,859
    /// warnings in a millisecond, and the daemon's one thread never ran
    /// anything else. Now: 10 ms, doubling to 1 s, and other tasks run.
    #[tokio::test(start_paused = true)]
    async fn accept_failures_back_off_instead_of_spinning() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EIO] {
            let calls = Arc::new(std::sync::Mutex::new(vec![]));
            let (tx, _rx) = mpsc::channel(1);
            let (_rev_tx, revisions) = watch::channel(0);
            let door = FrontDoor {
                limits: Limits::for_fd_limit(1024),
                daemon_uid: 0,
                daemon_name: None,
                group: "drover".into(),
            };
            let acceptor = Failing {
                errno,
                calls: calls.clone(),
            };
            let start = tokio::time::Instant::now();
            let server = tokio::spawn(serve(acceptor, tx, revisions, door));
            // Another task gets its turns meanwhile (a spin would starve
            // it on this one thread, and the paused clock would never
            // move).
            tokio::time::sleep(Duration::from_secs(10)).await;
            server.abort();
            let calls = calls.lock().unwrap().clone();
            let offsets: Vec<u64> = calls
                .iter()
                .map(|t| (*t - start).as_millis() as u64)
                .collect();
            // 0, 10, 30, 70, 150, 310, 630, 1270, then every second.
            assert_eq!(
                &offsets[..9],
                [0, 10, 30, 70, 150, 310, 630, 1270, 2270],
                "errno {errno}"
            );
            assert!(
                calls.len() <= 18,
                "errno {errno}: {} attempts in 10s",
                calls.len()
            );
        }
    }

    #[test]
    fn decodes_selectors() {
        let q = parse_query("selector=app%3Dweb%2Ctier+in+(a%2Cb)&since=4");
        assert_eq!(q["selector"], "app=web,tier in (a,b)");
        assert_eq!(q["since"], "4");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
