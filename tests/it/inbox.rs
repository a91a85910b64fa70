//! The inbox contract, as one conformance suite every backend runs ([`inbox_conformance`]), plus
//! what only the file-system inbox can show (several instances on one directory, reopening).

use std::sync::Arc;
use std::time::Duration;

use tfpilot::ids::DeliveryId;
use tfpilot::inbox::{
    Claim, Delivery, FsInbox, Inbox, ItemState, ItemStatus, PendingEntry, PutOutcome,
};
use time::OffsetDateTime;

fn delivery(id: &str, received_at: OffsetDateTime) -> Delivery {
    Delivery {
        id: id.parse().unwrap(),
        event: "issue_comment".into(),
        received_at,
        body: format!(r#"{{"n":"{id}","text":"ünïcode ✓ \"quoted\""}}"#),
    }
}

fn id(s: &str) -> DeliveryId {
    s.parse().unwrap()
}

/// The state of a stored item.
async fn state_of(inbox: &dyn Inbox, item: &str) -> ItemState {
    inbox.get(&id(item)).await.unwrap().expect("stored").state
}

/// The behaviour every [`Inbox`] must have. `inbox` must be empty. Backends call this from their
/// own test (the S3 inbox against moto), so it asserts only through the trait.
pub async fn inbox_conformance(inbox: &dyn Inbox) {
    let t0 = OffsetDateTime::now_utc();
    assert_eq!(inbox.pending().await.unwrap(), Vec::<DeliveryId>::new());
    assert_eq!(inbox.depth().await.unwrap(), 0);
    assert!(inbox.get(&id("conf-missing")).await.unwrap().is_none());

    // Create-only: the second put of one id changes nothing, even with another body.
    let first = delivery("conf-a", t0);
    assert_eq!(inbox.put(&first).await.unwrap(), PutOutcome::Created);
    let mut changed = first.clone();
    changed.body = r#"{"other":true}"#.into();
    assert_eq!(inbox.put(&changed).await.unwrap(), PutOutcome::Duplicate);
    let item = inbox.get(&first.id).await.unwrap().unwrap();
    assert_eq!(
        item.delivery, first,
        "the stored delivery is the first one, byte for byte"
    );
    assert_eq!(item.state.status, ItemStatus::Pending);
    assert_eq!(item.state.attempts, 0);

    // Concurrent puts of one id: exactly one is created.
    let racer = delivery("conf-race", t0 + time::Duration::seconds(1));
    let outcomes = tokio::join!(
        inbox.put(&racer),
        inbox.put(&racer),
        inbox.put(&racer),
        inbox.put(&racer),
        inbox.put(&racer),
        inbox.put(&racer),
    );
    let outcomes = [
        outcomes.0, outcomes.1, outcomes.2, outcomes.3, outcomes.4, outcomes.5,
    ]
    .map(|o| o.unwrap());
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == PutOutcome::Created)
            .count(),
        1,
        "{outcomes:?}"
    );

    // Pending, oldest received first, whatever order they were stored in.
    let later = delivery("conf-b", t0 + time::Duration::seconds(3));
    assert_eq!(inbox.put(&later).await.unwrap(), PutOutcome::Created);
    let earliest = delivery("conf-0", t0 - time::Duration::seconds(1));
    assert_eq!(inbox.put(&earliest).await.unwrap(), PutOutcome::Created);
    assert_eq!(
        inbox.pending().await.unwrap(),
        vec![id("conf-0"), id("conf-a"), id("conf-race"), id("conf-b")]
    );
    inbox.mark_done(&id("conf-0")).await.unwrap();
    assert_eq!(
        inbox.pending().await.unwrap(),
        vec![id("conf-a"), id("conf-race"), id("conf-b")]
    );
    assert_eq!(inbox.depth().await.unwrap(), 3);

    // Leases: a claim counts the attempt and holds the item for its owner alone.
    let lease = Duration::from_secs(60);
    match inbox.claim(&id("conf-a"), "w1", lease).await.unwrap() {
        Claim::Claimed(state) => {
            assert_eq!(state.attempts, 1, "the attempt is counted at the claim");
            assert_eq!(state.lease.as_ref().map(|l| l.owner.as_str()), Some("w1"));
        }
        other => panic!("the first claim must win: {other:?}"),
    }
    for owner in ["w2", "w1"] {
        let claim = inbox.claim(&id("conf-a"), owner, lease).await.unwrap();
        assert!(
            matches!(&claim, Claim::Busy(l) if l.owner == "w1"),
            "{owner}: {claim:?}"
        );
    }
    let item = inbox.get(&id("conf-a")).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::Pending);
    assert_eq!(item.state.attempts, 1);
    // A failure reported by another owner does not release w1's lease.
    assert_eq!(
        inbox
            .record_failure(&id("conf-a"), "w2", "not mine")
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        inbox.claim(&id("conf-a"), "w2", lease).await.unwrap(),
        Claim::Busy(_)
    ));
    // The holder's failure releases it: the next claim is the second attempt.
    assert_eq!(
        inbox
            .record_failure(&id("conf-a"), "w1", "boom 1")
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        inbox.claim(&id("conf-a"), "w2", lease).await.unwrap(),
        Claim::Claimed(s) if s.attempts == 2
    ));
    assert_eq!(
        inbox
            .record_failure(&id("conf-a"), "w2", "boom 2")
            .await
            .unwrap(),
        2
    );
    let item = inbox.get(&id("conf-a")).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::Pending);
    assert_eq!(item.state.attempts, 2);
    assert_eq!(item.state.lease, None);
    assert_eq!(item.state.last_error.as_deref(), Some("boom 2"));
    assert!(inbox.pending().await.unwrap().contains(&id("conf-a")));

    // An expired lease (its holder died mid-attempt) is taken over, and the lost attempt counts.
    assert!(matches!(
        inbox.claim(&id("conf-b"), "dead", Duration::from_millis(1)).await.unwrap(),
        Claim::Claimed(s) if s.attempts == 1
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(
        inbox.claim(&id("conf-b"), "w3", lease).await.unwrap(),
        Claim::Claimed(s) if s.attempts == 2
    ));
    inbox
        .record_failure(&id("conf-b"), "w3", "released")
        .await
        .unwrap();

    // Racing claims of one item: exactly one wins, the others see it busy.
    let race = id("conf-race");
    let claims = tokio::join!(
        inbox.claim(&race, "r0", lease),
        inbox.claim(&race, "r1", lease),
        inbox.claim(&race, "r2", lease),
        inbox.claim(&race, "r3", lease),
        inbox.claim(&race, "r4", lease),
        inbox.claim(&race, "r5", lease),
    );
    let claims = [claims.0, claims.1, claims.2, claims.3, claims.4, claims.5].map(|c| c.unwrap());
    let won = claims
        .iter()
        .filter(|c| matches!(c, Claim::Claimed(_)))
        .count();
    assert_eq!(won, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, Claim::Claimed(_) | Claim::Busy(_))),
        "{claims:?}"
    );
    assert_eq!(state_of(inbox, "conf-race").await.attempts, 1);
    assert_eq!(
        inbox.claim(&id("conf-missing"), "w1", lease).await.unwrap(),
        Claim::NotFound
    );

    // Done: no longer pending, still known (a redelivery stays a duplicate).
    inbox.mark_done(&id("conf-a")).await.unwrap();
    inbox.mark_done(&id("conf-a")).await.unwrap();
    let item = inbox.get(&id("conf-a")).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::Done);
    assert_eq!(item.state.attempts, 2, "attempts survive finishing");
    assert_eq!(
        inbox.claim(&id("conf-a"), "w1", lease).await.unwrap(),
        Claim::Finished(ItemStatus::Done),
        "a finished item is never claimed again"
    );
    assert_eq!(inbox.put(&first).await.unwrap(), PutOutcome::Duplicate);
    assert_eq!(
        inbox.pending().await.unwrap(),
        vec![id("conf-race"), id("conf-b")]
    );

    // Given up: finished with its reason; a finished item is not reopened by a late failure.
    inbox
        .give_up(&id("conf-race"), "gave up after 5 failed attempts")
        .await
        .unwrap();
    let item = inbox.get(&id("conf-race")).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::GaveUp);
    assert_eq!(
        item.state.last_error.as_deref(),
        Some("gave up after 5 failed attempts")
    );
    inbox
        .record_failure(&id("conf-race"), "r0", "late")
        .await
        .unwrap();
    inbox.mark_done(&id("conf-race")).await.unwrap();
    assert_eq!(
        state_of(inbox, "conf-race").await.status,
        ItemStatus::GaveUp
    );
    assert_eq!(inbox.pending().await.unwrap(), vec![id("conf-b")]);
    assert_eq!(inbox.depth().await.unwrap(), 1);

    // Operations on an unknown id fail instead of inventing an item.
    assert!(inbox.mark_done(&id("conf-missing")).await.is_err());
    assert!(
        inbox
            .record_failure(&id("conf-missing"), "w1", "x")
            .await
            .is_err()
    );

    // Prune removes finished items older than the cut-off, never pending ones.
    assert_eq!(inbox.prune(t0 - time::Duration::hours(1)).await.unwrap(), 0);
    let removed = inbox
        .prune(OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await
        .unwrap();
    let removed_ok = removed == 3 || removed == 0; // 0: a backend with native expiry
    assert!(removed_ok, "prune removed {removed}");
    assert_eq!(inbox.pending().await.unwrap(), vec![id("conf-b")]);
    if removed == 3 {
        assert!(inbox.get(&id("conf-a")).await.unwrap().is_none());
        assert_eq!(inbox.put(&first).await.unwrap(), PutOutcome::Created);
    }

    // Pending entries name their thread (repository and issue or pull-request number).
    let mut threaded = delivery("conf-t", t0 + time::Duration::seconds(9));
    threaded.body =
        r#"{"action":"created","repository":{"full_name":"acme/infra"},"issue":{"number":7}}"#
            .into();
    inbox.put(&threaded).await.unwrap();
    let entries = inbox.pending_entries().await.unwrap();
    assert_eq!(
        entries.last(),
        Some(&PendingEntry {
            id: id("conf-t"),
            thread: Some("acme/infra#7".into())
        })
    );
    assert!(
        entries.contains(&PendingEntry {
            id: id("conf-b"),
            thread: None
        }),
        "a body without a repository and number has no thread: {entries:?}"
    );

    // A lease of a dead earlier run of the same instance (`<instance>/<run>`: one process at a
    // time can be that instance) is taken over at once; another instance's is respected, and
    // so is the holder's own.
    let hour = Duration::from_secs(3600);
    inbox.put(&delivery("conf-p", t0)).await.unwrap();
    assert!(matches!(
        inbox
            .claim(&id("conf-p"), "serve@h:3000/run-1", hour)
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    for other in ["serve@h:3001/run-9", "serve@h:3000/run-1", "w1"] {
        assert!(
            matches!(
                inbox.claim(&id("conf-p"), other, hour).await.unwrap(),
                Claim::Busy(_)
            ),
            "{other} must not take the lease"
        );
    }
    match inbox
        .claim(&id("conf-p"), "serve@h:3000/run-2", hour)
        .await
        .unwrap()
    {
        Claim::Claimed(state) => assert_eq!(state.attempts, 2, "the dead run's attempt counts"),
        other => panic!("the restarted instance takes its predecessor's lease: {other:?}"),
    }
}

#[tokio::test]
async fn fs_inbox_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = FsInbox::open(dir.path()).unwrap();
    inbox_conformance(&inbox).await;
}

#[tokio::test]
async fn fs_inboxes_on_one_directory_create_each_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let inboxes: Vec<Arc<FsInbox>> = (0..4)
        .map(|_| Arc::new(FsInbox::open(dir.path()).unwrap()))
        .collect();
    let now = OffsetDateTime::now_utc();
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..20 {
        for inbox in &inboxes {
            let inbox = Arc::clone(inbox);
            let d = delivery(&format!("race-{round}"), now);
            tasks.spawn(async move { inbox.put(&d).await.unwrap() });
        }
    }
    let mut created = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap() == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(
        created, 20,
        "each of 20 ids created exactly once by 4 racing instances"
    );
    assert_eq!(inboxes[0].depth().await.unwrap(), 20);
    // No temporary file is left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn fs_inbox_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    {
        let inbox = FsInbox::open(dir.path()).unwrap();
        inbox.put(&delivery("keep-1", now)).await.unwrap();
        inbox.put(&delivery("keep-2", now)).await.unwrap();
        inbox
            .claim(&id("keep-1"), "w1", Duration::from_secs(60))
            .await
            .unwrap();
        inbox
            .record_failure(&id("keep-1"), "w1", "network down")
            .await
            .unwrap();
        inbox.mark_done(&id("keep-2")).await.unwrap();
    }
    let inbox = FsInbox::open(dir.path()).unwrap();
    assert_eq!(inbox.pending().await.unwrap(), vec![id("keep-1")]);
    assert_eq!(state_of(&inbox, "keep-1").await.attempts, 1);
    assert_eq!(
        inbox.put(&delivery("keep-2", now)).await.unwrap(),
        PutOutcome::Duplicate
    );
    // The files are plain JSON a person can read.
    let raw = std::fs::read_to_string(dir.path().join("inbox/keep-1.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["event"], "issue_comment");
}

/// `inbox/` holds the pending items only: a finished item's delivery moves to `inbox-finished/`
/// (where `get` still finds it until pruned), so listing pending items does not read the week
/// of finished ones. A finished item left in `inbox/` (an earlier layout at open; a process that
/// stopped between the done marker and the move, seen by a listing or a `get`) is moved on.
#[tokio::test]
async fn finished_items_leave_the_pending_directory() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let names = |sub: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let inbox = FsInbox::open(dir.path()).unwrap();
    for n in ["mv-1", "mv-2", "mv-3"] {
        inbox.put(&delivery(n, now)).await.unwrap();
    }
    inbox.mark_done(&id("mv-1")).await.unwrap();
    inbox.give_up(&id("mv-2"), "no").await.unwrap();
    assert_eq!(names("inbox"), ["mv-3.json"]);
    assert_eq!(names("inbox-finished"), ["mv-1.json", "mv-2.json"]);
    let item = inbox.get(&id("mv-1")).await.unwrap().unwrap();
    assert_eq!(item.delivery, delivery("mv-1", now));
    assert_eq!(item.state.status, ItemStatus::Done);
    assert_eq!(
        inbox
            .claim(&id("mv-2"), "w1", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Finished(ItemStatus::GaveUp)
    );
    assert_eq!(
        inbox.put(&delivery("mv-1", now)).await.unwrap(),
        PutOutcome::Duplicate
    );

    // As an earlier layout (or a crash after the marker) leaves it: back in `inbox/`.
    let back = |n: &str| {
        std::fs::rename(
            dir.path().join(format!("inbox-finished/{n}.json")),
            dir.path().join(format!("inbox/{n}.json")),
        )
        .unwrap()
    };
    back("mv-1");
    drop(inbox);
    let inbox = FsInbox::open(dir.path()).unwrap();
    assert_eq!(names("inbox"), ["mv-3.json"], "moved at open");
    back("mv-1");
    assert_eq!(inbox.pending().await.unwrap(), vec![id("mv-3")]);
    assert_eq!(names("inbox"), ["mv-3.json"], "moved by the listing");
    back("mv-2");
    let item = inbox.get(&id("mv-2")).await.unwrap().unwrap();
    assert_eq!(item.state.status, ItemStatus::GaveUp);
    assert_eq!(names("inbox"), ["mv-3.json"], "moved by a get");

    // Pruning removes a finished item's delivery from where it is kept.
    let removed = inbox
        .prune(OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert!(names("inbox-finished").is_empty());
    assert_eq!(inbox.pending().await.unwrap(), vec![id("mv-3")]);
}

/// A listing of the file-system inbox keeps what it needs of each pending item (a backlog's
/// listing is the service's peak memory): an item this process stored is known without reading
/// its file back, one another process stored is read once; the items of one thread share one copy
/// of its name, from listing to listing; a finished item leaves the listing.
#[tokio::test]
async fn fs_listings_share_thread_names_and_forget_finished_items() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = FsInbox::open(dir.path()).unwrap();
    let t0 = OffsetDateTime::now_utc();
    let on = |n: &str, issue: u32, seconds: i64| {
        let mut d = delivery(n, t0 + time::Duration::seconds(seconds));
        d.body = format!(
            r#"{{"action":"created","repository":{{"full_name":"acme/infra"}},"issue":{{"number":{issue}}}}}"#
        );
        d
    };
    // A process keeps what it stores for its listings once it lists (the worker lists at start).
    assert!(inbox.pending_entries().await.unwrap().is_empty());
    for d in [on("sh-1", 7, 0), on("sh-2", 8, 1)] {
        inbox.put(&d).await.unwrap();
    }
    // Stored by another process: read from its file.
    let other = FsInbox::open(dir.path()).unwrap();
    other.put(&on("sh-3", 7, 2)).await.unwrap();
    let thread = |entries: &[PendingEntry], n: &str| {
        entries
            .iter()
            .find(|e| e.id == id(n))
            .and_then(|e| e.thread.clone())
            .unwrap_or_else(|| panic!("{n} listed with a thread: {entries:?}"))
    };
    // What a process stored is not read back. sh-1's file made unreadable: the other process,
    // which did not store it, reads it (and lists it first, without a thread); this one lists it
    // as it stored it.
    std::fs::write(dir.path().join("inbox/sh-1.json"), "{").unwrap();
    let others = other.pending_entries().await.unwrap();
    assert_eq!(
        others[0],
        PendingEntry {
            id: id("sh-1"),
            thread: None
        }
    );
    let first = inbox.pending_entries().await.unwrap();
    assert_eq!(
        first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["sh-1", "sh-2", "sh-3"],
        "in delivery order"
    );
    assert_eq!(&*thread(&first, "sh-1"), "acme/infra#7");
    assert_eq!(&*thread(&first, "sh-2"), "acme/infra#8");
    assert!(
        Arc::ptr_eq(&thread(&first, "sh-1"), &thread(&first, "sh-3")),
        "one copy of a thread's name for its items, stored here or read"
    );
    // An item read from its file is read once: unreadable now, sh-3 is still listed as read.
    std::fs::write(dir.path().join("inbox/sh-3.json"), "{").unwrap();
    let second = inbox.pending_entries().await.unwrap();
    assert_eq!(
        second, first,
        "a later listing reuses what the first one read"
    );

    for (n, issue, at) in [("sh-1", 7, 0), ("sh-3", 7, 2)] {
        std::fs::write(
            dir.path().join(format!("inbox/{n}.json")),
            serde_json::to_vec(&on(n, issue, at)).unwrap(),
        )
        .unwrap();
    }
    inbox.mark_done(&id("sh-1")).await.unwrap();
    inbox.mark_done(&id("sh-3")).await.unwrap();
    inbox.put(&on("sh-4", 9, 3)).await.unwrap();
    let third = inbox.pending_entries().await.unwrap();
    assert_eq!(
        third.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["sh-2", "sh-4"]
    );
    inbox.put(&on("sh-5", 7, 4)).await.unwrap();
    let fourth = inbox.pending_entries().await.unwrap();
    assert_eq!(
        fourth.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["sh-2", "sh-4", "sh-5"]
    );
    assert_eq!(
        &*thread(&fourth, "sh-5"),
        "acme/infra#7",
        "a thread seen again"
    );

    // An item this process stored that another one finished, stopping before it moved the file
    // out of `inbox/` (as a crash leaves it): not pending, and moved on by the first listing.
    inbox.put(&on("sh-6", 9, 5)).await.unwrap();
    other.mark_done(&id("sh-6")).await.unwrap();
    std::fs::rename(
        dir.path().join("inbox-finished/sh-6.json"),
        dir.path().join("inbox/sh-6.json"),
    )
    .unwrap();
    let fifth = inbox.pending_entries().await.unwrap();
    assert_eq!(
        fifth.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["sh-2", "sh-4", "sh-5"]
    );
    assert!(dir.path().join("inbox-finished/sh-6.json").exists());
}

#[tokio::test]
async fn a_corrupt_item_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = FsInbox::open(dir.path()).unwrap();
    std::fs::write(dir.path().join("inbox/broken-1.json"), b"{ not json").unwrap();
    let err = inbox.get(&id("broken-1")).await.unwrap_err();
    assert!(err.to_string().contains("broken-1 is unreadable"), "{err}");
    // Files that are not items are not listed.
    std::fs::write(dir.path().join("inbox/README.txt"), b"x").unwrap();
    assert_eq!(inbox.pending().await.unwrap(), vec![id("broken-1")]);
}

