//! The executor against an in-memory GitHub ([`fake::FakeForge`]), a store in a temporary
//! directory and the rules extractor: what it does on GitHub and in the store, call by call.

mod fake;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::Executor;
use crate::assist::RulesExtractor;
use crate::command::Command;
use crate::comments::{self, marker_key};
use crate::domain::{EffectKey, EffectRecord, EffectResult, Request, RequestStatus, RunKind};
use crate::github::{FileChange, Permission};
use crate::ids::{DeliveryId, InstallationId, RepoName, RequestId};
use crate::inbox::Delivery;
use crate::lifecycle::{
    self, Actor, BlockChange, CommentAt, Effect, Facts, Input, PendingEffect, Policy,
};
use crate::registry::Registry;
use crate::settings::Settings;
use crate::store::{FsStore, RequestStore, StoreError};
use crate::terraform::blocks;
use crate::webhook::Event;
use crate::worker::EventHandler;
use fake::{BOT, FakeForge};

const ID: &str = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";
const ISSUE: u64 = 12;
const BASE_TEXT: &str = "# Managed by hand; TfPilot adds its blocks below.\n";

fn repo() -> RepoName {
    "acme/core-terraform".parse().unwrap()
}

fn policy() -> Policy {
    Policy {
        approvals_required: Default::default(),
        prod_environments: vec!["prod".into()],
        prod_allowed_users: vec!["alice".into()],
        destroy_prod_allowed_users: vec!["alice".into()],
        approvers: Vec::new(),
        approvers_required: false,
    }
}

/// A test: the fake GitHub, the store in a temporary directory, the executor on both.
struct Harness {
    fake: FakeForge,
    store: Arc<dyn RequestStore>,
    executor: Executor,
    /// When the request's effects were decided (whole seconds, as the store keeps them).
    t0: OffsetDateTime,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn RequestStore> = Arc::new(FsStore::open(dir.path()).unwrap());
        let fake = FakeForge::default();
        let executor = Executor::with_forge(
            store.clone(),
            Arc::new(fake.clone()),
            Arc::new(RulesExtractor),
            policy(),
        );
        let now = OffsetDateTime::now_utc();
        Harness {
            fake,
            store,
            executor,
            t0: now.replace_nanosecond(0).unwrap() - time::Duration::seconds(5),
            _dir: dir,
        }
    }

    /// `main` at a commit holding `envs/dev/tfpilot.s3.tf` with [`BASE_TEXT`]; returns its id.
    fn base(&self, file: &str) -> String {
        let mut w = self.fake.world();
        let oid = w.add_commit(None, "initial", &[FileChange::put(file, BASE_TEXT)]);
        w.branches.insert("main".into(), oid.clone());
        oid
    }

    fn facts<'r>(&self, registry: &'r Registry) -> Facts<'r> {
        Facts {
            now: self.t0,
            registry,
            repo: repo(),
            installation: Some(InstallationId(7)),
            prefix: "/tfpilot".into(),
            settings: Some(Settings::defaults(&repo(), "main")),
            new_request_id: ID.parse().unwrap(),
            pr: None,
            base_block: None,
            base_head: None,
            listing: None,
        }
    }

    /// `carol`'s complete s3-bucket request in dev, submitted: decided, stored with its outbox
    /// (commit, open the pull request, dispatch the plan, comment), nothing carried out yet.
    /// Returns it and the submit's input key.
    async fn submitted(&self) -> Request {
        let registry = Registry::embedded();
        let facts = self.facts(registry);
        let carol = Actor {
            login: "carol".into(),
            permission: Permission::Write,
        };
        let new = command(
            100,
            Command::New {
                module: "s3-bucket".into(),
                environment: Some("dev".into()),
                project: None,
                values: BTreeMap::from([("name".to_owned(), "invoices".to_owned())]),
                free_text: String::new(),
            },
        );
        let ready = lifecycle::decide(None, &new, &carol, &policy(), &facts)
            .unwrap()
            .request
            .unwrap();
        assert_eq!(ready.status, RequestStatus::Ready);
        let submit = command(101, Command::Submit);
        let d = lifecycle::decide(Some(&ready), &submit, &carol, &policy(), &facts).unwrap();
        let mut r = d.request.unwrap();
        r.outbox = d.effects;
        let key = lifecycle::input_key(&submit);
        r.effects.insert(
            key.clone(),
            EffectRecord {
                at: self.t0,
                result: EffectResult::default(),
            },
        );
        let kinds: Vec<_> = r.outbox.iter().map(|e| e.effect.describe()).collect();
        assert_eq!(r.outbox.len(), 5, "{kinds:?}");
        r
    }

    async fn stored(&self, id: RequestId) -> Request {
        self.store.get(id).await.unwrap().unwrap().value().clone()
    }

    /// Carries out the outbox of `key` as a first attempt (`resumed: false`) or as a retry
    /// after a crash (`resumed: true`: the effects were decided before this invocation).
    async fn run(&self, id: RequestId, resumed: bool) {
        let since = if resumed {
            self.t0 + time::Duration::seconds(1)
        } else {
            self.t0
        };
        self.executor.run_outbox(id, since).await.unwrap();
    }
}

fn command(comment_id: u64, command: Command) -> Input {
    Input::Command {
        at: CommentAt {
            comment_id,
            thread: ISSUE,
            on_pull_request: false,
        },
        command,
        extraction: None,
    }
}

/// The outbox entry carrying out `effect`'s kind.
fn entry(r: &Request, pick: impl Fn(&Effect) -> bool) -> PendingEffect {
    r.outbox.iter().find(|e| pick(&e.effect)).cloned().unwrap()
}

