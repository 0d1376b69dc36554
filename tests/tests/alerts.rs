//! MyAccount Alerts across crates: the store contract on memory and SQLite (durable across a
//! reopen), and exactly-once sending when a run dies at any write or mid-call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertOutcome, AlertRunner, AlertStatus, AlertStore, AlertStoreError,
    AlertTemplates, EventId, EventInsert, InMemoryAlertStore, RecentSend, ScheduledAlert,
    StoredAlert, SubscriptionAction, SubscriptionChange, SubscriptionSource, plan_event,
};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSummary, DeliveryUpdate, Journal, JournalError, RecordEntry,
    RunClaim, Transition,
};
use sms_core::optout::{OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError};
use sms_core::{
    AlertKind, CancellationToken, PermittedMarketingMethods, PhoneNumber, PreviewItem, Recipient,
    RecipientKind, RecordId, Timestamp,
};
use sms_sqlite::SqliteStore;
use sms_tests::faults::{Fault, FaultProvider};
use sms_tests::{quick_options, unpaced};

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid")
}

fn client(id: &str, first: &str, mobile: &str) -> Recipient {
    Recipient {
        record_id: RecordId::new(id),
        kind: RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new("Email, Alerts"),
        },
        first_name: first.into(),
        last_name: "Lopez".into(),
        mobile: mobile.into(),
        time_zone: Some("America/New_York".into()),
        fields: BTreeMap::from([("course_title".to_owned(), "Intro to Welding".to_owned())]),
    }
}

/// Six clients, a family phone among them, two events; every one subscribed to both kinds.
async fn seed(store: &dyn AlertStore) -> usize {
    let roster = vec![
        client("C1", "Ana", "+12125550101"),
        client("C2", "Bo", "+12125550102"),
        client("KID1", "Cy", "+12125550103"),
        client("KID2", "Di", "(212) 555-0103"),
    ];
    let config = AlertConfig::default();
    let templates = AlertTemplates::new([(
        AlertKind::EvaluationDue,
        "{org_name}: {first_name}, the evaluation for {course_title} is open. Reply STOP to opt out."
            .to_owned(),
    )]);
    for (kind, text) in templates_of(&templates) {
        store.set_template(kind, text).await.expect("stored");
    }
    let mut evaluation = event("EV-1", AlertKind::EvaluationDue, "2026-05-01T14:00:00Z");
    evaluation.section = "WELD-101".into();
    let mut change = event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T14:05:00Z");
    change.old = Some("Room 12".into());
    change.new = Some("Room 204".into());
    let later = vec![
        client("C5", "Ed", "+12125550105"),
        client("C6", "Flo", "+12125550106"),
    ];
    let mut scheduled = 0;
    for (e, r) in [(evaluation, roster.clone()), (change, later.clone())] {
        let alerts = plan_event(&e, &r, &config, &templates).expect("plans");
        scheduled += alerts.len();
        store.record_event(e, alerts).await.expect("stored");
    }
    for r in roster.iter().chain(&later) {
        for kind in [AlertKind::EvaluationDue, AlertKind::ScheduleChanged] {
            store
                .record_subscription(SubscriptionChange {
                    record_id: r.record_id.clone(),
                    kind,
                    action: SubscriptionAction::Subscribe,
                    number: PhoneNumber::parse(&r.mobile, Default::default()).ok(),
                    at: t("2026-01-01T00:00:00Z"),
                    source: SubscriptionSource::Myaccount,
                    wording: "Text me alerts about my classes. Reply STOP to opt out.".into(),
                })
                .await
                .expect("stored");
        }
    }
    scheduled
}

fn templates_of(templates: &AlertTemplates) -> Vec<(AlertKind, String)> {
    AlertKind::ALL
        .into_iter()
        .filter(|k| !templates.is_default(*k))
        .map(|k| (k, templates.source(k).to_owned()))
        .collect()
}

fn event(id: &str, kind: AlertKind, received: &str) -> AlertEvent {
    AlertEvent {
        id: EventId::new(id).expect("id"),
        kind,
        section: "WELD-101".into(),
        section_time_zone: None,
        starts_at: None,
        old: None,
        new: None,
        hold_until: None,
        reason: None,
        program_year: None,
        received_at: t(received),
    }
}

