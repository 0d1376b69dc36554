//! The fault matrix over HTTP: the real `TwilioProvider` sending to the local stand-in, the
//! real dispatcher, a real SQLite file. 429 storms, 500s before and after the message is
//! created, connection resets before and after, slow responses past the client's timeout, and a
//! STOP arriving mid-campaign. Every case must end with no text created twice, every record
//! with a final outcome, and nothing sent to a number after its STOP.
//!
//! The stand-in is as hard as Twilio here: a slow answer comes after the message exists, the
//! list shows a message only some time after it was created, every number has an older history
//! and the list comes two messages a page. Each case asserts that every fault it injects fired.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sms_core::journal::{CampaignId, CampaignReport, Journal, RateLimit, RecordState};
use sms_core::{
    CancellationToken, DispatchOptions, Dispatcher, KeywordClass, OptOutStore, Timestamp,
};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::{body, campaign, number};
use sms_tests::fake_twilio::{FakeTwilio, Fault};
use sms_twilio::{
    InboundHandler, RetryPolicy, SignatureValidator, TwilioProvider, compute_signature,
};

const RECORDS: usize = 120;

fn provider(twilio: &FakeTwilio, timeout: Duration) -> TwilioProvider {
    twilio
        .provider_builder()
        .timeout(timeout)
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
        .build()
        .expect("a valid configuration")
}

