//! `drover describe pod|rs|rc|ds|job|cronjob|node NAME`: one object in
//! detail, laid out as `kubectl describe` does, then its events.

mod job;
mod node;
mod pod;
mod probe;
mod set;

use super::columns::event_interval;
use super::print;
use super::target::{parse_target, words};
use crate::api::{
    CronJob, DaemonSet, Event, Job, Kind, LabelSelector, Labels, Node, Pod, ReplicaSet,
    ReplicationController,
};
use crate::client::{list_path, object_path, Client};
use crate::output::age::TimeZone;
use crate::output::table::{tabwrite, DESCRIBE_PADDING};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt::Display;

pub use probe::describe_probe;

const KINDS: [Kind; 7] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::Node,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, rs, rc, ds, job, cronjob or node; or KIND/NAME
    kind: String,
    /// The object's name
    name: Option<String>,
}

/// When the page is rendered, and in which zone its instants are shown.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub tz: TimeZone,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let target = parse_target(&words(&args.kind, args.name.as_deref()), &KINDS, "describe")?;
    let mut path = object_path(target.kind, &target.name);
    if target.kind == Kind::Pod {
        // Each running process's CPU and memory, measured by its node.
        path.push_str("?usage=true");
    }
    let object: Value = client.get(&path).await?;
    let events = events_for(client, target.kind, &target.name).await?;
    let clock = Clock {
        now: Utc::now(),
        tz: TimeZone::Local,
    };
    let page = match target.kind {
        Kind::Pod => pod::render(&parse::<Pod>(object)?, &events, clock),
        Kind::ReplicaSet => {
            let rs: ReplicaSet = parse(object)?;
            let pods = owned_pods(client, &rs.spec.selector, &rs.metadata.uid).await?;
            set::render_replicaset(&rs, &pods, &events, clock)
        }
        Kind::ReplicationController => {
            let rc: ReplicationController = parse(object)?;
            let sel = LabelSelector::from_labels(rc.spec.selector.clone());
            let pods = owned_pods(client, &sel, &rc.metadata.uid).await?;
            set::render_replication_controller(&rc, &pods, &events, clock)
        }
        Kind::DaemonSet => {
            let ds: DaemonSet = parse(object)?;
            let pods = owned_pods(client, &ds.spec.selector, &ds.metadata.uid).await?;
            set::render_daemonset(&ds, &pods, &events, clock)
        }
        Kind::Job => {
            let job: Job = parse(object)?;
            let sel = LabelSelector::from_labels(
                [(
                    crate::api::job::labels::CONTROLLER_UID.to_string(),
                    job.metadata.uid.clone(),
                )]
                .into(),
            );
            let pods = owned_pods(client, &sel, &job.metadata.uid).await?;
            job::render_job(&job, &pods, &events, clock)
        }
        Kind::CronJob => {
            let cj: CronJob = parse(object)?;
            let jobs: Vec<Job> = list::<Job>(client, &list_path(Kind::Job, None))
                .await?
                .into_iter()
                .filter(|j| {
                    j.metadata
                        .controller()
                        .is_some_and(|o| o.uid == cj.metadata.uid)
                })
                .collect();
            job::render_cronjob(&cj, &jobs, &events, clock)
        }
        Kind::Node => {
            let node: Node = parse(object)?;
            let pods = list::<Pod>(client, &list_path(Kind::Pod, None)).await?;
            node::render(&node, &pods, &events, clock)
        }
        _ => unreachable!("parse_target admits only {KINDS:?}"),
    };
    print(&page)?;
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(v)?)
}

async fn list<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
) -> anyhow::Result<Vec<T>> {
    let list: crate::api::http::List = client.get(path).await?;
    let mut out = Vec::new();
    for item in list.items {
        out.push(parse(serde_json::to_value(item)?)?);
    }
    Ok(out)
}

/// The events of one object, oldest first.
async fn events_for(client: &Client, kind: Kind, name: &str) -> anyhow::Result<Vec<Event>> {
    let path = format!(
        "/v1/events?for={}",
        crate::client::encode(&format!("{}/{name}", kind.as_str()))
    );
    let mut events: Vec<Event> = list(client, &path).await?;
    events.sort_by_key(|e| e.last_timestamp);
    Ok(events)
}

/// The pods a set controls: matching its selector and owned by its uid.
async fn owned_pods(
    client: &Client,
    selector: &LabelSelector,
    uid: &str,
) -> anyhow::Result<Vec<Pod>> {
    let pods: Vec<Pod> = list(client, &list_path(Kind::Pod, Some(&selector.to_string()))).await?;
    Ok(pods
        .into_iter()
        .filter(|p| p.metadata.controller().is_some_and(|o| o.uid == uid))
        .collect())
}

/// A describe page under construction: lines whose cells end with tabs,
/// aligned at the end as kubectl's tabwriter does.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    /// `KEY:<tab>VALUE` at an indent level (two spaces per level).
    fn field(&mut self, level: usize, key: &str, value: impl Display) {
        self.text
            .push_str(&format!("{}{key}:\t{value}\n", indent(level)));
    }

    /// A line with no value cell (`Processes:`), which ends an alignment
    /// block.
    fn heading(&mut self, level: usize, text: &str) {
        self.text.push_str(&format!("{}{text}\n", indent(level)));
    }

    /// A raw line, tabs included (table rows).
    fn raw(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `Labels:  a=b` with every further label on its own line below the
    /// first, or `<none>`.
    fn labels(&mut self, level: usize, key: &str, labels: &Labels) {
        self.map(level, key, labels, "=");
    }

    /// `Annotations:  a: b` (kubectl writes annotations `key: value`).
    fn annotations(&mut self, level: usize, labels: &Labels) {
        self.map(level, "Annotations", labels, ": ");
    }

    fn map(&mut self, level: usize, key: &str, map: &Labels, sep: &str) {
        let mut entries = map.iter().map(|(k, v)| format!("{k}{sep}{v}"));
        match entries.next() {
            None => self.field(level, key, "<none>"),
            Some(first) => {
                self.field(level, key, first);
                for e in entries {
                    self.text.push_str(&format!("{}\t{e}\n", indent(level)));
                }
            }
        }
    }

    /// The trailing `Events:` section.
    fn events(&mut self, events: &[Event], now: DateTime<Utc>) {
        if events.is_empty() {
            // A heading, so it does not stretch the block above it.
            self.heading(0, "Events:  <none>");
            return;
        }
        self.heading(0, "Events:");
        self.raw("  Type\tReason\tAge\tFrom\tMessage");
        self.raw("  ----\t------\t----\t----\t-------");
        for e in events {
            self.raw(&format!(
                "  {:?}\t{}\t{}\t{}\t{}",
                e.type_,
                e.reason,
                event_interval(e, now),
                e.source,
                e.message.replace('\n', " ")
            ));
        }
    }

    fn finish(self) -> String {
        tabwrite(&self.text, 0, DESCRIBE_PADDING)
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// `a b 'c d'`: argv joined for reading, quoting words a shell would split.
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || "'\"\\`|&;<>()*?!#".contains(c))
            {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_quote_what_a_shell_would_split() {
        let argv: Vec<String> = ["sh", "-c", "echo hi; sleep 1", "${PORT_HTTP}", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            command_line(&argv),
            r#"sh -c 'echo hi; sleep 1' ${PORT_HTTP} 'it'\''s'"#
        );
    }
}
