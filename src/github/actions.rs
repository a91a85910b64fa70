//! GitHub Actions: dispatching a workflow (and learning its run id), reading a run, listing and
//! downloading its artifacts.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, header};
use serde::Deserialize;
use serde_json::json;

use super::artifact::{ArtifactArchive, ArtifactError};
use super::error::{GitHubError, Result};
use super::transport::{Auth, Call, LANDED_LOOKBACK, Landed};
use super::{RepoClient, check_repo_path, encode_path, encode_query};

/// How often, and how far apart, the run list is searched for a dispatched run when GitHub did
/// not return its id (GitHub creates the run a moment after answering the dispatch).
const CORRELATION_POLLS: u32 = 4;
const CORRELATION_INTERVAL: Duration = Duration::from_secs(2);

/// The outcome of a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchResult {
    /// The run, when GitHub returned it (`return_run_details`) or it was found by the correlation
    /// id in its name; `None` when neither worked yet (the `workflow_run` webhook will tell).
    pub run_id: Option<u64>,
    pub html_url: Option<String>,
    /// Whether the id came from searching runs rather than from the dispatch answer.
    pub correlated: bool,
}

/// `queued`, `in_progress`, `completed`, … as GitHub reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    InProgress,
    Completed,
    Other(String),
}

/// How a completed run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunConclusion {
    Success,
    Failure,
    Cancelled,
    Other(String),
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRun {
    pub id: u64,
    /// The workflow's name.
    pub name: String,
    /// The run's name (the workflow's `run-name`, which echoes `request_id`).
    pub display_title: String,
    pub status: RunStatus,
    pub conclusion: Option<RunConclusion>,
    pub head_branch: String,
    pub head_sha: String,
    pub html_url: String,
    pub event: String,
    /// The workflow file it is a run of (`.github/workflows/plan.yml`; empty when not given).
    pub path: String,
}

/// An artifact of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    pub size_in_bytes: u64,
    pub expired: bool,
}

#[derive(Deserialize)]
struct RunJson {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_title: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    head_branch: Option<String>,
    head_sha: String,
    html_url: String,
    event: String,
    #[serde(default)]
    path: Option<String>,
}

impl From<RunJson> for WorkflowRun {
    fn from(r: RunJson) -> Self {
        let status = match r.status.as_deref() {
            Some("queued") | Some("requested") | Some("waiting") | Some("pending") => {
                RunStatus::Queued
            }
            Some("in_progress") => RunStatus::InProgress,
            Some("completed") => RunStatus::Completed,
            other => RunStatus::Other(other.unwrap_or_default().to_owned()),
        };
        let conclusion = r.conclusion.map(|c| match c.as_str() {
            "success" => RunConclusion::Success,
            "failure" => RunConclusion::Failure,
            "cancelled" => RunConclusion::Cancelled,
            _ => RunConclusion::Other(c),
        });
        WorkflowRun {
            id: r.id,
            name: r.name.unwrap_or_default(),
            display_title: r.display_title.unwrap_or_default(),
            status,
            conclusion,
            head_branch: r.head_branch.unwrap_or_default(),
            head_sha: r.head_sha,
            html_url: r.html_url,
            event: r.event,
            path: r.path.unwrap_or_default(),
        }
    }
}

impl RepoClient {
    fn actions_uri(&self, rest: &str) -> String {
        format!(
            "/repos/{}/{}/actions{rest}",
            self.repo.owner(),
            self.repo.name()
        )
    }

    fn actions_call(&self, op: &'static str, what: String, method: Method, rest: &str) -> Call {
        Call::new(
            op,
            what,
            method,
            self.actions_uri(rest),
            Auth::Repo {
                installation: self.installation,
                repo: self.repo.clone(),
            },
        )
    }

