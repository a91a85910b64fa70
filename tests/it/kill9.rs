//! kill -9: the real `tfpilot serve` (a child process) against the GitHub simulator (in this
//! process), killed with SIGKILL at random moments while more than 1,000 `issue_comment`
//! deliveries come in, and restarted each time on the same port and the same `fs://` store. A
//! delivery that was not answered 2xx is sent again with the same delivery id, as GitHub
//! redelivers. At the end every delivery answered 2xx must have its effects exactly once: one bot
//! answer per command comment (its `reply:<comment id>` marker), one pull request, one commit and
//! one plan dispatch per submitted request, and no comment marker, branch commit or dispatch id
//! twice anywhere.
//!
//! The kill times come from a seeded generator: the seed is printed, and `TFPILOT_KILL9_SEED=<n>`
//! replays it (the moments a kill lands in the child's work still depend on timing).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tfpilot::comments::marker_key;
use tfpilot::inbox::{FsInbox, Inbox, ItemStatus};
use tfpilot_sim::{Permission, Sim, SimConfig};

use crate::support::{self, WEBHOOK_SECRET};

const REPO: &str = "acme/core-terraform";
/// Issues, each hearing its whole [`script`]: 84 × 9 + 28 × 13 = 1,120 deliveries.
const ISSUES: usize = 112;
/// Issues talked to at the same time (each waits for a 2xx before its next comment).
const LANES: usize = 8;
/// Kills come this many milliseconds apart (uniformly drawn).
const KILL_EVERY_MS: std::ops::RangeInclusive<u64> = 200..=2000;
/// The longest a delivery may go unanswered (the child restarts within a second or two).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);
/// The longest the inbox may take to drain, after the last delivery and again after the last
/// restart (a failed item waits for the worker's retry interval and backoff: 60 s).
const DRAIN_WITHIN: Duration = Duration::from_secs(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Answer,
    Status,
    Help,
    Submit,
    Cancel,
}

/// What issue `n` hears, in order. Even issues name the bucket in `new`, odd ones in the answer;
/// every fourth issue cancels its request and submits a second one.
fn script(n: usize) -> Vec<(Kind, String)> {
    let (new, answer) = if n.is_multiple_of(2) {
        (
            format!("/tfpilot new s3-bucket env=dev name=kill{n}"),
            "Turn versioning on and keep objects for 30 days please".to_owned(),
        )
    } else {
        (
            "/tfpilot new s3-bucket env=dev".to_owned(),
            format!("Call it kill{n}, turn versioning on please"),
        )
    };
    let status = || (Kind::Status, "/tfpilot status".to_owned());
    let help = || (Kind::Help, "/tfpilot help".to_owned());
    let mut script = vec![
        (Kind::New, new),
        (Kind::Answer, answer),
        status(),
        help(),
        (Kind::Submit, "/tfpilot submit".to_owned()),
        status(),
        help(),
        status(),
        help(),
    ];
    if n % 4 == 3 {
        // Cancelled (pull request closed, request archived), then a second request on the
        // same issue: the thread is taken over.
        script.extend([
            (Kind::Cancel, "/tfpilot cancel".to_owned()),
            (
                Kind::New,
                format!("/tfpilot new s3-bucket env=dev name=again{n}"),
            ),
            (Kind::Submit, "/tfpilot submit".to_owned()),
            status(),
        ]);
    }
    script
}

/// One comment and how its delivery went.
#[derive(Debug, Clone)]
struct Sent {
    issue: u64,
    comment: u64,
    kind: Kind,
    delivery: String,
    /// POSTs it took until a 2xx.
    attempts: u32,
    /// Answers that were not 2xx (connection refused or reset, 5xx) before that.
    refused: u32,
}

/// The simulator's webhooks, caught by a small server in this process: `issue_comment`
/// deliveries by comment id (delivery id, exact body). The test forwards the users' ones to the
/// child itself, so it decides when and how often each is sent.
#[derive(Clone, Default)]
struct Caught(Arc<Mutex<HashMap<u64, Webhook>>>);

/// A caught webhook: its delivery id and its exact body.
type Webhook = (String, Vec<u8>);

