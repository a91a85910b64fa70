//! The cost of reading a comment: the command parser on ordinary and hostile comments (10,000
//! `key=value` pairs, a comment at the size limit, deep markdown), the rules extractor on a long
//! message, and one conversation turn with the block rendered. Run with
//! `cargo bench --bench command`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tfpilot::assist::{ExtractRequest, rules};
use tfpilot::command::{DEFAULT_PREFIX, MAX_COMMENT_BYTES, parse_comment};
use tfpilot::conversation::{self, ConversationContext};
use tfpilot::registry::Registry;

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_comment");
    let cases: Vec<(&str, String)> = vec![
        (
            "new with values",
            "Please create it.\n\n/tfpilot new s3-bucket env=dev name=invoices versioning=on expiry=30 tags.Team=payments".into(),
        ),
        ("approve", "/tfpilot approve".into()),
        (
            "10000 pairs on one line",
            format!(
                "/tfpilot set {}",
                (0..10_000).map(|i| format!("k{i}=v{i}")).collect::<Vec<_>>().join(" ")
            ),
        ),
        (
            "10000 command lines",
            (0..10_000).map(|i| format!("/tfpilot set k{i}=v\n")).collect(),
        ),
        (
            "prose at the size limit",
            {
                let mut s = "lorem ipsum dolor sit amet ".repeat(MAX_COMMENT_BYTES / 27);
                s.push_str("\n/tfpilot apply");
                s
            },
        ),
        (
            "nested quotes and brackets",
            format!("{}/tfpilot apply{}", "> [".repeat(2_000), "]".repeat(2_000)),
        ),
        ("no command, 100 KB", "words without a prefix ".repeat(4_500)),
    ];
    for (name, body) in &cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| parse_comment(black_box(body), DEFAULT_PREFIX))
        });
    }
    g.finish();
}

fn assistant(c: &mut Criterion) {
    let spec = Registry::embedded().get("s3-bucket").unwrap();
    let collected = BTreeMap::new();
    let mut g = c.benchmark_group("rules_extract");
    for (name, message) in [
        (
            "one sentence",
            "turn versioning on, keep objects 30 days".to_owned(),
        ),
        (
            "8 KB of prose",
            "turn versioning on and keep objects 30 days. ".repeat(200),
        ),
        (
            "10000 pairs",
            (0..10_000).map(|i| format!("key{i}=value{i} ")).collect(),
        ),
    ] {
        g.throughput(Throughput::Bytes(message.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                rules::extract(&ExtractRequest {
                    spec,
                    collected: &collected,
                    pending: &[],
                    message: black_box(&message),
                    history: &[],
                })
            })
        });
    }
    g.finish();
}

fn turn(c: &mut Criterion) {
    let spec = Registry::embedded().get("s3-bucket").unwrap();
    let ctx = ConversationContext::new(
        "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".parse().unwrap(),
        "core",
        "dev",
    );
    let typed: BTreeMap<String, String> =
        [("name", "invoices"), ("versioning", "on"), ("expiry", "30")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    c.bench_function("conversation turn to a complete block", |b| {
        b.iter(|| conversation::start(spec, black_box(&typed), None, &ctx))
    });
}

criterion_group!(benches, parser, assistant, turn);
criterion_main!(benches);
