//! The fleet rules, on the in-memory journal (workers are tasks sharing it) with paused time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::PhoneNumber;
use crate::dispatch::DispatchOptions;
use crate::journal::{Campaign, CampaignSettings, InMemoryJournal, JournalError, Transition};
use crate::optout::InMemoryOptOutStore;
use crate::preview::{PreviewItem, PreviewOutcome};
use crate::provider::{OutboundSms, SimulatedProvider};
use crate::recipient::RecordId;
use crate::segment::Encoding;
use crate::time::Timestamp;
use crate::{RecordState, journal::RecordEntry};

/// `records` texts over `numbers` numbers (a family phone carries several, each its own body).
fn campaign(records: u32, numbers: u32, rate: RateLimit) -> Campaign {
    let items = (0..records)
        .map(|i| {
            let e164 = format!("+1212555{:04}", 1000 + i % numbers);
            PreviewItem {
                record_id: RecordId::new(format!("C-{i}")),
                kind: crate::RecordKind::Client,
                name: format!("Client {i}"),
                mobile: e164.clone(),
                time_zone: None,
                outcome: PreviewOutcome::Eligible {
                    number: PhoneNumber::from_e164(&e164).expect("valid"),
                    body: format!("Hello client {i}"),
                    encoding: Encoding::Gsm7,
                    segments: 1,
                },
            }
        })
        .collect();
    Campaign {
        id: CampaignId::new("fleet").expect("not blank"),
        name: "Fleet".into(),
        created_at: Timestamp::now(),
        template: "x".into(),
        settings: CampaignSettings {
            rate,
            ..CampaignSettings::default()
        },
        items,
    }
}

type Worker = Dispatcher<SimulatedProvider, InMemoryOptOutStore, InMemoryJournal>;

fn worker(provider: &SimulatedProvider, journal: &Arc<InMemoryJournal>) -> Worker {
    let options = DispatchOptions {
        reconcile_delay_ms: 0,
        ..DispatchOptions::default()
    };
    Dispatcher::new(
        Arc::new(provider.clone()),
        Arc::new(InMemoryOptOutStore::new()),
        journal.clone(),
    )
    .with_options(options)
}

/// Every (number, body) the provider received, with how many times.
fn texts(provider: &SimulatedProvider) -> HashMap<(String, String), u32> {
    let mut seen = HashMap::new();
    for m in provider.sent() {
        let body = m.body.clone().unwrap_or_default();
        *seen.entry((m.to.to_string(), body)).or_insert(0) += 1;
    }
    seen
}

fn options(batch: u32) -> FleetOptions {
    FleetOptions {
        batch_numbers: batch,
        lease: Duration::from_secs(30),
        poll: Duration::from_secs(1),
        hold_in_doubt: Duration::from_secs(5),
    }
}

