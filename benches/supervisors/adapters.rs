//! One adapter per supervisor, all behind [`Adapter`]: write the config
//! for N copies of the workload, start the supervisor, stop it, tell its
//! version and its own processes. Every adapter uses the supervisor's
//! defaults except where a setting is needed to run N copies at all (each
//! such setting is listed in `notes`).

use crate::procs;
use crate::Env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub type Result<T> = std::result::Result<T, String>;

/// One measured configuration: N copies of the workload, recording into
/// `record`, with every file of the supervisor under `dir`.
pub struct RunSpec {
    pub dir: PathBuf,
    pub n: usize,
    pub workload: PathBuf,
    pub record: PathBuf,
}

pub trait Adapter {
    fn name(&self) -> &'static str;
    /// Why this supervisor cannot be measured here (not installed), if so.
    fn unavailable(&self, env: &Env) -> Option<String>;
    fn version(&self, env: &Env) -> String;
    /// Settings that differ from the supervisor's defaults, and traps.
    fn notes(&self) -> Vec<String>;
    /// Writes the configuration for `spec.n` copies.
    fn prepare(&mut self, env: &Env, spec: &RunSpec) -> Result<()>;
    /// Launches the supervisor (not waiting for anything); returns the pid
    /// of the process launched.
    fn start(&mut self, env: &Env, spec: &RunSpec) -> Result<i32>;
    /// Stops the supervisor and every copy. The default kills, by pid,
    /// every process the benchmark started (the supervisor's tree, and the
    /// copies, which the benchmark as subreaper inherits): stopping is not
    /// measured, and no supervisor is trusted to leave nothing behind.
    fn stop(&mut self) {
        procs::kill_all_descendants();
    }
    /// The supervisor's own processes (for memory and CPU): everything it
    /// started except the copies of the workload.
    fn supervisor_pids(&self, spec: &RunSpec) -> Vec<i32> {
        procs::supervisor_processes(&spec.workload)
    }
    /// drover only: the control socket, for `get pods`.
    fn socket(&self) -> Option<PathBuf> {
        None
    }
}

pub fn all(only: &[String]) -> Vec<Box<dyn Adapter>> {
    let every: Vec<Box<dyn Adapter>> = vec![
        Box::new(Drover::default()),
        Box::new(Supervisord),
        Box::new(Runit),
        Box::new(S6),
        Box::new(Horust),
        Box::new(Pm2),
    ];
    every
        .into_iter()
        .filter(|a| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(a.name())))
        .collect()
}

/// Spawns `cmd` in its own process group with its output in
/// `dir/supervisor.log`; the child is not waited for here (the benchmark
/// reaps every child itself).
fn spawn(cmd: &mut Command, dir: &Path) -> Result<i32> {
    let log = fs::File::create(dir.join("supervisor.log")).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {:?}: {e}", cmd.get_program()))?;
    Ok(child.id() as i32)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn first_line(cmd: &mut Command) -> String {
    cmd.stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn deb_version(package: &str) -> String {
    let v = first_line(Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]));
    if v.is_empty() {
        "unknown".into()
    } else {
        format!("{v} (Debian package {package})")
    }
}

/// A peer that `--setup` failed to install left its reason here.
fn setup_failure(env: &Env, name: &str) -> Option<String> {
    fs::read_to_string(env.peers.join(format!("{name}.skipped")))
        .ok()
        .map(|s| s.trim().to_string())
}

fn missing(env: &Env, name: &str, what: &str) -> String {
    setup_failure(env, name).unwrap_or_else(|| {
        format!("{what} not installed (run `cargo bench --bench supervisors -- --setup`)")
    })
}

fn quote_toml(s: &str) -> String {
    format!("{:?}", s)
}

/// The workload's command line as a shell word list.
fn sh_command(spec: &RunSpec) -> String {
    format!(
        "exec '{}' '{}'",
        spec.workload.display(),
        spec.record.display()
    )
}

// ---------------------------------------------------------------- drover

#[derive(Default)]
pub struct Drover {
    socket: Option<PathBuf>,
}

