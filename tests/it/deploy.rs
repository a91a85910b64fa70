//! What deploys TfPilot: the GitHub App manifest, the AWS SAM template, the project's CI workflow.

use std::process::Command;

use tfpilot::webhook::Event;

use crate::support::{self, repo_root};

/// `key: value` lines (or `- item` lines) directly under a top-level `section:` of a flat YAML file.
fn yaml_section(text: &str, section: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim_end() != format!("{section}:"))
        .skip(1)
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_app_manifest_asks_for_least_permissions_and_the_handled_events() {
    let text = std::fs::read_to_string(repo_root().join("app-manifest.yml")).unwrap();
    let mut permissions = yaml_section(&text, "default_permissions");
    permissions.sort();
    assert_eq!(
        permissions,
        [
            "actions: write",
            "checks: write",
            "contents: write",
            "issues: write",
            "members: read",
            "metadata: read",
            "pull_requests: write"
        ]
    );
    let events = yaml_section(&text, "default_events");
    // installation and installation_repositories reach every App without subscribing; ping is
    // sent when the hook is created.
    let subscribable: Vec<String> = Event::HANDLED
        .iter()
        .filter(|e| !matches!(**e, "ping" | "installation" | "installation_repositories"))
        .map(|e| format!("- {e}"))
        .collect();
    assert_eq!(events, subscribable);
    assert!(text.contains("/webhooks/github"));
}

#[test]
fn the_sam_template_passes_cfn_lint() {
    let cfn_lint = support::require_tool("cfn-lint", "pip install cfn-lint");
    let output = Command::new(cfn_lint)
        .arg(repo_root().join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cfn-lint findings:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_sam_template_wires_both_functions_to_the_binary() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    for needle in [
        "Runtime: provided.al2023",
        "- arm64",
        "BuildMethod: rust-cargolambda",
        "TFPILOT_LAMBDA_FUNCTION: webhook",
        "TFPILOT_LAMBDA_FUNCTION: worker",
        "FunctionUrlConfig:",
        "Value: inbox/",
        "s3:ObjectCreated:*",
        "BlockPublicAcls: true",
        "SSEAlgorithm: AES256",
        "ExpirationInDays: !Ref ChatLogRetentionDays",
    ] {
        assert!(text.contains(needle), "template.yaml lacks `{needle}`");
    }
    // Every variable of ARCHITECTURE.md §5 that a deployment sets.
    for var in [
        "TFPILOT_STORE",
        "TFPILOT_REQUESTS_BUCKET",
        "TFPILOT_CHAT_LOGS_BUCKET",
        "TFPILOT_WEBHOOK_SECRET_PARAMETER",
        "TFPILOT_GITHUB_APP_ID",
        "TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER",
        "TFPILOT_PROD_ALLOWED_USERS",
        "TFPILOT_DESTROY_PROD_ALLOWED_USERS",
        "TFPILOT_APPROVERS",
        "OPENAI_API_KEY_PARAMETER",
        "TFPILOT_LOG_FORMAT",
    ] {
        assert!(
            text.contains(&format!("{var}:")),
            "template.yaml does not set {var}"
        );
    }
}

#[test]
fn the_ci_workflow_passes_actionlint_and_runs_ci_run() {
    let workflow = repo_root().join(".github/workflows/ci.yml");
    let findings = support::actionlint(&workflow);
    assert!(findings.is_empty(), "actionlint: {findings:#?}");
    let text = std::fs::read_to_string(&workflow).unwrap();
    assert!(text.contains("bash .ci/run"));

    // A workflow with a mistake is reported, so the check above means something.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    assert!(!support::actionlint(&broken).is_empty());
}

#[test]
fn ci_run_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    let test_command = "cargo nextest run --workspace";
    assert!(
        readme.contains(&format!("\n{test_command}\n")),
        "README quick start"
    );
    // The quick start is: `tfpilot setup`, install the App, `tfpilot serve` — in that order.
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a quick start");
    let at = |needle: &str| {
        quick
            .find(needle)
            .unwrap_or_else(|| panic!("README quick start lacks {needle:?}"))
    };
    assert!(
        at("\ntfpilot setup") < at("install link") && at("install link") < at("\ntfpilot serve")
    );
    assert!(ci.lines().any(|l| l.trim() == test_command), ".ci/run");
    assert!(ci.starts_with("#!/usr/bin/env bash") && ci.contains("set -euo pipefail"));
}

