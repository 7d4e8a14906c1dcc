//! `drover events [--for KIND/NAME] [-o ...] [-w]`: what happened, oldest
//! first (kubectl's `events`).

use super::get::{show, Query, View};
use super::target::parse_target;
use super::CliError;
use crate::api::Kind;
use crate::client::Client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only the events of this object, e.g. pod/web-x1y2z or rs/web
    #[arg(long = "for", value_name = "KIND/NAME")]
    for_object: Option<String>,
    #[command(flatten)]
    view: View,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let event_for = match &args.for_object {
        Some(word) if !word.contains('/') => {
            return Err(CliError::Usage(format!(
                "--for takes KIND/NAME, such as pod/web-x1y2z or rs/web, not `{word}`"
            ))
            .into())
        }
        Some(word) => {
            let t = parse_target(std::slice::from_ref(word), &Kind::ALL, "events --for")?;
            Some(format!("{}/{}", t.kind.as_str(), t.name))
        }
        None => None,
    };
    let query = Query {
        kind: Kind::Event,
        name: None,
        selector: None,
        event_for,
    };
    show(&query, &args.view, client).await
}