fn options() -> DispatchOptions {
    DispatchOptions {
        backoff_base_ms: 1,
        backoff_max_ms: 10,
        max_attempts: 50,
        // Longer than the slowest injected response: a late-created message must be visible
        // in the provider's history before reconciliation decides it was never sent.
        reconcile_delay_ms: 600,
        reconcile_settle_ms: 600,
        max_rounds: 5,
        ..DispatchOptions::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// How long after creation the stand-in lists a message: shorter than the settle time the
/// dispatcher waits before it reads silence as "not sent", as Twilio's lag should be.
const LIST_LAG: Duration = Duration::from_millis(200);

/// A stand-in as hard as Twilio: lists late, two messages a page, and every number of the
/// campaign already has three older texts in its history.
fn hard_stand_in(numbers: usize) -> FakeTwilio {
    let twilio = FakeTwilio::start();
    twilio.set_list_lag(LIST_LAG);
    twilio.set_max_page_size(2);
    let now = Timestamp::now().unix_ms();
    for i in 0..numbers {
        for day in 1..=3 {
            twilio.seed(
                &number(i).to_string(),
                &format!("Earlier text {day}"),
                now - day * 86_400_000,
            );
        }
    }
    twilio
}

/// Runs a campaign of `RECORDS` records (one number each) against the stand-in with `plan`,
/// resuming until the report is complete (at most 5 runs), and checks the invariants and that
/// every fault kind in `injected` fired at least once.
fn run_case(
    name: &str,
    plan: impl FnMut(u64, &HashMap<String, String>) -> Fault + Send + 'static,
    timeout: Duration,
    injected: &[&str],
) {
    run_case_with_clock(name, plan, timeout, injected, 0);
}

/// [`run_case`] with the stand-in's clock `offset_ms` from ours (negative: behind).
fn run_case_with_clock(
    name: &str,
    plan: impl FnMut(u64, &HashMap<String, String>) -> Fault + Send + 'static,
    timeout: Duration,
    injected: &[&str],
    offset_ms: i64,
) {
    let twilio = hard_stand_in(RECORDS);
    twilio.set_clock_offset(offset_ms);
    twilio.set_plan(plan);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    let report = runtime().block_on(async {
        let mut settings = sms_tests::unpaced(4);
        settings.rate = RateLimit::Unlimited;
        let c = campaign(name, RECORDS, RECORDS, settings);
        let id = c.id.clone();
        store.create_campaign(c).await.expect("create");
        run_until_complete(&twilio, &store, id, timeout).await
    });
    assert_invariants(name, &twilio, &report, RECORDS, &HashSet::new());
    let fired = twilio.fault_counts();
    for kind in injected {
        assert!(
            fired.get(*kind).is_some_and(|n| *n > 0),
            "{name}: the injected fault {kind} never fired: {fired:?}"
        );
    }
    println!("{name}: faults fired {fired:?}");
}

/// Runs campaign `id` through the real provider to the stand-in and resumes it until its
/// report is complete (at most 5 runs).
async fn run_until_complete(
    twilio: &FakeTwilio,
    store: &Arc<SqliteStore>,
    id: CampaignId,
    timeout: Duration,
) -> CampaignReport {
    let dispatcher = Dispatcher::new(
        Arc::new(provider(twilio, timeout)),
        store.clone(),
        store.clone(),
    )
    .with_options(options());
    let mut runs = 0;
    loop {
        runs += 1;
        let summary = dispatcher
            .run(id.clone(), CancellationToken::new())
            .await
            .expect("the run ends without a store or configuration error");
        if summary.report.is_complete() || runs == 5 {
            return summary.report;
        }
        // Resumed as a person would, once the attempts in doubt are old enough to settle
        // ("run again after ..."): a run that starts with only young unknown records leaves
        // them unknown without waiting, and the stand-in lists late.
        tokio::time::sleep(Duration::from_millis(options().reconcile_settle_ms)).await;
    }
}

fn assert_invariants(
    name: &str,
    twilio: &FakeTwilio,
    report: &CampaignReport,
    numbers: usize,
    stopped: &HashSet<String>,
) {
    let created = twilio.created_per_recipient();
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{name}: texted twice: {twice:?}");
    let not_final: Vec<_> = report
        .records
        .iter()
        .filter(|r| !r.state.is_final())
        .map(|r| (&r.record_id, format!("{:?}", r.state)))
        .collect();
    assert!(
        not_final.is_empty(),
        "{name}: records without an outcome: {not_final:?}"
    );
    for record in &report.records {
        let seq = record.seq as usize;
        let key = (number(seq % numbers).to_string(), body(seq));
        match &record.state {
            RecordState::Accepted { .. } => {
                assert_eq!(
                    created.get(&key),
                    Some(&1),
                    "{name}: {key:?} accepted but not created once"
                );
            }
            RecordState::Blocked { .. } => {
                assert!(
                    stopped.contains(&key.0),
                    "{name}: {key:?} blocked without a STOP"
                );
                assert_eq!(
                    created.get(&key),
                    None,
                    "{name}: {key:?} texted after its STOP"
                );
            }
            other => panic!("{name}: {key:?} ended {}", other.code()),
        }
    }
    println!(
        "{name}: {} create requests, {} texts created, 0 duplicates, all {} records final",
        twilio.create_requests(),
        twilio.created().len(),
        report.records.len()
    );
}

#[test]
fn a_storm_of_429s_slows_down_and_sends_everyone_once() {
    run_case(
        "storm-429",
        |n, _| match n {
            1..=80 => Fault::Status {
                status: 429,
                code: 20429,
                retry_after_s: Some(0),
            },
            n if n % 3 == 0 => Fault::Status {
                status: 429,
                code: 20429,
                retry_after_s: None,
            },
            _ => Fault::None,
        },
        Duration::from_secs(5),
        &["status_429"],
    );
}

#[test]
fn server_errors_before_and_after_creating_never_duplicate() {
    run_case(
        "errors-500",
        |n, _| match n % 7 {
            0 => Fault::ErrorAfterCreate,
            3 => Fault::Status {
                status: 500,
                code: 20500,
                retry_after_s: None,
            },
            5 => Fault::Status {
                status: 503,
                code: 20503,
                retry_after_s: None,
            },
            _ => Fault::None,
        },
        Duration::from_secs(5),
        &["error_after_create", "status_500", "status_503"],
    );
}

/// Twilio's clock minutes away from ours, either way, further than the dispatcher's 120 s
/// allowance: the provider reads Twilio's `Date` header, so a message created behind a
/// create-then-500 is still found and taken as proof, not resent nor left for a person.
#[test]
fn a_twilio_clock_three_minutes_off_either_way_still_reconciles_exactly_once() {
    for (name, offset_ms) in [("clock-behind", -180_000), ("clock-ahead", 180_000)] {
        run_case_with_clock(
            name,
            |n, _| match n % 5 {
                0 => Fault::ErrorAfterCreate,
                _ => Fault::None,
            },
            Duration::from_secs(5),
            &["error_after_create"],
            offset_ms,
        );
    }
}

/// Twilio's clock hours behind ours (a school PC with its date wrong): the history is asked
/// for again from as far back on Twilio's clock, so the message behind a 500 is still found.
#[test]
fn a_twilio_clock_seven_hours_behind_still_finds_the_message_behind_a_500() {
    run_case_with_clock(
        "clock-7h-behind",
        |n, _| match n % 5 {
            0 => Fault::ErrorAfterCreate,
            _ => Fault::None,
        },
        Duration::from_secs(5),
        &["error_after_create"],
        -7 * 3_600_000,
    );
}

/// Family phones under faults: records 2k and 2k+1 share a number and a text (a parent with
/// two children), so after a 500-after-create or a reset two attempts with the same body are in
/// doubt on one number. Each record must end with its own message (two texts a number), and
/// with `--once-per-number` both records with one message (one text a number).
#[test]
fn family_phones_with_the_same_text_under_faults_get_exactly_their_texts() {
    for once_per_number in [false, true] {
        let name = if once_per_number {
            "family-once"
        } else {
            "family"
        };
        let families = RECORDS / 2;
        let twilio = hard_stand_in(families);
        twilio.set_plan(|n, _| match n % 6 {
            0 => Fault::ErrorAfterCreate,
            3 => Fault::ResetAfterCreate,
            4 => Fault::ResetBeforeCreate,
            _ => Fault::None,
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
        let report = runtime().block_on(async {
            let mut settings = sms_tests::unpaced(4);
            settings.once_per_number = once_per_number;
            let mut c = campaign(name, RECORDS, RECORDS, settings);
            for (i, item) in c.items.iter_mut().enumerate() {
                item.mobile = number(i / 2).to_string();
                item.outcome = sms_core::PreviewOutcome::Eligible {
                    number: number(i / 2),
                    body: body(i / 2),
                    encoding: sms_core::Encoding::Gsm7,
                    segments: 1,
                };
            }
            let id = c.id.clone();
            store.create_campaign(c).await.expect("create");
            run_until_complete(&twilio, &store, id, Duration::from_secs(5)).await
        });
        let per_number = if once_per_number { 1 } else { 2 };
        let created = twilio.created_per_recipient();
        let sids: HashMap<String, (String, String)> = twilio
            .created()
            .into_iter()
            .map(|c| (c.sid, (c.to, c.body)))
            .collect();
        let mut claimed: HashMap<String, usize> = HashMap::new();
        for record in &report.records {
            let key = (
                number(record.seq as usize / 2).to_string(),
                body(record.seq as usize / 2),
            );
            let RecordState::Accepted { provider_id, .. } = &record.state else {
                panic!("{name}: {key:?} ended {:?}", record.state);
            };
            assert_eq!(
                sids.get(provider_id),
                Some(&key),
                "{name}: {} holds a message that is not its text",
                record.seq
            );
            *claimed.entry(provider_id.clone()).or_default() += 1;
            assert_eq!(
                created.get(&key),
                Some(&per_number),
                "{name}: {key:?} texted {:?} times",
                created.get(&key)
            );
        }
        // Each message is claimed by as many records as it was sent for.
        let claims_per_message = if once_per_number { 2 } else { 1 };
        assert!(
            claimed.values().all(|n| *n == claims_per_message),
            "{name}: {claimed:?}"
        );
        let fired = twilio.fault_counts();
        for kind in [
            "error_after_create",
            "reset_after_create",
            "reset_before_create",
        ] {
            assert!(
                fired.get(kind).is_some_and(|n| *n > 0),
                "{name}: the injected fault {kind} never fired: {fired:?}"
            );
        }
        println!("{name}: faults fired {fired:?}, every family texted exactly as asked");
    }
}

#[test]
fn connection_resets_before_and_after_creating_never_duplicate() {
    run_case(
        "resets",
        |n, _| match n % 6 {
            0 => Fault::ResetAfterCreate,
            4 => Fault::ResetBeforeCreate,
            _ => Fault::None,
        },
        Duration::from_secs(5),
        &["reset_after_create", "reset_before_create"],
    );
}

#[test]
fn slow_responses_past_the_timeout_are_reconciled_not_resent() {
    run_case(
        "slow",
        |n, _| match n % 10 {
            // Created at once, answered after the client gave up: only the history can tell.
            0 => Fault::Delay(Duration::from_millis(400)),
            // Slow before creating: the client gives up and nothing is created.
            5 => Fault::DelayBeforeCreate(Duration::from_millis(400)),
            _ => Fault::None,
        },
        Duration::from_millis(150),
        &["delay", "delay_before_create"],
    );
}

#[test]
fn everything_at_once() {
    let mut state: u64 = 0x00DD_BA11;
    run_case(
        "mixed",
        move |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 20 {
                0..=2 => Fault::Status {
                    status: 429,
                    code: 20429,
                    retry_after_s: Some(0),
                },
                3 => Fault::ErrorAfterCreate,
                4 => Fault::Status {
                    status: 500,
                    code: 20500,
                    retry_after_s: None,
                },
                5 => Fault::ResetAfterCreate,
                6 => Fault::ResetBeforeCreate,
                7 => Fault::Delay(Duration::from_millis(300)),
                8 => Fault::DelayBeforeCreate(Duration::from_millis(300)),
                _ => Fault::None,
            }
        },
        Duration::from_millis(150),
        &[
            "status_429",
            "error_after_create",
            "status_500",
            "reset_after_create",
            "reset_before_create",
            "delay",
            "delay_before_create",
        ],
    );
}

/// The Twilio provider, holding every call after the `open`-th until `gate` opens: the STOP
/// below lands while texts are going out whatever the machine's speed, not within a time.
struct Gated {
    inner: TwilioProvider,
    open: usize,
    calls: std::sync::atomic::AtomicUsize,
    gate: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl sms_core::Provider for Gated {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send(
        &self,
        sms: &sms_core::OutboundSms,
    ) -> Result<sms_core::Accepted, sms_core::SendError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= self.open {
            let mut gate = self.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        self.inner.send(sms).await
    }
    async fn balance(&self) -> Result<Option<sms_core::Balance>, sms_core::SendError> {
        self.inner.balance().await
    }
    async fn lookup_sent(
        &self,
        to: sms_core::PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<sms_core::SentMessage>, sms_core::SendError> {
        self.inner.lookup_sent(to, since).await
    }
}

#[test]
fn a_stop_arriving_mid_campaign_wins_for_every_record_on_the_number() {
    let twilio = hard_stand_in(100);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    // Records i and i + 100 share a number (a parent with two children): 55 and 155 here.
    let records = 160;
    let stopped_number = number(55);
    let report = runtime().block_on(async {
        let mut settings = sms_tests::unpaced(2);
        settings.rate = RateLimit::MessagesPerSecond { per_second: 100.0 };
        let c = campaign("stop-mid", records, 100, settings);
        let id: CampaignId = c.id.clone();
        store.create_campaign(c).await.expect("create");
        let (opened, gate) = tokio::sync::watch::channel(false);
        let gated = Gated {
            inner: provider(&twilio, Duration::from_secs(5)),
            open: 5,
            calls: Default::default(),
            gate,
        };
        let dispatcher =
            Dispatcher::new(Arc::new(gated), store.clone(), store.clone()).with_options(options());
        let run = dispatcher.run(id, CancellationToken::new());

        // The parent replies STOP (a signed webhook, as Twilio posts it) once texts are going out.
        let inbound = async {
            while twilio.create_requests() < 5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let handler = InboundHandler::new(
                SignatureValidator::new("token"),
                store.clone() as Arc<dyn OptOutStore>,
            );
            let url = "https://school.example/sms/inbound";
            let fields = sms_twilio::form_fields(&[
                ("MessageSid", "SM00000000000000000000000000000stop"),
                ("From", &stopped_number.to_string()),
                ("To", "+15005550006"),
                ("Body", "STOP"),
            ]);
            let signature = compute_signature("token", url, &fields);
            let outcome = handler
                .handle(url, &fields, Some(&signature), Timestamp::now())
                .await
                .expect("a signed STOP is recorded");
            assert_eq!(outcome.classification.class, KeywordClass::OptOut);
            opened.send_replace(true);
        };
        let (summary, ()) = tokio::join!(run, inbound);
        summary.expect("the run completes").report
    });
    let stopped: HashSet<String> = [stopped_number.to_string()].into();
    assert_invariants("stop-mid-campaign", &twilio, &report, 100, &stopped);
    let blocked = report
        .records
        .iter()
        .filter(|r| matches!(r.state, RecordState::Blocked { .. }))
        .count();
    assert_eq!(blocked, 2, "both records carrying the number are blocked");
}

/// Runs one campaign of `records` records (one number each) once against the stand-in.
fn run_once(
    twilio: &FakeTwilio,
    name: &str,
    records: usize,
) -> Result<CampaignReport, sms_core::DispatchError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    runtime().block_on(async {
        let c = campaign(name, records, records, sms_tests::unpaced(2));
        let id = c.id.clone();
        store.create_campaign(c).await.expect("create");
        let dispatcher = Dispatcher::new(
            Arc::new(provider(twilio, Duration::from_secs(5))),
            store.clone(),
            store.clone(),
        )
        .with_options(options());
        dispatcher
            .run(id, CancellationToken::new())
            .await
            .map(|summary| summary.report)
    })
}

#[test]
fn one_recipients_refusal_fails_that_record_and_the_campaign_goes_on() {
    let twilio = FakeTwilio::start();
    let refused = number(3).to_string();
    let to = refused.clone();
    // Twilio's 21266 ("To" equals "From") is about this one record, like 21608 or 21617.
    twilio.set_plan(move |_, form| {
        if form.get("To") == Some(&to) {
            Fault::Status {
                status: 400,
                code: 21266,
                retry_after_s: None,
            }
        } else {
            Fault::None
        }
    });
    let report = run_once(&twilio, "refused-one", 8).expect("the run finishes");
    assert!(report.is_complete(), "every record has an outcome");
    for record in &report.records {
        match (&record.state, record.number.map(|n| n.to_string())) {
            (RecordState::Failed { failure, .. }, Some(n)) if n == refused => {
                assert_eq!(failure.code, Some(21266), "the code is in the report");
            }
            (RecordState::Accepted { .. }, Some(n)) if n != refused => {}
            (other, n) => panic!("{n:?} ended {}", other.code()),
        }
    }
    assert_eq!(twilio.created().len(), 7, "the other seven were sent");
    assert_eq!(twilio.fault_counts().get("status_400"), Some(&1));
}

#[test]
fn an_account_refusal_still_stops_the_run() {
    let twilio = FakeTwilio::start();
    twilio.set_plan(|n, _| match n {
        3 => Fault::Status {
            status: 401,
            code: 20003,
            retry_after_s: None,
        },
        _ => Fault::None,
    });
    let err = run_once(&twilio, "refused-account", 8).expect_err("20003 stops the run");
    assert!(
        matches!(&err, sms_core::DispatchError::Provider(e) if e.code() == Some(20003)),
        "{err}"
    );
    assert!(twilio.created().len() < 8, "the run stopped before the end");
}
