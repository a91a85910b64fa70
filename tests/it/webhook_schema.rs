//! Every payload shape GitHub's own webhook description (`@octokit/openapi-webhooks`, pinned in
//! `tests/fixtures/npm`) allows for the events TfPilot handles is accepted: its examples, and
//! payloads built from its schemas with every nullable field null, every optional field left out,
//! every alternative (`anyOf`/`oneOf`, a list of types) and every enum value, one at a time.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tfpilot::webhook::Event;
use tfpilot::webhook::events::User;

use crate::support::{self, WEBHOOK_SECRET, signed_delivery};
use crate::webhook::{send, test_app};

/// How deep a field may be for its variants to be tried one by one (`comment.user.login` is
/// depth 3; TfPilot reads nothing deeper). Deeper fields are generated, with their base shape.
const VARIANT_DEPTH: usize = 3;

/// The description of api.github.com's webhooks.
fn description() -> Value {
    let path =
        support::npm_fixtures().join("@octokit/openapi-webhooks/generated/api.github.com.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the webhook description is JSON")
}

/// Builds one payload from a schema: the base shape (every property present, every value
/// non-null, the first alternative), or the base with exactly one choice changed (`target`).
struct Builder<'a> {
    root: &'a Value,
    target: Option<usize>,
    /// Choice points met so far, in depth-first order (the same before `target` in every run).
    seen: usize,
    /// What the target choice changed: `path: variant`.
    applied: Option<String>,
    /// Properties the next object built must have (required by a sibling in an `allOf`).
    also_required: Vec<String>,
    /// Every choice point met, in order: its path and the label of each non-base option.
    points: Vec<(Vec<String>, String)>,
    path: Vec<String>,
    refs: Vec<&'a str>,
}

impl<'a> Builder<'a> {
    fn new(root: &'a Value, target: Option<usize>) -> Self {
        Builder {
            root,
            target,
            seen: 0,
            applied: None,
            points: Vec::new(),
            also_required: Vec::new(),
            path: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// 0 for the base shape, `i + 1` when `labels[i]` is this run's target.
    fn choose(&mut self, labels: &[String]) -> usize {
        if self.path.len() > VARIANT_DEPTH {
            return 0;
        }
        for (i, label) in labels.iter().enumerate() {
            if self.target.is_none() {
                self.points.push((self.path.clone(), label.clone()));
            }
            if self.target == Some(self.seen) {
                self.applied = Some(format!("{}: {label}", self.path.join(".")));
                self.seen += 1;
                return i + 1;
            }
            self.seen += 1;
        }
        0
    }

    fn deref(&self, schema: &'a Value) -> (&'a Value, Option<&'a str>) {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("a local $ref");
                let target = self
                    .root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}"));
                (self.deref(target).0, Some(r))
            }
            None => (schema, None),
        }
    }

    fn build(&mut self, schema: &'a Value) -> Value {
        let (schema, reference) = self.deref(schema);
        if let Some(r) = reference {
            // A schema that contains itself (a team's parent): stop at the second level.
            if self.refs.iter().filter(|seen| **seen == r).count() >= 2 {
                return Value::Null;
            }
            self.refs.push(r);
        }
        let value = self.build_resolved(schema);
        if reference.is_some() {
            self.refs.pop();
        }
        value
    }

    fn build_resolved(&mut self, schema: &'a Value) -> Value {
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            // A property one part requires is required of the whole, even where another part
            // lists it as optional.
            let required: Vec<String> = parts
                .iter()
                .filter_map(|part| self.deref(part).0.get("required")?.as_array())
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            let mut merged = Map::new();
            for part in parts {
                self.also_required = required.clone();
                match self.build(part) {
                    Value::Object(o) => merged.extend(o),
                    other => {
                        self.also_required.clear();
                        return other;
                    }
                }
            }
            self.also_required.clear();
            return Value::Object(merged);
        }
        let alternatives = alternatives(schema);
        let mut labels: Vec<String> = Vec::new();
        if nullable(schema) {
            labels.push("null".into());
        }
        labels.extend(alternatives.iter().skip(1).map(|a| a.label()));
        let choice = self.choose(&labels);
        if nullable(schema) && choice == 1 {
            return Value::Null;
        }
        let index = if choice == 0 {
            0
        } else {
            choice - usize::from(nullable(schema))
        };
        match alternatives.get(index) {
            Some(Alternative::Schema(sub)) => self.build(sub),
            Some(Alternative::Type(kind)) => self.build_type(schema, kind),
            Some(Alternative::Enum(v)) => (*v).clone(),
            None => Value::Null,
        }
    }

    fn build_type(&mut self, schema: &'a Value, kind: &str) -> Value {
        match kind {
            "object" => {
                let also_required = std::mem::take(&mut self.also_required);
                let mut required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                required.extend(also_required.iter().map(String::as_str));
                let mut object = Map::new();
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    for (name, sub) in properties {
                        self.path.push(name.clone());
                        let left_out = !required.contains(&name.as_str())
                            && self.choose(&["left out".to_owned()]) == 1;
                        if !left_out {
                            let value = self.build(sub);
                            object.insert(name.clone(), value);
                        }
                        self.path.pop();
                    }
                }
                Value::Object(object)
            }
            "array" => match schema.get("items") {
                Some(items) => {
                    self.path.push("[]".into());
                    let item = self.build(items);
                    self.path.pop();
                    Value::Array(vec![item])
                }
                None => Value::Array(Vec::new()),
            },
            "integer" => json!(42),
            "number" => json!(4.5),
            "boolean" => json!(false),
            "string" => Value::String(sample_string(
                self.path.last().map(String::as_str).unwrap_or(""),
                schema.get("format").and_then(Value::as_str),
            )),
            _ => json!({}),
        }
    }
}

