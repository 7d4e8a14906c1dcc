//! Asking another node: one HTTP/1.1 GET per connection, over mutual TLS
//! when the cluster has certificates (the server's certificate must name
//! the address dialled), plain otherwise (loopback clusters).
//!
//! Must not: send anything but GET, or wait past its timeout for a
//! connection or a response's head (a streamed body may last longer: the
//! caller reads it as it comes).

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("node {node} ({addr}): {reason}")]
    Unreachable {
        node: String,
        addr: String,
        reason: String,
    },
    #[error("node {node} has not published an address (is it running this drover?)")]
    NoAddress { node: String },
}

#[derive(Clone)]
pub struct PeerClient {
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl PeerClient {
    pub fn new(tls: Option<Arc<ClientConfig>>) -> PeerClient {
        PeerClient {
            tls,
            timeout: Duration::from_secs(5),
        }
    }

    /// GET `path_and_query` from `node` at `addr` (`HOST:PORT`).
    pub async fn get(
        &self,
        node: &str,
        addr: &str,
        path_and_query: &str,
    ) -> Result<Response<Incoming>, PeerError> {
        let fail = |reason: String| PeerError::Unreachable {
            node: node.to_string(),
            addr: addr.to_string(),
            reason,
        };
        let request = Request::get(path_and_query)
            .header("host", addr)
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let attempt = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| fail(format!("connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                Some(config) => {
                    let host = host_of(addr);
                    let name = ServerName::try_from(host.to_string())
                        .map_err(|e| fail(format!("server name {host}: {e}")))?;
                    let stream = TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| fail(format!("TLS: {e}")))?;
                    send(stream, request).await.map_err(fail)
                }
                None => send(tcp, request).await.map_err(fail),
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))?
    }
}

async fn send<S>(stream: S, request: Request<Empty<Bytes>>) -> Result<Response<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))
}

/// The host part of `HOST:PORT` (`[::1]:80` gives `::1`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("10.0.0.5:10250"), "10.0.0.5");
        assert_eq!(host_of("[::1]:10250"), "::1");
        assert_eq!(host_of("node-a.lan:1"), "node-a.lan");
    }
}
