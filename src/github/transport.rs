//! One way to call GitHub: every request goes through [`Transport::send`], which adds credentials,
//! counts the call (a `metrics` counter and an in-process tally), retries 5xx answers and network
//! failures with exponential backoff, waits out rate limits as GitHub's headers say, replaces a
//! refused installation token once, asks repeated reads conditionally (`If-None-Match`: a `304`
//! costs no rate limit), and gives up after a bounded time with an error naming the
//! operation. Before repeating a call that must not happen twice (a comment, a dispatch) after an
//! answer that leaves it open whether it was carried out, it looks for the call's trace. octocrab carries the bytes (base URL, TLS, timeouts, tracing spans).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{Access, AppKey, CachedToken, TokenCache, TokenScope, needs_refresh};
use super::error::{GitHubError, Result};
use crate::ids::{InstallationId, RepoName};

/// How hard to try before giving up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt after a 5xx or network failure; doubled each time.
    pub base_delay: Duration,
    /// Longest single backoff.
    pub max_delay: Duration,
    /// Total time an operation may spend waiting and retrying; a rate-limit wait that would go
    /// past it is not started.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// Calls made so far by one [`super::GitHubApp`] (all its repository clients), by operation.
/// Each HTTP attempt counts, retries and token requests included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    pub calls: BTreeMap<&'static str, u64>,
    /// Attempts that were repeated after a failure.
    pub retries: u64,
    /// Time spent waiting between attempts (backoff and rate limits).
    pub waited: Duration,
    /// Conditional reads answered `304 Not Modified` (counted in `calls` too; GitHub does not
    /// count them against the rate limit).
    pub not_modified: u64,
}

impl CallStats {
    /// All HTTP calls.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls of one operation (`"create_commit"`, …).
    pub fn get(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// The calls made since `earlier` was taken.
    pub fn since(&self, earlier: &CallStats) -> CallStats {
        CallStats {
            calls: self
                .calls
                .iter()
                .map(|(k, v)| (*k, v - earlier.calls.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            retries: self.retries - earlier.retries,
            waited: self.waited.saturating_sub(earlier.waited),
            not_modified: self.not_modified - earlier.not_modified,
        }
    }
}

/// Which credential a call carries.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// The App's JWT (only for `/app/…`).
    App,
    /// An installation token for one repository, with the access the call needs.
    Repo {
        installation: InstallationId,
        repo: RepoName,
    },
    /// A token the caller holds (an installation token for all of an installation's
    /// repositories, which only `tfpilot doctor` asks for).
    Bearer(SecretString),
    /// An installation token (for the installation of `repo`) that may read the organization's
    /// team memberships, and nothing of any repository's contents.
    Members {
        installation: InstallationId,
        repo: RepoName,
    },
    /// Nothing: pre-signed blob URLs must not receive GitHub credentials.
    None,
}

/// How far before the first attempt the trace of a call may be dated: GitHub's clock and ours
/// may disagree by this much.
pub(crate) const LANDED_LOOKBACK: Duration = Duration::from_secs(2 * 60);

/// How to tell whether a call that must not be repeated took effect although its answer was a 5xx
/// or never came: GitHub sometimes carries out a call and still answers 5xx (its edge timed out
/// first), and a blind repeat then posts a second comment or starts a second workflow run.
pub(crate) enum Landed {
    /// A comment by a bot with exactly `body` among the comments `list_uri` lists (the issue's
    /// comments since shortly before the first attempt). TfPilot's comments start with a marker
    /// naming their effect, so the same body means the same effect.
    Comment { list_uri: String, body: String },
    /// An issue opened by a bot with exactly `body` among the issues `list_uri` lists (those
    /// updated since shortly before the first attempt). TfPilot's issues start with a marker.
    Issue { list_uri: String, body: String },
    /// A run whose name contains `correlation_id`, created at or after `since`, among the runs
    /// `list_uri` lists. The correlation id must be unique to the dispatch.
    Run {
        list_uri: String,
        correlation_id: String,
        since: time::OffsetDateTime,
    },
}

/// One request. `uri` is a path (`/repos/…`, joined to the base URL) or an absolute URL.
pub(crate) struct Call {
    pub op: &'static str,
    pub what: String,
    pub method: Method,
    pub uri: String,
    pub body: Option<Value>,
    pub auth: Auth,
    /// Refuse response bodies larger than this.
    pub max_body: Option<u64>,
    /// For calls that must not be repeated blindly: how to find out whether a failed attempt
    /// took effect. When it did, its trace is returned as the answer (HTTP 200, the listed JSON).
    pub landed: Option<Landed>,
}

impl Call {
    pub fn new(
        op: &'static str,
        what: impl Into<String>,
        method: Method,
        uri: impl Into<String>,
        auth: Auth,
    ) -> Self {
        Self {
            op,
            what: what.into(),
            method,
            uri: uri.into(),
            body: None,
            auth,
            max_body: None,
            landed: None,
        }
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// `POST /app/installations/{installation}/access_tokens` with the App's JWT; `body` says
    /// which repositories and permissions the token gets.
    pub fn access_token(installation: InstallationId, what: String, body: Value) -> Self {
        Call::new(
            "installation_token",
            what,
            Method::POST,
            format!("/app/installations/{installation}/access_tokens"),
            Auth::App,
        )
        .json(body)
    }

    pub fn unless_landed(mut self, landed: Landed) -> Self {
        self.landed = Some(landed);
        self
    }
}

pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Unexpected {
            operation: what.to_owned(),
            message: format!("cannot read the {} answer: {e}", self.status.as_u16()),
        })
    }
}

