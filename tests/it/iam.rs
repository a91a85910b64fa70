//! The IAM policies in `template.yaml` against the S3 calls the code really makes.
//!
//! Each function's object seams are wrapped by a [`Recorder`] that notes every S3 request the
//! wrapped [`S3Objects`] sends (action, bucket, key or listing prefix) while the real code runs on
//! moto: the webhook router for a delivery and its duplicate, the worker for a whole lifecycle
//! (conversation with the assistant, submit, approve, merge, apply, destroy and archive, inbox
//! drains, the scheduled sweep). Then `template.yaml` is read and each recorded call is checked
//! against that function's `Policies`, so the template cannot drift from the code again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde_norway::Value;
use tfpilot::inbox::{Inbox, ObjectInbox};
use tfpilot::server::{AppState, create_app};
use tfpilot::store::S3Objects;
use tfpilot::store::objects::{ETag, LogRecord, Object, ObjectError, Objects, log_record_name};

use crate::e2e::{REPO, World, within};
use crate::support::{self, MotoServer, WEBHOOK_SECRET};

// ---- recording ----------------------------------------------------------------------------------

/// Which of the template's buckets an object seam stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    /// `RequestsBucket`: requests, index, events, history, the inbox.
    Requests,
    /// `ChatLogsBucket`: chat logs.
    Chat,
}

/// One S3 request as IAM sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct S3Call {
    pub action: &'static str,
    pub bucket: Bucket,
    /// The object key (object actions).
    pub key: Option<String>,
    /// `s3:prefix` of a listing; `None` for a listing permission needed without a prefix (S3
    /// answers a GET of a missing key with 404 only to a caller allowed `s3:ListBucket`; without
    /// it, 403, which the code would report as a failure instead of "no such object").
    pub prefix: Option<String>,
}

impl std::fmt::Display for S3Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {:?}", self.action, self.bucket)?;
        if let Some(key) = &self.key {
            write!(f, " key {key}")?;
        }
        match (&self.prefix, self.action) {
            (Some(p), _) => write!(f, " s3:prefix {p:?}"),
            (None, "s3:ListBucket") => write!(f, " (no s3:prefix: a GET of a missing key)"),
            _ => Ok(()),
        }
    }
}

/// Collects the calls of every seam it wrapped.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Vec<S3Call>>>);

impl Recorder {
    /// `inner` (the seam on `bucket`) with its calls recorded here.
    pub fn wrap(&self, bucket: Bucket, inner: S3Objects) -> Recording {
        Recording {
            inner,
            bucket,
            calls: self.clone(),
        }
    }

    pub fn calls(&self) -> Vec<S3Call> {
        self.0.lock().expect("recorder lock").clone()
    }

    fn note(
        &self,
        action: &'static str,
        bucket: Bucket,
        key: Option<String>,
        prefix: Option<String>,
    ) {
        self.0.lock().expect("recorder lock").push(S3Call {
            action,
            bucket,
            key,
            prefix,
        });
    }
}

/// An [`S3Objects`] whose calls are recorded as the S3 requests it sends (see `src/store/s3.rs`:
/// `get` is one GetObject; both conditional puts and a log append are one PutObject with
/// `If-None-Match`/`If-Match`; the conditional delete is one DeleteObject with `If-Match`; `list`
/// is ListObjectsV2 pages; `read_log` lists `<log>/` and gets each record).
#[derive(Debug)]
pub struct Recording {
    inner: S3Objects,
    bucket: Bucket,
    calls: Recorder,
}

impl Recording {
    fn object(&self, action: &'static str, key: &str) {
        self.calls
            .note(action, self.bucket, Some(key.to_owned()), None);
    }

    fn listing(&self, prefix: Option<&str>) {
        self.calls.note(
            "s3:ListBucket",
            self.bucket,
            None,
            prefix.map(str::to_owned),
        );
    }
}

