//! Check runs, their buttons and team approvals with a quorum, end to end through the
//! simulator: `tfpilot/plan` on the pull request's head with the plan, Approve and Apply buttons
//! decided exactly as the same person's comment, a quorum of two in prod with a team on the
//! prod list, `tfpilot/apply` after the apply, and a re-plan that keeps (or clears) approvals.

use tfpilot::domain::{Policy, RequestStatus};
use tfpilot::github::RetryPolicy;
use tfpilot_sim::{Permission, SimCheckRun};

use super::{REPO, World, default_policy, within};

/// alice, bob and the team `acme/platform` (erin, frank) on the prod list of the environment
/// and of `.tfpilot.yml`; prod needs two approvals (the repository asks for them).
fn quorum_policy() -> Policy {
    let mut p = default_policy();
    p.prod_allowed_users.push("acme/platform".into());
    p
}

async fn world() -> World {
    let w = World::start_with_policy(RetryPolicy::default(), quorum_policy()).await;
    for login in ["erin", "frank"] {
        w.sim.add_user(login, Permission::Write);
        w.sim.add_team_member("acme/platform", login);
    }
    let settings = w.sim.file(REPO, "main", ".tfpilot.yml").expect("settings");
    let settings = settings.replace("  - bob\n", "  - bob\n  - \"@acme/platform\"\n")
        + "approvals_required:\n  prod: 2\n";
    w.sim
        .push(REPO, "main", "alice", &[(".tfpilot.yml", Some(&settings))])
        .expect("push");
    w
}

/// A request in `env` opened by carol, submitted and planned. Returns (issue, PR number).
async fn planned(w: &World, env: &str, name: &str) -> (u64, u64) {
    let issue = w
        .sim
        .open_issue(REPO, "carol", &format!("{name} in {env}"), "")
        .expect("issue");
    w.say(
        issue,
        "carol",
        &format!("/tfpilot new s3-bucket env={env} name={name}"),
    )
    .await;
    w.say(issue, "carol", "/tfpilot submit").await;
    let r = w.request(issue).await;
    assert_eq!(r.status, RequestStatus::Planned);
    (issue, r.pull_request.expect("a pull request").number)
}

fn checks(w: &World, name: &str) -> Vec<SimCheckRun> {
    w.sim
        .check_runs(REPO)
        .into_iter()
        .filter(|c| c.name == name)
        .collect()
}

/// `login` clicks `button` on check run `id`; returns TfPilot's new comments on `thread`.
async fn click(w: &World, thread: u64, id: u64, button: &str, login: &str) -> Vec<String> {
    let before = w.sim.comments(REPO, thread).len();
    w.sim
        .click_check_run_button(id, button, login)
        .await
        .expect("click");
    w.settle().await;
    let bot = w.sim.bot_login();
    w.sim
        .comments(REPO, thread)
        .into_iter()
        .skip(before)
        .filter(|c| c.author == bot)
        .map(|c| c.body)
        .collect()
}