pub(crate) struct Transport {
    crab: Octocrab,
    /// The REST base URL, without a trailing slash: the only place a `Link` is followed to.
    base_url: String,
    graphql_url: String,
    key: AppKey,
    tokens: TokenCache,
    policy: RetryPolicy,
    stats: Mutex<CallStats>,
    /// The last answer of repeated reads, for conditional requests.
    validators: Mutex<Validators>,
}

/// Answers to `GET` calls that carried an `ETag`, by URI, so that the next read of the same URI
/// asks `If-None-Match` and a `304 Not Modified` (which GitHub does not count against the rate
/// limit) is answered from here. Small answers only, and a bounded number of them: when full, the
/// map starts over (reads are then unconditional once).
#[derive(Default)]
struct Validators {
    by_uri: std::collections::HashMap<String, Validated>,
}

#[derive(Clone)]
struct Validated {
    etag: HeaderValue,
    headers: HeaderMap,
    body: Bytes,
}

/// Answers larger than this are not kept for conditional requests.
const MAX_VALIDATED_BODY: usize = 256 * 1024;
/// At most this many answers are kept for conditional requests.
const MAX_VALIDATED: usize = 1024;

impl Validators {
    fn get(&self, call: &Call) -> Option<Validated> {
        conditional(call).then(|| self.by_uri.get(&call.uri).cloned())?
    }

    fn keep(&mut self, call: &Call, response: &Response) {
        if !conditional(call) || response.status != StatusCode::OK {
            return;
        }
        let Some(etag) = response.headers.get(header::ETAG) else {
            return;
        };
        if response.body.len() > MAX_VALIDATED_BODY {
            self.by_uri.remove(&call.uri);
            return;
        }
        if self.by_uri.len() >= MAX_VALIDATED && !self.by_uri.contains_key(&call.uri) {
            self.by_uri.clear();
        }
        self.by_uri.insert(
            call.uri.clone(),
            Validated {
                etag: etag.clone(),
                headers: response.headers.clone(),
                body: response.body.clone(),
            },
        );
    }
}