#[async_trait]
impl Objects for Recording {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        self.object("s3:GetObject", key);
        let got = self.inner.get(key).await;
        if matches!(got, Ok(None)) {
            // The 404 that `None` stands for is only given to a caller allowed to list.
            self.listing(None);
        }
        got
    }
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<ETag, ObjectError> {
        self.object("s3:PutObject", key);
        self.inner.put_if_absent(key, body).await
    }
    async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &ETag,
    ) -> Result<ETag, ObjectError> {
        self.object("s3:PutObject", key);
        self.inner.put_if_match(key, body, etag).await
    }
    async fn delete_if_match(&self, key: &str, etag: &ETag) -> Result<(), ObjectError> {
        self.object("s3:DeleteObject", key);
        self.inner.delete_if_match(key, etag).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        self.listing(Some(prefix));
        self.inner.list(prefix).await
    }
    async fn append(&self, log: &str, record: Vec<u8>) -> Result<(), ObjectError> {
        // S3Objects names the record `<log>/<time>-<random>.json` itself; this is the same shape.
        let key = format!("{log}/{}", log_record_name(time::OffsetDateTime::now_utc()));
        self.object("s3:PutObject", &key);
        self.inner.append(log, record).await
    }
    async fn read_log(&self, log: &str) -> Result<Vec<LogRecord>, ObjectError> {
        self.listing(Some(&format!("{log}/")));
        let records = self.inner.read_log(log).await?;
        let root = self.inner.describe("");
        for record in &records {
            let key = record.origin.strip_prefix(&root).unwrap_or_else(|| {
                panic!("a log record from {} is not under {root}", record.origin)
            });
            self.object("s3:GetObject", key);
        }
        Ok(records)
    }
}

// ---- the template's policies --------------------------------------------------------------------

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const BUCKET_PREFIX: &str = "tfpilot";

/// One Allow statement, its `!If` branches and lists flattened.
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    /// `Condition: StringLike: s3:prefix:`; `None` when the statement has no condition.
    prefixes: Option<Vec<String>>,
    /// A condition other than `StringLike` on `s3:prefix` (never grants an S3 call here).
    other_condition: bool,
}

struct Template {
    root: Value,
}

impl Template {
    fn load() -> Template {
        let path = support::repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let root = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        Template { root }
    }

    fn resource(&self, name: &str) -> &Value {
        self.root
            .get("Resources")
            .and_then(|r| r.get(name))
            .unwrap_or_else(|| panic!("template.yaml has no resource {name}"))
    }

