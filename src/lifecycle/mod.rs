//! The request lifecycle: states, transitions and guardrails, as pure functions.
//!
//! [`decide`] takes a request (or none), one [`Input`] (a command, a conversation turn, a pull
//! request closed, a workflow run update, an effect that failed), who caused it ([`Actor`]), the
//! [`Policy`] and the [`Facts`] the executor gathered before, and returns the next request and
//! the [`Effect`]s to carry out — or a [`Denial`] saying why not and what would allow it. No
//! async, no I/O, no clock: everything it needs is in its arguments, so every guardrail is a
//! plain unit test.
//!
//! States: `collecting → ready → (submit) planning → planned | plan_failed → approved →
//! merged → applying → applied | apply_failed`, then `destroying → destroyed` (cleanup PR, then
//! archived) or `destroy_failed`; `pr_open` (PR open, no plan running: a plan that could not be
//! started or was cancelled), `pr_closed` (closed unmerged), `cancelled` (archived).
//!
//! Effects are data with a stable key each; the executor writes them with the next state
//! (outbox), carries them out in order and records each key as done, so a crash resumes where it
//! stopped and nothing is done twice.
//!
//! Layout: [`decide`] hands the input to a `Decider` (`decider.rs`: the state one decision
//! builds up and its small helpers); the guardrails shared by several commands are in
//! `guards.rs`; the commands are in `conversation.rs` (the dispatcher, `new`, `show`, `set`,
//! `unset`, turns), `review.rs` (`submit`, `plan`, `approve`, `merge`) and `operate.rs` (`apply`,
//! `destroy`, `cleanup`, `cancel`); the events in `events.rs`; the chat notices a status change
//! brings in `notify.rs`; drift check findings in `drift.rs`. [`reads`] says which [`Facts`] a
//! decision looks at.

mod conversation;
mod decider;
mod drift;
mod events;
mod guards;
mod notify;
mod operate;
mod reads;
mod review;

use time::OffsetDateTime;

use self::decider::Decider;
use crate::assist::Extraction;
use crate::command::Command;
use crate::conversation::Conversation;
use crate::domain::Request;
pub use crate::domain::{
    BlockChange, Body, Conclusion, Denial, Effect, EffectKey, PendingEffect, Permission, Policy,
    PrPurpose, RunPhase, cleanup_branch, request_branch,
};
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::registry::{ModuleSpec, Registry};
use crate::settings::Settings;
pub use reads::{Needs, command_reads, reads};

/// Who caused an input. `permission` is the actor's role on the repository (the executor reads
/// it before deciding a mutating input; `None` when it did not need to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub permission: Permission,
}

/// Where a comment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentAt {
    pub comment_id: u64,
    /// The issue or pull request number.
    pub thread: u64,
    pub on_pull_request: bool,
}

/// One thing that happened to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A `/tfpilot` command. `extraction`: what the assistant read from `new`'s free text.
    Command {
        at: CommentAt,
        command: Command,
        extraction: Option<Extraction>,
    },
    /// A plain comment in a thread whose request is collecting inputs, as the assistant read it.
    Turn {
        at: CommentAt,
        extraction: Extraction,
    },
    /// The request's pull request was closed (merged or not).
    PrClosed {
        number: u64,
        merged: bool,
        head_sha: String,
        merge_sha: Option<String>,
    },
    /// A workflow run changed state.
    Run(RunUpdate),
    /// A drift check finished: what it found changed in the request's resources (empty: none).
    Drift(DriftUpdate),
    /// An effect could not be carried out for a reason that retrying will not fix.
    EffectFailed {
        key: EffectKey,
        effect: Effect,
        reason: String,
    },
}

/// A `workflow_run` event, reduced to what matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUpdate {
    pub run_id: u64,
    /// The run's name (`plan <request id> (<env>) <dispatch id>`).
    pub title: String,
    pub phase: RunPhase,
    pub head_sha: String,
    pub url: String,
    /// The workflow file the run is of (`.github/workflows/plan.yml`).
    pub workflow_path: String,
    /// What started it (`workflow_dispatch` for TfPilot's runs).
    pub event: String,
    /// The branch it runs on (the dispatched ref).
    pub head_branch: String,
}

/// One drift check run's finding about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftUpdate {
    pub run_id: u64,
    pub url: String,
    /// The changed resources, `"<address> (<action>)"` (empty: the resources match).
    pub changes: Vec<String>,
    /// The request's part of the plan text, masked.
    pub excerpt: String,
}

/// The state of the pull request on GitHub, read before deciding approve, merge and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrFacts {
    pub open: bool,
    pub merged: bool,
    pub head_sha: String,
    pub merge_sha: Option<String>,
    /// `None` while GitHub computes it.
    pub mergeable: Option<bool>,
}

