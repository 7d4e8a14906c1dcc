//! `drover label KIND NAME key=value... key- [--overwrite]`

use super::target::{parse_target, Target};
use super::{print, CliError};
use crate::api::http::LabelRequest;
use crate::api::{Kind, Labels};
use crate::client::{object_path, Client, ClientError};
use serde_json::Value;

const KINDS: [Kind; 4] = [
    Kind::Pod,
    Kind::Node,
    Kind::ReplicaSet,
    Kind::ReplicationController,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// pod, node, rs or rc; or KIND/NAME
    kind: String,
    /// The name (unless KIND/NAME), then key=value to set a label and key-
    /// to remove one
    #[arg(value_name = "NAME|KEY=VALUE|KEY-")]
    args: Vec<String>,
    /// Allow changing the value of a label that is already set
    #[arg(long)]
    overwrite: bool,
}

pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let words: Vec<String> = std::iter::once(args.kind).chain(args.args).collect();
    let split = if words[0].contains('/') { 1 } else { 2 };
    let split = split.min(words.len());
    let target = parse_target(&words[..split], &KINDS, "label")?;
    let mut request = parse_updates(&words[split..])?;
    request.overwrite = args.overwrite;

    let path = format!("{}/labels", object_path(target.kind, &target.name));
    match client.post::<_, Value>(&path, &request).await {
        Ok(_) => {
            print(&format!("{} labeled\n", target.resource_ref()))?;
            Ok(())
        }
        Err(e) if e.is_conflict() => Err(conflict(client, &target, &request, e).await),
        Err(e) => Err(e.into()),
    }
}

/// A 409 says a key already has another value; kubectl names it.
async fn conflict(
    client: &Client,
    target: &Target,
    request: &LabelRequest,
    err: ClientError,
) -> anyhow::Error {
    let current = client
        .get::<Value>(&object_path(target.kind, &target.name))
        .await
        .ok()
        .and_then(|v| {
            serde_json::from_value::<Labels>(v.pointer("/metadata/labels")?.clone()).ok()
        });
    match current.and_then(|labels| conflict_message(&labels, request)) {
        Some(msg) => anyhow::anyhow!(msg),
        None => err.into(),
    }
}

/// `'app' already has a value (web), and --overwrite is false`
pub fn conflict_message(current: &Labels, request: &LabelRequest) -> Option<String> {
    request.set.iter().find_map(|(k, v)| match current.get(k) {
        Some(old) if old != v => Some(format!(
            "'{k}' already has a value ({old}), and --overwrite is false"
        )),
        _ => None,
    })
}

/// `key=value` sets, `key-` removes; anything else is a usage error.
pub fn parse_updates(words: &[String]) -> Result<LabelRequest, CliError> {
    if words.is_empty() {
        return Err(CliError::Usage(
            "at least one label update is required: key=value to set, key- to remove".into(),
        ));
    }
    let mut req = LabelRequest::default();
    for w in words {
        if let Some((k, v)) = w.split_once('=') {
            check_key(k, w)?;
            check_value(v, w)?;
            if req.set.insert(k.to_string(), v.to_string()).is_some() {
                return Err(CliError::Usage(format!("label `{k}` is given twice")));
            }
        } else if let Some(k) = w.strip_suffix('-') {
            check_key(k, w)?;
            req.remove.push(k.to_string());
        } else {
            return Err(CliError::Usage(format!(
                "invalid label spec `{w}`: write key=value to set a label, key- to remove it"
            )));
        }
    }
    let both: Vec<&str> = req
        .remove
        .iter()
        .filter(|k| req.set.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !both.is_empty() {
        return Err(CliError::Usage(format!(
            "cannot both set and remove the label(s) {} in one command",
            both.join(", ")
        )));
    }
    Ok(req)
}

/// Kubernetes' label key: optional `dns.prefix/` and a name segment.
fn check_key(key: &str, word: &str) -> Result<(), CliError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if !prefix_ok || name.is_empty() || !segment_ok(name) {
        return Err(CliError::Usage(format!(
            "invalid label key in `{word}`: a key is at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit, optionally after a `domain/` prefix"
        )));
    }
    Ok(())
}

fn check_value(value: &str, word: &str) -> Result<(), CliError> {
    if value.is_empty() || segment_ok(value) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "invalid label value in `{word}`: a value is empty or at most 63 letters, digits, \
             '-', '_' or '.', starting and ending with a letter or digit"
        )))
    }
}

fn segment_ok(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn sets_and_removals() {
        let req = parse_updates(&words(&[
            "app=web",
            "tier-",
            "drover.io/role=",
            "a.b_c=x-1",
        ]))
        .unwrap();
        assert_eq!(req.set.get("app").map(String::as_str), Some("web"));
        assert_eq!(req.set.get("drover.io/role").map(String::as_str), Some(""));
        assert_eq!(req.set.get("a.b_c").map(String::as_str), Some("x-1"));
        assert_eq!(req.remove, vec!["tier".to_string()]);
        assert!(!req.overwrite);
    }

    #[test]
    fn invalid_updates_are_usage_errors() {
        for bad in [
            vec![],
            vec!["app"],
            vec!["=web"],
            vec!["app=we b"],
            vec!["app=-web"],
            vec!["-"],
            vec!["Bad_Prefix.io/x=1"],
            vec!["app=a", "app=b"],
            vec!["app=a", "app-"],
        ] {
            let err = parse_updates(&words(&bad));
            assert!(matches!(err, Err(CliError::Usage(_))), "{bad:?} -> {err:?}");
        }
        let err = parse_updates(&words(&["app"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid label spec `app`: write key=value to set a label, key- to remove it"
        );
    }

    #[test]
    fn conflicts_read_like_kubectl() {
        let current = Labels::from([("app".to_string(), "web".to_string())]);
        let req = parse_updates(&words(&["app=db"])).unwrap();
        assert_eq!(
            conflict_message(&current, &req).as_deref(),
            Some("'app' already has a value (web), and --overwrite is false")
        );
        let same = parse_updates(&words(&["app=web", "new=1"])).unwrap();
        assert_eq!(conflict_message(&current, &same), None);
    }
}
