//! The worker: takes inbox items, hands each to the [`EventHandler`], and marks it done only
//! after the handler succeeded.
//!
//! [`Worker::process_one`] and [`Worker::drain`] are plain functions that tests call directly
//! (no sleeps, no polling). [`Worker::run`] is the background loop of `serve`: it drains at start
//! (resuming what a crash left undone), then each item the HTTP handler queues as it arrives.
//! A failed item stays pending and is retried by later drains (and after a restart) until
//! `max_attempts` attempts, when it is given up: kept, logged, never retried.
//!
//! Exactly once under concurrency: a worker runs the handler only for an item it claimed
//! ([`Inbox::claim`]: a lease under its own [`Worker::owner`], the attempt counted at the claim),
//! so any number of workers (processes, Lambda instances, the S3 trigger and the sweep) can work
//! on one inbox. An attempt that never reports back (crash, timeout) counts; once its lease
//! expires the item is taken over, or given up when its attempts are spent. (The fs inbox's
//! count survives a process's death, not a power loss: see [`crate::inbox::FsInbox`].)
//!
//! Order: items of one thread (repository and issue or pull-request number, see
//! [`crate::inbox::thread_of`]) are handled in delivery order. An item waits
//! ([`Outcome::HeldBack`]) while an older item of its thread is pending — failing, waiting for its
//! backoff, or in another worker's hands; other threads keep flowing.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::DeliveryId;
use crate::inbox::{Claim, Delivery, Inbox, InboxError, PendingEntry, RETENTION};
use crate::webhook::Event;
use crate::{metrics, telemetry};

/// Failed attempts after which an item is given up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// The wait before the first retry of a failed item; it doubles with each failure up to
/// [`DEFAULT_BACKOFF_CAP`], so 8 attempts span about two hours: long enough to ride out a GitHub
/// or S3 outage, short enough that the person who commented hears back the same day.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(60);
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(60 * 60);
/// How long a claim holds an item. Longer than any attempt can run (the Lambda worker's timeout
/// is 300 s, `template.yaml`), so only a dead holder's lease expires; then the item is taken over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10 * 60);
/// How often the background loop drains the inbox (retrying failed items).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// How often the background loop removes finished items older than [`RETENTION`].
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most queued ids processed against one listing of the inbox. A listing costs time in the
/// size of the backlog (every pending item's directory entry), so under a burst the batch is
/// large: with 256, a worker behind by 60,000 items listed them all every 256 items. A batch
/// holds only ids; its items are still handled one at a time, and a stop waits for one. A batch
/// also yields after one retry interval (see [`Worker::process_queued`]), so slow handlers do not
/// hold off the retry drain and the prune for a batch's length.
const QUEUE_BATCH: usize = 4096;

/// A failure retrying cannot fix (a bad App key, the App uninstalled, the repository gone): a
/// handler returns it (anywhere in its error's chain) and the worker gives the delivery up at
/// once instead of retrying it for hours, and the handler answers the person waiting.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Permanent {
    /// What is wrong and what would fix it, for the log and the answer.
    pub what: String,
}

impl Permanent {
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into() }
    }

    /// Whether `error` says retrying cannot help.
    pub fn is_in(error: &anyhow::Error) -> bool {
        // As the error itself, as context added to another, or as a source in its chain.
        error.downcast_ref::<Permanent>().is_some() || error.chain().any(|e| e.is::<Permanent>())
    }
}

/// What TfPilot does with one event. The worker knows only this trait: the composition root
/// (`app`) hands it the executor, or [`LoggingHandler`] when no GitHub App is configured.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles one delivery. An error leaves the item pending for a retry.
    async fn handle(&self, delivery: &Delivery, event: &Event) -> anyhow::Result<()>;

    /// Called once when the worker gives up on a delivery (after its last failed attempt), so
    /// the handler can tell the people waiting for an answer: a command is never dropped in
    /// silence. Does nothing by default; the handler logs its own failures.
    async fn gave_up(&self, _delivery: &Delivery, _event: &Event, _reason: &str) {}

    /// Called when the deliveries in hand are done (the end of a drain, or the queue emptied):
    /// work deferred until a burst of events is over (the requests dashboard) is done here.
    /// Does nothing by default; the handler logs its own failures.
    async fn settle(&self) {}

    /// Called on a timer (`serve`) and on the schedule (Lambda), apart from any delivery: looks
    /// again at what GitHub may have failed to tell (a lost webhook). Returns how many things it
    /// decided. Does nothing by default.
    async fn sweep(&self) -> anyhow::Result<usize> {
        Ok(0)
    }
}

