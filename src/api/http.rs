//! The daemon's HTTP+JSON API on its unix socket: the routes and the
//! request/response bodies, shared by the server (`daemon::http`) and the
//! client (`client`), so `curl --unix-socket` users and the CLI see one
//! contract.
//!
//! Routes (`{plural}` is `Kind::plural()`: pods, replicasets,
//! replicationcontrollers, jobs, cronjobs, nodes, events):
//!
//! | method | path                                   | body            | answer |
//! |--------|----------------------------------------|-----------------|--------|
//! | GET    | /v1/version                            |                 | [`VersionInfo`] |
//! | GET    | /v1/{plural}?selector=SEL              |                 | [`List`] (`{"kind":"List","items":[..]}`) |
//! | GET    | /v1/{plural}/{name}                    |                 | the object (`{"kind":..,"metadata":..}`) |
//! | POST   | /v1/apply                              | [`ApplyRequest`]| [`ApplyResponse`] |
//! | DELETE | /v1/{plural}/{name}?cascade=orphan     |                 | [`ActionResponse`] (a Job's pods, a CronJob's Jobs go too, unless orphaned) |
//! | POST   | /v1/{plural}/{name}/labels             | [`LabelRequest`]| the object |
//! | POST   | /v1/{plural}/{name}/scale              | [`ScaleRequest`]| the object (a Job's `replicas` is its parallelism) |
//! | POST   | /v1/jobs                               | [`CreateJobRequest`] | the Job: a manual run of a CronJob's template |
//! | POST   | /v1/{plural}/{name}/restart            |                 | [`ActionResponse`] |
//! | POST   | /v1/{plural}/{name}/kill               | [`KillRequest`] | [`ActionResponse`] |
//! | POST   | /v1/nodes/{name}/cordon                |                 | the node |
//! | POST   | /v1/nodes/{name}/uncordon              |                 | the node |
//! | POST   | /v1/reload                             |                 | [`ApplyResponse`] |
//! | POST   | /v1/reexec                             |                 | 202 [`ActionResponse`]: the daemon re-executes itself in place once the answer is out (root only); [`VersionInfo`]'s `image_id` tells the new image |
//! | GET    | /v1/pods/{name}/logs?process=P&previous=true&tail=N |  | text/plain |
//! | GET    | /v1/pods/{name}/logs?process=P&tail=N&follow=true |    | text/plain, chunked: the log as it grows, through restarts and rotations; ends when the pod is deleted or finished (`logs -f`) |
//! | GET    | /v1/events?for=Kind/name               |                 | [`List`] of events |
//! | GET    | /v1/watch?since=REV&timeout=SECS       |                 | [`WatchResponse`], long poll: answers when the store's revision passes REV (or at the timeout) |
//!
//! Errors: a non-2xx status with [`ErrorBody`]: 400 bad request or invalid
//! object, 404 not found, 409 conflict (e.g. `label` without `--overwrite`),
//! 500 internal.

use super::Object;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: String,
    pub node_name: String,
    pub pid: u32,
    pub state_dir: String,
    /// A new random id each time the daemon's program starts: a restart,
    /// or a `daemon-reexec` (same pid, new image). Empty from daemons
    /// that predate it.
    #[serde(default)]
    pub image_id: String,
    /// How many times this daemon process re-executed itself in place.
    #[serde(default)]
    pub reexecs: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct List {
    /// Always "List".
    pub kind: String,
    pub items: Vec<Object>,
}

impl List {
    pub fn new(items: Vec<Object>) -> List {
        List {
            kind: "List".into(),
            items,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// Objects to create or update, all or nothing.
    pub items: Vec<Object>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplyResult {
    pub kind: super::Kind,
    pub name: String,
    /// "created" | "configured" | "unchanged" | "deleted"
    pub action: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub results: Vec<ApplyResult>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LabelRequest {
    /// Labels to set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Labels to remove (`key-`).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Without it, changing an existing key's value is a 409.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub replicas: u32,
}

/// `drover create job [NAME] --from=cronjob/CJ`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateJobRequest {
    /// `cronjob/NAME`: the CronJob whose job template is run.
    pub from: String,
    /// The Job's name; by default `CJ-manual-xxxxx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KillRequest {
    /// Signal name ("HUP", "SIGHUP") or number ("1").
    pub signal: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionResponse {
    /// One line for the user, as kubectl prints: `pod "web-x1" deleted`.
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchResponse {
    pub revision: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
