//! `tfpilot repo check <dir>`: lints an infra repo's workflows and `.tfpilot.yml` for the
//! guardrails that must hold outside TfPilot, for the infra repo's own CI.
//!
//! TfPilot checks who may apply before it dispatches; nothing it decides stops a person with
//! write access from pressing "Run workflow" or "Re-run jobs", or a pushed branch from editing
//! `plan.yml`. The workflows must do that themselves, and this check says where they do not:
//!
//! * every workflow TfPilot dispatches declares exactly the inputs TfPilot sends (GitHub refuses
//!   an undeclared one) and names its run after the dispatch id;
//! * apply and destroy run on `workflow_dispatch` only, and before any action every job fails
//!   unless the triggering actor is TfPilot's App (`TFPILOT_APP_BOT`, `<slug>[bot]`); a job that
//!   assumes an AWS role does so in a GitHub environment;
//! * apply checks out `inputs.expected_sha` (the approved merge commit) and fails when
//!   `git rev-parse HEAD` is another commit;
//! * plan uses neither the role nor the GitHub environment of apply and destroy;
//! * plan, apply and destroy share one concurrency group per environment that never cancels.
//!
//! A finding names the file and what to change. Exit code: 0 clean, 1 findings, 2 the check
//! could not read its input.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::{SETTINGS_FILE, Settings};
use crate::domain::RunKind;
use crate::ids::RepoName;

/// The inputs TfPilot sends with every dispatch.
const SENT_INPUTS: [&str; 3] = ["request_id", "environment", "dispatch_id"];
/// The extra input of an apply: the approved merge commit.
pub const EXPECTED_SHA_INPUT: &str = "expected_sha";
/// The workflow-level `env` naming TfPilot's App login.
pub const APP_BOT_ENV: &str = "TFPILOT_APP_BOT";

/// `tfpilot repo …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RepoCommand {
    /// Lint an infra repo's workflows and .tfpilot.yml for the guardrails outside TfPilot;
    /// exit 1 with one line per finding.
    Check(CheckArgs),
}

/// Arguments of `tfpilot repo check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The infra repo's root (holding .tfpilot.yml and .github/workflows).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The GitHub App's slug: apply and destroy must accept only `<slug>[bot]`.
    #[arg(long, env = "TFPILOT_GITHUB_APP_SLUG", default_value = "tfpilot")]
    pub app_slug: String,
}

/// One thing to change, in one file (relative to the repository root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Why the check could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RepoCheckError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs a `tfpilot repo` subcommand. Exit code: 0 clean, 1 findings, 2 unreadable input.
pub fn run_repo(command: &RepoCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let RepoCommand::Check(args) = command;
    match check_repo(&args.dir, &args.app_slug) {
        Ok(findings) if findings.is_empty() => {
            let _ = writeln!(
                out,
                "{}: the workflows and {SETTINGS_FILE} keep TfPilot's guardrails",
                args.dir.display()
            );
            0
        }
        Ok(findings) => {
            for f in &findings {
                let _ = writeln!(out, "{f}");
            }
            let _ = writeln!(
                err,
                "{} finding(s): the infra repo does not hold TfPilot's guardrails (see above)",
                findings.len()
            );
            1
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            2
        }
    }
}

/// Reads a file; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, RepoCheckError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RepoCheckError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// One parsed workflow file.
struct Workflow {
    file: String,
    doc: Value,
}

