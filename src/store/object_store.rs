//! [`RequestStore`] written once over the [`Objects`] seam; [`super::FsStore`] and
//! [`super::S3Store`] are this type on their backend.
//!
//! Operations that touch several objects are sequences of single-object compare-and-swaps,
//! ordered so that a crash between two steps leaves a state the next operation repairs:
//!
//! * create: bind the thread, then create the request, then check that the binding is still
//!   ours (a create slower than [`STALE_BINDING`] may have been taken over: its request is
//!   removed again). A binding left by a crash in between names a request that does not exist;
//!   readers are told to come back while it is younger than [`STALE_BINDING`]
//!   ([`StoreError::Creating`]), and after that it counts as absent: a reader removes it and a
//!   new request takes it over. (The executor lets the `new` that made such a binding go on at
//!   once: its comment record names the request.) A create whose write fails releases the
//!   binding it made only when no request of this thread has its id: another delivery of the
//!   same comment may have created it meanwhile.
//! * a write refused or failed after it may have landed (its answer lost, the client retrying it)
//!   is checked against the stored bytes: if they are what this call sent, the write succeeded.
//! * archive: put `history/<id>.json`, then delete `requests/<id>.json` if unchanged, then release
//!   the threads. If the delete is refused the history copy is removed again; a crash before the
//!   delete leaves the request live with a stale copy in history, which the next archive replaces.
//!   A binding left pointing at an archived request is taken over.
//! * event log: appended after the write it describes succeeded; the request's own `timeline`
//!   is authoritative, the log is its queryable, append-only trail.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::layout::{self, HISTORY, REQUESTS};
use super::objects::{ETag, ObjectError, Objects};
use super::{CommentRecord, DashboardRecord, RequestStore, RetryPolicy, StoreError, Versioned};
use crate::domain::{ChatTurn, LifecycleEvent, ListFilter, Request, SCHEMA_VERSION, TimelineEntry};
use crate::ids::{RepoName, RequestId};

/// A thread binding whose request was never created (a crash between the two steps of
/// `create`) counts as absent after this long: far longer than the two writes of a create take.
pub const STALE_BINDING: Duration = Duration::from_secs(60);

/// How often the thread-index loops retry a conflicting write before giving up.
const INDEX_ATTEMPTS: u32 = 10;

/// The request store over one [`Objects`] backend: records (requests, history, index, events)
/// in one place, chat logs in another (another bucket; the same directory on fs).
#[derive(Debug, Clone)]
pub struct ObjectStore<O> {
    records: O,
    chat: O,
}

/// `index/threads/<owner>/<repo>/<number>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ThreadBinding {
    request_id: RequestId,
    #[serde(with = "time::serde::rfc3339")]
    bound_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// This call wrote the binding.
    Now,
    /// It already pointed at the request.
    Already,
}

impl<O: Objects> ObjectStore<O> {
    /// A store on `records` (requests, index, events, history) and `chat` (chat logs): any
    /// backend of the object seam (tests wrap the S3 one to serialize conditional writes).
    pub fn from_parts(records: O, chat: O) -> Self {
        Self { records, chat }
    }

    /// The backend holding requests, history, the index, events (and the inbox).
    pub fn records(&self) -> &O {
        &self.records
    }

    /// The backend holding chat logs.
    pub fn chat_objects(&self) -> &O {
        &self.chat
    }