/// Logs a one-line summary of each event and succeeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingHandler;

#[async_trait]
impl EventHandler for LoggingHandler {
    async fn handle(&self, _delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        let sender = event.sender().map(|u| u.login.as_str()).unwrap_or("-");
        let installation = event.installation().map(|i| i.0);
        match event {
            Event::IssueComment(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                issue = e.issue.number,
                on_pull_request = e.issue.is_pull_request(),
                comment = e.comment.id,
                author = e.comment.author_login(),
                author_bot = e.comment.user.as_ref().is_some_and(|u| u.is_bot()),
                "issue comment"
            ),
            Event::Issues(e) => {
                tracing::info!(sender, installation, action = ?e.action, issue = e.issue.number, "issue")
            }
            Event::PullRequest(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                pull_request = e.number,
                merged = e.pull_request.merged,
                head = %e.pull_request.head.ref_name,
                base = %e.pull_request.base.ref_name,
                "pull request"
            ),
            Event::WorkflowRun(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                run = e.workflow_run.id,
                path = e.workflow_run.path.as_deref().unwrap_or("-"),
                conclusion = ?e.workflow_run.conclusion,
                "workflow run"
            ),
            Event::CheckRun(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                check_run = e.check_run.id,
                button = e.requested_action.as_ref().and_then(|a| a.identifier.as_deref()).unwrap_or("-"),
                "check run"
            ),
            Event::Installation(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                account = e.installation.account.as_ref().and_then(|a| a.name()).unwrap_or("-"),
                repositories = e.repositories.len(),
                "installation"
            ),
            Event::InstallationRepositories(e) => tracing::info!(
                sender,
                installation,
                action = ?e.action,
                added = e.repositories_added.len(),
                removed = e.repositories_removed.len(),
                "installation repositories"
            ),
            Event::Ping(_) | Event::Other(_) => tracing::debug!("nothing to do"),
        }
        Ok(())
    }
}

/// What [`Worker::process_one`] did with an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded; the item is done.
    Done,
    /// The handler failed; the item stays pending (`attempts` failures so far).
    Retry { attempts: u32, error: String },
    /// The item will never succeed and was given up.
    GaveUp { attempts: u32, reason: String },
    /// It failed before and its next attempt is not due yet (exponential backoff): nothing ran.
    NotDue {
        attempts: u32,
        due_at: OffsetDateTime,
    },
    /// It was already done or given up: nothing ran.
    AlreadyFinished,
    /// Another worker holds its lease: nothing ran.
    Busy { owner: String },
    /// An older item of its thread is still pending: nothing ran; it waits for that one.
    HeldBack { behind: DeliveryId },
    /// No item with this id.
    NotFound,
}

/// Counts of one [`Worker::drain`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub done: usize,
    pub retry: usize,
    pub gave_up: usize,
    pub skipped: usize,
    /// Failed items whose next attempt is not due yet.
    pub waiting: usize,
    /// Items the inbox could not read or update this time; they stay pending.
    pub failed: usize,
    /// Items another worker was handling.
    pub busy: usize,
    /// Items waiting behind an older pending item of their thread.
    pub held_back: usize,
}

impl DrainReport {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done => self.done += 1,
            Outcome::Retry { .. } => self.retry += 1,
            Outcome::GaveUp { .. } => self.gave_up += 1,
            Outcome::NotDue { .. } => self.waiting += 1,
            Outcome::AlreadyFinished | Outcome::NotFound => self.skipped += 1,
            Outcome::Busy { .. } => self.busy += 1,
            Outcome::HeldBack { .. } => self.held_back += 1,
        }
    }
}

impl Outcome {
    /// The item is out of the inbox's pending set (or never was in it).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Outcome::Done | Outcome::GaveUp { .. } | Outcome::AlreadyFinished | Outcome::NotFound
        )
    }
}

/// The first pending item older than `id` in `id`'s thread, if any.
fn older_in_thread(entries: &[PendingEntry], id: &DeliveryId) -> Option<DeliveryId> {
    let at = entries.iter().position(|e| &e.id == id)?;
    let thread = entries[at].thread.as_ref()?;
    entries[..at]
        .iter()
        .find(|e| e.thread.as_ref() == Some(thread))
        .map(|e| e.id.clone())
}

