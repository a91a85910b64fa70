//! Typed webhook events: small serde structs holding only the fields TfPilot uses.
//!
//! They tolerate extra fields, and every `action` enum has an `Other` catch-all, so a new action
//! GitHub adds never makes a delivery fail to parse. Fields that GitHub's webhook description
//! (`@octokit/openapi-webhooks`) lets it leave out or null are `Option`s: the author of a comment,
//! an issue or a pull request (`user: null`, a deleted account) and the installation's `account`
//! (null, or an enterprise, which has no `login`). The test `every_real_payload_shape_…` walks
//! that description and checks it.

use serde::{Deserialize, Deserializer};

use crate::ids::{InstallationId, RepoName};

/// One delivery's payload, by the `X-GitHub-Event` header.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    IssueComment(IssueCommentEvent),
    Issues(IssuesEvent),
    PullRequest(PullRequestEvent),
    WorkflowRun(WorkflowRunEvent),
    CheckRun(CheckRunEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    Ping(PingEvent),
    /// An event TfPilot does not handle (the header's value): acknowledged and ignored.
    Other(String),
}

/// Why a payload could not be read; the text is the one-line reason of a 400.
#[derive(Debug, thiserror::Error)]
#[error("the `{event}` payload is not what GitHub sends: {source}")]
pub struct EventParseError {
    pub event: String,
    #[source]
    pub source: serde_json::Error,
}

impl Event {
    /// The event names TfPilot handles (the values of `X-GitHub-Event`), `ping` included.
    pub const HANDLED: [&'static str; 8] = [
        "issue_comment",
        "issues",
        "pull_request",
        "workflow_run",
        "check_run",
        "installation",
        "installation_repositories",
        "ping",
    ];

    /// Parses `body` as the event named `event_name`. An unhandled name gives [`Event::Other`]
    /// without looking at the body.
    pub fn parse(event_name: &str, body: &[u8]) -> Result<Event, EventParseError> {
        fn typed<'a, T: Deserialize<'a>>(name: &str, body: &'a [u8]) -> Result<T, EventParseError> {
            serde_json::from_slice(body).map_err(|source| EventParseError {
                event: name.to_owned(),
                source,
            })
        }
        Ok(match event_name {
            "issue_comment" => Event::IssueComment(typed(event_name, body)?),
            "issues" => Event::Issues(typed(event_name, body)?),
            "pull_request" => Event::PullRequest(typed(event_name, body)?),
            "workflow_run" => Event::WorkflowRun(typed(event_name, body)?),
            "check_run" => Event::CheckRun(typed(event_name, body)?),
            "installation" => Event::Installation(typed(event_name, body)?),
            "installation_repositories" => {
                Event::InstallationRepositories(typed(event_name, body)?)
            }
            "ping" => Event::Ping(typed(event_name, body)?),
            other => Event::Other(other.to_owned()),
        })
    }

    /// The `X-GitHub-Event` name.
    pub fn name(&self) -> &str {
        match self {
            Event::IssueComment(_) => "issue_comment",
            Event::Issues(_) => "issues",
            Event::PullRequest(_) => "pull_request",
            Event::WorkflowRun(_) => "workflow_run",
            Event::CheckRun(_) => "check_run",
            Event::Installation(_) => "installation",
            Event::InstallationRepositories(_) => "installation_repositories",
            Event::Ping(_) => "ping",
            Event::Other(name) => name,
        }
    }

    /// The repository the event happened in, when it has one.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Event::IssueComment(e) => Some(&e.repository.full_name),
            Event::Issues(e) => Some(&e.repository.full_name),
            Event::PullRequest(e) => Some(&e.repository.full_name),
            Event::WorkflowRun(e) => Some(&e.repository.full_name),
            Event::CheckRun(e) => Some(&e.repository.full_name),
            Event::Ping(e) => e.repository.as_ref().map(|r| &r.full_name),
            Event::Installation(_) | Event::InstallationRepositories(_) | Event::Other(_) => None,
        }
    }

    /// The App installation the delivery is for (absent in repository-hook payloads).
    pub fn installation(&self) -> Option<InstallationId> {
        match self {
            Event::IssueComment(e) => e.installation.as_ref().map(|i| i.id),
            Event::Issues(e) => e.installation.as_ref().map(|i| i.id),
            Event::PullRequest(e) => e.installation.as_ref().map(|i| i.id),
            Event::WorkflowRun(e) => e.installation.as_ref().map(|i| i.id),
            Event::CheckRun(e) => e.installation.as_ref().map(|i| i.id),
            Event::Installation(e) => Some(e.installation.id),
            Event::InstallationRepositories(e) => Some(e.installation.id),
            Event::Ping(_) | Event::Other(_) => None,
        }
    }

    /// Who caused the event.
    pub fn sender(&self) -> Option<&User> {
        match self {
            Event::IssueComment(e) => Some(&e.sender),
            Event::Issues(e) => Some(&e.sender),
            Event::PullRequest(e) => e.sender.as_ref(),
            Event::WorkflowRun(e) => Some(&e.sender),
            Event::CheckRun(e) => Some(&e.sender),
            Event::Installation(e) => Some(&e.sender),
            Event::InstallationRepositories(e) => Some(&e.sender),
            Event::Ping(e) => e.sender.as_ref(),
            Event::Other(_) => None,
        }
    }
}

