//! Exactly once across crashes: the dispatcher is stopped mid-campaign (its future dropped
//! while a provider call hangs, or the provider panics), the SQLite file is reopened, and the
//! campaign is resumed from nothing but the file and the campaign id.

use std::path::Path;
use std::sync::Arc;

use sms_core::journal::{CampaignId, Journal, RecordState};
use sms_core::{CancellationToken, DispatchSummary, Dispatcher};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::{body, campaign};
use sms_tests::faults::{Fault, FaultProvider};
use sms_tests::{quick_options, unpaced};

/// Runs the campaign until it ends (`Some`) or a provider call crashes (`None`, the run
/// abandoned as a killed process would abandon it).
async fn run_once(
    path: &Path,
    provider: &FaultProvider,
    id: &CampaignId,
) -> Option<DispatchSummary> {
    let store = Arc::new(SqliteStore::open(path).expect("the file opens"));
    let dispatcher = Dispatcher::new(Arc::new(provider.clone()), store.clone(), store)
        .with_options(quick_options());
    tokio::select! {
        summary = dispatcher.run(id.clone(), CancellationToken::new()) => Some(summary.expect("run")),
        () = provider.crashed() => None,
    }
}

/// Every record accepted exactly once, with the provider id of the message carrying its body.
fn assert_exactly_once(summary: &DispatchSummary, provider: &FaultProvider, records: usize) {
    let per_body = provider.per_body();
    for i in 0..records {
        assert_eq!(per_body.get(&body(i)), Some(&1), "record {i} texted once");
    }
    assert_eq!(provider.sent().len(), records, "no other text went out");
    let sent = provider.sent();
    for record in &summary.report.records {
        let RecordState::Accepted { provider_id, .. } = &record.state else {
            panic!("record {} not accepted: {:?}", record.seq, record.state);
        };
        let message = sent
            .iter()
            .find(|m| &m.provider_id == provider_id)
            .expect("the journaled id is a real message");
        assert_eq!(
            message.body.as_deref(),
            Some(body(record.seq as usize).as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_crashes_before_and_after_the_provider_took_the_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let records = 60;
    let c = campaign("crash", records, 20, unpaced(4));
    let id = c.id.clone();
    SqliteStore::open(&path)
        .expect("open")
        .create_campaign(c)
        .await
        .expect("create");

    let provider = FaultProvider::new((0..10).map(|_| Fault::Accept));
    provider.push([Fault::CrashBefore]);
    assert!(run_once(&path, &provider, &id).await.is_none(), "crashed");
    provider.push((0..7).map(|_| Fault::Accept));
    provider.push([Fault::CrashAfter]);
    assert!(
        run_once(&path, &provider, &id).await.is_none(),
        "crashed again"
    );

    let summary = run_once(&path, &provider, &id).await.expect("finishes");
    assert!(summary.report.is_complete());
    assert!(summary.stats.reconciled_sent >= 1, "{:?}", summary.stats);
    assert_exactly_once(&summary, &provider, records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_crash_points_never_text_anyone_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let records = 120;
    let c = campaign("many", records, 30, unpaced(3));
    let id = c.id.clone();
    SqliteStore::open(&path)
        .expect("open")
        .create_campaign(c)
        .await
        .expect("create");

    let provider = FaultProvider::default();
    let mut crashes = 0;
    let summary = loop {
        // A crash every 9 calls, alternating before and after the provider created the text.
        provider.push((0..8).map(|_| Fault::Accept));
        provider.push([if crashes % 2 == 0 {
            Fault::CrashBefore
        } else {
            Fault::CrashAfter
        }]);
        match run_once(&path, &provider, &id).await {
            Some(summary) => break summary,
            None => crashes += 1,
        }
        assert!(crashes < 100, "the campaign makes progress between crashes");
    };
    assert!(crashes >= 10, "{crashes} crash points");
    assert_exactly_once(&summary, &provider, records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_provider_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let records = 20;
    let c = campaign("panic", records, 5, unpaced(1));
    let id = c.id.clone();
    SqliteStore::open(&path)
        .expect("open")
        .create_campaign(c)
        .await
        .expect("create");
    let provider = FaultProvider::new((0..5).map(|_| Fault::Accept));
    provider.push([Fault::Panic]);
    let (p, run_path, run_id) = (provider.clone(), path.clone(), id.clone());
    let crashed = tokio::spawn(async move { run_once(&run_path, &p, &run_id).await }).await;
    assert!(crashed.expect_err("the run panicked").is_panic());

    let summary = run_once(&path, &provider, &id).await.expect("finishes");
    assert_eq!(summary.stats.reconciled_not_sent, 1, "the record in flight");
    assert_exactly_once(&summary, &provider, records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_campaign_in_flight_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let records = 10;
    let c = campaign("busy", records, 5, unpaced(2));
    let id = c.id.clone();
    SqliteStore::open(&path)
        .expect("open")
        .create_campaign(c)
        .await
        .expect("create");
    let provider = FaultProvider::new([Fault::Accept, Fault::CrashBefore]);
    let (p, run_path, run_id) = (provider.clone(), path.clone(), id.clone());
    // Not `run_once`: its own wait for the crash would take the notification from this test.
    let hung = tokio::spawn(async move {
        let store = Arc::new(SqliteStore::open(&run_path).expect("open"));
        let _ = Dispatcher::new(Arc::new(p), store.clone(), store)
            .run(run_id, CancellationToken::new())
            .await;
    });
    provider.crashed().await;

    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let second = Dispatcher::new(Arc::new(provider.clone()), store.clone(), store)
        .run(id.clone(), CancellationToken::new())
        .await;
    assert!(
        matches!(
            second,
            Err(sms_core::DispatchError::Journal(
                sms_core::JournalError::CampaignBusy(_)
            ))
        ),
        "{second:?}"
    );

    hung.abort(); // the first process dies
    assert!(hung.await.expect_err("aborted").is_cancelled());
    let summary = run_once(&path, &provider, &id).await.expect("finishes");
    assert_exactly_once(&summary, &provider, records);
}
