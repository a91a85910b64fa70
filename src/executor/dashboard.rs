//! The requests dashboard: one issue per infra repository, opened and kept by TfPilot
//! ([`comments::dashboard`](crate::comments::dashboard) renders it).
//!
//! Debounced: a request written or carried out only marks its repository's dashboard as touched
//! (with the request's id); the worker settles
//! ([`EventHandler::settle`](crate::worker::EventHandler::settle)) once the deliveries in hand
//! are done, and each touched dashboard is refreshed once: the touched requests are read by id,
//! their rows in the dashboard's record updated, the body rendered from the rows and written only
//! if it changed. A burst of events costs one edit. The sweep refreshes every dashboard from one
//! listing of the live requests (ages move, and a touch a crash lost is made good). A hand edit
//! or close is put back.
//!
//! Exactly one issue per repository: the record is claimed (created without an issue) before the
//! issue is opened, so of two racing refreshes one opens it; an issue opened before a crash that
//! kept its number from the record is found again by its marker instead of opened twice.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::Executor;
use super::facts::Scope;
use crate::comments::dashboard::{self, MARKER_KEY, TITLE};
use crate::comments::marker;
use crate::domain::{DashboardRow, ListFilter, Request};
use crate::github::GitHubError;
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::store::DashboardRecord;
use crate::webhook::events::{IssuesAction, IssuesEvent};

/// A claim (a record without an issue yet) older than this is taken over: whoever claimed it
/// stopped before recording the issue it opened, if it opened one.
const CLAIM_TIMEOUT: Duration = Duration::minutes(1);

/// A repository whose dashboard waits for the next settle, and the requests that changed.
#[derive(Debug, Clone)]
struct Touch {
    installation: InstallationId,
    default_branch: Option<String>,
    ids: BTreeSet<RequestId>,
}

/// The repositories whose dashboards wait for the next settle.
#[derive(Debug, Default)]
pub(super) struct Touched {
    repos: std::sync::Mutex<BTreeMap<RepoName, Touch>>,
}

impl Touched {
    fn add(&self, repo: &RepoName, touch: Touch) {
        let mut repos = self.lock();
        let entry = repos.entry(repo.clone()).or_insert_with(|| Touch {
            ids: BTreeSet::new(),
            ..touch.clone()
        });
        entry.ids.extend(touch.ids);
    }