// ---- shared parts -------------------------------------------------------------------------------

/// A repository as payloads carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub full_name: RepoName,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub private: bool,
}

/// The `installation` object of repository events (`{ "id": … }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstallationRef {
    pub id: InstallationId,
}

/// A user, bot or organization.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    /// [`User::GHOST`] when GitHub leaves it out: an unknown user.
    #[serde(default = "ghost_login", deserialize_with = "null_as_ghost")]
    pub login: String,
    /// The account's numeric id: stable when the login is renamed.
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(rename = "type", default)]
    pub kind: UserKind,
}

impl User {
    /// GitHub's placeholder login for an account that no longer exists (`@ghost`): what TfPilot
    /// calls the author of a comment GitHub sends with `user: null`. It has no access anywhere.
    pub const GHOST: &'static str = "ghost";

    pub fn is_bot(&self) -> bool {
        self.kind == UserKind::Bot
    }

    /// Whether `login` is the placeholder for an unknown author ([`User::GHOST`]).
    pub fn is_ghost(login: &str) -> bool {
        login.eq_ignore_ascii_case(Self::GHOST)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum UserKind {
    #[default]
    User,
    Bot,
    Organization,
    #[serde(other)]
    Other,
}

/// How the author of a comment relates to the repository (GitHub's `author_association`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorAssociation {
    Owner,
    Member,
    Collaborator,
    Contributor,
    FirstTimer,
    FirstTimeContributor,
    Mannequin,
    #[default]
    None,
    #[serde(other)]
    Other,
}

/// An issue, or a pull request seen through the issues API (then `pull_request` is present).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Issue {
    pub number: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// The author; `None` when GitHub sends `null` (a deleted account).
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<IssuePullRequest>,
}

impl Issue {
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}

/// The `issue.pull_request` links object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssuePullRequest {
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub merged_at: Option<String>,
}

// ---- issue_comment ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssueCommentEvent {
    pub action: IssueCommentAction,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCommentAction {
    Created,
    Edited,
    Deleted,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub body: String,
    /// The author; `None` when GitHub sends `null` (a deleted account): an unknown user, who
    /// has no access to anything.
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub author_association: AuthorAssociation,
    #[serde(default)]
    pub html_url: Option<String>,
}

impl Comment {
    /// The author's login, [`User::GHOST`] when GitHub does not say who wrote it.
    pub fn author_login(&self) -> &str {
        self.user.as_ref().map_or(User::GHOST, |u| u.login.as_str())
    }

    /// The author's numeric id, when GitHub says who wrote it.
    pub fn author_id(&self) -> Option<u64> {
        self.user.as_ref().and_then(|u| u.id)
    }
}

// ---- issues -------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssuesEvent {
    pub action: IssuesAction,
    pub issue: Issue,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuesAction {
    Opened,
    Edited,
    Closed,
    Reopened,
    Deleted,
    Transferred,
    #[serde(other)]
    Other,
}

// ---- pull_request -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub number: u64,
    pub pull_request: PullRequest,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    /// Absent from some actions GitHub performs itself (the merge queue's `enqueued`, …).
    #[serde(default)]
    pub sender: Option<User>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    Opened,
    Edited,
    Closed,
    Reopened,
    Synchronize,
    ReadyForReview,
    ConvertedToDraft,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// `true` once merged (absent or null counts as not merged).
    #[serde(default, deserialize_with = "null_as_default")]
    pub merged: bool,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub draft: bool,
    pub head: GitRef,
    pub base: GitRef,
    /// The author; `None` when GitHub sends `null` (a deleted account).
    #[serde(default)]
    pub user: Option<User>,
}

/// A PR's `head` or `base`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
}

// ---- check_run ----------------------------------------------------------------------------------

