//! The whole lifecycle: dev from the first comment to applied, prod with its allow-list, then
//! destroy, cleanup PR and archive. Prints the GitHub API calls each step took.

use tfpilot::domain::RequestStatus;
use tfpilot::terraform::blocks::find_block;

use super::{DEV_FILE_HEADER, REPO, World, within};

/// GitHub API calls (counted against the rate limit) from `new` to applied in dev, and of a
/// `submit` alone.
const LIFECYCLE_BUDGET: u64 = 25;
const SUBMIT_BUDGET: u64 = 5;
/// The check runs' calls of the same lifecycle, counted apart.
const CHECK_RUN_CALLS: u64 = 4;
/// The requests dashboard's calls of the same lifecycle, counted apart: looked for (by its
/// marker) and opened with the request, then one edit per change it shows (ready, planning,
/// planned, approved, merged, applying, applied) — the submit's and the apply's two changes each
/// are seconds apart (a run between).
const DASHBOARD_CALLS: u64 = 9;

/// Calls that keep the requests dashboard among `routes`.
fn dashboard_calls(routes: &std::collections::BTreeMap<String, u64>) -> u64 {
    routes
        .iter()
        .filter(|(route, _)| {
            *route == "GET /repos/{owner}/{repo}/issues"
                || *route == "POST /repos/{owner}/{repo}/issues"
                || *route == "PATCH /repos/{owner}/{repo}/issues/{number}"
        })
        .map(|(_, n)| n)
        .sum()
}

/// Calls to the Checks API among `routes`.
fn check_calls(routes: &std::collections::BTreeMap<String, u64>) -> u64 {
    routes
        .iter()
        .filter(|(route, _)| route.contains("/check-runs"))
        .map(|(_, n)| n)
        .sum()
}

