//! Quiet hours in the dispatcher: checked when each record is about to be sent, on a clock
//! the tests move (tokio's paused time plus an offset the test jumps).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use proptest::prelude::*;

use super::*;
use crate::journal::{InMemoryJournal, RecordState};
use crate::optout::InMemoryOptOutStore;
use crate::preview::{PreviewItem, PreviewOutcome};
use crate::provider::{Accepted, SentMessage, SimulatedProvider};
use crate::quiet::{LocalTime, QuietHours, QuietRule};
use crate::recipient::RecordId;
use crate::segment::Encoding;
use crate::time::Timestamp;
use crate::{OutboundSms, PhoneNumber};

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("a valid timestamp")
}

/// Wall-clock time that follows tokio's (paused) clock from `base`, plus jumps the test makes
/// (a resume "the next morning").
struct TestClock {
    base: Timestamp,
    start: tokio::time::Instant,
    jumped_ms: AtomicI64,
}

impl TestClock {
    fn new(base: Timestamp) -> Arc<TestClock> {
        Arc::new(TestClock {
            base,
            start: tokio::time::Instant::now(),
            jumped_ms: AtomicI64::new(0),
        })
    }

    /// Moves the clock forward to `at` (never back).
    fn jump_to(&self, at: Timestamp) {
        let by = at.unix_ms() - self.now().unix_ms();
        if by > 0 {
            self.jumped_ms.fetch_add(by, Ordering::SeqCst);
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_unix_ms(
            self.base.unix_ms() + elapsed + self.jumped_ms.load(Ordering::SeqCst),
        )
    }
}

/// The simulator, noting the clock's time of every send.
struct Timed {
    inner: SimulatedProvider,
    clock: Arc<TestClock>,
    sends: Mutex<Vec<(PhoneNumber, Timestamp)>>,
}

#[async_trait]
impl Provider for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        self.sends
            .lock()
            .expect("not poisoned")
            .push((sms.to, self.clock.now()));
        self.inner.send(sms).await
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
}

fn number(i: usize) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1212555{:04}", 100 + i)).expect("valid")
}

fn campaign(zones: &[Option<&str>], rule: Option<QuietRule>, rate: RateLimit) -> Campaign {
    let items = zones
        .iter()
        .enumerate()
        .map(|(i, zone)| PreviewItem {
            record_id: RecordId::new(format!("C-{i}")),
            kind: crate::RecordKind::Client,
            name: format!("Client {i}"),
            mobile: number(i).to_string(),
            time_zone: zone.map(str::to_owned),
            outcome: PreviewOutcome::Eligible {
                number: number(i),
                body: format!("Hello {i}"),
                encoding: Encoding::Gsm7,
                segments: 1,
            },
        })
        .collect();
    Campaign {
        id: CampaignId::new("quiet").expect("valid"),
        name: "Quiet".into(),
        created_at: Timestamp::from_unix_ms(0),
        template: "Hello".into(),
        settings: CampaignSettings {
            rate,
            concurrency: 1,
            quiet_hours: rule,
            ..CampaignSettings::default()
        },
        items,
    }
}

type TestDispatcher = Dispatcher<Timed, InMemoryOptOutStore, InMemoryJournal>;

async fn dispatcher(campaign: Campaign, clock: Arc<TestClock>) -> (TestDispatcher, Arc<Timed>) {
    let journal = Arc::new(InMemoryJournal::new());
    journal.create_campaign(campaign).await.expect("created");
    let provider = Arc::new(Timed {
        inner: SimulatedProvider::new(),
        clock: clock.clone(),
        sends: Mutex::new(Vec::new()),
    });
    let d = Dispatcher::new(
        provider.clone(),
        Arc::new(InMemoryOptOutStore::new()),
        journal,
    )
    .with_clock(clock)
    .with_options(DispatchOptions {
        max_campaign_age_ms: None,
        ..DispatchOptions::default()
    });
    (d, provider)
}

fn id() -> CampaignId {
    CampaignId::new("quiet").expect("valid")
}

