//! The simulator is not kinder than GitHub: lists are paged with `per_page`/`page` and a `Link`
//! header and carry only the fields GitHub's list answers carry, a comment needs a `body`, and
//! `minimizeComment` takes only the classifiers of GitHub's GraphQL schema. TfPilot's client
//! follows the `Link` header.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tfpilot::github::MinimizeReason;

use super::{REPO, World, within};
use crate::support;

const LIST_COMMENTS: &str = "GET /repos/{owner}/{repo}/issues/{number}/comments";

/// An authenticated GET or POST against the simulator, as the App's installation.
async fn raw(
    w: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let access = if method == reqwest::Method::GET {
        tfpilot::github::Access::Read
    } else {
        tfpilot::github::Access::Write
    };
    let token = w
        .app
        .installation_token(w.installation, &w.repo, access)
        .await
        .expect("token");
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", w.sim.base_url()))
        .bearer_auth(token.expose_secret());
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the simulator answers")
}

/// The `Link` header's targets by relation.
fn links(response: &reqwest::Response) -> BTreeMap<String, String> {
    let Some(header) = response.headers().get("link") else {
        return BTreeMap::new();
    };
    header
        .to_str()
        .expect("ascii")
        .split(',')
        .filter_map(|entry| {
            let (target, rel) = entry.split_once(';')?;
            let rel = rel.trim().strip_prefix("rel=\"")?.strip_suffix('"')?;
            Some((
                rel.to_owned(),
                target.trim().trim_matches(['<', '>']).to_owned(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn comments_are_paged_like_github_and_the_client_follows_the_link_header() {
    within(60, async {
        let w = World::start().await;
        let issue = w.sim.open_issue(REPO, "bob", "busy thread", "").unwrap();
        for n in 0..200 {
            w.sim
                .user_comment(REPO, issue, "bob", &format!("comment {n}"))
                .await
                .unwrap();
        }
        let gh = w.gh();

        // Exactly two full pages: the Link header says there is no third, so none is asked for
        // (counting short pages would have asked).
        w.sim.reset_calls();
        let listed = gh.comments(issue).await.unwrap();
        assert_eq!(listed.len(), 200);
        assert_eq!(w.sim.call_count(LIST_COMMENTS), 2);

        for n in 200..250 {
            w.sim
                .user_comment(REPO, issue, "bob", &format!("comment {n}"))
                .await
                .unwrap();
        }
        w.sim.reset_calls();
        let listed = gh.comments(issue).await.unwrap();
        assert_eq!(w.sim.call_count(LIST_COMMENTS), 3);
        let bodies: Vec<String> = listed.iter().map(|c| c.body.clone()).collect();
        let expected: Vec<String> = (0..250).map(|n| format!("comment {n}")).collect();
        assert_eq!(bodies, expected, "all 250, oldest first, none twice");

        // The pages themselves, as GitHub answers them.
        let base = format!("/repos/{REPO}/issues/{issue}/comments");
        let first = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}?per_page=100"),
            None,
        )
        .await;
        let rel = links(&first);
        assert_eq!(rel.keys().collect::<Vec<_>>(), ["last", "next"], "{rel:?}");
        assert!(rel["next"].ends_with("per_page=100&page=2"), "{rel:?}");
        assert!(rel["last"].ends_with("per_page=100&page=3"), "{rel:?}");
        assert_eq!(first.json::<Vec<Value>>().await.unwrap().len(), 100);

        let middle = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}?per_page=100&page=2"),
            None,
        )
        .await;
        let rel = links(&middle);
        assert_eq!(
            rel.keys().collect::<Vec<_>>(),
            ["first", "last", "next", "prev"]
        );
        let page: Vec<Value> = middle.json().await.unwrap();
        assert_eq!(page[0]["body"], "comment 100");

        let last = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}?per_page=100&page=3"),
            None,
        )
        .await;
        let rel = links(&last);
        assert_eq!(rel.keys().collect::<Vec<_>>(), ["first", "prev"], "{rel:?}");
        assert_eq!(last.json::<Vec<Value>>().await.unwrap().len(), 50);

        // 30 by default; never more than 100, whatever is asked.
        let default = raw(&w, reqwest::Method::GET, &base, None).await;
        assert!(links(&default)["last"].ends_with("per_page=30&page=9"));
        assert_eq!(default.json::<Vec<Value>>().await.unwrap().len(), 30);
        let greedy = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}?per_page=1000"),
            None,
        )
        .await;
        assert_eq!(greedy.json::<Vec<Value>>().await.unwrap().len(), 100);
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test]
async fn workflow_runs_are_paged_and_counted_like_github() {
    within(60, async {
        let w = World::start().await;
        let gh = w.gh();
        for n in 0..3 {
            let id = format!("d-{n}");
            let inputs = BTreeMap::from([
                ("request_id".to_owned(), "r".to_owned()),
                ("environment".to_owned(), "dev".to_owned()),
                ("dispatch_id".to_owned(), id.clone()),
            ]);
            gh.dispatch_workflow("plan.yml", "main", &inputs, &id)
                .await
                .unwrap();
        }
        let base = format!("/repos/{REPO}/actions/workflows/plan.yml/runs?event=workflow_dispatch");
        let first = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}&per_page=2"),
            None,
        )
        .await;
        let rel = links(&first);
        assert!(rel["next"].contains("event=workflow_dispatch"), "{rel:?}");
        assert!(rel["next"].ends_with("per_page=2&page=2"), "{rel:?}");
        let page: Value = first.json().await.unwrap();
        assert_eq!(page["total_count"], 3, "every run, not the page's");
        assert_eq!(page["workflow_runs"].as_array().unwrap().len(), 2);
        let second = raw(
            &w,
            reqwest::Method::GET,
            &format!("{base}&per_page=2&page=2"),
            None,
        )
        .await;
        let page: Value = second.json().await.unwrap();
        assert_eq!(page["total_count"], 3);
        assert_eq!(page["workflow_runs"].as_array().unwrap().len(), 1);
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test]
async fn listed_pull_requests_say_no_more_than_githubs_list_does() {
    within(30, async {
        let w = World::start().await;
        w.sim
            .push(REPO, "feature", "bob", &[("x.tf", Some("x"))])
            .unwrap();
        let pr = w
            .gh()
            .open_pull_request("feature", "main", "t", "b")
            .await
            .unwrap();
        let one: Value = raw(
            &w,
            reqwest::Method::GET,
            &format!("/repos/{REPO}/pulls/{}", pr.number),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        let listed: Vec<Value> = raw(
            &w,
            reqwest::Method::GET,
            &format!("/repos/{REPO}/pulls?state=open"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(listed.len(), 1);
        // GitHub's `pull-request` has these; its list answers (`pull-request-simple`) do not.
        for field in [
            "merged",
            "mergeable",
            "mergeable_state",
            "comments",
            "commits",
        ] {
            assert!(one.get(field).is_some(), "GET /pulls/n has {field}");
            assert!(listed[0].get(field).is_none(), "the list has {field}");
        }
        for field in [
            "number",
            "head",
            "base",
            "merged_at",
            "merge_commit_sha",
            "html_url",
        ] {
            assert!(listed[0].get(field).is_some(), "the list lacks {field}");
        }
        w.sim.wait_idle().await;
    })
    .await;
}

#[tokio::test]
async fn a_comment_without_a_string_body_is_refused_with_422() {
    within(30, async {
        let w = World::start().await;
        let issue = w.sim.open_issue(REPO, "bob", "t", "").unwrap();
        let path = format!("/repos/{REPO}/issues/{issue}/comments");
        for (body, words) in [
            (json!({}), "\"body\" wasn't supplied."),
            (json!({ "body": null }), "nil is not a string"),
            (json!({ "body": 7 }), "7 is not a string"),
            (json!({ "text": "hello" }), "\"body\" wasn't supplied."),
        ] {
            let answer = raw(&w, reqwest::Method::POST, &path, Some(body.clone())).await;
            assert_eq!(answer.status(), 422, "{body}");
            let message: Value = answer.json().await.unwrap();
            assert!(
                message["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(words),
                "{body}: {message}"
            );
        }
        let reply = w.gh().comment(issue, "hello").await.unwrap();
        let edit = raw(
            &w,
            reqwest::Method::PATCH,
            &format!("/repos/{REPO}/issues/comments/{}", reply.id),
            Some(json!({})),
        )
        .await;
        assert_eq!(edit.status(), 422);
        let comments = w.sim.comments(REPO, issue);
        assert_eq!(comments.len(), 1, "only the one with a body");
        assert_eq!(comments[0].body, "hello");
        w.sim.wait_idle().await;
    })
    .await;
}

/// The values of `enum ReportedContentClassifiers` in GitHub's GraphQL schema.
fn schema_classifiers() -> Vec<String> {
    let path = support::npm_fixtures().join("@octokit/graphql-schema/schema.graphql");
    let schema =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let start = schema
        .find("enum ReportedContentClassifiers {")
        .expect("the schema has ReportedContentClassifiers");
    let body = &schema[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    let mut values = Vec::new();
    let mut in_description = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            if !(line.len() > 3 && line.ends_with("\"\"\"")) {
                in_description = !in_description;
            }
            continue;
        }
        if !in_description && !line.is_empty() && !line.starts_with('#') {
            values.push(line.split_whitespace().next().unwrap().to_owned());
        }
    }
    values
}

#[tokio::test]
async fn minimize_comment_takes_exactly_githubs_classifiers() {
    within(30, async {
        let w = World::start().await;
        let issue = w.sim.open_issue(REPO, "bob", "t", "").unwrap();
        let gh = w.gh();
        let classifiers = schema_classifiers();
        assert_eq!(
            classifiers,
            ["ABUSE", "DUPLICATE", "OFF_TOPIC", "OUTDATED", "RESOLVED", "SPAM"],
            "GitHub's schema changed: update the simulator's list"
        );
        let minimize = |node_id: String, classifier: &str| {
            let classifier = classifier.to_owned();
            let w = &w;
            async move {
                let answer = raw(
                    w,
                    reqwest::Method::POST,
                    "/graphql",
                    Some(json!({
                        "query": "mutation($input: MinimizeCommentInput!) { minimizeComment(input: $input) { minimizedComment { isMinimized } } }",
                        "variables": { "input": { "subjectId": node_id, "classifier": classifier } },
                    })),
                )
                .await;
                answer.json::<Value>().await.unwrap()
            }
        };
        for classifier in classifiers.iter().map(String::as_str).chain(["LOW_QUALITY", "SPOILER"]) {
            let comment = gh.comment(issue, &format!("to hide as {classifier}")).await.unwrap();
            let answer = minimize(comment.node_id, classifier).await;
            let minimized = w.sim.comment(comment.id).unwrap().minimized;
            if classifiers.iter().any(|c| c == classifier) {
                assert!(answer.get("errors").is_none(), "{classifier}: {answer}");
                assert_eq!(minimized.as_deref(), Some(classifier));
            } else {
                assert!(answer["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("ReportedContentClassifiers"), "{classifier}: {answer}");
                assert_eq!(minimized, None, "{classifier}");
            }
        }
        // Every reason TfPilot gives is one GitHub has.
        for reason in [MinimizeReason::Outdated, MinimizeReason::Resolved, MinimizeReason::Duplicate] {
            let comment = gh.comment(issue, &format!("{reason:?}")).await.unwrap();
            gh.minimize_comment(&comment.node_id, reason).await.unwrap();
            let minimized = w.sim.comment(comment.id).unwrap().minimized.unwrap();
            assert!(classifiers.contains(&minimized), "{minimized}");
        }
        w.sim.wait_idle().await;
    })
    .await;
}
