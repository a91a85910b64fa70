//! The inbox: where a verified delivery becomes durable work before GitHub gets its answer.
//!
//! Items are keyed by `X-GitHub-Delivery` and created only once, so a redelivered GUID is
//! recognized as a duplicate however many processes receive it. An item stays *pending* until the
//! worker marks it *done* (handler succeeded) or *given up* (too many failed attempts, or a payload
//! that can never be handled). Finished items are kept for [`RETENTION`] so that redeliveries
//! within that time are still recognized; [`Inbox::prune`] removes older ones.
//!
//! **Leases.** A worker handles an item only after [`Inbox::claim`] gave it a lease: a conditional
//! write (S3 `If-Match`/`If-None-Match`, a lock file on fs) of `{owner, expires_at}` into the
//! item's state that also counts the attempt. Of any number of workers (processes, Lambda
//! instances, the S3-triggered worker and the sweep) one at a time holds an item; an expired
//! lease (its holder crashed, timed out or ran out of memory) is taken over by the next claim,
//! and because the attempt was counted when claimed, such a crash counts towards giving up.
//! (On disk the count is not `fsync`ed: a process that dies keeps it, a machine that loses
//! power may not — see [`FsInbox`].)
//!
//! **Threads.** [`Inbox::pending_entries`] names each item's thread ([`thread_of`]: repository and
//! issue or pull-request number), so the worker can decide one thread's items in delivery order.
//!
//! Storage-neutral: [`FsInbox`] (a directory; concurrent puts share one `fdatasync` per batch,
//! see `journal`) and [`ObjectInbox`] (the store's object seam: S3 in
//! production, `inbox/<delivery>.json` created with `If-None-Match: *`). Both pass the same
//! conformance suite (`tests/it/inbox.rs`, `inbox_conformance`).

mod fs;
mod journal;
mod layout;
mod objects;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use fs::FsInbox;
pub use objects::ObjectInbox;

use crate::ids::DeliveryId;
use crate::store::StoreLocation;

/// How long finished items are kept. GitHub lets an admin redeliver a delivery for a few days
/// (3 at the time of writing); a week covers that with room to spare.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// One webhook delivery as received: enough to process it again from scratch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    /// The `X-GitHub-Event` header.
    pub event: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The raw body, exactly as signed (verified to be UTF-8 JSON before it got here).
    pub body: String,
}

impl Delivery {
    pub fn new(id: DeliveryId, event: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id,
            event: event.into(),
            received_at: OffsetDateTime::now_utc(),
            body: body.into(),
        }
    }
}

/// What [`Inbox::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new item, pending.
    Created,
    /// An item with this delivery id already exists (pending or finished): nothing written.
    Duplicate,
}

/// An item and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub delivery: Delivery,
    pub state: ItemState,
}

/// Progress of one item, stored next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    pub status: ItemStatus,
    /// Handler attempts started so far: counted when the item is claimed, so an attempt that
    /// never reported back (crash, Lambda timeout, out of memory) counts too. [`FsInbox`] does
    /// not `fsync` it: a power loss or a machine crash can take back the attempts counted since
    /// the last writeback.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the state last changed (a claim, a failure, finishing).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub updated_at: Option<OffsetDateTime>,
    /// Who is handling the item now, until when. `None` (or expired): nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl ItemState {
    pub fn new_pending() -> Self {
        Self {
            status: ItemStatus::Pending,
            attempts: 0,
            last_error: None,
            updated_at: None,
            lease: None,
        }
    }

    /// The lease that still holds the item at `now`, if any.
    pub fn active_lease(&self, now: OffsetDateTime) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.expires_at > now)
    }

    /// The lease that keeps `owner` from claiming the item now: an unexpired lease, unless it
    /// was taken by a dead predecessor of `owner` (see [`Lease::held_by_predecessor_of`]).
    pub fn blocking_lease(&self, now: OffsetDateTime, owner: &str) -> Option<&Lease> {
        self.active_lease(now)
            .filter(|l| !l.held_by_predecessor_of(owner))
    }
}

/// A worker's claim on an item for one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker that holds it (a process or Lambda instance; see `Worker::owner`).
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Lease {
    /// Whether this lease was taken by an earlier run of the same worker instance as `owner`:
    /// owners written `<instance>/<run>` (e.g. `serve@host:3000/<uuid>`) name an instance only
    /// one process can be at a time (one process listens on that port), so a lease of another
    /// run of it belongs to a process that died (SIGKILL, crash) and is taken over at once
    /// instead of waiting for it to expire.
    pub fn held_by_predecessor_of(&self, owner: &str) -> bool {
        is_earlier_run(&self.owner, owner)
    }
}

/// Whether the worker name `held` (`<instance>/<run>`) is another run of the instance `owner`
/// belongs to; names without an instance part never are (see [`Lease::held_by_predecessor_of`]).
pub fn is_earlier_run(held: &str, owner: &str) -> bool {
    match (held.rsplit_once('/'), owner.rsplit_once('/')) {
        (Some((held_instance, _)), Some((my_instance, _))) => {
            held_instance == my_instance && held != owner
        }
        _ => false,
    }
}

