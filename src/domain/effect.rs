//! Effects as data: what the lifecycle decided to do on GitHub or in the store, each with a
//! stable [`EffectKey`] (the outbox), and what carrying one out left behind ([`EffectResult`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::notice::{Notice, NoticeEvent};
use super::run::{RunKind, RunOutcome};
use crate::ids::{DeliveryId, RequestId};

/// The idempotency key of an effect: unique within its request, stable across retries, kept
/// in `request.effects` once done. Built only by the constructors below, so every key has one
/// spelling; stored as the plain string.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectKey(String);

impl EffectKey {
    /// The answer to the comment `comment_id`.
    pub fn reply(comment_id: u64) -> Self {
        Self(format!("reply:{comment_id}"))
    }
    /// The commit of revision `revision` of the request's block.
    pub fn commit(revision: u64) -> Self {
        Self(format!("commit:r{revision}"))
    }
    /// The commit that removes the block (on the cleanup branch).
    pub fn cleanup_commit() -> Self {
        Self("cleanup:commit".into())
    }
    /// The answer given when a cleanup is started.
    pub fn cleanup_reply() -> Self {
        Self("cleanup:reply".into())
    }
    /// The comment saying a cleanup failed, for one revision/version.
    pub fn cleanup_failed(detail: impl fmt::Display) -> Self {
        Self(format!("cleanup-failed:{detail}"))
    }
    /// Opening the request's or the cleanup pull request.
    pub fn open_pr(purpose: PrPurpose) -> Self {
        Self(match purpose {
            PrPurpose::Request => "pr:request".into(),
            PrPurpose::Cleanup => "pr:cleanup".into(),
        })
    }
    /// A workflow dispatch.
    pub fn dispatch(dispatch_id: &str) -> Self {
        Self(format!("dispatch:{dispatch_id}"))
    }
    /// Merging pull request `number`.
    pub fn merge(number: u64) -> Self {
        Self(format!("merge:{number}"))
    }
    /// The answer to pull request `number` having been merged.
    pub fn merged(number: u64) -> Self {
        Self(format!("merged:{number}"))
    }
    /// Closing pull request `number`.
    pub fn close(number: u64) -> Self {
        Self(format!("close:{number}"))
    }
    /// The answer to pull request `number` closed unmerged, at request version `version`.
    pub fn pr_closed(number: u64, version: u64) -> Self {
        Self(format!("pr-closed:{number}:v{version}"))
    }
    /// Hiding the plan comments of an older revision.
    pub fn minimize_revision(revision: u64) -> Self {
        Self(format!("minimize:r{revision}"))
    }
    /// Hiding plan comments when inputs change at `revision`, `version`.
    pub fn minimize(revision: u64, version: u64) -> Self {
        Self(format!("minimize:r{revision}:v{version}"))
    }
    /// The answer to a run update of `run_id`.
    pub fn run(run_id: u64) -> Self {
        Self(format!("run:{run_id}"))
    }
    /// Posting the plan of `run_id`.
    pub fn post_plan(run_id: u64) -> Self {
        Self(format!("post-plan:{run_id}"))
    }
    /// The approvals kept or cleared by the plan of `run_id` (said in the thread).
    pub fn plan_approvals(run_id: u64) -> Self {
        Self(format!("plan-approvals:{run_id}"))
    }
    /// Starting the `tfpilot/plan` check run of the plan dispatched as `dispatch_id`.
    pub fn check_started(dispatch_id: &str) -> Self {
        Self(format!("check:{dispatch_id}"))
    }
    /// Reporting the end of run `run_id` on its check run.
    pub fn check_run(run_id: u64) -> Self {
        Self(format!("check:run{run_id}"))
    }
    /// Offering Apply on the plan's check run once pull request `number` is merged.
    pub fn check_merged(number: u64) -> Self {
        Self(format!("check:merged:{number}"))
    }
    /// The answer to the effect `key` having failed for good.
    pub fn failed(key: &EffectKey) -> Self {
        Self(format!("failed:{}", key.0))
    }
    /// The chat notice of `event`, decided by the input `input` (one per input and event).
    pub fn notify(event: NoticeEvent, input: &EffectKey) -> Self {
        Self(format!("notify:{event}:{}", input.0))
    }
    /// The answer to a cancel.
    pub fn cancel() -> Self {
        Self("cancel".into())
    }
    /// Moving the request to `history/`.
    pub fn archive() -> Self {
        Self("archive".into())
    }
    /// The one answer given when the worker gave up a delivery.
    pub fn given_up(delivery: &DeliveryId) -> Self {
        // A delivery id is GitHub's text: only marker-safe characters are kept.
        let safe: String = delivery
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_:.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Self(format!("error:{safe}"))
    }
    /// The prefix shared by the plan comments of one revision.
    pub fn plan_prefix(id: RequestId, revision: u64) -> Self {
        Self(format!("plan:{id}:r{revision}:"))
    }
    /// One plan comment (part `part`, from 1) of run `run_id` at `revision`.
    pub fn plan_part(id: RequestId, revision: u64, run_id: u64, part: usize) -> Self {
        Self(format!("plan:{id}:r{revision}:run{run_id}:{part}"))
    }

