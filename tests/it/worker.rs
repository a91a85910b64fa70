//! The worker: deliveries from the router's inbox reach the handler exactly once after success,
//! failures stay for a retry (also after a restart), and the background loop of `serve` resumes
//! and follows the inbox.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use secrecy::SecretString;
use tfpilot::ids::DeliveryId;
use tfpilot::inbox::{Delivery, FsInbox, Inbox, ItemStatus};
use tfpilot::server::{self, AppState};
use tfpilot::webhook::Event;
use tfpilot::worker::{DrainReport, EventHandler, Outcome, Worker};
use tokio::sync::mpsc;

use crate::support::{self, WEBHOOK_SECRET, signed_delivery};
use crate::webhook::{send, test_app};

/// Records what it handled; fails its first `failures` calls; reports each success on a channel.
#[derive(Default)]
pub struct RecordingHandler {
    pub handled: Mutex<Vec<(String, String)>>,
    pub calls: AtomicU32,
    failures: u32,
    panics: bool,
    notify: Option<mpsc::UnboundedSender<String>>,
    /// `(delivery id, reason)` of every delivery reported as given up.
    pub given_up: Mutex<Vec<(String, String)>>,
    /// How many deliveries had been handled at each settle.
    pub settled: Mutex<Vec<usize>>,
}

impl RecordingHandler {
    pub fn failing(failures: u32) -> Self {
        Self {
            failures,
            ..Self::default()
        }
    }

    pub fn handled_ids(&self) -> Vec<String> {
        self.handled
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[async_trait]
impl EventHandler for RecordingHandler {
    async fn handle(&self, delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.panics {
            panic!("handler bug");
        }
        if call <= self.failures {
            anyhow::bail!("GitHub answered 502 (attempt {call})");
        }
        self.handled
            .lock()
            .unwrap()
            .push((delivery.id.to_string(), event.name().to_owned()));
        if let Some(tx) = &self.notify {
            let _ = tx.send(delivery.id.to_string());
        }
        Ok(())
    }

    async fn gave_up(&self, delivery: &Delivery, _event: &Event, reason: &str) {
        self.given_up
            .lock()
            .unwrap()
            .push((delivery.id.to_string(), reason.to_owned()));
    }

    async fn settle(&self) {
        let handled = self.handled.lock().unwrap().len();
        self.settled.lock().unwrap().push(handled);
    }
}

/// The next id the handler reports, within 10 seconds.
async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the worker handled the item within 10 s")
        .expect("the handler is alive")
}

/// `worker.run` in a task of its own, fed by `queue`, until the returned sender fires.
fn run_loop(
    worker: Worker,
    queue: mpsc::UnboundedReceiver<DeliveryId>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let loop_task = tokio::spawn(async move {
        worker
            .run(queue, async move {
                let _ = stop_rx.await;
            })
            .await
    });
    (stop_tx, loop_task)
}

/// Stops a loop [`run_loop`] started and waits (at most 5 s) until it has ended.
async fn stop_loop(
    stop_tx: tokio::sync::oneshot::Sender<()>,
    loop_task: tokio::task::JoinHandle<()>,
) {
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_task)
        .await
        .expect("stopped")
        .unwrap();
}

fn id(n: u32) -> String {
    format!("11111111-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn a_duplicate_delivery_is_processed_once() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let handler = Arc::new(RecordingHandler::default());
    let worker = Worker::new(app.inbox.clone(), handler.clone());
    let body = support::webhook_fixture("issue_comment.created.installation.json");

    for _ in 0..3 {
        send(
            &app.router,
            signed_delivery(WEBHOOK_SECRET, "issue_comment", &id(1), body.clone()),
        )
        .await;
    }
    let report = worker.drain().await.unwrap();
    assert_eq!(report.done, 1);
    // Redelivered after it was processed: still a duplicate, still not processed again.
    let (status, _) = send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &id(1), body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(worker.drain().await.unwrap(), DrainReport::default());
    assert_eq!(
        worker.process_one(&id(1).parse().unwrap()).await.unwrap(),
        Outcome::AlreadyFinished
    );
    assert_eq!(handler.handled_ids(), vec![id(1)]);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_handler_leaves_the_item_for_a_retry_after_restart() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issue_comment.pull_request.json");
    send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issue_comment", &id(2), body.clone()),
    )
    .await;
    let delivery_id: DeliveryId = id(2).parse().unwrap();

    // First life: the handler fails; the item stays pending with the failure recorded.
    {
        let failing = Arc::new(RecordingHandler::failing(u32::MAX));
        let worker = Worker::new(app.inbox.clone(), failing.clone());
        let outcome = worker.process_one(&delivery_id).await.unwrap();
        assert!(
            matches!(&outcome, Outcome::Retry { attempts: 1, error } if error.contains("502")),
            "{outcome:?}"
        );
        assert_eq!(failing.calls.load(Ordering::SeqCst), 1);
    }
    let item = app.inbox.get(&delivery_id).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::Pending);
    assert_eq!(item.state.attempts, 1);

    // Restart: a new process opens the same directory and resumes the item (once its retry is
    // due; this one is configured to retry at once).
    let reopened: Arc<dyn Inbox> = Arc::new(FsInbox::open(app.dir.path()).unwrap());
    assert_eq!(reopened.pending().await.unwrap(), vec![delivery_id.clone()]);
    let handler = Arc::new(RecordingHandler::default());
    let worker =
        Worker::new(reopened.clone(), handler.clone()).with_backoff(Duration::ZERO, Duration::ZERO);
    let report = worker.drain().await.unwrap();
    assert_eq!(report.done, 1);
    assert_eq!(handler.handled_ids(), vec![id(2)]);
    let item = reopened.get(&delivery_id).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::Done);
    assert_eq!(item.delivery.body.as_bytes(), body.as_slice());
}

