//! One probe on one line, exactly as `kubectl describe` prints it:
//! `http-get http://127.0.0.1:8080/ delay=5s timeout=1s period=10s #success=1 #failure=3`.

use crate::api::{PortRef, Probe, ProbeHandler};
use std::collections::BTreeMap;
use std::time::Duration;

/// `ports` are the pod's allocated ports: a named port is shown as the
/// number it resolved to, or by name while none is allocated.
pub fn describe_probe(probe: &Probe, ports: &BTreeMap<String, u16>) -> String {
    let attrs = format!(
        "delay={} timeout={} period={} #success={} #failure={}",
        seconds(probe.initial_delay.as_duration()),
        seconds(probe.timeout.as_duration()),
        seconds(probe.period.as_duration()),
        probe.success_threshold,
        probe.failure_threshold
    );
    match &probe.handler {
        ProbeHandler::HttpGet {
            path,
            port,
            host,
            scheme,
            ..
        } => format!(
            "http-get {}://{}{} {attrs}",
            scheme.to_ascii_lowercase(),
            host_port(host, &port_text(port, ports)),
            path
        ),
        ProbeHandler::TcpSocket { port, host } => {
            format!(
                "tcp-socket {} {attrs}",
                host_port(host, &port_text(port, ports))
            )
        }
        ProbeHandler::Exec { command } => format!("exec [{}] {attrs}", command.join(" ")),
    }
}

fn port_text(port: &PortRef, ports: &BTreeMap<String, u16>) -> String {
    match port {
        PortRef::Number(n) => n.to_string(),
        PortRef::Name(name) => ports
            .get(name)
            .map(u16::to_string)
            .unwrap_or_else(|| name.clone()),
    }
}

/// Go's `net.JoinHostPort`: IPv6 literals get brackets.
fn host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// kubectl prints probe times in whole seconds ("90s"); drover also
/// allows sub-second values, shown in milliseconds.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn http_get_like_kubectl() {
        let p =
            probe(json!({"http_get": {"path": "/healthz", "port": 8080}, "initial_delay": "5s"}));
        assert_eq!(
            describe_probe(&p, &BTreeMap::new()),
            "http-get http://127.0.0.1:8080/healthz delay=5s timeout=1s period=10s #success=1 #failure=3"
        );
    }

    #[test]
    fn named_ports_resolve_once_allocated() {
        let p = probe(json!({"http_get": {"port": "http", "scheme": "HTTPS"}, "period": "1m30s"}));
        let ports = BTreeMap::from([("http".to_string(), 8081)]);
        assert_eq!(
            describe_probe(&p, &ports),
            "http-get https://127.0.0.1:8081/ delay=0s timeout=1s period=90s #success=1 #failure=3"
        );
        assert!(
            describe_probe(&p, &BTreeMap::new()).starts_with("http-get https://127.0.0.1:http/ ")
        );
    }

    #[test]
    fn tcp_and_exec() {
        let p = probe(
            json!({"tcp_socket": {"port": 8080}, "timeout": "500ms", "failure_threshold": 5}),
        );
        assert_eq!(
            describe_probe(&p, &BTreeMap::new()),
            "tcp-socket 127.0.0.1:8080 delay=0s timeout=500ms period=10s #success=1 #failure=5"
        );
        let p = probe(json!({"tcp_socket": {"port": 53, "host": "::1"}}));
        assert!(describe_probe(&p, &BTreeMap::new()).starts_with("tcp-socket [::1]:53 "));
        let p = probe(json!({"exec": {"command": ["test", "-f", "/tmp/healthy"]}, "period": "5s"}));
        assert_eq!(
            describe_probe(&p, &BTreeMap::new()),
            "exec [test -f /tmp/healthy] delay=0s timeout=1s period=5s #success=1 #failure=3"
        );
    }
}