/// The commit effect's branch, file, block and message.
fn commit_of(r: &Request) -> (EffectKey, String, String, String, String) {
    let e = entry(r, |e| matches!(e, Effect::CommitBlock { .. }));
    let Effect::CommitBlock {
        branch,
        file,
        change: BlockChange::Upsert { block },
        message,
        ..
    } = e.effect
    else {
        panic!("a submit upserts the block: {:?}", e.effect)
    };
    (e.key, branch, file, block, message)
}

// ---- commit_block -------------------------------------------------------------------------

#[tokio::test]
async fn a_submit_branches_from_base_and_commits_only_the_requests_block() {
    let h = Harness::new();
    let r = h.submitted().await;
    let (commit_key, branch, file, block, _) = commit_of(&r);
    assert_eq!(branch, format!("request/{ID}"));
    let base = h.base(&file);
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, false).await;

    let expected = blocks::upsert_block(BASE_TEXT, &id, &block).unwrap();
    assert!(expected.starts_with(BASE_TEXT) && expected.contains(&block));
    let head = {
        let w = h.fake.world();
        assert_eq!(w.calls("commit_files"), 1);
        assert_eq!(
            w.committed,
            [(branch.clone(), vec![FileChange::put(&file, &expected)])]
        );
        let head = w.branches[&branch].clone();
        assert_eq!(w.commits[&head].parent.as_deref(), Some(base.as_str()));
        assert_eq!(w.commits[&head].files.len(), 1);
        assert_eq!(w.branches["main"], base, "the base branch is not written");
        assert_eq!(w.commits[&base].files[&file], BASE_TEXT);
        // Then the pull request, the plan's dispatch and the answer, once each.
        assert_eq!(w.prs, [(40, branch.clone(), "main".to_owned())]);
        assert_eq!(w.calls("dispatch_workflow"), 1);
        assert_eq!(
            w.calls("find_workflow_run"),
            0,
            "a first attempt looks for nothing"
        );
        assert_eq!(w.thread(ISSUE).len(), 1);
        head
    };
    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty(), "{:?}", stored.outbox);
    assert_eq!(stored.branch_heads[&branch], head);
    assert_eq!(
        stored.effects[&commit_key].result,
        EffectResult::Commit {
            oid: head.clone(),
            made: true
        }
    );
    assert_eq!(stored.pull_request.as_ref().map(|p| p.number), Some(40));
    assert_eq!(stored.status, RequestStatus::Planning);
}

#[tokio::test]
async fn a_branch_with_a_head_tfpilot_did_not_make_is_refused_and_reported() {
    let h = Harness::new();
    let r = h.submitted().await;
    let (commit_key, branch, file, _, _) = commit_of(&r);
    let base = h.base(&file);
    let foreign = {
        let mut w = h.fake.world();
        let oid = w.add_commit(
            Some(&base),
            "someone else's work",
            &[FileChange::put(&file, "resource \"x\" \"y\" {}\n")],
        );
        w.branches.insert(branch.clone(), oid.clone());
        oid
    };
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, false).await;

    {
        let w = h.fake.world();
        // A first commit is not preceded by a read of the branch: creating it finds the
        // foreign head, and nothing is built on it.
        assert!(
            w.committed.is_empty(),
            "nothing is built on someone else's branch: {:?}",
            w.committed
        );
        assert_eq!(w.branches[&branch], foreign);
        assert!(w.prs.is_empty(), "no pull request after a refused commit");
        assert_eq!(w.calls("dispatch_workflow"), 0);
        let answers = w.thread(ISSUE);
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].author, BOT);
        assert!(
            answers[0].body.contains("has commits TfPilot did not make")
                && answers[0].body.contains(&foreign),
            "{}",
            answers[0].body
        );
    }
    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty(), "{:?}", stored.outbox);
    assert_eq!(stored.status, RequestStatus::Ready);
    assert!(stored.branch_heads.is_empty());
    match &stored.effects[&commit_key].result {
        EffectResult::Failed { error } => {
            assert!(
                error.contains("has commits TfPilot did not make"),
                "{error}"
            )
        }
        other => panic!("the commit is recorded as failed, not {other:?}"),
    }
}

/// The first attempt committed, then crashed before recording it: the retry finds the commit,
/// also when the base moved on meanwhile (by the commit's own parent, not the base's head now).
#[tokio::test]
async fn a_retry_after_a_crash_finds_its_own_commit_and_does_not_commit_twice() {
    for base_moved in [false, true] {
        let h = Harness::new();
        let r = h.submitted().await;
        let (commit_key, branch, file, block, message) = commit_of(&r);
        let base = h.base(&file);
        let id = r.id;
        let made = {
            let expected = blocks::upsert_block(BASE_TEXT, &id, &block).unwrap();
            let mut w = h.fake.world();
            let oid = w.add_commit(Some(&base), &message, &[FileChange::put(&file, expected)]);
            w.commits.get_mut(&oid).unwrap().by_app = true;
            w.branches.insert(branch.clone(), oid.clone());
            if base_moved {
                let other = FileChange::put("README.md", "x");
                let moved = w.add_commit(Some(&base), "other work", &[other]);
                w.branches.insert("main".into(), moved);
            }
            oid
        };
        h.store.create(r).await.unwrap();

        h.run(id, true).await;

        {
            let w = h.fake.world();
            assert_eq!(w.calls("commit_files"), 1, "base moved: {base_moved}");
            assert!(
                w.committed.is_empty(),
                "base moved: {base_moved}: no second commit: {:?}",
                w.committed
            );
            assert_eq!(w.branches[&branch], made);
            assert_eq!(w.prs.len(), 1);
        }
        let stored = h.stored(id).await;
        assert!(stored.outbox.is_empty(), "{:?}", stored.outbox);
        assert_eq!(stored.branch_heads[&branch], made);
        assert_eq!(
            stored.effects[&commit_key].result,
            EffectResult::Commit {
                oid: made,
                made: true
            },
            "base moved: {base_moved}"
        );
    }
}

