//! Each client operation against the simulator, checked in the simulator's state.

use std::collections::BTreeMap;

use tfpilot::github::{
    BranchStart, FileChange, GitHubError, MAX_COMMENT_CHARS, MergeMethod, MinimizeReason,
    Permission, Reaction, RunStatus,
};
use tfpilot_sim::{SimConfig, WorkflowBehavior};

use super::{REPO, World, within};

const BRANCH: &str = "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";
const REQUEST_ID: &str = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";

fn plan_inputs(dispatch_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("request_id".to_owned(), REQUEST_ID.to_owned()),
        ("environment".to_owned(), "dev".to_owned()),
        ("dispatch_id".to_owned(), dispatch_id.to_owned()),
    ])
}

#[tokio::test]
async fn reads_files_branch_heads_and_the_default_branch() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        assert_eq!(gh.default_branch().await.unwrap(), "main");
        let readme = gh.get_file("main", "README.md").await.unwrap().unwrap();
        assert_eq!(readme.text, "# infra\n");
        assert_eq!(readme.sha.len(), 40);
        assert_eq!(gh.get_file("main", "envs/dev/nope.tf").await.unwrap(), None);
        let head = gh.branch_head("main").await.unwrap();
        assert_eq!(head, w.sim.branch_head(REPO, "main"));
        assert_eq!(gh.branch_head("no-such-branch").await.unwrap(), None);
        let err = gh.get_file("main", "envs").await.unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");

        // A commit's parents: none for the first, the commit before for a pushed one.
        let first = head.expect("main exists");
        assert_eq!(
            gh.commit_parents(&first).await.unwrap(),
            Vec::<String>::new()
        );
        let pushed = w
            .sim
            .push(REPO, "main", "bob", &[("README.md", Some("# edited\n"))])
            .unwrap();
        assert_eq!(gh.commit_parents(&pushed).await.unwrap(), vec![first]);
        // GitHub answers 422 "No commit found for SHA" for a sha it does not have.
        let err = gh.commit_parents(&"0".repeat(40)).await.unwrap_err();
        assert!(
            matches!(err, GitHubError::Validation { .. })
                && err.to_string().contains("No commit found"),
            "{err:?}"
        );
    })
    .await;
}

