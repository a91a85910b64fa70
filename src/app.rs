//! The composition root: the one place that turns a [`Config`] into running parts —
//! config → store, GitHub, assistant → executor → worker → router — for `serve`, both AWS Lambda
//! functions, the demo and the tests. Nothing below it builds its own collaborators.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::{Concerns, Config, ConfigError, ConfigProblem};
use crate::executor::Executor;
use crate::github::GitHubApp;
use crate::lambda::{self, LambdaFunction};
use crate::server::{self, AppState, VERSION};
use crate::slack::Slack;
use crate::store::StoreLocation;
use crate::terraform::plan::Masker;
use crate::webhook::Event;
use crate::worker::{EventHandler, LoggingHandler, Worker};
use crate::{assist, inbox, secrets, store};

/// How long reading secrets from SSM Parameter Store may take at start.
const PARAMETERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The configuration of this process: the environment, with the secrets that
/// `…_PARAMETER` variables name read from SSM Parameter Store (see [`crate::secrets`]).
pub async fn load_config() -> Result<Config, ConfigError> {
    load_config_with(None).await
}

/// As [`load_config`], with the variables of `env_file` (written by `tfpilot setup`) under the
/// environment's when the file exists: a variable set in the environment wins.
pub async fn load_config_with(env_file: Option<&Path>) -> Result<Config, ConfigError> {
    let file = match env_file {
        Some(path) if path.exists() => crate::config::read_env_file(path)?,
        _ => Default::default(),
    };
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| file.get(name).cloned())
    };
    let wanted = secrets::wanted(&env)?;
    if wanted.is_empty() {
        return Config::from_vars(env);
    }
    let client = secrets::ssm_client_from_env().await;
    let values =
        match tokio::time::timeout(PARAMETERS_TIMEOUT, secrets::read(&client, &wanted)).await {
            Ok(values) => values?,
            Err(_) => {
                return Err(ConfigError {
                    problems: wanted
                        .keys()
                        .map(|secret| ConfigProblem {
                            variable: secrets::parameter_variable(secret),
                            reason: format!(
                                "SSM Parameter Store did not answer within {} s",
                                PARAMETERS_TIMEOUT.as_secs()
                            ),
                        })
                        .collect(),
                });
            }
        };
    Config::from_vars(|name| values.get(name).cloned().or_else(|| env(name)))
}

/// Says why the configuration stops the start. In a terminal: the problems as text. On AWS
/// Lambda: one JSON log line like every other line, and the runtime's init-error endpoint, so
/// the console names the variable instead of showing only `Runtime.ExitError`.
pub async fn refuse_start(error: &ConfigError, on_lambda: bool) {
    if !on_lambda {
        eprintln!("tfpilot: {error}");
        return;
    }
    let problems: Vec<_> = error
        .problems
        .iter()
        .map(|p| serde_json::json!({ "variable": p.variable, "reason": p.reason }))
        .collect();
    let summary = error
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.variable, p.reason))
        .collect::<Vec<_>>()
        .join("; ");
    let line = serde_json::json!({
        "timestamp": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "level": "ERROR",
        "fields": { "message": format!("invalid configuration: {summary}"), "problems": problems },
        "target": "tfpilot::config",
    });
    eprintln!("{line}");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        let message = format!("invalid configuration: {summary}");
        if let Err(e) = lambda::report_init_error(&api, "ConfigError", &message).await {
            eprintln!(
                "{}",
                serde_json::json!({
                    "level": "ERROR",
                    "fields": { "message": format!("could not report the start-up error to the Lambda runtime: {e}") },
                    "target": "tfpilot::lambda",
                })
            );
        }
    }
}

/// The executor for `config`, when GitHub App credentials are set (`None` otherwise).
pub async fn executor(config: &Config) -> anyhow::Result<Option<Executor>> {
    let Some(app) = &config.github_app else {
        return Ok(None);
    };
    let mut github = GitHubApp::new(app.app_id, &app.private_key_pem, &config.github_api_url)
        .context("the GitHub App settings")?;
    if let Some(slug) = &config.github_app_slug {
        github = github.with_bot_login(format!("{slug}[bot]"));
    }
    let store = store::open(&config.store, config.chat_logs_bucket.as_deref()).await?;
    let extractor = assist::from_settings(
        config.llm.as_ref().map(|l| &l.api_key),
        config.llm.as_ref().and_then(|l| l.base_url.as_deref()),
        config.llm.as_ref().map(|l| l.model.as_str()),
    );
    let masker = Masker::new(&config.plan_masks).context("TFPILOT_PLAN_MASKS")?;
    let mut executor = Executor::new(store, github, extractor, config.policy()).with_masker(masker);
    if let Some(slug) = &config.github_app_slug {
        executor = executor.with_bot_login(format!("{slug}[bot]"));
    }
    if config.slack.is_enabled() {
        executor =
            executor.with_slack(Slack::new(config.slack.clone()).context("the Slack client")?);
    }
    Ok(Some(executor.with_dashboards(config.dashboard)))
}

