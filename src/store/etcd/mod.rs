//! The etcd backend for cluster mode: drover's objects in etcd, with
//! compare-and-swap writes on etcd's revisions, a watch that survives
//! compaction, leases, and leader election whose guard makes a deposed
//! leader's writes fail.
//!
//! - [`EtcdStore`] offers get, list, create, update_if and delete_if
//!   ([`ObjectStore`]); a pod's node writes its status with
//!   [`EtcdStore::put_pod_status`] (own key, see `keys.rs`).
//! - [`Guarded`] offers the same writes, each also conditional on still holding
//!   the leadership ([`LeaderGuard`]); a lost leadership fails them with
//!   [`StoreError::NotLeader`].
//! - `watch.rs` ([`Watch`]), `lease.rs` ([`Lease`]), `election.rs`
//!   ([`campaign`]), `keys.rs` (layout and encoding), `config.rs`
//!   (endpoints and the TLS rule), `failover.rs` (retry across endpoints).
//!
//! An object's `resource_version` is its key's `mod_revision`: every
//! write is a transaction comparing it, so two writers never silently
//! overwrite each other.
//!
//! Must not: decide anything about objects, cache (the daemon's cache is
//! fed by [`Watch`]), or retry a failed compare (the caller re-decides).

mod batch;
mod config;
mod election;
mod failover;
pub mod keys;
mod lease;
mod watch;

pub use batch::{BatchWrite, StatusReport, CHUNK};
pub use config::{
    validate_endpoints, ConfigError, Endpoint, EtcdConfig, RetryPolicy, Scheme, TlsFiles,
};
pub use election::{campaign, current_leader, LeaderGuard, Leadership};
pub use lease::Lease;
pub use watch::{Change, Entry, Watch, WatchEvent};

