//! [`FsInbox`]: the inbox in a local directory (the embedded default store).
//!
//! Layout under the store directory:
//! * `inbox/<delivery>.json` — the [`Delivery`] of a *pending* item, written once and never
//!   changed. A complete temporary file is moved into place create-only (`rename` with
//!   `RENAME_NOREPLACE`, or a hard link): atomic across processes, and readers never see half a
//!   file. It appears only once its journal line is durable.
//! * `inbox-finished/<delivery>.json` — the same file once the item is finished (moved there
//!   after its done marker), kept for [`Inbox::get`] until pruned. So a listing of pending items
//!   reads `inbox/`, which holds the pending items only, not the week of finished ones.
//! * `inbox-journal/<run>-<n>.jsonl` — group commit (see [`super::journal`]): the deliveries of
//!   recent batches, one JSON line each, made durable by one `fdatasync` per batch; removed once
//!   every delivery in it is finished, replayed at open if a process died first.
//! * `inbox-state/<delivery>.json` — attempts, last error and lease of a pending item (temp +
//!   rename, under the lock). Not `fsync`ed: it coordinates live processes, which share the page
//!   cache, and a process that dies keeps it. A power loss or machine crash can take back what
//!   was written since the last writeback (the attempts since then are counted again, so an item
//!   that brings the machine down each time is not given up), and a state it left empty is
//!   started again (see `current_state`).
//! * `inbox-done/<delivery>.json` — present once the item is finished (done or given up); holds
//!   its final [`ItemState`]. Pending = `inbox/` minus `inbox-done/` (a crash between the marker
//!   and the move leaves a finished item in `inbox/`; the listing moves it on).
//! * `inbox.lock` — an advisory file lock (`flock`) held for every read–modify–write of a state
//!   (claim, failure, finish), so claims are atomic across processes.
//! * `tmp/` — temporary files; leftovers of a crash are removed at open.
//!
//! Any number of processes may receive into and work on the same directory (on one machine:
//! the lock is local): leases keep each item with one worker at a time.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::journal::{self, GroupCommit};
use super::layout::{DONE, FINISHED, INBOX, JOURNAL, LOCK, Layout, STATE, TMP, io_err};
use super::{
    Claim, Delivery, Inbox, InboxError, InboxItem, ItemState, ItemStatus, Lease, PendingEntry,
    PutOutcome, thread_of,
};
use crate::ids::DeliveryId;

/// Longest error text kept with an item.
const MAX_ERROR_CHARS: usize = 2000;
/// Temporary files older than this at open belong to a crashed write.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// An inbox in a directory (see the module docs for the layout).
/// Clones share one group committer and one [`Listing`].
#[derive(Debug, Clone)]
pub struct FsInbox {
    root: PathBuf,
    layout: Layout,
    commits: Arc<GroupCommit>,
    listed: Arc<Listing>,
}

/// What listings of pending items keep between them, because an item never changes once
/// created: a listing reads only the items it does not know yet, not every pending item again
/// (the worker lists for every batch of queued ids, and under a backlog that re-read the whole
/// backlog each time), and an item this process stored is known without reading it back.
///
/// Kept small, since a backlog holds one entry per pending item and its peak is the service's
/// peak memory: the entries share their id with the worker's queue and the journal, the items of
/// one thread share one copy of its name, and a listing marks the entries it finds and sweeps
/// the rest in place (no second map, no list of every name).
#[derive(Debug, Default)]
struct Listing {
    items: Mutex<ListedItems>,
    /// Items this process stored since the last listing, once it has listed (a process that
    /// only receives, such as the Lambda webhook function, keeps none), and at most
    /// [`MAX_FRESH`]: beyond that a listing reads them from their files.
    fresh: Mutex<Vec<(DeliveryId, ListedItem)>>,
    /// Whether this process has listed (see `fresh`).
    lists: AtomicBool,
    /// Every thread an entry names, once.
    threads: Mutex<HashSet<Arc<str>>>,
}

