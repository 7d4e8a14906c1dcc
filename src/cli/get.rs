//! `drover get KIND [NAME] [-l SEL] [-L KEY,...] [-o wide|json|yaml|name] [-w]`

use super::columns::{self, Columns};
use super::target::{parse_kind, Target};
use super::{print, print_no_resources, CliError};
use crate::api::Kind;
use crate::client::{list_path, object_path, Client};
use crate::output::{json, yaml};
use chrono::Utc;
use serde_json::Value;
use std::collections::HashMap;

/// The kinds `get` lists.
const KINDS: [Kind; 8] = [
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::Node,
    Kind::Event,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pods, rs, rc, jobs, cronjobs, nodes or events; or KIND/NAME
    #[arg(value_name = "KIND")]
    kind: String,
    /// Only this object
    name: Option<String>,
    /// Label selector, e.g. app=web,tier!=db or 'env in (a,b)'
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    #[command(flatten)]
    pub(super) view: View,
}

/// How objects are shown; shared with `events`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(super) struct View {
    /// Output format
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
    /// Add a column with the value of each of these labels
    #[arg(
        short = 'L',
        long = "label-columns",
        value_name = "KEY,...",
        value_delimiter = ','
    )]
    pub label_columns: Vec<String>,
    /// After the list, print objects as they change (Ctrl-C stops)
    #[arg(short, long)]
    pub watch: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// More columns
    Wide,
    /// The daemon's JSON
    Json,
    /// The daemon's JSON as YAML
    Yaml,
    /// KIND/NAME only
    Name,
}

/// What to fetch: a list (with filters) or one object.
#[derive(Clone, Debug)]
pub(super) struct Query {
    pub kind: Kind,
    pub name: Option<String>,
    pub selector: Option<String>,
    /// Events only: `Kind/name` of the involved object.
    pub event_for: Option<String>,
}

impl Query {
    fn path(&self) -> String {
        match (&self.name, &self.event_for) {
            (Some(name), _) => object_path(self.kind, name),
            (None, Some(target)) => format!("/v1/events?for={}", crate::client::encode(target)),
            (None, None) => list_path(self.kind, self.selector.as_deref()),
        }
    }

    /// The path, asking the daemon to measure each process's CPU and
    /// memory (`-o wide` pods).
    fn path_with_usage(&self) -> String {
        let path = self.path();
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}usage=true")
    }

    /// The objects: a list's items, or the one object; `usage`: with
    /// what each pod's processes use now.
    pub async fn fetch_with(
        &self,
        client: &Client,
        usage: bool,
    ) -> anyhow::Result<(Value, Vec<Value>)> {
        let path = if usage && self.kind == Kind::Pod {
            self.path_with_usage()
        } else {
            self.path()
        };
        let answer: Value = client.get(&path).await?;
        let mut items = if self.name.is_some() {
            vec![answer.clone()]
        } else {
            answer
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        if self.kind == Kind::Event {
            columns::sort_events(&mut items);
        }
        Ok((answer, items))
    }
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let (kind, name) = match args.kind.split_once('/') {
        Some((kind, name)) => {
            if args.name.is_some() {
                return Err(CliError::Usage(format!(
                    "give either KIND/NAME or KIND NAME, not `{} {}`",
                    args.kind,
                    args.name.unwrap_or_default()
                ))
                .into());
            }
            (parse_kind(kind, &KINDS, "get")?, Some(name.to_string()))
        }
        None => (parse_kind(&args.kind, &KINDS, "get")?, args.name),
    };
    if name.is_some() && args.selector.is_some() {
        return Err(
            CliError::Usage("a name and a selector (-l) cannot be used together".into()).into(),
        );
    }
    if let Some(sel) = &args.selector {
        crate::api::LabelSelector::parse(sel).map_err(CliError::Usage)?;
    }
    let query = Query {
        kind,
        name,
        selector: args.selector,
        event_for: None,
    };
    show(&query, &args.view, client).await
}

/// Prints the objects of `query` in the chosen format, then follows
/// changes with `-w`.
pub(super) async fn show(query: &Query, view: &View, client: &Client) -> anyhow::Result<()> {
    // The revision before the list: a change made while listing is
    // reported by the first watch, never missed.
    let revision = if view.watch {
        Some(client.revision().await?)
    } else {
        None
    };
    // `-o json`: the daemon's bytes are already the answer (same shape,
    // same indentation); parsing 2 MB of pods only to print them again
    // was most of the time of `get pods -o json` at 1000 pods. Events are
    // sorted here, so they take the long way.
    if view.output == Some(Format::Json) && !view.watch && query.kind != Kind::Event {
        let bytes = client.get_bytes(&query.path()).await?;
        let mut out = String::from_utf8_lossy(&bytes).into_owned();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        print(&out)?;
        return Ok(());
    }
    let wide = view.output == Some(Format::Wide);
    let (answer, items) = query.fetch_with(client, wide).await?;
    let printer = Printer::new(query.kind, view);

    match view.output {
        Some(Format::Json) if !view.watch => print(&json::pretty(&answer))?,
        Some(Format::Yaml) if !view.watch => print(&yaml::to_yaml(&answer))?,
        _ if items.is_empty() => {
            if !view.watch {
                print_no_resources();
            }
        }
        _ => print(&printer.render(&items, &items, true)?)?,
    }
    if let Some(revision) = revision {
        watch(query, client, printer, items, revision).await?;
    }
    Ok(())
}

