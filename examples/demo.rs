//! `cargo run --example demo`: TfPilot working end to end on your machine, without a GitHub App.
//!
//! Starts the GitHub simulator in-process with a copy of the example infra repo (the offline
//! one, whose modules need no cloud account), TfPilot's router on 127.0.0.1 with its store in a
//! temporary directory and the rules extractor, and then plays a conversation: a request for an
//! S3 bucket, a plain-language answer, submit, plan (real `terraform` when it is on PATH),
//! approve, merge, apply. It prints the conversation, the pull request's change and the plan.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use secrecy::SecretString;
use tfpilot::assist::RulesExtractor;
use tfpilot::domain::Policy;
use tfpilot::executor::Executor;
use tfpilot::github::GitHubApp;
use tfpilot::inbox::{FsInbox, Inbox};
use tfpilot::server::{AppState, create_app};
use tfpilot::store::{FsStore, RequestStore};
use tfpilot::worker::Worker;
use tfpilot_sim::{Permission, Sim, SimConfig, WorkflowBehavior};

const REPO: &str = "acme/core-terraform";
const SECRET: &str = "demo-webhook-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let terraform = which::which("terraform").ok();
    let sim = Sim::start(SimConfig {
        terraform_bin: terraform.clone(),
        ..SimConfig::default()
    })
    .await?;
    let files = tfpilot_sim::files_from_dir(&root.join("tests/fixtures/infra-offline"))?;
    sim.add_repo(REPO, "main", files);
    sim.add_user("carol", Permission::Write);
    sim.add_user("dave", Permission::Write);
    let behaviours = match &terraform {
        Some(bin) => {
            println!(
                "terraform: {} (plans and applies are real)\n",
                bin.display()
            );
            [
                WorkflowBehavior::TerraformPlan,
                WorkflowBehavior::TerraformApply,
                WorkflowBehavior::TerraformDestroy,
            ]
        }
        None => {
            println!(
                "terraform is not on PATH: the workflows just succeed, and there is no plan to post.\n\
                 Install Terraform 1.x to see a real plan.\n"
            );
            [
                WorkflowBehavior::Succeed,
                WorkflowBehavior::Succeed,
                WorkflowBehavior::Succeed,
            ]
        }
    };
    for (file, b) in ["plan.yml", "apply.yml", "destroy.yml"]
        .into_iter()
        .zip(behaviours)
    {
        sim.set_workflow(REPO, file, b)?;
    }

    let data = tempfile::tempdir()?;
    let store: Arc<dyn RequestStore> = Arc::new(FsStore::open(data.path())?);
    let inbox: Arc<dyn Inbox> = Arc::new(FsInbox::open(data.path())?);
    let key = SecretString::from(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned());
    let app = GitHubApp::new(sim.app_id(), &key, &sim.base_url())?;
    let policy = Policy {
        approvals_required: Default::default(),
        prod_environments: vec!["prod".into()],
        prod_allowed_users: vec!["alice".into(), "bob".into()],
        destroy_prod_allowed_users: vec!["alice".into()],
        approvers: Vec::new(),
        approvers_required: false,
    };
    let executor = Executor::new(store.clone(), app, Arc::new(RulesExtractor), policy)
        .with_bot_login(sim.bot_login());
    let worker = Worker::new(inbox.clone(), Arc::new(executor));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(Some(SecretString::from(SECRET)), inbox.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, create_app(state)).await;
    });
    sim.set_webhook_target(&format!("http://{addr}/webhooks/github"), SECRET);

    let demo = Demo {
        sim: &sim,
        worker: &worker,
        inbox: &inbox,
        calls: Default::default(),
    };
    let issue = sim.open_issue(REPO, "carol", "A bucket for invoices", "")?;
    println!("══ issue #{issue} in {REPO} ══════════════════════════════════════════════\n");
    demo.say(issue, "carol", "/tfpilot new s3-bucket env=dev")
        .await?;
    demo.say(
        issue,
        "carol",
        "Call it invoices, turn versioning on and keep objects for 30 days",
    )
    .await?;
    demo.say(issue, "carol", "/tfpilot submit").await?;

    let pr = sim
        .pull_requests(REPO)
        .into_iter()
        .next()
        .context("submit opened no pull request")?;
    println!(
        "══ pull request #{}: {} ══════════════════════════",
        pr.number, pr.title
    );
    let file = "envs/dev/tfpilot.s3.tf";
    let before = sim.file(REPO, "main", file).unwrap_or_default();
    let after = sim.file(REPO, &pr.head, file).unwrap_or_default();
    println!("--- a/{file}\n+++ b/{file}");
    for line in before.lines() {
        println!(" {line}");
    }
    for line in after.lines().skip(before.lines().count()) {
        println!("+{line}");
    }
    println!();
    for c in sim.comments(REPO, pr.number) {
        println!(
            "── {} on #{} ──\n{}\n",
            c.author,
            pr.number,
            visible(&c.body)
        );
    }

    println!("══ back on issue #{issue} ══════════════════════════════════════════════\n");
    demo.say(issue, "dave", "/tfpilot approve").await?;
    demo.say(issue, "dave", "/tfpilot merge").await?;
    demo.say(issue, "carol", "/tfpilot apply").await?;
    demo.print_calls();
    if let Some(state) = sim.terraform_state(REPO, "dev") {
        let resources = state.matches("\"type\": \"terraform_data\"").count();
        println!("Terraform state of dev now holds {resources} resources of this request.");
    }
    let requests = store.list(&Default::default()).await?;
    for r in requests {
        println!(
            "request {} is `{}` (data in {})",
            r.id,
            r.status,
            data.path().display()
        );
    }
    Ok(())
}

