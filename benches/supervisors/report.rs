//! The results: a Markdown table and a JSON document.

use crate::measure::{Crash, GetPods, Idle, Memory, Startup};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Default, Serialize)]
pub struct SupResult {
    pub name: String,
    pub version: String,
    /// "ok", "skipped: <reason>" or "failed: <reason>".
    pub status: String,
    pub notes: Vec<String>,
    pub startup: BTreeMap<usize, Vec<Startup>>,
    pub memory: BTreeMap<usize, Vec<Memory>>,
    pub idle: Option<Idle>,
    pub crash: Option<Crash>,
    pub get_pods: Option<GetPods>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
    pub os: String,
    pub memory_gib: f64,
    pub load_before: String,
    pub load_after: String,
    /// Machine-wide CPU use during the run (all processes, the
    /// benchmark's included), in percent of all cores.
    pub busy_percent: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub machine: Machine,
    /// Where the runs' files lived (config, logs, state, record file).
    pub run_dirs: String,
    pub ns: Vec<usize>,
    pub runs: usize,
    pub idle_seconds: f64,
    pub kills: usize,
    pub duration_s: f64,
    pub supervisors: Vec<SupResult>,
}

/// (min, median, max).
pub fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    let median = if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    };
    Some((s[0], median, s[s.len() - 1]))
}

/// Nearest-rank percentile.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    Some(s[rank.min(s.len()) - 1])
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn triple(t: Option<(f64, f64, f64)>) -> String {
    match t {
        Some((min, med, max)) => format!("{} ({}–{})", fmt(med), fmt(min), fmt(max)),
        None => "—".into(),
    }
}

fn ratio(drover: Option<f64>, peer: Option<f64>, is_drover: bool) -> String {
    match (drover, peer) {
        _ if is_drover => "1".into(),
        (Some(d), Some(p)) if p > 0.0 => {
            let r = d / p;
            if r >= 0.095 || r == 0.0 {
                format!("{r:.2}")
            } else {
                // Two significant digits: 0.0036, not 0.00.
                let digits = (-r.log10()).ceil() as usize + 1;
                format!("{r:.digits$}")
            }
        }
        (Some(0.0), Some(_)) => "=".into(),
        _ => "—".into(),
    }
}

impl SupResult {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
    fn startup_ms(&self, n: usize) -> Vec<f64> {
        self.startup
            .get(&n)
            .map(|v| v.iter().map(|s| s.all_ms).collect())
            .unwrap_or_default()
    }
    fn first_ms(&self, n: usize) -> Vec<f64> {
        self.startup
            .get(&n)
            .map(|v| v.iter().map(|s| s.first_ms).collect())
            .unwrap_or_default()
    }
    fn mem(&self, n: usize, f: impl Fn(&Memory) -> u64) -> Vec<f64> {
        self.memory
            .get(&n)
            .map(|v| v.iter().map(|m| f(m) as f64).collect())
            .unwrap_or_default()
    }
}

fn med(v: &[f64]) -> Option<f64> {
    stats(v).map(|s| s.1)
}

impl Report {
    fn drover(&self) -> Option<&SupResult> {
        self.supervisors
            .iter()
            .find(|s| s.name == "drover" && s.ok())
    }

    fn measured(&self) -> impl Iterator<Item = &SupResult> {
        self.supervisors.iter().filter(|s| s.ok())
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "# Supervisors side by side: drover and its peers\n");
        let _ = writeln!(
            s,
            "- Date: {}\n- Machine: {} cores ({}), {:.0} GiB, kernel {}, {}\n\
             - Run folders (configs, logs, state): {}\n\
             - Load average (1/5/15 min) before: {}; after: {}; machine-wide CPU use during \
             the run: {:.0}% of all cores (benchmark included)\n- Command: `{}` ({:.0} s)\n\
             - Runs per N: {}; figures are median (min–max) over runs; drover/peer is the ratio \
             of medians (below 1: drover is faster or smaller)",
            self.date,
            m.cores,
            m.cpu,
            m.memory_gib,
            m.kernel,
            m.os,
            self.run_dirs,
            m.load_before,
            m.load_after,
            m.busy_percent,
            self.command,
            self.duration_s,
            self.runs,
        );

