//! Fault injection over a whole lifecycle (new → turn → submit → plan → approve → merge →
//! apply): every GitHub route TfPilot calls answers each fault kind (500, 502, a timeout, a
//! connection reset, a secondary rate limit) once per step, and for one route until the worker
//! gives up. Nothing may be lost or done twice: one pull request, one run per kind, every
//! command answered once, the request applied.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tfpilot::comments::marker_key;
use tfpilot::domain::RequestStatus;
use tfpilot::github::RetryPolicy;
use tfpilot_sim::Fault;

use super::{REPO, World, within};

/// Every route a clean lifecycle calls (checked by the baseline test, so it cannot drift).
const ROUTES: &[&str] = &[
    "GET /_blobs/artifacts/{artifact_id}",
    "GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip",
    "GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
    "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
    "GET /repos/{owner}/{repo}/contents/{*path}",
    "GET /repos/{owner}/{repo}/issues",
    "GET /repos/{owner}/{repo}/pulls/{number}",
    "POST /app/installations/{installation_id}/access_tokens",
    "POST /graphql createRef+createCommitOnBranch",
    "POST /graphql repository",
    "POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
    "POST /repos/{owner}/{repo}/check-runs",
    "POST /repos/{owner}/{repo}/issues",
    "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
    "POST /repos/{owner}/{repo}/issues/{number}/comments",
    "POST /repos/{owner}/{repo}/pulls",
    "PUT /repos/{owner}/{repo}/pulls/{number}/merge",
    "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
    "PATCH /repos/{owner}/{repo}/issues/{number}",
];

/// Client retries quick enough for a test (the transport's backoff is tested elsewhere).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(20),
    }
}

/// What a lifecycle left on GitHub and in the store.
#[derive(Debug)]
struct Outcome {
    status: RequestStatus,
    prs: usize,
    runs: BTreeMap<String, usize>,
    /// TfPilot's comments on the issue and the pull request, by marker key.
    markers: BTreeMap<String, usize>,
    /// Commands and turns typed, and those TfPilot answered (a `reply:<comment id>` marker).
    typed: usize,
    answered: usize,
    given_up_answers: usize,
    /// Requests dashboard issues TfPilot opened.
    dashboards: usize,
    routes: BTreeSet<String>,
    /// Calls answered with a fault, by route.
    faulted: BTreeMap<String, u64>,
}

const STEPS: &[(&str, &str)] = &[
    ("carol", "/tfpilot new s3-bucket env=dev"),
    ("carol", "Call it invoices, turn versioning on please"),
    ("carol", "/tfpilot submit"),
    ("dave", "/tfpilot approve"),
    ("dave", "/tfpilot merge"),
    ("carol", "/tfpilot apply"),
];

/// Runs the lifecycle; `before_step` arms faults before each comment.
async fn lifecycle(w: &World, before_step: impl Fn(&World, usize)) -> Outcome {
    lifecycle_of(w, STEPS, before_step).await
}

async fn lifecycle_of(
    w: &World,
    steps: &[(&str, &str)],
    before_step: impl Fn(&World, usize),
) -> Outcome {
    let issue = w
        .sim
        .open_issue(REPO, "carol", "Invoices bucket", "A bucket for invoices.")
        .expect("issue");
    let mut typed = BTreeSet::new();
    for (i, (login, body)) in steps.iter().enumerate() {
        before_step(w, i);
        let id = w
            .sim
            .user_comment(REPO, issue, login, body)
            .await
            .expect("comment");
        typed.insert(id);
        w.settle().await;
    }
    w.sim.clear_faults();
    w.settle().await;
    let r = w.request(issue).await;
    let bot = w.sim.bot_login();
    let mut threads = vec![issue];
    threads.extend(r.pull_request.as_ref().map(|p| p.number));
    let mut markers = BTreeMap::new();
    let mut given_up_answers = 0;
    for t in threads {
        for c in w.sim.comments(REPO, t) {
            if c.author != bot {
                continue;
            }
            let key = marker_key(&c.body).unwrap_or("<none>").to_owned();
            if key.starts_with("error:") {
                given_up_answers += 1;
            }
            *markers.entry(key).or_insert(0) += 1;
        }
    }
    let answered = typed
        .iter()
        .filter(|id| markers.contains_key(&format!("reply:{id}")))
        .count();
    let mut runs = BTreeMap::new();
    for run in w.sim.workflow_runs(REPO) {
        *runs.entry(run.workflow).or_insert(0) += 1;
    }
    Outcome {
        status: r.status,
        prs: w.sim.pull_requests(REPO).len(),
        runs,
        markers,
        typed: typed.len(),
        answered,
        given_up_answers,
        dashboards: w.sim.issues_by(REPO, &bot).len(),
        routes: w.sim.calls().into_keys().collect(),
        faulted: w.sim.faults_answered(),
    }
}

