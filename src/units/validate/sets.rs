//! ReplicaSets, ReplicationControllers and DaemonSets: a selector and a
//! labelled pod template (the rules check that one selects the other).

use super::pod::PodFields;
use super::{Field, Tab, Validator};
use crate::api::{
    DaemonSet, DaemonSetSpec, Kind, LabelSelector, Labels, Object, ObjectMeta, Operator, PodSpec,
    PodTemplate, ReplicaSet, ReplicaSetSpec, ReplicationController, ReplicationControllerSpec,
    Requirement,
};
use crate::units::raw::{
    RawDaemonSetSpec, RawPodSpec, RawReplicaSetSpec, RawReplicationControllerSpec, RawRequirement,
    RawSelector, RawTemplate,
};
use crate::units::rules::names::inline_labels;
use crate::units::serde_names::fields_of;
use crate::units::spanned::{Map, Table};

fn set_spec_hint(key: &str) -> Option<String> {
    if key == "labels" || fields_of::<RawPodSpec>().contains(&key) {
        return Some(format!(
            "`{key}` belongs to the pod template: write it in [spec.template]"
        ));
    }
    None
}

fn daemonset_spec_hint(key: &str) -> Option<String> {
    if key == "replicas" {
        return Some(
            "a DaemonSet runs one pod on every node that matches its template's \
             node_selector: remove `replicas`"
                .into(),
        );
    }
    set_spec_hint(key)
}

pub(super) fn template_hint(key: &str) -> Option<String> {
    if fields_of::<RawReplicaSetSpec>().contains(&key) {
        return Some(format!("`{key}` goes in [spec], not in [spec.template]"));
    }
    None
}

/// `{ app = "web" }` from the template's labels, for suggestions.
fn example(labels: &Labels) -> String {
    if labels.is_empty() {
        "{ app = \"web\" }".into()
    } else {
        inline_labels(labels)
    }
}

