//! What a verb acts on: kubectl's `KIND NAME` and `KIND/NAME` forms, the
//! kinds each verb accepts, and the resource names kubectl prints
//! (`replicaset.apps/web created`).

use super::CliError;
use crate::api::Kind;

/// One object, as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub name: String,
}

impl Target {
    /// `replicaset.apps/web`, as kubectl's `-o name` and action lines.
    pub fn resource_ref(&self) -> String {
        format!("{}/{}", resource(self.kind), self.name)
    }
}

/// kubectl's fully qualified resource name: `pod`, `replicaset.apps`,
/// `replicationcontroller`, `job.batch`.
pub fn resource(kind: Kind) -> &'static str {
    match kind {
        Kind::Pod => "pod",
        Kind::ReplicaSet => "replicaset.apps",
        Kind::ReplicationController => "replicationcontroller",
        Kind::DaemonSet => "daemonset.apps",
        Kind::Job => "job.batch",
        Kind::CronJob => "cronjob.batch",
        Kind::Node => "node",
        Kind::Event => "event",
    }
}

/// Parses a kind word (`pods`, `rs`, `ReplicaSet`) and checks the verb
/// accepts it.
pub fn parse_kind(word: &str, allowed: &[Kind], verb: &str) -> Result<Kind, CliError> {
    let kind = Kind::from_cli(word).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown resource type \"{word}\" for `drover {verb}`: expected {}",
            choices(allowed)
        ))
    })?;
    if !allowed.contains(&kind) {
        return Err(CliError::Usage(format!(
            "`drover {verb}` does not work on {}: expected {}",
            kind.plural(),
            choices(allowed)
        )));
    }
    Ok(kind)
}

/// `KIND NAME...` or `KIND/NAME...` (every word with a slash then).
pub fn parse_targets(
    words: &[String],
    allowed: &[Kind],
    verb: &str,
) -> Result<Vec<Target>, CliError> {
    let Some(first) = words.first() else {
        return Err(CliError::Usage(format!(
            "`drover {verb}` needs a resource: KIND NAME or KIND/NAME (KIND: {})",
            choices(allowed)
        )));
    };
    if first.contains('/') {
        return words
            .iter()
            .map(|w| {
                let (kind, name) = w.split_once('/').filter(|(_, n)| !n.is_empty()).ok_or_else(|| {
                    CliError::Usage(format!(
                        "`{w}`: mixing KIND/NAME and KIND NAME forms; write every resource as KIND/NAME"
                    ))
                })?;
                Ok(Target {
                    kind: parse_kind(kind, allowed, verb)?,
                    name: name.to_string(),
                })
            })
            .collect();
    }
    let kind = parse_kind(first, allowed, verb)?;
    if words.len() < 2 {
        return Err(CliError::Usage(format!(
            "`drover {verb} {first}` needs a name: drover {verb} {first} NAME"
        )));
    }
    words[1..]
        .iter()
        .map(|name| {
            if name.contains('/') {
                Err(CliError::Usage(format!(
                    "`{name}`: a name has no slash; write `drover {verb} {first} NAME` or `drover {verb} KIND/NAME`"
                )))
            } else {
                Ok(Target {
                    kind,
                    name: name.clone(),
                })
            }
        })
        .collect()
}

/// The words of a `<KIND> [NAME]` pair of positionals.
pub fn words(kind: &str, name: Option<&str>) -> Vec<String> {
    std::iter::once(kind)
        .chain(name)
        .map(str::to_string)
        .collect()
}

/// Exactly one `KIND NAME` or `KIND/NAME`.
pub fn parse_target(words: &[String], allowed: &[Kind], verb: &str) -> Result<Target, CliError> {
    let mut targets = parse_targets(words, allowed, verb)?;
    if targets.len() != 1 {
        return Err(CliError::Usage(format!(
            "`drover {verb}` acts on one resource at a time, got {}",
            targets.len()
        )));
    }
    Ok(targets.remove(0))
}

/// `pod, rs or rc`
fn choices(allowed: &[Kind]) -> String {
    let words: Vec<&str> = allowed.iter().map(|k| k.short()).collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    const SETS: [Kind; 2] = [Kind::ReplicaSet, Kind::ReplicationController];

    #[test]
    fn both_forms_name_the_same_object() {
        let want = Target {
            kind: Kind::ReplicaSet,
            name: "web".into(),
        };
        assert_eq!(
            parse_target(&words(&["rs", "web"]), &SETS, "scale").unwrap(),
            want
        );
        assert_eq!(
            parse_target(&words(&["rs/web"]), &SETS, "scale").unwrap(),
            want
        );
        assert_eq!(
            parse_target(&words(&["replicasets", "web"]), &SETS, "scale").unwrap(),
            want
        );
    }

    #[test]
    fn several_names() {
        let ts = parse_targets(&words(&["pod", "a", "b"]), &[Kind::Pod], "delete").unwrap();
        assert_eq!(ts.len(), 2);
        let ts = parse_targets(
            &words(&["pod/a", "rs/b"]),
            &[Kind::Pod, Kind::ReplicaSet],
            "delete",
        )
        .unwrap();
        assert_eq!(ts[1].kind, Kind::ReplicaSet);
    }

    #[test]
    fn wrong_words_are_usage_errors() {
        let err = parse_target(&words(&["pod", "x"]), &SETS, "scale").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`drover scale` does not work on pods: expected rs or rc"
        );
        let err = parse_target(&words(&["deploy", "x"]), &SETS, "scale").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unknown resource type \"deploy\""));
        assert!(parse_target(&words(&["rs"]), &SETS, "scale").is_err());
        assert!(parse_target(&words(&["rs/web", "x"]), &SETS, "scale").is_err());
        assert!(parse_target(&words(&["rs/"]), &SETS, "scale").is_err());
        assert!(parse_target(&words(&["rs", "a", "b"]), &SETS, "scale").is_err());
    }

    #[test]
    fn resource_refs_follow_kubectl() {
        let t = Target {
            kind: Kind::ReplicaSet,
            name: "web".into(),
        };
        assert_eq!(t.resource_ref(), "replicaset.apps/web");
        assert_eq!(
            resource(Kind::ReplicationController),
            "replicationcontroller"
        );
    }
}
