//! Slack notices end to end: a local receiver stands in for the incoming webhook; the plan
//! waiting for approval and the approval reach it once each, in Block Kit; during a Slack outage
//! the lifecycle and every GitHub answer go on, and the notice is recorded as not delivered.

use std::collections::BTreeMap;

use secrecy::SecretString;
use tfpilot::domain::{EffectResult, RequestStatus};
use tfpilot::slack::{ATTEMPTS, SlackConfig};

use super::{REPO, World, within};
use crate::slack::SlackReceiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_slack_once_and_an_outage_costs_no_github_answer() {
    within(300, async {
        let slack = SlackReceiver::start().await;
        let w = World::start_with_slack(SlackConfig {
            webhook_url: Some(SecretString::from(slack.url.clone())),
            routes: BTreeMap::new(),
            github_web_url: "https://github.example.com".into(),
        })
        .await;
        let issue = w
            .sim
            .open_issue(REPO, "carol", "Reports bucket", "")
            .expect("issue");
        w.say(issue, "carol", "/tfpilot new s3-bucket env=dev name=reports")
            .await
            .find("**Ready.**");
        assert!(slack.messages().is_empty(), "nothing to tell yet");

        w.say(issue, "carol", "/tfpilot submit").await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned);
        let pr = r.pull_request.clone().expect("pr").number;
        let messages = slack.messages();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        let text = messages[0].to_string();
        assert!(text.contains("Plan ready, waiting for approval"), "{text}");
        assert!(
            text.contains(&format!(
                "https://github.example.com/{REPO}/issues/{issue}"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("https://github.example.com/{REPO}/pull/{pr}")),
            "{text}"
        );
        assert!(text.contains("/actions/runs/"), "the run is linked: {text}");

        w.say(issue, "dave", "/tfpilot approve")
            .await
            .find("Approved for `dev` by @dave");
        let messages = slack.messages();
        assert_eq!(messages.len(), 2);
        assert!(messages[1].to_string().contains("*Approved by*\\ndave"));

        // ---- Slack is down: merge and apply are answered all the same ------------------------
        slack.set_down(true);
        let before = slack.attempts();
        w.say(issue, "dave", "/tfpilot merge")
            .await
            .find("is merged. Next: `/tfpilot apply`");
        w.say(issue, "carol", "/tfpilot apply")
            .await
            .find("Applied to `dev`");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Applied);
        assert!(r.outbox.is_empty(), "nothing left pending: {:?}", r.outbox);
        let (key, record) = r
            .effects
            .iter()
            .find(|(k, _)| k.as_str().starts_with("notify:applied:"))
            .expect("the applied notice was decided");
        assert!(
            matches!(&record.result, EffectResult::Failed { error } if error.contains("Slack is unavailable") && !error.contains("secret")),
            "{key}: {:?}",
            record.result
        );
        assert_eq!(
            slack.attempts() - before,
            ATTEMPTS as usize,
            "tried a few times, then let go"
        );

        // ---- back up: the failed notice is not resent late, nothing is sent twice --------------
        slack.set_down(false);
        w.settle().await;
        assert_eq!(slack.messages().len(), 2, "no notice sent twice or late");
        assert_eq!(slack.problems(), Vec::<String>::new());
    })
    .await;
}
