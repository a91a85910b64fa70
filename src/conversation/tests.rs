use serde_json::json;

use super::*;
use crate::domain::ClarificationKind;
use crate::registry::Registry;

// The helpers are shared with the reply rendering's tests (`comments::conversation`).
pub(crate) fn spec(module: &str) -> &'static ModuleSpec {
    Registry::embedded().get(module).unwrap()
}

pub(crate) fn ctx() -> ConversationContext {
    ConversationContext::new(
        "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".parse().unwrap(),
        "core",
        "dev",
    )
}

pub(crate) fn typed(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn extraction(proposed: serde_json::Value) -> Extraction {
    Extraction {
        proposed: serde_json::from_value(proposed).unwrap(),
        clarifications: Vec::new(),
        reply: String::new(),
        source: ExtractorKind::Llm,
    }
}

fn problems(reply: &Reply) -> Vec<String> {
    reply.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn new_with_a_name_is_complete_with_defaults() {
    let (conv, reply) = start(
        spec("s3-bucket"),
        &typed(&[("name", "invoices")]),
        None,
        &ctx(),
    );
    assert_eq!(
        conv.values,
        BTreeMap::from([("name".to_owned(), json!("invoices"))])
    );
    assert_eq!(conv.turns, 1);
    assert!(conv.pending.is_empty());
    assert!(reply.is_complete());
    let config = reply.config().unwrap();
    let block = render_block(ctx().request_id, spec("s3-bucket"), config).unwrap();
    assert_eq!(reply.block(), Some(block.as_str()));
    assert!(
        block.contains("bucket_name        = \"core-dev-invoices\""),
        "{block}"
    );
    assert_eq!(reply.understood.len(), 1);
    let states: Vec<(&str, &InputState)> = reply
        .inputs
        .iter()
        .map(|r| (r.name.as_str(), &r.state))
        .collect();
    assert_eq!(
        states,
        [
            (
                "name",
                &InputState::Set(InputValue::String("invoices".into()))
            ),
            (
                "versioning_enabled",
                &InputState::Default(InputValue::Bool(false))
            ),
            ("expiration_days", &InputState::NotSet),
            (
                "force_destroy",
                &InputState::Default(InputValue::Bool(false))
            ),
            (
                "tags",
                &InputState::Default(InputValue::Map(BTreeMap::new()))
            ),
        ]
    );
}

#[test]
fn missing_required_inputs_are_listed_and_the_first_is_asked() {
    let ecs = spec("ecs-service");
    let (conv, reply) = start(ecs, &typed(&[("name", "api")]), None, &ctx());
    assert!(!reply.is_complete());
    let missing: Vec<&str> = reply.missing().map(|r| r.name.as_str()).collect();
    assert_eq!(missing, ["cluster_name", "image", "subnet_ids"]);
    assert_eq!(conv.pending.len(), 1);
    assert_eq!(conv.pending[0].input, "cluster_name");
    assert_eq!(reply.questions, conv.pending);
    assert_eq!(reply.outcome, Outcome::Incomplete);
}

#[test]
fn valid_proposals_are_stored_normalized_and_invalid_ones_reported() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(s3, &typed(&[("name", "invoices")]), None, &ctx());
    let e = extraction(json!({
        "versioning": "on",
        "expiration_days": "30 days",
        "force_destroy": "maybe",
        "versoning": true,
        "environment": "prod",
    }));
    let (next, reply) = apply_extraction(&conv, s3, &e, &ctx());
    assert_eq!(
        serde_json::to_value(&next.values).unwrap(),
        json!({"name": "invoices", "versioning_enabled": true, "expiration_days": 30})
    );
    assert_eq!(
        problems(&reply),
        [
            "`environment` is not an input of this module",
            "`force_destroy`: `maybe` is not true or false (yes/no and on/off work too)",
            "`versoning` is not an input of this module — did you mean `versioning_enabled`?",
        ]
    );
    let understood: Vec<(&str, String)> = reply
        .understood
        .iter()
        .map(|c| (c.input.as_str(), c.value.to_string()))
        .collect();
    assert_eq!(
        understood,
        [
            ("versioning_enabled", "true".into()),
            ("expiration_days", "30".into())
        ]
    );
    assert!(reply.is_complete());
    assert_eq!(next.turns, 2);
    assert_eq!(reply.source, Some(ExtractorKind::Llm));
}

#[test]
fn an_invalid_value_keeps_the_previous_one() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(
        s3,
        &typed(&[("name", "invoices"), ("expiry", "30")]),
        None,
        &ctx(),
    );
    let (next, reply) = apply_set(&conv, s3, &typed(&[("expiration_days", "5000")]), &ctx());
    assert_eq!(next.values["expiration_days"], json!(30));
    assert_eq!(
        problems(&reply),
        ["`expiration_days`: `5000` is above the maximum of 3650 days"]
    );
    assert!(reply.understood.is_empty());
    assert!(reply.is_complete(), "the last good state is still complete");
    let (next, reply) = apply_set(&next, s3, &typed(&[("name", "Not Valid!")]), &ctx());
    assert_eq!(next.values["name"], json!("invoices"));
    assert_eq!(reply.problems.len(), 1);
    assert_eq!(reply.problems[0].subject(), "name");
}

