//! The node-to-node channel, daemon side (the transport is
//! `cluster::peer`): what this daemon answers other nodes, and how it asks
//! another node on behalf of its own CLI.
//!
//! Other nodes may read pods (with the usage measured here), their logs
//! and events, nothing else: their
//! request enters the loop as a CLI request would, marked [`LOCAL_ONLY`]
//! (answered from this node's files and events, never passed on, so two
//! nodes with different views cannot bounce a request between them).
//!
//! Must not: serve anything that changes state, or answer for pods of
//! other nodes.

use super::auth::{Caller, Role};
use super::http::{parse_query, percent_decode, ApiReply, ApiRequest, ApiSender, Stream};
use crate::cluster::peer::{self, Handler, PeerClient, PeerRequest};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Query parameter of requests that must be answered here, not passed on.
pub const LOCAL_ONLY: &str = "local";

/// Largest answer relayed from another node (a log's tail, events).
const MAX_BODY: usize = 64 << 20;

/// The handler of this node's node-to-node listener.
pub fn handler(api: ApiSender) -> Handler {
    Arc::new(move |req: PeerRequest| {
        let api = api.clone();
        Box::pin(async move {
            let Some(rest) = req.path.strip_prefix("/v1/") else {
                return peer::text(404, "the API lives under /v1/");
            };
            let segments: Vec<String> = rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect();
            let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
            if !matches!(
                segs.as_slice(),
                ["pods", _, "logs"] | ["events"] | ["pods"] | ["pods", _]
            ) {
                return peer::text(403, "other nodes may read pods, their logs and events only");
            }
            let mut query = parse_query(req.query.as_deref().unwrap_or(""));
            query.insert(LOCAL_ONLY.into(), "1".into());
            let (tx, rx) = oneshot::channel();
            let request = ApiRequest {
                method: Method::GET,
                segments,
                query,
                body: Bytes::new(),
                caller: peer_caller(),
            };
            if api.send((request, tx)).await.is_err() {
                return peer::text(503, "the daemon is shutting down");
            }
            let mut reply = rx
                .await
                .unwrap_or_else(|_| ApiReply::error(503, "the daemon is shutting down"));
            // A `logs -f` streams from here for as long as the asking node
            // reads it; this node's loop ends it as it ends a local one.
            let body = match reply.open_stream() {
                Some(body) => body,
                None => peer::full(std::mem::take(&mut reply.body)),
            };
            hyper::Response::builder()
                .status(reply.status)
                .header("content-type", reply.content_type)
                .body(body)
                .expect("a valid response")
        })
    })
}

/// Who a request from another node is to this node's rules: a reader
/// and no more (the asking node checked its own caller; the routes above
/// are reads anyway). Nobody's uid: it owns no process here.
fn peer_caller() -> Caller {
    Caller {
        uid: 65534,
        gid: 65534,
        pid: None,
        name: Some("another node".into()),
        role: Role::Member,
    }
}

/// Asks `node` (at `addr`) for `req` and sends its answer to `reply`.
/// `local`: this node's own answer to merge in (a pod's events: the
/// leader's and the scheduler's are recorded where they ran).
pub async fn ask(
    client: PeerClient,
    node: String,
    addr: String,
    req: ApiRequest,
    local: Option<ApiReply>,
    reply: oneshot::Sender<ApiReply>,
) {
    let streamed = super::cluster::follows(&req);
    let mut path = format!("/v1/{}", req.segments.join("/"));
    let mut query: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k.as_str() != LOCAL_ONLY)
        .map(|(k, v)| format!("{}={}", crate::client::encode(k), crate::client::encode(v)))
        .collect();
    query.push(format!("{LOCAL_ONLY}=1"));
    path.push('?');
    path.push_str(&query.join("&"));
    let answer = match client.get(&node, &addr, &path).await {
        // A `logs -f` the owning node streams: relayed as it comes, for as
        // long as the CLI reads it (dropping it closes the other node's).
        Ok(resp) if resp.status() == 200 && streamed => ApiReply {
            stream: Some(Box::new(Stream::Relayed(
                resp.into_body().map_err(std::io::Error::other).boxed(),
            ))),
            ..ApiReply::text(Vec::new())
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            match http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
            {
                Ok(body) => ApiReply {
                    status,
                    content_type: if json {
                        "application/json"
                    } else {
                        "text/plain; charset=utf-8"
                    },
                    body: body.to_bytes().to_vec(),
                    stream: None,
                },
                Err(e) => ApiReply::error(502, format!("node {node}: reading the answer: {e}")),
            }
        }
        Err(e) => ApiReply::error(502, e.to_string()),
    };
    let answer = match local {
        Some(local) => merge_lists(local, answer),
        None => answer,
    };
    let _ = reply.send(answer);
}

