//! The real `tfpilot` binary: `serve` starts on embedded defaults, warns about what it cannot do,
//! resumes undone inbox items, stops on SIGTERM; a bad variable stops it with a clear message.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tfpilot::inbox::{Delivery, FsInbox, Inbox, ItemStatus};

use crate::support::{self, WEBHOOK_SECRET};

/// `tfpilot <args>` with an empty environment (plus `vars`), stderr to `log`.
fn tfpilot(args: &[&str], vars: &[(&str, &str)], log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfpilot"));
    cmd.args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

/// `tfpilot serve` on a free port with the fs store `data` and the test webhook secret, plus
/// `vars`; returns the child and its port.
fn serve_on(data: &Path, vars: &[(&str, &str)], log: &Path) -> (Child, u16) {
    let port = support::free_port();
    let (port_text, store) = (port.to_string(), format!("fs://{}", data.display()));
    let mut all = vec![
        ("PORT", port_text.as_str()),
        ("TFPILOT_STORE", store.as_str()),
        ("TFPILOT_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ];
    all.extend_from_slice(vars);
    let child = tfpilot(&["serve", "--host", "127.0.0.1"], &all, log)
        .spawn()
        .unwrap();
    (child, port)
}

/// Polls `/healthz` until it answers 200 (the binary is starting), at most 30 s.
async fn wait_healthy(port: u16, child: &mut Child, log: &Path) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().as_u16() == 200
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "tfpilot exited with {status} before answering:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no 200 from /healthz within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    terminate_within(child, Duration::from_secs(10))
}

/// SIGTERM, then waits at most `limit` for the exit (and kills it after that).
fn terminate_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "tfpilot did not stop within {} s of SIGTERM",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What `serve` on `port` sends back to HTTP/2's connection preface, up to the first 64 bytes
/// (empty if it closes the connection), waiting at most 5 s.
async fn answer_to_http2_preface(port: u16) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The preface, then an empty SETTINGS frame, as `curl --http2-prior-knowledge` sends them.
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("serve answers or closes within 5 s")
        .unwrap_or(0);
    answer.truncate(n);
    answer
}

#[tokio::test]
async fn serve_starts_with_no_variables_and_says_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let port = support::free_port();
    // Only the port (the default 3000 may be taken on this machine) and the data directory
    // (the default ./data would land in the repository).
    let store = format!("fs://{}", dir.path().join("data").display());
    let mut child = tfpilot(
        &["serve", "--host", "127.0.0.1"],
        &[("PORT", &port.to_string()), ("TFPILOT_STORE", &store)],
        &log,
    )
    .spawn()
    .unwrap();
    wait_healthy(port, &mut child, &log).await;

    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/github"))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "22222222-0000-4000-8000-000000000001")
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tfpilot_webhook_signature_failures_total"),
        "{metrics}"
    );

    // GitHub delivers webhooks over HTTP/1.1; `serve` speaks nothing else. A client that opens
    // with HTTP/2's preface (cleartext "prior knowledge") gets an HTTP/1.1 error or a closed
    // connection, never an HTTP/2 SETTINGS frame.
    let answer = answer_to_http2_preface(port).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "serve answered HTTP/2's preface with {:?}",
        String::from_utf8_lossy(&answer)
    );

    let status = terminate(&mut child);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status}:\n{stderr}");
    assert!(
        stderr.contains(
            "TFPILOT_WEBHOOK_SECRET is not set: every webhook delivery will be refused with 401"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("cannot answer on GitHub"), "{stderr}");
    assert!(stderr.contains("TfPilot listening"), "{stderr}");
}

