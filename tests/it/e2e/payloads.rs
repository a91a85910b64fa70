//! Payloads as GitHub may send them, end to end: a comment whose author GitHub sends as `null`
//! (a deleted account) is from an unknown user, who is answered, not crashed on.

use tfpilot_sim::SimComment;

use super::{REPO, World, within};
use crate::support::WEBHOOK_SECRET;

const PERMISSION: &str = "GET /repos/{owner}/{repo}/collaborators/{username}/permission";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_from_an_author_github_sends_as_null_is_denied_as_an_unknown_user() {
    within(120, async {
        let w = World::start().await;
        let issue = w
            .sim
            .open_issue(REPO, "carol", "a bucket", "")
            .expect("issue");

        // The comment exists on GitHub; its delivery does not reach TfPilot (no listener).
        w.sim
            .set_webhook_target("http://127.0.0.1:9/webhooks/github", WEBHOOK_SECRET);
        let comment_id = w
            .sim
            .user_comment(
                REPO,
                issue,
                "carol",
                "/tfpilot new s3-bucket env=dev name=orphan",
            )
            .await
            .expect("comment");
        w.sim.set_webhook_target(&w.webhook_url, WEBHOOK_SECRET);

        // GitHub delivers it again once the account is gone: `user: null`.
        let mut payload = w
            .sim
            .deliveries()
            .into_iter()
            .rev()
            .find(|d| d.event == "issue_comment")
            .expect("the comment's delivery")
            .payload;
        assert_eq!(payload["comment"]["id"], comment_id);
        payload["comment"]["user"] = serde_json::Value::Null;
        payload["sender"]["login"] = "ghost".into();
        let body = serde_json::to_vec(&payload).expect("json");
        let answer = reqwest::Client::new()
            .post(&w.webhook_url)
            .header("x-github-event", "issue_comment")
            .header("x-github-delivery", "6c9f1a2e-0000-4000-8000-000000000001")
            .header(
                "x-hub-signature-256",
                tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("deliver");
        assert_eq!(answer.status().as_u16(), 202, "{:?}", answer.text().await);

        w.sim.reset_calls();
        w.settle().await;
        let bot = w.sim.bot_login();
        let replies: Vec<SimComment> = w
            .sim
            .comments(REPO, issue)
            .into_iter()
            .filter(|c| c.author == bot)
            .collect();
        assert_eq!(replies.len(), 1, "{replies:#?}");
        assert!(
            replies[0].body.contains(
                "@ghost has no access to this repository, and opening a request needs write access."
            ),
            "{}",
            replies[0].body
        );
        // The unknown author is not looked up, and nothing was opened.
        assert_eq!(w.sim.call_count(PERMISSION), 0);
        assert!(
            w.store
                .find_by_thread(&REPO.parse().expect("repo"), issue)
                .await
                .expect("store")
                .is_none()
        );
    })
    .await;
}