/// After a crash, a branch head that only looks like TfPilot's commit (same parent, headline,
/// file and content, but pushed by a person, or made by the App with another file changed too)
/// is not taken for it: the commit is refused and the thread told.
#[tokio::test]
async fn a_look_alike_commit_after_a_crash_is_refused_and_reported() {
    for (what, extra, by_app) in [
        ("a person's push", None, false),
        (
            "an App commit changing another file",
            Some(".github/workflows/plan.yml"),
            true,
        ),
    ] {
        let h = Harness::new();
        let r = h.submitted().await;
        let (commit_key, branch, file, block, message) = commit_of(&r);
        let base = h.base(&file);
        let id = r.id;
        let look_alike = {
            let expected = blocks::upsert_block(BASE_TEXT, &id, &block).unwrap();
            let mut changes = vec![FileChange::put(&file, expected)];
            changes.extend(extra.map(|path| FileChange::put(path, "on: push\n")));
            let mut w = h.fake.world();
            let oid = w.add_commit(Some(&base), &message, &changes);
            w.commits.get_mut(&oid).unwrap().by_app = by_app;
            w.branches.insert(branch.clone(), oid.clone());
            oid
        };
        h.store.create(r).await.unwrap();

        h.run(id, true).await;

        {
            let w = h.fake.world();
            assert!(w.committed.is_empty(), "{what}: {:?}", w.committed);
            assert_eq!(w.branches[&branch], look_alike, "{what}");
            assert!(
                w.prs.is_empty(),
                "{what}: a pull request for someone else's commit"
            );
            let answers = w.thread(ISSUE);
            assert_eq!(answers.len(), 1, "{what}: {answers:?}");
            assert!(
                answers[0].body.contains("has commits TfPilot did not make"),
                "{what}: {}",
                answers[0].body
            );
        }
        let stored = h.stored(id).await;
        assert!(stored.branch_heads.is_empty(), "{what}");
        assert!(
            stored.effects[&commit_key].result.is_failure(),
            "{what}: {:?}",
            stored.effects[&commit_key]
        );
    }
}

// ---- resumed effects ----------------------------------------------------------------------

#[tokio::test]
async fn a_resumed_comment_already_on_the_thread_is_not_posted_again() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    // Everything but the closing comment was carried out before the crash.
    let comment = entry(&r, |e| matches!(e, Effect::Comment { .. }));
    r.outbox = vec![comment.clone()];
    let posted = h.fake.world().add_comment(
        ISSUE,
        BOT,
        &format!(
            "{}\nThe pull request is open.",
            comments::marker(comment.key.as_str())
        ),
    );
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    {
        let w = h.fake.world();
        assert_eq!(w.calls("comment"), 0);
        assert_eq!(
            w.calls("comments"),
            1,
            "the thread is searched for the marker once"
        );
        assert_eq!(w.thread(ISSUE).len(), 1);
    }
    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty());
    match &stored.effects[&comment.key].result {
        EffectResult::Comment { id, node_id, .. } => {
            assert_eq!(
                (*id, node_id.as_str()),
                (posted, format!("node{posted}").as_str())
            )
        }
        other => panic!("recorded as the comment found, not {other:?}"),
    }
}

#[tokio::test]
async fn a_resumed_dispatch_is_found_by_its_dispatch_id_and_not_dispatched_again() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    let dispatch = entry(&r, |e| matches!(e, Effect::Dispatch { .. }));
    let Effect::Dispatch {
        workflow,
        git_ref,
        dispatch_id,
        ..
    } = &dispatch.effect
    else {
        unreachable!()
    };
    r.outbox = vec![dispatch.clone()];
    // The dispatch happened before the crash: its run carries the dispatch id.
    h.fake.world().runs.push(fake::Run {
        workflow: workflow.clone(),
        git_ref: git_ref.clone(),
        correlation_id: dispatch_id.clone(),
        inputs: BTreeMap::new(),
        run: fake::run(77, git_ref, dispatch_id),
    });
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    {
        let w = h.fake.world();
        assert_eq!(w.calls("dispatch_workflow"), 0);
        assert_eq!(w.calls("find_workflow_run"), 1);
        assert_eq!(w.runs.len(), 1);
    }
    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty());
    let url = "https://example.test/actions/runs/77".to_owned();
    assert_eq!(
        stored.effects[&dispatch.key].result,
        EffectResult::Dispatched {
            run_id: Some(77),
            url: Some(url.clone())
        }
    );
    let plan = &stored.runs[&RunKind::Plan];
    assert_eq!(plan.dispatch_id.as_deref(), Some(dispatch_id.as_str()));
    assert_eq!((plan.run_id, plan.url.clone()), (Some(77), Some(url)));
}