/// The submit path of a request: branch, commit, PR, plan dispatch. Prints the call count the
/// issue asks to report.
#[tokio::test]
async fn a_submit_creates_branch_commit_pr_and_dispatch_in_four_api_calls() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        w.sim.reset_calls();
        let before = w.app.stats();

        // The base's head, the file and the repository's node id: one query.
        let read = gh
            .read_at_head("main", "envs/dev/tfpilot.note.tf", None)
            .await
            .unwrap();
        let base = read.head.clone().expect("main exists");
        assert_eq!(read.file, None);
        assert!(read.repository_id.is_some(), "{read:?}");

        let block =
            "module \"tfpilot_x\" {\n  source = \"../../modules/note\"\n  text   = \"hi\"\n}\n";
        let commit = gh
            .commit_files(
                BRANCH,
                BranchStart::New {
                    from: base.clone(),
                    repository_id: read.repository_id,
                },
                "tfpilot: add note x\n\nRequested in #1.",
                &[FileChange::put("envs/dev/tfpilot.note.tf", block)],
            )
            .await
            .unwrap();
        let pr = gh
            .open_pull_request(BRANCH, "main", "tfpilot: add note x", "Closes #1")
            .await
            .unwrap();
        let dispatch = gh
            .dispatch_workflow("plan.yml", BRANCH, &plan_inputs("d-1"), "d-1")
            .await
            .unwrap();

        let used = w.app.stats().since(&before);
        let sim_calls = w.sim.total_calls();
        println!(
            "submit: {} HTTP calls by the client, {sim_calls} answered by the simulator: {:?}",
            used.total(),
            w.sim.calls()
        );
        // 1 installation token (cold cache; GraphQL is a POST, so it writes, for this repository
        // only) + read the base (GraphQL) + create the branch and commit on it (one GraphQL
        // document) + open PR + dispatch.
        assert_eq!(sim_calls, 4 + 1, "{:?}", w.sim.calls());
        assert_eq!(w.sim.tokens_issued(), 1);
        assert_eq!(used.total(), sim_calls);
        assert_eq!(
            w.sim
                .call_count("POST /graphql createRef+createCommitOnBranch"),
            1
        );
        assert_eq!(w.sim.call_count("POST /repos/{owner}/{repo}/git/refs"), 0);

        // What GitHub now holds.
        assert_eq!(
            w.sim.branch_head(REPO, BRANCH).as_deref(),
            Some(commit.oid.as_str())
        );
        assert_eq!(
            w.sim
                .file(REPO, BRANCH, "envs/dev/tfpilot.note.tf")
                .as_deref(),
            Some(block)
        );
        assert_eq!(w.sim.file(REPO, "main", "envs/dev/tfpilot.note.tf"), None);
        let history = w.sim.commits(REPO, BRANCH);
        assert_eq!(
            history[0].message,
            "tfpilot: add note x\n\nRequested in #1."
        );
        assert_eq!(history[0].author, "tfpilot[bot]");
        assert_eq!(history[0].parents, vec![base]);
        assert!(pr.created);
        assert_eq!(pr.head_sha, commit.oid);
        let prs = w.sim.pull_requests(REPO);
        assert_eq!(
            (prs[0].number, prs[0].head.as_str(), prs[0].base.as_str()),
            (pr.number, BRANCH, "main")
        );
        assert_eq!(prs[0].body, "Closes #1");
        let run_id = dispatch.run_id.expect("GitHub returns run details");
        assert!(!dispatch.correlated);
        let runs = w.sim.workflow_runs(REPO);
        assert_eq!(runs[0].id, run_id);
        assert_eq!(runs[0].inputs, plan_inputs("d-1"));
        assert_eq!(runs[0].display_title, format!("plan dev {REQUEST_ID} d-1"));
        assert_eq!(runs[0].head_sha, commit.oid);

        // A second submit reuses the cached token: one call fewer.
        w.sim.reset_calls();
        let next = gh
            .commit_files(
                BRANCH,
                BranchStart::Existing {
                    expected_head: commit.oid.clone(),
                },
                "tfpilot: update note x",
                &[
                    FileChange::put("envs/dev/tfpilot.note.tf", "# changed\n"),
                    FileChange::delete("README.md"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(w.sim.total_calls(), 1, "{:?}", w.sim.calls());
        let files = w.sim.branch_files(REPO, BRANCH).unwrap();
        assert_eq!(files["envs/dev/tfpilot.note.tf"], "# changed\n");
        assert!(!files.contains_key("README.md"));
        assert_eq!(w.sim.branch_head(REPO, BRANCH), Some(next.oid));
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test]
async fn a_commit_on_a_moved_branch_is_refused_as_stale_head() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let old = w.sim.branch_head(REPO, "main").unwrap();
        // Someone pushes to main after TfPilot read it.
        let moved = w
            .sim
            .push(REPO, "main", "bob", &[("README.md", Some("# edited\n"))])
            .unwrap();
        let err = gh
            .commit_files(
                "main",
                BranchStart::Existing {
                    expected_head: old.clone(),
                },
                "tfpilot: x",
                &[FileChange::put("a.tf", "")],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::StaleHead { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("commit to branch main in acme/infra"),
            "{err}"
        );
        assert_eq!(
            w.sim.branch_head(REPO, "main"),
            Some(moved.clone()),
            "nothing was committed"
        );

        // Creating a branch that already exists elsewhere is stale too; at the same commit it is
        // a retried submit and goes through. The same with the branch made in the commit's call
        // (the repository's node id known) and in a call of its own.
        let repository_id = gh
            .read_at_head("main", "a.tf", None)
            .await
            .unwrap()
            .repository_id;
        assert!(repository_id.is_some());
        let mut head = moved;
        for repository_id in [None, repository_id] {
            let err = gh
                .commit_files(
                    "main",
                    BranchStart::New {
                        from: old.clone(),
                        repository_id: repository_id.clone(),
                    },
                    "x",
                    &[FileChange::put("c.tf", "c")],
                )
                .await
                .unwrap_err();
            assert!(matches!(err, GitHubError::StaleHead { .. }), "{err:?}");
            assert_eq!(w.sim.branch_head(REPO, "main"), Some(head.clone()));
            let retried = gh
                .commit_files(
                    "main",
                    BranchStart::New {
                        from: head.clone(),
                        repository_id,
                    },
                    "retried",
                    &[FileChange::put("b.tf", "b")],
                )
                .await
                .unwrap();
            assert_eq!(w.sim.commits(REPO, "main")[0].parents, vec![head]);
            assert_eq!(w.sim.branch_head(REPO, "main"), Some(retried.oid.clone()));
            head = retried.oid;
        }

        let err = gh
            .commit_files(
                "no-such-branch",
                BranchStart::Existing {
                    expected_head: "0".repeat(40),
                },
                "x",
                &[],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn opening_a_pull_request_twice_returns_the_open_one() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        w.sim
            .push(REPO, "feature", "bob", &[("x.tf", Some("x"))])
            .unwrap();
        let first = gh
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        let second = gh
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        assert!(first.created && !second.created);
        assert_eq!(first.number, second.number);
        assert_eq!(w.sim.pull_requests(REPO).len(), 1);
        let err = gh
            .open_pull_request("ghost", "main", "t", "b")
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn comments_are_written_edited_minimized_and_reacted_to() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let issue = w
            .sim
            .open_issue(REPO, "bob", "New bucket", "please")
            .unwrap();
        let user_comment = w
            .sim
            .user_comment(REPO, issue, "bob", "/tfpilot new note env=dev")
            .await
            .unwrap();

        gh.react(user_comment, Reaction::Eyes).await.unwrap();
        gh.react(user_comment, Reaction::Eyes).await.unwrap();
        let reply = gh.comment(issue, "Understood.").await.unwrap();
        assert!(
            reply.url.contains(&format!("#issuecomment-{}", reply.id)),
            "{}",
            reply.url
        );
        gh.edit_comment(reply.id, "Understood: a note in dev.")
            .await
            .unwrap();
        gh.minimize_comment(&reply.node_id, MinimizeReason::Outdated)
            .await
            .unwrap();

        let comments = w.sim.comments(REPO, issue);
        assert_eq!(comments.len(), 2);
        assert_eq!(
            comments[0].reactions,
            vec![("eyes".to_owned(), "tfpilot[bot]".to_owned())]
        );
        assert_eq!(comments[1].author, "tfpilot[bot]");
        assert_eq!(comments[1].body, "Understood: a note in dev.");
        assert_eq!(comments[1].minimized.as_deref(), Some("OUTDATED"));

        // GitHub's limit, exactly at and just past it.
        let at_limit = "x".repeat(MAX_COMMENT_CHARS);
        gh.comment(issue, &at_limit).await.unwrap();
        let err = gh
            .comment(issue, &format!("{at_limit}y"))
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
        assert!(err.to_string().contains("too long"), "{err}");
        let err = gh
            .edit_comment(reply.id, &format!("{at_limit}y"))
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");

        let err = gh.comment(999, "nobody home").await.unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
        let err = gh
            .minimize_comment("IC_nope", MinimizeReason::Outdated)
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test]
async fn permissions_map_every_github_role() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let cases = [
            ("alice", Permission::Admin),
            ("mona", Permission::Maintain),
            ("bob", Permission::Write),
            ("tria", Permission::Triage),
            ("rita", Permission::Read),
            ("stranger", Permission::None),
        ];
        for (login, expected) in cases {
            assert_eq!(gh.permission(login).await.unwrap(), expected, "{login}");
        }
        w.sim
            .set_permission(REPO, "rita", tfpilot_sim::Permission::Write)
            .unwrap();
        assert!(gh.permission("rita").await.unwrap().can_write());
    })
    .await;
}

