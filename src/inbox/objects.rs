//! The inbox on the store's object seam ([`crate::store::objects::Objects`]): how the S3 inbox
//! works, and it runs on the filesystem seam too (the conformance suite checks both).
//!
//! Layout (the Lambda worker is triggered by `inbox/*.json` only, so progress lives elsewhere):
//! * `inbox/<delivery>.json` — the [`Delivery`], created once (`If-None-Match: *`) and never
//!   changed: a second put of the same id is a [`PutOutcome::Duplicate`];
//! * `inbox-state/<delivery>.json` — the [`ItemState`] once the item was claimed (absent: pending,
//!   never tried): attempts, last error and the lease `{owner, expires_at}`, changed only by
//!   compare-and-swap (`If-None-Match: *` for the first claim, `If-Match: <etag>` after), so of
//!   two racing claims S3 lets one write and refuses the other;
//! * `inbox-done/<delivery>.json` — present once the item is finished (done or given up), with
//!   the time, so `pending` is two listings and a read of each pending item only. It is written
//!   after the finished state; a finisher that stopped in between (killed, or the marker write
//!   failed) is completed by the next [`Inbox::get`] of the item (the worker's first read).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Claim, Delivery, Inbox, InboxError, InboxItem, ItemState, ItemStatus, Lease, PendingEntry,
    PutOutcome, thread_of,
};
use crate::ids::DeliveryId;
use crate::store::objects::{ObjectError, Objects};

const ITEMS: &str = "inbox/";
const STATES: &str = "inbox-state/";
const DONE: &str = "inbox-done/";

/// How often a state change is retried when another worker changed the state at the same time.
const STATE_CAS_ATTEMPTS: u32 = 20;

/// The inbox kept as objects (S3 in production).
#[derive(Debug, Clone)]
pub struct ObjectInbox {
    objects: Arc<dyn Objects>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DoneMarker {
    status: ItemStatus,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

impl ObjectInbox {
    pub fn new(objects: Arc<dyn Objects>) -> Self {
        Self { objects }
    }

    fn item_key(id: &DeliveryId) -> String {
        format!("{ITEMS}{}.json", id.as_str())
    }

    fn state_key(id: &DeliveryId) -> String {
        format!("{STATES}{}.json", id.as_str())
    }

    fn done_key(id: &DeliveryId) -> String {
        format!("{DONE}{}.json", id.as_str())
    }

    /// The delivery ids under `prefix` (keys `<prefix><id>.json`); other keys are ignored.
    async fn ids_under(&self, prefix: &str) -> Result<BTreeSet<DeliveryId>, InboxError> {
        let keys = self
            .objects
            .list(prefix)
            .await
            .map_err(backend("list inbox"))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(prefix)?.strip_suffix(".json")?.parse().ok())
            .collect())
    }

