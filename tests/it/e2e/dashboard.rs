//! The requests dashboard: one issue per infra repository, opened and kept by TfPilot, updated
//! once per burst of events, put back when edited by hand, and off when `.tfpilot.yml` says so.

use super::{REPO, World, within};

const EDIT: &str = "PATCH /repos/{owner}/{repo}/issues/{number}";
const OPEN: &str = "POST /repos/{owner}/{repo}/issues";

/// The dashboard issue TfPilot opened (the only issue by the App).
fn dashboard(w: &World) -> (u64, String) {
    let bot = w.sim.bot_login();
    let issues = w.sim.issues_by(REPO, &bot);
    assert_eq!(issues.len(), 1, "one dashboard issue: {issues:?}");
    let (title, body, open, _) = w.sim.issue(REPO, issues[0]).expect("dashboard issue");
    assert_eq!(title, "TfPilot requests dashboard");
    assert!(open, "the dashboard is open");
    (issues[0], body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_requests_with_one_edit_per_burst_and_puts_back_hand_edits() {
    within(240, async {
        let w = World::start().await;
        let first = w
            .sim
            .open_issue(REPO, "carol", "A bucket for the team", "")
            .expect("issue");
        w.say(first, "carol", "/tfpilot new s3-bucket env=dev")
            .await;
        assert_eq!(w.sim.call_count(OPEN), 1, "opened with the first request");
        let (number, body) = dashboard(&w);
        assert!(body.contains("### Waiting for inputs (1)"), "{body}");
        assert!(
            body.contains(&format!("| carol | `collecting` | <1 h | #{first} |")),
            "{body}"
        );
        assert!(!body.contains("No open requests."), "{body}");

        // A burst: three requests arrive before the worker gets to them. One edit for all.
        let edits = w.sim.call_count(EDIT);
        let mut burst = Vec::new();
        for n in 0..3 {
            let issue = w
                .sim
                .open_issue(REPO, "dave", &format!("Queue {n}"), "")
                .expect("issue");
            w.sim
                .user_comment(REPO, issue, "dave", "/tfpilot new sqs-queue env=dev")
                .await
                .expect("comment");
            burst.push(issue);
        }
        w.settle().await;
        assert_eq!(w.sim.call_count(EDIT) - edits, 1, "a burst costs one edit");
        let (same, body) = dashboard(&w);
        assert_eq!(same, number, "the same issue is kept");
        assert!(body.contains("### Waiting for inputs (4)"), "{body}");
        for issue in &burst {
            assert!(body.contains(&format!("| #{issue} |")), "{body}");
        }

        // Nothing the dashboard shows changed: no edit.
        let edits = w.sim.call_count(EDIT);
        w.say(first, "carol", "/tfpilot status").await;
        assert_eq!(
            w.sim.call_count(EDIT),
            edits,
            "an unchanged body is not written"
        );

        // A hand edit is put back, once (TfPilot's own edit is not answered again).
        w.sim
            .edit_issue_as(REPO, number, "mallory", "nothing to see here")
            .await
            .expect("edit");
        w.settle().await;
        let (_, restored) = dashboard(&w);
        assert_eq!(restored, body, "the hand edit is put back");
        assert_eq!(w.sim.call_count(EDIT) - edits, 1);

        // Closed by hand: opened again (`dashboard: false` is how to turn it off).
        w.sim
            .set_issue_open_as(REPO, number, "carol", false)
            .await
            .expect("close");
        w.settle().await;
        let _ = dashboard(&w);

        // A cancelled request moves to the finished ones.
        w.say(burst[0], "dave", "/tfpilot cancel").await;
        let (_, body) = dashboard(&w);
        assert!(body.contains("### Waiting for inputs (3)"), "{body}");
        assert!(body.contains("### Last 1 finished"), "{body}");
        assert!(
            body.contains(&format!("`cancelled` | <1 h | #{} |", burst[0])),
            "{body}"
        );
        // Still listed after the next change: it is read back by id, not found by a history scan.
        w.say(burst[1], "dave", "/tfpilot cancel").await;
        let (_, body) = dashboard(&w);
        assert!(body.contains("### Last 2 finished"), "{body}");
        for issue in &burst[..2] {
            assert!(
                body.contains(&format!("`cancelled` | <1 h | #{issue} |")),
                "{body}"
            );
        }
        assert_eq!(w.sim.call_count(OPEN), 1, "never a second dashboard");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_can_turn_the_dashboard_off_and_on_again() {
    within(180, async {
        let w = World::start().await;
        let settings = w.sim.file(REPO, "main", ".tfpilot.yml").expect("settings");
        let off = format!("{settings}\ndashboard: false\n");
        let set = |text: &str| {
            w.sim
                .push(REPO, "main", "alice", &[(".tfpilot.yml", Some(text))])
                .expect("push");
        };
        set(&off);
        let first = w
            .sim
            .open_issue(REPO, "carol", "A bucket", "")
            .expect("issue");
        let step = w
            .say(first, "carol", "/tfpilot new s3-bucket env=dev")
            .await;
        assert!(!step.replies.is_empty(), "the request is answered");
        assert_eq!(w.sim.call_count(OPEN), 0, "no dashboard");
        assert!(w.sim.issues_by(REPO, &w.sim.bot_login()).is_empty());

        // On again: the first dashboard lists what the repository already has.
        set(&settings);
        let second = w
            .sim
            .open_issue(REPO, "dave", "A queue", "")
            .expect("issue");
        w.say(second, "dave", "/tfpilot new sqs-queue env=dev")
            .await;
        let (number, body) = dashboard(&w);
        assert!(body.contains("### Waiting for inputs (2)"), "{body}");

        // Off again: closed once, saying why, and left alone.
        set(&off);
        w.say(first, "carol", "/tfpilot cancel").await;
        let (_, body, open, _) = w.sim.issue(REPO, number).expect("dashboard");
        assert!(!open, "closed");
        assert!(body.contains("Turned off by `dashboard: false`"), "{body}");
        let edits = w.sim.call_count(EDIT);
        w.sim
            .edit_issue_as(REPO, number, "mallory", "mine now")
            .await
            .expect("edit");
        w.settle().await;
        w.say(second, "dave", "/tfpilot cancel").await;
        assert_eq!(
            w.sim.call_count(EDIT),
            edits,
            "a dashboard turned off is left alone"
        );
    })
    .await;
}
