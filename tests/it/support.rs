//! Shared test harness: finding the real tools the tests use, free ports, npm fixtures.
//!
//! A missing tool is a test failure with a message saying how to install it, never a silent skip.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Finds `name` on PATH or fails the test saying how to install it.
pub fn require_tool(name: &str, install_hint: &str) -> PathBuf {
    match which::which(name) {
        Ok(path) => path,
        Err(_) => panic!(
            "this test needs `{name}`, which is not on PATH. Install it: {install_hint} \
             (.ci/run installs or checks every tool the tests need)"
        ),
    }
}

/// The real `terraform` binary (1.x; the machine image has it at /usr/local/bin/terraform).
pub fn terraform() -> PathBuf {
    if Path::new("/usr/local/bin/terraform").is_file() {
        return PathBuf::from("/usr/local/bin/terraform");
    }
    require_tool(
        "terraform",
        "download Terraform 1.11 from https://releases.hashicorp.com/terraform/ and put it on PATH",
    )
}

/// A TCP port that was free a moment ago, on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The test-only npm packages (`tests/fixtures/npm`), installed with `npm ci` on first use.
/// A file lock keeps parallel test processes from installing at the same time.
pub fn npm_fixtures() -> PathBuf {
    let dir = repo_root().join("tests/fixtures/npm");
    let marker = dir.join("node_modules/.package-lock.json");
    if marker.is_file() {
        return dir.join("node_modules");
    }
    let npm = require_tool(
        "npm",
        "install Node.js 20+ with npm (Debian: apt-get install nodejs npm)",
    );
    let lock_path = std::env::temp_dir().join("tfpilot-npm-fixtures.lock");
    let lock = std::fs::File::create(&lock_path).expect("create npm fixtures lock file");
    lock.lock().expect("lock npm fixtures");
    if !marker.is_file() {
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "`npm ci` in {} failed", dir.display());
    }
    dir.join("node_modules")
}

/// Copies a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// A fresh copy of the offline infra repo (`tests/fixtures/infra-offline`: modules built on
/// `terraform_data`, env roots without backend or provider) in a temporary directory.
pub fn offline_infra_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(
        &repo_root().join("tests/fixtures/infra-offline"),
        dir.path(),
    );
    dir
}

/// Runs `terraform <args>` in `dir` with no input, no colour and no network-dependent checks,
/// and returns stdout; fails the test with Terraform's output if it exits non-zero.
pub fn run_terraform(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(terraform())
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .expect("run terraform");
    assert!(
        output.status.success(),
        "`terraform {}` in {} failed:\n{}\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `terraform init` + `plan -out` + `show -json` in `dir`; returns the plan as JSON.
pub fn terraform_plan_json(dir: &Path) -> serde_json::Value {
    run_terraform(dir, &["init", "-input=false", "-no-color"]);
    run_terraform(
        dir,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-out=tfplan",
        ],
    );
    let json = run_terraform(dir, &["show", "-json", "tfplan"]);
    serde_json::from_str(&json).expect("terraform show -json prints JSON")
}
