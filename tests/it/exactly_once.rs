//! The exactly-once harness shared by the kill -9 test ([`crate::kill9`]) and the two-instance
//! test ([`crate::two_instances`]): the GitHub simulator with its webhooks caught in this process,
//! a script of comments per issue, the real `tfpilot serve` as a child process, deliveries sent
//! until answered 2xx (the same delivery id each time, as GitHub redelivers), and the check that
//! every delivery answered 2xx has its effects exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tfpilot::comments::marker_key;
use tfpilot::inbox::{Inbox, ItemStatus};
use tfpilot::store::RequestStore;
use tfpilot_sim::{Permission, Sim, SimConfig};

use crate::support::{self, WEBHOOK_SECRET};

pub const REPO: &str = "acme/core-terraform";
/// The longest a delivery may go unanswered (a child restarts within a second or two).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    New,
    Answer,
    Status,
    Help,
    Submit,
    Cancel,
}

/// What issue `n` hears, in order (9 comments, 13 on every fourth issue). Even issues name the
/// bucket in `new`, odd ones in the answer; every fourth issue cancels its request and submits a
/// second one.
pub fn script(n: usize) -> Vec<(Kind, String)> {
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
pub struct Sent {
    pub issue: u64,
    pub comment: u64,
    pub kind: Kind,
    pub delivery: String,
    /// POSTs it took until a 2xx.
    pub attempts: u32,
    /// Answers that were not 2xx (connection refused or reset, 5xx) before that.
    pub refused: u32,
    /// The instance (index into the URLs) that answered 2xx.
    pub instance: usize,
    /// That 2xx: 202 stored, 200 a duplicate of a stored delivery.
    pub status: u16,
}

/// The simulator's webhooks, caught by a small server in this process: `issue_comment`
/// deliveries by comment id (delivery id, exact body). The test forwards the users' ones to the
/// child itself, so it decides when, where and how often each is sent.
#[derive(Clone, Default)]
pub struct Caught(Arc<Mutex<HashMap<u64, Webhook>>>);

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

/// The GitHub simulator with [`REPO`] (the offline infra repo) and user `carol` (write), its
/// webhooks caught in this process. Workflows keep the simulator's default behaviour (succeed
/// without running terraform): these tests are about the dispatches, and the runs' webhooks are
/// not forwarded to TfPilot.
pub async fn github() -> (Arc<Sim>, Caught) {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let infra = support::offline_infra_repo();
    sim.add_repo(
        REPO,
        "main",
        tfpilot_sim::files_from_dir(infra.path()).expect("read the offline repo"),
    );
    sim.add_user("carol", Permission::Write);
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
    (Arc::new(sim), caught)
}

/// The variables that point a child at the simulator as the GitHub App, on `port`.
pub fn github_vars(sim: &Sim, port: u16) -> Vec<(String, String)> {
    [
        ("PORT", port.to_string()),
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
    .collect()
}

/// How to start a child, again and again on the same port and store.
pub struct Binary {
    pub port: u16,
    pub vars: Vec<(String, String)>,
    pub log: PathBuf,
}

impl Binary {
    pub fn start(&self, generation: u32) -> Running {
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

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks/github", self.port)
    }

    /// Polls `/healthz` until it answers 200, at most 30 s.
    pub async fn wait_healthy(&self, child: &mut Running) {
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
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill9(self);
        }
    }
}

/// SIGKILL (`Child::kill` on Unix), then reap it.
pub fn kill9(child: &mut Running) {
    child.0.kill().expect("SIGKILL");
    child.0.wait().expect("reap the killed child");
}

/// The last lines of a child's log, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// How one delivery went: POSTs, refusals, and who answered 2xx with what.
struct Delivered {
    attempts: u32,
    refused: u32,
    instance: usize,
    status: u16,
}

/// POSTs one delivery until it is answered 2xx (the same delivery id each time): first to
/// `urls[first]`, then to the next URL after each refusal (with one URL, always that one).
async fn deliver(
    client: &reqwest::Client,
    urls: &[String],
    first: usize,
    delivery: &str,
    body: &[u8],
) -> Delivered {
    let started = Instant::now();
    let (mut attempts, mut refused) = (0, 0);
    loop {
        let instance = (first + attempts as usize) % urls.len();
        attempts += 1;
        let answer = client
            .post(&urls[instance])
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
            Ok(r) if r.status().is_success() => {
                return Delivered {
                    attempts,
                    refused,
                    instance,
                    status: r.status().as_u16(),
                };
            }
            _ => refused += 1,
        }
        assert!(
            started.elapsed() < ANSWER_WITHIN,
            "delivery {delivery} was not answered 2xx within {ANSWER_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Opens `issues` issues and talks to them in `lanes` lanes (each waits for a 2xx before its
/// next comment, and `pace` more): every comment's webhook is delivered to a random one of
/// `urls`, then to the others in turn until answered 2xx.
pub async fn send_all(
    sim: &Arc<Sim>,
    caught: &Caught,
    urls: &[String],
    issues: usize,
    lanes: usize,
    pace: Duration,
) -> Vec<Sent> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let (sim, caught, client, urls) =
            (sim.clone(), caught.clone(), client.clone(), urls.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for n in (lane..issues).step_by(lanes) {
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
                    let first = rand::random_range(0..urls.len());
                    let d = deliver(&client, &urls, first, &delivery, &payload).await;
                    sent.push(Sent {
                        issue,
                        comment,
                        kind,
                        delivery,
                        attempts: d.attempts,
                        refused: d.refused,
                        instance: d.instance,
                        status: d.status,
                    });
                    tokio::time::sleep(pace).await;
                }
            }
            sent
        }));
    }
    let mut sent: Vec<Sent> = Vec::new();
    for task in tasks {
        sent.extend(task.await.expect("a sender lane failed"));
    }
    sent
}

