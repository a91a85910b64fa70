//! Repository operations: files and branch heads, commits (GraphQL `createCommitOnBranch`, with
//! `expectedHeadOid` as the optimistic lock; on a new branch, `createRef` in the same document),
//! pull requests, comments, reactions, permissions.

use std::collections::BTreeSet;

use base64::Engine;
use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{GitHubError, Result};
use super::transport::{Auth, Call, LANDED_LOOKBACK, Landed};
use super::{RepoClient, check_repo_path, encode_path, encode_query};
pub use crate::domain::Permission;

/// A file read from a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub text: String,
    /// The blob sha.
    pub sha: String,
}

/// The selections of [`FACTS_QUERY`] and [`FILE_AT_HEAD_QUERY`]: the repository's node id (what
/// `createRef` takes), a branch's head and a file in it.
macro_rules! file_at_head {
    () => {
        "id ref(qualifiedName: $branch) { target { oid ... on Commit { file(path: $path) { \
         object { ... on Blob { oid text isTruncated isBinary } } } } } }"
    };
}

/// A branch's head, a file in that commit and a pull request's state, in one query.
pub const FACTS_QUERY: &str = concat!(
    "query TfPilotFacts($owner: String!, $name: String!, $branch: String!, $path: String!, \
     $number: Int!) { repository(owner: $owner, name: $name) { ",
    file_at_head!(),
    " pullRequest(number: $number) { number url state merged headRefName headRefOid \
     baseRefName mergeCommit { oid } mergeable } } }"
);

/// A branch's head and a file in that commit, in one query.
pub const FILE_AT_HEAD_QUERY: &str = concat!(
    "query TfPilotFileAtHead($owner: String!, $name: String!, $branch: String!, \
     $path: String!) { repository(owner: $owner, name: $name) { ",
    file_at_head!(),
    " } }"
);

/// A verified commit on a branch, with the branch's expected head as the optimistic lock.
pub const COMMIT_MUTATION: &str = "mutation TfPilotCommit($input: CreateCommitOnBranchInput!) { \
    createCommitOnBranch(input: $input) { commit { oid url } } }";

/// A new branch and a verified commit on it, in one call: GraphQL runs a document's mutations one
/// after the other, so the commit sees the branch, and a `createRef` that fails (the branch is
/// there from an earlier attempt) does not stop the commit, whose `expectedHeadOid` still guards.
pub const BRANCH_COMMIT_MUTATION: &str = "mutation TfPilotBranchCommit($ref: CreateRefInput!, \
    $input: CreateCommitOnBranchInput!) { createRef(input: $ref) { ref { name } } \
    createCommitOnBranch(input: $input) { commit { oid url } } }";

/// Hides a comment (an outdated plan).
pub const MINIMIZE_MUTATION: &str = "mutation TfPilotMinimize($input: MinimizeCommentInput!) { \
    minimizeComment(input: $input) { minimizedComment { isMinimized } } }";

/// Every GraphQL document TfPilot sends (the tests check them against GitHub's schema).
pub const GRAPHQL_DOCUMENTS: [&str; 5] = [
    FACTS_QUERY,
    FILE_AT_HEAD_QUERY,
    COMMIT_MUTATION,
    BRANCH_COMMIT_MUTATION,
    MINIMIZE_MUTATION,
];

/// What [`RepoClient::read_at_head`] read in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRead {
    /// The branch's head commit; `None` when the branch does not exist.
    pub head: Option<String>,
    /// The file in that commit; `None` when it is not there.
    pub file: Option<FileContent>,
    /// The pull request, when asked for.
    pub pr: Option<PrState>,
    /// The repository's GraphQL node id, when read ([`BranchStart::New`] can use it).
    pub repository_id: Option<String>,
}

/// One change in a commit: write `contents` to `path`, or delete `path` when `contents` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub contents: Option<String>,
}

impl FileChange {
    pub fn put(path: impl Into<String>, contents: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            contents: Some(contents.into()),
        }
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            contents: None,
        }
    }
}

/// Where a commit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchStart {
    /// Create the branch at `from` (a commit sha) and commit on it. If the branch already exists
    /// at `from` (a retried submit), commit on it; anywhere else is [`GitHubError::StaleHead`].
    /// With the repository's node id ([`HeadRead::repository_id`]) both happen in one GraphQL
    /// call (and a branch already at exactly this commit, made by an attempt whose answer was
    /// lost, is reported as made); otherwise in two.
    New {
        from: String,
        repository_id: Option<String>,
    },
    /// Commit on the existing branch, which must still be at `expected_head`.
    Existing { expected_head: String },
}

/// A commit made on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitResult {
    pub oid: String,
    pub url: String,
}