impl Validator<'_> {
    pub(super) fn replicaset(
        &mut self,
        spec: &Tab<RawReplicaSetSpec>,
        metadata: ObjectMeta,
    ) -> Object {
        self.unknown_fields(spec, &set_spec_hint);
        let v = spec.v();
        let template = self.set_template(spec.field("template", &v.template));
        let selector = self.selector(
            spec.field("selector", &v.selector),
            Kind::ReplicaSet,
            &example(&template.labels),
        );
        Object::ReplicaSet(ReplicaSet {
            metadata,
            spec: ReplicaSetSpec {
                replicas: self
                    .count(&spec.field("replicas", &v.replicas))
                    .unwrap_or(1),
                selector,
                template,
                allow_broad_selector: self
                    .boolean(&spec.field("allow_broad_selector", &v.allow_broad_selector))
                    .unwrap_or(false),
            },
            status: Default::default(),
        })
    }

    pub(super) fn daemonset(
        &mut self,
        spec: &Tab<RawDaemonSetSpec>,
        metadata: ObjectMeta,
    ) -> Object {
        self.unknown_fields(spec, &daemonset_spec_hint);
        let v = spec.v();
        let template = self.set_template(spec.field("template", &v.template));
        let selector = self.selector(
            spec.field("selector", &v.selector),
            Kind::DaemonSet,
            &example(&template.labels),
        );
        Object::DaemonSet(DaemonSet {
            metadata,
            spec: DaemonSetSpec {
                selector,
                template,
                allow_broad_selector: self
                    .boolean(&spec.field("allow_broad_selector", &v.allow_broad_selector))
                    .unwrap_or(false),
            },
            status: Default::default(),
        })
    }

    pub(super) fn replication_controller(
        &mut self,
        spec: &Tab<RawReplicationControllerSpec>,
        metadata: ObjectMeta,
    ) -> Object {
        self.unknown_fields(spec, &set_spec_hint);
        let v = spec.v();
        let template = self.set_template(spec.field("template", &v.template));
        let f = spec.field("selector", &v.selector);
        let selector = if f.is_set() {
            self.rc_selector(&f, &example(&template.labels))
        } else {
            // Kubernetes: an RC's selector defaults to its template's labels.
            template.labels.clone()
        };
        Object::ReplicationController(ReplicationController {
            metadata,
            spec: ReplicationControllerSpec {
                replicas: self
                    .count(&spec.field("replicas", &v.replicas))
                    .unwrap_or(1),
                selector,
                template,
                allow_broad_selector: self
                    .boolean(&spec.field("allow_broad_selector", &v.allow_broad_selector))
                    .unwrap_or(false),
            },
            status: Default::default(),
        })
    }

    /// A set's template: labels required (its selector finds its pods by
    /// them).
    fn set_template(&mut self, f: Field<Table<RawTemplate>>) -> PodTemplate {
        let help = "add [spec.template] with `labels` and [[spec.template.processes]]";
        let Some(t) = self
            .require(f, Some(help.into()))
            .and_then(|f| self.table(&f))
        else {
            return PodTemplate {
                labels: Labels::new(),
                spec: PodSpec::default(),
            };
        };
        self.unknown_fields(&t, &template_hint);
        let labels = t.field("labels", &t.v().labels);
        let labels = if labels.is_set() {
            self.labels(&labels).unwrap_or_default()
        } else {
            let d = self
                .diag(t.at, "missing field `labels`")
                .with_label("required in spec.template: the selector finds its pods by them")
                .with_help("add labels = { app = \"web\" } and select them in spec.selector");
            self.fail(&labels.path, d);
            Labels::new()
        };
        PodTemplate {
            labels,
            spec: self.pod(PodFields::of_template(&t)),
        }
    }

    /// A ReplicaSet's or DaemonSet's selector: `match_labels` and
    /// `match_expressions`.
    fn selector(
        &mut self,
        f: Field<Table<RawSelector>>,
        kind: Kind,
        example: &str,
    ) -> LabelSelector {
        let help = format!("add [spec.selector] with match_labels = {example}");
        let Some(t) = self.require(f, Some(help)).and_then(|f| self.table(&f)) else {
            return LabelSelector::default();
        };
        // `selector = { app = "web" }`, as in a ReplicationController.
        let plain: Option<Labels> = (t.t.keys.is_empty() && !t.t.unknown.is_empty())
            .then(|| {
                t.t.unknown
                    .iter()
                    .map(|(k, v)| Some((k.name.clone(), v.value.clone().ok()?)))
                    .collect()
            })
            .flatten();
        if let Some(labels) = plain {
            let d = self
                .diag(
                    t.at,
                    format!("a {kind}'s selector is not a plain label map"),
                )
                .with_label("expected match_labels and/or match_expressions")
                .with_help(format!(
                    "write selector = {{ match_labels = {} }}",
                    inline_labels(&labels)
                ));
            self.fail(&t.path, d);
            return LabelSelector::default();
        }
        self.unknown_fields(&t, &|_| None);
        let v = t.v();
        let match_labels = self
            .labels(&t.field("match_labels", &v.match_labels))
            .unwrap_or_default();
        let expressions = t.field("match_expressions", &v.match_expressions);
        let match_expressions = self
            .tables(&expressions)
            .unwrap_or_default()
            .iter()
            .map(|e| self.requirement(e))
            .collect();
        LabelSelector {
            match_labels,
            match_expressions,
        }
    }

    fn requirement(&mut self, t: &Tab<RawRequirement>) -> Requirement {
        self.unknown_fields(t, &|_| None);
        let v = t.v();
        let key = self
            .require(t.field("key", &v.key), Some("add key = \"tier\"".into()))
            .and_then(|f| self.string(&f));
        let operator = self
            .require(
                t.field("operator", &v.operator),
                Some("add operator = \"In\" (In, NotIn, Exists, DoesNotExist)".into()),
            )
            .and_then(|f| self.variant::<Operator>(&f, "operator"));
        let values = self
            .strings(&t.field("values", &v.values))
            .unwrap_or_default();
        if key.is_none() || operator.is_none() {
            // Its stand-in must not be judged against the template.
            self.poison(&t.path);
        }
        Requirement {
            key: key.unwrap_or_default(),
            operator: operator.unwrap_or(Operator::Exists),
            values,
        }
    }

    /// A ReplicationController's selector: a plain label map.
    fn rc_selector(&mut self, f: &Field<Map<String>>, example: &str) -> Labels {
        let Some(map) = self.get(f) else {
            return Labels::new();
        };
        let set_based = fields_of::<RawSelector>();
        let mut ok = true;
        for (key, _) in &map.0 {
            let name = key.name.as_str();
            if !set_based.contains(&name) {
                continue;
            }
            let help = if name == "match_labels" {
                format!("write the labels directly: selector = {example}")
            } else {
                format!(
                    "set-based selectors need kind = \"ReplicaSet\"; or select by labels: \
                     selector = {example}"
                )
            };
            let d = self
                .diag(
                    key.span.unwrap_or(f.value_span()),
                    format!("`{name}` is not supported in a ReplicationController selector"),
                )
                .with_label("a ReplicationController's selector is a plain label map")
                .with_help(help);
            self.fail(&f.path, d);
            ok = false;
        }
        if !ok {
            return Labels::new();
        }
        self.labels(f).unwrap_or_default()
    }
}