enum Alternative<'a> {
    Schema(&'a Value),
    Type(String),
    Enum(&'a Value),
}

impl Alternative<'_> {
    fn label(&self) -> String {
        match self {
            Alternative::Schema(s) => match s.get("$ref").and_then(Value::as_str) {
                Some(r) => format!("alternative {}", r.rsplit('/').next().unwrap_or(r)),
                None => "another alternative".into(),
            },
            Alternative::Type(t) => format!("a {t}"),
            Alternative::Enum(v) => format!("{v}"),
        }
    }
}

/// The non-null shapes a schema allows, the base one first.
fn alternatives(schema: &Value) -> Vec<Alternative<'_>> {
    for key in ["anyOf", "oneOf"] {
        if let Some(subs) = schema.get(key).and_then(Value::as_array) {
            return subs
                .iter()
                .filter(|s| !is_null_schema(s))
                .map(Alternative::Schema)
                .collect();
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter(|v| !v.is_null())
            .map(Alternative::Enum)
            .collect();
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ if schema.get("properties").is_some() => vec!["object".into()],
        _ if schema.get("items").is_some() => vec!["array".into()],
        _ => vec!["any".into()],
    };
    types
        .into_iter()
        .filter(|t| t != "null")
        .map(Alternative::Type)
        .collect()
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Whether the schema allows `null` (OpenAPI 3.1 `type: [.., "null"]`, an `anyOf` with a null
/// branch, 3.0's `nullable`, or `null` among the enum values).
fn nullable(schema: &Value) -> bool {
    let in_type = match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => false,
    };
    let in_branches = ["anyOf", "oneOf"].iter().any(|key| {
        schema
            .get(*key)
            .and_then(Value::as_array)
            .is_some_and(|subs| subs.iter().any(is_null_schema))
    });
    let in_enum = schema
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|values| values.iter().any(Value::is_null));
    in_type || in_branches || in_enum || schema.get("nullable") == Some(&Value::Bool(true))
}

/// The base payload with the field at `path` null or left out, made by editing a copy (the same
/// payload [`Builder`] makes for that choice, faster); `None` for other choices.
fn edited(base: &Value, path: &[String], label: &str) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut value = base.clone();
    let mut at = &mut value;
    for segment in parents {
        at = match segment.as_str() {
            "[]" => at.get_mut(0)?,
            key => at.get_mut(key)?,
        };
    }
    match label {
        "null" => {
            let field = match last.as_str() {
                "[]" => at.get_mut(0)?,
                key => at.get_mut(key)?,
            };
            *field = Value::Null;
        }
        "left out" => {
            at.as_object_mut()?.remove(last.as_str())?;
        }
        _ => return None,
    }
    Some(value)
}

/// A string GitHub could send for a field of this name and format.
fn sample_string(field: &str, format: Option<&str>) -> String {
    match (field, format) {
        ("full_name", _) => "octo-org/octo-repo".into(),
        ("login", _) => "octocat".into(),
        (f, _) if f == "sha" || f.ends_with("_sha") => {
            "6dcb09b5b57875f334f61aebed695e2e4193db5e".into()
        }
        (_, Some("date-time")) => "2025-01-02T03:04:05Z".into(),
        (_, Some("uri" | "uri-template")) => "https://github.com/octo-org/octo-repo".into(),
        (_, Some("email")) => "octocat@github.com".into(),
        _ => "text".into(),
    }
}

/// The `X-GitHub-Event` name of a webhook in the description (`issue-comment/created` →
/// `issue_comment`).
fn event_name(webhook: &Value) -> String {
    let id = webhook["post"]["operationId"]
        .as_str()
        .expect("every webhook has an operationId");
    id.split('/').next().unwrap_or(id).replace('-', "_")
}

/// The payloads also sent through the router (a 400 comes only from [`Event::parse`], which
/// every payload goes through): the examples, the base shapes and every variant of an actor.
fn through_router(what: &str) -> bool {
    what.starts_with("example")
        || what == "base shape"
        || [
            "sender",
            "comment.user",
            "issue.user",
            "pull_request.user",
            "installation.account",
        ]
        .iter()
        .any(|actor| what.starts_with(actor))
}