/// A comment without its first line (the hidden marker naming the input it answers).
fn words(body: &str) -> &str {
    body.split_once('\n').map_or(body, |(_, rest)| rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_two_in_prod_with_a_team_through_the_buttons() {
    within(300, async {
        let w = world().await;
        let (issue, pr) = planned(&w, "prod", "ledger").await;
        let head = w.sim.branch_head(REPO, &format!("request/{}", w.request(issue).await.id));

        // One `tfpilot/plan` on the pull request's head, completed with the plan.
        let plan = checks(&w, "tfpilot/plan");
        assert_eq!(plan.len(), 1, "{plan:#?}");
        let check = &plan[0];
        assert_eq!(Some(&check.head_sha), head.as_ref());
        assert_eq!(check.status, "completed");
        assert_eq!(check.conclusion.as_deref(), Some("success"));
        assert!(check.title.as_deref().unwrap_or_default().starts_with("Plan: "), "{check:?}");
        assert!(
            check.summary.as_deref().unwrap_or_default().contains("| resource | action |"),
            "{check:?}"
        );
        assert!(check.text.as_deref().unwrap_or_default().contains("```diff"), "{check:?}");
        assert_eq!(check.actions, ["approve"]);
        assert!(check.details_url.as_deref().unwrap_or_default().contains("/actions/runs/"));

        // dave (write access, not on the prod list): the click is refused with the very
        // reason his comment gets.
        let clicked = click(&w, pr, check.id, "approve", "dave").await;
        assert_eq!(clicked.len(), 1, "{clicked:#?}");
        let commented = w.say(pr, "dave", "/tfpilot approve").await;
        assert_eq!(words(&clicked[0]), words(commented.reply()));
        assert!(
            clicked[0].contains("Only members of the prod allow-list can approve in `prod`."),
            "{}",
            clicked[0]
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);

        // erin is on the list through the team: one approval of two.
        let clicked = click(&w, pr, check.id, "approve", "erin").await;
        assert_eq!(clicked.len(), 1, "{clicked:#?}");
        assert!(
            clicked[0].contains("`prod` needs 2 approvals by people who did not write the request, and this commit has 1 (@erin)."),
            "{}",
            clicked[0]
        );
        let step = w.say(pr, "alice", "/tfpilot merge").await;
        assert!(step.reply().contains("this commit has 1 (@erin)"), "{}", step.reply());
        // erin approving again does not make two.
        let step = w.say(pr, "erin", "/tfpilot approve").await;
        assert!(step.reply().contains("this commit has 1 (@erin)"), "{}", step.reply());

        // frank (the team too) brings the quorum; alice merges.
        let step = w.say(pr, "frank", "/tfpilot approve").await;
        assert!(
            step.reply().contains("Approved for `prod` by @erin, @frank"),
            "{}",
            step.reply()
        );
        w.say(pr, "alice", "/tfpilot merge").await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
        let check = checks(&w, "tfpilot/plan").remove(0);
        assert_eq!(check.actions, ["apply"], "Apply once merged");

        // dave's Apply click is refused like his comment; bob's applies.
        let clicked = click(&w, pr, check.id, "apply", "dave").await;
        assert!(
            clicked[0].contains("Only members of the prod allow-list can apply in `prod`."),
            "{clicked:#?}"
        );
        let before = w.sim.total_calls();
        let clicked = click(&w, pr, check.id, "apply", "bob").await;
        assert_eq!(clicked.len(), 1, "{clicked:#?}");
        assert!(clicked[0].contains("apply"), "{}", clicked[0]);
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Applied);
        let apply = checks(&w, "tfpilot/apply");
        assert_eq!(apply.len(), 1, "{apply:#?}");
        assert_eq!(apply[0].conclusion.as_deref(), Some("success"));
        assert_eq!(
            Some(&apply[0].head_sha),
            r.pull_request.as_ref().and_then(|p| p.merge_commit_sha.as_ref()),
            "on the merge commit applied"
        );
        println!("apply through the button: {} API calls", w.sim.total_calls() - before);
        let calls = w.sim.calls();
        let check_calls: u64 = calls
            .iter()
            .filter(|(k, _)| k.contains("check-runs"))
            .map(|(_, n)| n)
            .sum();
        let team_calls: u64 = calls
            .iter()
            .filter(|(k, _)| k.contains("/teams/"))
            .map(|(_, n)| n)
            .sum();
        println!("check-run calls: {check_calls}; team membership reads: {team_calls}");
        // Plan created + completed, Apply offered on merge, tfpilot/apply created.
        assert_eq!(check_calls, 4, "{calls:#?}");
        assert!(team_calls > 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_plan_keeps_the_approvals_only_while_the_plan_is_the_same() {
    within(300, async {
        let w = world().await;
        let (issue, pr) = planned(&w, "prod", "vault").await;
        w.say(pr, "alice", "/tfpilot approve").await;
        let step = w.say(pr, "erin", "/tfpilot approve").await;
        assert!(
            step.reply().contains("Approved for `prod`"),
            "{}",
            step.reply()
        );

        // The same commit planned again: the same resource changes, so both still count.
        let step = w.say(pr, "alice", "/tfpilot plan").await;
        let kept = step.find("makes the same resource changes as the one approved");
        assert!(kept.contains("@alice, @erin still count"), "{kept}");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned);
        assert_eq!(r.approvals.len(), 2);
        assert_eq!(
            checks(&w, "tfpilot/plan").len(),
            2,
            "a new plan, a new check run"
        );

        // A new revision changes the resources: the approvals no longer count.
        let step = w.say(pr, "carol", "/tfpilot set versioning=on").await;
        let cleared = step.find("no longer count");
        assert!(cleared.contains("@alice, @erin"), "{cleared}");
        assert!(w.request(issue).await.approvals.is_empty());
        let step = w.say(pr, "bob", "/tfpilot merge").await;
        assert!(
            step.reply().contains("an approved request"),
            "{}",
            step.reply()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_changing_the_settings_gets_tfpilot_config_with_every_problem() {
    within(300, async {
        let w = world().await;
        let settings = w.sim.file(REPO, "main", ".tfpilot.yml").expect("settings");
        let broken = settings.replace(
            "prod_destroy_allowed_users:\n  - alice\n",
            "prod_destroy_allowed_users:\n  - alice\n  - mallory\n",
        ) + "prod_alowed_users: [mallory]\napprovers:\n  - ghost-user-xyz\n  - \"@acme/nobody\"\n";
        w.sim
            .push(REPO, "tighten-prod", "alice", &[(".tfpilot.yml", Some(&broken))])
            .expect("push");
        w.sim
            .open_pr_as(REPO, "tighten-prod", "main", "Tighten prod", "alice")
            .await
            .expect("pull request");
        w.settle().await;
        let config = checks(&w, "tfpilot/config");
        assert_eq!(config.len(), 1, "{config:#?}");
        let check = &config[0];
        assert_eq!(check.conclusion.as_deref(), Some("failure"));
        assert_eq!(check.title.as_deref(), Some("4 problems in `.tfpilot.yml`"));
        let summary = check.summary.as_deref().unwrap_or_default();
        for problem in [
            "Unknown key `prod_alowed_users` (did you mean `prod_allowed_users`?).",
            "`prod_destroy_allowed_users` names `mallory`, whom TFPILOT_DESTROY_PROD_ALLOWED_USERS does not name",
            "`ghost-user-xyz` is not a GitHub user.",
            "`@acme/nobody` is not a team TfPilot can see",
        ] {
            assert!(summary.contains(problem), "{problem} in:\n{summary}");
        }

        // A pull request that does not touch the settings gets no check run.
        w.sim
            .push(REPO, "docs", "alice", &[("README.md", Some("docs\n"))])
            .expect("push");
        w.sim
            .open_pr_as(REPO, "docs", "main", "Docs", "alice")
            .await
            .expect("pull request");
        w.settle().await;
        assert_eq!(checks(&w, "tfpilot/config").len(), 1);
    })
    .await;
}