#[tokio::test]
async fn a_resumed_dispatch_that_never_happened_is_dispatched_once() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    let dispatch = entry(&r, |e| matches!(e, Effect::Dispatch { .. }));
    let Effect::Dispatch { dispatch_id, .. } = &dispatch.effect else {
        unreachable!()
    };
    r.outbox = vec![dispatch.clone()];
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    let run_id = {
        let w = h.fake.world();
        assert_eq!(w.calls("find_workflow_run"), 1);
        assert_eq!(w.calls("dispatch_workflow"), 1);
        let inputs = &w.runs[0].inputs;
        assert_eq!(inputs["request_id"], ID);
        assert_eq!(inputs["environment"], "dev");
        assert_eq!(&inputs["dispatch_id"], dispatch_id);
        assert_eq!(&w.runs[0].correlation_id, dispatch_id);
        w.runs[0].run.id
    };
    assert_eq!(h.stored(id).await.runs[&RunKind::Plan].run_id, Some(run_id));
}

// ---- given-up deliveries ------------------------------------------------------------------

const COMMENT_EVENT: &str =
    include_str!("../../../tests/fixtures/webhooks/issue_comment.created.installation.json");
const BOT_COMMENT_EVENT: &str =
    include_str!("../../../tests/fixtures/webhooks/issue_comment.bot.installation.json");

fn delivery(body: &str) -> Delivery {
    let id: DeliveryId = "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap();
    Delivery::new(id, "issue_comment", body)
}

#[tokio::test]
async fn a_given_up_comment_gets_one_answer_naming_the_delivery() {
    let h = Harness::new();
    let event = Event::parse("issue_comment", COMMENT_EVENT.as_bytes()).unwrap();
    let Event::IssueComment(e) = &event else {
        unreachable!()
    };
    let thread = e.issue.number;
    let d = delivery(COMMENT_EVENT);

    h.executor.gave_up(&d, &event, "5 attempts failed").await;

    {
        let w = h.fake.world();
        let answers = w.thread(thread).to_vec();
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].author, BOT);
        assert!(
            answers[0]
                .body
                .contains("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            "{}",
            answers[0].body
        );
        assert_eq!(
            marker_key(&answers[0].body),
            Some(EffectKey::given_up(&d.id).as_str())
        );
        assert_eq!(
            w.clients,
            [(
                InstallationId(48290711),
                "Codertocat/Hello-World".parse().unwrap()
            )]
        );
    }

    // Given up again (a second worker, a replay): the answer is found, not repeated.
    h.executor.gave_up(&d, &event, "5 attempts failed").await;

    let w = h.fake.world();
    assert_eq!(w.thread(thread).len(), 1);
    assert_eq!(w.calls("comment"), 1);
}

#[tokio::test]
async fn a_given_up_comment_of_tfpilots_own_is_not_answered() {
    let h = Harness::new();
    let event = Event::parse("issue_comment", BOT_COMMENT_EVENT.as_bytes()).unwrap();
    let d = delivery(BOT_COMMENT_EVENT);

    h.executor.gave_up(&d, &event, "5 attempts failed").await;

    let w = h.fake.world();
    assert_eq!(w.calls("comment"), 0);
    assert_eq!(w.calls("comments"), 0);
    assert!(w.comments.is_empty());
}

// ---- permission first, bounded answers ------------------------------------------------------

/// Counts what it is asked to read (an LLM costs money per call), answering as the rules do.
struct CountingExtractor(Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl crate::assist::Extractor for CountingExtractor {
    async fn extract(&self, req: &crate::assist::ExtractRequest<'_>) -> crate::assist::Extraction {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RulesExtractor.extract(req).await
    }

    fn kind(&self) -> crate::assist::ExtractorKind {
        crate::assist::ExtractorKind::Rules
    }
}

/// The fixture's comment, with `body` and comment id `id`.
fn comment_event(id: u64, body: &str) -> Event {
    let mut v: serde_json::Value = serde_json::from_str(COMMENT_EVENT).unwrap();
    v["comment"]["body"] = body.into();
    v["comment"]["id"] = id.into();
    Event::parse("issue_comment", &serde_json::to_vec(&v).unwrap()).unwrap()
}

/// A reader's `new` costs nothing but the permission check and the answer: the assistant is not
/// asked, `.tfpilot.yml` is not read, and the thread is not paged through for an earlier answer
/// (a comment seen for the first time has none). Delivered again, the answer is found, not
/// repeated. A writer's `new` does ask the assistant.
#[tokio::test]
async fn a_readers_new_is_refused_before_the_assistant_or_github_is_asked() {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut h = Harness::new();
    h.executor = Executor::with_forge(
        h.store.clone(),
        Arc::new(h.fake.clone()),
        Arc::new(CountingExtractor(asked.clone())),
        policy(),
    );
    h.fake.world().permission = Some(Permission::Read);
    let text = "/tfpilot new s3-bucket env=dev a bucket for the invoices, please";
    let event = comment_event(5001, text);
    let Event::IssueComment(e) = &event else {
        unreachable!()
    };
    let thread = e.issue.number;
    let d = delivery(COMMENT_EVENT);

    h.executor.handle(&d, &event).await.unwrap();

    let count = || asked.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        count(),
        0,
        "the assistant was asked about a reader's request"
    );
    {
        let w = h.fake.world();
        assert_eq!(w.calls("permission"), 1);
        assert_eq!(w.calls("get_file"), 0, "settings read for a denial");
        assert_eq!(w.calls("default_branch"), 0);
        assert_eq!(
            w.calls("comments"),
            0,
            "a fresh answer pages through nothing"
        );
        let answers = w.thread(thread);
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert!(
            answers[0]
                .body
                .contains("opening a request needs write access"),
            "{}",
            answers[0].body
        );
        assert!(
            answers[0].body.contains("Ask a maintainer"),
            "{}",
            answers[0].body
        );
    }

    // The same comment again (a redelivery): its answer is looked for and found.
    h.executor.handle(&d, &event).await.unwrap();
    {
        let w = h.fake.world();
        assert_eq!(w.thread(thread).len(), 1);
        assert_eq!(w.calls("comment"), 1);
        assert_eq!(count(), 0);
    }

    // A writer's `new` is read by the assistant.
    h.fake.world().permission = Some(Permission::Write);
    h.executor
        .handle(&d, &comment_event(5002, text))
        .await
        .unwrap();
    assert_eq!(count(), 1);
    assert!(
        h.store
            .find_by_thread(&e.repository.full_name, thread)
            .await
            .unwrap()
            .is_some()
    );
}

