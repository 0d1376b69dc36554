//! Dispatch benchmarks, on a durable SQLite journal (WAL, `synchronous=FULL`) in the target dir:
//!
//! - `dispatch/sqlite_durable_zero_latency`: texts per second through the dispatcher with no
//!   rate limit and a provider that answers at once (the figure the journal allows);
//! - `optouts/durable`: opt-outs per second, recorded one after another and from 32 concurrent
//!   inbound handlers (group commit);
//! - after the criterion groups, the rate limiter's accuracy at 10 and 100 texts per second
//!   (achieved vs configured), printed. `cargo bench -p sms-benches --bench dispatch`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group};
use sms_core::journal::{Campaign, CampaignId, CampaignSettings, Journal, RateLimit};
use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutStore};
use sms_core::{
    Accepted, Balance, CancellationToken, DeliveryStatus, Dispatcher, Encoding, OutboundSms,
    PhoneNumber, PreviewItem, PreviewOutcome, Provider, RecordId, SendError, SentMessage,
    Timestamp,
};
use sms_sqlite::SqliteStore;

/// Answers at once, and notes when each call came (for the rate accuracy).
#[derive(Default)]
struct InstantProvider {
    counter: AtomicU64,
    calls: Mutex<Vec<Instant>>,
    record_times: bool,
}

#[async_trait]
impl Provider for InstantProvider {
    fn name(&self) -> &str {
        "instant"
    }

    async fn send(&self, _sms: &OutboundSms) -> Result<Accepted, SendError> {
        if self.record_times {
            self.calls
                .lock()
                .expect("not poisoned")
                .push(Instant::now());
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Ok(Accepted {
            provider_id: format!("SM{n:032x}"),
            status: DeliveryStatus::Queued,
            segments: Some(1),
        })
    }

    async fn balance(&self) -> Result<Option<Balance>, SendError> {
        Ok(None)
    }

    async fn lookup_sent(
        &self,
        _to: PhoneNumber,
        _since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError> {
        Ok(Vec::new())
    }
}

fn numbers(count: usize) -> Vec<PhoneNumber> {
    (0..count)
        .map(|i| {
            PhoneNumber::from_e164(&format!("+1212{:07}", 2_000_000 + i)).expect("valid number")
        })
        .collect()
}

fn campaign(
    id: &str,
    numbers: &[PhoneNumber],
    records: usize,
    settings: CampaignSettings,
) -> Campaign {
    let items = (0..records)
        .map(|i| {
            let number = numbers[i % numbers.len()];
            PreviewItem {
                record_id: RecordId::new(format!("C-{i}")),
                kind: sms_core::RecordKind::Client,
                name: format!("Client {i}"),
                mobile: number.to_string(),
                time_zone: None,
                outcome: PreviewOutcome::Eligible {
                    number,
                    body: format!("Your class starts Monday at 9am in Room 4. Record {i}."),
                    encoding: Encoding::Gsm7,
                    segments: 1,
                },
            }
        })
        .collect();
    Campaign {
        id: CampaignId::new(id).expect("not blank"),
        name: id.to_owned(),
        created_at: Timestamp::now(),
        template: "Your class starts Monday".into(),
        settings,
        items,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn temp_dir() -> tempfile::TempDir {
    // On the real disk (not a tmpfs), so fsync costs what it costs.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn dispatch_throughput(c: &mut Criterion) {
    const RECORDS: usize = 2_000;
    let rt = runtime();
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open"));
    let provider = Arc::new(InstantProvider::default());
    let dispatcher = Dispatcher::new(provider, store.clone(), store.clone());
    let numbers = numbers(RECORDS);
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        concurrency: 64,
        ..CampaignSettings::default()
    };
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    let mut run = 0;
    group.bench_function("sqlite_durable_zero_latency", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                run += 1;
                let c = campaign(&format!("bench-{run}"), &numbers, RECORDS, settings.clone());
                let id = c.id.clone();
                rt.block_on(store.create_campaign(c)).expect("create");
                let start = Instant::now();
                let summary = rt
                    .block_on(dispatcher.run(id, CancellationToken::new()))
                    .expect("run");
                total += start.elapsed();
                assert_eq!(summary.report.totals.accepted, RECORDS as u64);
            }
            total
        })
    });
    group.finish();
}

fn durable_opt_outs(c: &mut Criterion) {
    const BATCH: usize = 1_000;
    let rt = runtime();
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::open(dir.path().join("optouts.db")).expect("open"));
    let numbers = numbers(BATCH);
    let change = |number: PhoneNumber| OptOutChange {
        number,
        action: OptOutAction::Stop,
        at: Timestamp::now(),
        source: ChangeSource::Inbound,
        message_sid: Some("SM0123456789abcdef0123456789abcdef".into()),
        body: Some("STOP".into()),
    };
    let mut group = c.benchmark_group("optouts");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("durable_one_at_a_time", |b| {
        b.iter(|| {
            rt.block_on(async {
                for &number in &numbers[..BATCH] {
                    store.record(change(number)).await.expect("recorded");
                }
            })
        })
    });
    group.bench_function("durable_32_concurrent_handlers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handlers: Vec<_> = numbers
                    .chunks(BATCH / 32 + 1)
                    .map(|chunk| {
                        let (store, chunk) = (store.clone(), chunk.to_vec());
                        tokio::spawn(async move {
                            for number in chunk {
                                store.record(change(number)).await.expect("recorded");
                            }
                        })
                    })
                    .collect();
                for handler in handlers {
                    handler.await.expect("handler");
                }
            })
        })
    });
    group.finish();
}

/// Sends `texts` at `per_second` through the durable journal and prints the achieved rate,
/// measured between the first and the last provider call.
fn rate_accuracy(per_second: f64, texts: usize) {
    let rt = runtime();
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::open(dir.path().join("rate.db")).expect("open"));
    let provider = Arc::new(InstantProvider {
        record_times: true,
        ..InstantProvider::default()
    });
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::MessagesPerSecond { per_second },
        concurrency: 4,
        ..CampaignSettings::default()
    };
    let c = campaign("rate", &numbers(texts), texts, settings);
    let id = c.id.clone();
    rt.block_on(store.create_campaign(c)).expect("create");
    let dispatcher = Dispatcher::new(provider.clone(), store.clone(), store);
    rt.block_on(dispatcher.run(id, CancellationToken::new()))
        .expect("run");
    let calls = provider.calls.lock().expect("not poisoned");
    let span = calls[calls.len() - 1] - calls[0];
    let achieved = (calls.len() - 1) as f64 / span.as_secs_f64();
    let error = (achieved - per_second) / per_second * 100.0;
    println!(
        "rate limiter: configured {per_second}/s, achieved {achieved:.3}/s over {} texts \
         ({error:+.2}%)",
        calls.len()
    );
}

criterion_group!(benches, dispatch_throughput, durable_opt_outs);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each bench once as a smoke test: skip the slow accuracy run.
    if !std::env::args().any(|a| a == "--test") {
        rate_accuracy(10.0, 51);
        rate_accuracy(100.0, 501);
    }
}
