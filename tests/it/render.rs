//! Rendering against the real `terraform` binary: our formatter produces exactly what
//! `terraform fmt` produces, user values survive Terraform's parser unchanged (no injection),
//! and a block for every module type plans offline with the expected resources.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use tfpilot::ids::RequestId;
use tfpilot::registry::{ConfigContext, InputValue, Registry, build_module_config};
use tfpilot::terraform::render::render_module_block;
use tfpilot::terraform::{insert_block, module_name, render_block};

use crate::support::{offline_infra_repo, run_terraform, terraform, terraform_plan_json};

/// Pieces user text is made of: HCL syntax, template sequences, escapes, comments, and
/// Unicode whose width in columns differs from its length in bytes or chars.
const FRAGMENTS: &[&str] = &[
    "a",
    "Z9",
    "_",
    "-",
    " ",
    "\"",
    "\\",
    "${",
    "%{",
    "$${",
    "%%{",
    "}",
    "{",
    "]",
    "#",
    "//",
    "/*",
    "=",
    ",",
    "é",
    "e\u{301}",
    "日本",
    "🎉",
    "👩\u{200d}💻",
    "\\n",
    "'",
    "`",
    "<<EOT",
    "\u{a0}",
    "tfpilot",
    "ü",
    "Ω",
    "$",
    "%",
    "$$",
    "%%",
];

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..max)
        .prop_map(|parts| parts.concat())
}

fn map_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,60}",
        "[a-z][a-z0-9-]{0,10}",
        proptest::sample::select(&["for", "null", "true", "false", "if", "in", "1x", "a.b"][..])
            .prop_map(str::to_owned),
        text(5).prop_filter("keys are not empty", |k| !k.is_empty()),
    ]
}

fn value() -> impl Strategy<Value = InputValue> {
    prop_oneof![
        any::<bool>().prop_map(InputValue::Bool),
        (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|n| InputValue::Number(n.into())),
        proptest::sample::select(&[0.5, -3.25, 1e21, 1.0e-7, 0.1, 123_456.789][..])
            .prop_map(|f| InputValue::Number(serde_json::Number::from_f64(f).unwrap())),
        text(8).prop_map(InputValue::String),
        proptest::collection::vec(text(4), 0..4).prop_map(InputValue::List),
        proptest::collection::btree_map(map_key(), text(4), 0..6).prop_map(InputValue::Map),
    ]
}

/// Module arguments: distinct names of varied length, in a random order.
fn arguments() -> impl Strategy<Value = Vec<(String, InputValue)>> {
    proptest::collection::btree_map("[a-z][a-z0-9_]{0,30}", value(), 0..8).prop_flat_map(|m| {
        let args: Vec<(String, InputValue)> =
            m.into_iter().filter(|(k, _)| k != "source").collect();
        Just(args).prop_shuffle()
    })
}

fn request_id(i: usize) -> RequestId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

/// What Terraform holds for a value: every string (keys too) in Unicode NFC.
fn to_json(v: &InputValue) -> Value {
    fn nfc(v: Value) -> Value {
        let n = |s: &str| {
            icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
                .normalize(s)
                .into_owned()
        };
        match v {
            Value::String(s) => Value::String(n(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(nfc).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (n(&k), nfc(v))).collect())
            }
            other => other,
        }
    }
    nfc(serde_json::to_value(v).unwrap())
}

