//! Settings from environment variables (the names are listed in README.md).
//!
//! Everything has an embedded default, so `tfpilot serve` starts with no variable set; what is
//! set must be valid, and every problem is reported at once, naming the variable. Secrets are
//! [`SecretString`]s: `Debug` prints `[REDACTED]`, never the value.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::slack::SlackConfig;
use crate::store::{StoreLocation, check_bucket_name};

/// Default listen port of `tfpilot serve`.
pub const DEFAULT_PORT: u16 = 3000;
/// Default GitHub REST API base URL.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// Default GitHub web URL (where `tfpilot setup` sends the App manifest; links in chat notices).
pub const DEFAULT_GITHUB_URL: &str = "https://github.com";
/// Default store: a directory next to where the service runs.
pub const DEFAULT_STORE: &str = "fs://./data";
/// Default model of the assistant when `OPENAI_API_KEY` is set and `TFPILOT_LLM_MODEL` is not.
pub const DEFAULT_LLM_MODEL: &str = "gpt-4o-mini";

/// The service's settings, read once at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: where `serve` listens.
    pub port: u16,
    /// `TFPILOT_WEBHOOK_SECRET`: without it every delivery is refused with 401.
    pub webhook_secret: Option<SecretString>,
    /// `TFPILOT_GITHUB_APP_ID` + `TFPILOT_GITHUB_PRIVATE_KEY`: without them TfPilot cannot answer.
    pub github_app: Option<GithubAppCredentials>,
    /// `TFPILOT_GITHUB_APP_SLUG`: the App's slug; its comments are written by `<slug>[bot]`
    /// (default `tfpilot`).
    pub github_app_slug: Option<String>,
    /// `TFPILOT_GITHUB_API_URL`, without a trailing `/`.
    pub github_api_url: String,
    /// `TFPILOT_GITHUB_URL`: GitHub's web side, without a trailing `/` (default
    /// `https://github.com`; for a GitHub Enterprise API URL `https://<host>/api/v3`, `https://<host>`).
    pub github_url: String,
    /// `TFPILOT_STORE` (or `TFPILOT_REQUESTS_BUCKET`): where requests and the inbox live.
    pub store: StoreLocation,
    /// `TFPILOT_REQUESTS_BUCKET`, as given.
    pub requests_bucket: Option<String>,
    /// `TFPILOT_CHAT_LOGS_BUCKET`, as given.
    pub chat_logs_bucket: Option<String>,
    /// `TFPILOT_PROD_ALLOWED_USERS`: GitHub logins allowed to approve/merge/apply/cleanup in prod.
    pub prod_allowed_users: Vec<String>,
    /// `TFPILOT_DESTROY_PROD_ALLOWED_USERS`: GitHub logins allowed to destroy in prod.
    pub destroy_prod_allowed_users: Vec<String>,
    /// `TFPILOT_APPROVERS`: GitHub logins whose `/tfpilot approve` counts.
    pub approvers: Vec<String>,
    /// `TFPILOT_PROD_ENVIRONMENTS`: environment names guarded as production (default
    /// `prod,production`).
    pub prod_environments: Vec<String>,
    /// `TFPILOT_APPROVALS_REQUIRED`: distinct approvals an environment needs (`prod=2,staging=1`);
    /// unnamed environments need one in production and where approvers are required.
    pub approvals_required: BTreeMap<String, u32>,
    /// `TFPILOT_PLAN_MASKS`: extra regular expressions (one per line) whose matches are masked in
    /// plans before they are posted, on top of the sensitive values and the built-in patterns.
    pub plan_masks: Vec<String>,
    /// `OPENAI_API_KEY` (+ `TFPILOT_LLM_BASE_URL`, `TFPILOT_LLM_MODEL`): the assistant, if any.
    pub llm: Option<LlmConfig>,
    /// `TFPILOT_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `TFPILOT_METRICS` / `TFPILOT_METRICS_TOKEN`: who may read `GET /metrics`.
    pub metrics: MetricsAccess,
    /// `TFPILOT_SLACK_WEBHOOK_URL`, `TFPILOT_SLACK_WEBHOOK_ROUTES` (and `TFPILOT_GITHUB_URL` for
    /// the links): the chat notices.
    pub slack: SlackConfig,
    /// `TFPILOT_DASHBOARD` (`on`, the default, or `off`): whether TfPilot keeps a requests
    /// dashboard issue in each infra repository (`.tfpilot.yml` can turn one repository's off).
    pub dashboard: bool,
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Default)]
pub enum MetricsAccess {
    /// Anyone who reaches the port (the default; fine behind a private network).
    #[default]
    Open,
    /// Only requests with `Authorization: Bearer <token>` (`TFPILOT_METRICS_TOKEN`).
    Token(SecretString),
    /// Nobody: 404 (`TFPILOT_METRICS=off`).
    Off,
}