/// The lines of a top-level section (`Globals:`) or of a resource (`  WebhookFunction:`) of the
/// SAM template, by indentation.
fn template_block(text: &str, header: &str) -> String {
    let indent = header.len() - header.trim_start().len();
    text.lines()
        .skip_while(|l| l.trim_end() != header)
        .skip(1)
        .take_while(|l| {
            let trimmed = l.trim_start();
            trimmed.is_empty() || trimmed.starts_with('#') || l.len() - trimmed.len() > indent
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The webhook function is the one on the public internet (a Function URL without AWS auth):
/// it verifies, stores and answers, so it holds the webhook secret and nothing that acts on
/// GitHub or pays an LLM. The App's private key and the OpenAI key go to the worker only.
#[test]
fn the_public_webhook_function_gets_no_github_or_openai_credentials() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let globals = template_block(&text, "Globals:");
    let webhook = template_block(&text, "  WebhookFunction:");
    let worker = template_block(&text, "  WorkerFunction:");
    assert!(webhook.contains("FunctionUrlConfig:"), "{webhook}");
    assert!(
        worker.contains("TFPILOT_LAMBDA_FUNCTION: worker"),
        "{worker}"
    );
    for secret in [
        "TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER",
        "OPENAI_API_KEY_PARAMETER",
    ] {
        for (name, block) in [("Globals", &globals), ("WebhookFunction", &webhook)] {
            assert!(
                !block.contains(secret),
                "{name} gives {secret} to the public webhook function"
            );
        }
        assert!(
            worker.contains(&format!("{secret}:")),
            "the worker needs {secret}"
        );
    }
    assert!(
        webhook.contains("TFPILOT_WEBHOOK_SECRET_PARAMETER:")
            || globals.contains("TFPILOT_WEBHOOK_SECRET_PARAMETER:")
    );
}

/// On Lambda the secrets come from SSM Parameter Store (SecureString): no secret is a template
/// parameter or a plain environment variable, and each function may read only its own
/// parameters.
#[test]
fn the_sam_template_keeps_secrets_in_ssm_parameter_store() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    for plain in [
        "TFPILOT_WEBHOOK_SECRET:",
        "TFPILOT_GITHUB_PRIVATE_KEY:",
        "OPENAI_API_KEY:",
        "NoEcho: true",
    ] {
        assert!(!text.contains(plain), "template.yaml still has `{plain}`");
    }
    let webhook = template_block(&text, "  WebhookFunction:");
    let worker = template_block(&text, "  WorkerFunction:");
    assert!(
        webhook.contains("parameter${WebhookSecretParameter}")
            && !webhook.contains("GithubPrivateKeyParameter}"),
        "the webhook reads only the webhook secret:\n{webhook}"
    );
    assert!(
        worker.contains("parameter${GithubPrivateKeyParameter}")
            && !worker.contains("parameter${WebhookSecretParameter}"),
        "the worker reads the App key, not the webhook secret:\n{worker}"
    );
    for block in [&webhook, &worker] {
        assert!(block.contains("kms:ViaService"), "{block}");
    }
}

/// The number after `key: ` on the first line after `after` that has it.
fn number_after(block: &str, after: &str, key: &str) -> u64 {
    block
        .lines()
        .skip_while(|l| l.trim() != after)
        .find_map(|l| l.trim().strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` after `{after}` in:\n{block}"))
}

/// On Lambda nothing runs the worker's prune, so the bucket expires the inbox itself; and the
/// functions' timeouts fit the inbox's: the webhook outlasts its bounded inbox write, and a worker
/// attempt ends before its lease does (so only a dead attempt's item is taken over).
#[test]
fn the_inbox_expires_on_lambda_and_the_timeouts_fit_the_lease() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let bucket = template_block(&text, "  RequestsBucket:");
    let retention_days = tfpilot::inbox::RETENTION.as_secs() / 86_400;
    let items = number_after(&bucket, "Prefix: inbox/", "ExpirationInDays:");
    let state = number_after(&bucket, "Prefix: inbox-state/", "ExpirationInDays:");
    let done = number_after(&bucket, "Prefix: inbox-done/", "ExpirationInDays:");
    assert!(items >= retention_days && state >= retention_days);
    assert!(
        done > items,
        "a done marker must outlive its item, or the item turns pending again"
    );

    let webhook = template_block(&text, "  WebhookFunction:");
    let worker = template_block(&text, "  WorkerFunction:");
    let webhook_timeout = number_after(&webhook, "Properties:", "Timeout:");
    let worker_timeout = number_after(&worker, "Properties:", "Timeout:");
    let write = tfpilot::server::INBOX_WRITE_TIMEOUT;
    assert!(write < std::time::Duration::from_secs(5));
    assert!(tfpilot::store::s3::S3_OPERATION_TIMEOUT < write);
    assert!(std::time::Duration::from_secs(webhook_timeout) > write);
    assert!(std::time::Duration::from_secs(worker_timeout) < tfpilot::worker::DEFAULT_LEASE);
    assert!(
        webhook.contains("TFPILOT_METRICS:"),
        "the public URL's /metrics is guarded"
    );
}
