//! Tokens, retries and rate limits, against faults the simulator injects. Retry waits run on
//! paused tokio time: the waits are really awaited, but the test does not spend them.

use std::time::Duration;

use tfpilot::github::{GitHubError, RetryPolicy};
use tfpilot_sim::{Fault, SimConfig};

use super::{World, within};

const COMMENTS: &str = "POST /repos/{owner}/{repo}/issues/{number}/comments";
const TOKENS: &str = "POST /app/installations/{installation_id}/access_tokens";

#[tokio::test]
async fn the_installation_token_is_cached_per_repository_and_access() {
    within(30, async {
        let w = World::start().await;
        let issue = w.sim.open_issue(super::REPO, "bob", "t", "b").unwrap();
        for _ in 0..3 {
            w.gh().comment(issue, "hello").await.unwrap();
        }
        assert_eq!(w.sim.tokens_issued(), 1, "one write token for three writes");
        assert_eq!(w.app.stats().get("installation_token"), 1);
        // The token is usable by tools that talk to GitHub themselves, and is the cached one.
        w.app
            .installation_token(w.installation, &w.repo, tfpilot::github::Access::Write)
            .await
            .unwrap();
        assert_eq!(w.sim.tokens_issued(), 1);
        // Reads carry a read-only token of their own (once), never the write token.
        for _ in 0..2 {
            w.gh().default_branch().await.unwrap();
        }
        assert_eq!(w.sim.tokens_issued(), 2);
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_share_one_token_request() {
    within(30, async {
        let w = World::start().await;
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let gh = w.gh();
                tokio::spawn(async move { gh.default_branch().await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), "main");
        }
        assert_eq!(w.sim.tokens_issued(), 1);
        assert_eq!(w.sim.answered("GET /repos/{owner}/{repo}"), 8);
    })
    .await;
}

#[tokio::test]
async fn a_token_close_to_expiry_is_replaced_before_use() {
    within(30, async {
        // Tokens that live 4 minutes are always inside the 5-minute refresh margin.
        let config = SimConfig {
            token_ttl: Duration::from_secs(4 * 60),
            ..SimConfig::default()
        };
        let w = World::start_with(config, RetryPolicy::default()).await;
        let gh = w.gh();
        gh.default_branch().await.unwrap();
        gh.default_branch().await.unwrap();
        assert_eq!(w.sim.tokens_issued(), 2);
        assert_eq!(
            w.sim.answered("GET /repos/{owner}/{repo}"),
            2,
            "no call was refused"
        );
    })
    .await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_retried() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        gh.default_branch().await.unwrap();
        w.sim.revoke_tokens();
        w.sim.reset_calls();
        assert_eq!(gh.default_branch().await.unwrap(), "main");
        let calls = w.sim.calls();
        // Refused (401), then answered with the new token (a 304: the read is conditional).
        assert_eq!(w.sim.answered("GET /repos/{owner}/{repo}"), 2, "{calls:?}");
        assert_eq!(calls[TOKENS], 1, "{calls:?}");
        assert_eq!(w.sim.tokens_issued(), 2);
    })
    .await;
}

