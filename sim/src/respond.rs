//! How the simulator answers: JSON with GitHub's rate-limit and request-id headers, and GitHub's
//! error bodies (shared by every route module).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::model::ApiError;

pub(crate) fn github_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    add_rate_limit_headers(resp.headers_mut());
    resp
}

pub(crate) fn add_rate_limit_headers(h: &mut HeaderMap) {
    let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    for (k, v) in [
        ("x-ratelimit-limit", "5000".to_owned()),
        ("x-ratelimit-remaining", "4999".to_owned()),
        ("x-ratelimit-used", "1".to_owned()),
        ("x-ratelimit-resource", "core".to_owned()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-github-api-version-selected", "2022-11-28".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.entry(k).or_insert(v);
        }
    }
    h.insert(
        "x-github-request-id",
        HeaderValue::from_static("SIM:0000:0000"),
    );
}

pub(crate) fn api_error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({
        "message": e.message,
        "documentation_url": "https://docs.github.com/rest",
        "status": e.status.to_string(),
    });
    if e.status == 422 {
        body["message"] = json!("Validation Failed");
        body["errors"] = json!([{ "code": "custom", "message": e.message }]);
        if !e.message.starts_with("Validation Failed") {
            // GitHub puts simple 422 reasons ("Reference already exists") straight in `message`.
            body["message"] = json!(e.message);
            body.as_object_mut().map(|o| o.remove("errors"));
        }
    }
    github_json(status, body)
}
