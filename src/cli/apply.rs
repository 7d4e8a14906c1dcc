//! `drover apply -f FILE|DIR`: load and validate unit files locally, then
//! send every object in one request (the daemon applies all or nothing).

use super::target::resource;
use super::{print, CliError};
use crate::api::http::{ApplyRequest, ApplyResponse, ApplyResult};
use crate::client::Client;
use crate::units::{self, LoadedUnit};
use chrono::Utc;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A unit file, or a folder of them (*.toml); repeatable
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    files: Vec<PathBuf>,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let loaded = load_all(&args.files)?;
    let request = ApplyRequest {
        items: loaded.into_iter().map(|u| u.object).collect(),
    };
    let response: ApplyResponse = client.post("/v1/apply", &request).await?;
    print(&result_lines(&response.results))?;
    Ok(())
}

/// Every unit of every path, or the diagnostics of all of them: nothing is
/// sent unless every file is valid.
pub(super) fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<LoadedUnit>> {
    let now = Utc::now();
    let mut units = Vec::new();
    let mut failed: Option<units::Diagnostics> = None;
    for path in paths {
        match units::load_path(path, now) {
            Ok(mut u) => units.append(&mut u),
            Err(d) => {
                failed = Some(match failed {
                    None => d,
                    Some(prev) => {
                        let mut all = prev.diagnostics;
                        all.extend(d.diagnostics);
                        units::Diagnostics::new(all)
                    }
                })
            }
        }
    }
    match failed {
        Some(d) => Err(CliError::Diagnostics(d.to_string()).into()),
        None => Ok(units),
    }
}

/// kubectl's lines: `replicaset.apps/web created`.
pub(super) fn result_lines(results: &[ApplyResult]) -> String {
    results
        .iter()
        .map(|r| format!("{}/{} {}\n", resource(r.kind), r.name, r.action))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    #[test]
    fn results_read_like_kubectl() {
        let r = |kind, name: &str, action: &str| ApplyResult {
            kind,
            name: name.into(),
            action: action.into(),
        };
        let text = result_lines(&[
            r(Kind::ReplicaSet, "web", "created"),
            r(Kind::Pod, "x", "unchanged"),
            r(Kind::ReplicationController, "y", "configured"),
        ]);
        assert_eq!(
            text,
            "replicaset.apps/web created\npod/x unchanged\nreplicationcontroller/y configured\n"
        );
    }
}