/// The handler `serve` and the Lambda worker use for `config`: the executor when the GitHub App
/// credentials are set, otherwise [`LoggingHandler`] (deliveries are received and logged,
/// nothing is answered).
pub async fn handler(config: &Config) -> anyhow::Result<Arc<dyn EventHandler>> {
    match executor(config).await? {
        Some(executor) => Ok(Arc::new(executor)),
        None => Ok(Arc::new(LoggingHandler)),
    }
}

/// Options of `tfpilot serve` beyond the environment.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (the port comes from `PORT`).
    pub host: IpAddr,
}

/// `tfpilot serve`: the router on a port and the worker in the background, until Ctrl-C/SIGTERM.
pub async fn serve(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let inbox = inbox::open(&config.store).await?;
    let addr = SocketAddr::new(options.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (set PORT to another port): {e}"))?;
    // One process at a time listens on this host and port: leases taken by an earlier run of
    // this instance (one that was killed) are taken over at once, not after they expire.
    let run = format!(
        "serve@{}:{}/{}",
        hostname(),
        listener.local_addr()?.port(),
        uuid::Uuid::new_v4().simple()
    );
    // Answering a webhook needs only the inbox. The executor (the GitHub client with its TLS
    // roots, the store, the assistant, the plan masks) takes tens of milliseconds to build, so
    // it is built while the server already answers; the worker waits for it. A setting it
    // refuses still stops `serve`, with that error.
    // Built on a blocking thread, so its CPU work (parsing the TLS roots) leaves the runtime's
    // threads to the requests.
    let (built_tx, built_rx) = watch::channel(None);
    let build = tokio::task::spawn_blocking({
        let (config, run) = (config.clone(), run.clone());
        move || {
            tokio::runtime::Handle::current().block_on(async move {
                let handler: Arc<dyn EventHandler> = match executor(&config).await? {
                    Some(executor) => Arc::new(executor.with_instance_run(run)),
                    None => Arc::new(LoggingHandler),
                };
                let _ = built_tx.send(Some(handler));
                anyhow::Ok(())
            })
        }
    });
    let failure = Arc::new(std::sync::Mutex::new(None));
    let shutdown = {
        let failure = Arc::clone(&failure);
        async move {
            let signal = server::shutdown_signal();
            tokio::pin!(signal);
            let error = tokio::select! {
                () = &mut signal => return,
                built = build => match built {
                    Ok(Ok(())) => return signal.await,
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::anyhow!("building the event handler failed: {e}"),
                },
            };
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        }
    };
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let state = AppState::new(config.webhook_secret.clone(), Arc::clone(&inbox))
        .with_work_queue(queue_tx)
        .with_metrics_access(config.metrics.clone());
    let worker = Worker::new(inbox, Arc::new(Built(built_rx))).with_owner(run);
    // The doctor's short form, once the port is taken: problems become warnings in the log; it
    // neither delays nor stops the start (a blocking thread, like the executor's build).
    tokio::task::spawn_blocking({
        let config = config.clone();
        move || tokio::runtime::Handle::current().block_on(crate::doctor::warn_at_start(config))
    });
    tracing::info!(
        version = VERSION,
        address = %listener.local_addr()?,
        store = %config.store,
        "TfPilot listening; POST /webhooks/github, GET /healthz, GET /metrics"
    );
    let served = server::run(listener, state, worker, queue_rx, shutdown).await;
    match failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => Err(e),
        None => served,
    }
}

/// The handler `serve` builds in the background: each call waits until it is built.
struct Built(watch::Receiver<Option<Arc<dyn EventHandler>>>);

impl Built {
    async fn handler(&self) -> anyhow::Result<Arc<dyn EventHandler>> {
        let mut built = self.0.clone();
        let handler = built
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("the event handler could not be built"))?;
        handler
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the event handler could not be built"))
    }
}

