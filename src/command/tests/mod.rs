use super::*;

fn parse(body: &str) -> Option<Result<Command, ParseError>> {
    parse_comment(body, DEFAULT_PREFIX)
}

/// One line per case: what the parser made of it (`-` for no command, `Err: <message>`).
fn show(body: &str) -> String {
    match parse(body) {
        None => "-".to_owned(),
        Some(Ok(c)) => format!("{c:?}"),
        Some(Err(e)) => format!("Err: {e}"),
    }
}

fn table(cases: &[&str]) -> String {
    cases
        .iter()
        .map(|c| format!("{:?} => {}", c, show(c)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(body: &str) -> Command {
    match parse(body) {
        Some(Ok(c)) => c,
        other => panic!("{body:?}: expected a command, got {other:?}"),
    }
}

fn err(body: &str) -> ParseError {
    match parse(body) {
        Some(Err(e)) => e,
        other => panic!("{body:?}: expected an error, got {other:?}"),
    }
}

#[test]
fn no_command() {
    for body in [
        "",
        "Looks good to me!",
        "please run tfpilot help",
        "you can type /tfpilot help to see the commands",
        "/tfpilotx help",
        "/tfpilot-bot help",
        "tfpilot apply",
        "/ tfpilot apply",
    ] {
        assert_eq!(parse(body), None, "{body:?}");
    }
}

#[test]
fn simple_commands() {
    insta::assert_snapshot!(table(&[
        "/tfpilot help",
        "/tfpilot show",
        "/tfpilot submit",
        "/tfpilot plan",
        "/tfpilot approve",
        "/tfpilot merge",
        "/tfpilot apply",
        "/tfpilot destroy",
        "/tfpilot cleanup",
        "/tfpilot status",
        "/tfpilot cancel",
        "/tfpilot",
        "/tfpilot   ",
    ]), @r#"
    "/tfpilot help" => Help
    "/tfpilot show" => Show
    "/tfpilot submit" => Submit
    "/tfpilot plan" => Plan
    "/tfpilot approve" => Approve
    "/tfpilot merge" => Merge
    "/tfpilot apply" => Apply
    "/tfpilot destroy" => Destroy
    "/tfpilot cleanup" => Cleanup
    "/tfpilot status" => Status { filters: StatusFilters { environment: None, project: None, module_type: None, statuses: [], include_archived: false } }
    "/tfpilot cancel" => Cancel
    "/tfpilot" => Help
    "/tfpilot   " => Help
    "#);
}

#[test]
fn prefix_and_command_words_ignore_case_and_surrounding_space() {
    insta::assert_snapshot!(table(&[
        "/TFPILOT apply",
        "/TfPilot Apply",
        "   /tfpilot apply   ",
        "\t/tfpilot\tapply",
        "/tfpilot APPLY",
        "/tfpilot\u{a0}apply",
    ]), @r#"
    "/TFPILOT apply" => Apply
    "/TfPilot Apply" => Apply
    "   /tfpilot apply   " => Apply
    "\t/tfpilot\tapply" => -
    "/tfpilot APPLY" => Apply
    "/tfpilot\u{a0}apply" => Apply
    "#);
}

#[test]
fn a_configured_prefix_is_used() {
    assert_eq!(
        parse_comment("@tfpilot apply", "@tfpilot"),
        Some(Ok(Command::Apply))
    );
    assert_eq!(parse_comment("/tfpilot apply", "@tfpilot"), None);
    assert_eq!(parse_comment("/tfpilot apply", ""), None);
    assert_eq!(
        parse_comment("/tf apply", " /tf "),
        Some(Ok(Command::Apply))
    );
}

#[test]
fn simple_commands_take_no_arguments() {
    insta::assert_snapshot!(table(&[
        "/tfpilot approve looks good",
        "/tfpilot destroy now please",
        "/tfpilot apply env=prod",
        "/tfpilot show me",
        "/tfpilot cancel --force",
        "/tfpilot help new",
        "/tfpilot help me please",
    ]), @r#"
    "/tfpilot approve looks good" => Err: `approve` takes no arguments, but got `looks good`. Comment the command alone.
    "/tfpilot destroy now please" => Err: `destroy` takes no arguments, but got `now please`. Comment the command alone.
    "/tfpilot apply env=prod" => Err: `apply` takes no arguments, but got `env=prod`. Comment the command alone.
    "/tfpilot show me" => Err: `show` takes no arguments, but got `me`. Comment the command alone.
    "/tfpilot cancel --force" => Err: `cancel` takes no arguments, but got `--force`. Comment the command alone.
    "/tfpilot help new" => Help
    "/tfpilot help me please" => Help
    "#);
}

#[test]
fn unknown_commands_suggest_the_closest() {
    insta::assert_snapshot!(table(&[
        "/tfpilot aply",
        "/tfpilot aprove",
        "/tfpilot approv",
        "/tfpilot destory",
        "/tfpilot sumbit",
        "/tfpilot stauts",
        "/tfpilot hlep",
        "/tfpilot cancle",
        "/tfpilot mrege",
        "/tfpilot cleanpu",
        "/tfpilot unsett x",
        "/tfpilot create s3-bucket",
        "/tfpilot s3-bucket env=dev",
        "/tfpilot queue",
        "/tfpilot frobnicate",
        "/tfpilot x",
    ]), @r#"
    "/tfpilot aply" => Err: `aply` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot aprove" => Err: `aprove` is not a command — did you mean `approve`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot approv" => Err: `approv` is not a command — did you mean `approve`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot destory" => Err: `destory` is not a command — did you mean `destroy`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot sumbit" => Err: `sumbit` is not a command — did you mean `submit`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot stauts" => Err: `stauts` is not a command — did you mean `status`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot hlep" => Err: `hlep` is not a command — did you mean `help`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot cancle" => Err: `cancle` is not a command — did you mean `cancel`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot mrege" => Err: `mrege` is not a command — did you mean `merge`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot cleanpu" => Err: `cleanpu` is not a command — did you mean `cleanup`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot unsett x" => Err: `unsett` is not a command — did you mean `unset`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot create s3-bucket" => Err: `create` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot s3-bucket env=dev" => Err: `s3-bucket` is not a command — did you mean `new s3-bucket`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot queue" => Err: `queue` is not a command — did you mean `new sqs-queue`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot frobnicate" => Err: `frobnicate` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot x" => Err: `x` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "#);
}

#[test]
fn new_reads_module_environment_project_values_and_text() {
    insta::assert_debug_snapshot!(ok("/tfpilot new s3-bucket env=dev name=invoices"), @r#"
    New {
        module: "s3-bucket",
        environment: Some(
            "dev",
        ),
        project: None,
        values: {
            "name": "invoices",
        },
        free_text: "",
    }
    "#);
    insta::assert_debug_snapshot!(
        ok("/tfpilot new s3 env=dev project=core name=invoices versioning=on expiry-days=30 turn on versioning please"),
        @r#"
    New {
        module: "s3-bucket",
        environment: Some(
            "dev",
        ),
        project: Some(
            "core",
        ),
        values: {
            "expiration_days": "30",
            "name": "invoices",
            "versioning_enabled": "on",
        },
        free_text: "turn on versioning please",
    }
    "#
    );
}

#[test]
fn new_table() {
    insta::assert_snapshot!(table(&[
        "/tfpilot new s3-bucket",
        "/tfpilot new S3_Bucket env=DEV",
        "/tfpilot new bucket environment=prod",
        "/tfpilot new s3 --env dev",
        "/tfpilot new s3 --env=dev --project=core",
        "/tfpilot new s3 --environment staging",
        "/tfpilot new queue env=dev name=jobs fifo=true",
        "/tfpilot new sqs-queue env=dev visibilityTimeout=60",
        "/tfpilot new role env=dev trusted_service=lambda.amazonaws.com",
        "/tfpilot new ecs env=dev name=api image=nginx:1.25 subnets=subnet-0abc1234,subnet-0def5678",
        "/tfpilot new s3 env=dev tags.Team=payments tags.Owner=alice",
        "/tfpilot new s3 env=dev labels.Team=payments",
        r#"/tfpilot new s3 env=dev name="my bucket""#,
        "/tfpilot new s3 env=dev name='my bucket'",
        "/tfpilot new s3 env=dev with versioning and keep objects 30 days",
        "/tfpilot new s3 env=dev name=a name=a",
    ]), @r#"
    "/tfpilot new s3-bucket" => New { module: "s3-bucket", environment: None, project: None, values: {}, free_text: "" }
    "/tfpilot new S3_Bucket env=DEV" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {}, free_text: "" }
    "/tfpilot new bucket environment=prod" => New { module: "s3-bucket", environment: Some("prod"), project: None, values: {}, free_text: "" }
    "/tfpilot new s3 --env dev" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {}, free_text: "" }
    "/tfpilot new s3 --env=dev --project=core" => New { module: "s3-bucket", environment: Some("dev"), project: Some("core"), values: {}, free_text: "" }
    "/tfpilot new s3 --environment staging" => New { module: "s3-bucket", environment: Some("staging"), project: None, values: {}, free_text: "" }
    "/tfpilot new queue env=dev name=jobs fifo=true" => New { module: "sqs-queue", environment: Some("dev"), project: None, values: {"fifo": "true", "name": "jobs"}, free_text: "" }
    "/tfpilot new sqs-queue env=dev visibilityTimeout=60" => New { module: "sqs-queue", environment: Some("dev"), project: None, values: {"visibility_timeout_seconds": "60"}, free_text: "" }
    "/tfpilot new role env=dev trusted_service=lambda.amazonaws.com" => New { module: "iam-role-app", environment: Some("dev"), project: None, values: {"trusted_service": "lambda.amazonaws.com"}, free_text: "" }
    "/tfpilot new ecs env=dev name=api image=nginx:1.25 subnets=subnet-0abc1234,subnet-0def5678" => New { module: "ecs-service", environment: Some("dev"), project: None, values: {"image": "nginx:1.25", "name": "api", "subnet_ids": "subnet-0abc1234,subnet-0def5678"}, free_text: "" }
    "/tfpilot new s3 env=dev tags.Team=payments tags.Owner=alice" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {"tags.Owner": "alice", "tags.Team": "payments"}, free_text: "" }
    "/tfpilot new s3 env=dev labels.Team=payments" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {"tags.Team": "payments"}, free_text: "" }
    "/tfpilot new s3 env=dev name=\"my bucket\"" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {"name": "my bucket"}, free_text: "" }
    "/tfpilot new s3 env=dev name='my bucket'" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {"name": "my bucket"}, free_text: "" }
    "/tfpilot new s3 env=dev with versioning and keep objects 30 days" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {}, free_text: "with versioning and keep objects 30 days" }
    "/tfpilot new s3 env=dev name=a name=a" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {"name": "a"}, free_text: "" }
    "#);
}

#[test]
fn new_errors() {
    insta::assert_snapshot!(table(&[
        "/tfpilot new",
        "/tfpilot new env=dev",
        "/tfpilot new --env dev",
        "/tfpilot new s3-bukcet env=dev",
        "/tfpilot new dynamodb env=dev",
        "/tfpilot new s3 env=dev versoning=on",
        "/tfpilot new s3 env=dev versoning=on expiraton_days=3 zzz=1",
        "/tfpilot new s3 env=dev name=a name=b",
        "/tfpilot new s3 env=dev versioning=on versioning_enabled=off",
        "/tfpilot new s3 env=dev env=prod",
        "/tfpilot new s3 env=dev --env prod",
        "/tfpilot new s3 env=Prod_1",
        "/tfpilot new s3 env=-dev",
        "/tfpilot new s3 env=",
        "/tfpilot new s3 --env",
        "/tfpilot new s3 --region eu-west-1",
        "/tfpilot new s3 --enviroment dev",
        "/tfpilot new s3 project=Core!",
        "/tfpilot new s3 env=dev module=sqs-queue",
        "/tfpilot new s3 env=dev request_id=abc",
        "/tfpilot new s3 env=dev =value",
        "/tfpilot new s3 env=dev name=\"unclosed",
        "/tfpilot new s3 env=dev tags.=x",
    ]), @r#"
    "/tfpilot new" => Err: `new` needs a module type, for example `new s3-bucket env=dev name=invoices`. Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot new env=dev" => Err: `new` needs a module type, for example `new s3-bucket env=dev name=invoices`. Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot new --env dev" => Err: `new` needs a module type, for example `new s3-bucket env=dev name=invoices`. Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot new s3-bukcet env=dev" => Err: `s3-bukcet` is not a module type — did you mean `s3-bucket`? Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot new dynamodb env=dev" => Err: `dynamodb` is not a module type. Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot new s3 env=dev versoning=on" => Err: `versoning` is not an input of `s3-bucket` — did you mean `versioning_enabled`?
    "/tfpilot new s3 env=dev versoning=on expiraton_days=3 zzz=1" => Err: `expiraton_days` is not an input of `s3-bucket` — did you mean `expiration_days`? `versoning` is not an input of `s3-bucket` — did you mean `versioning_enabled`? `zzz` is not an input of `s3-bucket`.
    "/tfpilot new s3 env=dev name=a name=b" => Err: `name` is given more than once with different values; give it once.
    "/tfpilot new s3 env=dev versioning=on versioning_enabled=off" => Err: `versioning_enabled` is given more than once with different values; give it once.
    "/tfpilot new s3 env=dev env=prod" => Err: `env` is given more than once with different values; give it once.
    "/tfpilot new s3 env=dev --env prod" => Err: `env` is given more than once with different values; give it once.
    "/tfpilot new s3 env=Prod_1" => Err: `Prod_1` is not an environment name (1–32 lowercase letters, digits and hyphens, starting with a letter, like `dev`).
    "/tfpilot new s3 env=-dev" => Err: `-dev` is not an environment name (1–32 lowercase letters, digits and hyphens, starting with a letter, like `dev`).
    "/tfpilot new s3 env=" => Err: `env` has no value. Write `env=<value>`.
    "/tfpilot new s3 --env" => Err: `--env` has no value. Write `--env=<value>`.
    "/tfpilot new s3 --region eu-west-1" => Err: `new` has no option `--region`. Options: `env`, `environment`, `project`.
    "/tfpilot new s3 --enviroment dev" => Err: `new` has no option `--enviroment` — did you mean `--environment`? Options: `env`, `environment`, `project`.
    "/tfpilot new s3 project=Core!" => Err: `Core!` is not a project name (1–32 lowercase letters, digits and hyphens, starting with a letter).
    "/tfpilot new s3 env=dev module=sqs-queue" => Err: `module` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot new s3 env=dev request_id=abc" => Err: `request_id` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot new s3 env=dev =value" => Err: `=value` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot new s3 env=dev name=\"unclosed" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "/tfpilot new s3 env=dev tags.=x" => Err: `tags.` is not a valid key: keys are words like `name` or `tags.Team`.
    "#);
}

#[test]
fn set_and_unset() {
    insta::assert_snapshot!(table(&[
        "/tfpilot set versioning=on",
        "/tfpilot set versioning=on expiration_days=30",
        "/tfpilot set name=\"a b\" tags.Team=payments",
        "/tfpilot set tags=Team=payments,Owner=alice",
        "/tfpilot set description=\"Role for the #payments team\"",
        "/tfpilot set a=1 a=1",
        "/tfpilot set url=https://example.com/a?b=c",
        "/tfpilot unset expiration_days",
        "/tfpilot unset expiration_days tags.Team expiration_days",
        "/tfpilot unset versioningEnabled",
    ]), @r#"
    "/tfpilot set versioning=on" => Set { values: {"versioning": "on"} }
    "/tfpilot set versioning=on expiration_days=30" => Set { values: {"expiration_days": "30", "versioning": "on"} }
    "/tfpilot set name=\"a b\" tags.Team=payments" => Set { values: {"name": "a b", "tags.Team": "payments"} }
    "/tfpilot set tags=Team=payments,Owner=alice" => Set { values: {"tags": "Team=payments,Owner=alice"} }
    "/tfpilot set description=\"Role for the #payments team\"" => Set { values: {"description": "Role for the #payments team"} }
    "/tfpilot set a=1 a=1" => Set { values: {"a": "1"} }
    "/tfpilot set url=https://example.com/a?b=c" => Set { values: {"url": "https://example.com/a?b=c"} }
    "/tfpilot unset expiration_days" => Unset { keys: ["expiration_days"] }
    "/tfpilot unset expiration_days tags.Team expiration_days" => Unset { keys: ["expiration_days", "tags.Team"] }
    "/tfpilot unset versioningEnabled" => Unset { keys: ["versioningEnabled"] }
    "#);
}

#[test]
fn set_and_unset_errors() {
    insta::assert_snapshot!(table(&[
        "/tfpilot set",
        "/tfpilot unset",
        "/tfpilot set versioning",
        "/tfpilot set versioning on",
        "/tfpilot set versioning=",
        "/tfpilot set versioning=\"\"",
        "/tfpilot set a=1 a=2",
        "/tfpilot set env=prod",
        "/tfpilot set environment=prod",
        "/tfpilot set Project=other",
        "/tfpilot set module_type=sqs-queue",
        "/tfpilot set request_id=00000000-0000-0000-0000-000000000000",
        "/tfpilot set --force x=1",
        "/tfpilot set bad/key=1",
        "/tfpilot unset name=x",
        "/tfpilot unset --all",
        "/tfpilot unset env",
        "/tfpilot unset a/b",
    ]), @r#"
    "/tfpilot set" => Err: `set` needs values as `key=value`, for example `set versioning_enabled=true`.
    "/tfpilot unset" => Err: `unset` needs the inputs to clear, for example `unset expiration_days`.
    "/tfpilot set versioning" => Err: `set` takes `key=value` pairs, but `versioning` has no `=`. To write a value with spaces, quote it: `key="two words"`.
    "/tfpilot set versioning on" => Err: `set` takes `key=value` pairs, but `versioning` has no `=`. To write a value with spaces, quote it: `key="two words"`.
    "/tfpilot set versioning=" => Err: `versioning=` has no value. Write `versioning=<value>`, or `unset versioning` to clear it.
    "/tfpilot set versioning=\"\"" => Err: `versioning=` has no value. Write `versioning=<value>`, or `unset versioning` to clear it.
    "/tfpilot set a=1 a=2" => Err: `a` is given more than once with different values; give it once.
    "/tfpilot set env=prod" => Err: `env` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot set environment=prod" => Err: `environment` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot set Project=other" => Err: `Project` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot set module_type=sqs-queue" => Err: `module_type` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot set request_id=00000000-0000-0000-0000-000000000000" => Err: `request_id` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot set --force x=1" => Err: `set` takes no options, but got `--force`.
    "/tfpilot set bad/key=1" => Err: `bad/key` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot unset name=x" => Err: `unset` takes input names only, but got `name=x`. To change a value, use `set`.
    "/tfpilot unset --all" => Err: `unset` takes no options, but got `--all`.
    "/tfpilot unset env" => Err: `env` is not an input: the environment, project and module of a request are fixed when it is opened. To change them, `cancel` this request and open a new one.
    "/tfpilot unset a/b" => Err: `a/b` is not a valid key: keys are words like `name` or `tags.Team`.
    "#);
}

#[test]
fn status_filters() {
    insta::assert_snapshot!(table(&[
        "/tfpilot status",
        "/tfpilot status env=prod",
        "/tfpilot status --env prod",
        "/tfpilot status environment=Dev project=core",
        "/tfpilot status module=s3",
        "/tfpilot status status=planned,applied",
        "/tfpilot status planned",
        "/tfpilot status all",
        "/tfpilot status --all env=dev",
        "/tfpilot status status=planed",
        "/tfpilot status module=dynamo",
        "/tfpilot status evn=prod",
        "/tfpilot status --evn prod",
        "/tfpilot status foo",
        "/tfpilot status #12",
    ]), @r#"
    "/tfpilot status" => Status { filters: StatusFilters { environment: None, project: None, module_type: None, statuses: [], include_archived: false } }
    "/tfpilot status env=prod" => Status { filters: StatusFilters { environment: Some("prod"), project: None, module_type: None, statuses: [], include_archived: false } }
    "/tfpilot status --env prod" => Status { filters: StatusFilters { environment: Some("prod"), project: None, module_type: None, statuses: [], include_archived: false } }
    "/tfpilot status environment=Dev project=core" => Status { filters: StatusFilters { environment: Some("dev"), project: Some("core"), module_type: None, statuses: [], include_archived: false } }
    "/tfpilot status module=s3" => Status { filters: StatusFilters { environment: None, project: None, module_type: Some("s3-bucket"), statuses: [], include_archived: false } }
    "/tfpilot status status=planned,applied" => Status { filters: StatusFilters { environment: None, project: None, module_type: None, statuses: [Planned, Applied], include_archived: false } }
    "/tfpilot status planned" => Status { filters: StatusFilters { environment: None, project: None, module_type: None, statuses: [Planned], include_archived: false } }
    "/tfpilot status all" => Status { filters: StatusFilters { environment: None, project: None, module_type: None, statuses: [], include_archived: true } }
    "/tfpilot status --all env=dev" => Status { filters: StatusFilters { environment: Some("dev"), project: None, module_type: None, statuses: [], include_archived: true } }
    "/tfpilot status status=planed" => Err: `planed` is not a request status — did you mean `planned`? Statuses: `collecting`, `ready`, `pr_open`, `planning`, `planned`, `plan_failed`, `approved`, `merged`, `applying`, `applied`, `apply_failed`, `destroying`, `destroy_failed`, `destroyed`, `cancelled`, `pr_closed`.
    "/tfpilot status module=dynamo" => Err: `dynamo` is not a module type. Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`.
    "/tfpilot status evn=prod" => Err: `status` has no option `evn` — did you mean `env`? Options: `env`, `environment`, `project`, `module`, `status`, `all`.
    "/tfpilot status --evn prod" => Err: `status` has no option `--evn` — did you mean `--env`? Options: `env`, `environment`, `project`, `module`, `status`, `all`.
    "/tfpilot status foo" => Err: `status` has no option `foo`. Options: `env`, `environment`, `project`, `module`, `status`, `all`.
    "/tfpilot status #12" => Err: `status` has no option `#12`. Options: `env`, `environment`, `project`, `module`, `status`, `all`.
    "#);
}

#[test]
fn status_filters_become_a_store_query() {
    let Command::Status { filters } =
        ok("/tfpilot status env=prod module=queue status=applied all")
    else {
        panic!("not status");
    };
    assert!(!filters.is_empty());
    let q = filters.to_list_filter();
    assert_eq!(q.environment.as_deref(), Some("prod"));
    assert_eq!(q.module_type.as_deref(), Some("sqs-queue"));
    assert_eq!(q.statuses, vec![RequestStatus::Applied]);
    assert!(q.include_archived);
    assert!(StatusFilters::default().is_empty());
}

#[test]
fn names_and_mutation() {
    let cases = [
        ("/tfpilot help", "help", false),
        ("/tfpilot new s3 env=dev", "new", true),
        ("/tfpilot set a=1", "set", true),
        ("/tfpilot unset a", "unset", true),
        ("/tfpilot show", "show", false),
        ("/tfpilot submit", "submit", true),
        ("/tfpilot plan", "plan", true),
        ("/tfpilot approve", "approve", true),
        ("/tfpilot merge", "merge", true),
        ("/tfpilot apply", "apply", true),
        ("/tfpilot destroy", "destroy", true),
        ("/tfpilot cleanup", "cleanup", true),
        ("/tfpilot status", "status", false),
        ("/tfpilot cancel", "cancel", true),
        ("/tfpilot modules", "modules", false),
        ("/tfpilot drift", "drift", true),
    ];
    for (body, name, mutating) in cases {
        let c = ok(body);
        assert_eq!(c.name(), name, "{body}");
        assert_eq!(c.is_mutating(), mutating, "{body}");
    }
    let names: Vec<&str> = cases.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(names, COMMAND_NAMES);
}

mod markdown_and_limits;

#[test]
fn modules_lists_the_catalogue_or_one_type() {
    assert_eq!(ok("/tfpilot modules"), Command::Modules { module: None });
    assert_eq!(
        ok("/tfpilot modules s3-bucket"),
        Command::Modules {
            module: Some("s3-bucket".into())
        }
    );
    assert_eq!(
        ok("/tfpilot MODULES queue"),
        Command::Modules {
            module: Some("sqs-queue".into())
        },
        "an alias names its type"
    );
    assert!(!ok("/tfpilot modules").is_mutating());
    assert_eq!(
        err("/tfpilot modules s3-buckit").to_string(),
        "`s3-buckit` is not a module type — did you mean `s3-bucket`? Module types: `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`."
    );
    assert_eq!(
        err("/tfpilot modules s3-bucket sqs-queue").to_string(),
        "`modules` takes at most one module type, but got `s3-bucket sqs-queue`. For example `modules s3-bucket`."
    );
    assert_eq!(
        err("/tfpilot modul").to_string(),
        "`modul` is not a command — did you mean `modules`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`."
    );
}

#[test]
fn drift_takes_an_environment() {
    assert_eq!(ok("/tfpilot drift"), Command::Drift { environment: None });
    for body in [
        "/tfpilot drift env=Prod",
        "/tfpilot drift --env prod",
        "/tfpilot drift environment=prod",
    ] {
        assert_eq!(
            ok(body),
            Command::Drift {
                environment: Some("prod".into())
            },
            "{body}"
        );
    }
    assert_eq!(
        err("/tfpilot drift now").to_string(),
        "`drift` takes only an environment (`drift env=prod`), but got `now`."
    );
    assert_eq!(
        err("/tfpilot drift env=dev env=prod").to_string(),
        ParseError::DuplicateKey { key: "env".into() }.to_string()
    );
}