/// The contract every alert store keeps.
async fn contract(store: &dyn AlertStore) {
    let scheduled = seed(store).await;
    assert_eq!(scheduled, 6);
    // The host reports an event twice: nothing new.
    let e = event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T15:00:00Z");
    let again = plan_event(
        &AlertEvent {
            old: Some("a".into()),
            new: Some("b".into()),
            ..e.clone()
        },
        &[client("C5", "Ed", "+12125550105")],
        &AlertConfig::default(),
        &AlertTemplates::default(),
    )
    .expect("plans");
    assert_eq!(
        store.record_event(e, again).await.expect("stored"),
        EventInsert {
            new_event: false,
            scheduled: 0,
            duplicates: 1
        }
    );
    assert_eq!(store.events().await.expect("read").len(), 2);
    // Unsubscribing is kept in the history.
    store
        .record_subscription(SubscriptionChange {
            record_id: RecordId::new("C1"),
            kind: AlertKind::EvaluationDue,
            action: SubscriptionAction::Unsubscribe,
            number: None,
            at: t("2026-02-01T00:00:00Z"),
            source: SubscriptionSource::Staff,
            wording: String::new(),
        })
        .await
        .expect("stored");
    let history = store
        .subscription_history(Some(RecordId::new("C1")))
        .await
        .expect("read");
    assert_eq!(
        history.iter().map(|c| c.action).collect::<Vec<_>>(),
        [
            SubscriptionAction::Subscribe,
            SubscriptionAction::Subscribe,
            SubscriptionAction::Unsubscribe
        ]
    );
    assert_eq!(
        history[0].wording,
        "Text me alerts about my classes. Reply STOP to opt out."
    );

    // Claims are all or nothing, and an alert is claimed once.
    let pending = store.pending().await.expect("read");
    assert_eq!(pending.len(), 6);
    let item = |s: &StoredAlert| PreviewItem {
        record_id: s.alert.recipient.record_id.clone(),
        kind: sms_core::RecordKind::Client,
        name: "x".into(),
        mobile: s.alert.recipient.mobile.clone(),
        time_zone: None,
        outcome: sms_core::PreviewOutcome::Eligible {
            number: PhoneNumber::parse(&s.alert.recipient.mobile, Default::default())
                .expect("valid"),
            body: "b".into(),
            encoding: sms_core::Encoding::Gsm7,
            segments: 1,
        },
    };
    let batch = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[0].id, item(&pending[0])),
                (pending[1].id, item(&pending[1])),
            ],
        )
        .await
        .expect("claims");
    let refused = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[2].id, item(&pending[2])),
                (pending[1].id, item(&pending[1])),
            ],
        )
        .await;
    assert!(
        matches!(refused, Err(AlertStoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.pending().await.expect("read").len(),
        4,
        "nothing of the refused claim"
    );
    assert_eq!(
        store.open_batches().await.expect("read"),
        vec![batch.clone()]
    );
    assert_eq!(
        store
            .recent_sends(t("2026-05-01T00:00:00Z"))
            .await
            .expect("read")
            .len(),
        2,
        "claimed alerts count against the cap"
    );
    let sent = AlertOutcome::Sent {
        number: PhoneNumber::from_e164("+12125550101").expect("valid"),
        provider_id: "SM1".into(),
        campaign_id: batch.campaign_id.clone(),
    };
    // The rules' `finish` leaves a claimed alert to its batch.
    store
        .finish(
            vec![(
                batch.alerts[0],
                AlertOutcome::Never {
                    reason: sms_core::alerts::AlertReason::StaffNeverAlerted,
                },
            )],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("ignored");
    store
        .settle(
            vec![(batch.alerts[0], sent.clone())],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("settles");
    // A replay never changes a final outcome.
    store
        .settle(
            vec![(
                batch.alerts[0],
                AlertOutcome::Failed {
                    failure: sms_core::journal::SendFailure {
                        class: "x".into(),
                        code: None,
                        message: "x".into(),
                    },
                },
            )],
            t("2026-05-01T14:12:00Z"),
        )
        .await
        .expect("ignored");
    let all = store.all_alerts().await.expect("read");
    let first = all.iter().find(|a| a.id == batch.alerts[0]).expect("there");
    assert_eq!(
        first.status,
        AlertStatus::Done {
            outcome: sent,
            at: t("2026-05-01T14:11:00Z")
        }
    );
    assert_eq!(
        store.open_batches().await.expect("read").len(),
        1,
        "one still claimed"
    );
    // Every outcome reads back as written (a consent block nests the consent's reason).
    let blocked = AlertOutcome::Never {
        reason: sms_core::alerts::AlertReason::Blocked {
            reason: sms_core::BlockReason::OptedOut {
                number: PhoneNumber::from_e164("+12125550102").expect("valid"),
                since: t("2026-04-01T00:00:00Z"),
            },
        },
    };
    store
        .settle(
            vec![(batch.alerts[1], blocked.clone())],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("settles");
    let all = store.all_alerts().await.expect("read");
    let second = all.iter().find(|a| a.id == batch.alerts[1]).expect("there");
    assert_eq!(
        second.status,
        AlertStatus::Done {
            outcome: blocked,
            at: t("2026-05-01T14:11:00Z")
        }
    );
    let recent: Vec<RecentSend> = store
        .recent_sends(t("2026-05-01T14:10:01Z"))
        .await
        .expect("read");
    assert!(recent.is_empty(), "claimed at 14:10:00, before the window");
}

#[tokio::test]
async fn the_memory_and_sqlite_stores_keep_the_same_contract_and_sqlite_survives_a_reopen() {
    contract(&InMemoryAlertStore::new()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    {
        let store = SqliteStore::open(&path).expect("opens");
        contract(&store).await;
    }
    let store = SqliteStore::open(&path).expect("reopens");
    assert_eq!(store.events().await.expect("read").len(), 2);
    assert_eq!(store.pending().await.expect("read").len(), 4);
    assert_eq!(store.open_batches().await.expect("read").len(), 0);
    assert_eq!(
        store.subscription_history(None).await.expect("read").len(),
        13
    );
    assert_eq!(store.templates().await.expect("read").len(), 1);
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
            seed(&store).await;
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
            seed(&*store).await;
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
    seed(&*first).await;
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
    seed(&*store).await;
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
