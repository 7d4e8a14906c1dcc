//! `drover daemon [--config FILE]`: the service. Reads the config file,
//! lets flags override it, and hands the result to [`crate::daemon::run`].
//! `up` shares the flags and the resolution here.
//!
//! The config file is TOML (all keys optional):
//!
//! ```toml
//! node_name = "web-1"
//! units_dir = "/etc/drover/units"
//! state_dir = "/var/lib/drover"
//! log_dir = "/var/log/drover"
//! socket = "/run/drover/drover.sock"
//! log_max_size = "10Mi"          # rotate process logs at this size (Ki, Mi, Gi; or bytes)
//! backoff_initial = "10s"        # restart back-off: first delay,
//! backoff_max = "5m"             # its ceiling,
//! backoff_reset = "10m"          # and the run that resets it
//! socket_group = "drover"        # members may use the control socket (product.md §3)
//! [node_labels]
//! disk = "ssd"
//! [cluster]                      # cluster mode; see crate::cluster::config
//! endpoints = ["https://10.0.0.1:2379"]
//! ca = "pki/ca.crt"
//! cert = "pki/node.crt"
//! key = "pki/node.key"
//! ```
//!
//! Relative paths in the file are relative to the file's folder.

use super::CliError;
use crate::api::duration::parse_duration;
use crate::daemon::BackoffConfig;
use crate::daemon::DaemonOptions;
use crate::paths;
use anyhow::Context as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Process logs rotate at this size unless the config says otherwise.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The config file [default: /etc/drover/drover.toml as root, else
    /// ~/.config/drover/drover.toml; a missing default file is fine]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The units folder, applied at start and on daemon-reload [default:
    /// /etc/drover/units as root, else ~/.config/drover/units]
    #[arg(long, value_name = "DIR")]
    units: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

/// Flags `daemon` and `up` share.
#[derive(clap::Args, Debug, Default)]
pub struct NodeArgs {
    /// Where the daemon keeps its state [default: /var/lib/drover as root,
    /// else ~/.local/state/drover]
    #[arg(long, env = "DROVER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// This node's name [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Where process logs go [default: /var/log/drover as root with the
    /// default state dir, else STATE_DIR/logs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// etcd endpoints: cluster mode (overrides [cluster] endpoints in
    /// the config). Plain http only on loopback, else https with the
    /// cluster's certificates ([cluster] ca, cert, key)
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Accept plain-http etcd endpoints off loopback (no TLS: anyone on
    /// the network can read and change the cluster)
    #[arg(long)]
    pub insecure_etcd: bool,
    /// This node's labels, over [node_labels] in the config
    /// (`disk=ssd,zone=a`)
    #[arg(long, value_name = "KEY=VALUE,...", value_delimiter = ',')]
    pub node_labels: Vec<String>,
}

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node_name: Option<String>,
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    pub units_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub log_max_size: Option<Size>,
    pub backoff_initial: Option<String>,
    pub backoff_max: Option<String>,
    pub backoff_reset: Option<String>,
    pub cluster: Option<crate::cluster::ClusterTable>,
    pub socket_group: Option<String>,
}

/// `log_max_size`: bytes as a number, or "10Mi", "512Ki", "1Gi", "10M".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

pub fn run(args: Args, socket: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, base) = read_config(args.config.as_deref())?;
    let opts = resolve(&args.node, args.units, socket, config, &base, false)?;
    start(opts)
}

/// Installs the log subscriber and runs the daemon until it stops.
pub(super) fn start(opts: DaemonOptions) -> anyhow::Result<()> {
    init_tracing();
    crate::daemon::run(opts)
}

/// The daemon logs to stderr (journald picks that up); DROVER_LOG or
/// RUST_LOG (`debug`, `drover=debug,hyper=warn`) choose what, `info` by
/// default. Identical lines repeated within 10s are written once and
/// then counted (`daemon::log_limit`), for every call site.
fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DROVER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours on a terminal only: journald and log files get plain text.
    let format = tracing_subscriber::fmt::format().with_ansi(std::io::stderr().is_terminal());
    // Already installed (a test harness): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(crate::daemon::log_limit::RateLimited::new(format))
        .try_init();
}

