//! The fault matrix over HTTP: the real `TwilioProvider` sending to the local stand-in, the
//! real dispatcher, a real SQLite file. 429 storms, 500s before and after the message is
//! created, connection resets before and after, slow responses past the client's timeout, and a
//! STOP arriving mid-campaign. Every case must end with no text created twice, every record
//! with a final outcome, and nothing sent to a number after its STOP.

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
    TwilioProvider::builder("AC00000000000000000000000000000000")
        .auth_token("not-a-real-token")
        .from_number("+15005550006")
        .base_url(twilio.base_url())
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

/// Runs a campaign of `RECORDS` records (one number each) against the stand-in with `plan`,
/// resuming until the report is complete (at most 5 runs), and checks the invariants.
fn run_case(
    name: &str,
    plan: impl FnMut(u64, &HashMap<String, String>) -> Fault + Send + 'static,
    timeout: Duration,
) {
    let twilio = FakeTwilio::start();
    twilio.set_plan(plan);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    let report = runtime().block_on(async {
        let mut settings = sms_tests::unpaced(4);
        settings.rate = RateLimit::Unlimited;
        let c = campaign(name, RECORDS, RECORDS, settings);
        let id = c.id.clone();
        store.create_campaign(c).await.expect("create");
        let dispatcher = Dispatcher::new(
            Arc::new(provider(&twilio, timeout)),
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
                break summary.report;
            }
        }
    });
    assert_invariants(name, &twilio, &report, RECORDS, &HashSet::new());
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
        .map(|r| (&r.record_id, r.state.code()))
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
    );
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
    );
}

#[test]
fn slow_responses_past_the_timeout_are_reconciled_not_resent() {
    run_case(
        "slow",
        |n, _| match n % 10 {
            0 => Fault::Delay(Duration::from_millis(400)),
            _ => Fault::None,
        },
        Duration::from_millis(150),
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
                _ => Fault::None,
            }
        },
        Duration::from_millis(150),
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
    let twilio = FakeTwilio::start();
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
            while twilio.created().len() < 5 {
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
