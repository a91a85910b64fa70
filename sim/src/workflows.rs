//! Workflow runs: a dispatch is checked the way GitHub checks it (the ref exists, the workflow file
//! exists there and has a `workflow_dispatch` trigger declaring the inputs given), becomes a run
//! named by the file's `run-name`, and then runs on a background task with the behaviour chosen
//! for the file — possibly real Terraform on the dispatched ref's files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::model::{ApiError, ApiResult, Artifact, Model, Run, Tree, now};
use crate::{PendingGuard, Shared, WorkflowBehavior, webhooks};

/// The files of one artifact: (file name, bytes).
type Files = Vec<(String, Vec<u8>)>;

/// What a finished run leaves behind.
struct Outcome {
    success: bool,
    log: String,
    /// artifact name → (file name, bytes)
    artifacts: Vec<(String, Files)>,
    /// The Terraform state after the run, to keep for the next one.
    new_state: Option<Vec<u8>>,
}

impl Outcome {
    fn failed(log: impl Into<String>) -> Self {
        Self {
            success: false,
            log: log.into(),
            artifacts: Vec::new(),
            new_state: None,
        }
    }
}

/// The workflow's declared `workflow_dispatch` inputs: name → required.
pub(crate) fn dispatch_inputs(yaml: &str) -> Option<BTreeMap<String, bool>> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let meaningful = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let Some(trigger) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("workflow_dispatch"))
    else {
        // `on: workflow_dispatch` / `on: [push, workflow_dispatch]`: the trigger without inputs.
        let flow = lines
            .iter()
            .any(|l| l.starts_with("on:") && l.contains("workflow_dispatch"));
        return flow.then(BTreeMap::new);
    };
    let trigger_indent = indent(lines[trigger]);
    let mut inputs = BTreeMap::new();
    let mut i = trigger + 1;
    // Find `inputs:` inside the trigger's block.
    let mut inputs_indent = None;
    while i < lines.len() {
        let l = lines[i];
        if meaningful(&l) {
            if indent(l) <= trigger_indent {
                break;
            }
            if l.trim() == "inputs:" {
                inputs_indent = Some(indent(l));
                i += 1;
                break;
            }
        }
        i += 1;
    }
    let Some(inputs_indent) = inputs_indent else {
        return Some(inputs);
    };
    let mut key_indent = None;
    let mut current: Option<String> = None;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if !meaningful(&l) {
            continue;
        }
        let d = indent(l);
        if d <= inputs_indent {
            break;
        }
        let key_level = *key_indent.get_or_insert(d);
        let text = l.trim();
        if d == key_level {
            let name = text.trim_end_matches(':').trim().to_owned();
            inputs.insert(name.clone(), false);
            current = Some(name);
        } else if let Some(name) = &current
            && text.replace(' ', "") == "required:true"
        {
            inputs.insert(name.clone(), true);
        }
    }
    Some(inputs)
}

