//! `tfpilot setup` and `tfpilot doctor` as a person runs them: the real binary, the simulator as
//! GitHub (its web side takes the manifest form and redirects back with a code; its API converts
//! the code), a headless Chromium clicking through the page, then `doctor` on what was written.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tfpilot_sim::{Sim, SimConfig, UNREGISTERED_PRIVATE_KEY_PEM};

use crate::browser::Browser;
use crate::support::{self, repo_root};

/// `tfpilot <args>` in `dir` with an empty environment plus `vars`.
fn tfpilot(dir: &Path, args: &[&str], vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfpilot"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null());
    cmd
}

/// The example infra repo's `.tfpilot.yml` and workflows, as a repository's files.
fn infra_files() -> BTreeMap<String, String> {
    let root = repo_root().join("examples/infra-repo");
    let mut files = BTreeMap::new();
    let mut add = |path: &str| {
        let text = std::fs::read_to_string(root.join(path)).expect("example file");
        files.insert(path.to_owned(), text);
    };
    add(".tfpilot.yml");
    for w in ["plan", "apply", "destroy", "cleanup"] {
        add(&format!(".github/workflows/{w}.yml"));
    }
    files
}

fn doctor(dir: &Path, vars: &[(&str, String)]) -> (Output, String) {
    let out = tfpilot(dir, &["doctor"], vars)
        .output()
        .expect("run tfpilot doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

/// Waits until the setup page answers, failing with its stderr if it exits first.
async fn wait_for_page(url: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll setup") {
            panic!(
                "tfpilot setup exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no setup page within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `tfpilot setup` in `dir` with the simulator as GitHub (web and API), once its page answers;
/// returns the process and the page's URL.
async fn start_setup(dir: &Path, github: &str) -> (Child, String) {
    let port = support::free_port();
    let log = dir.join("setup.log");
    let mut child = tfpilot(
        dir,
        &["setup"],
        &[
            ("PORT", port.to_string()),
            ("TFPILOT_GITHUB_URL", github.to_owned()),
            ("TFPILOT_GITHUB_API_URL", github.to_owned()),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("start tfpilot setup");
    let page = format!("http://127.0.0.1:{port}/setup");
    wait_for_page(&page, &mut child, &log).await;
    (child, page)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_in_a_browser_writes_credentials_that_doctor_accepts() {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    sim.add_repo("acme/core-terraform", "main", infra_files());
    let dir = tempfile::tempdir().expect("temp dir");
    let github = sim.base_url();
    let (mut child, page) = start_setup(dir.path(), &github).await;

    let browser = Browser::start().await;
    browser.goto(&page).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = shots.join("tfpilot-setup-page.png");
    let bytes = browser.screenshot(&shot).await;
    println!(
        "screenshot of the setup page ({bytes} bytes): {}",
        shot.display()
    );
    assert!(browser.text("h1").await.contains("Set up TfPilot"));
    assert_eq!(browser.attribute("#name", "value").await, "TfPilot");

    let webhook = "https://tfpilot.acme.test/webhooks/github";
    browser.type_into("#webhook_url", webhook).await;
    browser.click("#next").await;
    browser.wait_for("#submit").await;
    assert!(
        browser
            .text("h1")
            .await
            .contains("Create the App on GitHub"),
        "the review page"
    );
    let shot = shots.join("tfpilot-setup-review.png");
    browser.screenshot(&shot).await;
    println!("screenshot of the review page: {}", shot.display());
    browser.click("#submit").await;
    let back = browser
        .wait_for_url("the setup page with the code", |u| {
            u.starts_with(&page) && u.contains("code=")
        })
        .await;
    assert!(
        back.contains("state="),
        "GitHub hands the state back: {back}"
    );
    browser.wait_for("#saved").await;
    assert!(browser.text("#saved").await.contains(".env"));
    let install = browser.attribute("#install", "href").await;
    assert_eq!(install, format!("{github}/apps/tfpilot/installations/new"));
    let shot = shots.join("tfpilot-setup-done.png");
    browser.screenshot(&shot).await;
    println!("screenshot of the result page: {}", shot.display());
    browser.quit().await;

    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(
        status.success(),
        "setup ends once the App is saved: {status}"
    );
    assert_eq!(sim.app_webhook_url().as_deref(), Some(webhook));

    let env_file = dir.path().join(".env");
    let text = std::fs::read_to_string(&env_file).expect(".env written");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&env_file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, ".env is readable by its owner only");
    }
    assert!(
        text.contains(&format!("TFPILOT_GITHUB_APP_ID={}", sim.app_id())),
        "{text}"
    );
    assert!(text.contains("TFPILOT_GITHUB_APP_SLUG=tfpilot\n"), "{text}");
    assert!(text.contains("TFPILOT_WEBHOOK_SECRET="), "{text}");

    // The next `doctor` (reading .env) passes against the simulator.
    let store = format!("fs://{}", dir.path().join("data").display());
    let (out, stdout) = doctor(dir.path(), &[("TFPILOT_STORE", store)]);
    assert!(
        out.status.success(),
        "doctor fails on what setup wrote:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "ok webhook secret",
        "ok github app: GitHub accepts the key's JWT",
        "ok app slug",
        "ok installations: 1 installation(s)",
        "ok repo acme/core-terraform:",
        "ok store:",
    ] {
        assert!(stdout.contains(check), "missing `{check}` in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");

    // A second setup refuses to overwrite the credentials.
    let out = tfpilot(
        dir.path(),
        &["setup"],
        &[("PORT", support::free_port().to_string())],
    )
    .output()
    .expect("run setup again");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&env_file).expect("kept"), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_without_the_state_this_page_issued_is_not_exchanged() {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let github = sim.base_url();
    let (mut child, page) = start_setup(dir.path(), &github).await;

    // A real code, obtained by posting a manifest straight to GitHub with a state of the
    // attacker's choosing.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let manifest = serde_json::json!({
        "name": "TfPilot",
        "url": "https://evil.example",
        "hook_attributes": { "url": "https://evil.example/hook" },
        "redirect_url": page,
        "default_permissions": { "contents": "write", "metadata": "read" },
        "default_events": ["issue_comment"],
    });
    let mut form = reqwest::Url::parse("http://form.invalid/").expect("url");
    form.query_pairs_mut()
        .append_pair("manifest", &manifest.to_string());
    let answer = http
        .post(format!(
            "{github}/organizations/acme/settings/apps/new?state=forged"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap_or_default().to_owned())
        .send()
        .await
        .expect("post the manifest");
    assert_eq!(answer.status().as_u16(), 302);
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.contains("state=forged"), "{location}");

    let callback = http.get(&location).send().await.expect("callback");
    assert_eq!(callback.status().as_u16(), 400);
    let body = callback.text().await.expect("body");
    assert!(body.contains("not started from this setup page"), "{body}");
    assert!(!dir.path().join(".env").exists(), "nothing is written");
    assert!(
        child.try_wait().expect("poll").is_none(),
        "setup keeps waiting"
    );

    // The code was not spent: it converts once, then never again (GitHub: 404).
    let code = reqwest::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let convert = |code: String| {
        let http = http.clone();
        let url = format!("{github}/app-manifests/{code}/conversions");
        async move { http.post(url).send().await.expect("convert") }
    };
    let first = convert(code.clone()).await;
    assert_eq!(first.status().as_u16(), 201);
    let app: serde_json::Value = first.json().await.expect("json");
    for field in [
        "id",
        "slug",
        "node_id",
        "owner",
        "name",
        "html_url",
        "client_id",
        "client_secret",
        "webhook_secret",
        "pem",
        "permissions",
        "events",
        "created_at",
        "updated_at",
        "external_url",
        "description",
    ] {
        assert!(
            app.get(field).is_some(),
            "the conversion answers `{field}`: {app}"
        );
    }
    assert_eq!(app["permissions"]["contents"], "write");
    assert_eq!(app["events"], serde_json::json!(["issue_comment"]));
    assert_eq!(app["pem"], tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM);
    assert_eq!(convert(code).await.status().as_u16(), 404);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_problem_with_a_fix_and_exits_1() {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    sim.add_repo(
        "acme/bare",
        "main",
        BTreeMap::from([("README.md".to_owned(), "# nothing here\n".to_owned())]),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("fs://{}", dir.path().join("data").display());
    let base = |key: &str| {
        vec![
            ("TFPILOT_GITHUB_API_URL", sim.base_url()),
            ("TFPILOT_GITHUB_APP_ID", sim.app_id().to_string()),
            ("TFPILOT_GITHUB_PRIVATE_KEY", key.to_owned()),
            ("TFPILOT_STORE", store.clone()),
        ]
    };

    // A key GitHub does not know for this App.
    let (out, stdout) = doctor(dir.path(), &base(UNREGISTERED_PRIVATE_KEY_PEM));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL github app:")
            && l.contains("— fix: check that TFPILOT_GITHUB_APP_ID")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL webhook secret:") && l.contains("— fix:")),
        "{stdout}"
    );
    assert!(lines.iter().any(|l| l.starts_with("ok store:")), "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("ok ") || l.starts_with("warn ") || l.starts_with("FAIL ")),
        "every line starts with its level:\n{stdout}"
    );

    // The right key, a wrong slug, and a repository without TfPilot's files.
    let mut vars = base(tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM);
    vars.push(("TFPILOT_GITHUB_APP_SLUG", "someone-else".into()));
    vars.push(("TFPILOT_WEBHOOK_SECRET", "s".into()));
    let (out, stdout) = doctor(dir.path(), &vars);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok github app:"), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL app slug: TFPILOT_GITHUB_APP_SLUG is `someone-else` but the App's slug is `tfpilot`"
        ) && stdout.contains("— fix: set TFPILOT_GITHUB_APP_SLUG=tfpilot"),
        "{stdout}"
    );
    let repo_line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL repo acme/bare:"))
        .unwrap_or_else(|| panic!("no line for acme/bare:\n{stdout}"));
    assert!(
        repo_line.contains(".github/workflows/plan.yml: missing"),
        "{repo_line}"
    );
    // Nothing secret is printed.
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_s3_store_and_the_chat_log_bucket_on_moto() {
    let moto = support::MotoServer::start();
    let requests = support::unique_bucket("doctor-req");
    let chats = support::unique_bucket("doctor-chat");
    moto.create_bucket(&requests).await;
    moto.create_bucket(&chats).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tfpilot(
        dir.path(),
        &["doctor"],
        &[
            ("TFPILOT_STORE", format!("s3://{requests}")),
            ("TFPILOT_CHAT_LOGS_BUCKET", chats.clone()),
        ],
    );
    moto.configure(&mut cmd);
    let out = cmd.output().expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "ok store: s3://{requests}: create-only and compare-and-swap writes hold"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ok chat logs: s3://{chats} stores TfPilot's writes encrypted (AES256)"
        )),
        "{stdout}"
    );
    // No App is configured: that fails, with the way to set one up.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("FAIL github app:") && stdout.contains("tfpilot setup"),
        "{stdout}"
    );
    let left = moto
        .client()
        .list_objects_v2()
        .bucket(&requests)
        .send()
        .await
        .expect("list");
    assert_eq!(left.key_count(), Some(0), "the probe leaves nothing behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_env_file_under_the_environment_and_warns_from_the_doctor() {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    // The file says another port and a key GitHub does not know; the environment's port wins.
    let pem = UNREGISTERED_PRIVATE_KEY_PEM.replace('\n', "\\n");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "PORT=1\nTFPILOT_WEBHOOK_SECRET=from-the-file\nTFPILOT_GITHUB_APP_ID={}\n\
             TFPILOT_GITHUB_APP_SLUG=tfpilot\nTFPILOT_GITHUB_PRIVATE_KEY=\"{pem}\"\n\
             TFPILOT_GITHUB_API_URL={}\n",
            sim.app_id(),
            sim.base_url()
        ),
    )
    .expect("write .env");
    let log = dir.path().join("serve.log");
    let store = format!("fs://{}", dir.path().join("data").display());
    let mut child = tfpilot(
        dir.path(),
        &["serve", "--host", "127.0.0.1"],
        &[("PORT", port.to_string()), ("TFPILOT_STORE", store)],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log"))
    .spawn()
    .expect("start serve");
    wait_for_page(
        &format!("http://127.0.0.1:{port}/healthz"),
        &mut child,
        &log,
    )
    .await;
    // The doctor's warning comes after the start, in the background.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("doctor: FAIL github app") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    assert!(text.contains("doctor: FAIL github app"), "{text}");
    assert!(
        !text.contains("TFPILOT_WEBHOOK_SECRET is not set"),
        "the secret comes from .env:\n{text}"
    );
    assert!(!text.contains("BEGIN RSA"), "no key in the log:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_asks_the_assistant_endpoint_for_its_models() {
    use crate::conversation::stub::{Answer, Stub};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("fs://{}", dir.path().join("data").display());
    let run = |base: String, model: &str| {
        let vars = vec![
            ("TFPILOT_STORE", store.clone()),
            ("OPENAI_API_KEY", "sk-doctor-test-key".to_owned()),
            ("TFPILOT_LLM_BASE_URL", base),
            ("TFPILOT_LLM_MODEL", model.to_owned()),
        ];
        let (_, stdout) = doctor(dir.path(), &vars);
        assert!(!stdout.contains("sk-doctor-test-key"), "{stdout}");
        stdout
            .lines()
            .find(|l| l.contains(" assistant: "))
            .unwrap_or_else(|| panic!("no assistant line:\n{stdout}"))
            .to_owned()
    };
    let stub = Stub::start(Answer::Content("{}".into())).await;
    let line = run(stub.base_url.clone(), "stub-model");
    assert_eq!(
        line,
        format!(
            "ok assistant: {} answers and serves the model `stub-model`",
            stub.base_url
        )
    );
    let line = run(stub.base_url.clone(), "gpt-9");
    assert!(
        line.starts_with("warn assistant:") && line.contains("TFPILOT_LLM_MODEL"),
        "{line}"
    );

    let refusing = Stub::start(Answer::Status(401, "{\"error\":{}}".into())).await;
    let line = run(refusing.base_url.clone(), "stub-model");
    assert!(
        line.starts_with("FAIL assistant:") && line.contains("refused the key (HTTP 401)"),
        "{line}"
    );
}
