//! Webhooks GitHub never delivers, and webhooks that are not about the request: a lost run
//! completion and a lost merge are reconciled from the API; a pull request closed, reopened and
//! merged ends merged; another repository's pull request with the same number and a
//! `request/<id>` branch moves nothing.

use serde_json::{Value, json};
use tfpilot::domain::RequestStatus;
use tfpilot::executor::RECONCILE_AFTER;
use time::OffsetDateTime;

use super::{REPO, World, within};
use crate::support::WEBHOOK_SECRET;

/// A request on a fresh issue, complete and ready to submit.
async fn ready(w: &World, name: &str) -> u64 {
    let issue = w.sim.open_issue(REPO, "carol", name, "").expect("issue");
    let step = w
        .say(
            issue,
            "carol",
            &format!("/tfpilot new s3-bucket env=dev name={name}"),
        )
        .await;
    assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
    issue
}

/// Submitted and planned. Returns (issue, PR number).
async fn planned(w: &World, name: &str) -> (u64, u64) {
    let issue = ready(w, name).await;
    w.say(issue, "carol", "/tfpilot submit").await;
    let r = w.request(issue).await;
    assert_eq!(r.status, RequestStatus::Planned);
    (issue, r.pull_request.expect("a pull request").number)
}

/// A moment after the reconciliation deadline.
fn past_the_deadline() -> OffsetDateTime {
    OffsetDateTime::now_utc() + RECONCILE_AFTER + time::Duration::minutes(1)
}

/// Posts `payload` to TfPilot as a signed `event` delivery `guid`, as GitHub would.
async fn deliver(w: &World, event: &str, guid: &str, payload: &Value) {
    let body = serde_json::to_vec(payload).expect("json");
    let status = reqwest::Client::new()
        .post(&w.webhook_url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", guid)
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status.as_u16(), 202, "queued");
}

