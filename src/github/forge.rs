//! The seam between the executor and GitHub: [`Repo`] is the operations the executor performs on
//! one repository, [`Forge`] hands one out per (installation, repository). [`GitHubApp`] and
//! [`RepoClient`] are the real ones; tests put an in-memory forge behind the same traits.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Artifact, ArtifactArchive, BranchStart, CheckRunWrite, CommentRef, CommitResult,
    DispatchResult, FileChange, FileContent, GitHubApp, HeadRead, ListedComment, MergeMethod,
    MergeResult, MinimizeReason, Permission, PrState, PullRequest, Reaction, RepoClient, Result,
    WorkflowRun,
};
use crate::ids::{InstallationId, RepoName};

/// The GitHub operations the executor performs on one repository (see [`RepoClient`]'s methods
/// of the same names for what each does).
#[async_trait]
pub trait Repo: Send + Sync {
    async fn default_branch(&self) -> Result<String>;
    async fn get_file(&self, git_ref: &str, path: &str) -> Result<Option<FileContent>>;
    async fn branch_head(&self, branch: &str) -> Result<Option<String>>;
    async fn commit_parents(&self, sha: &str) -> Result<Vec<String>>;
    async fn commit_files(
        &self,
        branch: &str,
        start: BranchStart,
        message: &str,
        changes: &[FileChange],
    ) -> Result<CommitResult>;
    async fn open_pull_request(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest>;
    async fn pull_request(&self, number: u64) -> Result<PrState>;
    /// `branch`'s head, `path` in that commit and, when asked, pull request `pr`, read together
    /// (one GraphQL call on GitHub; the three reads one after the other here).
    async fn read_at_head(&self, branch: &str, path: &str, pr: Option<u64>) -> Result<HeadRead> {
        let head = self.branch_head(branch).await?;
        let file = match &head {
            Some(head) => self.get_file(head, path).await?,
            None => None,
        };
        let pr = match pr {
            Some(number) => Some(self.pull_request(number).await?),
            None => None,
        };
        Ok(HeadRead {
            head,
            file,
            pr,
            repository_id: None,
        })
    }
    async fn merge_pull_request(
        &self,
        number: u64,
        method: MergeMethod,
        expected_head: Option<&str>,
    ) -> Result<MergeResult>;
    async fn close_pull_request(&self, number: u64) -> Result<()>;
    async fn comment(&self, issue: u64, body: &str) -> Result<CommentRef>;
    async fn comments(&self, issue: u64) -> Result<Vec<ListedComment>>;
    async fn create_issue(&self, title: &str, body: &str) -> Result<u64>;
    async fn update_issue(&self, number: u64, title: &str, body: &str, open: bool) -> Result<()>;
    async fn find_own_issue(&self, marker: &str) -> Result<Option<u64>>;
    async fn minimize_comment(&self, node_id: &str, reason: MinimizeReason) -> Result<()>;
    async fn react(&self, comment_id: u64, reaction: Reaction) -> Result<()>;
    async fn permission(&self, login: &str) -> Result<Permission>;
    async fn dispatch_workflow(
        &self,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
        correlation_id: &str,
    ) -> Result<DispatchResult>;
    async fn find_workflow_run(
        &self,
        workflow: &str,
        branch: &str,
        correlation_id: &str,
    ) -> Result<Option<WorkflowRun>>;
    async fn workflow_run(&self, run_id: u64) -> Result<WorkflowRun>;
    async fn list_artifacts(&self, run_id: u64) -> Result<Vec<Artifact>>;
    async fn download_artifact(
        &self,
        artifact_id: u64,
        max_zip_bytes: u64,
    ) -> Result<ArtifactArchive>;
    async fn create_check_run(&self, head_sha: &str, run: &CheckRunWrite) -> Result<u64>;
    async fn update_check_run(&self, id: u64, run: &CheckRunWrite) -> Result<()>;
    async fn find_check_run(
        &self,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>>;
    async fn team_member(&self, team: &str, login: &str) -> Result<bool>;
    async fn user_exists(&self, login: &str) -> Result<bool>;
    async fn team_exists(&self, team: &str) -> Result<bool>;
}

/// Where the executor gets a [`Repo`] for each repository it acts on.
pub trait Forge: Send + Sync {
    fn repo(&self, installation: InstallationId, repo: &RepoName) -> Arc<dyn Repo>;
}

impl Forge for GitHubApp {
    fn repo(&self, installation: InstallationId, repo: &RepoName) -> Arc<dyn Repo> {
        Arc::new(GitHubApp::repo(self, installation, repo))
    }
}

#[async_trait]
impl Repo for RepoClient {
    async fn default_branch(&self) -> Result<String> {
        RepoClient::default_branch(self).await
    }

    async fn get_file(&self, git_ref: &str, path: &str) -> Result<Option<FileContent>> {
        RepoClient::get_file(self, git_ref, path).await
    }

    async fn branch_head(&self, branch: &str) -> Result<Option<String>> {
        RepoClient::branch_head(self, branch).await
    }

    async fn commit_parents(&self, sha: &str) -> Result<Vec<String>> {
        RepoClient::commit_parents(self, sha).await
    }

    async fn commit_files(
        &self,
        branch: &str,
        start: BranchStart,
        message: &str,
        changes: &[FileChange],
    ) -> Result<CommitResult> {
        RepoClient::commit_files(self, branch, start, message, changes).await
    }

    async fn open_pull_request(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest> {
        RepoClient::open_pull_request(self, head, base, title, body).await
    }

    async fn pull_request(&self, number: u64) -> Result<PrState> {
        RepoClient::pull_request(self, number).await
    }
    async fn read_at_head(&self, branch: &str, path: &str, pr: Option<u64>) -> Result<HeadRead> {
        RepoClient::read_at_head(self, branch, path, pr).await
    }

    async fn merge_pull_request(
        &self,
        number: u64,
        method: MergeMethod,
        expected_head: Option<&str>,
    ) -> Result<MergeResult> {
        RepoClient::merge_pull_request(self, number, method, expected_head).await
    }

    async fn close_pull_request(&self, number: u64) -> Result<()> {
        RepoClient::close_pull_request(self, number).await
    }

    async fn comment(&self, issue: u64, body: &str) -> Result<CommentRef> {
        RepoClient::comment(self, issue, body).await
    }

    async fn comments(&self, issue: u64) -> Result<Vec<ListedComment>> {
        RepoClient::comments(self, issue).await
    }

    async fn create_issue(&self, title: &str, body: &str) -> Result<u64> {
        RepoClient::create_issue(self, title, body).await
    }

    async fn update_issue(&self, number: u64, title: &str, body: &str, open: bool) -> Result<()> {
        RepoClient::update_issue(self, number, title, body, open).await
    }

    async fn find_own_issue(&self, marker: &str) -> Result<Option<u64>> {
        RepoClient::find_own_issue(self, marker).await
    }

    async fn minimize_comment(&self, node_id: &str, reason: MinimizeReason) -> Result<()> {
        RepoClient::minimize_comment(self, node_id, reason).await
    }

    async fn react(&self, comment_id: u64, reaction: Reaction) -> Result<()> {
        RepoClient::react(self, comment_id, reaction).await
    }

    async fn permission(&self, login: &str) -> Result<Permission> {
        RepoClient::permission(self, login).await
    }

    async fn dispatch_workflow(
        &self,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
        correlation_id: &str,
    ) -> Result<DispatchResult> {
        RepoClient::dispatch_workflow(self, workflow, git_ref, inputs, correlation_id).await
    }

    async fn find_workflow_run(
        &self,
        workflow: &str,
        branch: &str,
        correlation_id: &str,
    ) -> Result<Option<WorkflowRun>> {
        RepoClient::find_workflow_run(self, workflow, branch, correlation_id).await
    }

    async fn workflow_run(&self, run_id: u64) -> Result<WorkflowRun> {
        RepoClient::workflow_run(self, run_id).await
    }

    async fn list_artifacts(&self, run_id: u64) -> Result<Vec<Artifact>> {
        RepoClient::list_artifacts(self, run_id).await
    }

    async fn download_artifact(
        &self,
        artifact_id: u64,
        max_zip_bytes: u64,
    ) -> Result<ArtifactArchive> {
        RepoClient::download_artifact(self, artifact_id, max_zip_bytes).await
    }

    async fn create_check_run(&self, head_sha: &str, run: &CheckRunWrite) -> Result<u64> {
        RepoClient::create_check_run(self, head_sha, run).await
    }

    async fn update_check_run(&self, id: u64, run: &CheckRunWrite) -> Result<()> {
        RepoClient::update_check_run(self, id, run).await
    }

    async fn find_check_run(
        &self,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>> {
        RepoClient::find_check_run(self, head_sha, name, external_id).await
    }

    async fn team_member(&self, team: &str, login: &str) -> Result<bool> {
        RepoClient::team_member(self, team, login).await
    }

    async fn user_exists(&self, login: &str) -> Result<bool> {
        RepoClient::user_exists(self, login).await
    }

    async fn team_exists(&self, team: &str) -> Result<bool> {
        RepoClient::team_exists(self, team).await
    }
}
