//! `describe pod`: the pod, each process (state, last state, probes,
//! environment), then the pod's events.

use super::{command_line, describe_probe, Clock, Page};
use crate::api::{Event, Pod, ProcessSpec, ProcessState, ProcessStatus, TerminatedState};
use crate::output::age::timestamp;

pub fn render(pod: &Pod, events: &[Event], clock: Clock) -> String {
    let mut page = Page::default();
    let meta = &pod.metadata;
    let status = &pod.status;
    let ts = |t| timestamp(t, clock.tz);

    page.field(0, "Name", &meta.name);
    page.field(0, "Node", status.node_name.as_deref().unwrap_or("<none>"));
    page.field(
        0,
        "Start Time",
        status
            .start_time
            .map(ts)
            .unwrap_or_else(|| "<unset>".into()),
    );
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    page.field(0, "Status", pod.display_status());
    if let Some(reason) = &status.reason {
        page.field(0, "Reason", reason);
    }
    if let Some(message) = &status.message {
        page.field(0, "Message", message);
    }
    if let Some(owner) = meta.controller() {
        page.field(0, "Controlled By", owner);
    }
    page.field(
        0,
        "Restart Policy",
        format!("{:?}", pod.spec.restart_policy),
    );
    page.field(0, "Ports", ports(pod));

    page.heading(0, "Processes:");
    for spec in &pod.spec.processes {
        let st = status.processes.iter().find(|s| s.name == spec.name);
        process(&mut page, pod, spec, st, clock);
    }
    page.events(events, clock.now);
    page.finish()
}

