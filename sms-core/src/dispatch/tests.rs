//! The dispatcher's rules, on the in-memory journal and store with paused time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::PhoneNumber;
use crate::journal::InMemoryJournal;
use crate::optout::InMemoryOptOutStore;
use crate::preview::Money;
use crate::preview::{PreviewItem, PreviewOutcome};
use crate::provider::{
    Accepted, DeliveryStatus, MockProvider, OutboundSms, SentMessage, SimulatedProvider,
};
use crate::recipient::RecordId;
use crate::segment::Encoding;
use crate::time::Timestamp;

fn number(e164: &str) -> PhoneNumber {
    PhoneNumber::from_e164(e164).expect("valid test number")
}

fn campaign(records: &[(&str, &str)], settings: CampaignSettings) -> Campaign {
    let items = records
        .iter()
        .enumerate()
        .map(|(i, (to, body))| PreviewItem {
            record_id: RecordId::new(format!("C-{i}")),
            kind: crate::RecordKind::Client,
            name: format!("Client {i}"),
            mobile: (*to).into(),
            time_zone: None,
            outcome: PreviewOutcome::Eligible {
                number: number(to),
                body: (*body).into(),
                encoding: Encoding::Gsm7,
                segments: 1,
            },
        })
        .collect();
    Campaign {
        id: CampaignId::new("test").expect("not blank"),
        name: "Test".into(),
        created_at: Timestamp::now(),
        template: "x".into(),
        settings,
        items,
    }
}

async fn dispatcher<P: Provider + 'static>(
    provider: P,
    campaign: Campaign,
) -> (
    Dispatcher<P, InMemoryOptOutStore, InMemoryJournal>,
    Arc<InMemoryOptOutStore>,
    CampaignId,
) {
    let journal = Arc::new(InMemoryJournal::new());
    let store = Arc::new(InMemoryOptOutStore::new());
    let id = campaign.id.clone();
    journal.create_campaign(campaign).await.expect("create");
    let options = DispatchOptions {
        reconcile_delay_ms: 0,
        ..DispatchOptions::default()
    };
    let d = Dispatcher::new(Arc::new(provider), store.clone(), journal).with_options(options);
    (d, store, id)
}

#[derive(Default)]
struct Recorder(Mutex<Vec<ProgressSnapshot>>);

impl Progress for Recorder {
    fn on_progress(&self, snapshot: ProgressSnapshot) {
        self.0.lock().expect("not poisoned").push(snapshot);
    }
}

const A: &str = "+12125550101";
const B: &str = "+12125550102";

#[tokio::test(start_paused = true)]
async fn sends_each_record_once_at_one_per_second_and_reports_progress() {
    let records = [(A, "a1"), (B, "b1"), (A, "a2"), (B, "b2"), (A, "a3")];
    let (d, _, id) = dispatcher(
        SimulatedProvider::new(),
        campaign(&records, CampaignSettings::default()),
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let d = d.with_progress(recorder.clone());
    let t0 = Instant::now();
    let summary = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(
        Instant::now() - t0,
        Duration::from_secs(4),
        "5 texts at 1/s"
    );
    assert_eq!(summary.report.totals.accepted, 5);
    assert_eq!(summary.stats.provider_calls, 5);
    let last = recorder.0.lock().expect("not poisoned").last().cloned();
    let last = last.expect("progress was reported");
    assert_eq!(
        (last.sent, last.remaining, last.eta_seconds),
        (5, 0, Some(0))
    );

    let again = d
        .run(id, CancellationToken::new())
        .await
        .expect("second run");
    assert_eq!(
        again.stats.provider_calls, 0,
        "a finished campaign sends nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn honours_slow_down_and_retries_try_later() {
    let mut provider = MockProvider::new();
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    provider.expect_send().returning(move |_| {
        let mut n = counter.lock().expect("not poisoned");
        *n += 1;
        match *n {
            1 => Err(SendError::SlowDown {
                code: Some(20429),
                message: "Too Many Requests".into(),
                retry_after_ms: Some(30_000),
            }),
            2 => Err(SendError::TryLater {
                code: Some(503),
                message: "unavailable".into(),
            }),
            _ => Ok(Accepted {
                provider_id: format!("SM{n}"),
                status: DeliveryStatus::Queued,
                segments: Some(1),
            }),
        }
    });
    provider.expect_balance().returning(|| Ok(None));
    provider.expect_lookup_sent().never();
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "hi")], settings)).await;
    let t0 = Instant::now();
    let summary = d.run(id, CancellationToken::new()).await.expect("run");
    // 30 s as asked, then the first backoff of 2 s (attempt 2).
    assert_eq!(Instant::now() - t0, Duration::from_secs(32));
    assert_eq!(summary.report.totals.accepted, 1);
    assert_eq!(*calls.lock().expect("not poisoned"), 3);
}