/// Pending inbox items, polled until none is left.
pub async fn drained(inbox: &dyn Inbox, within: Duration) -> bool {
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
pub struct Tally {
    pub checked: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
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

/// What [`check_effects`] found.
#[derive(Debug)]
pub struct Effects {
    pub answers: Tally,
    pub pulls: Tally,
    pub commits: Tally,
    pub dispatches: Tally,
    pub cancels: Tally,
    pub anywhere: Tally,
    /// Answered deliveries whose inbox item is not done.
    pub not_done: Vec<String>,
    pub bot_comments: usize,
    pub runs: usize,
}

impl Effects {
    pub fn tallies(&self) -> [(&'static str, &Tally); 6] {
        [
            ("bot answers", &self.answers),
            ("pull requests", &self.pulls),
            ("branch commits", &self.commits),
            ("plan dispatches", &self.dispatches),
            ("cancels", &self.cancels),
            ("anywhere", &self.anywhere),
        ]
    }

    pub fn checked(&self) -> usize {
        self.tallies().iter().map(|(_, t)| t.checked).sum()
    }

    pub fn lost(&self) -> Vec<&String> {
        self.tallies()
            .into_iter()
            .flat_map(|(_, t)| &t.lost)
            .collect()
    }

    pub fn duplicated(&self) -> Vec<&String> {
        self.tallies()
            .into_iter()
            .flat_map(|(_, t)| &t.duplicated)
            .collect()
    }

    pub fn failed(&self) -> bool {
        !(self.lost().is_empty() && self.duplicated().is_empty() && self.not_done.is_empty())
    }

    /// `N answers, N pull requests, …` for the summary line.
    pub fn counts(&self) -> String {
        format!(
            "{} effects checked ({} answers, {} pull requests, {} commits, {} dispatches, {} \
             cancel effects); {} lost, {} duplicated, {} not done; {} bot comments, {} runs",
            self.checked(),
            self.answers.checked,
            self.pulls.checked,
            self.commits.checked,
            self.dispatches.checked,
            self.cancels.checked,
            self.lost().len(),
            self.duplicated().len(),
            self.not_done.len(),
            self.bot_comments,
            self.runs,
        )
    }

    /// Prints every lost, duplicated and unfinished thing, naming the delivery and the instance
    /// that accepted it where one is known, and the conversation on every issue named.
    pub fn print_problems(&self, sim: &Sim, sent: &[Sent]) {
        let by_delivery: HashMap<&str, &Sent> =
            sent.iter().map(|s| (s.delivery.as_str(), s)).collect();
        let by_comment: HashMap<String, &Sent> = sent
            .iter()
            .map(|s| (format!("comment {} ", s.comment), s))
            .collect();
        let who = |text: &str| -> String {
            by_comment
                .iter()
                .find(|(k, _)| text.contains(k.as_str()))
                .map(|(_, s)| {
                    format!(
                        " [delivery {} answered {} by instance {} after {} POSTs]",
                        s.delivery, s.status, s.instance, s.attempts
                    )
                })
                .unwrap_or_default()
        };
        for (what, t) in self.tallies() {
            for l in &t.lost {
                println!("LOST ({what}): {l}{}", who(l));
            }
            for d in &t.duplicated {
                println!("DUPLICATED ({what}): {d}{}", who(d));
            }
        }
        for g in &self.not_done {
            let s = g.split(' ').next().and_then(|d| by_delivery.get(d));
            let at = s.map(|s| format!(" [answered by instance {}]", s.instance));
            println!("NOT DONE: {g}{}", at.unwrap_or_default());
        }
        let named: BTreeSet<u64> = self
            .lost()
            .into_iter()
            .chain(self.duplicated())
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
    }
}

/// Every delivery in `sent` (all answered 2xx) must be done in `inbox` and have its effects
/// exactly once: one bot answer per command comment (its `reply:<comment id>` marker), one pull
/// request, one commit and one plan dispatch per submitted request, a cancelled request's pull
/// request closed and the request archived, and no comment marker, branch commit or dispatch id
/// twice anywhere.
pub async fn check_effects(
    sim: &Sim,
    sent: &[Sent],
    store: &dyn RequestStore,
    inbox: &dyn Inbox,
) -> Effects {
    let bot = sim.bot_login();
    let repo: tfpilot::ids::RepoName = REPO.parse().unwrap();
    let mut not_done = Vec::new();
    for s in sent {
        let item = inbox
            .get(&s.delivery.parse().unwrap())
            .await
            .unwrap()
            .expect("an answered delivery is in the inbox");
        if item.state.status != ItemStatus::Done {
            not_done.push(format!(
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
    for s in sent {
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
    Effects {
        answers,
        pulls,
        commits,
        dispatches,
        cancels,
        anywhere,
        not_done,
        bot_comments: markers.len(),
        runs: runs.len(),
    }
}
