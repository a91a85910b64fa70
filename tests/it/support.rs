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