/// A top-level scalar (`name:`, `run-name:`) of a workflow file, unquoted.
fn top_level(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// Renders `${{ inputs.x }}` / `${{ github.event.inputs.x }}` in a `run-name`.
fn render_run_name(template: &str, inputs: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        // `a || 'b'`: the first operand that is not empty (GitHub's expression `||`).
        let expr = rest[start + 3..start + end].trim();
        let value = expr.split("||").map(str::trim).find_map(|operand| {
            let name = operand
                .strip_prefix("inputs.")
                .or_else(|| operand.strip_prefix("github.event.inputs."));
            let v = match name {
                Some(name) => inputs.get(name).cloned().unwrap_or_default(),
                None => operand.trim_matches('\'').to_owned(),
            };
            (!v.is_empty()).then_some(v)
        });
        out.push_str(value.as_deref().unwrap_or_default());
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Checks a dispatch and records the queued run.
pub(crate) fn create_run(
    model: &mut Model,
    repo: &str,
    workflow: &str,
    git_ref: &str,
    raw_inputs: &BTreeMap<String, Value>,
) -> ApiResult<(u64, WorkflowBehavior)> {
    let head_sha = model.resolve_ref(repo, git_ref)?;
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(git_ref)
        .to_owned();
    let tree = model.tree_at(&head_sha);
    let path = format!(".github/workflows/{workflow}");
    let yaml = tree.get(&path).ok_or_else(ApiError::not_found)?.clone();
    let declared = dispatch_inputs(&yaml)
        .ok_or_else(|| ApiError::new(422, "Workflow does not have 'workflow_dispatch' trigger"))?;
    let mut inputs = BTreeMap::new();
    for (k, v) in raw_inputs {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ApiError::new(422, format!("Invalid value for input '{k}'"))),
        };
        inputs.insert(k.clone(), v);
    }
    let unexpected: Vec<&String> = inputs
        .keys()
        .filter(|k| !declared.contains_key(*k))
        .collect();
    if !unexpected.is_empty() {
        return Err(ApiError::new(
            422,
            format!("Unexpected inputs provided: {unexpected:?}"),
        ));
    }
    if let Some((missing, _)) = declared
        .iter()
        .find(|(k, required)| **required && !inputs.contains_key(*k))
    {
        return Err(ApiError::new(
            422,
            format!("Required input '{missing}' not provided"),
        ));
    }
    let workflow_name = top_level(&yaml, "name").unwrap_or_else(|| path.clone());
    let display_title = top_level(&yaml, "run-name")
        .map(|t| render_run_name(&t, &inputs))
        .unwrap_or_else(|| workflow_name.clone());
    let id = model.next_id();
    let workflow_id = match model.repo(repo)?.workflow_ids.get(workflow) {
        Some(id) => *id,
        None => model.next_id(),
    };
    let actor = model.bot_login();
    let r = model.repo_mut(repo)?;
    r.workflow_ids.insert(workflow.to_owned(), workflow_id);
    let run_number = {
        let n = r.run_numbers.entry(workflow.to_owned()).or_default();
        *n += 1;
        *n
    };
    let behavior = r
        .workflows
        .get(workflow)
        .cloned()
        .unwrap_or(WorkflowBehavior::Succeed);
    let created = now();
    model.runs.insert(
        id,
        Run {
            id,
            repo: repo.to_owned(),
            workflow_file: workflow.to_owned(),
            workflow_id,
            workflow_name,
            display_title,
            head_branch: branch,
            head_sha,
            inputs,
            actor,
            status: "queued".into(),
            conclusion: None,
            run_number,
            created_at: created,
            updated_at: created,
            log: String::new(),
        },
    );
    Ok((id, behavior))
}