/// Every finding for the infra repo at `dir`, sorted by file.
pub fn check_repo(dir: &Path, app_slug: &str) -> Result<Vec<Finding>, RepoCheckError> {
    if !dir.is_dir() {
        return Err(RepoCheckError::NotADirectory(dir.to_owned()));
    }
    let mut findings = Vec::new();
    let settings_text = read(&dir.join(SETTINGS_FILE))?;
    // The repository name only feeds the default project, which no check uses.
    let repo = RepoName::new("local", "infra").expect("a valid repository name");
    let settings = match Settings::from_file(&repo, "main", settings_text.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            findings.push(Finding {
                file: SETTINGS_FILE.into(),
                message: format!("does not parse: {}", e.reason),
            });
            Settings::defaults(&repo, "main")
        }
    };

    let mut workflows = std::collections::BTreeMap::new();
    for (kind, name) in settings.workflows.by_kind() {
        let file = format!(".github/workflows/{name}");
        match read(&dir.join(&file))? {
            None => findings.push(Finding {
                file: file.clone(),
                message: format!(
                    "missing: it is the {} workflow (`workflows.{}` in {SETTINGS_FILE})",
                    kind.as_str(),
                    kind.as_str()
                ),
            }),
            Some(text) => match serde_norway::from_str::<Value>(&text) {
                Ok(doc) if doc.is_mapping() => {
                    workflows.insert(kind, Workflow { file, doc });
                }
                Ok(_) => findings.push(Finding {
                    file,
                    message: "is not a workflow (a YAML mapping)".into(),
                }),
                Err(e) => findings.push(Finding {
                    file,
                    message: format!("does not parse as YAML: {e}"),
                }),
            },
        }
    }

    let mut say = |w: &Workflow, message: String| {
        findings.push(Finding {
            file: w.file.clone(),
            message,
        })
    };
    for (kind, w) in &workflows {
        for m in dispatch_contract(*kind, w, &settings.environments) {
            say(w, m);
        }
    }
    let bot = format!("{app_slug}[bot]");
    for kind in [RunKind::Apply, RunKind::Destroy] {
        if let Some(w) = workflows.get(&kind) {
            for m in app_only(kind, w, &bot) {
                say(w, m);
            }
        }
    }
    if let Some(w) = workflows.get(&RunKind::Apply) {
        for m in expected_commit(w) {
            say(w, m);
        }
    }
    if let Some(plan) = workflows.get(&RunKind::Plan) {
        let writers: Vec<&Workflow> = [RunKind::Apply, RunKind::Destroy]
            .iter()
            .filter_map(|k| workflows.get(k))
            .collect();
        for m in plan_separate(plan, &writers) {
            say(plan, m);
        }
    }
    let state: Vec<&Workflow> = [RunKind::Plan, RunKind::Apply, RunKind::Destroy]
        .iter()
        .filter_map(|k| workflows.get(k))
        .collect();
    for (w, m) in concurrency(&state) {
        say(w, m);
    }
    findings.sort();
    findings.dedup();
    Ok(findings)
}

// ---- reading the YAML -----------------------------------------------------------------------

fn key<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(k)
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    key(v, k)?.as_str()
}

/// Every string in `v` (keys and values), for "does this mention …" questions.
fn text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Mapping(m) => m.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
            Value::Tagged(t) => walk(&t.value, out),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