        let _ = writeln!(s, "\n## Supervisors\n");
        let _ = writeln!(s, "| supervisor | version | status |\n|---|---|---|");
        for r in &self.supervisors {
            let _ = writeln!(s, "| {} | {} | {} |", r.name, r.version, r.status);
        }

        let d = self.drover();
        // 1. Startup.
        let _ = writeln!(
            s,
            "\n## 1. Startup: from launching the supervisor until all N copies started (ms)\n"
        );
        let mut head = "| supervisor |".to_string();
        let mut rule = "|---|".to_string();
        for n in &self.ns {
            let _ = write!(head, " N={n} | drover/peer | first copy N={n} |");
            rule.push_str("---|---|---|");
        }
        let _ = writeln!(s, "{head}\n{rule}");
        for r in self.measured() {
            let mut row = format!("| {} |", r.name);
            for &n in &self.ns {
                let v = r.startup_ms(n);
                let dv = d.map(|d| d.startup_ms(n)).unwrap_or_default();
                let _ = write!(
                    row,
                    " {} | {} | {} |",
                    triple(stats(&v)),
                    ratio(med(&dv), med(&v), r.name == "drover"),
                    triple(stats(&r.first_ms(n)))
                );
            }
            let _ = writeln!(s, "{row}");
        }

        // 2. Crash to replacement.
        let _ = writeln!(
            s,
            "\n## 2. Crash to replacement: SIGKILL of a copy until its replacement started (ms)\n"
        );
        let _ = writeln!(
            s,
            "One kill per distinct copy (no backoff applies), {} ms apart.\n",
            self.supervisors
                .iter()
                .find_map(|r| r.crash.as_ref().map(|c| c.gap_ms))
                .unwrap_or(0)
        );
        let _ = writeln!(
            s,
            "| supervisor | N | kills | median | p99 | min | max | drover/peer (median) | CPU per kill (ms) | note |\n\
             |---|---|---|---|---|---|---|---|---|---|"
        );
        let dmed = d
            .and_then(|d| d.crash.as_ref())
            .and_then(|c| med(&c.samples_ms));
        for r in self.measured() {
            if let Some(c) = &r.crash {
                let st = stats(&c.samples_ms);
                let mut note = c.stopped_early.clone().unwrap_or_default();
                if c.timeouts > 0 {
                    note = format!("{} timeouts; {note}", c.timeouts);
                }
                let baseline = r.name == crate::BASELINE;
                if baseline {
                    note = "no kill: spawn call to the copy's recorded start, one copy at a time"
                        .into();
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.name,
                    if baseline {
                        "—".into()
                    } else {
                        c.n.to_string()
                    },
                    c.samples_ms.len(),
                    st.map_or("—".into(), |t| fmt(t.1)),
                    percentile(&c.samples_ms, 99.0).map_or("—".into(), fmt),
                    st.map_or("—".into(), |t| fmt(t.0)),
                    st.map_or("—".into(), |t| fmt(t.2)),
                    ratio(dmed, st.map(|t| t.1), r.name == "drover"),
                    if baseline {
                        "—".into()
                    } else {
                        format!("{:.2}", c.cpu_ms_per_kill)
                    },
                    note
                );
            }
        }

        // 3. Memory.
        let _ = writeln!(
            s,
            "\n## 3. Supervisor memory (MiB): RSS and PSS summed over the supervisor's own \
             processes (smaps_rollup; the copies excluded)\n"
        );
        let _ = writeln!(
            s,
            "| supervisor | N | processes | RSS | PSS | drover/peer (PSS) |\n|---|---|---|---|---|---|"
        );
        for &n in &self.ns {
            let dp = d.map(|d| d.mem(n, |m| m.pss_kib)).unwrap_or_default();
            for r in self.measured() {
                let rss: Vec<f64> = r.mem(n, |m| m.rss_kib).into_iter().map(mib).collect();
                let pss: Vec<f64> = r.mem(n, |m| m.pss_kib).into_iter().map(mib).collect();
                if rss.is_empty() {
                    continue;
                }
                let procs = r
                    .memory
                    .get(&n)
                    .and_then(|v| v.last())
                    .map_or(0, |m| m.processes);
                let _ = writeln!(
                    s,
                    "| {} | {n} | {procs} | {} | {} | {} |",
                    r.name,
                    triple(stats(&rss)),
                    triple(stats(&pss)),
                    ratio(med(&dp), med(&r.mem(n, |m| m.pss_kib)), r.name == "drover")
                );
            }
        }

