//! An in-memory GitHub behind the [`Forge`]/[`Repo`] seam: branches, commits (with their files),
//! comments, pull requests and workflow runs in maps, and a count of every call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::github::{
    Artifact, ArtifactArchive, BranchStart, CheckRunWrite, CommentRef, CommitResult,
    DispatchResult, FileChange, FileContent, Forge, GitHubError, ListedComment, MergeMethod,
    MergeResult, MinimizeReason, Permission, PrState, PullRequest, Reaction, Repo, Result,
    RunStatus, WorkflowRun,
};
use crate::ids::{InstallationId, RepoName};

pub const BOT: &str = "tfpilot[bot]";

#[derive(Debug, Clone)]
pub struct Commit {
    pub parent: Option<String>,
    pub message: String,
    pub files: BTreeMap<String, String>,
    /// Made by the App through the API (authored by it, verified by GitHub); a test's
    /// [`World::add_commit`] is a person's push.
    pub by_app: bool,
}

/// A dispatched (or pre-existing) run: its workflow, ref, correlation id and the run.
#[derive(Debug, Clone)]
pub struct Run {
    pub workflow: String,
    pub git_ref: String,
    pub correlation_id: String,
    pub inputs: BTreeMap<String, String>,
    pub run: WorkflowRun,
}

#[derive(Debug, Default)]
pub struct World {
    pub branches: HashMap<String, String>,
    pub commits: HashMap<String, Commit>,
    /// Comments by thread (issue or pull request number).
    pub comments: BTreeMap<u64, Vec<ListedComment>>,
    /// Pull requests opened: (number, head, base).
    pub prs: Vec<(u64, String, String)>,
    pub runs: Vec<Run>,
    pub permission: Option<Permission>,
    /// Calls by operation.
    pub calls: BTreeMap<&'static str, usize>,
    /// The (installation, repository) of every client handed out.
    pub clients: Vec<(InstallationId, RepoName)>,
    /// The changes of every commit the fake made.
    pub committed: Vec<(String, Vec<FileChange>)>,
    /// Check runs by id: the head they are on, and their last write.
    pub check_runs: BTreeMap<u64, (String, CheckRunWrite)>,
    /// Active team memberships: (`org/slug`, login).
    pub team_members: Vec<(String, String)>,
    /// Issues TfPilot opened, by number: (title, body, open).
    pub issues: BTreeMap<u64, (String, String, bool)>,
    next_id: u64,
}

