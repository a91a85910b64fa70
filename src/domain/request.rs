//! The stored shape of a request, its chat turns and its lifecycle events: plain data.
//!
//! Forward compatibility is the rule: every field added after schema version 1 carries
//! `#[serde(default)]`, and fields this build does not know are kept in [`Request::extra`] and
//! written back unchanged, so an older and a newer TfPilot can share one store during a rollout.
//! `schema_version` only moves for a change an older build must not misread; a stored request
//! with a newer schema version is refused with a clear error instead of being rewritten.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::effect::{EffectKey, EffectResult, PendingEffect};
use super::run::{RunKind, RunRecord};
use crate::ids::{InstallationId, RepoName, RequestId};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Drift found in a request's resources by a drift check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    pub run_id: u64,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    /// The changed resources, `"<address> (<action>)"`.
    pub changes: Vec<String>,
}

/// One TfPilot request: the system of record for a conversation, its PR, and its workflow runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    /// Incremented by the store on every write; the compare-and-swap compares it (fs) or the
    /// object's ETag, which changes with it (S3).
    pub version: u64,
    pub schema_version: u32,
    /// The module catalogue type (`s3-bucket`, …).
    pub module_type: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    pub repo: RepoName,
    #[serde(default)]
    pub installation_id: Option<InstallationId>,
    /// The issue the request was opened on.
    pub issue_number: u64,
    /// GitHub login of the user who opened the request.
    pub requester: String,
    /// Input values as collected from the conversation, before normalization.
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// The normalized, validated module configuration, once the catalogue accepted the inputs.
    #[serde(default)]
    pub config: Option<BTreeMap<String, Value>>,
    pub status: RequestStatus,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub pull_request: Option<PullRequestRef>,
    /// The latest workflow run of each kind.
    #[serde(default)]
    pub runs: BTreeMap<RunKind, RunRecord>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Bumped each time the generated Terraform changes (a new plan is then needed).
    #[serde(default)]
    pub revision: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set by the store on every write.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Set by the store when the request moves to `history/`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Side effects already carried out, keyed by an effect key chosen by the executor, so a
    /// redelivered event does not post a comment or dispatch a workflow twice.
    #[serde(default)]
    pub effects: BTreeMap<EffectKey, EffectRecord>,
    /// The exact bounded block the request writes (markers included), once its config is complete.
    #[serde(default)]
    pub block: Option<String>,
    /// The branch its pull request merges into (from `.tfpilot.yml`, else the default branch).
    #[serde(default)]
    pub base_branch: Option<String>,
    /// The workflow file of each kind (from `.tfpilot.yml` when the request was opened).
    #[serde(default)]
    pub workflows: BTreeMap<RunKind, String>,
    /// The questions TfPilot asked last, so that a bare answer ("30") can fill them.
    #[serde(default)]
    pub questions: Vec<Clarification>,
    /// The Slack route `.tfpilot.yml` named for the environment when the request was opened
    /// (`None`: the default webhook; `off`: no chat notices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_route: Option<String>,
    /// What the last drift check found changed outside TfPilot in the request's resources
    /// (`None`: no drift known). A flag beside the status: the request stays `applied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftRecord>,
    /// The pull request that removes the block after a destroy.
    #[serde(default)]
    pub cleanup_pull_request: Option<PullRequestRef>,
    /// The last commit TfPilot made on each branch it writes (`request/<id>`, `cleanup/<id>`):
    /// it commits only on top of it, and approves and merges only a pull request whose head it
    /// is, so commits pushed by someone else never ride along under TfPilot's name.
    #[serde(default)]
    pub branch_heads: BTreeMap<String, String>,
    /// Effects decided but not yet carried out (written with the state they belong to, so a crash
    /// between two effects resumes where it stopped).
    #[serde(default)]
    pub outbox: Vec<PendingEffect>,
    /// Who is carrying out the outbox now, and until when (renewed after every effect): one
    /// performer at a time per request. Absent when nobody is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_lease: Option<OutboxLease>,
    /// Fields written by a newer TfPilot that this build does not know; kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Request {
    /// A fresh request in `collecting`, opened by `requester` on `repo#issue_number`.
    /// The store sets `version` and `updated_at` when it writes.
    pub fn new(
        id: RequestId,
        repo: RepoName,
        issue_number: u64,
        requester: impl Into<String>,
        module_type: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            version: 0,
            schema_version: SCHEMA_VERSION,
            module_type: module_type.into(),
            project: None,
            environment: None,
            repo,
            installation_id: None,
            issue_number,
            requester: requester.into(),
            inputs: BTreeMap::new(),
            config: None,
            status: RequestStatus::Collecting,
            branch: None,
            pull_request: None,
            runs: BTreeMap::new(),
            approvals: Vec::new(),
            revision: 0,
            created_at: now,
            updated_at: now,
            archived_at: None,
            timeline: Vec::new(),
            effects: BTreeMap::new(),
            block: None,
            base_branch: None,
            workflows: BTreeMap::new(),
            questions: Vec::new(),
            notify_route: None,
            drift: None,
            cleanup_pull_request: None,
            branch_heads: BTreeMap::new(),
            outbox: Vec::new(),
            outbox_lease: None,
            extra: BTreeMap::new(),
        }
    }

    /// Appends a timeline entry.
    pub fn record(
        &mut self,
        at: OffsetDateTime,
        actor: impl Into<String>,
        event: impl Into<String>,
        detail: Option<String>,
    ) {
        self.timeline.push(TimelineEntry {
            at,
            actor: actor.into(),
            event: event.into(),
            detail,
        });
    }

    pub fn run(&self, kind: RunKind) -> Option<&RunRecord> {
        self.runs.get(&kind)
    }
}