        // 4. Idle.
        let idle_n = self
            .supervisors
            .iter()
            .find_map(|r| r.idle.as_ref().map(|i| i.n))
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "\n## 4. Idle: the supervisor's processes over {:.0} s with nothing happening, N={idle_n}\n",
            self.idle_seconds
        );
        let _ = writeln!(
            s,
            "CPU = utime+stime (/proc/PID/stat, 10 ms ticks); wakeups = voluntary + nonvoluntary \
             context switches summed over every thread.\n"
        );
        let _ = writeln!(
            s,
            "| supervisor | processes | threads | CPU (ms) | wakeups | wakeups/s | drover/peer (wakeups) | busiest threads |\n\
             |---|---|---|---|---|---|---|---|"
        );
        let dw = d.and_then(|d| d.idle.as_ref()).map(|i| i.wakeups as f64);
        for r in self.measured() {
            if let Some(i) = &r.idle {
                let busiest: Vec<String> = i
                    .busiest
                    .iter()
                    .take(3)
                    .map(|(name, id, n)| format!("{name} ({id}): {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.0} | {} | {:.2} | {} | {} |",
                    r.name,
                    i.processes,
                    i.threads,
                    i.cpu_ms,
                    i.wakeups,
                    i.wakeups as f64 / i.seconds,
                    ratio(dw, Some(i.wakeups as f64), r.name == "drover"),
                    busiest.join(", ")
                );
            }
        }

        // 5. drover only.
        let _ = writeln!(s, "\n## 5. drover only\n");
        let _ = writeln!(s, "| figure | value |\n|---|---|");
        if let Some(g) = d.and_then(|d| d.get_pods.as_ref()) {
            let _ = writeln!(
                s,
                "| `drover get pods -o json` at {} pods, CLI wall time, {} runs (ms) | {} |",
                g.n,
                g.cli_ms.len(),
                triple(stats(&g.cli_ms))
            );
            let _ = writeln!(
                s,
                "| the daemon's answer alone: GET /v1/pods on the socket (ms) | {} |",
                triple(stats(&g.api_ms))
            );
            let _ = writeln!(s, "| JSON size | {} KiB |", g.json_bytes / 1024);
        }
        for p in PLACEHOLDERS {
            let _ = writeln!(s, "| {p} | not measured yet |");
        }

        // Targets.
        if let Some(d) = d {
            let _ = writeln!(
                s,
                "\n## drover against the targets of the performance issue\n"
            );
            let _ = writeln!(
                s,
                "| figure | target | measured (median) | |\n|---|---|---|---|"
            );
            for (what, target, value, pass) in targets(d) {
                let _ = writeln!(
                    s,
                    "| {what} | {target} | {value} | {} |",
                    if pass { "met" } else { "**missed**" }
                );
            }
        }

        let _ = writeln!(s, "\n## How each supervisor was run\n");
        for r in &self.supervisors {
            for n in &r.notes {
                let _ = writeln!(s, "- {}: {n}", r.name);
            }
        }
        let errors: Vec<String> = self
            .supervisors
            .iter()
            .flat_map(|r| r.errors.iter().map(move |e| format!("- {}: {e}", r.name)))
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\n## Errors\n\n{}", errors.join("\n"));
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        // Summaries beside the raw samples, and the targets.
        let mut summary = serde_json::Map::new();
        for r in self.measured() {
            let mut per = serde_json::Map::new();
            for &n in &self.ns {
                if let Some((min, median, max)) = stats(&r.startup_ms(n)) {
                    per.insert(
                        format!("startup_ms_n{n}"),
                        json!({"min": min, "median": median, "max": max}),
                    );
                }
                if let Some((min, median, max)) = stats(&r.mem(n, |m| m.pss_kib)) {
                    per.insert(
                        format!("pss_kib_n{n}"),
                        json!({"min": min, "median": median, "max": max}),
                    );
                }
                if let Some((min, median, max)) = stats(&r.mem(n, |m| m.rss_kib)) {
                    per.insert(
                        format!("rss_kib_n{n}"),
                        json!({"min": min, "median": median, "max": max}),
                    );
                }
            }
            if let Some(c) = &r.crash {
                if let Some((min, median, max)) = stats(&c.samples_ms) {
                    per.insert(
                        "crash_to_replacement_ms".into(),
                        json!({"n": c.n, "kills": c.samples_ms.len(), "min": min, "median": median,
                               "p99": percentile(&c.samples_ms, 99.0), "max": max}),
                    );
                }
            }
            if let Some(i) = &r.idle {
                per.insert(
                    "idle".into(),
                    json!({"n": i.n, "seconds": i.seconds, "cpu_ms": i.cpu_ms, "wakeups": i.wakeups}),
                );
            }
            summary.insert(r.name.clone(), serde_json::Value::Object(per));
        }
        v["summary"] = serde_json::Value::Object(summary);
        v["placeholders"] = json!(PLACEHOLDERS
            .iter()
            .map(|p| json!({"figure": p, "value": "not measured yet"}))
            .collect::<Vec<_>>());
        if let Some(d) = self.drover() {
            v["targets"] = json!(targets(d)
                .into_iter()
                .map(|(what, target, value, met)| json!({"figure": what, "target": target, "measured": value, "met": met}))
                .collect::<Vec<_>>());
        }
        v
    }
}

