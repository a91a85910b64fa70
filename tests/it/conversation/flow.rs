//! Conversations as a person has them on GitHub, read by the rules extractor: each comment goes
//! through the command parser first, and what is not a command is a conversation turn.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command as Process, Stdio};

use tfpilot::assist::{ExtractRequest, Extractor, RulesExtractor};
use tfpilot::command::{self, Command, DEFAULT_PREFIX};
use tfpilot::comments::conversation::conversation_reply;
use tfpilot::conversation::{self, Conversation, ConversationContext, InputState, Reply};
use tfpilot::registry::{Registry, build_module_config};
use tfpilot::terraform::render_block;

const ID: &str = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b";

/// One request's thread: the state issue 7 keeps, and the replies TfPilot would post.
struct Thread {
    module: String,
    ctx: ConversationContext,
    conv: Conversation,
    replies: Vec<Reply>,
}

impl Thread {
    /// `/tfpilot new …`, free text included.
    async fn open(comment: &str) -> Thread {
        let Some(Ok(Command::New {
            module,
            environment,
            project,
            values,
            free_text,
        })) = command::parse_comment(comment, DEFAULT_PREFIX)
        else {
            panic!("not a new command: {comment}");
        };
        let spec = Registry::embedded().lookup(&module).expect("module");
        let ctx = ConversationContext::new(
            ID.parse().expect("id"),
            project.unwrap_or_else(|| "core".into()),
            environment.expect("env"),
        );
        let extraction = if free_text.is_empty() {
            None
        } else {
            Some(
                RulesExtractor
                    .extract(&ExtractRequest {
                        spec,
                        collected: &BTreeMap::new(),
                        pending: &[],
                        message: &free_text,
                        history: &[],
                    })
                    .await,
            )
        };
        let (conv, reply) = conversation::start(spec, &values, extraction.as_ref(), &ctx);
        Thread {
            module,
            ctx,
            conv,
            replies: vec![reply],
        }
    }

    /// Any later comment: a `set`/`unset`/`show` command, or plain words for the assistant.
    async fn say(&mut self, comment: &str) -> &Reply {
        let spec = Registry::embedded().get(&self.module).expect("module");
        let (conv, reply) = match command::parse_comment(comment, DEFAULT_PREFIX) {
            Some(Ok(Command::Set { values })) => {
                let values = command::resolve_values(spec, &values).expect("known keys");
                conversation::apply_set(&self.conv, spec, &values, &self.ctx)
            }
            Some(Ok(Command::Unset { keys })) => {
                let keys = command::resolve_keys(spec, &keys).expect("known keys");
                conversation::apply_unset(&self.conv, spec, &keys, &self.ctx)
            }
            Some(Ok(Command::Show)) => (
                self.conv.clone(),
                conversation::show(&self.conv, spec, &self.ctx),
            ),
            Some(other) => panic!("unexpected command in this test: {other:?}"),
            None => {
                let text = command::strip_markdown(comment);
                let extraction = RulesExtractor
                    .extract(&ExtractRequest {
                        spec,
                        collected: &self.conv.values,
                        pending: &self.conv.pending,
                        message: &text,
                        history: &[],
                    })
                    .await;
                conversation::apply_extraction(&self.conv, spec, &extraction, &self.ctx)
            }
        };
        self.conv = conv;
        self.replies.push(reply);
        self.replies.last().expect("a reply")
    }

    fn last(&self) -> &Reply {
        self.replies.last().expect("a reply")
    }

    fn comment(&self) -> String {
        conversation_reply(self.last(), &"reply:test".parse().unwrap())
    }
}

#[tokio::test]
async fn an_s3_bucket_from_new_to_ready() {
    let mut t = Thread::open("/tfpilot new s3-bucket env=dev name=invoices").await;

    // The first reply: what was understood, and every other input with its description and
    // default. Only `name` is required, so the request could be submitted as it is.
    let first = t.comment();
    assert!(
        first.contains("**Understood:** `name` = `invoices`."),
        "{first}"
    );
    assert!(
        first.contains("| `expiration_days` | *not set* | optional · Delete objects this many days after they were written."),
        "{first}"
    );
    assert!(
        first.contains(
            "| `versioning_enabled` | `false` | default · Keep every version of every object"
        ),
        "{first}"
    );
    assert!(t.last().is_complete());

    let reply = t.say("turn versioning on, keep objects 30 days").await;
    let understood: Vec<String> = reply
        .understood
        .iter()
        .map(|c| format!("{}={}", c.input, c.value))
        .collect();
    assert_eq!(
        understood,
        ["versioning_enabled=true", "expiration_days=30"]
    );
    assert!(reply.problems.is_empty());

    // The exact block: what the catalogue and renderer make of the stored values.
    let spec = Registry::embedded().get("s3-bucket").expect("spec");
    let config = build_module_config(spec, &t.conv.values, &t.ctx.config_context()).expect("valid");
    let expected = render_block(t.ctx.request_id, spec, &config).expect("renders");
    assert_eq!(t.last().block(), Some(expected.as_str()));
    assert_eq!(
        expected,
        format!(
            "# --- tfpilot:begin:{ID} ---\n\
             module \"tfpilot_{ID}\" {{\n  \
               source             = \"../../modules/s3-bucket\"\n  \
               bucket_name        = \"core-dev-invoices\"\n  \
               versioning_enabled = true\n  \
               expiration_days    = 30\n  \
               force_destroy      = false\n  \
               tags = {{\n    \
                 Environment      = \"dev\"\n    \
                 ManagedBy        = \"tfpilot\"\n    \
                 Project          = \"core\"\n    \
                 TfPilotRequestId = \"{ID}\"\n  \
               }}\n\
             }}\n\
             # --- tfpilot:end:{ID} ---\n"
        )
    );
    let body = t.comment();
    assert!(body.contains(&expected), "{body}");
    assert!(
        body.contains("<details><summary>Terraform block</summary>"),
        "{body}"
    );
    assert!(
        body.contains("Comment `/tfpilot submit` to open the PR"),
        "{body}"
    );

    // A typed change, then a cleared one.
    let reply = t.say("/tfpilot set expiry=60").await;
    assert_eq!(
        reply.understood[0]
            .previous
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("30")
    );
    assert!(
        reply
            .block()
            .expect("complete")
            .contains("expiration_days    = 60")
    );
    let reply = t.say("/tfpilot unset expiration_days").await;
    assert_eq!(reply.cleared, ["expiration_days"]);
    assert!(!reply.block().expect("complete").contains("expiration_days"));
    assert_eq!(t.conv.turns, 4);
}

