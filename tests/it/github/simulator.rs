//! The simulator holds to GitHub's rules: App JWTs, token scoping, and webhook payloads shaped like
//! GitHub's published examples.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};
use tfpilot::github::{GitHubApp, GitHubError};
use tfpilot::ids::InstallationId;

use super::{REPO, Receiver, World, within};
use crate::support;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn jwt(claims: Value, pem: &str) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

async fn token_request(w: &World, bearer: &str) -> (u16, Value) {
    let url = format!(
        "{}/app/installations/{}/access_tokens",
        w.sim.base_url(),
        w.installation
    );
    let resp = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {bearer}"))
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_simulator_checks_app_jwts_like_github() {
    within(30, async {
        let w = World::start().await;
        let app = w.sim.app_id();
        let pem = tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM;
        let (status, body) = token_request(
            &w,
            &jwt(
                json!({"iss": app, "iat": now() - 60, "exp": now() + 540}),
                pem,
            ),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert!(body["token"].as_str().unwrap().starts_with("ghs_"));

        let refused = [
            (
                jwt(
                    json!({"iss": app, "iat": now() - 60, "exp": now() + 540}),
                    tfpilot_sim::UNREGISTERED_PRIVATE_KEY_PEM,
                ),
                "could not be decoded",
            ),
            (
                jwt(
                    json!({"iss": app, "iat": now() - 900, "exp": now() - 300}),
                    pem,
                ),
                "'exp'",
            ),
            (
                jwt(json!({"iss": app, "iat": now(), "exp": now() + 3600}), pem),
                "too far in the future",
            ),
            (
                jwt(
                    json!({"iss": app + 1, "iat": now() - 60, "exp": now() + 540}),
                    pem,
                ),
                "Integration not found",
            ),
            ("garbage".to_owned(), "could not be decoded"),
        ];
        for (token, expected) in refused {
            let (status, body) = token_request(&w, &token).await;
            assert_eq!(status, 401, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains(expected),
                "{body} should mention {expected}"
            );
        }
        assert_eq!(w.sim.tokens_issued(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_app_with_the_wrong_key_gets_a_clear_unauthorized_error() {
    within(30, async {
        let w = World::start().await;
        let key = SecretString::from(tfpilot_sim::UNREGISTERED_PRIVATE_KEY_PEM.to_owned());
        let app = GitHubApp::new(w.sim.app_id(), &key, &w.sim.base_url()).unwrap();
        let err = app
            .repo(w.installation, &w.repo)
            .default_branch()
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::Unauthorized { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("installation token") && text.contains("could not be decoded"),
            "{text}"
        );
        assert_eq!(w.sim.tokens_issued(), 0);
    })
    .await;
}

#[tokio::test]
async fn every_repository_call_needs_a_live_token_for_that_repository() {
    within(30, async {
        let w = World::start().await;
        let other = w
            .sim
            .add_repo("globex/infra", "main", tfpilot_sim::files([("a", "b")]));
        let url = format!("{}/repos/{REPO}", w.sim.base_url());
        let client = reqwest::Client::new();
        assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
        let bad = client
            .get(&url)
            .header("authorization", "Bearer ghs_made_up")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        assert_eq!(
            bad.json::<Value>().await.unwrap()["message"],
            "Bad credentials"
        );

        // A token of the acme installation does not open globex's repository.
        let token = w
            .app
            .installation_token(w.installation, &w.repo, tfpilot::github::Access::Read)
            .await
            .unwrap();
        use secrecy::ExposeSecret;
        let ok = client
            .get(&url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().contains_key("x-ratelimit-remaining"));
        let elsewhere = client
            .get(format!("{}/repos/globex/infra", w.sim.base_url()))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), 404);
        assert_ne!(InstallationId(other), w.installation);
    })
    .await;
}

/// A document of several mutations runs them in order, as GraphQL's spec says: a `createRef` that
/// fails (the branch exists) is `null` with an error whose `path` names it, and the commit after
/// it still runs. An input that does not fit its type refuses the whole document: nothing runs.
#[tokio::test]
async fn several_mutations_run_in_order_and_a_bad_input_runs_none() {
    within(30, async {
        use secrecy::ExposeSecret;
        let w = World::start().await;
        let gh = w.gh();
        let read = gh.read_at_head("main", "x.tf", None).await.unwrap();
        let base = read.head.expect("main");
        let token = w
            .app
            .installation_token(w.installation, &w.repo, tfpilot::github::Access::Write)
            .await
            .unwrap();
        let post = |variables: Value| {
            let token = token.expose_secret().to_owned();
            let url = format!("{}/graphql", w.sim.base_url());
            async move {
                let answer = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({
                        "query": tfpilot::github::BRANCH_COMMIT_MUTATION,
                        "variables": variables,
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
                answer.json::<Value>().await.unwrap()
            }
        };
        let commit = |branch: &str, headline: Value| {
            json!({
                "branch": { "repositoryNameWithOwner": REPO, "branchName": branch },
                "message": { "headline": headline },
                "fileChanges": { "additions": [{ "path": "x.tf", "contents": "eA==" }] },
                "expectedHeadOid": base,
            })
        };
        let new_ref = |branch: &str| {
            json!({ "repositoryId": read.repository_id, "name": format!("refs/heads/{branch}"), "oid": base })
        };

        // No headline for the commit: the document is refused, and the branch is not made.
        let answer = post(json!({ "ref": new_ref("t/one"), "input": commit("t/one", Value::Null) })).await;
        assert!(answer["data"].is_null(), "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("$input of type CreateCommitOnBranchInput!"),
            "{answer}"
        );
        assert_eq!(w.sim.branch_head(REPO, "t/one"), None);

        // Both run: the branch, then the commit on it.
        let answer = post(json!({ "ref": new_ref("t/one"), "input": commit("t/one", json!("one")) })).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        assert_eq!(answer["data"]["createRef"]["ref"]["name"], "t/one");
        let oid = answer["data"]["createCommitOnBranch"]["commit"]["oid"].clone();
        assert_eq!(w.sim.branch_head(REPO, "t/one"), oid.as_str().map(str::to_owned));

        // `main` exists: createRef fails, the commit on `main` still runs.
        let answer = post(json!({ "ref": new_ref("main"), "input": commit("main", json!("two")) })).await;
        assert!(answer["data"]["createRef"].is_null(), "{answer}");
        assert_eq!(answer["errors"][0]["path"], json!(["createRef"]), "{answer}");
        assert_eq!(answer["errors"].as_array().map(Vec::len), Some(1), "{answer}");
        let oid = answer["data"]["createCommitOnBranch"]["commit"]["oid"].clone();
        assert_eq!(w.sim.branch_head(REPO, "main"), oid.as_str().map(str::to_owned));
        assert_eq!(
            w.sim.call_count("POST /graphql createRef+createCommitOnBranch"),
            3
        );
    })
    .await;
}

/// All keys seen at each path across GitHub's examples of one event and action.
fn example_keys(event: &str, action: &str) -> BTreeSet<String> {
    let index =
        support::npm_fixtures().join("@octokit/webhooks-examples/api.github.com/index.json");
    let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
    let mut keys = BTreeSet::new();
    for group in all.iter().filter(|g| g["name"] == event) {
        for example in group["examples"].as_array().unwrap() {
            if example["action"] == action {
                collect_keys(example, "", &mut keys);
            }
        }
    }
    assert!(!keys.is_empty(), "no example of {event}.{action}");
    keys
}

fn collect_keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = format!("{prefix}/{k}");
            out.insert(path.clone());
            collect_keys(child, &path, out);
        }
    }
}

/// Every key the simulator sends must be one GitHub sends, and the keys TfPilot reads must be there.
fn assert_shaped_like_github(payload: &Value, event: &str, action: &str, required: &[&str]) {
    let github = example_keys(event, action);
    let mut ours = BTreeSet::new();
    collect_keys(payload, "", &mut ours);
    // GitHub adds `installation` to every delivery for an App; the examples were recorded from
    // repository hooks, and only some carry it.
    // Where every example has `null` (e.g. `merged_by` of closed-but-unmerged PRs), the examples
    // cannot show the object's keys; those are not counted as invented.
    let opaque = |k: &str| {
        github.iter().any(|g| {
            k.starts_with(&format!("{g}/"))
                && !github.iter().any(|h| h.starts_with(&format!("{g}/")))
        })
    };
    let invented: Vec<&String> = ours
        .iter()
        .filter(|k| !github.contains(*k) && !k.starts_with("/installation") && !opaque(k))
        .collect();
    assert!(
        invented.is_empty(),
        "{event}.{action}: keys GitHub's examples do not have: {invented:?}"
    );
    for path in required {
        assert!(
            payload.pointer(path).is_some_and(|v| !v.is_null()),
            "{event}.{action} lacks {path}"
        );
    }
}

#[tokio::test]
async fn webhooks_are_signed_and_shaped_like_githubs() {
    within(60, async {
        let w = World::start().await;
        let (receiver, url) = Receiver::start("hook-secret").await;
        w.sim.set_webhook_target(&url, "hook-secret");
        let issue = w.sim.open_issue(REPO, "bob", "New note", "").unwrap();
        let id = w
            .sim
            .user_comment(REPO, issue, "bob", "/tfpilot new note env=dev")
            .await
            .unwrap();
        // `user_comment` returns once the delivery was answered.
        let events = receiver.events();
        assert_eq!(events.len(), 1);
        let (event, payload, signed) = &events[0];
        assert_eq!((event.as_str(), *signed), ("issue_comment", true));
        assert_eq!(payload["comment"]["id"], id);
        assert_eq!(payload["comment"]["body"], "/tfpilot new note env=dev");
        assert_eq!(payload["installation"]["id"], w.installation.0);
        assert_shaped_like_github(
            payload,
            "issue_comment",
            "created",
            &[
                "/comment/id",
                "/comment/node_id",
                "/comment/user/login",
                "/comment/user/type",
                "/issue/number",
                "/repository/full_name",
                "/repository/default_branch",
                "/installation/id",
                "/sender/login",
            ],
        );

        // A PR opened and merged, and a workflow run, each send theirs.
        w.sim
            .push(REPO, "feature", "bob", &[("x.tf", Some("x"))])
            .unwrap();
        let pr = w
            .gh()
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        w.sim.merge_pr_as(REPO, pr.number, "alice").await.unwrap();
        let inputs = [
            ("request_id", "r"),
            ("environment", "dev"),
            ("dispatch_id", "d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        w.gh()
            .dispatch_workflow("plan.yml", "main", &inputs, "d")
            .await
            .unwrap();
        w.sim.wait_idle().await;

        let events = receiver.events();
        assert!(events.iter().all(|(_, _, signed)| *signed));
        let kinds: Vec<String> = events
            .iter()
            .map(|(e, p, _)| format!("{e}.{}", p["action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                "issue_comment.created",
                "pull_request.opened",
                "pull_request.closed",
                "workflow_run.requested",
                "workflow_run.in_progress",
                "workflow_run.completed"
            ]
        );
        let closed = &events[2].1;
        assert_eq!(closed["pull_request"]["merged"], true);
        assert_eq!(closed["sender"]["login"], "alice");
        assert_shaped_like_github(
            closed,
            "pull_request",
            "closed",
            &[
                "/number",
                "/pull_request/merged",
                "/pull_request/head/ref",
                "/pull_request/head/sha",
                "/pull_request/merge_commit_sha",
                "/installation/id",
            ],
        );
        let completed = &events[5].1;
        assert_eq!(completed["workflow_run"]["conclusion"], "success");
        assert_eq!(completed["workflow_run"]["display_title"], "plan dev r d");
        assert_shaped_like_github(
            completed,
            "workflow_run",
            "completed",
            &[
                "/workflow_run/id",
                "/workflow_run/name",
                "/workflow_run/display_title",
                "/workflow_run/head_branch",
                "/workflow_run/head_sha",
                "/workflow_run/conclusion",
                "/workflow_run/html_url",
                "/workflow/path",
            ],
        );
        assert_shaped_like_github(
            &events[3].1,
            "workflow_run",
            "requested",
            &["/workflow_run/status"],
        );
        assert!(w.sim.deliveries().iter().all(|d| d.status == Some(202)));
    })
    .await;
}

/// TfPilot asks for tokens that name one repository and the access of the call: a read token
/// cannot write, and no token reaches a sibling repository of the same installation.
#[tokio::test]
async fn tokens_are_scoped_to_one_repository_and_to_the_access_of_the_call() {
    within(30, async {
        let w = World::start().await;
        w.sim
            .add_repo("acme/other", "main", tfpilot_sim::files([("a", "b")]));
        let client = reqwest::Client::new();
        let base = w.sim.base_url();
        use secrecy::ExposeSecret;
        let read = w
            .app
            .installation_token(w.installation, &w.repo, tfpilot::github::Access::Read)
            .await
            .unwrap();
        let issue = w.sim.open_issue(REPO, "bob", "t", "b").unwrap();
        let comment = |token: String| {
            client
                .post(format!("{base}/repos/{REPO}/issues/{issue}/comments"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "body": "hello" }))
                .send()
        };
        let refused = comment(read.expose_secret().to_owned()).await.unwrap();
        assert_eq!(refused.status(), 403, "a read token cannot comment");
        assert_eq!(
            refused.json::<Value>().await.unwrap()["message"],
            "Resource not accessible by integration"
        );
        let sibling = client
            .get(format!("{base}/repos/acme/other"))
            .bearer_auth(read.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(sibling.status(), 404, "the token names one repository");
        let write = w
            .app
            .installation_token(w.installation, &w.repo, tfpilot::github::Access::Write)
            .await
            .unwrap();
        assert_eq!(
            comment(write.expose_secret().to_owned())
                .await
                .unwrap()
                .status(),
            201
        );
        // TfPilot's own calls pick the right token by themselves.
        w.gh().comment(issue, "from the client").await.unwrap();
        assert_eq!(w.gh().default_branch().await.unwrap(), "main");
    })
    .await;
}
