//! TfPilot on GitHub: App authentication (JWT → installation token, cached and refreshed) and the
//! operations TfPilot needs, each one function with a typed result, on octocrab.
//!
//! ```no_run
//! # async fn demo(key: secrecy::SecretString) -> Result<(), tfpilot::github::GitHubError> {
//! use tfpilot::github::{BranchStart, FileChange, GitHubApp};
//! use tfpilot::ids::{InstallationId, RepoName};
//!
//! let app = GitHubApp::new(4242, &key, "https://api.github.com")?;
//! let repo: RepoName = "acme/core-terraform".parse().expect("a repo name");
//! let gh = app.repo(InstallationId(7), &repo);
//! // The base's head, the file there and the repository's node id, in one GraphQL query.
//! let base = gh.read_at_head("main", "envs/dev/tfpilot.s3.tf", None).await?;
//! let commit = gh
//!     .commit_files(
//!         "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b",
//!         BranchStart::New {
//!             from: base.head.expect("main exists"),
//!             repository_id: base.repository_id,
//!         },
//!         "tfpilot: add s3-bucket invoices",
//!         &[FileChange::put("envs/dev/tfpilot.s3.tf", "# …")],
//!     )
//!     .await?;
//! # let _ = commit; Ok(()) }
//! ```
//!
//! A submit (read the base, create the branch and commit on it, open the PR, dispatch the plan)
//! takes 4 API calls, plus one installation-token call when the cache is cold; see
//! `tests/it/github/ops.rs`.
//!
//! Every call goes through one transport (`transport.rs`): retries with backoff on 5xx and network
//! failures, waits as GitHub's rate-limit headers say, one token refresh on 401, a bounded total
//! time, and a count per operation (`tfpilot_github_api_calls_total{operation}` and
//! [`GitHubApp::stats`]).

mod actions;
mod app;
pub mod artifact;
mod auth;
pub mod checks;
mod error;
mod forge;
pub mod manifest;
mod repo;
mod transport;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

pub use actions::{Artifact, DispatchResult, RunConclusion, RunStatus, WorkflowRun};
pub use app::{AppInfo, Installation, InstalledRepo};
pub use artifact::ArtifactArchive;
pub use auth::{Access, TOKEN_REFRESH_MARGIN};
pub use checks::{CheckAction, CheckConclusion, CheckOutput, CheckRunWrite, CheckState};
pub use error::{GitHubError, Result};
pub use forge::{Forge, Repo};
pub use repo::{
    BRANCH_COMMIT_MUTATION, BranchStart, CommentRef, CommitResult, FileChange, FileContent,
    GRAPHQL_DOCUMENTS, HeadRead, ListedComment, MAX_LISTED_COMMENTS, MergeMethod, MergeResult,
    MinimizeReason, Permission, PrState, PullRequest, Reaction,
};
pub use transport::{CallStats, RetryPolicy};

use crate::ids::{InstallationId, RepoName};

/// GitHub refuses comment bodies longer than this many characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// Counter: HTTP calls to GitHub by `operation` (`comment`, `create_commit`, …), every attempt
/// counted, retries and token requests included.
pub const API_CALLS_METRIC: &str = "tfpilot_github_api_calls_total";

/// The TfPilot GitHub App: its credentials, the API base URL and the shared installation-token
/// cache. Cheap to clone; clones share the cache and the call statistics.
#[derive(Clone)]
pub struct GitHubApp {
    transport: Arc<transport::Transport>,
    /// The App's own login (`<slug>[bot]`): the author of the commits it makes.
    bot_login: Arc<str>,
}

/// The App's login when no slug is configured (`TFPILOT_GITHUB_APP_SLUG`'s default).
pub const DEFAULT_BOT_LOGIN: &str = "tfpilot[bot]";

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp").finish_non_exhaustive()
    }
}

impl GitHubApp {
    /// The App `app_id` with its private key (PEM, PKCS#1 or PKCS#8) against the API at
    /// `base_url` (`https://api.github.com`, `https://ghe.example.com/api/v3`, or the simulator).
    /// Call it inside a tokio runtime (octocrab starts its connection pool on one).
    pub fn new(app_id: u64, private_key_pem: &SecretString, base_url: &str) -> Result<Self> {
        Self::with_retry_policy(app_id, private_key_pem, base_url, RetryPolicy::default())
    }

