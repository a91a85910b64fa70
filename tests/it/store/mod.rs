//! The request store: one conformance suite run against both backends (fs on a temp dir, S3 on
//! moto_server), plus what only one backend can show (two OS processes on one data dir; S3
//! conditional writes and server-side encryption as moto reports them; the `audit` command).

#[macro_use]
mod conformance;
mod fs;
mod s3;

use std::any::Any;
use std::sync::Arc;

use tfpilot::domain::Request;
use tfpilot::ids::{RepoName, RequestId};
use tfpilot::store::{Objects, RequestStore};
use time::OffsetDateTime;

/// A store under test, with raw access to its objects (to plant corrupt records) and whatever
/// must live as long as it (a temp dir, a moto server).
pub struct Target {
    pub store: Arc<dyn RequestStore>,
    pub records: Arc<dyn Objects>,
    pub chat: Arc<dyn Objects>,
    pub _guard: Box<dyn Any + Send + Sync>,
}

pub fn repo() -> RepoName {
    "acme/core-terraform".parse().expect("valid repo")
}

/// A fresh request on `acme/core-terraform#<issue>`.
pub fn new_request(issue: u64) -> Request {
    let mut r = Request::new(
        RequestId::new_random(),
        repo(),
        issue,
        "octocat",
        "s3-bucket",
        OffsetDateTime::now_utc(),
    );
    r.environment = Some("dev".into());
    r.project = Some("billing".into());
    r.inputs
        .insert("name".into(), serde_json::Value::from("invoices"));
    r
}