#[tokio::test]
async fn every_real_payload_shape_in_githubs_webhook_description_is_accepted() {
    let root = description();
    let app = test_app(Some(WEBHOOK_SECRET));
    let webhooks = root["webhooks"].as_object().expect("webhooks");
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples = 0;
    let mut actions = 0;
    let mut delivery = 0usize;
    let mut refused: Vec<String> = Vec::new();
    for (key, webhook) in webhooks {
        let event = event_name(webhook);
        if !Event::HANDLED.contains(&event.as_str()) {
            continue;
        }
        actions += 1;
        let content = &webhook["post"]["requestBody"]["content"]["application/json"];
        let mut payloads: Vec<(String, Value)> = Vec::new();
        if let Some(listed) = content.get("examples").and_then(Value::as_object) {
            for (name, example) in listed {
                let builder = Builder::new(&root, None);
                let value = builder.deref(example).0["value"].clone();
                assert!(value.is_object(), "{key}: example {name} has no value");
                payloads.push((format!("example {name}"), value));
                examples += 1;
            }
        }
        let schema = &content["schema"];
        let mut base = Builder::new(&root, None);
        let base_value = base.build(schema);
        for (target, (path, label)) in base.points.iter().enumerate() {
            if let Some(value) = edited(&base_value, path, label) {
                payloads.push((format!("{}: {label}", path.join(".")), value));
                continue;
            }
            let mut builder = Builder::new(&root, Some(target));
            let value = builder.build(schema);
            let applied = builder.applied.expect("every target is a choice");
            payloads.push((applied, value));
        }
        payloads.push(("base shape".into(), base_value));
        for (what, payload) in payloads {
            let body = serde_json::to_vec(&payload).expect("a payload serializes");
            match Event::parse(&event, &body) {
                Ok(parsed) => assert_eq!(parsed.name(), event, "{key} with {what}"),
                Err(e) => {
                    refused.push(format!("{key} with {what}: {e}"));
                    continue;
                }
            }
            *checked.entry(event.clone()).or_default() += 1;
            if !through_router(&what) {
                continue;
            }
            delivery += 1;
            let (status, text) = send(
                &app.router,
                signed_delivery(
                    WEBHOOK_SECRET,
                    &event,
                    &format!("00000000-0000-4000-9000-{delivery:012}"),
                    body,
                ),
            )
            .await;
            let expected = if event == "ping" {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            if status != expected {
                refused.push(format!("{key} with {what}: {status} {text}"));
            }
        }
    }
    let total: usize = checked.values().sum();
    println!(
        "parsed {total} payloads built from @octokit/openapi-webhooks for {actions} event actions \
         ({examples} examples among them; {delivery} also sent through the router): {checked:?}"
    );
    assert!(
        refused.is_empty(),
        "{} payloads GitHub may send are refused:\n{}",
        refused.len(),
        refused.join("\n")
    );
    assert_eq!(checked.len(), Event::HANDLED.len(), "{checked:?}");
    assert!(examples >= 1, "the description's examples were not found");
    // @octokit/openapi-webhooks 12.1.0 (pinned in tests/fixtures/npm).
    assert_eq!(actions, 57);
    assert_eq!(total, 16787, "{checked:?}");
}

#[test]
fn a_comment_without_its_author_reads_as_the_unknown_ghost() {
    let root = description();
    let schema = &root["webhooks"]["issue-comment-created"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let mut payload = Builder::new(&root, None).build(schema);
    payload["comment"]["user"] = Value::Null;
    payload["issue"]["user"] = Value::Null;
    let body = serde_json::to_vec(&payload).unwrap();
    let Event::IssueComment(e) = Event::parse("issue_comment", &body).unwrap() else {
        panic!("not an issue comment");
    };
    assert_eq!(e.comment.user, None);
    assert_eq!(e.issue.user, None);
    assert_eq!(e.comment.author_login(), User::GHOST);
    assert!(User::is_ghost(e.comment.author_login()));

    let schema = &root["webhooks"]["installation-created"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let mut payload = Builder::new(&root, None).build(schema);
    payload["installation"]["account"] = json!({
        "id": 1, "slug": "octo-enterprise", "name": "Octo Enterprise", "node_id": "E_1",
        "html_url": "https://github.com/enterprises/octo-enterprise",
        "created_at": null, "updated_at": null, "avatar_url": "https://github.com/x.png"
    });
    let body = serde_json::to_vec(&payload).unwrap();
    let Event::Installation(e) = Event::parse("installation", &body).unwrap() else {
        panic!("not an installation");
    };
    let account = e.installation.account.expect("an account");
    assert_eq!(account.login, None);
    assert_eq!(account.name(), Some("octo-enterprise"));
}