impl World {
    pub fn calls(&self, op: &str) -> usize {
        self.calls.get(op).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a commit on top of `parent` (none: a root commit) and returns its id.
    pub fn add_commit(
        &mut self,
        parent: Option<&str>,
        message: &str,
        changes: &[FileChange],
    ) -> String {
        let mut files = parent
            .and_then(|p| self.commits.get(p))
            .map(|c| c.files.clone())
            .unwrap_or_default();
        for change in changes {
            match &change.contents {
                Some(text) => files.insert(change.path.clone(), text.clone()),
                None => files.remove(&change.path),
            };
        }
        let oid = format!("commit{}", self.next());
        let commit = Commit {
            parent: parent.map(str::to_owned),
            message: message.to_owned(),
            files,
            by_app: false,
        };
        self.commits.insert(oid.clone(), commit);
        oid
    }

    /// A comment on `thread` as `author`; returns its id.
    pub fn add_comment(&mut self, thread: u64, author: &str, body: &str) -> u64 {
        let id = 1000 + self.next();
        self.comments
            .entry(thread)
            .or_default()
            .push(ListedComment {
                id,
                node_id: format!("node{id}"),
                author: author.to_owned(),
                body: body.to_owned(),
            });
        id
    }

    pub fn thread(&self, thread: u64) -> &[ListedComment] {
        self.comments.get(&thread).map(Vec::as_slice).unwrap_or(&[])
    }

    fn resolve(&self, git_ref: &str) -> Option<&Commit> {
        let oid = self
            .branches
            .get(git_ref)
            .map(String::as_str)
            .unwrap_or(git_ref);
        self.commits.get(oid)
    }

    /// The head of `branch` if it is the commit asked for: made by the App, one commit on
    /// `expected`, with `message`'s headline, changing exactly the files of `changes` as they say
    /// (as `RepoClient::commit_files` checks after a stale-head answer).
    fn made_already(
        &self,
        branch: &str,
        expected: &str,
        message: &str,
        changes: &[FileChange],
    ) -> Option<String> {
        let head = self.branches.get(branch)?;
        let c = self.commits.get(head)?;
        let before = c
            .parent
            .as_deref()
            .and_then(|p| self.commits.get(p))
            .map(|p| p.files.clone())
            .unwrap_or_default();
        let changed: std::collections::BTreeSet<&String> = c
            .files
            .iter()
            .filter(|(path, text)| before.get(*path) != Some(*text))
            .map(|(path, _)| path)
            .chain(before.keys().filter(|p| !c.files.contains_key(*p)))
            .collect();
        let asked: std::collections::BTreeSet<&String> =
            changes.iter().map(|ch| &ch.path).collect();
        let ours = c.by_app
            && changed == asked
            && c.parent.as_deref() == Some(expected)
            && c.message.lines().next() == message.lines().next()
            && changes
                .iter()
                .all(|ch| c.files.get(&ch.path) == ch.contents.as_ref());
        ours.then(|| head.clone())
    }
}

#[derive(Clone, Default)]
pub struct FakeForge {
    pub world: Arc<Mutex<World>>,
}

impl FakeForge {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("the fake's lock")
    }
}

impl Forge for FakeForge {
    fn repo(&self, installation: InstallationId, repo: &RepoName) -> Arc<dyn Repo> {
        self.world().clients.push((installation, repo.clone()));
        Arc::new(FakeRepo {
            world: self.world.clone(),
        })
    }
}

struct FakeRepo {
    world: Arc<Mutex<World>>,
}

impl FakeRepo {
    fn count(&self, op: &'static str) {
        drop(self.call(op));
    }

    /// The world, counting a call to `op`.
    fn call(&self, op: &'static str) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().expect("the fake's lock");
        *w.calls.entry(op).or_default() += 1;
        w
    }
}

fn unexpected(operation: &str) -> GitHubError {
    GitHubError::Unexpected {
        operation: operation.to_owned(),
        message: "not expected by this test".to_owned(),
    }
}

fn stale(branch: &str) -> GitHubError {
    GitHubError::StaleHead {
        operation: format!("commit to branch {branch}"),
        message: "Expected branch to point to another commit".to_owned(),
    }
}

#[async_trait]
impl Repo for FakeRepo {
    async fn default_branch(&self) -> Result<String> {
        self.count("default_branch");
        Ok("main".to_owned())
    }

    async fn get_file(&self, git_ref: &str, path: &str) -> Result<Option<FileContent>> {
        let w = self.call("get_file");
        Ok(w.resolve(git_ref)
            .and_then(|c| c.files.get(path))
            .map(|text| FileContent {
                text: text.clone(),
                sha: format!("blob-{}", text.len()),
            }))
    }

    async fn branch_head(&self, branch: &str) -> Result<Option<String>> {
        Ok(self.call("branch_head").branches.get(branch).cloned())
    }

    async fn commit_parents(&self, sha: &str) -> Result<Vec<String>> {
        let w = self.call("commit_parents");
        match w.commits.get(sha) {
            Some(c) => Ok(c.parent.iter().cloned().collect()),
            None => Err(GitHubError::NotFound {
                operation: "commit_parents".into(),
                message: format!("no commit {sha}"),
            }),
        }
    }

