//! The columns `get` prints for each kind, as kubectl prints them.
//!
//! Pure: objects, options and the current time in, a [`Table`] out. The
//! CPU and memory of `-o wide` are what the daemon measured for the
//! request (`status.processes[].usage`): the CLI reads no /proc.

use crate::api::{
    CronJob, DaemonSet, Event, Job, Kind, LabelSelector, Labels, Node, ObjectMeta, Pod, ReplicaSet,
    ReplicationController,
};
use crate::output::age::age;
use crate::output::table::Table;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What a table shows besides the default columns.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// `-o wide`
    pub wide: bool,
    /// `-L KEY,...`: one column per label key.
    pub label_columns: Vec<String>,
}

/// The table of `items` (all of kind `kind`), in the order given.
pub fn table(
    kind: Kind,
    items: &[Value],
    cols: &Columns,
    now: DateTime<Utc>,
) -> anyhow::Result<Table> {
    let mut headers: Vec<String> = match kind {
        Kind::Pod if cols.wide => strs(&[
            "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "PID", "OWNER", "CPU", "MEM",
        ]),
        Kind::Pod => strs(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        Kind::ReplicaSet | Kind::ReplicationController if cols.wide => {
            strs(&["NAME", "DESIRED", "CURRENT", "READY", "AGE", "SELECTOR"])
        }
        Kind::ReplicaSet | Kind::ReplicationController => {
            strs(&["NAME", "DESIRED", "CURRENT", "READY", "AGE"])
        }
        Kind::Node if cols.wide => strs(&[
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "LABELS",
        ]),
        Kind::Node => strs(&["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
        Kind::Event => strs(&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
        Kind::Job if cols.wide => strs(&[
            "NAME",
            "STATUS",
            "COMPLETIONS",
            "DURATION",
            "AGE",
            "PROCESSES",
            "SELECTOR",
        ]),
        Kind::Job => strs(&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]),
        Kind::CronJob => strs(&[
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE",
        ]),
        // kubectl's UP-TO-DATE and AVAILABLE are left out: drover has no
        // rolling updates (every pod is of the template it was made from
        // until deleted) and no min_ready_seconds (available = ready).
        Kind::DaemonSet if cols.wide => strs(&[
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "NODE SELECTOR",
            "AGE",
            "PROCESSES",
            "SELECTOR",
        ]),
        Kind::DaemonSet => strs(&[
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "NODE SELECTOR",
            "AGE",
        ]),
    };
    headers.extend(cols.label_columns.iter().map(|k| label_header(k)));
    let mut table = Table::new(headers);

    for item in items {
        let name = item
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let (mut row, labels) = match kind {
            Kind::Pod => {
                let pod: Pod = parse(item, kind, name)?;
                (pod_row(&pod, cols.wide, now), pod.metadata.labels)
            }
            Kind::ReplicaSet => {
                let rs: ReplicaSet = parse(item, kind, name)?;
                let sel = rs.spec.selector.to_string();
                (
                    set_row(
                        &rs.metadata,
                        rs.spec.replicas,
                        &rs.status,
                        &sel,
                        cols.wide,
                        now,
                    ),
                    rs.metadata.labels,
                )
            }
            Kind::ReplicationController => {
                let rc: ReplicationController = parse(item, kind, name)?;
                let sel = LabelSelector::from_labels(rc.spec.selector.clone()).to_string();
                (
                    set_row(
                        &rc.metadata,
                        rc.spec.replicas,
                        &rc.status,
                        &sel,
                        cols.wide,
                        now,
                    ),
                    rc.metadata.labels,
                )
            }
            Kind::Node => {
                let node: Node = parse(item, kind, name)?;
                (node_row(&node, cols.wide, now), node.metadata.labels)
            }
            Kind::Event => {
                let ev: Event = parse(item, kind, name)?;
                (event_row(&ev, now), ev.metadata.labels)
            }
            Kind::Job => {
                let job: Job = parse(item, kind, name)?;
                (job_row(&job, cols.wide, now), job.metadata.labels)
            }
            Kind::CronJob => {
                let cj: CronJob = parse(item, kind, name)?;
                (cronjob_row(&cj, now), cj.metadata.labels)
            }
            Kind::DaemonSet => {
                let ds: DaemonSet = parse(item, kind, name)?;
                (daemonset_row(&ds, cols.wide, now), ds.metadata.labels)
            }
        };
        row.extend(
            cols.label_columns
                .iter()
                .map(|k| labels.get(k).cloned().unwrap_or_default()),
        );
        table.push(row);
    }
    Ok(table)
}

fn parse<T: serde::de::DeserializeOwned>(
    item: &Value,
    kind: Kind,
    name: &str,
) -> anyhow::Result<T> {
    serde_json::from_value(item.clone())
        .with_context(|| format!("the daemon sent a {kind} \"{name}\" this drover cannot read"))
}

fn strs(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// kubectl's `-L` header: the key's last path segment, upper-cased
/// (`app.kubernetes.io/name` -> `NAME`).
pub fn label_header(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_uppercase()
}

fn pod_row(pod: &Pod, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let (ready, total) = pod.ready_count();
    let mut row = vec![
        pod.metadata.name.clone(),
        format!("{ready}/{total}"),
        pod.display_status(),
        restarts(pod, now),
        age(pod.metadata.creation_timestamp, now),
    ];
    if wide {
        let pids: Vec<u32> = pod.status.processes.iter().filter_map(|p| p.pid).collect();
        row.push(
            pod.status
                .node_name
                .clone()
                .unwrap_or_else(|| "<none>".into()),
        );
        row.push(if pids.is_empty() {
            "<none>".into()
        } else {
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        row.push(
            pod.metadata
                .controller()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "<none>".into()),
        );
        let (cpu, mem) = pod_usage(pod);
        row.push(cpu);
        row.push(mem);
    }
    row
}

/// RESTARTS: the sum over processes, and since kubectl 1.24 how long ago
/// the last one ended: "3 (5m ago)".
pub fn restarts(pod: &Pod, now: DateTime<Utc>) -> String {
    let n = pod.restarts();
    let last = pod
        .status
        .processes
        .iter()
        .filter_map(|p| p.last_state.as_ref().map(|t| t.finished_at))
        .max();
    match last {
        Some(at) if n > 0 => format!("{n} ({} ago)", age(at, now)),
        _ => n.to_string(),
    }
}

/// CPU and memory of the pod's running processes, as its node measured
/// them: `<none>` when nothing runs, `<unknown>` when something runs but
/// was not measured (a pod of another node).
fn pod_usage(pod: &Pod) -> (String, String) {
    let running: Vec<_> = pod
        .status
        .processes
        .iter()
        .filter(|p| p.pid.is_some())
        .collect();
    if running.is_empty() {
        return ("<none>".into(), "<none>".into());
    }
    let measured: Vec<_> = running.iter().filter_map(|p| p.usage).collect();
    if measured.is_empty() {
        return ("<unknown>".into(), "<unknown>".into());
    }
    let cpu_ms = measured
        .iter()
        .map(|u| (u.cpu_seconds * 1000.0).round() as u64)
        .sum();
    let rss = measured.iter().map(|u| u.memory_bytes).sum();
    (cpu_time(cpu_ms), memory(rss))
}

/// Accumulated CPU time: "0.25s", "12.5s", "3m20s", "2h5m".
pub fn cpu_time(ms: u64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        format!("{}.{:02}s", secs, (ms % 1000) / 10)
    } else if secs < 3600 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{}h{}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// Memory the way `kubectl top` prints it: "812Ki", "12Mi", "2Gi".
pub fn memory(bytes: u64) -> String {
    const KI: u64 = 1024;
    if bytes >= 10 * KI * KI * KI {
        format!("{}Gi", bytes / (KI * KI * KI))
    } else if bytes >= KI * KI {
        format!("{}Mi", bytes / (KI * KI))
    } else {
        format!("{}Ki", bytes.div_ceil(KI))
    }
}

fn set_row(
    meta: &ObjectMeta,
    desired: u32,
    status: &crate::api::ReplicaSetStatus,
    selector: &str,
    wide: bool,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut row = vec![
        meta.name.clone(),
        desired.to_string(),
        status.replicas.to_string(),
        status.ready_replicas.to_string(),
        age(meta.creation_timestamp, now),
    ];
    if wide {
        row.push(if selector.is_empty() {
            "<none>".into()
        } else {
            selector.to_string()
        });
    }
    row
}

/// STATUS of a node: Ready / NotReady / Unknown, plus SchedulingDisabled.
pub fn node_status(node: &Node) -> String {
    let ready = node.status.conditions.iter().find(|c| c.type_ == "Ready");
    let mut status = match ready.map(|c| c.status.as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if node.spec.unschedulable {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_row(node: &Node, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let version = &node.status.drover_version;
    let roles = node.roles();
    let mut row = vec![
        node.metadata.name.clone(),
        node_status(node),
        if roles.is_empty() {
            "<none>".into()
        } else {
            roles.join(",")
        },
        age(node.metadata.creation_timestamp, now),
        if version.is_empty() {
            "<unknown>".into()
        } else {
            version.clone()
        },
    ];
    if wide {
        let ip = node
            .status
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.clone());
        row.push(ip.unwrap_or_else(|| "<none>".into()));
        row.push(labels_inline(&node.metadata.labels));
    }
    row
}

fn daemonset_row(ds: &DaemonSet, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let st = &ds.status;
    let mut row = vec![
        ds.metadata.name.clone(),
        st.desired_number_scheduled.to_string(),
        st.current_number_scheduled.to_string(),
        st.number_ready.to_string(),
        labels_inline(&ds.spec.template.spec.node_selector),
        age(ds.metadata.creation_timestamp, now),
    ];
    if wide {
        let processes: Vec<&str> = ds
            .spec
            .template
            .spec
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        row.push(processes.join(","));
        let sel = ds.spec.selector.to_string();
        row.push(if sel.is_empty() { "<none>".into() } else { sel });
    }
    row
}

/// `app=web,tier=fe`, or `<none>`.
pub fn labels_inline(labels: &Labels) -> String {
    if labels.is_empty() {
        return "<none>".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// kubectl's job row: STATUS, COMPLETIONS "succeeded/completions" and
/// DURATION from start to completion (or to now while it runs).
fn job_row(job: &Job, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let mut row = vec![
        job.metadata.name.clone(),
        job.display_status().to_string(),
        format!("{}/{}", job.status.succeeded, job.spec.completions),
        job_duration(job, now),
        age(job.metadata.creation_timestamp, now),
    ];
    if wide {
        let names: Vec<&str> = job
            .spec
            .template
            .spec
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        row.push(names.join(","));
        row.push(format!(
            "{}={}",
            crate::api::job::labels::CONTROLLER_UID,
            job.metadata.uid
        ));
    }
    row
}

/// How long a Job ran: start to completion, or to `now` while unfinished;
/// empty before it started.
pub fn job_duration(job: &Job, now: DateTime<Utc>) -> String {
    let Some(start) = job.status.start_time else {
        return String::new();
    };
    let end = match (job.status.completion_time, job.status.finished()) {
        (Some(done), _) => done,
        (None, Some(c)) => c.last_transition_time,
        (None, None) => now,
    };
    crate::output::age::human_duration((end - start).to_std().unwrap_or_default())
}

fn cronjob_row(cj: &CronJob, now: DateTime<Utc>) -> Vec<String> {
    vec![
        cj.metadata.name.clone(),
        cj.spec.schedule.clone(),
        cj.spec.time_zone.clone().unwrap_or_else(|| "<none>".into()),
        if cj.spec.suspend { "True" } else { "False" }.into(),
        cj.status.active.len().to_string(),
        cj.status
            .last_schedule_time
            .map(|t| age(t, now))
            .unwrap_or_else(|| "<none>".into()),
        age(cj.metadata.creation_timestamp, now),
    ]
}

fn event_row(ev: &Event, now: DateTime<Utc>) -> Vec<String> {
    vec![
        event_interval(ev, now),
        format!("{:?}", ev.type_),
        ev.reason.clone(),
        format!(
            "{}/{}",
            ev.involved_object.kind.as_str().to_lowercase(),
            ev.involved_object.name
        ),
        ev.message.clone(),
    ]
}

/// "5s", or "5s (x3 over 2m)" for a repeated event (kubectl's events and
/// `describe`).
pub fn event_interval(ev: &Event, now: DateTime<Utc>) -> String {
    if ev.count > 1 {
        format!(
            "{} (x{} over {})",
            age(ev.last_timestamp, now),
            ev.count,
            age(ev.first_timestamp, now)
        )
    } else {
        age(ev.last_timestamp, now)
    }
}

/// Events oldest first, as `kubectl events` orders them.
pub fn sort_events(items: &mut [Value]) {
    items.sort_by_key(|v| {
        v.get("last_timestamp")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
    });
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A pod, a replica set and a node as the daemon would send them.
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::{json, Value};

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    pub fn pod() -> Value {
        json!({
            "kind": "Pod",
            "metadata": {
                "name": "web-x1y2z",
                "uid": "u-pod",
                "labels": {"app": "web", "tier": "frontend"},
                "owner_references": [{"kind": "ReplicaSet", "name": "web", "uid": "u-rs"}],
                "creation_timestamp": "2024-05-01T11:50:00Z"
            },
            "spec": {
                "restart_policy": "Always",
                "ports": [{"name": "http", "range": "8080-8099"}],
                "processes": [{
                    "name": "server",
                    "command": ["/usr/bin/python3", "-m", "http.server", "${PORT_HTTP}"],
                    "env": {"GREETING": "hi"},
                    "liveness": {
                        "http_get": {"path": "/", "port": "http"},
                        "initial_delay": "5s", "period": "10s", "timeout": "1s",
                        "success_threshold": 1, "failure_threshold": 3
                    },
                    "readiness": {"tcp_socket": {"port": 8080}, "period": "5s"}
                }]
            },
            "status": {
                "phase": "Running",
                "node_name": "n1",
                "ports": {"http": 8081},
                "start_time": "2024-05-01T11:50:01Z",
                "processes": [{
                    "name": "server",
                    "pid": 4242,
                    "ready": true,
                    "started": true,
                    "restart_count": 3,
                    "state": {"running": {"started_at": "2024-05-01T11:55:00Z"}},
                    "last_state": {
                        "exit_code": 143, "signal": 15, "reason": "Error",
                        "started_at": "2024-05-01T11:54:00Z",
                        "finished_at": "2024-05-01T11:55:00Z"
                    }
                }]
            }
        })
    }

    pub fn replicaset() -> Value {
        json!({
            "kind": "ReplicaSet",
            "metadata": {"name": "web", "uid": "u-rs", "labels": {"app": "web"},
                         "creation_timestamp": "2024-04-29T08:00:00Z"},
            "spec": {
                "replicas": 3,
                "selector": {"match_labels": {"app": "web"}},
                "template": {
                    "labels": {"app": "web", "tier": "frontend"},
                    "processes": [{"name": "server", "command": ["sleep", "infinity"]}]
                }
            },
            "status": {"replicas": 3, "ready_replicas": 2}
        })
    }

    pub fn node() -> Value {
        json!({
            "kind": "Node",
            "metadata": {"name": "n1", "uid": "u-n1",
                         "labels": {"disk": "ssd", "node-role.kubernetes.io/edge": ""},
                         "creation_timestamp": "2024-04-01T00:00:00Z"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "drover_version": "0.1.0",
                       "capacity": {"cpu": "2", "memory": "4025848Ki"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.5"},
                                     {"type": "Hostname", "address": "n1"}],
                       "daemon_port": 10250}
        })
    }

    pub fn daemonset() -> Value {
        json!({
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "uid": "u-ds", "labels": {"app": "agent"},
                         "creation_timestamp": "2024-04-01T00:00:00Z"},
            "spec": {
                "selector": {"match_labels": {"app": "agent"}},
                "template": {
                    "labels": {"app": "agent"},
                    "node_selector": {"disk": "ssd"},
                    "processes": [{"name": "main", "command": ["sleep", "infinity"]}]
                }
            },
            "status": {"desired_number_scheduled": 3, "current_number_scheduled": 2, "number_ready": 1}
        })
    }

    pub fn event(reason: &str, count: u32) -> Value {
        json!({
            "kind": "Event",
            "metadata": {"name": format!("web-x1y2z.{reason}"), "creation_timestamp": "2024-05-01T11:50:00Z"},
            "involved_object": {"kind": "Pod", "name": "web-x1y2z", "uid": "u-pod"},
            "type": if count > 1 { "Warning" } else { "Normal" },
            "reason": reason,
            "message": format!("{reason} happened"),
            "count": count,
            "first_timestamp": "2024-05-01T11:58:00Z",
            "last_timestamp": "2024-05-01T11:59:30Z",
            "source": "kubelet/n1"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_show_ready_status_restarts_and_age() {
        let t = table(Kind::Pod, &[pod()], &Columns::default(), now()).unwrap();
        assert_eq!(
            t.render(),
            "NAME        READY   STATUS    RESTARTS     AGE\n\
             web-x1y2z   1/1     Running   3 (5m ago)   10m\n"
        );
    }

    #[test]
    fn wide_pods_add_node_pid_owner_and_usage() {
        let mut measured = pod();
        measured["status"]["processes"][0]["usage"] =
            json!({"cpu_seconds": 12.5, "memory_bytes": 12 * 1024 * 1024});
        let cols = Columns {
            wide: true,
            label_columns: vec!["tier".into(), "app.kubernetes.io/name".into()],
        };
        let t = table(Kind::Pod, &[measured], &cols, now()).unwrap();
        assert_eq!(
            t.headers,
            strs(&[
                "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "PID", "OWNER", "CPU", "MEM",
                "TIER", "NAME"
            ])
        );
        assert_eq!(
            t.rows[0][5..],
            strs(&[
                "n1",
                "4242",
                "ReplicaSet/web",
                "12.50s",
                "12Mi",
                "frontend",
                ""
            ])
        );
        // Not measured (another node's pod): unknown; nothing running: none.
        let t = table(Kind::Pod, &[pod()], &cols, now()).unwrap();
        assert_eq!(t.rows[0][8..10], strs(&["<unknown>", "<unknown>"]));
        let mut stopped = pod();
        stopped["status"]["processes"][0]["pid"] = Value::Null;
        let t = table(Kind::Pod, &[stopped], &cols, now()).unwrap();
        assert_eq!(t.rows[0][8..10], strs(&["<none>", "<none>"]));
    }

    #[test]
    fn sets_nodes_and_events() {
        let wide = Columns {
            wide: true,
            label_columns: vec![],
        };
        let t = table(Kind::ReplicaSet, &[replicaset()], &wide, now()).unwrap();
        assert_eq!(t.rows[0], strs(&["web", "3", "3", "2", "2d4h", "app=web"]));

        let t = table(Kind::Node, &[node()], &wide, now()).unwrap();
        assert_eq!(
            t.rows[0],
            strs(&[
                "n1",
                "Ready,SchedulingDisabled",
                "edge",
                "30d",
                "0.1.0",
                "10.0.0.5",
                "disk=ssd,node-role.kubernetes.io/edge="
            ])
        );
        let t = table(Kind::DaemonSet, &[daemonset()], &Columns::default(), now()).unwrap();
        assert_eq!(t.headers[4], "NODE SELECTOR");
        assert_eq!(
            t.rows[0],
            strs(&["agent", "3", "2", "1", "disk=ssd", "30d"])
        );
        let t = table(Kind::DaemonSet, &[daemonset()], &wide, now()).unwrap();
        assert_eq!(t.rows[0][6..], strs(&["main", "app=agent"]));

        let t = table(
            Kind::Event,
            &[event("Unhealthy", 5)],
            &Columns::default(),
            now(),
        )
        .unwrap();
        assert_eq!(
            t.rows[0],
            strs(&[
                "30s (x5 over 2m)",
                "Warning",
                "Unhealthy",
                "pod/web-x1y2z",
                "Unhealthy happened"
            ])
        );
    }

    #[test]
    fn an_unreadable_object_is_an_error_naming_it() {
        let bad = serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}});
        let err = table(Kind::Pod, &[bad], &Columns::default(), now()).unwrap_err();
        assert!(err.to_string().contains("Pod \"p\""), "{err}");
    }

    #[test]
    fn cpu_and_memory_formats() {
        assert_eq!(cpu_time(250), "0.25s");
        assert_eq!(cpu_time(200_000), "3m20s");
        assert_eq!(cpu_time(7_500_000), "2h5m");
        assert_eq!(memory(812 * 1024), "812Ki");
        assert_eq!(memory(12 * 1024 * 1024 + 5), "12Mi");
        assert_eq!(memory(12 * 1024 * 1024 * 1024), "12Gi");
    }
}