/// `status all` lists the requests of the repository it is asked in, archived ones too, never
/// another repository's.
#[tokio::test]
async fn status_all_lists_only_this_repositorys_requests() {
    let h = Harness::new();
    let r = h.submitted().await;
    let event = comment_event(5003, "/tfpilot status all");
    let Event::IssueComment(e) = &event else {
        unreachable!()
    };
    let here = e.repository.full_name.clone();
    let mut ours = r.clone();
    ours.repo = here.clone();
    ours.issue_number = e.issue.number + 1;
    ours.outbox.clear();
    let mut archived = ours.clone();
    archived.id = RequestId::new_random();
    archived.issue_number += 1;
    let mut elsewhere = r.clone();
    elsewhere.id = RequestId::new_random();
    elsewhere.outbox.clear();
    for request in [ours.clone(), archived.clone(), elsewhere.clone()] {
        h.store.create(request).await.unwrap();
    }
    let stored = h.store.get(archived.id).await.unwrap().unwrap();
    h.store.archive(&stored).await.unwrap();

    h.executor
        .handle(&delivery(COMMENT_EVENT), &event)
        .await
        .unwrap();

    let w = h.fake.world();
    let answers = w.thread(e.issue.number);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let body = &answers[0].body;
    let short = |id: RequestId| comments::lifecycle::short(id);
    assert!(body.contains(&short(ours.id)), "{body}");
    assert!(body.contains(&short(archived.id)), "{body}");
    assert!(!body.contains(&short(elsewhere.id)), "{body}");
    assert!(!body.contains(&repo().to_string()), "{body}");
}

/// Records the comment of `event` as opening request `id`, as `process_new` does before it
/// creates the request; the comment had no record before.
async fn record_opening(h: &Harness, event: &Event, id: RequestId) {
    let Event::IssueComment(e) = event else {
        unreachable!()
    };
    let record = crate::store::CommentRecord {
        request: Some(id),
        answer: None,
        at: h.t0,
    };
    let earlier = h
        .store
        .record_comment(&e.repository.full_name, e.comment.id, &record)
        .await
        .unwrap();
    assert_eq!(earlier, None, "the comment was recorded before");
}

/// A `new` (comment `comment_id`) that a crash stopped after it recorded its comment as
/// opening a request: the harness, the comment's event and the recorded id.
async fn new_stopped_by_a_crash(comment_id: u64) -> (Harness, Event, RequestId) {
    let h = Harness::new();
    let event = comment_event(comment_id, "/tfpilot new s3-bucket env=dev name=invoices");
    let id = RequestId::new_random();
    record_opening(&h, &event, id).await;
    (h, event, id)
}

/// Asserts that the thread of `event` has request `id`, answered once.
async fn assert_opened(h: &Harness, event: &Event, id: RequestId) {
    let Event::IssueComment(e) = event else {
        unreachable!()
    };
    let r = h
        .store
        .find_by_thread(&e.repository.full_name, e.issue.number)
        .await
        .unwrap()
        .expect("the request is opened");
    assert_eq!(r.id, id);
    assert_eq!(
        h.fake.world().thread(e.issue.number).len(),
        1,
        "answered once"
    );
}

/// A `new` recorded as opening a request that was never created (a crash between the record
/// and the create) opens it, under the recorded id, when it is delivered again; once opened, a
/// further delivery opens nothing more.
#[tokio::test]
async fn a_new_recorded_before_a_crash_opens_its_request_under_the_recorded_id() {
    let (h, event, id) = new_stopped_by_a_crash(5004).await;

    for _ in 0..2 {
        h.executor
            .handle(&delivery(COMMENT_EVENT), &event)
            .await
            .unwrap();
    }

    assert_opened(&h, &event, id).await;
}

/// A `new` that bound the thread to the request it recorded and stopped before creating it (a
/// crash) opens that request as soon as it is delivered again, not once the binding is old
/// enough to count as abandoned; another comment on the thread meanwhile is still told to wait.
#[tokio::test]
async fn a_new_that_bound_its_thread_before_a_crash_opens_its_request_at_once() {
    let (h, event, id) = new_stopped_by_a_crash(5005).await;
    let Event::IssueComment(e) = &event else {
        unreachable!()
    };
    let (repo, thread) = (e.repository.full_name.clone(), e.issue.number);
    h.store.bind_thread(&repo, thread, id).await.unwrap();
    assert!(
        matches!(
            h.store.find_by_thread(&repo, thread).await,
            Err(StoreError::Creating { .. })
        ),
        "the thread is bound to a request being created"
    );

    // Another comment on the thread, and another `new` recorded as opening another request:
    // both wait.
    let turn = comment_event(5006, "what about versioning?");
    let other = comment_event(5007, "/tfpilot new s3-bucket env=dev name=receipts");
    record_opening(&h, &other, RequestId::new_random()).await;
    for waiting in [&turn, &other] {
        let err = h
            .executor
            .handle(&delivery(COMMENT_EVENT), waiting)
            .await
            .expect_err("another comment waits for the create");
        assert!(
            format!("{err:#}").contains("still being created"),
            "{err:#}"
        );
    }

    h.executor
        .handle(&delivery(COMMENT_EVENT), &event)
        .await
        .unwrap();
    assert_opened(&h, &event, id).await;
}