    async fn commit_files(
        &self,
        branch: &str,
        start: BranchStart,
        message: &str,
        changes: &[FileChange],
    ) -> Result<CommitResult> {
        let mut w = self.call("commit_files");
        let expected = match start {
            // (The real client's one-call path also reports a branch already at exactly this
            // commit as made; this fake, like the two-call path, calls it stale.)
            BranchStart::New { from, .. } => {
                match w.branches.get(branch) {
                    Some(head) if *head != from => return Err(stale(branch)),
                    _ => w.branches.insert(branch.to_owned(), from.clone()),
                };
                from
            }
            BranchStart::Existing { expected_head } => expected_head,
        };
        if w.branches.get(branch) != Some(&expected) {
            return match w.made_already(branch, &expected, message, changes) {
                Some(oid) => Ok(CommitResult {
                    url: format!("https://example.test/commit/{oid}"),
                    oid,
                }),
                None => Err(stale(branch)),
            };
        }
        let oid = w.add_commit(Some(&expected), message, changes);
        if let Some(c) = w.commits.get_mut(&oid) {
            c.by_app = true;
        }
        w.branches.insert(branch.to_owned(), oid.clone());
        w.committed.push((branch.to_owned(), changes.to_vec()));
        Ok(CommitResult {
            url: format!("https://example.test/commit/{oid}"),
            oid,
        })
    }

    async fn open_pull_request(
        &self,
        head: &str,
        base: &str,
        _title: &str,
        _body: &str,
    ) -> Result<PullRequest> {
        let mut w = self.call("open_pull_request");
        let number = 40 + w.prs.len() as u64;
        w.prs.push((number, head.to_owned(), base.to_owned()));
        Ok(PullRequest {
            number,
            url: format!("https://example.test/pull/{number}"),
            head_sha: w.branches.get(head).cloned().unwrap_or_default(),
            created: true,
        })
    }

    async fn pull_request(&self, _number: u64) -> Result<PrState> {
        self.count("pull_request");
        Err(unexpected("pull_request"))
    }

    async fn merge_pull_request(
        &self,
        _number: u64,
        _method: MergeMethod,
        _expected_head: Option<&str>,
    ) -> Result<MergeResult> {
        self.count("merge_pull_request");
        Err(unexpected("merge_pull_request"))
    }

    async fn close_pull_request(&self, _number: u64) -> Result<()> {
        self.count("close_pull_request");
        Err(unexpected("close_pull_request"))
    }

    async fn comment(&self, issue: u64, body: &str) -> Result<CommentRef> {
        let mut w = self.call("comment");
        let id = w.add_comment(issue, BOT, body);
        Ok(CommentRef {
            id,
            node_id: format!("node{id}"),
            url: format!("https://example.test/comment/{id}"),
        })
    }

    async fn comments(&self, issue: u64) -> Result<Vec<ListedComment>> {
        Ok(self.call("comments").thread(issue).to_vec())
    }

    async fn create_issue(&self, title: &str, body: &str) -> Result<u64> {
        let mut w = self.call("create_issue");
        let number = 5000 + w.next();
        w.issues
            .insert(number, (title.to_owned(), body.to_owned(), true));
        Ok(number)
    }

    async fn update_issue(&self, number: u64, title: &str, body: &str, open: bool) -> Result<()> {
        let mut w = self.call("update_issue");
        match w.issues.get_mut(&number) {
            Some(issue) => {
                *issue = (title.to_owned(), body.to_owned(), open);
                Ok(())
            }
            None => Err(GitHubError::NotFound {
                operation: "update_issue".into(),
                message: "Not Found".into(),
            }),
        }
    }

    async fn find_own_issue(&self, marker: &str) -> Result<Option<u64>> {
        let w = self.call("find_own_issue");
        Ok(w.issues
            .iter()
            .rev()
            .find(|(_, (_, body, _))| body.starts_with(marker))
            .map(|(n, _)| *n))
    }

    async fn minimize_comment(&self, _node_id: &str, _reason: MinimizeReason) -> Result<()> {
        self.count("minimize_comment");
        Ok(())
    }

    async fn react(&self, _comment_id: u64, _reaction: Reaction) -> Result<()> {
        self.count("react");
        Ok(())
    }

    async fn permission(&self, _login: &str) -> Result<Permission> {
        Ok(self
            .call("permission")
            .permission
            .unwrap_or(Permission::Write))
    }