/// Group commit: a journal segment left by a process that died before its `inbox/` files were
/// durable is replayed at the next open; finished-and-pruned or expired deliveries are not
/// brought back, and a torn last line (its batch was never acknowledged) is ignored.
#[tokio::test]
async fn a_dead_processs_journal_is_replayed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    {
        let inbox = FsInbox::open(dir.path()).unwrap();
        inbox.put(&delivery("gc-done", now)).await.unwrap();
        inbox.mark_done(&id("gc-done")).await.unwrap();
        // As if the machine lost the item file but the done marker survived.
        std::fs::remove_file(dir.path().join("inbox-finished/gc-done.json")).unwrap();
    }
    // Item files are not synced (the journal is): a crash can leave one linked but empty.
    std::fs::write(dir.path().join("inbox/gc-empty.json"), b"").unwrap();
    let mut journal = Vec::new();
    for d in [
        delivery("gc-lost", now),
        delivery("gc-empty", now),
        delivery("gc-done", now),
        delivery("gc-expired", now - time::Duration::days(8)),
    ] {
        journal.extend(serde_json::to_vec(&d).unwrap());
        journal.push(b'\n');
    }
    journal.extend(br#"{"id":"gc-torn","event":"issue_co"#);
    let segment = dir.path().join("inbox-journal/dead-run-000001.jsonl");
    std::fs::write(&segment, journal).unwrap();

    let inbox = FsInbox::open(dir.path()).unwrap();
    assert_eq!(
        inbox.get(&id("gc-lost")).await.unwrap().unwrap().delivery,
        delivery("gc-lost", now)
    );
    assert_eq!(
        inbox.get(&id("gc-empty")).await.unwrap().unwrap().delivery,
        delivery("gc-empty", now),
        "an item left empty is restored from its journal line"
    );
    assert_eq!(
        inbox.pending().await.unwrap(),
        vec![id("gc-empty"), id("gc-lost")]
    );
    assert!(inbox.get(&id("gc-done")).await.unwrap().is_none());
    assert!(inbox.get(&id("gc-expired")).await.unwrap().is_none());
    // The committer of the inbox that replayed it watches the segment until every delivery in it
    // is finished (checked every 5 s), then removes it.
    assert!(segment.exists(), "kept while a delivery in it is pending");
    inbox.mark_done(&id("gc-lost")).await.unwrap();
    inbox.mark_done(&id("gc-empty")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while segment.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !segment.exists(),
        "removed once every delivery in it is finished"
    );
    drop(inbox);
    let reopened = FsInbox::open(dir.path()).unwrap();
    assert_eq!(reopened.pending().await.unwrap(), Vec::<DeliveryId>::new());
    assert_eq!(
        reopened.put(&delivery("gc-lost", now)).await.unwrap(),
        PutOutcome::Duplicate
    );
}