/// A comment decided for one request is never decided for another: replayed after its request
/// was archived and a new request opened on the same issue, a `set` does not change the new
/// request's inputs under its original author's name.
#[tokio::test]
async fn a_comment_replayed_onto_the_next_request_of_its_issue_is_not_decided_again() {
    let h = Harness::new();
    let say = |id: u64, text: &str| {
        let event = comment_event(id, text);
        let executor = h.executor.clone();
        async move {
            executor
                .handle(&delivery(COMMENT_EVENT), &event)
                .await
                .unwrap()
        }
    };
    let Event::IssueComment(e) = comment_event(1, "") else {
        unreachable!()
    };
    let (repo, thread) = (e.repository.full_name.clone(), e.issue.number);
    say(6001, "/tfpilot new s3-bucket env=dev name=invoices").await;
    say(6002, "/tfpilot set name=receipts").await;
    let first = h
        .store
        .find_by_thread(&repo, thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.inputs["name"], "receipts");
    say(6003, "/tfpilot cancel").await;
    assert!(
        h.store
            .find_by_thread(&repo, thread)
            .await
            .unwrap()
            .is_none()
    );
    say(6004, "/tfpilot new s3-bucket env=dev name=orders").await;
    let answers = h.fake.world().thread(thread).len();

    say(6002, "/tfpilot set name=receipts").await;

    let second = h
        .store
        .find_by_thread(&repo, thread)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        second.inputs["name"], "orders",
        "the replay changed the new request"
    );
    assert_eq!(
        h.fake.world().thread(thread).len(),
        answers,
        "the replay was answered"
    );
}

/// A comment effect decided by `input` at `at` (what a failure's answer looks like).
fn answer(key: &str, input: &EffectKey, at: OffsetDateTime, text: &str) -> PendingEffect {
    PendingEffect {
        key: key.parse().unwrap(),
        input: input.clone(),
        decided_at: at,
        effect: Effect::Comment {
            thread: ISSUE,
            body: lifecycle::Body::Text { text: text.into() },
        },
    }
}

#[tokio::test]
async fn effects_left_by_another_input_are_carried_out_by_whoever_holds_the_request_next() {
    let h = Harness::new();
    h.base("envs/dev/tfpilot.s3.tf");
    let mut r = h.submitted().await;
    // The answer to a failure, decided under `input:failed:…` by a run that was then killed.
    let failed_input = EffectKey::input_failed(&EffectKey::post_plan(9));
    r.outbox.push(answer(
        "failed:post-plan:9",
        &failed_input,
        h.t0,
        "could not post the plan",
    ));
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty(), "{:?}", stored.outbox);
    assert!(stored.outbox_lease.is_none(), "the lease is given back");
    assert!(
        stored
            .effects
            .contains_key(&"failed:post-plan:9".parse::<EffectKey>().unwrap())
    );
    let w = h.fake.world();
    assert_eq!(w.calls("commit_files"), 1);
    assert_eq!(w.calls("dispatch_workflow"), 1);
    assert!(
        w.thread(ISSUE)
            .iter()
            .any(|c| c.body.contains("could not post the plan")),
        "the other input's answer was posted"
    );
}

#[tokio::test]
async fn one_performer_at_a_time_and_an_expired_lease_is_taken_over() {
    let h = Harness::new();
    h.base("envs/dev/tfpilot.s3.tf");
    let mut r = h.submitted().await;
    let now = OffsetDateTime::now_utc();
    r.outbox_lease = Some(crate::domain::OutboxLease {
        owner: "another-worker".into(),
        until: now + time::Duration::seconds(60),
    });
    let id = r.id;
    h.store.create(r).await.unwrap();

    let held = h.executor.run_outbox(id, h.t0).await;
    assert!(
        held.is_err(),
        "a live lease of another performer is respected"
    );
    assert_eq!(h.fake.world().calls("commit_files"), 0);
    assert_eq!(
        h.stored(id).await.outbox.len(),
        5,
        "nothing was carried out"
    );

    crate::store::RequestStoreExt::update(&*h.store, id, |r| {
        if let Some(l) = &mut r.outbox_lease {
            l.until = now - time::Duration::seconds(1);
        }
        Ok::<_, std::convert::Infallible>(())
    })
    .await
    .unwrap();
    h.run(id, true).await;
    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty());
    assert!(stored.outbox_lease.is_none());
    assert_eq!(h.fake.world().calls("commit_files"), 1);
}

#[tokio::test]
async fn a_stale_dispatch_is_reported_in_the_thread_and_not_started() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    let mut dispatch = entry(&r, |e| matches!(e, Effect::Dispatch { .. }));
    dispatch.decided_at =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::hours(3);
    r.outbox = vec![dispatch.clone()];
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    let stored = h.stored(id).await;
    assert!(stored.outbox.is_empty(), "{:?}", stored.outbox);
    assert!(stored.effects[&dispatch.key].result.is_failure());
    let w = h.fake.world();
    assert_eq!(
        w.calls("dispatch_workflow"),
        0,
        "a 3-hour-old dispatch never fires"
    );
    assert_eq!(w.calls("find_workflow_run"), 0);
    let answers: Vec<_> = w
        .thread(ISSUE)
        .iter()
        .filter(|c| c.body.contains("3 hours ago"))
        .collect();
    assert_eq!(answers.len(), 1, "{:?}", w.thread(ISSUE));
}