    /// The prefix shared by the plan summaries of one revision.
    pub fn plan_summary_prefix(id: RequestId, revision: u64) -> Self {
        Self(format!("plan-summary:{id}:r{revision}:"))
    }

    /// The summary of the plan of `run_id` on the issue.
    pub fn plan_summary(id: RequestId, revision: u64, run_id: u64) -> Self {
        Self(format!("plan-summary:{id}:r{revision}:run{run_id}"))
    }

    /// The idempotency key of an input (a comment, a PR close, a run update, a failure): a
    /// second delivery of the same thing finds it recorded.
    pub fn input_comment(comment_id: u64) -> Self {
        Self(format!("input:comment:{comment_id}"))
    }
    /// Pull request `number` closed without being merged. Keys stored before merges had their
    /// own key spelled a merge the same way; the lifecycle decides a merge only once either way.
    pub fn input_pr_closed(number: u64) -> Self {
        Self(format!("input:pr:{number}:closed"))
    }
    /// Pull request `number` merged: distinct from a close, so a pull request closed, reopened
    /// and then merged is decided as merged (a pull request is merged only once).
    pub fn input_pr_merged(number: u64) -> Self {
        Self(format!("input:pr:{number}:merged"))
    }
    pub fn input_run(run_id: u64, completed: bool) -> Self {
        let phase = if completed {
            "completed"
        } else {
            "in_progress"
        };
        Self(format!("input:run:{run_id}:{phase}"))
    }
    /// Drift check run `run_id`'s finding about the request.
    pub fn input_drift(run_id: u64) -> Self {
        Self(format!("input:drift:{run_id}"))
    }
    /// The drift check started by the comment `comment_id`.
    pub fn drift_check(comment_id: u64) -> Self {
        Self(format!("drift-check:{comment_id}"))
    }
    /// The summary of an asked-for drift check run `run_id` on the thread that asked.
    pub fn drift_summary(run_id: u64) -> Self {
        Self(format!("drift-summary:{run_id}"))
    }
    /// The answer on the issue to drift check run `run_id`.
    pub fn drift(run_id: u64) -> Self {
        Self(format!("drift:{run_id}"))
    }
    pub fn input_failed(key: &EffectKey) -> Self {
        Self(format!("input:failed:{}", key.0))
    }

    /// Whether this is an input's key (`input:…`), which dedups that input.
    pub fn is_input(&self) -> bool {
        self.0.starts_with("input:")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn starts_with(&self, prefix: &EffectKey) -> bool {
        self.0.starts_with(prefix.0.as_str())
    }
}

/// A key read back from a comment's marker: ids, numbers and `-_:./=` only.
impl std::str::FromStr for EffectKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let safe = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:./=".contains(c));
        if safe {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("`{s}` is not an effect key"))
        }
    }
}

impl PartialEq<str> for EffectKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EffectKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What carrying out an effect left behind, kept in its [`super::EffectRecord`]. Stored as the
/// plain object of the variant's fields (no tag), as earlier builds wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EffectResult {
    /// The effect failed for good; `error` says why.
    Failed { error: String },
    /// A comment posted (or found by its marker); `body` is kept when short, for the chat log.
    Comment {
        id: u64,
        node_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// A pull request opened (or found open for the branch).
    PullRequest {
        number: u64,
        url: String,
        created: bool,
    },
    /// A commit made (or found made already) on a branch.
    Commit { oid: String, made: bool },
    /// A plan posted in `comments` comments.
    Plan { summary: String, comments: usize },
    /// Comments hidden as outdated.
    Minimized { minimized: usize },
    /// A workflow dispatched; the run, once GitHub reported it.
    Dispatched {
        #[serde(deserialize_with = "present")]
        run_id: Option<u64>,
        #[serde(deserialize_with = "present")]
        url: Option<String>,
    },
    /// A merge; its commit when GitHub said.
    Merged {
        #[serde(deserialize_with = "present")]
        sha: Option<String>,
    },
    /// Done, nothing to remember.
    Done {},
}