#[tokio::test]
async fn an_ecs_service_asks_until_every_required_input_is_there() {
    let mut t = Thread::open("/tfpilot new ecs env=dev name=api").await;
    let missing: Vec<&str> = t.last().missing().map(|r| r.name.as_str()).collect();
    assert_eq!(missing, ["cluster_name", "image", "subnet_ids"]);
    let body = t.comment();
    assert!(
        body.contains("**Still needed:** `cluster_name`, `image`, `subnet_ids`."),
        "{body}"
    );
    assert!(
        body.contains("**Question:** What should `cluster_name` be?"),
        "{body}"
    );

    // A bare answer fills the question that was asked.
    let reply = t.say("main").await;
    assert_eq!(reply.understood[0].input, "cluster_name");
    assert_eq!(t.conv.pending[0].input, "image");

    // A typo is answered, not stored.
    let reply = t.say("/tfpilot set image=nginx:1.25 cpu=300").await;
    assert_eq!(reply.problems.len(), 1);
    assert_eq!(reply.problems[0].subject(), "cpu");
    assert!(
        reply.problems[0]
            .to_string()
            .contains("`300` is not one of `256`, `512`")
    );

    let reply = t
        .say("> What should `subnet_ids` be?\n\nrun it in subnet-0abc1234 and subnet-0def5678, 2 vCPU and 4 GB")
        .await;
    assert!(reply.problems.is_empty(), "{:?}", reply.problems);
    assert!(
        reply.is_complete(),
        "{:?}",
        reply.missing().collect::<Vec<_>>()
    );
    let block = reply.block().expect("complete");
    // Arguments are aligned to the longest name, `execution_role_name`.
    let arg = |name: &str, value: &str| format!("  {name:<19} = {value}\n");
    assert!(
        block
            .contains("  subnet_ids = [\n    \"subnet-0abc1234\",\n    \"subnet-0def5678\"\n  ]\n"),
        "{block}"
    );
    for (name, value) in [
        ("cpu", "2048"),
        ("memory", "4096"),
        ("cluster_name", "\"main\""),
    ] {
        assert!(block.contains(&arg(name, value)), "{name}: {block}");
    }
}

#[tokio::test]
async fn new_reads_the_free_text_of_its_comment() {
    let t = Thread::open(
        "/tfpilot new s3 env=dev name=invoices\n\nWith versioning please, and keep objects for 2 weeks.",
    )
    .await;
    let reply = t.last();
    assert!(reply.is_complete());
    let states: BTreeMap<&str, &InputState> = reply
        .inputs
        .iter()
        .map(|r| (r.name.as_str(), &r.state))
        .collect();
    assert_eq!(
        states["versioning_enabled"],
        &InputState::Set(tfpilot::registry::InputValue::Bool(true))
    );
    assert_eq!(t.conv.values["expiration_days"], serde_json::json!(14));
}

#[tokio::test]
async fn show_repeats_the_state_without_a_turn() {
    let mut t = Thread::open("/tfpilot new queue env=dev name=jobs").await;
    let turns = t.conv.turns;
    let reply = t.say("/tfpilot show").await;
    assert!(reply.is_complete());
    assert!(reply.understood.is_empty());
    assert_eq!(t.conv.turns, turns);
}

#[tokio::test]
async fn a_flood_of_pairs_in_a_message_is_read_within_bounds() {
    let mut t = Thread::open("/tfpilot new s3 env=dev name=invoices").await;
    let message: String = (0..10_000).map(|i| format!("key{i}=value{i} ")).collect();
    let reply = t.say(&message).await;
    // Unknown keys are refused one by one; nothing is stored.
    assert!(!reply.problems.is_empty());
    assert!(
        reply
            .problems
            .iter()
            .all(|p| p.to_string().contains("is not an input"))
    );
    assert_eq!(t.conv.values.len(), 1);
    let body = t.comment();
    assert!(
        body.len() <= tfpilot::comments::GITHUB_MAX_COMMENT_CHARS,
        "{}",
        body.len()
    );
}

#[tokio::test]
async fn the_block_of_a_conversation_is_what_terraform_fmt_writes() {
    let terraform = crate::support::terraform();
    let mut t = Thread::open("/tfpilot new sqs env=dev name=jobs").await;
    t.say("make it fifo with a dlq, visibility timeout 2 minutes, tags Team=payments")
        .await;
    let block = t.last().block().expect("complete").to_owned();
    assert!(block.contains("fifo "), "{block}");
    let mut child = Process::new(terraform)
        .args(["fmt", "-check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run terraform fmt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(block.as_bytes())
        .expect("write block");
    let out = child.wait_with_output().expect("terraform fmt");
    assert!(
        out.status.success(),
        "terraform fmt -check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
