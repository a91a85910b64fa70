//! `tfpilot doctor`: checks a configuration end to end and says, one line per check, what is
//! wrong and how to fix it — `ok|warn|FAIL <check>: <detail> — fix: <how>`.
//!
//! The checks: the webhook secret is set; the App's key signs a JWT GitHub accepts (`GET /app`);
//! the configured slug is the App's; the App's installations and each installation's
//! repositories, with each repository's `.tfpilot.yml` and workflows read from its default
//! branch and linted by `settings::repo_check`; the store takes the conditional writes TfPilot
//! relies on (create-only, compare-and-swap, and refuses the stale ones); the chat-log bucket
//! encrypts what TfPilot writes; the assistant's endpoint answers. Any FAIL makes the exit code 1.
//!
//! [`Depth::Short`] is what `serve` runs in the background once it listens: the GitHub App and
//! its slug only, logged as warnings, never blocking and never touching the store.

use std::fmt;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::Config;
use crate::github::{GitHubApp, GitHubError, InstalledRepo, RetryPolicy};
use crate::settings::{SETTINGS_FILE, Settings, repo_check};
use crate::store::{FsObjects, ObjectError, Objects, S3Objects, StoreLocation};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    /// What was checked (`github app`, `repo acme/infra`, …).
    pub name: String,
    pub detail: String,
    /// How to fix it (not shown for `ok`).
    pub fix: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.level.word(), self.name, self.detail)?;
        if self.level != Level::Ok && !self.fix.is_empty() {
            write!(f, " — fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every check made, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn push(
        &mut self,
        level: Level,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.checks.push(Check {
            level,
            name: name.into(),
            detail: detail.into(),
            fix: fix.into(),
        });
    }

    fn ok(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(Level::Ok, name, detail, "");
    }

    /// Whether any check failed (`tfpilot doctor` then exits 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.level == Level::Fail)
    }
}

/// How much to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Everything (`tfpilot doctor`).
    Full,
    /// The App's key and slug only (`serve`'s start).
    Short,
}

/// GitHub calls of the doctor give up quickly: it reports, it does not wait out an outage.
fn doctor_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(300),
        max_delay: Duration::from_secs(1),
        max_elapsed: Duration::from_secs(15),
    }
}

/// Runs the checks of `depth` against `config`.
pub async fn run(config: &Config, depth: Depth) -> Report {
    let mut report = Report::default();
    if depth == Depth::Full {
        webhook_secret(config, &mut report);
    }
    let app = github(config, depth, &mut report).await;
    if depth == Depth::Short {
        return report;
    }
    if let Some(found) = app {
        installations(&found, &mut report).await;
    }
    store(config, &mut report).await;
    chat_logs(config, &mut report).await;
    llm(config, &mut report).await;
    report
}

/// `serve`'s start: the short form, each problem logged as a warning.
pub async fn warn_at_start(config: Config) {
    let report = run(&config, Depth::Short).await;
    for check in report.checks.iter().filter(|c| c.level != Level::Ok) {
        tracing::warn!("doctor: {check}");
    }
}

fn webhook_secret(config: &Config, report: &mut Report) {
    if config.webhook_secret.is_some() {
        report.ok("webhook secret", "TFPILOT_WEBHOOK_SECRET is set");
    } else {
        report.push(
            Level::Fail,
            "webhook secret",
            "TFPILOT_WEBHOOK_SECRET is not set: every webhook delivery is refused with 401",
            "set it to the App's webhook secret (`tfpilot setup` writes it to .env)",
        );
    }
}

/// The App as found on GitHub.
struct FoundApp {
    client: GitHubApp,
    /// The App's slug, as GitHub says.
    slug: String,
    /// Where to install it.
    install_url: String,
}

