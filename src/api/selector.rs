//! Label selectors: `match_labels` plus `match_expressions` (In, NotIn,
//! Exists, DoesNotExist), and kubectl's `-l` syntax.

use super::Labels;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // Kubernetes: NotIn also matches objects without the key.
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    pub fn from_labels(labels: Labels) -> LabelSelector {
        LabelSelector {
            match_labels: labels,
            match_expressions: Vec::new(),
        }
    }

    /// An empty selector would match every pod; controllers refuse it at
    /// validation, and `-l ""` (no selector) means "everything".
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Parses kubectl's `-l` syntax: `app=web,tier!=db,env in (a,b),
    /// env notin (c),key,!key`. `==` is accepted as `=`.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut sel = LabelSelector::default();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            if let Some(key) = term.strip_prefix('!') {
                sel.match_expressions.push(Requirement {
                    key: key.trim().to_string(),
                    operator: Operator::DoesNotExist,
                    values: vec![],
                });
            } else if let Some((k, v)) = term.split_once("!=") {
                sel.match_expressions.push(Requirement {
                    key: k.trim().to_string(),
                    operator: Operator::NotIn,
                    values: vec![v.trim().to_string()],
                });
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                sel.match_labels
                    .insert(k.trim().to_string(), v.trim().to_string());
            } else if let Some((k, op, vals)) = set_term(term) {
                sel.match_expressions.push(Requirement {
                    key: k,
                    operator: op,
                    values: vals,
                });
            } else if term
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./".contains(c))
            {
                sel.match_expressions.push(Requirement {
                    key: term.to_string(),
                    operator: Operator::Exists,
                    values: vec![],
                });
            } else {
                return Err(format!(
                    "cannot parse selector term `{term}`: expected key=value, key!=value, \
                     key in (a,b), key notin (a,b), key or !key"
                ));
            }
        }
        Ok(sel)
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// `KEY in (A,B)` or `KEY notin (A,B)`: the values in one pair of
/// parentheses that ends the term.
fn set_term(term: &str) -> Option<(String, Operator, Vec<String>)> {
    let open = term.find('(')?;
    let inside = term[open + 1..].strip_suffix(')')?;
    if inside.contains(['(', ')']) {
        return None;
    }
    let head = term[..open].trim();
    let (key, op) = if let Some(k) = head.strip_suffix(" notin") {
        (k, Operator::NotIn)
    } else if let Some(k) = head.strip_suffix(" in") {
        (k, Operator::In)
    } else {
        return None;
    };
    let values = inside
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Some((key.trim().to_string(), op, values))
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            });
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators_follow_kubernetes() {
        let web = labels(&[("app", "web"), ("tier", "frontend")]);
        let bare = labels(&[("app", "web")]);
        let cases = [
            ("app=web", true, true),
            ("app=db", false, false),
            ("tier in (frontend,backend)", true, false),
            ("tier notin (frontend)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web,tier!=frontend", false, true),
        ];
        for (text, on_web, on_bare) in cases {
            let sel = LabelSelector::parse(text).unwrap();
            assert_eq!(sel.matches(&web), on_web, "{text} on web");
            assert_eq!(sel.matches(&bare), on_bare, "{text} on bare");
        }
    }

    #[test]
    fn display_round_trips() {
        let text = "app=web,tier in (a,b),!legacy";
        let sel = LabelSelector::parse(text).unwrap();
        assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(LabelSelector::parse("app web").is_err());
    }

    /// Found by fuzzing (fuzz/, selector and api_query): a `)` before the
    /// `(` sliced the term backwards, and `GET /v1/pods?selector=` with
    /// such a term panicked the daemon.
    #[test]
    fn parentheses_out_of_order_are_an_error() {
        for text in [
            "x) in (a",
            ",)) \0) notin (\0(,,",
            "k in (a)b",
            "k in ((a))",
            "k in )a(",
        ] {
            assert!(LabelSelector::parse(text).is_err(), "{text:?}");
        }
        let sel = LabelSelector::parse("k in (a, b)").unwrap();
        assert_eq!(sel.match_expressions[0].values, ["a", "b"]);
    }
}
