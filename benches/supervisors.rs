//! Supervisors side by side: drover, supervisord, runit, s6, Horust and
//! PM2 driven through one workload (N copies of benches/workload.c).
//!
//! ```text
//! cargo bench --bench supervisors -- --setup      # install the peers (network)
//! cargo bench --bench supervisors                 # full run, every installed peer
//! cargo bench --bench supervisors -- --quick      # CI: N=20, 1 run, drover only, < 60 s
//! ```
//!
//! Options: `--only drover,runit` `--n 100,1000` `--runs 5` `--kills 200`
//! `--idle 30` (seconds) `--out DIR` (default target/bench). See
//! benches/README.md for what is measured and how.

#[path = "supervisors/adapters.rs"]
mod adapters;
#[path = "supervisors/measure.rs"]
mod measure;
#[path = "supervisors/procs.rs"]
mod procs;
#[path = "supervisors/report.rs"]
mod report;
#[path = "supervisors/setup.rs"]
mod setup;
#[path = "supervisors/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where things are.
/// The name of the no-supervisor floor in the report.
pub const BASELINE: &str = "baseline";

pub struct Env {
    /// target/bench: the workload, the peers, the default output.
    pub bench: PathBuf,
    /// target/bench/peers: bench-local installs and setup markers.
    pub peers: PathBuf,
    pub workload: PathBuf,
    /// target/release/drover.
    pub drover: PathBuf,
}

pub struct Options {
    pub quick: bool,
    pub setup: bool,
    pub only: Vec<String>,
    pub ns: Vec<usize>,
    pub runs: usize,
    pub out: PathBuf,
    pub kills: usize,
    pub idle: Duration,
    pub settle: Duration,
    pub kill_gap: Duration,
    pub crash_timeout: Duration,
    pub crash_budget: Duration,
    pub get_pods_reps: usize,
}

impl Options {
    pub fn startup_timeout(&self, n: usize) -> Duration {
        Duration::from_secs(30) + Duration::from_millis(100) * n as u32
    }
}

const USAGE: &str = "\
usage: cargo bench --bench supervisors -- [--setup] [--quick] [--only NAME,...]
         [--n 100,1000] [--runs 5] [--kills 200] [--idle SECONDS] [--out DIR]
  --setup   install the peers (apt: supervisor runit s6; crates.io: horust;
            npm: pm2) into target/bench/peers, build the workload and drover
  --quick   N=20, 1 run, drover only, 3 s idle window (what CI runs)
  --only    drover, supervisord, runit, s6, Horust, PM2 (comma-separated)";