#[tokio::test]
async fn a_configuration_error_stops_the_run_and_keeps_the_record_planned() {
    let mut provider = MockProvider::new();
    provider.expect_send().times(1).returning(|_| {
        Err(SendError::Configuration {
            code: Some(20003),
            message: "Authenticate".into(),
        })
    });
    provider.expect_balance().returning(|| Ok(None));
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        concurrency: 1,
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "a"), (B, "b")], settings)).await;
    let err = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect_err("stops");
    assert!(matches!(
        err,
        DispatchError::Provider(SendError::Configuration { .. })
    ));
    let records = d.journal.records(id).await.expect("records");
    assert!(records.iter().all(|r| r.state == RecordState::Planned));
}

#[tokio::test]
async fn refuses_up_front_when_the_balance_is_short() {
    let mut provider = MockProvider::new();
    provider.expect_send().never();
    provider.expect_balance().returning(|| {
        Ok(Some(crate::Balance {
            amount: "0.01".into(),
            currency: "USD".into(),
        }))
    });
    let settings = CampaignSettings {
        provider: None,
        price_per_segment: Money::parse("0.0083", "USD"),
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "a"), (B, "b")], settings)).await;
    let err = d
        .run(id, CancellationToken::new())
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "this campaign needs 2 message units (0.0166 USD) but the provider balance is 0.01 USD \
         (enough for 1 units)"
    );
}

#[tokio::test]
async fn once_per_number_sends_a_shared_body_once_and_logs_it_on_every_record() {
    let provider = SimulatedProvider::new();
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        once_per_number: true,
        ..CampaignSettings::default()
    };
    let records = [(A, "same"), (A, "same"), (A, "other"), (B, "same")];
    let (d, _, id) = dispatcher(provider.clone(), campaign(&records, settings)).await;
    let summary = d.run(id, CancellationToken::new()).await.expect("run");
    assert_eq!(provider.sent().len(), 3);
    let totals = &summary.report.totals;
    assert_eq!(
        (totals.accepted, totals.texts_sent, totals.units_used),
        (4, 3, 3)
    );
    let ids: Vec<_> = summary.report.records[..2]
        .iter()
        .map(|r| r.state.provider_id().map(str::to_owned))
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn a_provider_opt_out_is_recorded_and_blocks_the_numbers_other_records() {
    let opted_out = "+15005550004"; // the simulator answers 21610
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        concurrency: 1,
        ..CampaignSettings::default()
    };
    let records = [(opted_out, "one"), (A, "a"), (opted_out, "two")];
    let (d, store, id) = dispatcher(SimulatedProvider::new(), campaign(&records, settings)).await;
    let summary = d.run(id, CancellationToken::new()).await.expect("run");
    let states: Vec<&str> = summary
        .report
        .records
        .iter()
        .map(|r| r.state.code())
        .collect();
    assert_eq!(states, ["failed", "accepted", "blocked"]);
    let history = store.history(number(opted_out)).await.expect("history");
    assert_eq!(history[0].source, ChangeSource::Provider);
    assert_eq!(summary.stats.provider_calls, 2);
}

#[tokio::test]
async fn an_unknown_outcome_is_reconciled_before_anything_is_resent() {
    let mut provider = MockProvider::new();
    provider.expect_send().times(1).returning(|_| {
        Err(SendError::Unknown {
            message: "timed out after the request was written".into(),
        })
    });
    provider.expect_balance().returning(|| Ok(None));
    provider.expect_lookup_sent().times(1).returning(|to, _| {
        Ok(vec![SentMessage {
            provider_id: "SM42".into(),
            to,
            body: Some("hi".into()),
            status: DeliveryStatus::Sent,
            created_at: None,
            segments: Some(1),
        }])
    });
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "hi")], settings)).await;
    let summary = d.run(id, CancellationToken::new()).await.expect("run");
    assert_eq!(summary.report.records[0].state.provider_id(), Some("SM42"));
    assert_eq!(summary.stats.reconciled_sent, 1);
}