const DEV_FILE: &str = "envs/dev/tfpilot.s3.tf";
const PROD_FILE: &str = "envs/prod/tfpilot.s3.tf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_goes_from_comment_to_applied_guarded_in_prod_and_destroyed() {
    within(420, async {
        let w = World::start().await;
        let mut calls: Vec<(&str, u64)> = Vec::new();
        let mut dev_check_calls: Vec<u64> = Vec::new();
        let mut dashboard_per_step: Vec<(std::collections::BTreeMap<String, u64>, u64)> = Vec::new();

        // ---- dev: the conversation ------------------------------------------------------------
        let issue = w
            .sim
            .open_issue(
                REPO,
                "carol",
                "Invoices bucket",
                "We need a bucket for invoices.",
            )
            .expect("issue");
        let step = w
            .say(issue, "carol", "/tfpilot new s3-bucket env=dev")
            .await;
        calls.push(("new (asks)", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        let reply = step.reply();
        assert!(reply.contains("**Still needed:** `name`"), "{reply}");
        assert!(reply.contains("What should `name` be?"), "{reply}");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Collecting);
        let comment = w.sim.comments(REPO, issue);
        assert!(
            comment[0].reactions.iter().any(|(c, _)| c == "eyes"),
            "the command got 👀"
        );

        let step = w
            .say(
                issue,
                "carol",
                "Call it invoices, turn versioning on and keep objects for 30 days please",
            )
            .await;
        calls.push(("plain-language answer", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        let reply = step.reply();
        assert!(reply.contains("**Ready.**"), "{reply}");
        assert!(reply.contains("module \"tfpilot_"), "{reply}");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Ready);
        let block = r.block.clone().expect("a block");
        assert!(block.contains("versioning_enabled = true"), "{block}");
        assert!(block.contains("expiration_days    = 30"), "{block}");
        assert!(
            block.contains("bucket_name        = \"core-dev-invoices\""),
            "{block}"
        );
        let chat = w.store.chat(r.id).await.expect("chat log");
        assert!(
            chat.iter()
                .any(|t| t.text.contains("keep objects for 30 days")),
            "the turn is in the chat log"
        );

        // ---- submit: PR with exactly the block, real plan ------------------------------------
        let step = w.say(issue, "carol", "/tfpilot submit").await;
        calls.push(("submit + plan", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        // The submit's own calls, without posting the plan once it ran (the artifact list, the
        // artifact, the plan comment on the pull request and its summary on the issue).
        let plan_posting = step.routes["GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts"]
            + step.routes["GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip"]
            + 2;
        // The `tfpilot/plan` check run (created with the dispatch, completed with the plan) is
        // counted apart.
        let submit_calls = step.calls
            - plan_posting
            - check_calls(&step.routes)
            - dashboard_calls(&step.routes);
        assert!(
            submit_calls <= SUBMIT_BUDGET,
            "submit took {submit_calls} calls: {:?}",
            step.routes
        );
        assert_eq!(
            step.elsewhere.len(),
            1,
            "one plan comment on the pull request"
        );
        step.find("Submitted revision 1");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Planned);
        let pr = r.pull_request.clone().expect("a pull request");
        let prs = w.sim.pull_requests(REPO);
        assert_eq!(prs.len(), 1);
        assert_eq!(prs[0].head, format!("request/{}", r.id));
        let on_branch = w
            .sim
            .file(REPO, &prs[0].head, DEV_FILE)
            .expect("the file on the branch");
        assert_eq!(
            on_branch,
            format!("{DEV_FILE_HEADER}\n{block}"),
            "exactly the bounded block"
        );
        let runs = w.sim.workflow_runs(REPO);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].workflow, "plan.yml");
        assert_eq!(
            runs[0].conclusion.as_deref(),
            Some("success"),
            "{}",
            runs[0].log
        );
        let plan_comments: Vec<_> = w
            .sim
            .comments(REPO, pr.number)
            .into_iter()
            .filter(|c| c.body.contains("### Terraform plan"))
            .collect();
        assert_eq!(plan_comments.len(), 1);
        let plan = &plan_comments[0].body;
        // The offline s3-bucket module has one terraform_data per AWS resource: bucket,
        // ownership controls, public access block, encryption, versioning, lifecycle.
        assert!(
            plan.contains("**Plan: 6 to add, 0 to change, 0 to destroy.**"),
            "{plan}"
        );
        assert!(plan.contains("```diff"), "{plan}");
        assert!(
            plan.contains("+   resource \"terraform_data\" \"bucket\""),
            "the + stands at the line start: {plan}"
        );
        assert!(plan.contains("[workflow run]("), "{plan}");
        let summary = w.sim.comments(REPO, issue);
        assert!(
            summary.iter().any(|c| c
                .body
                .contains("Plan for revision 1 in `dev`: **Plan: 6 to add")),
            "the summary is on the issue"
        );

        // ---- approve, merge, apply ---------------------------------------------------------
        let step = w.say(issue, "dave", "/tfpilot approve").await;
        calls.push(("approve", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        assert!(
            step.reply().contains("Approved for `dev` by @dave"),
            "{}",
            step.reply()
        );
        let step = w.say(issue, "dave", "/tfpilot merge").await;
        calls.push(("merge", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        step.find("is merged. Next: `/tfpilot apply`");
        assert_eq!(w.request(issue).await.status, RequestStatus::Merged);
        let on_main = w.sim.file(REPO, "main", DEV_FILE).expect("merged file");
        assert_eq!(on_main, format!("{DEV_FILE_HEADER}\n{block}"));

        let step = w.say(issue, "carol", "/tfpilot apply").await;
        calls.push(("apply", step.calls));
        dev_check_calls.push(check_calls(&step.routes) + dashboard_calls(&step.routes));
        dashboard_per_step.push((step.routes.clone(), dashboard_calls(&step.routes)));
        step.find("Applied to `dev`");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Applied);
        // The apply was given the approved merge commit, which the workflow checks out.
        let merge_sha = r
            .pull_request
            .as_ref()
            .and_then(|pr| pr.merge_commit_sha.clone())
            .expect("merge commit recorded");
        let apply_run = w
            .sim
            .workflow_runs(REPO)
            .into_iter()
            .rfind(|run| run.workflow == "apply.yml")
            .expect("an apply run");
        assert_eq!(apply_run.inputs.get("expected_sha"), Some(&merge_sha));
        let state = w.sim.terraform_state(REPO, "dev").expect("state kept");
        assert!(
            state.contains(&format!("module.tfpilot_{}", r.id)),
            "the resources are in the state"
        );
        assert!(state.contains("core-dev-invoices"));
        let dev_id = r.id;

        // ---- prod: outside and inside the allow-list ------------------------------------------
        let prod_issue = w
            .sim
            .open_issue(REPO, "carol", "Invoices bucket in prod", "")
            .expect("issue");
        let step = w
            .say(
                prod_issue,
                "carol",
                "/tfpilot new s3-bucket env=prod name=invoices",
            )
            .await;
        calls.push(("new (complete)", step.calls));
        assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
        let step = w.say(prod_issue, "carol", "/tfpilot submit").await;
        calls.push(("submit + plan (prod)", step.calls));
        assert_eq!(w.request(prod_issue).await.status, RequestStatus::Planned);

        let step = w.say(prod_issue, "dave", "/tfpilot approve").await;
        calls.push(("approve denied", step.calls));
        let denial = step.reply();
        assert!(
            denial.contains("Only members of the prod allow-list can approve in `prod`.")
                && denial.contains("Ask one of @alice, @bob."),
            "{denial}"
        );
        assert_eq!(w.request(prod_issue).await.status, RequestStatus::Planned);
        let step = w.say(prod_issue, "mallory", "/tfpilot approve").await;
        assert!(
            step.reply()
                .contains("has read access to this repository, and `approve` needs write access."),
            "{}",
            step.reply()
        );
        let step = w.say(prod_issue, "alice", "/tfpilot approve").await;
        calls.push(("approve (prod, allowed)", step.calls));
        assert!(
            step.reply().contains("Approved for `prod` by @alice"),
            "{}",
            step.reply()
        );
        // Merged with GitHub's button this time.
        let prod_pr = w.request(prod_issue).await.pull_request.expect("pr").number;
        let before = w.sim.total_calls();
        w.sim
            .merge_pr_as(REPO, prod_pr, "alice")
            .await
            .expect("merge");
        w.settle().await;
        calls.push(("merged with the button", w.sim.total_calls() - before));
        assert_eq!(w.request(prod_issue).await.status, RequestStatus::Merged);

        let step = w.say(prod_issue, "dave", "/tfpilot apply").await;
        calls.push(("apply denied", step.calls));
        assert!(
            step.reply()
                .contains("Only members of the prod allow-list can apply in `prod`."),
            "{}",
            step.reply()
        );
        assert_eq!(w.request(prod_issue).await.status, RequestStatus::Merged);
        let step = w.say(prod_issue, "bob", "/tfpilot apply").await;
        calls.push(("apply (prod, allowed)", step.calls));
        step.find("Applied to `prod`");
        assert_eq!(w.request(prod_issue).await.status, RequestStatus::Applied);
        let prod_file = w.sim.file(REPO, "main", PROD_FILE).expect("prod file");

        // ---- destroy the dev request: cleanup PR, archive -------------------------------------
        let step = w.say(issue, "carol", "/tfpilot destroy").await;
        calls.push(("destroy + cleanup PR", step.calls));
        let texts: Vec<&str> = step.replies.iter().map(|c| c.body.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Destroyed this request's resources in `dev`")),
            "{texts:#?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("The request is archived.")),
            "{texts:#?}"
        );
        let state = w.sim.terraform_state(REPO, "dev").expect("state");
        assert!(
            !state.contains(&format!("module.tfpilot_{dev_id}")),
            "destroyed: {state}"
        );
        let cleanup = w
            .sim
            .pull_requests(REPO)
            .into_iter()
            .find(|p| p.head == format!("cleanup/{dev_id}"))
            .expect("the cleanup pull request");
        assert!(cleanup.open);
        let cleaned = w
            .sim
            .file(REPO, &cleanup.head, DEV_FILE)
            .expect("file on the cleanup branch");
        assert_eq!(
            cleaned, DEV_FILE_HEADER,
            "only the block is removed; every other byte stays"
        );
        assert_eq!(find_block(&cleaned, &dev_id).expect("markers"), None);
        assert_eq!(
            w.sim.file(REPO, &cleanup.head, PROD_FILE).as_deref(),
            Some(prod_file.as_str()),
            "prod untouched"
        );
        assert!(
            w.store.get(dev_id).await.expect("store").is_none(),
            "no longer live"
        );
        let archived = w
            .store
            .get_archived(dev_id)
            .await
            .expect("store")
            .expect("in history/");
        assert_eq!(archived.status, RequestStatus::Destroyed);
        assert!(
            archived.outbox.is_empty(),
            "nothing left to do: {:?}",
            archived.outbox
        );
        assert!(archived.archived_at.is_some());

        // Every TfPilot comment is answered once: no duplicate markers anywhere.
        for thread in [issue, prod_issue, pr.number, prod_pr, cleanup.number] {
            let mut keys: Vec<String> = w
                .sim
                .comments(REPO, thread)
                .iter()
                .filter_map(|c| tfpilot::comments::marker_key(&c.body).map(str::to_owned))
                .collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), n, "a duplicate comment on #{thread}");
        }

        println!("GitHub API calls per step (answered by the simulator, token requests included):");
        for (step, n) in &calls {
            println!("  {step:<28} {n:>3}");
        }
        println!("  (submit alone: {submit_calls})");
        let stats = w.app.stats();
        println!(
            "client view: {:?}, of which {} answered 304 Not Modified",
            stats.calls, stats.not_modified
        );
        // new → applied in dev: the first six steps. A count is deterministic, so the budget is
        // asserted (conditional reads answered 304 do not count against GitHub's rate limit).
        let dev: u64 = calls[..6].iter().map(|(_, n)| n).sum();
        let dev_apart: u64 = dev_check_calls.iter().sum();
        let dev_dashboard: u64 = dashboard_per_step[..6].iter().map(|(_, n)| n).sum();
        let dev_checks = dev_apart - dev_dashboard;
        println!(
            "  new → applied in dev: {dev}, of which {dev_checks} check-run calls and {dev_dashboard} dashboard calls"
        );
        assert!(
            dev - dev_apart <= LIFECYCLE_BUDGET,
            "new → applied took {dev} calls ({dev_checks} for check runs, {dev_dashboard} for the dashboard): {calls:?}"
        );
        assert!(
            dev_dashboard <= DASHBOARD_CALLS,
            "the dashboard took {dev_dashboard} calls: {dashboard_per_step:?}"
        );
        assert_eq!(
            dev_checks, CHECK_RUN_CALLS,
            "check runs: created with the plan, completed with it, Apply offered at the merge, tfpilot/apply"
        );
        for (step, n) in &calls {
            assert!(*n <= 16, "{step} took {n} calls");
        }
    })
    .await;
}