/// Reads of one object of a repository (not lists) with an installation token are asked
/// conditionally. A list page is not: its `ETag` covers the page's items only, so an unchanged
/// first page of a list that grew would come back `304` with the old `Link` header (no next page).
fn conditional(call: &Call) -> bool {
    call.method == Method::GET
        && matches!(call.auth, Auth::Repo { .. })
        && matches!(
            call.op,
            "permission" | "get_file" | "get_pr" | "get_ref" | "get_repo" | "get_commit"
        )
}

/// What one attempt came to.
enum Attempt {
    Done(Response),
    /// Try again after `wait` (a rate limit's), or after the policy's backoff when `None`.
    Retry {
        wait: Option<Duration>,
        error: GitHubError,
        /// The call may have been carried out (a 5xx, a network failure), unlike a rate limit.
        ambiguous: bool,
    },
    RefreshToken(GitHubError),
    Fail(GitHubError),
}

impl Transport {
    pub fn new(key: AppKey, base_url: &str, policy: RetryPolicy) -> Result<Self> {
        let trimmed = base_url.trim_end_matches('/');
        let parsed: http::Uri = trimmed
            .parse()
            .map_err(|_| GitHubError::InvalidBaseUrl(base_url.to_owned()))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(GitHubError::InvalidBaseUrl(base_url.to_owned()));
        }
        // GitHub Enterprise Server serves REST under /api/v3 and GraphQL at /api/graphql.
        let graphql_url = match trimmed.strip_suffix("/api/v3") {
            Some(root) => format!("{root}/api/graphql"),
            None => format!("{trimmed}/graphql"),
        };
        let crab = Octocrab::builder()
            .base_uri(trimmed)
            .map_err(|_| GitHubError::InvalidBaseUrl(base_url.to_owned()))?
            // Retries are ours (one policy, counted, bounded); octocrab's would hide attempts.
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .set_write_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| GitHubError::InvalidBaseUrl(format!("{base_url} ({e})")))?;
        Ok(Self {
            crab,
            base_url: trimmed.to_owned(),
            graphql_url,
            key,
            tokens: TokenCache::default(),
            policy,
            stats: Mutex::new(CallStats::default()),
            validators: Mutex::new(Validators::default()),
        })
    }

    pub fn graphql_url(&self) -> &str {
        &self.graphql_url
    }

    /// The next page of a list answer, from its `Link` header (`rel="next"`), as a URI relative
    /// to the base URL like every call's; `None` on the last page, or when the link leads
    /// anywhere but this GitHub (the installation token goes nowhere else).
    pub fn next_page(&self, response: &Response) -> Option<String> {
        next_link(&response.headers, &self.base_url)
    }

    pub fn stats(&self) -> CallStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn count(&self, op: &'static str, retry: bool, waited: Duration) {
        metrics::counter!(super::API_CALLS_METRIC, "operation" => op).increment(1);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        *stats.calls.entry(op).or_default() += 1;
        if retry {
            stats.retries += 1;
        }
        stats.waited += waited;
    }

    /// A valid installation token for `scope`, from the cache or freshly requested: it names the
    /// one repository and only the permissions of its access.
    pub(crate) async fn installation_token(&self, scope: &TokenScope) -> Result<SecretString> {
        let mut cache = self.tokens.tokens.lock().await;
        if let Some(cached) = cache.get(scope)
            && !needs_refresh(cached.expires_at, SystemTime::now())
        {
            return Ok(cached.token.clone());
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: String,
            expires_at: String,
        }
        let installation = scope.installation;
        let what = format!(
            "request an installation token for {} in installation {installation}",
            scope.repo
        );
        let call = Call::access_token(
            installation,
            what.clone(),
            serde_json::json!({
                "repositories": [scope.repo],
                "permissions": scope.access.permissions(),
            }),
        );
        // `send` with `Auth::App` never asks for an installation token, so this does not recurse.
        let answer: TokenAnswer = Box::pin(self.send(call)).await?.json(&what)?;
        let expires_at = time::OffsetDateTime::parse(
            &answer.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| UNIX_EPOCH + Duration::from_secs(t.unix_timestamp().max(0) as u64))
        .map_err(|e| GitHubError::Unexpected {
            operation: what,
            message: format!("expires_at is not a timestamp: {e}"),
        })?;
        let token = SecretString::from(answer.token);
        cache.insert(
            scope.clone(),
            CachedToken {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// Drops the cached token if it is still `refused`: a caller that was refused the old token
    /// must not throw away the new one another caller fetched meanwhile.
    async fn forget_token(&self, scope: &TokenScope, refused: &SecretString) {
        let mut cache = self.tokens.tokens.lock().await;
        if cache
            .get(scope)
            .is_some_and(|cached| cached.token.expose_secret() == refused.expose_secret())
        {
            cache.remove(scope);
        }
    }

    /// Sends a call under the retry policy. 2xx and 3xx answers are returned; everything else
    /// becomes a [`GitHubError`].
    pub async fn send(&self, call: Call) -> Result<Response> {
        let started = tokio::time::Instant::now();
        let mut attempts = 0u32;
        let mut refreshed = false;
        let mut last_wait = Duration::ZERO;
        let scope = match &call.auth {
            Auth::Repo { installation, repo } => Some(TokenScope {
                installation: *installation,
                repo: repo.name().to_owned(),
                access: Access::of(&call.method),
            }),
            Auth::Members { installation, repo } => Some(TokenScope {
                installation: *installation,
                repo: repo.name().to_owned(),
                access: Access::Members,
            }),
            Auth::App | Auth::Bearer(_) | Auth::None => None,
        };
        loop {
            attempts += 1;
            self.count(call.op, attempts > 1, last_wait);
            let credential = match (&call.auth, &scope) {
                (Auth::App, _) => Some(self.key.jwt()?),
                (Auth::Bearer(token), _) => Some(token.clone()),
                (_, Some(scope)) => Some(self.installation_token(scope).await?),
                _ => None,
            };
            let outcome = self.attempt(&call, credential.as_ref()).await;
            let (wait, error, ambiguous) = match outcome {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fail(error) => return Err(error),
                Attempt::RefreshToken(error) => match &scope {
                    Some(scope) if !refreshed => {
                        tracing::info!(
                            operation = call.op,
                            "installation token refused; fetching a new one"
                        );
                        refreshed = true;
                        if let Some(refused) = &credential {
                            self.forget_token(scope, refused).await;
                        }
                        last_wait = Duration::ZERO;
                        continue;
                    }
                    _ => return Err(error),
                },
                Attempt::Retry {
                    wait,
                    error,
                    ambiguous,
                } => (
                    wait.unwrap_or_else(|| backoff(&self.policy, attempts)),
                    error,
                    ambiguous,
                ),
            };
            let elapsed = started.elapsed();
            if attempts >= self.policy.max_attempts || elapsed + wait > self.policy.max_elapsed {
                return Err(match error {
                    GitHubError::Transient {
                        operation, message, ..
                    } => GitHubError::Transient {
                        operation,
                        attempts,
                        message,
                    },
                    other => other,
                });
            }
            tracing::warn!(
                operation = call.op,
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "GitHub call failed; retrying"
            );
            tokio::time::sleep(wait).await;
            last_wait = wait;
            if ambiguous && let Some(landed) = &call.landed {
                match Box::pin(self.find_landed(&call, landed)).await {
                    Ok(Some(trace)) => {
                        tracing::info!(
                            operation = call.op,
                            "the failed call took effect after all; not repeating it"
                        );
                        return Ok(trace);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        operation = call.op,
                        error = %e,
                        "could not check whether the failed call took effect; repeating it"
                    ),
                }
            }
        }
    }

    /// The trace of `call` on GitHub, if a failed attempt of it took effect.
    async fn find_landed(&self, call: &Call, landed: &Landed) -> Result<Option<Response>> {
        let (op, list_uri) = match landed {
            Landed::Comment { list_uri, .. } => ("find_comment", list_uri),
            Landed::Issue { list_uri, .. } => ("find_issue", list_uri),
            Landed::Run { list_uri, .. } => ("find_run", list_uri),
        };
        let what = format!("check whether \"{}\" took effect", call.what);
        let check = Call::new(
            op,
            what.clone(),
            Method::GET,
            list_uri.clone(),
            call.auth.clone(),
        );
        let listed: Value = self.send(check).await?.json(&what)?;
        let found = match landed {
            Landed::Comment { body, .. } => listed.as_array().and_then(|comments| {
                comments
                    .iter()
                    .rev()
                    .find(|c| {
                        c["body"].as_str() == Some(body.as_str())
                            && c["user"]["type"].as_str() == Some("Bot")
                    })
                    .cloned()
            }),
            Landed::Issue { body, .. } => listed.as_array().and_then(|issues| {
                issues
                    .iter()
                    .find(|i| {
                        i["body"].as_str() == Some(body.as_str())
                            && i["user"]["type"].as_str() == Some("Bot")
                            && i.get("pull_request").is_none()
                    })
                    .cloned()
            }),
            Landed::Run {
                correlation_id,
                since,
                ..
            } => listed["workflow_runs"].as_array().and_then(|runs| {
                runs.iter()
                    .find(|r| {
                        let named = [&r["display_title"], &r["name"]]
                            .iter()
                            .any(|t| t.as_str().is_some_and(|t| t.contains(correlation_id)));
                        let recent = r["created_at"]
                            .as_str()
                            .and_then(|t| {
                                time::OffsetDateTime::parse(
                                    t,
                                    &time::format_description::well_known::Rfc3339,
                                )
                                .ok()
                            })
                            .is_some_and(|t| t >= *since);
                        named && recent
                    })
                    .map(|r| {
                        serde_json::json!({
                            "workflow_run_id": r["id"],
                            "html_url": r["html_url"],
                            "correlated": true,
                        })
                    })
            }),
        };
        Ok(found.map(|trace| Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(trace.to_string()),
        }))
    }

    async fn attempt(&self, call: &Call, credential: Option<&SecretString>) -> Attempt {
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(call.uri.as_str())
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header(header::USER_AGENT, "tfpilot");
        let validated = self
            .validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(call);
        if let Some(v) = &validated {
            builder = builder.header(header::IF_NONE_MATCH, v.etag.clone());
        }
        if let Some(credential) = credential {
            match HeaderValue::from_str(&format!("Bearer {}", credential.expose_secret())) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    builder = builder.header(header::AUTHORIZATION, value);
                }
                Err(_) => {
                    return Attempt::Fail(GitHubError::Unexpected {
                        operation: call.what.clone(),
                        message: "the credential is not a valid header value".into(),
                    });
                }
            }
        }
        let request = match self.crab.build_request(builder, call.body.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Fail(GitHubError::Unexpected {
                    operation: call.what.clone(),
                    message: format!("cannot build the request: {e}"),
                });
            }
        };
        let response = match self.crab.execute(request).await {
            Ok(r) => r,
            Err(e) => return self.network_failure(call, &e.to_string()),
        };
        let (parts, body) = response.into_parts();
        let body = match read_capped(body, call.max_body).await {
            Ok(b) => b,
            Err(ReadError::TooLarge(limit)) => {
                return Attempt::Fail(GitHubError::TooLarge {
                    operation: call.what.clone(),
                    limit,
                });
            }
            Err(ReadError::Body(e)) => return self.network_failure(call, &e),
        };
        tracing::debug!(
            operation = call.op,
            status = parts.status.as_u16(),
            "GitHub answered"
        );
        if parts.status == StatusCode::NOT_MODIFIED
            && let Some(v) = validated
        {
            self.stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .not_modified += 1;
            return Attempt::Done(Response {
                status: StatusCode::OK,
                headers: v.headers,
                body: v.body,
            });
        }
        let response = Response {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        self.validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep(call, &response);
        classify(call, response, SystemTime::now())
    }

    fn network_failure(&self, call: &Call, error: &str) -> Attempt {
        Attempt::Retry {
            wait: None,
            ambiguous: true,
            error: GitHubError::Transient {
                operation: call.what.clone(),
                attempts: 0,
                message: format!("network error: {error}"),
            },
        }
    }
}

