//! MyAccount Alerts across crates: exactly-once sending when a run dies at any write or
//! mid-call. (The alert store's contract is in the conformance suite, `tests/src/conformance.rs`.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use sms_core::alerts::{
    AlertEvent, AlertOutcome, AlertRunner, AlertStatus, AlertStore, AlertStoreError, EventInsert,
    RecentSend, ScheduledAlert, StoredAlert, SubscriptionChange,
};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSummary, DeliveryUpdate, Journal, JournalError, RecordEntry,
    RunClaim, Transition,
};
use sms_core::optout::{OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError};
use sms_core::{AlertKind, CancellationToken, PhoneNumber, PreviewItem, RecordId, Timestamp};
use sms_sqlite::SqliteStore;
use sms_tests::conformance::seed_alerts;
use sms_tests::faults::{Fault, FaultProvider};
use sms_tests::{quick_options, unpaced};

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid")
}

/// A store that dies after `budget` writes: every later write fails, as if the process had
/// been killed right there (what was written stays on disk).
struct Dying {
    store: SqliteStore,
    budget: AtomicI64,
}

impl Dying {
    fn write(&self) -> Result<(), String> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            Err("killed".to_owned())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AlertStore for Dying {
    async fn record_subscription(&self, c: SubscriptionChange) -> Result<(), AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.record_subscription(c).await
    }
    async fn subscription_history(
        &self,
        r: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError> {
        self.store.subscription_history(r).await
    }
    async fn record_event(
        &self,
        e: AlertEvent,
        a: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.record_event(e, a).await
    }
    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError> {
        self.store.events().await
    }
    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.store.pending().await
    }
    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.store.all_alerts().await
    }
    async fn finish(
        &self,
        o: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.finish(o, at).await
    }
    async fn settle(
        &self,
        o: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.settle(o, at).await
    }
    async fn claim_batch(
        &self,
        at: Timestamp,
        c: Vec<(u64, PreviewItem)>,
    ) -> Result<sms_core::alerts::AlertBatch, AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.claim_batch(at, c).await
    }
    async fn open_batches(&self) -> Result<Vec<sms_core::alerts::AlertBatch>, AlertStoreError> {
        self.store.open_batches().await
    }
    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError> {
        self.store.recent_sends(since).await
    }
    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError> {
        self.store.templates().await
    }
    async fn set_template(&self, k: AlertKind, text: String) -> Result<(), AlertStoreError> {
        self.write().map_err(AlertStoreError::Unavailable)?;
        self.store.set_template(k, text).await
    }
}

#[async_trait]
impl Journal for Dying {
    async fn create_campaign(&self, c: Campaign) -> Result<(), JournalError> {
        self.write().map_err(JournalError::Unavailable)?;
        self.store.create_campaign(c).await
    }
    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        self.store.campaign(id).await
    }
    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError> {
        self.store.campaigns().await
    }
    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        self.store.records(id).await
    }
    async fn apply(&self, id: CampaignId, t: Vec<Transition>) -> Result<(), JournalError> {
        self.write().map_err(JournalError::Unavailable)?;
        self.store.apply(id, t).await
    }
    async fn record_delivery(&self, u: DeliveryUpdate) -> Result<bool, JournalError> {
        self.store.record_delivery(u).await
    }
    async fn logged_provider_ids(
        &self,
        ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, JournalError> {
        self.store.logged_provider_ids(ids).await
    }
    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        self.store.claim(id).await
    }
}

#[async_trait]
impl OptOutStore for Dying {
    async fn record(&self, c: OptOutChange) -> Result<(), StoreError> {
        self.write().map_err(StoreError::Unavailable)?;
        self.store.record(c).await
    }
    async fn state(&self, n: PhoneNumber) -> Result<OptOutState, StoreError> {
        self.store.state(n).await
    }
    async fn history(&self, n: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        self.store.history(n).await
    }
    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        self.store.snapshot().await
    }
}

fn runner<S>(provider: &FaultProvider, store: Arc<S>) -> AlertRunner<FaultProvider, S, S, S>
where
    S: AlertStore + Journal + OptOutStore,
{
    AlertRunner::new(
        Arc::new(provider.clone()),
        store.clone(),
        store.clone(),
        store,
    )
    .with_settings(unpaced(2))
    .with_options(quick_options())
}

/// Every alert ended sent, and the provider created exactly one text per alert.
async fn assert_each_sent_once(store: &SqliteStore, provider: &FaultProvider, context: &str) {
    let alerts = store.all_alerts().await.expect("read");
    let mut expected: HashMap<(PhoneNumber, String), usize> = HashMap::new();
    for a in &alerts {
        let AlertStatus::Done {
            outcome: AlertOutcome::Sent { number, .. },
            ..
        } = &a.status
        else {
            panic!("{context}: alert {} is {:?}", a.id, a.status);
        };
        let campaign = match &a.status {
            AlertStatus::Done {
                outcome: AlertOutcome::Sent { campaign_id, .. },
                ..
            } => campaign_id.clone(),
            _ => unreachable!(),
        };
        let records = store.records(campaign.clone()).await.expect("journal");
        let items = store.campaign(campaign).await.expect("journal").items;
        let body = records
            .iter()
            .zip(&items)
            .find(|(_, item)| item.record_id == a.alert.recipient.record_id)
            .and_then(|(_, item)| match &item.outcome {
                sms_core::PreviewOutcome::Eligible { body, .. } => Some(body.clone()),
                sms_core::PreviewOutcome::Blocked { .. } => None,
            })
            .expect("the alert's record");
        *expected.entry((*number, body)).or_default() += 1;
    }
    let mut created: HashMap<(PhoneNumber, String), usize> = HashMap::new();
    for m in provider.sent() {
        *created
            .entry((m.to, m.body.clone().unwrap_or_default()))
            .or_default() += 1;
    }
    assert_eq!(created, expected, "{context}: texts created vs alerts sent");
    assert_eq!(alerts.len(), 6, "{context}");
}