#[tokio::test]
async fn credentials_refused_after_a_refresh_are_an_error_not_a_loop() {
    within(30, async {
        let w = World::start().await;
        let gh = w.gh();
        w.sim
            .inject_fault("GET /repos/{owner}/{repo}", Fault::Unauthorized, 5);
        let err = gh.default_branch().await.unwrap_err();
        assert!(matches!(err, GitHubError::Unauthorized { .. }), "{err:?}");
        assert!(
            err.to_string().contains("read repository acme/infra"),
            "{err}"
        );
        assert_eq!(
            w.sim.call_count("GET /repos/{owner}/{repo}"),
            2,
            "one refresh, one retry"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff() {
    let w = World::start().await;
    let issue = w.sim.open_issue(super::REPO, "bob", "t", "b").unwrap();
    let gh = w.gh();
    gh.default_branch().await.unwrap(); // warm the token cache
    w.sim.inject_fault(COMMENTS, Fault::ServerError(502), 2);
    let started = tokio::time::Instant::now();
    let before = w.app.stats();
    gh.comment(issue, "after two 502s").await.unwrap();
    let used = w.app.stats().since(&before);
    assert_eq!(w.sim.call_count(COMMENTS), 3);
    assert_eq!(used.get("comment"), 3);
    assert_eq!(used.retries, 2);
    // 500 ms then 1 s, each with up to 25% jitter.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited <= Duration::from_millis(1900),
        "{waited:?}"
    );
    assert_eq!(
        w.sim.comments(super::REPO, issue).len(),
        1,
        "the comment was written once"
    );
    w.sim.wait_idle().await;
}

#[tokio::test(start_paused = true)]
async fn graphql_mutations_are_retried_too() {
    let w = World::start().await;
    let gh = w.gh();
    let head = w.sim.branch_head(super::REPO, "main").unwrap();
    w.sim.inject_fault(
        "POST /graphql createCommitOnBranch",
        Fault::ServerError(503),
        1,
    );
    let commit = gh
        .commit_files(
            "main",
            tfpilot::github::BranchStart::Existing {
                expected_head: head,
            },
            "after a 503",
            &[tfpilot::github::FileChange::put("x.tf", "x")],
        )
        .await
        .unwrap();
    assert_eq!(w.sim.call_count("POST /graphql createCommitOnBranch"), 2);
    assert_eq!(w.sim.branch_head(super::REPO, "main"), Some(commit.oid));
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_end_in_a_transient_error_naming_the_operation() {
    let policy = RetryPolicy {
        max_attempts: 4,
        ..RetryPolicy::default()
    };
    let w = World::start_with(SimConfig::default(), policy).await;
    w.sim.inject_fault(
        "GET /repos/{owner}/{repo}/git/ref/*",
        Fault::ServerError(500),
        100,
    );
    let err = w.gh().branch_head("main").await.unwrap_err();
    match &err {
        GitHubError::Transient {
            attempts, message, ..
        } => {
            assert_eq!(*attempts, 4);
            assert!(message.contains("HTTP 500"), "{message}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .contains("read the head of branch main in acme/infra"),
        "{err}"
    );
    assert_eq!(
        w.sim
            .call_count("GET /repos/{owner}/{repo}/git/ref/{*git_ref}"),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn a_secondary_rate_limit_is_waited_out_as_retry_after_says() {
    let w = World::start().await;
    let issue = w.sim.open_issue(super::REPO, "bob", "t", "b").unwrap();
    let gh = w.gh();
    gh.default_branch().await.unwrap();
    w.sim.inject_fault(
        COMMENTS,
        Fault::SecondaryRateLimit {
            retry_after_secs: 45,
        },
        1,
    );
    let started = tokio::time::Instant::now();
    let before = w.app.stats();
    gh.comment(issue, "after the limit").await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(45) && waited < Duration::from_secs(46),
        "{waited:?}"
    );
    assert_eq!(w.app.stats().since(&before).waited, Duration::from_secs(45));
    assert_eq!(w.sim.call_count(COMMENTS), 2);
    w.sim.wait_idle().await;
}

#[tokio::test(start_paused = true)]
async fn a_primary_rate_limit_is_waited_out_until_reset() {
    let w = World::start().await;
    let gh = w.gh();
    gh.default_branch().await.unwrap();
    w.sim.inject_fault(
        "GET /repos/{owner}/{repo}",
        Fault::PrimaryRateLimit { reset_in_secs: 20 },
        1,
    );
    let started = tokio::time::Instant::now();
    gh.default_branch().await.unwrap();
    let waited = started.elapsed();
    // The reset is a wall-clock second, so the wait is 19-20 s depending on where in the second we are.
    assert!(
        waited >= Duration::from_secs(19) && waited <= Duration::from_secs(21),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_longer_than_the_budget_is_reported_at_once() {
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let w = World::start_with(SimConfig::default(), policy).await;
    let gh = w.gh();
    gh.default_branch().await.unwrap();
    w.sim.inject_fault(
        "GET /repos/{owner}/{repo}",
        Fault::PrimaryRateLimit {
            reset_in_secs: 3600,
        },
        1,
    );
    let started = tokio::time::Instant::now();
    let err = gh.default_branch().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not wait an hour"
    );
    match &err {
        GitHubError::RateLimited { retry_after, .. } => {
            let secs = retry_after.expect("reset known").as_secs();
            assert!((3595..=3600).contains(&secs), "{secs}");
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    assert!(err.to_string().contains("rate limit"), "{err}");
    assert_eq!(w.sim.call_count("GET /repos/{owner}/{repo}"), 2);
}

const DISPATCH: &str = "POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches";

/// GitHub can answer 5xx for a call it carried out (its edge timed out first). A comment repeated
/// blindly then appears twice on the issue.
#[tokio::test(start_paused = true)]
async fn a_comment_whose_answer_was_lost_is_not_posted_twice() {
    let w = World::start().await;
    let issue = w.sim.open_issue(super::REPO, "bob", "t", "b").unwrap();
    let gh = w.gh();
    gh.comment(issue, "an earlier, different comment")
        .await
        .unwrap();
    w.sim
        .inject_fault(COMMENTS, Fault::ServerErrorAfterWrite(502), 1);
    let posted = gh.comment(issue, "<!-- tfpilot:k -->\nonce").await.unwrap();
    let comments = w.sim.comments(super::REPO, issue);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert_eq!(comments[1].body, "<!-- tfpilot:k -->\nonce");
    assert_eq!(posted.id, comments[1].id);
    assert_eq!(posted.node_id, comments[1].node_id);
    assert_eq!(w.sim.call_count(COMMENTS), 2, "posted once after the first");
    w.sim.wait_idle().await;
}

/// A comment refused before it was written is still posted by the retry.
#[tokio::test(start_paused = true)]
async fn a_comment_that_did_not_land_is_posted_by_the_retry() {
    let w = World::start().await;
    let issue = w.sim.open_issue(super::REPO, "bob", "t", "b").unwrap();
    let gh = w.gh();
    gh.comment(issue, "another text").await.unwrap();
    w.sim.inject_fault(COMMENTS, Fault::ServerError(502), 1);
    let posted = gh.comment(issue, "this text").await.unwrap();
    let comments = w.sim.comments(super::REPO, issue);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert_eq!(comments[1].body, "this text");
    assert_eq!(posted.id, comments[1].id);
    assert_eq!(w.sim.call_count(COMMENTS), 3);
    w.sim.wait_idle().await;
}

/// A dispatch repeated blindly after a lost answer starts a second plan or apply run.
#[tokio::test(start_paused = true)]
async fn a_dispatch_whose_answer_was_lost_starts_one_run() {
    let w = World::start().await;
    let gh = w.gh();
    gh.default_branch().await.unwrap();
    w.sim
        .inject_fault(DISPATCH, Fault::ServerErrorAfterWrite(500), 1);
    let inputs = std::collections::BTreeMap::from([
        (
            "request_id".to_owned(),
            "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".to_owned(),
        ),
        ("environment".to_owned(), "dev".to_owned()),
        ("dispatch_id".to_owned(), "d-7".to_owned()),
    ]);
    let result = gh
        .dispatch_workflow("plan.yml", "main", &inputs, "d-7")
        .await
        .unwrap();
    let runs = w.sim.workflow_runs(super::REPO);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(result.run_id, Some(runs[0].id));
    assert_eq!(w.sim.call_count(DISPATCH), 1);
    w.sim.wait_idle().await;
}

/// Calls refused together after a token was revoked fetch one new token between them: a caller
/// that saw the old token refused must not throw away the new one another caller just fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_refused_together_share_one_new_token() {
    within(30, async {
        let w = World::start().await;
        w.gh().default_branch().await.unwrap();
        w.sim.revoke_tokens();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let gh = w.gh();
                tokio::spawn(async move { gh.default_branch().await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), "main");
        }
        assert_eq!(w.sim.tokens_issued(), 2, "one token, then one replacement");
    })
    .await;
}

/// A commit that landed behind a 5xx moved the branch, so repeating it with the same
/// `expectedHeadOid` is refused as stale: the caller was told its commit failed when it is there.
#[tokio::test(start_paused = true)]
async fn a_commit_whose_answer_was_lost_is_reported_as_made() {
    let w = World::start().await;
    let gh = w.gh();
    let head = w.sim.branch_head(super::REPO, "main").unwrap();
    w.sim.inject_fault(
        "POST /graphql createCommitOnBranch",
        Fault::ServerErrorAfterWrite(502),
        1,
    );
    let commit = gh
        .commit_files(
            "main",
            tfpilot::github::BranchStart::Existing {
                expected_head: head.clone(),
            },
            "tfpilot: add the block\n\nFor request 3f2a4c1e.",
            &[tfpilot::github::FileChange::put("x.tf", "x")],
        )
        .await
        .expect("the commit was made");
    let commits = w.sim.commits(super::REPO, "main");
    assert_eq!(commits[0].sha, commit.oid);
    assert_eq!(commits[0].parents, std::slice::from_ref(&head));
    assert_eq!(commits[1].sha, head, "exactly one commit on top");
    assert!(commit.url.ends_with(&commit.oid), "{}", commit.url);

    // A branch moved by someone else is still stale, not mistaken for ours.
    let theirs = w.sim.branch_head(super::REPO, "main").unwrap();
    w.sim.inject_fault(
        "POST /graphql createCommitOnBranch",
        Fault::ServerError(502),
        1,
    );
    let err = gh
        .commit_files(
            "main",
            tfpilot::github::BranchStart::Existing {
                expected_head: head,
            },
            "tfpilot: add the block\n\nFor request 3f2a4c1e.",
            &[tfpilot::github::FileChange::put("x.tf", "y")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::StaleHead { .. }), "{err:?}");
    assert_eq!(w.sim.branch_head(super::REPO, "main"), Some(theirs));
}

/// A new branch and its commit go in one GraphQL document. When that call lands behind a 5xx, its
/// retry finds the branch there (`createRef` fails) and the commit stale: the commit is reported
/// as made, once. A 5xx before anything happened is simply retried.
#[tokio::test(start_paused = true)]
async fn a_branch_and_commit_whose_answer_was_lost_is_reported_as_made() {
    use tfpilot::github::{BranchStart, FileChange};
    const ROUTE: &str = "POST /graphql createRef+createCommitOnBranch";
    let w = World::start().await;
    let gh = w.gh();
    let base = w.sim.branch_head(super::REPO, "main").unwrap();
    let repository_id = gh
        .read_at_head("main", "x.tf", None)
        .await
        .unwrap()
        .repository_id;
    for (branch, fault) in [
        ("request/landed", Fault::ServerErrorAfterWrite(502)),
        ("request/refused", Fault::ServerError(503)),
    ] {
        w.sim.reset_calls();
        w.sim.inject_fault(ROUTE, fault, 1);
        let commit = gh
            .commit_files(
                branch,
                BranchStart::New {
                    from: base.clone(),
                    repository_id: repository_id.clone(),
                },
                "tfpilot: add the block\n\nFor request 3f2a4c1e.",
                &[FileChange::put("x.tf", "x")],
            )
            .await
            .unwrap_or_else(|e| panic!("{branch}: {e}"));
        let commits = w.sim.commits(super::REPO, branch);
        assert_eq!(commits[0].sha, commit.oid, "{branch}");
        assert_eq!(
            commits[1].sha, base,
            "{branch}: exactly one commit on the base"
        );
        assert_eq!(w.sim.call_count(ROUTE), 2, "{branch}: {:?}", w.sim.calls());
        assert_eq!(
            w.sim.call_count("POST /repos/{owner}/{repo}/git/refs"),
            0,
            "{branch}"
        );
    }
}

/// A document GitHub refuses whole (no `data`: it gave up on it, or takes one mutation per
/// document) falls back to the branch in a call of its own and the commit in another. A GraphQL
/// rate limit (HTTP 200, `RATE_LIMITED`) is a rate-limit error, retried later, not a refusal.
#[tokio::test(start_paused = true)]
async fn a_branch_and_commit_document_refused_whole_falls_back_to_two_calls() {
    use tfpilot::github::{BranchStart, FileChange};
    const ROUTE: &str = "POST /graphql createRef+createCommitOnBranch";
    let w = World::start().await;
    let gh = w.gh();
    let read = gh.read_at_head("main", "x.tf", None).await.unwrap();
    let base = read.head.clone().unwrap();
    let start = || BranchStart::New {
        from: base.clone(),
        repository_id: read.repository_id.clone(),
    };
    w.sim.reset_calls();
    w.sim.inject_fault(
        ROUTE,
        Fault::GraphQlRefused {
            kind: None,
            message: "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug.".into(),
        },
        1,
    );
    let commit = gh
        .commit_files(
            "request/whole",
            start(),
            "tfpilot: x",
            &[FileChange::put("x.tf", "x")],
        )
        .await
        .unwrap();
    assert_eq!(
        w.sim.branch_head(super::REPO, "request/whole"),
        Some(commit.oid.clone())
    );
    assert_eq!(w.sim.commits(super::REPO, "request/whole")[1].sha, base);
    for route in [
        ROUTE,
        "POST /repos/{owner}/{repo}/git/refs",
        "POST /graphql createCommitOnBranch",
    ] {
        assert_eq!(w.sim.call_count(route), 1, "{route}: {:?}", w.sim.calls());
    }

    // A GraphQL read (or commit) that meets GraphQL's rate limit.
    w.sim.inject_fault(
        "POST /graphql repository",
        Fault::GraphQlRefused {
            kind: Some("RATE_LIMITED".into()),
            message: "API rate limit exceeded for installation ID 1.".into(),
        },
        1,
    );
    let err = gh.read_at_head("main", "x.tf", None).await.unwrap_err();
    assert!(
        matches!(err, GitHubError::RateLimited { .. }) && err.is_transient(),
        "{err:?}"
    );
}

/// A branch that cannot be created is an error naming the commit, and nothing is made; a
/// repository id GitHub does not know is not found.
#[tokio::test(start_paused = true)]
async fn a_branch_github_refuses_to_create_is_an_error_and_nothing_is_made() {
    use tfpilot::github::{BranchStart, FileChange};
    let w = World::start().await;
    let gh = w.gh();
    let repository_id = gh
        .read_at_head("main", "x.tf", None)
        .await
        .unwrap()
        .repository_id;
    let base = w.sim.branch_head(super::REPO, "main").unwrap();
    for (from, repository_id, not_found) in [
        ("0".repeat(40), repository_id, false),
        (base, Some("R_kgDOnothing".to_owned()), true),
    ] {
        let err = gh
            .commit_files(
                "request/refused",
                BranchStart::New {
                    from,
                    repository_id,
                },
                "tfpilot: x",
                &[FileChange::put("x.tf", "x")],
            )
            .await
            .unwrap_err();
        // The first error is createRef's (the commit after it fails too: no branch).
        let expected = if not_found {
            matches!(err, GitHubError::NotFound { .. })
        } else {
            matches!(err, GitHubError::Validation { .. })
        };
        assert!(expected, "{err:?}");
        assert!(
            err.to_string().contains("commit to branch request/refused"),
            "{err}"
        );
        assert_eq!(w.sim.branch_head(super::REPO, "request/refused"), None);
    }
}

/// After a stale-head answer only TfPilot's own commit counts as made: one authored by the App,
/// verified by GitHub, on the expected parent, with the headline asked for, changing exactly
/// the files asked for. A look-alike pushed by a person (even one naming `tfpilot[bot]` as its
/// author) and an App commit that changed another file too are refused as stale.
#[tokio::test(start_paused = true)]
async fn a_commit_that_only_looks_like_tfpilots_is_not_taken_for_it() {
    use tfpilot::github::{BranchStart, FileChange};
    const MESSAGE: &str = "tfpilot: add the block\n\nFor request 3f2a4c1e.";
    let w = World::start().await;
    let gh = w.gh();
    let bot = w.sim.bot_login();
    let commit = |expected: &str, changes: Vec<FileChange>| {
        let gh = gh.clone();
        let start = BranchStart::Existing {
            expected_head: expected.to_owned(),
        };
        async move { gh.commit_files("main", start, MESSAGE, &changes).await }
    };

    // A person's push: same parent, same headline, same file, same content; as themselves or
    // with the App written in as the author.
    for author in ["bob", bot.as_str()] {
        let start = w.sim.branch_head(super::REPO, "main").unwrap();
        let content = format!("x by {author}");
        let head = w
            .sim
            .push_commit(
                super::REPO,
                "main",
                author,
                MESSAGE,
                &[("x.tf", Some(&content))],
            )
            .unwrap();
        let err = commit(&start, vec![FileChange::put("x.tf", content.clone())])
            .await
            .expect_err("a pushed look-alike is not TfPilot's commit");
        assert!(
            matches!(err, GitHubError::StaleHead { .. }),
            "{author}: {err:?}"
        );
        assert_eq!(w.sim.branch_head(super::REPO, "main"), Some(head));
    }

    // The App's own commit (verified), but it changed another file too: not the commit asked
    // for.
    let start = w.sim.branch_head(super::REPO, "main").unwrap();
    commit(
        &start,
        vec![
            FileChange::put("x.tf", "y"),
            FileChange::put(".github/workflows/plan.yml", "on: push\n"),
        ],
    )
    .await
    .expect("the App commits");
    let err = commit(&start, vec![FileChange::put("x.tf", "y")])
        .await
        .expect_err("a commit that changed another file is not the one asked for");
    assert!(matches!(err, GitHubError::StaleHead { .. }), "{err:?}");

    // The App's own commit of exactly the file is still recognised.
    let start = w.sim.branch_head(super::REPO, "main").unwrap();
    let made = commit(&start, vec![FileChange::put("x.tf", "z")])
        .await
        .expect("the App commits");
    let again = commit(&start, vec![FileChange::put("x.tf", "z")])
        .await
        .expect("TfPilot's own commit is found");
    assert_eq!(again.oid, made.oid);
}