/// The triggers of `on:` (a name, a list of names or a mapping).
fn triggers(doc: &Value) -> Vec<String> {
    let on = key(doc, "on").or_else(|| doc.as_mapping().and_then(|m| m.get(Value::Bool(true))));
    match on {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The declared `workflow_dispatch` inputs: name → required.
fn dispatch_inputs(doc: &Value) -> Option<Vec<(String, &Value)>> {
    if !triggers(doc).iter().any(|t| t == "workflow_dispatch") {
        return None;
    }
    let inputs = key(doc, "on")
        .and_then(|on| key(on, "workflow_dispatch"))
        .and_then(|wd| key(wd, "inputs"))
        .and_then(Value::as_mapping);
    Some(
        inputs
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
            .collect(),
    )
}

fn jobs(doc: &Value) -> Vec<(String, &Value)> {
    key(doc, "jobs")
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
        .collect()
}

fn steps(job: &Value) -> Vec<&Value> {
    key(job, "steps")
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn uses(step: &Value, action: &str) -> bool {
    str_of(step, "uses").is_some_and(|u| u.split('@').next() == Some(action))
}

const AWS_CREDENTIALS: &str = "aws-actions/configure-aws-credentials";
const CHECKOUT: &str = "actions/checkout";

/// A job's GitHub environment (`environment: x` or `environment: {name: x}`).
fn environment(job: &Value) -> Option<String> {
    match key(job, "environment")? {
        Value::String(s) => Some(s.clone()),
        m @ Value::Mapping(_) => str_of(m, "name").map(str::to_owned),
        _ => None,
    }
}

/// The roles a workflow's AWS credential steps assume.
fn roles(w: &Workflow) -> Vec<String> {
    jobs(&w.doc)
        .into_iter()
        .flat_map(|(_, job)| steps(job))
        .filter(|s| uses(s, AWS_CREDENTIALS))
        .filter_map(|s| key(s, "with").and_then(|w| str_of(w, "role-to-assume")))
        .map(normalize)
        .collect()
}

/// An expression without its spacing (`${{ secrets.X }}` → `${{secrets.X}}`).
fn normalize(s: &str) -> String {
    s.split_whitespace().collect()
}

fn secret_names(s: &str) -> BTreeSet<String> {
    s.match_indices("secrets.")
        .map(|(i, _)| {
            s[i + "secrets.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

// ---- the checks -----------------------------------------------------------------------------

/// What TfPilot's dispatch needs: the inputs it sends, no other required one, a run name with
/// the dispatch id, and every configured environment allowed.
fn dispatch_contract(kind: RunKind, w: &Workflow, environments: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(declared) = dispatch_inputs(&w.doc) else {
        out.push(format!(
            "add the trigger `on: workflow_dispatch`: TfPilot starts the {} workflow with a dispatch",
            kind.as_str()
        ));
        return out;
    };
    let mut sent: Vec<&str> = SENT_INPUTS.to_vec();
    if kind == RunKind::Apply {
        sent.push(EXPECTED_SHA_INPUT);
    }
    for name in &sent {
        if !declared.iter().any(|(d, _)| d == name) {
            out.push(format!(
                "declare the `workflow_dispatch` input `{name}`: TfPilot sends it, and GitHub refuses a dispatch with an undeclared input"
            ));
        }
    }
    for (name, spec) in &declared {
        let required = key(spec, "required").and_then(Value::as_bool) == Some(true);
        if required && !sent.contains(&name.as_str()) {
            out.push(format!(
                "input `{name}` is required, but TfPilot does not send it: make it optional or remove it"
            ));
        }
        if name == "environment" && str_of(spec, "type") == Some("choice") {
            let options: Vec<&str> = key(spec, "options")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for env in environments {
                if !options.contains(&env.as_str()) {
                    out.push(format!(
                        "add `{env}` to the options of input `environment`: {SETTINGS_FILE} lists it"
                    ));
                }
            }
        }
    }
    let run_name = str_of(&w.doc, "run-name")
        .map(normalize)
        .unwrap_or_default();
    if !run_name.contains("inputs.dispatch_id") {
        out.push(
            "put `${{ inputs.dispatch_id }}` in `run-name`: TfPilot finds the run it dispatched by that id"
                .into(),
        );
    }
    out
}

/// Apply and destroy: dispatch only, and each job refuses a triggering actor other than the App
/// before it runs any action; credentials only inside a GitHub environment.
fn app_only(kind: RunKind, w: &Workflow, bot: &str) -> Vec<String> {
    let mut out = Vec::new();
    let what = kind.as_str();
    for t in triggers(&w.doc) {
        if t != "workflow_dispatch" {
            out.push(format!(
                "remove the trigger `{t}`: {what} runs only when TfPilot dispatches it (`workflow_dispatch`)"
            ));
        }
    }
    match key(&w.doc, "env").and_then(|e| str_of(e, APP_BOT_ENV)) {
        None => out.push(format!(
            "set the workflow-level `env: {APP_BOT_ENV}: \"{bot}\"`: the App login the {what} accepts as its triggering actor"
        )),
        Some(v) if v != bot => out.push(format!(
            "`{APP_BOT_ENV}` is `{v}`, but TfPilot's App is `{bot}` (`--app-slug`, TFPILOT_GITHUB_APP_SLUG): set it to `{bot}`"
        )),
        Some(_) => {}
    }
    let all = jobs(&w.doc);
    if all.is_empty() {
        out.push("has no jobs".into());
    }
    for (name, job) in all {
        if key(job, "uses").is_some() {
            out.push(format!(
                "job `{name}` calls a reusable workflow, which this check cannot follow: run the {what} in this file's jobs"
            ));
            continue;
        }
        let job_env = key(job, "env").map(text).unwrap_or_default();
        let steps = steps(job);
        let first_action = steps
            .iter()
            .position(|s| key(s, "uses").is_some())
            .unwrap_or(steps.len());
        let guarded = steps[..first_action].iter().any(|s| {
            let Some(run) = str_of(s, "run") else {
                return false;
            };
            let context = format!(
                "{job_env}{}{run}",
                key(s, "env").map(text).unwrap_or_default()
            );
            key(s, "if").is_none()
                && key(s, "continue-on-error").and_then(Value::as_bool) != Some(true)
                && run.contains("exit 1")
                && run.contains(APP_BOT_ENV)
                && context.contains("github.triggering_actor")
                && (context.contains("github.event_name") || context.contains("workflow_dispatch"))
        });
        if !guarded {
            out.push(format!(
                "job `{name}`: before any action, add a step that fails (`exit 1`) unless `github.event_name` is `workflow_dispatch` and `github.triggering_actor` is `${APP_BOT_ENV}`: a person's \"Run workflow\" or \"Re-run jobs\" must not {what}"
            ));
        }
        if steps.iter().any(|s| uses(s, AWS_CREDENTIALS)) && environment(job).is_none() {
            out.push(format!(
                "job `{name}` assumes an AWS role outside a GitHub environment: set `environment: ${{{{ inputs.environment }}}}` (protected, deployments from the base branch only) and keep the role's secret there"
            ));
        }
    }
    out
}

/// Apply: check out `inputs.expected_sha` and compare `git rev-parse HEAD` with it, before any
/// credentials are taken.
fn expected_commit(w: &Workflow) -> Vec<String> {
    let mut out = Vec::new();
    let mut checked_out = false;
    for (name, job) in jobs(&w.doc) {
        let job_env = key(job, "env").map(text).unwrap_or_default();
        let steps = steps(job);
        let Some(checkout) = steps.iter().position(|s| uses(s, CHECKOUT)) else {
            continue;
        };
        checked_out = true;
        let reference = key(steps[checkout], "with")
            .and_then(|w| str_of(w, "ref"))
            .map(normalize)
            .unwrap_or_default();
        if !reference.contains("inputs.expected_sha") {
            out.push(format!(
                "job `{name}`: check out the approved commit: `actions/checkout` with `ref: ${{{{ inputs.expected_sha }}}}`"
            ));
        }
        let credentials = steps
            .iter()
            .position(|s| uses(s, AWS_CREDENTIALS))
            .unwrap_or(steps.len());
        let verified = steps.iter().enumerate().any(|(i, s)| {
            let Some(run) = str_of(s, "run") else {
                return false;
            };
            let context = format!(
                "{job_env}{}{run}",
                key(s, "env").map(text).unwrap_or_default()
            );
            i > checkout
                && i < credentials
                && key(s, "if").is_none()
                && run.contains("git rev-parse HEAD")
                && run.contains("exit 1")
                && context.to_ascii_lowercase().contains("expected_sha")
        });
        if !verified {
            out.push(format!(
                "job `{name}`: after the checkout and before taking credentials, fail (`exit 1`) when `git rev-parse HEAD` is not `inputs.expected_sha`"
            ));
        }
    }
    if !checked_out {
        out.push(
            "check out the approved commit: `actions/checkout` with `ref: ${{ inputs.expected_sha }}`, then compare `git rev-parse HEAD` with it"
                .into(),
        );
    }
    out
}

/// Plan runs code anyone with write access can push: it must use neither the role nor the
/// GitHub environment that apply and destroy use.
fn plan_separate(plan: &Workflow, writers: &[&Workflow]) -> Vec<String> {
    let mut out = Vec::new();
    let write_roles: BTreeSet<String> = writers.iter().flat_map(|w| roles(w)).collect();
    let write_secrets: BTreeSet<String> =
        write_roles.iter().flat_map(|r| secret_names(r)).collect();
    let write_envs: BTreeSet<String> = writers
        .iter()
        .flat_map(|w| jobs(&w.doc))
        .filter_map(|(_, job)| environment(job))
        .map(|e| normalize(&e))
        .collect();
    let plan_text = text(&plan.doc);
    for secret in secret_names(&plan_text) {
        if write_secrets.contains(&secret) {
            out.push(format!(
                "uses `secrets.{secret}`, the role apply/destroy assume: give plan its own read-only role (e.g. `secrets.AWS_PLAN_ROLE_ARN` in the `<env>-plan` environment)"
            ));
        }
    }
    for role in roles(plan) {
        if write_roles.contains(&role) && secret_names(&role).is_empty() {
            out.push(format!(
                "assumes `{role}`, the role apply/destroy assume: give plan its own read-only role"
            ));
        }
    }
    for (name, job) in jobs(&plan.doc) {
        let assumes = steps(job).iter().any(|s| uses(s, AWS_CREDENTIALS));
        match environment(job) {
            Some(env) if write_envs.contains(&normalize(&env)) => out.push(format!(
                "job `{name}` runs in `{env}`, the protected environment of apply/destroy: use a separate one (e.g. `${{{{ inputs.environment }}}}-plan`)"
            )),
            None if assumes => out.push(format!(
                "job `{name}` assumes an AWS role outside a GitHub environment: use its own (e.g. `${{{{ inputs.environment }}}}-plan`) holding the read-only role"
            )),
            _ => {}
        }
    }
    out
}

/// Plan, apply and destroy share one concurrency group per environment, never cancelled.
fn concurrency<'a>(state: &[&'a Workflow]) -> Vec<(&'a Workflow, String)> {
    let mut out = Vec::new();
    let mut groups: Vec<(&Workflow, String)> = Vec::new();
    for w in state {
        let c = key(&w.doc, "concurrency");
        let (group, cancel) = match c {
            Some(Value::String(g)) => (Some(g.clone()), None),
            Some(m @ Value::Mapping(_)) => (
                str_of(m, "group").map(str::to_owned),
                key(m, "cancel-in-progress"),
            ),
            _ => (None, None),
        };
        let Some(group) = group else {
            out.push((
                *w,
                "set a workflow-level `concurrency: {group: tfpilot-<project>-${{ inputs.environment }}, cancel-in-progress: false}`: runs that touch one environment's state must not overlap".to_owned(),
            ));
            continue;
        };
        if !matches!(cancel, None | Some(Value::Bool(false))) {
            out.push((
                *w,
                "set `cancel-in-progress: false`: a run that touches state must never be cancelled midway".to_owned(),
            ));
        }
        if !normalize(&group).contains("inputs.environment") {
            out.push((
                *w,
                format!("concurrency group `{group}` must name the environment (`${{{{ inputs.environment }}}}`): one group per project and environment"),
            ));
        }
        groups.push((*w, group));
    }
    if let Some((first, group)) = groups.first() {
        for (w, other) in &groups[1..] {
            if normalize(other) != normalize(group) {
                out.push((
                    *w,
                    format!(
                        "concurrency group `{other}` differs from `{group}` in {}: plan, apply and destroy must share one group per environment",
                        first.file
                    ),
                ));
            }
        }
    }
    out
}