    fn corrupt(&self, object: String, reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            object,
            reason: reason.to_string(),
        }
    }

    fn decode_request(&self, key: &str, body: &[u8]) -> Result<Request, StoreError> {
        let object = || self.records.describe(key);
        let request: Request =
            serde_json::from_slice(body).map_err(|e| self.corrupt(object(), e))?;
        if request.schema_version > SCHEMA_VERSION {
            return Err(self.corrupt(
                object(),
                format!(
                    "schema_version {} was written by a newer TfPilot (this one understands up to {SCHEMA_VERSION}); upgrade before using this store",
                    request.schema_version
                ),
            ));
        }
        let expected = [REQUESTS, HISTORY]
            .iter()
            .find_map(|prefix| layout::request_id_of(prefix, key));
        if expected.is_some_and(|id| id != request.id) {
            return Err(self.corrupt(
                object(),
                format!("it holds request {} under another id's name", request.id),
            ));
        }
        Ok(request)
    }

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec_pretty(value)
            .map_err(|e| StoreError::Invalid(format!("cannot serialize: {e}")))
    }

    fn encode_line<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| StoreError::Invalid(format!("cannot serialize: {e}")))
    }

    /// Whether a write that was answered with a refusal or an error landed after all: the
    /// stored object is byte for byte the one this call sent. It happens when the answer to a
    /// successful write is lost and the client sends it again (the AWS SDK retries 5xx answers and
    /// network failures by itself): the repeat is refused by the condition the first one changed.
    /// Every request body carries its new `version` and a nanosecond `updated_at`, so equal bytes
    /// mean this very write. `Err` when that cannot be checked.
    async fn landed(&self, key: &str, body: &[u8]) -> Result<Option<ETag>, StoreError> {
        Ok(self
            .records
            .get(key)
            .await?
            .filter(|stored| stored.body == body)
            .map(|stored| stored.etag))
    }

    async fn read_request(&self, key: &str) -> Result<Option<Versioned<Request>>, StoreError> {
        match self.records.get(key).await? {
            None => Ok(None),
            Some(object) => {
                let request = self.decode_request(key, &object.body)?;
                Ok(Some(Versioned::new(request, object.etag)))
            }
        }
    }

    async fn read_binding(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<(ThreadBinding, ETag)>, StoreError> {
        let key = layout::thread_key(repo, number);
        match self.records.get(&key).await? {
            None => Ok(None),
            Some(object) => {
                let binding: ThreadBinding = serde_json::from_slice(&object.body)
                    .map_err(|e| self.corrupt(self.records.describe(&key), e))?;
                Ok(Some((binding, object.etag)))
            }
        }
    }

    /// Whether a binding no longer protects its thread: its request is terminal or archived, or
    /// it was never created and the binding is older than [`STALE_BINDING`].
    async fn binding_is_stale(&self, binding: &ThreadBinding) -> Result<bool, StoreError> {
        let id = binding.request_id;
        if let Some(live) = self.read_request(&layout::request_key(id)).await? {
            return Ok(live.status.is_terminal());
        }
        if self.records.get(&layout::history_key(id)).await?.is_some() {
            return Ok(true);
        }
        Ok(OffsetDateTime::now_utc() - binding.bound_at > STALE_BINDING)
    }

    async fn bind(&self, repo: &RepoName, number: u64, id: RequestId) -> Result<Bound, StoreError> {
        let key = layout::thread_key(repo, number);
        let policy = RetryPolicy::default();
        for attempt in 1..=INDEX_ATTEMPTS {
            let body = Self::encode(&ThreadBinding {
                request_id: id,
                bound_at: OffsetDateTime::now_utc(),
            })?;
            let written = match self.read_binding(repo, number).await? {
                None => self.records.put_if_absent(&key, body).await,
                Some((binding, _)) if binding.request_id == id => return Ok(Bound::Already),
                Some((binding, etag)) => {
                    if !self.binding_is_stale(&binding).await? {
                        return Err(StoreError::ThreadTaken {
                            repo: repo.clone(),
                            number,
                            existing: binding.request_id,
                        });
                    }
                    self.records.put_if_match(&key, body, &etag).await
                }
            };
            match written {
                Ok(_) => return Ok(Bound::Now),
                Err(ObjectError::Conflict { .. }) => {
                    tokio::time::sleep(policy.backoff(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contended {
            id,
            attempts: INDEX_ATTEMPTS,
        })
    }

    async fn unbind(
        &self,
        repo: &RepoName,
        number: u64,
        id: RequestId,
    ) -> Result<bool, StoreError> {
        let key = layout::thread_key(repo, number);
        let policy = RetryPolicy::default();
        for attempt in 1..=INDEX_ATTEMPTS {
            match self.read_binding(repo, number).await? {
                Some((binding, etag)) if binding.request_id == id => {
                    match self.records.delete_if_match(&key, &etag).await {
                        Ok(()) => return Ok(true),
                        Err(ObjectError::Conflict { .. }) => {
                            tokio::time::sleep(policy.backoff(attempt)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => return Ok(false),
            }
        }
        Err(StoreError::Contended {
            id,
            attempts: INDEX_ATTEMPTS,
        })
    }

    /// Records an event after the write it describes. The write already happened, so a failure
    /// here is reported in the log and metrics, not to the caller (who would retry the write).
    async fn emit(&self, event: LifecycleEvent) {
        if let Err(e) = self.append_event(&event).await {
            metrics::counter!("tfpilot_store_event_log_failures_total").increment(1);
            tracing::error!(
                request_id = %event.request_id,
                kind = %event.kind,
                error = %e,
                "could not append to the lifecycle event log"
            );
        }
    }

    async fn release_threads(&self, request: &Request) {
        let mut threads = vec![request.issue_number];
        threads.extend(request.pull_request.as_ref().map(|pr| pr.number));
        for number in threads {
            // A binding left behind is taken over later (its request is archived), so a failure
            // here does not undo the archive.
            if let Err(e) = self.unbind(&request.repo, number, request.id).await {
                tracing::warn!(
                    request_id = %request.id,
                    thread = %format!("{}#{number}", request.repo),
                    error = %e,
                    "could not release a thread of an archived request"
                );
            }
        }
    }

    async fn list_under(
        &self,
        prefix: &str,
        filter: &ListFilter,
        seen: &mut BTreeSet<RequestId>,
        out: &mut BTreeMap<RequestId, Request>,
    ) -> Result<(), StoreError> {
        for key in self.records.list(prefix).await? {
            let Some(id) = layout::request_id_of(prefix, &key) else {
                tracing::warn!(object = %self.records.describe(&key), "not a request object; ignored");
                continue;
            };
            if seen.contains(&id) {
                // Live and in history (an interrupted archive): the live one is current, whether
                // or not it matches the filter.
                continue;
            }
            // Gone between list and get (archived meanwhile): not an error.
            if let Some(object) = self.records.get(&key).await? {
                seen.insert(id);
                let request = self.decode_request(&key, &object.body)?;
                if filter.matches(&request) {
                    out.insert(id, request);
                }
            }
        }
        Ok(())
    }

    fn decode_lines<T: for<'de> Deserialize<'de>>(
        &self,
        records: Vec<super::objects::LogRecord>,
    ) -> Result<Vec<T>, StoreError> {
        records
            .into_iter()
            .map(|r| serde_json::from_slice(&r.body).map_err(|e| self.corrupt(r.origin, e)))
            .collect()
    }
}

fn newest_entry_since<'a>(current: &Request, next: &'a Request) -> Option<&'a TimelineEntry> {
    next.timeline.get(current.timeline.len()..)?.last()
}

#[async_trait]
impl<O: Objects> RequestStore for ObjectStore<O> {
    fn location(&self) -> String {
        let (records, chat) = (self.records.location(), self.chat.location());
        if records == chat {
            records
        } else {
            format!("{records} (chat logs: {chat})")
        }
    }

    async fn create(&self, mut request: Request) -> Result<Versioned<Request>, StoreError> {
        let id = request.id;
        request.version = 1;
        request.schema_version = SCHEMA_VERSION;
        request.updated_at = OffsetDateTime::now_utc();
        request.archived_at = None;
        let body = Self::encode(&request)?;
        let bound = self.bind(&request.repo, request.issue_number, id).await?;
        let key = layout::request_key(id);
        let created = self.records.put_if_absent(&key, body.clone()).await;
        let etag = match created {
            Ok(etag) => {
                // A create that took longer than the grace may have lost its binding meanwhile:
                // then the thread is another request's, and this one must not stay live.
                if let Err(e) = self.bind(&request.repo, request.issue_number, id).await {
                    if matches!(e, StoreError::ThreadTaken { .. }) {
                        let _ = self.records.delete_if_match(&key, &etag).await;
                    }
                    return Err(e);
                }
                etag
            }
            Err(e) => {
                let stored = self.records.get(&key).await;
                match stored {
                    Ok(Some(stored)) if stored.body == body => stored.etag, // landed after all
                    _ => {
                        // Release the thread only when it is known that no request of this
                        // thread has this id: a binding left behind is taken over once stale,
                        // but a request left without its binding would let a second request
                        // open on the same thread. (The request another delivery of the same
                        // comment created under this id meanwhile keeps the binding.)
                        let another_threads = |body: &[u8]| {
                            // Unreadable (a newer schema, say): not known to be another's.
                            self.decode_request(&key, body).is_ok_and(|r| {
                                r.repo != request.repo || r.issue_number != request.issue_number
                            })
                        };
                        let release = match &stored {
                            Ok(None) => true,
                            Ok(Some(other)) => another_threads(&other.body),
                            Err(_) => false,
                        };
                        if bound == Bound::Now && release {
                            let _ = self.unbind(&request.repo, request.issue_number, id).await;
                        }
                        return Err(match e {
                            ObjectError::Conflict { .. } => StoreError::AlreadyExists(id),
                            other => other.into(),
                        });
                    }
                }
            }
        };
        let first = request.timeline.last();
        self.emit(LifecycleEvent {
            at: request.updated_at,
            request_id: id,
            version: 1,
            kind: "created".into(),
            from: None,
            to: Some(request.status),
            actor: Some(request.requester.clone()),
            cause: first.map(|e| e.event.clone()),
            detail: first.and_then(|e| e.detail.clone()),
        })
        .await;
        Ok(Versioned::new(request, etag))
    }

    async fn get(&self, id: RequestId) -> Result<Option<Versioned<Request>>, StoreError> {
        self.read_request(&layout::request_key(id)).await
    }

    async fn put_if_version(
        &self,
        current: &Versioned<Request>,
        mut next: Request,
    ) -> Result<Versioned<Request>, StoreError> {
        let id = current.id;
        if next.id != id {
            return Err(StoreError::Invalid(format!(
                "request {id} cannot be rewritten as request {}",
                next.id
            )));
        }
        next.version = current.version + 1;
        next.schema_version = SCHEMA_VERSION;
        next.updated_at = OffsetDateTime::now_utc();
        let body = Self::encode(&next)?;
        let key = layout::request_key(id);
        let etag = match self
            .records
            .put_if_match(&key, body.clone(), current.etag())
            .await
        {
            Ok(etag) => etag,
            // A refused repeat of a write that landed is a success: reporting a conflict would
            // make `update` apply the change a second time on top of itself.
            Err(e) => match self.landed(&key, &body).await {
                Ok(Some(etag)) => etag,
                _ if e.is_conflict() => {
                    return Err(StoreError::Conflict {
                        id,
                        version: current.version,
                    });
                }
                _ => return Err(e.into()),
            },
        };
        if next.status != current.status {
            let entry = newest_entry_since(current, &next);
            self.emit(LifecycleEvent {
                at: next.updated_at,
                request_id: id,
                version: next.version,
                kind: "status_changed".into(),
                from: Some(current.status),
                to: Some(next.status),
                actor: entry.map(|e| e.actor.clone()),
                cause: entry.map(|e| e.event.clone()),
                detail: entry.and_then(|e| e.detail.clone()),
            })
            .await;
        }
        Ok(Versioned::new(next, etag))
    }

    async fn archive(&self, current: &Versioned<Request>) -> Result<Request, StoreError> {
        let id = current.id;
        let conflict = || StoreError::Conflict {
            id,
            version: current.version,
        };
        let (key, history_key) = (layout::request_key(id), layout::history_key(id));
        let mut archived = current.value().clone();
        archived.archived_at = Some(OffsetDateTime::now_utc());
        let body = Self::encode(&archived)?;

        // 1. The history copy: new, or replacing an older copy left by an interrupted archive.
        let history_etag = match self.records.put_if_absent(&history_key, body.clone()).await {
            Ok(etag) => etag,
            Err(ObjectError::Conflict { .. }) => {
                let Some(existing) = self.records.get(&history_key).await? else {
                    return Err(conflict());
                };
                let old = self.decode_request(&history_key, &existing.body)?;
                if old.version > current.version {
                    return Err(conflict());
                }
                if old.version == current.version {
                    // This very version is already in history (archived by someone else, or an
                    // interrupted archive): keep that copy and its `archived_at`.
                    archived = old;
                    existing.etag
                } else {
                    self.records
                        .put_if_match(&history_key, body, &existing.etag)
                        .await
                        .map_err(|e| {
                            if e.is_conflict() {
                                conflict()
                            } else {
                                e.into()
                            }
                        })?
                }
            }
            Err(e) => return Err(e.into()),
        };

        // 2. The live object goes only if nobody changed it since `current` was read.
        match self.records.delete_if_match(&key, current.etag()).await {
            Ok(()) => {}
            Err(ObjectError::Conflict { .. }) => {
                // Still live: it was updated, so our history copy is stale; take it back.
                // (Gone: someone else archived it, and history holds their copy or ours.)
                if self.records.get(&key).await?.is_some()
                    && let Err(e) = self
                        .records
                        .delete_if_match(&history_key, &history_etag)
                        .await
                    && !e.is_conflict()
                {
                    tracing::warn!(request_id = %id, error = %e, "could not remove a stale history copy");
                }
                return Err(conflict());
            }
            Err(e) => return Err(e.into()),
        }

        // 3. The threads are free again.
        self.release_threads(&archived).await;
        self.emit(LifecycleEvent {
            at: archived.archived_at.unwrap_or_else(OffsetDateTime::now_utc),
            request_id: id,
            version: archived.version,
            kind: "archived".into(),
            from: Some(archived.status),
            to: Some(archived.status),
            actor: None,
            cause: None,
            detail: None,
        })
        .await;
        Ok(archived)
    }

    async fn get_archived(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        Ok(self
            .read_request(&layout::history_key(id))
            .await?
            .map(Versioned::into_inner))
    }

    async fn find_by_thread(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<Versioned<Request>>, StoreError> {
        let Some((binding, etag)) = self.read_binding(repo, number).await? else {
            return Ok(None);
        };
        if let Some(live) = self.get(binding.request_id).await? {
            return Ok(Some(live));
        }
        if self
            .records
            .get(&layout::history_key(binding.request_id))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        if OffsetDateTime::now_utc() - binding.bound_at <= STALE_BINDING {
            return Err(StoreError::Creating {
                repo: repo.clone(),
                number,
                id: binding.request_id,
            });
        }
        // Left by a crash inside `create`: the thread has no request; the binding goes.
        let key = layout::thread_key(repo, number);
        match self.records.delete_if_match(&key, &etag).await {
            Ok(()) => {
                tracing::warn!(thread = %format!("{repo}#{number}"), request = %binding.request_id, "removed a thread binding to a request that was never created");
            }
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }

    async fn bind_thread(
        &self,
        repo: &RepoName,
        number: u64,
        id: RequestId,
    ) -> Result<(), StoreError> {
        self.bind(repo, number, id).await.map(|_| ())
    }

    async fn release_thread(
        &self,
        repo: &RepoName,
        number: u64,
        id: RequestId,
    ) -> Result<bool, StoreError> {
        self.unbind(repo, number, id).await
    }

    async fn record_comment(
        &self,
        repo: &RepoName,
        comment_id: u64,
        record: &CommentRecord,
    ) -> Result<Option<CommentRecord>, StoreError> {
        let key = layout::comment_key(repo, comment_id);
        match self
            .records
            .put_if_absent(&key, Self::encode(record)?)
            .await
        {
            Ok(_) => Ok(None),
            Err(ObjectError::Conflict { .. }) => match self.comment_record(repo, comment_id).await?
            {
                Some(first) => Ok(Some(first)),
                None => Err(StoreError::Invalid(format!(
                    "{} was refused as existing and then not found (nothing removes it)",
                    self.records.describe(&key)
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn comment_record(
        &self,
        repo: &RepoName,
        comment_id: u64,
    ) -> Result<Option<CommentRecord>, StoreError> {
        let key = layout::comment_key(repo, comment_id);
        match self.records.get(&key).await? {
            None => Ok(None),
            Some(object) => serde_json::from_slice(&object.body)
                .map(Some)
                .map_err(|e| self.corrupt(self.records.describe(&key), e)),
        }
    }

    async fn dashboard(
        &self,
        repo: &RepoName,
    ) -> Result<Option<(DashboardRecord, ETag)>, StoreError> {
        let key = layout::dashboard_key(repo);
        match self.records.get(&key).await? {
            None => Ok(None),
            Some(object) => serde_json::from_slice(&object.body)
                .map(|record| Some((record, object.etag)))
                .map_err(|e| self.corrupt(self.records.describe(&key), e)),
        }
    }

    async fn put_dashboard(
        &self,
        repo: &RepoName,
        record: &DashboardRecord,
        current: Option<&ETag>,
    ) -> Result<Option<ETag>, StoreError> {
        let key = layout::dashboard_key(repo);
        let body = Self::encode(record)?;
        let written = match current {
            None => self.records.put_if_absent(&key, body.clone()).await,
            Some(etag) => self.records.put_if_match(&key, body.clone(), etag).await,
        };
        match written {
            Ok(etag) => Ok(Some(etag)),
            // A lost answer to a write that landed is refused when repeated: it is ours if the
            // stored bytes are the ones sent (`edited_at` has nanoseconds).
            Err(ObjectError::Conflict { .. }) => self.landed(&key, &body).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Request>, StoreError> {
        let (mut seen, mut found) = (BTreeSet::new(), BTreeMap::new());
        self.list_under(REQUESTS, filter, &mut seen, &mut found)
            .await?;
        if filter.include_archived {
            self.list_under(HISTORY, filter, &mut seen, &mut found)
                .await?;
        }
        let mut requests: Vec<Request> = found.into_values().collect();
        requests.sort_by_key(|r| (r.created_at, r.id));
        Ok(requests)
    }

    async fn append_chat(&self, id: RequestId, turn: &ChatTurn) -> Result<(), StoreError> {
        let line = Self::encode_line(turn)?;
        Ok(self.chat.append(&layout::chat_log(id), line).await?)
    }

    async fn chat(&self, id: RequestId) -> Result<Vec<ChatTurn>, StoreError> {
        let records = self.chat.read_log(&layout::chat_log(id)).await?;
        self.decode_lines(records)
    }

    async fn append_event(&self, event: &LifecycleEvent) -> Result<(), StoreError> {
        let line = Self::encode_line(event)?;
        Ok(self
            .records
            .append(&layout::events_log(event.request_id), line)
            .await?)
    }

    async fn events(&self, id: RequestId) -> Result<Vec<LifecycleEvent>, StoreError> {
        let records = self.records.read_log(&layout::events_log(id)).await?;
        self.decode_lines(records)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::domain::RequestStatus;
    use crate::store::RequestStoreExt;
    use crate::store::fs::FsObjects;
    use crate::store::objects::{LogRecord, Object};

    /// An S3 whose answer to a write got lost: the write landed, the client (the AWS SDK retries
    /// 5xx and network failures by itself) sent it again, and the repeat was refused by the
    /// condition the first one had just changed.
    #[derive(Debug)]
    struct LostAnswer {
        inner: FsObjects,
        armed: AtomicBool,
        /// The next request created is created first, under the same id, by another writer
        /// (another delivery of the same comment), just before this one's write.
        beaten: AtomicBool,
        /// The same, by a writer whose request this build cannot read (a newer schema).
        beaten_unreadably: AtomicBool,
    }

    impl LostAnswer {
        fn fire(&self) -> bool {
            self.armed.swap(false, Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Objects for LostAnswer {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn describe(&self, key: &str) -> String {
            self.inner.describe(key)
        }
        async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
            self.inner.get(key).await
        }
        async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<ETag, ObjectError> {
            if key.starts_with(REQUESTS) && self.beaten.swap(false, Ordering::SeqCst) {
                let mut theirs: Request = serde_json::from_slice(&body).unwrap();
                theirs.updated_at += time::Duration::nanoseconds(1);
                self.inner
                    .put_if_absent(key, serde_json::to_vec(&theirs).unwrap())
                    .await?;
            }
            if key.starts_with(REQUESTS) && self.beaten_unreadably.swap(false, Ordering::SeqCst) {
                let theirs = br#"{"schema_version":999,"shape":"unknown"}"#.to_vec();
                self.inner.put_if_absent(key, theirs).await?;
            }
            let written = self.inner.put_if_absent(key, body.clone()).await?;
            if key.starts_with(REQUESTS) && self.fire() {
                return self.inner.put_if_absent(key, body).await;
            }
            Ok(written)
        }
        async fn put_if_match(
            &self,
            key: &str,
            body: Vec<u8>,
            etag: &ETag,
        ) -> Result<ETag, ObjectError> {
            let written = self.inner.put_if_match(key, body.clone(), etag).await?;
            if key.starts_with(REQUESTS) && self.fire() {
                return self.inner.put_if_match(key, body, etag).await;
            }
            Ok(written)
        }
        async fn delete_if_match(&self, key: &str, etag: &ETag) -> Result<(), ObjectError> {
            self.inner.delete_if_match(key, etag).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
            self.inner.list(prefix).await
        }
        async fn append(&self, log: &str, record: Vec<u8>) -> Result<(), ObjectError> {
            self.inner.append(log, record).await
        }
        async fn read_log(&self, log: &str) -> Result<Vec<LogRecord>, ObjectError> {
            self.inner.read_log(log).await
        }
    }

    fn store(dir: &std::path::Path) -> ObjectStore<LostAnswer> {
        let objects = || LostAnswer {
            inner: FsObjects::open(dir).unwrap(),
            armed: AtomicBool::new(false),
            beaten: AtomicBool::new(false),
            beaten_unreadably: AtomicBool::new(false),
        };
        ObjectStore::from_parts(objects(), objects())
    }

    fn request() -> Request {
        let mut r = Request::new(
            RequestId::new_random(),
            "acme/infra".parse().unwrap(),
            7,
            "octocat",
            "s3-bucket",
            OffsetDateTime::now_utc(),
        );
        r.status = RequestStatus::Collecting;
        r
    }

    /// Two deliveries of one `new` create its request under one id (the second after the first
    /// bound the thread and stalled): the one that loses the create leaves the binding to the
    /// request the other created.
    #[tokio::test]
    async fn a_create_beaten_to_its_own_id_keeps_the_thread_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let r = request();
        let (repo, id) = (r.repo.clone(), r.id);
        store.records.beaten.store(true, Ordering::SeqCst);
        let err = store.create(r).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists(x) if x == id),
            "{err:?}"
        );
        let found = store.find_by_thread(&repo, 7).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(id), "the thread lost its binding");
    }

    /// Beaten to its id by a request it cannot read, a create keeps the binding too: not known
    /// to be another thread's.
    #[tokio::test]
    async fn a_create_beaten_by_an_unreadable_request_keeps_the_thread_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let r = request();
        let (repo, id) = (r.repo.clone(), r.id);
        store
            .records
            .beaten_unreadably
            .store(true, Ordering::SeqCst);
        let err = store.create(r).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists(x) if x == id),
            "{err:?}"
        );
        let binding = store
            .records
            .get(&layout::thread_key(&repo, 7))
            .await
            .unwrap();
        assert!(binding.is_some(), "the thread lost its binding");
    }

    #[tokio::test]
    async fn an_update_whose_answer_was_lost_is_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let id = store.create(request()).await.unwrap().id;
        store.records.armed.store(true, Ordering::SeqCst);
        let done = store
            .update(id, |r| {
                r.revision += 1;
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();
        let stored = store.get(id).await.unwrap().unwrap();
        assert_eq!(stored.revision, 1, "the increment was applied twice");
        assert_eq!(stored.version, 2);
        assert_eq!(done.request.etag(), stored.etag());
        assert_eq!(done.attempts, 1);
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_keeps_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.records.armed.store(true, Ordering::SeqCst);
        let r = request();
        let (id, repo) = (r.id, r.repo.clone());
        let created = store.create(r).await.expect("the request was created");
        assert_eq!(created.version, 1);
        let found = store.find_by_thread(&repo, 7).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(id), "the thread lost its request");
        assert_eq!(
            store.get(id).await.unwrap().map(|r| r.etag().clone()),
            Some(created.etag().clone())
        );
    }
}