#[async_trait::async_trait]
impl EventHandler for Built {
    async fn handle(&self, delivery: &inbox::Delivery, event: &Event) -> anyhow::Result<()> {
        self.handler().await?.handle(delivery, event).await
    }

    async fn gave_up(&self, delivery: &inbox::Delivery, event: &Event, reason: &str) {
        if let Ok(handler) = self.handler().await {
            handler.gave_up(delivery, event, reason).await;
        }
    }

    async fn settle(&self) {
        if let Ok(handler) = self.handler().await {
            handler.settle().await;
        }
    }

    async fn sweep(&self) -> anyhow::Result<usize> {
        self.handler().await?.sweep().await
    }
}

/// `tfpilot setup`: the manifest flow's page on `host` and `PORT`, writing `env_file`.
pub async fn setup(
    config: &Config,
    host: IpAddr,
    env_file: std::path::PathBuf,
    force: bool,
) -> anyhow::Result<crate::setup::SetupOutcome> {
    crate::setup::run(crate::setup::SetupOptions {
        addr: SocketAddr::new(host, config.port),
        github_url: config.github_url.clone(),
        api_url: config.github_api_url.clone(),
        env_file,
        force,
    })
    .await
}

/// This machine's name (for the worker's owner name), or `localhost` when it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Runs `function` under the Lambda runtime until the runtime stops it.
pub async fn lambda(config: Config, function: LambdaFunction) -> anyhow::Result<()> {
    // Each function is given only its own settings (template.yaml: the webhook secret to the
    // webhook, the App and the assistant to the worker), so each warns only about its own.
    let mine = match function {
        LambdaFunction::Webhook => Concerns::Webhook,
        LambdaFunction::Worker => Concerns::Worker,
    };
    for warning in config.warnings() {
        if warning.concerns == mine {
            tracing::warn!("{warning}");
        }
    }
    if let StoreLocation::Fs(dir) = &config.store {
        tracing::warn!(
            dir = %dir.display(),
            "TFPILOT_STORE is a local directory: on Lambda each instance has its own /tmp, so the webhook and worker functions will not share an inbox; use s3://<bucket>"
        );
    }
    let inbox = inbox::open(&config.store).await?;
    match function {
        LambdaFunction::Webhook => {
            let state = AppState::new(config.webhook_secret.clone(), inbox)
                .with_metrics_access(config.metrics.clone())
                .with_max_body_bytes(lambda::FUNCTION_URL_MAX_BODY_BYTES);
            lambda::run_webhook(state).await
        }
        LambdaFunction::Worker => {
            lambda::run_worker(Worker::new(inbox, handler(&config).await?)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records which of its methods were called.
    #[derive(Default)]
    struct Recording(Mutex<Vec<&'static str>>);

    #[async_trait::async_trait]
    impl EventHandler for Recording {
        async fn handle(&self, _: &inbox::Delivery, _: &Event) -> anyhow::Result<()> {
            self.0.lock().unwrap().push("handle");
            Ok(())
        }
        async fn gave_up(&self, _: &inbox::Delivery, _: &Event, _: &str) {
            self.0.lock().unwrap().push("gave_up");
        }
        async fn settle(&self) {
            self.0.lock().unwrap().push("settle");
        }
        async fn sweep(&self) -> anyhow::Result<usize> {
            self.0.lock().unwrap().push("sweep");
            Ok(1)
        }
    }

    /// `serve`'s stand-in for the handler it builds in the background forwards every call of
    /// the worker's trait, the defaulted ones included (a default would silently do nothing:
    /// the dashboard's `settle` once did).
    #[tokio::test]
    async fn the_handler_built_in_the_background_forwards_every_call() {
        let recording = Arc::new(Recording::default());
        let (tx, rx) = watch::channel(None);
        let built = Built(rx);
        tx.send(Some(Arc::clone(&recording) as Arc<dyn EventHandler>))
            .unwrap();
        let delivery = inbox::Delivery::new("d-1".parse().unwrap(), "ping", "{}");
        let event = Event::Other("ping".into());
        built.handle(&delivery, &event).await.unwrap();
        built.gave_up(&delivery, &event, "why").await;
        built.settle().await;
        assert_eq!(built.sweep().await.unwrap(), 1);
        assert_eq!(
            *recording.0.lock().unwrap(),
            ["handle", "gave_up", "settle", "sweep"]
        );
    }
}