/// Two `{"kind":"List","items":[...]}` answers as one, events in time
/// order. When the other node could not answer, this node's list stands.
fn merge_lists(local: ApiReply, remote: ApiReply) -> ApiReply {
    if remote.status != 200 {
        tracing::info!(
            "events from another node: {}",
            String::from_utf8_lossy(&remote.body)
        );
        return local;
    }
    let parse = |r: &ApiReply| serde_json::from_slice::<crate::api::http::List>(&r.body).ok();
    let (Some(mut a), Some(b)) = (parse(&local), parse(&remote)) else {
        return local;
    };
    a.items.extend(b.items);
    a.items.sort_by_key(|o| match o {
        crate::api::Object::Event(e) => Some(e.last_timestamp),
        _ => None,
    });
    ApiReply::json(200, &a)
}

/// `get pods -o wide` in a cluster: `local` is this node's list, with the
/// usage of its own pods; each of `peers` (node, address) is asked for
/// its list and the usage of the pods it runs is copied in. A node that
/// does not answer leaves its pods without usage (shown as unknown), as a
/// process this node cannot measure is.
pub async fn fill_usage(
    client: PeerClient,
    peers: Vec<(String, String)>,
    local: ApiReply,
    reply: oneshot::Sender<ApiReply>,
) {
    use crate::api::{http::List, Object, Pod};
    let Ok(mut list) = serde_json::from_slice::<List>(&local.body) else {
        let _ = reply.send(local);
        return;
    };
    let mut asks = tokio::task::JoinSet::new();
    for (node, addr) in peers {
        let client = client.clone();
        asks.spawn(async move {
            let path = format!("/v1/pods?usage=true&{LOCAL_ONLY}=1");
            let resp = client.get(&node, &addr, &path).await;
            let body = match resp {
                Ok(r) if r.status() == 200 => http_body_util::Limited::new(r.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .ok(),
                Ok(r) => {
                    tracing::info!("usage from node {node}: HTTP {}", r.status());
                    None
                }
                Err(e) => {
                    tracing::info!("usage from node {node}: {e}");
                    None
                }
            };
            let theirs = body
                .and_then(|b| serde_json::from_slice::<List>(&b.to_bytes()).ok())
                .map(|l| l.items)
                .unwrap_or_default();
            (node, theirs)
        });
    }
    let mut measured: std::collections::HashMap<(String, String), Pod> = Default::default();
    while let Some(Ok((node, items))) = asks.join_next().await {
        for item in items {
            if let Object::Pod(p) = item {
                if p.status.node_name.as_deref() == Some(node.as_str()) {
                    measured.insert((p.metadata.name.clone(), p.metadata.uid.clone()), p);
                }
            }
        }
    }
    for item in &mut list.items {
        let Object::Pod(pod) = item else { continue };
        let key = (pod.metadata.name.clone(), pod.metadata.uid.clone());
        let Some(there) = measured.get(&key) else {
            continue;
        };
        let theirs = there
            .status
            .init_processes
            .iter()
            .chain(&there.status.processes);
        let ours = pod
            .status
            .init_processes
            .iter_mut()
            .chain(&mut pod.status.processes);
        for (o, t) in ours.zip(theirs) {
            if o.name == t.name && o.pid == t.pid {
                o.usage = t.usage;
            }
        }
    }
    let _ = reply.send(ApiReply::json(200, &list));
}
