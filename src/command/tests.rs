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
    "/tfpilot aply" => Err: `aply` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot aprove" => Err: `aprove` is not a command — did you mean `approve`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot approv" => Err: `approv` is not a command — did you mean `approve`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot destory" => Err: `destory` is not a command — did you mean `destroy`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot sumbit" => Err: `sumbit` is not a command — did you mean `submit`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot stauts" => Err: `stauts` is not a command — did you mean `status`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot hlep" => Err: `hlep` is not a command — did you mean `help`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot cancle" => Err: `cancle` is not a command — did you mean `cancel`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot mrege" => Err: `mrege` is not a command — did you mean `merge`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot cleanpu" => Err: `cleanpu` is not a command — did you mean `cleanup`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot unsett x" => Err: `unsett` is not a command — did you mean `unset`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot create s3-bucket" => Err: `create` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot s3-bucket env=dev" => Err: `s3-bucket` is not a command — did you mean `new s3-bucket`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot queue" => Err: `queue` is not a command — did you mean `new sqs-queue`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot frobnicate" => Err: `frobnicate` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot x" => Err: `x` is not a command. Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
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
    ];
    for (body, name, mutating) in cases {
        let c = ok(body);
        assert_eq!(c.name(), name, "{body}");
        assert_eq!(c.is_mutating(), mutating, "{body}");
    }
    let names: Vec<&str> = cases.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(names, COMMAND_NAMES);
}

