//! The request store: the system of record for requests, their thread index, their history,
//! their chat logs and their lifecycle events.
//!
//! Every write is a compare-and-swap, so two deliveries about one request processed at the same
//! moment (threads, processes, Lambda instances) can never lose an update:
//!
//! * [`RequestStore`] is the object-safe trait the app holds as `Arc<dyn RequestStore>`: `create`,
//!   `get`, `put_if_version`, `archive`, the thread index, `list`, chat and event logs.
//! * [`RequestStoreExt::update`] is the read–modify–write loop on top: it re-runs the closure on
//!   the current request after a conflict, with bounded retries and jittered backoff. The closure
//!   may refuse; its error comes back untouched in [`UpdateError::Refused`].
//! * [`ObjectStore`] implements the trait once over the [`Objects`] seam, which has two
//!   backends: [`FsObjects`] (the default, `fs://./data`) and [`S3Objects`].
//!
//! Layout, identical on both backends (see [`layout`]): `requests/<id>.json`,
//! `history/<id>.json`, `index/threads/<owner>/<repo>/<number>.json`, `events/<id>` (a log), and
//! in the chat-log bucket (or the `chat/` folder on fs) `chat/<id>` (a log). A log is a `.jsonl`
//! file on fs and a folder of one-object-per-record on S3.

mod audit;
pub mod aws_http;
pub mod fs;
pub mod layout;
mod location;
mod object_store;
pub mod objects;
pub mod s3;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{ChatTurn, LifecycleEvent, ListFilter, Request};
use crate::ids::{RepoName, RequestId};

pub use audit::{AuditReport, AuditState, audit, run_audit};
pub use fs::{FsObjects, FsStore};
pub use location::{StoreLocation, check_bucket_name};
pub use object_store::ObjectStore;
pub use objects::{ETag, Object, ObjectError, Objects};
pub use s3::{S3Objects, S3Store, s3_client_from_config, s3_client_from_env, s3_timeouts};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("request {0} does not exist")]
    NotFound(RequestId),
    #[error("request {0} already exists")]
    AlreadyExists(RequestId),
    /// The request changed since it was read (its version is no longer `version`), or was
    /// archived meanwhile. `update` retries these; a caller of the primitives re-reads.
    #[error("request {id} was changed by someone else since version {version} was read")]
    Conflict { id: RequestId, version: u64 },
    /// `update` gave up after this many conflicting attempts.
    #[error(
        "request {id} is being changed by others at the same time; gave up after {attempts} attempts, try again"
    )]
    Contended { id: RequestId, attempts: u32 },
    /// The issue or pull request already belongs to another active request.
    #[error("{repo}#{number} already has an active request ({existing})")]
    ThreadTaken {
        repo: RepoName,
        number: u64,
        existing: RequestId,
    },
    /// The thread is bound to a request that is still being created (its binding is younger than
    /// the create grace and the request not written yet): ask again shortly.
    #[error("{repo}#{number} is bound to request {id}, which is still being created; try again")]
    Creating {
        repo: RepoName,
        number: u64,
        id: RequestId,
    },
    /// A stored object that is not what TfPilot wrote: bad JSON, an unknown shape, a newer
    /// schema. Never papered over.
    #[error("{object} is not a valid TfPilot record: {reason}")]
    Corrupt { object: String, reason: String },
    /// A caller broke the store's rules (e.g. changed a request's id).
    #[error("invalid store operation: {0}")]
    Invalid(String),
    #[error(transparent)]
    Backend(#[from] ObjectError),
}

/// What [`RequestStore::record_comment`] keeps about a decided comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommentRecord {
    /// The request the comment was decided for (for a `new`, the one it opened).
    #[serde(default)]
    pub request: Option<RequestId>,
    /// The answer posted when the decision stored nothing (a denial, a parse error), posted again
    /// only if it is not on the thread.
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

/// A repository's requests dashboard: the issue TfPilot keeps it in (`None` while the one who
/// claimed the record opens it), a digest of the body it last wrote there (an unchanged body is
/// not written again), and a row per request it shows, so a refresh reads only the requests that
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DashboardRecord {
    #[serde(default)]
    pub issue: Option<u64>,
    #[serde(default)]
    pub digest: String,
    #[serde(with = "time::serde::rfc3339")]
    pub edited_at: time::OffsetDateTime,
    #[serde(default)]
    pub rows: std::collections::BTreeMap<RequestId, crate::domain::DashboardRow>,
    /// Closed because the repository turned its dashboard off (`dashboard: false`).
    #[serde(default)]
    pub off: bool,
}

