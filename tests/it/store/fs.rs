//! The filesystem backend: the conformance suite on a temp dir, two OS processes on one data
//! dir, the on-disk layout, and `tfpilot audit` on an fs store.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tfpilot::domain::{ChatRole, ChatTurn, PullRequestRef, RequestStatus};
use tfpilot::ids::RequestId;
use tfpilot::store::{FsObjects, FsStore, RequestStore, RequestStoreExt};
use time::OffsetDateTime;

use super::{Target, new_request, repo};

async fn target() -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path()).expect("open fs store");
    let objects = Arc::new(FsObjects::open(dir.path()).expect("open fs objects"));
    Target {
        store: Arc::new(store),
        records: objects.clone(),
        chat: objects,
        _guard: Box::new(dir),
    }
}

mod conformance {
    conformance_suite!(super::target);
}

/// Set in the environment of the child processes of [`two_processes_on_one_data_dir_lose_no_update`]:
/// `<data dir>|<request id>|<increments>`.
const CHILD: &str = "TFPILOT_TEST_STORE_CHILD";

/// This test's name as libtest knows it (without the crate name), so the binary can run just it.
fn this_test(name: &str) -> String {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    format!("{module}::{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_data_dir_lose_no_update() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child_increments(&spec).await;
    }
    const INCREMENTS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let id = store.create(new_request(1)).await.unwrap().id;
    let go = dir.path().join("go");
    let spawn = || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &this_test("two_processes_on_one_data_dir_lose_no_update"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{}|{id}|{INCREMENTS}", dir.path().display()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child test process")
    };
    let children = [spawn(), spawn()];
    // Both are started before either may begin, so their updates overlap.
    std::fs::write(&go, b"").unwrap();
    let mut retries = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child failed or did not run the test:\n{stdout}\n{stderr}"
        );
        retries += stdout
            .lines()
            .find_map(|l| l.split("child retries: ").nth(1))
            .and_then(|n| n.split_whitespace().next()?.parse::<u64>().ok())
            .expect("child reports its retries");
    }
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        stored.revision,
        2 * INCREMENTS,
        "no update lost between processes"
    );
    assert_eq!(stored.version, 1 + 2 * INCREMENTS);
    eprintln!(
        "two processes: {} updates, {retries} retries",
        2 * INCREMENTS
    );
}

async fn child_increments(spec: &str) {
    let mut parts = spec.split('|');
    let (Some(dir), Some(id), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {CHILD}: {spec}");
    };
    let id: RequestId = id.parse().unwrap();
    let n: u64 = n.parse().unwrap();
    let go = Path::new(dir).join("go");
    while !go.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let store = FsStore::open(dir).unwrap();
    let mut retries = 0;
    for _ in 0..n {
        let done = store
            .update(id, |r| {
                r.revision += 1;
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .expect("update from a child process");
        retries += done.attempts - 1;
    }
    println!("child retries: {retries}");
}

#[tokio::test]
async fn layout_on_disk_is_the_documented_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let created = store.create(new_request(12)).await.unwrap();
    let id = created.id;
    store
        .append_chat(
            id,
            &ChatTurn {
                at: OffsetDateTime::now_utc(),
                author: "octocat".into(),
                role: ChatRole::User,
                text: "hello".into(),
                extracted: None,
                comment_id: None,
            },
        )
        .await
        .unwrap();
    for _ in 0..5 {
        store
            .update(id, |r| {
                r.revision += 1;
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();
    }
    let root = dir.path();
    let request_file = root.join(format!("requests/{id}.json"));
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&request_file).unwrap()).unwrap();
    assert_eq!(on_disk["version"], 6);
    assert_eq!(on_disk["id"], id.to_string());
    assert!(
        root.join("index/threads/acme/core-terraform/12.json")
            .is_file()
    );
    assert!(root.join(format!("chat/{id}.jsonl")).is_file());
    let events = std::fs::read_to_string(root.join(format!("events/{id}.jsonl"))).unwrap();
    assert_eq!(events.lines().count(), 1, "one line: created");
    // Atomic writes leave no temp files behind.
    let mut stray = Vec::new();
    for entry in walk(root) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            stray.push(entry);
        }
    }
    assert!(stray.is_empty(), "temp files left: {stray:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn audit_command_prints_one_document_for_live_and_archived_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let id = store.create(new_request(4)).await.unwrap().id;
    store
        .append_chat(
            id,
            &ChatTurn {
                at: OffsetDateTime::now_utc(),
                author: "octocat".into(),
                role: ChatRole::User,
                text: "/tfpilot new s3-bucket env=dev".into(),
                extracted: Some(serde_json::json!({"env": "dev"})),
                comment_id: Some(1),
            },
        )
        .await
        .unwrap();
    let current = store
        .update(id, |r| {
            r.status = RequestStatus::PrOpen;
            r.pull_request = Some(PullRequestRef {
                number: 40,
                url: "https://github.com/acme/core-terraform/pull/40".into(),
                head_sha: "deadbeef".into(),
                merged: false,
                merge_commit_sha: None,
            });
            r.record(OffsetDateTime::now_utc(), "octocat", "submit", None);
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap()
        .request;

    let store_url = format!("fs://{}", dir.path().display());
    let live = audit(&store_url, &id.to_string());
    assert_eq!(live["state"], "active");
    assert_eq!(live["request_id"], id.to_string());
    assert_eq!(live["request"]["status"], "pr_open");
    assert_eq!(live["timeline"][0]["event"], "submit");
    assert_eq!(live["chat"][0]["extracted"]["env"], "dev");
    assert_eq!(live["events"][0]["kind"], "created");
    assert_eq!(live["events"][1]["to"], "pr_open");

    store.archive(&current).await.unwrap();
    let archived = audit(&store_url, &id.to_string());
    assert_eq!(archived["state"], "archived");
    assert!(archived["request"]["archived_at"].is_string());
    assert_eq!(archived["events"][2]["kind"], "archived");
    assert_eq!(archived["chat"].as_array().map(Vec::len), Some(1));

    let out = tfpilot_audit(&store_url, &RequestId::new_random().to_string());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither active nor archived"),
        "{out:?}"
    );
    let out = tfpilot_audit(&store_url, "not-an-id");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a request id"),
        "{out:?}"
    );
    assert!(
        store.find_by_thread(&repo(), 4).await.unwrap().is_none(),
        "archive released the thread"
    );
}

fn tfpilot_audit(store_url: &str, id: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tfpilot"))
        .args(["audit", id, "--store", store_url])
        .env_remove("TFPILOT_CHAT_LOGS_BUCKET")
        .output()
        .expect("run tfpilot audit")
}

fn audit(store_url: &str, id: &str) -> serde_json::Value {
    let out = tfpilot_audit(store_url, id);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("audit prints one JSON document")
}