enum ReadError {
    TooLarge(u64),
    Body(String),
}

async fn read_capped(
    mut body: http_body_util::combinators::BoxBody<Bytes, octocrab::Error>,
    cap: Option<u64>,
) -> std::result::Result<Bytes, ReadError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if let Some(cap) = cap
                && buf.len() as u64 > cap
            {
                return Err(ReadError::TooLarge(cap));
            }
        }
    }
    Ok(buf.freeze())
}

/// GitHub's `message` field, or the start of the body.
pub(crate) fn github_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        errors: Option<Vec<Value>>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(m),
            errors,
        }) => {
            let details: Vec<String> = errors
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str).map(str::to_owned))
                .collect();
            if details.is_empty() {
                m
            } else {
                format!("{m}: {}", details.join("; "))
            }
        }
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// The `rel="next"` target of a `Link` header (RFC 8288, as GitHub sends it:
/// `<url>; rel="next", <url>; rel="last"`), relative to `base_url`, when it lies under it.
pub(crate) fn next_link(headers: &HeaderMap, base_url: &str) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let next = link.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })?;
    let rest = next.strip_prefix(base_url)?;
    rest.starts_with('/').then(|| rest.to_owned())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long GitHub asks us to wait, if the answer is a rate limit. Secondary limits send
/// `retry-after`; primary limits send `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (epoch
/// seconds); a limit without either header means "wait at least a minute".
pub(crate) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = header_u64(headers, "retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(now + 60);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || message.to_ascii_lowercase().contains("rate limit")
    {
        return Some(Duration::from_secs(60));
    }
    None
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let capped = exp.min(policy.max_delay);
    // Up to 25% jitter so that many workers retrying at once do not stay in step.
    let jitter = capped.mul_f64(rand::random::<f64>() * 0.25);
    capped + jitter
}