/// The App's key and slug; the App when GitHub accepted the key.
async fn github(config: &Config, depth: Depth, report: &mut Report) -> Option<FoundApp> {
    let api = &config.github_api_url;
    let Some(creds) = &config.github_app else {
        // Without an App, `serve` already says so at start; the short form adds nothing.
        if depth == Depth::Full {
            report.push(
                Level::Fail,
                "github app",
                "TFPILOT_GITHUB_APP_ID / TFPILOT_GITHUB_PRIVATE_KEY are not set: TfPilot cannot answer on GitHub",
                "run `tfpilot setup` (it creates the App and writes them to .env), or set them as README says",
            );
        }
        return None;
    };
    let app = match GitHubApp::with_retry_policy(
        creds.app_id,
        &creds.private_key_pem,
        api,
        doctor_retry_policy(),
    ) {
        Ok(app) => app,
        Err(e) => {
            report.push(
                Level::Fail,
                "github app",
                e.to_string(),
                "set TFPILOT_GITHUB_PRIVATE_KEY to the App's private key (PEM text or a file path)",
            );
            return None;
        }
    };
    let info = match app.app_info().await {
        Ok(info) => info,
        Err(e) => {
            let fix = match &e {
                GitHubError::Unauthorized { .. } | GitHubError::NotFound { .. } => format!(
                    "check that TFPILOT_GITHUB_APP_ID ({}) is the App's id and TFPILOT_GITHUB_PRIVATE_KEY one of its keys (the App's settings: Private keys → Generate)",
                    creds.app_id
                ),
                _ => format!("check TFPILOT_GITHUB_API_URL ({api}) and the network"),
            };
            report.push(Level::Fail, "github app", e.to_string(), fix);
            return None;
        }
    };
    if info.id != creds.app_id {
        report.push(
            Level::Fail,
            "github app",
            format!(
                "GitHub answered for App {} but TFPILOT_GITHUB_APP_ID is {}",
                info.id, creds.app_id
            ),
            format!("set TFPILOT_GITHUB_APP_ID={}", info.id),
        );
        return None;
    }
    report.ok(
        "github app",
        format!(
            "GitHub accepts the key's JWT for App {} `{}` ({})",
            info.id, info.slug, info.html_url
        ),
    );
    match &config.github_app_slug {
        Some(slug) if *slug == info.slug => {
            report.ok("app slug", format!("TFPILOT_GITHUB_APP_SLUG is the App's (`{slug}`)"));
        }
        Some(slug) => report.push(
            Level::Fail,
            "app slug",
            format!(
                "TFPILOT_GITHUB_APP_SLUG is `{slug}` but the App's slug is `{}`: TfPilot would not recognize its own comments",
                info.slug
            ),
            format!("set TFPILOT_GITHUB_APP_SLUG={}", info.slug),
        ),
        None if info.slug == "tfpilot" => {
            report.ok("app slug", "not set; the default `tfpilot` is the App's");
        }
        None => report.push(
            Level::Fail,
            "app slug",
            format!(
                "TFPILOT_GITHUB_APP_SLUG is not set, so TfPilot takes `tfpilot[bot]` for itself, but the App is `{}[bot]`",
                info.slug
            ),
            format!("set TFPILOT_GITHUB_APP_SLUG={}", info.slug),
        ),
    }
    Some(FoundApp {
        install_url: format!("{}/installations/new", info.html_url.trim_end_matches('/')),
        slug: info.slug,
        client: app,
    })
}

async fn installations(found: &FoundApp, report: &mut Report) {
    let (app, install_url) = (&found.client, &found.install_url);
    let installations = match app.installations().await {
        Ok(list) => list,
        Err(e) => {
            report.push(
                Level::Fail,
                "installations",
                e.to_string(),
                "check the network to GitHub and try again",
            );
            return;
        }
    };
    if installations.is_empty() {
        report.push(
            Level::Warn,
            "installations",
            "the App is not installed anywhere: TfPilot receives nothing",
            format!("install it on your infra repositories: {install_url}"),
        );
        return;
    }
    report.ok(
        "installations",
        format!("{} installation(s)", installations.len()),
    );
    for inst in installations {
        let account = inst
            .account
            .clone()
            .unwrap_or_else(|| format!("#{}", inst.id));
        let name = format!("installation {account}");
        if inst.suspended {
            report.push(
                Level::Warn,
                name,
                "suspended: GitHub delivers nothing for it",
                "unsuspend it in the account's settings (Applications → Installed GitHub Apps)",
            );
            continue;
        }
        let repos = match app.installation_repositories(inst.id).await {
            Ok(repos) => repos,
            Err(e) => {
                report.push(
                    Level::Fail,
                    name,
                    e.to_string(),
                    "check the installation in GitHub's settings",
                );
                continue;
            }
        };
        if repos.is_empty() {
            report.push(
                Level::Warn,
                name,
                "no repository selected",
                "select the infra repositories in the installation's settings",
            );
            continue;
        }
        report.ok(name, format!("{} repositor(y/ies)", repos.len()));
        for repo in repos {
            repository(app, inst.id, &repo, &found.slug, report).await;
        }
    }
}

/// One repository's `.tfpilot.yml` and workflows, read from its default branch and linted by
/// `tfpilot repo check`.
async fn repository(
    app: &GitHubApp,
    installation: crate::ids::InstallationId,
    repo: &InstalledRepo,
    slug: &str,
    report: &mut Report,
) {
    let name = format!("repo {}", repo.name);
    match fetch_and_check(app, installation, repo, slug).await {
        Ok(findings) if findings.is_empty() => report.ok(
            name,
            format!(
                "{SETTINGS_FILE} and the workflows on `{}` keep TfPilot's guardrails",
                repo.default_branch
            ),
        ),
        Ok(findings) => report.push(
            Level::Fail,
            name,
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            "change those files as said (`tfpilot repo check <checkout>` lists the same), see examples/infra-repo",
        ),
        Err(e) => report.push(
            Level::Fail,
            name,
            format!("cannot read its files: {e:#}"),
            "check that the installation grants contents: read",
        ),
    }
}

