//! The App itself: registering it from a manifest (GitHub's web side, `POST /settings/apps/new`
//! and `/organizations/{org}/settings/apps/new`, then `POST /app-manifests/{code}/conversions`),
//! and what the App may read about itself (`GET /app`, `GET /app/installations`,
//! `GET /installation/repositories`).
//!
//! The simulator knows one App key ([`crate::TEST_APP_PRIVATE_KEY_PEM`]), so the App a manifest
//! registers is the simulator's App, renamed as the manifest says: its id stays
//! [`crate::SimConfig::app_id`] and the conversion hands out that key. GitHub's web side is cut
//! short the way a user who clicks "Create GitHub App" at once would cut it: the form post is
//! answered with the redirect to the manifest's `redirect_url` carrying `code` and `state`.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{ApiError, AppRegistration, Manifest, Model, PendingManifest, node_id};
use crate::respond::{api_error, github_json};
use crate::{Shared, auth, payloads};

/// How long a manifest code may be exchanged (GitHub: one hour).
const CODE_LIFETIME: time::Duration = time::Duration::HOUR;

#[derive(Deserialize)]
pub(crate) struct ManifestForm {
    manifest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct StateQuery {
    state: Option<String>,
}

/// `POST /settings/apps/new?state=…`: a manifest for an App owned by the signed-in user.
pub(crate) async fn new_user_app(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<StateQuery>,
    Form(form): Form<ManifestForm>,
) -> Response {
    // The simulator's signed-in user is the owner of the App's first installation, if any.
    let owner = {
        let model = shared.lock();
        model
            .installations
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| "octocat".into())
    };
    accept_manifest(&shared, owner, q.state, form.manifest)
}

/// `POST /organizations/{org}/settings/apps/new?state=…`: a manifest for an organization's App.
pub(crate) async fn new_org_app(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    Query(q): Query<StateQuery>,
    Form(form): Form<ManifestForm>,
) -> Response {
    accept_manifest(&shared, org, q.state, form.manifest)
}

fn web_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>GitHub</title><h1>Invalid GitHub App configuration</h1><p>{}</p>",
            message.replace('<', "&lt;")
        )),
    )
        .into_response()
}

fn accept_manifest(
    shared: &Arc<Shared>,
    owner: String,
    state: Option<String>,
    manifest: Option<String>,
) -> Response {
    let Some(text) = manifest else {
        return web_error(
            StatusCode::BAD_REQUEST,
            "The manifest parameter is missing.",
        );
    };
    let manifest: Manifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            return web_error(
                StatusCode::BAD_REQUEST,
                &format!("The manifest is not valid JSON: {e}"),
            );
        }
    };
    if manifest.url.as_deref().is_none_or(str::is_empty) {
        return web_error(StatusCode::UNPROCESSABLE_ENTITY, "url is required.");
    }
    if let Some(hook) = &manifest.hook_attributes
        && hook.url.as_deref().is_none_or(str::is_empty)
    {
        return web_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hook_attributes.url is required.",
        );
    }
    let Some(redirect) = manifest
        .redirect_url
        .clone()
        .and_then(|r| reqwest::Url::parse(&r).ok())
    else {
        // Without a redirect GitHub keeps the user on its own pages; nobody gets a code.
        return web_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "redirect_url is required to hand the code back (and must be a URL).",
        );
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    shared.lock().pending_manifests.insert(
        code.clone(),
        PendingManifest {
            manifest,
            owner,
            created_at: crate::model::now(),
        },
    );
    let mut target = redirect;
    {
        let mut pairs = target.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = &state {
            pairs.append_pair("state", state);
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = target.as_str().parse() {
        headers.insert(header::LOCATION, v);
    }
    (StatusCode::FOUND, headers).into_response()
}

/// GitHub's slug of an App name: lowercase, runs of other characters become one `-`.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::new();
    while out.len() < bytes * 2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(bytes * 2);
    out
}