    fn take(&self) -> BTreeMap<RepoName, Touch> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RepoName, Touch>> {
        // A panic while holding it cannot leave the map half-written: use it as it is.
        self.repos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What changed since the dashboard was last rendered.
enum Changes {
    /// These requests (read each by id).
    Requests(BTreeSet<RequestId>),
    /// The repository's live requests are these (the sweep): every row is brought up to date.
    Live(Vec<Request>),
    /// Nothing: render the rows as kept (a hand edit is put back).
    Nothing,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// `.tfpilot.yml` turns the dashboard off (or cannot be read: nothing is written then).
    Off,
    /// The body is what the issue already shows.
    Unchanged,
    /// Another worker is opening the issue right now; this refresh comes again later.
    Deferred,
    /// The issue was opened (or found again by its marker).
    Opened(u64),
    /// The issue's body was written.
    Edited(u64),
}

impl Executor {
    /// Notes that request `id` of `scope`'s repository was written or carried out: its dashboard
    /// is refreshed at the next settle.
    pub(super) fn touch_dashboard(&self, scope: &Scope, id: RequestId) {
        if !self.dashboards {
            return;
        }
        self.touched.add(
            &scope.repo,
            Touch {
                installation: scope.installation,
                default_branch: scope.default_branch.clone(),
                ids: BTreeSet::from([id]),
            },
        );
    }

    /// Refreshes every dashboard touched since the last settle, once each. One failing does not
    /// stop the others; it stays touched for the next settle.
    pub async fn settle_dashboards(&self) {
        for (repo, touch) in self.touched.take() {
            let Some(scope) = self.scope(
                &repo,
                Some(touch.installation),
                touch.default_branch.as_deref(),
            ) else {
                continue;
            };
            let changes = Changes::Requests(touch.ids.clone());
            match self.refresh_dashboard(&scope, changes, false).await {
                Ok(Refreshed::Deferred) => self.touched.add(&repo, touch),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(repo = %repo, error = %format!("{e:#}"), "cannot refresh the requests dashboard; trying again later");
                    self.touched.add(&repo, touch);
                }
            }
        }
    }

    /// Refreshes the dashboard of every repository with a live request from one listing of the
    /// store (the sweep: ages move, and a touch a crash lost is made good).
    pub(super) async fn sweep_dashboards(&self) -> anyhow::Result<()> {
        if !self.dashboards {
            return Ok(());
        }
        let mut by_repo: BTreeMap<String, Vec<Request>> = BTreeMap::new();
        for r in self.store.list(&ListFilter::default()).await? {
            by_repo
                .entry(r.repo.to_string().to_ascii_lowercase())
                .or_default()
                .push(r);
        }
        for live in by_repo.into_values() {
            let Some(scope) = live.first().and_then(|r| self.request_scope(r).ok()) else {
                continue;
            };
            if let Err(e) = self
                .refresh_dashboard(&scope, Changes::Live(live), false)
                .await
            {
                tracing::warn!(repo = %scope.repo, error = %format!("{e:#}"), "cannot refresh the requests dashboard; trying again at the next sweep");
            }
        }
        Ok(())
    }

    /// Brings `scope`'s dashboard up to date with `changes` and writes it when its body changed
    /// (always when `restore`: the issue was changed by hand), opening the issue the first time.
    async fn refresh_dashboard(
        &self,
        scope: &Scope,
        changes: Changes,
        restore: bool,
    ) -> anyhow::Result<Refreshed> {
        match self.read_settings(scope).await? {
            Ok(settings) if settings.dashboard => {}
            Ok(_) => return self.close_turned_off(scope).await,
            Err(denial) => {
                tracing::warn!(repo = %scope.repo, reason = %denial.reason, "the dashboard is not refreshed while the settings cannot be read");
                return Ok(Refreshed::Off);
            }
        }
        let now = OffsetDateTime::now_utc();
        let (mut record, etag, claimed) = match self.store.dashboard(&scope.repo).await? {
            Some((record, etag)) => (record, etag, false),
            None => {
                let claim = DashboardRecord {
                    issue: None,
                    digest: String::new(),
                    edited_at: now,
                    rows: BTreeMap::new(),
                    off: false,
                };
                match self.store.put_dashboard(&scope.repo, &claim, None).await? {
                    Some(etag) => (claim, etag, true),
                    // Claimed by another worker a moment ago.
                    None => return Ok(Refreshed::Deferred),
                }
            }
        };
        if record.issue.is_none() && !claimed && now - record.edited_at < CLAIM_TIMEOUT {
            return Ok(Refreshed::Deferred);
        }
        let first = record.issue.is_none() && record.rows.is_empty();
        self.update_rows(scope, &mut record.rows, changes, first)
            .await?;
        let keep: BTreeSet<RequestId> = dashboard::kept(&record.rows).into_iter().collect();
        record.rows.retain(|id, _| keep.contains(id));
        let body = dashboard::render(record.rows.values(), now, &self.prefix);
        let digest = hex(&Sha256::digest(body.as_bytes()));
        if record.issue.is_some() && record.digest == digest && !restore {
            // The rows may hold what the body does not show (a finer time): not worth a write.
            return Ok(Refreshed::Unchanged);
        }
        let refreshed = match record.issue {
            Some(number) => match scope.gh.update_issue(number, TITLE, &body, true).await {
                Ok(()) => Refreshed::Edited(number),
                // Deleted, or moved to another repository: a new one is opened.
                Err(GitHubError::NotFound { .. }) => {
                    Refreshed::Opened(scope.gh.create_issue(TITLE, &body).await?)
                }
                Err(e) => return Err(e.into()),
            },
            // Ours to open; one opened by a worker that stopped before recording it is found
            // by its marker.
            None => match scope.gh.find_own_issue(&marker(MARKER_KEY)).await? {
                Some(number) => {
                    scope.gh.update_issue(number, TITLE, &body, true).await?;
                    Refreshed::Opened(number)
                }
                None => Refreshed::Opened(scope.gh.create_issue(TITLE, &body).await?),
            },
        };
        let (Refreshed::Opened(number) | Refreshed::Edited(number)) = refreshed else {
            return Ok(refreshed);
        };
        record.issue = Some(number);
        record.digest = digest;
        record.edited_at = now;
        record.off = false;
        if self
            .store
            .put_dashboard(&scope.repo, &record, Some(&etag))
            .await?
            .is_none()
        {
            // Another refresh wrote meanwhile, and its edit may have landed before this one:
            // render once more from what it recorded.
            tracing::info!(repo = %scope.repo, "the dashboard record changed meanwhile; rendering it again");
            return Ok(Refreshed::Deferred);
        }
        Ok(refreshed)
    }

    /// A repository that turned its dashboard off gets it closed once, saying so.
    async fn close_turned_off(&self, scope: &Scope) -> anyhow::Result<Refreshed> {
        let Some((mut record, etag)) = self.store.dashboard(&scope.repo).await? else {
            return Ok(Refreshed::Off);
        };
        let Some(number) = record.issue.filter(|_| !record.off) else {
            return Ok(Refreshed::Off);
        };
        let body = dashboard::turned_off();
        match scope.gh.update_issue(number, TITLE, &body, false).await {
            Ok(()) | Err(GitHubError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        record.off = true;
        record.digest = String::new();
        record.edited_at = OffsetDateTime::now_utc();
        if self
            .store
            .put_dashboard(&scope.repo, &record, Some(&etag))
            .await?
            .is_none()
        {
            return Ok(Refreshed::Deferred);
        }
        Ok(Refreshed::Off)
    }

    /// Updates `rows` with `changes`; a repository's `first` dashboard lists its whole history
    /// once.
    async fn update_rows(
        &self,
        scope: &Scope,
        rows: &mut BTreeMap<RequestId, DashboardRow>,
        changes: Changes,
        first: bool,
    ) -> anyhow::Result<()> {
        if first {
            let filter = ListFilter {
                repo: Some(scope.repo.clone()),
                include_archived: true,
                ..ListFilter::default()
            };
            for r in self.store.list(&filter).await? {
                rows.insert(r.id, DashboardRow::of(&r));
            }
        }
        let ids: BTreeSet<RequestId> = match changes {
            Changes::Nothing => return Ok(()),
            Changes::Requests(ids) => ids,
            Changes::Live(live) => {
                let live_ids: BTreeSet<RequestId> = live.iter().map(|r| r.id).collect();
                // Shown as live but live no more: archived since (read below).
                let gone: BTreeSet<RequestId> = rows
                    .values()
                    .filter(|row| !row.archived && !live_ids.contains(&row.id))
                    .map(|row| row.id)
                    .collect();
                for r in &live {
                    rows.insert(r.id, DashboardRow::of(r));
                }
                gone
            }
        };
        for id in ids {
            let found = match self.store.get(id).await? {
                Some(r) => Some(r.into_inner()),
                None => self.store.get_archived(id).await?,
            };
            match found {
                Some(r) if super::same_repo(&r.repo, &scope.repo) => {
                    rows.insert(id, DashboardRow::of(&r));
                }
                _ => {
                    rows.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// `issues` events: a hand edit of the dashboard issue is put back, and a closed one is
    /// opened again (`dashboard: false` in `.tfpilot.yml` is how a repository turns it off).
    pub(super) async fn on_issues(&self, e: &IssuesEvent) -> anyhow::Result<()> {
        let by_hand = matches!(e.action, IssuesAction::Edited | IssuesAction::Closed);
        if !self.dashboards || !by_hand || e.sender.login.eq_ignore_ascii_case(&self.bot_login) {
            return Ok(());
        }
        let Some(scope) = self.event_scope(&e.repository, e.installation.as_ref()) else {
            return Ok(());
        };
        let Some((record, _)) = self.store.dashboard(&scope.repo).await? else {
            return Ok(());
        };
        if record.issue != Some(e.issue.number) || record.off {
            return Ok(());
        }
        tracing::info!(repo = %scope.repo, issue = e.issue.number, editor = %e.sender.login, action = ?e.action, "the dashboard was changed by hand; putting it back");
        if self
            .refresh_dashboard(&scope, Changes::Nothing, true)
            .await?
            == Refreshed::Deferred
        {
            anyhow::bail!("the dashboard record changed meanwhile; putting it back again");
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