/// Where a request stands. Transitions are decided by `lifecycle`; the store only records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Collecting,
    Ready,
    PrOpen,
    Planning,
    Planned,
    PlanFailed,
    Approved,
    Merged,
    Applying,
    Applied,
    ApplyFailed,
    Destroying,
    DestroyFailed,
    Destroyed,
    Cancelled,
    PrClosed,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 16] = [
        Self::Collecting,
        Self::Ready,
        Self::PrOpen,
        Self::Planning,
        Self::Planned,
        Self::PlanFailed,
        Self::Approved,
        Self::Merged,
        Self::Applying,
        Self::Applied,
        Self::ApplyFailed,
        Self::Destroying,
        Self::DestroyFailed,
        Self::Destroyed,
        Self::Cancelled,
        Self::PrClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collecting => "collecting",
            Self::Ready => "ready",
            Self::PrOpen => "pr_open",
            Self::Planning => "planning",
            Self::Planned => "planned",
            Self::PlanFailed => "plan_failed",
            Self::Approved => "approved",
            Self::Merged => "merged",
            Self::Applying => "applying",
            Self::Applied => "applied",
            Self::ApplyFailed => "apply_failed",
            Self::Destroying => "destroying",
            Self::DestroyFailed => "destroy_failed",
            Self::Destroyed => "destroyed",
            Self::Cancelled => "cancelled",
            Self::PrClosed => "pr_closed",
        }
    }

    /// A request in a terminal state no longer holds its issue/PR thread: a new request may be
    /// opened there.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Destroyed | Self::Cancelled)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a request status (one of: collecting, ready, pr_open, planning, planned, plan_failed, approved, merged, applying, applied, apply_failed, destroying, destroy_failed, destroyed, cancelled, pr_closed)"
)]
pub struct InvalidStatus(pub String);

impl FromStr for RequestStatus {
    type Err = InvalidStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| InvalidStatus(s.to_owned()))
    }
}

/// The pull request that carries the request's Terraform change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    pub number: u64,
    pub url: String,
    pub head_sha: String,
    #[serde(default)]
    pub merged: bool,
    /// The merge commit, once merged.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
}

/// The performer lease on a request's outbox: `owner` (one invocation of the outbox runner)
/// carries out the pending effects until `until`; after that anyone may take over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLease {
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// An approval, valid for the head commit it was given on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub login: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub head_sha: String,
    /// The resource changes of the plan approved ([`RunRecord::changes`](crate::domain::RunRecord::changes)):
    /// a later plan with the same changes keeps the approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

/// One entry of a request's own history (who did what, when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub event: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// A side effect the executor has carried out, with whatever it needs to remember about it
/// (a comment id, a PR number, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default)]
    pub result: EffectResult,
}

