//! Re-processing and concurrency: a redelivered submit, a crash between two effects, and two
//! deliveries about one request handled at the same moment.

use std::time::Duration;

use serde_json::Value;
use tfpilot::domain::RequestStatus;
use tfpilot::github::RetryPolicy;
use tfpilot_sim::Fault;

use super::{REPO, World, within};
use crate::support::WEBHOOK_SECRET;

/// A request on a fresh issue, complete and ready to submit.
async fn ready_request(w: &World) -> u64 {
    let issue = w
        .sim
        .open_issue(REPO, "carol", "bucket", "")
        .expect("issue");
    let step = w
        .say(
            issue,
            "carol",
            "/tfpilot new s3-bucket env=dev name=invoices",
        )
        .await;
    assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
    issue
}

/// What a submit must have left behind exactly once.
fn assert_submitted_once(w: &World, issue: u64) {
    let prs = w.sim.pull_requests(REPO);
    assert_eq!(prs.len(), 1, "one pull request");
    let runs = w.sim.workflow_runs(REPO);
    assert_eq!(runs.len(), 1, "one plan run: {runs:#?}");
    let branch = &prs[0].head;
    let commits = w.sim.commits(REPO, branch);
    let main = w.sim.commits(REPO, "main");
    assert_eq!(commits.len(), main.len() + 1, "one commit on the branch");
    let submitted = w
        .sim
        .comments(REPO, issue)
        .into_iter()
        .filter(|c| c.body.contains("Submitted revision 1"))
        .count();
    assert_eq!(submitted, 1, "one answer to the submit");
    let plans = w
        .sim
        .comments(REPO, prs[0].number)
        .into_iter()
        .filter(|c| c.body.contains("### Terraform plan"))
        .count();
    assert_eq!(plans, 1, "one plan comment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_delivered_again_under_a_new_guid_does_nothing_twice() {
    within(240, async {
        let w = World::start().await;
        let issue = ready_request(&w).await;
        w.say(issue, "carol", "/tfpilot submit").await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);
        assert_submitted_once(&w, issue);

        // GitHub redelivers the submit comment (an admin's "Redeliver", or a new hook).
        let original = w
            .sim
            .deliveries()
            .into_iter()
            .find(|d| {
                d.event == "issue_comment" && d.payload["comment"]["body"] == "/tfpilot submit"
            })
            .expect("the submit delivery");
        let body = serde_json::to_vec(&original.payload).expect("json");
        for guid in ["redelivered-1", "redelivered-2"] {
            let status = reqwest::Client::new()
                .post(&w.webhook_url)
                .header("content-type", "application/json")
                .header("x-github-event", "issue_comment")
                .header("x-github-delivery", guid)
                .header(
                    "x-hub-signature-256",
                    tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
                )
                .body(body.clone())
                .send()
                .await
                .expect("post")
                .status();
            assert_eq!(status.as_u16(), 202, "queued as a new delivery");
        }
        let before = w.sim.total_calls();
        let processed = w.settle().await;
        assert_eq!(processed, 2);
        assert_submitted_once(&w, issue);
        println!(
            "a redelivered submit took {} GitHub API calls",
            w.sim.total_calls() - before
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_effects_resumes_without_doing_anything_twice() {
    within(240, async {
        // No client-side retries: a 5xx fails the handler, as a crash would stop it.
        let w = World::start_with(RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_elapsed: Duration::from_secs(30),
        })
        .await;
        let issue = ready_request(&w).await;
        // The commit lands, then opening the pull request fails; on the next attempt the
        // dispatch starts the run but its answer is lost; then the comment is posted but its
        // answer is lost.
        w.sim.inject_fault(
            "POST /repos/{owner}/{repo}/pulls",
            Fault::ServerError(502),
            1,
        );
        w.sim.inject_fault(
            "POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
            Fault::ServerErrorAfterWrite(502),
            1,
        );
        w.sim.inject_fault(
            "POST /repos/{owner}/{repo}/issues/{number}/comments",
            Fault::ServerErrorAfterWrite(502),
            1,
        );
        w.say(issue, "carol", "/tfpilot submit").await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned, "resumed to the end");
        assert!(r.outbox.is_empty(), "{:?}", r.outbox);
        assert_eq!(
            w.sim.call_count("POST /repos/{owner}/{repo}/pulls"),
            2,
            "the failed attempt and the resumed one"
        );
        assert!(
            w.sim
                .call_count("POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches")
                >= 1
        );
        assert_submitted_once(&w, issue);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_about_one_request_at_once_lose_no_update() {
    within(240, async {
        let w = World::start().await;
        let issue = ready_request(&w).await;
        // Two answers arrive before TfPilot handles either; then both are handled at once.
        w.sim
            .user_comment(REPO, issue, "carol", "turn versioning on")
            .await
            .expect("comment");
        w.sim
            .user_comment(REPO, issue, "dave", "keep objects for 30 days")
            .await
            .expect("comment");
        w.sim.wait_idle().await;
        let pending = w.inbox.pending().await.expect("pending");
        assert_eq!(pending.len(), 2);
        let (a, b) = tokio::join!(
            w.worker.process_one(&pending[0]),
            w.worker.process_one(&pending[1])
        );
        let outcomes = [a.expect("a"), b.expect("b")];
        w.settle().await;
        let r = w.request(issue).await;
        assert_eq!(
            r.inputs.get("versioning_enabled"),
            Some(&Value::Bool(true)),
            "{outcomes:?} {:?}",
            r.inputs
        );
        assert_eq!(
            r.inputs.get("expiration_days"),
            Some(&Value::from(30)),
            "{:?}",
            r.inputs
        );
        let block = r.block.expect("block");
        assert!(
            block.contains("versioning_enabled = true")
                && block.contains("expiration_days    = 30"),
            "{block}"
        );
        let replies = w
            .sim
            .comments(REPO, issue)
            .into_iter()
            .filter(|c| c.author == w.sim.bot_login())
            .count();
        assert_eq!(replies, 3, "one answer to `new` and one to each turn");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_keeps_failing_is_answered_once_when_given_up() {
    within(240, async {
        let w = World::start_with(RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_elapsed: Duration::from_secs(30),
        })
        .await;
        let issue = w
            .sim
            .open_issue(REPO, "carol", "bucket", "")
            .expect("issue");
        // GitHub fails every permission check for longer than the worker's five attempts.
        w.sim.inject_fault(
            "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
            Fault::ServerError(503),
            50,
        );
        let step = w
            .say(
                issue,
                "carol",
                "/tfpilot new s3-bucket env=dev name=invoices",
            )
            .await;
        let reply = step.reply();
        assert!(
            reply.contains("Something went wrong on TfPilot's side")
                && reply.contains("delivery `"),
            "{reply}"
        );
        // The delivery id is random hex and may itself contain "503": it is taken out first.
        let delivery = reply
            .split_once("delivery `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(id, _)| id)
            .expect("the answer names the delivery");
        assert!(
            !reply.replace(delivery, "").contains("503"),
            "no internals in the answer: {reply}"
        );
        assert!(
            w.store
                .find_by_thread(&REPO.parse().unwrap(), issue)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

/// A signed `new` comment replayed under a fresh delivery id after its request was cancelled
/// and archived is not decided again: no second request opens under the original author's
/// name, and nothing is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replayed_after_its_request_was_archived_opens_nothing() {
    within(240, async {
        let w = World::start().await;
        let repo: tfpilot::ids::RepoName = REPO.parse().expect("repo");
        let issue = w
            .sim
            .open_issue(REPO, "carol", "bucket", "")
            .expect("issue");
        let new = "/tfpilot new s3-bucket env=dev name=invoices";
        w.say(issue, "carol", new).await;
        let id = w.request(issue).await.id;
        w.say(issue, "carol", "/tfpilot cancel").await;
        assert!(
            w.store
                .find_by_thread(&repo, issue)
                .await
                .expect("store")
                .is_none(),
            "the cancelled request is archived"
        );
        assert!(w.store.get_archived(id).await.expect("store").is_some());
        let comments_before = w.sim.comments(REPO, issue).len();

        let original = w
            .sim
            .deliveries()
            .into_iter()
            .find(|d| d.event == "issue_comment" && d.payload["comment"]["body"] == new)
            .expect("the new delivery");
        let body = serde_json::to_vec(&original.payload).expect("json");
        for guid in ["replayed-1", "replayed-2"] {
            let status = reqwest::Client::new()
                .post(&w.webhook_url)
                .header("content-type", "application/json")
                .header("x-github-event", "issue_comment")
                .header("x-github-delivery", guid)
                .header(
                    "x-hub-signature-256",
                    tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
                )
                .body(body.clone())
                .send()
                .await
                .expect("post")
                .status();
            assert_eq!(status.as_u16(), 202, "a valid signed delivery is queued");
        }
        assert_eq!(w.settle().await, 2);

        assert!(
            w.store
                .find_by_thread(&repo, issue)
                .await
                .expect("store")
                .is_none(),
            "the replay opened a request"
        );
        let live = w
            .store
            .list(&tfpilot::domain::ListFilter {
                repo: Some(repo.clone()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert!(live.is_empty(), "{live:?}");
        assert_eq!(
            w.sim.comments(REPO, issue).len(),
            comments_before,
            "the replay was answered"
        );
    })
    .await;
}

/// A reader's `new` with free text costs three GitHub calls (the permission, the eyes
/// reaction, the answer; and the first installation token): no `.tfpilot.yml` read, no paging through the thread for an earlier
/// answer (the assistant is not asked either: see the executor's unit tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readers_new_is_refused_at_the_cost_of_the_permission_check() {
    within(120, async {
        let w = World::start().await;
        // Comments on the thread already: paging through them would cost calls.
        let issue = w
            .sim
            .open_issue(REPO, "carol", "bucket", "")
            .expect("issue");
        let step = w
            .say(
                issue,
                "mallory",
                "/tfpilot new s3-bucket env=dev a bucket for the invoices please",
            )
            .await;
        assert!(
            step.reply()
                .contains("opening a request needs write access"),
            "{}",
            step.reply()
        );
        let calls = w.sim.calls();
        println!(
            "a reader's new took {} GitHub API calls: {calls:?}",
            step.calls
        );
        for route in [
            "GET /repos/{owner}/{repo}/contents/{*path}",
            "GET /repos/{owner}/{repo}/issues/{number}/comments",
        ] {
            assert_eq!(w.sim.call_count(route), 0, "{route}: {calls:?}");
        }
        // Permission, reaction, answer, plus the two repository-scoped installation tokens
        // (read-only and write, each fetched once and cached).
        assert!(step.calls <= 5, "{} calls: {calls:?}", step.calls);
    })
    .await;
}