    /// The newest dispatched runs of `workflow` on `branch` (one page).
    fn runs_query(&self, workflow: &str, branch: &str) -> String {
        format!(
            "/workflows/{}/runs?event=workflow_dispatch&branch={}&per_page=30",
            encode_path(workflow),
            encode_query(branch.strip_prefix("refs/heads/").unwrap_or(branch))
        )
    }

    /// Dispatches `.github/workflows/<workflow>` on `git_ref` with `inputs`, asking GitHub for the
    /// run's id (`return_run_details`). Where GitHub answers without it (older GitHub Enterprise
    /// Server), the run is found by `correlation_id`, which the caller must pass among `inputs`
    /// in a way the workflow's `run-name` echoes (TfPilot's workflows echo `request_id` and
    /// `dispatch_id`). It must be unique to this dispatch: it is also how a dispatch whose answer
    /// was a 5xx is found to have started its run, so that it is not dispatched a second time.
    pub async fn dispatch_workflow(
        &self,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
        correlation_id: &str,
    ) -> Result<DispatchResult> {
        #[derive(Deserialize)]
        struct Details {
            workflow_run_id: u64,
            html_url: Option<String>,
            /// Set when a failed dispatch was found to have started its run after all.
            #[serde(default)]
            correlated: bool,
        }
        let what = format!("dispatch workflow {workflow} on {git_ref} in {}", self.repo);
        check_repo_path(&what, workflow)?;
        let since = time::OffsetDateTime::now_utc() - LANDED_LOOKBACK;
        let call = self
            .actions_call(
                "dispatch_workflow",
                what.clone(),
                Method::POST,
                &format!("/workflows/{}/dispatches", encode_path(workflow)),
            )
            .json(json!({ "ref": git_ref, "inputs": inputs, "return_run_details": true }))
            .unless_landed(Landed::Run {
                list_uri: self.actions_uri(&self.runs_query(workflow, git_ref)),
                correlation_id: correlation_id.to_owned(),
                since,
            });
        let resp = self.transport.send(call).await?;
        if !resp.body.is_empty() {
            let details: Details = resp.json(&what)?;
            return Ok(DispatchResult {
                run_id: Some(details.workflow_run_id),
                html_url: details.html_url,
                correlated: details.correlated,
            });
        }
        for poll in 0..CORRELATION_POLLS {
            if poll > 0 {
                tokio::time::sleep(CORRELATION_INTERVAL).await;
            }
            if let Some(run) = self
                .find_workflow_run(workflow, git_ref, correlation_id)
                .await?
            {
                return Ok(DispatchResult {
                    run_id: Some(run.id),
                    html_url: Some(run.html_url),
                    correlated: true,
                });
            }
        }
        Ok(DispatchResult {
            run_id: None,
            html_url: None,
            correlated: false,
        })
    }

    /// The newest dispatched run of `workflow` on `branch` whose name contains `correlation_id`.
    pub async fn find_workflow_run(
        &self,
        workflow: &str,
        branch: &str,
        correlation_id: &str,
    ) -> Result<Option<WorkflowRun>> {
        #[derive(Deserialize)]
        struct Runs {
            workflow_runs: Vec<RunJson>,
        }
        let what = format!(
            "find the {workflow} run for {correlation_id} in {}",
            self.repo
        );
        check_repo_path(&what, workflow)?;
        let rest = self.runs_query(workflow, branch);
        let resp = self
            .transport
            .send(self.actions_call("find_run", what.clone(), Method::GET, &rest))
            .await?;
        let runs: Runs = resp.json(&what)?;
        Ok(runs
            .workflow_runs
            .into_iter()
            .map(WorkflowRun::from)
            .find(|r| r.display_title.contains(correlation_id) || r.name.contains(correlation_id)))
    }

    /// A workflow run.
    pub async fn workflow_run(&self, run_id: u64) -> Result<WorkflowRun> {
        let what = format!("read workflow run {run_id} in {}", self.repo);
        let resp = self
            .transport
            .send(self.actions_call(
                "get_run",
                what.clone(),
                Method::GET,
                &format!("/runs/{run_id}"),
            ))
            .await?;
        Ok(resp.json::<RunJson>(&what)?.into())
    }

