//! The requests dashboard: one issue per infra repository, opened and kept by TfPilot
//! ([`comments::dashboard`] renders it from the stored requests).
//!
//! Debounced: deciding anything about a repository only marks its dashboard as touched; the
//! worker settles ([`EventHandler::settle`](crate::worker::EventHandler::settle)) once the
//! deliveries in hand are done, and each touched dashboard is then rendered once and written
//! only if its body changed. A burst of events costs one edit. The sweep renders every
//! dashboard again (ages, and anything a crash left untouched). A hand edit (`issues.edited` by
//! someone else) is put back.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Executor;
use super::facts::Scope;
use crate::comments::dashboard::{self, TITLE};
use crate::domain::{ListFilter, Request};
use crate::github::GitHubError;
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::store::DashboardRecord;
use crate::webhook::events::{IssuesAction, IssuesEvent};

/// The repositories whose dashboards wait for the next settle.
#[derive(Debug, Default)]
pub(super) struct Touched {
    repos: std::sync::Mutex<BTreeMap<RepoName, (InstallationId, Option<String>)>>,
}

impl Touched {
    fn take(&self) -> BTreeMap<RepoName, (InstallationId, Option<String>)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<RepoName, (InstallationId, Option<String>)>> {
        // A panic while holding it cannot leave the map half-written: use it as it is.
        self.repos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// `.tfpilot.yml` turns the dashboard off (or cannot be read: nothing is written then).
    Off,
    /// The body is what the issue already shows.
    Unchanged,
    /// The issue was opened.
    Opened(u64),
    /// The issue's body was written.
    Edited(u64),
}

impl Executor {
    /// Notes that a request of `scope`'s repository was written: its dashboard is refreshed at
    /// the next settle.
    pub(super) fn touch_dashboard(&self, scope: &Scope) {
        if !self.dashboards {
            return;
        }
        self.touched.lock().insert(
            scope.repo.clone(),
            (scope.installation, scope.default_branch.clone()),
        );
    }

    /// Refreshes every dashboard touched since the last settle, once each, from one listing of
    /// the live requests. One failing does not stop the others; it stays touched for the next
    /// settle.
    pub async fn settle_dashboards(&self) {
        let touched = self.touched.take();
        if touched.is_empty() {
            return;
        }
        let mut live = match self.store.list(&ListFilter::default()).await {
            Ok(live) => by_repo(live),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the requests for the dashboards; trying again later");
                self.touched.lock().extend(touched);
                return;
            }
        };
        for (repo, (installation, default_branch)) in touched {
            let Some(scope) = self.scope(&repo, Some(installation), default_branch.as_deref())
            else {
                continue;
            };
            let requests = live.remove(&repo.to_string().to_ascii_lowercase());
            if let Err(e) = self
                .refresh_with(&scope, requests.unwrap_or_default(), false)
                .await
            {
                tracing::warn!(repo = %repo, error = %format!("{e:#}"), "cannot refresh the requests dashboard; trying again later");
                self.touched
                    .lock()
                    .insert(repo, (installation, default_branch));
            }
        }
    }

    /// Renders the dashboard of every repository with a live request (the sweep: ages move,
    /// and a dashboard a crash left behind catches up).
    pub(super) async fn sweep_dashboards(&self) -> anyhow::Result<()> {
        for r in self.store.list(&ListFilter::default()).await? {
            if let Ok(scope) = self.request_scope(&r) {
                self.touch_dashboard(&scope);
            }
        }
        self.settle_dashboards().await;
        Ok(())
    }

    /// Renders `scope`'s dashboard and writes it when it changed (always when `restore`: the
    /// issue was changed by hand), opening the issue the first time.
    pub(super) async fn refresh_dashboard(
        &self,
        scope: &Scope,
        restore: bool,
    ) -> anyhow::Result<Refreshed> {
        let live = self
            .store
            .list(&ListFilter {
                repo: Some(scope.repo.clone()),
                ..ListFilter::default()
            })
            .await?;
        self.refresh_with(scope, live, restore).await
    }

