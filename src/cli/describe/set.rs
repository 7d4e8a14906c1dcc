//! `describe rs`, `describe rc` and `describe ds`: selector, replica (or
//! node) counts, the pods' phases, the pod template, and the set's events.

use super::{command_line, describe_probe, Clock, Page};
use crate::api::{
    DaemonSet, Event, LabelSelector, ObjectMeta, Pod, PodPhase, PodTemplate, ReplicaSet,
    ReplicationController,
};
use std::collections::BTreeMap;

pub fn render_replicaset(rs: &ReplicaSet, pods: &[Pod], events: &[Event], clock: Clock) -> String {
    render(
        &rs.metadata,
        &rs.spec.selector,
        rs.spec.replicas,
        rs.status.replicas,
        &rs.spec.template,
        pods,
        events,
        clock,
    )
}

pub fn render_replication_controller(
    rc: &ReplicationController,
    pods: &[Pod],
    events: &[Event],
    clock: Clock,
) -> String {
    render(
        &rc.metadata,
        &LabelSelector::from_labels(rc.spec.selector.clone()),
        rc.spec.replicas,
        rc.status.replicas,
        &rc.spec.template,
        pods,
        events,
        clock,
    )
}

/// kubectl's DaemonSet page, without the lines drover cannot compute
/// (up-to-date and available pods: no rolling updates, no
/// min_ready_seconds; misscheduled nodes).
pub fn render_daemonset(ds: &DaemonSet, pods: &[Pod], events: &[Event], clock: Clock) -> String {
    let mut page = Page::default();
    let meta = &ds.metadata;
    page.field(0, "Name", &meta.name);
    page.field(0, "Selector", &ds.spec.selector);
    let node_selector = &ds.spec.template.spec.node_selector;
    if node_selector.is_empty() {
        page.field(0, "Node-Selector", "<none>");
    } else {
        page.labels(0, "Node-Selector", node_selector);
    }
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    let st = &ds.status;
    page.field(
        0,
        "Desired Number of Nodes Scheduled",
        st.desired_number_scheduled,
    );
    page.field(
        0,
        "Current Number of Nodes Scheduled",
        st.current_number_scheduled,
    );
    page.field(
        0,
        "Number of Nodes Scheduled with Ready Pods",
        st.number_ready,
    );
    page.field(0, "Pods Status", pods_status(pods));
    pod_template(&mut page, &ds.spec.template);
    page.events(events, clock.now);
    page.finish()
}

#[allow(clippy::too_many_arguments)]
fn render(
    meta: &ObjectMeta,
    selector: &LabelSelector,
    desired: u32,
    current: u32,
    template: &PodTemplate,
    pods: &[Pod],
    events: &[Event],
    clock: Clock,
) -> String {
    let mut page = Page::default();
    page.field(0, "Name", &meta.name);
    page.field(0, "Selector", selector);
    page.labels(0, "Labels", &meta.labels);
    page.annotations(0, &meta.annotations);
    page.field(
        0,
        "Replicas",
        format!("{current} current / {desired} desired"),
    );
    page.field(0, "Pods Status", pods_status(pods));
    pod_template(&mut page, template);
    page.events(events, clock.now);
    page.finish()
}

/// The `Pod Template:` block.
fn pod_template(page: &mut Page, template: &PodTemplate) {
    page.heading(0, "Pod Template:");
    page.labels(1, "Labels", &template.labels);
    if !template.spec.node_selector.is_empty() {
        page.labels(1, "Node-Selector", &template.spec.node_selector);
    }
    page.field(
        1,
        "Restart Policy",
        format!("{:?}", template.spec.restart_policy),
    );
    page.field(1, "Grace Period", template.spec.termination_grace_period);
    if !template.spec.ports.is_empty() {
        let ports: Vec<String> = template
            .spec
            .ports
            .iter()
            .map(|p| format!("{} ({})", p.name, String::from(p.range)))
            .collect();
        page.field(1, "Ports", ports.join(", "));
    }
    page.heading(1, "Processes:");
    for p in &template.spec.processes {
        // kubectl's template lists its containers at three spaces.
        page.raw(&format!("   {}:", p.name));
        page.field(2, "Command", command_line(&p.command));
        if let Some(user) = &p.user {
            page.field(2, "User", user);
        }
        let probes = [
            ("Liveness", &p.liveness),
            ("Readiness", &p.readiness),
            ("Startup", &p.startup),
        ];
        for (name, probe) in probes {
            if let Some(probe) = probe {
                page.field(2, name, describe_probe(probe, &BTreeMap::new()));
            }
        }
        if p.env.is_empty() {
            page.field(2, "Environment", "<none>");
        } else {
            page.heading(2, "Environment:");
            for (k, v) in &p.env {
                page.field(3, k, v);
            }
        }
    }
}

/// "3 Running / 0 Waiting / 0 Succeeded / 0 Failed" (Pending counts as
/// waiting, as in kubectl).
fn pods_status(pods: &[Pod]) -> String {
    let count = |phase| pods.iter().filter(|p| p.status.phase == phase).count();
    format!(
        "{} Running / {} Waiting / {} Succeeded / {} Failed",
        count(PodPhase::Running),
        count(PodPhase::Pending),
        count(PodPhase::Succeeded),
        count(PodPhase::Failed)
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::columns::fixtures;
    use super::*;
    use crate::output::age::TimeZone;

    #[test]
    fn a_daemonset_page() {
        let ds: DaemonSet = serde_json::from_value(fixtures::daemonset()).unwrap();
        let pod: Pod = serde_json::from_value(fixtures::pod()).unwrap();
        let clock = Clock {
            now: fixtures::now(),
            tz: TimeZone::Utc,
        };
        let page = render_daemonset(&ds, &[pod], &[], clock);
        for want in [
            "Name:                                       agent",
            "Selector:                                   app=agent",
            "Node-Selector:                              disk=ssd",
            "Desired Number of Nodes Scheduled:          3",
            "Current Number of Nodes Scheduled:          2",
            "Number of Nodes Scheduled with Ready Pods:  1",
            "Pods Status:                                1 Running / 0 Waiting / 0 Succeeded / 0 Failed",
            "Pod Template:",
            "   main:",
        ] {
            assert!(
                page.lines().any(|l| l == want),
                "missing {want:?} in:\n{page}"
            );
        }
    }

    #[test]
    fn a_replicaset_page() {
        let rs: ReplicaSet = serde_json::from_value(fixtures::replicaset()).unwrap();
        let pod: Pod = serde_json::from_value(fixtures::pod()).unwrap();
        let mut pending = pod.clone();
        pending.status.phase = PodPhase::Pending;
        let clock = Clock {
            now: fixtures::now(),
            tz: TimeZone::Utc,
        };
        let page = render_replicaset(&rs, &[pod, pending], &[], clock);
        for want in [
            "Name:         web",
            "Selector:     app=web",
            "Replicas:     3 current / 3 desired",
            "Pods Status:  1 Running / 1 Waiting / 0 Succeeded / 0 Failed",
            "Pod Template:",
            "  Labels:          app=web",
            "                   tier=frontend",
            "  Restart Policy:  Always",
            "  Processes:",
            "   server:",
            "    Command:      sleep infinity",
            "    Environment:  <none>",
        ] {
            assert!(
                page.lines().any(|l| l == want),
                "missing {want:?} in:\n{page}"
            );
        }
    }
}
