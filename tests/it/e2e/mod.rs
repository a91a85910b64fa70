//! TfPilot end to end: its router on 127.0.0.1 with the executor as the worker's
//! handler, the GitHub simulator sending signed webhooks to it, the store and the inbox on moto
//! S3, the rules extractor, and real `terraform` in the simulator's workflows on the offline infra
//! repo. No sleeps: [`World::settle`] waits for the simulator to be idle and drains the inbox
//! until nothing is left.

mod checks;
mod dashboard;
mod discovery;
mod drift;
mod faults;
mod flow;
mod guardrails;
mod notifications;
mod payloads;
mod reconcile;
mod reprocessing;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tfpilot::assist::RulesExtractor;
use tfpilot::domain::Policy;
use tfpilot::domain::Request;
use tfpilot::executor::Executor;
use tfpilot::github::{GitHubApp, RetryPolicy};
use tfpilot::inbox::{Inbox, ObjectInbox};
use tfpilot::server::{AppState, create_app};
use tfpilot::slack::{Slack, SlackConfig};
use tfpilot::store::{ObjectStore, RequestStore, S3Objects, S3Store};
use tfpilot::worker::Worker;
use tfpilot_sim::{Permission, Sim, SimComment, SimConfig, WorkflowBehavior};

use crate::iam::{Bucket, Recorder};
use crate::support::{self, MotoServer, WEBHOOK_SECRET};

pub const REPO: &str = "acme/core-terraform";

/// Hand-written lines already in the dev file: they must survive every edit, byte for byte.
pub const DEV_FILE_HEADER: &str = "# Blocks below are written by TfPilot; this comment is not.\nlocals {\n  team = \"payments\"\n}\n";

pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"))
}

pub struct World {
    pub sim: Sim,
    pub store: Arc<dyn RequestStore>,
    pub inbox: Arc<dyn Inbox>,
    pub worker: Worker,
    /// The worker's handler, for what runs beside deliveries ([`Executor::reconcile`]).
    pub executor: Executor,
    pub app: GitHubApp,
    /// TfPilot's webhook URL.
    pub webhook_url: String,
    _moto: MotoServer,
    _server: tokio::task::JoinHandle<()>,
}

/// The policy of [`World::start`]: alice and bob on the prod list, alice alone may destroy.
pub fn default_policy() -> Policy {
    Policy {
        approvals_required: Default::default(),
        prod_environments: vec!["prod".into(), "production".into()],
        prod_allowed_users: vec!["alice".into(), "bob".into()],
        destroy_prod_allowed_users: vec!["alice".into()],
        approvers: Vec::new(),
        approvers_required: false,
    }
}

impl World {
    /// Everything started: repository loaded from the offline infra repo (with
    /// [`DEV_FILE_HEADER`] in `envs/dev/tfpilot.s3.tf`), users, Terraform workflows.
    pub async fn start() -> World {
        Self::start_with(RetryPolicy::default()).await
    }

    pub async fn start_with(retry: RetryPolicy) -> World {
        Self::start_with_policy(retry, default_policy()).await
    }

    /// [`World::start_with`] under another guardrail policy.
    pub async fn start_with_policy(retry: RetryPolicy, policy: Policy) -> World {
        Self::start_inner(retry, policy, None, None).await
    }

    /// [`World::start`] with chat notices sent to `slack`.
    pub async fn start_with_slack(slack: SlackConfig) -> World {
        Self::start_inner(RetryPolicy::default(), default_policy(), None, Some(slack)).await
    }

    /// [`World::start`] with every S3 call recorded: the worker's (store and inbox) apart from
    /// the webhook router's (its own inbox on the same bucket), as the two Lambda functions are.
    pub async fn start_recording() -> (World, Recorded) {
        let recorded = Recorded::default();
        let world = Self::start_inner(
            RetryPolicy::default(),
            default_policy(),
            Some(&recorded),
            None,
        )
        .await;
        (world, recorded)
    }