impl Adapter for Drover {
    fn name(&self) -> &'static str {
        "drover"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        (!env.drover.is_file()).then(|| format!("{} missing", env.drover.display()))
    }

    fn version(&self, env: &Env) -> String {
        let v = first_line(Command::new(&env.drover).arg("--version"));
        // Read-only git: which commit, and whether src/ differs from it.
        let repo = env!("CARGO_MANIFEST_DIR");
        let git = |args: &[&str]| {
            Command::new("git")
                .args(["--no-optional-locks", "-C", repo])
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        match git(&["rev-parse", "--short", "HEAD"]) {
            Some(commit) => {
                let dirty = git(&["status", "--porcelain", "--", "src", "Cargo.toml"])
                    .is_some_and(|s| !s.is_empty());
                let tree = if dirty { " + uncommitted changes" } else { "" };
                format!("{v} (commit {commit}{tree})")
            }
            None => v,
        }
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "one ReplicaSet of N replicas in a units folder; `drover daemon` with its own socket, \
             state and log dirs and an empty config file (defaults: info logging, every process's \
             output captured to log files)"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let unit = format!(
            "kind = \"ReplicaSet\"\nname = \"bench\"\n\n[spec]\nreplicas = {}\n\n\
             [spec.selector]\nmatch_labels = {{ app = \"bench\" }}\n\n\
             [spec.template]\nlabels = {{ app = \"bench\" }}\nrestart_policy = \"Always\"\n\n\
             [[spec.template.processes]]\nname = \"main\"\ncommand = [{}, {}]\n",
            spec.n,
            quote_toml(&spec.workload.to_string_lossy()),
            quote_toml(&spec.record.to_string_lossy()),
        );
        write_file(&spec.dir.join("units/bench.toml"), &unit, 0o644)?;
        write_file(
            &spec.dir.join("drover.toml"),
            "# benchmark: defaults only\n",
            0o644,
        )
    }

    fn start(&mut self, env: &Env, spec: &RunSpec) -> Result<i32> {
        let socket = spec.dir.join("drover.sock");
        self.socket = Some(socket.clone());
        let d = &spec.dir;
        spawn(
            Command::new(&env.drover)
                .arg("daemon")
                .arg("--config")
                .arg(d.join("drover.toml"))
                .arg("--socket")
                .arg(&socket)
                .arg("--state-dir")
                .arg(d.join("state"))
                .arg("--units")
                .arg(d.join("units"))
                .arg("--node-name")
                .arg("bench")
                .arg("--log-dir")
                .arg(d.join("logs"))
                .env_remove("DROVER_SOCKET")
                .env_remove("DROVER_STATE_DIR"),
            d,
        )
    }

    fn socket(&self) -> Option<PathBuf> {
        self.socket.clone()
    }

    /// As every supervisor, then the pods' cgroups, which the daemon
    /// (killed too) cannot remove: 2,000 a run at N=1000.
    fn stop(&mut self) {
        procs::kill_all_descendants();
        let state = self
            .socket
            .as_ref()
            .and_then(|s| s.parent())
            .map(|d| d.join("state"));
        if let Some(Ok(id)) = state.map(|d| std::fs::read_to_string(d.join("instance-id"))) {
            // A killed pod stays in its cgroup until it is reaped (by the
            // keeper or init, a moment later), and rmdir says busy until
            // then: two pod cgroups were left after one run here.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while !drover::runtime::cgroup::remove_leftovers(id.trim())
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

// ------------------------------------------------------------ supervisord

pub struct Supervisord;

impl Adapter for Supervisord {
    fn name(&self) -> &'static str {
        "supervisord"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        in_path("supervisord")
            .is_none()
            .then(|| missing(env, self.name(), "supervisord (Debian package supervisor)"))
    }

    fn version(&self, _env: &Env) -> String {
        first_line(Command::new("supervisord").arg("--version"))
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "one [program] with numprocs=N, autorestart=true; `supervisord -n`; default AUTO \
             child logs (two files per copy); minfds raised to 8*N+64 so N copies fit"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let d = spec.dir.display();
        let conf = format!(
            "[supervisord]\nnodaemon=true\nuser=root\nlogfile={d}/supervisord.log\n\
             pidfile={d}/supervisord.pid\nchildlogdir={d}/logs\nminfds={minfds}\n\n\
             [program:bench]\ncommand={wl} {rec}\nprocess_name=%(program_name)s_%(process_num)04d\n\
             numprocs={n}\nautorestart=true\n",
            minfds = 8 * spec.n + 64,
            wl = spec.workload.display(),
            rec = spec.record.display(),
            n = spec.n,
        );
        fs::create_dir_all(spec.dir.join("logs")).map_err(|e| e.to_string())?;
        write_file(&spec.dir.join("supervisord.conf"), &conf, 0o644)
    }

    fn start(&mut self, _env: &Env, spec: &RunSpec) -> Result<i32> {
        spawn(
            Command::new("supervisord")
                .arg("-n")
                .arg("-c")
                .arg(spec.dir.join("supervisord.conf")),
            &spec.dir,
        )
    }
}

// ------------------------------------------------------------------ runit

pub struct Runit;

impl Adapter for Runit {
    fn name(&self) -> &'static str {
        "runit"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        in_path("runsvdir")
            .is_none()
            .then(|| missing(env, self.name(), "runsvdir (Debian package runit)"))
    }

    fn version(&self, _env: &Env) -> String {
        deb_version("runit")
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "`runsvdir -P` over N service dirs, each `./run` = exec workload; one runsv process \
             per copy (counted as the supervisor's processes)"
                .into(),
            "trap: runsvdir postpones its first scan ~1 s when the service dir's mtime is in the \
             current second; the config is written right before the start, as a user who creates \
             services and starts runsvdir experiences it, so the startup figures include that delay"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let run = format!("#!/bin/sh\n{}\n", sh_command(spec));
        for i in 0..spec.n {
            write_file(
                &spec.dir.join(format!("service/bench{i:04}/run")),
                &run,
                0o755,
            )?;
        }
        Ok(())
    }

    fn start(&mut self, _env: &Env, spec: &RunSpec) -> Result<i32> {
        spawn(
            Command::new("runsvdir")
                .arg("-P")
                .arg(spec.dir.join("service")),
            &spec.dir,
        )
    }
}

// --------------------------------------------------------------------- s6

pub struct S6;

impl Adapter for S6 {
    fn name(&self) -> &'static str {
        "s6"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        in_path("s6-svscan")
            .is_none()
            .then(|| missing(env, self.name(), "s6-svscan (Debian package s6)"))
    }

    fn version(&self, _env: &Env) -> String {
        deb_version("s6")
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "`s6-svscan` over N service dirs, each `./run` = exec workload (s6 passes the service \
             name as ./run's argv[1]: the script ignores it); one s6-supervise per copy (counted \
             as the supervisor's processes); `-c N+64` because s6-svscan supervises at most 500 \
             services by default"
                .into(),
            "s6-supervise paces restarts: the replacement starts about 1 s after the death \
             (its default throttle, as observed here)"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let run = format!("#!/bin/sh\n{}\n", sh_command(spec));
        for i in 0..spec.n {
            write_file(&spec.dir.join(format!("scan/bench{i:04}/run")), &run, 0o755)?;
        }
        Ok(())
    }

    fn start(&mut self, _env: &Env, spec: &RunSpec) -> Result<i32> {
        // s6-svscan supervises at most 500 services unless told more.
        spawn(
            Command::new("s6-svscan")
                .arg("-c")
                .arg((spec.n + 64).max(500).to_string())
                .arg(spec.dir.join("scan")),
            &spec.dir,
        )
    }
}