#[tokio::test(start_paused = true)]
async fn a_run_reaching_nine_pm_holds_the_rest_and_a_resume_in_the_morning_sends_them() {
    // 20:59:57 in New York (EDT), one text a second: three go before 21:00, three wait.
    let clock = TestClock::new(t("2026-07-02T00:59:57Z"));
    let ny = Some("America/New_York");
    let rule = Some(QuietRule::default());
    let per_second = RateLimit::MessagesPerSecond { per_second: 1.0 };
    let (d, provider) = dispatcher(campaign(&[ny; 6], rule, per_second), clock.clone()).await;

    let summary = d.run(id(), CancellationToken::new()).await.expect("runs");
    let totals = &summary.report.totals;
    assert_eq!((totals.accepted, totals.held, totals.failed), (3, 3, 0));
    assert!(!summary.report.is_complete());
    assert!(summary.report.only_held_left());
    let held = summary.report.held.clone().expect("a summary of the held");
    assert_eq!(held.records, 3);
    assert_eq!(held.earliest.at, t("2026-07-02T12:00:00Z"));
    assert_eq!(held.earliest.local, "2026-07-02 08:00 EDT");
    assert_eq!(held.latest, held.earliest);
    let labels: Vec<&str> = summary
        .report
        .records
        .iter()
        .map(|r| r.status_label())
        .collect();
    assert_eq!(labels, ["Sent", "Sent", "Sent", "Held", "Held", "Held"]);

    // A resume before the opening sends nothing and writes nothing new.
    clock.jump_to(t("2026-07-02T11:59:00Z"));
    let early = d.run(id(), CancellationToken::new()).await.expect("runs");
    assert_eq!(early.stats.provider_calls, 0);
    assert_eq!(early.report.records, summary.report.records);

    // At 08:00 local the rest go, once each.
    clock.jump_to(t("2026-07-02T12:00:00Z"));
    let morning = d.run(id(), CancellationToken::new()).await.expect("runs");
    assert!(morning.report.is_complete(), "{:?}", morning.report.totals);
    assert_eq!(morning.report.totals.accepted, 6);
    assert_eq!(morning.report.held, None);
    let sends = provider.sends.lock().expect("not poisoned").clone();
    assert_eq!(sends.len(), 6);
    for (_, at) in &sends {
        let local = LocalTime::at(*at, &crate::quiet::zone("America/New_York").expect("known"));
        assert!(
            QuietHours::default().allows(local),
            "sent at {at} ({local})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn records_are_read_in_their_own_zone_else_the_organisations() {
    // 22:00 in New York, 19:00 in Los Angeles, 04:00 in Paris.
    let clock = TestClock::new(t("2026-07-02T02:00:00Z"));
    let zones = [None, Some("America/Los_Angeles"), Some("Europe/Paris")];
    let (d, _) = dispatcher(
        campaign(&zones, Some(QuietRule::default()), RateLimit::Unlimited),
        clock,
    )
    .await;
    let summary = d.run(id(), CancellationToken::new()).await.expect("runs");
    let states: Vec<&RecordState> = summary.report.records.iter().map(|r| &r.state).collect();
    assert!(
        matches!(states[0], RecordState::Held { until, time_zone, .. }
            if *until == t("2026-07-02T12:00:00Z") && time_zone == "America/New_York"),
        "{states:?}"
    );
    assert!(
        matches!(states[1], RecordState::Accepted { .. }),
        "{states:?}"
    );
    assert!(
        matches!(states[2], RecordState::Held { until, .. } if *until == t("2026-07-02T06:00:00Z")),
        "{states:?}"
    );
    let held = summary.report.held.expect("two held");
    assert_eq!(held.earliest.local, "2026-07-02 08:00 CEST");
    assert_eq!(held.latest.local, "2026-07-02 08:00 EDT");
}

#[tokio::test(start_paused = true)]
async fn a_zone_unknown_at_send_time_blocks_the_record_and_no_rule_sends_at_night() {
    // 03:00 in New York.
    let clock = TestClock::new(t("2026-07-02T07:00:00Z"));
    let zones = [Some("Mars/Olympus_Mons"), None];
    let (d, provider) = dispatcher(
        campaign(&zones, Some(QuietRule::default()), RateLimit::Unlimited),
        clock.clone(),
    )
    .await;
    let summary = d.run(id(), CancellationToken::new()).await.expect("runs");
    assert_eq!(
        summary.report.records[0].state,
        RecordState::Blocked {
            reason: crate::BlockReason::UnknownTimeZone {
                time_zone: "Mars/Olympus_Mons".into()
            }
        }
    );
    assert_eq!(summary.report.totals.held, 1);
    assert!(provider.sends.lock().expect("not poisoned").is_empty());

    // --ignore-quiet-hours (and every campaign stored before quiet hours): sent at 03:00.
    let (d, provider) = dispatcher(campaign(&zones, None, RateLimit::Unlimited), clock).await;
    let summary = d.run(id(), CancellationToken::new()).await.expect("runs");
    assert!(summary.report.is_complete());
    assert_eq!(summary.report.totals.accepted, 2);
    assert_eq!(provider.sends.lock().expect("not poisoned").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_daylight_saving_changes_move_the_opening_with_the_clock() {
    let ny = Some("America/New_York");
    // Spring: held at 21:30 EST on Saturday 7 March; Sunday's 08:00 is EDT, 12:00 UTC.
    // Autumn: held at 21:30 EDT on Saturday 31 October; Sunday's 08:00 is EST, 13:00 UTC.
    for (now, opening) in [
        ("2026-03-08T02:30:00Z", "2026-03-08T12:00:00Z"),
        ("2026-11-01T01:30:00Z", "2026-11-01T13:00:00Z"),
    ] {
        let clock = TestClock::new(t(now));
        let (d, provider) = dispatcher(
            campaign(&[ny], Some(QuietRule::default()), RateLimit::Unlimited),
            clock.clone(),
        )
        .await;
        let held = d.run(id(), CancellationToken::new()).await.expect("runs");
        let summary = held.report.held.expect("held");
        assert_eq!(summary.earliest.at, t(opening), "{now}");
        clock.jump_to(Timestamp::from_unix_ms(t(opening).unix_ms() - 1));
        d.run(id(), CancellationToken::new()).await.expect("runs");
        assert!(
            provider.sends.lock().expect("not poisoned").is_empty(),
            "{now}"
        );
        clock.jump_to(t(opening));
        let sent = d.run(id(), CancellationToken::new()).await.expect("runs");
        assert!(sent.report.is_complete(), "{now}");
    }

    // An opening inside the spring gap (02:30 does not exist on 8 March) is read after it by
    // the compatible rule (03:30 EDT), as the alerts read it; one inside the autumn fold
    // (01:30 happens twice on 1 November) is the first. A resume finds the window open from the
    // gap's end (03:00 EDT, 07:00 UTC: local 03:00 is after 02:30), never earlier.
    let hours = |from: (u8, u8)| QuietRule {
        hours: QuietHours {
            from: LocalTime::new(from.0, from.1).expect("valid"),
            until: LocalTime::new(21, 0).expect("valid"),
        },
        org_time_zone: "America/New_York".into(),
    };
    for (from, now, opening, open_from) in [
        (
            (2, 30),
            "2026-03-08T06:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-08T07:00:00Z",
        ),
        (
            (1, 30),
            "2026-11-01T04:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T05:30:00Z",
        ),
    ] {
        let clock = TestClock::new(t(now));
        let (d, provider) = dispatcher(
            campaign(&[None], Some(hours(from)), RateLimit::Unlimited),
            clock.clone(),
        )
        .await;
        let held = d.run(id(), CancellationToken::new()).await.expect("runs");
        assert_eq!(held.report.held.expect("held").earliest.at, t(opening));
        // Resumed every quarter of an hour through the night, the fold's second 01:30
        // included: sent once.
        for _ in 0..16 {
            clock.jump_to(Timestamp::from_unix_ms(clock.now().unix_ms() + 15 * 60_000));
            d.run(id(), CancellationToken::new()).await.expect("runs");
        }
        let sends = provider.sends.lock().expect("not poisoned").clone();
        assert_eq!(sends.len(), 1, "{now}: {sends:?}");
        assert_eq!(sends[0].1, t(open_from), "{now}: {sends:?}");
    }
}

const ZONES: [Option<&str>; 8] = [
    None,
    Some("America/New_York"),
    Some("America/Los_Angeles"),
    Some("Europe/London"),
    Some("Australia/Sydney"),
    Some("Asia/Kolkata"),
    Some("Etc/GMT+12"),
    Some("Etc/GMT-14"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the zones, the window and the instants at which the campaign is run and
    /// resumed: no record is sent while its local time is outside the window, none is sent
    /// twice, none is dropped or counted failed (a resume at each opening sends them all).
    #[test]
    fn a_record_is_never_sent_in_quiet_hours_and_a_held_one_is_never_dropped(
        zones in prop::collection::vec(prop::sample::select(ZONES.to_vec()), 1..8),
        // Often a few minutes before a whole hour, where windows open and close: runs cross.
        start_hours in 0i64..(366 * 24),
        before_seconds in 0i64..900,
        from in 0u8..24,
        span in 1u8..24,
        per_second in prop::sample::select(vec![0.0, 0.02, 0.2, 1.0]),
        resumes in prop::collection::vec(0i64..(30 * 60), 0..4),
    ) {
        let rule = QuietRule {
            hours: QuietHours {
                from: LocalTime::new(from, 0).expect("valid"),
                until: LocalTime::new((from + span) % 24, 0).expect("valid"),
            },
            org_time_zone: "America/Chicago".into(),
        };
        let rate = if per_second == 0.0 {
            RateLimit::Unlimited
        } else {
            RateLimit::MessagesPerSecond { per_second }
        };
        let start = Timestamp::from_unix_ms(
            t("2026-01-01T00:00:00Z").unix_ms() + (start_hours * 3600 - before_seconds) * 1000,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let (sends, report) = runtime.block_on(async {
            let clock = TestClock::new(start);
            let (d, provider) = dispatcher(campaign(&zones, Some(rule.clone()), rate), clock.clone()).await;
            let mut report = d.run(id(), CancellationToken::new()).await.expect("runs").report;
            // Resumes at arbitrary later instants (maybe still in quiet hours)...
            for minutes in resumes {
                clock.jump_to(Timestamp::from_unix_ms(clock.now().unix_ms() + minutes * 60_000));
                report = d.run(id(), CancellationToken::new()).await.expect("runs").report;
            }
            // ...then at each opening until none is held.
            for _ in 0..zones.len() + 1 {
                let Some(held) = &report.held else { break };
                clock.jump_to(held.earliest.at);
                report = d.run(id(), CancellationToken::new()).await.expect("runs").report;
            }
            let sends = provider.sends.lock().expect("not poisoned").clone();
            (sends, report)
        });
        for (i, zone) in zones.iter().enumerate() {
            let name = zone.unwrap_or("America/Chicago");
            let tz = crate::quiet::zone(name).expect("known");
            let to_record: Vec<Timestamp> = sends
                .iter()
                .filter(|(to, _)| *to == number(i))
                .map(|(_, at)| *at)
                .collect();
            prop_assert_eq!(to_record.len(), 1, "record {} ({}): {:?}", i, name, to_record);
            let local = LocalTime::at(to_record[0], &tz);
            prop_assert!(rule.hours.allows(local), "record {} sent at {} ({} in {})", i, to_record[0], local, name);
        }
        prop_assert!(report.is_complete(), "{:?}", report.totals);
        prop_assert_eq!(report.totals.accepted, zones.len() as u64);
        prop_assert_eq!(report.totals.failed, 0);
    }
}

#[test]
fn a_held_record_is_known_not_sent_and_a_call_in_flight_is_never_held() {
    let held = RecordState::Held {
        until: t("2026-07-02T12:00:00Z"),
        time_zone: "America/New_York".into(),
        at: t("2026-07-02T01:00:00Z"),
    };
    let sending = RecordState::Sending {
        attempt: 1,
        at: t("2026-07-02T12:00:00Z"),
    };
    assert!(RecordState::Planned.may_become(&held));
    assert!(held.may_become(&sending));
    assert!(
        !sending.may_become(&held),
        "a call in flight may have sent it"
    );
    assert!(!held.is_final());
    assert_eq!(held.code(), "held");
}