/// drover-only figures that have no measurement yet.
pub const PLACEHOLDERS: [&str; 3] = [
    "liveness probe overhead (CPU per probe, 100 pods with http_get probes)",
    "CronJob lateness (scheduled second to process start)",
    "cluster failover (node lost to pods recreated elsewhere)",
];

/// (figure, target, measured, met) for the targets the issue sets.
fn targets(d: &SupResult) -> Vec<(String, String, String, bool)> {
    let mut t = vec![];
    for (n, goal) in [(100usize, 50.0), (1000, 400.0)] {
        if let Some((_, m, max)) = stats(&d.startup_ms(n)) {
            t.push((
                format!("startup, N={n}"),
                format!("≤ {goal} ms"),
                format!("{} ms (max {})", fmt(m), fmt(max)),
                m <= goal,
            ));
        }
    }
    if let Some(c) = &d.crash {
        if let Some((_, m, _)) = stats(&c.samples_ms) {
            t.push((
                format!(
                    "crash to replacement, {} kills at N={}",
                    c.samples_ms.len(),
                    c.n
                ),
                "median ≤ 1.5 ms".into(),
                format!(
                    "{} ms (p99 {} ms)",
                    fmt(m),
                    percentile(&c.samples_ms, 99.0).map_or("—".into(), fmt)
                ),
                m <= 1.5,
            ));
        }
    }
    for (n, goal) in [(100usize, 4.0), (1000, 15.0)] {
        if let Some((_, m, _)) = stats(&d.mem(n, |m| m.pss_kib)) {
            t.push((
                format!("PSS, N={n}"),
                format!("≤ {goal} MiB"),
                format!("{:.2} MiB", mib(m)),
                mib(m) <= goal,
            ));
        }
    }
    if let Some(i) = &d.idle {
        t.push((
            format!("idle wakeups, N={}, {:.0} s", i.n, i.seconds),
            "0".into(),
            format!("{} ({:.0} ms CPU)", i.wakeups, i.cpu_ms),
            i.wakeups == 0,
        ));
    }
    if let Some(g) = &d.get_pods {
        if let Some((_, m, _)) = stats(&g.cli_ms) {
            t.push((
                format!("`get pods -o json`, {} pods", g.n),
                "< 50 ms".into(),
                format!("{} ms", fmt(m)),
                m < 50.0,
            ));
        }
    }
    t
}

/// "/tmp on /dev/vda (ext4, no journal)": the file system of `dir`.
pub fn filesystem(dir: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let parent = dir.parent().unwrap_or(dir);
    let best = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && parent.starts_with(f[1])).then(|| (f[0], f[1], f[2]))
        })
        .max_by_key(|m| m.1.len());
    let Some((dev, point, fs)) = best else {
        return parent.display().to_string();
    };
    let mut kind = fs.to_string();
    if fs == "ext4" {
        let name = dev.rsplit('/').next().unwrap_or(dev);
        let journal = std::fs::read_dir("/proc/fs/jbd2")
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(name))
            })
            .unwrap_or(false);
        if !journal {
            kind.push_str(", no journal");
        }
    }
    format!("{} on {dev} mounted at {point} ({kind})", parent.display())
}