/// Runs a queued run to completion, sending `in_progress` and `completed` webhooks.
pub(crate) async fn execute(
    shared: Arc<Shared>,
    run_id: u64,
    behavior: WorkflowBehavior,
    _pending: PendingGuard,
) {
    let (run, tree, state) = {
        let mut model = shared.lock();
        let Some(run) = model.runs.get_mut(&run_id) else {
            return;
        };
        run.status = "in_progress".into();
        run.updated_at = now();
        let run = run.clone();
        // Like the example apply workflow: a run given `expected_sha` works on that commit, and
        // refuses it unless it is on the dispatched ref.
        let tree = match run.inputs.get("expected_sha") {
            None => Ok(model.tree_at(&run.head_sha)),
            Some(sha)
                if model.commits.contains_key(sha)
                    && model.ancestors(&run.head_sha).contains(sha) =>
            {
                Ok(model.tree_at(sha))
            }
            Some(sha) => Err(format!(
                "expected_sha {sha} is not on {} (at {}): refused\n",
                run.head_branch, run.head_sha
            )),
        };
        let env = run.inputs.get("environment").cloned().unwrap_or_default();
        let state = model
            .repos
            .get(&run.repo)
            .and_then(|r| r.tf_states.get(&env))
            .cloned();
        drop(webhooks::workflow_run_event(
            &shared,
            &mut model,
            run_id,
            "in_progress",
        ));
        (run, tree, state)
    };
    let outcome = match (tree, behavior) {
        (Err(refused), _) => Outcome::failed(refused),
        (Ok(_), WorkflowBehavior::Succeed) => Outcome {
            success: true,
            log: "ok\n".into(),
            artifacts: Vec::new(),
            new_state: None,
        },
        (Ok(_), WorkflowBehavior::Fail) => Outcome::failed("the workflow failed (simulated)\n"),
        (
            Ok(tree),
            behavior @ (WorkflowBehavior::TerraformPlan
            | WorkflowBehavior::TerraformApply
            | WorkflowBehavior::TerraformDestroy
            | WorkflowBehavior::TerraformDrift),
        ) => match shared.terraform.clone() {
            Some(bin) => terraform(&bin, &behavior, &run, &tree, state).await,
            None => Outcome::failed(
                "terraform is not on PATH: the simulator cannot run Terraform workflows\n",
            ),
        },
    };
    let mut model = shared.lock();
    let created = now();
    for (name, files) in outcome.artifacts {
        match zip_files(&files) {
            Ok(zip) => {
                let id = model.next_id();
                model.artifacts.insert(
                    id,
                    Artifact {
                        id,
                        run_id,
                        repo: run.repo.clone(),
                        name,
                        zip,
                        blob_key: uuid::Uuid::new_v4().simple().to_string(),
                        created_at: created,
                    },
                );
            }
            Err(e) => tracing::error!(error = %e, "simulator could not zip an artifact"),
        }
    }
    if let (Some(state), Some(env)) = (outcome.new_state, run.inputs.get("environment"))
        && let Some(r) = model.repos.get_mut(&run.repo)
    {
        r.tf_states.insert(env.clone(), state);
    }
    if let Some(r) = model.runs.get_mut(&run_id) {
        r.status = "completed".into();
        r.conclusion = Some(
            if outcome.success {
                "success"
            } else {
                "failure"
            }
            .into(),
        );
        r.log = outcome.log;
        r.updated_at = now();
    }
    drop(webhooks::workflow_run_event(
        &shared,
        &mut model,
        run_id,
        "completed",
    ));
}