#[tokio::test(start_paused = true)]
async fn three_workers_send_each_record_once_at_the_campaigns_rate_in_total() {
    let journal = Arc::new(InMemoryJournal::new());
    // The provider stamps each text on the test's (paused) clock.
    let t0 = Instant::now();
    let provider = SimulatedProvider::new().with_clock(move || {
        Timestamp::from_unix_ms(1_800_000_000_000 + (Instant::now() - t0).as_millis() as i64)
    });
    let c = campaign(300, 120, RateLimit::MessagesPerSecond { per_second: 30.0 });
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    let runs = (0..3).map(|w| {
        let d = worker(&provider, &journal);
        let id = id.clone();
        async move {
            d.run_fleet(
                id,
                WorkerId::new(format!("w{w}")),
                options(4),
                CancellationToken::new(),
            )
            .await
            .expect("fleet run")
        }
    });
    let summaries = futures_util::future::join_all(runs).await;

    let seen = texts(&provider);
    assert_eq!(seen.len(), 300, "every record sent");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
    for summary in &summaries {
        assert_eq!(
            summary.report.totals.accepted, 300,
            "each report is the campaign's"
        );
        assert!(
            summary.stats.provider_calls > 0,
            "every worker sent some: {:?}",
            summaries
                .iter()
                .map(|s| s.stats.provider_calls)
                .collect::<Vec<_>>()
        );
    }
    let calls: u64 = summaries.iter().map(|s| s.stats.provider_calls).sum();
    assert_eq!(calls, 300);
    // 300 texts at 30/s in total: 10 s, not the 3.3 s three workers at 30/s each would take.
    let stamps: Vec<i64> = provider
        .sent()
        .iter()
        .filter_map(|m| m.created_at.map(Timestamp::unix_ms))
        .collect();
    let span_ms = stamps.iter().max().expect("sent") - stamps.iter().min().expect("sent");
    let rate = 299_000.0 / span_ms as f64;
    assert!(
        (rate - 30.0).abs() / 30.0 < 0.03,
        "{rate}/s over {span_ms} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_workers_numbers_are_taken_over_after_its_lease_and_reconciled_not_resent() {
    let journal = Arc::new(InMemoryJournal::new());
    let provider = SimulatedProvider::new();
    let c = campaign(4, 4, RateLimit::Unlimited);
    let id = c.id.clone();
    let items = c.items.clone();
    journal.create_campaign(c).await.expect("create");

    // A worker leases every number, marks two records sending, gets one text out, and dies.
    let dead = WorkerId::new("dead");
    let lease = Duration::from_secs(30);
    let fleet = journal.fleet().expect("fleet journal");
    let leased = fleet.lease(&id, &dead, 10, lease).await.expect("lease");
    assert_eq!(leased.len(), 4);
    let at = Timestamp::now();
    let sending = |seq| Transition {
        seq,
        state: RecordState::Sending { attempt: 1, at },
    };
    fleet
        .begin_sending(&id, &dead, vec![sending(0), sending(1)])
        .await
        .expect("sending");
    let PreviewOutcome::Eligible { number, body, .. } = &items[0].outcome else {
        unreachable!("eligible")
    };
    provider
        .send(&OutboundSms::new(*number, body.clone()))
        .await
        .expect("the dead worker's one text");

    // Another worker starts at once: it must wait for the lease, then reconcile, not resend.
    let t0 = Instant::now();
    let summary = worker(&provider, &journal)
        .run_fleet(
            id.clone(),
            WorkerId::new("alive"),
            options(10),
            CancellationToken::new(),
        )
        .await
        .expect("fleet run");
    assert!(
        Instant::now() - t0 >= lease,
        "took over only after the lease expired"
    );
    let seen = texts(&provider);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
    assert_eq!(summary.report.totals.accepted, 4);
    assert_eq!(
        summary.stats.reconciled_sent, 1,
        "the dead worker's text was found"
    );
    assert_eq!(summary.stats.provider_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_worker_past_its_lease_cannot_start_a_send_and_a_claimed_run_excludes_a_fleet() {
    let journal = Arc::new(InMemoryJournal::new());
    let c = campaign(2, 2, RateLimit::Unlimited);
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    let fleet = journal.fleet().expect("fleet journal");
    let (slow, quick) = (WorkerId::new("slow"), WorkerId::new("quick"));
    let lease = Duration::from_secs(10);
    assert_eq!(
        fleet
            .lease(&id, &slow, 1, lease)
            .await
            .expect("lease")
            .len(),
        1
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    // The slow worker stalled past its lease; the quick one takes the number over.
    let taken: Vec<RecordEntry> = fleet.lease(&id, &quick, 2, lease).await.expect("lease");
    assert_eq!(taken.len(), 2);
    let sending = Transition {
        seq: 0,
        state: RecordState::Sending {
            attempt: 1,
            at: Timestamp::now(),
        },
    };
    let refused = fleet.begin_sending(&id, &slow, vec![sending.clone()]).await;
    assert!(
        matches!(refused, Err(JournalError::LeaseLost { seq: 0, .. })),
        "{refused:?}"
    );
    assert_eq!(fleet.renew(&id, &slow, lease).await.expect("renew"), 0);
    fleet
        .begin_sending(&id, &quick, vec![sending])
        .await
        .expect("the holder may send");

    // While a fleet holds numbers, a whole-campaign run is refused, and the other way round.
    assert!(matches!(
        journal.claim(id.clone()).await,
        Err(JournalError::CampaignBusy(_))
    ));
    fleet
        .release(
            &id,
            &quick,
            taken_numbers(&taken, &journal, &id).await,
            Duration::ZERO,
        )
        .await
        .expect("release");
    let claim = journal
        .claim(id.clone())
        .await
        .expect("claim once released");
    assert!(matches!(
        fleet.lease(&id, &quick, 2, lease).await,
        Err(JournalError::CampaignBusy(_))
    ));
    drop(claim);
}

async fn taken_numbers(
    entries: &[RecordEntry],
    journal: &InMemoryJournal,
    id: &CampaignId,
) -> Vec<PhoneNumber> {
    let campaign = journal.campaign(id.clone()).await.expect("campaign");
    entries
        .iter()
        .filter_map(|e| super::super::plan::eligible(&campaign, e.seq).map(|(n, _, _)| n))
        .collect()
}

// Defects a hostile review of the fleet found (each test failed before its fix).

use crate::dispatch::Clock as _;
use crate::provider::SendError;

/// A provider that is down for good: every send is "try later" (Twilio's 503s, a long outage).
struct AlwaysTryLater;

#[async_trait::async_trait]
impl Provider for AlwaysTryLater {
    fn name(&self) -> &str {
        "simulator"
    }
    async fn send(&self, _sms: &OutboundSms) -> Result<crate::provider::Accepted, SendError> {
        Err(SendError::TryLater {
            code: Some(503),
            message: "service unavailable".into(),
        })
    }
    async fn balance(&self) -> Result<Option<crate::Balance>, SendError> {
        Ok(None)
    }
    async fn lookup_sent(
        &self,
        _to: PhoneNumber,
        _since: Timestamp,
    ) -> Result<Vec<crate::provider::SentMessage>, SendError> {
        Ok(Vec::new())
    }
}

/// A single run gives up on a record the provider keeps deferring after `max_attempts` and
/// ends (a resume retries it later). A fleet worker ends the same way. It did not: `deferred`
/// counted as active work in `outstanding`, every batch started again at attempt 1, and the
/// number was leased again after `hold_in_doubt`, for ever.
#[tokio::test(start_paused = true)]
async fn a_fleet_ends_like_a_run_when_the_provider_keeps_deferring() {
    let journal = Arc::new(InMemoryJournal::new());
    let c = campaign(1, 1, RateLimit::Unlimited);
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    let dispatcher = Dispatcher::new(
        Arc::new(AlwaysTryLater),
        Arc::new(InMemoryOptOutStore::new()),
        journal.clone(),
    );
    // The control: a whole-campaign run ends, the record deferred.
    let summary = tokio::time::timeout(
        Duration::from_secs(24 * 3600),
        dispatcher.run(id.clone(), CancellationToken::new()),
    )
    .await
    .expect("a run ends")
    .expect("runs");
    assert_eq!(summary.report.totals.deferred, 1);
    // The same campaign as one worker of a fleet ends too, also when numbers in doubt are
    // not held back at all (`reconcile_wait_seconds = 0` in the FFI, `--reconcile-wait 0`).
    for hold_in_doubt in [Duration::from_secs(5), Duration::ZERO] {
        let fleet = tokio::time::timeout(
            Duration::from_secs(24 * 3600),
            dispatcher.run_fleet(
                id.clone(),
                WorkerId::new("w"),
                FleetOptions {
                    hold_in_doubt,
                    ..options(10)
                },
                CancellationToken::new(),
            ),
        )
        .await;
        assert!(
            fleet.is_ok(),
            "the fleet worker (hold {hold_in_doubt:?}) was still running after a day"
        );
    }
}

/// Under `--once-per-number`, a number's second record with the same body is logged against
/// the text the number already received, by a whole-campaign run and by a fleet worker alike.
/// A fleet worker sent the text again: `Dispatcher::apply` updated its local copy of the
/// entries by *index*, which in a leased batch (a subset of the records) is not the record's
/// position, so the reconciled `accepted` never reached `pending_jobs`.
///
/// Reachable: the job {1, 2} went out but its answer was lost (both `unknown`), and staff
/// resolved record 2 as "not sent" (`sms resolve`), leaving 1 to reconciliation.
#[tokio::test]
async fn once_per_number_a_fleet_logs_a_second_record_against_the_text_found_like_a_run() {
    for fleet in [false, true] {
        let journal = Arc::new(InMemoryJournal::new());
        let provider = SimulatedProvider::new();
        let a = PhoneNumber::from_e164("+12125550100").expect("valid");
        let family = PhoneNumber::from_e164("+12125550199").expect("valid");
        let item = |i: u32, number: PhoneNumber, body: &str| PreviewItem {
            record_id: RecordId::new(format!("C-{i}")),
            kind: crate::RecordKind::Client,
            name: format!("Client {i}"),
            mobile: number.to_string(),
            time_zone: None,
            outcome: PreviewOutcome::Eligible {
                number,
                body: body.into(),
                encoding: Encoding::Gsm7,
                segments: 1,
            },
        };
        let body = "Class moved to Room 4";
        let mut c = campaign(0, 1, RateLimit::Unlimited);
        c.settings.once_per_number = true;
        c.items = vec![
            item(0, a, body),
            item(1, family, body),
            item(2, family, body),
        ];
        let id = c.id.clone();
        journal.create_campaign(c).await.expect("create");
        let now = Timestamp::now();
        let t = |seq, state| Transition { seq, state };
        // Record 0 went out long ago.
        journal
            .apply(
                id.clone(),
                vec![
                    t(
                        0,
                        RecordState::Sending {
                            attempt: 1,
                            at: now,
                        },
                    ),
                    t(
                        0,
                        RecordState::Accepted {
                            provider_id: "SM0".into(),
                            segments: 1,
                            at: now,
                        },
                    ),
                ],
            )
            .await
            .expect("record 0");
        // The family phone's one text: made, its answer lost.
        let sending = RecordState::Sending {
            attempt: 1,
            at: now,
        };
        let unknown = RecordState::Unknown {
            message: "timed out".into(),
            sent_at: now,
            at: now,
        };
        journal
            .apply(
                id.clone(),
                vec![
                    t(1, sending.clone()),
                    t(2, sending),
                    t(1, unknown.clone()),
                    t(2, unknown),
                ],
            )
            .await
            .expect("in doubt");
        provider
            .send(&OutboundSms::new(family, body.to_owned()))
            .await
            .expect("the text that went out");
        // Staff: "record 2 was not sent" (it shares the one text: that is for the rule).
        journal
            .apply(id.clone(), vec![t(2, RecordState::Planned)])
            .await
            .expect("resolved");

        let d = worker(&provider, &journal);
        let summary = if fleet {
            d.run_fleet(
                id.clone(),
                WorkerId::new("w"),
                options(10),
                CancellationToken::new(),
            )
            .await
        } else {
            d.run(id.clone(), CancellationToken::new()).await
        }
        .expect("runs");
        assert_eq!(summary.report.totals.accepted, 3, "fleet: {fleet}");
        let seen = texts(&provider);
        assert_eq!(
            seen.get(&(family.to_string(), body.to_owned())),
            Some(&1),
            "fleet: {fleet}: the family phone got the one text once: {seen:?}"
        );
    }
}

/// The simulator, telling its clock as Twilio does (its `Date` header): the real time.
struct TellsItsClock(SimulatedProvider);

#[async_trait::async_trait]
impl Provider for TellsItsClock {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn send(&self, sms: &OutboundSms) -> Result<crate::provider::Accepted, SendError> {
        self.0.send(sms).await
    }
    async fn balance(&self) -> Result<Option<crate::Balance>, SendError> {
        Ok(None)
    }
    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<crate::provider::SentMessage>, SendError> {
        self.0.lookup_sent(to, since).await
    }
    async fn lookup_history(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<crate::provider::History, SendError> {
        Ok(crate::provider::History {
            messages: self.0.lookup_sent(to, since).await?,
            provider_now: Some(Timestamp::now()),
        })
    }
}

/// A host whose clock is 8 hours fast (its hardware clock kept in local time, UTC+8) creates
/// a campaign, starts a text and dies. Resumed on the same host, the provider's clock (behind
/// by 8 h) widens the history read and the text is found. Taken over by a fleet worker on a
/// host with the right time, the history is read from the dead host's stamps minus the 6 h
/// lookback, which is after the text was made; the provider's clock agrees with the new
/// host's, so nothing widened it: silence, "not sent", and the text went again. The window
/// now never starts after the reconciling host's own now.
#[tokio::test(start_paused = true)]
async fn a_fleet_worker_never_resends_a_text_stamped_by_a_host_with_a_fast_clock() {
    struct Fast;
    impl crate::dispatch::Clock for Fast {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 8 * 3_600_000)
        }
    }
    for fleet in [false, true] {
        let journal = Arc::new(InMemoryJournal::new());
        let provider = Arc::new(TellsItsClock(SimulatedProvider::new()));
        let mut c = campaign(1, 1, RateLimit::Unlimited);
        c.created_at = Fast.now(); // `sms send` on the fast host
        let id = c.id.clone();
        let PreviewOutcome::Eligible { number, body, .. } = c.items[0].outcome.clone() else {
            unreachable!("eligible")
        };
        journal.create_campaign(c).await.expect("create");
        // The fast host: leases the number, journals `sending` on its clock, the text goes
        // out, and the host dies before the answer is journaled.
        let dead = WorkerId::new("fast-host");
        journal
            .lease(&id, &dead, 10, Duration::from_secs(30))
            .await
            .expect("lease");
        journal
            .begin_sending(
                &id,
                &dead,
                vec![Transition {
                    seq: 0,
                    state: RecordState::Sending {
                        attempt: 1,
                        at: Fast.now(),
                    },
                }],
            )
            .await
            .expect("sending");
        provider
            .send(&OutboundSms::new(number, body.clone()))
            .await
            .expect("the text");
        let options_ = DispatchOptions {
            reconcile_delay_ms: 0,
            max_campaign_age_ms: None,
            ..DispatchOptions::default()
        };
        let summary = if fleet {
            // Another server, with the right time, takes the number over.
            Dispatcher::new(
                provider.clone(),
                Arc::new(InMemoryOptOutStore::new()),
                journal.clone(),
            )
            .with_options(options_)
            .run_fleet(
                id.clone(),
                WorkerId::new("right-time"),
                options(10),
                CancellationToken::new(),
            )
            .await
        } else {
            // The control: the fast host resumes it itself (once the lease has passed).
            tokio::time::sleep(Duration::from_secs(31)).await;
            Dispatcher::new(
                provider.clone(),
                Arc::new(InMemoryOptOutStore::new()),
                journal.clone(),
            )
            .with_clock(Arc::new(Fast))
            .with_options(options_)
            .run(id.clone(), CancellationToken::new())
            .await
        }
        .expect("runs");
        assert_eq!(
            provider.0.sent().len(),
            1,
            "fleet: {fleet}: sent once ({:?})",
            summary.report.totals
        );
    }
}

/// "A claim is refused while numbers are leased" (docs/ARCHITECTURE.md). PostgreSQL's claim
/// checks every live lease; the in-memory journal's counted only leases on numbers with
/// *active* work, so a worker reconciling a number whose records are all `unknown` did not
/// stop a whole-campaign run from working the same number at once. Both check every lease now.
#[tokio::test]
async fn a_claim_is_refused_while_a_worker_holds_a_number_in_doubt() {
    let journal = Arc::new(InMemoryJournal::new());
    let c = campaign(1, 1, RateLimit::Unlimited);
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    let now = Timestamp::now();
    journal
        .apply(
            id.clone(),
            vec![
                Transition {
                    seq: 0,
                    state: RecordState::Sending {
                        attempt: 1,
                        at: now,
                    },
                },
                Transition {
                    seq: 0,
                    state: RecordState::Unknown {
                        message: "timed out".into(),
                        sent_at: now,
                        at: now,
                    },
                },
            ],
        )
        .await
        .expect("in doubt");
    let w = WorkerId::new("reconciling");
    let held = journal
        .lease(&id, &w, 10, Duration::from_secs(30))
        .await
        .expect("lease");
    assert_eq!(held.len(), 1, "the number in doubt is leased");
    assert!(
        matches!(journal.claim(id).await, Err(JournalError::CampaignBusy(_))),
        "a whole-campaign run was let in beside a worker holding a number"
    );
}

/// The in-memory journal, except that renewing a lease does nothing: a worker whose renewals
/// come too late (a stalled process, a slow database), so its leases lapse mid-batch.
struct Unrenewed(Arc<InMemoryJournal>);

#[async_trait::async_trait]
impl Journal for Unrenewed {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError> {
        self.0.create_campaign(campaign).await
    }
    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        self.0.campaign(id).await
    }
    async fn campaigns(&self) -> Result<Vec<crate::journal::CampaignSummary>, JournalError> {
        self.0.campaigns().await
    }
    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        self.0.records(id).await
    }
    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        self.0.apply(id, transitions).await
    }
    async fn record_delivery(
        &self,
        update: crate::journal::DeliveryUpdate,
    ) -> Result<bool, JournalError> {
        self.0.record_delivery(update).await
    }
    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, JournalError> {
        self.0.logged_provider_ids(provider_ids).await
    }
    async fn claim(&self, id: CampaignId) -> Result<crate::journal::RunClaim, JournalError> {
        self.0.claim(id).await
    }
    fn fleet(&self) -> Option<&dyn FleetJournal> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl FleetJournal for Unrenewed {
    async fn lease(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        max_numbers: u32,
        lease: Duration,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        self.0.lease(id, worker, max_numbers, lease).await
    }
    async fn leased_records(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        self.0.leased_records(id, worker).await
    }
    async fn renew(
        &self,
        _id: &CampaignId,
        _worker: &WorkerId,
        _lease: Duration,
    ) -> Result<u64, JournalError> {
        Ok(0)
    }
    async fn release(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        numbers: Vec<PhoneNumber>,
        hold: Duration,
    ) -> Result<(), JournalError> {
        self.0.release(id, worker, numbers, hold).await
    }
    async fn begin_sending(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        self.0.begin_sending(id, worker, transitions).await
    }
    async fn book(
        &self,
        id: &CampaignId,
        rate: RateLimit,
        cost: u32,
    ) -> Result<Duration, JournalError> {
        self.0.book(id, rate, cost).await
    }
    async fn outstanding(
        &self,
        id: &CampaignId,
    ) -> Result<crate::journal::Outstanding, JournalError> {
        self.0.outstanding(id).await
    }
}

/// A worker whose leases lapse mid-batch (its renewals never land) is refused the next send
/// (`LeaseLost`), leaves that batch to the worker that took its numbers, and leases on: it
/// does not stop while the campaign has work, and nobody is texted twice.
#[tokio::test(start_paused = true)]
async fn a_worker_that_loses_its_leases_mid_batch_leaves_the_batch_not_the_campaign() {
    let journal = Arc::new(InMemoryJournal::new());
    // 24 texts at 2/s in total: 12 s, while a lease lasts 3 s.
    let c = campaign(24, 24, RateLimit::MessagesPerSecond { per_second: 2.0 });
    let id = c.id.clone();
    journal.create_campaign(c).await.expect("create");
    let provider = SimulatedProvider::new();
    let stalled = Dispatcher::new(
        Arc::new(provider.clone()),
        Arc::new(InMemoryOptOutStore::new()),
        Arc::new(Unrenewed(journal.clone())),
    )
    .with_options(DispatchOptions {
        reconcile_delay_ms: 0,
        ..DispatchOptions::default()
    });
    let steady = worker(&provider, &journal);
    let fleet_options = FleetOptions {
        batch_numbers: 6,
        lease: Duration::from_secs(3),
        poll: Duration::from_millis(500),
        hold_in_doubt: Duration::ZERO,
    };
    let (stalled, steady) = tokio::join!(
        stalled.run_fleet(
            id.clone(),
            WorkerId::new("stalled"),
            fleet_options,
            CancellationToken::new()
        ),
        steady.run_fleet(
            id.clone(),
            WorkerId::new("steady"),
            fleet_options,
            CancellationToken::new()
        ),
    );
    let (stalled, steady) = (stalled.expect("stalled run"), steady.expect("steady run"));
    let seen = texts(&provider);
    assert_eq!(seen.len(), 24, "every record sent");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
    for (name, summary) in [("stalled", &stalled), ("steady", &steady)] {
        assert!(!summary.cancelled, "{name}");
        assert_eq!(
            summary.report.totals.accepted, 24,
            "{name} worked until the campaign was done: {:?}",
            summary.report.totals
        );
    }
    assert!(
        stalled.stats.provider_calls > 6,
        "the stalled worker leased again after losing its first batch: {} call(s)",
        stalled.stats.provider_calls
    );
}
