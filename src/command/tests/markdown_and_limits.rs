//! Markdown, quoting, hostile and oversized comments, key resolution, and the error sentences.

use super::*;

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
    "/tfpilot \0apply" => Err: `\u{0}apply` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "/tfpilot apply\0" => Err: `apply\u{0}` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
    "\0/tfpilot apply" => -
    "/tfpilot set name=😀" => Set { values: {"name": "😀"} }
    "/tfpilot set 名前=x" => Err: `名前` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot set name=\u{202e}evil" => Set { values: {"name": "\u{202e}evil"} }
    "/tfpilot set tags.Team\u{1}=x" => Err: `tags.Team\u{1}` is not a valid key: keys are words like `name` or `tags.Team`.
    "/tfpilot aplly\u{202e}" => Err: `aplly\u{202e}` is not a command — did you mean `apply`? Commands: `help`, `new`, `set`, `unset`, `show`, `submit`, `plan`, `approve`, `merge`, `apply`, `destroy`, `cleanup`, `status`, `cancel`, `modules`, `drift`.
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