#[tokio::test]
async fn serve_resumes_items_left_undone_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let id = "22222222-0000-4000-8000-000000000002".parse().unwrap();
    {
        let inbox = FsInbox::open(&data).unwrap();
        let body = support::webhook_fixture("issue_comment.pull_request.json");
        inbox
            .put(&Delivery::new(
                id,
                "issue_comment",
                String::from_utf8(body).unwrap(),
            ))
            .await
            .unwrap();
    }
    let log = dir.path().join("stderr.log");
    let (mut child, port) = serve_on(&data, &[("TFPILOT_LOG_FORMAT", "json")], &log);
    wait_healthy(port, &mut child, &log).await;

    let inbox = FsInbox::open(&data).unwrap();
    let id = "22222222-0000-4000-8000-000000000002".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let item = inbox.get(&id).await.unwrap().unwrap();
        if item.state.status == ItemStatus::Done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leftover item was not processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = terminate(&mut child);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    // JSON lines, the delivery's span on the handler's line.
    let line = stderr
        .lines()
        .find(|l| l.contains("\"issue comment\""))
        .unwrap_or_else(|| panic!("no handler line in:\n{stderr}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        json["span"]["delivery"],
        "22222222-0000-4000-8000-000000000002"
    );
    assert_eq!(json["span"]["event"], "issue_comment");
    assert_eq!(json["span"]["repo"], "Codertocat/Hello-World");
    assert_eq!(json["fields"]["on_pull_request"], true);
    assert!(
        !stderr.contains(WEBHOOK_SECRET),
        "the secret is never logged"
    );
}

#[test]
fn an_invalid_variable_stops_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let status = tfpilot(
        &["serve"],
        &[("PORT", "eighty"), ("TFPILOT_STORE", "ftp://nope")],
        &log,
    )
    .status()
    .unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("PORT: must be a port number (0-65535), got `eighty`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("TFPILOT_STORE: must be `fs://<dir>` or `s3://<bucket>`"),
        "{stderr}"
    );
}

#[test]
fn no_subcommand_outside_lambda_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let status = tfpilot(&[], &[], &log).status().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("tfpilot serve"), "{stderr}");
}