/// Terraform shows numbers as JSON numbers of its own precision; compare them as f64.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// 250 generated blocks: each file is left unchanged by `terraform fmt`, and Terraform reads
/// back exactly the values that went in (every `${`, quote and backslash stays text).
#[test]
fn render_matches_terraform_fmt_and_values_round_trip() {
    const CASES: usize = 250;
    // A fixed seed: the same 250 cases on every run and machine.
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = arguments();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path().join("envs/test");
    let fmt_dir = repo.path().join("fmt");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&fmt_dir).unwrap();

    let mut all_blocks = String::new();
    let mut outputs = String::new();
    let mut expected = BTreeMap::new();
    // Known-hard cases first (hcl-rs's own escaping turned the second `${` here into a live
    // interpolation), then generated ones.
    let tricky = |s: &str| InputValue::String(s.to_owned());
    let fixed: Vec<Vec<(String, InputValue)>> = vec![vec![
        ("a".into(), tricky("a${b}%${path.module}")),
        ("b".into(), tricky("%%{x}$${y}$$${z}%${w}")),
        (
            "c".into(),
            InputValue::Map([("${k}%${path.cwd}".to_owned(), "$%{v}".to_owned())].into()),
        ),
    ]];
    for i in 0..CASES {
        let args = match fixed.get(i) {
            Some(args) => args.clone(),
            None => strategy.new_tree(&mut runner).unwrap().current(),
        };
        let id = request_id(i);
        let module_type = format!("echo-{i}");
        let refs: Vec<(&str, &InputValue)> = args.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let block = render_module_block(id, &module_type, &refs).unwrap();
        std::fs::write(fmt_dir.join(format!("case_{i:03}.tf")), &block).unwrap();
        all_blocks = insert_block(&all_blocks, &id, &block).unwrap();

        // A module that echoes its arguments back as outputs.
        let module_dir = repo.path().join("modules").join(&module_type);
        std::fs::create_dir_all(&module_dir).unwrap();
        let mut module = String::new();
        for (name, _) in &args {
            module.push_str(&format!(
                "variable \"{name}\" {{\n  type = any\n}}\n\noutput \"{name}\" {{\n  value = var.{name}\n}}\n\n"
            ));
        }
        std::fs::write(module_dir.join("main.tf"), module).unwrap();
        outputs.push_str(&format!(
            "output \"case_{i}\" {{\n  value = module.{}\n}}\n\n",
            module_name(&id)
        ));
        let want: serde_json::Map<String, Value> =
            args.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
        expected.insert(format!("case_{i}"), Value::Object(want));
    }
    std::fs::write(root.join("tfpilot.test.tf"), &all_blocks).unwrap();
    std::fs::write(root.join("outputs.tf"), outputs).unwrap();

    // 1. fmt parity, file by file and for the combined file the block editor built.
    let check = std::process::Command::new(terraform())
        .args(["fmt", "-check", "-list=true", "-recursive", "-no-color"])
        .arg(&fmt_dir)
        .arg(&root)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&check.stdout).into_owned();
    if !check.status.success() {
        let mut report = format!(
            "terraform fmt would change these files:\n{listed}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        for file in listed.lines().take(3) {
            let ours = std::fs::read_to_string(file).unwrap_or_default();
            let theirs = std::process::Command::new(terraform())
                .args(["fmt", "-no-color", "-"])
                .stdin(std::fs::File::open(file).unwrap())
                .output()
                .unwrap();
            report.push_str(&format!(
                "\n--- ours ({file})\n{ours}\n--- terraform fmt\n{}",
                String::from_utf8_lossy(&theirs.stdout)
            ));
        }
        panic!("{report}");
    }

    // 2. Values round trip through Terraform's parser and evaluator.
    let plan = terraform_plan_json(&root);
    let outputs = &plan["planned_values"]["outputs"];
    for (name, want) in &expected {
        let got = &outputs[name]["value"];
        assert!(
            same(got, want),
            "{name}: terraform read\n{got:#}\nbut we wrote\n{want:#}"
        );
    }
}

/// Nested values (lists of maps of lists…), which no catalogue input has yet: the formatter pass
/// must still match `terraform fmt` on whatever hcl-rs prints, so a future module type with
/// structured inputs renders correctly too.
fn nested() -> impl Strategy<Value = hcl::Expression> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(hcl::Expression::Bool),
        (-1000i64..1000).prop_map(|n| hcl::Expression::Number(n.into())),
        text(4).prop_map(|s| {
            hcl::Expression::TemplateExpr(Box::new(hcl::expr::TemplateExpr::QuotedString(
                tfpilot::terraform::render::quoted_literal(&s),
            )))
        }),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(hcl::Expression::Array),
            proptest::collection::vec(("[a-z][a-z0-9_]{0,12}", inner), 0..4).prop_map(|entries| {
                let mut object = hcl::Object::new();
                for (k, v) in entries {
                    object.insert(
                        hcl::ObjectKey::Identifier(hcl::Identifier::new(k).unwrap()),
                        v,
                    );
                }
                hcl::Expression::Object(object)
            }),
        ]
    })
}

