//! Dispatch throughput over HTTP: the real `TwilioProvider` sending to the local Twilio
//! stand-in (127.0.0.1), the real dispatcher, and the SQLite journal durable on a real file
//! (WAL, `sending` written before each call, outcomes after). No rate limit.
//!
//! `cargo bench -p sms-benches --bench dispatch_http` (target: at least 2,000 texts/s on a
//! 2-core machine; the stand-in runs on the same cores).

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sms_core::journal::{Journal, RateLimit};
use sms_core::{CancellationToken, DispatchOptions, Dispatcher};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::campaign;
use sms_tests::fake_twilio::FakeTwilio;

const TEXTS: usize = 2_000;

fn bench(c: &mut Criterion) {
    let twilio = FakeTwilio::start();
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let provider = Arc::new(twilio.single_attempt_provider());
    let mut group = c.benchmark_group("dispatch_http");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TEXTS as u64));
    for concurrency in [8u32, 32] {
        let mut round = 0u32;
        group.bench_function(format!("{TEXTS}_texts_concurrency_{concurrency}"), |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let mut settings = sms_core::journal::CampaignSettings {
                        provider: None,
                        rate: RateLimit::Unlimited,
                        concurrency,
                        ..Default::default()
                    };
                    settings.rate = RateLimit::Unlimited;
                    let c = campaign(
                        &format!("http-{concurrency}-{round}"),
                        TEXTS,
                        TEXTS,
                        settings,
                    );
                    let id = c.id.clone();
                    runtime.block_on(store.create_campaign(c)).expect("create");
                    id
                },
                |id| {
                    let dispatcher =
                        Dispatcher::new(provider.clone(), store.clone(), store.clone())
                            .with_options(DispatchOptions::default());
                    let summary = runtime
                        .block_on(dispatcher.run(id, CancellationToken::new()))
                        .expect("run");
                    assert_eq!(summary.report.totals.accepted, TEXTS as u64);
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