/// The config and the folder its relative paths are relative to. A missing
/// default file is an empty config; a missing explicit one is an error.
fn read_config(explicit: Option<&Path>) -> anyhow::Result<(Config, PathBuf)> {
    let path = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(paths::default_config);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok((Config::default(), base));
        }
        Err(e) => return Err(e).with_context(|| format!("reading config {}", path.display())),
    };
    let config = parse_config(&text).with_context(|| format!("config {}", path.display()))?;
    Ok((config, base))
}

pub fn parse_config(text: &str) -> anyhow::Result<Config> {
    // toml's message spans several lines (a snippet); keep its first line
    // and the position for the one-line error.
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let position = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                let col = s.start - text[..s.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {col}: ")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{position}{}", e.message().trim())
    })
}

/// Flags over config over defaults.
pub(super) fn resolve(
    node: &NodeArgs,
    units: Option<PathBuf>,
    socket: Option<PathBuf>,
    config: Config,
    config_dir: &Path,
    foreground: bool,
) -> anyhow::Result<DaemonOptions> {
    let cluster =
        crate::cluster::config::resolve(&node.etcd, node.insecure_etcd, config.cluster, config_dir)
            .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut node_labels = config.node_labels;
    for pair in &node.node_labels {
        let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(
                CliError::Usage(format!("--node-labels: `{pair}` is not KEY=VALUE")).into(),
            );
        };
        node_labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let from_config = |p: Option<PathBuf>| p.map(|p| config_dir.join(p));
    let state_dir = absolute(
        node.state_dir
            .clone()
            .or_else(|| from_config(config.state_dir))
            .unwrap_or_else(paths::default_state_dir),
    )?;
    let log_dir = absolute(
        node.log_dir
            .clone()
            .or_else(|| from_config(config.log_dir))
            .unwrap_or_else(|| paths::default_log_dir(&state_dir)),
    )?;
    let units_dir = absolute(
        units
            .or_else(|| from_config(config.units_dir))
            .unwrap_or_else(paths::default_units_dir),
    )?;
    let socket = absolute(
        socket
            .or_else(|| from_config(config.socket))
            .unwrap_or_else(paths::default_socket),
    )?;
    let node_name = node
        .node_name
        .clone()
        .or(config.node_name)
        .unwrap_or_else(paths::hostname);
    if node_name.trim().is_empty() {
        return Err(CliError::Usage("the node name is empty".into()).into());
    }
    let log_max_bytes = match config.log_max_size {
        None => DEFAULT_LOG_MAX_BYTES,
        Some(Size::Bytes(n)) => n,
        Some(Size::Text(t)) => parse_size(&t).map_err(|e| anyhow::anyhow!("log_max_size: {e}"))?,
    };
    let mut backoff = BackoffConfig::default();
    let durations = [
        (
            "backoff_initial",
            config.backoff_initial,
            &mut backoff.initial,
        ),
        ("backoff_max", config.backoff_max, &mut backoff.max),
        (
            "backoff_reset",
            config.backoff_reset,
            &mut backoff.reset_after,
        ),
    ];
    for (key, text, slot) in durations {
        if let Some(text) = text {
            *slot =
                parse_duration(&text).map_err(|e| anyhow::anyhow!("{key} = \"{text}\": {e}"))?;
        }
    }
    Ok(DaemonOptions {
        socket,
        state_dir,
        units_dir: Some(units_dir),
        node_name,
        node_labels,
        log_dir,
        foreground,
        log_max_bytes,
        backoff,
        cluster,
        socket_group: config
            .socket_group
            .unwrap_or_else(|| crate::daemon::auth::DEFAULT_GROUP.to_string()),
    })
}

fn absolute(p: PathBuf) -> anyhow::Result<PathBuf> {
    std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))
}

