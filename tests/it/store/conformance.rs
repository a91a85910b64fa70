//! The conformance suite every `RequestStore` backend must pass. Each case takes a fresh
//! [`Target`]; `conformance_suite!(make_target)` turns every case into one test of the backend's
//! module, so a failing case names itself and does not hide the others.

use std::collections::BTreeSet;
use std::sync::Arc;

use tfpilot::domain::{
    ChatRole, ChatTurn, LifecycleEvent, ListFilter, PullRequestRef, RequestStatus, RunKind,
    RunRecord,
};
use tfpilot::ids::RequestId;
use tfpilot::store::layout::{chat_log, events_log, history_key, request_key, thread_key};
use tfpilot::store::{RequestStoreExt, RetryPolicy, StoreError, UpdateError};
use time::OffsetDateTime;

use super::{Target, new_request, repo};

macro_rules! conformance_suite {
    ($make:path) => {
        conformance_suite!(@cases $make;
            create_then_get_round_trips,
            create_refuses_an_existing_id,
            put_if_version_is_compare_and_swap,
            update_applies_the_change_and_skips_no_ops,
            update_returns_the_refusal_untouched,
            update_of_a_missing_request_is_not_found,
            concurrent_updates_lose_nothing,
            one_active_request_per_thread,
            pull_request_thread_points_at_the_same_request,
            dangling_thread_binding_is_taken_over_only_when_stale,
            a_dangling_binding_is_a_create_in_progress_then_absent,
            archive_moves_to_history_and_frees_the_threads,
            archive_refuses_a_request_changed_since_read,
            racing_archives_archive_once,
            interrupted_archive_is_completed_by_the_next_one,
            a_stale_history_copy_never_stands_in_for_a_live_request,
            list_filters_by_status_env_module_project,
            chat_log_keeps_turns_in_order_in_its_own_place,
            lifecycle_events_record_every_transition,
            corrupt_request_is_a_clear_error_naming_the_object,
            corrupt_logs_and_index_are_clear_errors,
            unknown_fields_survive_an_update,
            a_comment_is_recorded_once_and_kept,
            the_dashboard_record_is_created_once_and_compared_on_write,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let target = $make().await;
                $crate::store::conformance::$case(&target).await;
            }
        )*
    };
}

fn turn(author: &str, text: &str) -> ChatTurn {
    ChatTurn {
        at: OffsetDateTime::now_utc(),
        author: author.into(),
        role: if author == "tfpilot" {
            ChatRole::Assistant
        } else {
            ChatRole::User
        },
        text: text.into(),
        extracted: None,
        comment_id: None,
    }
}

fn set_status(r: &mut tfpilot::domain::Request, status: RequestStatus, event: &str) {
    r.status = status;
    r.record(OffsetDateTime::now_utc(), "octocat", event, None);
}

pub async fn create_then_get_round_trips(t: &Target) {
    let mut request = new_request(1);
    request.runs.insert(
        RunKind::Plan,
        RunRecord {
            run_id: Some(99),
            conclusion: Some(tfpilot::domain::RunOutcome::Success),
            ..RunRecord::default()
        },
    );
    let created = t.store.create(request.clone()).await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.schema_version, 1);
    let got = t.store.get(request.id).await.unwrap().expect("stored");
    assert_eq!(got.value(), created.value());
    assert_eq!(got.etag(), created.etag());
    assert_eq!(got.runs[&RunKind::Plan].run_id, Some(99));
    assert_eq!(got.inputs["name"], "invoices");
    assert!(
        t.store
            .get(RequestId::new_random())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.records
            .get(&request_key(request.id))
            .await
            .unwrap()
            .is_some(),
        "requests/<id>.json holds it"
    );
}

pub async fn create_refuses_an_existing_id(t: &Target) {
    let first = new_request(1);
    t.store.create(first.clone()).await.unwrap();
    // Same id, another thread: the id is taken, and the other thread is not left bound.
    let mut again = first.clone();
    again.issue_number = 2;
    again.requester = "mallory".into();
    let err = t.store.create(again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(id) if id == first.id),
        "{err:?}"
    );
    assert!(t.store.find_by_thread(&repo(), 2).await.unwrap().is_none());
    // Same id, same thread.
    let err = t.store.create(first.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let stored = t.store.get(first.id).await.unwrap().unwrap();
    assert_eq!(stored.requester, "octocat", "the original is untouched");
    let found = t.store.find_by_thread(&repo(), 1).await.unwrap().unwrap();
    assert_eq!(found.id, first.id, "the original keeps its thread");
}