async fn fetch_and_check(
    app: &GitHubApp,
    installation: crate::ids::InstallationId,
    repo: &InstalledRepo,
    slug: &str,
) -> anyhow::Result<Vec<repo_check::Finding>> {
    let client = app.repo(installation, &repo.name);
    let branch = &repo.default_branch;
    let dir = tempfile::tempdir()?;
    let settings_text = client.get_file(branch, SETTINGS_FILE).await?;
    let mut files = Vec::new();
    if let Some(text) = &settings_text {
        files.push((SETTINGS_FILE.to_owned(), text.text.clone()));
    }
    // The workflow names come from the file when it parses (the check reports it when not).
    let settings = Settings::from_file(
        &repo.name,
        branch,
        settings_text.as_ref().map(|f| f.text.as_str()),
    )
    .unwrap_or_else(|_| Settings::defaults(&repo.name, branch));
    for name in settings.workflows.by_kind().values() {
        let path = format!(".github/workflows/{name}");
        if let Some(file) = client.get_file(branch, &path).await? {
            files.push((path, file.text));
        }
    }
    for (path, text) in files {
        let target = dir.path().join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, text)?;
    }
    Ok(repo_check::check_repo(dir.path(), slug)?)
}

/// Object key of the store probe (under its own prefix, removed afterwards).
fn probe_key() -> String {
    format!("doctor/probe-{}.json", uuid::Uuid::new_v4().simple())
}

async fn store(config: &Config, report: &mut Report) {
    let (objects, fix): (Box<dyn Objects>, &str) = match &config.store {
        StoreLocation::Fs(dir) => match FsObjects::open(dir) {
            Ok(o) => (
                Box::new(o),
                "make the directory writable by this user, or point TFPILOT_STORE elsewhere",
            ),
            Err(e) => {
                report.push(
                    Level::Fail,
                    "store",
                    format!("{}: {e}", config.store),
                    "make the directory writable by this user, or point TFPILOT_STORE elsewhere",
                );
                return;
            }
        },
        StoreLocation::S3 { bucket } => (
            Box::new(S3Objects::new(
                crate::store::s3_client_from_env(None).await,
                bucket.clone(),
            )),
            "check that the bucket exists, that this role may s3:GetObject/PutObject/DeleteObject in it, and that the endpoint supports conditional writes (If-Match / If-None-Match)",
        ),
    };
    match probe(objects.as_ref()).await {
        Ok(()) => report.ok(
            "store",
            format!(
                "{}: create-only and compare-and-swap writes hold",
                config.store
            ),
        ),
        Err(e) => report.push(Level::Fail, "store", format!("{}: {e}", config.store), fix),
    }
}

/// Create-only, then compare-and-swap, each also refused when stale, then a conditional delete.
async fn probe(objects: &dyn Objects) -> Result<(), String> {
    let key = probe_key();
    let body = |n: u32| format!("{{\"tfpilot_doctor\":{n}}}").into_bytes();
    let first = objects
        .put_if_absent(&key, body(1))
        .await
        .map_err(|e| format!("cannot create an object: {e}"))?;
    let outcome = async {
        match objects.put_if_absent(&key, body(2)).await {
            Err(ObjectError::Conflict { .. }) => {}
            Ok(_) => {
                return Err(
                    "a create-only write replaced an existing object (If-None-Match is ignored)"
                        .to_owned(),
                );
            }
            Err(e) => return Err(format!("a create-only write failed: {e}")),
        }
        let second = objects
            .put_if_match(&key, body(3), &first)
            .await
            .map_err(|e| format!("a compare-and-swap write failed: {e}"))?;
        match objects.put_if_match(&key, body(4), &first).await {
            Err(ObjectError::Conflict { .. }) => {}
            Ok(_) => {
                return Err(
                    "a write with a stale version was accepted (If-Match is ignored)".to_owned(),
                );
            }
            Err(e) => return Err(format!("a compare-and-swap write failed: {e}")),
        }
        objects
            .delete_if_match(&key, &second)
            .await
            .map_err(|e| format!("a conditional delete failed: {e}"))
    }
    .await;
    if outcome.is_err() {
        // Leave nothing behind whatever went wrong.
        if let Ok(Some(current)) = objects.get(&key).await {
            let _ = objects.delete_if_match(&key, &current.etag).await;
        }
    }
    outcome
}