/// One turn of the conversation, kept in the chat log (its own bucket or prefix, encrypted at
/// rest), never in the request object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// GitHub login of the author, or the app's name for TfPilot's own replies.
    pub author: String,
    pub role: ChatRole,
    pub text: String,
    /// What the assistant extracted from this turn (input values), if anything.
    #[serde(default)]
    pub extracted: Option<Value>,
    /// The GitHub comment the turn came from or was posted as.
    #[serde(default)]
    pub comment_id: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    User,
    Assistant,
}

/// A question about one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clarification {
    /// The canonical input name.
    pub input: String,
    pub question: String,
    #[serde(flatten)]
    pub kind: ClarificationKind,
}

/// What kind of answer a question wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClarificationKind {
    Text,
    Choice { options: Vec<String> },
    YesNo,
}

/// Which requests a listing returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<RequestStatus>,
    pub environment: Option<String>,
    pub module_type: Option<String>,
    pub project: Option<String>,
    pub repo: Option<RepoName>,
    /// Also archived requests (from `history/`; they have `archived_at` set).
    pub include_archived: bool,
}

impl ListFilter {
    pub fn matches(&self, r: &Request) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&r.status))
            && (self.environment.is_none() || self.environment == r.environment)
            && self
                .module_type
                .as_ref()
                .is_none_or(|m| *m == r.module_type)
            && (self.project.is_none() || self.project == r.project)
            && self.repo.as_ref().is_none_or(|repo| *repo == r.repo)
    }
}

/// One line of a request's lifecycle event log. The store writes one on create, on every
/// status change and on archive; callers may add their own with `append_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub request_id: RequestId,
    /// The request version this event belongs to (the version written, for store events).
    pub version: u64,
    /// `created`, `status_changed`, `archived`, or a caller's own word.
    pub kind: String,
    #[serde(default)]
    pub from: Option<RequestStatus>,
    #[serde(default)]
    pub to: Option<RequestStatus>,
    /// Who caused it (from the timeline entry written with the change, when there is one).
    #[serde(default)]
    pub actor: Option<String>,
    /// The timeline event that came with the change (`approve`, `plan_finished`, …).
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let mut r = Request::new(
            RequestId::new_random(),
            "acme/core-terraform".parse().unwrap(),
            12,
            "octocat",
            "s3-bucket",
            now,
        );
        r.environment = Some("dev".into());
        r.inputs.insert("name".into(), Value::from("invoices"));
        r.runs.insert(
            RunKind::Plan,
            RunRecord {
                run_id: Some(7),
                dispatched_at: Some(now),
                ..RunRecord::default()
            },
        );
        r.record(now, "octocat", "created", None);
        r
    }

    #[test]
    fn status_names_are_snake_case_and_round_trip() {
        for status in RequestStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, Value::from(status.as_str()));
            assert_eq!(status.as_str().parse::<RequestStatus>(), Ok(status));
        }
        assert_eq!(RequestStatus::PrOpen.as_str(), "pr_open");
        assert!("PrOpen".parse::<RequestStatus>().is_err());
    }

    #[test]
    fn request_round_trips_and_uses_documented_field_names() {
        let r = sample();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["status"], "collecting");
        assert_eq!(json["created_at"], "2026-01-02T03:04:05Z");
        assert_eq!(json["runs"]["plan"]["run_id"], 7);
        assert_eq!(json["repo"], "acme/core-terraform");
        let back: Request = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn unknown_fields_are_kept_and_missing_optional_fields_default() {
        let mut json = serde_json::to_value(sample()).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.insert("added_by_a_newer_build".into(), serde_json::json!({"x": 1}));
        for optional in [
            "runs",
            "approvals",
            "timeline",
            "effects",
            "inputs",
            "branch",
        ] {
            obj.remove(optional);
        }
        let r: Request = serde_json::from_value(json).unwrap();
        assert!(r.runs.is_empty() && r.timeline.is_empty() && r.branch.is_none());
        assert_eq!(
            r.extra.get("added_by_a_newer_build"),
            Some(&serde_json::json!({"x": 1}))
        );
        let again = serde_json::to_value(&r).unwrap();
        assert_eq!(again["added_by_a_newer_build"]["x"], 1);
    }

    #[test]
    fn required_fields_are_required() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json.as_object_mut().unwrap().remove("schema_version");
        assert!(serde_json::from_value::<Request>(json).is_err());
    }
}