// ----------------------------------------------------------------- Horust

pub struct Horust;

impl Horust {
    fn bin(env: &Env) -> PathBuf {
        env.peers.join("horust/bin/horust")
    }
}

impl Adapter for Horust {
    fn name(&self) -> &'static str {
        "Horust"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        (!Self::bin(env).is_file())
            .then(|| missing(env, self.name(), "horust (crates.io, bench-local root)"))
    }

    fn version(&self, env: &Env) -> String {
        // horust has no --version: cargo install's record tells.
        let crates = fs::read_to_string(env.peers.join("horust/.crates.toml")).unwrap_or_default();
        crates
            .split('"')
            .find_map(|s| s.strip_prefix("horust "))
            .and_then(|s| s.split_whitespace().next())
            .map(|v| format!("{v} (crates.io)"))
            .unwrap_or_else(|| "unknown".into())
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "N service TOML files (restart strategy \"always\") in --services-path; a non-empty \
             horust config file (Horust refuses an empty one)"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let command = format!("{} {}", spec.workload.display(), spec.record.display());
        for i in 0..spec.n {
            let service = format!(
                "command = {}\n\n[restart]\nstrategy = \"always\"\n",
                quote_toml(&command)
            );
            write_file(
                &spec.dir.join(format!("services/bench{i:04}.toml")),
                &service,
                0o644,
            )?;
        }
        write_file(
            &spec.dir.join("horust.toml"),
            "unsuccessful_exit_finished_failed = false\n",
            0o644,
        )
    }

    fn start(&mut self, env: &Env, spec: &RunSpec) -> Result<i32> {
        spawn(
            Command::new(Self::bin(env))
                .arg("--config-path")
                .arg(spec.dir.join("horust.toml"))
                .arg("--services-path")
                .arg(spec.dir.join("services"))
                .arg("--uds-folder-path")
                .arg(&spec.dir),
            &spec.dir,
        )
    }
}

