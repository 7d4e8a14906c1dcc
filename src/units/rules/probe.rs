//! A probe's rules: its handler's target, and timings Kubernetes allows.

use super::{join, limits, Checks, Problem};
use crate::api::{PortRef, Probe, ProbeHandler};
use crate::units::suggest;
use std::collections::BTreeMap;

/// Probe schemes. https needs a TLS client, which drover does not carry
/// yet: refusing it here beats a probe that fails forever and restarts the
/// process in a loop.
pub const SCHEMES: &[&str] = &["http"];

/// HTTP header names are tokens (RFC 9110): letters, digits and a few
/// symbols such as '-'.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

impl Checks {
    pub(super) fn probe(
        &mut self,
        probe: &Probe,
        which: &str,
        path: &str,
        ports: &[String],
        env: &BTreeMap<String, String>,
    ) {
        match &probe.handler {
            ProbeHandler::HttpGet {
                path: p,
                port,
                host,
                scheme,
                headers,
            } => {
                let at = join(path, "http_get");
                for name in headers.keys().filter(|k| !is_token(k)) {
                    self.push(
                        Problem::key(
                            join(&join(&at, "headers"), name),
                            format!("invalid HTTP header name `{name}`"),
                        )
                        .label("expected letters, digits and '-'"),
                    );
                }
                if !p.starts_with('/') {
                    self.push(
                        Problem::value(
                            join(&at, "path"),
                            format!("http_get path \"{p}\" must start with '/'"),
                        )
                        .help(format!("write path = \"/{p}\"")),
                    );
                }
                if !SCHEMES.contains(&scheme.as_str()) {
                    let mut problem =
                        Problem::value(join(&at, "scheme"), format!("unknown scheme \"{scheme}\""))
                            .label(format!("expected one of: {}", SCHEMES.join(", ")));
                    if let Some(c) = suggest::closest(scheme, SCHEMES) {
                        problem = problem.help(format!("did you mean \"{c}\"?"));
                    }
                    self.push(problem);
                }
                self.port_ref(port, &join(&at, "port"), ports);
                self.host(host, &join(&at, "host"));
            }
            ProbeHandler::TcpSocket { port, host } => {
                let at = join(path, "tcp_socket");
                self.port_ref(port, &join(&at, "port"), ports);
                self.host(host, &join(&at, "host"));
            }
            ProbeHandler::Exec { command } => {
                let at = join(&join(path, "exec"), "command");
                if command.is_empty() {
                    self.push(
                        Problem::value(&at, "`command` must not be empty")
                            .label("expected the program and its arguments"),
                    );
                }
                self.problems
                    .extend(limits::exec_size(command, &at, env, None));
            }
        }
        self.positive(Some(probe.period), &join(path, "period"));
        self.positive(Some(probe.timeout), &join(path, "timeout"));
        for (field, n) in [
            ("failure_threshold", probe.failure_threshold),
            ("success_threshold", probe.success_threshold),
        ] {
            if n < 1 {
                self.push(
                    Problem::value(join(path, field), format!("`{field}` must be at least 1"))
                        .label("found 0"),
                );
            }
        }
        if probe.success_threshold > 1 && which != "readiness" {
            self.push(
                Problem::value(
                    join(path, "success_threshold"),
                    format!("`success_threshold` must be 1 for a {which} probe"),
                )
                .label(format!("found {}", probe.success_threshold))
                .help(
                    "only readiness probes may ask for several successes in a row \
                     (as in Kubernetes)",
                ),
            );
        }
    }

    /// A probe's `port`: 1-65535, or the name of one of the pod's ports.
    fn port_ref(&mut self, port: &PortRef, path: &str, ports: &[String]) {
        let name = match port {
            PortRef::Number(0) => {
                self.push(
                    Problem::value(path, "port must be between 1 and 65535, found 0")
                        .label("expected a port number or the name of one of the pod's ports"),
                );
                return;
            }
            PortRef::Number(_) => return,
            PortRef::Name(n) if ports.contains(n) => return,
            PortRef::Name(n) => n,
        };
        let label = if ports.is_empty() {
            "expected a port number; this pod declares no ports".to_string()
        } else {
            format!(
                "expected a port number or one of the pod's ports: {}",
                ports.join(", ")
            )
        };
        let candidates: Vec<&str> = ports.iter().map(String::as_str).collect();
        let help = if name.parse::<u16>().is_ok() {
            format!("write it as a number: port = {name}")
        } else if let Some(c) = suggest::closest(name, &candidates) {
            format!("did you mean \"{c}\"?")
        } else {
            format!(
                "declare it in the pod: ports = [{{ name = \"{name}\", range = \"8080-8099\" }}]"
            )
        };
        self.push(
            Problem::value(path, format!("unknown port \"{name}\""))
                .label(label)
                .help(help),
        );
    }

    fn host(&mut self, host: &str, path: &str) {
        if host.trim().is_empty() {
            self.push(Problem::value(path, "`host` must not be empty"));
        }
    }
}