#[tokio::test]
async fn an_archive_is_done_only_once_the_request_moved_and_after_everything_else() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    let cancel = EffectKey::input_comment(99);
    r.outbox = vec![
        PendingEffect {
            key: EffectKey::archive(),
            input: cancel.clone(),
            decided_at: h.t0,
            effect: Effect::Archive,
        },
        // Decided after the archive (a failure's answer): carried out first.
        answer("failed:close:1", &cancel, h.t0, "could not close"),
    ];
    let id = r.id;
    h.store.create(r).await.unwrap();

    h.run(id, true).await;

    assert!(h.store.get(id).await.unwrap().is_none(), "still live");
    let archived = h.store.get_archived(id).await.unwrap().unwrap();
    assert!(archived.outbox.is_empty());
    assert!(archived.effects.contains_key(&EffectKey::archive()));
    assert_eq!(h.fake.world().calls("comment"), 1);
}

#[tokio::test]
async fn a_retried_chat_append_is_logged_once() {
    let h = Harness::new();
    let mut r = h.submitted().await;
    let at = CommentAt {
        comment_id: 4242,
        thread: ISSUE,
        on_pull_request: false,
    };
    r.effects.insert(
        lifecycle::reply_key(at),
        EffectRecord {
            at: h.t0,
            result: EffectResult::Comment {
                id: 5151,
                node_id: "node5151".into(),
                body: Some("**Ready.**".into()),
            },
        },
    );
    let id = r.id;
    h.store.create(r).await.unwrap();

    for _ in 0..3 {
        h.executor
            .chat(id, "carol", "call it invoices", None, at)
            .await;
    }

    let log = h.store.chat(id).await.unwrap();
    let turns: Vec<_> = log.iter().map(|t| (t.role, t.comment_id)).collect();
    assert_eq!(
        turns,
        vec![
            (crate::domain::ChatRole::User, Some(4242)),
            (crate::domain::ChatRole::Assistant, Some(5151)),
        ]
    );
}

#[test]
fn compaction_keeps_input_keys_and_the_current_revisions_records() {
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::days(3);
    let mut r = Request::new(
        ID.parse().unwrap(),
        repo(),
        ISSUE,
        "carol",
        "s3-bucket",
        old,
    );
    r.revision = 2;
    let keys = [
        EffectKey::input_comment(1),
        EffectKey::input_run(7, true),
        EffectKey::reply(1),
        EffectKey::commit(1),
        EffectKey::commit(2),
        EffectKey::plan_part(r.id, 1, 7, 1),
        EffectKey::plan_part(r.id, 2, 8, 1),
        EffectKey::plan_summary(r.id, 2, 8),
        EffectKey::run(7),
    ];
    for k in &keys {
        r.effects.insert(
            k.clone(),
            EffectRecord {
                at: old,
                result: EffectResult::default(),
            },
        );
    }
    r.effects.insert(
        EffectKey::reply(2),
        EffectRecord {
            at: now,
            result: EffectResult::default(),
        },
    );

    super::outbox::compact(&mut r, now);

    let kept: Vec<String> = r.effects.keys().map(|k| k.as_str().to_owned()).collect();
    let expected: Vec<String> = [
        EffectKey::commit(2),
        EffectKey::input_comment(1),
        EffectKey::input_run(7, true),
        EffectKey::plan_part(r.id, 2, 8, 1),
        EffectKey::plan_summary(r.id, 2, 8),
        EffectKey::reply(2),
    ]
    .iter()
    .map(|k| k.as_str().to_owned())
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect();
    assert_eq!(kept, expected);
}

// ---- reconciliation ---------------------------------------------------------------------------

