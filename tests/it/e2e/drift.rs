//! Drift end to end: a dev request is applied by real Terraform in the simulator; someone then
//! changes the infrastructure outside TfPilot (the kept state is edited); the infra repo's
//! `drift.yml` (real `terraform plan -detailed-exitcode`) finds it; TfPilot records it on the
//! request, answers once on the request's issue with the masked plan, shows it in `status`, says
//! nothing more on the next night's identical finding, answers `/tfpilot drift` where it was
//! asked, and once `plan` + `apply` put the resources back, says once that the drift is gone.

use tfpilot::domain::RequestStatus;

use super::{REPO, World, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_outside_tfpilot_is_found_reported_once_and_reported_gone() {
    within(420, async {
        let w = World::start().await;
        let issue = w
            .sim
            .open_issue(REPO, "carol", "Logs bucket", "")
            .expect("issue");
        w.say(issue, "carol", "/tfpilot new s3-bucket env=dev name=logs")
            .await
            .find("**Ready.**");
        w.say(issue, "carol", "/tfpilot submit").await;
        w.say(issue, "dave", "/tfpilot approve").await;
        w.say(issue, "dave", "/tfpilot merge").await;
        w.say(issue, "carol", "/tfpilot apply")
            .await
            .find("Applied to `dev`");
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Applied);
        let module = format!("module.tfpilot_{}", r.id);

        // A night without drift: nothing to say.
        let before = w.sim.comments(REPO, issue).len();
        nightly_check(&w).await;
        assert_eq!(
            w.sim.comments(REPO, issue).len(),
            before,
            "no drift, no comment"
        );
        assert_eq!(w.request(issue).await.drift, None);

        // Someone changes the bucket in the console: the state no longer matches the config.
        let changed = w.sim.change_terraform_state(REPO, "dev", |state| {
            for res in state["resources"].as_array_mut().expect("resources") {
                if res["module"].as_str() == Some(module.as_str())
                    && res["name"].as_str() == Some("bucket")
                {
                    for inst in res["instances"].as_array_mut().expect("instances") {
                        for attr in ["input", "output"] {
                            inst["attributes"][attr]["value"]["bucket"] =
                                serde_json::json!("changed-in-the-console");
                        }
                    }
                }
            }
        });
        assert!(changed, "the simulator kept a state");
        nightly_check(&w).await;
        let run = w
            .sim
            .workflow_runs(REPO)
            .into_iter()
            .rfind(|run| run.workflow == "drift.yml")
            .expect("the drift run");
        assert_eq!(run.conclusion.as_deref(), Some("success"), "{}", run.log);
        assert!(run.log.contains("-detailed-exitcode"), "{}", run.log);
        let comments = w.sim.comments(REPO, issue);
        let new: Vec<_> = comments[before..].iter().collect();
        assert_eq!(new.len(), 1, "one drift report: {new:#?}");
        let report = &new[0].body;
        assert!(
            report.contains("### 🌊 Drift in `s3-bucket` (`dev`)"),
            "{report}"
        );
        assert!(
            report.contains(&format!("`{module}.terraform_data.bucket (")),
            "{report}"
        );
        assert!(
            report.contains("changed-in-the-console"),
            "the plan shows it: {report}"
        );
        assert!(
            report.contains("**Last change through TfPilot:** revision 1, pull request #"),
            "{report}"
        );
        let r = w.request(issue).await;
        assert_eq!(r.status, RequestStatus::Applied);
        let drift = r.drift.clone().expect("drift recorded");
        assert_eq!(drift.run_id, run.id);
        w.say(issue, "carol", "/tfpilot status")
            .await
            .find("changed outside TfPilot");

        // The next night finds the same: said once, not every night.
        let before = w.sim.comments(REPO, issue).len();
        nightly_check(&w).await;
        assert_eq!(
            w.sim.comments(REPO, issue).len(),
            before,
            "no second report"
        );

        // Asked for on another issue: started, then answered there with what was found.
        let ops = w
            .sim
            .open_issue(REPO, "dave", "Is prod drifting?", "")
            .expect("issue");
        let refused = w.say(ops, "mallory", "/tfpilot drift").await;
        assert!(
            refused.reply().contains("read access"),
            "{}",
            refused.reply()
        );
        let step = w.say(ops, "dave", "/tfpilot drift env=dev").await;
        step.find("Drift check started for `dev`");
        let summary = step.find("of `dev`: 1 request(s) drifted");
        assert!(
            summary.contains(&format!("(`s3-bucket`) on #{issue}")),
            "{summary}"
        );
        assert_eq!(
            w.sim.comments(REPO, issue).len(),
            before,
            "the request's issue already knows"
        );

        // Reconciled: a plan of the merged change, then apply puts the resources back.
        let step = w.say(issue, "carol", "/tfpilot plan").await;
        assert!(
            step.elsewhere
                .iter()
                .any(|c| c.body.contains("0 to add, 1 to change, 0 to destroy")),
            "the plan shows the change back: {:#?}",
            step.elsewhere.iter().map(|c| &c.body).collect::<Vec<_>>()
        );
        w.say(issue, "carol", "/tfpilot apply")
            .await
            .find("Applied to `dev`");
        let state = w.sim.terraform_state(REPO, "dev").expect("state");
        assert!(!state.contains("changed-in-the-console"), "applied back");
        let before = w.sim.comments(REPO, issue).len();
        nightly_check(&w).await;
        let comments = w.sim.comments(REPO, issue);
        assert_eq!(comments.len(), before + 1, "{:#?}", &comments[before..]);
        assert!(
            comments[before].body.contains("no drift"),
            "{}",
            comments[before].body
        );
        assert_eq!(w.request(issue).await.drift, None);
    })
    .await;
}

/// The nightly drift check of `dev`, run to completion.
async fn nightly_check(w: &World) {
    w.sim
        .start_workflow(REPO, "drift.yml", "main", &[("environment", "dev")])
        .expect("drift run");
    w.settle().await;
}