/// A pull request TfPilot opened (or found already open for the same head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    pub head_sha: String,
    /// `false` when an open pull request for the head existed already.
    pub created: bool,
}

/// A pull request's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrState {
    pub number: u64,
    /// `open` or `closed`.
    pub open: bool,
    pub merged: bool,
    /// `None` while GitHub is still computing it.
    pub mergeable: Option<bool>,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub merge_commit_sha: Option<String>,
    pub url: String,
}

/// A comment TfPilot wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRef {
    pub id: u64,
    /// The GraphQL id, for [`RepoClient::minimize_comment`].
    pub node_id: String,
    pub url: String,
}

/// A comment as listed on an issue or pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedComment {
    pub id: u64,
    pub node_id: String,
    pub author: String,
    pub body: String,
}

/// The most comments [`RepoClient::comments`] reads from one thread (ten pages).
pub const MAX_LISTED_COMMENTS: usize = 1000;

/// How a pull request is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeMethod {
    #[default]
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Squash => "squash",
            Self::Rebase => "rebase",
        }
    }
}

/// A merged pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeResult {
    pub sha: String,
}

/// Why a comment is minimized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinimizeReason {
    /// Superseded by a newer comment (TfPilot's plan comments after a re-plan).
    Outdated,
    Resolved,
    Duplicate,
}

impl MinimizeReason {
    fn classifier(self) -> &'static str {
        match self {
            Self::Outdated => "OUTDATED",
            Self::Resolved => "RESOLVED",
            Self::Duplicate => "DUPLICATE",
        }
    }
}

/// A reaction on a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// 👀 — "seen, working on it".
    Eyes,
    PlusOne,
    MinusOne,
    Confused,
    Rocket,
    Hooray,
}

impl Reaction {
    fn content(self) -> &'static str {
        match self {
            Self::Eyes => "eyes",
            Self::PlusOne => "+1",
            Self::MinusOne => "-1",
            Self::Confused => "confused",
            Self::Rocket => "rocket",
            Self::Hooray => "hooray",
        }
    }
}

/// A user's role as GitHub reports it (`role_name`, or for custom roles their base `permission`).
fn permission_from_github(role_name: Option<&str>, permission: Option<&str>) -> Permission {
    match role_name.or(permission).unwrap_or("none") {
        "admin" => Permission::Admin,
        "maintain" => Permission::Maintain,
        "write" => Permission::Write,
        "triage" => Permission::Triage,
        "read" => Permission::Read,
        // Custom repository roles report their base role in `permission`.
        _ => match permission {
            Some("admin") => Permission::Admin,
            Some("write") => Permission::Write,
            Some("read") => Permission::Read,
            _ => Permission::None,
        },
    }
}

#[derive(Deserialize)]
struct PullJson {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    mergeable: Option<bool>,
    merge_commit_sha: Option<String>,
    head: RefJson,
    base: RefJson,
}

#[derive(Deserialize)]
struct RefJson {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: Option<String>,
}

impl RepoClient {
    fn call(&self, op: &'static str, what: String, method: Method, path: String) -> Call {
        Call::new(
            op,
            what,
            method,
            path,
            Auth::Repo {
                installation: self.installation,
                repo: self.repo.clone(),
            },
        )
    }

