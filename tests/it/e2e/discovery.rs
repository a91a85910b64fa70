//! Catalogue discovery: `modules` and `modules <type>` answered on an issue, for anyone who can
//! comment, without opening a request.

use super::{REPO, World, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_lists_the_catalogue_and_one_types_inputs() {
    within(120, async {
        let w = World::start().await;
        let issue = w
            .sim
            .open_issue(REPO, "mallory", "What can I ask for?", "")
            .expect("issue");
        // Read access is enough: discovery changes nothing.
        let step = w.say(issue, "mallory", "/tfpilot modules").await;
        let reply = step.reply();
        assert!(reply.contains("### Module types"), "{reply}");
        for t in ["ecs-service", "iam-role-app", "s3-bucket", "sqs-queue"] {
            assert!(reply.contains(&format!("| `{t}` |")), "{reply}");
        }
        let step = w.say(issue, "mallory", "/tfpilot modules queue").await;
        let reply = step.reply();
        assert!(reply.contains("### `sqs-queue`: SQS queue"), "{reply}");
        assert!(reply.contains("| required |"), "{reply}");
        let step = w.say(issue, "mallory", "/tfpilot modules bukket").await;
        let reply = step.reply();
        assert!(
            reply.contains("`bukket` is not a module type — did you mean `bucket`?")
                || reply.contains("`bukket` is not a module type — did you mean `s3-bucket`?"),
            "{reply}"
        );
        let step = w.say(issue, "mallory", "/tfpilot help").await;
        assert!(step.reply().contains("/tfpilot modules [type]"));
        assert!(
            w.store
                .find_by_thread(&REPO.parse().unwrap(), issue)
                .await
                .expect("store")
                .is_none(),
            "no request was opened"
        );
    })
    .await;
}