pub async fn put_if_version_is_compare_and_swap(t: &Target) {
    let v1 = t.store.create(new_request(1)).await.unwrap();
    let mut next = v1.value().clone();
    next.branch = Some("request/x".into());
    let v2 = t.store.put_if_version(&v1, next.clone()).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_ne!(v2.etag(), v1.etag());
    assert!(v2.updated_at >= v1.updated_at);
    // A writer still holding version 1 is refused, and nothing changes.
    next.branch = Some("request/stale".into());
    let err = t.store.put_if_version(&v1, next).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { version: 1, .. }),
        "{err:?}"
    );
    let now = t.store.get(v1.id).await.unwrap().unwrap();
    assert_eq!(now.branch.as_deref(), Some("request/x"));
    assert_eq!(now.version, 2);
    // Changing the id is refused.
    let mut other = now.value().clone();
    other.id = RequestId::new_random();
    assert!(matches!(
        t.store.put_if_version(&now, other).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn update_applies_the_change_and_skips_no_ops(t: &Target) {
    let id = t.store.create(new_request(1)).await.unwrap().id;
    let updated = t
        .store
        .update(id, |r| {
            r.revision += 1;
            Ok::<_, std::convert::Infallible>(r.revision)
        })
        .await
        .unwrap();
    assert_eq!(updated.output, 1);
    assert!(updated.written);
    assert_eq!(updated.attempts, 1);
    assert_eq!(updated.request.version, 2);
    let same = t
        .store
        .update(id, |_| Ok::<_, std::convert::Infallible>(()))
        .await
        .unwrap();
    assert!(!same.written);
    assert_eq!(same.request.version, 2, "a no-op writes nothing");
    assert_eq!(t.store.get(id).await.unwrap().unwrap().version, 2);
}

#[derive(Debug, PartialEq)]
struct NotAllowed {
    login: String,
}

pub async fn update_returns_the_refusal_untouched(t: &Target) {
    let id = t.store.create(new_request(1)).await.unwrap().id;
    let result = t
        .store
        .update(id, |r| {
            r.status = RequestStatus::Applying; // changed, then refused: must not be written
            Err::<(), _>(NotAllowed {
                login: "mallory".into(),
            })
        })
        .await;
    match result {
        Err(UpdateError::Refused(e)) => assert_eq!(
            e,
            NotAllowed {
                login: "mallory".into()
            }
        ),
        other => panic!("expected the closure's refusal, got {other:?}"),
    }
    let stored = t.store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.status),
        (1, RequestStatus::Collecting)
    );
}

pub async fn update_of_a_missing_request_is_not_found(t: &Target) {
    let id = RequestId::new_random();
    let result = t
        .store
        .update(id, |r| {
            r.revision += 1;
            Ok::<_, std::convert::Infallible>(())
        })
        .await;
    assert!(
        matches!(result, Err(UpdateError::Store(StoreError::NotFound(missing))) if missing == id),
        "{result:?}"
    );
}

pub async fn concurrent_updates_lose_nothing(t: &Target) {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 50;
    let id = t.store.create(new_request(1)).await.unwrap().id;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&t.store);
        tasks.spawn(async move {
            let mut attempts = 0;
            // (version written, revision written, attempts, task): should an increment be lost,
            // the message says whether two writes were reported on the same version (two
            // conditional writes both succeeded, or a refused one was taken for landed) or a
            // reported version is missing.
            let mut writes = Vec::new();
            for _ in 0..INCREMENTS {
                // What is tested is that no write is lost, not the retry budget: on S3 the
                // conditional writes are serialized (moto would otherwise let two racing writes
                // both succeed), which makes 8-way contention slower than the default budget.
                let patient = RetryPolicy {
                    max_attempts: 500,
                    ..RetryPolicy::default()
                };
                let done = store
                    .update_with(id, patient, |r| {
                        r.revision += 1;
                        Ok::<_, std::convert::Infallible>(())
                    })
                    .await
                    .expect("update under contention");
                assert!(done.written);
                attempts += u64::from(done.attempts);
                writes.push((
                    done.request.version,
                    done.request.revision,
                    done.attempts,
                    task,
                ));
            }
            (attempts, writes)
        });
    }
    let mut attempts = 0;
    let mut writes = Vec::new();
    for (a, w) in tasks.join_all().await {
        attempts += a;
        writes.extend(w);
    }
    writes.sort_unstable();
    let repeated: Vec<_> = writes
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .flat_map(|w| [w[0], w[1]])
        .collect();
    let stored = t.store.get(id).await.unwrap().unwrap();
    assert!(
        repeated.is_empty(),
        "two writes reported on one version, (version, revision, attempts, task): {repeated:?}; \
         stored version {}, revision {}",
        stored.version,
        stored.revision
    );
    assert_eq!(stored.revision, TASKS * INCREMENTS, "no increment lost");
    assert_eq!(
        stored.version,
        1 + TASKS * INCREMENTS,
        "one version per write"
    );
    eprintln!(
        "{} updates, {} retries after conflicts",
        TASKS * INCREMENTS,
        attempts - TASKS * INCREMENTS
    );
}