    async fn read_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, InboxError> {
        let key = Self::item_key(id);
        let Some(object) = self
            .objects
            .get(&key)
            .await
            .map_err(backend("read inbox item"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&object.body)
            .map(Some)
            .map_err(|e| InboxError::Corrupt {
                id: self.objects.describe(&key),
                reason: e.to_string(),
            })
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<(T, crate::store::objects::ETag)>, InboxError> {
        let Some(object) = self
            .objects
            .get(key)
            .await
            .map_err(backend("read inbox state"))?
        else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&object.body).map_err(|e| InboxError::Corrupt {
            id: self.objects.describe(key),
            reason: e.to_string(),
        })?;
        Ok(Some((value, object.etag)))
    }

    /// Applies `change` to the item's state by compare-and-swap, retrying on conflict.
    async fn change_state(
        &self,
        id: &DeliveryId,
        mut change: impl FnMut(&mut ItemState) + Send,
    ) -> Result<ItemState, InboxError> {
        self.try_change_state(id, |s| {
            change(s);
            Ok(())
        })
        .await?
        .map_err(|never: std::convert::Infallible| match never {})
    }

    /// Like [`Self::change_state`], but `change` may decline (`Err(value)`: nothing is written and
    /// the value is returned in `Ok(Err(value))`).
    async fn try_change_state<T: Send>(
        &self,
        id: &DeliveryId,
        mut change: impl FnMut(&mut ItemState) -> Result<(), T> + Send,
    ) -> Result<Result<ItemState, T>, InboxError> {
        // Existence only: an item whose bytes are unreadable can still be given up.
        let item = self
            .objects
            .get(&Self::item_key(id))
            .await
            .map_err(backend("read inbox item"))?;
        if item.is_none() {
            return Err(InboxError::NotFound(id.clone()));
        }
        let key = Self::state_key(id);
        for _ in 0..STATE_CAS_ATTEMPTS {
            let current = self.read_json::<ItemState>(&key).await?;
            let mut state = current
                .as_ref()
                .map(|(s, _)| s.clone())
                .unwrap_or_else(ItemState::new_pending);
            if let Err(declined) = change(&mut state) {
                return Ok(Err(declined));
            }
            state.updated_at = Some(OffsetDateTime::now_utc());
            let body = serde_json::to_vec(&state).map_err(|e| InboxError::Corrupt {
                id: id.as_str().to_owned(),
                reason: e.to_string(),
            })?;
            let written = match &current {
                Some((_, etag)) => self.objects.put_if_match(&key, body, etag).await,
                None => self.objects.put_if_absent(&key, body).await,
            };
            match written {
                Ok(_) => return Ok(Ok(state)),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(backend("write inbox state")(e)),
            }
        }
        Err(InboxError::Backend {
            operation: "write inbox state",
            source: format!(
                "{} kept changing under {STATE_CAS_ATTEMPTS} attempts",
                self.objects.describe(&key)
            )
            .into(),
        })
    }

    /// Marks the item finished: the state first (so a reader of the state sees why), then the
    /// done marker that takes it out of `pending`.
    async fn finish(
        &self,
        id: &DeliveryId,
        status: ItemStatus,
        reason: Option<&str>,
    ) -> Result<(), InboxError> {
        // A finished item stays as it finished (done is never turned into given up, or back).
        self.change_state(id, |s| {
            if !s.status.is_finished() {
                s.status = status;
                s.lease = None;
                if let Some(reason) = reason {
                    s.last_error = Some(truncate(reason));
                }
            }
        })
        .await?;
        self.write_done_marker(id, status).await
    }

    /// Creates the done marker that takes a finished item out of `pending` (create-only: the
    /// first marker stays).
    async fn write_done_marker(
        &self,
        id: &DeliveryId,
        status: ItemStatus,
    ) -> Result<(), InboxError> {
        let marker = DoneMarker {
            status,
            at: OffsetDateTime::now_utc(),
        };
        let body = serde_json::to_vec(&marker).map_err(|e| InboxError::Corrupt {
            id: id.as_str().to_owned(),
            reason: e.to_string(),
        })?;
        match self.objects.put_if_absent(&Self::done_key(id), body).await {
            Ok(_) => Ok(()),
            // Already finished (a second worker, or a retry after a lost answer).
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(backend("mark inbox item finished")(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), InboxError> {
        if let Some(object) = self
            .objects
            .get(key)
            .await
            .map_err(backend("read for prune"))?
        {
            match self.objects.delete_if_match(key, &object.etag).await {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(backend("prune inbox")(e)),
            }
        }
        Ok(())
    }
}

/// Longest error text kept with an item.
const MAX_ERROR_CHARS: usize = 2000;

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_ERROR_CHARS {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_ERROR_CHARS).collect();
        t.push('…');
        t
    }
}

fn backend(operation: &'static str) -> impl Fn(ObjectError) -> InboxError {
    move |e| InboxError::Backend {
        operation,
        source: Box::new(e),
    }
}

#[async_trait]
impl Inbox for ObjectInbox {
    async fn put(&self, delivery: &Delivery) -> Result<PutOutcome, InboxError> {
        let body = serde_json::to_vec(delivery).map_err(|e| InboxError::Corrupt {
            id: delivery.id.as_str().to_owned(),
            reason: e.to_string(),
        })?;
        match self
            .objects
            .put_if_absent(&Self::item_key(&delivery.id), body)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) if e.is_conflict() => Ok(PutOutcome::Duplicate),
            Err(e) => Err(backend("store delivery")(e)),
        }
    }

