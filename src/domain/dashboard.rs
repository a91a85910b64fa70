//! What a repository's requests dashboard shows of one request: a small row kept in the
//! dashboard's record, so the dashboard is rendered without reading every request again.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::request::{Request, RequestStatus};
use crate::ids::RequestId;

/// One request as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardRow {
    pub id: RequestId,
    pub module_type: String,
    #[serde(default)]
    pub environment: Option<String>,
    pub requester: String,
    pub status: RequestStatus,
    pub issue_number: u64,
    #[serde(default)]
    pub pull_request: Option<u64>,
    /// The most recently dispatched run's page.
    #[serde(default)]
    pub last_run_url: Option<String>,
    /// The drift check that found drift, when the request drifted.
    #[serde(default)]
    pub drift_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Since when it is where it is: since its drift was found, else its last change, else its
    /// creation; for an archived request, when it was archived.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Whether the request is archived (in the store's history).
    #[serde(default)]
    pub archived: bool,
}

impl DashboardRow {
    pub fn of(r: &Request) -> Self {
        let changed = r.timeline.last().map_or(r.created_at, |t| t.at);
        let since = match (&r.archived_at, &r.drift) {
            (Some(at), _) => *at,
            (None, Some(drift)) => drift.found_at,
            (None, None) => changed,
        };
        DashboardRow {
            id: r.id,
            module_type: r.module_type.clone(),
            environment: r.environment.clone(),
            requester: r.requester.clone(),
            status: r.status,
            issue_number: r.issue_number,
            pull_request: r.pull_request.as_ref().map(|p| p.number),
            last_run_url: r
                .runs
                .values()
                .filter_map(|run| run.url.as_ref().map(|u| (run.dispatched_at, u)))
                .max_by_key(|(at, _)| *at)
                .map(|(_, u)| u.clone()),
            drift_url: r.drift.as_ref().map(|d| d.url.clone()),
            created_at: r.created_at,
            since,
            archived: r.archived_at.is_some(),
        }
    }
}