/// A plan whose `workflow_run` webhooks never arrived, and whose dispatch did not say which run
/// it started: past the deadline the run is found by its dispatch id and decided as its webhook
/// would have been, once.
#[tokio::test]
async fn a_run_whose_webhooks_were_lost_is_found_by_its_dispatch_id_and_decided_once() {
    use crate::github::{RunConclusion, RunStatus};

    let h = Harness::new();
    let mut r = h.submitted().await;
    let dispatch = entry(&r, |e| matches!(e, Effect::Dispatch { .. }));
    let Effect::Dispatch {
        workflow,
        git_ref,
        dispatch_id,
        ..
    } = &dispatch.effect
    else {
        unreachable!()
    };
    // Carried out before (not by this test): nothing pending, the run id never learned.
    r.outbox.clear();
    assert_eq!(r.status, RequestStatus::Planning);
    assert_eq!(r.runs[&RunKind::Plan].run_id, None);
    let mut run = fake::run(77, git_ref, dispatch_id);
    run.status = RunStatus::Completed;
    run.conclusion = Some(RunConclusion::Failure);
    run.path = format!(".github/workflows/{workflow}");
    h.fake.world().runs.push(fake::Run {
        workflow: workflow.clone(),
        git_ref: git_ref.clone(),
        correlation_id: dispatch_id.clone(),
        inputs: BTreeMap::new(),
        run,
    });
    let id = r.id;
    h.store.create(r).await.unwrap();

    let early = h
        .executor
        .reconcile(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(early, super::ReconcileReport::default());
    assert_eq!(h.fake.world().calls("find_workflow_run"), 0);

    let later = OffsetDateTime::now_utc() + super::RECONCILE_AFTER + time::Duration::minutes(1);
    let report = h.executor.reconcile(later).await.unwrap();
    assert_eq!(
        report,
        super::ReconcileReport {
            looked_at: 1,
            decided: 1,
            failed: 0
        }
    );
    let stored = h.stored(id).await;
    assert_eq!(stored.status, RequestStatus::PlanFailed);
    assert_eq!(stored.runs[&RunKind::Plan].run_id, Some(77));
    assert!(
        stored.effects.contains_key(&EffectKey::input_run(77, true)),
        "the webhook's own key: a late webhook is a redelivery"
    );
    assert_eq!(h.fake.world().thread(ISSUE).len(), 1, "the failure is said");

    // Not waiting any more: nothing read, nothing decided.
    let again = h.executor.reconcile(later).await.unwrap();
    assert_eq!(again.decided, 0);
    assert_eq!(h.fake.world().calls("find_workflow_run"), 1);
    assert_eq!(h.fake.world().thread(ISSUE).len(), 1);
}

#[test]
fn repositories_are_compared_without_case() {
    let a: RepoName = "Acme/Core-Terraform".parse().unwrap();
    assert!(super::same_repo(&a, &repo()));
    let other: RepoName = "acme/other-terraform".parse().unwrap();
    assert!(!super::same_repo(&other, &repo()));
    let fork: RepoName = "mallory/core-terraform".parse().unwrap();
    assert!(!super::same_repo(&fork, &repo()));
}

#[tokio::test]
async fn a_touched_dashboard_is_opened_once_at_settle_unless_dashboards_are_off() {
    for on in [true, false] {
        let mut h = Harness::new();
        h.executor = h.executor.clone().with_dashboards(on);
        let r = h.submitted().await;
        h.base(&commit_of(&r).2);
        let created = h.store.create(r).await.unwrap();
        let scope = h.executor.request_scope(&created).unwrap();
        for _ in 0..3 {
            h.executor.touch_dashboard(&scope, created.id);
        }
        h.executor.settle_dashboards().await;
        h.executor.settle_dashboards().await;
        let w = h.fake.world();
        assert_eq!(w.calls("create_issue"), usize::from(on), "dashboards {on}");
        assert_eq!(
            w.calls("update_issue"),
            0,
            "nothing changed since it was opened"
        );
        if on {
            let (title, body, open) = w.issues.values().next().unwrap();
            assert_eq!(title, "TfPilot requests dashboard");
            assert!(
                *open && body.contains(&comments::lifecycle::short(created.id)),
                "{body}"
            );
        }
    }
}

/// A harness with one stored request, its repository's scope and base.
async fn dashboard_harness() -> (Harness, super::facts::Scope, RequestId) {
    let h = Harness::new();
    let r = h.submitted().await;
    h.base(&commit_of(&r).2);
    let created = h.store.create(r).await.unwrap();
    let scope = h.executor.request_scope(&created).unwrap();
    (h, scope, created.id)
}

#[tokio::test]
async fn a_dashboard_claimed_by_another_worker_defers_and_a_stale_claim_is_taken_over_without_a_second_issue()
 {
    use crate::store::DashboardRecord;
    let (h, scope, id) = dashboard_harness().await;
    let repo = scope.repo.clone();
    // Another worker claimed the record a moment ago and is opening the issue.
    let claim = DashboardRecord {
        issue: None,
        digest: String::new(),
        edited_at: OffsetDateTime::now_utc(),
        rows: BTreeMap::new(),
        off: false,
    };
    h.store.put_dashboard(&repo, &claim, None).await.unwrap();
    h.executor.touch_dashboard(&scope, id);
    h.executor.settle_dashboards().await;
    assert_eq!(h.fake.world().calls("create_issue"), 0, "deferred");
    // It opened the issue, then stopped before recording it; its claim grows old.
    let opened = h.fake.world().issues.insert(
        5001,
        (
            "t".into(),
            format!("{}\nold", comments::marker("dashboard")),
            true,
        ),
    );
    assert!(opened.is_none());
    let (_, etag) = h.store.dashboard(&repo).await.unwrap().unwrap();
    let stale = DashboardRecord {
        edited_at: OffsetDateTime::now_utc() - time::Duration::minutes(5),
        ..claim
    };
    h.store
        .put_dashboard(&repo, &stale, Some(&etag))
        .await
        .unwrap()
        .unwrap();
    h.executor.settle_dashboards().await;
    let (record, _) = h.store.dashboard(&repo).await.unwrap().unwrap();
    let w = h.fake.world();
    assert_eq!(
        w.calls("create_issue"),
        0,
        "found by its marker, not opened twice"
    );
    assert_eq!(w.calls("update_issue"), 1);
    assert_eq!(record.issue, Some(5001));
    assert!(record.rows.contains_key(&id));
    assert!(w.issues[&5001].1.contains(&comments::lifecycle::short(id)));
}

#[tokio::test]
async fn a_deleted_dashboard_is_opened_again() {
    let (h, scope, id) = dashboard_harness().await;
    h.executor.touch_dashboard(&scope, id);
    h.executor.settle_dashboards().await;
    let first = *h.fake.world().issues.keys().next().unwrap();
    h.fake.world().issues.clear();
    // Something it shows changes: the request is cancelled.
    let mut r = h.store.get(id).await.unwrap().unwrap();
    let mut next = r.clone().into_inner();
    next.status = RequestStatus::Cancelled;
    r = h.store.put_if_version(&r, next).await.unwrap();
    h.executor.touch_dashboard(&scope, r.id);
    h.executor.settle_dashboards().await;
    let (record, _) = h.store.dashboard(&scope.repo).await.unwrap().unwrap();
    let w = h.fake.world();
    assert_eq!(w.calls("create_issue"), 2);
    assert_ne!(record.issue, Some(first));
    assert!(w.issues[&record.issue.unwrap()].1.contains("`cancelled`"));
}