/// A `check_run` event; TfPilot acts on `requested_action` (a click on one of its buttons).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckRunEvent {
    pub action: CheckRunAction,
    pub check_run: CheckRun,
    /// The button clicked (`requested_action` only).
    #[serde(default)]
    pub requested_action: Option<RequestedAction>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRunAction {
    Created,
    Completed,
    Rerequested,
    RequestedAction,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    /// What the App that created it set (TfPilot: `<request id>/<dispatch id>`).
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RequestedAction {
    /// The `identifier` of the button clicked.
    #[serde(default)]
    pub identifier: Option<String>,
}

// ---- workflow_run -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: WorkflowRunAction,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowRunAction {
    Requested,
    InProgress,
    Completed,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    /// The run's title (a workflow's `run-name`), where TfPilot's workflows put the request id.
    #[serde(default)]
    pub display_title: Option<String>,
    /// The workflow file, e.g. `.github/workflows/plan.yml`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<WorkflowRunStatus>,
    #[serde(default)]
    pub conclusion: Option<WorkflowRunConclusion>,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub html_url: String,
    /// What triggered the run (`workflow_dispatch`, `push`, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub event: String,
    #[serde(default)]
    pub run_attempt: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowRunStatus {
    Requested,
    Queued,
    Pending,
    Waiting,
    InProgress,
    Completed,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowRunConclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
    Skipped,
    TimedOut,
    ActionRequired,
    Stale,
    StartupFailure,
    #[serde(other)]
    Other,
}

// ---- installation, installation_repositories ----------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstallationEvent {
    pub action: InstallationAction,
    pub installation: Installation,
    /// The repositories the installation can reach (absent for some actions).
    #[serde(default, deserialize_with = "null_as_default")]
    pub repositories: Vec<RepositoryRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationAction {
    Created,
    Deleted,
    Suspend,
    Unsuspend,
    NewPermissionsAccepted,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Installation {
    pub id: InstallationId,
    /// Where the App is installed: a user or organization, an enterprise, or `null`.
    #[serde(default)]
    pub account: Option<Account>,
}

/// An installation's account: a user or organization (`login`) or an enterprise (`slug`, no
/// `login`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
}

impl Account {
    /// The account's name: the login, else the enterprise's slug.
    pub fn name(&self) -> Option<&str> {
        self.login.as_deref().or(self.slug.as_deref())
    }
}

/// The short repository objects of installation payloads (GitHub's description lets each
/// field be left out).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RepositoryRef {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub full_name: Option<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: InstallationRepositoriesAction,
    pub installation: Installation,
    #[serde(default)]
    pub repository_selection: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub repositories_added: Vec<RepositoryRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub repositories_removed: Vec<RepositoryRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationRepositoriesAction {
    Added,
    Removed,
    #[serde(other)]
    Other,
}

// ---- ping ---------------------------------------------------------------------------------------

/// Sent when a hook is created; answered 200 and not queued.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(default)]
    pub repository: Option<Repository>,
    #[serde(default)]
    pub sender: Option<User>,
}

fn ghost_login() -> String {
    User::GHOST.to_owned()
}

/// A `null` login reads as [`User::GHOST`].
fn null_as_ghost<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(ghost_login))
}

/// `null` reads as the type's default (GitHub sends `null` for some strings and lists).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment_payload(action: &str, extra_issue: &str) -> String {
        format!(
            r#"{{
              "action": "{action}",
              "issue": {{ "number": 7, "title": "t", "body": null, "user": {{ "login": "alice", "type": "User" }} {extra_issue} }},
              "comment": {{ "id": 99, "body": "/tfpilot help", "user": {{ "login": "tfpilot[bot]", "type": "Bot" }},
                           "author_association": "NONE", "future_field": [1, 2] }},
              "repository": {{ "id": 1, "full_name": "acme/core-terraform" }},
              "installation": {{ "id": 42, "node_id": "x" }},
              "sender": {{ "login": "tfpilot[bot]", "type": "Bot" }}
            }}"#
        )
    }

    #[test]
    fn an_unknown_action_is_other_not_an_error() {
        let body = comment_payload("pinned_by_a_future_github", "");
        let Event::IssueComment(e) = Event::parse("issue_comment", body.as_bytes()).unwrap() else {
            panic!("not an issue comment");
        };
        assert_eq!(e.action, IssueCommentAction::Other);
        assert!(e.comment.user.as_ref().is_some_and(User::is_bot));
        assert_eq!(e.comment.author_association, AuthorAssociation::None);
        assert!(!e.issue.is_pull_request());
    }

    #[test]
    fn a_comment_on_a_pull_request_is_recognized() {
        let body = comment_payload(
            "created",
            r#", "pull_request": { "url": "u", "html_url": "https://github.com/acme/core-terraform/pull/7" }"#,
        );
        let event = Event::parse("issue_comment", body.as_bytes()).unwrap();
        assert_eq!(event.installation(), Some(InstallationId(42)));
        assert_eq!(event.repo().unwrap().to_string(), "acme/core-terraform");
        let Event::IssueComment(e) = event else {
            panic!("not an issue comment")
        };
        assert!(e.issue.is_pull_request());
        assert_eq!(e.comment.body, "/tfpilot help");
    }

    #[test]
    fn unhandled_events_are_not_read() {
        assert_eq!(
            Event::parse("star", b"not even json").unwrap(),
            Event::Other("star".into())
        );
    }

    #[test]
    fn a_handled_event_with_a_wrong_shape_explains_itself() {
        let err = Event::parse("issue_comment", br#"{"action":"created"}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the `issue_comment` payload is not what GitHub sends: missing field"),
            "{err}"
        );
    }
}