    /// As [`GitHubApp::new`], with a chosen retry policy.
    pub fn with_retry_policy(
        app_id: u64,
        private_key_pem: &SecretString,
        base_url: &str,
        policy: RetryPolicy,
    ) -> Result<Self> {
        let key = auth::AppKey::new(app_id, private_key_pem.expose_secret().as_bytes())?;
        let transport = transport::Transport::new(key, base_url, policy)?;
        Ok(Self {
            transport: Arc::new(transport),
            bot_login: Arc::from(DEFAULT_BOT_LOGIN),
        })
    }

    /// The App's own login (`<slug>[bot]`, default [`DEFAULT_BOT_LOGIN`]): only a commit it
    /// authored (and GitHub verified) is ever taken for one it was asked to make.
    pub fn with_bot_login(mut self, login: impl AsRef<str>) -> Self {
        self.bot_login = Arc::from(login.as_ref());
        self
    }

    /// The operations on one repository, authenticated as `installation`.
    pub fn repo(&self, installation: InstallationId, repo: &RepoName) -> RepoClient {
        RepoClient {
            transport: self.transport.clone(),
            installation,
            repo: repo.clone(),
            bot_login: self.bot_login.clone(),
        }
    }

    /// A valid installation token for one repository with `access` (cached; refreshed five
    /// minutes before it expires). TfPilot's own calls do not need this; it is for handing to
    /// tools that talk to GitHub themselves.
    pub async fn installation_token(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        access: Access,
    ) -> Result<SecretString> {
        let scope = auth::TokenScope {
            installation,
            repo: repo.name().to_owned(),
            access,
        };
        self.transport.installation_token(&scope).await
    }

    /// The calls made so far by this App (all repositories), by operation.
    pub fn stats(&self) -> CallStats {
        self.transport.stats()
    }
}

/// The GitHub operations TfPilot performs on one repository as one installation.
#[derive(Clone)]
pub struct RepoClient {
    transport: Arc<transport::Transport>,
    installation: InstallationId,
    repo: RepoName,
    bot_login: Arc<str>,
}

impl std::fmt::Debug for RepoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoClient")
            .field("installation", &self.installation)
            .field("repo", &self.repo)
            .finish()
    }
}

impl RepoClient {
    pub fn repo_name(&self) -> &RepoName {
        &self.repo
    }

    pub fn installation(&self) -> InstallationId {
        self.installation
    }
}

/// Refuses a repository path, branch or workflow name that could address something else once it
/// is in a URL path: an empty, `.` or `..` segment (`contents/../../other/contents/x` reads
/// another repository wherever the URL is normalized on the way), a leading `/`, a backslash or a
/// control character. Git forbids all of these in ref names, and TfPilot's paths never hold them.
fn check_repo_path(operation: &str, path: &str) -> Result<()> {
    let valid = !path.is_empty()
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if valid {
        Ok(())
    } else {
        Err(GitHubError::Validation {
            operation: operation.to_owned(),
            message: format!(
                "{path:?} is not a repository path (no empty, `.` or `..` segments, no leading `/`)"
            ),
        })
    }
}

/// Percent-encodes a path or ref for use inside a URL path (keeping `/`).
fn encode_path(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, KEEP).to_string()
}

/// Percent-encodes a query value.
fn encode_query(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_encoded_for_urls() {
        assert_eq!(
            encode_path("envs/dev/tfpilot.s3-bucket.tf"),
            "envs/dev/tfpilot.s3-bucket.tf"
        );
        assert_eq!(encode_path("a b/c#d?"), "a%20b/c%23d%3F");
        assert_eq!(encode_query("request/abc"), "request%2Fabc");
        assert_eq!(encode_query("acme:x&y=1"), "acme%3Ax%26y%3D1");
    }

    #[tokio::test]
    async fn debug_output_never_shows_the_key() {
        let key = SecretString::from(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned());
        let app = GitHubApp::new(1, &key, "http://127.0.0.1:9").unwrap();
        let shown = format!("{app:?} {key:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[tokio::test]
    async fn bad_base_urls_are_refused_at_construction() {
        let key = SecretString::from(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned());
        for bad in ["", "not a url", "ftp://example.com", "/relative"] {
            let err = GitHubApp::new(1, &key, bad).unwrap_err();
            assert!(
                matches!(err, GitHubError::InvalidBaseUrl(_)),
                "{bad}: {err}"
            );
        }
    }
}
