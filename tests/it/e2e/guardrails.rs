//! Guardrails that an adversary with an account on the repository would test, end to end:
//! GitHub's merge button instead of `/tfpilot approve`, `.tfpilot.yml` narrowing the approvers
//! outside prod, a branch prepared under a request's name, a look-alike workflow run.

use tfpilot::domain::RequestStatus;
use tfpilot_sim::Permission;

use super::{REPO, World, within};

/// A request in `env` opened by carol, submitted and planned. Returns (issue, PR number).
async fn planned(w: &World, env: &str, name: &str) -> (u64, u64) {
    let issue = w
        .sim
        .open_issue(REPO, "carol", &format!("{name} in {env}"), "")
        .expect("issue");
    let step = w
        .say(
            issue,
            "carol",
            &format!("/tfpilot new s3-bucket env={env} name={name}"),
        )
        .await;
    assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
    w.say(issue, "carol", "/tfpilot submit").await;
    let r = w.request(issue).await;
    assert_eq!(r.status, RequestStatus::Planned);
    (issue, r.pull_request.expect("a pull request").number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prod_change_merged_with_the_button_is_applied_only_after_an_approval() {
    within(240, async {
        let w = World::start().await;
        let (issue, pr) = planned(&w, "prod", "ledger").await;

        // Anyone with write access can press the button; nobody approved.
        w.sim.merge_pr_as(REPO, pr, "dave").await.expect("merge");
        w.settle().await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
        let merged = w
            .sim
            .comments(REPO, issue)
            .into_iter()
            .rev()
            .find(|c| c.body.contains("is merged."))
            .expect("the merge is answered");
        assert!(
            merged.body.contains("`/tfpilot approve`"),
            "{}",
            merged.body
        );

        // bob is on the prod allow-list, but nobody approved what was merged.
        let step = w.say(issue, "bob", "/tfpilot apply").await;
        assert!(
            step.reply()
                .contains("was merged without a TfPilot approval of the merged commit"),
            "{}",
            step.reply()
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
        assert!(
            w.sim
                .terraform_state(REPO, "prod")
                .is_none_or(|s| !s.contains("ledger")),
            "nothing was applied"
        );

        // alice approves the merged change; then bob's apply goes through.
        let step = w.say(issue, "alice", "/tfpilot approve").await;
        assert!(
            step.reply().contains("Approved for `prod` by @alice"),
            "{}",
            step.reply()
        );
        let step = w.say(issue, "bob", "/tfpilot apply").await;
        step.find("Applied to `prod`");
        assert_eq!(w.request(issue).await.status, RequestStatus::Applied);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_approvers_narrow_approve_in_dev_too() {
    within(240, async {
        let w = World::start().await;
        w.sim.add_user("erin", Permission::Write);
        let settings = w.sim.file(REPO, "main", ".tfpilot.yml").expect("settings");
        w.sim
            .push(
                REPO,
                "main",
                "alice",
                &[(
                    ".tfpilot.yml",
                    Some(&format!("{settings}approvers:\n  - erin\n")),
                )],
            )
            .expect("push");
        let (issue, _) = planned(&w, "dev", "reports").await;

        let step = w.say(issue, "dave", "/tfpilot approve").await;
        let denial = step.reply();
        assert!(
            denial.contains("Only approvers can approve requests here.")
                && denial.contains("Ask @erin."),
            "{denial}"
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);
        let step = w.say(issue, "erin", "/tfpilot approve").await;
        assert!(
            step.reply().contains("Approved for `dev` by @erin"),
            "{}",
            step.reply()
        );
    })
    .await;
}

/// A request that is complete but not submitted. Returns (issue, request id).
async fn ready(w: &World, name: &str) -> (u64, tfpilot::ids::RequestId) {
    let issue = w.sim.open_issue(REPO, "carol", name, "").expect("issue");
    let step = w
        .say(
            issue,
            "carol",
            &format!("/tfpilot new s3-bucket env=dev name={name}"),
        )
        .await;
    assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
    (issue, w.request(issue).await.id)
}

/// Lines nobody reviewing a dev request would look for, in a file TfPilot does not own.
const SMUGGLED: (&str, Option<&str>) = (
    "envs/prod/smuggled.tf",
    Some("resource \"terraform_data\" \"smuggled\" {}\n"),
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_prepared_under_the_request_name_is_not_submitted() {
    within(240, async {
        let w = World::start().await;
        let (issue, id) = ready(&w, "invoices").await;
        // The request id is in TfPilot's answer; dave prepares its branch before the submit.
        w.sim
            .push(REPO, &format!("request/{id}"), "dave", &[SMUGGLED])
            .expect("push");

        let step = w.say(issue, "carol", "/tfpilot submit").await;
        let answer = step.find("could not open the pull request");
        assert!(answer.contains("commits TfPilot did not make"), "{answer}");
        assert!(
            w.sim.pull_requests(REPO).is_empty(),
            "no pull request carries the smuggled file"
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Ready);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_pushed_to_the_request_branch_are_never_approved_merged_or_built_on() {
    within(240, async {
        let w = World::start().await;
        let (issue, pr) = planned(&w, "dev", "invoices").await;
        let id = w.request(issue).await.id;
        let pushed = w
            .sim
            .push(REPO, &format!("request/{id}"), "dave", &[SMUGGLED])
            .expect("push");
        assert_eq!(
            w.sim
                .pull_requests(REPO)
                .into_iter()
                .find(|p| p.number == pr)
                .and_then(|p| p.head_sha),
            Some(pushed),
            "the pull request carries the push"
        );
        // A fresh plan of the new head does not make it TfPilot's change.
        w.say(issue, "dave", "/tfpilot plan").await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);
        let step = w.say(issue, "dave", "/tfpilot approve").await;
        assert!(
            step.reply().contains("commits TfPilot did not make"),
            "{}",
            step.reply()
        );
        assert!(w.request(issue).await.approvals.is_empty());
        // (A planned request may be merged when approvals carried over from an identical
        // plan make its quorum, so the head is looked at first.)
        let step = w.say(issue, "dave", "/tfpilot merge").await;
        assert!(
            step.reply().contains("commits TfPilot did not make"),
            "{}",
            step.reply()
        );
        // Nor does a new revision committed on top of it.
        let step = w.say(issue, "carol", "/tfpilot set versioning=on").await;
        step.find("could not update the pull request");
        let prs = w.sim.pull_requests(REPO);
        assert!(prs.iter().all(|p| !p.merged), "nothing merged");
        assert!(
            w.sim.file(REPO, "main", SMUGGLED.0).is_none(),
            "the smuggled file is not on main"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_merged_before_its_plan_succeeded_is_planned_on_the_base_and_applied() {
    within(240, async {
        let w = World::start().await;
        w.sim
            .set_workflow(REPO, "plan.yml", tfpilot_sim::WorkflowBehavior::Fail)
            .expect("workflow");
        let (issue, _) = ready(&w, "invoices").await;
        w.say(issue, "carol", "/tfpilot submit").await;
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::PlanFailed);
        let pr = r.pull_request.expect("pull request").number;
        w.sim.merge_pr_as(REPO, pr, "dave").await.expect("merge");
        w.settle().await;
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
        // Someone else's change lands on main after the merge.
        w.sim
            .push(REPO, "main", "alice", &[("README.md", Some("# infra\n"))])
            .expect("push");
        w.sim
            .set_workflow(
                REPO,
                "plan.yml",
                tfpilot_sim::WorkflowBehavior::TerraformPlan,
            )
            .expect("workflow");

        // The plan of the merged change runs on main as it is now; the apply follows it.
        w.say(issue, "carol", "/tfpilot plan").await;
        let plan = w.request(issue).await.runs[&tfpilot::domain::RunKind::Plan].clone();
        assert_eq!(
            plan.conclusion.map(tfpilot::domain::RunOutcome::as_str),
            Some("success")
        );
        assert_eq!(plan.head_sha, w.sim.branch_head(REPO, "main"));
        let step = w.say(issue, "carol", "/tfpilot apply").await;
        step.find("Applied to `dev`");
        assert_eq!(w.request(issue).await.status, RequestStatus::Applied);
    })
    .await;
}

/// An allow-list may name an account by its numeric id (`id:<number>`), which survives a
/// renamed login: erin is listed by id only and may approve in prod; bob, listed by login
/// elsewhere, is not on this list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_entry_by_account_id_names_its_owner_whatever_the_login() {
    within(240, async {
        let mut policy = super::default_policy();
        // The id is known only once a simulator has the user: read it from one World, then
        // start the World under test with that id on the list (the simulator's ids are
        // deterministic; asserted below).
        let w = World::start().await;
        w.sim.add_user("erin", Permission::Write);
        let erin = w.sim.user_id("erin").expect("erin has an id");
        policy.prod_allowed_users = vec![format!("id:{erin}")];
        drop(w);
        let w = World::start_with_policy(Default::default(), policy).await;
        w.sim.add_user("erin", Permission::Write);
        assert_eq!(w.sim.user_id("erin"), Some(erin), "ids are deterministic");
        // The repository narrows the lists; it names erin by id too.
        let settings = w
            .sim
            .file(REPO, "main", ".tfpilot.yml")
            .expect("the offline repo has .tfpilot.yml")
            .replace("  - bob\n", &format!("  - bob\n  - id:{erin}\n"));
        w.sim
            .push_commit(
                REPO,
                "main",
                "carol",
                "name erin by id",
                &[(".tfpilot.yml", Some(settings.as_str()))],
            )
            .expect("push");
        let (issue, _) = planned(&w, "prod", "vault").await;

        let step = w.say(issue, "bob", "/tfpilot approve").await;
        assert!(step.reply().contains("allow-list"), "{}", step.reply());
        assert_eq!(w.request(issue).await.status, RequestStatus::Planned);

        let step = w.say(issue, "erin", "/tfpilot approve").await;
        assert!(
            step.reply().contains("Approved for `prod` by @erin"),
            "{}",
            step.reply()
        );
        assert_eq!(w.request(issue).await.status, RequestStatus::Approved);
    })
    .await;
}
