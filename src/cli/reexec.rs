//! `drover daemon-reexec`: the daemon re-executes itself in place, as
//! `systemctl daemon-reexec` does for systemd: the same process (same
//! pid) runs the program again, so every pod stays its child and nothing
//! is re-adopted; after a package upgrade, the new binary at the same
//! path. Root only.
//!
//! It asks (`POST /v1/reexec`), then waits until the new image answers:
//! `image_id` in `/v1/version` changes while the pid stays. The old image
//! answers until it execs, and the listening socket crosses the exec, so
//! the wait is a few requests, each answered or held in the socket's
//! backlog until the new image serves.

use super::{print, CliError};
use crate::api::duration::parse_duration;
use crate::api::http::{ActionResponse, VersionInfo};
use crate::client::{Client, ClientError};
use hyper::StatusCode;
use std::time::Duration;
use tokio::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Give up waiting for the new image after this long ("30s", "2m")
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    timeout: String,
}

/// Between two looks at the daemon while its image is being replaced.
const PAUSE: Duration = Duration::from_millis(20);

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let timeout = parse_duration(&args.timeout)
        .map_err(|e| CliError::Usage(format!("--timeout {}: {e}", args.timeout)))?;
    let before: VersionInfo = client.get("/v1/version").await?;
    match client.post_empty::<ActionResponse>("/v1/reexec").await {
        Ok(_) => {}
        // The connection was cut: the image was replaced before its
        // answer got out. The wait below tells whether it came back.
        Err(ClientError::Http { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let deadline = Instant::now() + timeout;
    loop {
        match client.get::<VersionInfo>("/v1/version").await {
            Ok(now) => match judge(&before, &now) {
                Progress::Pending => {}
                Progress::Reexecuted(line) => return Ok(print(&line)?),
                Progress::Replaced(why) => anyhow::bail!("{why}"),
            },
            Err(e) if between_images(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the daemon (pid {}) did not come back re-executed within {}: see its log",
                before.pid,
                args.timeout
            );
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Where the re-exec is, from the version before and the one now.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// The old image still answers.
    Pending,
    /// The new image answers: the line to print.
    Reexecuted(String),
    /// Another process answers: the daemon was not re-executed but
    /// replaced (it died, and its keeper or service manager started
    /// another).
    Replaced(String),
}

pub fn judge(before: &VersionInfo, now: &VersionInfo) -> Progress {
    if now.pid != before.pid {
        return Progress::Replaced(format!(
            "the daemon was replaced instead of re-executed: pid {} is gone, pid {} answers \
             (its pods were re-adopted; see the log of pid {})",
            before.pid, now.pid, before.pid
        ));
    }
    if now.image_id == before.image_id {
        return Progress::Pending;
    }
    let version = if now.version == before.version {
        format!("drover {}", now.version)
    } else {
        format!("drover {} -> {}", before.version, now.version)
    };
    Progress::Reexecuted(format!(
        "{version} re-executed in place (pid {})\n",
        now.pid
    ))
}

/// A failure that means "the image is being replaced": the connection
/// cut by the exec, refused while no socket listens (a daemon that could
/// not hand its socket over), or the old image refusing new work.
fn between_images(e: &ClientError) -> bool {
    match e {
        ClientError::Http { .. } | ClientError::Unreachable { .. } => true,
        ClientError::Api { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
        ClientError::Decode { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(pid: u32, image: &str, v: &str) -> VersionInfo {
        VersionInfo {
            version: v.into(),
            node_name: "n1".into(),
            pid,
            state_dir: "/var/lib/drover".into(),
            image_id: image.into(),
            reexecs: 0,
        }
    }

    #[test]
    fn the_new_image_is_the_same_pid_with_another_image_id() {
        let before = version(100, "a", "0.1.0");
        assert_eq!(judge(&before, &before), Progress::Pending);
        assert_eq!(
            judge(&before, &version(100, "b", "0.1.0")),
            Progress::Reexecuted("drover 0.1.0 re-executed in place (pid 100)\n".into())
        );
        assert_eq!(
            judge(&before, &version(100, "b", "0.2.0")),
            Progress::Reexecuted("drover 0.1.0 -> 0.2.0 re-executed in place (pid 100)\n".into())
        );
        let Progress::Replaced(why) = judge(&before, &version(200, "c", "0.1.0")) else {
            panic!("another pid is not a re-exec");
        };
        assert!(why.contains("pid 100 is gone, pid 200 answers"), "{why}");
    }

    #[test]
    fn cut_and_refused_connections_mean_wait() {
        let http = |status: u16| ClientError::Api {
            status: StatusCode::from_u16(status).unwrap(),
            message: "x".into(),
        };
        assert!(between_images(&http(503)));
        assert!(!between_images(&http(403)));
        assert!(between_images(&ClientError::Unreachable {
            socket: "/x".into(),
            error: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }));
    }
}