    async fn start_inner(
        retry: RetryPolicy,
        policy: Policy,
        recorded: Option<&Recorded>,
        slack: Option<SlackConfig>,
    ) -> World {
        support::terraform();
        let moto = MotoServer::start();
        let (requests, chat) = (
            support::unique_bucket("e2e-requests"),
            support::unique_bucket("e2e-chat"),
        );
        moto.create_bucket(&requests).await;
        moto.create_bucket(&chat).await;
        let client = moto.client();
        let (store, inbox, webhook_inbox): (Arc<dyn RequestStore>, Arc<dyn Inbox>, Arc<dyn Inbox>) =
            match recorded {
                None => {
                    let inbox: Arc<dyn Inbox> = Arc::new(ObjectInbox::new(Arc::new(
                        S3Objects::new(client.clone(), &requests),
                    )));
                    (
                        Arc::new(S3Store::new(client, &requests, &chat)),
                        inbox.clone(),
                        inbox,
                    )
                }
                Some(r) => {
                    let seam = |bucket: &str| S3Objects::new(client.clone(), bucket);
                    (
                        Arc::new(ObjectStore::from_parts(
                            r.worker.wrap(Bucket::Requests, seam(&requests)),
                            r.worker.wrap(Bucket::Chat, seam(&chat)),
                        )),
                        Arc::new(ObjectInbox::new(Arc::new(
                            r.worker.wrap(Bucket::Requests, seam(&requests)),
                        ))),
                        Arc::new(ObjectInbox::new(Arc::new(
                            r.webhook.wrap(Bucket::Requests, seam(&requests)),
                        ))),
                    )
                }
            };

        let sim = Sim::start(SimConfig {
            terraform_bin: Some(support::terraform()),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let dir = support::offline_infra_repo();
        let mut files = tfpilot_sim::files_from_dir(dir.path()).expect("read the offline repo");
        files.insert("envs/dev/tfpilot.s3.tf".into(), DEV_FILE_HEADER.into());
        sim.add_repo(REPO, "main", files);
        for (login, p) in [
            ("carol", Permission::Write),
            ("dave", Permission::Write),
            ("alice", Permission::Maintain),
            ("bob", Permission::Write),
            ("mallory", Permission::Read),
        ] {
            sim.add_user(login, p);
        }
        for (file, behavior) in [
            ("plan.yml", WorkflowBehavior::TerraformPlan),
            ("apply.yml", WorkflowBehavior::TerraformApply),
            ("destroy.yml", WorkflowBehavior::TerraformDestroy),
            ("drift.yml", WorkflowBehavior::TerraformDrift),
        ] {
            sim.set_workflow(REPO, file, behavior).expect("workflow");
        }

        let key = SecretString::from(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned());
        let app =
            GitHubApp::with_retry_policy(sim.app_id(), &key, &sim.base_url(), retry).expect("app");
        let mut executor =
            Executor::new(store.clone(), app.clone(), Arc::new(RulesExtractor), policy)
                .with_bot_login(sim.bot_login());
        if let Some(slack) = slack {
            executor = executor.with_slack(Slack::new(slack).expect("slack"));
        }
        // Retries at once: these tests drive time by draining (the backoff between attempts is
        // tested in worker.rs).
        let worker = Worker::new(inbox.clone(), Arc::new(executor.clone()))
            .with_backoff(std::time::Duration::ZERO, std::time::Duration::ZERO);

        // TfPilot's router on a port, as `serve` runs it (the worker is driven by `settle`).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = AppState::new(Some(SecretString::from(WEBHOOK_SECRET)), webhook_inbox);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, create_app(state)).await;
        });
        let webhook_url = format!("http://{addr}/webhooks/github");
        sim.set_webhook_target(&webhook_url, WEBHOOK_SECRET);
        World {
            sim,
            store,
            inbox,
            worker,
            executor,
            app,
            webhook_url,
            _moto: moto,
            _server: server,
        }
    }

