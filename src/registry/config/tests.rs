use serde_json::json;

use super::*;
use crate::registry::Registry;

fn spec(t: &str) -> &'static ModuleSpec {
    Registry::embedded().get(t).unwrap()
}

fn ctx() -> ConfigContext {
    ConfigContext {
        request_id: "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".parse().unwrap(),
        project: "core".into(),
        environment: "dev".into(),
    }
}

fn raw(v: serde_json::Value) -> BTreeMap<String, Value> {
    serde_json::from_value(v).unwrap()
}

fn errors(t: &str, v: serde_json::Value) -> Vec<String> {
    build_module_config(spec(t), &raw(v), &ctx())
        .unwrap_err()
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn normalizes_aliases_case_literals_and_defaults() {
    let config = build_module_config(
        spec("s3-bucket"),
        &raw(json!({
            "Bucket": " invoices ",
            "versioningEnabled": "on",
            "retention-days": "30 days",
            "labels": "team=payments, cost-center=42",
        })),
        &ctx(),
    )
    .unwrap();
    assert_eq!(config.inputs["name"], InputValue::String("invoices".into()));
    assert_eq!(config.inputs["versioning_enabled"], InputValue::Bool(true));
    assert_eq!(
        config.inputs["expiration_days"],
        InputValue::Number(30.into())
    );
    assert_eq!(
        config.inputs["force_destroy"],
        InputValue::Bool(false),
        "default merged"
    );
    assert_eq!(
        config.computed["bucket_name"],
        InputValue::String("core-dev-invoices".into())
    );
    let InputValue::Map(tags) = &config.computed["tags"] else {
        panic!()
    };
    assert_eq!(
        tags.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        [
            "Environment=dev",
            "ManagedBy=tfpilot",
            "Project=core",
            "TfPilotRequestId=3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b",
            "cost-center=42",
            "team=payments"
        ]
    );
    // The module gets the computed name, never the short `name` input.
    let args: Vec<&str> = config
        .arguments(spec("s3-bucket"))
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(
        args,
        [
            "bucket_name",
            "versioning_enabled",
            "expiration_days",
            "force_destroy",
            "tags"
        ]
    );
}

#[test]
fn optional_inputs_without_default_are_left_out_and_null_means_not_given() {
    let config = build_module_config(
        spec("s3-bucket"),
        &raw(json!({"name": "x1", "expiration_days": null})),
        &ctx(),
    )
    .unwrap();
    assert!(!config.inputs.contains_key("expiration_days"));
    assert!(
        config
            .arguments(spec("s3-bucket"))
            .iter()
            .all(|(k, _)| *k != "expiration_days")
    );
}

#[test]
fn bools_accept_the_obvious_words() {
    for (given, want) in [
        (json!(true), true),
        (json!("yes"), true),
        (json!("ON"), true),
        (json!("enabled"), true),
        (json!(1), true),
        (json!("no"), false),
        (json!("off"), false),
        (json!("False"), false),
        (json!(0), false),
    ] {
        let c = build_module_config(
            spec("s3-bucket"),
            &raw(json!({"name": "x1", "versioning": given})),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            c.inputs["versioning_enabled"],
            InputValue::Bool(want),
            "{given}"
        );
    }
    assert_eq!(
        errors("s3-bucket", json!({"name": "x1", "versioning": "maybe"})),
        ["`versioning_enabled`: `maybe` is not true or false (yes/no and on/off work too)"]
    );
}

#[test]
fn numbers_accept_units_and_check_bounds() {
    let ok = |v: serde_json::Value| {
        build_module_config(
            spec("sqs-queue"),
            &raw(json!({"name": "q", "visibilityTimeout": v})),
            &ctx(),
        )
        .map(|c| c.inputs["visibility_timeout_seconds"].clone())
    };
    assert_eq!(ok(json!("45")).unwrap(), InputValue::Number(45.into()));
    assert_eq!(
        ok(json!("45 seconds")).unwrap(),
        InputValue::Number(45.into())
    );
    assert_eq!(ok(json!("1 second")).unwrap(), InputValue::Number(1.into()));
    assert_eq!(ok(json!(60.0)).unwrap(), InputValue::Number(60.into()));
    let bad =
        |v: serde_json::Value| errors("sqs-queue", json!({"name": "q", "visibility_timeout": v}));
    assert_eq!(
        bad(json!("2 minutes")),
        ["`visibility_timeout_seconds`: `2 minutes`: give the number in seconds"]
    );
    assert_eq!(
        bad(json!("1.5")),
        ["`visibility_timeout_seconds`: `1.5` must be a whole number"]
    );
    assert_eq!(
        bad(json!(50000)),
        ["`visibility_timeout_seconds`: `50000` is above the maximum of 43200 seconds"]
    );
    assert_eq!(
        bad(json!("NaN")),
        ["`visibility_timeout_seconds`: `NaN` is not a number"]
    );
    assert_eq!(
        bad(json!("inf")),
        ["`visibility_timeout_seconds`: `inf` is not a number"]
    );
    assert_eq!(
        bad(json!([1])),
        ["`visibility_timeout_seconds`: expected a number, got a list"]
    );
}

#[test]
fn lists_and_maps_accept_text_and_json() {
    let c = build_module_config(
        spec("ecs-service"),
        &raw(json!({
            "name": "api",
            "cluster": "main",
            "image": "nginx:1.27",
            "subnets": "subnet-0123abcd, subnet-4567ef01",
            "security_groups": "[\"sg-0123abcd\"]",
            "env_vars": {"LOG_LEVEL": "debug", "WORKERS": 4},
            "environment_variables.MODE": "fast",
        })),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        c.inputs["subnet_ids"],
        InputValue::List(vec!["subnet-0123abcd".into(), "subnet-4567ef01".into()])
    );
    assert_eq!(
        c.inputs["security_group_ids"],
        InputValue::List(vec!["sg-0123abcd".into()])
    );
    let InputValue::Map(env) = &c.inputs["environment_variables"] else {
        panic!()
    };
    assert_eq!(env.len(), 3);
    assert_eq!(env["WORKERS"], "4");
    assert_eq!(env["MODE"], "fast");
    assert_eq!(
        c.computed["service_name"],
        InputValue::String("core-dev-api".into())
    );
}

#[test]
fn allowed_values_match_without_case_and_keep_the_catalogue_spelling() {
    let c = build_module_config(
        spec("iam-role-app"),
        &raw(json!({"name": "app", "service": "Lambda.AmazonAWS.com"})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        c.inputs["trusted_service"],
        InputValue::String("lambda.amazonaws.com".into())
    );
    let e = errors(
        "iam-role-app",
        json!({"name": "app", "service": "s3.amazonaws.com"}),
    );
    assert_eq!(
        e,
        [
            "`trusted_service`: `s3.amazonaws.com` is not one of `ecs-tasks.amazonaws.com`, `lambda.amazonaws.com`, `ec2.amazonaws.com`"
        ]
    );
    let e = errors(
        "ecs-service",
        json!({"name": "a", "cluster": "c", "image": "i", "subnets": "subnet-0123abcd", "cpu": 300}),
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("`cpu`: `300` is not one of `256`"),
        "{e:?}"
    );
}

#[test]
fn every_problem_is_reported_together_with_its_input() {
    let err = build_module_config(
        spec("s3-bucket"),
        &raw(json!({
            "versoning": "yes",
            "expiration_days": "soon",
            "tags.ManagedBy": "me",
            "force_destroy": "true",
            "forceDestroy": "false",
            "colour": "blue",
        })),
        &ctx(),
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    The `s3-bucket` inputs have 6 problems:
    - `colour` is not an input of this module
    - `expiration_days`: `soon` is not a number
    - `versoning` is not an input of this module — did you mean `versioning_enabled`?
    - `force_destroy` is given more than once with different values (as `forceDestroy` and `force_destroy`); give it once
    - `tags`: tag `ManagedBy` is set by TfPilot and cannot be changed
    - `name` is required: A short name for the bucket (lowercase letters, digits and hyphens); the bucket is named <project>-<environment>-<name>.
    ");
    let subjects: Vec<&str> = err.errors.iter().map(ConfigError::subject).collect();
    assert_eq!(
        subjects,
        [
            "colour",
            "expiration_days",
            "versoning",
            "force_destroy",
            "tags",
            "name"
        ]
    );
}

#[test]
fn the_same_value_under_two_names_is_fine() {
    let c = build_module_config(
        spec("s3-bucket"),
        &raw(json!({"name": "x1", "versioning": "yes", "versioning_enabled": true})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(c.inputs["versioning_enabled"], InputValue::Bool(true));
}

#[test]
fn names_follow_the_aws_rules() {
    assert_eq!(
        errors("s3-bucket", json!({"name": "Invoices_2024"})),
        [
            "`name`: `Invoices_2024` is not allowed (expected a value matching `[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?`)"
        ]
    );
    // FIFO queues get the suffix.
    let c = build_module_config(
        spec("sqs-queue"),
        &raw(json!({"name": "orders", "fifo": "yes"})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        c.computed["queue_name"],
        InputValue::String("core-dev-orders.fifo".into())
    );
    // A long derived name is shortened with a hash, never truncated into a collision.
    let long = |suffix: &str| {
        let name = format!("{}{suffix}", "a".repeat(46));
        let ctx = ConfigContext {
            project: "platform-team".into(),
            environment: "production".into(),
            ..ctx()
        };
        build_module_config(spec("s3-bucket"), &raw(json!({"name": name})), &ctx)
            .unwrap()
            .computed["bucket_name"]
            .clone()
    };
    let (a, b) = (long("x"), long("y"));
    assert_ne!(a, b);
    let InputValue::String(a) = a else { panic!() };
    assert_eq!(a.len(), 63);
    assert!(a.starts_with("platform-team-production-aaaa"), "{a}");
}

#[test]
fn context_and_text_are_checked() {
    let bad_ctx = ConfigContext {
        project: "Core".into(),
        environment: "dev env".into(),
        ..ctx()
    };
    let err =
        build_module_config(spec("s3-bucket"), &raw(json!({"name": "x1"})), &bad_ctx).unwrap_err();
    let shown: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "project: `Core` must be 1–32 lowercase letters, digits and hyphens, starting with a letter",
            "environment: `dev env` must be 1–32 lowercase letters, digits and hyphens, starting with a letter"
        ]
    );
    let e = errors(
        "ecs-service",
        json!({"name": "a", "cluster": "c", "image": "i", "subnets": "subnet-0123abcd", "env_vars": {"A": "line\nbreak"}}),
    );
    assert_eq!(
        e,
        [
            "`environment_variables`: value of `A`: contains the character \\u{a}, which is not allowed (no newlines, tabs, control or text-direction characters)"
        ]
    );
    let e = errors(
        "ecs-service",
        json!({"name": "a", "cluster": "c", "image": "i", "subnets": "subnet-0123abcd", "env_vars": {"A": "# --- tfpilot:end:x ---"}}),
    );
    assert_eq!(
        e,
        ["`environment_variables`: value of `A`: must not contain TfPilot's block marker text"]
    );
    let e = errors(
        "ecs-service",
        json!({"name": "a", "cluster": "c", "image": "i", "subnets": "subnet-0123abcd", "env_vars": {"1BAD": "x"}}),
    );
    assert_eq!(
        e,
        [
            "`environment_variables`: key `1BAD` is not allowed (expected a value matching `[A-Za-z_][A-Za-z0-9_]{0,254}`)"
        ]
    );
}

#[test]
fn tag_rules() {
    let e = errors(
        "s3-bucket",
        json!({"name": "x1", "tags": {"aws:x": "1", "ok": "a{b}", "environment": "x"}}),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0],
        "`tags`: tag key `aws:x` uses the reserved `aws:` prefix; tag `environment` is set by TfPilot and cannot be changed; the value of tag `ok` may only hold letters, digits, spaces and `_.:/=+-@`"
    );
    let ok = build_module_config(
        spec("s3-bucket"),
        &raw(json!({"name": "x1", "tags": {"Équipe": "données", "a b": "c:d/e"}})),
        &ctx(),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn partial_validation_lists_what_is_missing_without_failing() {
    let p = validate_partial(
        spec("ecs-service"),
        &raw(json!({"name": "api", "cpu": "3", "colour": "x"})),
    );
    assert!(!p.is_complete());
    assert_eq!(p.inputs.keys().collect::<Vec<_>>(), ["name"]);
    let missing: Vec<&str> = p.missing_required.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(missing, ["cluster_name", "image", "subnet_ids"]);
    assert!(p.missing_required[0].description.contains("ECS cluster"));
    let errs: Vec<&str> = p.errors.iter().map(ConfigError::subject).collect();
    assert_eq!(errs, ["colour", "cpu"]);
    let port = p
        .unset_optional
        .iter()
        .find(|m| m.name == "container_port")
        .unwrap();
    assert_eq!(port.default, Some(InputValue::Number(8080.into())));
    let days = p
        .unset_optional
        .iter()
        .find(|m| m.name == "log_retention_days")
        .unwrap();
    assert_eq!(days.unit.as_deref(), Some("days"));
    assert!(!days.allowed_values.is_empty());

    let done = validate_partial(spec("s3-bucket"), &raw(json!({"name": "x1"})));
    assert!(done.is_complete());
}

#[test]
fn config_round_trips_through_json() {
    let c = build_module_config(
        spec("s3-bucket"),
        &raw(json!({"name": "x1", "expiration_days": 7, "tags.a": "b"})),
        &ctx(),
    )
    .unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let back: ModuleConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn every_module_type_builds_from_its_required_inputs() {
    let examples = [
        ("s3-bucket", json!({"name": "data"})),
        ("sqs-queue", json!({"name": "jobs"})),
        (
            "ecs-service",
            json!({"name": "api", "cluster": "main", "image": "nginx:1.27", "subnets": "subnet-0123abcd"}),
        ),
        ("iam-role-app", json!({"name": "app"})),
    ];
    for (t, values) in examples {
        let c = build_module_config(spec(t), &raw(values), &ctx()).unwrap();
        for input in &spec(t).inputs {
            if input.required || input.default.is_some() {
                assert!(c.inputs.contains_key(&input.name), "{t}: {}", input.name);
            }
        }
    }
}

#[test]
fn text_is_normalized_to_nfc_like_terraform_does() {
    let c = build_module_config(
        spec("s3-bucket"),
        &raw(json!({"name": "x1", "tags": {"Cafe\u{301}": "de\u{301}ja\u{300}"}, "tags.Équipe": "Ω"})),
        &ctx(),
    )
    .unwrap();
    let InputValue::Map(tags) = &c.inputs["tags"] else {
        panic!()
    };
    assert_eq!(tags["Café"], "déjà");
    assert_eq!(tags["Équipe"], "Ω");
}

#[test]
fn map_keys_that_collide_are_an_error_not_a_silent_overwrite() {
    for tags in [json!({"Cafe\u{301}": "1", "Café": "2"}), json!("a=1, a=2")] {
        let e = errors("s3-bucket", json!({"name": "x1", "tags": tags}));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("is given twice with different values"),
            "{e:?}"
        );
    }
    let e = errors(
        "s3-bucket",
        json!({"name": "x1", "tags.Café": "1", "tags.Cafe\u{301}": "2"}),
    );
    assert!(e[0].contains("`Café` is given twice"), "{e:?}");
}

/// Every character that makes text read differently from what it is: line breaks of every kind
/// (U+0085 NEL, U+2028, U+2029 are line ends to editors and browsers) and the bidirectional
/// controls and marks of Trojan Source, U+061C ARABIC LETTER MARK included.
#[test]
fn every_line_break_and_direction_control_is_refused() {
    for c in [
        '\r', '\n', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}', '\u{61c}', '\u{200e}',
        '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}',
        '\u{2067}', '\u{2068}', '\u{2069}',
    ] {
        let value = format!("hello{c}world");
        let e = errors(
            "ecs-service",
            json!({"name": "a", "cluster": "c", "image": "i", "subnets": "subnet-0123abcd", "env_vars": {"A": value}}),
        );
        assert_eq!(
            e.len(),
            1,
            "{:?} was accepted",
            c.escape_unicode().to_string()
        );
        assert!(e[0].contains("is not allowed"), "{e:?}");
    }
}