#[tokio::test]
async fn attempts_are_bounded_then_the_item_is_given_up() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issues.opened.installation.json");
    send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issues", &id(3), body),
    )
    .await;
    let handler = Arc::new(RecordingHandler::failing(u32::MAX));
    let worker = Worker::new(app.inbox.clone(), handler.clone())
        .with_max_attempts(3)
        .with_backoff(Duration::ZERO, Duration::ZERO);
    assert_eq!(worker.drain().await.unwrap().retry, 1);
    assert_eq!(worker.drain().await.unwrap().retry, 1);
    let third = worker.drain().await.unwrap();
    assert_eq!(third.gave_up, 1);
    assert_eq!(worker.drain().await.unwrap(), DrainReport::default());
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
    let item = app
        .inbox
        .get(&id(3).parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.state.status, ItemStatus::GaveUp);
    assert_eq!(item.state.attempts, 3);
    assert!(
        item.state
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 3 failed attempts: GitHub answered 502")
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_failed_attempt_not_a_dead_worker() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issues.opened.installation.json");
    send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issues", &id(4), body),
    )
    .await;
    let handler = Arc::new(RecordingHandler {
        panics: true,
        ..RecordingHandler::default()
    });
    let worker = Worker::new(app.inbox.clone(), handler);
    let outcome = worker.process_one(&id(4).parse().unwrap()).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Retry { error, .. } if error.contains("panicked")),
        "{outcome:?}"
    );
    assert_eq!(app.inbox.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn items_are_processed_oldest_first() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let fixtures = support::own_webhook_fixtures();
    let mut sent = Vec::new();
    // Ids that sort opposite to the order they arrive in.
    for (n, (event, _, payload)) in fixtures.iter().enumerate() {
        let delivery = id(100 - n as u32);
        let (status, _) = send(
            &app.router,
            signed_delivery(
                WEBHOOK_SECRET,
                event,
                &delivery,
                serde_json::to_vec(payload).unwrap(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        sent.push(delivery);
    }
    let handler = Arc::new(RecordingHandler::default());
    let worker = Worker::new(app.inbox.clone(), handler.clone());
    assert_eq!(worker.drain().await.unwrap().done, fixtures.len());
    assert_eq!(handler.handled_ids(), sent);
}

#[tokio::test]
async fn the_logging_handler_accepts_every_handled_fixture() {
    let app = test_app(Some(WEBHOOK_SECRET));
    for (n, (event, _, payload)) in support::own_webhook_fixtures().iter().enumerate() {
        send(
            &app.router,
            signed_delivery(
                WEBHOOK_SECRET,
                event,
                &id(n as u32),
                serde_json::to_vec(payload).unwrap(),
            ),
        )
        .await;
    }
    let worker = Worker::new(app.inbox.clone(), Arc::new(tfpilot::worker::LoggingHandler));
    let report = worker.drain().await.unwrap();
    assert_eq!(report.done, 6);
    assert_eq!(app.inbox.depth().await.unwrap(), 0);

    // The handler latency histogram has samples now.
    let metrics = tfpilot::metrics::render();
    assert!(
        metrics.contains(r#"tfpilot_handler_duration_seconds_bucket{event="issue_comment",outcome="ok",le="0.005"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_serve_loop_resumes_undone_items_and_follows_new_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    // Left undone by a "crash" before this process started.
    let leftover = Delivery::new(
        id(10).parse().unwrap(),
        "issues",
        String::from_utf8(support::webhook_fixture("issues.opened.installation.json")).unwrap(),
    );
    inbox.put(&leftover).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = Arc::new(RecordingHandler {
        notify: Some(tx),
        ..RecordingHandler::default()
    });
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let state = AppState::new(Some(SecretString::from(WEBHOOK_SECRET)), inbox.clone())
        .with_work_queue(queue_tx);
    let worker = Worker::new(inbox.clone(), handler.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, state, worker, queue_rx, async move {
        let _ = stop_rx.await;
    }));

    assert_eq!(next(&mut rx).await, id(10), "resumed at start");

    // A delivery over real HTTP is queued to the worker.
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", id(11))
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(next(&mut rx).await, id(11), "handled as it arrived");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(inbox.depth().await.unwrap(), 0);
    assert_eq!(handler.handled_ids(), vec![id(10), id(11)]);
    assert_eq!(
        *handler.settled.lock().unwrap(),
        [1, 2],
        "settled after the drain at start, and when the queue was empty again"
    );
}

#[tokio::test]
async fn a_drain_settles_once_after_its_items_and_not_when_there_were_none() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let handler = Arc::new(RecordingHandler::default());
    let worker = Worker::new(inbox.clone(), handler.clone());
    worker.drain().await.unwrap();
    assert!(
        handler.settled.lock().unwrap().is_empty(),
        "nothing to settle"
    );
    for n in 20..23 {
        let item = Delivery::new(
            id(n).parse().unwrap(),
            "issues",
            String::from_utf8(support::webhook_fixture("issues.opened.installation.json")).unwrap(),
        );
        inbox.put(&item).await.unwrap();
    }
    let report = worker.drain().await.unwrap();
    assert_eq!(report.done, 3);
    assert_eq!(
        *handler.settled.lock().unwrap(),
        [3],
        "one settle for the burst, after all of it"
    );
}

#[tokio::test]
async fn the_serve_loop_retries_a_failed_item_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = Arc::new(RecordingHandler {
        notify: Some(tx),
        failures: 2,
        ..RecordingHandler::default()
    });
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let state = AppState::new(Some(SecretString::from(WEBHOOK_SECRET)), inbox.clone())
        .with_work_queue(queue_tx);
    let worker = Worker::new(inbox.clone(), handler.clone())
        .with_retry_interval(Duration::from_millis(20))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(40));
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);

    let body = support::webhook_fixture("issues.opened.installation.json");
    let (status, _) = send(
        &tfpilot::server::create_app(state),
        signed_delivery(WEBHOOK_SECRET, "issues", &id(20), body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(next(&mut rx).await, id(20));
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    stop_loop(stop_tx, loop_task).await;
    let item = inbox.get(&id(20).parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (item.state.status, item.state.attempts),
        (ItemStatus::Done, 3),
        "three attempts started: two failed, one succeeded"
    );
}

#[tokio::test]
async fn the_serve_loop_picks_up_items_that_never_reached_its_queue() {
    // E.g. a client that hung up between the inbox write and the queue, or another process
    // receiving into the same directory.
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = Arc::new(RecordingHandler {
        notify: Some(tx),
        ..RecordingHandler::default()
    });
    let (_queue_tx, queue_rx) = mpsc::unbounded_channel();
    let worker = Worker::new(inbox.clone(), handler).with_retry_interval(Duration::from_millis(20));
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    let body = support::webhook_fixture("issues.opened.installation.json");
    inbox
        .put(&Delivery::new(
            id(30).parse().unwrap(),
            "issues",
            String::from_utf8(body).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, id(30));
    stop_loop(stop_tx, loop_task).await;
}

/// One unreadable item (a torn or foreign file under `inbox/`) must not stop the worker: it is
/// given up, visibly, and every other pending item is still handled — by `drain` (the serve
/// loop's start and retries, the Lambda sweep) on either inbox.
#[tokio::test]
async fn an_unreadable_item_is_given_up_and_does_not_block_the_others() {
    let body = support::webhook_fixture("issues.opened.installation.json");
    let good = Delivery::new(
        id(7).parse().unwrap(),
        "issues",
        String::from_utf8(body).unwrap(),
    );
    let broken: DeliveryId = "00000000-0000-4000-8000-000000000000".parse().unwrap();

    let fs_dir = tempfile::tempdir().unwrap();
    let fs_inbox = Arc::new(FsInbox::open(fs_dir.path()).unwrap());
    std::fs::write(
        fs_dir.path().join(format!("inbox/{broken}.json")),
        b"{ torn",
    )
    .unwrap();
    let objects_dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(tfpilot::store::FsObjects::open(objects_dir.path()).unwrap());
    use tfpilot::store::objects::Objects as _;
    objects
        .put_if_absent(&format!("inbox/{broken}.json"), b"{ torn".to_vec())
        .await
        .unwrap();
    let object_inbox = Arc::new(tfpilot::inbox::ObjectInbox::new(objects));

    let inboxes: [Arc<dyn Inbox>; 2] = [fs_inbox, object_inbox];
    for inbox in inboxes {
        inbox.put(&good).await.unwrap();
        let handler = Arc::new(RecordingHandler::default());
        let worker = Worker::new(inbox.clone(), handler.clone());
        let report = worker
            .drain()
            .await
            .expect("a bad item does not fail the drain");
        assert_eq!(report.done, 1, "{report:?}");
        assert_eq!(report.gave_up, 1, "{report:?}");
        assert_eq!(handler.handled_ids(), vec![id(7)]);
        assert_eq!(inbox.pending().await.unwrap(), Vec::<DeliveryId>::new());
        assert_eq!(worker.drain().await.unwrap(), DrainReport::default());
    }
}

#[tokio::test]
async fn a_failed_item_waits_for_its_backoff_and_a_given_up_one_is_reported_to_the_handler() {
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issues.opened.installation.json");
    send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issues", &id(40), body),
    )
    .await;
    let handler = Arc::new(RecordingHandler::failing(u32::MAX));

    // With the production backoff, a drain right after a failure does not run the handler again.
    let patient = Worker::new(app.inbox.clone(), handler.clone()).with_max_attempts(2);
    assert_eq!(patient.drain().await.unwrap().retry, 1);
    let report = patient.drain().await.unwrap();
    assert_eq!(report.waiting, 1, "{report:?}");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    let item = app
        .inbox
        .get(&id(40).parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let failed_at = item.state.updated_at.expect("failure time recorded");
    let due = patient.next_attempt_at(item.state.attempts, failed_at);
    assert_eq!(due - failed_at, time::Duration::minutes(1));
    assert_eq!(
        patient.next_attempt_at(3, failed_at) - failed_at,
        time::Duration::minutes(4),
        "the wait doubles"
    );
    assert_eq!(
        patient.next_attempt_at(30, failed_at) - failed_at,
        time::Duration::hours(1),
        "up to the cap"
    );

    // Once due, the last attempt fails and the handler hears that the delivery is given up.
    let eager = Worker::new(app.inbox.clone(), handler.clone())
        .with_max_attempts(2)
        .with_backoff(Duration::ZERO, Duration::ZERO);
    assert_eq!(eager.drain().await.unwrap().gave_up, 1);
    let given_up = handler.given_up.lock().unwrap().clone();
    assert_eq!(given_up.len(), 1);
    assert_eq!(given_up[0].0, id(40));
    assert!(
        given_up[0].1.contains("gave up after 2 failed attempts"),
        "{given_up:?}"
    );
}

// ---- exactly once under concurrency: leases and per-thread order -------------------------------

/// Counts each delivery it handles, the order per thread, and checks that no two deliveries of
/// one thread are ever in its hands at the same time.
#[derive(Default)]
struct ConcurrencyProbe {
    calls: Mutex<std::collections::HashMap<String, u32>>,
    order: Mutex<std::collections::HashMap<String, Vec<String>>>,
    in_flight: Mutex<std::collections::HashSet<String>>,
    overlaps: AtomicU32,
    /// Ids whose first attempt fails.
    fail_once: Mutex<std::collections::HashSet<String>>,
    /// Given-up deliveries.
    given_up: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for ConcurrencyProbe {
    async fn handle(&self, delivery: &Delivery, _event: &Event) -> anyhow::Result<()> {
        let thread = tfpilot::inbox::thread_of(&delivery.event, delivery.body.as_bytes())
            .expect("test deliveries have a thread");
        let id = delivery.id.to_string();
        if !self.in_flight.lock().unwrap().insert(thread.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // Long enough for the other worker to try the same item or thread meanwhile.
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.in_flight.lock().unwrap().remove(&thread);
        if self.fail_once.lock().unwrap().remove(&id) {
            anyhow::bail!("GitHub answered 502");
        }
        *self.calls.lock().unwrap().entry(id.clone()).or_default() += 1;
        self.order
            .lock()
            .unwrap()
            .entry(thread)
            .or_default()
            .push(id);
        Ok(())
    }

    async fn gave_up(&self, delivery: &Delivery, _event: &Event, _reason: &str) {
        self.given_up.lock().unwrap().push(delivery.id.to_string());
    }
}

/// An `issue_comment` delivery on issue `issue` of the fixture's repository.
fn comment_on(issue: u64, n: u32) -> Delivery {
    let mut payload: serde_json::Value = serde_json::from_slice(&support::webhook_fixture(
        "issue_comment.created.installation.json",
    ))
    .unwrap();
    payload["issue"]["number"] = issue.into();
    payload["comment"]["id"] = (1000 + n).into();
    Delivery::new(id(n).parse().unwrap(), "issue_comment", payload.to_string())
}

/// `threads` × `per_thread` deliveries, interleaved across threads in delivery order; returns
/// the ids of each thread in delivery order.
async fn deliver_interleaved(
    inbox: &dyn Inbox,
    threads: u64,
    per_thread: u32,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut expected: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut n = 0;
    for _ in 0..per_thread {
        for issue in 1..=threads {
            n += 1;
            let d = comment_on(issue, n);
            let thread = tfpilot::inbox::thread_of(&d.event, d.body.as_bytes()).unwrap();
            expected.entry(thread).or_default().push(d.id.to_string());
            assert_eq!(
                inbox.put(&d).await.unwrap(),
                tfpilot::inbox::PutOutcome::Created
            );
            // Distinct receive times, so the delivery order is unambiguous.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    expected
}

/// Two workers (own owner ids, own inbox instances on one store) drain concurrently, one as
/// `serve`'s loop would (drains) and one as Lambda's S3 trigger plus sweep would (each item, then
/// drains). Returns the reports of both.
async fn race_two_workers(
    a: Worker,
    b: Worker,
    ids: Vec<DeliveryId>,
    inbox: Arc<dyn Inbox>,
) -> (Vec<DrainReport>, Vec<DrainReport>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let inbox_a = inbox.clone();
    let serve_like = tokio::spawn(async move {
        let mut reports = Vec::new();
        while !inbox_a.pending().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "not drained in 120 s");
            reports.push(a.drain().await.unwrap());
        }
        reports
    });
    let lambda_like = tokio::spawn(async move {
        // One invocation per S3 event, all at once (Lambda runs them on separate instances, each
        // with its own owner id), then the sweep.
        let mut invocations = tokio::task::JoinSet::new();
        for (n, id) in ids.iter().enumerate() {
            let instance = b.clone().with_owner(format!("{}-{n}", b.owner()));
            let id = id.clone();
            invocations.spawn(async move {
                let mut one = DrainReport::default();
                match instance.process_one(&id).await.unwrap() {
                    Outcome::Done => one.done += 1,
                    Outcome::Busy { .. } => one.busy += 1,
                    Outcome::HeldBack { .. } => one.held_back += 1,
                    Outcome::AlreadyFinished => one.skipped += 1,
                    other => panic!("{id}: {other:?}"),
                }
                one
            });
        }
        let mut reports = Vec::new();
        while let Some(one) = invocations.join_next().await {
            reports.push(one.unwrap());
        }
        while !inbox.pending().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "not drained in 120 s");
            reports.push(b.drain().await.unwrap());
        }
        reports
    });
    (serve_like.await.unwrap(), lambda_like.await.unwrap())
}

fn total(reports: &[DrainReport]) -> DrainReport {
    reports.iter().fold(DrainReport::default(), |mut t, r| {
        t.done += r.done;
        t.retry += r.retry;
        t.gave_up += r.gave_up;
        t.skipped += r.skipped;
        t.waiting += r.waiting;
        t.failed += r.failed;
        t.busy += r.busy;
        t.held_back += r.held_back;
        t
    })
}

async fn two_workers_one_store(label: &str, inbox_a: Arc<dyn Inbox>, inbox_b: Arc<dyn Inbox>) {
    let expected = deliver_interleaved(inbox_a.as_ref(), 4, 6).await;
    let ids: Vec<DeliveryId> = inbox_a.pending().await.unwrap();
    assert_eq!(ids.len(), 24);
    let probe = Arc::new(ConcurrencyProbe::default());
    let a = Worker::new(inbox_a.clone(), probe.clone()).with_owner(format!("{label}-a"));
    let b = Worker::new(inbox_b.clone(), probe.clone()).with_owner(format!("{label}-b"));
    let started = std::time::Instant::now();
    let (reports_a, reports_b) = race_two_workers(a, b, ids.clone(), inbox_b.clone()).await;
    let elapsed = started.elapsed();

    let calls = probe.calls.lock().unwrap().clone();
    let duplicated = calls.values().filter(|&&c| c > 1).count();
    let lost = ids
        .iter()
        .filter(|id| !calls.contains_key(id.as_str()))
        .count();
    let (ta, tb) = (total(&reports_a), total(&reports_b));
    eprintln!(
        "{label}: {} deliveries, {} handled, {duplicated} duplicated, {lost} lost in {elapsed:?}; \
         worker a {ta:?}; worker b {tb:?}",
        ids.len(),
        calls.len(),
    );
    assert_eq!(
        duplicated, 0,
        "every delivery handled at most once: {calls:?}"
    );
    assert_eq!(lost, 0, "every delivery handled");
    assert_eq!(ta.done + tb.done, ids.len(), "{ta:?} {tb:?}");
    assert_eq!(
        probe.overlaps.load(Ordering::SeqCst),
        0,
        "two deliveries of one thread were in hand at once"
    );
    assert_eq!(
        *probe.order.lock().unwrap(),
        expected,
        "each thread handled in delivery order"
    );
    for id in &ids {
        let item = inbox_a.get(id).await.unwrap().unwrap();
        assert_eq!(
            (item.state.status, item.state.attempts),
            (ItemStatus::Done, 1),
            "{id}: one attempt, done"
        );
    }
}

#[tokio::test]
async fn two_workers_on_one_s3_store_handle_every_delivery_once_in_thread_order() {
    let moto = support::MotoServer::start();
    let bucket = support::unique_bucket("leases");
    moto.create_bucket(&bucket).await;
    // moto's conditional writes are check-then-write without a lock; serialized here as S3's are
    // atomic, so the test does not pass by luck.
    let serial = support::SerialWrites::default();
    let inbox = |_| -> Arc<dyn Inbox> {
        let objects = tfpilot::store::S3Objects::new(moto.client(), bucket.clone());
        Arc::new(tfpilot::inbox::ObjectInbox::new(serial.wrap(objects)))
    };
    two_workers_one_store("s3", inbox(0), inbox(1)).await;
}

#[tokio::test]
async fn two_workers_on_one_directory_handle_every_delivery_once_in_thread_order() {
    let dir = tempfile::tempdir().unwrap();
    let a: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    let b: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    two_workers_one_store("fs", a, b).await;
}

#[tokio::test]
async fn a_failing_item_holds_back_only_its_own_thread() {
    let dir = tempfile::tempdir().unwrap();
    let inbox: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    let first = comment_on(1, 1);
    let second = comment_on(1, 2);
    let other = comment_on(2, 3);
    for d in [&first, &second, &other] {
        inbox.put(d).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let probe = Arc::new(ConcurrencyProbe::default());
    probe.fail_once.lock().unwrap().insert(first.id.to_string());
    let worker = Worker::new(inbox.clone(), probe.clone());

    let report = worker.drain().await.unwrap();
    assert_eq!(
        (report.retry, report.held_back, report.done),
        (1, 1, 1),
        "{report:?}"
    );
    // The S3 trigger (or serve's queue) for the later item of the thread also waits.
    assert_eq!(
        worker.process_one(&second.id).await.unwrap(),
        Outcome::HeldBack {
            behind: first.id.clone()
        }
    );
    let calls = probe.calls.lock().unwrap().clone();
    assert_eq!(
        calls.get(other.id.as_str()),
        Some(&1),
        "the other thread flowed"
    );
    assert_eq!(calls.get(second.id.as_str()), None, "held back");

    // Once the failed item is retried and succeeds, its thread follows in order.
    let due = worker.with_backoff(Duration::ZERO, Duration::ZERO);
    assert_eq!(due.drain().await.unwrap().done, 2);
    let thread = tfpilot::inbox::thread_of(&first.event, first.body.as_bytes()).unwrap();
    assert_eq!(
        probe.order.lock().unwrap()[&thread],
        vec![first.id.to_string(), second.id.to_string()]
    );
}

#[tokio::test]
async fn an_attempt_that_never_reported_back_counts_and_its_lease_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let inbox: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    let d = comment_on(5, 50);
    inbox.put(&d).await.unwrap();
    // A worker claims it and dies (a Lambda timeout, OOM, kill -9): no failure is ever recorded.
    let claim = inbox
        .claim(&d.id, "crashed-instance", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(matches!(claim, tfpilot::inbox::Claim::Claimed(ref s) if s.attempts == 1));

    let probe = Arc::new(ConcurrencyProbe::default());
    let worker = Worker::new(inbox.clone(), probe.clone())
        .with_backoff(Duration::ZERO, Duration::ZERO)
        .with_max_attempts(2);
    assert_eq!(
        worker.process_one(&d.id).await.unwrap(),
        Outcome::Busy {
            owner: "crashed-instance".into()
        },
        "not taken while the lease holds"
    );
    // A second covers the look above on a loaded machine (50 ms did not, under the suite).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The second (last) attempt also dies.
    assert!(matches!(
        inbox.claim(&d.id, "crashed-again", Duration::from_millis(1)).await.unwrap(),
        tfpilot::inbox::Claim::Claimed(ref s) if s.attempts == 2
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Its attempts are spent: given up (not stalling the inbox forever), and the person told.
    let outcome = worker.process_one(&d.id).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::GaveUp { attempts: 2, reason } if reason.contains("did not finish")),
        "{outcome:?}"
    );
    assert_eq!(*probe.given_up.lock().unwrap(), vec![d.id.to_string()]);
    assert!(probe.calls.lock().unwrap().is_empty());
    assert_eq!(inbox.pending().await.unwrap(), Vec::<DeliveryId>::new());
}

/// A handler that takes its time, to stop the serve loop in the middle of a drain.
struct Slow(Arc<RecordingHandler>);

#[async_trait]
impl EventHandler for Slow {
    async fn handle(&self, delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.handle(delivery, event).await
    }
}

#[tokio::test]
async fn stopping_waits_for_the_item_in_hand_not_the_whole_drain() {
    let dir = tempfile::tempdir().unwrap();
    let inbox: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    for n in 0..10 {
        inbox
            .put(&comment_on(100 + n as u64, 60 + n))
            .await
            .unwrap();
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let recording = Arc::new(RecordingHandler {
        notify: Some(tx),
        ..RecordingHandler::default()
    });
    let worker = Worker::new(inbox.clone(), Arc::new(Slow(recording.clone())));
    let (_queue_tx, queue_rx) = mpsc::unbounded_channel();
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    next(&mut rx).await; // the start-up drain is under way
    let asked = std::time::Instant::now();
    stop_loop(stop_tx, loop_task).await;
    let took = asked.elapsed();
    let handled = recording.handled_ids().len();
    eprintln!("stopped {took:?} after the signal, {handled} of 10 handled");
    assert!(
        handled <= 2,
        "the drain went on after the signal: {handled} handled"
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(inbox.pending().await.unwrap().len(), 10 - handled);
}

/// A handler failing for a reason retrying cannot fix (here: GitHub refusing the App's key)
/// marks it `Permanent`: the delivery is given up on its first attempt, not retried for hours,
/// the handler is told (so the person is answered), and the error keeps its whole chain.
#[tokio::test]
async fn a_failure_retrying_cannot_fix_is_given_up_at_once_and_answered() {
    struct BadKey {
        given_up: Mutex<Vec<String>>,
    }
    #[async_trait]
    impl EventHandler for BadKey {
        async fn handle(&self, _delivery: &Delivery, _event: &Event) -> anyhow::Result<()> {
            let github = tfpilot::github::GitHubError::Unauthorized {
                operation: "installation_token".into(),
                message: "A JSON web token could not be decoded".into(),
            };
            Err(tfpilot::executor::classify(
                anyhow::Error::new(github).context("answering the comment"),
            ))
        }
        async fn gave_up(&self, _delivery: &Delivery, _event: &Event, reason: &str) {
            self.given_up.lock().unwrap().push(reason.to_owned());
        }
    }
    let app = test_app(Some(WEBHOOK_SECRET));
    let body = support::webhook_fixture("issues.opened.installation.json");
    send(
        &app.router,
        signed_delivery(WEBHOOK_SECRET, "issues", &id(9), body),
    )
    .await;
    let handler = Arc::new(BadKey {
        given_up: Mutex::default(),
    });
    let worker = Worker::new(app.inbox.clone(), handler.clone())
        .with_backoff(Duration::ZERO, Duration::ZERO);
    let report = worker.drain().await.unwrap();
    assert_eq!(report.gave_up, 1, "{report:?}");
    assert_eq!(report.retry, 0);
    let reasons = handler.given_up.lock().unwrap().clone();
    assert_eq!(reasons.len(), 1, "the handler answers the person once");
    let reason = &reasons[0];
    assert!(reason.starts_with("gave up at once"), "{reason}");
    for part in [
        "GitHub refuses the App's credentials",
        "answering the comment",
        "A JSON web token could not be decoded",
    ] {
        assert!(reason.contains(part), "the chain is kept: {reason}");
    }
    let item = app
        .inbox
        .get(&id(9).parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.state.status, ItemStatus::GaveUp);
    assert_eq!(item.state.attempts, 1);
}

/// Waits (at most 10 s) until the stored state of `id` satisfies `reached`, which says `what`.
async fn wait_for_state(
    inbox: &dyn Inbox,
    id: &DeliveryId,
    what: &str,
    reached: impl Fn(&tfpilot::inbox::ItemState) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !reached(&inbox.get(id).await.unwrap().expect("stored").state) {
        assert!(std::time::Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A handler that reports each success on the returned channel and fails its first `failures`
/// calls.
fn notifying(failures: u32) -> (Arc<RecordingHandler>, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = Arc::new(RecordingHandler {
        notify: Some(tx),
        failures,
        ..RecordingHandler::default()
    });
    (handler, rx)
}

/// Stores `deliveries` as the front door does, 2 ms apart (so their delivery order is
/// unambiguous), then queues all their ids at once (a test runtime of one thread: the worker
/// takes them only once the test waits).
async fn store_then_queue(
    inbox: &dyn Inbox,
    queue: &mpsc::UnboundedSender<DeliveryId>,
    deliveries: &[Delivery],
) {
    for d in deliveries {
        inbox.put(d).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for d in deliveries {
        queue.send(d.id.clone()).unwrap();
    }
}

/// A fs inbox in `dir` that counts its listings.
fn counting_fs_inbox(dir: &std::path::Path) -> Arc<CountingListings> {
    Arc::new(CountingListings {
        inner: Arc::new(FsInbox::open(dir).unwrap()),
        listings: AtomicU32::new(0),
    })
}

/// An inbox that counts its listings (`pending_entries`), around a real one.
struct CountingListings {
    inner: Arc<dyn Inbox>,
    listings: AtomicU32,
}

#[async_trait]
impl Inbox for CountingListings {
    async fn put(
        &self,
        delivery: &Delivery,
    ) -> Result<tfpilot::inbox::PutOutcome, tfpilot::inbox::InboxError> {
        self.inner.put(delivery).await
    }
    async fn get(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<tfpilot::inbox::InboxItem>, tfpilot::inbox::InboxError> {
        self.inner.get(id).await
    }
    async fn pending_entries(
        &self,
    ) -> Result<Vec<tfpilot::inbox::PendingEntry>, tfpilot::inbox::InboxError> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        self.inner.pending_entries().await
    }
    async fn claim(
        &self,
        id: &DeliveryId,
        owner: &str,
        ttl: Duration,
    ) -> Result<tfpilot::inbox::Claim, tfpilot::inbox::InboxError> {
        self.inner.claim(id, owner, ttl).await
    }
    async fn record_failure(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<u32, tfpilot::inbox::InboxError> {
        self.inner.record_failure(id, owner, error).await
    }
    async fn mark_done(&self, id: &DeliveryId) -> Result<(), tfpilot::inbox::InboxError> {
        self.inner.mark_done(id).await
    }
    async fn give_up(
        &self,
        id: &DeliveryId,
        reason: &str,
    ) -> Result<(), tfpilot::inbox::InboxError> {
        self.inner.give_up(id, reason).await
    }
    async fn prune(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<usize, tfpilot::inbox::InboxError> {
        self.inner.prune(before).await
    }
}

/// A burst of queued deliveries (ids sent faster than the worker takes them) is decided against
/// one listing of the inbox, not one listing per item: a listing reads every pending item, so
/// under a backlog a listing per item made the worker's time grow with the square of the backlog
/// (and took a core from the front door). Thread order still holds, and an item finished in the
/// batch does not hold back the next of its thread.
#[tokio::test]
async fn a_burst_of_queued_deliveries_shares_one_listing_and_keeps_thread_order() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = counting_fs_inbox(dir.path());
    let (recording, mut rx) = notifying(0);
    // One item for the start-up drain (its one listing): once it is handled, the loop waits on
    // its queue.
    inbox.put(&comment_on(99, 1)).await.unwrap();
    let worker = Worker::new(inbox.clone(), recording.clone());
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    assert_eq!(next(&mut rx).await, id(1));
    let before = inbox.listings.load(Ordering::SeqCst);
    assert_eq!(before, 1, "the start-up drain lists once");

    // 4 issues × 10 comments, stored, then queued at once.
    let mut expected: std::collections::HashMap<String, Vec<String>> = Default::default();
    let deliveries: Vec<Delivery> = (2..42)
        .map(|n| comment_on(1 + u64::from(n % 4), n))
        .collect();
    for d in &deliveries {
        let thread = tfpilot::inbox::thread_of(&d.event, d.body.as_bytes()).unwrap();
        expected.entry(thread).or_default().push(d.id.to_string());
    }
    store_then_queue(inbox.as_ref(), &queue_tx, &deliveries).await;
    for _ in 0..40 {
        next(&mut rx).await;
    }
    assert_eq!(
        inbox.listings.load(Ordering::SeqCst) - before,
        1,
        "one listing for the burst"
    );
    let handled = recording.handled_ids();
    for (thread, ids) in &expected {
        let order: Vec<&String> = handled.iter().filter(|h| ids.contains(h)).collect();
        assert_eq!(order, ids.iter().collect::<Vec<_>>(), "thread {thread}");
    }
    // Stopping lets the item in hand finish (its done marker follows the handler's answer).
    stop_loop(stop_tx, loop_task).await;
    assert_eq!(inbox.depth().await.unwrap(), 0);
}

/// Deliveries of one thread can reach the queue in the other order than they were received
/// (their puts finish in one batch). The worker decides them in delivery order without waiting
/// for a drain: within a batch by the listing's order, and across batches by trying a held-back
/// id again with the next batch, once the older item it waited for was queued.
#[tokio::test]
async fn deliveries_of_one_thread_queued_out_of_order_are_handled_without_a_drain() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let recording = Arc::new(RecordingHandler {
        notify: Some(tx),
        ..RecordingHandler::default()
    });
    // One item for the start-up drain: once it is handled, the loop waits on its queue.
    inbox.put(&comment_on(99, 100)).await.unwrap();
    // No drain after that: only the queue can get the items handled.
    let worker = Worker::new(inbox.clone(), recording.clone())
        .with_retry_interval(Duration::from_secs(3600));
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    assert_eq!(next(&mut rx).await, id(100));
    let mut stored = Vec::new();
    for n in 1..=5 {
        let d = comment_on(7, n);
        inbox.put(&d).await.unwrap();
        stored.push(d.id.clone());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Items 2..=5 queued newest first, in one batch, while item 1 is not queued yet: all four
    // wait behind item 1…
    for id in stored[1..].iter().rev() {
        queue_tx.send(id.clone()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        recording.handled_ids(),
        [id(100)],
        "nothing of the thread handled before its oldest"
    );
    // …and are handled, in delivery order, once it is queued.
    queue_tx.send(stored[0].clone()).unwrap();
    for _ in 0..5 {
        next(&mut rx).await;
    }
    let mut expected = vec![id(100)];
    expected.extend(stored.iter().map(ToString::to_string));
    assert_eq!(recording.handled_ids(), expected);
    stop_loop(stop_tx, loop_task).await;
}

/// A batch of queued items yields to the retry drain after one retry interval: an older item
/// that failed is retried then, not after every slow item queued behind it.
#[tokio::test]
async fn a_long_batch_of_slow_items_yields_to_the_retry_of_a_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    let inbox: Arc<dyn Inbox> = Arc::new(FsInbox::open(dir.path()).unwrap());
    // The first call fails: the first delivery, which is then due again after 10 ms.
    let (recording, mut rx) = notifying(1);
    let worker = Worker::new(inbox.clone(), Arc::new(Slow(recording.clone())))
        .with_retry_interval(Duration::from_millis(700))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(10));
    // The start-up drain takes the first delivery and fails it (after 300 ms).
    let failing = comment_on(1, 90);
    inbox.put(&failing).await.unwrap();
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    wait_for_state(inbox.as_ref(), &failing.id, "claimed", |s| s.attempts > 0).await;
    // Meanwhile ten slow items on other threads are queued: one batch of 3 s.
    for n in 0..10 {
        let d = comment_on(10 + n as u64, 91 + n);
        inbox.put(&d).await.unwrap();
        queue_tx.send(d.id.clone()).unwrap();
    }
    let mut order = Vec::new();
    while order.len() < 11 {
        order.push(next(&mut rx).await);
    }
    stop_loop(stop_tx, loop_task).await;
    let retried_at = order
        .iter()
        .position(|id| *id == failing.id.to_string())
        .expect("the failed item was retried");
    assert!(
        retried_at < 5,
        "the failed item waited for the whole batch: handled as number {} of 11: {order:?}",
        retried_at + 1
    );
    assert_eq!(
        recording.calls.load(Ordering::SeqCst),
        12,
        "every item handled once, the failed one twice: {order:?}"
    );
}

/// Ids held back behind a failed item of their thread go into the next batch only up to half a
/// batch: a batch full of them would take one new id per listing, and a burst on other threads
/// would then cost a listing per delivery (each listing reads every pending item).
#[tokio::test]
async fn held_back_ids_never_crowd_a_burst_out_of_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = counting_fs_inbox(dir.path());
    // The first call fails: the start-up drain's one item, which is then not due for an hour.
    let (recording, mut rx) = notifying(1);
    let failing = comment_on(1, 1);
    inbox.put(&failing).await.unwrap();
    let worker = Worker::new(inbox.clone(), recording.clone())
        .with_queue_batch(8)
        .with_retry_interval(Duration::from_secs(3600))
        .with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let (stop_tx, loop_task) = run_loop(worker, queue_rx);
    wait_for_state(inbox.as_ref(), &failing.id, "failed", |s| {
        s.last_error.is_some()
    })
    .await;
    let before = inbox.listings.load(Ordering::SeqCst);

    // Ten newer comments on the failed item's issue (each waits behind it), then a burst of 40
    // on four other issues, all queued at once.
    let deliveries: Vec<Delivery> = (2..52)
        .map(|n| comment_on(if n < 12 { 1 } else { 2 + u64::from(n % 4) }, n))
        .collect();
    store_then_queue(inbox.as_ref(), &queue_tx, &deliveries).await;
    for _ in 0..40 {
        next(&mut rx).await;
    }
    let listings = inbox.listings.load(Ordering::SeqCst) - before;
    stop_loop(stop_tx, loop_task).await;
    // 50 ids in batches of 8 of which at most 4 are held back: about 13 listings. Held ids
    // filling whole batches would take one new id per listing: over 40.
    assert!(
        listings <= 16,
        "{listings} listings for 50 queued ids in batches of 8"
    );
    assert_eq!(recording.handled_ids().len(), 40, "the burst was handled");
    assert_eq!(
        inbox.pending().await.unwrap().len(),
        11,
        "the failed item and the ten behind it wait"
    );
}
