//! The REST routes (and `/graphql`) the simulator answers. One middleware counts every call under
//! its route template, answers injected faults, checks credentials (an App JWT for `/app/…`, a live
//! installation token covering the repository for `/repos/…`) and adds GitHub's rate-limit headers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{ApiError, Model, Pull, blob_sha, check_comment_body};
use crate::respond::{add_rate_limit_headers, api_error, github_json};
use crate::{Fault, Shared, apps, auth, graphql, payloads, webhooks, workflows};

type St = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(create_token),
        )
        .route("/app", get(apps::get_app))
        .route("/app/installations", get(apps::list_installations))
        .route(
            "/installation/repositories",
            get(apps::installation_repositories),
        )
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/contents/{*path}", get(get_contents))
        .route("/repos/{owner}/{repo}/git/ref/{*git_ref}", get(get_ref))
        .route(
            "/repos/{owner}/{repo}/commits/{*commit_ref}",
            get(get_commit),
        )
        .route("/repos/{owner}/{repo}/git/refs", post(create_ref))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(get_pull).patch(update_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/merge",
            put(merge_pull),
        )
        .route(
            "/repos/{owner}/{repo}/issues",
            get(list_issues).post(create_issue),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}",
            get(get_issue).patch(update_issue),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            post(create_comment).get(list_comments),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            patch(edit_comment).get(get_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            post(create_reaction),
        )
        .route(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            get(get_permission),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
            post(dispatch),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
            get(list_runs),
        )
        .route("/repos/{owner}/{repo}/actions/runs/{run_id}", get(get_run))
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
            get(list_artifacts),
        )
        .route(
            "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip",
            get(download_artifact),
        )
        .route(
            "/repos/{owner}/{repo}/check-runs",
            post(crate::checks::create_check_run),
        )
        .route(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            patch(crate::checks::update_check_run),
        )
        .route(
            "/orgs/{org}/teams/{team_slug}/memberships/{username}",
            get(crate::checks::team_membership),
        )
        .route(
            "/orgs/{org}/teams/{team_slug}",
            get(crate::checks::get_team),
        )
        .route("/users/{username}", get(crate::checks::get_user))
        .route("/_blobs/artifacts/{artifact_id}", get(artifact_blob))
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    routes
        .route("/graphql", post(graphql_endpoint))
        .route("/app-manifests/{code}/conversions", post(apps::convert))
        // GitHub's web side (github.com), where the manifest form posts.
        .route("/settings/apps/new", post(apps::new_user_app))
        .route(
            "/organizations/{org}/settings/apps/new",
            post(apps::new_org_app),
        )
        .fallback(|| async { api_error(ApiError::not_found()) })
        .with_state(shared)
}

fn fault_response(fault: &Fault, installation: Option<u64>) -> Response {
    match fault {
        Fault::ServerError(code) | Fault::ServerErrorAfterWrite(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
            github_json(status, json!({ "message": "Server Error" }))
        }
        Fault::SecondaryRateLimit { retry_after_secs } => {
            let mut resp = github_json(
                StatusCode::FORBIDDEN,
                json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID SIM:0000:0000.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                    "status": "403",
                }),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::PrimaryRateLimit { reset_in_secs } => {
            let reset = time::OffsetDateTime::now_utc().unix_timestamp() + *reset_in_secs as i64;
            let mut resp = (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "message": format!("API rate limit exceeded for installation ID {}.", installation.unwrap_or_default()),
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    "status": "403",
                })),
            )
                .into_response();
            let h = resp.headers_mut();
            h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            h.insert("x-ratelimit-used", HeaderValue::from_static("5000"));
            h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
                h.insert("x-ratelimit-reset", v);
            }
            resp
        }
        Fault::Unauthorized => api_error(ApiError::new(401, "Bad credentials")),
        Fault::Timeout { .. } | Fault::ConnectionReset => cut_response(),
        Fault::GraphQlRefused { kind, message } => {
            let mut error = json!({ "message": message });
            if let Some(kind) = kind {
                error["type"] = json!(kind);
            }
            github_json(StatusCode::OK, json!({ "data": null, "errors": [error] }))
        }
    }
}

/// An answer cut short: it promises more bytes than it sends, so the server closes the
/// connection mid-body and the client sees the connection lost (it cannot know what happened).
fn cut_response() -> Response {
    let mut resp = (StatusCode::OK, "{\"cut\":").into_response();
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
    resp
}