use crate::api::{Kind, Object, Pod, PodStatus};
use crate::store::versioned::{Listing, ObjectStore, Result, StoreError};
use etcd_client::{
    Certificate, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity, KeyValue,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use failover::Failover;
use keys::{object_key, status_key, NodeStatus};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A handle on the cluster's store; cheap to clone (one set of
/// connections shared by every clone).
#[derive(Clone)]
pub struct EtcdStore {
    failover: Arc<Failover>,
}

impl EtcdStore {
    /// Checks the endpoints against the TLS rule, reads the TLS files and
    /// prepares one client per endpoint. Connections are made on first
    /// use, so an endpoint that is down now does not fail this.
    pub async fn connect(config: &EtcdConfig) -> Result<EtcdStore, ConfigError> {
        let endpoints =
            validate_endpoints(&config.endpoints, config.tls.is_some(), config.insecure)?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.retry.request_timeout)
            // A member cut off from its cluster's leader answers "no
            // leader" at once (and cancels watches) instead of serving
            // stale reads: the failover then moves to a member that has one.
            .with_require_leader(true)
            // Only while a stream (watch, keep-alive) is open: notices a
            // frozen member under a long-lived watch, costs nothing idle.
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        if let Some(tls) = &config.tls {
            let read = |what: &'static str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| ConfigError::ReadTls {
                    what,
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            };
            let ca = read("CA certificate", &tls.ca)?;
            let cert = read("client certificate", &tls.cert)?;
            let key = read("client key", &tls.key)?;
            options = options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key)),
            );
        }
        let failover = Failover::connect(config, &endpoints, options).await?;
        Ok(EtcdStore {
            failover: Arc::new(failover),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        self.failover.endpoints()
    }

    /// Writes whose every transaction also requires `guard`'s leadership.
    pub fn guarded<'a>(&'a self, guard: &'a LeaderGuard) -> Guarded<'a> {
        Guarded { store: self, guard }
    }

    /// The store's current revision (a linearizable read).
    pub async fn revision(&self) -> Result<u64> {
        let resp = self
            .failover
            .call(|_, mut c| async move {
                c.get(keys::LEADER_KEY, Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        Ok(header_revision(resp.header()))
    }

    /// Forgets the history before `revision` (etcd keeps every version of
    /// every key until compacted). Watchers behind it re-list.
    pub async fn compact(&self, revision: u64) -> Result<()> {
        self.failover
            .call(|_, mut c| async move { c.compact(revision as i64, None).await })
            .await?;
        Ok(())
    }

    /// The node's report of a pod's status (the agent's only write),
    /// stored under the pod's status key with the pod's uid. Refused with
    /// [`StoreError::NotFound`] when the pod object is gone: a node never
    /// resurrects a deleted pod's status. Returns the write's revision.
    pub async fn put_pod_status(&self, pod: &str, uid: &str, status: &PodStatus) -> Result<u64> {
        let value = batch::status_value(&StatusReport {
            pod: pod.to_string(),
            uid: uid.to_string(),
            status: status.clone(),
        });
        let txn = Txn::new()
            .when([Compare::version(
                object_key(Kind::Pod, pod),
                CompareOp::Greater,
                0,
            )])
            .and_then([TxnOp::put(status_key(pod), value, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StoreError::NotFound {
                kind: Kind::Pod,
                name: pod.to_string(),
            });
        }
        Ok(header_revision(resp.header()))
    }

    /// Puts the node's heartbeat key on `lease`: it exists exactly while
    /// the lease lives (the node lifecycle controller watches it).
    pub async fn put_node_lease(&self, node: &str, lease: &Lease) -> Result<u64> {
        let key = keys::node_lease_key(node);
        let options = PutOptions::new().with_lease(lease.id());
        let resp = self
            .failover
            .call(|_, mut c| {
                let (key, options) = (key.clone(), options.clone());
                async move { c.put(key, node, Some(options)).await }
            })
            .await?;
        Ok(header_revision(resp.header()))
    }

    pub(crate) async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.failover
            .call(|_, mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
    }

    pub(crate) fn failover(&self) -> &Arc<Failover> {
        &self.failover
    }

    async fn get_object(&self, kind: Kind, name: &str) -> Result<Option<Object>> {
        let key = object_key(kind, name);
        let mut ops = vec![TxnOp::get(key.clone(), None)];
        if kind == Kind::Pod {
            ops.push(TxnOp::get(status_key(name), None));
        }
        let resp = self.txn(Txn::new().and_then(ops)).await?;
        let mut gets = gets(&resp);
        let Some(kv) = gets.remove(0).into_iter().next() else {
            return Ok(None);
        };
        let mut obj = decode_kv(&kv)?;
        if let (Object::Pod(pod), Some(status)) = (&mut obj, gets.first()) {
            merge_node_status(pod, status.first())?;
        }
        Ok(Some(obj))
    }

    async fn list_objects(&self, kind: Kind) -> Result<Listing> {
        let prefix = GetOptions::new().with_prefix();
        let mut ops = vec![TxnOp::get(keys::kind_prefix(kind), Some(prefix.clone()))];
        if kind == Kind::Pod {
            ops.push(TxnOp::get(keys::status_prefix(), Some(prefix)));
        }
        // One transaction: objects and statuses at the same revision.
        let resp = self.txn(Txn::new().and_then(ops)).await?;
        let revision = header_revision(resp.header());
        let mut gets = gets(&resp);
        let stored = gets.remove(0);
        let statuses: BTreeMap<String, &KeyValue> = match gets.first() {
            Some(kvs) => kvs
                .iter()
                .filter_map(|kv| match keys::parse(kv.key()) {
                    Some(keys::KeyRef::PodStatus(pod)) => Some((pod, kv)),
                    _ => None,
                })
                .collect(),
            None => BTreeMap::new(),
        };
        let mut objects = Vec::new();
        for kv in &stored {
            let Some(keys::KeyRef::Object(k, _)) = keys::parse(kv.key()) else {
                continue;
            };
            if k != kind {
                continue;
            }
            let mut obj = decode_kv(kv)?;
            if let Object::Pod(pod) = &mut obj {
                merge_node_status(pod, statuses.get(&pod.metadata.name).copied())?;
            }
            objects.push(obj);
        }
        Ok(Listing { objects, revision })
    }

    /// One conditional write; returns its revision (the object's new
    /// resource_version).
    async fn write(&self, op: Write<'_>, guard: Option<&LeaderGuard>) -> Result<u64> {
        let (kind, name) = (op.kind(), op.name().to_string());
        let key = object_key(kind, &name);
        let (mut when, then) = op.parts();
        let mut otherwise = vec![TxnOp::get(key.clone(), None)];
        if let Some(g) = guard {
            when.push(g.compare());
            otherwise.push(TxnOp::get(g.key(), None));
        }
        let resp = self
            .txn(Txn::new().when(when).and_then(then).or_else(otherwise))
            .await?;
        if resp.succeeded() {
            return Ok(header_revision(resp.header()));
        }
        let gets = gets(&resp);
        if let Some(g) = guard {
            let leader = gets.get(1).and_then(|kvs| kvs.first());
            if !g.holds(leader) {
                return Err(StoreError::NotLeader);
            }
        }
        let current = gets.first().and_then(|kvs| kvs.first());
        Err(match (&op, current) {
            (Write::Create(_), _) => StoreError::AlreadyExists { kind, name },
            (_, None) => StoreError::NotFound { kind, name },
            (Write::Update(obj), Some(kv)) => StoreError::Conflict {
                kind,
                name,
                expected: obj.meta().resource_version,
                actual: kv.mod_revision() as u64,
            },
            (Write::Delete { expected, .. }, Some(kv)) => StoreError::Conflict {
                kind,
                name,
                expected: *expected,
                actual: kv.mod_revision() as u64,
            },
        })
    }
}

#[derive(Clone, Copy)]
enum Put {
    Create,
    Update,
}

impl EtcdStore {
    /// A create or update; returns `obj` with its new resource_version.
    async fn put(&self, how: Put, mut obj: Object, guard: Option<&LeaderGuard>) -> Result<Object> {
        let op = match how {
            Put::Create => Write::Create(&obj),
            Put::Update => Write::Update(&obj),
        };
        let revision = self.write(op, guard).await?;
        obj.meta_mut().resource_version = revision;
        Ok(obj)
    }
}

/// One conditional write.
enum Write<'a> {
    Create(&'a Object),
    Update(&'a Object),
    Delete {
        kind: Kind,
        name: &'a str,
        expected: u64,
    },
}

impl Write<'_> {
    /// The transaction's conditions and operations for this write alone.
    fn parts(&self) -> (Vec<Compare>, Vec<TxnOp>) {
        let key = object_key(self.kind(), self.name());
        let mut when = Vec::new();
        let mut then = Vec::new();
        match self {
            Write::Create(obj) => {
                when.push(Compare::version(key.clone(), CompareOp::Equal, 0));
                then.push(TxnOp::put(key, keys::encode((*obj).clone()), None));
            }
            Write::Update(obj) => {
                let rv = obj.meta().resource_version as i64;
                when.push(Compare::version(key.clone(), CompareOp::Greater, 0));
                when.push(Compare::mod_revision(key.clone(), CompareOp::Equal, rv));
                then.push(TxnOp::put(key, keys::encode((*obj).clone()), None));
            }
            Write::Delete {
                kind,
                name,
                expected,
            } => {
                when.push(Compare::version(key.clone(), CompareOp::Greater, 0));
                when.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    *expected as i64,
                ));
                then.push(TxnOp::delete(key, None::<DeleteOptions>));
                if *kind == Kind::Pod {
                    then.push(TxnOp::delete(status_key(name), None));
                }
            }
        }
        (when, then)
    }

    fn kind(&self) -> Kind {
        match self {
            Write::Create(o) | Write::Update(o) => o.kind(),
            Write::Delete { kind, .. } => *kind,
        }
    }
    fn name(&self) -> &str {
        match self {
            Write::Create(o) | Write::Update(o) => o.name(),
            Write::Delete { name, .. } => name,
        }
    }
}

/// The key-values each get of a transaction returned, in order.
fn gets(resp: &TxnResponse) -> Vec<Vec<KeyValue>> {
    resp.op_responses()
        .into_iter()
        .filter_map(|r| match r {
            TxnOpResponse::Get(mut g) => Some(g.take_kvs()),
            _ => None,
        })
        .collect()
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> u64 {
    header.map_or(0, |h| h.revision().max(0) as u64)
}

fn decode_kv(kv: &KeyValue) -> Result<Object> {
    keys::decode(kv.value(), kv.mod_revision()).map_err(|source| StoreError::Corrupt {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        source,
    })
}

fn merge_node_status(pod: &mut Pod, kv: Option<&KeyValue>) -> Result<()> {
    let Some(kv) = kv else { return Ok(()) };
    let status: NodeStatus =
        serde_json::from_slice(kv.value()).map_err(|source| StoreError::Corrupt {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            source,
        })?;
    keys::merge_status(pod, Some(&status));
    Ok(())
}

impl ObjectStore for EtcdStore {
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Object>>> + Send {
        self.get_object(kind, name)
    }

    fn list(&self, kind: Kind) -> impl Future<Output = Result<Listing>> + Send {
        self.list_objects(kind)
    }

    fn create(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        self.put(Put::Create, obj, None)
    }

    fn update_if(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        self.put(Put::Update, obj, None)
    }

    async fn delete_if(&self, kind: Kind, name: &str, expected: u64) -> Result<()> {
        let op = Write::Delete {
            kind,
            name,
            expected,
        };
        self.write(op, None).await.map(drop)
    }
}

/// [`EtcdStore`]'s writes, each conditional on the leadership too: the
/// controllers' only way to write (Kubernetes' leader election has no such
/// fence; etcd's transactions make it free here).
pub struct Guarded<'a> {
    store: &'a EtcdStore,
    guard: &'a LeaderGuard,
}

impl ObjectStore for Guarded<'_> {
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Object>>> + Send {
        self.store.get_object(kind, name)
    }

    fn list(&self, kind: Kind) -> impl Future<Output = Result<Listing>> + Send {
        self.store.list_objects(kind)
    }

    fn create(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        self.store.put(Put::Create, obj, Some(self.guard))
    }

    fn update_if(&self, obj: Object) -> impl Future<Output = Result<Object>> + Send {
        self.store.put(Put::Update, obj, Some(self.guard))
    }

    async fn delete_if(&self, kind: Kind, name: &str, expected: u64) -> Result<()> {
        let op = Write::Delete {
            kind,
            name,
            expected,
        };
        self.store.write(op, Some(self.guard)).await.map(drop)
    }
}
