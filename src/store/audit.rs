//! `tfpilot audit <request-id>`: everything the store knows about one request, as one JSON
//! document (the request, live or archived, its timeline, runs, approvals, chat and events).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use super::{RequestStore, StoreError, open_store};
use crate::domain::{
    Approval, ChatTurn, LifecycleEvent, Request, RunKind, RunRecord, TimelineEntry,
};
use crate::ids::RequestId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditState {
    Active,
    Archived,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub request_id: RequestId,
    pub state: AuditState,
    /// Where it was read from.
    pub store: String,
    pub request: Request,
    pub timeline: Vec<TimelineEntry>,
    pub runs: BTreeMap<RunKind, RunRecord>,
    pub approvals: Vec<Approval>,
    pub chat: Vec<ChatTurn>,
    pub events: Vec<LifecycleEvent>,
}

/// Collects the audit report of one request; [`StoreError::NotFound`] if it is neither live
/// nor archived.
pub async fn audit(store: &dyn RequestStore, id: RequestId) -> Result<AuditReport, StoreError> {
    let (request, state) = match store.get(id).await? {
        Some(live) => (live.into_inner(), AuditState::Active),
        None => match store.get_archived(id).await? {
            Some(archived) => (archived, AuditState::Archived),
            None => return Err(StoreError::NotFound(id)),
        },
    };
    Ok(AuditReport {
        request_id: id,
        state,
        store: store.location(),
        timeline: request.timeline.clone(),
        runs: request.runs.clone(),
        approvals: request.approvals.clone(),
        chat: store.chat(id).await?,
        events: store.events(id).await?,
        request,
    })
}

/// The `audit` command: opens the store at `store_url` (see [`super::open_store`]), writes the
/// report of `request_id` to `out` as pretty JSON.
pub async fn run_audit(
    store_url: &str,
    chat_bucket: Option<&str>,
    request_id: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let id: RequestId = request_id.parse()?;
    let store = open_store(store_url, chat_bucket).await?;
    let report = match audit(store.as_ref(), id).await {
        Err(StoreError::NotFound(_)) => anyhow::bail!(
            "no request {id} in {}, neither active nor archived",
            store.location()
        ),
        other => other?,
    };
    serde_json::to_writer_pretty(&mut *out, &report).context("writing the audit report")?;
    writeln!(out).context("writing the audit report")?;
    Ok(())
}