#[tokio::test]
async fn pull_requests_are_read_and_merged_under_the_head_lock() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let head = w
            .sim
            .push(REPO, "feature", "bob", &[("x.tf", Some("x"))])
            .unwrap();
        let pr = gh
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        let state = gh.pull_request(pr.number).await.unwrap();
        assert!(state.open && !state.merged);
        assert_eq!(state.mergeable, Some(true));
        assert_eq!(
            (
                state.head_ref.as_str(),
                state.head_sha.as_str(),
                state.base_ref.as_str()
            ),
            ("feature", head.as_str(), "main")
        );

        let err = gh
            .merge_pull_request(pr.number, MergeMethod::Squash, Some(&"0".repeat(40)))
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::StaleHead { .. }), "{err:?}");

        let merged = gh
            .merge_pull_request(pr.number, MergeMethod::Squash, Some(&head))
            .await
            .unwrap();
        assert_eq!(w.sim.branch_head(REPO, "main"), Some(merged.sha.clone()));
        assert_eq!(w.sim.file(REPO, "main", "x.tf").as_deref(), Some("x"));
        let state = gh.pull_request(pr.number).await.unwrap();
        assert!(state.merged && !state.open);
        assert_eq!(state.merge_commit_sha, Some(merged.sha));

        let err = gh
            .merge_pull_request(pr.number, MergeMethod::Merge, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Conflict { .. }), "{err:?}");
        let err = gh.pull_request(4242).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");

        w.sim.wait_idle().await;
        let closed: Vec<_> = w
            .sim
            .deliveries()
            .into_iter()
            .filter(|d| d.event == "pull_request" && d.action.as_deref() == Some("closed"))
            .collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].payload["pull_request"]["merged"], true);
    })
    .await;
}