    /// The bucket's name as deployed with the test's parameters.
    fn bucket_name(&self, bucket: Bucket) -> String {
        let logical = match bucket {
            Bucket::Requests => "RequestsBucket",
            Bucket::Chat => "ChatLogsBucket",
        };
        let name = self
            .resource(logical)
            .get("Properties")
            .and_then(|p| p.get("BucketName"))
            .unwrap_or_else(|| panic!("{logical} has no BucketName"));
        let names = self.eval(name);
        assert_eq!(names.len(), 1, "{logical}'s name: {names:?}");
        names.into_iter().next().expect("one name")
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in !Sub {text:?}"))
                + start;
            let var = &rest[start + 2..end];
            let value = match var {
                "AWS::Partition" => "aws".to_owned(),
                "AWS::AccountId" => ACCOUNT.to_owned(),
                "AWS::Region" => REGION.to_owned(),
                "BucketPrefix" => BUCKET_PREFIX.to_owned(),
                other => match other.strip_suffix(".Arn") {
                    Some(logical) => self.arn_of(logical),
                    // Another parameter: its default.
                    None => self
                        .root
                        .get("Parameters")
                        .and_then(|p| p.get(other))
                        .and_then(|p| p.get("Default"))
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| {
                            panic!("!Sub variable ${{{other}}} is not known to this test")
                        })
                        .to_owned(),
                },
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn arn_of(&self, logical: &str) -> String {
        let bucket = match logical {
            "RequestsBucket" => Bucket::Requests,
            "ChatLogsBucket" => Bucket::Chat,
            other => panic!("the ARN of {other} is not known to this test"),
        };
        format!("arn:aws:s3:::{}", self.bucket_name(bucket))
    }

    /// Every value `v` can take (an `!If` takes either branch; `AWS::NoValue` none).
    fn eval(&self, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items.iter().flat_map(|i| self.eval(i)).collect(),
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                match (tag.trim_start_matches('!'), &tagged.value) {
                    ("Sub", Value::String(s)) => vec![self.substitute(s)],
                    ("If", Value::Sequence(parts)) if parts.len() == 3 => {
                        let mut both = self.eval(&parts[1]);
                        both.extend(self.eval(&parts[2]));
                        both
                    }
                    ("Ref", Value::String(r)) if r == "AWS::NoValue" => Vec::new(),
                    ("Ref", Value::String(r)) if r == "BucketPrefix" => vec![BUCKET_PREFIX.into()],
                    ("GetAtt", Value::String(s)) => match s.strip_suffix(".Arn") {
                        Some(logical) => vec![self.arn_of(logical)],
                        None => panic!("!GetAtt {s} is not known to this test"),
                    },
                    (tag, value) => panic!("!{tag} {value:?} is not known to this test"),
                }
            }
            other => panic!("{other:?} is not a value this test can evaluate"),
        }
    }

    /// The Allow statements of `function`'s inline policies.
    fn statements(&self, function: &str) -> Vec<Statement> {
        let policies = self
            .resource(function)
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{function} has no Policies list"));
        let mut out = Vec::new();
        for policy in policies {
            let statements = policy
                .get("Statement")
                .and_then(Value::as_sequence)
                .unwrap_or_else(|| {
                    panic!("{function}: a policy this test cannot read (not inline): {policy:?}")
                });
            for s in statements {
                let sid = s
                    .get("Sid")
                    .and_then(Value::as_str)
                    .unwrap_or("(no Sid)")
                    .to_owned();
                let effect = s.get("Effect").and_then(Value::as_str);
                assert!(
                    matches!(effect, Some("Allow") | Some("Deny")),
                    "{function} {sid}: Effect {effect:?}"
                );
                assert_ne!(
                    effect,
                    Some("Deny"),
                    "{function} {sid}: a Deny statement; teach this test to evaluate it"
                );
                let field = |name: &str| {
                    s.get(name)
                        .map(|v| self.eval(v))
                        .unwrap_or_else(|| panic!("{function} {sid} has no {name}"))
                };
                let (mut prefixes, mut other_condition) = (None, false);
                if let Some(condition) = s.get("Condition").and_then(Value::as_mapping) {
                    for (operator, keys) in condition {
                        let keys = keys.as_mapping().expect("a condition's keys");
                        for (key, values) in keys {
                            if operator.as_str() == Some("StringLike")
                                && key.as_str() == Some("s3:prefix")
                            {
                                prefixes = Some(self.eval(values));
                            } else {
                                other_condition = true;
                            }
                        }
                    }
                }
                let actions = field("Action");
                if !actions.iter().any(|a| a.starts_with("s3:")) {
                    continue;
                }
                let resources = field("Resource");
                out.push(Statement {
                    actions,
                    resources,
                    prefixes,
                    other_condition,
                });
            }
        }
        out
    }

    /// Whether some statement of `statements` allows `call`.
    fn allows(&self, statements: &[Statement], call: &S3Call) -> bool {
        let bucket_arn = format!("arn:aws:s3:::{}", self.bucket_name(call.bucket));
        let resource = match &call.key {
            Some(key) => format!("{bucket_arn}/{key}"),
            None => bucket_arn,
        };
        statements.iter().any(|s| {
            !s.other_condition
                && s.actions.iter().any(|a| glob(a, call.action))
                && s.resources.iter().any(|r| glob(r, &resource))
                && match (&s.prefixes, &call.prefix) {
                    (None, _) => true,
                    // A condition on a key the request does not carry does not match.
                    (Some(_), None) => false,
                    (Some(patterns), Some(prefix)) => patterns.iter().any(|p| glob(p, prefix)),
                }
        })
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    go(&p, &t)
}

