//! Group commit for [`FsInbox::put`](super::FsInbox): deliveries that arrive together are made
//! durable by one `fdatasync` of a journal segment instead of two `fsync`s each.
//!
//! One committer thread per [`FsInbox`](super::FsInbox) (started by its first put) takes every
//! delivery waiting at that moment as one batch and:
//! 1. answers [`PutOutcome::Duplicate`] at once for ids already in `inbox/` or finished;
//! 2. appends the others, one JSON line each (the [`Delivery`] as stored in `inbox/`), to its
//!    segment `inbox-journal/<run>-<n>.jsonl` and calls `fdatasync` once: from here the batch is
//!    durable;
//! 3. creates each `inbox/<delivery>.json` as before (a complete temporary file hard-linked into
//!    place, create-only) but without an `fsync` of its own, then wakes each waiter with its own
//!    outcome. So a delivery is visible to workers only once it is durable, and its 202 is sent
//!    only after that.
//!
//! A segment holds an exclusive file lock while a committer uses it or watches it. It is sealed
//! after [`ROTATE_AFTER`] or [`SEGMENT_BYTES`] and removed once every delivery in it is finished:
//! a finished item's done marker is written with its own `fsync`, and from then on the item file
//! is needed only to recognize a redelivery, which the done marker does too. So retiring costs no
//! I/O but a `stat` per delivery: no `fsync` per file, no `syncfs` (which would flush every other
//! writer's data on the file system too).
//! A segment left behind by a process that died (no lock on it) is replayed by the next
//! [`recover`] (every `FsInbox::open`): a delivery missing from `inbox/` (and not finished, nor
//! older than [`RETENTION`]) is created again; that inbox's committer then watches the segment
//! like its own sealed ones.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::layout::{DONE, INBOX, JOURNAL, Layout, io_err, sync_dir};
use super::{Delivery, InboxError, PutOutcome, RETENTION};
use crate::ids::DeliveryId;

/// A segment is sealed once this old (an idle committer keeps none open)…
const ROTATE_AFTER: Duration = Duration::from_secs(30);
/// …or this large.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// How often sealed segments are checked for removal.
const CHECK_SEALED_EVERY: Duration = Duration::from_secs(5);
/// Most deliveries in one batch (bounds one write and one wake-up round).
const MAX_BATCH: usize = 1024;
/// A delivery larger than this is stored on its own, with its own `fsync`s, as before group
/// commit: its bytes, not the flush, are the cost, so journaling would write them twice and hold
/// up the batch behind it.
const DIRECT_PUT_BYTES: usize = 1024 * 1024;

/// One put waiting for its batch.
struct Job {
    id: DeliveryId,
    json: Vec<u8>,
    reply: oneshot::Sender<Result<PutOutcome, InboxError>>,
}

/// The committer of one inbox: its thread starts with the first put (or at once, to watch the
/// segments [`recover`] adopted) and ends when the last clone of the inbox is dropped, leaving
/// the segments not yet removable to the next open.
#[derive(Debug)]
pub(super) struct GroupCommit {
    layout: Layout,
    jobs: OnceLock<Sender<Job>>,
    adopted: std::sync::Mutex<Vec<Segment>>,
}

impl GroupCommit {
    pub fn new(layout: Layout, adopted: Vec<Segment>) -> Result<Arc<Self>, InboxError> {
        let start = !adopted.is_empty();
        let commits = Arc::new(Self {
            layout,
            jobs: OnceLock::new(),
            adopted: std::sync::Mutex::new(adopted),
        });
        if start {
            commits.sender()?;
        }
        Ok(commits)
    }

    /// Stores `delivery` with the next batch; returns once the batch is durable.
    pub async fn put(&self, delivery: &Delivery) -> Result<PutOutcome, InboxError> {
        let json = serde_json::to_vec(delivery).map_err(|e| InboxError::Corrupt {
            id: delivery.id.to_string(),
            reason: e.to_string(),
        })?;
        if json.len() > DIRECT_PUT_BYTES {
            let (layout, id) = (self.layout.clone(), delivery.id.clone());
            return tokio::task::spawn_blocking(move || {
                if layout.known(&id) {
                    return Ok(PutOutcome::Duplicate);
                }
                layout.create_item(&id, &json, true)
            })
            .await
            .map_err(|e| InboxError::Backend {
                operation: "run a file-system task",
                source: Box::new(e),
            })?;
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            id: delivery.id.clone(),
            json,
            reply,
        };
        self.sender()?
            .send(job)
            .map_err(|_| stopped("queue a delivery"))?;
        answer.await.map_err(|_| stopped("wait for its batch"))?
    }