#[tokio::test]
async fn an_unknown_outcome_the_provider_cannot_explain_is_left_to_a_person() {
    let mut provider = MockProvider::new();
    provider.expect_send().times(1).returning(|_| {
        Err(SendError::Unknown {
            message: "connection reset".into(),
        })
    });
    provider.expect_balance().returning(|| Ok(None));
    provider.expect_lookup_sent().returning(|_, _| {
        Err(SendError::Unsupported {
            message: "no history".into(),
        })
    });
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "hi")], settings)).await;
    let summary = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(summary.report.totals.unknown, 1);
    assert!(!summary.report.is_complete());
    assert_eq!(summary.report.needs_attention().count(), 1);

    // A person checked the provider's console: it did not go out.
    d.resolve(
        id.clone(),
        0,
        Resolution::NotSent,
        Timestamp::from_unix_ms(9),
    )
    .await
    .expect("resolved");
    let records = d.journal.records(id.clone()).await.expect("records");
    assert_eq!(records[0].state, RecordState::Planned);
    let again = d
        .resolve(id, 0, Resolution::NotSent, Timestamp::from_unix_ms(9))
        .await;
    assert!(again.is_err(), "only an unknown record can be resolved");
}

#[test]
fn the_estimate_before_storing_warns_past_the_queue_window() {
    let records: Vec<(&str, &str)> = (0..40).map(|_| (A, "hi")).collect();
    let c = campaign(&records, CampaignSettings::default());
    let options = DispatchOptions {
        queue_window_seconds: 30,
        ..DispatchOptions::default()
    };
    let (estimate, warnings) = estimate_campaign(&c, &options);
    assert_eq!((estimate.texts, estimate.units), (40, 40));
    assert_eq!(estimate.duration_seconds, Some(40.0));
    assert_eq!(warnings.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_cleanly_and_a_resume_finishes() {
    let records = [(A, "1"), (B, "2"), (A, "3"), (B, "4")];
    let provider = SimulatedProvider::new();
    let (d, _, id) = dispatcher(
        provider.clone(),
        campaign(&records, CampaignSettings::default()),
    )
    .await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        trigger.cancel();
    });
    let first = d.run(id.clone(), cancel).await.expect("run");
    assert!(first.cancelled);
    assert_eq!(first.report.totals.accepted, 2);
    assert_eq!(first.report.totals.planned, 2);
    let second = d.run(id, CancellationToken::new()).await.expect("resume");
    assert_eq!(second.report.totals.accepted, 4);
    assert_eq!(provider.sent().len(), 4);
}

struct ClockAt(Arc<std::sync::atomic::AtomicI64>);

