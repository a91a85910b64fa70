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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tfpilot::inbox::{FsInbox, Inbox as _};

use crate::exactly_once::{self, Binary, drained, kill9, tail};
use crate::support;

/// Issues, each hearing its whole [`exactly_once::script`]: 84 × 9 + 28 × 13 = 1,120 deliveries.
const ISSUES: usize = 112;
/// Issues talked to at the same time (each waits for a 2xx before its next comment).
const LANES: usize = 8;
/// Kills come this many milliseconds apart (uniformly drawn).
const KILL_EVERY_MS: std::ops::RangeInclusive<u64> = 200..=2000;
/// The longest the inbox may take to drain, after the last delivery and again after the last
/// restart (a failed item waits for the worker's retry interval and backoff: 60 s).
const DRAIN_WITHIN: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_and_duplicates_no_effect() {
    let started = Instant::now();
    let seed: u64 = match std::env::var("TFPILOT_KILL9_SEED") {
        Ok(s) => s.parse().expect("TFPILOT_KILL9_SEED must be a number"),
        Err(_) => rand::rng().random(),
    };
    println!("kill -9 seed: {seed} (replay with TFPILOT_KILL9_SEED={seed})");

    // ---- GitHub: the simulator, its webhooks caught here -----------------------------------
    let (sim, caught) = exactly_once::github().await;

    // ---- TfPilot: the real binary on a port and a directory ---------------------------------
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = support::free_port();
    let binary = Arc::new(Binary {
        port,
        log: dir.path().join("tfpilot.log"),
        vars: {
            let mut vars = exactly_once::github_vars(&sim, port);
            vars.push(("TFPILOT_STORE".into(), format!("fs://{}", data.display())));
            vars
        },
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
    let sent = exactly_once::send_all(
        &sim,
        &caught,
        &[binary.url()],
        ISSUES,
        LANES,
        Duration::ZERO,
    )
    .await;
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
    let store = tfpilot::store::open_store(&format!("fs://{}", data.display()), None)
        .await
        .expect("open the store");
    let effects = exactly_once::check_effects(&sim, &sent, store.as_ref(), &inbox).await;

    // ---- the counts ---------------------------------------------------------------------------
    let issues: BTreeSet<u64> = sent.iter().map(|s| s.issue).collect();
    let posts: u32 = sent.iter().map(|s| s.attempts).sum();
    let refused: u32 = sent.iter().map(|s| s.refused).sum();
    println!(
        "kill -9: seed {seed}; {} deliveries on {} issues, {} answered 2xx ({posts} POSTs, \
         {refused} refused or cut off); {kills} kills; {}; sending took {:.1} s, all {:.1} s",
        sent.len(),
        issues.len(),
        sent.len(),
        effects.counts(),
        sending.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    effects.print_problems(&sim, &sent);
    let failed = effects.failed();
    if failed {
        println!("the store and the log are kept in {}", dir.keep().display());
    }
    assert!(sent.len() >= 1000, "at least 1,000 deliveries");
    assert!(kills >= 5, "the child was killed only {kills} times");
    assert!(
        !failed,
        "kill -9 (seed {seed}): {} lost, {} duplicated, {} not done (listed above); log tail:\n{}",
        effects.lost().len(),
        effects.duplicated().len(),
        effects.not_done.len(),
        tail(&binary.log)
    );
}
