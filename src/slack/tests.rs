use super::*;
use crate::ids::RequestId;

fn notice(event: NoticeEvent) -> Notice {
    Notice {
        event,
        request: "0b7c5b8e-7a0e-4a5e-9a4e-1f2f3a4b5c6d"
            .parse::<RequestId>()
            .unwrap(),
        repo: "acme/core-terraform".parse().unwrap(),
        issue: 12,
        pull_request: Some(13),
        run_url: Some("https://github.com/acme/core-terraform/actions/runs/77".into()),
        module_type: "s3-bucket".into(),
        environment: "prod".into(),
        requester: "carol".into(),
        actor: "tfpilot".into(),
        approvers: vec!["alice".into(), "b<o>b".into()],
        route: None,
    }
}

#[test]
fn a_plan_waiting_for_approval_names_the_approvers_and_links_issue_pr_and_run() {
    let m = message(&notice(NoticeEvent::PlanReady), "https://github.com/");
    insta::assert_json_snapshot!("plan_ready", m);
    let text = m.to_string();
    assert!(
        text.contains("*alice*, *b&lt;o&gt;b*"),
        "mrkdwn is escaped: {text}"
    );
    let buttons: Vec<&str> = m["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        buttons,
        [
            "https://github.com/acme/core-terraform/issues/12",
            "https://github.com/acme/core-terraform/pull/13",
            "https://github.com/acme/core-terraform/actions/runs/77",
        ]
    );
}

#[test]
fn every_event_has_a_header_and_a_fallback_text() {
    for event in NoticeEvent::ALL {
        let m = message(&notice(event), "https://ghe.example.com");
        assert_eq!(m["blocks"][0]["type"], "header", "{event}");
        let fallback = m["text"].as_str().unwrap();
        assert!(
            fallback.contains("s3-bucket in prod (acme/core-terraform#12)"),
            "{fallback}"
        );
        assert!(
            m.to_string()
                .contains("https://ghe.example.com/acme/core-terraform/issues/12")
        );
    }
}

#[test]
fn routes_resolve_to_their_webhook_and_off_sends_nothing() {
    let slack = Slack::new(SlackConfig {
        webhook_url: Some(SecretString::from(
            "https://hooks.slack.com/services/default",
        )),
        routes: BTreeMap::from([(
            "prod-alerts".to_owned(),
            SecretString::from("https://hooks.slack.com/services/prod"),
        )]),
        github_web_url: "https://github.com".into(),
    })
    .unwrap();
    let url = |route: Option<&str>| {
        slack
            .webhook(route)
            .map(|u| u.map(|u| u.expose_secret().to_owned()))
    };
    assert_eq!(
        url(None).unwrap().as_deref(),
        Some("https://hooks.slack.com/services/default")
    );
    assert_eq!(
        url(Some("prod-alerts")).unwrap().as_deref(),
        Some("https://hooks.slack.com/services/prod")
    );
    assert_eq!(url(Some("off")).unwrap(), None);
    let err = url(Some("nope")).unwrap_err().to_string();
    assert!(err.contains("`nope`"), "{err}");
    assert!(!err.contains("hooks.slack.com"), "no URL in errors: {err}");
}

#[test]
fn route_names_are_plain_words() {
    assert!(is_route_name("prod-alerts_2"));
    assert!(!is_route_name(""));
    assert!(!is_route_name("https://hooks.slack.com/x"));
    assert!(!is_route_name(&"a".repeat(65)));
}
