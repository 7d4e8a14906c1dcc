//! The node-to-node listener: HTTP/1.1 over mutual TLS (or plain, on
//! loopback, when the cluster has no certificates), handing each request
//! to a handler the daemon gives (which answers from its own node: a
//! pod's logs, its events).
//!
//! Only GET is served: other nodes read through it, they never change
//! anything (changes go through etcd). Handshakes that stall are dropped
//! after [`HANDSHAKE_TIMEOUT`], and at most [`MAX_CONNECTIONS`] are served
//! at once, so a stuck or hostile peer cannot pile up tasks.
//!
//! Must not: touch the daemon's state itself (the handler does), or serve
//! a TLS client without a certificate from the cluster's CA.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 64;

/// A response body: whole, or streamed (`logs -f`).
pub type PeerBody = BoxBody<Bytes, std::io::Error>;

/// One request from another node.
#[derive(Clone, Debug)]
pub struct PeerRequest {
    pub method: Method,
    /// The path, e.g. `/v1/pods/web-x2k9q/logs`.
    pub path: String,
    pub query: Option<String>,
    /// The caller presented a certificate from the cluster's CA.
    pub authenticated: bool,
}

pub type Handler = Arc<
    dyn Fn(PeerRequest) -> Pin<Box<dyn Future<Output = Response<PeerBody>> + Send>> + Send + Sync,
>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> PeerBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A plain-text response.
pub fn text(status: u16, body: impl Into<Bytes>) -> Response<PeerBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(body))
        .expect("a valid response")
}

pub struct PeerServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PeerServer {
    /// Binds `listen` and serves until dropped. With `tls`, every client
    /// must present a certificate the config's verifier accepts.
    pub async fn bind(
        listen: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
        handler: Handler,
    ) -> std::io::Result<PeerServer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, tls.map(TlsAcceptor::from), handler));
        Ok(PeerServer { addr, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Handler) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut pause = Duration::from_millis(10);
    loop {
        let permit = match slots.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => {
                pause = Duration::from_millis(10);
                s
            }
            Err(e) => {
                // Out of descriptors and the like: back off, never spin.
                tracing::warn!("node-to-node listener: accept: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let tls = tls.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let accepted =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match accepted {
                        Ok(Ok(stream)) => serve(stream, true, handler).await,
                        Ok(Err(e)) => tracing::info!("node-to-node: {peer} refused: {e}"),
                        Err(_) => tracing::info!("node-to-node: {peer}: handshake timed out"),
                    }
                }
                None => serve(stream, false, handler).await,
            }
        });
    }
}

async fn serve<S>(stream: S, authenticated: bool, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        async move {
            if req.method() != Method::GET {
                return Ok::<_, std::convert::Infallible>(text(
                    405,
                    "the node-to-node channel only reads",
                ));
            }
            let request = PeerRequest {
                method: req.method().clone(),
                path: req.uri().path().to_string(),
                query: req.uri().query().map(str::to_string),
                authenticated,
            };
            Ok(handler(request).await)
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("node-to-node connection: {e}");
    }
}
