//! `POST /webhooks/github`, `/healthz` and `/metrics` through the router (no socket), with real
//! payloads from `@octokit/webhooks-examples` and our fixtures built from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use secrecy::SecretString;
use tfpilot::ids::{DeliveryId, InstallationId};
use tfpilot::inbox::{
    Claim, Delivery, FsInbox, Inbox, InboxError, InboxItem, PendingEntry, PutOutcome,
};
use tfpilot::server::{AppState, create_app};
use tfpilot::webhook::Event;
use tfpilot::webhook::events::{AuthorAssociation, UserKind};
use tower::ServiceExt;

use crate::support::{self, WEBHOOK_SECRET, signed_delivery};

pub struct TestApp {
    pub router: Router,
    pub inbox: Arc<FsInbox>,
    pub dir: tempfile::TempDir,
}

/// The router with a fresh file-system inbox and the test secret (or none).
pub fn test_app(secret: Option<&str>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let state = AppState::new(secret.map(SecretString::from), inbox.clone());
    TestApp {
        router: create_app(state),
        inbox,
        dir,
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn delivery_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn every_real_payload_of_a_handled_event_is_accepted() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    let mut queued = 0;
    for (n, (event, payload)) in support::octokit_examples().into_iter().enumerate() {
        if !Event::HANDLED.contains(&event.as_str()) {
            continue;
        }
        let body = serde_json::to_vec(&payload).unwrap();
        let parsed = Event::parse(&event, &body)
            .unwrap_or_else(|e| panic!("example {n} ({event}) does not parse: {e}"));
        assert_eq!(parsed.name(), event);
        assert!(!matches!(parsed, Event::Other(_)));
        let (status, text) = send(
            &app.router,
            signed_delivery(WEBHOOK_SECRET, &event, &delivery_id(n), body),
        )
        .await;
        let expected = if event == "ping" {
            StatusCode::OK
        } else {
            queued += 1;
            StatusCode::ACCEPTED
        };
        assert_eq!(status, expected, "example {n} ({event}): {text}");
        *accepted.entry(event).or_default() += 1;
    }
    let total: usize = accepted.values().sum();
    println!(
        "accepted {total} real payloads of handled events from @octokit/webhooks-examples: {accepted:?}"
    );
    assert_eq!(accepted.len(), Event::HANDLED.len(), "{accepted:?}");
    // @octokit/webhooks-examples 7.6.1 (pinned in tests/fixtures/npm).
    assert_eq!(total, 95, "{accepted:?}");
    assert_eq!(app.inbox.depth().await.unwrap(), queued);
}

#[tokio::test]
async fn every_other_real_event_is_acknowledged_and_not_stored() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let mut ignored = 0;
    for (n, (event, payload)) in support::octokit_examples().into_iter().enumerate() {
        if Event::HANDLED.contains(&event.as_str()) {
            continue;
        }
        let body = serde_json::to_vec(&payload).unwrap();
        let (status, text) = send(
            &app.router,
            signed_delivery(WEBHOOK_SECRET, &event, &delivery_id(n), body),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{event}: {text}");
        assert!(text.starts_with("ignored"), "{text}");
        ignored += 1;
    }
    println!("acknowledged and ignored {ignored} payloads of other events");
    assert_eq!(ignored, 329 - 95);
    assert_eq!(app.inbox.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn our_fixtures_are_accepted_with_the_fields_the_executor_needs() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let fixtures = support::own_webhook_fixtures();
    for (n, (event, file, payload)) in fixtures.iter().enumerate() {
        let body = serde_json::to_vec(payload).unwrap();
        let (status, text) = send(
            &app.router,
            signed_delivery(WEBHOOK_SECRET, event, &delivery_id(n), body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{file}: {text}");
        let parsed = Event::parse(event, &body).unwrap();
        assert_eq!(
            parsed.installation(),
            Some(InstallationId(48290711)),
            "{file}"
        );
        assert!(parsed.repo().is_some(), "{file}");
    }
    println!("accepted {} own fixtures", fixtures.len());
    assert_eq!(fixtures.len(), 6);

    let pr_comment = support::webhook_fixture("issue_comment.pull_request.json");
    let Event::IssueComment(e) = Event::parse("issue_comment", &pr_comment).unwrap() else {
        panic!("not an issue comment");
    };
    assert!(e.issue.is_pull_request());
    assert_eq!(e.comment.body, "/tfpilot plan");
    assert_eq!(e.comment.author_association, AuthorAssociation::Owner);
    assert_eq!(
        e.comment.user.as_ref().map(|u| u.kind),
        Some(UserKind::User)
    );

    let bot = support::webhook_fixture("issue_comment.bot.installation.json");
    let Event::IssueComment(e) = Event::parse("issue_comment", &bot).unwrap() else {
        panic!("not an issue comment");
    };
    assert!(e.comment.user.as_ref().is_some_and(|u| u.is_bot()) && e.sender.is_bot());
    assert!(!e.issue.is_pull_request());

    let merged = support::webhook_fixture("pull_request.closed.merged.installation.json");
    let Event::PullRequest(e) = Event::parse("pull_request", &merged).unwrap() else {
        panic!("not a pull request");
    };
    assert!(e.pull_request.merged);
    assert_eq!(
        e.pull_request.head.ref_name,
        "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b"
    );
    assert_eq!(e.pull_request.head.sha.len(), 40);

    let run = support::webhook_fixture("workflow_run.completed.installation.json");
    let Event::WorkflowRun(e) = Event::parse("workflow_run", &run).unwrap() else {
        panic!("not a workflow run");
    };
    assert_eq!(
        e.workflow_run.path.as_deref(),
        Some(".github/workflows/plan.yml")
    );
    assert!(e.workflow_run.conclusion.is_some());
    assert!(
        e.workflow_run
            .display_title
            .as_deref()
            .unwrap()
            .contains("3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b")
    );
}

/// A request whose signature header is `signature` (or none).
fn with_signature(signature: Option<&str>, body: &'static [u8]) -> Request<Body> {
    let mut builder = Request::post("/webhooks/github")
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", delivery_id(1));
    if let Some(sig) = signature {
        builder = builder.header("x-hub-signature-256", sig);
    }
    builder.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn bad_signatures_are_refused_with_401_and_nothing_is_stored() {
    // GitHub's published test vector: the secret and the body that `sha256=757107ea…3e17` signs.
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let app = test_app(Some(GH_SECRET));

    // The right signature passes the check; "Hello, World!" is then refused as not JSON (400).
    let (status, text) = send(&app.router, with_signature(Some(GH_SIG), b"Hello, World!")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.starts_with("the body is not JSON"), "{text}");

    let wrong_secret = test_app(Some("It's a Secret to Somebody"));
    let (status, _) = send(
        &wrong_secret.router,
        with_signature(Some(GH_SIG), b"Hello, World!"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let truncated = &GH_SIG[..GH_SIG.len() - 4];
    let cases: [(Option<&str>, &'static [u8], &str); 6] = [
        (None, b"{}", "missing X-Hub-Signature-256"),
        (Some(truncated), b"Hello, World!", "must be `sha256=`"),
        (
            Some("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
            b"Hello, World!",
            "must be `sha256=`",
        ),
        (Some(GH_SIG), b"", "does not match"),
        (Some(GH_SIG), b"Hello, World!\n", "does not match"),
        (Some(""), b"{}", "must be `sha256=`"),
    ];
    for (signature, body, reason) in cases {
        let (status, text) = send(&app.router, with_signature(signature, body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}: {text}");
        assert!(text.contains(reason), "{signature:?}: {text}");
    }
    // An empty body signed correctly is authentic but not JSON.
    let sig = tfpilot::webhook::sign(GH_SECRET.as_bytes(), b"");
    let (status, _) = send(&app.router, with_signature(Some(&sig), b"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(app.inbox.depth().await.unwrap(), 0);
    assert!(
        app.inbox
            .get(&delivery_id(1).parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn without_a_secret_every_delivery_is_refused() {
    let app = test_app(None);
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let (status, text) = send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &delivery_id(1), body),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("TFPILOT_WEBHOOK_SECRET"), "{text}");
    assert_eq!(app.inbox.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn unreadable_deliveries_get_400_with_a_one_line_reason() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let good = support::webhook_fixture("issue_comment.created.installation.json");

    let mut no_event = signed_delivery(WEBHOOK_SECRET, "x", &delivery_id(1), good.clone());
    no_event.headers_mut().remove("x-github-event");
    let mut no_delivery = signed_delivery(WEBHOOK_SECRET, "issue_comment", "x", good.clone());
    no_delivery.headers_mut().remove("x-github-delivery");
    let cases = [
        (no_event, "missing X-GitHub-Event header"),
        (no_delivery, "missing X-GitHub-Delivery header"),
        (
            signed_delivery(
                WEBHOOK_SECRET,
                "issue_comment",
                &delivery_id(2),
                "{not json",
            ),
            "the body is not JSON",
        ),
        (
            signed_delivery(
                WEBHOOK_SECRET,
                "issue_comment",
                &delivery_id(3),
                r#"{"action":"created"}"#,
            ),
            "the `issue_comment` payload is not what GitHub sends",
        ),
    ];
    for (request, reason) in cases {
        let (status, text) = send(&app.router, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.starts_with(reason), "{text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    }
    assert_eq!(app.inbox.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_body_over_25_mib_is_refused_with_413() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let limit = tfpilot::webhook::MAX_BODY_BYTES;
    assert_eq!(limit, 25 * 1024 * 1024);

    // Just under the limit: a real payload padded with whitespace (still JSON) is accepted.
    let mut body = support::webhook_fixture("issue_comment.created.installation.json");
    body.resize(limit, b' ');
    let (status, text) = send(
        &app.router,
        signed_delivery(
            WEBHOOK_SECRET,
            "issue_comment",
            &delivery_id(1),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");

    body.push(b' ');
    let (status, _) = send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &delivery_id(2), body),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.inbox.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn ping_is_answered_200_and_not_queued() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let (_, ping) = support::octokit_examples()
        .into_iter()
        .find(|(e, _)| e == "ping")
        .unwrap();
    let (status, text) = send(
        &app.router,
        signed_delivery(
            WEBHOOK_SECRET,
            "ping",
            &delivery_id(1),
            serde_json::to_vec(&ping).unwrap(),
        ),
    )
    .await;
    assert_eq!((status, text.trim()), (StatusCode::OK, "pong"));
    assert_eq!(app.inbox.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_redelivered_guid_is_answered_duplicate_and_stored_once() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let id = delivery_id(7);
    let (status, text) = send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &id, body.clone()),
    )
    .await;
    assert_eq!((status, text.trim()), (StatusCode::ACCEPTED, "queued"));
    for _ in 0..3 {
        let (status, text) = send(
            &app.router,
            signed_delivery(WEBHOOK_SECRET, "issue_comment", &id, body.clone()),
        )
        .await;
        assert_eq!((status, text.trim()), (StatusCode::OK, "duplicate"));
    }
    assert_eq!(app.inbox.pending().await.unwrap().len(), 1);
    let item = app.inbox.get(&id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(item.delivery.event, "issue_comment");
    assert_eq!(
        item.delivery.body.as_bytes(),
        body.as_slice(),
        "the raw body is kept exactly"
    );
}

/// An inbox whose storage is down.
struct UnavailableInbox;

#[async_trait]
impl Inbox for UnavailableInbox {
    async fn put(&self, _: &Delivery) -> Result<PutOutcome, InboxError> {
        Err(InboxError::Backend {
            operation: "put",
            source: "storage is down".into(),
        })
    }
    async fn get(&self, _: &DeliveryId) -> Result<Option<InboxItem>, InboxError> {
        Ok(None)
    }
    async fn pending_entries(&self) -> Result<Vec<PendingEntry>, InboxError> {
        Ok(Vec::new())
    }
    async fn claim(
        &self,
        id: &DeliveryId,
        _: &str,
        _: std::time::Duration,
    ) -> Result<Claim, InboxError> {
        Err(InboxError::NotFound(id.clone()))
    }
    async fn record_failure(&self, id: &DeliveryId, _: &str, _: &str) -> Result<u32, InboxError> {
        Err(InboxError::NotFound(id.clone()))
    }
    async fn mark_done(&self, id: &DeliveryId) -> Result<(), InboxError> {
        Err(InboxError::NotFound(id.clone()))
    }
    async fn give_up(&self, id: &DeliveryId, _: &str) -> Result<(), InboxError> {
        Err(InboxError::NotFound(id.clone()))
    }
    async fn prune(&self, _: time::OffsetDateTime) -> Result<usize, InboxError> {
        Ok(0)
    }
}

#[tokio::test]
async fn an_inbox_that_cannot_store_gives_503_so_github_can_redeliver() {
    let state = AppState::new(
        Some(SecretString::from(WEBHOOK_SECRET)),
        Arc::new(UnavailableInbox),
    );
    let router = create_app(state);
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let (status, _) = send(
        &router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &delivery_id(1), body),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn healthz_reports_the_version() {
    let app = test_app(None);
    let (status, text) = send(
        &app.router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn metrics_count_deliveries_signature_failures_and_inbox_depth() {
    // As `serve` runs it: the router queues to an in-process worker, so the inbox gauge follows
    // the deliveries without listing the inbox on a scrape.
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let (queue_tx, _queue_rx) = tokio::sync::mpsc::unbounded_channel();
    let state = AppState::new(Some(SecretString::from(WEBHOOK_SECRET)), inbox.clone())
        .with_work_queue(queue_tx);
    let app = TestApp {
        router: create_app(state),
        inbox,
        dir,
    };
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    for n in 0..2 {
        send(
            &app.router,
            signed_delivery(
                WEBHOOK_SECRET,
                "issue_comment",
                &delivery_id(n),
                body.clone(),
            ),
        )
        .await;
    }
    send(
        &app.router,
        signed_delivery(
            "not-the-secret",
            "issue_comment",
            &delivery_id(9),
            body.clone(),
        ),
    )
    .await;

    // A scrape reads no storage: with the inbox directory gone it still answers, same gauge.
    std::fs::remove_dir_all(app.dir.path().join("inbox")).unwrap();
    let (status, text) = send(
        &app.router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
    };
    assert!(
        value(r#"tfpilot_webhook_deliveries_total{event="issue_comment",outcome="queued"}"#) >= 2.0
    );
    assert!(value(r#"tfpilot_webhook_signature_failures_total{reason="mismatch"}"#) >= 1.0);
    assert_eq!(value("tfpilot_inbox_depth"), 2.0);
}

/// A client that sends headers and then trickles (here: stops sending) its body is cut off with
/// 408 once the body-read timeout passes, and nothing is stored.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_with_408() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let state = tfpilot::server::AppState::new(
        Some(secrecy::SecretString::from(WEBHOOK_SECRET)),
        app.inbox.clone(),
    )
    .with_body_read_timeout(std::time::Duration::from_millis(200));
    let router = tfpilot::server::create_app(state);
    let first: Result<bytes::Bytes, std::io::Error> =
        Ok(bytes::Bytes::from_static(b"{\"action\":"));
    use futures_util::StreamExt as _;
    let stalled = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
    let request = Request::builder()
        .method("POST")
        .uri("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", delivery_id(408))
        .header("x-hub-signature-256", "sha256=00")
        .body(Body::from_stream(stalled))
        .unwrap();
    let (status, text) =
        tokio::time::timeout(std::time::Duration::from_secs(10), send(&router, request))
            .await
            .expect("answered, not hung");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{text}");
    assert!(text.contains("not received within"), "{text}");
    assert_eq!(app.inbox.depth().await.unwrap(), 0);
}

/// S3 stalls (a server that accepts the connection and never answers): the webhook still answers
/// within 5 s, with 503 so GitHub can redeliver, and the worker's drain fails instead of hanging.
/// An S3 put is whole or absent, so nothing half-written can be left behind; a put that did land
/// late is answered `duplicate` on redelivery and handled by the worker.
#[tokio::test]
async fn a_stalled_s3_gets_a_503_within_5_seconds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket); // never read, never answered, never closed
        }
    });
    let shared = tfpilot::store::aws_http::aws_config_loader()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let client = tfpilot::store::s3_client_from_config(&shared, false, None);
    let inbox: Arc<dyn Inbox> = Arc::new(tfpilot::inbox::ObjectInbox::new(Arc::new(
        tfpilot::store::S3Objects::new(client, "stalled-bucket"),
    )));
    let router = create_app(AppState::new(
        Some(SecretString::from(WEBHOOK_SECRET)),
        inbox.clone(),
    ));
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let started = std::time::Instant::now();
    let (status, text) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        send(
            &router,
            signed_delivery(WEBHOOK_SECRET, "issue_comment", &delivery_id(503), body),
        ),
    )
    .await
    .expect("the webhook answered");
    let took = started.elapsed();
    eprintln!("webhook answered {status} after {took:?} with S3 stalled");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("redeliver"), "{text}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the put reached the stalled server"
    );

    // The worker is bounded the same way: its drain fails in seconds, it does not hang.
    let worker = tfpilot::worker::Worker::new(inbox, Arc::new(tfpilot::worker::LoggingHandler));
    let started = std::time::Instant::now();
    let drained = tokio::time::timeout(std::time::Duration::from_secs(20), worker.drain())
        .await
        .expect("the drain did not hang");
    eprintln!("drain failed after {:?}", started.elapsed());
    assert!(drained.is_err(), "{drained:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// `/metrics` can be turned off (the public Function URL's default) or protected by a token.
#[tokio::test]
async fn metrics_can_be_turned_off_or_protected_by_a_token() {
    use tfpilot::config::{Config, MetricsAccess};
    let app = test_app(None);
    let scrape = |access: MetricsAccess, authorization: Option<&'static str>| {
        let router = create_app(AppState::new(None, app.inbox.clone()).with_metrics_access(access));
        async move {
            let mut request = Request::get("/metrics");
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            send(&router, request.body(Body::empty()).unwrap()).await.0
        }
    };
    let token = || MetricsAccess::Token(SecretString::from("s3cr3t-metrics"));
    assert_eq!(scrape(MetricsAccess::Open, None).await, StatusCode::OK);
    assert_eq!(
        scrape(MetricsAccess::Off, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(scrape(token(), None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(token(), Some("Bearer wrong")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(token(), Some("Bearer s3cr3t-metrics")).await,
        StatusCode::OK
    );

    // The configuration that selects them.
    let config = |vars: &[(&str, &str)]| {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| vars.get(name).cloned())
    };
    assert!(matches!(config(&[]).unwrap().metrics, MetricsAccess::Open));
    assert!(matches!(
        config(&[("TFPILOT_METRICS", "off"), ("TFPILOT_METRICS_TOKEN", "x")])
            .unwrap()
            .metrics,
        MetricsAccess::Off
    ));
    assert!(matches!(
        config(&[("TFPILOT_METRICS_TOKEN", "x")]).unwrap().metrics,
        MetricsAccess::Token(_)
    ));
    let err = config(&[("TFPILOT_METRICS", "maybe")]).unwrap_err();
    assert!(err.to_string().contains("TFPILOT_METRICS"), "{err}");
}

/// 200 clients that open a webhook request and trickle their body (or stall) do not starve
/// GitHub: a signed delivery sent meanwhile is answered 202 at once, well inside GitHub's 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_slow_clients_do_not_keep_a_delivery_waiting() {
    use tokio::io::AsyncWriteExt as _;
    let app = test_app(Some(WEBHOOK_SECRET));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let mut slow = Vec::new();
    for i in 0..200 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             x-github-event: issues\r\nx-github-delivery: slow-{i}\r\n\
             x-hub-signature-256: sha256=00\r\ncontent-length: 1000000\r\n\r\n{{\"action\":"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        slow.push(socket); // the rest never comes
    }
    // Let the server take every slow request in hand.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/github"))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", delivery_id(200))
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .expect("answered within GitHub's 10 s");
    let took = started.elapsed();
    eprintln!("a signed delivery beside 200 slow clients was answered in {took:?}");
    assert_eq!(response.status().as_u16(), 202);
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    assert_eq!(
        app.inbox.depth().await.unwrap(),
        1,
        "only the signed delivery"
    );
    drop(slow);
    server.abort();
}

/// A host's own limit (a Lambda Function URL takes at most 6 MB) is the front door's limit:
/// a body over it is answered 413 by TfPilot, before the host would refuse it silently.
#[tokio::test]
async fn the_hosts_body_limit_is_the_front_doors() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let state = tfpilot::server::AppState::new(
        Some(secrecy::SecretString::from(WEBHOOK_SECRET)),
        app.inbox.clone(),
    )
    .with_max_body_bytes(tfpilot::lambda::FUNCTION_URL_MAX_BODY_BYTES);
    assert_eq!(state.max_body_bytes(), 6 * 1024 * 1024);
    let router = tfpilot::server::create_app(state);
    let mut body = support::webhook_fixture("issue_comment.created.installation.json");
    body.resize(6 * 1024 * 1024 + 1, b' ');
    let (status, text) = send(
        &router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &delivery_id(6), body),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("6291456"), "{text}");
}
