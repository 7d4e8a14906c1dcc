//! `describe node`: roles, labels, schedulability, conditions, addresses,
//! capacity, the pods bound to it that have not finished, and its events.

use super::super::columns::restarts;
use super::{Clock, Page};
use crate::api::{Event, Node, Pod};
use crate::output::age::{age, timestamp};

pub fn render(node: &Node, pods: &[Pod], events: &[Event], clock: Clock) -> String {
    let mut page = Page::default();
    let meta = &node.metadata;
    page.field(0, "Name", &meta.name);
    let roles = node.roles();
    page.field(
        0,
        "Roles",
        if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        },
    );
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    page.field(
        0,
        "CreationTimestamp",
        timestamp(meta.creation_timestamp, clock.tz),
    );
    page.field(0, "Unschedulable", node.spec.unschedulable);

    if node.status.conditions.is_empty() {
        page.field(0, "Conditions", "<none>");
    } else {
        page.heading(0, "Conditions:");
        page.raw("  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage");
        page.raw("  ----\t------\t-----------------\t------------------\t------\t-------");
        let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| timestamp(t, clock.tz))
                .unwrap_or_else(|| "<unknown>".into())
        };
        for c in &node.status.conditions {
            page.raw(&format!(
                "  {}\t{}\t{}\t{}\t{}\t{}",
                c.type_,
                c.status,
                when(c.last_heartbeat_time),
                when(c.last_transition_time),
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            ));
        }
    }
    if !node.status.addresses.is_empty() {
        page.heading(0, "Addresses:");
        for a in &node.status.addresses {
            page.field(1, &a.type_, &a.address);
        }
    }
    if !node.status.capacity.is_empty() {
        page.heading(0, "Capacity:");
        for (k, v) in &node.status.capacity {
            page.field(1, k, v);
        }
    }
    page.heading(0, "System Info:");
    let version = &node.status.drover_version;
    page.field(
        1,
        "Drover Version",
        if version.is_empty() {
            "<unknown>"
        } else {
            version
        },
    );
    // Which hierarchy pods go in, or why none (limits are refused then).
    if !node.status.cgroups.is_empty() {
        page.field(1, "Cgroups", &node.status.cgroups);
    }

    let mut running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.status.node_name.as_deref() == Some(meta.name.as_str()) && !p.is_terminal())
        .collect();
    running.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    // A heading, not a field: the pod table below aligns on its own.
    page.heading(
        0,
        &format!("Non-terminated Pods:  ({} in total)", running.len()),
    );
    if !running.is_empty() {
        page.raw("  Name\tStatus\tRestarts\tAge");
        page.raw("  ----\t------\t--------\t---");
        for p in running {
            page.raw(&format!(
                "  {}\t{}\t{}\t{}",
                p.metadata.name,
                p.display_status(),
                restarts(p, clock.now),
                age(p.metadata.creation_timestamp, clock.now)
            ));
        }
    }
    page.events(events, clock.now);
    page.finish()
}

#[cfg(test)]
mod tests {
    use super::super::super::columns::fixtures;
    use super::*;
    use crate::output::age::TimeZone;

    #[test]
    fn a_node_page_lists_its_pods() {
        let node: Node = serde_json::from_value(fixtures::node()).unwrap();
        let pod: Pod = serde_json::from_value(fixtures::pod()).unwrap();
        let mut elsewhere = pod.clone();
        elsewhere.metadata.name = "other".into();
        elsewhere.status.node_name = Some("n2".into());
        let clock = Clock {
            now: fixtures::now(),
            tz: TimeZone::Utc,
        };
        let page = render(&node, &[pod, elsewhere], &[], clock);
        for want in [
            "Name:               n1",
            "Roles:              edge",
            "Labels:             disk=ssd",
            "Unschedulable:      true",
            "  Type   Status  LastHeartbeatTime  LastTransitionTime  Reason  Message",
            "  Ready  True    <unknown>          <unknown>",
            "Addresses:",
            "  InternalIP:  10.0.0.5",
            "  Hostname:    n1",
            "Capacity:",
            "  cpu:     2",
            "  memory:  4025848Ki",
            "  Drover Version:  0.1.0",
            "Non-terminated Pods:  (1 in total)",
            "  web-x1y2z  Running  3 (5m ago)  10m",
        ] {
            assert!(
                page.lines().any(|l| l == want),
                "missing {want:?} in:\n{page}"
            );
        }
        assert!(!page.contains("other"), "{page}");
    }
}