#[test]
fn formatter_matches_terraform_fmt_on_nested_values() {
    const CASES: usize = 200;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = proptest::collection::vec(("[a-z][a-z0-9_]{0,20}", nested()), 1..6);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..CASES {
        let attributes = strategy.new_tree(&mut runner).unwrap().current();
        let mut block = hcl::Block::builder("module").add_label(format!("m{i}"));
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in attributes {
            if seen.insert(k.clone()) {
                block = block.add_attribute((hcl::Identifier::new(k).unwrap(), v));
            }
        }
        let body = hcl::Body::builder().add_block(block.build()).build();
        let printed = hcl::format::to_string(&body).unwrap();
        let ours = tfpilot::terraform::fmt::format(&printed).unwrap();
        std::fs::write(dir.path().join(format!("nested_{i:03}.tf")), ours).unwrap();
    }
    let check = std::process::Command::new(terraform())
        .args(["fmt", "-check", "-list=true", "-no-color"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&check.stdout).into_owned();
    if let Some(file) = listed.lines().next() {
        let ours = std::fs::read_to_string(file).unwrap();
        let theirs = std::process::Command::new(terraform())
            .args(["fmt", "-no-color", "-"])
            .stdin(std::fs::File::open(file).unwrap())
            .output()
            .unwrap();
        panic!(
            "terraform fmt would change:\n{listed}\n--- ours ({file})\n{ours}\n--- terraform fmt\n{}",
            String::from_utf8_lossy(&theirs.stdout)
        );
    }
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

fn ctx(id: RequestId) -> ConfigContext {
    ConfigContext {
        request_id: id,
        project: "core".into(),
        environment: "dev".into(),
    }
}

fn raw(v: Value) -> BTreeMap<String, Value> {
    serde_json::from_value(v).unwrap()
}

/// Renders a block for each module type into `envs/dev` of the offline infra repo (through the
/// block editor, into each type's target file) and plans it with the real terraform.
#[test]
fn a_block_for_every_module_type_plans_offline() {
    let registry = Registry::embedded();
    let repo = offline_infra_repo();
    let env = repo.path().join("envs/dev");
    let requests = [
        (
            "s3-bucket",
            request_id(1),
            json!({"name": "invoices", "versioning": "on", "expiration_days": "30 days", "tags": {"Team": "payments", "Coût": "élevé"}}),
        ),
        ("s3-bucket", request_id(2), json!({"name": "scratch"})),
        (
            "sqs-queue",
            request_id(3),
            json!({"name": "jobs", "fifo": true, "dlq": "yes", "visibilityTimeout": 60}),
        ),
        (
            "ecs-service",
            request_id(4),
            json!({
                "name": "api",
                "cluster": "main",
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:1.4.2",
                "subnets": "subnet-0123abcd,subnet-4567ef01",
                "env_vars": {"GREETING": "hello ${name} %{if}"},
                "desired_count": 2,
            }),
        ),
        (
            "iam-role-app",
            request_id(5),
            json!({
                "name": "api",
                "service": "lambda.amazonaws.com",
                "policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/app"],
            }),
        ),
    ];
    for (module_type, id, values) in &requests {
        let spec = registry.get(module_type).unwrap();
        let config = build_module_config(spec, &raw(values.clone()), &ctx(*id)).unwrap();
        let block = render_block(*id, spec, &config).unwrap();
        let path = env.join(&spec.target_file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, insert_block(&current, id, &block).unwrap()).unwrap();
    }
    run_terraform(&env, &["fmt", "-check", "-no-color"]);
    assert_eq!(
        std::fs::read_to_string(env.join("tfpilot.s3.tf"))
            .unwrap()
            .matches("tfpilot:begin:")
            .count(),
        2
    );

    let plan = terraform_plan_json(&env);
    // terraform_data is builtin: init downloaded no provider (it needs no network).
    assert!(
        !env.join(".terraform/providers").exists(),
        "a provider was installed"
    );
    let changes = plan["resource_changes"]
        .as_array()
        .expect("resource_changes");
    let mut created: BTreeMap<String, Value> = BTreeMap::new();
    for change in changes {
        assert_eq!(change["change"]["actions"], json!(["create"]), "{change:#}");
        created.insert(
            change["address"].as_str().unwrap().to_owned(),
            change["change"]["after"]["input"].clone(),
        );
    }
    let m = |i: usize, rest: &str| format!("module.{}.{rest}", module_name(&request_id(i)));
    let mut want: Vec<String> = vec![
        m(1, "terraform_data.bucket"),
        m(1, "terraform_data.encryption"),
        m(1, "terraform_data.lifecycle[0]"),
        m(1, "terraform_data.ownership_controls"),
        m(1, "terraform_data.public_access_block"),
        m(1, "terraform_data.versioning"),
        m(2, "terraform_data.bucket"),
        m(2, "terraform_data.encryption"),
        m(2, "terraform_data.ownership_controls"),
        m(2, "terraform_data.public_access_block"),
        m(2, "terraform_data.versioning"),
        m(3, "terraform_data.dead_letter[0]"),
        m(3, "terraform_data.queue"),
        m(4, "terraform_data.execution_role"),
        m(4, "terraform_data.execution_role_policy"),
        m(4, "terraform_data.log_group"),
        m(4, "terraform_data.service"),
        m(4, "terraform_data.task_definition"),
        m(
            5,
            "terraform_data.policy_attachment[\"arn:aws:iam::123456789012:policy/app\"]",
        ),
        m(
            5,
            "terraform_data.policy_attachment[\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]",
        ),
        m(5, "terraform_data.role"),
    ];
    want.sort();
    assert_eq!(created.keys().cloned().collect::<Vec<_>>(), want);

    let bucket = &created[&m(1, "terraform_data.bucket")];
    assert_eq!(bucket["bucket"], "core-dev-invoices");
    assert_eq!(bucket["tags"]["ManagedBy"], "tfpilot");
    assert_eq!(
        bucket["tags"]["TfPilotRequestId"],
        request_id(1).to_string()
    );
    assert_eq!(bucket["tags"]["Coût"], "élevé");
    assert_eq!(
        created[&m(1, "terraform_data.versioning")]["status"],
        "Enabled"
    );
    assert_eq!(
        created[&m(2, "terraform_data.versioning")]["status"],
        "Suspended"
    );
    assert_eq!(
        created[&m(1, "terraform_data.lifecycle[0]")]["expiration_days"],
        30
    );
    let queue = &created[&m(3, "terraform_data.queue")];
    assert_eq!(queue["name"], "core-dev-jobs.fifo");
    assert_eq!(queue["visibility_timeout_seconds"], 60);
    assert_eq!(
        created[&m(3, "terraform_data.dead_letter[0]")]["name"],
        "core-dev-jobs-dlq.fifo"
    );
    let service = &created[&m(4, "terraform_data.service")];
    assert_eq!(service["name"], "core-dev-api");
    assert_eq!(
        service["subnets"],
        json!(["subnet-0123abcd", "subnet-4567ef01"])
    );
    let task: Value = serde_json::from_str(
        created[&m(4, "terraform_data.task_definition")]["container_definitions"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    // The user's `${name}` and `%{if}` arrive as plain text, not as template syntax.
    assert_eq!(
        task[0]["environment"],
        json!([{"name": "GREETING", "value": "hello ${name} %{if}"}])
    );
    assert_eq!(
        created[&m(5, "terraform_data.role")]["trusted_service"],
        "lambda.amazonaws.com"
    );
    assert_eq!(
        created[&m(5, "terraform_data.role")]["name"],
        "core-dev-api"
    );
}

/// The fixture is never written to: tests work on copies.
#[test]
fn the_offline_fixture_has_no_rendered_blocks() {
    let fixture = crate::support::repo_root().join("tests/fixtures/infra-offline/envs");
    for env in ["dev", "prod"] {
        let files: Vec<String> = std::fs::read_dir(fixture.join(env))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["versions.tf"], "{env}: {files:?}");
        assert!(!Path::new(&fixture.join(env).join(".terraform")).exists());
    }
}
