//! Running out of descriptors and being flooded (issue 9): a restarted
//! daemon that cannot watch every re-adopted process through a pidfd
//! still supervises them all, and never takes "no descriptor left" for an
//! exit; a flood of idle clients beyond the daemon's descriptor limit is
//! neither a spin nor a flood of log lines, the CLI still gets in, and
//! supervision goes on; many CLI clients at once all succeed; oversized
//! requests are refused without being held in memory.

use crate::harness::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("daemon stat");
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) reads a constant.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
}

fn log_size(d: &TestDaemon) -> (u64, usize) {
    let text = std::fs::read_to_string(d.path("daemon.log")).unwrap_or_default();
    (text.len() as u64, text.lines().count())
}

/// Before: with 400 idle clients on a daemon limited to 256 descriptors,
/// accept failed with EMFILE and was retried at once, forever: the one
/// thread of the daemon spun at 100 % CPU writing the same warning
/// (gigabytes of log), and a pod that died meanwhile was never
/// restarted. Now connections are capped below the limit (the oldest idle
/// one closed to make room), idle ones time out, and accept failures back
/// off.
#[test]
fn idle_clients_beyond_the_fd_limit_neither_spin_nor_flood_and_supervision_goes_on() {
    let d = TestDaemon::start_with(
        &[(
            "victim.toml",
            &pod_unit("victim", "Always", &["sleep", "1000"], ""),
        )],
        Options {
            nofile: Some(256),
            ..Options::default()
        },
    );
    let before = d.wait_running("victim");
    let pid = d.daemon_pid();
    let (log_bytes, log_lines) = log_size(&d);
    let cpu_before = cpu_ticks(pid);
    let t0 = Instant::now();

    let clients: Vec<UnixStream> = (0..400)
        .map(|i| {
            UnixStream::connect(d.socket())
                .unwrap_or_else(|e| panic!("connecting idle client {i}: {e}"))
        })
        .collect();

    // A pod that dies during the flood is restarted.
    send_signal(main_pid(&before), libc::SIGKILL);
    let old = main_pid(&before);
    d.wait_for("victim restarted during the flood", SOON, || {
        d.pod("victim")
            .filter(|p| all_running(p) && main_pid(p) != old)
    });
    // The CLI gets in during the flood.
    let started = Instant::now();
    let out = d.drover_ok(&["get", "pods"]);
    let cli_latency = started.elapsed();
    assert!(out.contains("victim"), "{out}");

    // Every idle client is closed by the daemon: at once to make room, or
    // when its 10 s to send a request are up.
    for (i, mut c) in clients.iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match c.read(&mut buf) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                // A signal meant for another test's children.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("idle client {i} was not closed by the daemon: {e}"),
            }
        }
    }
    let wall = t0.elapsed();
    let cpu = cpu_ticks(pid) - cpu_before;
    drop(clients);

    // Once the clients are gone, the CLI works as before.
    let started = Instant::now();
    d.drover_ok(&["get", "pods"]);
    let cli_after = started.elapsed();

    let (bytes, lines) = log_size(&d);
    let cpu_secs = cpu as f64 / ticks_per_second() as f64;
    eprintln!(
        "ulimit -n 256, 400 idle clients: CLI {} ms during the flood, {} ms after; \
         log +{} bytes / +{} lines; daemon CPU {cpu_secs:.2} s over {:.1} s",
        cli_latency.as_millis(),
        cli_after.as_millis(),
        bytes - log_bytes,
        lines - log_lines,
        wall.as_secs_f64()
    );
    assert!(
        lines - log_lines <= 40 && bytes - log_bytes <= 16 * 1024,
        "the log grew by {} lines, {} bytes\n{}",
        lines - log_lines,
        bytes - log_bytes,
        d.log()
    );
    assert!(
        cpu_secs < wall.as_secs_f64() / 4.0,
        "the daemon used {cpu_secs:.2} s of CPU in {wall:?}"
    );
}