#[tokio::test]
async fn a_run_killed_at_any_write_never_sends_an_alert_twice_nor_loses_one() {
    let now = t("2026-05-01T14:30:00Z"); // 10:30 in New York
    let mut budget = 0;
    loop {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.db");
        let provider = FaultProvider::new([]);
        let completed = {
            let store = SqliteStore::open(&path).expect("opens");
            seed_alerts(&store).await;
            let dying = Arc::new(Dying {
                store,
                budget: AtomicI64::new(budget),
            });
            runner(&provider, dying)
                .run_due(now, CancellationToken::new())
                .await
                .is_ok()
        };
        // The restart: a new process on the same file, a little later.
        let store = Arc::new(SqliteStore::open(&path).expect("reopens"));
        let report = runner(&provider, store.clone())
            .run_due(t("2026-05-01T14:35:00Z"), CancellationToken::new())
            .await
            .expect("the restart runs");
        assert!(
            report.is_complete(),
            "killed after {budget} writes: {report:?}"
        );
        assert_each_sent_once(&store, &provider, &format!("killed after {budget} writes")).await;
        if completed {
            assert!(budget > 5, "a whole run takes more than a few writes");
            break;
        }
        budget += 1;
    }
}

#[tokio::test]
async fn a_run_killed_mid_call_is_reconciled_on_restart_never_resent() {
    let now = t("2026-05-01T14:30:00Z");
    for fault in [Fault::CrashAfter, Fault::CrashBefore] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.db");
        let provider = FaultProvider::new([Fault::Accept, Fault::Accept, fault]);
        {
            let store = Arc::new(SqliteStore::open(&path).expect("opens"));
            seed_alerts(&*store).await;
            let run = runner(&provider, store.clone()).with_settings(unpaced(1));
            tokio::select! {
                _ = run.run_due(now, CancellationToken::new()) => panic!("the provider never answers"),
                () = provider.crashed() => {} // the process dies here: the future is dropped
            }
        }
        let store = Arc::new(SqliteStore::open(&path).expect("reopens"));
        let report = runner(&provider, store.clone())
            .run_due(t("2026-05-01T14:35:00Z"), CancellationToken::new())
            .await
            .expect("the restart runs");
        assert!(report.is_complete(), "{fault:?}: {report:?}");
        assert_each_sent_once(&store, &provider, &format!("{fault:?}")).await;
        // A third run finds nothing to do and sends nothing.
        let before = provider.sent().len();
        let again = runner(&provider, store.clone())
            .run_due(t("2026-05-01T14:40:00Z"), CancellationToken::new())
            .await
            .expect("runs");
        assert_eq!((again.sent, provider.sent().len()), (0, before));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_the_service_and_the_command_send_each_alert_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let provider = FaultProvider::new([]);
    let first = Arc::new(SqliteStore::open(&path).expect("opens"));
    seed_alerts(&*first).await;
    let second = Arc::new(SqliteStore::open(&path).expect("opens"));
    let now = t("2026-05-01T14:30:00Z");
    let (one, other) = (runner(&provider, first.clone()), runner(&provider, second));
    let (a, b) = tokio::join!(
        one.run_due(now, CancellationToken::new()),
        other.run_due(now, CancellationToken::new()),
    );
    let (a, b) = (a.expect("runs"), b.expect("runs"));
    assert!(a.sent + b.sent <= 6, "{a:?}\n{b:?}");
    // Whatever one run left to the other is finished by the next.
    runner(&provider, first.clone())
        .run_due(t("2026-05-01T14:35:00Z"), CancellationToken::new())
        .await
        .expect("runs");
    assert_each_sent_once(&first, &provider, "two runs at once").await;
}

#[tokio::test]
async fn an_outcome_in_doubt_keeps_its_alert_claimed_and_a_later_run_reports_only_what_it_settles()
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("opens"));
    seed_alerts(&*store).await;
    // The third call's answer is lost and the provider keeps no history: nobody can tell.
    let provider =
        FaultProvider::new([Fault::Accept, Fault::Accept, Fault::UnknownNotSent]).without_history();
    let run = runner(&provider, store.clone()).with_settings(unpaced(1));
    let first = run
        .run_due(t("2026-05-01T14:30:00Z"), CancellationToken::new())
        .await
        .expect("runs");
    assert_eq!((first.sent, first.in_doubt), (5, 1), "{first:?}");
    assert!(!first.is_complete(), "an outcome in doubt: exit status 3");
    let second = run
        .run_due(t("2026-05-01T14:35:00Z"), CancellationToken::new())
        .await
        .expect("runs");
    // The five sent before are not reported again, nor sent again; the one in doubt stays so.
    assert_eq!((second.sent, second.in_doubt), (0, 1), "{second:?}");
    assert_eq!(provider.sent().len(), 5);
    let open = store.open_batches().await.expect("read");
    assert_eq!(
        open.len(),
        1,
        "the batch stays open for a person or a later run"
    );
}
