//! `update` throughput on the filesystem store: one writer (uncontended) and eight writers on
//! one request (contended). Criterion reports time per update and updates/s; the retries each
//! update needed after a compare-and-swap conflict are printed after each benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tfpilot::domain::Request;
use tfpilot::ids::RequestId;
use tfpilot::store::{FsStore, RequestStore, RequestStoreExt};

const WRITERS: u64 = 8;

/// Counts updates and the retries they needed.
#[derive(Default)]
struct Tally {
    updates: AtomicU64,
    retries: AtomicU64,
}

impl Tally {
    fn report(&self, name: &str) {
        let (updates, retries) = (
            self.updates.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
        );
        eprintln!(
            "{name}: {updates} updates, {retries} retries, {:.3} retries per update",
            retries as f64 / updates.max(1) as f64
        );
    }
}

async fn increment(store: &dyn RequestStore, id: RequestId, tally: &Tally) {
    let done = store
        .update(id, |r| {
            r.revision += 1;
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .expect("update");
    tally.updates.fetch_add(1, Ordering::Relaxed);
    tally
        .retries
        .fetch_add(u64::from(done.attempts - 1), Ordering::Relaxed);
}

fn fs_update(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn RequestStore> = Arc::new(FsStore::open(dir.path()).expect("fs store"));
    let mut issue = 0;
    let mut new_request = || {
        issue += 1;
        let request = Request::new(
            RequestId::new_random(),
            "acme/core-terraform".parse().expect("repo"),
            issue,
            "octocat",
            "s3-bucket",
            time::OffsetDateTime::now_utc(),
        );
        rt.block_on(store.create(request)).expect("create").id
    };

    let mut group = c.benchmark_group("fs_update");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    let id = new_request();
    let tally = Tally::default();
    group.bench_function("uncontended", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    increment(store.as_ref(), id, &tally).await;
                }
                start.elapsed()
            })
        })
    });
    tally.report("fs_update/uncontended");

    let id = new_request();
    let tally = Arc::new(Tally::default());
    group.bench_function("contended_8_writers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let mut writers = tokio::task::JoinSet::new();
                for w in 0..WRITERS {
                    // Split `iters` updates among the writers.
                    let n = iters / WRITERS + u64::from(w < iters % WRITERS);
                    let (store, tally) = (Arc::clone(&store), Arc::clone(&tally));
                    writers.spawn(async move {
                        for _ in 0..n {
                            increment(store.as_ref(), id, &tally).await;
                        }
                    });
                }
                writers.join_all().await;
                start.elapsed()
            })
        })
    });
    tally.report("fs_update/contended_8_writers");
    group.finish();
}

criterion_group!(benches, fs_update);
criterion_main!(benches);