pub async fn one_active_request_per_thread(t: &Target) {
    let first = t.store.create(new_request(7)).await.unwrap();
    let err = t.store.create(new_request(7)).await.unwrap_err();
    match &err {
        StoreError::ThreadTaken {
            repo: r,
            number,
            existing,
        } => assert_eq!((r, *number, *existing), (&repo(), 7, first.id)),
        other => panic!("expected ThreadTaken, got {other:?}"),
    }
    assert!(err.to_string().contains("acme/core-terraform#7"), "{err}");
    // Another issue in the same repo is independent.
    t.store.create(new_request(8)).await.unwrap();
    // Once the first is cancelled, the thread takes a new request.
    t.store
        .update(first.id, |r| {
            set_status(r, RequestStatus::Cancelled, "cancel");
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    let second = t.store.create(new_request(7)).await.unwrap();
    let found = t.store.find_by_thread(&repo(), 7).await.unwrap().unwrap();
    assert_eq!(found.id, second.id);
    // Two creators racing for one fresh thread: exactly one wins.
    let (a, b) = tokio::join!(
        t.store.create(new_request(9)),
        t.store.create(new_request(9))
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} / {b:?}"
    );
    let loser = if a.is_ok() { b } else { a };
    assert!(
        matches!(loser, Err(StoreError::ThreadTaken { .. })),
        "{loser:?}"
    );
}

pub async fn pull_request_thread_points_at_the_same_request(t: &Target) {
    let created = t.store.create(new_request(3)).await.unwrap();
    let id = created.id;
    t.store
        .update(id, |r| {
            r.pull_request = Some(PullRequestRef {
                number: 31,
                url: "https://github.com/acme/core-terraform/pull/31".into(),
                head_sha: "abc123".into(),
                merged: false,
                merge_commit_sha: None,
            });
            set_status(r, RequestStatus::PrOpen, "submit");
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    t.store.bind_thread(&repo(), 31, id).await.unwrap();
    t.store.bind_thread(&repo(), 31, id).await.unwrap(); // idempotent
    let via_pr = t.store.find_by_thread(&repo(), 31).await.unwrap().unwrap();
    let via_issue = t.store.find_by_thread(&repo(), 3).await.unwrap().unwrap();
    assert_eq!((via_pr.id, via_issue.id), (id, id));
    assert_eq!(via_pr.status, RequestStatus::PrOpen);
    // Another active request cannot claim the PR.
    let other = t.store.create(new_request(4)).await.unwrap();
    let err = t
        .store
        .bind_thread(&repo(), 31, other.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ThreadTaken { existing, .. } if existing == id),
        "{err:?}"
    );
    // Release only by its owner.
    assert!(!t.store.release_thread(&repo(), 31, other.id).await.unwrap());
    assert!(t.store.release_thread(&repo(), 31, id).await.unwrap());
    assert!(t.store.find_by_thread(&repo(), 31).await.unwrap().is_none());
    assert!(!t.store.release_thread(&repo(), 31, id).await.unwrap());
}

pub async fn dangling_thread_binding_is_taken_over_only_when_stale(t: &Target) {
    // What a crash between the two steps of `create` leaves: a binding to a request that was
    // never written.
    let ghost = RequestId::new_random();
    let plant = |number: u64, age: time::Duration| {
        let body = serde_json::to_vec(&serde_json::json!({
            "request_id": ghost,
            "bound_at": (OffsetDateTime::now_utc() - age)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        }))
        .unwrap();
        let records = Arc::clone(&t.records);
        async move {
            records
                .put_if_absent(&thread_key(&repo(), number), body)
                .await
                .unwrap();
        }
    };
    plant(20, time::Duration::seconds(5)).await;
    plant(21, time::Duration::hours(1)).await;
    let err = t.store.create(new_request(20)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ThreadTaken { existing, .. } if existing == ghost),
        "a fresh binding may be a create in progress: {err:?}"
    );
    let taken_over = t.store.create(new_request(21)).await.unwrap();
    let found = t.store.find_by_thread(&repo(), 21).await.unwrap().unwrap();
    assert_eq!(found.id, taken_over.id);
}

pub async fn a_dangling_binding_is_a_create_in_progress_then_absent(t: &Target) {
    // A crash between binding the thread and writing the request: readers are told to come
    // back while it may still be a create in progress, then the thread counts as free (and the
    // binding is removed), never as "another request's" for long.
    let ghost = RequestId::new_random();
    let plant = |number: u64, age: time::Duration| {
        let body = serde_json::to_vec(&serde_json::json!({
            "request_id": ghost,
            "bound_at": (OffsetDateTime::now_utc() - age)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        }))
        .unwrap();
        let records = Arc::clone(&t.records);
        async move {
            records
                .put_if_absent(&thread_key(&repo(), number), body)
                .await
                .unwrap();
        }
    };
    plant(24, time::Duration::seconds(5)).await;
    plant(25, time::Duration::minutes(2)).await;
    let young = t.store.find_by_thread(&repo(), 24).await.unwrap_err();
    assert!(
        matches!(young, StoreError::Creating { id, number: 24, .. } if id == ghost),
        "a fresh binding to nothing is a create in progress: {young:?}"
    );
    assert!(
        t.store.find_by_thread(&repo(), 25).await.unwrap().is_none(),
        "an old binding to nothing is no request"
    );
    assert!(
        t.records
            .get(&thread_key(&repo(), 25))
            .await
            .unwrap()
            .is_none(),
        "the dangling binding was removed"
    );
    // The resumed create of the ghost (same id) still completes on its own thread.
    let mut resumed = new_request(24);
    resumed.id = ghost;
    t.store.create(resumed).await.unwrap();
    let found = t.store.find_by_thread(&repo(), 24).await.unwrap().unwrap();
    assert_eq!(found.id, ghost);
}

pub async fn archive_moves_to_history_and_frees_the_threads(t: &Target) {
    let created = t.store.create(new_request(5)).await.unwrap();
    let id = created.id;
    let destroyed = t
        .store
        .update(id, |r| {
            r.pull_request = Some(PullRequestRef {
                number: 55,
                url: "u".into(),
                head_sha: "s".into(),
                merged: true,
                merge_commit_sha: None,
            });
            set_status(r, RequestStatus::Destroyed, "destroy_finished");
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap()
        .request;
    t.store.bind_thread(&repo(), 55, id).await.unwrap();
    let archived = t.store.archive(&destroyed).await.unwrap();
    assert!(archived.archived_at.is_some());
    assert_eq!(archived.version, destroyed.version);
    assert!(t.store.get(id).await.unwrap().is_none(), "no longer live");
    assert!(t.records.get(&request_key(id)).await.unwrap().is_none());
    let from_history = t.store.get_archived(id).await.unwrap().expect("in history");
    assert_eq!(from_history, archived);
    assert!(t.records.get(&history_key(id)).await.unwrap().is_some());
    for thread in [5, 55] {
        assert!(
            t.records
                .get(&thread_key(&repo(), thread))
                .await
                .unwrap()
                .is_none(),
            "thread #{thread} released"
        );
    }
    t.store.create(new_request(5)).await.unwrap();
    // Archiving again from the same read is a conflict: it is gone.
    assert!(matches!(
        t.store.archive(&destroyed).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(t.store.get_archived(id).await.unwrap().unwrap(), archived);
}

pub async fn archive_refuses_a_request_changed_since_read(t: &Target) {
    let read = t.store.create(new_request(6)).await.unwrap();
    let id = read.id;
    // Someone updates after our read…
    t.store
        .update(id, |r| {
            r.revision += 1;
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    // …so archiving what we read must fail and leave everything as it was.
    let err = t.store.archive(&read).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { id: i, version: 1 } if i == id),
        "{err:?}"
    );
    let live = t.store.get(id).await.unwrap().expect("still live");
    assert_eq!((live.version, live.revision), (2, 1));
    assert!(
        t.store.get_archived(id).await.unwrap().is_none(),
        "no history copy"
    );
    assert!(t.records.get(&history_key(id)).await.unwrap().is_none());
    let found = t.store.find_by_thread(&repo(), 6).await.unwrap().unwrap();
    assert_eq!(found.id, id, "thread still bound");
    // With a fresh read it works.
    t.store.archive(&live).await.unwrap();
    assert_eq!(t.store.get_archived(id).await.unwrap().unwrap().revision, 1);
}

pub async fn racing_archives_archive_once(t: &Target) {
    let read = t.store.create(new_request(12)).await.unwrap();
    let (a, b) = tokio::join!(t.store.archive(&read), t.store.archive(&read));
    let won: Vec<_> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().ok())
        .collect();
    assert_eq!(won.len(), 1, "{a:?} / {b:?}");
    let lost = if a.is_ok() { &b } else { &a };
    assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{lost:?}");
    assert!(t.store.get(read.id).await.unwrap().is_none());
    let stored = t.store.get_archived(read.id).await.unwrap().unwrap();
    assert_eq!(stored.version, read.version);
    assert!(t.store.find_by_thread(&repo(), 12).await.unwrap().is_none());
}

pub async fn interrupted_archive_is_completed_by_the_next_one(t: &Target) {
    // A crash after step 1 of an earlier archive left an older copy in history.
    let v1 = t.store.create(new_request(10)).await.unwrap();
    let mut stale = v1.value().clone();
    stale.archived_at = Some(OffsetDateTime::now_utc());
    t.records
        .put_if_absent(&history_key(v1.id), serde_json::to_vec(&stale).unwrap())
        .await
        .unwrap();
    let v2 = t
        .store
        .update(v1.id, |r| {
            set_status(r, RequestStatus::Cancelled, "cancel");
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap()
        .request;
    // Live wins over the stale copy in listings.
    let all = t
        .store
        .list(&ListFilter {
            include_archived: true,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, RequestStatus::Cancelled);
    assert!(all[0].archived_at.is_none());
    let archived = t.store.archive(&v2).await.unwrap();
    let stored = t.store.get_archived(v1.id).await.unwrap().unwrap();
    assert_eq!(stored, archived);
    assert_eq!(
        (stored.version, stored.status),
        (2, RequestStatus::Cancelled)
    );

    // Interrupted after copying this very version: the copy is kept, the live object goes.
    let live = t.store.create(new_request(11)).await.unwrap();
    let mut copy = live.value().clone();
    copy.archived_at = Some(OffsetDateTime::now_utc() - time::Duration::minutes(3));
    t.records
        .put_if_absent(&history_key(live.id), serde_json::to_vec(&copy).unwrap())
        .await
        .unwrap();
    let archived = t.store.archive(&live).await.unwrap();
    assert_eq!(archived.archived_at, copy.archived_at);
    assert_eq!(t.store.get_archived(live.id).await.unwrap().unwrap(), copy);
    assert!(t.store.get(live.id).await.unwrap().is_none());
}

pub async fn a_stale_history_copy_never_stands_in_for_a_live_request(t: &Target) {
    // An interrupted archive copied the request to history; it lives on, in another status.
    let live = t.store.create(new_request(12)).await.unwrap();
    let mut stale = live.value().clone();
    stale.status = RequestStatus::Cancelled;
    stale.archived_at = Some(OffsetDateTime::now_utc());
    t.records
        .put_if_absent(&history_key(live.id), serde_json::to_vec(&stale).unwrap())
        .await
        .unwrap();
    // A filter that the live request does not match must not return the stale copy instead.
    let cancelled = t
        .store
        .list(&ListFilter {
            statuses: vec![RequestStatus::Cancelled],
            include_archived: true,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(
        cancelled.is_empty(),
        "the stale copy was listed as an archived, cancelled request: {cancelled:?}"
    );
}

pub async fn list_filters_by_status_env_module_project(t: &Target) {
    let a = t.store.create(new_request(1)).await.unwrap();
    let mut b = new_request(2);
    b.environment = Some("prod".into());
    b.module_type = "sqs-queue".into();
    let b = t.store.create(b).await.unwrap();
    let mut c = new_request(3);
    c.project = Some("search".into());
    let c = t.store.create(c).await.unwrap();
    t.store
        .update(c.id, |r| {
            set_status(r, RequestStatus::Planned, "plan_finished");
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    let d = t.store.create(new_request(4)).await.unwrap();
    t.store.archive(&d).await.unwrap();

    let ids = |filter: ListFilter| async move {
        t.store
            .list(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<BTreeSet<_>>()
    };
    let set = |xs: &[RequestId]| xs.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(ids(ListFilter::default()).await, set(&[a.id, b.id, c.id]));
    assert_eq!(
        ids(ListFilter {
            include_archived: true,
            ..ListFilter::default()
        })
        .await,
        set(&[a.id, b.id, c.id, d.id])
    );
    assert_eq!(
        ids(ListFilter {
            statuses: vec![RequestStatus::Planned],
            ..ListFilter::default()
        })
        .await,
        set(&[c.id])
    );
    assert_eq!(
        ids(ListFilter {
            environment: Some("prod".into()),
            ..ListFilter::default()
        })
        .await,
        set(&[b.id])
    );
    assert_eq!(
        ids(ListFilter {
            module_type: Some("s3-bucket".into()),
            ..ListFilter::default()
        })
        .await,
        set(&[a.id, c.id])
    );
    assert_eq!(
        ids(ListFilter {
            project: Some("search".into()),
            ..ListFilter::default()
        })
        .await,
        set(&[c.id])
    );
    let listed = t.store.list(&ListFilter::default()).await.unwrap();
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at),
        "oldest first"
    );
}

pub async fn chat_log_keeps_turns_in_order_in_its_own_place(t: &Target) {
    let id = t.store.create(new_request(1)).await.unwrap().id;
    let other = t.store.create(new_request(2)).await.unwrap().id;
    let mut expected = Vec::new();
    for (i, (author, text)) in [
        ("octocat", "/tfpilot new s3-bucket env=dev name=invoices"),
        ("tfpilot", "Got it. Versioning?"),
        ("octocat", "turn versioning on,\nkeep objects 30 days"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut turn = turn(author, text);
        turn.comment_id = Some(i as u64);
        if author == "tfpilot" {
            turn.extracted = Some(serde_json::json!({"versioning": true}));
        }
        t.store.append_chat(id, &turn).await.unwrap();
        expected.push(turn);
    }
    t.store
        .append_chat(other, &turn("hubot", "other request"))
        .await
        .unwrap();
    assert_eq!(t.store.chat(id).await.unwrap(), expected);
    assert_eq!(t.store.chat(other).await.unwrap().len(), 1);
    assert!(
        t.store
            .chat(RequestId::new_random())
            .await
            .unwrap()
            .is_empty()
    );
    // Chat turns live in the chat-log place only, never next to the requests.
    assert_eq!(t.chat.read_log(&chat_log(id)).await.unwrap().len(), 3);
    let in_records = t.records.list("chat/").await.unwrap();
    let chat_location = t.chat.location();
    if t.records.location() != chat_location {
        assert!(
            in_records.is_empty(),
            "chat in the requests bucket: {in_records:?}"
        );
    }
    for prefix in ["requests/", "history/", "index/", "events/"] {
        for key in t.records.list(prefix).await.unwrap() {
            let body = t.records.get(&key).await.unwrap().unwrap().body;
            assert!(
                !String::from_utf8_lossy(&body).contains("keep objects 30 days"),
                "chat text leaked into {key}"
            );
        }
    }
}

pub async fn lifecycle_events_record_every_transition(t: &Target) {
    let created = t.store.create(new_request(1)).await.unwrap();
    let id = created.id;
    let steps = [
        (RequestStatus::Ready, "inputs_complete"),
        (RequestStatus::PrOpen, "submit"),
        (RequestStatus::Planning, "plan_dispatched"),
    ];
    for (status, event) in steps {
        t.store
            .update(id, |r| {
                set_status(r, status, event);
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();
    }
    // A change without a status change is not a transition.
    let last = t
        .store
        .update(id, |r| {
            r.revision += 1;
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap()
        .request;
    t.store
        .append_event(&LifecycleEvent {
            at: OffsetDateTime::now_utc(),
            request_id: id,
            version: last.version,
            kind: "note".into(),
            from: None,
            to: None,
            actor: Some("ops".into()),
            cause: None,
            detail: Some("manual note".into()),
        })
        .await
        .unwrap();
    t.store.archive(&last).await.unwrap();

    let events = t.store.events(id).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "status_changed",
            "status_changed",
            "status_changed",
            "note",
            "archived"
        ]
    );
    assert_eq!(events[0].to, Some(RequestStatus::Collecting));
    for (event, (to, cause)) in events[1..4].iter().zip(steps) {
        assert_eq!(event.to, Some(to));
        assert_eq!(event.cause.as_deref(), Some(cause));
        assert_eq!(event.actor.as_deref(), Some("octocat"));
    }
    assert_eq!(events[1].from, Some(RequestStatus::Collecting));
    assert_eq!(
        events[1..4].iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert!(events.iter().all(|e| e.request_id == id));
    assert!(
        t.store
            .events(RequestId::new_random())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.records.read_log(&events_log(id)).await.unwrap().len(), 6);
}

pub async fn corrupt_request_is_a_clear_error_naming_the_object(t: &Target) {
    type Body = Box<dyn Fn(RequestId) -> Vec<u8>>;
    let cases: [(&str, Body, &str); 4] = [
        (
            "not json",
            Box::new(|_| b"{\"id\": \"trunc".to_vec()),
            "EOF",
        ),
        (
            "unknown shape",
            Box::new(|_| br#"{"hello": "world"}"#.to_vec()),
            "missing field",
        ),
        (
            "newer schema",
            Box::new(|id| {
                let mut r = new_request(1);
                r.id = id;
                r.schema_version = 2;
                serde_json::to_vec(&r).unwrap()
            }),
            "newer TfPilot",
        ),
        (
            "another id",
            Box::new(|_| serde_json::to_vec(&new_request(1)).unwrap()),
            "under another id",
        ),
    ];
    for (what, body, expected_reason) in cases {
        let id = RequestId::new_random();
        let key = request_key(id);
        let bytes = body(id);
        t.records.put_if_absent(&key, bytes.clone()).await.unwrap();
        let object = t.records.describe(&key);
        assert!(object.contains(&key), "{object}");
        let expect_corrupt = |err: StoreError| {
            let text = err.to_string();
            match err {
                StoreError::Corrupt { object: o, reason } if o == object => assert!(
                    reason.contains(expected_reason) && text.contains(&object),
                    "{what}: {text}"
                ),
                other => panic!("{what}: expected Corrupt naming {object}, got {other:?}"),
            }
        };
        expect_corrupt(t.store.get(id).await.unwrap_err());
        match t
            .store
            .update(id, |r| {
                r.revision += 1;
                Ok::<_, std::convert::Infallible>(())
            })
            .await
        {
            Err(UpdateError::Store(e)) => expect_corrupt(e),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        expect_corrupt(t.store.list(&ListFilter::default()).await.unwrap_err());
        // Never reset: the object is exactly as it was.
        let stored = t.records.get(&key).await.unwrap().unwrap();
        assert_eq!(stored.body, bytes, "{what}: object rewritten");
        let removed = t.records.delete_if_match(&key, &stored.etag).await;
        assert!(removed.is_ok(), "{what}: {removed:?}");
    }
}

pub async fn corrupt_logs_and_index_are_clear_errors(t: &Target) {
    let id = t.store.create(new_request(1)).await.unwrap().id;
    t.store
        .append_chat(id, &turn("octocat", "hi"))
        .await
        .unwrap();
    t.chat
        .append(&chat_log(id), b"{\"at\": 12}".to_vec())
        .await
        .unwrap();
    let err = t.store.chat(id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { object, .. } if object.contains(&chat_log(id))),
        "{err:?}"
    );
    t.records
        .append(&events_log(id), b"garbage".to_vec())
        .await
        .unwrap();
    let err = t.store.events(id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { object, .. } if object.contains(&events_log(id))),
        "{err:?}"
    );
    let key = thread_key(&repo(), 77);
    t.records.put_if_absent(&key, b"[]".to_vec()).await.unwrap();
    let err = t.store.find_by_thread(&repo(), 77).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { object, .. } if *object == t.records.describe(&key)),
        "{err:?}"
    );
    let err = t.store.create(new_request(77)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        t.records.get(&key).await.unwrap().unwrap().body,
        b"[]",
        "index object left as it was"
    );
}

pub async fn unknown_fields_survive_an_update(t: &Target) {
    // A newer TfPilot (same schema version) wrote a field this build does not know.
    let request = new_request(1);
    let id = request.id;
    let mut json = serde_json::to_value(&request).unwrap();
    json["version"] = 1.into();
    json["added_later"] = serde_json::json!({"kept": true});
    t.records
        .put_if_absent(&request_key(id), serde_json::to_vec(&json).unwrap())
        .await
        .unwrap();
    t.store
        .update(id, |r| {
            r.revision = 5;
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    let raw = t.records.get(&request_key(id)).await.unwrap().unwrap().body;
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json["added_later"]["kept"], true);
    assert_eq!(
        (json["revision"].as_u64(), json["version"].as_u64()),
        (Some(5), Some(2))
    );
}

/// A decided comment is recorded once (create-only, whatever races it), case-insensitively by
/// repository, and the first record is what every later attempt gets back.
pub async fn a_comment_is_recorded_once_and_kept(t: &Target) {
    use tfpilot::store::CommentRecord;
    let store = &t.store;
    let repo = repo();
    let upper: tfpilot::ids::RepoName = repo.to_string().to_uppercase().parse().unwrap();
    assert_eq!(store.comment_record(&repo, 77).await.unwrap(), None);
    let id = RequestId::new_random();
    let first = CommentRecord {
        request: Some(id),
        answer: None,
        at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    };
    let attempts = (0..4).map(|i| {
        let store = store.clone();
        let repo = repo.clone();
        let record = CommentRecord {
            request: (i == 0).then_some(id),
            answer: (i != 0).then(|| format!("answer {i}")),
            at: first.at,
        };
        tokio::spawn(async move { store.record_comment(&repo, 77, &record).await.unwrap() })
    });
    let mut wrote = 0;
    let mut seen = Vec::new();
    for a in attempts {
        match a.await.unwrap() {
            None => wrote += 1,
            Some(r) => seen.push(r),
        }
    }
    assert_eq!(wrote, 1, "exactly one attempt writes the record");
    let kept = store
        .comment_record(&upper, 77)
        .await
        .unwrap()
        .expect("kept");
    assert!(seen.iter().all(|r| *r == kept), "{seen:?} vs {kept:?}");
    assert_eq!(store.comment_record(&repo, 78).await.unwrap(), None);
    let other: tfpilot::ids::RepoName = "acme/other".parse().unwrap();
    assert_eq!(store.comment_record(&other, 77).await.unwrap(), None);
}

pub async fn the_dashboard_record_is_created_once_and_compared_on_write(t: &Target) {
    use tfpilot::domain::DashboardRow;
    use tfpilot::store::DashboardRecord;
    let store = &t.store;
    let repo = repo();
    let upper: tfpilot::ids::RepoName = repo.to_string().to_uppercase().parse().unwrap();
    assert!(store.dashboard(&repo).await.unwrap().is_none());
    let request = super::new_request(5);
    let first = DashboardRecord {
        issue: None,
        digest: String::new(),
        edited_at: OffsetDateTime::now_utc(),
        rows: [(request.id, DashboardRow::of(&request))].into(),
        off: false,
    };
    let claimed = store.put_dashboard(&repo, &first, None).await.unwrap();
    assert!(claimed.is_some(), "claimed");
    let second = DashboardRecord {
        issue: Some(8),
        ..first.clone()
    };
    assert_eq!(
        store.put_dashboard(&upper, &second, None).await.unwrap(),
        None,
        "one record per repository, whatever the case of its name"
    );
    let (kept, etag) = store.dashboard(&upper).await.unwrap().expect("kept");
    assert_eq!(kept, first, "rows round-trip");
    assert_eq!(Some(&etag), claimed.as_ref());
    let opened = DashboardRecord {
        issue: Some(7),
        digest: "b".into(),
        ..first.clone()
    };
    let written = store
        .put_dashboard(&repo, &opened, Some(&etag))
        .await
        .unwrap();
    assert!(written.is_some());
    assert_eq!(
        store
            .put_dashboard(&repo, &second, Some(&etag))
            .await
            .unwrap(),
        None,
        "a write from a stale read is refused"
    );
    assert_eq!(store.dashboard(&repo).await.unwrap().unwrap().0, opened);
    let other: tfpilot::ids::RepoName = "acme/other".parse().unwrap();
    assert!(store.dashboard(&other).await.unwrap().is_none());
}