/// The answer of a fault after the call was carried out (a timeout first waits).
async fn late_fault_response(fault: &Fault, installation: Option<u64>) -> Response {
    if let Fault::Timeout { hold_ms } = fault {
        tokio::time::sleep(std::time::Duration::from_millis(*hold_ms)).await;
    }
    fault_response(fault, installation)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn gate(
    State(shared): St,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let template = matched
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or("?")
        .to_owned();
    let key = format!("{} {template}", req.method());
    let after_write;
    {
        let mut model = shared.lock();
        let (fault, late) = split_fault(model.record_call(&key));
        after_write = late;
        if template == "/app" || template.starts_with("/app/") {
            if let Some(fault) = fault {
                return fault_response(&fault, None);
            }
            let jwt = auth::bearer(authorization(req.headers())).unwrap_or_default();
            if let Err(e) = auth::verify_app_jwt(&shared.public_key, model.app_id, jwt) {
                return api_error(e);
            }
        } else if template.starts_with("/repos/") {
            let grant = auth::grant_of(&model, auth::bearer(authorization(req.headers())));
            if let Some(fault) = fault {
                return fault_response(&fault, grant.as_ref().ok().map(|g| g.installation));
            }
            let grant = match grant {
                Ok(g) => g,
                Err(e) => return api_error(e),
            };
            let mut parts = req.uri().path().trim_start_matches('/').split('/').skip(1);
            let full = format!(
                "{}/{}",
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default()
            );
            let needs = auth::permission_for(req.method().as_str(), &template);
            if let Err(e) = auth::check_grant(&model, &grant, &full, needs) {
                return api_error(e);
            }
        } else if template.starts_with("/orgs/") {
            // An organization's teams: an installation token of that organization holding
            // `members` (GitHub answers 404 to anyone else).
            let grant = auth::grant_of(&model, auth::bearer(authorization(req.headers())));
            if let Some(fault) = fault {
                return fault_response(&fault, grant.as_ref().ok().map(|g| g.installation));
            }
            let grant = match grant {
                Ok(g) => g,
                Err(e) => return api_error(e),
            };
            let org = req.uri().path().split('/').nth(2).unwrap_or_default();
            let owner = model.installations.get(&grant.installation);
            let holds = grant
                .permissions
                .as_ref()
                .is_none_or(|p| p.contains_key("members"));
            if !owner.is_some_and(|o| o.eq_ignore_ascii_case(org)) {
                return api_error(ApiError::not_found());
            }
            if !holds {
                return api_error(ApiError::new(403, "Resource not accessible by integration"));
            }
        } else if let Some(fault) = fault {
            return fault_response(&fault, None);
        }
    }
    let conditional = (req.method() == axum::http::Method::GET && template.starts_with("/repos/"))
        .then(|| req.headers().get(header::IF_NONE_MATCH).cloned());
    let mut resp = next.run(req).await;
    if let Some(fault) = after_write {
        return late_fault_response(&fault, None).await;
    }
    if let Some(if_none_match) = conditional
        && resp.status() == StatusCode::OK
    {
        resp = with_etag(&shared, &key, resp, if_none_match).await;
    }
    add_rate_limit_headers(resp.headers_mut());
    resp
}

/// GitHub's conditional requests: a `GET` answer carries an `ETag` (here a digest of the body,
/// so any change of what is read changes it); asked again with `If-None-Match` naming it, the
/// answer is `304 Not Modified` without a body, which does not count against the rate limit
/// (the call is then counted apart, see [`crate::Sim::not_modified`]).
async fn with_etag(
    shared: &Shared,
    key: &str,
    resp: Response,
    if_none_match: Option<HeaderValue>,
) -> Response {
    use sha2::Digest;
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return api_error(ApiError::new(500, "cannot read the answer"));
    };
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{hex}\"");
    let Ok(etag_value) = HeaderValue::from_str(&etag) else {
        return api_error(ApiError::new(500, "cannot write the ETag"));
    };
    let matches = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if matches {
        shared.lock().record_not_modified(key);
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(header::ETAG, etag_value);
        return resp;
    }
    parts.headers.insert(header::ETAG, etag_value);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Faults answered instead of the call, and faults answered after doing it.
fn split_fault(fault: Option<Fault>) -> (Option<Fault>, Option<Fault>) {
    match fault {
        Some(f @ (Fault::ServerErrorAfterWrite(_) | Fault::Timeout { .. })) => (None, Some(f)),
        other => (other, None),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, format!("Problems parsing JSON: {e}")))
}

/// A `since` query parameter (ISO 8601), refused with GitHub's 422 when it is not one.
fn parse_since(since: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    since
        .map(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| ApiError::new(422, "Validation Failed: since is not an ISO 8601 timestamp"))
}

fn full(owner: &str, repo: &str) -> String {
    format!("{owner}/{repo}")
}

/// GitHub's paging parameters of list endpoints.
#[derive(Deserialize, Default)]
struct PageQuery {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// At most this many items a page, whatever `per_page` asks (GitHub's limit).
const MAX_PER_PAGE: usize = 100;

/// One page of `items` as GitHub pages a list: `per_page` items (30 unless asked, at most 100)
/// from `page` (counted from 1), and the `Link` header naming the previous, next, last and
/// first pages (`prev`/`first` only after the first page, `next`/`last` only before the last),
/// each URL keeping the request's other query parameters (`query`).
fn paginate<T>(
    items: Vec<T>,
    paging: &PageQuery,
    url: &str,
    query: &[(&str, String)],
) -> (Vec<T>, Option<HeaderValue>) {
    let per_page = paging.per_page.unwrap_or(30).clamp(1, MAX_PER_PAGE);
    let page = paging.page.unwrap_or(1).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let link_to = |n: usize| {
        let mut u = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(_) => return String::new(),
        };
        {
            let mut pairs = u.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("per_page", &per_page.to_string());
            pairs.append_pair("page", &n.to_string());
        }
        u.to_string()
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    }
    let header = (!links.is_empty())
        .then(|| HeaderValue::from_str(&links.join(", ")).ok())
        .flatten();
    let list = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    (list, header)
}

