//! Drift check runs: the infra repo's `drift.yml` (nightly, or started by hand) plans each
//! environment on the default branch and uploads `drift-<env>`; each applied request of that
//! environment is told what the check found about its module (through the lifecycle, like any
//! other input: recorded once per run, answered once).

use std::collections::{BTreeMap, BTreeSet};

use super::Executor;
use super::facts::Scope;
use crate::comments::drift as say;
use crate::comments::lifecycle::short;
use crate::domain::EffectKey;
use crate::domain::{ListFilter, RequestStatus, is_name};
use crate::ids::RequestId;
use crate::lifecycle::{DriftUpdate, Input};
use crate::terraform::drifted::{changes_by_request, excerpt};
use crate::terraform::plan::PlanReport;
use crate::webhook::events::{WorkflowRunAction, WorkflowRunConclusion, WorkflowRunEvent};

/// The drift check workflow of an infra repo.
pub const DRIFT_WORKFLOW: &str = ".github/workflows/drift.yml";

/// The largest drift artifact read.
const MAX_DRIFT_ARTIFACT_BYTES: u64 = 20 * 1024 * 1024;

/// The workflow file name TfPilot dispatches.
const DRIFT_WORKFLOW_FILE: &str = "drift.yml";

/// The thread an asked-for drift check answers on: its run name holds `drift-i<thread>-c<comment>`.
fn asking_thread(title: &str) -> Option<u64> {
    title.split_whitespace().find_map(|w| {
        let rest = w.strip_prefix("drift-i")?;
        let (thread, _) = rest.split_once("-c")?;
        thread.parse().ok()
    })
}

/// Whether `e` is about a drift check run.
pub(super) fn is_drift_run(e: &WorkflowRunEvent) -> bool {
    e.workflow_run.path.as_deref() == Some(DRIFT_WORKFLOW)
}

impl Executor {
    /// Dispatches the drift check of each environment on the default branch.
    pub(super) async fn start_drift_check(
        &self,
        scope: &Scope,
        environments: &[String],
        dispatch_id: &str,
    ) -> anyhow::Result<()> {
        let branch = scope.default_branch.as_deref().unwrap_or("main");
        for env in environments {
            let id = format!("{dispatch_id}-{env}");
            let inputs = BTreeMap::from([
                ("environment".to_owned(), env.clone()),
                ("dispatch_id".to_owned(), id.clone()),
            ]);
            // A redelivered command finds its run by the id in the run's name.
            if scope
                .gh
                .find_workflow_run(DRIFT_WORKFLOW_FILE, branch, &id)
                .await?
                .is_some()
            {
                continue;
            }
            scope
                .gh
                .dispatch_workflow(DRIFT_WORKFLOW_FILE, branch, &inputs, &id)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn on_drift_run(&self, e: &WorkflowRunEvent) -> anyhow::Result<()> {
        let run = &e.workflow_run;
        if e.action != WorkflowRunAction::Completed {
            return Ok(());
        }
        if run.conclusion != Some(WorkflowRunConclusion::Success) {
            tracing::warn!(run = run.id, url = %run.html_url, "a drift check run did not succeed; nothing to report");
            return Ok(());
        }
        let Some(scope) = self.event_scope(&e.repository, e.installation.as_ref()) else {
            return Ok(());
        };
        // A run on another branch runs that branch's workflow, which anyone who may push can
        // write: only the default branch's check speaks for the infrastructure.
        let default = e.repository.default_branch.as_deref().unwrap_or("main");
        if run.head_branch.as_deref() != Some(default) {
            tracing::warn!(run = run.id, branch = ?run.head_branch, "a drift check run off the default branch is ignored");
            return Ok(());
        }
        let title = run.display_title.clone().unwrap_or_default();
        let asked_on = asking_thread(&title);
        let artifacts = scope.gh.list_artifacts(run.id).await?;
        for artifact in artifacts.iter().filter(|a| !a.expired) {
            let Some(env) = artifact.name.strip_prefix("drift-").filter(|e| is_name(e)) else {
                continue;
            };
            let archive = scope
                .gh
                .download_artifact(artifact.id, MAX_DRIFT_ARTIFACT_BYTES)
                .await?;
            // One pass over `plan.json`, dropped (with the archive) before `plan.txt` is read.
            let report = match archive
                .file("plan.json", MAX_DRIFT_ARTIFACT_BYTES)
                .map_err(anyhow::Error::from)
                .and_then(|json| Ok(PlanReport::from_json(&json)?))
            {
                Ok(report) => report,
                Err(e) => {
                    tracing::warn!(run = run.id, artifact = %artifact.name, error = %e, "a drift plan cannot be read");
                    continue;
                }
            };
            let text = match archive.file("plan.txt", MAX_DRIFT_ARTIFACT_BYTES) {
                Ok(text) => String::from_utf8_lossy(&text).into_owned(),
                Err(e) => {
                    tracing::warn!(run = run.id, artifact = %artifact.name, error = %e, "a drift artifact cannot be read");
                    continue;
                }
            };
            drop(archive);
            let by_request = changes_by_request(&report.summary);
            let masked = self.masker.mask_owned(text, &report.sensitive);
            let applied = self
                .store
                .list(&ListFilter {
                    statuses: vec![RequestStatus::Applied],
                    environment: Some(env.to_owned()),
                    repo: Some(scope.repo.clone()),
                    ..ListFilter::default()
                })
                .await?;
            let ids: BTreeSet<RequestId> = applied
                .iter()
                .map(|r| r.id)
                .chain(by_request.keys().copied())
                .collect();
            let mut drifted = Vec::new();
            for id in ids {
                let Some(current) = self.store.get(id).await? else {
                    continue;
                };
                if !super::same_repo(&current.repo, &scope.repo)
                    || current.environment.as_deref() != Some(env)
                {
                    continue;
                }
                if current.status == RequestStatus::Applied && by_request.contains_key(&id) {
                    drifted.push((short(id), current.module_type.clone(), current.issue_number));
                }
                let update = DriftUpdate {
                    run_id: run.id,
                    url: run.html_url.clone(),
                    changes: by_request.get(&id).cloned().unwrap_or_default(),
                    excerpt: excerpt(&masked, id),
                };
                self.process_event(&scope, current, &Input::Drift(update), &e.sender.login)
                    .await?;
            }
            // Asked for with `drift`: the answer where it was asked, whatever was found.
            if let Some(thread) = asked_on {
                let key = EffectKey::drift_summary(run.id);
                let text = say::summary(&key, env, &drifted, &run.html_url);
                self.post_once(&scope, thread, &key, &text).await?;
            }
        }
        Ok(())
    }
}
