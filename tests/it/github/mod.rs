//! The GitHub client against the simulator over real HTTP, and the simulator's own GitHub rules.

mod graphql_schema;
mod lists;
mod ops;
mod resilience;
mod simulator;
mod terraform;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tfpilot::github::{GitHubApp, RepoClient, RetryPolicy};
use tfpilot::ids::{InstallationId, RepoName};
use tfpilot_sim::{Permission, Sim, SimConfig};

pub const REPO: &str = "acme/infra";

/// A plan workflow as TfPilot's infra repos have it: `request_id` and `dispatch_id` echoed in the
/// run name so runs map back to requests and dispatches.
pub const PLAN_WORKFLOW: &str = r#"name: tfpilot plan
run-name: "plan ${{ inputs.environment }} ${{ inputs.request_id }} ${{ inputs.dispatch_id }}"
on:
  workflow_dispatch:
    inputs:
      request_id:
        required: true
        type: string
      environment:
        required: true
        type: string
      dispatch_id:
        required: false
        type: string
concurrency:
  group: tfpilot-${{ inputs.environment }}
jobs:
  plan:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
"#;

/// A terraform_data module: plans and applies with no provider download.
pub const NOTE_MODULE: &str = r#"variable "text" {
  type = string
}

resource "terraform_data" "this" {
  input = var.text
}

output "text" {
  value = terraform_data.this.output
}
"#;

pub fn repo_files() -> BTreeMap<String, String> {
    tfpilot_sim::files([
        ("README.md", "# infra\n"),
        ("modules/note/main.tf", NOTE_MODULE),
        (
            "envs/dev/versions.tf",
            "terraform {\n  required_version = \">= 1.5\"\n}\n",
        ),
        (".github/workflows/plan.yml", PLAN_WORKFLOW),
        (
            ".github/workflows/apply.yml",
            &PLAN_WORKFLOW.replace("plan", "apply"),
        ),
        (
            ".github/workflows/destroy.yml",
            &PLAN_WORKFLOW.replace("plan", "destroy"),
        ),
    ])
}

/// A simulator with `acme/infra`, users of every permission, and an App client pointed at it.
pub struct World {
    pub sim: Sim,
    pub app: GitHubApp,
    pub installation: InstallationId,
    pub repo: RepoName,
}

impl World {
    pub async fn start() -> World {
        Self::start_with(SimConfig::default(), RetryPolicy::default()).await
    }

    pub async fn start_with(config: SimConfig, policy: RetryPolicy) -> World {
        let sim = Sim::start(config).await.expect("start the simulator");
        let installation = sim.add_repo(REPO, "main", repo_files());
        for (login, p) in [
            ("alice", Permission::Admin),
            ("mona", Permission::Maintain),
            ("bob", Permission::Write),
            ("tria", Permission::Triage),
            ("rita", Permission::Read),
        ] {
            sim.add_user(login, p);
        }
        let key = SecretString::from(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned());
        let app = GitHubApp::with_retry_policy(sim.app_id(), &key, &sim.base_url(), policy)
            .expect("build the GitHub App client");
        World {
            sim,
            app,
            installation: InstallationId(installation),
            repo: REPO.parse().expect("repo name"),
        }
    }

    pub fn gh(&self) -> RepoClient {
        self.app.repo(self.installation, &self.repo)
    }
}

/// Runs a real-time test under a timeout, so a hang fails instead of stalling the suite.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"))
}

/// A webhook receiver on 127.0.0.1 that checks `X-Hub-Signature-256` and keeps what it got.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, serde_json::Value, bool)>>>,
}

impl Receiver {
    pub async fn start(secret: &'static str) -> (Receiver, String) {
        use axum::body::Bytes;
        use axum::http::HeaderMap;
        use hmac::{Hmac, Mac};
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/webhooks/github",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let signature = header("x-hub-signature-256");
                    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(&body);
                    let valid = signature
                        .strip_prefix("sha256=")
                        .and_then(|h| hex::decode(h).ok())
                        .is_some_and(|sig| mac.verify_slice(&sig).is_ok());
                    let payload = serde_json::from_slice(&body).unwrap_or_default();
                    state
                        .got
                        .lock()
                        .unwrap()
                        .push((header("x-github-event"), payload, valid));
                    axum::http::StatusCode::ACCEPTED
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    pub fn events(&self) -> Vec<(String, serde_json::Value, bool)> {
        self.got.lock().unwrap().clone()
    }
}