/// A value as read from the store, with the tag its compare-and-swap needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    value: T,
    etag: ETag,
}

impl<T> Versioned<T> {
    pub fn new(value: T, etag: ETag) -> Self {
        Self { value, etag }
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn etag(&self) -> &ETag {
        &self.etag
    }

    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Versioned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The store of requests. Object-safe: the app holds an `Arc<dyn RequestStore>`.
/// Read–modify–write goes through [`RequestStoreExt::update`].
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Where the store is (`fs://./data`, `s3://bucket (chat logs: s3://other)`), for messages.
    fn location(&self) -> String;

    /// Stores a new request at version 1 and binds its issue thread (`repo#issue_number`) to it.
    /// [`StoreError::ThreadTaken`] if the issue already has an active request,
    /// [`StoreError::AlreadyExists`] if the id is taken.
    async fn create(&self, request: Request) -> Result<Versioned<Request>, StoreError>;

    /// The live request, or `None` (never created, or archived: see [`Self::get_archived`]).
    async fn get(&self, id: RequestId) -> Result<Option<Versioned<Request>>, StoreError>;

    /// Writes `next` if the stored request is still `current`; the store sets `version`
    /// (`current.version + 1`), `schema_version` and `updated_at`. [`StoreError::Conflict`]
    /// otherwise. A status change is recorded in the event log.
    async fn put_if_version(
        &self,
        current: &Versioned<Request>,
        next: Request,
    ) -> Result<Versioned<Request>, StoreError>;

    /// Moves the request to `history/<id>.json` (setting `archived_at`) if it is unchanged since
    /// `current` was read, and releases its issue and PR threads. [`StoreError::Conflict`] if it
    /// changed (or was archived by someone else) meanwhile: nothing is archived then.
    async fn archive(&self, current: &Versioned<Request>) -> Result<Request, StoreError>;

    /// An archived request.
    async fn get_archived(&self, id: RequestId) -> Result<Option<Request>, StoreError>;

    /// The live request bound to an issue or pull request thread, if any. A binding to a request
    /// that was never written counts as absent (and is removed) once older than the create
    /// grace; younger, it is a create in progress: [`StoreError::Creating`].
    async fn find_by_thread(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<Versioned<Request>>, StoreError>;

    /// Binds another thread (the request's pull request) to `id`. Idempotent;
    /// [`StoreError::ThreadTaken`] if an active request holds it. A binding whose request is
    /// terminal (cancelled, destroyed) or archived is taken over.
    async fn bind_thread(
        &self,
        repo: &RepoName,
        number: u64,
        id: RequestId,
    ) -> Result<(), StoreError>;

    /// Removes the binding of a thread if it points at `id`; `false` if it did not.
    async fn release_thread(
        &self,
        repo: &RepoName,
        number: u64,
        id: RequestId,
    ) -> Result<bool, StoreError>;

    /// Records, once, how the comment `comment_id` in `repo` was decided: for which request, or
    /// the answer given without one (a create-only record, kept after the request is archived). `None`: this call wrote it (the comment is
    /// new); otherwise the record as first written: the same signed comment replayed under
    /// another delivery id finds it and is not decided again.
    async fn record_comment(
        &self,
        repo: &RepoName,
        comment_id: u64,
        record: &CommentRecord,
    ) -> Result<Option<CommentRecord>, StoreError>;

    /// The record [`Self::record_comment`] wrote for a comment, if any.
    async fn comment_record(
        &self,
        repo: &RepoName,
        comment_id: u64,
    ) -> Result<Option<CommentRecord>, StoreError>;

    /// The requests dashboard of `repo`, with the tag [`Self::put_dashboard`] compares.
    async fn dashboard(
        &self,
        repo: &RepoName,
    ) -> Result<Option<(DashboardRecord, ETag)>, StoreError>;

    /// Writes the dashboard record of `repo`: create-only when `current` is `None`, else only if
    /// it is still the version `current` names. The new version's tag, or `None` when someone
    /// else wrote it first.
    async fn put_dashboard(
        &self,
        repo: &RepoName,
        record: &DashboardRecord,
        current: Option<&ETag>,
    ) -> Result<Option<ETag>, StoreError>;

    /// Requests matching `filter`, oldest first. Reads every request: meant for `status`
    /// commands and exports, not for hot paths.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Request>, StoreError>;

    /// Appends one conversation turn to the request's chat log.
    async fn append_chat(&self, id: RequestId, turn: &ChatTurn) -> Result<(), StoreError>;

    /// The request's chat log, in order.
    async fn chat(&self, id: RequestId) -> Result<Vec<ChatTurn>, StoreError>;

    /// Appends an event to the request's lifecycle event log. (The store already records
    /// creation, every status change and archiving.)
    async fn append_event(&self, event: &LifecycleEvent) -> Result<(), StoreError>;

    /// The request's lifecycle events, in order.
    async fn events(&self, id: RequestId) -> Result<Vec<LifecycleEvent>, StoreError>;
}

/// How [`RequestStoreExt::update`] retries after a conflict: up to `max_attempts` tries, sleeping
/// a random time in `[0, min(cap, base · 2^(attempt-1))]` between them ("full jitter"), so that
/// contending writers spread out instead of colliding again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 30,
            base: Duration::from_millis(2),
            cap: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The sleep before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.cap).as_micros() as u64;
        Duration::from_micros(rand::random_range(0..=ceiling))
    }
}