async fn chat_logs(config: &Config, report: &mut Report) {
    let StoreLocation::S3 { .. } = &config.store else {
        report.ok(
            "chat logs",
            format!(
                "kept in the store directory ({}); encryption at rest is the disk's",
                config.store
            ),
        );
        return;
    };
    let Some(bucket) = config.chat_logs_bucket.as_deref() else {
        report.push(
            Level::Fail,
            "chat logs",
            "the store is on S3 but TFPILOT_CHAT_LOGS_BUCKET is not set: `serve` refuses to start",
            "set TFPILOT_CHAT_LOGS_BUCKET to a bucket of its own",
        );
        return;
    };
    let fix = "turn on default encryption (SSE-S3 or SSE-KMS) on the bucket, and allow s3:PutObject with x-amz-server-side-encryption";
    match encrypted_probe(bucket).await {
        Ok(Some(algorithm)) => report.ok(
            "chat logs",
            format!("s3://{bucket} stores TfPilot's writes encrypted ({algorithm})"),
        ),
        Ok(None) => report.push(
            Level::Fail,
            "chat logs",
            format!("s3://{bucket} stored a chat-log object without server-side encryption"),
            fix,
        ),
        Err(e) => report.push(Level::Fail, "chat logs", format!("s3://{bucket}: {e}"), fix),
    }
}

/// Writes an object the way the store writes chat logs and reads back its encryption.
async fn encrypted_probe(bucket: &str) -> Result<Option<String>, String> {
    use aws_sdk_s3::error::DisplayErrorContext;
    let client = crate::store::s3_client_from_env(None).await;
    let key = probe_key();
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
        .send()
        .await
        .map_err(|e| format!("cannot write: {}", DisplayErrorContext(e)))?;
    let head = client.head_object().bucket(bucket).key(&key).send().await;
    let _ = client.delete_object().bucket(bucket).key(&key).send().await;
    let head = head.map_err(|e| format!("cannot read back: {}", DisplayErrorContext(e)))?;
    Ok(head.server_side_encryption().map(|a| a.as_str().to_owned()))
}

async fn llm(config: &Config, report: &mut Report) {
    let Some(llm) = &config.llm else {
        report.ok(
            "assistant",
            "OPENAI_API_KEY is not set: the deterministic rules extractor reads replies",
        );
        return;
    };
    let base = llm
        .base_url
        .clone()
        .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
    let url = format!("{}/models", base.trim_end_matches('/'));
    let fix = "check OPENAI_API_KEY and TFPILOT_LLM_BASE_URL (an OpenAI-compatible API answering GET /models)";
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            report.push(Level::Fail, "assistant", e.to_string(), fix);
            return;
        }
    };
    let answer = client
        .get(&url)
        .bearer_auth(llm.api_key.expose_secret())
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            report.push(
                Level::Fail,
                "assistant",
                format!("{url} does not answer: {}", without_query(&e.to_string())),
                fix,
            );
            return;
        }
    };
    let status = response.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        report.push(
            Level::Fail,
            "assistant",
            format!("{url} refused the key (HTTP {})", status.as_u16()),
            fix,
        );
        return;
    }
    if !status.is_success() {
        report.push(
            Level::Fail,
            "assistant",
            format!("{url} answered HTTP {}", status.as_u16()),
            fix,
        );
        return;
    }
    #[derive(serde::Deserialize)]
    struct Model {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    match response.json::<Models>().await {
        Ok(models) if models.data.iter().any(|m| m.id == llm.model) => report.ok(
            "assistant",
            format!("{base} answers and serves the model `{}`", llm.model),
        ),
        Ok(_) => report.push(
            Level::Warn,
            "assistant",
            format!("{base} answers but does not list the model `{}`", llm.model),
            "set TFPILOT_LLM_MODEL to a model the endpoint lists",
        ),
        Err(_) => report.ok(
            "assistant",
            format!("{base} answers (its model list could not be read)"),
        ),
    }
}

/// An error text without a URL's query string (nothing secret goes to a log).
fn without_query(text: &str) -> String {
    match text.split_once('?') {
        Some((before, _)) => format!("{before}…"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_level_check_detail_and_fix() {
        let mut r = Report::default();
        r.ok("store", "fs://./data: fine");
        r.push(Level::Fail, "app slug", "differs", "set X=y");
        r.push(Level::Warn, "installations", "none", "install it");
        let lines: Vec<String> = r.checks.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "ok store: fs://./data: fine",
                "FAIL app slug: differs — fix: set X=y",
                "warn installations: none — fix: install it",
            ]
        );
        assert!(r.failed());
        r.checks.remove(1);
        assert!(!r.failed());
    }

    #[tokio::test]
    async fn the_store_probe_holds_on_a_directory_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let objects = FsObjects::open(dir.path()).expect("opens");
        probe(&objects).await.expect("fs keeps conditional writes");
        assert!(
            objects.list("doctor/").await.expect("lists").is_empty(),
            "the probe object is removed"
        );
    }
}
