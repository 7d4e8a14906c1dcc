//! `drover daemon-reload`: the daemon re-reads its units folder (as on
//! SIGHUP) and reports what changed.

use super::apply::result_lines;
use super::print;
use crate::api::http::ApplyResponse;
use crate::client::Client;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args, client: &Client) -> anyhow::Result<()> {
    let answer: ApplyResponse = client.post_empty("/v1/reload").await?;
    print(&result_lines(&answer.results))?;
    Ok(())
}