    async fn dispatch_workflow(
        &self,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
        correlation_id: &str,
    ) -> Result<DispatchResult> {
        let mut w = self.call("dispatch_workflow");
        let id = 500 + w.next();
        let run = run(id, git_ref, correlation_id);
        w.runs.push(Run {
            workflow: workflow.to_owned(),
            git_ref: git_ref.to_owned(),
            correlation_id: correlation_id.to_owned(),
            inputs: inputs.clone(),
            run: run.clone(),
        });
        Ok(DispatchResult {
            run_id: Some(id),
            html_url: Some(run.html_url),
            correlated: false,
        })
    }

    async fn find_workflow_run(
        &self,
        workflow: &str,
        branch: &str,
        correlation_id: &str,
    ) -> Result<Option<WorkflowRun>> {
        let w = self.call("find_workflow_run");
        Ok(w.runs
            .iter()
            .rev()
            .find(|r| {
                r.workflow == workflow && r.git_ref == branch && r.correlation_id == correlation_id
            })
            .map(|r| r.run.clone()))
    }

    async fn workflow_run(&self, run_id: u64) -> Result<WorkflowRun> {
        let w = self.call("workflow_run");
        w.runs
            .iter()
            .find(|r| r.run.id == run_id)
            .map(|r| r.run.clone())
            .ok_or_else(|| unexpected("workflow_run"))
    }

    async fn list_artifacts(&self, _run_id: u64) -> Result<Vec<Artifact>> {
        self.count("list_artifacts");
        Err(unexpected("list_artifacts"))
    }

    async fn download_artifact(
        &self,
        _artifact_id: u64,
        _max_zip_bytes: u64,
    ) -> Result<ArtifactArchive> {
        self.count("download_artifact");
        Err(unexpected("download_artifact"))
    }

    async fn create_check_run(&self, head_sha: &str, run: &CheckRunWrite) -> Result<u64> {
        let mut w = self.call("create_check_run");
        let id = w.next();
        w.check_runs.insert(id, (head_sha.to_owned(), run.clone()));
        Ok(id)
    }

    async fn update_check_run(&self, id: u64, run: &CheckRunWrite) -> Result<()> {
        let mut w = self.call("update_check_run");
        match w.check_runs.get_mut(&id) {
            Some(entry) => {
                entry.1 = run.clone();
                Ok(())
            }
            None => Err(unexpected("update_check_run of an unknown id")),
        }
    }

    async fn find_check_run(
        &self,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>> {
        let w = self.call("list_check_runs");
        Ok(w.check_runs
            .iter()
            .find(|(_, (h, r))| h == head_sha && r.name == name && r.external_id == external_id)
            .map(|(id, _)| *id))
    }

    async fn team_member(&self, team: &str, login: &str) -> Result<bool> {
        let w = self.call("team_membership");
        Ok(w.team_members
            .iter()
            .any(|(t, l)| t.eq_ignore_ascii_case(team) && l.eq_ignore_ascii_case(login)))
    }

    async fn user_exists(&self, _login: &str) -> Result<bool> {
        self.count("get_user");
        Ok(true)
    }

    async fn team_exists(&self, team: &str) -> Result<bool> {
        let w = self.call("get_team");
        Ok(w.team_members
            .iter()
            .any(|(t, _)| t.eq_ignore_ascii_case(team)))
    }
}

/// A queued run `id` on `git_ref` whose name carries `correlation_id`.
pub fn run(id: u64, git_ref: &str, correlation_id: &str) -> WorkflowRun {
    WorkflowRun {
        id,
        name: "plan".to_owned(),
        display_title: format!("plan {correlation_id}"),
        status: RunStatus::Queued,
        conclusion: None,
        head_branch: git_ref.to_owned(),
        head_sha: String::new(),
        html_url: format!("https://example.test/actions/runs/{id}"),
        event: "workflow_dispatch".to_owned(),
        path: String::new(),
    }
}