/// Most stored items [`Listing::fresh`] holds for the next listing: 48 bytes each, 6 MiB in all,
/// and with the ids they keep (64 bytes each) 14 MiB at most, should the worker not list for
/// that long.
const MAX_FRESH: usize = 1 << 17;

#[derive(Debug, Default)]
struct ListedItems {
    items: HashMap<DeliveryId, ListedItem>,
    /// Which listing this is: an entry not marked with it is gone from `inbox/`.
    listing: u32,
}

/// What a listing needs of a pending item: its receive time and thread.
#[derive(Debug)]
struct ListedItem {
    /// The receive time in nanoseconds since 1970 (exact: items that arrive together are
    /// ordered by it).
    received: i64,
    thread: Option<Arc<str>>,
    /// The last listing that found it.
    seen: Cell<u32>,
    /// Whether a listing has looked for its done marker: an item read from its file has been,
    /// one this process stored not yet (another process may have finished it and stopped
    /// before moving it out of `inbox/`).
    checked: Cell<bool>,
}

impl Listing {
    /// What a listing keeps of `delivery`, its thread shared.
    fn item(&self, event: &str, body: &str, received_at: OffsetDateTime) -> ListedItem {
        ListedItem {
            received: nanos(received_at),
            thread: thread_of(event, body.as_bytes()).map(|t| self.thread(t)),
            seen: Cell::new(0),
            checked: Cell::new(false),
        }
    }

    /// The shared copy of `thread`.
    fn thread(&self, thread: String) -> Arc<str> {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = threads.get(thread.as_str()) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = thread.into();
        threads.insert(Arc::clone(&shared));
        shared
    }

    /// Keeps what the next listing needs of an item this process just stored.
    fn stored(&self, delivery: &Delivery) {
        let full = || self.fresh.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_FRESH;
        if !self.lists.load(Ordering::Relaxed) || full() {
            return;
        }
        let item = self.item(&delivery.event, &delivery.body, delivery.received_at);
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        if fresh.len() < MAX_FRESH {
            fresh.push((delivery.id.clone(), item));
        }
    }
}

impl ListedItems {
    /// Drops the entries this listing did not find; gives memory back once a backlog has been
    /// worked off.
    fn sweep(&mut self) {
        let listing = self.listing;
        self.items.retain(|_, item| item.seen.get() == listing);
        if self.items.capacity() > 4 * self.items.len() + 1024 {
            self.items.shrink_to_fit();
        }
    }
}

/// A receive time as [`ListedItem::received`] keeps it.
fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

