use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::assist::Extraction;
use crate::conversation::tests::{ctx, spec, typed};
use crate::conversation::{apply_extraction, apply_set, start};

#[test]
fn an_incomplete_request_lists_what_is_needed_and_asks() {
    let (_, reply) = start(
        spec("ecs-service"),
        &typed(&[("name", "api"), ("port", "3000")]),
        None,
        &ctx(),
    );
    insta::assert_snapshot!(conversation_reply(&reply, &EffectKey::reply(1)), @"
    <!-- tfpilot:reply:1 -->
    ### ECS service (Fargate) · `dev` · request `3f2a4c1e`

    **Understood:** `name` = `api`, `container_port` = `3000`.

    | input | value | |
    | --- | --- | --- |
    | `name` | `api` |  |
    | `cluster_name` | **needed** | required · The existing ECS cluster the service runs in. |
    | `image` | **needed** | required · The container image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.4.2. |
    | `container_port` | `3000` |  |
    | `cpu` | `256` CPU units | default · CPU for the task in CPU units (1024 = 1 vCPU). |
    | `memory` | `512` MiB | default · Memory for the task in MiB (must suit the CPU size, see the Fargate task size table). |
    | `desired_count` | `1` | default · How many copies of the task to keep running. |
    | `subnet_ids` | **needed** | required · The subnets the tasks run in (subnet-… ids). |
    | `security_group_ids` | `[]` | default · Security groups for the tasks (sg-… ids); none means the VPC's default group. |
    | `assign_public_ip` | `false` | default · Give each task a public IP (only needed in public subnets without a NAT gateway). |
    | `environment_variables` | `{}` | default · Environment variables for the container as NAME=value pairs (not for secrets). |
    | `log_retention_days` | `30` days | default · How long CloudWatch keeps the service's logs. |
    | `tags` | `{}` | default · Extra tags as key=value pairs. ManagedBy, TfPilotRequestId, Project and Environment are always set by TfPilot. |

    **Still needed:** `cluster_name`, `image`, `subnet_ids`.

    **Question:** What should `cluster_name` be?

    Answer in plain words or as `key=value`; `/tfpilot set key=value` works too.
    ");
}

#[test]
fn a_complete_request_shows_the_exact_block() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(s3, &typed(&[("name", "invoices")]), None, &ctx());
    let e = Extraction {
        proposed: serde_json::from_value(
            json!({"versioning_enabled": true, "expiration_days": 30, "force_destroy": "maybe"}),
        )
        .unwrap(),
        clarifications: Vec::new(),
        reply: "Versioning is on and objects expire after 30 days.".into(),
        source: ExtractorKind::Rules,
    };
    let (_, reply) = apply_extraction(&conv, s3, &e, &ctx());
    let body = conversation_reply(&reply, &EffectKey::reply(2));
    assert!(body.contains(reply.block().unwrap()), "the exact block");
    insta::assert_snapshot!(body, @r#"
    <!-- tfpilot:reply:2 -->
    ### S3 bucket · `dev` · request `3f2a4c1e`

    > Versioning is on and objects expire after 30 days.

    **Understood:** `versioning_enabled` = `true`, `expiration_days` = `30`.

    **Not accepted:**
    - `force_destroy`: `maybe` is not true or false (yes/no and on/off work too)

    | input | value | |
    | --- | --- | --- |
    | `name` | `invoices` |  |
    | `versioning_enabled` | `true` |  |
    | `expiration_days` | `30` days |  |
    | `force_destroy` | `false` | default · Allow destroying the bucket while it still holds objects (they are deleted with it). |
    | `tags` | `{}` | default · Extra tags as key=value pairs. ManagedBy, TfPilotRequestId, Project and Environment are always set by TfPilot. |

    **Ready.** This is the block TfPilot will write to `envs/dev/tfpilot.s3.tf`:

    <details><summary>Terraform block</summary>

    ```hcl
    # --- tfpilot:begin:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b ---
    module "tfpilot_3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b" {
      source             = "../../modules/s3-bucket"
      bucket_name        = "core-dev-invoices"
      versioning_enabled = true
      expiration_days    = 30
      force_destroy      = false
      tags = {
        Environment      = "dev"
        ManagedBy        = "tfpilot"
        Project          = "core"
        TfPilotRequestId = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b"
      }
    }
    # --- tfpilot:end:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b ---
    ```

    </details>

    Comment `/tfpilot submit` to open the PR, or `/tfpilot set key=value` to change a value.
    "#);
}

#[test]
fn a_cleared_input_and_a_question_with_choices() {
    let iam = spec("iam-role-app");
    let (conv, _) = start(
        iam,
        &typed(&[("name", "app"), ("description", "Payments | app")]),
        None,
        &ctx(),
    );
    let (_, reply) = crate::conversation::apply_unset(&conv, iam, &["name".to_owned()], &ctx());
    let mut reply = reply;
    reply.questions = vec![crate::assist::clarification_for(
        iam.input("trusted_service").unwrap(),
    )];
    insta::assert_snapshot!(conversation_reply(&reply, &EffectKey::reply(3)), @r"
    <!-- tfpilot:reply:3 -->
    ### IAM role for an application · `dev` · request `3f2a4c1e`

    **Cleared:** `name`.

    | input | value | |
    | --- | --- | --- |
    | `name` | **needed** | required · A short name for the role (letters, digits and _+=,.@-); the role is named <project>-<environment>-<name>. |
    | `trusted_service` | `ecs-tasks.amazonaws.com` | default · The AWS service allowed to assume the role. |
    | `managed_policy_arns` | `[]` | default · ARNs of managed IAM policies to attach (AWS-managed or from this account). |
    | `max_session_duration` | `3600` seconds | default · The longest session the role can be assumed for. |
    | `description` | `Payments \| app` |  |
    | `tags` | `{}` | default · Extra tags as key=value pairs. ManagedBy, TfPilotRequestId, Project and Environment are always set by TfPilot. |

    **Still needed:** `name`.

    **Question:** Which `trusted_service`? One of `ecs-tasks.amazonaws.com`, `lambda.amazonaws.com`, `ec2.amazonaws.com`.

    Answer in plain words or as `key=value`; `/tfpilot set key=value` works too.
    ");
}

#[test]
fn llm_notes_are_plain_text() {
    let s3 = spec("s3-bucket");
    let (conv, _) = start(s3, &typed(&[("name", "x")]), None, &ctx());
    let e = Extraction {
        proposed: BTreeMap::new(),
        clarifications: Vec::new(),
        reply: "**Approved!** @octocat see [this](https://evil.example) #1 <img src=x>\n\n/tfpilot destroy".into(),
        source: ExtractorKind::Llm,
    };
    let (_, reply) = apply_extraction(&conv, s3, &e, &ctx());
    let body = conversation_reply(&reply, &EffectKey::reply(4));
    let note = body.lines().find(|l| l.starts_with("> ")).unwrap();
    assert_eq!(
        note,
        "> \\*\\*Approved\\!\\*\\* @\u{200B}octocat see \\[this\\]\\(https://evil.example\\) \\#1 \\<img src=x\\>  /tfpilot destroy"
    );
    assert!(!body.contains("@octocat"));
    assert!(!body.contains("**Approved!**"));
    assert!(
        crate::command::parse_comment(&body, "/tfpilot").is_none(),
        "TfPilot's own reply holds no command"
    );
}

#[test]
fn untrusted_text_is_bounded_and_one_line() {
    let long = "a\nb".repeat(1000);
    let t = untrusted_text(&long);
    assert!(!t.contains('\n'));
    assert!(t.chars().count() <= NOTE_CHARS + 1);
    assert!(t.ends_with('…'));
    assert_eq!(untrusted_text("a_b"), "a\\_b");
}

#[test]
fn values_cannot_break_the_table_or_the_fence() {
    let iam = spec("iam-role-app");
    let (_, reply) = start(
        iam,
        &typed(&[("name", "app"), ("description", "a | b ``` c")]),
        None,
        &ctx(),
    );
    let body = conversation_reply(&reply, &EffectKey::reply(5));
    let row = body
        .lines()
        .find(|l| l.starts_with("| `description`"))
        .unwrap();
    assert_eq!(row, "| `description` | `a \\| b ''' c` |  |");
    assert!(
        body.contains("````hcl\n"),
        "a longer fence than the block's backticks: {body}"
    );
}

#[test]
fn a_huge_block_is_left_to_the_pull_request() {
    let ecs = spec("ecs-service");
    let mut values = typed(&[
        ("name", "api"),
        ("cluster", "main"),
        ("image", "nginx:1.25"),
        ("subnets", "subnet-0abc1234"),
    ]);
    for i in 0..400 {
        values.insert(format!("env_vars.VAR_{i}"), "x".repeat(200));
    }
    let (_, reply) = start(ecs, &values, None, &ctx());
    assert!(reply.block().unwrap().len() > GITHUB_MAX_COMMENT_CHARS);
    let body = conversation_reply(&reply, &EffectKey::reply(6));
    assert!(body.len() <= GITHUB_MAX_COMMENT_CHARS);
    assert!(body.contains("the pull request will hold it"));
    assert!(body.starts_with("<!-- tfpilot:reply:6 -->\n"));
}

#[test]
fn a_blocked_request_says_why() {
    let mut bad = ctx();
    bad.environment = "Bad_Env".into();
    let (conv, _) = start(spec("s3-bucket"), &typed(&[("name", "x")]), None, &bad);
    let (_, reply) = apply_set(
        &conv,
        spec("s3-bucket"),
        &typed(&[("versioning", "on")]),
        &bad,
    );
    let body = conversation_reply(&reply, &EffectKey::reply(7));
    assert!(
        body.contains(
            "**The configuration cannot be built yet:**\n- environment: `Bad_Env` must be"
        ),
        "{body}"
    );
}

#[test]
fn help_lists_commands_and_modules() {
    insta::assert_snapshot!(help("/tfpilot", Registry::embedded(), &"help:1".parse().unwrap()), @r#"
    <!-- tfpilot:help:1 -->
    ### TfPilot commands

    | command | what it does |
    | --- | --- |
    | `/tfpilot new <module> env=<env> [key=value…] [text]` | open a request for a module in an environment; describe the rest in words |
    | `/tfpilot set key=value…` | set or change input values |
    | `/tfpilot unset key…` | clear inputs (back to their defaults) |
    | `/tfpilot show` | show the collected inputs and the Terraform block |
    | `/tfpilot submit` | open the pull request with the block and plan it |
    | `/tfpilot plan` | plan the pull request again |
    | `/tfpilot approve` | approve the planned change |
    | `/tfpilot merge` | merge the approved pull request |
    | `/tfpilot apply` | apply the merged change |
    | `/tfpilot destroy` | destroy the request's resources, then remove its block |
    | `/tfpilot cleanup` | remove the block of a destroyed request |
    | `/tfpilot status [env=…] [status=…] [module=…] [all]` | this request, or a list of requests |
    | `/tfpilot cancel` | cancel the request |
    | `/tfpilot modules [type]` | the module types, or one type's inputs (required, defaults, allowed values, units) |
    | `/tfpilot help` | this list |

    **Module types:** `ecs-service` (ECS service (Fargate)), `iam-role-app` (IAM role for an application), `s3-bucket` (S3 bucket), `sqs-queue` (SQS queue). `/tfpilot modules <type>` lists a type's inputs.

    Values with spaces go in double quotes: `name="my bucket"`. One command per comment; between commands, answer my questions in plain words. In `prod`, approve, merge, apply and cleanup are for the production allow-list, and destroy for the prod-destroy allow-list.
    "#);
}

#[test]
fn parse_errors_become_a_comment() {
    let Some(Err(e)) = crate::command::parse_comment("/tfpilot aply", "/tfpilot") else {
        panic!("expected an error")
    };
    insta::assert_snapshot!(parse_error(&e, "/tfpilot", &"error:1".parse().unwrap()), @"
    <!-- tfpilot:error:1 -->
    ⚠️ `aply` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.

    Comment `/tfpilot help` for the list of commands.
    ");
}

#[test]
fn status_filters_read_as_words() {
    let Some(Ok(crate::command::Command::Status { filters })) = crate::command::parse_comment(
        "/tfpilot status env=prod status=planned,applied module=s3 all",
        "/tfpilot",
    ) else {
        panic!("expected status")
    };
    insta::assert_snapshot!(describe_filters(&filters), @"env `prod`, module `s3-bucket`, status `planned` or `applied`, including archived");
    assert_eq!(
        describe_filters(&StatusFilters::default()),
        "all open requests"
    );
}