/// The GitHub App's identity.
#[derive(Debug, Clone)]
pub struct GithubAppCredentials {
    pub app_id: u64,
    /// The App's private key, PEM text (read from the file when the variable held a path).
    pub private_key_pem: SecretString,
}

/// The OpenAI-compatible assistant.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub api_key: SecretString,
    /// `None`: the client's default (OpenAI).
    pub base_url: Option<String>,
    pub model: String,
}

/// Which part of TfPilot a start-up warning is about: on Lambda each function is given only its
/// own settings, so each says only its own warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concerns {
    /// The front door (verifying and storing deliveries).
    Webhook,
    /// The worker (answering on GitHub, the assistant).
    Worker,
}

/// A start-up warning: what the configuration cannot do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub concerns: Concerns,
    pub text: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Unset: JSON on AWS Lambda, human-readable elsewhere.
    Auto,
    Json,
    Pretty,
}

/// Every invalid variable found, each with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

/// One invalid (or missing, when another variable needs it) environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.variable, p.reason)?;
        }
        Ok(())
    }
}

impl Config {
    /// The guardrail policy these settings put in force (narrowed per repository by
    /// `.tfpilot.yml`).
    pub fn policy(&self) -> crate::domain::Policy {
        crate::domain::Policy {
            prod_environments: self.prod_environments.clone(),
            prod_allowed_users: self.prod_allowed_users.clone(),
            destroy_prod_allowed_users: self.destroy_prod_allowed_users.clone(),
            approvers: self.approvers.clone(),
            approvers_required: !self.approvers.is_empty(),
            approvals_required: self.approvals_required.clone(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var` (tests pass a map). An empty value counts as unset.
    /// `TFPILOT_GITHUB_PRIVATE_KEY` may name a file, which is then read.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            var: &var,
            problems: Vec::new(),
        };
        let port = r.port();
        // A secret keeps its exact bytes (no trimming): GitHub signs with the secret as typed.
        let webhook_secret = var("TFPILOT_WEBHOOK_SECRET")
            .filter(|v| !v.is_empty())
            .map(SecretString::from);
        let github_app = r.github_app();
        let github_api_url = r
            .http_url("TFPILOT_GITHUB_API_URL")
            .unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned());
        let github_url = r.http_url("TFPILOT_GITHUB_URL").unwrap_or_else(|| {
            github_api_url
                .strip_suffix("/api/v3")
                .unwrap_or(DEFAULT_GITHUB_URL)
                .to_owned()
        });
        let github_app_slug = r.app_slug();
        let requests_bucket = r.bucket("TFPILOT_REQUESTS_BUCKET");
        let chat_logs_bucket = r.bucket("TFPILOT_CHAT_LOGS_BUCKET");
        let store = r.store(requests_bucket.as_deref());
        let prod_allowed_users = r.logins("TFPILOT_PROD_ALLOWED_USERS");
        let destroy_prod_allowed_users = r.logins("TFPILOT_DESTROY_PROD_ALLOWED_USERS");
        let approvers = r.logins("TFPILOT_APPROVERS");
        let prod_environments = r.prod_environments();
        let approvals_required = r.approvals_required();
        let plan_masks = r.plan_masks();
        let llm_base_url = r.http_url("TFPILOT_LLM_BASE_URL");
        let llm = r.get("OPENAI_API_KEY").map(|key| LlmConfig {
            api_key: SecretString::from(key),
            base_url: llm_base_url,
            model: r
                .get("TFPILOT_LLM_MODEL")
                .unwrap_or_else(|| DEFAULT_LLM_MODEL.to_owned()),
        });
        let log_format = r.log_format();
        let metrics = r.metrics();
        let slack = r.slack(&github_url);
        let dashboard = r.on_off("TFPILOT_DASHBOARD", true);

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Config {
            port,
            webhook_secret,
            github_app,
            github_app_slug,
            github_api_url,
            github_url,
            store,
            requests_bucket,
            chat_logs_bucket,
            prod_allowed_users,
            destroy_prod_allowed_users,
            approvers,
            prod_environments,
            approvals_required,
            plan_masks,
            llm,
            log_format,
            metrics,
            slack,
            dashboard,
        })
    }

    /// What this configuration cannot do, each said once at start by the part it concerns.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        let mut warn = |concerns: Concerns, text: &str| {
            out.push(Warning {
                concerns,
                text: text.to_owned(),
            })
        };
        if self.webhook_secret.is_none() {
            warn(
                Concerns::Webhook,
                "TFPILOT_WEBHOOK_SECRET is not set: every webhook delivery will be refused with 401",
            );
        }
        if self.github_app.is_none() {
            warn(
                Concerns::Worker,
                "TFPILOT_GITHUB_APP_ID / TFPILOT_GITHUB_PRIVATE_KEY are not set: TfPilot cannot answer on GitHub (deliveries are still received and logged)",
            );
        }
        if self.github_app.is_some() && self.github_app_slug.is_none() {
            warn(
                Concerns::Worker,
                "TFPILOT_GITHUB_APP_SLUG is not set: TfPilot takes `tfpilot[bot]` for its own login; if the App has another name, set it so TfPilot recognizes its own comments (and does not repeat them after a retry)",
            );
        }
        if self.llm.is_none() {
            warn(
                Concerns::Worker,
                "OPENAI_API_KEY is not set: the deterministic rules extractor reads replies",
            );
        }
        out
    }

    /// The webhook secret's bytes, for signature verification only.
    pub fn webhook_secret_bytes(&self) -> Option<&[u8]> {
        self.webhook_secret
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
    }
}

/// The variables of a dotenv file (`tfpilot setup` writes one; `serve` and `doctor` read it):
/// `None` when there is no such file. The process environment wins over the file
/// (see `app::load_config`).
pub fn read_env_file(
    path: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let problem = |reason: String| ConfigError {
        problems: vec![ConfigProblem {
            variable: ENV_FILE_PSEUDO_VARIABLE,
            reason,
        }],
    };
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?;
    let mut vars = std::collections::BTreeMap::new();
    for item in iter {
        let (k, v) =
            item.map_err(|e| problem(format!("{} does not parse: {e}", path.display())))?;
        vars.insert(k, v);
    }
    Ok(vars)
}

/// The name problems with the env file are reported under.
pub const ENV_FILE_PSEUDO_VARIABLE: &str = ".env";

/// Reads the variables one group at a time, collecting every problem (so all are reported at once).
struct Reader<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    /// A variable's trimmed value; empty counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn problem(&mut self, variable: &'static str, reason: String) {
        self.problems.push(ConfigProblem { variable, reason });
    }

    fn port(&mut self) -> u16 {
        match self.get("PORT") {
            None => DEFAULT_PORT,
            Some(v) => v.parse::<u16>().unwrap_or_else(|_| {
                self.problem(
                    "PORT",
                    format!("must be a port number (0-65535), got `{v}`"),
                );
                DEFAULT_PORT
            }),
        }
    }

    fn github_app(&mut self) -> Option<GithubAppCredentials> {
        match (
            self.get("TFPILOT_GITHUB_APP_ID"),
            (self.var)("TFPILOT_GITHUB_PRIVATE_KEY"),
        ) {
            (None, None) => None,
            (Some(_), None) => {
                self.problem(
                    "TFPILOT_GITHUB_PRIVATE_KEY",
                    "is required when TFPILOT_GITHUB_APP_ID is set (the App's private key: PEM text or a file path)".into(),
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "TFPILOT_GITHUB_APP_ID",
                    "is required when TFPILOT_GITHUB_PRIVATE_KEY is set (the App's numeric id)"
                        .into(),
                );
                None
            }
            (Some(id), Some(key)) => {
                let app_id = id.parse::<u64>().ok().filter(|n| *n > 0);
                if app_id.is_none() {
                    self.problem(
                        "TFPILOT_GITHUB_APP_ID",
                        format!("must be the App's numeric id, got `{id}`"),
                    );
                }
                let key = match read_private_key(&key) {
                    Ok(pem) => Some(pem),
                    Err(reason) => {
                        self.problem("TFPILOT_GITHUB_PRIVATE_KEY", reason);
                        None
                    }
                };
                Some(GithubAppCredentials {
                    app_id: app_id?,
                    private_key_pem: key?,
                })
            }
        }
    }

    /// An http(s) URL without its trailing slash; `None` when unset or invalid (reported).
    fn http_url(&mut self, variable: &'static str) -> Option<String> {
        let v = self.get(variable)?;
        match parse_http_url(&v) {
            Ok(url) => Some(url),
            Err(reason) => {
                self.problem(variable, reason);
                None
            }
        }
    }

    /// The Slack webhooks. A webhook URL is a secret: problems never quote it.
    fn slack(&mut self, github_url: &str) -> SlackConfig {
        let check = |v: &str| -> Result<SecretString, &'static str> {
            let uri: http::Uri = v.parse().map_err(|_| "is not a URL")?;
            match (uri.scheme_str(), uri.host()) {
                (Some("https"), Some(_)) => Ok(SecretString::from(v.to_owned())),
                (Some("http"), Some(h)) if is_loopback(h) => Ok(SecretString::from(v.to_owned())),
                _ => Err("must be an https URL (plain http only to this machine)"),
            }
        };
        let webhook_url = match self.get("TFPILOT_SLACK_WEBHOOK_URL").map(|v| check(&v)) {
            None => None,
            Some(Ok(url)) => Some(url),
            Some(Err(reason)) => {
                self.problem(
                    "TFPILOT_SLACK_WEBHOOK_URL",
                    format!("{reason} (the value is not shown: it is a secret)"),
                );
                None
            }
        };
        let mut routes = BTreeMap::new();
        let listed = self.get("TFPILOT_SLACK_WEBHOOK_ROUTES").unwrap_or_default();
        for entry in listed
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((name, url)) = entry.split_once('=') else {
                self.problem(
                    "TFPILOT_SLACK_WEBHOOK_ROUTES",
                    "must list `name=https://hooks.slack.com/…` entries separated by commas".into(),
                );
                continue;
            };
            let name = name.trim();
            if !crate::slack::is_route_name(name) || name == crate::slack::SLACK_OFF {
                self.problem(
                    "TFPILOT_SLACK_WEBHOOK_ROUTES",
                    format!(
                        "`{}` is not a route name (letters, digits, `-` and `_`; not `off`)",
                        name.chars().take(64).collect::<String>()
                    ),
                );
                continue;
            }
            match check(url.trim()) {
                Ok(url) => {
                    routes.insert(name.to_owned(), url);
                }
                Err(reason) => self.problem(
                    "TFPILOT_SLACK_WEBHOOK_ROUTES",
                    format!("the URL of route `{name}` {reason} (the value is not shown: it is a secret)"),
                ),
            }
        }
        SlackConfig {
            webhook_url,
            routes,
            github_web_url: github_url.to_owned(),
        }
    }

    fn app_slug(&mut self) -> Option<String> {
        let slug = self.get("TFPILOT_GITHUB_APP_SLUG");
        if let Some(slug) = &slug
            && !slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.problem(
                "TFPILOT_GITHUB_APP_SLUG",
                format!("`{slug}` is not an App slug (letters, digits and hyphens)"),
            );
        }
        slug
    }

    fn bucket(&mut self, variable: &'static str) -> Option<String> {
        let bucket = self.get(variable);
        if let Some(b) = &bucket
            && let Err(reason) = check_bucket_name(b)
        {
            self.problem(variable, reason);
        }
        bucket
    }

    fn store(&mut self, requests_bucket: Option<&str>) -> StoreLocation {
        let Some(v) = self.get("TFPILOT_STORE") else {
            // The seed system named its bucket only: that means the S3 store.
            return match requests_bucket {
                Some(bucket) => StoreLocation::S3 {
                    bucket: bucket.to_owned(),
                },
                None => StoreLocation::default_dir(),
            };
        };
        match StoreLocation::parse(&v) {
            Ok(store) => {
                if let (StoreLocation::S3 { bucket }, Some(rb)) = (&store, requests_bucket)
                    && bucket != rb
                {
                    self.problem(
                        "TFPILOT_STORE",
                        format!(
                            "names bucket `{bucket}` but TFPILOT_REQUESTS_BUCKET is `{rb}`; set one or make them agree"
                        ),
                    );
                }
                store
            }
            Err(reason) => {
                self.problem("TFPILOT_STORE", reason);
                StoreLocation::default_dir()
            }
        }
    }

    fn logins(&mut self, variable: &'static str) -> Vec<String> {
        match self.get(variable) {
            None => Vec::new(),
            Some(v) => parse_logins(&v).unwrap_or_else(|reason| {
                self.problem(variable, reason);
                Vec::new()
            }),
        }
    }

    fn approvals_required(&mut self) -> BTreeMap<String, u32> {
        const VAR: &str = "TFPILOT_APPROVALS_REQUIRED";
        let Some(v) = self.get(VAR) else {
            return BTreeMap::new();
        };
        match crate::domain::policy::parse_quorums(&v) {
            Ok(map) => map,
            Err(reason) => {
                self.problem(VAR, reason);
                BTreeMap::new()
            }
        }
    }

    fn prod_environments(&mut self) -> Vec<String> {
        let Some(v) = self.get("TFPILOT_PROD_ENVIRONMENTS") else {
            return crate::domain::DEFAULT_PROD_ENVIRONMENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        };
        let list: Vec<String> = v
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if list.is_empty() {
            self.problem(
                "TFPILOT_PROD_ENVIRONMENTS",
                "lists no environment (leave it unset for `prod,production`)".into(),
            );
        }
        list
    }

    fn plan_masks(&mut self) -> Vec<String> {
        let masks: Vec<String> = self
            .get("TFPILOT_PLAN_MASKS")
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Err(e) = crate::terraform::plan::Masker::new(&masks) {
            self.problem("TFPILOT_PLAN_MASKS", e.to_string());
        }
        masks
    }

    fn metrics(&mut self) -> MetricsAccess {
        let token = (self.var)("TFPILOT_METRICS_TOKEN")
            .filter(|v| !v.is_empty())
            .map(SecretString::from);
        match self
            .get("TFPILOT_METRICS")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("on") => token.map_or(MetricsAccess::Open, MetricsAccess::Token),
            Some("off") => MetricsAccess::Off,
            Some(v) => {
                let reason = format!("must be `on` or `off`, got `{v}`");
                self.problem("TFPILOT_METRICS", reason);
                MetricsAccess::Open
            }
        }
    }

    /// A switch: `on` or `off` (any case), `default` when unset.
    fn on_off(&mut self, variable: &'static str, default: bool) -> bool {
        match self
            .get(variable)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None => default,
            Some("on") => true,
            Some("off") => false,
            Some(v) => {
                self.problem(variable, format!("must be `on` or `off`, got `{v}`"));
                default
            }
        }
    }

    fn log_format(&mut self) -> LogFormat {
        match self
            .get("TFPILOT_LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
        {
            None => LogFormat::Auto,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(v) => {
                self.problem(
                    "TFPILOT_LOG_FORMAT",
                    format!("must be `json` or `pretty`, got `{v}`"),
                );
                LogFormat::Auto
            }
        }
    }
}