/// An optional field that must be present (as `null` at least): without it, serde would let
/// any object match the variant, and the untagged enum would read one result as another.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

impl EffectResult {
    /// The GraphQL node id of a posted comment.
    pub fn comment_node(&self) -> Option<&str> {
        match self {
            Self::Comment { node_id, .. } => Some(node_id),
            _ => None,
        }
    }

    /// The text of a posted comment, when it was kept.
    pub fn comment_body(&self) -> Option<&str> {
        match self {
            Self::Comment { body, .. } => body.as_deref(),
            _ => None,
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

impl Default for EffectResult {
    fn default() -> Self {
        Self::Done {}
    }
}

/// An effect with its key: unique within the request, stable across retries (it names the
/// comment, commit, PR or dispatch), recorded in `request.effects` once done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEffect {
    pub key: EffectKey,
    /// The input that decided it (its own key), so a retry of that input resumes it.
    #[serde(default)]
    pub input: EffectKey,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    pub effect: Effect,
}

/// Something to do on GitHub or in the store. Plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Post a comment (its marker is the effect key) unless one with that marker is there.
    Comment {
        thread: u64,
        body: Body,
    },
    /// Write (or remove) the request's block on `branch` (created from `base` when new).
    CommitBlock {
        branch: String,
        base: String,
        file: String,
        change: BlockChange,
        message: String,
    },
    OpenPr {
        purpose: PrPurpose,
        branch: String,
        base: String,
        title: String,
        body: String,
    },
    Dispatch {
        kind: RunKind,
        workflow: String,
        git_ref: String,
        environment: String,
        dispatch_id: String,
        /// The commit the run must work on (an apply's approved merge commit), sent as the
        /// workflow input `expected_sha`; the workflow refuses any other. Absent in effects
        /// stored before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_sha: Option<String>,
    },
    Merge {
        number: u64,
        expected_head: String,
    },
    ClosePr {
        number: u64,
    },
    /// Minimize (as outdated) the comments whose effect keys start with this prefix.
    MinimizeComments {
        key_prefix: EffectKey,
    },
    /// Read the run's `plan` artifact and post the plan on the PR and its summary on the issue.
    PostPlan {
        run_id: u64,
        run_url: String,
    },
    /// Report on the request's check runs (Checks API): see [`CheckStep`].
    Check {
        step: CheckStep,
    },
    /// Start the infra repo's drift check (`drift.yml` on the default branch) for each
    /// environment; each run's name carries `<dispatch_id>-<env>`, so its findings are also
    /// answered on the thread that asked.
    DriftCheck {
        environments: Vec<String>,
        dispatch_id: String,
    },
    /// Tell the team's chat (Slack). Best effort: a chat outage never holds up the lifecycle.
    Notify {
        notice: Notice,
    },
    /// Move the request to `history/` (always last).
    Archive,
}

/// One report on a check run. The plan's check run (`tfpilot/plan`) is created in progress
/// when the plan is dispatched, completed when it ends (with the plan, by
/// [`Effect::PostPlan`], when it succeeded), and offers Apply once merged; `tfpilot/apply` is
/// created completed when an apply ends. Its id is kept on the run's record, never read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum CheckStep {
    /// `tfpilot/plan`, in progress, on the request branch's head, for the plan `dispatch_id`.
    PlanStarted { dispatch_id: String },
    /// The plan run `run_id` ended without a plan to show (failed or cancelled).
    PlanEnded {
        run_id: u64,
        run_url: String,
        outcome: RunOutcome,
    },
    /// The pull request is merged: the plan's check run offers Apply.
    Merged,
    /// The apply run `run_id` ended, on `head_sha`: `tfpilot/apply` says how.
    Applied {
        run_id: u64,
        run_url: String,
        head_sha: String,
        outcome: RunOutcome,
    },
}

impl Effect {
    /// A short description for logs and failure messages.
    pub fn describe(&self) -> String {
        match self {
            Effect::Comment { thread, .. } => format!("comment on #{thread}"),
            Effect::CommitBlock { branch, file, .. } => format!("commit {file} on {branch}"),
            Effect::OpenPr { branch, base, .. } => {
                format!("open the pull request {branch} → {base}")
            }
            Effect::Dispatch {
                workflow, git_ref, ..
            } => {
                format!("start workflow {workflow} on {git_ref}")
            }
            Effect::Merge { number, .. } => format!("merge pull request #{number}"),
            Effect::ClosePr { number } => format!("close pull request #{number}"),
            Effect::MinimizeComments { .. } => "hide outdated plan comments".into(),
            Effect::PostPlan { run_id, .. } => format!("post the plan of run {run_id}"),
            Effect::Check { .. } => "report on the check run".into(),
            Effect::Notify { notice } => format!("notify the chat: {}", notice.event),
            Effect::DriftCheck { environments, .. } => {
                format!("start the drift check of {}", environments.join(", "))
            }
            Effect::Archive => "archive the request".into(),
        }
    }

