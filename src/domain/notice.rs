//! Notices: what TfPilot tells a team's chat (Slack) about a request, as plain data. The
//! lifecycle decides them (an [`Effect::Notify`](super::Effect::Notify) in the outbox, after the
//! GitHub answers of the same decision); the `slack` module renders and delivers them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{RepoName, RequestId};

/// What happened, from the team's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    /// A plan succeeded and waits for an approval.
    PlanReady,
    PlanFailed,
    Approved,
    Applied,
    ApplyFailed,
    Destroyed,
    DestroyFailed,
    /// A drift check found the request's resources changed outside TfPilot.
    DriftFound,
}

impl NoticeEvent {
    pub const ALL: [NoticeEvent; 8] = [
        Self::PlanReady,
        Self::PlanFailed,
        Self::Approved,
        Self::Applied,
        Self::ApplyFailed,
        Self::Destroyed,
        Self::DestroyFailed,
        Self::DriftFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlanReady => "plan-ready",
            Self::PlanFailed => "plan-failed",
            Self::Approved => "approved",
            Self::Applied => "applied",
            Self::ApplyFailed => "apply-failed",
            Self::Destroyed => "destroyed",
            Self::DestroyFailed => "destroy-failed",
            Self::DriftFound => "drift-found",
        }
    }

    /// Whether something went wrong (shown as a warning).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::PlanFailed | Self::ApplyFailed | Self::DestroyFailed
        )
    }
}

impl fmt::Display for NoticeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message for the team's chat: everything needed to render it, decided with the state
/// change it reports (so a retry sends the same words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub event: NoticeEvent,
    pub request: RequestId,
    pub repo: RepoName,
    /// The issue the request lives on.
    pub issue: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    /// The workflow run the notice is about (plan, apply, destroy), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    pub module_type: String,
    pub environment: String,
    pub requester: String,
    /// Who caused it (the approver, or `tfpilot` for a run's result).
    pub actor: String,
    /// Who may approve (a plan waiting for approval names them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The webhook route `.tfpilot.yml` names for the environment (`None`: the default webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}