/// `http=8081`, or the requested range while none is allocated.
fn ports(pod: &Pod) -> String {
    if pod.spec.ports.is_empty() {
        return "<none>".into();
    }
    pod.spec
        .ports
        .iter()
        .map(|req| match pod.status.ports.get(&req.name) {
            Some(port) => format!("{}={port}", req.name),
            None => format!("{} ({})", req.name, String::from(req.range)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the pod's node measured of a running process (its cgroup, or its
/// process tree without one): CPU time so far and memory now.
fn usage(u: Option<crate::api::ProcessUsage>) -> String {
    match u {
        Some(u) => format!(
            "CPU {}, memory {}",
            super::super::columns::cpu_time((u.cpu_seconds * 1000.0).round() as u64),
            super::super::columns::memory(u.memory_bytes)
        ),
        None => "<unknown>".into(),
    }
}

fn process(
    page: &mut Page,
    pod: &Pod,
    spec: &ProcessSpec,
    st: Option<&ProcessStatus>,
    clock: Clock,
) {
    page.heading(1, &format!("{}:", spec.name));
    let pid = st.and_then(|s| s.pid).map(|p| p.to_string());
    page.field(2, "PID", pid.as_deref().unwrap_or("<none>"));
    page.field(2, "Command", command_line(&spec.command));
    if let Some(user) = &spec.user {
        page.field(2, "User", user);
    }
    if let Some(dir) = &spec.working_dir {
        page.field(2, "Working Dir", dir.display());
    }
    match st {
        Some(st) => {
            state(page, "State", &st.state, clock);
            if let Some(last) = &st.last_state {
                terminated(page, "Last State", last, clock);
            }
            page.field(2, "Ready", if st.ready { "True" } else { "False" });
            page.field(2, "Restart Count", st.restart_count);
            if st.pid.is_some() {
                page.field(2, "Usage", usage(st.usage));
            }
            if let Some(s) = &st.notify_status {
                page.field(2, "Notify Status", s);
            }
        }
        None => {
            page.field(2, "State", "Waiting");
            page.field(3, "Reason", "ContainerCreating");
            page.field(2, "Ready", "False");
            page.field(2, "Restart Count", 0);
        }
    }
    let probes = [
        ("Liveness", &spec.liveness),
        ("Readiness", &spec.readiness),
        ("Startup", &spec.startup),
    ];
    for (name, probe) in probes {
        if let Some(p) = probe {
            page.field(2, name, describe_probe(p, &pod.status.ports));
        }
    }
    if let Some(w) = spec.watchdog {
        page.field(2, "Watchdog", w);
    }
    if spec.env.is_empty() {
        page.field(2, "Environment", "<none>");
    } else {
        page.heading(2, "Environment:");
        for (k, v) in &spec.env {
            page.field(3, k, v);
        }
    }
}

fn state(page: &mut Page, label: &str, state: &ProcessState, clock: Clock) {
    match state {
        ProcessState::Running { started_at } => {
            page.field(2, label, "Running");
            page.field(3, "Started", timestamp(*started_at, clock.tz));
        }
        ProcessState::Waiting { reason, message } => {
            page.field(2, label, "Waiting");
            page.field(3, "Reason", reason);
            if let Some(m) = message {
                page.field(3, "Message", m);
            }
        }
        ProcessState::Terminated(t) => terminated(page, label, t, clock),
    }
}

fn terminated(page: &mut Page, label: &str, t: &TerminatedState, clock: Clock) {
    page.field(2, label, "Terminated");
    page.field(3, "Reason", &t.reason);
    if let Some(m) = &t.message {
        page.field(3, "Message", m);
    }
    if let Some(code) = t.exit_code {
        page.field(3, "Exit Code", code);
    }
    if let Some(sig) = t.signal {
        page.field(3, "Signal", sig);
    }
    if let Some(s) = t.started_at {
        page.field(3, "Started", timestamp(s, clock.tz));
    }
    page.field(3, "Finished", timestamp(t.finished_at, clock.tz));
}

#[cfg(test)]
mod tests {
    use super::super::super::columns::fixtures;
    use super::*;
    use crate::output::age::TimeZone;

    fn clock() -> Clock {
        Clock {
            now: fixtures::now(),
            tz: TimeZone::Utc,
        }
    }

    fn event(reason: &str, count: u32) -> Event {
        serde_json::from_value(fixtures::event(reason, count)).unwrap()
    }

    #[test]
    fn a_pod_page_has_kubectls_lines() {
        let pod: Pod = serde_json::from_value(fixtures::pod()).unwrap();
        let page = render(&pod, &[event("Started", 1), event("Unhealthy", 5)], clock());
        let want = [
            "Name:            web-x1y2z",
            "Node:            n1",
            "Start Time:      Wed, 01 May 2024 11:50:01 +0000",
            "Labels:          app=web",
            "                 tier=frontend",
            "Annotations:     <none>",
            "Status:          Running",
            "Controlled By:   ReplicaSet/web",
            "Ports:           http=8081",
            "Processes:",
            "  server:",
            "    PID:            4242",
            "    Command:        /usr/bin/python3 -m http.server ${PORT_HTTP}",
            "    State:          Running",
            "      Started:      Wed, 01 May 2024 11:55:00 +0000",
            "    Last State:     Terminated",
            "      Reason:       Error",
            "      Exit Code:    143",
            "      Signal:       15",
            "      Started:      Wed, 01 May 2024 11:54:00 +0000",
            "      Finished:     Wed, 01 May 2024 11:55:00 +0000",
            "    Ready:          True",
            "    Restart Count:  3",
            "    Usage:          <unknown>",
            "    Liveness:       http-get http://127.0.0.1:8081/ delay=5s timeout=1s period=10s #success=1 #failure=3",
            "    Readiness:      tcp-socket 127.0.0.1:8080 delay=0s timeout=1s period=5s #success=1 #failure=3",
            "    Environment:",
            "      GREETING:  hi",
            "Events:",
            "  Type     Reason     Age               From        Message",
            "  ----     ------     ----              ----        -------",
            "  Normal   Started    30s               kubelet/n1  Started happened",
            "  Warning  Unhealthy  30s (x5 over 2m)  kubelet/n1  Unhealthy happened",
        ];
        let lines: Vec<&str> = page.lines().collect();
        for w in want {
            assert!(lines.contains(&w), "missing line {w:?} in:\n{page}");
        }
        let order: Vec<usize> = ["Name:", "Processes:", "  server:", "Events:"]
            .iter()
            .map(|p| lines.iter().position(|l| l.starts_with(p)).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{page}");
    }

    #[test]
    fn a_process_not_started_yet_is_waiting() {
        let mut v = fixtures::pod();
        v["status"]["processes"] = serde_json::json!([]);
        v["status"]["phase"] = "Pending".into();
        v["status"]["ports"] = serde_json::json!({});
        let pod: Pod = serde_json::from_value(v).unwrap();
        let page = render(&pod, &[], clock());
        assert!(
            page.contains("    State:          Waiting\n      Reason:       ContainerCreating\n"),
            "{page}"
        );
        assert!(
            page.contains("Ports:           http (8080-8099)\n"),
            "{page}"
        );
        assert!(page.contains("http-get http://127.0.0.1:http/ "), "{page}");
        assert!(
            page.ends_with("      GREETING:  hi\nEvents:  <none>\n"),
            "{page}"
        );
    }
}