#[tokio::test]
async fn a_conflicting_pull_request_is_not_mergeable() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        w.sim
            .push(REPO, "feature", "bob", &[("README.md", Some("feature\n"))])
            .unwrap();
        w.sim
            .push(REPO, "main", "alice", &[("README.md", Some("main\n"))])
            .unwrap();
        let pr = gh
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        assert_eq!(
            gh.pull_request(pr.number).await.unwrap().mergeable,
            Some(false)
        );
        let err = gh
            .merge_pull_request(pr.number, MergeMethod::Merge, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Conflict { .. }), "{err:?}");
        assert!(err.to_string().contains("not mergeable"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn dispatches_are_checked_like_github_checks_them() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let mut inputs = plan_inputs("d");
        inputs.insert("surprise".into(), "1".into());
        let err = gh
            .dispatch_workflow("plan.yml", "main", &inputs, "d")
            .await
            .unwrap_err();
        assert!(
            matches!(err, GitHubError::Validation { .. })
                && err.to_string().contains("Unexpected inputs"),
            "{err}"
        );
        let mut inputs = plan_inputs("d");
        inputs.remove("environment");
        let err = gh
            .dispatch_workflow("plan.yml", "main", &inputs, "d")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Required input 'environment'"),
            "{err}"
        );
        let err = gh
            .dispatch_workflow("plan.yml", "nope", &plan_inputs("d"), "d")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("No ref found for: nope"), "{err}");
        let err = gh
            .dispatch_workflow("missing.yml", "main", &plan_inputs("d"), "d")
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert!(w.sim.workflow_runs(REPO).is_empty());
    })
    .await;
}

#[tokio::test]
async fn without_run_details_the_run_is_found_by_its_correlation_id() {
    within(30, async {
        let config = SimConfig {
            dispatch_returns_run_details: false,
            ..SimConfig::default()
        };
        let w = World::start_with(config, Default::default()).await;
        w.sim
            .set_workflow(REPO, "plan.yml", WorkflowBehavior::Fail)
            .unwrap();
        let gh = w.gh();
        // An older run of the same workflow must not be mistaken for ours.
        gh.dispatch_workflow("plan.yml", "main", &plan_inputs("older"), "older")
            .await
            .unwrap();
        let result = gh
            .dispatch_workflow("plan.yml", "main", &plan_inputs("d-42"), "d-42")
            .await
            .unwrap();
        assert!(result.correlated);
        let run_id = result.run_id.expect("found by correlation id");
        let sim_run = w
            .sim
            .workflow_runs(REPO)
            .into_iter()
            .find(|r| r.id == run_id)
            .unwrap();
        assert_eq!(sim_run.inputs["dispatch_id"], "d-42");

        w.sim.wait_idle().await;
        let run = gh.workflow_run(run_id).await.unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(
            run.conclusion,
            Some(tfpilot::github::RunConclusion::Failure)
        );
        assert_eq!(run.display_title, format!("plan dev {REQUEST_ID} d-42"));
        assert_eq!(run.name, "tfpilot plan");
        assert!(gh.list_artifacts(run_id).await.unwrap().is_empty());
        let err = gh.workflow_run(1).await.unwrap_err();
        assert!(err.is_not_found());
    })
    .await;
}