struct Demo<'a> {
    sim: &'a Sim,
    worker: &'a Worker,
    inbox: &'a Arc<dyn Inbox>,
    /// GitHub API calls of each step so far (counted against the rate limit).
    calls: std::cell::RefCell<Vec<(String, u64)>>,
}

impl Demo<'_> {
    /// Comments, lets TfPilot and the simulated GitHub finish, and prints the thread's news.
    async fn say(&self, issue: u64, login: &str, body: &str) -> anyhow::Result<()> {
        let seen = self.sim.comments(REPO, issue).len();
        let calls_before = self.sim.total_calls();
        let not_modified_before: u64 = self.sim.not_modified().values().sum();
        self.sim.user_comment(REPO, issue, login, body).await?;
        for _ in 0..100 {
            self.sim.wait_idle().await;
            let report = self.worker.drain().await?;
            if report.done + report.retry + report.gave_up == 0 {
                self.sim.wait_idle().await;
                if self.inbox.pending().await?.is_empty() {
                    break;
                }
            }
        }
        for c in self.sim.comments(REPO, issue).into_iter().skip(seen) {
            println!("── {} ──\n{}\n", c.author, visible(&c.body));
        }
        let calls = self.sim.total_calls() - calls_before;
        let not_modified = self.sim.not_modified().values().sum::<u64>() - not_modified_before;
        println!(
            "   [`{body}` took {calls} GitHub API calls, and {not_modified} conditional reads answered 304 Not Modified]\n"
        );
        self.calls.borrow_mut().push((body.to_owned(), calls));
        Ok(())
    }

    /// The API calls of every step, and their total.
    fn print_calls(&self) {
        let calls = self.calls.borrow();
        println!("══ GitHub API calls (counted against the rate limit) ══════════════════════\n");
        for (step, n) in calls.iter() {
            println!("  {step:<60} {n:>3}");
        }
        let total: u64 = calls.iter().map(|(_, n)| n).sum();
        println!("  {:<60} {total:>3}\n", "total");
    }
}

/// A comment as GitHub shows it: without TfPilot's hidden marker line.
fn visible(body: &str) -> String {
    body.lines()
        .filter(|l| !l.starts_with("<!-- tfpilot:"))
        .collect::<Vec<_>>()
        .join("\n")
}