/// A segment its committer still holds (another instance on the directory, alive) is not
/// replayed or removed by an open; each instance commits to its own segment.
#[tokio::test]
async fn a_live_journal_segment_is_left_to_its_committer() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let a = FsInbox::open(dir.path()).unwrap();
    let segments = || {
        std::fs::read_dir(dir.path().join("inbox-journal"))
            .unwrap()
            .count()
    };
    assert_eq!(segments(), 0, "no segment before the first put");
    assert_eq!(
        a.put(&delivery("live-a", now)).await.unwrap(),
        PutOutcome::Created
    );
    assert_eq!(segments(), 1);
    let b = FsInbox::open(dir.path()).unwrap();
    assert_eq!(segments(), 1, "the live segment is left alone");
    assert_eq!(
        b.put(&delivery("live-b", now)).await.unwrap(),
        PutOutcome::Created
    );
    assert_eq!(segments(), 2);
    assert_eq!(
        b.put(&delivery("live-a", now)).await.unwrap(),
        PutOutcome::Duplicate
    );
    assert_eq!(a.depth().await.unwrap(), 2);
}

/// Concurrent puts are committed in batches; each caller still gets its own outcome, a repeated
/// id within one batch included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_share_batches_and_keep_their_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let now = OffsetDateTime::now_utc();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let inbox = Arc::clone(&inbox);
        // Every id twice: one Created and one Duplicate each.
        let d = delivery(&format!("batch-{}", n / 2), now);
        tasks.spawn(async move { inbox.put(&d).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    let created = outcomes
        .iter()
        .filter(|o| **o == PutOutcome::Created)
        .count();
    assert_eq!(created, 100);
    assert_eq!(inbox.depth().await.unwrap(), 100);
    let journal: usize = std::fs::read_dir(dir.path().join("inbox-journal"))
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(journal, 100, "each new delivery journaled once");
}

// ---- the inbox on the store's object seam (S3 in production) ---------------------------------

#[tokio::test]
async fn s3_inbox_conforms() {
    let moto = crate::support::MotoServer::start();
    let bucket = crate::support::unique_bucket("inbox");
    moto.create_bucket(&bucket).await;
    let objects = tfpilot::store::S3Objects::new(moto.client(), bucket);
    // The suite races conditional writes; on moto they are made atomic as on S3.
    let serial = crate::support::SerialWrites::default();
    let inbox = tfpilot::inbox::ObjectInbox::new(serial.wrap(objects));
    inbox_conformance(&inbox).await;
}

#[tokio::test]
async fn object_inbox_on_the_fs_seam_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let objects = tfpilot::store::FsObjects::open(dir.path()).unwrap();
    let inbox = tfpilot::inbox::ObjectInbox::new(Arc::new(objects));
    inbox_conformance(&inbox).await;
}