/// The calls as IAM cares about them: keys reduced to their first segment plus `*` beyond, so a
/// report lists each kind of call once (`requests/*`, `chat/*`, `inbox-state/*`).
fn kinds(calls: &[S3Call]) -> BTreeSet<String> {
    calls
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let first = |k: String| match k.split_once('/') {
                Some((first, rest)) if !rest.is_empty() => format!("{first}/*"),
                _ => k,
            };
            c.key = c.key.map(first);
            c.prefix = c.prefix.map(first);
            c.to_string()
        })
        .collect()
}

/// Fails listing every call of `function` its policy does not allow.
fn assert_allowed(function: &str, calls: &[S3Call]) {
    let template = Template::load();
    let statements = template.statements(function);
    let missing: BTreeSet<String> = calls
        .iter()
        .filter(|c| !template.allows(&statements, c))
        .map(|c| {
            let bucket_arn = format!("arn:aws:s3:::{}", template.bucket_name(c.bucket));
            match (&c.key, &c.prefix) {
                (Some(key), _) => format!("{} on {bucket_arn}/{key}", c.action),
                (None, Some(prefix)) => {
                    format!("{} on {bucket_arn} with s3:prefix {prefix:?}", c.action)
                }
                (None, None) => format!("{} on {bucket_arn} without s3:prefix", c.action),
            }
        })
        .collect();
    println!(
        "{function}: {} S3 calls recorded, {} kinds:\n  {}",
        calls.len(),
        kinds(calls).len(),
        kinds(calls).into_iter().collect::<Vec<_>>().join("\n  ")
    );
    assert!(
        missing.is_empty(),
        "template.yaml does not allow {function} these S3 calls the code makes:\n  {}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

// ---- the tests ----------------------------------------------------------------------------------

#[test]
fn the_policy_evaluation_refuses_what_the_template_does_not_grant() {
    // The evaluation itself must be able to fail, or the two tests below prove nothing.
    let template = Template::load();
    let webhook = template.statements("WebhookFunction");
    let call = |action, bucket, key: Option<&str>, prefix: Option<&str>| S3Call {
        action,
        bucket,
        key: key.map(str::to_owned),
        prefix: prefix.map(str::to_owned),
    };
    assert!(template.allows(
        &webhook,
        &call("s3:PutObject", Bucket::Requests, Some("inbox/d.json"), None)
    ));
    assert!(template.allows(
        &webhook,
        &call("s3:ListBucket", Bucket::Requests, None, Some("inbox/"))
    ));
    for refused in [
        call(
            "s3:PutObject",
            Bucket::Requests,
            Some("requests/x.json"),
            None,
        ),
        call(
            "s3:DeleteObject",
            Bucket::Requests,
            Some("inbox/d.json"),
            None,
        ),
        call("s3:GetObject", Bucket::Chat, Some("chat/x/1.json"), None),
        call("s3:ListBucket", Bucket::Requests, None, Some("requests/")),
        call("s3:ListBucket", Bucket::Requests, None, None),
    ] {
        assert!(
            !template.allows(&webhook, &refused),
            "{refused} is allowed to the webhook"
        );
    }
    assert!(glob(
        "arn:aws:s3:::b/inbox/*",
        "arn:aws:s3:::b/inbox/x/y.json"
    ));
    assert!(!glob("arn:aws:s3:::b/inbox/*", "arn:aws:s3:::b/inbox"));
    assert!(!glob("arn:aws:s3:::b", "arn:aws:s3:::b/k"));
}

#[tokio::test]
async fn the_webhook_functions_s3_calls_are_allowed_by_its_policy() {
    let moto = MotoServer::start();
    let bucket = support::unique_bucket("iam-webhook");
    moto.create_bucket(&bucket).await;
    let recorder = Recorder::default();
    let inbox: Arc<dyn Inbox> = Arc::new(ObjectInbox::new(Arc::new(
        recorder.wrap(Bucket::Requests, S3Objects::new(moto.client(), &bucket)),
    )));
    let router = create_app(AppState::new(
        Some(SecretString::from(WEBHOOK_SECRET)),
        inbox.clone(),
    ));
    let body = support::webhook_fixture("issue_comment.created.installation.json");
    let id = "00000000-0000-4000-8000-0000000000aa";
    for (expected, status_expected) in [
        ("queued", StatusCode::ACCEPTED),
        ("duplicate", StatusCode::OK),
    ] {
        let (status, text) = crate::webhook::send(
            &router,
            support::signed_delivery(WEBHOOK_SECRET, "issue_comment", id, body.clone()),
        )
        .await;
        assert_eq!((status, text.trim()), (status_expected, expected));
    }
    // Taken before the test looks at the inbox itself: only the router's calls.
    let calls = recorder.calls();
    assert_eq!(inbox.pending().await.expect("pending").len(), 1);
    let puts = calls
        .iter()
        .filter(|c| {
            c.action == "s3:PutObject" && c.key.as_deref() == Some(&format!("inbox/{id}.json"))
        })
        .count();
    assert_eq!(
        puts, 2,
        "the delivery and its duplicate each write inbox/<id>.json: {calls:#?}"
    );
    assert_allowed("WebhookFunction", &calls);
}

#[tokio::test]
async fn the_worker_functions_s3_calls_are_allowed_by_its_policy() {
    within(420, async {
        let (w, recorded) = World::start_recording().await;
        let issue = w
            .sim
            .open_issue(
                REPO,
                "carol",
                "Invoices bucket",
                "We need a bucket for invoices.",
            )
            .expect("issue");
        // Free text in the command: a chat log write.
        w.say(
            issue,
            "carol",
            "/tfpilot new s3-bucket env=dev for our invoices",
        )
        .await;
        // A plain answer: the assistant reads the chat log.
        let step = w
            .say(
                issue,
                "carol",
                "Call it invoices, turn versioning on and keep objects for 30 days please",
            )
            .await;
        assert!(step.reply().contains("**Ready.**"), "{}", step.reply());
        w.say(issue, "carol", "/tfpilot submit").await;
        w.say(issue, "dave", "/tfpilot approve").await;
        w.say(issue, "dave", "/tfpilot merge").await;
        w.say(issue, "carol", "/tfpilot apply").await;
        let step = w.say(issue, "carol", "/tfpilot destroy").await;
        step.find("The request is archived.");
        // The scheduled invocation: a drain, then the sweep.
        w.settle().await;
        w.worker.handler().sweep().await.expect("sweep");

        let calls = recorded.worker.calls();
        let has = |action: &str, bucket: Bucket, key_or_prefix: &str| {
            calls.iter().any(|c| {
                c.action == action
                    && c.bucket == bucket
                    && (c
                        .key
                        .as_deref()
                        .is_some_and(|k| k.starts_with(key_or_prefix))
                        || c.prefix
                            .as_deref()
                            .is_some_and(|p| p.starts_with(key_or_prefix)))
            })
        };
        for (action, bucket, what) in [
            ("s3:PutObject", Bucket::Chat, "chat/"),
            ("s3:ListBucket", Bucket::Chat, "chat/"),
            ("s3:GetObject", Bucket::Chat, "chat/"),
            ("s3:PutObject", Bucket::Requests, "requests/"),
            ("s3:PutObject", Bucket::Requests, "history/"),
            ("s3:PutObject", Bucket::Requests, "inbox-done/"),
            ("s3:ListBucket", Bucket::Requests, "inbox/"),
            ("s3:DeleteObject", Bucket::Requests, ""),
        ] {
            assert!(
                has(action, bucket, what),
                "no {action} on {bucket:?} {what} recorded: {:#?}",
                kinds(&calls)
            );
        }
        assert!(calls.len() > 100, "only {} calls recorded", calls.len());
        assert_allowed("WorkerFunction", &calls);
        // The router of this world is the webhook function: every delivery of the lifecycle.
        let webhook = recorded.webhook.calls();
        assert!(webhook.len() >= 8, "{webhook:#?}");
        assert_allowed("WebhookFunction", &webhook);
    })
    .await;
}