async fn catch(State(caught): State<Caught>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("x-github-event") == "issue_comment"
        && let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(id) = payload["comment"]["id"].as_u64()
    {
        caught
            .0
            .lock()
            .unwrap()
            .insert(id, (header("x-github-delivery"), body.to_vec()));
    }
    StatusCode::OK
}

/// How to start the child, again and again on the same port and store.
struct Binary {
    port: u16,
    vars: Vec<(String, String)>,
    log: PathBuf,
}

impl Binary {
    fn start(&self, generation: u32) -> Running {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(log, "----- start {generation} -----").unwrap();
        Command::new(env!("CARGO_BIN_EXE_tfpilot"))
            .args(["serve", "--host", "127.0.0.1"])
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Running)
            .expect("start tfpilot serve")
    }

    /// Polls `/healthz` until it answers 200, at most 30 s.
    async fn wait_healthy(&self, child: &mut Running) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{}/healthz", self.port))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status().as_u16() == 200
            {
                return;
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!(
                    "tfpilot exited with {status} before answering:\n{}",
                    tail(&self.log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "no 200 from /healthz within 30 s:\n{}",
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The child, killed when dropped (also when the test fails half-way).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        kill9(self);
    }
}

/// SIGKILL (`Child::kill` on Unix), then reap it.
fn kill9(child: &mut Running) {
    child.0.kill().expect("SIGKILL");
    child.0.wait().expect("reap the killed child");
}

/// The last lines of the child's log, for failure messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// POSTs one delivery until it is answered 2xx (the same delivery id each time).
async fn deliver(client: &reqwest::Client, url: &str, delivery: &str, body: &[u8]) -> (u32, u32) {
    let started = Instant::now();
    let (mut attempts, mut refused) = (0, 0);
    loop {
        attempts += 1;
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-github-event", "issue_comment")
            .header("x-github-delivery", delivery)
            .header(
                "x-hub-signature-256",
                tfpilot::webhook::sign(WEBHOOK_SECRET.as_bytes(), body),
            )
            .body(body.to_vec())
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => return (attempts, refused),
            _ => refused += 1,
        }
        assert!(
            started.elapsed() < ANSWER_WITHIN,
            "delivery {delivery} was not answered 2xx within {ANSWER_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Pending inbox items, polled until none is left.
async fn drained(inbox: &FsInbox, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if inbox.pending().await.expect("list the inbox").is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts of one kind of effect: how many were expected, how many missing, how many extra.
#[derive(Debug, Default)]
struct Tally {
    checked: usize,
    lost: Vec<String>,
    duplicated: Vec<String>,
}

impl Tally {
    /// One expected effect found `found` times.
    fn expect_once(&mut self, what: String, found: usize) {
        self.checked += 1;
        match found {
            0 => self.lost.push(what),
            1 => {}
            n => self.duplicated.push(format!("{what} ×{n}")),
        }
    }

    /// Things that must each appear once (e.g. all markers): report every one seen twice.
    fn unique<T: Ord + std::fmt::Debug>(&mut self, what: &str, items: impl IntoIterator<Item = T>) {
        let mut seen: BTreeMap<T, usize> = BTreeMap::new();
        for item in items {
            *seen.entry(item).or_default() += 1;
        }
        for (item, n) in seen {
            if n > 1 {
                self.duplicated.push(format!("{what} {item:?} ×{n}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_and_duplicates_no_effect() {
    let started = Instant::now();
    let seed: u64 = match std::env::var("TFPILOT_KILL9_SEED") {
        Ok(s) => s.parse().expect("TFPILOT_KILL9_SEED must be a number"),
        Err(_) => rand::rng().random(),
    };
    println!("kill -9 seed: {seed} (replay with TFPILOT_KILL9_SEED={seed})");

    // ---- GitHub: the simulator, its webhooks caught here -----------------------------------
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let infra = support::offline_infra_repo();
    sim.add_repo(
        REPO,
        "main",
        tfpilot_sim::files_from_dir(infra.path()).expect("read the offline repo"),
    );
    sim.add_user("carol", Permission::Write);
    // Workflows keep the simulator's default behaviour (succeed without running terraform):
    // this test is about the dispatches, and the runs' webhooks are not forwarded to TfPilot.
    let caught = Caught::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let catcher = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/", axum::routing::post(catch))
        .with_state(caught.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    sim.set_webhook_target(&format!("http://{catcher}/"), WEBHOOK_SECRET);
    let sim = Arc::new(sim);

    // ---- TfPilot: the real binary on a port and a directory ---------------------------------
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = support::free_port();
    let binary = Arc::new(Binary {
        port,
        log: dir.path().join("tfpilot.log"),
        vars: [
            ("PORT", port.to_string()),
            ("TFPILOT_STORE", format!("fs://{}", data.display())),
            ("TFPILOT_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("TFPILOT_GITHUB_APP_ID", sim.app_id().to_string()),
            (
                "TFPILOT_GITHUB_PRIVATE_KEY",
                tfpilot_sim::TEST_APP_PRIVATE_KEY_PEM.to_owned(),
            ),
            ("TFPILOT_GITHUB_API_URL", sim.base_url()),
            ("TFPILOT_GITHUB_APP_SLUG", "tfpilot".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    });
    let mut child = binary.start(0);
    binary.wait_healthy(&mut child).await;

    // ---- the killer: SIGKILL at random moments, restart, until told to stop -------------------
    let stop = Arc::new(AtomicBool::new(false));
    let killer = tokio::spawn({
        let (binary, stop) = (binary.clone(), stop.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut kills = 0u32;
            loop {
                let wait = Duration::from_millis(rng.random_range(KILL_EVERY_MS));
                tokio::time::sleep(wait).await;
                if stop.load(Ordering::SeqCst) {
                    return (child, kills);
                }
                kill9(&mut child);
                kills += 1;
                child = binary.start(kills);
                binary.wait_healthy(&mut child).await;
            }
        }
    });

    // ---- the users: lanes of issues, each comment delivered until answered 2xx ----------------
    let url = format!("http://127.0.0.1:{port}/webhooks/github");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let (sim, caught, client, url) = (sim.clone(), caught.clone(), client.clone(), url.clone());
        lanes.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for n in (lane..ISSUES).step_by(LANES) {
                let issue = sim
                    .open_issue(REPO, "carol", &format!("Bucket {n}"), "A bucket, please.")
                    .expect("open an issue");
                for (kind, body) in script(n) {
                    let comment = sim
                        .user_comment(REPO, issue, "carol", &body)
                        .await
                        .expect("comment");
                    let (delivery, payload) = caught
                        .0
                        .lock()
                        .unwrap()
                        .get(&comment)
                        .cloned()
                        .expect("the simulator sent the comment's webhook");
                    let (attempts, refused) = deliver(&client, &url, &delivery, &payload).await;
                    sent.push(Sent {
                        issue,
                        comment,
                        kind,
                        delivery,
                        attempts,
                        refused,
                    });
                }
            }
            sent
        }));
    }
    let mut sent: Vec<Sent> = Vec::new();
    for lane in lanes {
        sent.extend(lane.await.expect("a sender lane failed"));
    }
    let sending = started.elapsed();

    // Kills go on while the worker catches up, then one last kill and restart.
    let inbox = FsInbox::open(&data).unwrap();
    let caught_up = drained(&inbox, DRAIN_WITHIN).await;
    stop.store(true, Ordering::SeqCst);
    let (mut child, mut kills) = killer.await.expect("the killer failed");
    kill9(&mut child);
    kills += 1;
    let mut child = binary.start(kills);
    binary.wait_healthy(&mut child).await;
    let finished = drained(&inbox, DRAIN_WITHIN).await;
    sim.wait_idle().await;
    kill9(&mut child);
    assert!(
        caught_up && finished,
        "the inbox did not drain within {DRAIN_WITHIN:?}: {:?} still pending\n{}",
        inbox.pending().await,
        tail(&binary.log)
    );

    // ---- the effects ------------------------------------------------------------------------
    let bot = sim.bot_login();
    let store = tfpilot::store::open_store(&format!("fs://{}", data.display()), None)
        .await
        .expect("open the store");
    let repo: tfpilot::ids::RepoName = REPO.parse().unwrap();
    let mut gave_up = Vec::new();
    for s in &sent {
        let item = inbox
            .get(&s.delivery.parse().unwrap())
            .await
            .unwrap()
            .expect("an answered delivery is in the inbox");
        if item.state.status != ItemStatus::Done {
            gave_up.push(format!(
                "{} ({:?} on #{}): {:?} {:?}",
                s.delivery, s.kind, s.issue, item.state.status, item.state.last_error
            ));
        }
    }

    let issues: BTreeSet<u64> = sent.iter().map(|s| s.issue).collect();
    let mut markers: Vec<String> = Vec::new();
    let mut bot_comments: HashMap<u64, Vec<String>> = HashMap::new();
    for issue in &issues {
        for c in sim.comments(REPO, *issue) {
            if c.author == bot {
                let key = marker_key(&c.body).unwrap_or("(no marker)").to_owned();
                markers.push(format!("#{issue} {key}"));
                bot_comments.entry(*issue).or_default().push(key);
            }
        }
    }
    let prs = sim.pull_requests(REPO);
    for pr in &prs {
        for c in sim.comments(REPO, pr.number) {
            if c.author == bot {
                let key = marker_key(&c.body).unwrap_or("(no marker)").to_owned();
                markers.push(format!("#{} {key}", pr.number));
            }
        }
    }
    let runs = sim.workflow_runs(REPO);
    let main_head = sim.branch_head(REPO, "main").expect("main");

    let mut answers = Tally::default();
    let mut pulls = Tally::default();
    let mut commits = Tally::default();
    let mut dispatches = Tally::default();
    for s in &sent {
        let key = format!("reply:{}", s.comment);
        let found = bot_comments
            .get(&s.issue)
            .map(|keys| keys.iter().filter(|k| **k == key).count())
            .unwrap_or(0);
        answers.expect_once(
            format!(
                "answer to {:?} comment {} on #{}",
                s.kind, s.comment, s.issue
            ),
            found,
        );
    }
    // Per issue: one pull request per submit (its body names the issue and the request), one
    // commit on its branch and one plan dispatch for its request; a cancelled request's pull
    // request is closed and the request archived.
    let mut cancels = Tally::default();
    for issue in &issues {
        let on_issue: Vec<&Sent> = sent.iter().filter(|s| s.issue == *issue).collect();
        let submits = on_issue.iter().filter(|s| s.kind == Kind::Submit).count();
        let cancelled = on_issue.iter().any(|s| s.kind == Kind::Cancel);
        let mentions = format!(" in #{issue} (TfPilot request `");
        let mine: Vec<(&tfpilot_sim::SimPullRequest, String)> = prs
            .iter()
            .filter_map(|p| {
                let rest = &p.body[p.body.find(&mentions)? + mentions.len()..];
                Some((p, rest[..rest.find('`')?].to_owned()))
            })
            .collect();
        let ids: BTreeSet<&str> = mine.iter().map(|(_, id)| id.as_str()).collect();
        pulls.checked += submits;
        match ids.len().cmp(&submits) {
            std::cmp::Ordering::Less => pulls.lost.push(format!(
                "#{issue}: {} pull requests for {submits} submits",
                ids.len()
            )),
            std::cmp::Ordering::Greater => pulls.duplicated.push(format!(
                "#{issue}: {} requests with pull requests for {submits} submits",
                ids.len()
            )),
            std::cmp::Ordering::Equal => {}
        }
        let live = store
            .find_by_thread(&repo, *issue)
            .await
            .expect("store")
            .map(|r| r.into_inner().id.to_string());
        for id in &ids {
            let branch = format!("request/{id}");
            let pulls_of_id = mine
                .iter()
                .filter(|(p, i)| i == id && p.head == branch)
                .count();
            match pulls_of_id {
                1 => {}
                0 => pulls
                    .lost
                    .push(format!("#{issue}: no pull request from {branch}")),
                n => pulls
                    .duplicated
                    .push(format!("#{issue}: {n} pull requests from {branch}")),
            }
            let on_branch = sim
                .commits(REPO, &branch)
                .into_iter()
                .take_while(|c| c.sha != main_head)
                .count();
            commits.expect_once(format!("commit on {branch} of #{issue}"), on_branch);
            dispatches.expect_once(
                format!("plan dispatch of request {id} (#{issue})"),
                runs.iter()
                    .filter(|r| {
                        r.workflow == "plan.yml"
                            && r.inputs.get("request_id").map(String::as_str) == Some(*id)
                    })
                    .count(),
            );
            if cancelled && live.as_deref() != Some(*id) {
                let open = mine.iter().any(|(p, i)| i == id && p.open);
                cancels.expect_once(
                    format!("close of the cancelled request's pull request {branch}"),
                    usize::from(!open),
                );
                let archived = store
                    .get_archived(id.parse().expect("a request id"))
                    .await
                    .expect("store");
                cancels.expect_once(
                    format!("archive of the cancelled request {id} (#{issue})"),
                    usize::from(archived.is_some()),
                );
            }
        }
        if cancelled && ids.len() < 2 {
            cancels
                .lost
                .push(format!("#{issue}: no second request after cancel"));
        }
    }
    let mut anywhere = Tally::default();
    anywhere.unique("comment marker", markers.iter());
    anywhere.unique(
        "dispatch id",
        runs.iter()
            .map(|r| r.inputs.get("dispatch_id").cloned().unwrap_or_default()),
    );
    anywhere.unique("pull request head", prs.iter().map(|p| p.head.clone()));
    anywhere.unique(
        "plan run of request",
        runs.iter()
            .filter(|r| r.workflow == "plan.yml")
            .map(|r| r.inputs.get("request_id").cloned().unwrap_or_default()),
    );

    // ---- the counts ---------------------------------------------------------------------------
    let tallies = [
        ("bot answers", &answers),
        ("pull requests", &pulls),
        ("branch commits", &commits),
        ("plan dispatches", &dispatches),
        ("cancels", &cancels),
        ("anywhere", &anywhere),
    ];
    let checked: usize = tallies.iter().map(|(_, t)| t.checked).sum();
    let lost: Vec<&String> = tallies.iter().flat_map(|(_, t)| &t.lost).collect();
    let duplicated: Vec<&String> = tallies.iter().flat_map(|(_, t)| &t.duplicated).collect();
    let posts: u32 = sent.iter().map(|s| s.attempts).sum();
    let refused: u32 = sent.iter().map(|s| s.refused).sum();
    println!(
        "kill -9: seed {seed}; {} deliveries on {} issues, {} answered 2xx ({posts} POSTs, \
         {refused} refused or cut off); {kills} kills; {checked} effects checked \
         ({} answers, {} pull requests, {} commits, {} dispatches, {} cancel effects); {} lost, {} duplicated, \
         {} not done; {} bot comments, {} runs; sending took {:.1} s, all {:.1} s",
        sent.len(),
        issues.len(),
        sent.len(),
        answers.checked,
        pulls.checked,
        commits.checked,
        dispatches.checked,
        cancels.checked,
        lost.len(),
        duplicated.len(),
        gave_up.len(),
        markers.len(),
        runs.len(),
        sending.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    for (what, t) in &tallies {
        for l in &t.lost {
            println!("LOST ({what}): {l}");
        }
        for d in &t.duplicated {
            println!("DUPLICATED ({what}): {d}");
        }
    }
    for g in &gave_up {
        println!("NOT DONE: {g}");
    }
    // The conversation on every issue named above, and the store kept, to see what happened.
    let named: BTreeSet<u64> = lost
        .iter()
        .chain(&duplicated)
        .flat_map(|m| m.split('#').skip(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    for issue in &named {
        println!("--- #{issue}:");
        for c in sim.comments(REPO, *issue) {
            let text: String = c.body.chars().take(300).collect();
            println!("[{} {}] {}", c.author, c.id, text.replace('\n', " ⏎ "));
        }
    }
    let failed = !(lost.is_empty() && duplicated.is_empty() && gave_up.is_empty());
    if failed {
        println!("the store and the log are kept in {}", dir.keep().display());
    }
    assert!(sent.len() >= 1000, "at least 1,000 deliveries");
    assert!(kills >= 5, "the child was killed only {kills} times");
    assert!(
        !failed,
        "kill -9 (seed {seed}): {} lost, {} duplicated, {} not done (listed above); log tail:\n{}",
        lost.len(),
        duplicated.len(),
        gave_up.len(),
        tail(&binary.log)
    );
}