    async fn get(&self, id: &DeliveryId) -> Result<Option<InboxItem>, InboxError> {
        let Some(delivery) = self.read_delivery(id).await? else {
            return Ok(None);
        };
        // The done marker first: it is written after the final state, so a state read after a
        // marker was seen is the final one (read the other way round, a state from before the
        // claim could be paired with the marker of a finish that happened in between).
        let marker = self.read_json::<DoneMarker>(&Self::done_key(id)).await?;
        let mut state = self
            .read_json::<ItemState>(&Self::state_key(id))
            .await?
            .map(|(s, _)| s)
            .unwrap_or_else(ItemState::new_pending);
        // The done marker is what `pending` trusts; keep `get` consistent with it.
        match marker {
            Some((marker, _)) if !state.status.is_finished() => state.status = marker.status,
            Some(_) => {}
            // Finished in its state, yet no marker: the finisher stopped between its two writes
            // (killed, or the marker write failed). Every worker skips a finished item, so
            // nobody else would write the marker and the item would stay pending forever:
            // finish it here (create-only, so a finisher still under way loses nothing).
            None if state.status.is_finished() => self.write_done_marker(id, state.status).await?,
            None => {}
        }
        Ok(Some(InboxItem { delivery, state }))
    }

    async fn pending_entries(&self) -> Result<Vec<PendingEntry>, InboxError> {
        let items = self.ids_under(ITEMS).await?;
        let done = self.ids_under(DONE).await?;
        let mut pending = Vec::new();
        for id in items.difference(&done) {
            // Listed a moment ago; gone now only if pruned meanwhile. An unreadable item sorts
            // first, so the worker gives it up promptly instead of failing the whole listing.
            match self.read_delivery(id).await {
                Ok(Some(delivery)) => {
                    let thread = thread_of(&delivery.event, delivery.body.as_bytes());
                    pending.push((delivery.received_at, id.clone(), thread.map(Into::into)))
                }
                Ok(None) => {}
                Err(InboxError::Corrupt { .. }) => {
                    pending.push((OffsetDateTime::UNIX_EPOCH, id.clone(), None))
                }
                Err(e) => return Err(e),
            }
        }
        pending.sort();
        Ok(pending
            .into_iter()
            .map(|(_, id, thread)| PendingEntry { id, thread })
            .collect())
    }

    async fn claim(
        &self,
        id: &DeliveryId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Claim, InboxError> {
        let claimed = self
            .try_change_state(id, |s| {
                if s.status.is_finished() {
                    return Err(Claim::Finished(s.status));
                }
                let now = OffsetDateTime::now_utc();
                if let Some(lease) = s.blocking_lease(now, owner) {
                    return Err(Claim::Busy(lease.clone()));
                }
                s.attempts = s.attempts.saturating_add(1);
                s.lease = Some(Lease {
                    owner: owner.to_owned(),
                    expires_at: now + ttl,
                });
                Ok(())
            })
            .await;
        match claimed {
            Ok(Ok(state)) => Ok(Claim::Claimed(state)),
            Ok(Err(other)) => Ok(other),
            Err(InboxError::NotFound(_)) => Ok(Claim::NotFound),
            Err(e) => Err(e),
        }
    }

    async fn record_failure(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<u32, InboxError> {
        let state = self
            .change_state(id, |s| {
                // A late failure (a second worker) does not reopen a finished item.
                if !s.status.is_finished() {
                    s.last_error = Some(truncate(error));
                    if s.lease.as_ref().is_some_and(|l| l.owner == owner) {
                        s.lease = None;
                    }
                }
            })
            .await?;
        Ok(state.attempts)
    }

    async fn mark_done(&self, id: &DeliveryId) -> Result<(), InboxError> {
        self.finish(id, ItemStatus::Done, None).await
    }

    async fn give_up(&self, id: &DeliveryId, reason: &str) -> Result<(), InboxError> {
        self.finish(id, ItemStatus::GaveUp, Some(reason)).await
    }

    async fn prune(&self, before: OffsetDateTime) -> Result<usize, InboxError> {
        let mut removed = 0;
        for id in self.ids_under(DONE).await? {
            let Some((marker, _)) = self.read_json::<DoneMarker>(&Self::done_key(&id)).await?
            else {
                continue;
            };
            if marker.at >= before {
                continue;
            }
            // The item first: once it is gone nothing lists it, whatever is left behind.
            self.delete(&Self::item_key(&id)).await?;
            self.delete(&Self::state_key(&id)).await?;
            self.delete(&Self::done_key(&id)).await?;
            removed += 1;
        }
        Ok(removed)
    }
}