/// Whether the base branch holds the request's block as submitted (read before `apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseBlock {
    Same,
    Different,
    Missing,
    /// The file could not be read as TfPilot blocks (the reason names the line).
    Unreadable(String),
}

/// What the executor read before deciding. Fields a decision does not need may be left empty.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: OffsetDateTime,
    pub registry: &'a Registry,
    pub repo: RepoName,
    pub installation: Option<InstallationId>,
    /// The command prefix (`/tfpilot`).
    pub prefix: String,
    /// `.tfpilot.yml` (needed by `new`).
    pub settings: Option<Settings>,
    /// The id a `new` request gets.
    pub new_request_id: RequestId,
    pub pr: Option<PrFacts>,
    pub base_block: Option<BaseBlock>,
    /// The head of the request's base branch (read with a merged pull request): a plan of the
    /// merged change made after the merge runs there.
    pub base_head: Option<String>,
    /// Requests for a `status` list.
    pub listing: Option<Vec<Request>>,
}

/// The next state and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The request as it should be stored (`None`: no request is involved).
    pub request: Option<Request>,
    pub effects: Vec<PendingEffect>,
}

/// The idempotency key of an input: a second delivery of the same thing finds it recorded.
pub fn input_key(input: &Input) -> EffectKey {
    match input {
        Input::Command { at, .. } | Input::Turn { at, .. } => {
            EffectKey::input_comment(at.comment_id)
        }
        Input::PrClosed {
            number,
            merged: true,
            ..
        } => EffectKey::input_pr_merged(*number),
        Input::PrClosed { number, .. } => EffectKey::input_pr_closed(*number),
        Input::Run(run) => {
            EffectKey::input_run(run.run_id, matches!(run.phase, RunPhase::Completed(_)))
        }
        Input::Drift(d) => EffectKey::input_drift(d.run_id),
        Input::EffectFailed { key, .. } => EffectKey::input_failed(key),
    }
}

/// Decides what `input` does to `request`.
pub fn decide(
    request: Option<&Request>,
    input: &Input,
    actor: &Actor,
    policy: &Policy,
    facts: &Facts<'_>,
) -> Result<Decision, Denial> {
    let mut d = Decider {
        request: request.cloned(),
        actor,
        policy,
        facts,
        effects: Vec::new(),
        input_key: input_key(input),
    };
    let before = request.map(|r| r.status);
    match input {
        Input::Command {
            at,
            command,
            extraction,
        } => d.command(*at, command, extraction.as_ref())?,
        Input::Turn { at, extraction } => d.turn(*at, extraction)?,
        Input::PrClosed {
            number,
            merged,
            head_sha,
            merge_sha,
        } => d.pr_closed(*number, *merged, head_sha, merge_sha.as_deref()),
        Input::Run(run) => d.run(run),
        Input::Drift(update) => d.drift(update),
        Input::EffectFailed {
            key,
            effect,
            reason,
        } => d.effect_failed(key, effect, reason),
    }
    let run_url = match input {
        Input::Run(run) => Some(run.url.as_str()),
        _ => None,
    };
    d.notify_change(before, run_url);
    Ok(Decision {
        request: d.request,
        effects: d.effects,
    })
}

// ---- helpers -----------------------------------------------------------------------------------

/// The key (and marker) of TfPilot's answer to a comment.
pub fn reply_key(at: CommentAt) -> EffectKey {
    EffectKey::reply(at.comment_id)
}

/// The prefix of the plan comments of one revision (see `comments::plan::PlanComment`).
pub fn plan_key_prefix(id: RequestId, revision: u64) -> EffectKey {
    EffectKey::plan_prefix(id, revision)
}

/// The conversation a request holds.
pub fn conversation_of(r: &Request, spec: &ModuleSpec) -> Conversation {
    let (mut conv, _) = Conversation::from_values(spec, &r.inputs);
    conv.pending = r.questions.clone();
    conv
}

/// The last commit TfPilot made on `branch` of `r`. A request stored before TfPilot kept
/// [`Request::branch_heads`] has its own last commit on the request branch as its pull request's
/// head (every TfPilot commit updated it).
pub fn tfpilot_head<'r>(r: &'r Request, branch: &str) -> Option<&'r String> {
    r.branch_heads.get(branch).or_else(|| {
        (r.branch_heads.is_empty() && branch == request_branch(r.id))
            .then(|| r.pull_request.as_ref().map(|pr| &pr.head_sha))
            .flatten()
    })
}

#[cfg(test)]
mod tests;

fn deny(reason: impl Into<String>, remedy: impl Into<String>) -> Denial {
    Denial::new(reason, remedy)
}