fn plan_comments(w: &World, pr: u64) -> usize {
    w.sim
        .comments(REPO, pr)
        .into_iter()
        .filter(|c| c.body.contains("### Terraform plan"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_completion_webhook_is_lost_is_reconciled() {
    within(240, async {
        let w = World::start().await;
        let issue = ready(&w, "invoices").await;

        w.sim.drop_webhooks("workflow_run", Some("completed"), 1);
        w.say(issue, "carol", "/tfpilot submit").await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planning, "the completion was lost");
        let pr = r.pull_request.expect("a pull request").number;
        let runs = w.sim.workflow_runs(REPO);
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0].conclusion.as_deref(),
            Some("success"),
            "{}",
            runs[0].log
        );
        assert_eq!(plan_comments(&w, pr), 0);
        let lost = w
            .sim
            .deliveries()
            .into_iter()
            .find(|d| d.dropped)
            .expect("the lost delivery is recorded");
        assert_eq!(lost.event, "workflow_run");
        assert_eq!(lost.action.as_deref(), Some("completed"));

        // Before the deadline the sweep leaves it to the webhook still in flight.
        let early = w
            .executor
            .reconcile(OffsetDateTime::now_utc())
            .await
            .expect("reconcile");
        assert_eq!(early.looked_at, 0, "{early:?}");
        assert_eq!(w.request(issue).await.status, RequestStatus::Planning);

        // Past it, the run is read from the API and decided as its webhook would have been.
        let before = w.sim.total_calls();
        let report = w
            .executor
            .reconcile(past_the_deadline())
            .await
            .expect("reconcile");
        println!(
            "reconciling a lost plan completion took {} GitHub API calls",
            w.sim.total_calls() - before
        );
        assert_eq!(report.decided, 1, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
        // (The webhooks of TfPilot's own comments, which it ignores.)
        w.settle().await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned);
        assert_eq!(plan_comments(&w, pr), 1, "the plan is posted");

        // The same sweep again decides nothing, and the webhook arriving late (an admin's
        // "Redeliver") is a redelivery, not a second decision.
        let again = w
            .executor
            .reconcile(past_the_deadline())
            .await
            .expect("reconcile");
        assert_eq!(again.decided, 0, "{again:?}");
        deliver(&w, "workflow_run", "redelivered-completion", &lost.payload).await;
        assert_eq!(w.settle().await, 1);
        assert_eq!(plan_comments(&w, pr), 1, "the plan is posted once");
        let after = w.request(issue).await;
        assert_eq!(after.status, RequestStatus::Planned);
        assert_eq!(
            after.timeline.len(),
            r.timeline.len(),
            "nothing decided twice"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_whose_webhook_is_lost_is_reconciled_to_merged() {
    within(240, async {
        let w = World::start().await;
        let (issue, pr) = planned(&w, "ledger").await;

        w.sim.drop_webhooks("pull_request", Some("closed"), 1);
        let sha = w.sim.merge_pr_as(REPO, pr, "dave").await.expect("merge");
        w.settle().await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);

        let report = w
            .executor
            .reconcile(past_the_deadline())
            .await
            .expect("reconcile");
        assert_eq!(report.decided, 1, "{report:?}");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Merged);
        assert_eq!(
            r.pull_request.and_then(|p| p.merge_commit_sha).as_deref(),
            Some(sha.as_str())
        );
        let merged = w
            .sim
            .comments(REPO, issue)
            .into_iter()
            .filter(|c| c.body.contains("is merged."))
            .count();
        assert_eq!(merged, 1, "the merge is answered once");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_closed_reopened_and_merged_ends_merged() {
    within(240, async {
        let w = World::start().await;
        let (issue, pr) = planned(&w, "archive").await;

        w.sim.close_pr_as(REPO, pr, "dave").await.expect("close");
        w.settle().await;
        assert_eq!(w.request(issue).await.status, RequestStatus::PrClosed);

        w.sim.reopen_pr_as(REPO, pr, "dave").await.expect("reopen");
        w.settle().await;
        w.sim.merge_pr_as(REPO, pr, "dave").await.expect("merge");
        w.settle().await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Merged, "{:#?}", r.timeline);
        let closes: Vec<_> = w
            .sim
            .deliveries()
            .into_iter()
            .filter(|d| d.event == "pull_request" && d.action.as_deref() != Some("opened"))
            .map(|d| d.action.unwrap_or_default())
            .collect();
        assert_eq!(closes, ["closed", "reopened", "closed"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_of_another_repository_with_the_same_number_moves_nothing() {
    within(240, async {
        let w = World::start().await;
        let (issue, pr) = planned(&w, "reports").await;
        let id = w.request(issue).await.id;

        // The same installation's other repository: a pull request with the same number, from
        // a branch named after the request, merged.
        let opened = w
            .sim
            .deliveries()
            .into_iter()
            .find(|d| d.event == "pull_request" && d.action.as_deref() == Some("opened"))
            .expect("the opened delivery");
        let mut payload = opened.payload.clone();
        payload["action"] = json!("closed");
        payload["number"] = json!(pr);
        payload["repository"]["name"] = json!("other-terraform");
        payload["repository"]["full_name"] = json!("acme/other-terraform");
        payload["pull_request"]["number"] = json!(pr);
        payload["pull_request"]["state"] = json!("closed");
        payload["pull_request"]["merged"] = json!(true);
        payload["pull_request"]["merge_commit_sha"] =
            json!("0123456789abcdef0123456789abcdef01234567");
        assert_eq!(
            payload["pull_request"]["head"]["ref"],
            json!(format!("request/{id}"))
        );
        deliver(&w, "pull_request", "other-repo-close", &payload).await;
        assert_eq!(w.settle().await, 1);
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned, "{:#?}", r.timeline);
        assert!(
            !w.sim
                .comments(REPO, issue)
                .iter()
                .any(|c| c.body.contains("is merged.")),
            "nothing answered"
        );

        // The same event from this repository is the request's (the control).
        payload["repository"] = opened.payload["repository"].clone();
        payload["pull_request"]["head"]["sha"] =
            opened.payload["pull_request"]["head"]["sha"].clone();
        deliver(&w, "pull_request", "this-repo-close", &payload).await;
        w.settle().await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
    })
    .await;
}
