//! The HTTP/1.1 server on the control socket. It only parses and answers:
//! every request is handed to the daemon loop (which owns the store) as an
//! [`ApiRequest`] and its [`ApiReply`] is sent back. The one exception is
//! the long poll `/v1/watch`, answered here from the store's revision
//! channel so a waiting client costs the loop nothing. A `logs -f` is
//! handed to the loop like any request, and streamed here once the loop
//! answered with the log to follow (`log_stream`).
//! Routes: see `crate::api::http`.

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    /// Path segments after `/v1/`, e.g. ["pods", "web-x1", "logs"].
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

#[derive(Debug)]
pub struct ApiReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A `logs -f` to stream instead of `body` (see `log_stream`); boxed,
    /// as it is rare and every other reply carries it.
    pub follow: Option<Box<LogFollow>>,
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
            follow: None,
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
            follow: None,
        }
    }

    /// `logs -f`: streamed by the HTTP task, not sent from the loop.
    pub fn follow(follow: LogFollow) -> ApiReply {
        ApiReply {
            follow: Some(Box::new(follow)),
            ..ApiReply::text(vec![])
        }
    }
}

pub type ApiSender = mpsc::Sender<(ApiRequest, oneshot::Sender<ApiReply>)>;

pub async fn serve(listener: UnixListener, tx: ApiSender, revisions: watch::Receiver<u64>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("accept on control socket: {e}");
                continue;
            }
        };
        let tx = tx.clone();
        let revisions = revisions.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handle(req, tx.clone(), revisions.clone()));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

/// A whole answer, or a `logs -f` stream.
type ReplyBody = Either<Full<Bytes>, super::log_stream::LogBody>;

async fn handle(
    req: Request<Incoming>,
    tx: ApiSender,
    revisions: watch::Receiver<u64>,
) -> Result<Response<ReplyBody>, std::convert::Infallible> {
    let mut reply = route(req, tx, revisions).await;
    let body = match reply.follow.take().map(|f| super::log_stream::start(*f)) {
        Some(Ok(stream)) => Either::Right(stream),
        Some(Err(refused)) => {
            reply = refused;
            Either::Left(Full::new(Bytes::from(std::mem::take(&mut reply.body))))
        }
        None => Either::Left(Full::new(Bytes::from(std::mem::take(&mut reply.body)))),
    };
    let resp = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(body)
        .expect("valid response");
    Ok(resp)
}

async fn route(req: Request<Incoming>, tx: ApiSender, revisions: watch::Receiver<u64>) -> ApiReply {
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
        return watch_revision(revisions, &query).await;
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiReply::error(400, format!("reading request body: {e}")),
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let request = ApiRequest {
        method,
        segments,
        query,
        body,
    };
    if tx.send((request, reply_tx)).await.is_err() {
        return ApiReply::error(503, "the daemon is shutting down");
    }
    reply_rx
        .await
        .unwrap_or_else(|_| ApiReply::error(503, "the daemon is shutting down"))
}

/// Long poll: answers once the store's revision passes `since` (or after
/// `timeout` seconds, default 30) with the current revision.
async fn watch_revision(
    mut revisions: watch::Receiver<u64>,
    query: &HashMap<String, String>,
) -> ApiReply {
    let since: u64 = query.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs: u64 = query
        .get("timeout")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let _ = tokio::time::timeout(
        Duration::from_secs(secs),
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

    #[test]
    fn decodes_selectors() {
        let q = parse_query("selector=app%3Dweb%2Ctier+in+(a%2Cb)&since=4");
        assert_eq!(q["selector"], "app=web,tier in (a,b)");
        assert_eq!(q["since"], "4");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
