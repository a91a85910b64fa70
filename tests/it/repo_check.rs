//! `tfpilot repo check <dir>`: the example infra repo (and its offline twin) is clean, and each
//! broken copy is reported with the file and what to change, exit 1; an unreadable input exits 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::repo_root;

fn example() -> PathBuf {
    repo_root().join("examples/infra-repo")
}

fn repo_check(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tfpilot"))
        .args(["repo", "check"])
        .arg(dir)
        .args(extra)
        .env_remove("TFPILOT_GITHUB_APP_SLUG")
        .output()
        .expect("run tfpilot")
}

/// A copy of the example's `.tfpilot.yml` and workflows, to break.
fn copy_of_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(
        example().join(".tfpilot.yml"),
        dir.path().join(".tfpilot.yml"),
    )
    .unwrap();
    for name in ["plan", "apply", "destroy", "cleanup"] {
        let file = format!("{name}.yml");
        std::fs::copy(
            example().join(".github/workflows").join(&file),
            workflows.join(&file),
        )
        .unwrap();
    }
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// The findings printed for `dir` (stdout lines), asserting exit 1.
fn findings(dir: &Path) -> Vec<String> {
    let out = repo_check(dir, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn the_example_and_its_offline_twin_are_clean() {
    let copy = copy_of_example();
    for dir in [
        example(),
        repo_root().join("tests/fixtures/infra-offline"),
        copy.path().to_owned(),
    ] {
        let out = repo_check(&dir, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("keep TfPilot's guardrails"), "{stdout}");
    }
}

#[test]
fn the_offline_twin_keeps_the_examples_workflows() {
    for name in [
        ".tfpilot.yml",
        ".github/workflows/plan.yml",
        ".github/workflows/apply.yml",
        ".github/workflows/destroy.yml",
        ".github/workflows/cleanup.yml",
    ] {
        let example = std::fs::read_to_string(example().join(name)).unwrap();
        let offline =
            std::fs::read_to_string(repo_root().join("tests/fixtures/infra-offline").join(name))
                .unwrap();
        assert_eq!(example, offline, "{name} differs");
    }
}

/// Each way of breaking a guardrail, and the one line it is reported with.
#[test]
fn each_broken_guardrail_is_one_finding_naming_the_file_and_the_fix() {
    const APPLY: &str = ".github/workflows/apply.yml";
    const DESTROY: &str = ".github/workflows/destroy.yml";
    const PLAN: &str = ".github/workflows/plan.yml";
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // Apply can be started by a push, not only by TfPilot's dispatch.
        (
            APPLY,
            "on:\n  workflow_dispatch:\n",
            "on:\n  push:\n  workflow_dispatch:\n",
            "apply.yml: remove the trigger `push`",
        ),
        // Destroy no longer looks at who started the run.
        (
            DESTROY,
            "          TRIGGERING_ACTOR: ${{ github.triggering_actor }}\n",
            "",
            "destroy.yml: job `destroy`: before any action, add a step that fails",
        ),
        // The guard made optional with `if:` guards nothing.
        (
            APPLY,
            "      - name: Refuse runs TfPilot did not start\n",
            "      - name: Refuse runs TfPilot did not start\n        if: github.run_attempt == 1\n",
            "apply.yml: job `apply`: before any action, add a step that fails",
        ),
        // The App login the workflow accepts is not TfPilot's.
        (
            DESTROY,
            "TFPILOT_APP_BOT: \"tfpilot[bot]\"",
            "TFPILOT_APP_BOT: \"someone-else[bot]\"",
            "destroy.yml: `TFPILOT_APP_BOT` is `someone-else[bot]`, but TfPilot's App is `tfpilot[bot]`",
        ),
        // Apply checks out the branch head instead of the approved commit.
        (
            APPLY,
            "          ref: ${{ inputs.expected_sha }}\n",
            "",
            "apply.yml: job `apply`: check out the approved commit: `actions/checkout` with `ref: ${{ inputs.expected_sha }}`",
        ),
        // Apply does not compare the checked-out commit with the approved one.
        (
            APPLY,
            "head=\"$(git rev-parse HEAD)\"",
            "head=\"$EXPECTED_SHA\"",
            "apply.yml: job `apply`: after the checkout and before taking credentials, fail (`exit 1`) when `git rev-parse HEAD` is not `inputs.expected_sha`",
        ),
        // Apply does not take the approved commit at all: TfPilot's dispatch would be refused.
        (
            APPLY,
            "      expected_sha:\n",
            "      approved_sha:\n",
            "apply.yml: declare the `workflow_dispatch` input `expected_sha`",
        ),
        // A workflow without the request id.
        (
            PLAN,
            "      request_id:\n",
            "      request:\n",
            "plan.yml: declare the `workflow_dispatch` input `request_id`",
        ),
        // Plan with the apply role (a pushed branch would get write credentials).
        (
            PLAN,
            "secrets.AWS_PLAN_ROLE_ARN",
            "secrets.AWS_ROLE_ARN",
            "plan.yml: uses `secrets.AWS_ROLE_ARN`, the role apply/destroy assume",
        ),
        // Plan in the protected environment.
        (
            PLAN,
            "environment: ${{ inputs.environment }}-plan",
            "environment: ${{ inputs.environment }}",
            "plan.yml: job `plan` runs in `${{ inputs.environment }}`, the protected environment of apply/destroy",
        ),
        // Apply may be cancelled midway.
        (
            APPLY,
            "cancel-in-progress: false",
            "cancel-in-progress: true",
            "apply.yml: set `cancel-in-progress: false`",
        ),
        // Destroy in a group of its own runs beside an apply of the same environment.
        (
            DESTROY,
            "group: tfpilot-core-${{ inputs.environment }}",
            "group: tfpilot-core-destroy-${{ inputs.environment }}",
            "destroy.yml: concurrency group `tfpilot-core-destroy-${{ inputs.environment }}` differs from `tfpilot-core-${{ inputs.environment }}`",
        ),
        // A run name TfPilot cannot find its run by.
        (
            PLAN,
            "(${{ inputs.environment }}) ${{ inputs.dispatch_id }}",
            "(${{ inputs.environment }})",
            "plan.yml: put `${{ inputs.dispatch_id }}` in `run-name`",
        ),
        // `.tfpilot.yml` that TfPilot would refuse.
        (
            ".tfpilot.yml",
            "base_branch: main",
            "base_brnach: main",
            ".tfpilot.yml: does not parse: unknown field `base_brnach`",
        ),
        // An environment the workflows cannot be dispatched with.
        (
            ".tfpilot.yml",
            "  - prod\n",
            "  - prod\n  - staging\n",
            "plan.yml: add `staging` to the options of input `environment`",
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = copy_of_example();
        edit(dir.path(), file, from, to);
        let found = findings(dir.path());
        assert!(
            found
                .iter()
                .any(|l| l.starts_with(".github/workflows/") || l.starts_with(".tfpilot.yml")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|l| l.contains(expected)),
            "{file}: {from:?} → {to:?}: expected {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn a_missing_workflow_and_another_app_slug_are_findings() {
    let dir = copy_of_example();
    std::fs::remove_file(dir.path().join(".github/workflows/destroy.yml")).unwrap();
    let found = findings(dir.path());
    assert_eq!(
        found,
        [
            ".github/workflows/destroy.yml: missing: it is the destroy workflow (`workflows.destroy` in .tfpilot.yml)"
        ]
    );

    let dir = copy_of_example();
    let out = repo_check(dir.path(), &["--app-slug", "acme-tfpilot"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for file in ["apply.yml", "destroy.yml"] {
        assert!(
            stdout.contains(&format!(
                ".github/workflows/{file}: `TFPILOT_APP_BOT` is `tfpilot[bot]`, but TfPilot's App is `acme-tfpilot[bot]`"
            )),
            "{stdout}"
        );
    }
}

#[test]
fn an_unreadable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = repo_check(&dir.path().join("nope"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));

    // A workflow that cannot be read (a directory where the file should be).
    let dir = copy_of_example();
    let apply = dir.path().join(".github/workflows/apply.yml");
    std::fs::remove_file(&apply).unwrap();
    std::fs::create_dir(&apply).unwrap();
    let out = repo_check(dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