/// `POST /app-manifests/{code}/conversions`: no credential; the code is used once.
pub(crate) async fn convert(
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Response {
    let mut model = shared.lock();
    let Some(pending) = model.pending_manifests.remove(&code) else {
        return api_error(ApiError::not_found());
    };
    if pending.created_at + CODE_LIFETIME <= crate::model::now() {
        return api_error(ApiError::not_found());
    }
    let m = pending.manifest;
    let name = m.name.clone().unwrap_or_else(|| model.app_slug.clone());
    let slug = slugify(&name);
    if slug.is_empty() {
        return api_error(ApiError::new(422, "Name must contain a letter or a digit"));
    }
    let registration = AppRegistration {
        name,
        description: m.description.unwrap_or_default(),
        owner: pending.owner,
        external_url: m.url.unwrap_or_default(),
        hook_url: m
            .hook_attributes
            .as_ref()
            .and_then(|h| (h.active != Some(false)).then(|| h.url.clone()).flatten()),
        permissions: m.default_permissions,
        events: m.default_events,
        client_id: format!("Iv1.{}", random_hex(8)),
        client_secret: random_hex(20),
        webhook_secret: m.hook_attributes.as_ref().map(|_| random_hex(20)),
        created_at: crate::model::now(),
    };
    model.rename_app(&slug);
    model.app = registration.clone();
    let mut body = app_json(&model);
    body["client_id"] = json!(registration.client_id);
    body["client_secret"] = json!(registration.client_secret);
    body["webhook_secret"] = json!(registration.webhook_secret);
    body["pem"] = json!(crate::TEST_APP_PRIVATE_KEY_PEM);
    github_json(StatusCode::CREATED, body)
}

/// The `integration` object (`GET /app`, and the conversion's answer without its secrets).
pub(crate) fn app_json(model: &Model) -> Value {
    let app = &model.app;
    let web = &model.base_url;
    let mut owner = payloads::user(model, &app.owner);
    if !model.users.contains_key(&app.owner) {
        owner["type"] = json!("Organization");
        owner["id"] = json!(1);
    }
    json!({
        "id": model.app_id,
        "slug": model.app_slug,
        "node_id": node_id("A_kwDO", model.app_id),
        "client_id": app.client_id,
        "owner": owner,
        "name": app.name,
        "description": app.description,
        "external_url": app.external_url,
        "html_url": format!("{web}/apps/{}", model.app_slug),
        "created_at": payloads::timestamp(app.created_at),
        "updated_at": payloads::timestamp(app.created_at),
        "permissions": app.permissions,
        "events": app.events,
        "installations_count": model.installations.len(),
    })
}

/// `GET /app` (App JWT, checked by the gate).
pub(crate) async fn get_app(State(shared): State<Arc<Shared>>) -> Response {
    let model = shared.lock();
    github_json(StatusCode::OK, app_json(&model))
}

/// `GET /app/installations` (App JWT, checked by the gate). One page holds them all: the
/// simulator never has more than a handful.
pub(crate) async fn list_installations(State(shared): State<Arc<Shared>>) -> Response {
    let model = shared.lock();
    let list: Vec<Value> = model
        .installations
        .iter()
        .map(|(id, owner)| installation_json(&model, *id, owner))
        .collect();
    github_json(StatusCode::OK, Value::Array(list))
}

fn installation_json(model: &Model, id: u64, owner: &str) -> Value {
    let api = &model.base_url;
    let mut account = payloads::user(model, owner);
    let organization = !model.users.contains_key(owner);
    if organization {
        account["type"] = json!("Organization");
    }
    let created = payloads::timestamp(model.app.created_at);
    json!({
        "id": id,
        "account": account,
        "repository_selection": "all",
        "access_tokens_url": format!("{api}/app/installations/{id}/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": if organization {
            format!("{api}/organizations/{owner}/settings/installations/{id}")
        } else {
            format!("{api}/settings/installations/{id}")
        },
        "app_id": model.app_id,
        "client_id": model.app.client_id,
        "app_slug": model.app_slug,
        "target_id": account["id"],
        "target_type": if organization { "Organization" } else { "User" },
        "permissions": model.app.permissions,
        "events": model.app.events,
        "created_at": created,
        "updated_at": created,
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}

/// `GET /installation/repositories`: an installation token's repositories (all of the
/// installation's, or the ones the token was restricted to).
pub(crate) async fn installation_repositories(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let model = shared.lock();
    let token = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let grant = match auth::grant_of(&model, token) {
        Ok(g) => g,
        Err(e) => return api_error(e),
    };
    let repos: Vec<Value> = model
        .repos
        .values()
        .filter(|r| auth::check_grant(&model, &grant, &r.full_name(), None).is_ok())
        .map(|r| payloads::repository(&model, r))
        .collect();
    github_json(
        StatusCode::OK,
        json!({
            "total_count": repos.len(),
            "repositories": repos,
            "repository_selection": if grant.restricted() { "selected" } else { "all" },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_githubs() {
        assert_eq!(slugify("TfPilot"), "tfpilot");
        assert_eq!(slugify("TfPilot (acme) dev"), "tfpilot-acme-dev");
        assert_eq!(slugify("  --  "), "");
    }
}