    fn api(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.repo.owner(), self.repo.name())
    }

    /// The repository's default branch.
    pub async fn default_branch(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct RepoJson {
            default_branch: String,
        }
        let what = format!("read repository {}", self.repo);
        let resp = self
            .transport
            .send(self.call("get_repo", what.clone(), Method::GET, self.api("")))
            .await?;
        Ok(resp.json::<RepoJson>(&what)?.default_branch)
    }

    /// A text file at a ref (branch, tag or sha); `None` when it does not exist there.
    pub async fn get_file(&self, git_ref: &str, path: &str) -> Result<Option<FileContent>> {
        #[derive(Deserialize)]
        struct ContentJson {
            #[serde(rename = "type")]
            kind: String,
            encoding: Option<String>,
            content: Option<String>,
            sha: String,
        }
        let what = format!("read {path} at {git_ref} in {}", self.repo);
        check_repo_path(&what, path)?;
        let uri = self.api(&format!(
            "/contents/{}?ref={}",
            encode_path(path),
            encode_query(git_ref)
        ));
        let resp = match self
            .transport
            .send(self.call("get_file", what.clone(), Method::GET, uri))
            .await
        {
            Ok(r) => r,
            Err(GitHubError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let unexpected = |message: String| GitHubError::Unexpected {
            operation: what.clone(),
            message,
        };
        let value: Value = resp.json(&what)?;
        if value.is_array() {
            return Err(unexpected(format!("{path} is a directory, not a file")));
        }
        let file: ContentJson =
            serde_json::from_value(value).map_err(|e| unexpected(e.to_string()))?;
        if file.kind != "file" || file.encoding.as_deref() != Some("base64") {
            return Err(unexpected(format!(
                "{path} is a {} with encoding {:?} (files over 1 MB are not served inline)",
                file.kind, file.encoding
            )));
        }
        let packed: String = file
            .content
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| unexpected(format!("content is not Base64: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| unexpected(format!("{path} is not UTF-8 text")))?;
        Ok(Some(FileContent {
            text,
            sha: file.sha,
        }))
    }

    /// The head commit of a branch; `None` when the branch does not exist.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct RefAnswer {
            object: ObjectJson,
        }
        #[derive(Deserialize)]
        struct ObjectJson {
            sha: String,
        }
        let what = format!("read the head of branch {branch} in {}", self.repo);
        check_repo_path(&what, branch)?;
        let uri = self.api(&format!("/git/ref/heads/{}", encode_path(branch)));
        match self
            .transport
            .send(self.call("get_ref", what.clone(), Method::GET, uri))
            .await
        {
            Ok(resp) => Ok(Some(resp.json::<RefAnswer>(&what)?.object.sha)),
            Err(GitHubError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Commits `changes` on `branch` as the App (a verified commit), creating the branch first
    /// when asked. The branch must still be where the caller last saw it, else
    /// [`GitHubError::StaleHead`]. `message`'s first line is the headline, the rest the body.
    pub async fn commit_files(
        &self,
        branch: &str,
        start: BranchStart,
        message: &str,
        changes: &[FileChange],
    ) -> Result<CommitResult> {
        let what = format!("commit to branch {branch} in {}", self.repo);
        check_repo_path(&what, branch)?;
        for change in changes {
            check_repo_path(&what, &change.path)?;
        }
        let (expected_head, repository_id) = match start {
            BranchStart::Existing { expected_head } => (expected_head, None),
            BranchStart::New {
                from,
                repository_id: None,
            } => {
                self.create_branch(branch, &from).await?;
                (from, None)
            }
            BranchStart::New {
                from,
                repository_id: Some(id),
            } => (from, Some(id)),
        };
        let (headline, body) = match message.split_once('\n') {
            Some((h, b)) => (h.trim_end(), b.trim()),
            None => (message, ""),
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let additions: Vec<Value> = changes
            .iter()
            .filter_map(|c| {
                c.contents
                    .as_ref()
                    .map(|text| json!({ "path": c.path, "contents": b64.encode(text) }))
            })
            .collect();
        let deletions: Vec<Value> = changes
            .iter()
            .filter(|c| c.contents.is_none())
            .map(|c| json!({ "path": c.path }))
            .collect();
        let input = json!({
            "branch": { "repositoryNameWithOwner": self.repo.to_string(), "branchName": branch },
            "message": { "headline": headline, "body": body },
            "fileChanges": { "additions": additions, "deletions": deletions },
            "expectedHeadOid": expected_head,
        });
        if let Some(repository_id) = repository_id {
            let variables = json!({
                "ref": {
                    "repositoryId": repository_id,
                    "name": format!("refs/heads/{branch}"),
                    "oid": expected_head,
                },
                "input": input,
            });
            let answer = self
                .graphql_answer(
                    "create_branch_and_commit",
                    &what,
                    BRANCH_COMMIT_MUTATION,
                    variables,
                )
                .await?;
            if let Some(made) = made_commit(answer.data.as_ref()) {
                return Ok(made);
            }
            // No commit. Committing on the branch as an existing one sorts out a branch that is
            // there: made by this call, or by an earlier attempt (at `expected_head`, or at the
            // commit of an attempt whose answer was lost). A branch that is not there was not
            // created: a refusal of `createRef` is the answer, and a refusal of the whole document
            // (no `data`) falls back to creating the branch in a call of its own.
            tracing::info!(
                branch,
                errors = %answer.messages(),
                "the branch and its commit were not made in one call; committing on the branch"
            );
            let created = answer
                .data
                .as_ref()
                .and_then(|d| d.pointer("/createRef/ref"))
                .is_some_and(|r| !r.is_null());
            if !created && self.branch_head(branch).await?.is_none() {
                if answer.data.is_some() {
                    return Err(answer.error(&what));
                }
                self.create_branch(branch, &expected_head).await?;
            }
        }
        let data = match self
            .graphql(
                "create_commit",
                &what,
                COMMIT_MUTATION,
                json!({ "input": input }),
            )
            .await
        {
            Ok(data) => data,
            Err(stale @ GitHubError::StaleHead { .. }) => {
                // A commit that landed behind a 5xx moved the branch, and its retry is refused
                // as stale: if the head is exactly this commit, it was made.
                // (A failure to read what is there is that failure, to be retried, not a stale
                // head: that would refuse the request for commits that may be its own.)
                return match self
                    .made_already(branch, &expected_head, headline, changes)
                    .await?
                {
                    Some(made) => Ok(made),
                    None => Err(stale),
                };
            }
            Err(e) => return Err(e),
        };
        made_commit(Some(&data)).ok_or_else(|| GitHubError::Unexpected {
            operation: what,
            message: "createCommitOnBranch returned no commit".into(),
        })
    }

    /// The head of `branch` if it is the commit [`Self::commit_files`] was asked to make: authored
    /// by the App and verified by GitHub (a commit made through the API as the App is signed by
    /// GitHub; a push from anyone's machine is not, whatever author it names), committed by the
    /// App or by GitHub itself, its only parent `expected_head`, its headline `headline`, the
    /// files it changed exactly the paths of `changes`, each holding what `changes` says (deleted
    /// files absent). Anything else is someone else's commit.
    async fn made_already(
        &self,
        branch: &str,
        expected_head: &str,
        headline: &str,
        changes: &[FileChange],
    ) -> Result<Option<CommitResult>> {
        /// GitHub's own committer login on commits it makes (web edits, API commits it signs).
        const GITHUB_COMMITTER: &str = "web-flow";
        let Some(head) = self.branch_head(branch).await? else {
            return Ok(None);
        };
        let c = self.get_commit(&head).await?;
        let bot = &*self.bot_login;
        let by_app = c
            .author
            .as_ref()
            .is_some_and(|a| a.login.eq_ignore_ascii_case(bot) && a.kind == "Bot")
            && c.committer.as_ref().is_some_and(|u| {
                u.login.eq_ignore_ascii_case(bot) || u.login.eq_ignore_ascii_case(GITHUB_COMMITTER)
            })
            && c.commit.verification.as_ref().is_some_and(|v| v.verified);
        let changed: BTreeSet<&str> = c.files.iter().map(|f| f.filename.as_str()).collect();
        let asked: BTreeSet<&str> = changes.iter().map(|f| f.path.as_str()).collect();
        let ours = by_app
            && changed == asked
            && matches!(c.parents.as_slice(), [p] if p.sha == expected_head)
            && c.commit.message.lines().next() == Some(headline);
        if !ours {
            tracing::warn!(
                branch,
                head = %c.sha,
                author = c.author.as_ref().map(|a| a.login.as_str()).unwrap_or("?"),
                by_app,
                "the branch moved to a commit TfPilot did not make"
            );
            return Ok(None);
        }
        for change in changes {
            let now = self.get_file(&c.sha, &change.path).await?.map(|f| f.text);
            if now != change.contents {
                return Ok(None);
            }
        }
        Ok(Some(CommitResult {
            oid: c.sha,
            url: c.html_url,
        }))
    }

    async fn get_commit(&self, sha: &str) -> Result<CommitJson> {
        let what = format!("read commit {sha} in {}", self.repo);
        let uri = self.api(&format!("/commits/{}", encode_path(sha)));
        self.transport
            .send(self.call("get_commit", what.clone(), Method::GET, uri))
            .await?
            .json(&what)
    }

    /// The parents of commit `sha` (one for a plain commit, two for a merge).
    pub async fn commit_parents(&self, sha: &str) -> Result<Vec<String>> {
        Ok(self
            .get_commit(sha)
            .await?
            .parents
            .into_iter()
            .map(|p| p.sha)
            .collect())
    }

    async fn create_branch(&self, branch: &str, from: &str) -> Result<()> {
        let what = format!("create branch {branch} in {}", self.repo);
        let call = self
            .call(
                "create_ref",
                what.clone(),
                Method::POST,
                self.api("/git/refs"),
            )
            .json(json!({ "ref": format!("refs/heads/{branch}"), "sha": from }));
        match self.transport.send(call).await {
            Ok(_) => Ok(()),
            Err(GitHubError::Validation { message, .. }) if message.contains("already exists") => {
                match self.branch_head(branch).await? {
                    Some(head) if head == from => Ok(()),
                    Some(head) => Err(GitHubError::StaleHead {
                        operation: what,
                        message: format!("branch {branch} already exists at {head}, not at {from}"),
                    }),
                    None => Err(GitHubError::Conflict {
                        operation: what,
                        message: "GitHub says the branch exists but cannot read it".into(),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a GraphQL document and returns its `data`; GraphQL errors (which arrive with HTTP 200)
    /// become typed errors.
    pub(crate) async fn graphql(
        &self,
        op: &'static str,
        what: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value> {
        let answer = self.graphql_answer(op, what, query, variables).await?;
        if !answer.errors.is_empty() {
            return Err(answer.error(what));
        }
        answer.data.ok_or_else(|| GitHubError::Unexpected {
            operation: what.to_owned(),
            message: "GraphQL answer without data".into(),
        })
    }

    /// Runs a GraphQL document and returns its whole answer: `data` and the errors of the fields
    /// that failed, for documents whose fields may fail apart.
    async fn graphql_answer(
        &self,
        op: &'static str,
        what: &str,
        query: &str,
        variables: Value,
    ) -> Result<GraphQlAnswer> {
        let call = Call::new(
            op,
            what,
            Method::POST,
            self.transport.graphql_url(),
            Auth::Repo {
                installation: self.installation,
                repo: self.repo.clone(),
            },
        )
        .json(json!({ "query": query, "variables": variables }));
        self.transport.send(call).await?.json(what)
    }

    /// Reads `branch`'s head, `path` in that commit and, when asked, pull request `pr`, in one
    /// GraphQL query (three REST reads otherwise). A file GraphQL shows only in part (large) or
    /// not as text is read through REST instead, at the same commit.
    pub async fn read_at_head(
        &self,
        branch: &str,
        path: &str,
        pr: Option<u64>,
    ) -> Result<HeadRead> {
        let what = format!("read {path} at the head of {branch} in {}", self.repo);
        check_repo_path(&what, path)?;
        let mut variables = json!({
            "owner": self.repo.owner(),
            "name": self.repo.name(),
            "branch": format!("refs/heads/{branch}"),
            "path": path,
        });
        let query = match pr {
            Some(number) => {
                variables["number"] = json!(number);
                FACTS_QUERY
            }
            None => FILE_AT_HEAD_QUERY,
        };
        let data = self
            .graphql("read_at_head", &what, query, variables)
            .await?;
        let unexpected = |message: String| GitHubError::Unexpected {
            operation: what.clone(),
            message,
        };
        let repo = &data["repository"];
        let target = &repo["ref"]["target"];
        let head = target["oid"].as_str().map(str::to_owned);
        let blob = &target["file"]["object"];
        let file = match (&head, blob.is_object()) {
            (Some(head), true)
                if blob["isTruncated"].as_bool() == Some(true)
                    || blob["isBinary"].as_bool() == Some(true)
                    || !blob["text"].is_string() =>
            {
                self.get_file(head, path).await?
            }
            (_, true) => Some(FileContent {
                text: blob["text"].as_str().unwrap_or_default().to_owned(),
                sha: blob["oid"].as_str().unwrap_or_default().to_owned(),
            }),
            (_, false) => None,
        };
        let pr = match pr {
            None => None,
            Some(_) => {
                let p = &repo["pullRequest"];
                let text = |k: &str| p[k].as_str().map(str::to_owned);
                let number = p["number"]
                    .as_u64()
                    .ok_or_else(|| unexpected("the pull request has no number".into()))?;
                Some(PrState {
                    number,
                    open: text("state").as_deref() == Some("OPEN"),
                    merged: p["merged"].as_bool().unwrap_or(false),
                    mergeable: match text("mergeable").as_deref() {
                        Some("MERGEABLE") => Some(true),
                        Some("CONFLICTING") => Some(false),
                        _ => None,
                    },
                    head_ref: text("headRefName").unwrap_or_default(),
                    head_sha: text("headRefOid").unwrap_or_default(),
                    base_ref: text("baseRefName").unwrap_or_default(),
                    merge_commit_sha: p["mergeCommit"]["oid"].as_str().map(str::to_owned),
                    url: text("url").unwrap_or_default(),
                })
            }
        };
        let repository_id = repo["id"].as_str().map(str::to_owned);
        Ok(HeadRead {
            head,
            file,
            pr,
            repository_id,
        })
    }

    /// Opens a pull request from `head` into `base`. If one is already open for that head (a
    /// retried submit), returns it with `created: false` instead of failing.
    pub async fn open_pull_request(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest> {
        let what = format!("open a pull request {head} → {base} in {}", self.repo);
        let call = self
            .call("open_pr", what.clone(), Method::POST, self.api("/pulls"))
            .json(json!({ "title": title, "head": head, "base": base, "body": body }));
        match self.transport.send(call).await {
            Ok(resp) => {
                let pr: PullJson = resp.json(&what)?;
                Ok(PullRequest {
                    number: pr.number,
                    url: pr.html_url,
                    head_sha: pr.head.sha.unwrap_or_default(),
                    created: true,
                })
            }
            Err(GitHubError::Validation { message, .. }) if message.contains("already exists") => {
                let uri = self.api(&format!(
                    "/pulls?state=open&head={}&base={}",
                    encode_query(&format!("{}:{head}", self.repo.owner())),
                    encode_query(base)
                ));
                let resp = self
                    .transport
                    .send(self.call("find_pr", what.clone(), Method::GET, uri))
                    .await?;
                let prs: Vec<PullJson> = resp.json(&what)?;
                let pr = prs
                    .into_iter()
                    .next()
                    .ok_or_else(|| GitHubError::Conflict {
                        operation: what,
                        message: format!(
                            "GitHub says a pull request for {head} exists but lists none"
                        ),
                    })?;
                Ok(PullRequest {
                    number: pr.number,
                    url: pr.html_url,
                    head_sha: pr.head.sha.unwrap_or_default(),
                    created: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A pull request's state.
    pub async fn pull_request(&self, number: u64) -> Result<PrState> {
        let what = format!("read pull request {}#{number}", self.repo);
        let resp = self
            .transport
            .send(self.call(
                "get_pr",
                what.clone(),
                Method::GET,
                self.api(&format!("/pulls/{number}")),
            ))
            .await?;
        let pr: PullJson = resp.json(&what)?;
        Ok(PrState {
            number: pr.number,
            open: pr.state == "open",
            merged: pr.merged,
            mergeable: pr.mergeable,
            head_ref: pr.head.git_ref,
            head_sha: pr.head.sha.unwrap_or_default(),
            base_ref: pr.base.git_ref,
            merge_commit_sha: pr.merge_commit_sha,
            url: pr.html_url,
        })
    }

    /// Merges a pull request. With `expected_head`, GitHub merges only if the head is still that
    /// commit ([`GitHubError::StaleHead`] otherwise); an unmergeable PR is [`GitHubError::Conflict`].
    pub async fn merge_pull_request(
        &self,
        number: u64,
        method: MergeMethod,
        expected_head: Option<&str>,
    ) -> Result<MergeResult> {
        #[derive(Deserialize)]
        struct Merged {
            sha: String,
        }
        let what = format!("merge pull request {}#{number}", self.repo);
        let mut body = json!({ "merge_method": method.as_str() });
        if let Some(sha) = expected_head {
            body["sha"] = json!(sha);
        }
        let call = self
            .call(
                "merge_pr",
                what.clone(),
                Method::PUT,
                self.api(&format!("/pulls/{number}/merge")),
            )
            .json(body);
        match self.transport.send(call).await {
            Ok(resp) => Ok(MergeResult {
                sha: resp.json::<Merged>(&what)?.sha,
            }),
            Err(GitHubError::Conflict { operation, message })
                if message.contains("Head branch was modified") =>
            {
                Err(GitHubError::StaleHead { operation, message })
            }
            Err(e) => Err(e),
        }
    }

    /// Writes a comment on an issue or pull request. Bodies over [`super::MAX_COMMENT_CHARS`]
    /// are refused by GitHub ([`GitHubError::Validation`]); shorten them before calling.
    pub async fn comment(&self, issue: u64, body: &str) -> Result<CommentRef> {
        #[derive(Deserialize)]
        struct CommentJson {
            id: u64,
            node_id: String,
            html_url: String,
        }
        let what = format!("comment on {}#{issue}", self.repo);
        let since = lookback_timestamp();
        let call = self
            .call(
                "comment",
                what.clone(),
                Method::POST,
                self.api(&format!("/issues/{issue}/comments")),
            )
            .json(json!({ "body": body }))
            .unless_landed(Landed::Comment {
                list_uri: self.api(&format!(
                    "/issues/{issue}/comments?since={}&per_page=100",
                    encode_query(&since)
                )),
                body: body.to_owned(),
            });
        let c: CommentJson = self.transport.send(call).await?.json(&what)?;
        Ok(CommentRef {
            id: c.id,
            node_id: c.node_id,
            url: c.html_url,
        })
    }

    /// The most recently updated issue (not pull request) opened by a bot whose body starts with
    /// `marker`, among the 100 most recently updated: how an issue TfPilot opened before a crash
    /// is found instead of opened twice.
    pub async fn find_own_issue(&self, marker: &str) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct IssueJson {
            number: u64,
            #[serde(default)]
            body: Option<String>,
            user: Option<UserJson>,
            #[serde(default)]
            pull_request: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct UserJson {
            #[serde(rename = "type", default)]
            kind: String,
        }
        let what = format!("list the issues of {}", self.repo);
        let call = self.call(
            "list_issues",
            what.clone(),
            Method::GET,
            self.api("/issues?state=all&sort=updated&direction=desc&per_page=100"),
        );
        let issues: Vec<IssueJson> = self.transport.send(call).await?.json(&what)?;
        Ok(issues
            .into_iter()
            .find(|i| {
                i.pull_request.is_none()
                    && i.user.as_ref().is_some_and(|u| u.kind == "Bot")
                    && i.body.as_deref().is_some_and(|b| b.starts_with(marker))
            })
            .map(|i| i.number))
    }

    /// Opens an issue (`POST /repos/{owner}/{repo}/issues`); returns its number.
    pub async fn create_issue(&self, title: &str, body: &str) -> Result<u64> {
        #[derive(Deserialize)]
        struct IssueJson {
            number: u64,
        }
        let what = format!("open an issue in {}", self.repo);
        let since = lookback_timestamp();
        let call = self
            .call(
                "create_issue",
                what.clone(),
                Method::POST,
                self.api("/issues"),
            )
            .json(json!({ "title": title, "body": body }))
            .unless_landed(Landed::Issue {
                list_uri: self.api(&format!(
                    "/issues?state=all&since={}&per_page=100",
                    encode_query(&since)
                )),
                body: body.to_owned(),
            });
        let issue: IssueJson = self.transport.send(call).await?.json(&what)?;
        Ok(issue.number)
    }

    /// Sets an issue's title, body and state
    /// (`PATCH /repos/{owner}/{repo}/issues/{issue_number}`). An issue moved to another
    /// repository answers with a redirect: it is not here any more ([`GitHubError::NotFound`]).
    pub async fn update_issue(
        &self,
        number: u64,
        title: &str,
        body: &str,
        open: bool,
    ) -> Result<()> {
        let what = format!("edit {}#{number}", self.repo);
        let state = if open { "open" } else { "closed" };
        let fields = json!({ "title": title, "body": body, "state": state });
        let call = self
            .call(
                "update_issue",
                what.clone(),
                Method::PATCH,
                self.api(&format!("/issues/{number}")),
            )
            .json(fields);
        let response = self.transport.send(call).await?;
        if response.status.is_redirection() {
            return Err(GitHubError::NotFound {
                operation: what,
                message: format!("moved ({})", response.status.as_u16()),
            });
        }
        Ok(())
    }

    /// The comments on an issue or pull request, oldest first (at most
    /// [`MAX_LISTED_COMMENTS`]): for finding TfPilot's own comments by their markers.
    pub async fn comments(&self, issue: u64) -> Result<Vec<ListedComment>> {
        #[derive(Deserialize)]
        struct CommentJson {
            id: u64,
            node_id: String,
            #[serde(default)]
            body: Option<String>,
            user: Option<UserJson>,
        }
        #[derive(Deserialize)]
        struct UserJson {
            login: String,
        }
        const PER_PAGE: usize = 100;
        let what = format!("list the comments on {}#{issue}", self.repo);
        let mut out = Vec::new();
        // GitHub names the next page in the `Link` header; follow it, at most ten pages.
        let mut next = Some(self.api(&format!("/issues/{issue}/comments?per_page={PER_PAGE}")));
        let mut pages = 0;
        while let Some(uri) = next.take() {
            if pages == MAX_LISTED_COMMENTS / PER_PAGE {
                break;
            }
            pages += 1;
            let resp = self
                .transport
                .send(self.call("list_comments", what.clone(), Method::GET, uri))
                .await?;
            let batch: Vec<CommentJson> = resp.json(&what)?;
            out.extend(batch.into_iter().map(|c| ListedComment {
                id: c.id,
                node_id: c.node_id,
                author: c.user.map(|u| u.login).unwrap_or_default(),
                body: c.body.unwrap_or_default(),
            }));
            next = self.transport.next_page(&resp);
        }
        Ok(out)
    }

    /// Closes a pull request without merging it. Closing a closed one changes nothing.
    pub async fn close_pull_request(&self, number: u64) -> Result<()> {
        let what = format!("close pull request {}#{number}", self.repo);
        let call = self
            .call(
                "close_pr",
                what,
                Method::PATCH,
                self.api(&format!("/pulls/{number}")),
            )
            .json(json!({ "state": "closed" }));
        self.transport.send(call).await.map(drop)
    }

    /// Replaces a comment's body.
    pub async fn edit_comment(&self, comment_id: u64, body: &str) -> Result<()> {
        let what = format!("edit comment {comment_id} in {}", self.repo);
        let call = self
            .call(
                "edit_comment",
                what,
                Method::PATCH,
                self.api(&format!("/issues/comments/{comment_id}")),
            )
            .json(json!({ "body": body }));
        self.transport.send(call).await.map(drop)
    }

    /// Hides a comment (GraphQL `minimizeComment`), e.g. a plan superseded by a newer one.
    pub async fn minimize_comment(&self, node_id: &str, reason: MinimizeReason) -> Result<()> {
        let what = format!("minimize comment {node_id} in {}", self.repo);
        let input = json!({ "input": { "subjectId": node_id, "classifier": reason.classifier() } });
        self.graphql("minimize_comment", &what, MINIMIZE_MUTATION, input)
            .await
            .map(drop)
    }

    /// Reacts to a comment (👀 on receipt). Reacting twice is fine.
    pub async fn react(&self, comment_id: u64, reaction: Reaction) -> Result<()> {
        let what = format!("react to comment {comment_id} in {}", self.repo);
        let call = self
            .call(
                "react",
                what,
                Method::POST,
                self.api(&format!("/issues/comments/{comment_id}/reactions")),
            )
            .json(json!({ "content": reaction.content() }));
        self.transport.send(call).await.map(drop)
    }

    /// A user's permission on the repository; [`Permission::None`] for someone GitHub does not know.
    pub async fn permission(&self, login: &str) -> Result<Permission> {
        #[derive(Deserialize)]
        struct PermissionJson {
            permission: Option<String>,
            role_name: Option<String>,
        }
        let what = format!("read {login}'s permission on {}", self.repo);
        let uri = self.api(&format!(
            "/collaborators/{}/permission",
            encode_query(login)
        ));
        match self
            .transport
            .send(self.call("permission", what.clone(), Method::GET, uri))
            .await
        {
            Ok(resp) => {
                let p: PermissionJson = resp.json(&what)?;
                Ok(permission_from_github(
                    p.role_name.as_deref(),
                    p.permission.as_deref(),
                ))
            }
            Err(GitHubError::NotFound { .. }) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }
}

/// A commit as `GET /repos/{owner}/{repo}/commits/{ref}` shows it (the fields TfPilot reads).
#[derive(Deserialize)]
struct CommitJson {
    sha: String,
    html_url: String,
    commit: CommitDetails,
    parents: Vec<ParentJson>,
    author: Option<UserJson>,
    committer: Option<UserJson>,
    #[serde(default)]
    files: Vec<FileJson>,
}
#[derive(Deserialize)]
struct CommitDetails {
    message: String,
    verification: Option<Verification>,
}
#[derive(Deserialize)]
struct Verification {
    verified: bool,
}
#[derive(Deserialize)]
struct UserJson {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}
#[derive(Deserialize)]
struct FileJson {
    filename: String,
}
#[derive(Deserialize)]
struct ParentJson {
    sha: String,
}

/// A GraphQL answer: errors arrive with HTTP 200, next to the `data` of the fields that worked.
#[derive(Debug, Deserialize)]
struct GraphQlAnswer {
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: String,
}

impl GraphQlAnswer {
    /// Every error's message, in order.
    fn messages(&self) -> String {
        self.errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The typed error the answer's first error stands for (an answer without errors and without
    /// the data asked for is [`GitHubError::Unexpected`]).
    fn error(&self, what: &str) -> GitHubError {
        let operation = what.to_owned();
        let message = self.messages();
        let Some(first) = self.errors.first() else {
            return GitHubError::Unexpected {
                operation,
                message: "GraphQL answer without the data asked for".into(),
            };
        };
        let stale = first.kind.as_deref() == Some("STALE_DATA")
            || first.message.contains("expectedHeadOid")
            || first.message.contains("Expected branch to point to");
        match first.kind.as_deref() {
            _ if stale => GitHubError::StaleHead { operation, message },
            // GitHub's GraphQL rate limit answers HTTP 200 with this type: wait and retry.
            Some("RATE_LIMITED") => GitHubError::RateLimited {
                operation,
                retry_after: None,
                message,
            },
            Some("NOT_FOUND") => GitHubError::NotFound { operation, message },
            Some("FORBIDDEN") => GitHubError::PermissionDenied { operation, message },
            _ => GitHubError::Validation { operation, message },
        }
    }
}

/// The commit `createCommitOnBranch` made, if its part of `data` holds one.
fn made_commit(data: Option<&Value>) -> Option<CommitResult> {
    let commit = data?.pointer("/createCommitOnBranch/commit")?;
    Some(CommitResult {
        oid: commit.get("oid")?.as_str()?.to_owned(),
        url: commit.get("url")?.as_str()?.to_owned(),
    })
}

/// A moment shortly before now (see [`LANDED_LOOKBACK`]), as GitHub's `since` parameters take it.
fn lookback_timestamp() -> String {
    let t = (time::OffsetDateTime::now_utc() - LANDED_LOOKBACK)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc() - LANDED_LOOKBACK);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_role_name_first_then_the_legacy_field() {
        assert_eq!(
            permission_from_github(Some("maintain"), Some("write")),
            Permission::Maintain
        );
        assert_eq!(
            permission_from_github(Some("triage"), Some("read")),
            Permission::Triage
        );
        assert_eq!(
            permission_from_github(None, Some("admin")),
            Permission::Admin
        );
        assert_eq!(
            permission_from_github(Some("deployer"), Some("write")),
            Permission::Write
        );
        assert_eq!(permission_from_github(None, None), Permission::None);
        assert!(Permission::Maintain.can_write() && Permission::Write.can_write());
        assert!(!Permission::Triage.can_write() && !Permission::None.can_write());
    }
}
