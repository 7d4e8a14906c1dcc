//! Network probes: HTTP GET (hyper, HTTP/1.1) and TCP connect, each within
//! its timeout. They run as tasks of their own, so a hung server delays
//! nothing but its own probe. Messages follow the kubelet's wording, since
//! users grep for them: "HTTP probe failed with statuscode: 500",
//! "dial tcp 127.0.0.1:8080: connect: connection refused".

use super::probe::{Check, ProbeResult};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// Runs an HTTP or TCP check. (Exec checks go through the runtime.)
pub async fn run(check: Check) -> ProbeResult {
    match check {
        Check::Http {
            host,
            port,
            path,
            headers,
            timeout,
        } => within(timeout, http_get(&host, port, &path, &headers)).await,
        Check::Tcp {
            host,
            port,
            timeout,
        } => within(timeout, tcp_connect(&host, port)).await,
        Check::Exec { .. } => ProbeResult::Failure {
            message: "exec probes run through the runtime".into(),
        },
    }
}

async fn within(
    timeout: Duration,
    f: impl std::future::Future<Output = ProbeResult>,
) -> ProbeResult {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => ProbeResult::Failure {
            message: format!(
                "timeout after {}",
                crate::api::duration::format_duration(timeout)
            ),
        },
    }
}

fn dial_error(host: &str, port: u16, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {host}:{port}: connect: {what}")
}

async fn tcp_connect(host: &str, port: u16) -> ProbeResult {
    match TcpStream::connect((host, port)).await {
        Ok(_) => ProbeResult::Success,
        Err(e) => ProbeResult::Failure {
            message: dial_error(host, port, &e),
        },
    }
}

async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> ProbeResult {
    let url = format!("http://{host}:{port}{path}");
    let stream = match TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => {
            return ProbeResult::Failure {
                message: format!("Get \"{url}\": {}", dial_error(host, port, &e)),
            }
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => {
            return ProbeResult::Failure {
                message: format!("Get \"{url}\": {e}"),
            }
        }
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::get(path)
        .header("host", format!("{host}:{port}"))
        .header(
            "user-agent",
            concat!("drover-probe/", env!("CARGO_PKG_VERSION")),
        )
        .header("accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = match req.body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return ProbeResult::Failure {
                message: format!("Get \"{url}\": {e}"),
            };
        }
    };
    let result = match sender.send_request(req).await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if (200..400).contains(&code) {
                ProbeResult::Success
            } else {
                ProbeResult::Failure {
                    message: format!("HTTP probe failed with statuscode: {code}"),
                }
            }
        }
        Err(e) => ProbeResult::Failure {
            message: format!("Get \"{url}\": {e}"),
        },
    };
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A real HTTP server on loopback answering each request with `status`.
    async fn server(status: u16) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let body = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                let _ = s.write_all(body.as_bytes()).await;
            }
        });
        (port, task)
    }

    fn http(port: u16) -> Check {
        Check::Http {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
            headers: Default::default(),
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn http_status_decides() {
        let (ok, t1) = server(204).await;
        assert_eq!(run(http(ok)).await, ProbeResult::Success);
        let (redirect, t2) = server(302).await;
        assert_eq!(run(http(redirect)).await, ProbeResult::Success);
        let (bad, t3) = server(500).await;
        assert_eq!(
            run(http(bad)).await,
            ProbeResult::Failure {
                message: "HTTP probe failed with statuscode: 500".into()
            }
        );
        for t in [t1, t2, t3] {
            t.abort();
        }
    }

    #[tokio::test]
    async fn refused_and_hung_servers_fail_with_the_reason() {
        // A port nobody listens on: bind, learn it, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let tcp = Check::Tcp {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_secs(2),
        };
        match run(tcp).await {
            ProbeResult::Failure { message } => assert_eq!(
                message,
                format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
            ),
            other => panic!("{other:?}"),
        }
        // Accepts but never answers: the timeout speaks.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hung = listener.local_addr().unwrap().port();
        let check = Check::Http {
            host: "127.0.0.1".into(),
            port: hung,
            path: "/".into(),
            headers: Default::default(),
            timeout: Duration::from_millis(200),
        };
        assert_eq!(
            run(check).await,
            ProbeResult::Failure {
                message: "timeout after 200ms".into()
            }
        );
        drop(listener);
    }
}