/// What [`RequestStoreExt::update`] did.
#[derive(Debug, Clone)]
pub struct Updated<T> {
    /// The request as stored now.
    pub request: Versioned<Request>,
    /// What the closure returned (on the attempt that was written).
    pub output: T,
    /// Attempts made: 1 without contention; `attempts - 1` conflicts were retried.
    pub attempts: u32,
    /// `false` when the closure changed nothing, so nothing was written.
    pub written: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The closure refused the change; nothing was written.
    #[error(transparent)]
    Refused(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Read–modify–write on any [`RequestStore`] (including `dyn RequestStore`).
pub trait RequestStoreExt: RequestStore {
    /// Applies `change` to the current request and writes it with compare-and-swap; on a
    /// conflict, re-reads and re-applies (so `change` must be a function of the request it is
    /// given). If `change` returns an error, nothing is written and the error is returned as
    /// [`UpdateError::Refused`]. If it changes nothing, nothing is written (`written: false`).
    fn update<T, E, F>(
        &self,
        id: RequestId,
        change: F,
    ) -> impl Future<Output = Result<Updated<T>, UpdateError<E>>> + Send
    where
        F: FnMut(&mut Request) -> Result<T, E> + Send,
        T: Send,
        E: Send,
    {
        self.update_with(id, RetryPolicy::default(), change)
    }

    /// [`Self::update`] with an explicit retry policy.
    fn update_with<T, E, F>(
        &self,
        id: RequestId,
        policy: RetryPolicy,
        mut change: F,
    ) -> impl Future<Output = Result<Updated<T>, UpdateError<E>>> + Send
    where
        F: FnMut(&mut Request) -> Result<T, E> + Send,
        T: Send,
        E: Send,
    {
        async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let current = self.get(id).await?.ok_or(StoreError::NotFound(id))?;
                let mut next = current.value().clone();
                let output = change(&mut next).map_err(UpdateError::Refused)?;
                if next == *current.value() {
                    return Ok(Updated {
                        request: current,
                        output,
                        attempts: attempt,
                        written: false,
                    });
                }
                match self.put_if_version(&current, next).await {
                    Ok(request) => {
                        if attempt > 1 {
                            metrics::counter!("tfpilot_store_update_retries_total")
                                .increment(u64::from(attempt - 1));
                        }
                        return Ok(Updated {
                            request,
                            output,
                            attempts: attempt,
                            written: true,
                        });
                    }
                    Err(StoreError::Conflict { .. }) if attempt < policy.max_attempts => {
                        tokio::time::sleep(policy.backoff(attempt)).await;
                    }
                    Err(StoreError::Conflict { .. }) => {
                        metrics::counter!("tfpilot_store_update_gave_up_total").increment(1);
                        return Err(StoreError::Contended {
                            id,
                            attempts: attempt,
                        }
                        .into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

impl<S: RequestStore + ?Sized> RequestStoreExt for S {}

/// Opens the store a location names: `fs://<dir>` or `s3://<bucket>`. On S3, chat logs go to
/// `chat_bucket`, which must be set and differ from the requests bucket; on fs they go to
/// `<dir>/chat/` and `chat_bucket` is not used. The S3 client comes from
/// [`s3_client_from_env`].
pub async fn open_store(
    url: &str,
    chat_bucket: Option<&str>,
) -> anyhow::Result<Arc<dyn RequestStore>> {
    let location = StoreLocation::parse(url).map_err(|e| anyhow::anyhow!(e))?;
    open(&location, chat_bucket).await
}

/// Opens the request store at `location`; on S3 the chat logs go to `chat_bucket`.
pub async fn open(
    location: &StoreLocation,
    chat_bucket: Option<&str>,
) -> anyhow::Result<Arc<dyn RequestStore>> {
    match location {
        StoreLocation::Fs(dir) => Ok(Arc::new(FsStore::open(dir)?)),
        StoreLocation::S3 { bucket } => {
            let chat_bucket = chat_bucket.filter(|b| !b.is_empty()).ok_or_else(|| {
                anyhow::anyhow!(
                    "the store is on S3 ({location}) but no chat-log bucket is set: set \
                     TFPILOT_CHAT_LOGS_BUCKET (chat logs are never written to the requests bucket)"
                )
            })?;
            anyhow::ensure!(
                chat_bucket != bucket,
                "TFPILOT_CHAT_LOGS_BUCKET must differ from the requests bucket `{bucket}`: chat \
                 logs are never written to the requests bucket"
            );
            let client = s3_client_from_env(None).await;
            Ok(Arc::new(S3Store::new(client, bucket, chat_bucket)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RequestStatus;

    #[test]
    fn backoff_stays_within_its_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(2),
            cap: Duration::from_millis(50),
        };
        for attempt in 1..40 {
            let ceiling = (Duration::from_millis(2) * 2u32.pow((attempt - 1).min(20)))
                .min(Duration::from_millis(50));
            for _ in 0..20 {
                assert!(policy.backoff(attempt) <= ceiling, "attempt {attempt}");
            }
        }
    }

    #[test]
    fn list_filter_matches_on_every_field() {
        let now = time::OffsetDateTime::now_utc();
        let mut r = Request::new(
            RequestId::new_random(),
            "acme/infra".parse().unwrap(),
            1,
            "octocat",
            "s3-bucket",
            now,
        );
        r.environment = Some("dev".into());
        r.project = Some("billing".into());
        assert!(ListFilter::default().matches(&r));
        let f = |edit: fn(&mut ListFilter)| {
            let mut filter = ListFilter::default();
            edit(&mut filter);
            filter.matches(&r)
        };
        assert!(f(
            |f| f.statuses = vec![RequestStatus::Collecting, RequestStatus::Ready]
        ));
        assert!(!f(|f| f.statuses = vec![RequestStatus::Ready]));
        assert!(f(|f| f.environment = Some("dev".into())));
        assert!(!f(|f| f.environment = Some("prod".into())));
        assert!(f(|f| f.module_type = Some("s3-bucket".into())));
        assert!(!f(|f| f.module_type = Some("sqs-queue".into())));
        assert!(f(|f| f.project = Some("billing".into())));
        assert!(!f(|f| f.project = Some("search".into())));
        assert!(!f(|f| f.repo = Some("acme/other".parse().unwrap())));
    }

    #[tokio::test]
    async fn open_store_refuses_bad_locations_with_a_reason() {
        for (url, chat, expected) in [
            ("ftp://x", None, "not a store location"),
            ("fs://", None, "names no directory"),
            ("s3://", Some("chat"), "not a bucket location"),
            ("s3://reqs", None, "TFPILOT_CHAT_LOGS_BUCKET"),
            ("s3://reqs", Some("reqs"), "must differ"),
        ] {
            let err = open_store(url, chat).await.err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(expected)),
                "{url}: {err:?}"
            );
        }
    }
}
