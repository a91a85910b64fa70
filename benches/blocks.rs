//! The bounded-block editor on a large file: 10,000 rendered blocks (about 7 MB), plus the
//! cost of rendering one block. Run with `cargo bench --bench blocks`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tfpilot::ids::RequestId;
use tfpilot::registry::{ConfigContext, Registry, build_module_config};
use tfpilot::terraform::{
    find_block, insert_block, parse_blocks, remove_block, render_block, replace_block,
};

const BLOCKS: usize = 10_000;

fn id(i: usize) -> RequestId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

fn block(i: usize) -> String {
    let spec = Registry::embedded().get("s3-bucket").unwrap();
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "name": format!("bucket-{i}"),
        "versioning": true,
        "expiration_days": 30,
        "tags": {"Team": "payments", "CostCenter": "1234"},
    }))
    .unwrap();
    let ctx = ConfigContext {
        request_id: id(i),
        project: "core".into(),
        environment: "prod".into(),
    };
    let config = build_module_config(spec, &raw, &ctx).unwrap();
    render_block(id(i), spec, &config).unwrap()
}

fn big_file() -> String {
    let template = block(0);
    let zero = id(0).to_string();
    let mut file = String::from("# Hand-written header\nlocals {\n  owner = \"platform\"\n}\n");
    for i in 0..BLOCKS {
        file.push('\n');
        file.push_str(&template.replace(&zero, &id(i).to_string()));
    }
    file
}

fn editor(c: &mut Criterion) {
    let file = big_file();
    let middle = BLOCKS / 2;
    let new_block = block(BLOCKS + 1);
    let replacement = block(middle).replace("30", "90");
    let mut group = c.benchmark_group("blocks_10000");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.sample_size(20);
    group.bench_function("parse_blocks", |b| {
        b.iter(|| parse_blocks(black_box(&file)).unwrap().len())
    });
    group.bench_function("find_block", |b| {
        b.iter(|| find_block(black_box(&file), &id(middle)).unwrap())
    });
    group.bench_function("insert_block", |b| {
        b.iter(|| insert_block(black_box(&file), &id(BLOCKS + 1), &new_block).unwrap())
    });
    group.bench_function("replace_block", |b| {
        b.iter(|| replace_block(black_box(&file), &id(middle), &replacement).unwrap())
    });
    group.bench_function("remove_block", |b| {
        b.iter(|| remove_block(black_box(&file), &id(middle)).unwrap())
    });
    group.finish();

    c.bench_function("render_block_s3", |b| b.iter(|| block(black_box(7))));
}

criterion_group!(benches, editor);
criterion_main!(benches);