/// What [`Inbox::claim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the item now; the state as written (attempt counted, lease set).
    Claimed(ItemState),
    /// Another worker holds an unexpired lease: hands off.
    Busy(Lease),
    /// The item is done or given up: nothing to do.
    Finished(ItemStatus),
    /// No item with this id.
    NotFound,
}

/// A pending item as listed: its id and its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub id: DeliveryId,
    /// See [`thread_of`]; `None` when the event names no issue or pull request (or the item is
    /// unreadable): no ordering constraint. Shared text: every listing of a pending item
    /// points to the copy made when it was first listed.
    pub thread: Option<std::sync::Arc<str>>,
}

/// The thread an event belongs to, `<owner>/<repo>#<number>`, for events about one issue or pull
/// request (`issue_comment`, `issues`, `pull_request`, `pull_request_review`, …); `None` for the
/// rest (a `workflow_run` names its request only through its run name).
pub fn thread_of(event: &str, body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Repository {
        full_name: String,
    }
    #[derive(Deserialize)]
    struct Numbered {
        number: u64,
    }
    #[derive(Deserialize)]
    struct Probe {
        repository: Option<Repository>,
        issue: Option<Numbered>,
        pull_request: Option<Numbered>,
        number: Option<u64>,
    }
    if event == "workflow_run" {
        return None;
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    let number = probe
        .issue
        .map(|i| i.number)
        .or(probe.pull_request.map(|p| p.number))
        .or(probe.number)?;
    Some(format!("{}#{number}", probe.repository?.full_name))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending,
    Done,
    GaveUp,
}

impl ItemStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, ItemStatus::Pending)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("inbox: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("inbox item {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("inbox item {0} does not exist")]
    NotFound(DeliveryId),
    /// A storage backend's own error (S3, …).
    #[error("inbox: {operation}: {source}")]
    Backend {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Durable, deduplicating storage of deliveries.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Stores `delivery` unless an item with its id exists. Create-only and atomic: of concurrent
    /// puts of one id (from any number of processes) exactly one gets [`PutOutcome::Created`],
    /// and a reader never sees a half-written item.
    async fn put(&self, delivery: &Delivery) -> Result<PutOutcome, InboxError>;

    /// The item, or `None` if there is none with that id.
    async fn get(&self, id: &DeliveryId) -> Result<Option<InboxItem>, InboxError>;

    /// Pending items with their threads, oldest first (by [`Delivery::received_at`], then id).
    async fn pending_entries(&self) -> Result<Vec<PendingEntry>, InboxError>;

    /// Ids of pending items, oldest first (by [`Delivery::received_at`], then id).
    async fn pending(&self) -> Result<Vec<DeliveryId>, InboxError> {
        Ok(self
            .pending_entries()
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect())
    }

    /// Takes the item for one attempt by `owner`, for `ttl`: one conditional write that counts
    /// the attempt and sets the lease. Of concurrent claims (from any number of processes) at most
    /// one gets [`Claim::Claimed`]; a lease that expired is taken over.
    async fn claim(&self, id: &DeliveryId, owner: &str, ttl: Duration)
    -> Result<Claim, InboxError>;

    /// The attempt `owner` claimed failed: records `error` and releases `owner`'s lease (a lease
    /// another worker took over meanwhile is left alone). Returns the attempts counted so far. The
    /// item stays pending.
    async fn record_failure(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<u32, InboxError>;

    /// The handler succeeded: the item is finished and is never handed out again.
    async fn mark_done(&self, id: &DeliveryId) -> Result<(), InboxError>;

    /// The item will never succeed (attempts exhausted, unreadable payload): finished, kept for
    /// inspection with `reason`.
    async fn give_up(&self, id: &DeliveryId, reason: &str) -> Result<(), InboxError>;

    /// Number of pending items.
    async fn depth(&self) -> Result<usize, InboxError> {
        Ok(self.pending().await?.len())
    }

    /// Removes finished items that finished before `before`; returns how many. Pending items are
    /// never removed. A backend with native expiry (an S3 lifecycle rule) may do nothing here.
    async fn prune(&self, before: OffsetDateTime) -> Result<usize, InboxError>;
}

/// The inbox for a store location: a directory, or `inbox/` in the requests bucket (the S3 client
/// from the SDK's environment, path-style when `AWS_ENDPOINT_URL` is set).
pub async fn open(store: &StoreLocation) -> anyhow::Result<Arc<dyn Inbox>> {
    match store {
        StoreLocation::Fs(dir) => Ok(Arc::new(FsInbox::open(dir)?)),
        StoreLocation::S3 { bucket } => {
            let client = crate::store::s3_client_from_env(None).await;
            let objects = crate::store::S3Objects::new(client, bucket.clone());
            Ok(Arc::new(ObjectInbox::new(Arc::new(objects))))
        }
    }
}
