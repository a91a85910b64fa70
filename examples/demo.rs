//! `cargo run --example demo`: TfPilot working end to end on your machine, without a GitHub App.
//!
//! Starts the GitHub simulator in-process with a copy of the example infra repo (the offline
//! one, whose modules need no cloud account), TfPilot's router on 127.0.0.1 with its store in a
//! temporary directory and the rules extractor, and then plays a conversation: the catalogue
//! (`modules`), a request for an S3 bucket, a plain-language answer, submit, plan (real
//! `terraform` when it is on PATH), a revision (`set` after the pull request is open: a new plan,
//! the old one hidden), approve, merge, apply; a prod request whose approval is refused to someone
//! outside the allow-list; then a change made outside TfPilot found by the nightly drift check.
//! Slack notices go to a local receiver that prints them. It prints the conversation, the pull
//! request's change and the plan.

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
use tfpilot::slack::{Slack, SlackConfig};
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
                WorkflowBehavior::TerraformDrift,
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
                WorkflowBehavior::Succeed,
            ]
        }
    };
    for (file, b) in ["plan.yml", "apply.yml", "destroy.yml", "drift.yml"]
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
    // A local stand-in for Slack's incoming webhook: prints each notice's fallback text.
    let slack_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let slack_url = format!("http://{}/services/demo", slack_listener.local_addr()?);
    let slack_app = axum::Router::new().route(
        "/services/demo",
        axum::routing::post(|body: String| async move {
            let message: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            println!(
                "◆ Slack: {} ({} blocks)\n",
                message["text"].as_str().unwrap_or("?"),
                message["blocks"].as_array().map(Vec::len).unwrap_or(0)
            );
            "ok"
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(slack_listener, slack_app).await;
    });
    // `.tfpilot.yml` routes prod to `prod-alerts`; here both go to the one receiver.
    let slack = Slack::new(SlackConfig {
        webhook_url: Some(SecretString::from(slack_url.clone())),
        routes: [("prod-alerts".to_owned(), SecretString::from(slack_url))].into(),
        github_web_url: "https://github.com".into(),
    })?;
    let executor = Executor::new(store.clone(), app, Arc::new(RulesExtractor), policy)
        .with_bot_login(sim.bot_login())
        .with_slack(slack);
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
    demo.say(issue, "carol", "/tfpilot modules").await?;
    demo.say(issue, "carol", "/tfpilot modules s3-bucket")
        .await?;
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

    println!("══ back on issue #{issue}: a revision ══════════════════════════════════\n");
    demo.say(issue, "carol", "/tfpilot set expiration_days=60")
        .await?;
    let hidden = sim
        .comments(REPO, pr.number)
        .iter()
        .filter(|c| c.minimized.is_some())
        .count();
    println!(
        "{hidden} comment(s) of the old plan on #{} are hidden as outdated.\n",
        pr.number
    );
    demo.say(issue, "dave", "/tfpilot approve").await?;
    demo.say(issue, "dave", "/tfpilot merge").await?;
    demo.say(issue, "carol", "/tfpilot apply").await?;
    demo.print_calls();
    if let Some(state) = sim.terraform_state(REPO, "dev") {
        let resources = state.matches("\"type\": \"terraform_data\"").count();
        println!("Terraform state of dev now holds {resources} resources of this request.");
    }

    let prod = sim.open_issue(REPO, "carol", "The invoices bucket in prod", "")?;
    println!("══ issue #{prod}: prod, outside the allow-list ═══════════════════════════\n");
    demo.say(
        prod,
        "carol",
        "/tfpilot new s3-bucket env=prod name=invoices",
    )
    .await?;
    demo.say(prod, "carol", "/tfpilot submit").await?;
    demo.say(prod, "dave", "/tfpilot approve").await?;

    println!("══ the night after: drift ═══════════════════════════════════════════════\n");
    let changed = sim.change_terraform_state(REPO, "dev", |state| {
        for res in state["resources"].as_array_mut().into_iter().flatten() {
            if res["name"].as_str() == Some("bucket") {
                for inst in res["instances"].as_array_mut().into_iter().flatten() {
                    for attr in ["input", "output"] {
                        inst["attributes"][attr]["value"]["force_destroy"] = true.into();
                    }
                }
            }
        }
    });
    if changed {
        println!("(someone turned force_destroy on in the console)\n");
        let seen = sim.comments(REPO, issue).len();
        sim.start_workflow(REPO, "drift.yml", "main", &[("environment", "dev")])?;
        demo.settle().await?;
        for c in sim.comments(REPO, issue).into_iter().skip(seen) {
            println!("── {} on #{issue} ──\n{}\n", c.author, visible(&c.body));
        }
        demo.say(issue, "carol", "/tfpilot status").await?;
    }

    // The dashboard TfPilot keeps in the repository: every request at a glance.
    for number in sim.issues_by(REPO, &sim.bot_login()) {
        if let Some((title, body, _, _)) = sim.issue(REPO, number) {
            println!("══ issue #{number}: {title} ══════════════════════════════════════\n");
            println!("{}\n", visible(&body));
        }
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
        println!("▶ {login}: {body}\n");
        self.sim.user_comment(REPO, issue, login, body).await?;
        self.settle().await?;
        for c in self.sim.comments(REPO, issue).into_iter().skip(seen + 1) {
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

    /// Lets TfPilot and the simulated GitHub finish what is under way.
    async fn settle(&self) -> anyhow::Result<()> {
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