    fn sender(&self) -> Result<&Sender<Job>, InboxError> {
        if let Some(sender) = self.jobs.get() {
            return Ok(sender);
        }
        let (sender, jobs) = mpsc::channel();
        let layout = self.layout.clone();
        let sealed = std::mem::take(&mut *self.adopted.lock().unwrap_or_else(|e| e.into_inner()));
        // Two first puts may race here: the loser's thread sees its channel closed and ends
        // (leaving any segment it watched to the next open).
        std::thread::Builder::new()
            .name("inbox-commit".into())
            .spawn(move || run(layout, jobs, sealed))
            .map_err(|e| InboxError::Backend {
                operation: "start the inbox committer",
                source: Box::new(e),
            })?;
        Ok(self.jobs.get_or_init(|| sender))
    }
}

fn stopped(operation: &'static str) -> InboxError {
    InboxError::Backend {
        operation,
        source: "the inbox committer stopped".into(),
    }
}

/// A segment a committer writes or watches (it holds the segment's lock through `file`).
#[derive(Debug)]
pub(super) struct Segment {
    file: File,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
    /// The deliveries it stands for that are not known to be finished yet.
    unfinished: Vec<DeliveryId>,
}

fn run(layout: Layout, jobs: Receiver<Job>, mut sealed: Vec<Segment>) {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut sequence = 0u64;
    let mut segment: Option<Segment> = None;
    let mut checked = Instant::now();
    loop {
        let received = jobs.recv_timeout(CHECK_SEALED_EVERY);
        if segment
            .as_ref()
            .is_some_and(|s| s.bytes >= SEGMENT_BYTES || s.opened.elapsed() >= ROTATE_AFTER)
            || matches!(received, Err(RecvTimeoutError::Disconnected))
        {
            sealed.extend(segment.take());
        }
        if checked.elapsed() >= CHECK_SEALED_EVERY || received.is_err() {
            sealed.retain_mut(|s| !remove_if_finished(&layout, s));
            checked = Instant::now();
        }
        let first = match received {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if segment.is_none() {
            sequence += 1;
            match open_segment(&layout, &format!("{run_id}-{sequence:06}")) {
                Ok(s) => segment = Some(s),
                Err(e) => {
                    fail_all(batch, &e);
                    continue;
                }
            }
        }
        if let Some(current) = segment.as_mut()
            && let Err(e) = commit(&layout, current, batch)
        {
            // The segment may end in a torn write: seal it (a torn line is skipped on replay).
            tracing::error!(error = %e, "inbox journal write failed");
            sealed.extend(segment.take());
        }
    }
}

/// Whether an item is finished (its done marker durable) or gone (pruned after that).
fn finished(layout: &Layout, id: &DeliveryId) -> bool {
    layout.item(DONE, id).exists() || !layout.item(INBOX, id).exists()
}

/// Removes a sealed segment once every delivery in it is finished; returns whether it did.
/// Deliveries are looked at in their order, up to the first one not finished: the segment stays
/// while any is pending anyway, and the worker finishes them roughly in order, so a check costs
/// a `stat` or two per segment, not two per delivery (the check runs on the committer's
/// thread, and with a backlog of tens of thousands it held every put for a tenth of a second).
fn remove_if_finished(layout: &Layout, segment: &mut Segment) -> bool {
    let done = segment
        .unfinished
        .iter()
        .position(|id| !finished(layout, id))
        .unwrap_or(segment.unfinished.len());
    segment.unfinished.drain(..done);
    if !segment.unfinished.is_empty() {
        return false;
    }
    match fs::remove_file(&segment.path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(error = %e, segment = %segment.path.display(),
                "inbox journal segment kept for the next open");
            false
        }
    }
}

