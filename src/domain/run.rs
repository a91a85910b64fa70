//! Workflow runs: the kinds TfPilot dispatches, the phases GitHub reports and the outcome kept
//! on the request.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The workflow kinds a request dispatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Plan,
    Apply,
    Destroy,
    Cleanup,
}

impl RunKind {
    pub const ALL: [RunKind; 4] = [Self::Plan, Self::Apply, Self::Destroy, Self::Cleanup];

    /// The word in workflow file names, settings keys and run titles (`plan`, `apply`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Apply => "apply",
            Self::Destroy => "destroy",
            Self::Cleanup => "cleanup",
        }
    }
}

/// Where a run GitHub reported stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    InProgress,
    Completed(Conclusion),
}

/// How a completed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    /// GitHub cancelled it (e.g. a queued run replaced in the same concurrency group).
    Cancelled,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        RunOutcome::from(self).as_str()
    }
}

/// A run's status as kept on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Dispatched; GitHub has not reported the run yet.
    Requested,
    InProgress,
    Completed,
    /// The dispatch could not be made (the run never existed).
    NotStarted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::NotStarted => "not_started",
        }
    }
}

/// A run's conclusion as kept on the request: GitHub's conclusion, or that it never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Success,
    Failure,
    Cancelled,
    NotStarted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
            Self::NotStarted => "not_started",
        }
    }
}

impl From<Conclusion> for RunOutcome {
    fn from(c: Conclusion) -> Self {
        match c {
            Conclusion::Success => Self::Success,
            Conclusion::Failure => Self::Failure,
            Conclusion::Cancelled => Self::Cancelled,
        }
    }
}

/// One workflow run. `run_id` and `url` are unknown until GitHub reports the run that a
/// dispatch started; `status` and `conclusion` stay empty until it does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default)]
    pub run_id: Option<u64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub conclusion: Option<RunOutcome>,
    #[serde(default)]
    pub head_sha: Option<String>,
    /// The request revision the run was dispatched for.
    #[serde(default)]
    pub revision: u64,
    /// The unique id the dispatch passed to the workflow, which echoes it in the run's name.
    #[serde(default)]
    pub dispatch_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub dispatched_at: Option<OffsetDateTime>,
    /// A plan's resource changes as a digest (`terraform::plan::changes_digest`), once posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
    /// The check run that reports this run on GitHub (`tfpilot/plan`, `tfpilot/apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_run_id: Option<u64>,
}

impl RunRecord {
    /// Whether the run is still to finish (dispatched, no conclusion yet).
    pub fn is_active(&self) -> bool {
        self.conclusion.is_none()
    }

    /// Whether the run finished successfully.
    pub fn succeeded(&self) -> bool {
        self.conclusion == Some(RunOutcome::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_words_are_githubs() {
        let r = RunRecord {
            status: Some(RunStatus::NotStarted),
            conclusion: Some(RunOutcome::NotStarted),
            ..RunRecord::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "not_started");
        assert_eq!(json["conclusion"], "not_started");
        for c in [
            Conclusion::Success,
            Conclusion::Failure,
            Conclusion::Cancelled,
        ] {
            let stored = serde_json::to_value(RunOutcome::from(c)).unwrap();
            assert_eq!(stored, c.as_str());
        }
        assert_eq!(
            serde_json::to_value(RunStatus::InProgress).unwrap(),
            "in_progress"
        );
        assert_eq!(serde_json::to_value(RunKind::Plan).unwrap(), "plan");
    }
}
