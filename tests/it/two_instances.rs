//! Two instances, one store: two real `tfpilot serve` processes share one `s3://` store on moto,
//! behind a small balancer in this test that sends each delivery to a random instance (and to the
//! other one when that one is down, as GitHub would redeliver the same delivery id). Under load,
//! one instance is restarted cleanly (SIGTERM) every few seconds and, less often, killed
//! (SIGKILL). At the end every delivery answered 2xx has its effects exactly once (the kill -9
//! test's checks, [`crate::exactly_once::check_effects`]) and every inbox item is done.
//!
//! moto checks `If-None-Match`/`If-Match` and then writes without a lock, so two racing
//! conditional writes can both succeed there where S3 lets only one. The children therefore talk
//! to moto through [`SerialProxy`], which lets at most one conditional request through at a time
//! (reads, listings and plain writes stay concurrent): the test neither passes nor fails by luck.
//!
//! The restart times come from a seeded generator: the seed is printed, and
//! `TFPILOT_TWO_INSTANCES_SEED=<n>` replays it (where a restart lands still depends on timing).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tfpilot::inbox::{Inbox as _, ObjectInbox};
use tfpilot::store::objects::{ObjectError, Objects};
use tfpilot::store::{S3Objects, S3Store};

use crate::exactly_once::{self, Binary, Running, drained, kill9, tail};
use crate::support::{self, MotoServer};

/// Issues, each hearing its whole [`exactly_once::script`]: 36 × 9 + 12 × 13 = 480 deliveries.
const ISSUES: usize = 48;
/// Issues talked to at the same time (each waits for a 2xx before its next comment).
const LANES: usize = 8;
/// The pause after each comment in a lane, so the deliveries come over about a minute of
/// restarts rather than in a burst of seconds.
const PACE: Duration = Duration::from_millis(800);
/// One instance is restarted this many milliseconds after the last restart (uniformly drawn).
const RESTART_EVERY_MS: std::ops::RangeInclusive<u64> = 1500..=4000;
/// One restart in this many is a SIGKILL, the others a SIGTERM.
const KILL_ONE_IN: u32 = 4;
/// The longest a SIGTERMed instance may take to finish its work and exit.
const EXIT_WITHIN: Duration = Duration::from_secs(30);
/// How long restarts go on after the last delivery while the workers catch up.
const CATCH_UP_UNDER_RESTARTS: Duration = Duration::from_secs(30);
/// The longest the inbox may take to drain after the last restart (a failed item waits for the
/// worker's retry interval and backoff: 60 s each).
const DRAIN_WITHIN: Duration = Duration::from_secs(150);

// ---- the serializing proxy ---------------------------------------------------------------------

/// An HTTP proxy on 127.0.0.1 in front of moto that forwards every request as it is, holding one
/// lock around each conditional request (`If-Match` or `If-None-Match`), so at most one
/// conditional write is in flight and moto's check-then-write cannot race.
struct SerialProxy {
    addr: SocketAddr,
    /// Conditional requests forwarded.
    conditional: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    lock: Arc<tokio::sync::Mutex<()>>,
    conditional: Arc<AtomicUsize>,
}

impl SerialProxy {
    async fn start(upstream: String) -> Self {
        let conditional = Arc::new(AtomicUsize::new(0));
        let state = ProxyState {
            upstream,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a reqwest client"),
            lock: Arc::default(),
            conditional: conditional.clone(),
        };
        let router = axum::Router::new()
            .fallback(forward)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, conditional }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Headers that belong to one connection, not to the request: not forwarded either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "content-length" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

async fn forward(State(proxy): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable request body").into_response();
    };
    let conditional =
        parts.headers.contains_key("if-match") || parts.headers.contains_key("if-none-match");
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let _one_at_a_time = if conditional {
        proxy.conditional.fetch_add(1, Ordering::SeqCst);
        Some(proxy.lock.lock().await)
    } else {
        None
    };
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "moto's answer was cut off").into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// An S3 client for `endpoint` with moto's test credentials, path-style.
fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let credentials =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(tfpilot::store::aws_http::sdk_http_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Through the proxy, of two conditional writes racing on one object exactly one wins, each time:
/// two creates (`If-None-Match: *`), then two replaces of the same version (`If-Match`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serializing_proxy_lets_one_of_two_racing_conditional_writes_win() {
    let moto = MotoServer::start();
    let bucket = support::unique_bucket("proxy");
    moto.create_bucket(&bucket).await;
    let proxy = SerialProxy::start(moto.endpoint()).await;
    let objects = S3Objects::new(s3_client(&proxy.endpoint()), bucket);
    let won = |a: &Result<_, ObjectError>, b: &Result<_, ObjectError>| {
        for r in [a, b] {
            if let Err(e) = r {
                assert!(
                    matches!(e, ObjectError::Conflict { .. }),
                    "a refused write is a conflict (412), not {e}"
                );
            }
        }
        usize::from(a.is_ok()) + usize::from(b.is_ok())
    };
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let key = format!("race/{round}.json");
        let (a, b) = tokio::join!(
            objects.put_if_absent(&key, b"a".to_vec()),
            objects.put_if_absent(&key, b"b".to_vec()),
        );
        assert_eq!(won(&a, &b), 1, "round {round}: two creates: {a:?} {b:?}");
        let etag = a.or(b).unwrap();
        let (a, b) = tokio::join!(
            objects.put_if_match(&key, b"c".to_vec(), &etag),
            objects.put_if_match(&key, b"d".to_vec(), &etag),
        );
        assert_eq!(won(&a, &b), 1, "round {round}: two replaces: {a:?} {b:?}");
    }
    assert_eq!(
        proxy.conditional.load(Ordering::SeqCst),
        ROUNDS * 4,
        "every conditional write went through the proxy's lock"
    );
}