#[test]
fn map_entries_merge_and_unset_one_by_one() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(
        s3,
        &typed(&[("name", "x"), ("tags.Team", "payments")]),
        None,
        &ctx(),
    );
    let (conv, reply) = apply_set(&conv, s3, &typed(&[("labels.Owner", "alice")]), &ctx());
    assert_eq!(
        conv.values["tags"],
        json!({"Owner": "alice", "Team": "payments"})
    );
    assert_eq!(
        reply.understood[0].previous,
        Some(InputValue::Map(BTreeMap::from([(
            "Team".into(),
            "payments".into()
        )])))
    );
    let (conv, reply) = apply_set(&conv, s3, &typed(&[("tags.ManagedBy", "me")]), &ctx());
    assert_eq!(
        conv.values["tags"],
        json!({"Owner": "alice", "Team": "payments"})
    );
    assert_eq!(
        problems(&reply),
        ["`tags`: tag `ManagedBy` is set by TfPilot and cannot be changed"]
    );
    let (conv, reply) = apply_unset(&conv, s3, &["tags.Team".to_owned()], &ctx());
    assert_eq!(conv.values["tags"], json!({"Owner": "alice"}));
    assert_eq!(reply.cleared, ["tags.Team"]);
    let (conv, reply) = apply_unset(&conv, s3, &["labels.Owner".to_owned()], &ctx());
    assert!(!conv.values.contains_key("tags"));
    assert_eq!(reply.cleared, ["tags.Owner"]);
    let (conv, _) = apply_set(&conv, s3, &typed(&[("tags", "A=1,B=2")]), &ctx());
    let (conv, _) = apply_set(&conv, s3, &typed(&[("tags", "C=3")]), &ctx());
    assert_eq!(
        conv.values["tags"],
        json!({"C": "3"}),
        "a whole map replaces"
    );
}

#[test]
fn too_many_tags_in_entries_are_refused_as_a_whole() {
    let s3 = spec("s3-bucket");
    let many: BTreeMap<String, String> = (0..46)
        .map(|i| (format!("tags.K{i}"), "v".to_owned()))
        .collect();
    let (conv, reply) = start(s3, &typed(&[("name", "x")]), None, &ctx());
    assert!(reply.problems.is_empty());
    let (conv, reply) = apply_set(&conv, s3, &many, &ctx());
    assert!(reply.problems.is_empty(), "{:?}", problems(&reply));
    let (conv, reply) = apply_set(&conv, s3, &typed(&[("tags.One", "more")]), &ctx());
    assert_eq!(conv.values["tags"].as_object().unwrap().len(), 46);
    assert!(
        problems(&reply)[0].contains("at most 46 tags"),
        "{:?}",
        problems(&reply)
    );
}

#[test]
fn unset_returns_inputs_to_defaults_and_required_ones_to_missing() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(
        s3,
        &typed(&[("name", "x"), ("versioning", "on")]),
        None,
        &ctx(),
    );
    let (conv, reply) = apply_unset(
        &conv,
        s3,
        &[
            "versioning".to_owned(),
            "name".to_owned(),
            "nope".to_owned(),
        ],
        &ctx(),
    );
    assert!(conv.values.is_empty());
    assert_eq!(reply.cleared, ["versioning_enabled", "name"]);
    assert_eq!(problems(&reply), ["`nope` is not an input of this module"]);
    assert!(!reply.is_complete());
    assert_eq!(conv.pending[0].input, "name");
}

