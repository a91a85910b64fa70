use proptest::prelude::*;

use super::*;

fn id(n: u8) -> RequestId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

fn block(id: &RequestId, body: &str) -> String {
    format!("{}\n{body}\n{}\n", begin_marker(id), end_marker(id))
}

#[test]
fn insert_into_a_new_file_and_remove_again() {
    let b = block(&id(1), "module \"a\" {}");
    let out = insert_block("", &id(1), &b).unwrap();
    assert_eq!(out, b);
    assert_eq!(remove_block(&out, &id(1)).unwrap(), "");
}

#[test]
fn insert_appends_after_a_blank_line_and_remove_restores_the_file() {
    let original = "terraform {}\n";
    let b = block(&id(1), "x = 1");
    let out = insert_block(original, &id(1), &b).unwrap();
    assert_eq!(out, format!("terraform {{}}\n\n{b}"));
    assert_eq!(remove_block(&out, &id(1)).unwrap(), original);
}

#[test]
fn insert_is_idempotent_and_refuses_a_different_block() {
    let b = block(&id(1), "x = 1");
    let once = insert_block("a = 1\n", &id(1), &b).unwrap();
    assert_eq!(insert_block(&once, &id(1), &b).unwrap(), once);
    let err = insert_block(&once, &id(1), &block(&id(1), "x = 2")).unwrap_err();
    assert_eq!(err, BlockError::AlreadyPresent { line: 3, id: id(1) });
}

#[test]
fn replace_changes_only_the_block() {
    let file = format!(
        "# hand-written\n{}\nkeep = true\n\n{}",
        block(&id(1), "x = 1"),
        block(&id(2), "y = 1")
    );
    let out = replace_block(&file, &id(1), &block(&id(1), "x = 2\nz = 3")).unwrap();
    assert_eq!(
        out,
        format!(
            "# hand-written\n{}\nkeep = true\n\n{}",
            block(&id(1), "x = 2\nz = 3"),
            block(&id(2), "y = 1")
        )
    );
    assert_eq!(
        replace_block(&out, &id(1), &block(&id(1), "x = 2\nz = 3")).unwrap(),
        out,
        "idempotent"
    );
    assert_eq!(
        replace_block(&file, &id(3), &block(&id(3), "")).unwrap_err(),
        BlockError::NotFound { id: id(3) }
    );
}

#[test]
fn upsert_inserts_then_replaces() {
    let one = upsert_block("", &id(1), &block(&id(1), "x = 1")).unwrap();
    let two = upsert_block(&one, &id(1), &block(&id(1), "x = 2")).unwrap();
    assert_eq!(two, block(&id(1), "x = 2"));
}

#[test]
fn remove_of_a_missing_block_changes_nothing() {
    let file = format!("a = 1\n\n{}", block(&id(2), "y"));
    assert_eq!(remove_block(&file, &id(1)).unwrap(), file);
}

#[test]
fn remove_in_the_middle_never_joins_lines() {
    let file = format!("x = 1\n\n{}\ny = 2\n", block(&id(1), "b"));
    assert_eq!(
        remove_block(&file, &id(1)).unwrap(),
        "x = 1\n\n\ny = 2\n".replacen("\n\n\n", "\n\n", 1)
    );
    let tight = format!("x = 1\n{}y = 2\n", block(&id(1), "b"));
    assert_eq!(remove_block(&tight, &id(1)).unwrap(), "x = 1\ny = 2\n");
}

#[test]
fn crlf_files_stay_crlf() {
    let original = "a = 1\r\nb = 2\r\n";
    let b = block(&id(1), "x = 1");
    let out = insert_block(original, &id(1), &b).unwrap();
    assert_eq!(
        out,
        format!("a = 1\r\nb = 2\r\n\r\n{}", b.replace('\n', "\r\n"))
    );
    assert_eq!(
        insert_block(&out, &id(1), &b).unwrap(),
        out,
        "idempotent across line endings"
    );
    let replaced = replace_block(&out, &id(1), &block(&id(1), "x = 2")).unwrap();
    assert!(
        !replaced.replace("\r\n", "").contains('\n'),
        "no bare LF: {replaced:?}"
    );
    assert_eq!(remove_block(&replaced, &id(1)).unwrap(), original);
}