/// Two `tfpilot serve` processes on one S3 bucket (moto): a delivery sent to both is stored and
/// processed once; the second instance answers "duplicate".
#[tokio::test]
async fn two_instances_on_one_bucket_process_a_delivery_once() {
    let moto = support::MotoServer::start();
    let bucket = support::unique_bucket("requests");
    let chat = support::unique_bucket("chat");
    moto.create_bucket(&bucket).await;
    moto.create_bucket(&chat).await;
    let dir = tempfile::tempdir().unwrap();
    let mut instances = Vec::new();
    for n in 0..2 {
        let log = dir.path().join(format!("stderr-{n}.log"));
        let port = support::free_port();
        let mut cmd = tfpilot(
            &["serve", "--host", "127.0.0.1"],
            &[
                ("PORT", &port.to_string()),
                ("TFPILOT_STORE", &format!("s3://{bucket}")),
                ("TFPILOT_CHAT_LOGS_BUCKET", &chat),
                ("TFPILOT_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
            &log,
        );
        moto.configure(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        wait_healthy(port, &mut child, &log).await;
        instances.push((child, port, log));
    }

    let body = support::webhook_fixture("issue_comment.pull_request.json");
    let delivery = "33333333-0000-4000-8000-000000000003";
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for (_, port, _) in &instances {
        let response = client
            .post(format!("http://127.0.0.1:{port}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "issue_comment")
            .header("x-github-delivery", delivery)
            .header(
                "x-hub-signature-256",
                tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        answers.push(response.status().as_u16());
    }
    assert_eq!(
        answers,
        [202, 200],
        "stored by the first, a duplicate for the second"
    );

    let objects = tfpilot::store::S3Objects::new(moto.client(), bucket.clone());
    let inbox = tfpilot::inbox::ObjectInbox::new(std::sync::Arc::new(objects));
    let id = delivery.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let item = inbox
            .get(&id)
            .await
            .unwrap()
            .expect("the delivery is in the bucket");
        if item.state.status == ItemStatus::Done {
            assert_eq!(
                item.state.attempts, 1,
                "claimed once, handled once: {item:?}"
            );
            assert_eq!(
                item.state.lease, None,
                "the lease ends with the item: {item:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the delivery was not processed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut handled = 0;
    for (mut child, _, log) in instances {
        let status = terminate(&mut child);
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{stderr}");
        handled += stderr.matches("issue comment").count();
    }
    assert_eq!(handled, 1, "exactly one instance handled the delivery");
}

/// An SSM client on the test's moto server.
fn ssm_client(moto: &support::MotoServer) -> aws_sdk_ssm::Client {
    let credentials =
        aws_sdk_ssm::config::Credentials::new("testing", "testing", None, None, "moto");
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(credentials)
        .http_client(tfpilot::store::aws_http::sdk_http_client())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

#[tokio::test]
async fn the_webhook_secret_can_come_from_ssm_parameter_store() {
    let moto = support::MotoServer::start();
    ssm_client(&moto)
        .put_parameter()
        .name("/tfpilot/test/webhook-secret")
        .value(WEBHOOK_SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "put parameter: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        });

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let port = support::free_port();
    let store = format!("fs://{}", dir.path().join("data").display());
    let mut cmd = tfpilot(
        &["serve", "--host", "127.0.0.1"],
        &[
            ("PORT", &port.to_string()),
            ("TFPILOT_STORE", &store),
            (
                "TFPILOT_WEBHOOK_SECRET_PARAMETER",
                "/tfpilot/test/webhook-secret",
            ),
        ],
        &log,
    );
    moto.configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    wait_healthy(port, &mut child, &log).await;

    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/github"))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "22222222-0000-4000-8000-0000000000a1")
        .header(
            "x-hub-signature-256",
            tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        202,
        "signed with the secret kept in SSM"
    );
    let status = terminate(&mut child);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status}:\n{stderr}");
    assert!(
        !stderr.contains(WEBHOOK_SECRET),
        "the secret is never logged:\n{stderr}"
    );
    assert!(
        !stderr.contains("TFPILOT_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_parameter_stops_the_start_naming_its_variable() {
    let moto = support::MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut cmd = tfpilot(
        &["serve", "--host", "127.0.0.1"],
        &[
            ("PORT", &support::free_port().to_string()),
            ("TFPILOT_STORE", &format!("fs://{}", dir.path().display())),
            (
                "TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER",
                "/tfpilot/test/missing-key",
            ),
        ],
        &log,
    );
    moto.configure(&mut cmd);
    let status = cmd.status().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER: names `/tfpilot/test/missing-key`, which SSM Parameter Store does not have"),
        "{stderr}"
    );
}

/// With the App configured but GitHub not answering (a firewall that drops the traffic, an
/// outage), `serve` still stops promptly on SIGTERM: the start-up check that is still waiting
/// for GitHub on a blocking thread does not hold the process (a supervisor would kill it).
#[tokio::test]
async fn serve_stops_on_sigterm_while_github_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().take(64) {
            match stream {
                Ok(s) => open.push(s),
                Err(_) => break,
            }
        }
        open
    });
    // A command left in the inbox: the worker takes it at start and waits on GitHub too.
    let data = dir.path().join("data");
    {
        let mut payload: serde_json::Value = serde_json::from_slice(&support::webhook_fixture(
            "issue_comment.created.installation.json",
        ))
        .unwrap();
        payload["comment"]["body"] = "/tfpilot status".into();
        FsInbox::open(&data)
            .unwrap()
            .put(&Delivery::new(
                "33333333-0000-4000-8000-000000000003".parse().unwrap(),
                "issue_comment",
                payload.to_string(),
            ))
            .await
            .unwrap();
    }
    let (mut child, port) = serve_on(
        &data,
        &[
            ("TFPILOT_GITHUB_APP_ID", "1"),
            (
                "TFPILOT_GITHUB_PRIVATE_KEY",
                tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM,
            ),
            ("TFPILOT_GITHUB_API_URL", &api),
            ("TFPILOT_GITHUB_APP_SLUG", "tfpilot"),
        ],
        &log,
    );
    wait_healthy(port, &mut child, &log).await;
    // Give the start-up check and the worker time to be waiting on GitHub.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let status = terminate_within(
        &mut child,
        tfpilot::server::SHUTDOWN_GRACE + Duration::from_secs(10),
    );
    let took = started.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}:\n{stderr}");
    // The worker's item in hand gets the grace, then is left to the next start.
    let bound = tfpilot::server::SHUTDOWN_GRACE + Duration::from_secs(3);
    assert!(
        took < bound,
        "stopped {} ms after SIGTERM:\n{stderr}",
        took.as_millis()
    );
    assert!(
        stderr.contains("the next start takes it over"),
        "says what it left:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(held);
}
