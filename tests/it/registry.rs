//! The catalogue against real module directories, and the two CLI subcommands, run as the
//! built `tfpilot` binary.

use std::process::{Command, Output};

use serde_json::Value;
use tfpilot::ids::RequestId;
use tfpilot::registry::{ConfigContext, Registry, build_module_config, config::raw_from_pairs};
use tfpilot::terraform::render_block;

use crate::support::{copy_dir, repo_root};

fn tfpilot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tfpilot"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run tfpilot")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn registry_check_passes_on_the_example_and_offline_modules() {
    for dir in [
        "examples/infra-repo/modules",
        "tests/fixtures/infra-offline/modules",
    ] {
        let out = tfpilot(&["registry", "check", "--modules", dir]);
        assert!(
            out.status.success(),
            "{dir}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            stdout(&out),
            "ecs-service: ok\niam-role-app: ok\ns3-bucket: ok\nsqs-queue: ok\n",
            "{dir}"
        );
    }
}

#[test]
fn offline_modules_declare_exactly_the_real_modules_variables() {
    for t in Registry::embedded().module_types() {
        let real = std::fs::read(
            repo_root()
                .join("examples/infra-repo/modules")
                .join(t)
                .join("variables.tf"),
        )
        .unwrap();
        let offline = std::fs::read(
            repo_root()
                .join("tests/fixtures/infra-offline/modules")
                .join(t)
                .join("variables.tf"),
        )
        .unwrap();
        assert!(
            real == offline,
            "{t}: the offline variables.tf must be a copy of the real one"
        );
    }
}

#[test]
fn offline_repo_carries_the_example_settings_workflows_and_script() {
    let files = [
        ".tfpilot.yml",
        ".github/workflows/plan.yml",
        ".github/workflows/apply.yml",
        ".github/workflows/destroy.yml",
        ".github/workflows/cleanup.yml",
        "scripts/remove_block.py",
    ];
    for f in files {
        let real = std::fs::read(repo_root().join("examples/infra-repo").join(f)).unwrap();
        let offline =
            std::fs::read(repo_root().join("tests/fixtures/infra-offline").join(f)).unwrap();
        assert!(
            real == offline,
            "{f}: the offline repo's copy differs from the example's"
        );
    }
}

#[test]
fn registry_check_reports_drift_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/infra-repo/modules"), dir.path());
    let vars = dir.path().join("sqs-queue/variables.tf");
    let text = std::fs::read_to_string(&vars).unwrap();
    let drifted = text
        .replace("default     = 30\n", "default     = 45\n")
        .replace(
            "variable \"delay_seconds\"",
            "variable \"delivery_delay_seconds\"",
        );
    assert_ne!(drifted, text);
    std::fs::write(&vars, drifted).unwrap();
    std::fs::remove_file(dir.path().join("iam-role-app/variables.tf")).unwrap();
    std::fs::create_dir(dir.path().join("network")).unwrap();

    let out = tfpilot(&[
        "registry",
        "check",
        "--modules",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = stdout(&out);
    assert!(report.contains("ecs-service: ok"), "{report}");
    assert!(report.contains("sqs-queue: 3 problems"), "{report}");
    assert!(report.contains("`visibility_timeout_seconds` defaults to `30` in the registry but to `45` in the module"), "{report}");
    assert!(
        report.contains("the registry sets `delay_seconds`, which the module does not declare"),
        "{report}"
    );
    assert!(
        report.contains("the module declares optional variable `delivery_delay_seconds`"),
        "{report}"
    );
    assert!(
        report.contains("iam-role-app: 1 problem\n  - cannot read"),
        "{report}"
    );
    assert!(
        report.contains("network: not in the registry (not checked)"),
        "{report}"
    );
    assert!(stderr(&out).contains("drift found"));

    let missing = tfpilot(&["registry", "check", "--modules", "/nonexistent/modules"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn render_prints_the_same_block_as_the_library() {
    let id = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";
    let out = tfpilot(&[
        "render",
        "--module",
        "s3",
        "--env",
        "dev",
        "--project",
        "core",
        "--request-id",
        id,
        "--set",
        "name=invoices",
        "--set",
        "versioning=yes",
        "--set",
        "tags.Team=payments",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = Registry::embedded().get("s3-bucket").unwrap();
    let ctx = ConfigContext {
        request_id: id.parse::<RequestId>().unwrap(),
        project: "core".into(),
        environment: "dev".into(),
    };
    let raw = raw_from_pairs([
        ("name", "invoices"),
        ("versioning", "yes"),
        ("tags.Team", "payments"),
    ]);
    let config = build_module_config(spec, &raw, &ctx).unwrap();
    assert_eq!(
        stdout(&out),
        render_block(ctx.request_id, spec, &config).unwrap()
    );

    let json = tfpilot(&[
        "render",
        "--module",
        "sqs-queue",
        "--env",
        "prod",
        "--project",
        "core",
        "--request-id",
        id,
        "--set",
        "name=jobs",
        "--json",
    ]);
    assert!(json.status.success(), "{}", stderr(&json));
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["target_file"], "envs/prod/tfpilot.sqs.tf");
    assert_eq!(v["module"], format!("module.tfpilot_{id}"));
    assert_eq!(v["config"]["computed"]["queue_name"], "core-prod-jobs");
    assert_eq!(v["config"]["inputs"]["visibility_timeout_seconds"], 30);
    assert!(
        v["block"]
            .as_str()
            .unwrap()
            .starts_with(&format!("# --- tfpilot:begin:{id} ---\n"))
    );
}

#[test]
fn render_lists_every_problem_and_exits_non_zero() {
    let out = tfpilot(&[
        "render",
        "--module",
        "s3-bucket",
        "--env",
        "dev",
        "--project",
        "core",
        "--set",
        "versoning=yes",
        "--set",
        "expiration_days=never",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "The `s3-bucket` inputs have 3 problems:\n\
         - `expiration_days`: `never` is not a number\n\
         - `versoning` is not an input of this module — did you mean `versioning_enabled`?\n\
         - `name` is required: A short name for the bucket (lowercase letters, digits and hyphens); the bucket is named <project>-<environment>-<name>.\n"
    );

    let unknown = tfpilot(&[
        "render",
        "--module",
        "s3-bukket",
        "--env",
        "dev",
        "--project",
        "core",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("did you mean `s3-bucket`?"),
        "{}",
        stderr(&unknown)
    );

    let bad_set = tfpilot(&[
        "render",
        "--module",
        "s3-bucket",
        "--env",
        "dev",
        "--project",
        "core",
        "--set",
        "name",
    ]);
    assert_eq!(bad_set.status.code(), Some(2));
    assert!(stderr(&bad_set).contains("expected KEY=VALUE"));

    let bad_id = tfpilot(&[
        "render",
        "--module",
        "s3-bucket",
        "--env",
        "dev",
        "--project",
        "core",
        "--request-id",
        "X",
    ]);
    assert_eq!(bad_id.status.code(), Some(2), "clap refuses a malformed id");
}
