//! The fault matrix: slow-down storms, try-later, unknown outcomes, bad recipients, a STOP
//! arriving mid-campaign, and reconciliation of leftovers, on a real SQLite file.

use std::sync::Arc;

use sms_core::journal::{CampaignId, Journal, RecordState};
use sms_core::optout::{OptOutState, OptOutStore};
use sms_core::{BlockReason, CancellationToken, DispatchSummary, Dispatcher};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::{body, campaign, number};
use sms_tests::faults::{Fault, FaultProvider};
use sms_tests::{quick_options, unpaced};

async fn setup(
    records: usize,
    numbers: usize,
    concurrency: u32,
) -> (tempfile::TempDir, Arc<SqliteStore>, CampaignId) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    let c = campaign("faults", records, numbers, unpaced(concurrency));
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    (dir, store, id)
}

async fn run(
    store: &Arc<SqliteStore>,
    provider: &FaultProvider,
    id: &CampaignId,
) -> DispatchSummary {
    Dispatcher::new(Arc::new(provider.clone()), store.clone(), store.clone())
        .with_options(quick_options())
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run")
}

fn assert_none_twice(provider: &FaultProvider) {
    let twice: Vec<_> = provider
        .per_body()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "texted twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_down_storm_delays_but_neither_drops_nor_doubles() {
    let (_dir, store, id) = setup(40, 10, 8).await;
    let provider = FaultProvider::new((0..20).map(|_| Fault::SlowDown(3)));
    let summary = run(&store, &provider, &id).await;
    assert_eq!(summary.report.totals.accepted, 40);
    assert_none_twice(&provider);
    assert_eq!(
        provider.calls(),
        60,
        "every refused call was retried once its turn came"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_later_is_retried_and_a_long_outage_defers_records_for_a_resume() {
    let (_dir, store, id) = setup(10, 10, 1).await;
    // Record 0 fails 8 times (the limit) and is deferred; the others go through.
    let provider = FaultProvider::new((0..8).map(|_| Fault::TryLater));
    provider.push([Fault::TryLater, Fault::Accept]);
    let first = run(&store, &provider, &id).await;
    assert_eq!(first.report.totals.deferred, 1);
    assert_eq!(first.report.totals.accepted, 9);
    assert!(!first.report.is_complete());
    let second = run(&store, &provider, &id).await;
    assert_eq!(second.report.totals.accepted, 10);
    assert_eq!(second.stats.provider_calls, 1);
    assert_none_twice(&provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_are_reconciled_within_the_run() {
    let (_dir, store, id) = setup(30, 6, 4).await;
    let provider = FaultProvider::new([
        Fault::UnknownSent,
        Fault::Accept,
        Fault::UnknownNotSent,
        Fault::UnknownSent,
        Fault::UnknownNotSent,
    ]);
    let summary = run(&store, &provider, &id).await;
    assert!(summary.report.is_complete(), "{:?}", summary.report.totals);
    assert_eq!(summary.report.totals.accepted, 30);
    assert_eq!(summary.stats.reconciled_sent, 2);
    assert_eq!(summary.stats.reconciled_not_sent, 2);
    assert_eq!(provider.sent().len(), 30);
    assert_none_twice(&provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_recipient_fails_once_and_is_not_retried() {
    let (_dir, store, id) = setup(5, 5, 1).await;
    let provider = FaultProvider::new([Fault::BadRecipient]);
    let summary = run(&store, &provider, &id).await;
    let totals = &summary.report.totals;
    assert_eq!((totals.failed, totals.accepted), (1, 4));
    assert_eq!(totals.failed_by_class.get("bad_recipient"), Some(&1));
    assert!(summary.report.is_complete(), "a refusal is a final outcome");
    assert_eq!(run(&store, &provider, &id).await.stats.provider_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_arriving_mid_campaign_wins_over_the_rest_of_the_list() {
    let (_dir, store, id) = setup(30, 3, 1).await;
    let stopped = number(0); // records 0, 3, 6, ... 27
    let provider = FaultProvider::default().stop_after(5, stopped, store.clone());
    let summary = run(&store, &provider, &id).await;
    let to_stopped = provider.sent().iter().filter(|m| m.to == stopped).count();
    assert_eq!(
        to_stopped, 2,
        "records 0 and 3 went out before the STOP, none after"
    );
    let blocked: Vec<u32> = summary
        .report
        .records
        .iter()
        .filter(|r| {
            matches!(
                r.state,
                RecordState::Blocked {
                    reason: BlockReason::OptedOut { .. }
                }
            )
        })
        .map(|r| r.seq)
        .collect();
    assert_eq!(blocked, [6, 9, 12, 15, 18, 21, 24, 27]);
    assert_eq!(summary.report.totals.accepted, 22);
    assert!(matches!(
        store.state(stopped).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_are_accepted_when_found_resent_only_when_proven_unsent_else_reported() {
    // Found: the provider took the text before the crash.
    let (_dir, store, id) = setup(3, 3, 1).await;
    let provider = FaultProvider::new([Fault::CrashAfter]);
    let dispatcher = Dispatcher::new(Arc::new(provider.clone()), store.clone(), store.clone())
        .with_options(quick_options());
    tokio::select! {
        _ = dispatcher.run(id.clone(), CancellationToken::new()) => panic!("should hang"),
        () = provider.crashed() => {}
    }
    let records = store.records(id.clone()).await.expect("records");
    assert!(matches!(records[0].state, RecordState::Sending { .. }));
    let summary = run(&store, &provider, &id).await;
    assert_eq!(summary.stats.reconciled_sent, 1);
    assert_eq!(
        summary.stats.provider_calls, 2,
        "record 0 was not sent again"
    );
    assert_none_twice(&provider);

    // Cannot tell: the provider keeps no history, so the leftover goes to a person.
    let (_dir, store, id) = setup(3, 3, 1).await;
    let provider = FaultProvider::new([Fault::CrashBefore]).without_history();
    let dispatcher = Dispatcher::new(Arc::new(provider.clone()), store.clone(), store.clone())
        .with_options(quick_options());
    tokio::select! {
        _ = dispatcher.run(id.clone(), CancellationToken::new()) => panic!("should hang"),
        () = provider.crashed() => {}
    }
    let summary = run(&store, &provider, &id).await;
    assert_eq!(summary.stats.reconciled_undecided, 1);
    let attention: Vec<u32> = summary.report.needs_attention().map(|r| r.seq).collect();
    assert_eq!(attention, [0]);
    assert!(!summary.report.is_complete());
    assert!(
        !provider.per_body().contains_key(&body(0)),
        "not resent on a guess"
    );
}

/// A journal whose `sending` writes fail (disk full, database busy) from the `fail_from`-th on.
struct FailingJournal {
    inner: Arc<SqliteStore>,
    fail_from: usize,
    sending_writes: std::sync::Mutex<usize>,
    refused: std::sync::Mutex<Vec<u32>>,
}

#[async_trait::async_trait]
impl Journal for FailingJournal {
    async fn create_campaign(
        &self,
        campaign: sms_core::journal::Campaign,
    ) -> Result<(), sms_core::JournalError> {
        self.inner.create_campaign(campaign).await
    }
    async fn campaign(
        &self,
        id: CampaignId,
    ) -> Result<sms_core::journal::Campaign, sms_core::JournalError> {
        self.inner.campaign(id).await
    }
    async fn campaigns(
        &self,
    ) -> Result<Vec<sms_core::journal::CampaignSummary>, sms_core::JournalError> {
        self.inner.campaigns().await
    }
    async fn records(
        &self,
        id: CampaignId,
    ) -> Result<Vec<sms_core::journal::RecordEntry>, sms_core::JournalError> {
        self.inner.records(id).await
    }
    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<sms_core::journal::Transition>,
    ) -> Result<(), sms_core::JournalError> {
        if transitions
            .iter()
            .any(|t| matches!(t.state, RecordState::Sending { .. }))
        {
            let mut writes = self.sending_writes.lock().expect("not poisoned");
            *writes += 1;
            if *writes >= self.fail_from {
                let mut refused = self.refused.lock().expect("not poisoned");
                refused.extend(transitions.iter().map(|t| t.seq));
                return Err(sms_core::JournalError::Unavailable(
                    "database or disk is full".into(),
                ));
            }
        }
        self.inner.apply(id, transitions).await
    }
    async fn record_delivery(
        &self,
        update: sms_core::journal::DeliveryUpdate,
    ) -> Result<bool, sms_core::JournalError> {
        self.inner.record_delivery(update).await
    }
    async fn logged_provider_ids(
        &self,
        ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, sms_core::JournalError> {
        self.inner.logged_provider_ids(ids).await
    }
    async fn claim(
        &self,
        id: CampaignId,
    ) -> Result<sms_core::journal::RunClaim, sms_core::JournalError> {
        self.inner.claim(id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_fails_mid_campaign_sends_nothing_it_did_not_journal() {
    let (_dir, store, id) = setup(30, 10, 4).await;
    let journal = Arc::new(FailingJournal {
        inner: store.clone(),
        fail_from: 12,
        sending_writes: Default::default(),
        refused: Default::default(),
    });
    let provider = FaultProvider::default();
    let result = Dispatcher::new(Arc::new(provider.clone()), store.clone(), journal.clone())
        .with_options(quick_options())
        .run(id.clone(), CancellationToken::new())
        .await;
    assert!(
        matches!(
            result,
            Err(sms_core::DispatchError::Journal(
                sms_core::JournalError::Unavailable(_)
            ))
        ),
        "the run stops on the store's error: {result:?}"
    );
    let refused = journal.refused.lock().expect("not poisoned").clone();
    assert!(!refused.is_empty(), "the fault fired");
    let sent = provider.per_body();
    for seq in &refused {
        assert!(
            !sent.contains_key(&body(*seq as usize)),
            "record {seq} was texted although its `sending` write failed"
        );
    }
    assert_eq!(
        provider.calls() as usize,
        sent.values().sum::<usize>(),
        "every call made was journaled first"
    );
    assert!(
        provider.calls() < 30,
        "the run stopped: {}",
        provider.calls()
    );

    // The disk has room again: a resume finishes, nobody texted twice.
    let summary = run(&store, &provider, &id).await;
    assert_eq!(summary.report.totals.accepted, 30);
    assert_none_twice(&provider);
}