/// Nothing lost, nothing twice.
fn assert_exactly_once(o: &Outcome, what: &str) {
    assert_eq!(o.status, RequestStatus::Applied, "{what}: {o:#?}");
    assert_eq!(o.prs, 1, "{what}: one pull request: {o:#?}");
    let expected: BTreeMap<String, usize> =
        [("apply.yml".to_owned(), 1), ("plan.yml".to_owned(), 1)].into();
    assert_eq!(o.runs, expected, "{what}: one run per kind: {o:#?}");
    assert_eq!(o.dashboards, 1, "{what}: one dashboard issue: {o:#?}");
    let twice: Vec<_> = o.markers.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{what}: answers posted twice: {twice:?}");
    assert_eq!(
        o.answered, o.typed,
        "{what}: every command and turn answered: {o:#?}"
    );
}

/// Arms `fault` once on every route before each step.
fn every_route(fault: Fault) -> impl Fn(&World, usize) {
    move |w, _| {
        w.sim.clear_faults();
        for route in ROUTES {
            w.sim.inject_fault(route, fault.clone(), 1);
        }
    }
}

async fn under(fault: Fault) {
    within(300, async {
        let w = World::start_with(quick()).await;
        let what = format!("{fault:?} on every route");
        let o = lifecycle(&w, every_route(fault)).await;
        eprintln!(
            "{what}: {} faults answered on {} routes; {} answers, {} runs, {} PR, {} given up",
            o.faulted.values().sum::<u64>(),
            o.faulted.len(),
            o.markers.len(),
            o.runs.values().sum::<usize>(),
            o.prs,
            o.given_up_answers
        );
        let missed: Vec<_> = ROUTES
            .iter()
            .filter(|r| !o.faulted.contains_key(**r))
            .collect();
        assert!(
            missed.is_empty(),
            "{what}: routes never faulted: {missed:?}"
        );
        assert_exactly_once(&o, &what);
        assert_eq!(
            o.given_up_answers, 0,
            "{what}: nothing was given up: {o:#?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_lifecycle_calls_exactly_the_routes_under_test() {
    within(300, async {
        let w = World::start_with(quick()).await;
        let o = lifecycle(&w, |_, _| {}).await;
        assert_exactly_once(&o, "no fault");
        let listed: BTreeSet<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(
            o.routes, listed,
            "the routes a lifecycle calls changed: update ROUTES"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answering_500_once_loses_and_repeats_nothing() {
    under(Fault::ServerError(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answering_502_once_loses_and_repeats_nothing() {
    under(Fault::ServerError(502)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_timing_out_once_after_doing_the_call_loses_and_repeats_nothing() {
    under(Fault::Timeout { hold_ms: 200 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_reset_once_loses_and_repeats_nothing() {
    under(Fault::ConnectionReset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_rate_limited_once_loses_and_repeats_nothing() {
    under(Fault::SecondaryRateLimit {
        retry_after_secs: 1,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_failing_until_the_worker_gives_up_is_carried_out_by_the_next_command() {
    within(300, async {
        let w = World::start_with(quick()).await;
        let dispatch = "POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches";
        // The submit's plan dispatch fails until its delivery is given up; the person is told
        // once; the `status` that follows carries the dispatch (and the submit's answer) out
        // before it is decided.
        let mut steps = STEPS.to_vec();
        steps.insert(3, ("carol", "/tfpilot status"));
        let o = lifecycle_of(&w, &steps, |w, step| {
            w.sim.clear_faults();
            if step == 2 {
                w.sim
                    .inject_fault(dispatch, Fault::ServerError(500), 10_000);
            }
        })
        .await;
        assert_eq!(o.answered, o.typed, "every command answered: {o:#?}");
        let plans = o.runs.get("plan.yml").copied();
        assert_eq!(plans, Some(1), "the given-up dispatch ran once: {o:#?}");
        eprintln!("dispatch given up: {o:#?}");
        assert_eq!(
            o.given_up_answers, 1,
            "one answer for the given-up submit: {o:#?}"
        );
        assert_eq!(o.status, RequestStatus::Applied, "{o:#?}");
        assert_eq!(o.prs, 1, "{o:#?}");
        let twice: Vec<_> = o.markers.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "answers posted twice: {twice:?}");
    })
    .await;
}