    /// [`Self::refresh_dashboard`] with `live`, the repository's live requests, already read.
    /// Archived requests are read only by id: those the last render showed live and that are
    /// gone now, and the finished ones it listed (at most [`dashboard::FINISHED_SHOWN`]); the
    /// history is scanned only for a repository's first dashboard.
    async fn refresh_with(
        &self,
        scope: &Scope,
        live: Vec<Request>,
        restore: bool,
    ) -> anyhow::Result<Refreshed> {
        match self.read_settings(scope).await? {
            Ok(settings) if settings.dashboard => {}
            Ok(_) => return Ok(Refreshed::Off),
            Err(denial) => {
                tracing::warn!(repo = %scope.repo, reason = %denial.reason, "the dashboard is not refreshed while the settings cannot be read");
                return Ok(Refreshed::Off);
            }
        }
        let stored = self.store.dashboard(&scope.repo).await?;
        let live_ids: BTreeSet<RequestId> = live.iter().map(|r| r.id).collect();
        let mut requests = live;
        match &stored {
            Some((record, _)) => {
                let archived: BTreeSet<RequestId> = record
                    .finished
                    .iter()
                    .chain(&record.shown)
                    .filter(|id| !live_ids.contains(id))
                    .copied()
                    .collect();
                for id in archived {
                    if let Some(r) = self.store.get_archived(id).await? {
                        requests.push(r);
                    }
                }
            }
            None => {
                let history = self
                    .store
                    .list(&ListFilter {
                        repo: Some(scope.repo.clone()),
                        include_archived: true,
                        ..ListFilter::default()
                    })
                    .await?;
                requests.extend(history.into_iter().filter(|r| !live_ids.contains(&r.id)));
            }
        }
        let now = OffsetDateTime::now_utc();
        let finished = dashboard::finished_archived(&requests);
        let body = dashboard::render(&requests, now, &self.prefix);
        let digest = hex(&Sha256::digest(body.as_bytes()));
        let (refreshed, etag) = match stored {
            Some((record, _)) if record.digest == digest && !restore => {
                return Ok(Refreshed::Unchanged);
            }
            Some((record, etag)) => {
                match scope
                    .gh
                    .update_issue(record.issue, TITLE, &body, restore)
                    .await
                {
                    Ok(()) => (Refreshed::Edited(record.issue), Some(etag)),
                    // Deleted (or transferred away): a new one is opened.
                    Err(GitHubError::NotFound { .. }) => {
                        let number = scope.gh.create_issue(TITLE, &body).await?;
                        (Refreshed::Opened(number), Some(etag))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let number = scope.gh.create_issue(TITLE, &body).await?;
                (Refreshed::Opened(number), None)
            }
        };
        let number = match refreshed {
            Refreshed::Opened(n) | Refreshed::Edited(n) => n,
            Refreshed::Off | Refreshed::Unchanged => return Ok(refreshed),
        };
        let record = DashboardRecord {
            issue: number,
            digest,
            edited_at: now,
            shown: live_ids.into_iter().collect(),
            finished,
        };
        if !self
            .store
            .put_dashboard(&scope.repo, &record, etag.as_ref())
            .await?
        {
            // Another instance wrote it meanwhile; its next refresh (or ours) compares again.
            tracing::info!(repo = %scope.repo, "the dashboard record changed meanwhile; the next refresh compares again");
        }
        Ok(refreshed)
    }

    /// `issues` events: a hand edit of the dashboard issue is put back, and a closed one is
    /// opened again (`dashboard: false` in `.tfpilot.yml` is how a repository turns it off).
    pub(super) async fn on_issues(&self, e: &IssuesEvent) -> anyhow::Result<()> {
        let by_hand = matches!(e.action, IssuesAction::Edited | IssuesAction::Closed);
        if !self.dashboards || !by_hand || self.is_own(&e.sender) {
            return Ok(());
        }
        let Some(scope) = self.scope(
            &e.repository.full_name,
            e.installation.as_ref().map(|i| i.id),
            e.repository.default_branch.as_deref(),
        ) else {
            return Ok(());
        };
        let Some((record, _)) = self.store.dashboard(&scope.repo).await? else {
            return Ok(());
        };
        if record.issue != e.issue.number {
            return Ok(());
        }
        tracing::info!(repo = %scope.repo, issue = record.issue, editor = %e.sender.login, action = ?e.action, "the dashboard was changed by hand; putting it back");
        self.refresh_dashboard(&scope, true).await?;
        Ok(())
    }
}

/// Requests by repository (lowercased: GitHub compares names without case).
fn by_repo(requests: Vec<Request>) -> BTreeMap<String, Vec<Request>> {
    let mut out: BTreeMap<String, Vec<Request>> = BTreeMap::new();
    for r in requests {
        out.entry(r.repo.to_string().to_ascii_lowercase())
            .or_default()
            .push(r);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
