//! Dispatched workflows running real Terraform in the simulator, and the client reading the plan
//! back out of the published artifact.

use std::collections::BTreeMap;

use tfpilot::github::{BranchStart, FileChange, GitHubError, RunConclusion, RunStatus};
use tfpilot_sim::{SimConfig, WorkflowBehavior};

use super::{REPO, World, within};
use crate::support;

const REQUEST_ID: &str = "0b6a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";

fn block(text: &str) -> String {
    format!(
        "module \"tfpilot_{REQUEST_ID}\" {{\n  source = \"../../modules/note\"\n  text   = \"{text}\"\n}}\n"
    )
}

fn inputs(dispatch_id: &str) -> BTreeMap<String, String> {
    [
        ("request_id", REQUEST_ID),
        ("environment", "dev"),
        ("dispatch_id", dispatch_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn terraform_world() -> World {
    let config = SimConfig {
        terraform_bin: Some(support::terraform()),
        ..SimConfig::default()
    };
    let w = World::start_with(config, Default::default()).await;
    for (file, behavior) in [
        ("plan.yml", WorkflowBehavior::TerraformPlan),
        ("apply.yml", WorkflowBehavior::TerraformApply),
        ("destroy.yml", WorkflowBehavior::TerraformDestroy),
    ] {
        w.sim.set_workflow(REPO, file, behavior).unwrap();
    }
    w
}

#[tokio::test]
async fn a_plan_run_publishes_a_real_plan_that_the_client_downloads() {
    within(240, async {
        let w = terraform_world().await;
        let gh = w.gh();
        let branch = format!("request/{REQUEST_ID}");
        let base = gh.branch_head("main").await.unwrap().unwrap();
        gh.commit_files(
            &branch,
            BranchStart::New {
                from: base,
                repository_id: None,
            },
            "tfpilot: note",
            &[FileChange::put("envs/dev/tfpilot.note.tf", block("hello"))],
        )
        .await
        .unwrap();
        let dispatch = gh
            .dispatch_workflow("plan.yml", &branch, &inputs("p1"), "p1")
            .await
            .unwrap();
        let run_id = dispatch.run_id.unwrap();
        w.sim.wait_idle().await;

        let run = gh.workflow_run(run_id).await.unwrap();
        let sim_run = &w.sim.workflow_runs(REPO)[0];
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(
            run.conclusion,
            Some(RunConclusion::Success),
            "{}",
            sim_run.log
        );
        let artifacts = gh.list_artifacts(run_id).await.unwrap();
        assert_eq!(artifacts.len(), 1);
        assert_eq!(artifacts[0].name, "plan");
        assert!(artifacts[0].size_in_bytes > 0);

        let before = w.app.stats();
        let archive = gh
            .download_artifact(artifacts[0].id, 1 << 20)
            .await
            .unwrap();
        let used = w.app.stats().since(&before);
        assert_eq!(
            (
                used.get("download_artifact"),
                used.get("download_artifact_blob")
            ),
            (1, 1),
            "redirect followed once"
        );
        let text = archive.text("plan.txt", 1 << 20).unwrap();
        assert!(
            text.contains(&format!(
                "module.tfpilot_{REQUEST_ID}.terraform_data.this will be created"
            )),
            "{text}"
        );
        assert!(
            text.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&archive.file("plan.json", 1 << 20).unwrap()).unwrap();
        let change = &json["resource_changes"][0];
        assert_eq!(
            change["address"],
            format!("module.tfpilot_{REQUEST_ID}.terraform_data.this")
        );
        assert_eq!(change["change"]["actions"], serde_json::json!(["create"]));
        assert_eq!(change["change"]["after"]["input"], "hello");

        // The one-file convenience, and its cap.
        let plan_txt = gh
            .download_artifact_file(artifacts[0].id, "plan.txt", 1 << 20)
            .await
            .unwrap();
        assert_eq!(String::from_utf8(plan_txt).unwrap(), text);
        let err = gh
            .download_artifact_file(artifacts[0].id, "plan.txt", 64)
            .await
            .unwrap_err();
        assert!(
            matches!(err, GitHubError::TooLarge { limit: 64, .. }),
            "{err:?}"
        );
        let err = gh
            .download_artifact_file(artifacts[0].id, "nope.txt", 1 << 20)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn apply_keeps_state_and_destroy_removes_only_the_requests_module() {
    within(240, async {
        let w = terraform_world().await;
        let gh = w.gh();
        let other = "module \"tfpilot_other\" {\n  source = \"../../modules/note\"\n  text   = \"keep me\"\n}\n";
        let head = gh.branch_head("main").await.unwrap().unwrap();
        gh.commit_files(
            "main",
            BranchStart::Existing { expected_head: head },
            "two notes",
            &[FileChange::put("envs/dev/tfpilot.note.tf", block("hello")), FileChange::put("envs/dev/other.tf", other)],
        )
        .await
        .unwrap();

        let apply = gh.dispatch_workflow("apply.yml", "main", &inputs("a1"), "a1").await.unwrap();
        w.sim.wait_idle().await;
        let run = gh.workflow_run(apply.run_id.unwrap()).await.unwrap();
        assert_eq!(run.conclusion, Some(RunConclusion::Success), "{}", w.sim.workflow_runs(REPO)[0].log);
        let state = w.sim.terraform_state(REPO, "dev").expect("state kept after apply");
        assert!(state.contains(&format!("module.tfpilot_{REQUEST_ID}")) && state.contains("module.tfpilot_other"), "{state}");
        let artifacts = gh.list_artifacts(run.id).await.unwrap();
        let apply_txt = gh.download_artifact_file(artifacts[0].id, "apply.txt", 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&apply_txt).contains("Apply complete! Resources: 2 added"));

        let destroy = gh.dispatch_workflow("destroy.yml", "main", &inputs("x1"), "x1").await.unwrap();
        w.sim.wait_idle().await;
        let run = gh.workflow_run(destroy.run_id.unwrap()).await.unwrap();
        assert_eq!(run.conclusion, Some(RunConclusion::Success), "{}", w.sim.workflow_runs(REPO)[1].log);
        let state = w.sim.terraform_state(REPO, "dev").unwrap();
        assert!(!state.contains(&format!("module.tfpilot_{REQUEST_ID}")), "{state}");
        assert!(state.contains("module.tfpilot_other"), "{state}");

        // A plan on an environment that does not exist fails the run, visibly.
        let mut bad = inputs("p9");
        bad.insert("environment".into(), "prod".into());
        let plan = gh.dispatch_workflow("plan.yml", "main", &bad, "p9").await.unwrap();
        w.sim.wait_idle().await;
        let run = gh.workflow_run(plan.run_id.unwrap()).await.unwrap();
        assert_eq!(run.conclusion, Some(RunConclusion::Failure));
        assert!(w.sim.workflow_runs(REPO)[2].log.contains("envs/prod does not exist"));
    })
    .await;
}