fn zip_files(files: &[(String, Vec<u8>)]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        writer.start_file(name.as_str(), zip::write::SimpleFileOptions::default())?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn terraform(
    bin: &Path,
    behavior: &WorkflowBehavior,
    run: &Run,
    tree: &Tree,
    state: Option<Vec<u8>>,
) -> Outcome {
    let Some(env) = run.inputs.get("environment").filter(|e| valid_name(e)) else {
        return Outcome::failed("input `environment` is missing or not a plain name\n");
    };
    let checkout = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Outcome::failed(format!("cannot create a checkout directory: {e}\n")),
    };
    for (path, content) in tree {
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        let dest = checkout.path().join(path);
        let written = dest
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::write(&dest, content));
        if let Err(e) = written {
            return Outcome::failed(format!("cannot check out {path}: {e}\n"));
        }
    }
    let workdir = checkout.path().join("envs").join(env);
    if !workdir.is_dir() {
        return Outcome::failed(format!("envs/{env} does not exist at {}\n", run.head_sha));
    }
    let state_file = workdir.join("terraform.tfstate");
    if let Some(state) = &state
        && let Err(e) = std::fs::write(&state_file, state)
    {
        return Outcome::failed(format!("cannot restore the state: {e}\n"));
    }
    let mut log = String::new();
    let tf = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(&args)
            .current_dir(&workdir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .kill_on_drop(true);
        async move {
            let out = cmd.output().await;
            (args, out)
        }
    };
    macro_rules! step {
        ($($arg:expr),+ $(,)?) => {{
            let (args, out) = tf(vec![$($arg.to_string()),+]).await;
            log.push_str(&format!("$ terraform {}\n", args.join(" ")));
            match out {
                Ok(out) => {
                    log.push_str(&String::from_utf8_lossy(&out.stdout));
                    log.push_str(&String::from_utf8_lossy(&out.stderr));
                    if !out.status.success() {
                        return Outcome::failed(log);
                    }
                    out.stdout
                }
                Err(e) => {
                    log.push_str(&format!("cannot run terraform: {e}\n"));
                    return Outcome::failed(log);
                }
            }
        }};
    }
    step!("init", "-input=false", "-no-color");
    let (artifact, file, output) = match behavior {
        WorkflowBehavior::TerraformPlan | WorkflowBehavior::TerraformDrift => {
            // A drift check plans with -detailed-exitcode, whose 2 ("changes present") is what it
            // looks for, not a failure.
            let drift = *behavior == WorkflowBehavior::TerraformDrift;
            let mut args = vec!["plan", "-input=false", "-no-color", "-lock=false"];
            if drift {
                args.push("-detailed-exitcode");
            }
            args.push("-out=tfplan");
            let (args, out) = tf(args.iter().map(|a| a.to_string()).collect()).await;
            log.push_str(&format!("$ terraform {}\n", args.join(" ")));
            let code = match out {
                Ok(out) => {
                    log.push_str(&String::from_utf8_lossy(&out.stdout));
                    log.push_str(&String::from_utf8_lossy(&out.stderr));
                    match out.status.code() {
                        Some(0) => 0,
                        Some(2) if drift => 2,
                        _ => return Outcome::failed(log),
                    }
                }
                Err(e) => {
                    log.push_str(&format!("cannot run terraform: {e}\n"));
                    return Outcome::failed(log);
                }
            };
            let text = step!("show", "-no-color", "tfplan");
            let json = step!("show", "-json", "tfplan");
            let mut files = vec![("plan.txt".into(), text), ("plan.json".into(), json)];
            let name = if drift {
                files.push(("exitcode".into(), code.to_string().into_bytes()));
                format!("drift-{env}")
            } else {
                "plan".into()
            };
            return Outcome {
                success: true,
                log,
                artifacts: vec![(name, files)],
                new_state: None,
            };
        }
        WorkflowBehavior::TerraformApply => {
            let out = step!(
                "apply",
                "-input=false",
                "-no-color",
                "-lock=false",
                "-auto-approve"
            );
            ("apply", "apply.txt", out)
        }
        _ => {
            let Some(request_id) = run.inputs.get("request_id").filter(|r| valid_name(r)) else {
                log.push_str("input `request_id` is missing or not a plain id\n");
                return Outcome::failed(log);
            };
            let target = format!("-target=module.tfpilot_{request_id}");
            let out = step!(
                "destroy",
                "-input=false",
                "-no-color",
                "-lock=false",
                "-auto-approve",
                target
            );
            ("destroy", "destroy.txt", out)
        }
    };
    let new_state = std::fs::read(&state_file).ok();
    Outcome {
        success: true,
        log,
        artifacts: vec![(artifact.into(), vec![(file.into(), output)])],
        new_state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOW: &str = r#"name: plan
run-name: "plan ${{ inputs.request_id }} (${{ github.event.inputs.dispatch_id }})"
on:
  workflow_dispatch:
    inputs:
      request_id:
        description: the request
        required: true
        type: string
      environment:
        required: true
      dispatch_id:
        required: false
  push:
    branches: [main]
jobs:
  plan:
    runs-on: ubuntu-latest
"#;

    #[test]
    fn reads_the_declared_dispatch_inputs() {
        let inputs = dispatch_inputs(WORKFLOW).unwrap();
        assert_eq!(
            inputs,
            BTreeMap::from([
                ("dispatch_id".to_owned(), false),
                ("environment".to_owned(), true),
                ("request_id".to_owned(), true)
            ])
        );
        assert_eq!(dispatch_inputs("on:\n  push:\n"), None);
        assert_eq!(
            dispatch_inputs("on: [workflow_dispatch]\n"),
            Some(BTreeMap::new())
        );
    }

    #[test]
    fn renders_the_run_name_from_inputs() {
        let inputs = BTreeMap::from([
            ("request_id".to_owned(), "r1".to_owned()),
            ("dispatch_id".to_owned(), "d1".to_owned()),
        ]);
        let template = top_level(WORKFLOW, "run-name").unwrap();
        assert_eq!(render_run_name(&template, &inputs), "plan r1 (d1)");
        let drift =
            "drift ${{ inputs.environment || 'all' }} ${{ inputs.dispatch_id || 'scheduled' }}";
        assert_eq!(render_run_name(drift, &inputs), "drift all d1");
        assert_eq!(top_level(WORKFLOW, "name").as_deref(), Some("plan"));
    }
}