// -------------------------------------------------------------------- PM2

pub struct Pm2;

pub const PM2_VERSION: &str = "7.0.4";

impl Pm2 {
    fn prefix(env: &Env) -> PathBuf {
        env.peers.join("pm2")
    }
    fn bin(env: &Env) -> PathBuf {
        Self::prefix(env).join("node_modules/.bin/pm2")
    }
}

impl Adapter for Pm2 {
    fn name(&self) -> &'static str {
        "PM2"
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        if in_path("node").is_none() {
            return Some("node not installed".into());
        }
        (!Self::bin(env).is_file()).then(|| missing(env, self.name(), "pm2 (npm, bench-local)"))
    }

    fn version(&self, env: &Env) -> String {
        // Not `pm2 --version`: that silently starts a God daemon.
        let pkg = Self::prefix(env).join("node_modules/pm2/package.json");
        let node = first_line(Command::new("node").arg("--version"));
        fs::read_to_string(pkg)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string))
            .map(|v| format!("{v} (node {node})"))
            .unwrap_or_else(|| "unknown".into())
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "N apps in one ecosystem JSON file (fork mode, interpreter none, autorestart); \
             PM2_HOME in the run's temp dir; timed from `pm2 start`, which launches the God \
             daemon (default logs: two files per app)"
                .into(),
        ]
    }

    fn prepare(&mut self, _env: &Env, spec: &RunSpec) -> Result<()> {
        let mut apps = vec![];
        for i in 0..spec.n {
            apps.push(serde_json::json!({
                "name": format!("bench{i:04}"),
                "script": spec.workload,
                "args": [spec.record],
                "interpreter": "none",
                "exec_mode": "fork",
                "autorestart": true,
            }));
        }
        let text = serde_json::to_string_pretty(&serde_json::json!({ "apps": apps }))
            .map_err(|e| e.to_string())?;
        fs::create_dir_all(spec.dir.join("pm2home")).map_err(|e| e.to_string())?;
        write_file(&spec.dir.join("ecosystem.json"), &text, 0o644)
    }

    fn start(&mut self, env: &Env, spec: &RunSpec) -> Result<i32> {
        spawn(
            Command::new(Self::bin(env))
                .arg("start")
                .arg(spec.dir.join("ecosystem.json"))
                .env("PM2_HOME", spec.dir.join("pm2home")),
            &spec.dir,
        )
    }
}