#[test]
fn markdown_hides_commands() {
    insta::assert_snapshot!(table(&[
        "`/tfpilot apply`",
        "Run `/tfpilot apply` when ready",
        "```\n/tfpilot apply\n```",
        "~~~\n/tfpilot apply\n~~~",
        "    /tfpilot apply",
        "> /tfpilot apply",
        "> quoted\n> /tfpilot destroy\n\nthanks",
        "<!-- /tfpilot apply -->",
        "<!--\n/tfpilot apply\n-->",
        "text <!-- /tfpilot apply --> more",
        "<details>\n/tfpilot apply\n</details>",
        "# /tfpilot apply",
        "[/tfpilot apply](https://example.com)",
        "![/tfpilot apply](x.png)",
        "> ```\n> /tfpilot apply\n> ```",
    ]), @r##"
    "`/tfpilot apply`" => -
    "Run `/tfpilot apply` when ready" => -
    "```\n/tfpilot apply\n```" => -
    "~~~\n/tfpilot apply\n~~~" => -
    "    /tfpilot apply" => -
    "> /tfpilot apply" => -
    "> quoted\n> /tfpilot destroy\n\nthanks" => -
    "<!-- /tfpilot apply -->" => -
    "<!--\n/tfpilot apply\n-->" => -
    "text <!-- /tfpilot apply --> more" => -
    "<details>\n/tfpilot apply\n</details>" => -
    "# /tfpilot apply" => -
    "[/tfpilot apply](https://example.com)" => -
    "![/tfpilot apply](x.png)" => -
    "> ```\n> /tfpilot apply\n> ```" => -
    "##);
}

#[test]
fn markdown_around_commands() {
    insta::assert_snapshot!(table(&[
        "Thanks!\n\n/tfpilot apply",
        "/tfpilot apply\n\nthanks",
        "**/tfpilot apply**",
        "- /tfpilot apply",
        "1. /tfpilot apply",
        "> earlier: /tfpilot destroy\n\n/tfpilot apply",
        "```\n/tfpilot destroy\n```\n/tfpilot apply",
        "<!-- /tfpilot destroy -->\n/tfpilot apply",
        "line one  \n/tfpilot apply",
        "/tfpilot apply\r\n",
    ]), @r#"
    "Thanks!\n\n/tfpilot apply" => Apply
    "/tfpilot apply\n\nthanks" => Apply
    "**/tfpilot apply**" => Apply
    "- /tfpilot apply" => Apply
    "1. /tfpilot apply" => Apply
    "> earlier: /tfpilot destroy\n\n/tfpilot apply" => Apply
    "```\n/tfpilot destroy\n```\n/tfpilot apply" => Apply
    "<!-- /tfpilot destroy -->\n/tfpilot apply" => Apply
    "line one  \n/tfpilot apply" => Apply
    "/tfpilot apply\r\n" => Apply
    "#);
}

#[test]
fn one_command_per_comment() {
    insta::assert_snapshot!(table(&[
        "/tfpilot approve\n/tfpilot merge",
        "/tfpilot approve\n\n/tfpilot apply\n\n/tfpilot destroy",
        "/tfpilot approve\n/tfpilot approve",
        "/tfpilot\n/tfpilot help",
        "/tfpilot apply\n> /tfpilot destroy",
    ]), @r#"
    "/tfpilot approve\n/tfpilot merge" => Err: This comment holds 2 commands (`/tfpilot approve`, `/tfpilot merge`); I run one command per comment, so I ran none of them. Post each command in its own comment.
    "/tfpilot approve\n\n/tfpilot apply\n\n/tfpilot destroy" => Err: This comment holds 3 commands (`/tfpilot approve`, `/tfpilot apply`, `/tfpilot destroy`); I run one command per comment, so I ran none of them. Post each command in its own comment.
    "/tfpilot approve\n/tfpilot approve" => Err: This comment holds 2 commands (`/tfpilot approve`, `/tfpilot approve`); I run one command per comment, so I ran none of them. Post each command in its own comment.
    "/tfpilot\n/tfpilot help" => Err: This comment holds 2 commands (`/tfpilot`, `/tfpilot help`); I run one command per comment, so I ran none of them. Post each command in its own comment.
    "/tfpilot apply\n> /tfpilot destroy" => Apply
    "#);
}

#[test]
fn the_rest_of_a_new_comment_is_free_text() {
    let c = ok(
        "/tfpilot new s3 env=dev name=invoices\n\nPlease turn versioning on.\nDon't keep objects longer than 30 days.\n\n> quoted text is not read\n\n```\ncode is not read\n```",
    );
    let Command::New { free_text, .. } = c else {
        panic!("not new")
    };
    assert_eq!(
        free_text,
        "Please turn versioning on.\nDon't keep objects longer than 30 days."
    );
    let Command::New { free_text, .. } = ok("Hi!\n/tfpilot new s3 env=dev with versioning") else {
        panic!("not new")
    };
    assert_eq!(free_text, "with versioning\nHi!");
}

#[test]
fn quoting() {
    insta::assert_snapshot!(table(&[
        r#"/tfpilot set name="my bucket""#,
        r#"/tfpilot set "name=my bucket""#,
        r#"/tfpilot set name='it''s'"#,
        r#"/tfpilot set description="say \"hi\"""#,
        r#"/tfpilot set description='say "hi"'"#,
        r#"/tfpilot set description="it's fine""#,
        r#"/tfpilot set description=a\ b"#,
        r#"/tfpilot set description="unclosed"#,
        "/tfpilot set description='unclosed",
        "/tfpilot new s3 env=dev don't version it",
        "/tfpilot set tags.Team=#payments",
        "/tfpilot set description=\"${file(\\\"/etc/passwd\\\")}\"",
        "/tfpilot set name=“curly”",
        "/tfpilot set description=“two words”",
        "/tfpilot new s3 env=dev don’t version it, it's O'Brien's",
        "/tfpilot set description='it''s'",
    ]), @r##"
    "/tfpilot set name=\"my bucket\"" => Set { values: {"name": "my bucket"} }
    "/tfpilot set \"name=my bucket\"" => Set { values: {"name": "my bucket"} }
    "/tfpilot set name='it''s'" => Set { values: {"name": "its"} }
    "/tfpilot set description=\"say \\\"hi\\\"\"" => Set { values: {"description": "say hi"} }
    "/tfpilot set description='say \"hi\"'" => Set { values: {"description": "say \"hi\""} }
    "/tfpilot set description=\"it's fine\"" => Set { values: {"description": "it's fine"} }
    "/tfpilot set description=a\\ b" => Set { values: {"description": "a b"} }
    "/tfpilot set description=\"unclosed" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "/tfpilot set description='unclosed" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "/tfpilot new s3 env=dev don't version it" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {}, free_text: "don't version it" }
    "/tfpilot set tags.Team=#payments" => Set { values: {"tags.Team": "#payments"} }
    "/tfpilot set description=\"${file(\\\"/etc/passwd\\\")}\"" => Set { values: {"description": "${file(/etc/passwd)}"} }
    "/tfpilot set name=“curly”" => Set { values: {"name": "curly"} }
    "/tfpilot set description=“two words”" => Set { values: {"description": "two words"} }
    "/tfpilot new s3 env=dev don’t version it, it's O'Brien's" => New { module: "s3-bucket", environment: Some("dev"), project: None, values: {}, free_text: "don't version it, it's O'Brien's" }
    "/tfpilot set description='it''s'" => Set { values: {"description": "its"} }
    "##);
}

#[test]
fn hostile_input() {
    insta::assert_snapshot!(table(&[
        "/tfpilot set name=a\u{0}b",
        "/tfpilot \u{0}apply",
        "/tfpilot apply\u{0}",
        "\u{0}/tfpilot apply",
        "/tfpilot set name=😀",
        "/tfpilot set 名前=x",
        "/tfpilot set name=\u{202e}evil",
        "/tfpilot set tags.Team\u{1}=x",
        "/tfpilot aplly\u{202e}",
        "/tfpilot set x=\"\"\"\"\"",
        "/tfpilot set x='\"'\"'\"'",
        "/tfpilot set x=\"a'b\"c'd\"'",
    ]), @r#"
    "/tfpilot set name=a\0b" => Set { values: {"name": "a\0b"} }
    "/tfpilot \0apply" => Err: `\u{0}apply` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot apply\0" => Err: `apply\u{0}` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "\0/tfpilot apply" => -
    "/tfpilot set name=😀" => Set { values: {"name": "😀"} }
    "/tfpilot set 名前=x" => Err: `名前` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot set name=\u{202e}evil" => Set { values: {"name": "\u{202e}evil"} }
    "/tfpilot set tags.Team\u{1}=x" => Err: `tags.Team\u{1}` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot aplly\u{202e}" => Err: `aplly\u{202e}` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`.
    "/tfpilot set x=\"\"\"\"\"" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "/tfpilot set x='\"'\"'\"'" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "/tfpilot set x=\"a'b\"c'd\"'" => Err: A quote (`"` or `'`) is not closed. Put values with spaces in double quotes (`name="my bucket"`); free text with an apostrophe goes on the next line, below the command.
    "#);
}

#[test]
fn very_long_comments_are_bounded() {
    let long_text = "lorem ipsum ".repeat(20_000);
    assert_eq!(
        parse(&long_text),
        None,
        "no prefix: no command, however long"
    );

    let body = format!("{long_text}\n/tfpilot apply");
    assert!(body.len() < MAX_COMMENT_BYTES);
    assert_eq!(parse(&body), Some(Ok(Command::Apply)));

    let too_long = format!("/tfpilot apply\n{}", "x".repeat(MAX_COMMENT_BYTES));
    assert_eq!(
        err(&too_long),
        ParseError::CommentTooLong {
            bytes: too_long.len(),
            max: MAX_COMMENT_BYTES
        }
    );

    let long_line = format!("/tfpilot set name={}", "a".repeat(MAX_COMMAND_BYTES));
    assert!(matches!(err(&long_line), ParseError::CommandTooLong { .. }));

    let long_value = format!("/tfpilot set name={}", "a".repeat(MAX_VALUE_BYTES + 1));
    assert!(matches!(err(&long_value), ParseError::ValueTooLong { .. }));

    let long_free_text = format!(
        "/tfpilot new s3 env=dev\n{}",
        "more words here\n".repeat(1000)
    );
    assert!(matches!(
        err(&long_free_text),
        ParseError::FreeTextTooLong { .. }
    ));
    let long_key = format!("/tfpilot set tags.{}=x", "k".repeat(MAX_KEY_BYTES));
    assert!(matches!(err(&long_key), ParseError::InvalidKey { .. }));
}

#[test]
fn ten_thousand_pairs_get_a_clear_answer() {
    let pairs: Vec<String> = (0..10_000).map(|i| format!("k{i}=v{i}")).collect();
    let body = format!("/tfpilot set {}", pairs.join(" "));
    let e = err(&body);
    assert!(matches!(e, ParseError::CommandTooLong { .. }), "{e:?}");
    insta::assert_snapshot!(e.to_string(), @"This command line is too long (117784 bytes; at most 16384). Give fewer values at once.");

    // Under the byte limit but over the pair limit.
    let pairs: Vec<String> = (0..=MAX_PAIRS).map(|i| format!("a{i}=1")).collect();
    let body = format!("/tfpilot set {}", pairs.join(" "));
    assert!(body.len() < MAX_COMMAND_BYTES);
    insta::assert_snapshot!(err(&body).to_string(), @"This command gives 101 values; at most 100 are taken at once.");

    // Exactly the limit is fine.
    let pairs: Vec<String> = (0..MAX_PAIRS).map(|i| format!("a{i}=1")).collect();
    let Command::Set { values } = ok(&format!("/tfpilot set {}", pairs.join(" "))) else {
        panic!("not set")
    };
    assert_eq!(values.len(), MAX_PAIRS);

    // 10,000 pairs spread over 10,000 lines: many commands, answered as such.
    let body: String = (0..10_000)
        .map(|i| format!("/tfpilot set k{i}=v\n"))
        .collect();
    let e = err(&body);
    let ParseError::MultipleCommands { count, first } = &e else {
        panic!("expected MultipleCommands")
    };
    assert_eq!((*count, first.len()), (10_000, 5));
    insta::assert_snapshot!(e.to_string(), @"This comment holds 10000 commands (`/tfpilot set`, `/tfpilot set`, `/tfpilot set`, `/tfpilot set`, `/tfpilot set`, and 9995 more); I run one command per comment, so I ran none of them. Post each command in its own comment.");
}

#[test]
fn many_commands_in_one_comment_are_named_in_the_answer() {
    insta::assert_snapshot!(err("/tfpilot approve\n/tfpilot merge\n/tfpilot apply").to_string(), @"This comment holds 3 commands (`/tfpilot approve`, `/tfpilot merge`, `/tfpilot apply`); I run one command per comment, so I ran none of them. Post each command in its own comment.");
}

#[test]
fn resolve_values_uses_the_catalogue() {
    let r = Registry::embedded();
    let s3 = r.get("s3-bucket").unwrap();
    let typed = BTreeMap::from([
        ("versioning".to_owned(), "on".to_owned()),
        ("expiry-days".to_owned(), "30".to_owned()),
        ("labels.Team".to_owned(), "payments".to_owned()),
    ]);
    insta::assert_debug_snapshot!(resolve_values(s3, &typed), @r#"
    Ok(
        {
            "expiration_days": "30",
            "tags.Team": "payments",
            "versioning_enabled": "on",
        },
    )
    "#);

    let typed = BTreeMap::from([
        ("versoning".to_owned(), "on".to_owned()),
        ("zzz".to_owned(), "1".to_owned()),
        ("name".to_owned(), "ok".to_owned()),
    ]);
    let e = resolve_values(s3, &typed).unwrap_err();
    insta::assert_snapshot!(e.to_string(), @"`versoning` is not an input of `s3-bucket` — did you mean `versioning_enabled`? `zzz` is not an input of `s3-bucket`.");

    let typed = BTreeMap::from([
        ("versioning".to_owned(), "on".to_owned()),
        ("versioning_enabled".to_owned(), "off".to_owned()),
    ]);
    insta::assert_snapshot!(resolve_values(s3, &typed).unwrap_err().to_string(), @"`versioning_enabled` is given more than once with different values; give it once.");

    let typed = BTreeMap::from([
        ("versioning".to_owned(), "on".to_owned()),
        ("versioningEnabled".to_owned(), "on".to_owned()),
    ]);
    assert_eq!(resolve_values(s3, &typed).unwrap().len(), 1);
}

#[test]
fn resolve_keys_uses_the_catalogue() {
    let r = Registry::embedded();
    let sqs = r.get("sqs-queue").unwrap();
    let keys: Vec<String> = ["delay", "visibility-timeout", "tags.Team", "delay_seconds"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        resolve_keys(sqs, &keys).unwrap(),
        ["delay_seconds", "visibility_timeout_seconds", "tags.Team"]
    );
    let keys: Vec<String> = ["delai", "fifo.x"].map(String::from).to_vec();
    insta::assert_snapshot!(resolve_keys(sqs, &keys).unwrap_err().to_string(), @"`delai` is not an input of `sqs-queue` — did you mean `delay_seconds`? `fifo.x` is not an input of `sqs-queue` — did you mean `fifo`?");
    assert_eq!(resolve_key(sqs, "name.x"), None, "only maps take entries");
    assert_eq!(resolve_key(sqs, "tags."), None);
}

#[test]
fn strip_markdown_keeps_what_a_reader_sees() {
    insta::assert_snapshot!(strip_markdown(
        "Hello **world**, `code` here.\n\n> quoted\n\n```\nblock\n```\n<!-- hidden -->\n- item one\n- item two\n\nA [link](https://x) and text\nsecond line"
    ), @"
    Hello world,  here.
    item one
    item two
    A  and text
    second line
    ");
}

#[test]
fn every_error_message_is_a_sentence_for_the_user() {
    let errors = [
        err("/tfpilot aply"),
        err("/tfpilot new"),
        err("/tfpilot new s3 --region x"),
        err("/tfpilot set"),
        err("/tfpilot unset"),
        err("/tfpilot set x"),
        err("/tfpilot unset x=1"),
        err("/tfpilot set x="),
        err("/tfpilot set =x"),
        err("/tfpilot set a=1 a=2"),
        err("/tfpilot set env=prod"),
        err("/tfpilot new s3 env=PROD!"),
        err("/tfpilot new s3 project=X!"),
        err("/tfpilot status status=nope"),
        err("/tfpilot new s3 env=dev zzz=1"),
        err("/tfpilot apply now"),
        err("/tfpilot set x=\"y"),
        err("/tfpilot a\n/tfpilot b"),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(
            text.ends_with('.') || text.ends_with('?'),
            "ends a sentence: {text}"
        );
        assert!(
            text.chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c == '`'),
            "{text}"
        );
        assert!(!text.contains('\n'), "one paragraph: {text}");
    }
}

#[test]
fn echoed_user_text_cannot_break_out_of_inline_code() {
    let e = err("/tfpilot `rm`\u{7}x");
    let text = e.to_string();
    assert!(!text.contains("`rm`"), "{text}");
    assert!(!text.contains('\u{7}'), "{text}");
    let e = err(&format!("/tfpilot {}", "z".repeat(500)));
    assert!(e.to_string().len() < 400, "long words are shortened");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a comment holds, parsing terminates with an answer and never panics.
        #[test]
        fn any_text_parses_without_panicking(body in ".{0,400}") {
            let _ = parse(&body);
            let _ = parse(&format!("/tfpilot {body}"));
            let _ = parse(&format!("/tfpilot new s3 env=dev {body}"));
            let _ = parse(&format!("/tfpilot set {body}"));
            let _ = parse(&format!("/tfpilot status {body}"));
        }

        /// Text without the prefix is never a command.
        #[test]
        fn text_without_the_prefix_is_no_command(body in "[^/]{0,300}") {
            prop_assert_eq!(parse(&body), None);
        }

        /// A quoted value comes back as written (markdown characters aside: a comment is read
        /// as GitHub shows it, so `*x*` is emphasis).
        #[test]
        fn quoted_values_round_trip(value in "[a-zA-Z0-9 .,:;!?@%^()+=-]{1,60}") {
            let body = format!("/tfpilot set description={}", shell_words::quote(&value));
            match parse(&body) {
                Some(Ok(Command::Set { values })) => {
                    prop_assert_eq!(values.get("description"), Some(&value));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        /// Inside a code block nothing is a command.
        #[test]
        fn code_blocks_hide_everything(body in "[a-z /=]{0,80}") {
            let comment = format!("```\n/tfpilot {body}\n```");
            prop_assert_eq!(parse(&comment), None);
        }
    }
}

/// A command line is one whose *visible* text starts with the prefix. Inline code, a link, an
/// image or an autolink before it is shown to the reader ("see docs /tfpilot apply"), so the
/// line is prose that mentions a command, not a command — even though that text is not read.
#[test]
fn hidden_inline_text_before_the_prefix_is_not_a_line_start() {
    for body in [
        "`x` /tfpilot apply",
        "`note:`/tfpilot destroy",
        "[the runbook](https://example.com) /tfpilot apply",
        "![](https://example.com/pixel.png)/tfpilot approve",
        "<https://example.com> /tfpilot apply",
        "Thanks!\n`x` /tfpilot apply",
        "** **`x` /tfpilot apply",
    ] {
        assert_eq!(parse(body), None, "{body:?}");
    }
    // Dropped inline text elsewhere changes nothing: the command, its values and the free text
    // read as before.
    assert_eq!(parse("**/tfpilot apply**"), Some(Ok(Command::Apply)));
    assert_eq!(
        parse("/tfpilot set name=a`b`c"),
        Some(Ok(Command::Set {
            values: BTreeMap::from([("name".to_owned(), "ac".to_owned())])
        }))
    );
    let Command::New { free_text, .. } =
        ok("/tfpilot new s3 env=dev\n`x` please see [the doc](https://x) for versioning")
    else {
        panic!("not new")
    };
    assert_eq!(free_text, "please see  for versioning");
    let Command::New { free_text, .. } = ok("`x`\n/tfpilot new s3 env=dev") else {
        panic!("not new")
    };
    assert_eq!(free_text, "");
}
