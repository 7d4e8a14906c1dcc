//! Liveness, readiness and startup probes, and sd_notify, with real
//! servers and real processes (issue 3).

use crate::harness::*;
use serde_json::Value;

/// A python HTTP server on $PORT_HTTP that answers 200 to its first
/// `healthy` requests and 500 after that.
fn flaky_server(healthy: u32) -> String {
    format!(
        "import http.server, os\n\
         n = 0\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       global n\n\
         \x20       n += 1\n\
         \x20       self.send_response(200 if n <= {healthy} else 500)\n\
         \x20       self.end_headers()\n\
         \x20   def log_message(self, *a):\n\
         \x20       pass\n\
         http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT_HTTP'])), H).serve_forever()\n"
    )
}

fn last_state(d: &TestDaemon, pod: &str) -> drover::api::TerminatedState {
    d.pod_now(pod).status.processes[0]
        .last_state
        .clone()
        .expect("a last state")
}

fn messages(d: &TestDaemon, target: &str) -> Vec<String> {
    d.events_for(target)
        .iter()
        .map(|e: &Value| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn restarted(d: &TestDaemon, pod: &str, n: u32) {
    d.wait_until(&format!("{pod} restarted {n} time(s)"), SOON, || {
        d.pod(pod)
            .is_some_and(|p| p.status.processes[0].restart_count >= n)
    });
}

#[test]
fn http_liveness_failure_restarts_with_143_and_says_why() {
    let server = flaky_server(3);
    // The startup probe waits for python to listen, however long that
    // takes on a busy machine; only then does liveness count failures.
    let unit = format!(
        "kind = \"Pod\"\nname = \"flaky\"\n[spec]\nports = [{{ name = \"http\", range = \"@PORTS@\" }}]\n\
         [[spec.processes]]\nname = \"server\"\ncommand = [\"python3\", \"-c\", {server:?}]\n\
         [spec.processes.startup]\nhttp_get = {{ path = \"/healthz\", port = \"http\" }}\n\
         period = \"100ms\"\nfailure_threshold = 600\n\
         [spec.processes.liveness]\nhttp_get = {{ path = \"/healthz\", port = \"http\" }}\n\
         initial_delay = \"300ms\"\nperiod = \"200ms\"\nfailure_threshold = 2\n"
    );
    let d = TestDaemon::start(&[("flaky.toml", &unit)]);
    d.wait_running("flaky");
    restarted(&d, "flaky", 1);
    let last = last_state(&d, "flaky");
    assert_eq!(last.exit_code, Some(143), "{last:?}");
    assert_eq!(last.reason, "LivenessProbeFailed");
    assert_eq!(
        last.message.as_deref(),
        Some("Liveness probe failed: HTTP probe failed with statuscode: 500")
    );
    let events = messages(&d, "pod/flaky");
    assert!(
        events
            .iter()
            .any(|m| m == "Liveness probe failed: HTTP probe failed with statuscode: 500"),
        "{events:?}"
    );
    let page = d.drover_ok(&["describe", "pod", "flaky"]);
    let line = page
        .lines()
        .find(|l| l.trim_start().starts_with("Liveness:"))
        .unwrap_or_else(|| panic!("no Liveness line in\n{page}"));
    let port = d.pod_now("flaky").status.ports["http"];
    assert_eq!(
        line.trim(),
        format!(
            "Liveness:       http-get http://127.0.0.1:{port}/healthz delay=300ms timeout=1s period=200ms #success=1 #failure=2"
        ),
        "{page}"
    );
}

#[test]
fn tcp_liveness_against_a_closed_port_restarts() {
    let port = d_port();
    let unit = format!(
        "kind = \"Pod\"\nname = \"closed\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"1000\"]\n[spec.processes.liveness]\n\
         tcp_socket = {{ port = {port} }}\nperiod = \"200ms\"\nfailure_threshold = 2\n"
    );
    let d = TestDaemon::start(&[("closed.toml", &unit)]);
    restarted(&d, "closed", 1);
    let last = last_state(&d, "closed");
    assert_eq!(
        last.message.as_deref(),
        Some(
            format!(
                "Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
            .as_str()
        )
    );
}

/// A port nothing listens on (bound, learnt, closed).
fn d_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn readiness_flips_ready_both_ways_without_restarting() {
    let unit = "kind = \"Pod\"\nname = \"gate\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"1000\"]\n[spec.processes.readiness]\n\
         exec = { command = [\"test\", \"-f\", \"@DIR@/files/ready\"] }\nperiod = \"100ms\"\n\
         failure_threshold = 1\n";
    let d = TestDaemon::start(&[("gate.toml", unit)]);
    let ready = |want: bool| {
        d.wait_until(&format!("gate ready == {want}"), SOON, || {
            d.pod("gate")
                .is_some_and(|p| all_running(&p) && p.status.processes[0].ready == want)
        })
    };
    ready(false);
    let row = d.drover_ok(&["get", "pods", "gate"]);
    assert!(row.lines().nth(1).unwrap().contains(" 0/1 "), "{row}");
    std::fs::write(d.file("ready"), "").unwrap();
    ready(true);
    let row = d.drover_ok(&["get", "pods", "gate"]);
    assert!(row.lines().nth(1).unwrap().contains(" 1/1 "), "{row}");
    d.drover_ok(&[
        "wait",
        "pod/gate",
        "--for=condition=ready",
        "--timeout",
        "5s",
    ]);
    std::fs::remove_file(d.file("ready")).unwrap();
    ready(false);
    assert_eq!(d.pod_now("gate").status.processes[0].restart_count, 0);
    assert!(messages(&d, "pod/gate")
        .iter()
        .any(|m| m == "Readiness probe failed: command exited with 1"));
}

#[test]
fn an_exec_probe_that_hangs_fails_at_its_timeout() {
    let unit = "kind = \"Pod\"\nname = \"hang\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"1000\"]\n[spec.processes.liveness]\n\
         exec = { command = [\"sleep\", \"30\"] }\ntimeout = \"300ms\"\nperiod = \"400ms\"\n\
         failure_threshold = 1\n";
    let d = TestDaemon::start(&[("hang.toml", unit)]);
    restarted(&d, "hang", 1);
    let last = last_state(&d, "hang");
    assert_eq!(
        last.message.as_deref(),
        Some("Liveness probe failed: command timed out after 300ms")
    );
}

#[test]
fn startup_probe_holds_liveness_back_until_it_succeeds() {
    // Liveness always fails; it must not run before startup succeeds.
    let unit = "kind = \"Pod\"\nname = \"slow\"\n[spec]\n[[spec.processes]]\nname = \"main\"\n\
         command = [\"sleep\", \"1000\"]\n\
         [spec.processes.startup]\nexec = { command = [\"test\", \"-f\", \"@DIR@/files/started\"] }\n\
         period = \"100ms\"\nfailure_threshold = 1000\n\
         [spec.processes.liveness]\nexec = { command = [\"false\"] }\nperiod = \"100ms\"\nfailure_threshold = 1\n";
    let d = TestDaemon::start(&[("slow.toml", unit)]);
    d.wait_running("slow");
    // Several startup periods pass: the startup probe has failed a few
    // times (events), and liveness has not run at all.
    d.wait_until("startup probe failing", SOON, || {
        d.events_for("pod/slow").iter().any(|e| {
            e["message"] == "Startup probe failed: command exited with 1"
                && e["count"].as_u64() >= Some(3)
        })
    });
    let p = d.pod_now("slow");
    assert_eq!(p.status.processes[0].restart_count, 0);
    assert!(
        !p.status.processes[0].ready,
        "not ready before startup succeeds"
    );
    assert!(!messages(&d, "pod/slow")
        .iter()
        .any(|m| m.starts_with("Liveness")));
    std::fs::write(d.file("started"), "").unwrap();
    restarted(&d, "slow", 1);
    assert_eq!(
        last_state(&d, "slow").message.as_deref(),
        Some("Liveness probe failed: command exited with 1")
    );
}

#[test]
fn a_liveness_kill_of_a_process_ignoring_sigterm_ends_with_137() {
    let unit = "kind = \"Pod\"\nname = \"deaf\"\n[spec]\ntermination_grace_period = \"500ms\"\n\
         [[spec.processes]]\nname = \"main\"\n\
         command = [\"sh\", \"-c\", \"trap '' TERM; while :; do sleep 0.1; done\"]\n\
         [spec.processes.liveness]\nexec = { command = [\"false\"] }\nperiod = \"200ms\"\nfailure_threshold = 1\n";
    let d = TestDaemon::start(&[("deaf.toml", unit)]);
    restarted(&d, "deaf", 1);
    let last = last_state(&d, "deaf");
    assert_eq!(
        (last.exit_code, last.signal),
        (Some(137), Some(9)),
        "{last:?}"
    );
}

#[test]
fn sd_notify_ready_status_and_a_missed_watchdog() {
    let d = TestDaemon::start(&[("svc.toml", &notifier_pod_unit())]);
    let p = d.wait_running("svc");
    assert!(!p.status.processes[0].ready, "not ready before READY=1");
    // The watchdog is pinged (after READY) for well past its interval: no
    // restart while it is.
    std::fs::write(d.file("go"), "").unwrap();
    d.wait_until("READY=1 marks it ready", SOON, || {
        d.pod("svc").is_some_and(|p| p.status.processes[0].ready)
    });
    let p = d.pod_now("svc");
    assert_eq!(
        p.status.processes[0].notify_status.as_deref(),
        Some("serving")
    );
    let page = d.drover_ok(&["describe", "pod", "svc"]);
    assert!(page.contains("serving"), "{page}");
    assert_eq!(p.status.processes[0].restart_count, 0);
    // Stop pinging: the watchdog restarts it.
    std::fs::write(d.file("hang"), "").unwrap();
    restarted(&d, "svc", 1);
    let last = last_state(&d, "svc");
    assert_eq!(last.reason, "WatchdogTimeout");
    assert_eq!(
        last.message.as_deref(),
        Some("watchdog timeout: no WATCHDOG=1 within 600ms")
    );
}