    /// Waits until the simulator is idle (runs finished, webhooks answered) and the inbox is
    /// empty, draining it as often as needed. Returns the deliveries processed.
    pub async fn settle(&self) -> usize {
        let mut processed = 0;
        for _ in 0..100 {
            self.sim.wait_idle().await;
            let report = self.worker.drain().await.expect("drain the inbox");
            processed += report.done + report.retry + report.gave_up;
            if report.done + report.retry + report.gave_up == 0 {
                self.sim.wait_idle().await;
                if self.inbox.pending().await.expect("pending").is_empty() {
                    return processed;
                }
            }
        }
        panic!("TfPilot and the simulator did not settle after 100 drains");
    }

    /// Comments as `login`, lets everything settle, and returns TfPilot's new comments on
    /// `thread` (and the API calls it took).
    pub async fn say(&self, thread: u64, login: &str, body: &str) -> Step {
        let before_calls = self.sim.total_calls();
        let before_routes = self.sim.calls();
        let before_304: u64 = self.sim.not_modified().values().sum();
        let before: usize = self.sim.comments(REPO, thread).len();
        let before_pr: Vec<(u64, usize)> = self
            .sim
            .pull_requests(REPO)
            .iter()
            .map(|p| (p.number, self.sim.comments(REPO, p.number).len()))
            .collect();
        self.sim
            .user_comment(REPO, thread, login, body)
            .await
            .expect("comment");
        self.settle().await;
        let bot = self.sim.bot_login();
        let replies: Vec<SimComment> = self
            .sim
            .comments(REPO, thread)
            .into_iter()
            .skip(before)
            .filter(|c| c.author == bot)
            .collect();
        let mut elsewhere = Vec::new();
        for p in self.sim.pull_requests(REPO) {
            if p.number == thread {
                continue;
            }
            let seen = before_pr
                .iter()
                .find(|(n, _)| *n == p.number)
                .map(|(_, c)| *c)
                .unwrap_or(0);
            elsewhere.extend(
                self.sim
                    .comments(REPO, p.number)
                    .into_iter()
                    .skip(seen)
                    .filter(|c| c.author == bot),
            );
        }
        let routes = self
            .sim
            .calls()
            .into_iter()
            .filter_map(|(route, n)| {
                let n = n - before_routes.get(&route).copied().unwrap_or(0);
                (n > 0).then_some((route, n))
            })
            .collect();
        let n304: u64 = self.sim.not_modified().values().sum::<u64>() - before_304;
        eprintln!("{body:?}: {routes:?}, and {n304} answered 304 Not Modified");
        Step {
            replies,
            elsewhere,
            calls: self.sim.total_calls() - before_calls,
            routes,
        }
    }

    /// The request on an issue thread.
    pub async fn request(&self, thread: u64) -> Request {
        self.store
            .find_by_thread(&REPO.parse().expect("repo"), thread)
            .await
            .expect("store")
            .expect("a request on the thread")
            .into_inner()
    }
}

/// The S3 calls of a [`World::start_recording`], per Lambda function.
#[derive(Default)]
pub struct Recorded {
    pub worker: Recorder,
    pub webhook: Recorder,
}

/// What one comment caused.
pub struct Step {
    /// TfPilot's new comments on the thread commented on.
    pub replies: Vec<SimComment>,
    /// TfPilot's new comments on pull requests (plans).
    pub elsewhere: Vec<SimComment>,
    /// GitHub API calls answered by the simulator meanwhile.
    pub calls: u64,
    /// The same calls by route (e.g. `GET /repos/{owner}/{repo}/collaborators/{username}/permission`).
    pub routes: std::collections::BTreeMap<String, u64>,
}

impl Step {
    /// The single reply, or a failure listing what there was.
    pub fn reply(&self) -> &str {
        assert_eq!(
            self.replies.len(),
            1,
            "expected one reply, got: {:#?}",
            self.replies.iter().map(|c| &c.body).collect::<Vec<_>>()
        );
        &self.replies[0].body
    }

    /// The reply that contains `words`, or a failure listing the replies.
    pub fn find(&self, words: &str) -> &str {
        self.replies
            .iter()
            .map(|c| c.body.as_str())
            .find(|b| b.contains(words))
            .unwrap_or_else(|| {
                panic!(
                    "no reply contains {words:?}: {:#?}",
                    self.replies.iter().map(|c| &c.body).collect::<Vec<_>>()
                )
            })
    }
}
