//! HTTP+JSON client for the daemon's unix socket (the contract is
//! `api::http`). One connection per request: the CLI makes a handful of
//! requests per invocation, and a fresh connection keeps a long poll from
//! holding up anything else.
//!
//! This module knows routes and bodies, not what the CLI prints.

use crate::api::http::{ErrorBody, WatchResponse};
use crate::api::Kind;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers on the socket (missing, refused, not allowed).
    #[error("{}", unreachable_message(.socket, .error))]
    Unreachable { socket: PathBuf, error: io::Error },
    /// The daemon answered with an error status; `message` is its
    /// `ErrorBody.error` (or the raw body when that is not JSON).
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    /// The connection broke during the exchange.
    #[error("talking to the drover daemon at {}: {error}", .socket.display())]
    Http {
        socket: PathBuf,
        error: hyper::Error,
    },
    /// A 2xx answer whose body is not what the route promises.
    #[error("unexpected answer from the drover daemon to {path}: {error}")]
    Decode {
        path: String,
        error: serde_json::Error,
    },
}

impl ClientError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if *status == StatusCode::CONFLICT)
    }
}

/// "cannot reach the drover daemon at PATH: No such file or directory (is
/// it running? ...)": the errno text without Rust's "(os error 2)" suffix,
/// and a hint that fits the cause.
fn unreachable_message(socket: &Path, error: &io::Error) -> String {
    let reason = match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    };
    let hint = match error.kind() {
        io::ErrorKind::PermissionDenied => {
            "(the socket is for root and the drover group: run as root, or join the group with \
             `adduser USER drover` and log in again)"
        }
        _ => "(is it running? start it with `drover daemon` or `drover up`)",
    };
    format!(
        "cannot reach the drover daemon at {}: {reason} {hint}",
        socket.display()
    )
}

/// A client for one daemon, addressed by its socket path.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request and returns the body of a 2xx answer; a non-2xx
    /// answer becomes [`ClientError::Api`]. Must run inside a tokio runtime
    /// (the connection is driven by a spawned task).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let (response, driver) = self.send(method, path, body).await?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_err(e))?
            .to_bytes();
        driver.abort();
        Ok(bytes)
    }

    /// GET a streamed answer (`logs -f`): `each` gets every chunk as it
    /// arrives, until the daemon ends the stream. A stream the daemon
    /// breaks off (it failed, or it stopped) is [`ClientError::Http`];
    /// an error from `each` stops reading and is returned as is.
    pub async fn get_stream(
        &self,
        path: &str,
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<io::Result<()>, ClientError> {
        let (response, driver) = self.send(Method::GET, path, None).await?;
        let mut body = response.into_body();
        let result = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(e)) => {
                    driver.abort();
                    return Err(self.http_err(e));
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        if let Err(e) = each(data) {
                            break Err(e);
                        }
                    }
                }
            }
        };
        driver.abort();
        Ok(result)
    }

    /// Connects, sends, and returns a 2xx response (its body not read yet)
    /// with the task driving the connection; a non-2xx answer becomes
    /// [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            tokio::task::JoinHandle<()>,
        ),
        ClientError,
    > {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|error| ClientError::Unreachable {
                socket: self.socket.clone(),
                error,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_err(e))?;
        let driver = tokio::spawn(async move {
            // Errors surface through `send_request` too; nothing to add.
            let _ = conn.await;
        });

        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "drover");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("method, path and headers are valid");
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.http_err(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok((response, driver));
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_err(e))?
            .to_bytes();
        driver.abort();
        Err(ClientError::Api {
            status,
            message: error_message(status, &bytes),
        })
    }

    fn http_err(&self, error: hyper::Error) -> ClientError {
        ClientError::Http {
            socket: self.socket.clone(),
            error,
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.request(Method::GET, path, None).await?;
        decode(path, &bytes)
    }

    /// The answer as plain bytes (logs).
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes, ClientError> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).expect("request bodies serialise");
        let bytes = self.request(Method::POST, path, Some(body)).await?;
        decode(path, &bytes)
    }

    /// POST without a body (restart, cordon, reload).
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.request(Method::POST, path, None).await?;
        decode(path, &bytes)
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.request(Method::DELETE, path, None).await?;
        decode(path, &bytes)
    }

    /// Long poll: answers once the store's revision passes `since`, or
    /// after `timeout_secs` with the revision unchanged.
    pub async fn watch(&self, since: u64, timeout_secs: u64) -> Result<u64, ClientError> {
        let path = format!("/v1/watch?since={since}&timeout={timeout_secs}");
        let w: WatchResponse = self.get(&path).await?;
        Ok(w.revision)
    }

    /// The store's current revision, without waiting.
    pub async fn revision(&self) -> Result<u64, ClientError> {
        self.watch(0, 0).await
    }
}

/// `/v1/{plural}/{name}`.
pub fn object_path(kind: Kind, name: &str) -> String {
    format!("/v1/{}/{}", kind.plural(), encode(name))
}

/// `/v1/{plural}`, with `?selector=` when one is given.
pub fn list_path(kind: Kind, selector: Option<&str>) -> String {
    match selector {
        Some(sel) if !sel.trim().is_empty() => {
            format!("/v1/{}?selector={}", kind.plural(), encode(sel))
        }
        _ => format!("/v1/{}", kind.plural()),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so
/// selectors (`tier in (a,b)`, `!key`) and names survive a query string.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|error| ClientError::Decode {
        path: path.to_string(),
        error,
    })
}

fn error_message(status: StatusCode, bytes: &[u8]) -> String {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
        return body.error;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        format!("the daemon answered {status}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_encoded_for_the_query_string() {
        assert_eq!(
            list_path(Kind::Pod, Some("app=web,tier in (a,b),!old")),
            "/v1/pods?selector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29%2C%21old"
        );
        assert_eq!(list_path(Kind::ReplicaSet, None), "/v1/replicasets");
        assert_eq!(object_path(Kind::Node, "n1.local"), "/v1/nodes/n1.local");
    }

    #[test]
    fn unreachable_names_the_socket_and_the_cause() {
        let err = ClientError::Unreachable {
            socket: "/run/drover/drover.sock".into(),
            error: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach the drover daemon at /run/drover/drover.sock: No such file or \
             directory (is it running? start it with `drover daemon` or `drover up`)"
        );
    }

    #[test]
    fn a_refused_caller_is_told_how_to_get_access() {
        let err = ClientError::Unreachable {
            socket: "/run/drover/drover.sock".into(),
            error: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach the drover daemon at /run/drover/drover.sock: Permission denied (the \
             socket is for root and the drover group: run as root, or join the group with \
             `adduser USER drover` and log in again)"
        );
    }

    #[test]
    fn api_errors_carry_the_server_message() {
        let msg = error_message(
            StatusCode::NOT_FOUND,
            br#"{"error":"pods \"x\" not found"}"#,
        );
        assert_eq!(msg, "pods \"x\" not found");
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b""),
            "the daemon answered 502 Bad Gateway"
        );
    }
}