// ---- the instances -----------------------------------------------------------------------------

/// SIGTERM, then wait for the exit (at most [`EXIT_WITHIN`]; then SIGKILL). False if it had to be
/// killed.
async fn terminate(child: &mut Running) -> bool {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("run kill -TERM");
    assert!(status.success(), "kill -TERM {} failed", child.0.id());
    let deadline = Instant::now() + EXIT_WITHIN;
    while Instant::now() < deadline {
        if child.0.try_wait().expect("wait for the child").is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill9(child);
    false
}

/// What the restarter did.
#[derive(Debug, Default)]
struct Restarts {
    terms: u32,
    kills: u32,
    /// SIGTERMs the instance did not exit after within [`EXIT_WITHIN`].
    slow_exits: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_s3_store_restarted_under_load_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let seed: u64 = match std::env::var("TFPILOT_TWO_INSTANCES_SEED") {
        Ok(s) => s
            .parse()
            .expect("TFPILOT_TWO_INSTANCES_SEED must be a number"),
        Err(_) => rand::rng().random(),
    };
    println!("two instances seed: {seed} (replay with TFPILOT_TWO_INSTANCES_SEED={seed})");

    // ---- S3: moto behind the serializing proxy ------------------------------------------------
    let moto = MotoServer::start();
    let bucket = support::unique_bucket("requests");
    let chat = support::unique_bucket("chat");
    moto.create_bucket(&bucket).await;
    moto.create_bucket(&chat).await;
    let proxy = SerialProxy::start(moto.endpoint()).await;
    let aws_vars: Vec<(String, String)> = {
        let mut cmd = Command::new("tfpilot");
        moto.configure(&mut cmd);
        cmd.get_envs()
            .filter_map(|(k, v)| {
                let k = k.to_str()?.to_owned();
                let v = if k == "AWS_ENDPOINT_URL" {
                    proxy.endpoint()
                } else {
                    v?.to_str()?.to_owned()
                };
                Some((k, v))
            })
            .collect()
    };

    // ---- GitHub and the two instances ---------------------------------------------------------
    let (sim, caught) = exactly_once::github().await;
    let dir = tempfile::tempdir().unwrap();
    let binaries: Arc<Vec<Binary>> = Arc::new(
        (0..2)
            .map(|n| {
                let port = support::free_port();
                let mut vars = exactly_once::github_vars(&sim, port);
                vars.push(("TFPILOT_STORE".into(), format!("s3://{bucket}")));
                vars.push(("TFPILOT_CHAT_LOGS_BUCKET".into(), chat.clone()));
                vars.extend(aws_vars.iter().cloned());
                Binary {
                    port,
                    vars,
                    log: dir.path().join(format!("tfpilot-{n}.log")),
                }
            })
            .collect(),
    );
    let mut children = Vec::new();
    for binary in binaries.iter() {
        let mut child = binary.start(0);
        binary.wait_healthy(&mut child).await;
        children.push(child);
    }

    // ---- the restarter: one instance at a time, SIGTERM or (less often) SIGKILL ----------------
    let stop = Arc::new(AtomicBool::new(false));
    let restarter = tokio::spawn({
        let (binaries, stop) = (binaries.clone(), stop.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut done = Restarts::default();
            let mut generation = 0;
            loop {
                let wait = Duration::from_millis(rng.random_range(RESTART_EVERY_MS));
                tokio::time::sleep(wait).await;
                if stop.load(Ordering::SeqCst) {
                    return (children, done);
                }
                let n = rng.random_range(0..children.len());
                let child = &mut children[n];
                if rng.random_ratio(1, KILL_ONE_IN) {
                    kill9(child);
                    done.kills += 1;
                } else {
                    done.terms += 1;
                    if !terminate(child).await {
                        done.slow_exits.push(format!(
                            "instance {n} did not exit within {EXIT_WITHIN:?} of SIGTERM {}",
                            done.terms
                        ));
                    }
                }
                generation += 1;
                *child = binaries[n].start(generation);
                binaries[n].wait_healthy(child).await;
            }
        }
    });

    // ---- the users, through the balancer ------------------------------------------------------
    let urls: Vec<String> = binaries.iter().map(Binary::url).collect();
    let sent = exactly_once::send_all(&sim, &caught, &urls, ISSUES, LANES, PACE).await;
    let sending = started.elapsed();

    let inbox = ObjectInbox::new(Arc::new(S3Objects::new(moto.client(), bucket.clone())));
    // Restarts go on while the workers catch up for a while (an item failed by a restart waits
    // for its retry, so draining under restarts is not asked for), then both instances run and
    // must drain the inbox.
    drained(&inbox, CATCH_UP_UNDER_RESTARTS).await;
    stop.store(true, Ordering::SeqCst);
    let (mut children, restarts) = restarter.await.expect("the restarter failed");
    let finished = drained(&inbox, DRAIN_WITHIN).await;
    let mut stuck = Vec::new();
    for id in inbox.pending().await.expect("list the inbox") {
        let item = inbox.get(&id).await.expect("read the inbox");
        stuck.push(format!("{id}: {:?}", item.map(|i| i.state)));
    }
    sim.wait_idle().await;
    for child in &mut children {
        terminate(child).await;
    }
    let logs = || {
        binaries
            .iter()
            .enumerate()
            .map(|(n, b)| format!("--- instance {n}:\n{}", tail(&b.log)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        finished,
        "the inbox did not drain within {DRAIN_WITHIN:?} of the last restart; still pending \
         (a lease held by a SIGKILLed instance lasts 10 minutes):\n{}\n{}",
        stuck.join("\n"),
        logs()
    );

    // ---- the effects --------------------------------------------------------------------------
    let store = S3Store::new(moto.client(), bucket.clone(), chat.clone());
    let effects = exactly_once::check_effects(&sim, &sent, &store, &inbox).await;

    // ---- the counts ---------------------------------------------------------------------------
    let issues: BTreeSet<u64> = sent.iter().map(|s| s.issue).collect();
    let posts: u32 = sent.iter().map(|s| s.attempts).sum();
    let refused: u32 = sent.iter().map(|s| s.refused).sum();
    let answered = |n: usize, status: u16| {
        sent.iter()
            .filter(|s| s.instance == n && s.status == status)
            .count()
    };
    let per_instance: Vec<String> = (0..binaries.len())
        .map(|n| {
            format!(
                "instance {n}: {} stored (202), {} duplicates (200)",
                answered(n, 202),
                answered(n, 200)
            )
        })
        .collect();
    println!(
        "two instances: seed {seed}; {} deliveries on {} issues, all answered 2xx ({posts} POSTs, \
         {refused} refused or cut off); {} restarts (SIGTERM), {} kills (SIGKILL), {} slow \
         exits; {}; {} conditional writes serialized; {}; sending took {:.1} s, all {:.1} s",
        sent.len(),
        issues.len(),
        restarts.terms,
        restarts.kills,
        restarts.slow_exits.len(),
        per_instance.join(", "),
        proxy.conditional.load(Ordering::SeqCst),
        effects.counts(),
        sending.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    effects.print_problems(&sim, &sent);
    for s in &restarts.slow_exits {
        println!("SLOW EXIT: {s}");
    }
    let failed = effects.failed();
    if failed {
        println!("the logs are kept in {}", dir.keep().display());
    }
    assert!(sent.len() >= 400, "at least 400 deliveries");
    assert!(
        restarts.terms >= 3 && restarts.kills >= 1,
        "only {} restarts and {} kills",
        restarts.terms,
        restarts.kills
    );
    assert!(
        (0..binaries.len()).all(|n| answered(n, 202) > 0),
        "both instances stored deliveries: {per_instance:?}"
    );
    assert!(
        proxy.conditional.load(Ordering::SeqCst) >= sent.len(),
        "the instances' conditional writes went through the proxy"
    );
    assert!(
        restarts.slow_exits.is_empty(),
        "SIGTERM did not stop an instance in time: {:?}",
        restarts.slow_exits
    );
    assert!(
        !failed,
        "two instances (seed {seed}): {} lost, {} duplicated, {} not done (listed above); \
         logs:\n{}",
        effects.lost().len(),
        effects.duplicated().len(),
        effects.not_done.len(),
        logs()
    );
}