impl FsInbox {
    /// Opens (creating if needed) the inbox under the store directory `root`, replaying the
    /// journal segments a process that died left behind.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, InboxError> {
        let root = root.as_ref().to_path_buf();
        for dir in [INBOX, FINISHED, STATE, DONE, TMP, JOURNAL] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_err("create", &path))?;
        }
        let layout = Layout { root: root.clone() };
        remove_stale_temp_files(&root);
        let (adopted, replayed) = journal::recover(&layout)?;
        if replayed > 0 {
            tracing::info!(replayed, "inbox: deliveries restored from the journal");
        }
        let inbox = Self {
            root,
            commits: GroupCommit::new(layout.clone(), adopted)?,
            layout,
            listed: Arc::default(),
        };
        // Finished items still in `inbox/`: an earlier layout kept them there, and a crash can
        // leave one between its done marker and its move.
        let moved = inbox.move_finished_out()?;
        if moved > 0 {
            tracing::info!(moved, "inbox: finished deliveries moved to inbox-finished/");
        }
        Ok(inbox)
    }

    /// Moves the delivery of every finished item still in `inbox/` to `inbox-finished/`.
    fn move_finished_out(&self) -> Result<usize, InboxError> {
        let mut moved = 0;
        for id in self.ids_in(DONE)? {
            if self.path(INBOX, &id).exists() {
                self.move_to_finished(&id);
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Moves a finished item's delivery out of `inbox/`. Its done marker is durable and says it
    /// is finished, so a move that fails (or that a crash loses) is logged and tried again by the
    /// next listing, `get` or open; it never fails the read or the finish that asked for it.
    fn move_to_finished(&self, id: &DeliveryId) {
        if let Err(e) = self.layout.move_to_finished(id) {
            tracing::warn!(delivery = %id, error = %e,
                "cannot move a finished delivery to inbox-finished/; it stays in inbox/ for now");
        }
    }

    /// Whether an item with this id is stored, pending or finished.
    fn stored(&self, id: &DeliveryId) -> bool {
        self.path(INBOX, id).exists() || self.path(FINISHED, id).exists()
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, dir: &str, id: &DeliveryId) -> PathBuf {
        self.layout.item(dir, id)
    }

    /// Runs `f` holding the inbox's file lock (exclusive across processes and instances).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, InboxError>) -> Result<T, InboxError> {
        let path = self.root.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        let result = f();
        let _ = file.unlock();
        result
    }

    /// Replaces `dest` atomically with `bytes`; durably (the file and its directory entry
    /// `fsync`ed) if `durable`.
    fn write_replace(
        &self,
        id: &DeliveryId,
        dest: &Path,
        bytes: &[u8],
        durable: bool,
    ) -> Result<(), InboxError> {
        let tmp = self.layout.write_temp(id.as_str(), bytes, durable)?;
        if let Err(e) = fs::rename(&tmp, dest) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("rename into", dest)(e));
        }
        if durable {
            sync_parent(dest);
        }
        Ok(())
    }

    fn read_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, InboxError> {
        // Pending first, then finished: a delivery only ever moves from the first to the second
        // (one `rename`), so one that is stored is found in one of the two reads.
        let bytes = match read_optional(&self.path(INBOX, id))? {
            Some(bytes) => Some(bytes),
            None => read_optional(&self.path(FINISHED, id))?,
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| InboxError::Corrupt {
                id: id.to_string(),
                reason: e.to_string(),
            })
    }

    fn read_state(&self, dir: &str, id: &DeliveryId) -> Result<Option<ItemState>, InboxError> {
        let path = self.path(dir, id);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| InboxError::Corrupt {
                id: id.to_string(),
                reason: format!("{}: {e}", path.display()),
            })
    }

    fn current_state(&self, id: &DeliveryId) -> Result<ItemState, InboxError> {
        if let Some(done) = self.read_state(DONE, id)? {
            return Ok(done);
        }
        match self.read_state(STATE, id) {
            Ok(state) => Ok(state.unwrap_or_else(ItemState::new_pending)),
            // A state is written without `fsync`: a machine that lost power can leave it empty.
            // Its item is pending; only its count and lease are lost, and the next claim writes
            // a whole state again.
            Err(InboxError::Corrupt { reason, .. }) => {
                tracing::warn!(delivery = %id, %reason,
                    "inbox: an unreadable item state is started again (attempts from 0)");
                Ok(ItemState::new_pending())
            }
            Err(e) => Err(e),
        }
    }

    fn get_blocking(&self, id: &DeliveryId) -> Result<Option<InboxItem>, InboxError> {
        let Some(delivery) = self.read_delivery(id)? else {
            return Ok(None);
        };
        let state = self.current_state(id)?;
        if state.status.is_finished() && self.path(INBOX, id).exists() {
            // Its process stopped between the done marker and the move (see `pending_blocking`).
            self.move_to_finished(id);
        }
        Ok(Some(InboxItem { delivery, state }))
    }

    /// The ids of the items in `dir` (names alone: a listing of a backlog holds no paths).
    fn ids_in(&self, dir: &str) -> Result<Vec<DeliveryId>, InboxError> {
        let path = self.root.join(dir);
        let mut out = Vec::new();
        for entry in fs::read_dir(&path).map_err(io_err("list", &path))? {
            let entry = entry.map_err(io_err("list", &path))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<DeliveryId>().ok())
            else {
                continue;
            };
            out.push(id);
        }
        Ok(out)
    }

    fn pending_blocking(&self) -> Result<Vec<PendingEntry>, InboxError> {
        self.listed.lists.store(true, Ordering::Relaxed);
        let fresh =
            std::mem::take(&mut *self.listed.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        let mut listed = self.listed.items.lock().unwrap_or_else(|e| e.into_inner());
        listed.listing = listed.listing.wrapping_add(1);
        let listing = listed.listing;
        // Known, not yet found: the scan decides (an item finished meanwhile is swept).
        for (id, item) in fresh {
            item.seen.set(listing.wrapping_sub(1));
            listed.items.entry(id).or_insert(item);
        }
        let scanned = self.scan(&mut listed);
        // Also after a failed scan (what it did not reach is read again next time), so a fault
        // that fails every listing cannot make the entries pile up.
        listed.sweep();
        drop(listed);
        // Threads no entry, queued item or earlier listing's answer names any more.
        let mut threads = self
            .listed
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| Arc::strong_count(t) > 1);
        if threads.capacity() > 4 * threads.len() + 1024 {
            threads.shrink_to_fit();
        }
        drop(threads);
        let mut pending = scanned?;
        pending.sort_unstable_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id)));
        Ok(pending.into_iter().map(|(_, entry)| entry).collect())
    }

    /// The pending items in `inbox/` with their receive times, marking each entry of `listed`
    /// found there and adding the items it did not know.
    fn scan(&self, listed: &mut ListedItems) -> Result<Vec<(i64, PendingEntry)>, InboxError> {
        let listing = listed.listing;
        let mut pending = Vec::with_capacity(listed.items.len());
        let dir = self.root.join(INBOX);
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some((id, item)) = listed.items.get_key_value(name) {
                // Stored by this process and found for the first time: checked as an item read
                // from its file is (below), once.
                if !item.checked.replace(true) && self.path(DONE, id).exists() {
                    self.move_to_finished(id);
                    continue; // not marked: swept
                }
                item.seen.set(listing);
                let entry = PendingEntry {
                    id: id.clone(),
                    thread: item.thread.clone(),
                };
                pending.push((item.received, entry));
                continue;
            }
            let Ok(id) = name.parse::<DeliveryId>() else {
                continue;
            };
            // `inbox/` holds pending items only, but for a finished one a crash (or an earlier
            // layout) left there: moved on when first seen. Items already listed were pending
            // then, and finishing moves them out.
            if self.path(DONE, &id).exists() {
                self.move_to_finished(&id);
                continue;
            }
            // File times are too coarse to order deliveries that arrive together; the receive
            // time inside the item is exact.
            let Some(bytes) = read_optional(&self.path(INBOX, &id))? else {
                continue; // pruned between the listing and now
            };
            match serde_json::from_slice::<Listed>(&bytes) {
                Ok(l) => {
                    let item = self.listed.item(&l.event, &l.body, l.received_at);
                    item.seen.set(listing);
                    item.checked.set(true);
                    let entry = PendingEntry {
                        id: id.clone(),
                        thread: item.thread.clone(),
                    };
                    pending.push((item.received, entry));
                    listed.items.insert(id, item);
                }
                // An unreadable item sorts first, so the worker reports it promptly (not kept:
                // a crash-torn item is rewritten by the journal's replay).
                Err(_) => pending.push((i64::MIN, PendingEntry { id, thread: None })),
            }
        }
        Ok(pending)
    }

    fn claim_blocking(
        &self,
        id: &DeliveryId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Claim, InboxError> {
        if !self.stored(id) {
            return Ok(Claim::NotFound);
        }
        self.locked(|| {
            let mut state = self.current_state(id)?;
            if state.status.is_finished() {
                return Ok(Claim::Finished(state.status));
            }
            let now = OffsetDateTime::now_utc();
            if let Some(lease) = state.blocking_lease(now, owner) {
                return Ok(Claim::Busy(lease.clone()));
            }
            state.attempts = state.attempts.saturating_add(1);
            state.lease = Some(Lease {
                owner: owner.to_owned(),
                expires_at: now + ttl,
            });
            state.updated_at = Some(now);
            let bytes = to_json(id, &state)?;
            // Not `fsync`ed (why, and what a power loss takes back: the module's docs on
            // `inbox-state/`); the done marker is. Two `fsync`s fewer per item: the worker
            // finishes 1.7 × as many items (`benches/serve-load.sh`).
            self.write_replace(id, &self.path(STATE, id), &bytes, false)?;
            Ok(Claim::Claimed(state))
        })
    }

    fn require(&self, id: &DeliveryId) -> Result<(), InboxError> {
        if self.stored(id) {
            Ok(())
        } else {
            Err(InboxError::NotFound(id.clone()))
        }
    }

    fn record_failure_blocking(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<u32, InboxError> {
        self.require(id)?;
        self.locked(|| {
            let mut state = self.current_state(id)?;
            if state.status.is_finished() {
                return Ok(state.attempts);
            }
            state.last_error = Some(truncate(error));
            if state.lease.as_ref().is_some_and(|l| l.owner == owner) {
                state.lease = None;
            }
            state.updated_at = Some(OffsetDateTime::now_utc());
            let bytes = to_json(id, &state)?;
            // Not `fsync`ed, like a claim.
            self.write_replace(id, &self.path(STATE, id), &bytes, false)?;
            Ok(state.attempts)
        })
    }

    fn finish_blocking(
        &self,
        id: &DeliveryId,
        status: ItemStatus,
        reason: Option<&str>,
    ) -> Result<(), InboxError> {
        self.require(id)?;
        self.locked(|| {
            let mut state = self.current_state(id)?;
            if state.status.is_finished() {
                return Ok(());
            }
            state.status = status;
            state.lease = None;
            if let Some(reason) = reason {
                state.last_error = Some(truncate(reason));
            }
            state.updated_at = Some(OffsetDateTime::now_utc());
            let bytes = to_json(id, &state)?;
            self.write_replace(id, &self.path(DONE, id), &bytes, true)?;
            remove_optional(&self.path(STATE, id))?;
            self.move_to_finished(id);
            Ok(())
        })
    }

    fn prune_blocking(&self, before: OffsetDateTime) -> Result<usize, InboxError> {
        let mut removed = 0;
        for id in self.ids_in(DONE)? {
            let Some(state) = self.read_state(DONE, &id)? else {
                continue;
            };
            let old = state.updated_at.is_some_and(|t| t < before);
            if old {
                // The delivery goes first: an interrupted prune leaves only a marker, which
                // keeps the id recognized and is removed by the next prune.
                remove_optional(&self.path(INBOX, &id))?;
                remove_optional(&self.path(FINISHED, &id))?;
                remove_optional(&self.path(STATE, &id))?;
                remove_optional(&self.path(DONE, &id))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(FsInbox) -> Result<T, InboxError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| InboxError::Backend {
                operation: "run a file-system task",
                source: Box::new(e),
            })?
    }
}

#[async_trait]
impl Inbox for FsInbox {
    async fn put(&self, delivery: &Delivery) -> Result<PutOutcome, InboxError> {
        let outcome = self.commits.put(delivery).await?;
        if outcome == PutOutcome::Created {
            self.listed.stored(delivery);
        }
        Ok(outcome)
    }

    async fn get(&self, id: &DeliveryId) -> Result<Option<InboxItem>, InboxError> {
        let id = id.clone();
        self.blocking(move |inbox| inbox.get_blocking(&id)).await
    }

    async fn pending_entries(&self) -> Result<Vec<PendingEntry>, InboxError> {
        self.blocking(|inbox| inbox.pending_blocking()).await
    }

    async fn claim(
        &self,
        id: &DeliveryId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Claim, InboxError> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.blocking(move |inbox| inbox.claim_blocking(&id, &owner, ttl))
            .await
    }

    async fn record_failure(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<u32, InboxError> {
        let (id, owner, error) = (id.clone(), owner.to_owned(), error.to_owned());
        self.blocking(move |inbox| inbox.record_failure_blocking(&id, &owner, &error))
            .await
    }

    async fn mark_done(&self, id: &DeliveryId) -> Result<(), InboxError> {
        let id = id.clone();
        self.blocking(move |inbox| inbox.finish_blocking(&id, ItemStatus::Done, None))
            .await
    }

    async fn give_up(&self, id: &DeliveryId, reason: &str) -> Result<(), InboxError> {
        let (id, reason) = (id.clone(), reason.to_owned());
        self.blocking(move |inbox| inbox.finish_blocking(&id, ItemStatus::GaveUp, Some(&reason)))
            .await
    }

    async fn prune(&self, before: OffsetDateTime) -> Result<usize, InboxError> {
        self.blocking(move |inbox| inbox.prune_blocking(before))
            .await
    }
}

fn remove_stale_temp_files(root: &Path) {
    let Ok(entries) = fs::read_dir(root.join(TMP)) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_TMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, InboxError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn remove_optional(path: &Path) -> Result<(), InboxError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Makes a new directory entry durable (a crash right after the answer must not lose it).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The fields `pending` needs: the receive time, and the event and body for the thread.
#[derive(serde::Deserialize)]
struct Listed {
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    event: String,
    body: String,
}

fn to_json(id: &DeliveryId, state: &ItemState) -> Result<Vec<u8>, InboxError> {
    serde_json::to_vec(state).map_err(|e| InboxError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_ERROR_CHARS {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_ERROR_CHARS).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: &str, issue: u32) -> Delivery {
        let body = format!(
            r#"{{"repository":{{"full_name":"acme/infra"}},"issue":{{"number":{issue}}}}}"#
        );
        Delivery::new(n.parse().unwrap(), "issue_comment", body)
    }

    fn kept(inbox: &FsInbox) -> (usize, usize, usize) {
        let items = inbox.listed.items.lock().unwrap().items.len();
        let fresh = inbox.listed.fresh.lock().unwrap().len();
        let threads = inbox.listed.threads.lock().unwrap().len();
        (items, fresh, threads)
    }

    /// What listings keep is what is pending: a finished item's entry goes at the next listing
    /// (also one finished before any listing saw it), and a thread's name with its last item.
    #[tokio::test]
    async fn listings_keep_only_pending_items() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = FsInbox::open(dir.path()).unwrap();
        inbox.put(&delivery("k-0", 1)).await.unwrap();
        assert_eq!(
            kept(&inbox),
            (0, 0, 0),
            "a process that has not listed keeps nothing"
        );
        assert_eq!(inbox.pending_entries().await.unwrap().len(), 1);
        inbox.mark_done(&"k-0".parse().unwrap()).await.unwrap();
        for (n, issue) in [("k-1", 1), ("k-2", 1), ("k-3", 2)] {
            inbox.put(&delivery(n, issue)).await.unwrap();
        }
        assert_eq!(kept(&inbox), (1, 3, 2), "stored, not listed yet");
        inbox.mark_done(&"k-3".parse().unwrap()).await.unwrap();
        assert_eq!(inbox.pending_entries().await.unwrap().len(), 2);
        assert_eq!(kept(&inbox), (2, 0, 1), "k-3 finished before it was listed");
        inbox.mark_done(&"k-1".parse().unwrap()).await.unwrap();
        inbox.mark_done(&"k-2".parse().unwrap()).await.unwrap();
        assert!(inbox.pending_entries().await.unwrap().is_empty());
        assert_eq!(kept(&inbox), (0, 0, 0));
    }
}