/// Makes one batch durable and answers each of its puts.
fn commit(layout: &Layout, segment: &mut Segment, batch: Vec<Job>) -> Result<(), InboxError> {
    let mut seen = HashSet::new();
    let mut new = Vec::new();
    let mut repeated = Vec::new();
    for job in batch {
        if !seen.insert(job.id.clone()) {
            repeated.push(job); // answered once the first of its id is stored
        } else if layout.known(&job.id) {
            let _ = job.reply.send(Ok(PutOutcome::Duplicate));
        } else {
            new.push(job);
        }
    }
    let mut buffer = Vec::with_capacity(new.iter().map(|j| j.json.len() + 1).sum());
    for job in &new {
        buffer.extend_from_slice(&job.json);
        buffer.push(b'\n');
    }
    let durable = segment
        .file
        .write_all(&buffer)
        .and_then(|()| segment.file.sync_data())
        .map_err(io_err("append to", &segment.path));
    if let Err(e) = durable {
        fail_all(new.into_iter().chain(repeated), &e);
        return Err(e);
    }
    segment.bytes += buffer.len() as u64;
    for job in new {
        let outcome = layout.create_item(&job.id, &job.json, false);
        if matches!(outcome, Ok(PutOutcome::Created)) {
            segment.unfinished.push(job.id.clone());
        }
        let _ = job.reply.send(outcome);
    }
    for job in repeated {
        let _ = job.reply.send(Ok(PutOutcome::Duplicate));
    }
    Ok(())
}

fn fail_all(jobs: impl IntoIterator<Item = Job>, error: &InboxError) {
    for job in jobs {
        let _ = job.reply.send(Err(InboxError::Backend {
            operation: "store a delivery",
            source: error.to_string().into(),
        }));
    }
}

/// A new segment, locked before it gets its name so [`recover`] never takes a live one.
fn open_segment(layout: &Layout, name: &str) -> Result<Segment, InboxError> {
    let tmp = layout.temp(name);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.lock().map_err(io_err("lock", &tmp))?;
    let path = layout.root.join(JOURNAL).join(format!("{name}.jsonl"));
    fs::rename(&tmp, &path).map_err(io_err("rename into", &path))?;
    sync_dir(&layout.root.join(JOURNAL)).map_err(io_err("sync", &path))?;
    Ok(Segment {
        file,
        path,
        bytes: 0,
        opened: Instant::now(),
        unfinished: Vec::new(),
    })
}

/// Replays the segments no live committer holds: creates the deliveries missing from `inbox/` (or
/// left there empty or cut short by a crash) and returns the segments (locked) for the inbox's
/// committer to watch, with how many deliveries it restored.
pub(super) fn recover(layout: &Layout) -> Result<(Vec<Segment>, usize), InboxError> {
    let dir = layout.root.join(JOURNAL);
    let mut created = 0;
    let mut adopted = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
        let path = entry.map_err(io_err("list", &dir))?.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // retired meanwhile
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue, // a live committer's
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        if !path.exists() {
            continue; // retired between the listing and the lock
        }
        let text = fs::read(&path).map_err(io_err("read", &path))?;
        let oldest = OffsetDateTime::now_utc() - RETENTION;
        let mut ids = Vec::new();
        // A torn last line was never acknowledged (its batch's fdatasync did not return).
        for line in text.split(|b| *b == b'\n') {
            let Ok(delivery) = serde_json::from_slice::<Delivery>(line) else {
                continue;
            };
            let finished = layout.item(DONE, &delivery.id).exists();
            if finished || delivery.received_at < oldest {
                continue; // finished (perhaps pruned since): never brought back
            }
            // The line is the item's JSON exactly. An item already there was never synced (the
            // journal made it durable), so a crash can have left it empty or cut short: kept
            // only if it is whole, replaced by the line otherwise.
            let item = layout.item(INBOX, &delivery.id);
            match fs::read(&item) {
                Ok(bytes) if bytes == line => {}
                Ok(_) => {
                    layout.replace_item(&delivery.id, line)?;
                    created += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if layout.create_item(&delivery.id, line, false)? == PutOutcome::Created {
                        created += 1;
                    }
                }
                Err(e) => return Err(io_err("read", &item)(e)),
            }
            ids.push(delivery.id);
        }
        adopted.push(Segment {
            bytes: text.len() as u64,
            file,
            path,
            opened: Instant::now(),
            unfinished: ids,
        });
    }
    Ok((adopted, created))
}