/// A finisher stopped between its two writes (killed, or the marker write failed) leaves the
/// state saying done and no done marker: `pending` still lists the item and every worker skips a
/// finished item, so before the repair in `get` it stayed pending forever (the two-instance
/// test's "did not drain" with one item `Done, lease: None` still listed).
#[tokio::test]
async fn an_item_finished_without_its_done_marker_leaves_pending_at_the_next_drain() {
    use tfpilot::store::objects::Objects as _;
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(tfpilot::store::FsObjects::open(dir.path()).unwrap());
    let inbox = Arc::new(tfpilot::inbox::ObjectInbox::new(objects.clone()));
    let stuck = id("finished-unmarked");
    inbox
        .put(&delivery("finished-unmarked", OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let Claim::Claimed(mut state) = inbox
        .claim(&stuck, "killed-instance", Duration::from_secs(600))
        .await
        .unwrap()
    else {
        panic!("a new item is claimable");
    };
    // The first of `finish`'s two writes; the process dies before the second (the marker).
    let key = "inbox-state/finished-unmarked.json";
    let current = objects.get(key).await.unwrap().expect("the claim's state");
    state.status = ItemStatus::Done;
    state.lease = None;
    objects
        .put_if_match(key, serde_json::to_vec(&state).unwrap(), &current.etag)
        .await
        .unwrap();
    assert_eq!(inbox.pending().await.unwrap(), vec![stuck.clone()]);

    let handler = Arc::new(crate::worker::RecordingHandler::default());
    let report = tfpilot::worker::Worker::new(inbox.clone(), handler.clone())
        .drain()
        .await
        .unwrap();
    assert_eq!((report.skipped, report.done), (1, 0), "{report:?}");
    assert!(
        handler.handled_ids().is_empty(),
        "a finished item is not handled again"
    );
    assert_eq!(
        inbox.pending().await.unwrap(),
        Vec::<DeliveryId>::new(),
        "the drain wrote the missing marker"
    );
    assert!(
        objects
            .get("inbox-done/finished-unmarked.json")
            .await
            .unwrap()
            .is_some()
    );
    let item = inbox.get(&stuck).await.unwrap().unwrap();
    assert_eq!(
        (item.state.status, item.state.attempts),
        (ItemStatus::Done, 1)
    );
}

#[tokio::test]
async fn s3_inboxes_on_one_bucket_create_each_delivery_once_and_keep_progress_apart() {
    let moto = crate::support::MotoServer::start();
    let bucket = crate::support::unique_bucket("inbox");
    moto.create_bucket(&bucket).await;
    // moto checks a condition and then writes without a lock, so two racing conditional writes
    // can both succeed there where S3 lets only one: its writes are serialized (as S3 does).
    let serial = crate::support::SerialWrites::default();
    let inboxes: Vec<Arc<tfpilot::inbox::ObjectInbox>> = (0..4)
        .map(|_| {
            let objects = tfpilot::store::S3Objects::new(moto.client(), bucket.clone());
            Arc::new(tfpilot::inbox::ObjectInbox::new(serial.wrap(objects)))
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..10 {
        for inbox in &inboxes {
            let inbox = Arc::clone(inbox);
            let d = delivery(&format!("race-{round}"), now);
            tasks.spawn(async move { inbox.put(&d).await.unwrap() });
        }
    }
    let mut created = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap() == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(
        created, 10,
        "each of 10 ids created exactly once by 4 racing instances"
    );

    // Racing claims from four instances: one wins; failures recorded by racing holders all
    // land (compare-and-swap on the state).
    let target = id("race-0");
    let mut tasks = tokio::task::JoinSet::new();
    for (n, inbox) in inboxes.iter().enumerate() {
        for m in 0..3 {
            let inbox = Arc::clone(inbox);
            let target = target.clone();
            tasks.spawn(async move {
                inbox
                    .claim(&target, &format!("w{n}-{m}"), Duration::from_secs(60))
                    .await
            });
        }
    }
    let mut won = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Claim::Claimed(state) = r.unwrap().unwrap() {
            won.push(state);
        }
    }
    assert_eq!(
        won.len(),
        1,
        "exactly one of 12 racing claims wins: {won:?}"
    );
    let item = inboxes[0].get(&target).await.unwrap().unwrap();
    assert_eq!(item.state.attempts, 1);
    assert_eq!(item.state.status, ItemStatus::Pending);

    // Progress is kept apart from the items, so the worker's S3 trigger (inbox/*.json) fires once
    // per delivery and never for a state change.
    inboxes[1].mark_done(&target).await.unwrap();
    let listed = moto
        .client()
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("inbox/")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.ends_with(".json") && !k["inbox/".len()..].contains('/'))
    );
    assert_eq!(inboxes[2].depth().await.unwrap(), 9);
}

/// An item's state (attempts, lease) is written without `fsync`, so a machine that lost power
/// can leave it empty: the item stays pending and is claimed again, counting from 0; the done
/// marker, written with `fsync`, still finishes it.
#[tokio::test]
async fn an_item_state_a_power_loss_emptied_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    {
        let inbox = FsInbox::open(dir.path()).unwrap();
        inbox.put(&delivery("lost-1", now)).await.unwrap();
        inbox
            .claim(&id("lost-1"), "w1", Duration::from_secs(600))
            .await
            .unwrap();
    }
    let state = dir.path().join("inbox-state/lost-1.json");
    assert!(state.exists(), "the claim wrote a state");
    std::fs::write(&state, b"").unwrap();
    let inbox = FsInbox::open(dir.path()).unwrap();
    assert_eq!(inbox.pending().await.unwrap(), vec![id("lost-1")]);
    assert_eq!(state_of(&inbox, "lost-1").await.attempts, 0);
    // w1's lease went with the state: another worker claims at once.
    match inbox
        .claim(&id("lost-1"), "w2", Duration::from_secs(60))
        .await
        .unwrap()
    {
        Claim::Claimed(s) => assert_eq!(s.attempts, 1),
        other => panic!("not claimed: {other:?}"),
    }
    inbox.mark_done(&id("lost-1")).await.unwrap();
    assert!(inbox.pending().await.unwrap().is_empty());
    assert!(dir.path().join("inbox-done/lost-1.json").exists());
}