    /// The artifacts a run published.
    pub async fn list_artifacts(&self, run_id: u64) -> Result<Vec<Artifact>> {
        #[derive(Deserialize)]
        struct List {
            artifacts: Vec<ArtifactJson>,
        }
        #[derive(Deserialize)]
        struct ArtifactJson {
            id: u64,
            name: String,
            size_in_bytes: u64,
            #[serde(default)]
            expired: bool,
        }
        let what = format!("list the artifacts of run {run_id} in {}", self.repo);
        let mut out = Vec::new();
        // GitHub names the next page in the `Link` header; a run has a few artifacts, so ten
        // pages of 100 bound a server that never stops naming one.
        let mut next = Some(self.actions_uri(&format!("/runs/{run_id}/artifacts?per_page=100")));
        let mut pages = 0;
        while let Some(uri) = next.take() {
            if pages == 10 {
                break;
            }
            pages += 1;
            let call = Call::new(
                "list_artifacts",
                what.clone(),
                Method::GET,
                uri,
                Auth::Repo {
                    installation: self.installation,
                    repo: self.repo.clone(),
                },
            );
            let resp = self.transport.send(call).await?;
            out.extend(
                resp.json::<List>(&what)?
                    .artifacts
                    .into_iter()
                    .map(|a| Artifact {
                        id: a.id,
                        name: a.name,
                        size_in_bytes: a.size_in_bytes,
                        expired: a.expired,
                    }),
            );
            next = self.transport.next_page(&resp);
        }
        Ok(out)
    }

    /// Downloads an artifact's zip (GitHub redirects to a pre-signed URL, which is fetched
    /// without GitHub credentials), refusing more than `max_zip_bytes`.
    pub async fn download_artifact(
        &self,
        artifact_id: u64,
        max_zip_bytes: u64,
    ) -> Result<ArtifactArchive> {
        let what = format!("download artifact {artifact_id} from {}", self.repo);
        let mut call = self.actions_call(
            "download_artifact",
            what.clone(),
            Method::GET,
            &format!("/artifacts/{artifact_id}/zip"),
        );
        call.max_body = Some(max_zip_bytes);
        let resp = self.transport.send(call).await?;
        if !resp.status.is_redirection() {
            return Ok(ArtifactArchive::new(resp.body.to_vec()));
        }
        let location = resp
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
            .ok_or_else(|| GitHubError::Unexpected {
                operation: what.clone(),
                message: "redirect without an absolute Location".into(),
            })?
            .to_owned();
        let mut blob = Call::new(
            "download_artifact_blob",
            what,
            Method::GET,
            location,
            Auth::None,
        );
        blob.max_body = Some(max_zip_bytes);
        let resp = self.transport.send(blob).await?;
        Ok(ArtifactArchive::new(resp.body.to_vec()))
    }

    /// Downloads an artifact and returns one file from it; both the download and the file are
    /// capped at `max_bytes`. To read several files, use [`RepoClient::download_artifact`] once.
    pub async fn download_artifact_file(
        &self,
        artifact_id: u64,
        file_name: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let archive = self.download_artifact(artifact_id, max_bytes).await?;
        archive.file(file_name, max_bytes).map_err(|e| {
            let operation = format!(
                "read {file_name} from artifact {artifact_id} of {}",
                self.repo
            );
            match e {
                ArtifactError::Missing(_) => GitHubError::NotFound {
                    operation,
                    message: e.to_string(),
                },
                ArtifactError::TooLarge { limit, .. } => GitHubError::TooLarge { operation, limit },
                ArtifactError::NotAZip(_) => GitHubError::Unexpected {
                    operation,
                    message: e.to_string(),
                },
            }
        })
    }
}