/// Renders objects in the chosen format.
struct Printer {
    kind: Kind,
    format: Option<Format>,
    columns: Columns,
}

impl Printer {
    fn new(kind: Kind, view: &View) -> Printer {
        Printer {
            kind,
            format: view.output,
            columns: Columns {
                wide: view.output == Some(Format::Wide),
                label_columns: view.label_columns.clone(),
            },
        }
    }

    /// `shown` in the chosen format. Table columns are sized over `all`
    /// (the current objects), so rows printed by `-w` line up with the
    /// header as far as they can.
    fn render(&self, shown: &[Value], all: &[Value], header: bool) -> anyhow::Result<String> {
        Ok(match self.format {
            Some(Format::Json) => shown.iter().map(json::pretty).collect(),
            Some(Format::Yaml) => shown
                .iter()
                .map(|v| format!("---\n{}", yaml::to_yaml(v)))
                .collect(),
            Some(Format::Name) => shown
                .iter()
                .map(|v| format!("{}\n", name_ref(self.kind, v)))
                .collect(),
            None | Some(Format::Wide) => {
                let now = Utc::now();
                if header {
                    columns::table(self.kind, shown, &self.columns, now)?.render()
                } else {
                    let wanted: Vec<&str> = shown.iter().map(object_name).collect();
                    let table = columns::table(self.kind, all, &self.columns, now)?;
                    let text = table.render_without_header();
                    let mut out = String::new();
                    for (line, item) in text.lines().zip(all) {
                        if wanted.contains(&object_name(item)) {
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                    out
                }
            }
        })
    }
}

/// `-w`: long-polls the daemon and prints each object that changed.
async fn watch(
    query: &Query,
    client: &Client,
    printer: Printer,
    items: Vec<Value>,
    mut revision: u64,
) -> anyhow::Result<()> {
    // A table's header comes with its first row, which may come later.
    let mut header_shown = !items.is_empty();
    let mut seen: HashMap<String, Value> = items
        .iter()
        .map(|v| (object_name(v).to_string(), fingerprint(v)))
        .collect();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = tokio::select! {
            r = client.watch(revision, 30) => r?,
            _ = &mut ctrl_c => return Ok(()),
        };
        if next == revision {
            continue;
        }
        revision = next;
        let items = match query.fetch_with(client, printer.columns.wide).await {
            Ok((_, items)) => items,
            // `get pod NAME -w` on a pod that went away.
            Err(e) if is_not_found(&e) => Vec::new(),
            Err(e) => return Err(e),
        };
        let changed: Vec<Value> = items
            .iter()
            .filter(|v| seen.get(object_name(v)) != Some(&fingerprint(v)))
            .cloned()
            .collect();
        seen = items
            .iter()
            .map(|v| (object_name(v).to_string(), fingerprint(v)))
            .collect();
        if changed.is_empty() {
            continue;
        }
        print(&printer.render(&changed, &items, !header_shown)?)?;
        header_shown = true;
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::client::ClientError>()
        .is_some_and(|c| c.is_not_found())
}

/// What counts as a change for `-w`: the object without node heartbeats,
/// which tick every few seconds and change nothing a user sees.
fn fingerprint(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(conds) = v
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds {
            if let Some(obj) = c.as_object_mut() {
                obj.remove("last_heartbeat_time");
            }
        }
    }
    v
}

fn object_name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `-o name`: `pod/web-x1y2z`, `replicaset.apps/web`.
fn name_ref(kind: Kind, v: &Value) -> String {
    Target {
        kind,
        name: object_name(v).to_string(),
    }
    .resource_ref()
}

#[cfg(test)]
mod tests {
    use super::super::columns::fixtures;
    use super::*;

    #[test]
    fn heartbeats_are_not_changes() {
        let mut a = fixtures::node();
        a["status"]["conditions"][0]["last_heartbeat_time"] = "2024-05-01T11:59:50Z".into();
        let mut b = a.clone();
        b["status"]["conditions"][0]["last_heartbeat_time"] = "2024-05-01T12:00:00Z".into();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b["spec"]["unschedulable"] = false.into();
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn names_and_queries() {
        assert_eq!(name_ref(Kind::Pod, &fixtures::pod()), "pod/web-x1y2z");
        assert_eq!(
            name_ref(Kind::ReplicaSet, &fixtures::replicaset()),
            "replicaset.apps/web"
        );
        let q = Query {
            kind: Kind::Event,
            name: None,
            selector: None,
            event_for: Some("Pod/web-1".into()),
        };
        assert_eq!(q.path(), "/v1/events?for=Pod%2Fweb-1");
    }

    #[test]
    fn watch_rows_are_the_changed_objects_only() {
        let printer = Printer {
            kind: Kind::Pod,
            format: None,
            columns: Columns::default(),
        };
        let mut other = fixtures::pod();
        other["metadata"]["name"] = "web-aaaaa".into();
        let all = vec![fixtures::pod(), other.clone()];
        let out = printer.render(&[other], &all, false).unwrap();
        assert_eq!(out.lines().count(), 1);
        assert!(out.starts_with("web-aaaaa   1/1"), "{out}");
    }

    #[test]
    fn name_output_lists_refs() {
        let printer = Printer {
            kind: Kind::Node,
            format: Some(Format::Name),
            columns: Columns::default(),
        };
        let out = printer.render(&[fixtures::node()], &[], true).unwrap();
        assert_eq!(out, "node/n1\n");
    }
}