#[test]
fn open_questions_carry_over_until_answered() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(s3, &typed(&[("name", "x")]), None, &ctx());
    let mut e = extraction(json!({}));
    e.clarifications = vec![crate::assist::clarification_for(
        s3.input("versioning_enabled").unwrap(),
    )];
    let (conv, reply) = apply_extraction(&conv, s3, &e, &ctx());
    // Complete replies ask nothing more: the person can submit.
    assert!(reply.is_complete());
    assert!(conv.pending.is_empty());

    let ecs = spec("ecs-service");
    let (conv, _) = start(ecs, &typed(&[("name", "api")]), None, &ctx());
    let mut e = extraction(json!({"cluster": "main"}));
    e.clarifications = vec![
        Clarification {
            input: "image".into(),
            question: "Which image?".into(),
            kind: ClarificationKind::Text,
        },
        Clarification {
            input: "not_an_input".into(),
            question: "x".into(),
            kind: ClarificationKind::Text,
        },
    ];
    let (conv, reply) = apply_extraction(&conv, ecs, &e, &ctx());
    let asked: Vec<&str> = conv.pending.iter().map(|q| q.input.as_str()).collect();
    assert_eq!(
        asked,
        ["image"],
        "answered and unknown inputs are not asked"
    );
    assert_eq!(reply.questions, conv.pending);
    let (conv, _) = apply_set(&conv, ecs, &typed(&[("image", "nginx:1.25")]), &ctx());
    assert_eq!(conv.pending[0].input, "subnet_ids");
}

#[test]
fn typed_values_win_over_extracted_ones_in_new() {
    let s3 = spec("s3-bucket");
    let e = extraction(json!({"name": "from-text", "versioning_enabled": true}));
    let (conv, reply) = start(s3, &typed(&[("bucket", "typed")]), Some(&e), &ctx());
    assert_eq!(conv.values["name"], json!("typed"));
    assert_eq!(conv.values["versioning_enabled"], json!(true));
    assert!(reply.problems.is_empty());
}

#[test]
fn show_changes_nothing() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(s3, &typed(&[("name", "x")]), None, &ctx());
    let reply = show(&conv, s3, &ctx());
    assert!(reply.understood.is_empty());
    assert!(reply.is_complete());
    assert_eq!(
        show(&conv, s3, &ctx()),
        reply,
        "pure: same input, same reply"
    );
}

#[test]
fn a_stored_value_that_no_longer_validates_is_reported_and_dropped() {
    let s3 = spec("s3-bucket");
    let conv = Conversation {
        values: BTreeMap::from([
            ("name".to_owned(), json!("x")),
            ("expiration_days".to_owned(), json!(99_999)),
        ]),
        pending: Vec::new(),
        turns: 3,
    };
    let (next, reply) = apply_set(&conv, s3, &typed(&[("versioning", "on")]), &ctx());
    assert!(!next.values.contains_key("expiration_days"));
    assert_eq!(reply.problems[0].subject(), "expiration_days");
    let (from, errors) = Conversation::from_values(s3, &conv.values);
    assert_eq!(from.values.len(), 1);
    assert_eq!(errors.len(), 1);
}

#[test]
fn a_bad_context_blocks_completion_with_a_reason() {
    let s3 = spec("s3-bucket");
    let mut bad = ctx();
    bad.project = "Not_Valid".into();
    let (_, reply) = start(s3, &typed(&[("name", "x")]), None, &bad);
    let Outcome::Blocked { problems } = &reply.outcome else {
        panic!("expected blocked, got {:?}", reply.outcome)
    };
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("project:"), "{problems:?}");
}

#[test]
fn hcl_text_stays_a_string_in_the_block() {
    let iam = spec("iam-role-app");
    let e = extraction(json!({
        "name": "app",
        "description": "${file(\"/etc/passwd\")} %{if true}x%{endif}",
    }));
    let (conv, reply) = start(iam, &BTreeMap::new(), Some(&e), &ctx());
    assert_eq!(
        conv.values["description"],
        json!("${file(\"/etc/passwd\")} %{if true}x%{endif}")
    );
    let block = reply.block().unwrap();
    assert!(
        block.contains(
            r#"description          = "$${file(\"/etc/passwd\")} %%{if true}x%%{endif}""#
        ),
        "{block}"
    );
}

#[test]
fn the_conversation_round_trips_through_json() {
    let ecs = spec("ecs-service");
    let (conv, _) = start(
        ecs,
        &typed(&[("name", "api"), ("env_vars.LOG", "debug")]),
        None,
        &ctx(),
    );
    let json = serde_json::to_value(&conv).unwrap();
    assert_eq!(json["pending"][0]["kind"], "text");
    assert_eq!(
        json["values"]["environment_variables"],
        json!({"LOG": "debug"})
    );
    let back: Conversation = serde_json::from_value(json).unwrap();
    assert_eq!(back, conv);
    let empty: Conversation = serde_json::from_value(json!({})).unwrap();
    assert_eq!(empty, Conversation::default());
}

#[test]
fn the_same_turn_gives_the_same_result() {
    let s3 = spec("s3-bucket");
    let e = extraction(json!({"name": "x", "expiration_days": 7}));
    let a = start(s3, &BTreeMap::new(), Some(&e), &ctx());
    let b = start(s3, &BTreeMap::new(), Some(&e), &ctx());
    assert_eq!(a, b);
}
