//! The webhook front door in isolation: signature check, event parsing, the whole `accept`, and
//! the durable inbox write. `cargo bench --bench front_door`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use tfpilot::inbox::{Delivery, FsInbox, Inbox};
use tfpilot::webhook::{self, Event};

const SECRET: &[u8] = b"bench-secret";

fn payload() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhooks/issue_comment.created.installation.json"
    );
    std::fs::read(path).expect("fixture")
}

fn front_door(c: &mut Criterion) {
    let body = payload();
    let signature = webhook::sign(SECRET, &body);
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static("issue_comment"));
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&signature).expect("header"),
    );

    let mut group = c.benchmark_group("front_door");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify_signature", |b| {
        b.iter(|| {
            webhook::verify_signature(Some(SECRET), Some(signature.as_bytes()), black_box(&body))
        })
    });
    group.bench_function("parse_issue_comment", |b| {
        b.iter(|| Event::parse("issue_comment", black_box(&body)))
    });
    group.bench_function("accept", |b| {
        b.iter(|| webhook::accept(Some(SECRET), &headers, black_box(&body)))
    });
    group.finish();

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let inbox = FsInbox::open(dir.path()).expect("inbox");
    let text = String::from_utf8(body).expect("utf-8");
    let mut n = 0u64;
    c.bench_function("inbox/fs_put_one_at_a_time", |b| {
        b.iter(|| {
            n += 1;
            let id = format!("bench-{n}").parse().expect("id");
            let delivery = Delivery::new(id, "issue_comment", text.clone());
            runtime.block_on(inbox.put(&delivery)).expect("put")
        })
    });
    // What the group commit is for: 16 deliveries arriving together (as from 16 connections)
    // share one journal fdatasync instead of paying one each.
    let mut group = c.benchmark_group("inbox");
    group.throughput(Throughput::Elements(CONCURRENT_PUTS as u64));
    group.bench_function("fs_put_16_concurrent", |b| {
        b.iter(|| {
            let puts = (0..CONCURRENT_PUTS).map(|_| {
                n += 1;
                let id = format!("bench-{n}").parse().expect("id");
                let delivery = Delivery::new(id, "issue_comment", text.clone());
                let inbox = inbox.clone();
                async move { inbox.put(&delivery).await.expect("put") }
            });
            runtime.block_on(futures_util::future::join_all(puts))
        })
    });
    group.finish();
}

const CONCURRENT_PUTS: usize = 16;

criterion_group!(benches, front_door);
criterion_main!(benches);
