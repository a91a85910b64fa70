use super::*;

#[test]
fn normalize_key_handles_camel_kebab_and_spaces() {
    for (given, want) in [
        ("versioningEnabled", "versioning_enabled"),
        ("versioning-enabled", "versioning_enabled"),
        ("Versioning Enabled", "versioning_enabled"),
        ("visibilityTimeoutSeconds", "visibility_timeout_seconds"),
        ("  name ", "name"),
        ("s3Bucket", "s3_bucket"),
        ("already_snake", "already_snake"),
        ("double--dash__x", "double_dash_x"),
        ("ID", "id"),
    ] {
        assert_eq!(normalize_key(given), want, "{given}");
    }
}

#[test]
fn embedded_registry_loads_every_module_type() {
    let registry = Registry::embedded();
    assert_eq!(
        registry.module_types().collect::<Vec<_>>(),
        ["ecs-service", "iam-role-app", "s3-bucket", "sqs-queue"]
    );
    let targets: Vec<_> = registry.modules().map(|m| m.target_file.as_str()).collect();
    assert_eq!(
        targets,
        [
            "tfpilot.ecs.tf",
            "tfpilot.misc.tf",
            "tfpilot.s3.tf",
            "tfpilot.sqs.tf"
        ]
    );
}

#[test]
fn embedded_list_matches_the_registry_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("registry");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = embedded_file_names().collect();
    assert_eq!(on_disk, embedded, "add new registry files to EMBEDDED");
    let loaded = Registry::load_dir(&dir).unwrap();
    assert_eq!(
        loaded.module_types().collect::<Vec<_>>(),
        Registry::embedded().module_types().collect::<Vec<_>>()
    );
}

#[test]
fn module_types_resolve_by_alias_and_suggest_on_typos() {
    let r = Registry::embedded();
    assert_eq!(r.get("s3-bucket").unwrap().module_type, "s3-bucket");
    assert_eq!(r.get("S3_Bucket").unwrap().module_type, "s3-bucket");
    assert_eq!(r.get("s3").unwrap().module_type, "s3-bucket");
    assert_eq!(r.get("queue").unwrap().module_type, "sqs-queue");
    assert!(r.get("dynamodb-table").is_none());
    let err = r.lookup("s3-bukcet").unwrap_err();
    assert_eq!(err.suggestion.as_deref(), Some("s3-bucket"));
    assert_eq!(
        err.to_string(),
        "unknown module type `s3-bukcet` — did you mean `s3-bucket`? Known module types: \
         `ecs-service`, `iam-role-app`, `s3-bucket`, `sqs-queue`."
    );
    assert_eq!(r.lookup("zzzz").unwrap_err().suggestion, None);
}

#[test]
fn keys_resolve_through_aliases_and_case() {
    let r = Registry::embedded();
    let s3 = r.get("s3-bucket").unwrap();
    for key in [
        "versioning",
        "versioningEnabled",
        "versioning-enabled",
        "Versioning_Enabled",
    ] {
        assert_eq!(
            s3.resolve_key(key).map(|i| i.name.as_str()),
            Some("versioning_enabled"),
            "{key}"
        );
    }
    let sqs = r.get("sqs-queue").unwrap();
    assert_eq!(
        sqs.resolve_key("visibilityTimeout")
            .map(|i| i.name.as_str()),
        Some("visibility_timeout_seconds")
    );
    let input = sqs.input("visibility_timeout_seconds").unwrap();
    assert_eq!(
        input.resolve_key("visibility-timeout"),
        Some("visibility_timeout_seconds")
    );
    assert_eq!(input.resolve_key("delay"), None);
    assert_eq!(s3.suggest_input("versoning"), Some("versioning_enabled"));
    assert_eq!(
        sqs.suggest_input("retention"),
        Some("message_retention_seconds")
    );
    assert_eq!(s3.suggest_input("completely_unrelated"), None);
}

fn load_one(text: &str) -> Result<Registry, RegistryError> {
    Registry::from_sources([("x.toml".to_owned(), text)])
}

const MINIMAL: &str = r#"
type = "x"
display_name = "X"
description = "x"
target_file = "tfpilot.x.tf"
"#;

#[test]
fn catalogue_files_are_validated_when_loaded() {
    assert!(load_one(MINIMAL).is_ok());
    let cases = [
        ("surprise = 1\n", "unknown field"),
        (
            "[[inputs]]\nname = \"a\"\ntype = \"number\"\ndefault = \"x\"\ndescription = \"d\"\n",
            "default \"x\" is not a number",
        ),
        (
            "[[inputs]]\nname = \"a\"\ntype = \"number\"\nrequired = true\ndefault = 1\ndescription = \"d\"\n",
            "cannot have a default",
        ),
        (
            "[[inputs]]\nname = \"a\"\ntype = \"string\"\ndescription = \"d\"\naliases = [\"b\"]\n[[inputs]]\nname = \"b\"\ntype = \"string\"\ndescription = \"d\"\n",
            "used by both",
        ),
        (
            "[[inputs]]\nname = \"a\"\ntype = \"string\"\ndescription = \"d\"\npattern = \"(\"\n",
            "invalid pattern",
        ),
        (
            "[[inputs]]\nname = \"a\"\ntype = \"number\"\ndescription = \"d\"\nmin = 5\ndefault = 1\n",
            "default is invalid",
        ),
        (
            "[[computed]]\nname = \"n\"\ndescription = \"d\"\ntemplate = \"{project}-{nope}\"\n",
            "`{nope}`",
        ),
        ("tags_input = \"tags\"\n", "tags_input"),
    ];
    for (extra, want) in cases {
        let text = format!("{MINIMAL}{extra}");
        let err = load_one(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(err.starts_with("x.toml"), "errors name the file: {err}");
    }
    let err = Registry::from_sources([("y.toml".to_owned(), MINIMAL)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be named `x.toml`"), "{err}");
}

#[test]
fn display_safe_neutralizes_markdown_and_control_characters() {
    assert_eq!(display_safe("a`b\nc"), "a'b\\nc");
    assert_eq!(display_safe("a\u{202e}b"), "a\\u{202e}b");
    assert_eq!(display_safe(&"x".repeat(100)).chars().count(), 81);
    // Shown in a GitHub comment, a right-to-left override would reorder the rest of the
    // sentence, and a line separator would break it.
    assert_eq!(
        display_safe("a\u{202e}b\u{2028}c\u{61c}"),
        "a\\u{202e}b\\u{2028}c\\u{61c}"
    );
}