/// 200 `drover` processes at once against a daemon whose descriptor limit
/// caps it at 64 connections: all succeed (the accept loop waits for room
/// rather than refusing or closing a client that just connected).
#[test]
fn two_hundred_concurrent_cli_clients_all_succeed() {
    let d = TestDaemon::start_with(
        &[("web.toml", &rs_unit("web", "web", 3))],
        Options {
            nofile: Some(256),
            ..Options::default()
        },
    );
    d.wait_pods("app=web", 3);
    let t0 = Instant::now();
    // Each client timed from its own start to its exit, all started at
    // once (a thread per client, as 200 shells would).
    let results: Vec<(Duration, std::process::Output)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..200)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let out = d
                        .command(&["get", "pods", "-o", "json"])
                        .output()
                        .expect("running drover");
                    (started.elapsed(), out)
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let all = t0.elapsed();
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, out)| !out.status.success())
        .map(|(_, out)| String::from_utf8_lossy(&out.stderr).into_owned())
        .collect();
    let mut latencies: Vec<Duration> = results.iter().map(|(l, _)| *l).collect();
    latencies.sort();
    let ms = |d: Duration| d.as_millis();
    eprintln!(
        "200 concurrent `drover get pods -o json` (ulimit -n 256): per client p50 {} ms, \
         p90 {} ms, p99 {} ms, max {} ms; all done in {} ms",
        ms(latencies[100]),
        ms(latencies[180]),
        ms(latencies[198]),
        ms(latencies[199]),
        ms(all)
    );
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..1]
    );
}

/// Sends `head` (and then `body_chunks`, stopping at the first write the
/// daemon refuses) on a fresh connection; returns the status line of the
/// answer.
fn raw_request(d: &TestDaemon, head: &str, body_chunks: usize) -> String {
    use std::io::Write;
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let chunk = format!("100000\r\n{}\r\n", "x".repeat(0x100000));
    for _ in 0..body_chunks {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("no answer to {head:?}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("").to_string()
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Before: a 3 GB request body was read into memory (the daemon reached
/// 3.1 GB); nothing bounded a request's size. Now a body is at most 32
/// MiB, refused from its Content-Length before it is read or as soon as a
/// chunked one passes the limit, and headers must fit 64 KiB.
#[test]
fn oversized_requests_are_refused_without_being_held_in_memory() {
    let d = TestDaemon::start(&[]);
    let pid = d.daemon_pid();
    let declared = raw_request(
        &d,
        "POST /v1/apply HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
         Content-Length: 3000000000\r\n\r\n",
        0,
    );
    assert!(declared.contains(" 413 "), "{declared}");
    let chunked = raw_request(
        &d,
        "POST /v1/apply HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        40,
    );
    assert!(chunked.contains(" 413 "), "{chunked}");
    let huge_header = format!(
        "GET /v1/pods HTTP/1.1\r\nHost: d\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(100 * 1024)
    );
    let headers = raw_request(&d, &huge_header, 0);
    assert!(headers.contains(" 431 "), "a 100 KiB header: {headers}");
    let rss = rss_kib(pid);
    assert!(rss < 200 * 1024, "the daemon holds {rss} KiB");
    d.drover_ok(&["get", "pods"]);
}

const PODS: u32 = 60;

/// name -> (pid, restart count) of every pod.
fn pids(d: &TestDaemon) -> BTreeMap<String, (u32, u32)> {
    d.pods()
        .iter()
        .map(|p| {
            let st = &p.status.processes[0];
            (
                p.metadata.name.clone(),
                (st.pid.unwrap_or(0), st.restart_count),
            )
        })
        .collect()
}

#[test]
fn processes_a_restarted_daemon_cannot_watch_are_kept_and_still_supervised() {
    let mut d = TestDaemon::start(&[("many.toml", &rs_unit("many", "many", PODS))]);
    d.wait_pods("app=many", PODS as usize);
    d.wait_persisted();
    let before = pids(&d);
    d.kill9();
    // 64 descriptors in all: pidfds for at most half of the sixty, the
    // rest for the API, the store, the logs (see runtime::exit_watch).
    d.nofile = Some(64);
    d.restart();
    let after = pids(&d);
    assert_eq!(after, before, "a re-adopted process was restarted or lost");
    for (name, (pid, _)) in &before {
        assert!(alive(*pid), "{name}'s process {pid} was killed");
    }
    assert!(
        d.log().contains("cannot be watched"),
        "expected some processes to go unwatched\n{}",
        d.log()
    );
    // Every one of them is still supervised: each that dies is noticed
    // (by its pidfd, or by a recheck) and restarted.
    for (pid, _) in before.values() {
        send_signal(*pid, libc::SIGKILL);
    }
    d.wait_until("every pod restarted once", SOON, || {
        let now = pids(&d);
        now.len() == PODS as usize
            && now
                .iter()
                .all(|(name, (pid, restarts))| *restarts == 1 && *pid != before[name].0)
    });
    d.wait_pods("app=many", PODS as usize);
    d.assert_teardown_leaves_nothing();
}
