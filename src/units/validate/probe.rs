//! A liveness, readiness or startup probe: exactly one handler, its
//! target, and the timings.

use super::{Field, Tab, Validator};
use crate::api::{Dur, PortRef, Probe, ProbeHandler};
use crate::units::raw::{RawProbe, PROBE_HANDLERS};
use crate::units::spanned::{Scalar, Table};

fn probe_hint(key: &str) -> Option<String> {
    Some(match key {
        "command" => "write the command in an exec handler: exec = { command = [...] }".into(),
        "port" | "path" => {
            format!("`{key}` belongs to the handler: http_get = {{ {key} = ... }}")
        }
        _ => return None,
    })
}

/// Stands in for a handler with a mistake (reported) so that the rest of
/// the probe is still checked; it breaks no rule.
fn stand_in() -> ProbeHandler {
    ProbeHandler::Exec {
        command: vec!["true".into()],
    }
}

impl Validator<'_> {
    pub(super) fn probe(
        &mut self,
        f: Field<Table<RawProbe>>,
        which: &str,
        ports: &[String],
    ) -> Option<Probe> {
        let t = self.table(&f)?;
        self.unknown_fields(&t, &probe_hint);
        let written: Vec<(String, Option<crate::units::diagnostic::Span>)> =
            t.t.keys
                .iter()
                .filter(|k| PROBE_HANDLERS.contains(&k.name.as_str()))
                .map(|k| (k.name.clone(), k.span))
                .collect();
        let handler = match written.as_slice() {
            [] => {
                let d = self
                    .diag(t.at, format!("the {which} probe has no handler"))
                    .with_label(format!("expected one of: {}", PROBE_HANDLERS.join(", ")))
                    .with_help(
                        "add one: http_get = { path = \"/\", port = \"http\" }, \
                         tcp_socket = { port = 8080 } or exec = { command = [\"...\"] }",
                    );
                self.diags.push(d);
                None
            }
            [(one, _)] => self.handler(&t, one, ports),
            [(first, first_at), (second, second_at), ..] => {
                for (h, _) in &written {
                    self.handler(&t, h, ports);
                }
                let second_at = second_at.unwrap_or(t.at);
                let first_at = self.loc(first_at.unwrap_or(t.at));
                let d = self
                    .diag(
                        second_at,
                        format!("a probe has exactly one handler, found `{first}` and `{second}`"),
                    )
                    .with_label("second handler")
                    .with_secondary(first_at, "first handler")
                    .with_help("keep one; to check several things, use exec with a script");
                self.diags.push(d);
                None
            }
        };
        let v = t.v();
        Some(Probe {
            handler: handler.unwrap_or_else(stand_in),
            initial_delay: self
                .duration(&t.field("initial_delay", &v.initial_delay))
                .unwrap_or_default(),
            period: self
                .duration(&t.field("period", &v.period))
                .unwrap_or(Dur::secs(10)),
            timeout: self
                .duration(&t.field("timeout", &v.timeout))
                .unwrap_or(Dur::secs(1)),
            success_threshold: self
                .count(&t.field("success_threshold", &v.success_threshold))
                .unwrap_or(1),
            failure_threshold: self
                .count(&t.field("failure_threshold", &v.failure_threshold))
                .unwrap_or(3),
            termination_grace_period: self
                .duration(&t.field("termination_grace_period", &v.termination_grace_period)),
        })
    }

    fn handler(
        &mut self,
        probe: &Tab<RawProbe>,
        name: &str,
        ports: &[String],
    ) -> Option<ProbeHandler> {
        let v = probe.v();
        let host =
            |w: &mut Self, f: Field<String>| w.string(&f).unwrap_or_else(|| "127.0.0.1".into());
        match name {
            "http_get" => {
                let t = self.table(&probe.field("http_get", &v.http_get))?;
                self.unknown_fields(&t, &|_| None);
                let h = t.v();
                let port = self.port_ref(t.field("port", &h.port), ports);
                Some(ProbeHandler::HttpGet {
                    path: self
                        .string(&t.field("path", &h.path))
                        .unwrap_or_else(|| "/".into()),
                    host: host(self, t.field("host", &h.host)),
                    scheme: self
                        .string(&t.field("scheme", &h.scheme))
                        .unwrap_or_else(|| "http".into()),
                    headers: self
                        .labels(&t.field("headers", &h.headers))
                        .unwrap_or_default(),
                    port: port?,
                })
            }
            "tcp_socket" => {
                let t = self.table(&probe.field("tcp_socket", &v.tcp_socket))?;
                self.unknown_fields(&t, &|_| None);
                let h = t.v();
                let port = self.port_ref(t.field("port", &h.port), ports);
                Some(ProbeHandler::TcpSocket {
                    host: host(self, t.field("host", &h.host)),
                    port: port?,
                })
            }
            _ => {
                let t = self.table(&probe.field("exec", &v.exec))?;
                self.unknown_fields(&t, &|_| None);
                let f = self.require(
                    t.field("command", &t.v().command),
                    Some("add command = [\"/path/to/check\", \"arg\"]".into()),
                )?;
                Some(ProbeHandler::Exec {
                    command: self.strings(&f)?,
                })
            }
        }
    }

    /// A probe's `port`: 1-65535, or a name (the rules check that the pod
    /// declares it).
    fn port_ref(&mut self, f: Field<Scalar>, ports: &[String]) -> Option<PortRef> {
        let help = match ports.first().filter(|p| !p.is_empty()) {
            Some(p) => format!("add port = \"{p}\" (a port of the pod) or port = 8080"),
            None => "add port = 8080".into(),
        };
        let f = self.require(f, Some(help))?;
        let expected = "a port number or the name of one of the pod's ports";
        match self.get_as(&f, expected)? {
            Scalar::Int(n) => match u16::try_from(*n) {
                Ok(p) if p > 0 => Some(PortRef::Number(p)),
                _ => {
                    let d = self
                        .diag(
                            f.value_span(),
                            format!("port must be between 1 and 65535, found {n}"),
                        )
                        .with_label(format!("expected {expected}"));
                    self.fail(&f.path, d);
                    None
                }
            },
            Scalar::Str(s) => Some(PortRef::Name(s.clone())),
            Scalar::Float(_) => {
                let d = self
                    .diag(f.value_span(), "expected a port number, found a float")
                    .with_label(format!("expected {expected}"));
                self.fail(&f.path, d);
                None
            }
        }
    }
}