#[test]
fn a_file_without_a_final_newline_keeps_its_bytes() {
    let out = insert_block("a = 1", &id(1), &block(&id(1), "x")).unwrap();
    assert_eq!(out, format!("a = 1\n\n{}", block(&id(1), "x")));
    // A block at the very end without a final newline is replaced without adding one.
    let file = format!("a = 1\n{}", block(&id(1), "x").trim_end());
    let out = replace_block(&file, &id(1), &block(&id(1), "y")).unwrap();
    assert_eq!(out, format!("a = 1\n{}", block(&id(1), "y").trim_end()));
    assert_eq!(
        insert_block(&file, &id(1), &block(&id(1), "x")).unwrap(),
        file
    );
    assert_eq!(remove_block(&file, &id(1)).unwrap(), "a = 1\n");
}

#[test]
fn broken_markers_are_errors_that_name_the_line() {
    let b = |n| begin_marker(&id(n));
    let e = |n| end_marker(&id(n));
    let cases: Vec<(String, BlockError)> = vec![
        (
            format!("a\n{}\nx\n", b(1)),
            BlockError::Unclosed {
                begin_line: 2,
                id: id(1).to_string(),
            },
        ),
        (
            format!("{}\n", e(1)),
            BlockError::UnmatchedEnd {
                line: 1,
                id: id(1).to_string(),
            },
        ),
        (
            format!("{}\n{}\n{}\n{}\n", b(1), b(2), e(2), e(1)),
            BlockError::Nested {
                line: 2,
                id: id(2).to_string(),
                outer_id: id(1).to_string(),
                outer_line: 1,
            },
        ),
        (
            format!("{}\n{}\n", b(1), e(2)),
            BlockError::Mismatched {
                line: 2,
                begin_line: 1,
                begin_id: id(1).to_string(),
                end_id: id(2).to_string(),
            },
        ),
        (
            format!("{}\n{}\n\n{}\n{}\n", b(1), e(1), b(1), e(1)),
            BlockError::Duplicate {
                line: 4,
                first_line: 1,
                id: id(1).to_string(),
            },
        ),
        (
            "x\n# --- tfpilot:begin:not-a-uuid ---\n".to_owned(),
            BlockError::InvalidMarkerId {
                line: 2,
                id: "not-a-uuid".into(),
            },
        ),
        (
            "# --- tfpilot:begin:3F2A4C1E-8B7D-4E2F-9A1B-0C3D5E7F9A2B ---\n".to_owned(),
            BlockError::InvalidMarkerId {
                line: 1,
                id: "3F2A4C1E-8B7D-4E2F-9A1B-0C3D5E7F9A2B".into(),
            },
        ),
        (
            format!("#--- tfpilot:begin:{} ---\n", id(1)),
            BlockError::MalformedMarker {
                line: 1,
                text: format!("#--- tfpilot:begin:{} ---", id(1)),
            },
        ),
        (
            format!("// --- tfpilot:end:{} ---\n", id(1)),
            BlockError::MalformedMarker {
                line: 1,
                text: format!("// --- tfpilot:end:{} ---", id(1)),
            },
        ),
    ];
    for (file, want) in cases {
        assert_eq!(parse_blocks(&file).unwrap_err(), want, "{file:?}");
        // No edit is attempted on a broken file, whatever the request.
        assert_eq!(remove_block(&file, &id(9)).unwrap_err(), want);
        assert_eq!(
            insert_block(&file, &id(9), &block(&id(9), "x")).unwrap_err(),
            want
        );
        assert!(want.to_string().starts_with("line "), "{want}");
    }
}