/// Takes items from an inbox to a handler.
#[derive(Clone)]
pub struct Worker {
    inbox: Arc<dyn Inbox>,
    handler: Arc<dyn EventHandler>,
    max_attempts: u32,
    retry_interval: Duration,
    /// Most queued ids taken together ([`QUEUE_BATCH`]).
    queue_batch: usize,
    backoff_base: Duration,
    backoff_cap: Duration,
    owner: Arc<str>,
    lease: Duration,
}

impl Worker {
    pub fn new(inbox: Arc<dyn Inbox>, handler: Arc<dyn EventHandler>) -> Self {
        // Make sure the recorder exists before the first metric.
        metrics::handle();
        Self {
            inbox,
            handler,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_interval: RETRY_INTERVAL,
            queue_batch: QUEUE_BATCH,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            )
            .into(),
            lease: DEFAULT_LEASE,
        }
    }

    /// The name this worker claims items under (default: the process id and a random suffix, so
    /// every worker, also two in one process, has its own).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Another owner name (tests; must differ between workers sharing an inbox).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into().into();
        self
    }

    /// How long a claim holds an item (default [`DEFAULT_LEASE`]).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The wait before retrying a failed item: `base` after the first failure, doubling up to
    /// `cap` (defaults [`DEFAULT_BACKOFF_BASE`], [`DEFAULT_BACKOFF_CAP`]; zero retries at once).
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// When an item that failed `attempts` times (the last at `failed_at`) may run again.
    pub fn next_attempt_at(&self, attempts: u32, failed_at: OffsetDateTime) -> OffsetDateTime {
        let doubling = 1u32 << attempts.saturating_sub(1).min(16);
        let wait = self
            .backoff_base
            .saturating_mul(doubling)
            .min(self.backoff_cap);
        failed_at + wait
    }

    /// Failed attempts after which an item is given up (at least 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// How long [`Worker::run`] waits before retrying failed items (default [`RETRY_INTERVAL`]).
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Most queued ids [`Worker::run`] takes together against one listing (default 4,096; at
    /// least 2). At most half of them are ids held back from the last batch.
    pub fn with_queue_batch(mut self, ids: usize) -> Self {
        self.queue_batch = ids.max(2);
        self
    }

    /// The handler items are given to (its [`EventHandler::sweep`] runs beside the worker).
    pub fn handler(&self) -> &Arc<dyn EventHandler> {
        &self.handler
    }

    pub fn inbox(&self) -> &Arc<dyn Inbox> {
        &self.inbox
    }

    /// Processes one item: waits behind an older pending item of its thread, otherwise claims it,
    /// handles it, then marks it done or records the failure.
    pub async fn process_one(&self, id: &DeliveryId) -> Result<Outcome, InboxError> {
        let entries = self.inbox.pending_entries().await?;
        if let Some(behind) = older_in_thread(&entries, id) {
            return Ok(Outcome::HeldBack { behind });
        }
        self.process(id).await
    }

    /// [`Self::process_one`] once the thread order is known to allow it.
    async fn process(&self, id: &DeliveryId) -> Result<Outcome, InboxError> {
        let outcome = self.process_unordered(id).await?;
        if matches!(outcome, Outcome::Done | Outcome::GaveUp { .. }) {
            metrics::inbox_depth_change(-1.0);
        }
        Ok(outcome)
    }

    async fn process_unordered(&self, id: &DeliveryId) -> Result<Outcome, InboxError> {
        let item = match self.inbox.get(id).await {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(Outcome::NotFound),
            // Items are written whole (link or rename of a synced file; S3 puts), so unreadable
            // bytes stay unreadable: retrying cannot help, and left pending the item would
            // fail every drain. Given up, it is out of the way and visible (log, metric).
            Err(InboxError::Corrupt { reason, .. }) => {
                let reason = format!("the stored item is unreadable: {reason}");
                let span = telemetry::delivery_span("unknown", id, None);
                span.in_scope(|| tracing::error!(error = %reason, "giving up"));
                self.inbox.give_up(id, &reason).await?;
                metrics::worker_item("gave_up");
                return Ok(Outcome::GaveUp {
                    attempts: 0,
                    reason,
                });
            }
            Err(e) => return Err(e),
        };
        if item.state.status.is_finished() {
            return Ok(Outcome::AlreadyFinished);
        }
        let now = OffsetDateTime::now_utc();
        if let Some(lease) = item.state.blocking_lease(now, &self.owner) {
            return Ok(Outcome::Busy {
                owner: lease.owner.clone(),
            });
        }
        // An attempt cut short by the death of an earlier run of this instance (SIGKILL, crash)
        // did not fail: it is taken over now, not after a backoff.
        let cut_short = item
            .state
            .lease
            .as_ref()
            .is_some_and(|l| l.held_by_predecessor_of(&self.owner));
        if item.state.attempts > 0
            && !cut_short
            && let Some(tried_at) = item.state.updated_at
        {
            let due_at = self.next_attempt_at(item.state.attempts, tried_at);
            if now < due_at {
                return Ok(Outcome::NotDue {
                    attempts: item.state.attempts,
                    due_at,
                });
            }
        }
        let delivery = item.delivery;
        let event = match Event::parse(&delivery.event, delivery.body.as_bytes()) {
            Ok(event) => event,
            Err(e) => {
                // The front door parsed it before storing, so only a changed parser gets here;
                // retrying the same bytes cannot help.
                let reason = e.to_string();
                let span = telemetry::delivery_span(&delivery.event, id, None);
                span.in_scope(|| tracing::error!(error = %reason, "payload unreadable, giving up"));
                self.inbox.give_up(id, &reason).await?;
                metrics::worker_item("gave_up");
                return Ok(Outcome::GaveUp {
                    attempts: item.state.attempts,
                    reason,
                });
            }
        };
        let span = telemetry::delivery_span(event.name(), id, event.repo());
        if item.state.attempts >= self.max_attempts {
            // Every attempt was spent and the last never reported back (the worker crashed, timed
            // out or ran out of memory while handling it): trying again would likely do the same.
            let attempts = item.state.attempts;
            let mut reason = format!(
                "gave up after {attempts} attempts; the last one did not finish (the worker stopped, timed out or ran out of memory while handling it)"
            );
            if let Some(error) = &item.state.last_error {
                reason.push_str(&format!("; the error before it: {error}"));
            }
            span.in_scope(|| tracing::error!(attempts, %reason, "giving up on this delivery"));
            self.inbox.give_up(id, &reason).await?;
            metrics::worker_item("gave_up");
            self.handler
                .gave_up(&delivery, &event, &reason)
                .instrument(span)
                .await;
            return Ok(Outcome::GaveUp { attempts, reason });
        }
        let attempts = match self.inbox.claim(id, &self.owner, self.lease).await? {
            Claim::Claimed(state) => state.attempts,
            Claim::Busy(lease) => return Ok(Outcome::Busy { owner: lease.owner }),
            Claim::Finished(_) => return Ok(Outcome::AlreadyFinished),
            Claim::NotFound => return Ok(Outcome::NotFound),
        };
        self.handle(delivery, event, attempts)
            .instrument(span)
            .await
    }

    async fn handle(
        &self,
        delivery: Delivery,
        event: Event,
        attempt: u32,
    ) -> Result<Outcome, InboxError> {
        let id = delivery.id.clone();
        let event_name = event.name().to_owned();
        let started = Instant::now();
        // Run the handler as its own task so a panic is a failed attempt, not a dead worker.
        let handler = Arc::clone(&self.handler);
        let (delivery, event) = (Arc::new(delivery), Arc::new(event));
        let task = tokio::spawn({
            let (delivery, event) = (Arc::clone(&delivery), Arc::clone(&event));
            async move { handler.handle(&delivery, &event).await }.in_current_span()
        });
        let result = match task.await {
            Ok(result) => result,
            Err(join_error) => Err(anyhow::anyhow!("the event handler panicked: {join_error}")),
        };
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                metrics::handler_duration(&event_name, "ok", seconds);
                self.inbox.mark_done(&id).await?;
                metrics::worker_item("done");
                tracing::debug!(seconds, "handled");
                Ok(Outcome::Done)
            }
            Err(error_value) => {
                metrics::handler_duration(&event_name, "error", seconds);
                let error = format!("{error_value:#}");
                let attempts = self
                    .inbox
                    .record_failure(&id, &self.owner, &error)
                    .await?
                    .max(attempt);
                let permanent = Permanent::is_in(&error_value);
                if permanent || attempts >= self.max_attempts {
                    let reason = if permanent {
                        format!("gave up at once (retrying cannot fix this): {error}")
                    } else {
                        format!("gave up after {attempts} failed attempts: {error}")
                    };
                    self.inbox.give_up(&id, &reason).await?;
                    metrics::worker_item("gave_up");
                    tracing::error!(attempts, %error, "handler failed; giving up on this delivery");
                    self.handler.gave_up(&delivery, &event, &reason).await;
                    Ok(Outcome::GaveUp { attempts, reason })
                } else {
                    metrics::worker_item("retry");
                    tracing::warn!(
                        attempts,
                        max_attempts = self.max_attempts,
                        %error,
                        "handler failed; the delivery stays in the inbox for a retry"
                    );
                    Ok(Outcome::Retry { attempts, error })
                }
            }
        }
    }

    /// Processes every item pending now, oldest first, once each; an item behind an older
    /// pending item of its thread that did not finish in this drain waits
    /// ([`DrainReport::held_back`]). An item the inbox fails on is counted in
    /// [`DrainReport::failed`] and the drain goes on: one bad item must not hold up every item
    /// behind it (only those of its own thread). `Err` only when the pending items cannot be
    /// listed. Sets the `tfpilot_inbox_depth` gauge from what it saw and did.
    pub async fn drain(&self) -> Result<DrainReport, InboxError> {
        self.drain_until(&AtomicBool::new(false)).await
    }

    /// [`Self::drain`], stopping before the next item once `stop` is set.
    async fn drain_until(&self, stop: &AtomicBool) -> Result<DrainReport, InboxError> {
        let entries = self.inbox.pending_entries().await?;
        let mut report = DrainReport::default();
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut finished = 0;
        for entry in &entries {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let thread = entry.thread.as_deref();
            if thread.is_some_and(|t| blocked.contains(t)) {
                report.held_back += 1;
                continue;
            }
            let outcome = self.process_unordered(&entry.id).await;
            let is_final = outcome.as_ref().is_ok_and(Outcome::is_final);
            if is_final {
                finished += 1;
            } else if let Some(thread) = thread {
                blocked.insert(thread);
            }
            match outcome {
                Ok(outcome) => report.add(&outcome),
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(delivery = %entry.id, error = %e, "cannot process the inbox item; it stays pending");
                }
            }
        }
        metrics::inbox_depth(entries.len().saturating_sub(finished));
        if !entries.is_empty() {
            self.handler.settle().await;
        }
        Ok(report)
    }

    /// The background loop of `serve`: drains at start (resuming what a crash left undone), then
    /// processes each id from `queue` as it arrives (ids that arrive together against one listing
    /// of the inbox), and drains again every retry interval (failed items, and anything that
    /// reached the inbox without reaching the queue). Stops when `shutdown` completes, after the
    /// item in hand (a drain in progress stops before its next item).
    pub async fn run(
        &self,
        mut queue: mpsc::UnboundedReceiver<DeliveryId>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let stop = AtomicBool::new(false);
        let mut last_prune: Option<Instant> = None;
        let mut queue_open = true;
        let mut drain_now = true;
        // Ids the last batch held back behind an older item of their thread.
        let mut held: Vec<DeliveryId> = Vec::new();
        // An interval, not a sleep per loop: a steady stream of new items must not postpone it.
        let mut drain_timer = tokio::time::interval_at(
            tokio::time::Instant::now() + self.retry_interval,
            self.retry_interval,
        );
        drain_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL) {
                last_prune = Some(Instant::now());
                self.prune().await;
            }
            if drain_now {
                drain_now = false;
                let drain = self.drain_until(&stop);
                tokio::pin!(drain);
                let mut stopping = false;
                let drained = tokio::select! {
                    biased;
                    drained = &mut drain => drained,
                    _ = &mut shutdown => {
                        // Finish the item in hand, not the whole drain.
                        stop.store(true, Ordering::SeqCst);
                        stopping = true;
                        drain.await
                    }
                };
                match drained {
                    Ok(report) if report != DrainReport::default() => {
                        tracing::info!(?report, "inbox drained");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the inbox; trying again later");
                    }
                }
                if stopping {
                    break;
                }
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = drain_timer.tick() => drain_now = true,
                next = queue.recv(), if queue_open => match next {
                    Some(id) => {
                        // Held back last time behind an item this batch may finish: tried again.
                        let mut queued = std::mem::take(&mut held);
                        queued.push(id);
                        while queued.len() < self.queue_batch
                            && let Ok(id) = queue.try_recv()
                        {
                            queued.push(id);
                        }
                        match self.process_queued(&queued, &mut shutdown).await {
                            std::ops::ControlFlow::Break(()) => break,
                            std::ops::ControlFlow::Continue(mut again) => {
                                // Held ids beyond half a batch wait for the retry drain: a
                                // batch full of them would take one new id per listing, and a
                                // burst would cost a listing per delivery.
                                again.truncate(self.queue_batch / 2);
                                held = again;
                            }
                        }
                        // A burst is over when nothing more is queued: settle once for it.
                        if queue.is_empty() {
                            self.handler.settle().await;
                        }
                    }
                    None => queue_open = false,
                },
            }
        }
    }

    /// Processes ids taken from the queue together against one listing of the inbox, in the
    /// listing's order (delivery order), not the queue's: a listing per item (what
    /// [`Self::process_one`] does) reads every pending item, so under a backlog the worker's time
    /// would grow with its square; and two deliveries of one thread can reach the queue in the
    /// other order than they were received (their puts finish together), which must not hold the
    /// newer one back until the next drain. An item is held back only behind an older pending
    /// item of its thread that this batch does not finish; such ids are returned, to be tried
    /// again with the next batch (the drain finds them too; [`Worker::run`] carries at most half
    /// a batch of them, so new ids always fill the other half). The ids were queued after their
    /// items were stored, so the listing holds every one of them. Breaks when `shutdown`
    /// completes, before the next item (the rest stays in the inbox for the next drain).
    ///
    /// After one retry interval the batch yields, and the loop runs the retry drain (due by
    /// then: its timer ticks every retry interval) and the prune before going on; the drain
    /// takes the ids the batch did not reach with every other pending item, in delivery order, so
    /// they are not returned (on S3 each would cost a read of its own in the next batch).
    /// Without that, 4,096 items that take a second each would keep an older failed item, and
    /// the newer items of its thread, waiting for over an hour.
    async fn process_queued(
        &self,
        ids: &[DeliveryId],
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> std::ops::ControlFlow<(), Vec<DeliveryId>> {
        use std::collections::{HashMap, HashSet};
        let entries = match self.inbox.pending_entries().await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the inbox; its items wait for the next drain");
                return std::ops::ControlFlow::Continue(Vec::new());
            }
        };
        let mut wanted: HashSet<&DeliveryId> = ids.iter().collect();
        // Per thread, the oldest item still pending after its turn here: what newer ones wait for.
        let mut waiting_on: HashMap<&str, &DeliveryId> = HashMap::new();
        let mut held = Vec::new();
        let started = Instant::now();
        let listed = entries.iter().map(|e| (&e.id, e.thread.as_deref()));
        // Ids not in the listing (finished or pruned meanwhile) are looked at last, alone. (A
        // set of the batch's ids, not of the listing's: a backlog's listing is long.)
        let unlisted: Vec<_> = {
            let in_listing: HashSet<&DeliveryId> = entries
                .iter()
                .filter_map(|e| wanted.get(&e.id).copied())
                .collect();
            ids.iter().filter(|id| !in_listing.contains(id)).collect()
        };
        for (id, thread) in listed.chain(unlisted.into_iter().map(|id| (id, None))) {
            if !wanted.remove(id) {
                // Pending but not in this batch (failed earlier, or another process's): the
                // newer items of its thread wait for it.
                if let Some(thread) = thread {
                    waiting_on.entry(thread).or_insert(id);
                }
                continue;
            }
            let stopping = tokio::select! {
                biased;
                _ = shutdown.as_mut() => true,
                _ = std::future::ready(()) => false,
            };
            if stopping {
                return std::ops::ControlFlow::Break(());
            }
            if started.elapsed() >= self.retry_interval {
                tracing::info!(
                    left = wanted.len() + 1,
                    "a batch of queued items yields to the retry drain"
                );
                return std::ops::ControlFlow::Continue(held);
            }
            if let Some(behind) = thread.and_then(|t| waiting_on.get(t)) {
                tracing::info!(delivery = %id, %behind, "waits behind an older delivery of its thread");
                held.push(id.clone());
                continue;
            }
            match self.process(id).await {
                Ok(outcome) if outcome.is_final() => {}
                // Still pending (busy elsewhere, not due, failed): its thread waits for it.
                outcome => {
                    if let Err(e) = outcome {
                        tracing::error!(delivery = %id, error = %e, "cannot process the inbox item; retrying later");
                    }
                    if let Some(thread) = thread {
                        waiting_on.entry(thread).or_insert(id);
                    }
                }
            }
        }
        std::ops::ControlFlow::Continue(held)
    }

    async fn prune(&self) {
        let Ok(retention) = time::Duration::try_from(RETENTION) else {
            return;
        };
        match self
            .inbox
            .prune(OffsetDateTime::now_utc() - retention)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned finished inbox items"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the inbox"),
        }
    }
}
