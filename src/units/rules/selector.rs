//! Selectors: well formed, selecting the template's pods, and not so broad
//! that they would adopt every unmanaged pod on the host.

use super::names::{self, inline_labels, toml_key};
use super::{join, Checks, Problem};
use crate::api::{Kind, LabelSelector, Labels, Operator, Requirement};

impl Checks {
    /// A ReplicaSet's, ReplicationController's or DaemonSet's selector
    /// and its template's labels.
    pub(super) fn set(
        &mut self,
        sel: &LabelSelector,
        kind: Kind,
        allow_broad: bool,
        template_labels: &Labels,
    ) {
        let path = "spec.selector";
        let plain = kind == Kind::ReplicationController;
        let example = if template_labels.is_empty() {
            "{ app = \"web\" }".to_string()
        } else {
            inline_labels(template_labels)
        };
        if template_labels.is_empty() {
            self.push(
                Problem::value(
                    "spec.template.labels",
                    "the template needs labels for the selector to find its pods",
                )
                .help("add labels = { app = \"web\" } and select them in spec.selector"),
            );
        } else {
            self.labels(template_labels, "spec.template.labels");
        }
        let labels_path = if plain {
            path.to_string()
        } else {
            join(path, "match_labels")
        };
        let before = self.problems.len();
        self.labels(&sel.match_labels, &labels_path);
        for (i, r) in sel.match_expressions.iter().enumerate() {
            self.requirement(r, &format!("{path}.match_expressions[{i}]"));
        }
        if self.problems.len() > before {
            return; // what it would select is not known yet
        }
        if !allow_broad && sel.is_empty() {
            self.push(
                Problem::value(path, "the selector must not be empty")
                    .label("an empty selector would select every pod")
                    .help(if plain {
                        format!("write selector = {example}")
                    } else {
                        format!("add match_labels = {example}")
                    }),
            );
        } else if !allow_broad && !has_positive_term(sel) {
            self.push(
                Problem::value(
                    path,
                    "the selector matches too much: it has no `match_labels` and no `In` or \
                     `Exists` expression",
                )
                .label(
                    "with no namespaces to contain it, it would adopt every unmanaged pod on \
                     the host that it matches",
                )
                .help(format!(
                    "add match_labels = {example}, or set allow_broad_selector = true in [spec] \
                     if that is what you mean"
                )),
            );
        }
        if template_labels.is_empty() || sel.matches(template_labels) {
            return;
        }
        let from = if plain {
            "the selector"
        } else {
            "match_labels"
        };
        let fixes = selector_mismatch(sel, template_labels, from);
        let label_fails = sel
            .match_labels
            .iter()
            .any(|(k, v)| template_labels.get(k) != Some(v));
        let primary = if label_fails {
            labels_path
        } else {
            sel.match_expressions
                .iter()
                .position(|r| !r.matches(template_labels))
                .map(|i| format!("{path}.match_expressions[{i}]"))
                .unwrap_or_else(|| path.to_string())
        };
        self.push(
            Problem::value(primary, "selector does not match template labels")
                .label("selector")
                .related("spec.template.labels", "template.labels")
                .help(fixes.join("\n")),
        );
    }

    fn requirement(&mut self, r: &Requirement, path: &str) {
        if let Err(why) = names::label_key(&r.key) {
            self.push(
                Problem::value(join(path, "key"), format!("invalid label key `{}`", r.key))
                    .label(why),
            );
        }
        for (j, v) in r.values.iter().enumerate() {
            if let Err(why) = names::label_value(v) {
                self.push(
                    Problem::value(
                        format!("{path}.values[{j}]"),
                        format!("invalid label value \"{v}\""),
                    )
                    .label(why),
                );
            }
        }
        if let Err(why) = requirement(r) {
            let (at, help) = match r.operator {
                Operator::In | Operator::NotIn => ("operator", "add values = [\"...\"]"),
                Operator::Exists | Operator::DoesNotExist => ("values", "remove `values`"),
            };
            self.push(Problem::value(join(path, at), why).help(help));
        }
    }
}

/// Whether a selector names something its pods must have: a label of
/// `match_labels`, or an `In` or `Exists` expression. Without one, it
/// selects by absence only (`DoesNotExist`, `NotIn`) and matches nearly
/// every pod.
pub fn has_positive_term(sel: &LabelSelector) -> bool {
    !sel.match_labels.is_empty()
        || sel
            .match_expressions
            .iter()
            .any(|r| matches!(r.operator, Operator::In | Operator::Exists))
}

/// Why a requirement's values do not fit its operator.
pub fn requirement(r: &Requirement) -> Result<(), String> {
    match r.operator {
        Operator::In | Operator::NotIn if r.values.is_empty() => Err(format!(
            "operator `{:?}` needs at least one value in `values`",
            r.operator
        )),
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
            Err(format!("operator `{:?}` takes no `values`", r.operator))
        }
        _ => Ok(()),
    }
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to change so that `selector` matches `labels` (a template's), one
/// suggestion per failing term; empty when it matches. `from` names where
/// the selector's plain labels are written (`match_labels`, `the selector`).
pub fn selector_mismatch(selector: &LabelSelector, labels: &Labels, from: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &selector.match_labels {
        match labels.get(k) {
            None => out.push(format!(
                "add `{} = \"{v}\"` to template.labels, or drop it from {from}",
                toml_key(k)
            )),
            Some(have) if have != v => out.push(format!(
                "template.labels has `{k} = \"{have}\"` but the selector wants `{k} = \"{v}\"`"
            )),
            Some(_) => {}
        }
    }
    for r in &selector.match_expressions {
        if r.matches(labels) {
            continue;
        }
        let k = &r.key;
        out.push(match r.operator {
            Operator::In => match (labels.get(k), r.values.first()) {
                (None, Some(first)) => format!(
                    "add `{k} = \"{first}\"` to template.labels, or drop the `{k} In` expression"
                ),
                (have, _) => format!(
                    "template.labels has `{k} = \"{}\"` but the selector wants one of {}",
                    have.map(String::as_str).unwrap_or_default(),
                    quoted(&r.values)
                ),
            },
            Operator::NotIn => format!(
                "template.labels has `{k} = \"{}\"`, which the selector excludes ({k} NotIn {})",
                labels.get(k).map(String::as_str).unwrap_or_default(),
                quoted(&r.values)
            ),
            Operator::Exists => {
                format!("add a `{k}` label to template.labels, or drop the `{k} Exists` expression")
            }
            Operator::DoesNotExist => format!(
                "remove `{k}` from template.labels, or drop the `{k} DoesNotExist` expression"
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn positive_terms() {
        let labels = LabelSelector::from_labels([("app".to_string(), "web".to_string())].into());
        let only = |r: Requirement| LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![r],
        };
        let cases = [
            (labels, true),
            (only(req("tier", Operator::In, &["a"])), true),
            (only(req("tier", Operator::Exists, &[])), true),
            (only(req("legacy", Operator::DoesNotExist, &[])), false),
            (only(req("tier", Operator::NotIn, &["a"])), false),
            (LabelSelector::default(), false),
        ];
        for (sel, want) in cases {
            assert_eq!(has_positive_term(&sel), want, "{sel:?}");
        }
    }
}