/// Paths and names go into URL paths: a `..` segment would address another endpoint (or another
/// repository: `contents/../../other/contents/x`) wherever the URL is normalized on the way.
#[tokio::test]
async fn paths_that_could_leave_their_endpoint_are_refused_before_any_call() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        gh.default_branch().await.unwrap();
        w.sim.reset_calls();
        for path in [
            "../../other/contents/secret.tf",
            "envs/../../x",
            "./README.md",
            "/README.md",
            "envs//dev.tf",
            "",
        ] {
            let err = gh.get_file("main", path).await.unwrap_err();
            assert!(
                matches!(err, GitHubError::Validation { .. }),
                "{path}: {err:?}"
            );
            assert!(err.to_string().contains("not a repository path"), "{err}");
        }
        for branch in ["../../pulls", "request/../main"] {
            let err = gh.branch_head(branch).await.unwrap_err();
            assert!(
                matches!(err, GitHubError::Validation { .. }),
                "{branch}: {err:?}"
            );
        }
        let err = gh
            .dispatch_workflow("../../../hooks", "main", &plan_inputs("d"), "d")
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
        let err = gh.find_workflow_run("..", "main", "d").await.unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
        let err = gh
            .commit_files(
                BRANCH,
                BranchStart::Existing {
                    expected_head: "0".repeat(40),
                },
                "m",
                &[FileChange::put("envs/../x.tf", "x")],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
        assert_eq!(w.sim.total_calls(), 0, "{:?}", w.sim.calls());
        // Ordinary names still work.
        assert!(
            gh.get_file("main", "envs/dev/versions.tf")
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

/// The example infra repo's own workflows (not a hand-written stand-in) accept TfPilot's
/// dispatch inputs, and their run names carry the dispatch id the client correlates by.
#[tokio::test]
async fn the_example_workflows_accept_tfpilots_inputs_and_echo_the_dispatch_id() {
    within(30, async {
        let config = SimConfig {
            dispatch_returns_run_details: false,
            ..SimConfig::default()
        };
        let w = World::start_with(config, Default::default()).await;
        let dir = crate::support::repo_root().join("examples/infra-repo/.github/workflows");
        for kind in ["plan", "apply", "destroy", "cleanup"] {
            let file = format!("{kind}.yml");
            let text = std::fs::read_to_string(dir.join(&file)).unwrap();
            let path = format!(".github/workflows/{file}");
            let head = w
                .sim
                .push(
                    REPO,
                    "main",
                    "alice",
                    &[(path.as_str(), Some(text.as_str()))],
                )
                .unwrap();
            w.sim
                .set_workflow(REPO, &file, WorkflowBehavior::Succeed)
                .unwrap();
            let dispatch_id = format!("{kind}-7");
            let mut inputs = BTreeMap::new();
            inputs.insert("request_id".to_owned(), REQUEST_ID.to_owned());
            inputs.insert("environment".to_owned(), "dev".to_owned());
            inputs.insert("dispatch_id".to_owned(), dispatch_id.clone());
            // Apply also takes the approved merge commit (TfPilot sends it; it is required).
            if kind == "apply" {
                inputs.insert("expected_sha".to_owned(), head);
            }
            let result = w
                .gh()
                .dispatch_workflow(&file, "main", &inputs, &dispatch_id)
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let run = w
                .gh()
                .workflow_run(result.run_id.expect("correlated"))
                .await
                .unwrap();
            assert_eq!(
                run.display_title,
                format!("{kind} {REQUEST_ID} (dev) {dispatch_id}")
            );
        }
    })
    .await;
}

/// Like the example apply workflow, a run given `expected_sha` works on that commit only when it
/// is on the dispatched ref; another commit fails the run.
#[tokio::test]
async fn a_run_refuses_an_expected_commit_that_is_not_on_its_ref() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        let workflow = "name: checked\nrun-name: checked ${{ inputs.dispatch_id }}\non:\n  workflow_dispatch:\n    inputs:\n      expected_sha:\n        required: true\n      dispatch_id:\n        required: false\n";
        let on_main = w
            .sim
            .push(REPO, "main", "alice", &[(".github/workflows/checked.yml", Some(workflow))])
            .unwrap();
        let elsewhere = w
            .sim
            .push(REPO, "feature", "bob", &[("x.tf", Some("x = 1\n"))])
            .unwrap();
        for (id, sha) in [("ok", &on_main), ("bad", &elsewhere)] {
            let inputs = BTreeMap::from([
                ("expected_sha".to_owned(), sha.clone()),
                ("dispatch_id".to_owned(), id.to_owned()),
            ]);
            gh.dispatch_workflow("checked.yml", "main", &inputs, id)
                .await
                .unwrap();
        }
        w.sim.wait_idle().await;
        let runs = w.sim.workflow_runs(REPO);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].conclusion.as_deref(), Some("success"), "{}", runs[0].log);
        assert_eq!(runs[1].conclusion.as_deref(), Some("failure"));
        assert!(
            runs[1].log.contains(&format!("expected_sha {elsewhere} is not on main")),
            "{}",
            runs[1].log
        );
    })
    .await;
}