#[test]
fn the_new_block_must_be_exactly_one_block_for_the_request() {
    let bad = [
        ("x = 1\n".to_owned(), "no markers"),
        (block(&id(2), "x"), "for request"),
        (
            format!("extra\n{}", block(&id(1), "x")),
            "outside its markers",
        ),
        (
            format!("{}{}", block(&id(1), "x"), block(&id(2), "y")),
            "more than one",
        ),
        (format!("{}\nx\n", begin_marker(&id(1))), "never closed"),
        (block(&id(1), "a\rb"), "carriage return"),
    ];
    for (b, want) in bad {
        let err = insert_block("", &id(1), &b).unwrap_err();
        assert!(matches!(err, BlockError::InvalidBlock { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
    // A missing final newline on the new block is fine.
    assert_eq!(
        insert_block("", &id(1), block(&id(1), "x").trim_end()).unwrap(),
        block(&id(1), "x")
    );
}

#[test]
fn marker_text_inside_a_value_is_not_a_marker() {
    let file = format!("a = \"{}\"\n{}", end_marker(&id(1)), block(&id(2), "x"));
    let blocks = parse_blocks(&file).unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].id, id(2));
}

/// Lines a hand-written Terraform file might hold (no markers).
fn hand_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("resource \"x\" \"y\" {".to_owned()),
        Just("}".to_owned()),
        "[a-z_]{1,8} = \"[ -~&&[^\"\\\\]]{0,12}\"",
        Just("# a comment".to_owned()),
        Just("   ".to_owned()),
    ]
}

/// A file: hand-written lines and blocks of requests 1..=4, with LF or CRLF, with or without
/// a final newline.
fn file() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => hand_line().prop_map(|l| format!("{l}\n")),
        1 => (1u8..=4, "[a-z]{0,6}").prop_map(|(n, body)| block(&id(n), &format!("x = \"{body}\""))),
    ];
    (
        proptest::collection::vec(piece, 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(pieces, crlf, final_newline)| {
            // Keep only the first block of each request (duplicates are an error case).
            let mut seen = Vec::new();
            let mut text = String::new();
            for p in pieces {
                if let Ok(blocks) = parse_blocks(&p)
                    && let Some(b) = blocks.first()
                {
                    if seen.contains(&b.id) {
                        continue;
                    }
                    seen.push(b.id);
                }
                text.push_str(&p);
            }
            if !final_newline && text.ends_with('\n') {
                text.pop();
            }
            if crlf {
                text.replace('\n', "\r\n")
            } else {
                text
            }
        })
}

proptest! {
    #[test]
    fn edits_preserve_every_byte_outside_the_block(text in file(), n in 1u8..=5, body in "[a-z ]{0,10}") {
        let rid = id(n);
        let new_block = block(&rid, &format!("v = \"{body}\""));
        let upserted = upsert_block(&text, &rid, &new_block).unwrap();
        // Idempotent.
        prop_assert_eq!(&upsert_block(&upserted, &rid, &new_block).unwrap(), &upserted);
        prop_assert_eq!(&insert_block(&upserted, &rid, &new_block).unwrap(), &upserted);
        let found = find_block(&upserted, &rid).unwrap().unwrap();
        let found_text = upserted[found.range.clone()].replace("\r\n", "\n");
        prop_assert_eq!(found_text.trim_end(), new_block.trim_end());
        // Other requests' blocks are unchanged, byte for byte.
        for other in parse_blocks(&text).unwrap().into_iter().filter(|b| b.id != rid) {
            let now = find_block(&upserted, &other.id).unwrap().unwrap();
            // Only a line break may be added, to a block that ended the file without one.
            let before = &text[other.range.clone()];
            let after = &upserted[now.range.clone()];
            prop_assert!(after == before || (!before.ends_with('\n') && after.trim_end_matches(['\r', '\n']) == before));
        }
        // Bytes outside the block: before it, the original is a prefix; after it, a suffix.
        match find_block(&text, &rid).unwrap() {
            Some(old) => {
                prop_assert_eq!(&upserted[..found.range.start], &text[..old.range.start]);
                prop_assert_eq!(&upserted[found.range.end..], &text[old.range.end..]);
            }
            None => {
                prop_assert!(upserted.starts_with(&text));
                let removed = remove_block(&upserted, &rid).unwrap();
                if text.ends_with('\n') || text.is_empty() {
                    prop_assert_eq!(&removed, &text);
                } else {
                    prop_assert_eq!(removed.trim_end_matches(['\r', '\n']), text.as_str());
                }
            }
        }
        let removed = remove_block(&upserted, &rid).unwrap();
        prop_assert!(find_block(&removed, &rid).unwrap().is_none());
        prop_assert_eq!(&remove_block(&removed, &rid).unwrap(), &removed);
    }
}