    /// Whether a failure of this effect is only logged (the rest goes on).
    pub fn is_best_effort(&self) -> bool {
        matches!(
            self,
            Effect::Comment { .. }
                | Effect::MinimizeComments { .. }
                | Effect::Check { .. }
                | Effect::Notify { .. }
        )
    }

    /// Whether this belongs to no request's state (answers, a drift check): a decision made of
    /// such effects alone stores nothing.
    pub fn is_stateless(&self) -> bool {
        matches!(self, Effect::Comment { .. } | Effect::DriftCheck { .. })
    }

    /// Whether a later input may be decided while this is still pending: answers and chat
    /// notices change nothing the next decision reads.
    pub fn lets_others_decide(&self) -> bool {
        matches!(
            self,
            Effect::Comment { .. } | Effect::Notify { .. } | Effect::DriftCheck { .. }
        )
    }
}

/// A comment body: rendered now, or (when it names a pull request not opened yet) rendered by
/// the executor once the PR exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Text {
        text: String,
    },
    /// "PR #n opened" for the request (`Request`) or cleanup (`Cleanup`) pull request.
    PrOpened {
        purpose: PrPurpose,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BlockChange {
    Upsert { block: String },
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrPurpose {
    Request,
    Cleanup,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_read_back_as_earlier_builds_wrote_them() {
        let cases = [
            (
                json!({"error": "gone"}),
                EffectResult::Failed {
                    error: "gone".into(),
                },
            ),
            (
                json!({"id": 5, "node_id": "IC_5", "body": "hi"}),
                EffectResult::Comment {
                    id: 5,
                    node_id: "IC_5".into(),
                    body: Some("hi".into()),
                },
            ),
            (
                json!({"number": 3, "url": "u", "created": true}),
                EffectResult::PullRequest {
                    number: 3,
                    url: "u".into(),
                    created: true,
                },
            ),
            (
                json!({"oid": "abc", "made": false}),
                EffectResult::Commit {
                    oid: "abc".into(),
                    made: false,
                },
            ),
            (
                json!({"summary": "s", "comments": 2}),
                EffectResult::Plan {
                    summary: "s".into(),
                    comments: 2,
                },
            ),
            (
                json!({"minimized": 4}),
                EffectResult::Minimized { minimized: 4 },
            ),
            (
                json!({"run_id": 9, "url": null}),
                EffectResult::Dispatched {
                    run_id: Some(9),
                    url: None,
                },
            ),
            (
                json!({"sha": "m"}),
                EffectResult::Merged {
                    sha: Some("m".into()),
                },
            ),
            (json!({}), EffectResult::Done {}),
        ];
        for (stored, typed) in cases {
            let read: EffectResult = serde_json::from_value(stored.clone()).unwrap();
            assert_eq!(read, typed, "{stored}");
            assert_eq!(serde_json::to_value(&typed).unwrap(), stored);
        }
    }

    #[test]
    fn keys_keep_their_stored_spelling() {
        let id: RequestId = "0b7c5b8e-7a0e-4a5e-9a4e-1f2f3a4b5c6d".parse().unwrap();
        assert_eq!(EffectKey::reply(7).as_str(), "reply:7");
        assert_eq!(EffectKey::commit(2).as_str(), "commit:r2");
        assert_eq!(
            EffectKey::input_run(4, true).as_str(),
            "input:run:4:completed"
        );
        assert_eq!(EffectKey::input_pr_closed(5).as_str(), "input:pr:5:closed");
        assert_eq!(EffectKey::input_pr_merged(5).as_str(), "input:pr:5:merged");
        assert_eq!(
            EffectKey::failed(&EffectKey::merge(3)).as_str(),
            "failed:merge:3"
        );
        let part = EffectKey::plan_part(id, 2, 77, 1);
        assert!(part.starts_with(&EffectKey::plan_prefix(id, 2)));
        assert_eq!(
            serde_json::to_value(EffectKey::archive()).unwrap(),
            "archive"
        );
    }
}