impl Clock for ClockAt {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[tokio::test(start_paused = true)]
async fn silence_proves_nothing_until_it_has_lasted_on_the_monotonic_clock() {
    let t = Arc::new(std::sync::atomic::AtomicI64::new(100_000));
    let set = |ms: i64| t.store(ms, std::sync::atomic::Ordering::SeqCst);
    let provider = Arc::new(SimulatedProvider::new());
    let journal = Arc::new(InMemoryJournal::new());
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let mut c = campaign(&[(A, "hi")], settings);
    c.created_at = Timestamp::from_unix_ms(90_000);
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    // A crash left the record `sending` 5 s ago; the provider lists nothing (yet).
    journal
        .apply(
            id.clone(),
            vec![Transition {
                seq: 0,
                state: RecordState::Sending {
                    attempt: 1,
                    at: Timestamp::from_unix_ms(95_000),
                },
            }],
        )
        .await
        .expect("sending");
    let d = Dispatcher::new(
        provider.clone(),
        Arc::new(InMemoryOptOutStore::new()),
        journal.clone(),
    )
    .with_clock(Arc::new(ClockAt(t.clone())))
    .with_options(DispatchOptions {
        reconcile_delay_ms: 0,
        max_rounds: 1,
        ..DispatchOptions::default()
    });
    let early = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(
        early.report.totals.unknown, 1,
        "too young to call it unsent"
    );
    assert!(
        provider.sent().is_empty(),
        "nothing resent on silence alone"
    );

    // The wall clock jumps an hour forward (a restart after a crash, an NTP step): by the
    // wall clock the attempt is old, but the silence has lasted no time at all.
    set(3_700_000);
    let jumped = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(jumped.report.totals.unknown, 1);
    assert!(
        provider.sent().is_empty(),
        "a forward jump of the wall clock does not make the wait pass"
    );

    // A run that may wait sees the silence last 30 s on the monotonic clock, then sends once.
    let d = d.with_options(DispatchOptions {
        reconcile_delay_ms: 0,
        ..DispatchOptions::default()
    });
    let t0 = Instant::now();
    let later = d.run(id, CancellationToken::new()).await.expect("run");
    assert!(later.report.is_complete());
    assert_eq!(
        Instant::now() - t0,
        Duration::from_secs(30),
        "it waited for the silence to last reconcile_settle_ms"
    );
    assert_eq!(
        provider.sent().len(),
        1,
        "sent once, after the silence settled"
    );
}

/// A provider whose clock is `behind_ms` behind ours: it dates its messages by its own clock.
/// The first call creates the message and then answers as a 500 would (outcome unknown).
struct LaggingProvider {
    inner: SimulatedProvider,
    behind_ms: i64,
    tells_its_time: bool,
    calls: std::sync::atomic::AtomicU32,
}

impl LaggingProvider {
    fn new(behind_ms: i64, tells_its_time: bool) -> Self {
        Self {
            inner: SimulatedProvider::new().with_clock(move || {
                Timestamp::from_unix_ms(Timestamp::now().unix_ms() - behind_ms)
            }),
            behind_ms,
            tells_its_time,
            calls: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for LaggingProvider {
    fn name(&self) -> &str {
        "lagging"
    }

    async fn send(&self, sms: &OutboundSms) -> Result<crate::Accepted, SendError> {
        let accepted = self.inner.send(sms).await?;
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(SendError::Unknown {
                message: "500 after the message was created".into(),
            });
        }
        Ok(accepted)
    }

    async fn balance(&self) -> Result<Option<crate::Balance>, SendError> {
        Ok(None)
    }

    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError> {
        self.inner.lookup_sent(to, since).await
    }

    async fn lookup_history(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<crate::History, SendError> {
        Ok(crate::History {
            messages: self.lookup_sent(to, since).await?,
            provider_now: self
                .tells_its_time
                .then(|| Timestamp::from_unix_ms(Timestamp::now().unix_ms() - self.behind_ms)),
        })
    }
}

async fn run_lagging(provider: Arc<LaggingProvider>) -> DispatchSummary {
    let journal = Arc::new(InMemoryJournal::new());
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let c = campaign(&[(A, "Class moved to Room 4")], settings);
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    Dispatcher::new(provider, Arc::new(InMemoryOptOutStore::new()), journal)
        .with_options(DispatchOptions {
            reconcile_delay_ms: 0,
            // Silence may count at once: what is tested is the clock allowance alone.
            reconcile_settle_ms: 0,
            ..DispatchOptions::default()
        })
        .run(id, CancellationToken::new())
        .await
        .expect("run")
}

#[tokio::test]
async fn a_provider_clock_180_s_behind_ours_never_causes_a_resend() {
    // The provider dates the message 180 s before our attempt: outside the 120 s allowance.
    let provider = Arc::new(LaggingProvider::new(180_000, false));
    let summary = run_lagging(provider.clone()).await;
    assert_eq!(
        provider.inner.sent().len(),
        1,
        "the text went out once and was not sent again"
    );
    assert_eq!(summary.report.totals.unknown, 1, "a person decides");
    let RecordState::Unknown { message, .. } = &summary.report.records[0].state else {
        panic!("{:?}", summary.report.records[0].state);
    };
    assert!(
        message.contains(&provider.inner.sent()[0].provider_id),
        "{message}"
    );

    // A provider that tells its time lets the offset be measured: the message is proof.
    let provider = Arc::new(LaggingProvider::new(180_000, true));
    let summary = run_lagging(provider.clone()).await;
    assert_eq!(provider.inner.sent().len(), 1);
    assert_eq!(
        summary.report.records[0].state.provider_id(),
        Some(provider.inner.sent()[0].provider_id.as_str())
    );
    assert!(summary.report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn another_campaigns_text_is_no_proof_that_this_attempt_went_out() {
    let provider = Arc::new(SimulatedProvider::new());
    let journal = Arc::new(InMemoryJournal::new());
    let settings = CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let x = campaign(&[(A, "hi")], settings.clone());
    let mut y = campaign(&[(A, "hi")], settings);
    y.id = CampaignId::new("y").expect("valid");
    let (xid, yid) = (x.id.clone(), y.id.clone());
    journal.create_campaign(x).await.expect("create");
    journal.create_campaign(y).await.expect("create");
    let d = Dispatcher::new(
        provider.clone(),
        Arc::new(InMemoryOptOutStore::new()),
        journal.clone(),
    )
    .with_options(DispatchOptions {
        reconcile_delay_ms: 0,
        reconcile_settle_ms: 0,
        ..DispatchOptions::default()
    });
    d.run(xid, CancellationToken::new()).await.expect("x sent");
    // Campaign y was killed after journaling `sending`, before its call.
    journal
        .apply(
            yid.clone(),
            vec![Transition {
                seq: 0,
                state: RecordState::Sending {
                    attempt: 1,
                    at: Timestamp::now(),
                },
            }],
        )
        .await
        .expect("sending");
    let summary = d
        .run(yid, CancellationToken::new())
        .await
        .expect("y resumed");
    assert_eq!(provider.sent().len(), 2, "y's record must really be sent");
    assert_ne!(
        summary.report.records[0].state.provider_id(),
        provider.sent().first().map(|m| m.provider_id.as_str()),
        "x's message is not y's"
    );
}

#[tokio::test]
async fn a_person_resolving_a_record_as_sent_logs_that_message_against_it() {
    let mut provider = MockProvider::new();
    provider.expect_send().times(1).returning(|_| {
        Err(SendError::Unknown {
            message: "connection reset".into(),
        })
    });
    provider.expect_balance().returning(|| Ok(None));
    provider.expect_lookup_sent().returning(|_, _| {
        Err(SendError::Unsupported {
            message: "no history".into(),
        })
    });
    let settings = CampaignSettings {
        rate: RateLimit::Unlimited,
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider, campaign(&[(A, "hi")], settings)).await;
    let summary = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(summary.report.totals.unknown, 1);
    let resolution = Resolution::Sent {
        provider_id: "SM-console".into(),
    };
    d.resolve(
        id.clone(),
        0,
        resolution.clone(),
        Timestamp::from_unix_ms(9),
    )
    .await
    .expect("resolved");
    let records = d.journal.records(id.clone()).await.expect("records");
    assert_eq!(
        records[0].state,
        RecordState::Accepted {
            provider_id: "SM-console".into(),
            segments: 1,
            at: Timestamp::from_unix_ms(9),
        }
    );
    let logged = d
        .journal
        .logged_provider_ids(vec!["SM-console".into()])
        .await
        .expect("read");
    assert!(logged.contains("SM-console"), "no proof for another record");
    assert!(
        d.resolve(id, 0, resolution, Timestamp::from_unix_ms(9))
            .await
            .is_err(),
        "an accepted record cannot be resolved again"
    );
}

#[tokio::test]
async fn a_run_through_another_provider_identity_or_of_an_old_campaign_is_refused() {
    let provider = SimulatedProvider::new();
    let settings = CampaignSettings {
        rate: RateLimit::Unlimited,
        provider: Some("simulator".into()),
        provider_identity: Some("twilio account AC1 at https://api.twilio.com".into()),
        ..CampaignSettings::default()
    };
    let (d, _, id) = dispatcher(provider.clone(), campaign(&[(A, "hi")], settings)).await;
    let err = d
        .run(id, CancellationToken::new())
        .await
        .expect_err("another identity");
    let text = err.to_string();
    assert!(
        text.contains("twilio account AC1") && text.contains("not simulator"),
        "{text}"
    );

    let mut old = campaign(&[(A, "hi")], CampaignSettings::default());
    old.created_at = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 25 * 3_600_000);
    let (d, _, id) = dispatcher(provider.clone(), old).await;
    let err = d
        .run(id.clone(), CancellationToken::new())
        .await
        .expect_err("too old");
    assert!(
        matches!(
            err,
            DispatchError::TooOld {
                age_hours: 25,
                max_hours: 24,
                ..
            }
        ),
        "{err}"
    );
    assert!(provider.sent().is_empty());
    let d = d.with_options(DispatchOptions {
        max_campaign_age_ms: None,
        rate: Some(RateLimit::Unlimited),
        ..DispatchOptions::default()
    });
    d.run(id, CancellationToken::new()).await.expect("allowed");
    assert_eq!(provider.sent().len(), 1);
}