/// A list endpoint's answer: the page and its `Link` header.
fn github_page(body: Value, link: Option<HeaderValue>) -> Response {
    let mut resp = github_json(StatusCode::OK, body);
    if let Some(link) = link {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp
}

/// A comment's `body` as GitHub requires it in a create or edit: present and a string (then
/// [`check_comment_body`]), else 422 with GitHub's words.
fn comment_body(body: &Bytes) -> Result<String, ApiError> {
    let input: Value = parse_body(body)?;
    match input.get("body") {
        None => Err(ApiError::new(
            422,
            "Invalid request.\n\n\"body\" wasn't supplied.",
        )),
        Some(Value::String(text)) => {
            check_comment_body(text)?;
            Ok(text.clone())
        }
        Some(Value::Null) => Err(ApiError::new(
            422,
            "Invalid request.\n\nFor 'properties/body', nil is not a string.",
        )),
        Some(other) => Err(ApiError::new(
            422,
            format!("Invalid request.\n\nFor 'properties/body', {other} is not a string."),
        )),
    }
}

// ---- App auth -------------------------------------------------------------------------------

async fn create_token(
    State(shared): St,
    Path(installation_id): Path<u64>,
    body: Bytes,
) -> Response {
    let request: auth::TokenRequest = if body.is_empty() {
        auth::TokenRequest::default()
    } else {
        match parse_body(&body) {
            Ok(r) => r,
            Err(e) => return api_error(e),
        }
    };
    let permissions = request.permissions.clone().unwrap_or_else(|| {
        crate::model::APP_PERMISSIONS
            .iter()
            .map(|(n, l)| ((*n).to_owned(), (*l).to_owned()))
            .collect()
    });
    let selection = if request.repositories.is_some() {
        "selected"
    } else {
        "all"
    };
    let mut model = shared.lock();
    match auth::issue_token(&mut model, installation_id, request) {
        Ok((token, expires_at)) => github_json(
            StatusCode::CREATED,
            json!({
                "token": token,
                "expires_at": payloads::timestamp(expires_at),
                "permissions": permissions,
                "repository_selection": selection,
            }),
        ),
        Err(e) => api_error(e),
    }
}

// ---- Repository contents and refs -------------------------------------------------------------

async fn get_repo(State(shared): St, Path((owner, repo)): Path<(String, String)>) -> Response {
    let model = shared.lock();
    match model.repo(&full(&owner, &repo)) {
        Ok(r) => github_json(StatusCode::OK, payloads::repository(&model, r)),
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct RefQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

async fn get_contents(
    State(shared): St,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(q): Query<RefQuery>,
) -> Response {
    let model = shared.lock();
    let name = full(&owner, &repo);
    let result = (|| {
        let r = model.repo(&name)?;
        let git_ref = q
            .git_ref
            .clone()
            .unwrap_or_else(|| r.default_branch.clone());
        let sha = model
            .resolve_ref(&name, &git_ref)
            .map_err(|_| ApiError::new(404, format!("No commit found for the ref {git_ref}")))?;
        let tree = model.tree_at(&sha);
        let path = path.trim_end_matches('/');
        let api = &model.base_url;
        if let Some(content) = tree.get(path) {
            let blob_sha = blob_sha(content);
            let encoded = base64::engine::general_purpose::STANDARD.encode(content.as_bytes());
            // GitHub wraps the Base64 at 60 columns.
            let wrapped: Vec<&str> = encoded
                .as_bytes()
                .chunks(60)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            return Ok(json!({
                "type": "file",
                "encoding": "base64",
                "size": content.len(),
                "name": path.rsplit('/').next().unwrap_or(path),
                "path": path,
                "content": wrapped.join("\n") + "\n",
                "sha": blob_sha,
                "url": format!("{api}/repos/{name}/contents/{path}?ref={git_ref}"),
                "git_url": format!("{api}/repos/{name}/git/blobs/{blob_sha}"),
                "html_url": format!("{api}/{name}/blob/{git_ref}/{path}"),
                "download_url": null,
            }));
        }
        let prefix = format!("{path}/");
        let mut entries: BTreeMap<String, Value> = BTreeMap::new();
        for (p, content) in tree.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            let rest = &p[prefix.len()..];
            let (entry, kind) = match rest.split_once('/') {
                Some((dir, _)) => (dir, "dir"),
                None => (rest, "file"),
            };
            entries.entry(entry.to_owned()).or_insert_with(|| {
                json!({ "type": kind, "name": entry, "path": format!("{prefix}{entry}"), "sha": blob_sha(content), "size": if kind == "file" { content.len() } else { 0 } })
            });
        }
        if entries.is_empty() {
            return Err(ApiError::not_found());
        }
        Ok(Value::Array(entries.into_values().collect()))
    })();
    match result {
        Ok(v) => github_json(StatusCode::OK, v),
        Err(e) => api_error(e),
    }
}

fn ref_json(model: &Model, name: &str, git_ref: &str, sha: &str) -> Value {
    let api = &model.base_url;
    json!({
        "ref": git_ref,
        "node_id": crate::model::node_id("REF_kwDO", sha.len() as u64),
        "url": format!("{api}/repos/{name}/git/{git_ref}"),
        "object": { "sha": sha, "type": "commit", "url": format!("{api}/repos/{name}/git/commits/{sha}") },
    })
}

async fn get_ref(
    State(shared): St,
    Path((owner, repo, git_ref)): Path<(String, String, String)>,
) -> Response {
    let model = shared.lock();
    let name = full(&owner, &repo);
    let Some(branch) = git_ref.strip_prefix("heads/") else {
        return api_error(ApiError::not_found());
    };
    match model.repo(&name).ok().and_then(|r| r.branches.get(branch)) {
        Some(sha) => github_json(
            StatusCode::OK,
            ref_json(&model, &name, &format!("refs/{git_ref}"), sha),
        ),
        None => api_error(ApiError::not_found()),
    }
}

/// `GET /repos/{owner}/{repo}/commits/{ref}`: a commit by sha or branch, with its message,
/// author and committer (as git records them and as the users GitHub links them to), its
/// signature verification, its parents and the files it changed against its first parent.
async fn get_commit(
    State(shared): St,
    Path((owner, repo, commit_ref)): Path<(String, String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let model = shared.lock();
    let name = full(&owner, &repo);
    if let Some(git_ref) = commit_ref.strip_suffix("/check-runs") {
        return crate::checks::list_for_ref(&model, &name, git_ref, &query.unwrap_or_default());
    }
    let Ok(sha) = model.resolve_ref(&name, &commit_ref) else {
        return api_error(ApiError::new(
            422,
            format!("No commit found for SHA: {commit_ref}"),
        ));
    };
    let Some(c) = model.commits.get(&sha) else {
        return api_error(ApiError::not_found());
    };
    let api = &model.base_url;
    let person = |login: &str| {
        json!({
            "name": login,
            "email": format!("{login}@users.noreply.github.com"),
            "date": payloads::timestamp(c.created_at),
        })
    };
    let before = c
        .parents
        .first()
        .map(|p| model.tree_at(p))
        .unwrap_or_default();
    let mut files = Vec::new();
    for (path, content) in &c.tree {
        let status = match before.get(path) {
            None => "added",
            Some(old) if old != content => "modified",
            Some(_) => continue,
        };
        files.push(json!({ "filename": path, "status": status }));
    }
    for path in before.keys().filter(|p| !c.tree.contains_key(*p)) {
        files.push(json!({ "filename": path, "status": "removed" }));
    }
    let verification = if c.verified {
        json!({ "verified": true, "reason": "valid", "signature": "-----BEGIN PGP SIGNATURE-----", "payload": c.message, "verified_at": payloads::timestamp(c.created_at) })
    } else {
        json!({ "verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null })
    };
    github_json(
        StatusCode::OK,
        json!({
            "sha": c.sha,
            "node_id": crate::model::node_id("C_kwDO", c.sha.len() as u64),
            "url": format!("{api}/repos/{name}/commits/{}", c.sha),
            "html_url": format!("{api}/{name}/commit/{}", c.sha),
            "commit": {
                "message": c.message,
                "author": person(&c.author),
                "committer": person(&c.committer),
                "tree": { "sha": c.sha, "url": format!("{api}/repos/{name}/git/trees/{}", c.sha) },
                "verification": verification,
            },
            "author": payloads::user(&model, &c.author),
            "committer": payloads::user(&model, &c.committer),
            "parents": c.parents.iter().map(|p| json!({
                "sha": p,
                "url": format!("{api}/repos/{name}/commits/{p}"),
                "html_url": format!("{api}/{name}/commit/{p}"),
            })).collect::<Vec<_>>(),
            "files": files,
        }),
    )
}

#[derive(Deserialize)]
struct CreateRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
}

async fn create_ref(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let input: CreateRef = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let Some(branch) = input
        .git_ref
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
    else {
        return api_error(ApiError::new(
            422,
            "Reference name must start with 'refs/' and have at least two slashes.",
        ));
    };
    if !crate::model::valid_branch_name(branch) {
        return api_error(ApiError::new(
            422,
            format!("{} is not a valid ref name.", input.git_ref),
        ));
    }
    if let Err(e) = model.repo(&name) {
        return api_error(e);
    }
    if !model.in_repo(&name, &input.sha) {
        return api_error(ApiError::new(422, "Object does not exist"));
    }
    let Ok(r) = model.repo_mut(&name) else {
        return api_error(ApiError::not_found());
    };
    if r.branches.contains_key(branch) {
        return api_error(ApiError::new(422, "Reference already exists"));
    }
    r.branches.insert(branch.to_owned(), input.sha.clone());
    github_json(
        StatusCode::CREATED,
        ref_json(&model, &name, &input.git_ref, &input.sha),
    )
}

// ---- Pull requests ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct PullsQuery {
    state: Option<String>,
    head: Option<String>,
    base: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

impl PullsQuery {
    fn paging(&self) -> PageQuery {
        PageQuery {
            per_page: self.per_page,
            page: self.page,
        }
    }
}

/// Fields of a pull request GitHub's list answers leave out (its `pull-request-simple`): only
/// `GET /pulls/{number}` says whether it is merged or mergeable.
const NOT_IN_PULL_LISTS: [&str; 12] = [
    "additions",
    "changed_files",
    "comments",
    "commits",
    "deletions",
    "maintainer_can_modify",
    "mergeable",
    "mergeable_state",
    "merged",
    "merged_by",
    "rebaseable",
    "review_comments",
];

async fn list_pulls(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<PullsQuery>,
) -> Response {
    let model = shared.lock();
    let Ok(r) = model.repo(&full(&owner, &repo)) else {
        return api_error(ApiError::not_found());
    };
    let state = q.state.as_deref().unwrap_or("open");
    let head = q
        .head
        .as_deref()
        .map(|h| h.split_once(':').map(|(_, b)| b).unwrap_or(h));
    let all: Vec<&Pull> = r
        .pulls
        .values()
        .rev()
        .filter(|p| match state {
            "open" => p.open,
            "closed" => !p.open,
            _ => true,
        })
        .filter(|p| head.is_none_or(|h| p.head == h))
        .filter(|p| q.base.as_deref().is_none_or(|b| p.base == b))
        .collect();
    let mut query = vec![("state", state.to_owned())];
    query.extend(q.head.clone().map(|h| ("head", h)));
    query.extend(q.base.clone().map(|b| ("base", b)));
    let url = format!("{}/repos/{owner}/{repo}/pulls", model.base_url);
    let (page, link) = paginate(all, &q.paging(), &url, &query);
    let list: Vec<Value> = page
        .into_iter()
        .map(|p| {
            let mut v = payloads::pull(&model, r, p.number);
            if let Some(o) = v.as_object_mut() {
                for k in NOT_IN_PULL_LISTS {
                    o.remove(k);
                }
            }
            v
        })
        .collect();
    github_page(Value::Array(list), link)
}

#[derive(Deserialize)]
struct CreatePull {
    title: Option<String>,
    head: String,
    base: String,
    body: Option<String>,
}

async fn create_pull(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let input: CreatePull = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let head = input
        .head
        .split_once(':')
        .map(|(_, b)| b.to_owned())
        .unwrap_or(input.head.clone());
    let result = (|| {
        let r = model.repo(&name)?;
        let head_sha = r
            .branches
            .get(&head)
            .ok_or_else(|| ApiError::new(422, "Validation Failed: head is invalid"))?;
        let base_sha = r
            .branches
            .get(&input.base)
            .ok_or_else(|| ApiError::new(422, "Validation Failed: base is invalid"))?;
        if r.pulls
            .values()
            .any(|p| p.open && p.head == head && p.base == input.base)
        {
            return Err(ApiError::new(
                422,
                format!("Validation Failed: A pull request already exists for {owner}:{head}."),
            ));
        }
        if head_sha == base_sha {
            return Err(ApiError::new(
                422,
                format!(
                    "Validation Failed: No commits between {} and {head}",
                    input.base
                ),
            ));
        }
        let title = input
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ApiError::new(422, "Validation Failed: title is missing"))?;
        let body = input.body.clone().unwrap_or_default();
        check_comment_body(&format!("{body}."))?;
        Ok((title, body))
    })();
    let (title, body) = match result {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let author = model.bot_login();
    let number = match model.create_issue(&name, &author, &title, &body, true) {
        Ok(n) => n,
        Err(e) => return api_error(e),
    };
    model.insert_pull(&name, number, &head, &input.base);
    let json = model
        .repo(&name)
        .map(|r| payloads::pull(&model, r, number))
        .unwrap_or_default();
    drop(webhooks::pull_request_event(
        &shared, &mut model, &name, number, "opened", &author,
    ));
    github_json(StatusCode::CREATED, json)
}

async fn get_pull(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    let model = shared.lock();
    match model.repo(&full(&owner, &repo)) {
        Ok(r) if r.pulls.contains_key(&number) => {
            github_json(StatusCode::OK, payloads::pull(&model, r, number))
        }
        _ => api_error(ApiError::not_found()),
    }
}

#[derive(Deserialize)]
struct UpdatePull {
    state: Option<String>,
}

/// `PATCH …/pulls/{number}`: only `state` is supported: `closed` closes a pull request without
/// merging it (`pull_request.closed` with `merged: false`), `open` reopens it
/// (`pull_request.reopened`).
async fn update_pull(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let input: UpdatePull = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let actor = model.bot_login();
    if model
        .repo(&name)
        .map_or(true, |r| !r.pulls.contains_key(&number))
    {
        return api_error(ApiError::not_found());
    }
    let open = match input.state.as_deref() {
        Some("closed") => Some(false),
        Some("open") => Some(true),
        None => None,
        Some(other) => {
            return api_error(ApiError::new(
                422,
                format!("Validation Failed: state {other:?} is not open or closed"),
            ));
        }
    };
    let changed = match open {
        Some(open) => match model.set_pull_open(&name, number, open) {
            Ok(changed) => changed,
            Err(e) => return api_error(e),
        },
        None => false,
    };
    let json = model
        .repo(&name)
        .map(|r| payloads::pull(&model, r, number))
        .unwrap_or_default();
    if changed {
        let action = if open == Some(true) {
            "reopened"
        } else {
            "closed"
        };
        drop(webhooks::pull_request_event(
            &shared, &mut model, &name, number, action, &actor,
        ));
    }
    github_json(StatusCode::OK, json)
}

#[derive(Deserialize)]
struct MergeInput {
    merge_method: Option<String>,
    sha: Option<String>,
}

async fn merge_pull(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let input: MergeInput = if body.is_empty() {
        MergeInput {
            merge_method: None,
            sha: None,
        }
    } else {
        match parse_body(&body) {
            Ok(v) => v,
            Err(e) => return api_error(e),
        }
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let actor = model.bot_login();
    let method = input.merge_method.as_deref().unwrap_or("merge");
    match model.merge_pull(&name, number, &actor, method, input.sha.as_deref()) {
        Ok(sha) => {
            drop(webhooks::pull_request_event(
                &shared, &mut model, &name, number, "closed", &actor,
            ));
            github_json(
                StatusCode::OK,
                json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }),
            )
        }
        Err(e) => api_error(e),
    }
}

// ---- Comments and reactions -----------------------------------------------------------------------

/// GitHub refuses issue bodies longer than this (in characters).
const MAX_ISSUE_BODY_CHARS: usize = 65_536;

#[derive(Deserialize)]
struct IssueWrite {
    title: Option<serde_json::Value>,
    body: Option<String>,
    state: Option<String>,
}

impl IssueWrite {
    fn title(&self) -> Result<Option<String>, ApiError> {
        match &self.title {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::new(
                422,
                "Validation Failed: title is missing or empty",
            )),
        }
    }

    fn check_body(&self) -> Result<(), ApiError> {
        match &self.body {
            Some(b) if b.chars().count() > MAX_ISSUE_BODY_CHARS => Err(ApiError::new(
                422,
                format!(
                    "Validation Failed: body is too long (maximum is {MAX_ISSUE_BODY_CHARS} characters)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// `POST …/issues`: opens an issue as the App (`issues.opened`).
async fn create_issue(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let input: IssueWrite = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let title = match input.title().and_then(|t| {
        input.check_body()?;
        t.ok_or_else(|| ApiError::new(422, "Validation Failed: title is missing"))
    }) {
        Ok(t) => t,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let author = model.bot_login();
    let text = input.body.unwrap_or_default();
    match model.create_issue(&name, &author, &title, &text, false) {
        Ok(number) => {
            let json = model
                .repo(&name)
                .map(|r| payloads::issue(&model, r, number))
                .unwrap_or_default();
            drop(webhooks::issues_event(
                &shared, &mut model, &name, number, "opened", &author, None,
            ));
            github_json(StatusCode::CREATED, json)
        }
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct IssuesQuery {
    state: Option<String>,
    since: Option<String>,
    sort: Option<String>,
    direction: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET …/issues`: issues and pull requests (as GitHub lists them), `state` (default `open`),
/// `since` (updated at or after), sorted by `created` (default) or `updated`, newest first by
/// default.
async fn list_issues(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<IssuesQuery>,
) -> Response {
    let model = shared.lock();
    let Ok(r) = model.repo(&full(&owner, &repo)) else {
        return api_error(ApiError::not_found());
    };
    let since = match parse_since(q.since.as_deref()) {
        Ok(since) => since,
        Err(e) => return api_error(e),
    };
    let state = q.state.as_deref().unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return api_error(ApiError::new(422, "Validation Failed: state"));
    }
    let mut all: Vec<(u64, &crate::model::Issue)> = r
        .issues
        .iter()
        .filter(|(_, i)| match state {
            "open" => i.open,
            "closed" => !i.open,
            _ => true,
        })
        .filter(|(_, i)| since.is_none_or(|t| i.updated_at >= t))
        .map(|(n, i)| (*n, i))
        .collect();
    let by_updated = q.sort.as_deref() == Some("updated");
    all.sort_by_key(|(n, i)| {
        (
            if by_updated {
                i.updated_at
            } else {
                i.created_at
            },
            *n,
        )
    });
    if q.direction.as_deref() != Some("asc") {
        all.reverse();
    }
    let query: Vec<(&str, String)> = [
        ("state", Some(state.to_owned())),
        ("since", q.since.clone()),
        ("sort", q.sort.clone()),
        ("direction", q.direction.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let url = format!("{}/repos/{owner}/{repo}/issues", model.base_url);
    let paging = PageQuery {
        per_page: q.per_page,
        page: q.page,
    };
    let (page, link) = paginate(all, &paging, &url, &query);
    let list: Vec<Value> = page
        .into_iter()
        .map(|(n, _)| payloads::issue(&model, r, n))
        .collect();
    github_page(Value::Array(list), link)
}

async fn get_issue(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    let model = shared.lock();
    match model
        .repo(&full(&owner, &repo))
        .ok()
        .filter(|r| r.issues.contains_key(&number))
    {
        Some(r) => github_json(StatusCode::OK, payloads::issue(&model, r, number)),
        None => api_error(ApiError::not_found()),
    }
}

/// `PATCH …/issues/{number}`: title, body and state, as the App (`issues.edited`,
/// `issues.closed`/`reopened`).
async fn update_issue(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let input: IssueWrite = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let title = match input.title().and_then(|t| input.check_body().map(|()| t)) {
        Ok(t) => t,
        Err(e) => return api_error(e),
    };
    let open = match input.state.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return api_error(ApiError::new(
                422,
                format!("Validation Failed: state {other:?} is not open or closed"),
            ));
        }
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let actor = model.bot_login();
    match model.edit_issue(&name, number, title, input.body, open) {
        Ok((changes, state_changed)) => {
            let json = model
                .repo(&name)
                .map(|r| payloads::issue(&model, r, number))
                .unwrap_or_default();
            if let Some(changes) = changes {
                drop(webhooks::issues_event(
                    &shared,
                    &mut model,
                    &name,
                    number,
                    "edited",
                    &actor,
                    Some(changes),
                ));
            }
            if let Some(open) = state_changed {
                let action = if open { "reopened" } else { "closed" };
                drop(webhooks::issues_event(
                    &shared, &mut model, &name, number, action, &actor, None,
                ));
            }
            github_json(StatusCode::OK, json)
        }
        Err(e) => api_error(e),
    }
}

async fn create_comment(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let text = match comment_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let author = model.bot_login();
    match model.create_comment(&name, number, &author, &text) {
        Ok(id) => {
            let json = model
                .comments
                .get(&id)
                .map(|c| payloads::comment(&model, c))
                .unwrap_or_default();
            drop(webhooks::comment_created(&shared, &mut model, id));
            github_json(StatusCode::CREATED, json)
        }
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct CommentsQuery {
    since: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

impl CommentsQuery {
    fn paging(&self) -> PageQuery {
        PageQuery {
            per_page: self.per_page,
            page: self.page,
        }
    }
}

/// Ascending by id, `since` on `updated_at`, paged as GitHub pages lists ([`paginate`]).
async fn list_comments(
    State(shared): St,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<CommentsQuery>,
) -> Response {
    let model = shared.lock();
    let Some(issue) = model
        .repo(&full(&owner, &repo))
        .ok()
        .and_then(|r| r.issues.get(&number))
    else {
        return api_error(ApiError::not_found());
    };
    let since = match parse_since(q.since.as_deref()) {
        Ok(since) => since,
        Err(e) => return api_error(e),
    };
    let all: Vec<&crate::model::Comment> = issue
        .comments
        .iter()
        .filter_map(|id| model.comments.get(id))
        .filter(|c| since.is_none_or(|t| c.updated_at >= t))
        .collect();
    let query: Vec<(&str, String)> = q.since.clone().map(|s| ("since", s)).into_iter().collect();
    let url = format!(
        "{}/repos/{owner}/{repo}/issues/{number}/comments",
        model.base_url
    );
    let (page, link) = paginate(all, &q.paging(), &url, &query);
    let list: Vec<Value> = page
        .into_iter()
        .map(|c| payloads::comment(&model, c))
        .collect();
    github_page(Value::Array(list), link)
}

async fn get_comment(
    State(shared): St,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Response {
    let model = shared.lock();
    match model
        .comments
        .get(&id)
        .filter(|c| c.repo == full(&owner, &repo))
    {
        Some(c) => github_json(StatusCode::OK, payloads::comment(&model, c)),
        None => api_error(ApiError::not_found()),
    }
}

async fn edit_comment(
    State(shared): St,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let text = match comment_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let mut model = shared.lock();
    let name = full(&owner, &repo);
    let Some(c) = model.comments.get_mut(&id).filter(|c| c.repo == name) else {
        return api_error(ApiError::not_found());
    };
    c.body = text;
    c.updated_at = crate::model::now();
    let c = c.clone();
    github_json(StatusCode::OK, payloads::comment(&model, &c))
}

const REACTIONS: [&str; 8] = [
    "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
];

async fn create_reaction(
    State(shared): St,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct Input {
        content: String,
    }
    let input: Input = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    if !REACTIONS.contains(&input.content.as_str()) {
        return api_error(ApiError::new(
            422,
            format!(
                "Validation Failed: content {:?} is not a reaction",
                input.content
            ),
        ));
    }
    let mut model = shared.lock();
    let bot = model.bot_login();
    let name = full(&owner, &repo);
    let Some(c) = model.comments.get_mut(&id).filter(|c| c.repo == name) else {
        return api_error(ApiError::not_found());
    };
    let existed = c
        .reactions
        .iter()
        .any(|(content, login)| *content == input.content && *login == bot);
    if !existed {
        c.reactions.push((input.content.clone(), bot.clone()));
    }
    let reaction_id = id * 10 + c.reactions.len() as u64;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    github_json(
        status,
        json!({
            "id": reaction_id,
            "node_id": crate::model::node_id("REA_lADO", reaction_id),
            "user": payloads::user(&model, &bot),
            "content": input.content,
            "created_at": payloads::timestamp(crate::model::now()),
        }),
    )
}

// ---- Permissions ----------------------------------------------------------------------------

async fn get_permission(
    State(shared): St,
    Path((owner, repo, username)): Path<(String, String, String)>,
) -> Response {
    let model = shared.lock();
    if !model.users.contains_key(&username) {
        return api_error(ApiError::new(404, format!("{username} is not a user")));
    }
    let p = model.permission_of(&full(&owner, &repo), &username);
    github_json(
        StatusCode::OK,
        json!({ "permission": p.legacy_name(), "role_name": p.role_name(), "user": payloads::user(&model, &username) }),
    )
}

// ---- Actions --------------------------------------------------------------------------------

#[derive(Deserialize)]
struct DispatchInput {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    inputs: BTreeMap<String, Value>,
    #[serde(default)]
    return_run_details: bool,
}

async fn dispatch(
    State(shared): St,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let input: DispatchInput = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let name = full(&owner, &repo);
    let mut model = shared.lock();
    let created =
        workflows::create_run(&mut model, &name, &workflow, &input.git_ref, &input.inputs);
    let (run_id, behavior) = match created {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    drop(webhooks::workflow_run_event(
        &shared,
        &mut model,
        run_id,
        "requested",
    ));
    let guard = shared.track();
    tokio::spawn(workflows::execute(shared.clone(), run_id, behavior, guard));
    if input.return_run_details && model.dispatch_returns_run_details {
        let api = &model.base_url;
        github_json(
            StatusCode::OK,
            json!({
                "workflow_run_id": run_id,
                "run_url": format!("{api}/repos/{name}/actions/runs/{run_id}"),
                "html_url": format!("{api}/{name}/actions/runs/{run_id}"),
            }),
        )
    } else {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        add_rate_limit_headers(resp.headers_mut());
        resp
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    branch: Option<String>,
    event: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

impl RunsQuery {
    fn paging(&self) -> PageQuery {
        PageQuery {
            per_page: self.per_page,
            page: self.page,
        }
    }
}

/// Newest first, paged ([`paginate`]); `total_count` counts every matching run, not the page.
async fn list_runs(
    State(shared): St,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    Query(q): Query<RunsQuery>,
) -> Response {
    let model = shared.lock();
    let name = full(&owner, &repo);
    let all: Vec<&crate::model::Run> = model
        .runs
        .values()
        .rev()
        .filter(|r| {
            r.repo == name && (r.workflow_file == workflow || r.workflow_id.to_string() == workflow)
        })
        .filter(|r| q.branch.as_deref().is_none_or(|b| r.head_branch == b))
        .filter(|_| q.event.as_deref().is_none_or(|e| e == "workflow_dispatch"))
        .collect();
    let total = all.len();
    let mut query = Vec::new();
    query.extend(q.branch.clone().map(|b| ("branch", b)));
    query.extend(q.event.clone().map(|e| ("event", e)));
    let url = format!(
        "{}/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
        model.base_url
    );
    let (page, link) = paginate(all, &q.paging(), &url, &query);
    let runs: Vec<Value> = page
        .into_iter()
        .map(|r| payloads::workflow_run(&model, r))
        .collect();
    github_page(json!({ "total_count": total, "workflow_runs": runs }), link)
}

async fn get_run(
    State(shared): St,
    Path((owner, repo, run_id)): Path<(String, String, u64)>,
) -> Response {
    let model = shared.lock();
    match model
        .runs
        .get(&run_id)
        .filter(|r| r.repo == full(&owner, &repo))
    {
        Some(r) => github_json(StatusCode::OK, payloads::workflow_run(&model, r)),
        None => api_error(ApiError::not_found()),
    }
}

/// Paged ([`paginate`]); `total_count` counts every artifact of the run.
async fn list_artifacts(
    State(shared): St,
    Path((owner, repo, run_id)): Path<(String, String, u64)>,
    Query(paging): Query<PageQuery>,
) -> Response {
    let model = shared.lock();
    if model
        .runs
        .get(&run_id)
        .is_none_or(|r| r.repo != full(&owner, &repo))
    {
        return api_error(ApiError::not_found());
    }
    let all: Vec<&crate::model::Artifact> = model
        .artifacts
        .values()
        .filter(|a| a.run_id == run_id)
        .collect();
    let total = all.len();
    let url = format!(
        "{}/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
        model.base_url
    );
    let (page, link) = paginate(all, &paging, &url, &[]);
    let list: Vec<Value> = page
        .into_iter()
        .map(|a| payloads::artifact(&model, a))
        .collect();
    github_page(json!({ "total_count": total, "artifacts": list }), link)
}

/// GitHub answers with a redirect to a short-lived, pre-signed blob URL.
async fn download_artifact(
    State(shared): St,
    Path((owner, repo, artifact_id)): Path<(String, String, u64)>,
) -> Response {
    let model = shared.lock();
    match model
        .artifacts
        .get(&artifact_id)
        .filter(|a| a.repo == full(&owner, &repo))
    {
        Some(a) => {
            let location = format!(
                "{}/_blobs/artifacts/{}?sig={}",
                model.base_url, a.id, a.blob_key
            );
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            add_rate_limit_headers(resp.headers_mut());
            resp
        }
        None => api_error(ApiError::not_found()),
    }
}

#[derive(Deserialize)]
struct BlobQuery {
    sig: Option<String>,
}

async fn artifact_blob(
    State(shared): St,
    Path(artifact_id): Path<u64>,
    Query(q): Query<BlobQuery>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        // Blob storage refuses requests that also carry GitHub credentials.
        return (
            StatusCode::BAD_REQUEST,
            "Authentication information is not given in the correct format.",
        )
            .into_response();
    }
    let model = shared.lock();
    match model.artifacts.get(&artifact_id) {
        Some(a) if q.sig.as_deref() == Some(a.blob_key.as_str()) => (
            [(header::CONTENT_TYPE, "application/zip")],
            Bytes::from(a.zip.clone()),
        )
            .into_response(),
        _ => (
            StatusCode::FORBIDDEN,
            "Server failed to authenticate the request.",
        )
            .into_response(),
    }
}

// ---- GraphQL --------------------------------------------------------------------------------

#[derive(Deserialize)]
struct GraphQlRequest {
    query: String,
    #[serde(default)]
    variables: Value,
}

async fn graphql_endpoint(State(shared): St, headers: HeaderMap, body: Bytes) -> Response {
    let request: GraphQlRequest = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return api_error(e),
    };
    let parsed = graphql::operation_fields(&request.query);
    // Counted by its root fields: `POST /graphql createRef+createCommitOnBranch`.
    let field = parsed
        .as_ref()
        .map(|fields| {
            fields
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join("+")
        })
        .unwrap_or_else(|_| "?".into());
    let (answer, installation, after_write) =
        match graphql_call(&shared, &request, parsed, &field, &headers) {
            Ok(done) => done,
            Err(resp) => return *resp,
        };
    if let Some(fault) = after_write {
        return late_fault_response(&fault, Some(installation)).await;
    }
    github_json(StatusCode::OK, answer)
}

/// The GraphQL call itself (under the model's lock): its answer, the installation, and the fault
/// to answer with after it was carried out; or the answer instead of it.
fn graphql_call(
    shared: &Shared,
    request: &GraphQlRequest,
    parsed: Result<Vec<(String, Option<Value>)>, String>,
    name: &str,
    headers: &HeaderMap,
) -> Result<(Value, u64, Option<Fault>), Box<Response>> {
    let mut model = shared.lock();
    let (fault, after_write) = split_fault(model.record_call(&format!("POST /graphql {name}")));
    let grant = auth::grant_of(&model, auth::bearer(authorization(headers)));
    if let Some(fault) = fault {
        return Err(Box::new(fault_response(
            &fault,
            grant.as_ref().ok().map(|g| g.installation),
        )));
    }
    let grant = match grant {
        Ok(g) => g,
        Err(e) => return Err(Box::new(api_error(e))),
    };
    let installation = grant.installation;
    let fields = match parsed {
        Ok(v) => v,
        Err(message) => {
            return Err(Box::new(github_json(
                StatusCode::OK,
                json!({ "errors": [{ "message": message }] }),
            )));
        }
    };
    if let Some(answer) =
        crate::graphql_query::run(&model, &grant, &request.query, &request.variables)
    {
        return Ok((answer, installation, after_write));
    }
    let fields = fields
        .into_iter()
        .map(|(name, input)| graphql::MutationField::new(name, input, &request.variables))
        .collect();
    let answer = graphql::execute(&mut model, &grant, fields);
    Ok((answer, installation, after_write))
}