fn classify(call: &Call, response: Response, now: SystemTime) -> Attempt {
    let status = response.status;
    if status.is_success() || status.is_redirection() {
        return Attempt::Done(response);
    }
    let message = github_message(&response.body);
    let operation = call.what.clone();
    if let Some(wait) = rate_limit_wait(status, &response.headers, &message, now) {
        return Attempt::Retry {
            wait: Some(wait),
            ambiguous: false,
            error: GitHubError::RateLimited {
                operation,
                retry_after: Some(wait),
                message,
            },
        };
    }
    if status.is_server_error() {
        // `attempts` is filled in by `send`, which knows it.
        return Attempt::Retry {
            wait: None,
            ambiguous: true,
            error: GitHubError::Transient {
                operation,
                attempts: 0,
                message: format!("HTTP {}: {message}", status.as_u16()),
            },
        };
    }
    let error = match status {
        StatusCode::UNAUTHORIZED => {
            return Attempt::RefreshToken(GitHubError::Unauthorized { operation, message });
        }
        StatusCode::NOT_FOUND | StatusCode::GONE => GitHubError::NotFound { operation, message },
        StatusCode::FORBIDDEN => GitHubError::PermissionDenied { operation, message },
        StatusCode::CONFLICT | StatusCode::METHOD_NOT_ALLOWED => {
            GitHubError::Conflict { operation, message }
        }
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            GitHubError::Validation { operation, message }
        }
        other => GitHubError::Unexpected {
            operation,
            message: format!("HTTP {}: {message}", other.as_u16()),
        },
    };
    Attempt::Fail(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_next_page_is_the_link_headers_next_under_the_base_url_only() {
        let base = "https://api.github.com";
        let link = headers(&[(
            "link",
            "<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=3>; rel=\"prev\", \
             <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=5>; rel=\"next\", \
             <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=9>; rel=\"last\"",
        )]);
        assert_eq!(
            next_link(&link, base).as_deref(),
            Some("/repositories/1/issues/7/comments?per_page=100&page=5")
        );
        let last_page = headers(&[(
            "link",
            "<https://api.github.com/x?page=1>; rel=\"first\", <https://api.github.com/x?page=8>; rel=\"prev\"",
        )]);
        assert_eq!(next_link(&last_page, base), None);
        assert_eq!(next_link(&HeaderMap::new(), base), None);
        let elsewhere = headers(&[("link", "<https://evil.example/x?page=2>; rel=\"next\"")]);
        assert_eq!(next_link(&elsewhere, base), None);
        let sibling = headers(&[(
            "link",
            "<https://api.github.com.evil.example/x>; rel=\"next\"",
        )]);
        assert_eq!(next_link(&sibling, base), None);
        let ghes = headers(&[(
            "link",
            "<https://ghe.example/api/v3/repos/a/b/issues/1/comments?page=2>; rel=\"next\"",
        )]);
        assert_eq!(
            next_link(&ghes, "https://ghe.example/api/v3").as_deref(),
            Some("/repos/a/b/issues/1/comments?page=2")
        );
    }

    #[test]
    fn rate_limit_waits_follow_githubs_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let secondary = headers(&[("retry-after", "7")]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &secondary, "", now),
            Some(Duration::from_secs(7))
        );
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &primary, "", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit",
                now
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "", now),
            Some(Duration::from_secs(60))
        );
        // A plain 403 is a permission problem, not a reason to wait.
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers(&[("x-ratelimit-remaining", "4999")]),
                "Resource not accessible by integration",
                now
            ),
            None
        );
        assert_eq!(
            rate_limit_wait(StatusCode::NOT_FOUND, &secondary, "", now),
            None
        );
    }

    #[tokio::test]
    async fn every_call_is_counted_as_a_metric_and_in_the_stats() {
        let key = AppKey::new(1, tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.as_bytes()).unwrap();
        let transport = Transport::new(key, "http://127.0.0.1:9", RetryPolicy::default()).unwrap();
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            transport.count("comment", false, Duration::ZERO);
            transport.count("comment", true, Duration::from_secs(2));
            transport.count("create_commit", false, Duration::ZERO);
        });
        let rendered = handle.render();
        assert!(
            rendered.contains(r#"tfpilot_github_api_calls_total{operation="comment"} 2"#),
            "{rendered}"
        );
        assert!(
            rendered.contains(r#"tfpilot_github_api_calls_total{operation="create_commit"} 1"#),
            "{rendered}"
        );
        let stats = transport.stats();
        assert_eq!(
            (stats.total(), stats.get("comment"), stats.retries),
            (3, 2, 1)
        );
        assert_eq!(stats.waited, Duration::from_secs(2));
    }

    #[test]
    fn the_graphql_endpoint_follows_the_rest_base() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let key = || AppKey::new(1, tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.as_bytes()).unwrap();
        let dotcom =
            Transport::new(key(), "https://api.github.com/", RetryPolicy::default()).unwrap();
        assert_eq!(dotcom.graphql_url(), "https://api.github.com/graphql");
        let ghes = Transport::new(
            key(),
            "https://ghe.acme.test/api/v3",
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(ghes.graphql_url(), "https://ghe.acme.test/api/graphql");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        let first = backoff(&policy, 1);
        assert!(first >= policy.base_delay && first <= policy.base_delay.mul_f64(1.25));
        let third = backoff(&policy, 3);
        assert!(third >= policy.base_delay * 4);
        let late = backoff(&policy, 30);
        assert!(late <= policy.max_delay.mul_f64(1.25));
    }

    #[test]
    fn github_messages_include_field_errors() {
        let body = br#"{"message":"Validation Failed","errors":[{"message":"body is too long (maximum is 65536 characters)"}]}"#;
        assert_eq!(
            github_message(body),
            "Validation Failed: body is too long (maximum is 65536 characters)"
        );
        assert_eq!(
            github_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }
}