fn parse_http_url(v: &str) -> Result<String, String> {
    let uri: http::Uri = v
        .parse()
        .map_err(|_| format!("must be an http(s) URL, got `{v}`"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let Some(host) = uri.host().filter(|_| scheme_ok) else {
        return Err(format!("must be an http(s) URL, got `{v}`"));
    };
    // Tokens and keys travel in these requests: plain http only to this machine (a simulator,
    // a local model server), never across a network.
    if uri.scheme_str() == Some("http") && !is_loopback(host) {
        return Err(format!(
            "must be an https URL (plain http is allowed only to this machine: localhost, 127.0.0.1, [::1]), got `{v}`"
        ));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

/// Whether `host` (as in a URL, IPv6 in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A comma-separated list of GitHub logins; a leading `@` is allowed and dropped.
fn parse_logins(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in v.split(',') {
        let login = raw.trim();
        let login = login.strip_prefix('@').unwrap_or(login);
        if login.is_empty() {
            continue;
        }
        // GitHub logins: letters, digits, `-` (and `_` for managed users), at most 39; or an
        // account id written `id:<number>`, which survives a renamed login; or a team
        // `org/team-slug`.
        let is_login = |l: &str| {
            !l.is_empty()
                && l.len() <= 39
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let team = login
            .split_once('/')
            .is_some_and(|(org, slug)| is_login(org) && is_login(slug));
        let by_id = login
            .strip_prefix(crate::domain::policy::ID_PREFIX)
            .is_some_and(|n| {
                !n.is_empty() && n.len() <= 20 && n.chars().all(|c| c.is_ascii_digit())
            });
        let valid = by_id || team || is_login(login);
        if !valid {
            return Err(format!(
                "`{login}` is not a GitHub login, `id:<number>` or `@org/team` (expected a comma-separated list such as alice,bob,id:583231,@acme/platform)"
            ));
        }
        out.push(login.to_owned());
    }
    Ok(out)
}

/// `TFPILOT_GITHUB_PRIVATE_KEY` holds PEM text (literal `\n` allowed, as in many secret stores)
/// or the path of a PEM file.
fn read_private_key(value: &str) -> Result<SecretString, String> {
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        if value.contains('\n') {
            value.to_owned()
        } else {
            value.replace("\\n", "\n")
        }
    } else {
        let path = value.trim();
        // The value is not echoed: what is taken for a path may be the key in another form
        // (base64, PEM without its header line).
        std::fs::read_to_string(path).map_err(|e| {
            format!("is neither PEM text (-----BEGIN …) nor a readable file path ({e})")
        })?
    };
    // Parse it now so a wrong key fails at start, not at the first GitHub call.
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
        "is not an RSA private key in PEM form (download it from the App's settings page)"
            .to_owned()
    })?;
    Ok(SecretString::from(pem))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use std::path::PathBuf;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_the_embedded_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 3000);
        assert!(c.webhook_secret.is_none());
        assert!(c.github_app.is_none());
        assert_eq!(c.github_api_url, "https://api.github.com");
        assert_eq!(c.store, StoreLocation::Fs(PathBuf::from("./data")));
        assert!(c.llm.is_none());
        assert_eq!(c.log_format, LogFormat::Auto);
        assert!(c.prod_allowed_users.is_empty());
        let warnings = c
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(warnings.contains("TFPILOT_WEBHOOK_SECRET is not set"));
        assert!(warnings.contains("cannot answer on GitHub"));
    }

    #[test]
    fn the_github_web_url_follows_an_enterprise_api_url_unless_set() {
        assert_eq!(config(&[]).unwrap().github_url, "https://github.com");
        let ghe = config(&[("TFPILOT_GITHUB_API_URL", "https://ghe.acme.dev/api/v3")]).unwrap();
        assert_eq!(ghe.github_url, "https://ghe.acme.dev");
        let set = config(&[
            ("TFPILOT_GITHUB_API_URL", "https://ghe.acme.dev/api/v3"),
            ("TFPILOT_GITHUB_URL", "https://web.acme.dev/"),
        ])
        .unwrap();
        assert_eq!(set.github_url, "https://web.acme.dev");
        let err = config(&[("TFPILOT_GITHUB_URL", "github.com")]).unwrap_err();
        assert_eq!(err.problems[0].variable, "TFPILOT_GITHUB_URL");
    }

    #[test]
    fn the_dashboard_switch_is_on_unless_turned_off() {
        assert!(config(&[]).unwrap().dashboard);
        assert!(!config(&[("TFPILOT_DASHBOARD", "OFF")]).unwrap().dashboard);
        assert!(config(&[("TFPILOT_DASHBOARD", "on")]).unwrap().dashboard);
        let err = config(&[("TFPILOT_DASHBOARD", "yes")]).unwrap_err();
        assert_eq!(err.problems[0].variable, "TFPILOT_DASHBOARD");
    }

    #[test]
    fn slack_webhooks_are_read_and_never_quoted_in_problems() {
        let c = config(&[
            (
                "TFPILOT_SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T1/B1/xyz",
            ),
            (
                "TFPILOT_SLACK_WEBHOOK_ROUTES",
                "prod-alerts=https://hooks.slack.com/services/T1/B2/abc,\n local=http://127.0.0.1:9/x",
            ),
            ("TFPILOT_GITHUB_URL", "https://ghe.example.com/"),
        ])
        .unwrap();
        assert!(c.slack.is_enabled());
        assert_eq!(
            c.slack.routes.keys().collect::<Vec<_>>(),
            ["local", "prod-alerts"]
        );
        assert_eq!(c.slack.github_web_url, "https://ghe.example.com");
        assert!(!format!("{:?}", c.slack).contains("xyz"), "Debug redacts");
        assert!(!config(&[]).unwrap().slack.is_enabled());
        assert_eq!(
            config(&[]).unwrap().slack.github_web_url,
            "https://github.com"
        );

        let err = config(&[
            (
                "TFPILOT_SLACK_WEBHOOK_URL",
                "http://hooks.slack.com/services/secret1",
            ),
            (
                "TFPILOT_SLACK_WEBHOOK_ROUTES",
                "off=https://hooks.slack.com/a,prod=ftp://secret2,nonsense",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("TFPILOT_SLACK_WEBHOOK_URL: must be an https URL"),
            "{err}"
        );
        assert!(err.contains("`off` is not a route name"), "{err}");
        assert!(err.contains("the URL of route `prod`"), "{err}");
        assert!(
            err.contains("must list `name=https://hooks.slack.com/…` entries"),
            "{err}"
        );
        assert!(
            !err.contains("secret1") && !err.contains("secret2"),
            "{err}"
        );
    }

    #[test]
    fn every_invalid_variable_is_named() {
        let err = config(&[
            ("PORT", "http"),
            ("TFPILOT_STORE", "ftp://x"),
            ("TFPILOT_LOG_FORMAT", "xml"),
            ("TFPILOT_GITHUB_APP_ID", "12"),
            ("TFPILOT_PROD_ALLOWED_USERS", "alice, bob smith"),
            ("TFPILOT_GITHUB_API_URL", "api.github.com"),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "PORT",
                "TFPILOT_GITHUB_PRIVATE_KEY",
                "TFPILOT_GITHUB_API_URL",
                "TFPILOT_STORE",
                "TFPILOT_PROD_ALLOWED_USERS",
                "TFPILOT_LOG_FORMAT"
            ]
        );
        let text = err.to_string();
        assert!(text.contains("PORT: must be a port number"), "{text}");
        assert!(text.contains("`bob smith` is not a GitHub login"), "{text}");
    }

    #[test]
    fn an_app_without_its_slug_is_warned_about() {
        let key = include_str!("../tests/fixtures/keys/github-app-test-key.pem");
        let app = [
            ("TFPILOT_GITHUB_APP_ID", "12"),
            ("TFPILOT_GITHUB_PRIVATE_KEY", key),
        ];
        let warnings = config(&app)
            .unwrap()
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            warnings.contains("TFPILOT_GITHUB_APP_SLUG is not set"),
            "{warnings}"
        );
        let mut with_slug = app.to_vec();
        with_slug.push(("TFPILOT_GITHUB_APP_SLUG", "acme-tfpilot"));
        let warnings = config(&with_slug)
            .unwrap()
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!warnings.contains("TFPILOT_GITHUB_APP_SLUG"), "{warnings}");
    }

    #[test]
    fn plan_masks_are_one_regex_per_line_and_checked_at_start() {
        let c = config(&[(
            "TFPILOT_PLAN_MASKS",
            "internal-[0-9]+\n\n  acct,[0-9]{12}  \n",
        )])
        .unwrap();
        assert_eq!(c.plan_masks, ["internal-[0-9]+", "acct,[0-9]{12}"]);
        assert!(config(&[]).unwrap().plan_masks.is_empty());
        let err = config(&[("TFPILOT_PLAN_MASKS", "ok\n(unclosed")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("TFPILOT_PLAN_MASKS") && text.contains("(unclosed"),
            "{text}"
        );
    }

    #[test]
    fn store_is_parsed_into_its_kind() {
        let c = config(&[("TFPILOT_STORE", "fs:///var/lib/tfpilot")]).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::Fs(PathBuf::from("/var/lib/tfpilot"))
        );
        let c = config(&[("TFPILOT_STORE", "s3://acme-tfpilot-requests")]).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::S3 {
                bucket: "acme-tfpilot-requests".into()
            }
        );
        assert_eq!(c.store.to_string(), "s3://acme-tfpilot-requests");
        // The seed system's variable alone selects S3.
        let c = config(&[("TFPILOT_REQUESTS_BUCKET", "acme-requests")]).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::S3 {
                bucket: "acme-requests".into()
            }
        );
        let err = config(&[
            ("TFPILOT_STORE", "s3://one-bucket"),
            ("TFPILOT_REQUESTS_BUCKET", "other-bucket"),
        ])
        .unwrap_err();
        assert_eq!(err.problems[0].variable, "TFPILOT_STORE");
        assert!(config(&[("TFPILOT_STORE", "s3://Bad_Bucket")]).is_err());
        assert!(config(&[("TFPILOT_STORE", "fs://")]).is_err());
    }

    #[test]
    fn login_lists_are_trimmed_and_may_use_at_signs() {
        let c = config(&[
            ("TFPILOT_PROD_ALLOWED_USERS", " alice, @bob ,,carol-x "),
            ("TFPILOT_APPROVERS", "dave"),
        ])
        .unwrap();
        assert_eq!(c.prod_allowed_users, ["alice", "bob", "carol-x"]);
        assert_eq!(c.approvers, ["dave"]);
        assert!(c.destroy_prod_allowed_users.is_empty());
    }

    #[test]
    fn llm_settings_need_the_key() {
        let c = config(&[("TFPILOT_LLM_MODEL", "m")]).unwrap();
        assert!(c.llm.is_none());
        let c = config(&[
            ("OPENAI_API_KEY", "sk-test-llm-key-123"),
            ("TFPILOT_LLM_BASE_URL", "http://127.0.0.1:9/v1/"),
        ])
        .unwrap();
        let llm = c.llm.unwrap();
        assert_eq!(llm.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(llm.model, DEFAULT_LLM_MODEL);
        assert_eq!(llm.api_key.expose_secret(), "sk-test-llm-key-123");
    }

    #[test]
    fn a_private_key_that_is_not_pem_is_refused_without_echoing_it() {
        let err = config(&[
            ("TFPILOT_GITHUB_APP_ID", "12345"),
            (
                "TFPILOT_GITHUB_PRIVATE_KEY",
                "-----BEGIN nonsense-secret-material",
            ),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("TFPILOT_GITHUB_PRIVATE_KEY"), "{text}");
        assert!(!text.contains("nonsense-secret-material"), "{text}");
        let err = config(&[
            ("TFPILOT_GITHUB_APP_ID", "12345"),
            ("TFPILOT_GITHUB_PRIVATE_KEY", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("readable file path"));
    }

    #[test]
    fn a_key_in_an_unexpected_form_is_not_echoed_as_a_file_path() {
        // Secret stores often hold the PEM base64-encoded, or only its body lines: neither
        // starts with -----BEGIN, so it is taken for a path, and the error must not print it.
        let key_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/github-app-test-key.pem"
        );
        let pem = std::fs::read_to_string(key_path).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for value in [
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pem),
            body,
        ] {
            let err = config(&[
                ("TFPILOT_GITHUB_APP_ID", "12345"),
                ("TFPILOT_GITHUB_PRIVATE_KEY", &value),
            ])
            .unwrap_err();
            let text = err.to_string();
            assert!(text.contains("TFPILOT_GITHUB_PRIVATE_KEY"), "{text}");
            assert!(!text.contains(&value[..40]), "the key is echoed: {text}");
        }
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let key_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/github-app-test-key.pem"
        );
        let pem = std::fs::read_to_string(key_path).unwrap();
        let key_body_line = pem.lines().nth(1).unwrap().to_owned();
        for key_value in [key_path.to_owned(), pem.clone(), pem.replace('\n', "\\n")] {
            let c = config(&[
                ("TFPILOT_WEBHOOK_SECRET", "whsec-very-secret-value"),
                ("TFPILOT_GITHUB_APP_ID", "424242"),
                ("TFPILOT_GITHUB_PRIVATE_KEY", &key_value),
                ("OPENAI_API_KEY", "sk-openai-secret-value"),
            ])
            .unwrap();
            let app = c.github_app.as_ref().unwrap();
            assert_eq!(app.app_id, 424242);
            assert_eq!(app.private_key_pem.expose_secret().trim(), pem.trim());
            assert_eq!(
                c.webhook_secret_bytes(),
                Some("whsec-very-secret-value".as_bytes())
            );
            for debug in [format!("{c:?}"), format!("{c:#?}")] {
                for secret in [
                    "whsec-very-secret-value",
                    "sk-openai-secret-value",
                    key_body_line.as_str(),
                    "PRIVATE KEY",
                ] {
                    assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
                }
                assert!(debug.contains("REDACTED"));
            }
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_this_machine() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:3000/api/v3",
            "http://[::1]:9/v1",
            "https://github.example.com/api/v3",
        ] {
            let c = config(&[
                ("TFPILOT_GITHUB_API_URL", url),
                ("TFPILOT_LLM_BASE_URL", url),
            ]);
            assert!(c.is_ok(), "{url}: {:?}", c.err());
        }
        for url in [
            "http://github.example.com/api/v3",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.nip.io",
        ] {
            let err = config(&[
                ("TFPILOT_GITHUB_API_URL", url),
                ("TFPILOT_LLM_BASE_URL", url),
            ])
            .unwrap_err();
            let vars: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
            assert_eq!(
                vars,
                ["TFPILOT_GITHUB_API_URL", "TFPILOT_LLM_BASE_URL"],
                "{url}"
            );
            assert!(
                err.problems[0].reason.contains("must be an https URL"),
                "{err}"
            );
        }
    }

    #[test]
    fn allow_lists_take_logins_and_account_ids() {
        let c = config(&[("TFPILOT_PROD_ALLOWED_USERS", "alice, @bob ,id:583231")]).unwrap();
        assert_eq!(c.prod_allowed_users, ["alice", "bob", "id:583231"]);
        for bad in ["id:", "id:12a", "id:-1"] {
            let err = config(&[("TFPILOT_APPROVERS", bad)]).unwrap_err();
            assert_eq!(err.problems[0].variable, "TFPILOT_APPROVERS", "{bad}");
        }
    }

    #[test]
    fn each_warning_says_which_part_it_concerns() {
        let c = config(&[]).unwrap();
        let of = |concerns: Concerns| -> Vec<String> {
            c.warnings()
                .into_iter()
                .filter(|w| w.concerns == concerns)
                .map(|w| w.text)
                .collect()
        };
        let webhook = of(Concerns::Webhook);
        assert_eq!(webhook.len(), 1);
        assert!(webhook[0].starts_with("TFPILOT_WEBHOOK_SECRET is not set"));
        let worker = of(Concerns::Worker);
        assert!(worker.iter().any(|w| w.contains("cannot answer on GitHub")));
        assert!(worker.iter().all(|w| !w.contains("TFPILOT_WEBHOOK_SECRET")));
    }
}
