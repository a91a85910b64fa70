//! The domain: what a request is, where it stands, what may be done with it — plain data that
//! every other module shares and that imports nothing of the app but [`crate::ids`].
//!
//! * [`request`] — the stored request, its status, chat turns and lifecycle events;
//! * [`run`] — workflow kinds, phases and outcomes;
//! * [`effect`] — effects as data (the outbox), their keys and their results;
//! * [`notice`] — what TfPilot tells a team's chat about a request;
//! * [`dashboard`] — what a repository's requests dashboard shows of a request;
//! * [`policy`] — who may do what (the allow-lists), the production rule and [`Permission`];
//! * [`Denial`] — why an input is refused and what would allow it.
//!
//! `store` persists these types, `lifecycle` decides over them, the executor carries effects
//! out; none of them needs another's internals to read a request.

pub mod dashboard;
pub mod effect;
pub mod notice;
pub mod policy;
pub mod request;
pub mod run;

use std::fmt;

pub use dashboard::DashboardRow;
pub use effect::{
    BlockChange, Body, CheckStep, Effect, EffectKey, EffectResult, PendingEffect, PrPurpose,
};
pub use notice::{Notice, NoticeEvent};
pub use policy::{DEFAULT_PROD_ENVIRONMENTS, Memberships, Permission, Policy};
pub use request::{
    Approval, ChatRole, ChatTurn, Clarification, ClarificationKind, DriftRecord, EffectRecord,
    InvalidStatus, LifecycleEvent, ListFilter, OutboxLease, PullRequestRef, Request, RequestStatus,
    SCHEMA_VERSION, TimelineEntry,
};
pub use run::{Conclusion, RunKind, RunOutcome, RunPhase, RunRecord, RunStatus};

/// Why an input is refused, and what would allow it. Both are sentences for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: String,
    pub remedy: String,
}

impl Denial {
    pub fn new(reason: impl Into<String>, remedy: impl Into<String>) -> Denial {
        Denial {
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.reason, self.remedy)
    }
}

impl std::error::Error for Denial {}

/// The one rule for environment and project names (they become parts of resource names and
/// directory paths): 1–32 lowercase letters, digits and hyphens, starting with a letter, not
/// ending with a hyphen.
pub fn is_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
}

/// The branch a request's pull request comes from.
pub fn request_branch(id: crate::ids::RequestId) -> String {
    format!("request/{id}")
}

/// The branch of the pull request that removes a request's block.
pub fn cleanup_branch(id: crate::ids::RequestId) -> String {
    format!("cleanup/{id}")
}

#[cfg(test)]
mod tests {
    use super::is_name;

    #[test]
    fn names_follow_one_rule() {
        for ok in ["dev", "prod", "prod-eu", "a1", "x"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", "Dev", "1dev", "dev-", "dev_eu", "dév", &"a".repeat(33)] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