fn parse_args(args: &[String], target: &Path) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options {
        quick,
        setup: false,
        only: if quick { vec!["drover".into()] } else { vec![] },
        ns: if quick { vec![20] } else { vec![100, 1000] },
        runs: if quick { 1 } else { 5 },
        out: target.join("bench"),
        kills: if quick { 20 } else { 200 },
        idle: Duration::from_secs(if quick { 3 } else { 30 }),
        settle: Duration::from_millis(if quick { 500 } else { 1000 }),
        kill_gap: Duration::from_millis(50),
        crash_timeout: Duration::from_secs(5),
        crash_budget: Duration::from_secs(if quick { 20 } else { 60 }),
        get_pods_reps: 20,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{flag} needs a value"))
        };
        let number = |v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{flag}: `{v}` is not a positive number"))
        };
        match flag {
            "--quick" | "--bench" => {}
            "--setup" => o.setup = true,
            "--only" => {
                o.only = value()?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "--n" => {
                o.ns = value()?
                    .split(',')
                    .map(|s| number(s.trim().to_string()))
                    .collect::<Result<_, _>>()?;
                o.ns.sort_unstable();
                o.ns.dedup();
            }
            "--runs" => o.runs = number(value()?)?,
            "--kills" => o.kills = number(value()?)?,
            "--idle" => o.idle = Duration::from_secs(number(value()?)? as u64),
            "--out" => o.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(o)
}

/// target/release/drover; built with `cargo build --release` if missing.
pub fn ensure_drover(env: &Env) -> Result<(), String> {
    if env.drover.is_file() {
        return Ok(());
    }
    println!("building {} (cargo build --release)", env.drover.display());
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "--bin", "drover"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cargo build --release: {e}"))?;
    if status.success() && env.drover.is_file() {
        Ok(())
    } else {
        Err(format!("cargo build --release failed: {status}"))
    }
}

fn machine(load_before: String, load_after: String, busy_percent: f64) -> report::Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_default();
    let debian = read("/etc/debian_version").trim().to_string();
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    report::Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        os: if debian.is_empty() {
            os
        } else {
            format!("{os} ({debian})")
        },
        memory_gib: mem_kib / 1024.0 / 1024.0,
        load_before,
        load_after,
        busy_percent,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --benches` and nextest's
    // listing do not: this is a benchmark, not a test, so it does nothing
    // there.
    if args.iter().any(|a| a == "--list") || !args.iter().any(|a| a == "--bench") {
        println!("supervisors: a benchmark; run it with `cargo bench --bench supervisors`");
        return ExitCode::SUCCESS;
    }
    let drover = PathBuf::from(env!("CARGO_BIN_EXE_drover"));
    let target = drover
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let opts = match parse_args(&args, &target) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let bench = target.join("bench");
    let mut env = Env {
        peers: bench.join("peers"),
        workload: bench.join("workload"),
        bench,
        drover,
    };

    if let Err(e) = procs::become_subreaper() {
        eprintln!("cannot become a child subreaper: {e}");
        return ExitCode::FAILURE;
    }
    procs::catch_interrupts();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        procs::kill_all_descendants();
        default_hook(info);
    }));

    if opts.setup {
        return if setup::setup(&env) {
            println!("setup done");
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match workload::build(&env.bench) {
        Ok(p) => env.workload = p,
        Err(e) => {
            eprintln!("workload: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = ensure_drover(&env) {
        eprintln!("drover: {e}");
        return ExitCode::FAILURE;
    }
    // Measure a copy: target/release/drover may be rebuilt while the
    // benchmark runs (other builds on the same tree).
    let under_test = env.bench.join("drover-under-test");
    match std::fs::copy(&env.drover, &under_test) {
        Ok(_) => env.drover = under_test,
        Err(e) => {
            eprintln!("copying {}: {e}", env.drover.display());
            return ExitCode::FAILURE;
        }
    }
    run(&env, &opts)
}

fn run(env: &Env, opts: &Options) -> ExitCode {
    let started = Instant::now();
    let load_before = procs::loadavg();
    let cpu_before = procs::cpu_jiffies();
    let mut adapters = adapters::all(&opts.only);
    if adapters.is_empty() {
        eprintln!("--only {:?} names no supervisor", opts.only);
        return ExitCode::from(2);
    }
    let mut baseline = report::SupResult {
        name: BASELINE.into(),
        version: "std::process::Command (posix_spawn), no supervisor".into(),
        status: "ok".into(),
        notes: vec![
            "the floor: the benchmark starts the copies itself, all N at once (startup), and \
             one at a time timed from the spawn call to the copy's recorded start (in the \
             crash table): how fast this machine starts the workload at the time of the run"
                .into(),
        ],
        ..Default::default()
    };
    let mut results: Vec<report::SupResult> = adapters
        .iter()
        .map(|a| {
            let (status, version) = match a.unavailable(env) {
                Some(reason) => (format!("skipped: {reason}"), "—".to_string()),
                None => ("ok".into(), a.version(env)),
            };
            println!("{:<12} {version:<40} {status}", a.name());
            report::SupResult {
                name: a.name().into(),
                version,
                status,
                notes: a.notes(),
                ..Default::default()
            }
        })
        .collect();
    let idle_n = opts.ns[0];
    // Every run's folder, removed at the end (see measure::Outcome::dir).
    let mut dirs = vec![];
    let big_n = *opts.ns.last().unwrap_or(&idle_n);

    // Runs interleave the supervisors so that a change in the machine's
    // load hits all of them alike.
    for run in 0..opts.runs {
        for &n in &opts.ns {
            let restarts = if run == 0 && n == big_n {
                opts.kills
            } else {
                0
            };
            let mut o = measure::baseline(env, opts, n, restarts);
            dirs.extend(o.dir.take());
            println!(
                "run {}/{} N={n:<5} {:<12} startup {:>9} ms{}",
                run + 1,
                opts.runs,
                "baseline",
                o.startup
                    .as_ref()
                    .map_or("—".into(), |s| format!("{:.1}", s.all_ms)),
                o.crash.as_ref().map_or(String::new(), |c| format!(
                    "  spawn to start median {} ms",
                    report::stats(&c.samples_ms).map_or("—".into(), |s| format!("{:.2}", s.1))
                )),
            );
            baseline.startup.entry(n).or_default().extend(o.startup);
            baseline.crash = baseline.crash.take().or(o.crash);
            baseline.errors.extend(o.errors);
            for (a, r) in adapters.iter_mut().zip(results.iter_mut()) {
                if !r.ok() {
                    continue;
                }
                let extras = measure::Extras {
                    idle: run == 0 && n == idle_n,
                    crash: run == 0 && n == big_n,
                    get_pods: run == 0 && n == big_n && a.name() == "drover",
                };
                let t = Instant::now();
                let mut o = measure::one(env, opts, a.as_mut(), n, &extras);
                dirs.extend(o.dir.take());
                println!(
                    "run {}/{} N={n:<5} {:<12} startup {:>9} ms  PSS {:>8} KiB{}{}{}  ({:.1} s){}",
                    run + 1,
                    opts.runs,
                    a.name(),
                    o.startup
                        .as_ref()
                        .map_or("—".into(), |s| format!("{:.1}", s.all_ms)),
                    o.memory
                        .as_ref()
                        .map_or("—".into(), |m| m.pss_kib.to_string()),
                    o.idle.as_ref().map_or(String::new(), |i| format!(
                        "  idle {} wakeups {:.0} ms CPU",
                        i.wakeups, i.cpu_ms
                    )),
                    o.crash.as_ref().map_or(String::new(), |c| format!(
                        "  crash median {} ms ({} kills)",
                        report::stats(&c.samples_ms)
                            .map_or("—".into(), |s| format!("{:.2}", s.1)),
                        c.samples_ms.len()
                    )),
                    o.get_pods.as_ref().map_or(String::new(), |g| format!(
                        "  get pods {} ms",
                        report::stats(&g.cli_ms).map_or("—".into(), |s| format!("{:.1}", s.1))
                    )),
                    t.elapsed().as_secs_f64(),
                    if o.errors.is_empty() {
                        String::new()
                    } else {
                        format!("  ERRORS: {}", o.errors.join("; "))
                    }
                );
                if let Some(s) = o.startup {
                    r.startup.entry(n).or_default().push(s);
                }
                if let Some(m) = o.memory {
                    r.memory.entry(n).or_default().push(m);
                }
                r.idle = r.idle.take().or(o.idle);
                r.crash = r.crash.take().or(o.crash);
                r.get_pods = r.get_pods.take().or(o.get_pods);
                r.errors.extend(
                    o.errors
                        .into_iter()
                        .map(|e| format!("run {} N={n}: {e}", run + 1)),
                );
                if o.left_behind > 0 {
                    r.errors.push(format!(
                        "run {} N={n}: {} processes left behind after stop (killed)",
                        run + 1,
                        o.left_behind
                    ));
                }
            }
        }
    }
    procs::kill_all_descendants();
    results.push(baseline);
    let run_dirs = dirs
        .first()
        .map(|d| report::filesystem(d.path()))
        .unwrap_or_default();
    drop(dirs);

    let cpu_after = procs::cpu_jiffies();
    let busy =
        (cpu_after.0 - cpu_before.0) as f64 * 100.0 / (cpu_after.1 - cpu_before.1).max(1) as f64;
    let report = report::Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        command: format!(
            "cargo bench --bench supervisors --{}",
            std::env::args()
                .skip(1)
                .filter(|a| a != "--bench")
                .map(|a| format!(" {a}"))
                .collect::<String>()
        ),
        machine: machine(load_before, procs::loadavg(), busy),
        run_dirs,
        ns: opts.ns.clone(),
        runs: opts.runs,
        idle_seconds: opts.idle.as_secs_f64(),
        kills: opts.kills,
        duration_s: started.elapsed().as_secs_f64(),
        supervisors: results,
    };
    let md = report.markdown();
    println!("\n{md}");
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let written = std::fs::create_dir_all(&opts.out)
        .and_then(|()| std::fs::write(opts.out.join(format!("results-{day}.md")), &md))
        .and_then(|()| {
            std::fs::write(
                opts.out.join(format!("results-{day}.json")),
                serde_json::to_string_pretty(&report.json()).unwrap_or_default() + "\n",
            )
        });
    match written {
        Ok(()) => println!(
            "written: {}",
            opts.out
                .join(format!("results-{day}.{{md,json}}"))
                .display()
        ),
        Err(e) => {
            eprintln!("writing results to {}: {e}", opts.out.display());
            return ExitCode::FAILURE;
        }
    }
    // The benchmark fails only when it could not measure drover or left
    // processes behind; a missed target is a finding, not a failure.
    let drover_failed = report
        .supervisors
        .iter()
        .any(|r| r.name == "drover" && (!r.ok() || !r.errors.is_empty()));
    let leaked = report
        .supervisors
        .iter()
        .any(|r| r.errors.iter().any(|e| e.contains("left")));
    if drover_failed || leaked {
        eprintln!("benchmark FAILED: see the errors above");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