/// "10Mi" (binary units Ki Mi Gi Ti), "10M" (decimal k/K M G T), "4096".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write bytes or a number with Ki, Mi, Gi"))?;
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (units: Ki, Mi, Gi, Ti, K, M, G, T)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10Mi"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512Ki"), Ok(512 * 1024));
        assert_eq!(parse_size("10M"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("10 MB").is_err());
        assert!(parse_size("Mi").is_err());
    }

    #[test]
    fn flags_override_the_config_and_paths_are_resolved() {
        let config = parse_config(
            "node_name = \"from-config\"\nstate_dir = \"state\"\nlog_max_size = \"1Mi\"\n\
             backoff_initial = \"1s\"\n[node_labels]\ndisk = \"ssd\"\n",
        )
        .unwrap();
        let flags = NodeArgs {
            node_name: Some("n1".into()),
            ..NodeArgs::default()
        };
        let opts = resolve(
            &flags,
            None,
            Some("/tmp/s.sock".into()),
            config,
            Path::new("/etc/drover"),
            false,
        )
        .unwrap();
        assert_eq!(opts.node_name, "n1");
        assert_eq!(opts.state_dir, PathBuf::from("/etc/drover/state"));
        assert_eq!(opts.log_dir, PathBuf::from("/etc/drover/state/logs"));
        assert_eq!(opts.socket, PathBuf::from("/tmp/s.sock"));
        assert_eq!(opts.log_max_bytes, 1024 * 1024);
        assert_eq!(opts.backoff.initial, std::time::Duration::from_secs(1));
        assert_eq!(
            opts.node_labels.get("disk").map(String::as_str),
            Some("ssd")
        );
        assert!(!opts.foreground);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse_config("node_nme = \"x\"\n").unwrap_err().to_string();
        assert!(
            err.starts_with("line 1, column 1: unknown field `node_nme`"),
            "{err}"
        );
        let err = parse_config("[cluster]\nendpoint = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `endpoint`"), "{err}");
    }

    #[test]
    fn cluster_mode_from_flags_and_the_config() {
        let config = parse_config(
            "[cluster]\nendpoints = [\"http://127.0.0.1:23790\"]\nlease_ttl = \"3s\"\n",
        )
        .unwrap();
        let opts = resolve(
            &NodeArgs::default(),
            None,
            None,
            config,
            Path::new("/"),
            false,
        )
        .unwrap();
        let cluster = opts.cluster.expect("cluster mode");
        assert_eq!(cluster.etcd.endpoints, ["http://127.0.0.1:23790"]);
        assert_eq!(cluster.lease_ttl, std::time::Duration::from_secs(3));

        // Plain http off loopback is a usage error naming the way out.
        let flags = NodeArgs {
            etcd: vec!["http://10.1.1.1:2379".into()],
            ..NodeArgs::default()
        };
        let err = resolve(&flags, None, None, Config::default(), Path::new("/"), true).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<CliError>(), Some(CliError::Usage(m)) if m.contains("--insecure-etcd")),
            "{err}"
        );
        let flags = NodeArgs {
            insecure_etcd: true,
            ..flags
        };
        let opts = resolve(&flags, None, None, Config::default(), Path::new("/"), true).unwrap();
        assert!(opts.cluster.is_some_and(|c| c.etcd.insecure));

        // No endpoints anywhere: single host.
        let opts = resolve(
            &NodeArgs::default(),
            None,
            None,
            Config::default(),
            Path::new("/"),
            true,
        )
        .unwrap();
        assert!(opts.cluster.is_none());
    }

    #[test]
    fn node_labels_flag_over_the_config() {
        let config = parse_config("[node_labels]\ndisk = \"hdd\"\nzone = \"a\"\n").unwrap();
        let flags = NodeArgs {
            node_labels: vec!["disk=ssd".into(), "rack=7".into()],
            ..NodeArgs::default()
        };
        let opts = resolve(&flags, None, None, config, Path::new("/"), false).unwrap();
        let got: Vec<(&str, &str)> = opts
            .node_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, [("disk", "ssd"), ("rack", "7"), ("zone", "a")]);
        let flags = NodeArgs {
            node_labels: vec!["oops".into()],
            ..NodeArgs::default()
        };
        assert!(resolve(&flags, None, None, Config::default(), Path::new("/"), false).is_err());
    }
}
