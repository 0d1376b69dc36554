//! One suite of the store contracts, run against every store (the in-memory stores, SQLite,
//! PostgreSQL), so that no store drifts from the others.
//!
//! A backend plugs in with a [`StoreFactory`]: [`StoreFactory::fresh`] gives an empty backing
//! database for one test ([`Backing`]), and [`Backing::open`] a handle on it for one
//! organisation ([`Stores`]: the opt-out store, the journal, the alert store and, where the
//! backend keeps them, the inbound replies). Opening the same organisation twice must give
//! handles on the same rows (a second process would); the contracts use that to check what
//! another handle reads.
//!
//! Each contract is a `pub async fn(&dyn StoreFactory)` that panics, naming what broke. A
//! backend's test file runs them all with [`conformance_tests!`](crate::conformance_tests)
//! (one `#[tokio::test]` per contract, named after it) or with [`run_all`] (one test that
//! names every failing contract):
//!
//! ```ignore
//! // tests/tests/conformance.rs
//! mod sqlite {
//!     sms_tests::conformance_tests!(super::SqliteFactory);
//! }
//! // A backend that needs a server may skip: the expression may `return`.
//! mod postgres {
//!     sms_tests::conformance_tests!(match super::PgFactory::from_env() {
//!         Some(factory) => factory,
//!         None => return eprintln!("skipped: no SMS_TEST_POSTGRES_URL"),
//!     });
//! }
//! ```
//!
//! The contracts look only at the organisations they open, so a backend may keep several tests
//! in one database as long as each [`Backing`] maps organisation names to its own (for
//! example, prefixed by the test's id).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertOutcome, AlertStatus, AlertStore, AlertStoreError,
    AlertTemplates, EventId, EventInsert, RecentSend, StoredAlert, SubscriptionAction,
    SubscriptionChange, SubscriptionSource, plan_event,
};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, DeliveryUpdate, Journal, JournalError, RecordState,
    SendFailure, Transition, WorkerId,
};
use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutState, OptOutStore};
use sms_core::{
    AlertKind, BlockReason, DeliveryStatus, Encoding, Org, PermittedMarketingMethods, PhoneNumber,
    PreviewItem, PreviewOutcome, Recipient, RecipientKind, RecordId, Timestamp,
};

use crate::campaigns::number;

/// Makes empty backing databases, one per test.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// A fresh, empty backing database for one test (its own file, database or schema).
    async fn fresh(&self) -> Box<dyn Backing>;
}

/// One backing database, which may hold many organisations.
#[async_trait]
pub trait Backing: Send + Sync {
    /// A handle on this backing database for `org`: it sees that organisation's rows only, and
    /// a second call for the same organisation gives a handle on the same rows.
    async fn open(&self, org: &Org) -> Stores;
}

/// The stores of one organisation, as a backend opens them (often one object behind each).
#[derive(Clone)]
pub struct Stores {
    /// STOP and START history.
    pub optouts: Arc<dyn OptOutStore>,
    /// Campaigns, records, delivery statuses, run claims.
    pub journal: Arc<dyn Journal>,
    /// MyAccount Alerts: sign-ups, events, scheduled alerts, batches, wordings.
    pub alerts: Arc<dyn AlertStore>,
    /// The inbound replies, for a backend that keeps them (`None`: the replies contracts are
    /// skipped for it).
    pub replies: Option<Arc<dyn ReplyLog>>,
}

/// One inbound message as the replies contracts write and read it: the part every backend
/// keeps, whatever its own row type (`sms_sqlite::StoredReply`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The provider's message id: stored once per organisation.
    pub message_sid: String,
    /// Who wrote.
    pub from: String,
    /// The text.
    pub body: String,
    /// When it was received.
    pub received_at: Timestamp,
}

/// The inbound replies of one organisation (no trait of the core holds them yet, so each
/// backend's test adapts its own methods to this).
#[async_trait]
pub trait ReplyLog: Send + Sync {
    /// Stores `reply`; `Ok(false)` when its `message_sid` is stored already (nothing changes).
    async fn record_reply(&self, reply: Reply) -> Result<bool, String>;
    /// The replies received at or after `since`, oldest first.
    async fn replies(&self, since: Timestamp) -> Result<Vec<Reply>, String>;
}

/// A contract: an async function of the factory that panics when the store breaks it.
pub type Contract =
    for<'a> fn(&'a dyn StoreFactory) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Declares [`CONTRACTS`] and the `conformance_tests!` macro from one list of names, so the
/// two never differ. `$d` is a `$` passed in, for the metavariables of the macro it writes.
macro_rules! contracts {
    ($d:tt; $($name:ident),* $(,)?) => {
        /// Every contract, by name, in the order [`run_all`] runs them.
        pub const CONTRACTS: &[(&str, Contract)] = &[
            $((stringify!($name), |factory| Box::pin($name(factory)))),*
        ];

        /// Expands to one `#[tokio::test]` per contract, named after it, each running it on the
        /// factory `$factory` (an expression evaluated in each test; it may `return` to skip).
        #[macro_export]
        macro_rules! conformance_tests {
            ($d factory:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let factory = $d factory;
                        $crate::conformance::$name(&factory).await;
                    }
                )*
            };
        }
    };
}

contracts!(
    $;
    opt_out_rule_on_random_histories,
    opt_out_history_and_snapshot,
    opt_out_whatever_the_body_holds,
    journal_campaigns_and_records,
    journal_transitions,
    journal_deliveries,
    journal_logged_provider_ids,
    journal_claims_are_exclusive,
    fleet_leases_held_records_once_their_hours_open,
    fleet_waits_only_for_records_planned_or_sending,
    alert_store,
    replies_once_per_message,
    organisations_are_isolated,
);

/// Runs every contract, each in its own task, and panics naming each one that failed.
pub async fn run_all(factory: Arc<dyn StoreFactory>) {
    let mut failed = Vec::new();
    for (name, contract) in CONTRACTS {
        let factory = factory.clone();
        let outcome = tokio::spawn(async move { contract(&*factory).await }).await;
        if let Err(error) = outcome {
            let why = match error.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
                Err(error) => error.to_string(),
            };
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "store contracts broken:\n{}",
        failed.join("\n")
    );
}

fn org(name: &str) -> Org {
    Org::new(name).expect("a valid organisation name")
}

fn ms(at: i64) -> Timestamp {
    Timestamp::from_unix_ms(1_764_000_000_000 + at)
}

fn change(n: usize, action: OptOutAction, at: i64, sid: &str) -> OptOutChange {
    OptOutChange {
        number: number(n),
        action,
        at: ms(at),
        source: ChangeSource::Inbound,
        message_sid: Some(sid.to_owned()),
        body: Some(match action {
            OptOutAction::Stop => "STOP".to_owned(),
            OptOutAction::Start => "START".to_owned(),
        }),
    }
}

/// A STOP is recorded whatever its text holds: a NUL (which a PostgreSQL `text` cannot hold:
/// kept there as U+FFFD), a lone keyword among emoji, a very long body. The number is opted out
/// on every store; a review found PostgreSQL refused the NUL and left the number opted in.
pub async fn opt_out_whatever_the_body_holds(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let stores = backing.open(&org("acme")).await;
    let bodies = ["STOP\0", "\0STOP", "🛑 STOP 🛑", &"STOP ".repeat(400)];
    for (n, body) in bodies.iter().enumerate() {
        let mut stop = change(n, OptOutAction::Stop, 1_000, &format!("SM-NUL-{n}"));
        stop.body = Some((*body).to_owned());
        stores
            .optouts
            .record(stop)
            .await
            .expect("a STOP is recorded");
        assert!(
            matches!(
                stores.optouts.state(number(n)).await.expect("state"),
                OptOutState::OptedOut { .. }
            ),
            "body {n}"
        );
        let history = stores.optouts.history(number(n)).await.expect("history");
        let kept = history[0].body.as_deref().expect("a body");
        assert_eq!(
            kept.replace('\u{FFFD}', "\0"),
            *body,
            "the body is kept (a NUL may come back as U+FFFD)"
        );
    }
}

/// A small random generator (xorshift64*): the same histories on every run and every store,
/// without a dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Random histories of STOP and START (ties, skewed clocks, late deliveries: times are drawn
/// from a few minutes so that out-of-order stamps are common), each in its own organisation of
/// one backing database: what another handle reads agrees with the core's one rule
/// (`OptOutState::from_history` over the changes in arrival order), the history is the changes
/// as written in arrival order, the snapshot holds exactly the numbers opted out, and a STOP
/// that arrived after every START is never lost, whatever the clocks said.
pub async fn opt_out_rule_on_random_histories(factory: &dyn StoreFactory) {
    const CASES: u64 = 24;
    const NUMBERS: usize = 3;
    let backing = factory.fresh().await;
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for case in 0..CASES {
        let org = org(&format!("history-{case}"));
        let writer = backing.open(&org).await;
        let length = random.below(14);
        let changes: Vec<OptOutChange> = (0..length)
            .map(|i| {
                let n = random.below(NUMBERS as u64) as usize;
                let action = if random.below(2) == 0 {
                    OptOutAction::Stop
                } else {
                    OptOutAction::Start
                };
                change(
                    n,
                    action,
                    random.below(6) as i64 * 60_000,
                    &format!("SM{i}"),
                )
            })
            .collect();
        for c in &changes {
            writer.optouts.record(c.clone()).await.expect("recorded");
        }
        let reader = backing.open(&org).await;
        let snapshot = reader.optouts.snapshot().await.expect("snapshot");
        let mut opted_out = 0;
        for n in 0..NUMBERS {
            let mine: Vec<&OptOutChange> =
                changes.iter().filter(|c| c.number == number(n)).collect();
            let state = reader.optouts.state(number(n)).await.expect("state");
            let expected = OptOutState::from_history(mine.iter().copied());
            assert_eq!(state, expected, "case {case}, number {n}: {mine:?}");
            assert_eq!(snapshot.state(number(n)), state, "case {case}: snapshot");
            let history = reader.optouts.history(number(n)).await.expect("history");
            assert_eq!(
                history.iter().collect::<Vec<_>>(),
                mine,
                "case {case}: history in arrival order"
            );
            if matches!(state, OptOutState::OptedOut { .. }) {
                opted_out += 1;
            }
            // Independent of the rule's code: what a person would check by hand.
            let last_start = mine.iter().rposition(|c| c.action == OptOutAction::Start);
            let stops_after = mine
                .iter()
                .skip(last_start.map_or(0, |i| i + 1))
                .filter(|c| c.action == OptOutAction::Stop)
                .map(|c| c.at)
                .min();
            if let Some(earliest) = stops_after {
                assert!(
                    matches!(state, OptOutState::OptedOut { since } if since <= earliest),
                    "case {case}: number {n} lost a STOP: {mine:?} -> {state:?}"
                );
            } else if let Some(i) = last_start {
                let stamped_later = mine[..i]
                    .iter()
                    .any(|c| c.action == OptOutAction::Stop && c.at > mine[i].at);
                if !stamped_later {
                    assert_eq!(state, OptOutState::OptedIn, "case {case}: {mine:?}");
                }
            } else {
                assert_eq!(state, OptOutState::OptedIn, "case {case}: no change at all");
            }
        }
        assert_eq!(
            snapshot.len(),
            opted_out,
            "case {case}: the snapshot's size"
        );
    }
}

/// The opt-out store by hand: an unknown number is opted in, a STOP blocks at once (seen by
/// another handle), a START after it lifts it, a START stamped before the STOP in effect (a
/// skewed clock) does not, every field of a change reads back, and the snapshot lists exactly
/// the numbers opted out, each since its earliest STOP in effect.
pub async fn opt_out_history_and_snapshot(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let writer = backing.open(&acme).await;
    let reader = backing.open(&acme).await;
    assert_eq!(
        reader.optouts.state(number(1)).await.expect("state"),
        OptOutState::OptedIn
    );
    assert!(
        reader
            .optouts
            .snapshot()
            .await
            .expect("snapshot")
            .is_empty()
    );
    assert!(
        reader
            .optouts
            .history(number(1))
            .await
            .expect("history")
            .is_empty()
    );

    let staff = OptOutChange {
        source: ChangeSource::Staff,
        message_sid: None,
        body: None,
        ..change(1, OptOutAction::Stop, 10_000, "")
    };
    writer.optouts.record(staff.clone()).await.expect("stop");
    assert_eq!(
        reader.optouts.state(number(1)).await.expect("state"),
        OptOutState::OptedOut { since: ms(10_000) },
        "a STOP is read by another handle as soon as record returns"
    );
    // A second STOP keeps the earliest as `since`; a START stamped before it is ignored.
    let stops = [
        change(2, OptOutAction::Stop, 20_000, "SM1"),
        change(2, OptOutAction::Stop, 30_000, "SM2"),
        change(2, OptOutAction::Start, 15_000, "SM3"),
    ];
    for c in &stops {
        writer.optouts.record(c.clone()).await.expect("recorded");
    }
    assert_eq!(
        reader.optouts.state(number(2)).await.expect("state"),
        OptOutState::OptedOut { since: ms(20_000) }
    );
    // A START after the STOP, stamped later: texting resumes.
    let provider = OptOutChange {
        source: ChangeSource::Provider,
        ..change(3, OptOutAction::Stop, 5_000, "SM4")
    };
    writer.optouts.record(provider.clone()).await.expect("stop");
    let start = OptOutChange {
        source: ChangeSource::NaturalLanguage,
        body: Some("please text me again".into()),
        ..change(3, OptOutAction::Start, 6_000, "SM5")
    };
    writer.optouts.record(start.clone()).await.expect("start");
    assert_eq!(
        reader.optouts.state(number(3)).await.expect("state"),
        OptOutState::OptedIn
    );
    assert_eq!(
        reader.optouts.history(number(3)).await.expect("history"),
        vec![provider, start],
        "every field, in arrival order"
    );
    assert_eq!(
        reader.optouts.history(number(1)).await.expect("history"),
        vec![staff]
    );
    assert_eq!(
        reader.optouts.history(number(2)).await.expect("history"),
        stops.to_vec()
    );
    let snapshot = reader.optouts.snapshot().await.expect("snapshot");
    let mut listed: Vec<(PhoneNumber, Timestamp)> = snapshot.iter().collect();
    listed.sort();
    let mut expected = vec![(number(1), ms(10_000)), (number(2), ms(20_000))];
    expected.sort();
    assert_eq!(listed, expected);
}

/// A campaign of `eligible` records to numbers 0.. and one record blocked (no mobile) last.
fn campaign(id: &str, eligible: usize, created_at: i64) -> Campaign {
    let item = |i: usize| PreviewItem {
        record_id: RecordId::new(format!("C-{i}")),
        kind: sms_core::RecordKind::Client,
        name: format!("Client {i}"),
        mobile: number(i).to_string(),
        time_zone: None,
        outcome: PreviewOutcome::Eligible {
            number: number(i),
            body: format!("Hello {i} from {id}"),
            encoding: Encoding::Gsm7,
            segments: 1,
        },
    };
    let mut items: Vec<PreviewItem> = (0..eligible).map(item).collect();
    items.push(PreviewItem {
        mobile: String::new(),
        outcome: PreviewOutcome::Blocked {
            reason: BlockReason::NoMobile,
        },
        ..item(eligible)
    });
    Campaign {
        id: CampaignId::new(id).expect("not blank"),
        name: format!("Campaign {id}"),
        created_at: ms(created_at),
        template: "Hello {record_id}".into(),
        settings: CampaignSettings::default(),
        items,
    }
}

fn id(text: &str) -> CampaignId {
    CampaignId::new(text).expect("not blank")
}

fn sending(attempt: u32, at: i64) -> RecordState {
    RecordState::Sending {
        attempt,
        at: ms(at),
    }
}

fn accepted(provider_id: &str, at: i64) -> RecordState {
    RecordState::Accepted {
        provider_id: provider_id.to_owned(),
        segments: 1,
        at: ms(at),
    }
}

fn to(seq: u32, state: RecordState) -> Transition {
    Transition { seq, state }
}

fn codes(records: &[sms_core::journal::RecordEntry]) -> Vec<&'static str> {
    records.iter().map(|r| r.state.code()).collect()
}

/// Campaigns: stored frozen (read back equal, from another handle), never twice (a second
/// create is refused and changes nothing), records in their initial states (eligible planned,
/// blocked blocked), listed oldest first with their record counts; an unknown campaign is an
/// error, not an empty answer.
pub async fn journal_campaigns_and_records(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let writer = backing.open(&acme).await;
    let reader = backing.open(&acme).await;
    assert!(reader.journal.campaigns().await.expect("list").is_empty());
    let spring = campaign("spring", 1, 2_000);
    let fall = campaign("fall", 3, 1_000);
    writer
        .journal
        .create_campaign(spring.clone())
        .await
        .expect("create");
    writer
        .journal
        .create_campaign(fall.clone())
        .await
        .expect("create");
    assert!(matches!(
        writer
            .journal
            .create_campaign(campaign("fall", 7, 9_000))
            .await,
        Err(JournalError::CampaignExists(_))
    ));
    assert_eq!(
        reader.journal.campaign(id("fall")).await.expect("read"),
        fall
    );
    assert_eq!(
        reader.journal.campaign(id("spring")).await.expect("read"),
        spring
    );
    let records = reader.journal.records(id("fall")).await.expect("records");
    assert_eq!(
        codes(&records),
        ["planned", "planned", "planned", "blocked"]
    );
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(records.iter().all(|r| r.delivery.is_none()));
    let list = reader.journal.campaigns().await.expect("list");
    assert_eq!(
        list.iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.created_at, c.records))
            .collect::<Vec<_>>(),
        [
            ("fall", "Campaign fall", ms(1_000), 4),
            ("spring", "Campaign spring", ms(2_000), 2)
        ],
        "oldest first; the refused create changed nothing"
    );
    for result in [
        reader.journal.campaign(id("winter")).await.map(|_| ()),
        reader.journal.records(id("winter")).await.map(|_| ()),
        writer
            .journal
            .apply(id("winter"), vec![to(0, sending(1, 1))])
            .await,
    ] {
        assert!(
            matches!(result, Err(JournalError::UnknownCampaign(_))),
            "{result:?}"
        );
    }
}

/// Record states move by the core's rule only: planned to sending to accepted; an accepted
/// record never goes back to sending (the exactly-once guarantee); a blocked record is never
/// sent; a sending record is not claimed by a second `sending`; a batch with one refused move
/// changes nothing; a retry goes through deferred; an unknown record is an error.
pub async fn journal_transitions(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let stores = backing.open(&acme).await;
    let reader = backing.open(&acme).await;
    let journal = &stores.journal;
    journal
        .create_campaign(campaign("fall", 3, 1_000))
        .await
        .expect("create");
    journal
        .apply(
            id("fall"),
            vec![to(0, sending(1, 10)), to(0, accepted("SM1", 11))],
        )
        .await
        .expect("sent");
    let refusals = [
        (
            vec![to(1, sending(1, 20)), to(0, sending(2, 20))],
            0,
            "accepted",
            "sending",
        ),
        (
            vec![to(1, sending(1, 20)), to(3, sending(1, 20))],
            3,
            "blocked",
            "sending",
        ),
        (vec![to(0, RecordState::Planned)], 0, "accepted", "planned"),
    ];
    for (batch, bad, from, to_code) in refusals {
        match journal.apply(id("fall"), batch).await {
            Err(JournalError::InvalidTransition {
                campaign,
                seq,
                from: f,
                to: t,
            }) => {
                assert_eq!((campaign.as_str(), seq), ("fall", bad));
                assert_eq!((f.as_str(), t.as_str()), (from, to_code));
            }
            other => panic!("record #{bad} from {from} to {to_code}: {other:?}"),
        }
    }
    let records = reader.journal.records(id("fall")).await.expect("records");
    assert_eq!(
        codes(&records),
        ["accepted", "planned", "planned", "blocked"],
        "the refused batches were undone whole"
    );
    assert_eq!(records[0].state, accepted("SM1", 11));

    // A second writer that still believes record 1 planned is refused while it is sending.
    journal
        .apply(id("fall"), vec![to(1, sending(1, 30))])
        .await
        .expect("sending");
    assert!(matches!(
        journal.apply(id("fall"), vec![to(1, sending(1, 31))]).await,
        Err(JournalError::InvalidTransition { seq: 1, .. })
    ));
    // A retry: sending, deferred (known not sent), sending again, failed for good.
    let failure = SendFailure {
        class: "try_later".into(),
        code: Some(21611),
        message: "queue full".into(),
    };
    let failed = RecordState::Failed {
        failure: SendFailure {
            class: "bad_recipient".into(),
            code: Some(21211),
            message: "invalid 'To'".into(),
        },
        at: ms(50),
    };
    journal
        .apply(
            id("fall"),
            vec![
                to(
                    1,
                    RecordState::Deferred {
                        failure,
                        at: ms(40),
                    },
                ),
                to(1, sending(2, 45)),
                to(1, failed.clone()),
            ],
        )
        .await
        .expect("retried");
    let unknown = RecordState::Unknown {
        message: "timed out".into(),
        sent_at: ms(60),
        at: ms(61),
    };
    journal
        .apply(
            id("fall"),
            vec![to(2, sending(1, 60)), to(2, unknown.clone())],
        )
        .await
        .expect("in doubt");
    assert!(matches!(
        journal.apply(id("fall"), vec![to(1, sending(3, 70))]).await,
        Err(JournalError::InvalidTransition { seq: 1, .. })
    ));
    assert!(matches!(
        journal.apply(id("fall"), vec![to(9, sending(1, 70))]).await,
        Err(JournalError::UnknownRecord { seq: 9, .. })
    ));
    let records = reader.journal.records(id("fall")).await.expect("records");
    assert_eq!(records[1].state, failed);
    assert_eq!(records[2].state, unknown);
    // Reconciled: the provider had it.
    journal
        .apply(id("fall"), vec![to(2, accepted("SM2", 80))])
        .await
        .expect("reconciled");
    assert_eq!(
        codes(&reader.journal.records(id("fall")).await.expect("records")),
        ["accepted", "failed", "accepted", "blocked"]
    );
}

fn update(
    provider_id: &str,
    status: DeliveryStatus,
    segments: Option<u32>,
    at: i64,
) -> DeliveryUpdate {
    DeliveryUpdate {
        provider_id: provider_id.to_owned(),
        status,
        error_code: None,
        segments,
        at: ms(at),
    }
}

/// Status callbacks: one for a provider id a record carries is recorded against every record
/// carrying it and returns true; one for an id no record carries returns false; a late
/// progress status (`sent` after `delivered`) does not hide the delivery; a final status
/// replaces a progress one; the billed segment count replaces the estimate.
pub async fn journal_deliveries(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let stores = backing.open(&acme).await;
    let reader = backing.open(&acme).await;
    let journal = &stores.journal;
    journal
        .create_campaign(campaign("fall", 3, 1_000))
        .await
        .expect("create");
    // Records 0 and 1 share one message (once per number); record 2 has its own.
    journal
        .apply(
            id("fall"),
            vec![
                to(0, sending(1, 10)),
                to(0, accepted("SM1", 11)),
                to(1, sending(1, 10)),
                to(1, accepted("SM1", 11)),
                to(2, sending(1, 10)),
                to(2, accepted("SM2", 11)),
            ],
        )
        .await
        .expect("sent");
    assert!(
        !journal
            .record_delivery(update("SM404", DeliveryStatus::Delivered, None, 20))
            .await
            .expect("callback"),
        "no record carries SM404"
    );
    assert!(
        journal
            .record_delivery(update("SM1", DeliveryStatus::Sent, None, 20))
            .await
            .expect("callback")
    );
    assert!(
        journal
            .record_delivery(update("SM1", DeliveryStatus::Delivered, Some(2), 30))
            .await
            .expect("callback")
    );
    assert!(
        journal
            .record_delivery(update("SM1", DeliveryStatus::Sent, None, 40))
            .await
            .expect("late callback")
    );
    let undelivered = DeliveryUpdate {
        error_code: Some(30003),
        ..update("SM2", DeliveryStatus::Undelivered, None, 50)
    };
    journal
        .record_delivery(update("SM2", DeliveryStatus::Queued, None, 45))
        .await
        .expect("callback");
    journal
        .record_delivery(undelivered)
        .await
        .expect("callback");
    let records = reader.journal.records(id("fall")).await.expect("records");
    for seq in [0, 1] {
        let delivery = records[seq].delivery.as_ref().expect("a delivery");
        assert_eq!(
            (&delivery.status, delivery.at),
            (&DeliveryStatus::Delivered, ms(30)),
            "record {seq}: the late `sent` does not hide the delivery"
        );
        assert!(
            matches!(
                records[seq].state,
                RecordState::Accepted { segments: 2, .. }
            ),
            "record {seq}: the billed segments: {:?}",
            records[seq].state
        );
    }
    let delivery = records[2].delivery.as_ref().expect("a delivery");
    assert_eq!(
        (&delivery.status, delivery.error_code),
        (&DeliveryStatus::Undelivered, Some(30003))
    );
    assert!(matches!(
        records[2].state,
        RecordState::Accepted { segments: 1, .. }
    ));
    assert!(records[3].delivery.is_none());
}

/// `logged_provider_ids` names exactly the ids a record of any of the organisation's campaigns
/// carries (reconciliation must not take a logged message as proof of another attempt).
pub async fn journal_logged_provider_ids(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let stores = backing.open(&org("acme")).await;
    let journal = &stores.journal;
    assert!(
        journal
            .logged_provider_ids(vec!["SM1".into()])
            .await
            .expect("read")
            .is_empty()
    );
    journal
        .create_campaign(campaign("fall", 2, 1_000))
        .await
        .expect("create");
    journal
        .create_campaign(campaign("spring", 2, 2_000))
        .await
        .expect("create");
    journal
        .apply(
            id("fall"),
            vec![to(0, sending(1, 1)), to(0, accepted("SM1", 2))],
        )
        .await
        .expect("sent");
    journal
        .apply(
            id("spring"),
            vec![to(1, sending(1, 1)), to(1, accepted("SM2", 2))],
        )
        .await
        .expect("sent");
    let logged = journal
        .logged_provider_ids(vec!["SM1".into(), "SM2".into(), "SM3".into()])
        .await
        .expect("read");
    assert_eq!(logged, HashSet::from(["SM1".to_owned(), "SM2".to_owned()]));
}

/// One run per campaign: a second claim (another handle, as another process) is refused while
/// the first is held, another campaign is free, and dropping the claim frees it.
pub async fn journal_claims_are_exclusive(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let first = backing.open(&acme).await;
    let second = backing.open(&acme).await;
    let claim = first.journal.claim(id("fall")).await.expect("free");
    assert!(matches!(
        second.journal.claim(id("fall")).await,
        Err(JournalError::CampaignBusy(_))
    ));
    assert!(matches!(
        first.journal.claim(id("fall")).await,
        Err(JournalError::CampaignBusy(_))
    ));
    let _spring = second
        .journal
        .claim(id("spring"))
        .await
        .expect("another campaign");
    drop(claim);
    second.journal.claim(id("fall")).await.expect("free again");
}

fn held(until: Timestamp, at: Timestamp) -> RecordState {
    RecordState::Held {
        until,
        time_zone: "America/New_York".into(),
        at,
    }
}

/// The seqs of `entries`, in order.
fn seqs(entries: &[sms_core::journal::RecordEntry]) -> Vec<u32> {
    entries.iter().map(|e| e.seq).collect()
}

/// A fleet (a journal with fleet operations; skipped for one without, as SQLite): a record
/// held by quiet hours gives its number work once its opening has passed, never before, and
/// never keeps the workers waiting; a hold rewritten with a past opening (another handle's
/// write) makes it work at once. Openings are on the wall clock (a server's clock may be the
/// journal's), an hour away either side.
pub async fn fleet_leases_held_records_once_their_hours_open(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let stores = backing.open(&acme).await;
    let other = backing.open(&acme).await;
    let (Some(fleet), Some(other_fleet)) = (stores.journal.fleet(), other.journal.fleet()) else {
        return;
    };
    let now = Timestamp::now();
    let hour = 3_600_000;
    let quiet = id("quiet");
    stores
        .journal
        .create_campaign(campaign("quiet", 3, 0))
        .await
        .expect("create");
    // 0: its hours opened an hour ago; 1: they open in an hour; 2: sent.
    stores
        .journal
        .apply(
            quiet.clone(),
            vec![
                to(0, held(Timestamp::from_unix_ms(now.unix_ms() - hour), now)),
                to(1, held(Timestamp::from_unix_ms(now.unix_ms() + hour), now)),
                to(2, sending(1, 1)),
                to(2, accepted("SM2", 2)),
            ],
        )
        .await
        .expect("held");
    let left = fleet.outstanding(&quiet).await.expect("outstanding");
    assert_eq!(left.active, 0, "a held record keeps no worker waiting");

    let first = WorkerId::new("worker-1");
    let lease = std::time::Duration::from_secs(60);
    let leased = fleet.lease(&quiet, &first, 10, lease).await.expect("lease");
    assert_eq!(
        seqs(&leased),
        [0],
        "only the number whose hours opened has work: {:?}",
        codes(&leased)
    );
    let second = WorkerId::new("worker-2");
    assert!(
        other_fleet
            .lease(&quiet, &second, 10, lease)
            .await
            .expect("lease")
            .is_empty(),
        "a hold still closed is no work"
    );

    // The first worker sends record 0 and lets its number go.
    fleet
        .begin_sending(&quiet, &first, vec![to(0, sending(1, 1))])
        .await
        .expect("its lease");
    stores
        .journal
        .apply(quiet.clone(), vec![to(0, accepted("SM0", 2))])
        .await
        .expect("accepted");
    fleet
        .release(&quiet, &first, vec![number(0)], std::time::Duration::ZERO)
        .await
        .expect("release");

    // Record 1's hold is rewritten (by another handle) with an opening just passed: work now.
    other
        .journal
        .apply(
            quiet.clone(),
            vec![to(
                1,
                held(Timestamp::from_unix_ms(now.unix_ms() - 1_000), now),
            )],
        )
        .await
        .expect("held again");
    let leased = other_fleet
        .lease(&quiet, &second, 10, lease)
        .await
        .expect("lease");
    assert_eq!(seqs(&leased), [1], "{:?}", codes(&leased));
    assert!(
        fleet
            .lease(&quiet, &first, 10, lease)
            .await
            .expect("lease")
            .is_empty(),
        "nothing else has work"
    );
    assert_eq!(
        fleet.outstanding(&quiet).await.expect("outstanding").active,
        0
    );
}

/// A fleet's workers wait for a number only while a record of it is `planned` or `sending`
/// (a worker holding it may die): a `deferred` record (refused "try later" as often as a run
/// tries) and an `unknown` one (waiting for the provider's silence) are work a worker takes, but
/// keep none up, or a long outage would keep every worker polling for ever where a run ends.
pub async fn fleet_waits_only_for_records_planned_or_sending(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let stores = backing.open(&org("acme")).await;
    let Some(fleet) = stores.journal.fleet() else {
        return;
    };
    let outage = id("outage");
    stores
        .journal
        .create_campaign(campaign("outage", 3, 0))
        .await
        .expect("create");
    let deferred = RecordState::Deferred {
        failure: SendFailure {
            class: "try_later".into(),
            code: Some(503),
            message: "service unavailable".into(),
        },
        at: ms(20),
    };
    let unknown = RecordState::Unknown {
        message: "timed out".into(),
        sent_at: ms(30),
        at: ms(31),
    };
    stores
        .journal
        .apply(
            outage.clone(),
            vec![
                to(1, sending(1, 10)),
                to(1, deferred),
                to(2, sending(1, 30)),
                to(2, unknown),
            ],
        )
        .await
        .expect("deferred and unknown");
    let left = fleet.outstanding(&outage).await.expect("outstanding");
    assert_eq!(
        left.active, 1,
        "only the planned record's number keeps workers"
    );
    let worker = WorkerId::new("worker-1");
    let leased = fleet
        .lease(&outage, &worker, 10, std::time::Duration::from_secs(60))
        .await
        .expect("lease");
    let mut taken = seqs(&leased);
    taken.sort_unstable();
    assert_eq!(taken, [0, 1, 2], "each is work: {:?}", codes(&leased));
    fleet
        .begin_sending(&outage, &worker, vec![to(0, sending(1, 40))])
        .await
        .expect("its lease");
    stores
        .journal
        .apply(outage.clone(), vec![to(0, accepted("SM0", 41))])
        .await
        .expect("sent");
    assert_eq!(
        fleet
            .outstanding(&outage)
            .await
            .expect("outstanding")
            .active,
        0,
        "what is left waits for a later run"
    );
}

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
        fields: std::collections::BTreeMap::from([(
            "course_title".to_owned(),
            "Intro to Welding".to_owned(),
        )]),
    }
}

fn templates_of(templates: &AlertTemplates) -> Vec<(AlertKind, String)> {
    AlertKind::ALL
        .into_iter()
        .filter(|k| !templates.is_default(*k))
        .map(|k| (k, templates.source(k).to_owned()))
        .collect()
}

/// An alert event of `kind` for section WELD-101, received at `received`.
pub fn alert_event(id: &str, kind: AlertKind, received: &str) -> AlertEvent {
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

/// Seeds an alert store: one wording, six clients (a family phone among them) subscribed to
/// two kinds, two events (EV-1 for four of them, SC-1 for two); returns the alerts scheduled
/// (6).
pub async fn seed_alerts(store: &dyn AlertStore) -> usize {
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
    let evaluation = alert_event("EV-1", AlertKind::EvaluationDue, "2026-05-01T14:00:00Z");
    let mut change = alert_event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T14:05:00Z");
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

/// The item a claim stores for `alert`.
fn alert_item(alert: &StoredAlert) -> PreviewItem {
    PreviewItem {
        record_id: alert.alert.recipient.record_id.clone(),
        kind: sms_core::RecordKind::Client,
        name: "x".into(),
        mobile: alert.alert.recipient.mobile.clone(),
        time_zone: None,
        outcome: PreviewOutcome::Eligible {
            number: PhoneNumber::parse(&alert.alert.recipient.mobile, Default::default())
                .expect("valid"),
            body: "b".into(),
            encoding: Encoding::Gsm7,
            segments: 1,
        },
    }
}

/// The alert store: an event reported twice schedules nothing new; sign-ups are kept in
/// arrival order with their wording; claims are all or nothing and an alert is claimed once;
/// claimed alerts count against the cap; `finish` leaves a claimed alert to its batch;
/// `settle` is final (a replay changes nothing); every outcome reads back as written; and
/// another handle reads the same.
pub async fn alert_store(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let stores = backing.open(&acme).await;
    let store = &*stores.alerts;
    let scheduled = seed_alerts(store).await;
    assert_eq!(scheduled, 6);
    // The host reports an event twice: nothing new.
    let e = alert_event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T15:00:00Z");
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
    let batch = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[0].id, alert_item(&pending[0])),
                (pending[1].id, alert_item(&pending[1])),
            ],
        )
        .await
        .expect("claims");
    assert_eq!(batch.campaign_id.as_str(), "alerts-batch-1");
    let refused = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[2].id, alert_item(&pending[2])),
                (pending[1].id, alert_item(&pending[1])),
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
                    failure: SendFailure {
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
            reason: BlockReason::OptedOut {
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
    // An unknown alert id is a conflict, and nothing of the call is recorded.
    let pending = store.pending().await.expect("read");
    let never = AlertOutcome::Never {
        reason: sms_core::alerts::AlertReason::StaffNeverAlerted,
    };
    assert!(matches!(
        store
            .finish(
                vec![(pending[0].id, never.clone()), (u64::MAX / 2, never)],
                t("2026-05-01T14:13:00Z"),
            )
            .await,
        Err(AlertStoreError::Conflict(_))
    ));
    assert_eq!(store.pending().await.expect("read").len(), 4);

    // What another handle reads.
    let other = backing.open(&acme).await;
    let other = &*other.alerts;
    assert_eq!(other.events().await.expect("read").len(), 2);
    assert_eq!(other.pending().await.expect("read").len(), 4);
    assert_eq!(other.open_batches().await.expect("read").len(), 0);
    assert_eq!(
        other.subscription_history(None).await.expect("read").len(),
        13
    );
    assert_eq!(other.templates().await.expect("read").len(), 1);
    assert_eq!(
        other.all_alerts().await.expect("read"),
        store.all_alerts().await.expect("read")
    );
}

fn reply(sid: &str, body: &str, at: i64) -> Reply {
    Reply {
        message_sid: sid.to_owned(),
        from: number(1).to_string(),
        body: body.to_owned(),
        received_at: ms(at),
    }
}

/// Inbound replies (for a backend that keeps them): stored once per message id (a webhook
/// redelivered changes nothing, the first row stands), read back oldest first from a time on,
/// by another handle.
pub async fn replies_once_per_message(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let acme = org("acme");
    let Some(writer) = backing.open(&acme).await.replies else {
        return;
    };
    assert!(
        writer
            .record_reply(reply("SM2", "Can I bring my sister?", 2_000))
            .await
            .expect("new")
    );
    assert!(
        writer
            .record_reply(reply("SM1", "STOP", 1_000))
            .await
            .expect("new")
    );
    assert!(
        !writer
            .record_reply(reply("SM1", "redelivered", 5_000))
            .await
            .expect("known"),
        "a redelivery stores nothing"
    );
    let reader = backing.open(&acme).await.replies.expect("the same backend");
    assert_eq!(
        reader.replies(ms(0)).await.expect("read"),
        [
            reply("SM1", "STOP", 1_000),
            reply("SM2", "Can I bring my sister?", 2_000)
        ]
    );
    assert_eq!(
        reader.replies(ms(1_500)).await.expect("read"),
        [reply("SM2", "Can I bring my sister?", 2_000)]
    );
}

/// Two organisations on one backing database see nothing of each other through the API: a
/// STOP in A leaves B's number opted in (opt-outs are per sender, as carriers keep them); A's
/// campaigns, records, alerts, wordings and replies are invisible from B; the same campaign id,
/// event id and message id exist in both, independently; B applying a transition to A's
/// campaign id fails and changes nothing; a status callback for A's provider id handled by B
/// returns false and changes nothing; each runs its own campaign of the same id at once.
pub async fn organisations_are_isolated(factory: &dyn StoreFactory) {
    let backing = factory.fresh().await;
    let a = backing.open(&org("acme")).await;
    let b = backing.open(&org("bravo")).await;

    // Opt-outs.
    a.optouts
        .record(change(1, OptOutAction::Stop, 1_000, "SM-A-STOP"))
        .await
        .expect("stop");
    assert!(matches!(
        a.optouts.state(number(1)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
    assert_eq!(
        b.optouts.state(number(1)).await.expect("state"),
        OptOutState::OptedIn,
        "a STOP to one organisation never blocks another"
    );
    assert!(b.optouts.snapshot().await.expect("snapshot").is_empty());
    assert!(
        b.optouts
            .history(number(1))
            .await
            .expect("history")
            .is_empty()
    );
    b.optouts
        .record(change(2, OptOutAction::Stop, 2_000, "SM-B-STOP"))
        .await
        .expect("stop");
    assert_eq!(
        a.optouts.state(number(2)).await.expect("state"),
        OptOutState::OptedIn
    );
    assert_eq!(a.optouts.snapshot().await.expect("snapshot").len(), 1);

    // Campaigns and records.
    a.journal
        .create_campaign(campaign("fall", 3, 1_000))
        .await
        .expect("create");
    a.journal
        .apply(
            id("fall"),
            vec![to(0, sending(1, 10)), to(0, accepted("SM-A1", 11))],
        )
        .await
        .expect("sent");
    assert!(b.journal.campaigns().await.expect("list").is_empty());
    assert!(matches!(
        b.journal.campaign(id("fall")).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(matches!(
        b.journal.records(id("fall")).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(
        b.journal
            .apply(id("fall"), vec![to(1, sending(1, 20))])
            .await
            .is_err(),
        "B cannot move A's records"
    );
    assert!(
        !b.journal
            .record_delivery(update("SM-A1", DeliveryStatus::Undelivered, Some(9), 30))
            .await
            .expect("callback"),
        "B's callback for A's message finds no record"
    );
    assert!(
        b.journal
            .logged_provider_ids(vec!["SM-A1".into()])
            .await
            .expect("read")
            .is_empty()
    );
    let a_records = a.journal.records(id("fall")).await.expect("records");
    assert_eq!(
        codes(&a_records),
        ["accepted", "planned", "planned", "blocked"]
    );
    assert!(
        a_records[0].delivery.is_none(),
        "B's callback changed nothing"
    );
    assert!(matches!(
        a_records[0].state,
        RecordState::Accepted { segments: 1, .. }
    ));
    // The same campaign id in B is B's own.
    let b_fall = campaign("fall", 1, 5_000);
    b.journal
        .create_campaign(b_fall.clone())
        .await
        .expect("the same id in another organisation");
    assert_eq!(b.journal.campaign(id("fall")).await.expect("read"), b_fall);
    b.journal
        .apply(
            id("fall"),
            vec![to(0, sending(1, 40)), to(0, accepted("SM-B1", 41))],
        )
        .await
        .expect("sent");
    assert!(
        a.journal
            .record_delivery(update("SM-A1", DeliveryStatus::Delivered, None, 50))
            .await
            .expect("callback")
    );
    assert!(
        !a.journal
            .record_delivery(update("SM-B1", DeliveryStatus::Delivered, None, 50))
            .await
            .expect("callback")
    );
    let b_records = b.journal.records(id("fall")).await.expect("records");
    assert_eq!(codes(&b_records), ["accepted", "blocked"]);
    assert!(b_records[0].delivery.is_none());
    let a_records = a.journal.records(id("fall")).await.expect("records");
    assert_eq!(
        codes(&a_records),
        ["accepted", "planned", "planned", "blocked"]
    );
    assert_eq!(
        a_records[0].delivery.as_ref().map(|d| &d.status),
        Some(&DeliveryStatus::Delivered)
    );
    let list = |summaries: Vec<sms_core::journal::CampaignSummary>| {
        summaries
            .into_iter()
            .map(|c| (c.id.as_str().to_owned(), c.records))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(a.journal.campaigns().await.expect("list")),
        [("fall".to_owned(), 4)]
    );
    assert_eq!(
        list(b.journal.campaigns().await.expect("list")),
        [("fall".to_owned(), 2)]
    );
    // Each organisation runs its own campaign of the same id, at once.
    let _a_run = a.journal.claim(id("fall")).await.expect("free");
    let _b_run = b
        .journal
        .claim(id("fall"))
        .await
        .expect("another organisation's is free");

    // Alerts.
    seed_alerts(&*a.alerts).await;
    let a_pending = a.alerts.pending().await.expect("read");
    assert!(b.alerts.events().await.expect("read").is_empty());
    assert!(b.alerts.pending().await.expect("read").is_empty());
    assert!(b.alerts.all_alerts().await.expect("read").is_empty());
    assert!(b.alerts.templates().await.expect("read").is_empty());
    assert!(
        b.alerts
            .subscription_history(None)
            .await
            .expect("read")
            .is_empty()
    );
    // B names A's alerts: refused, and A's alerts are untouched.
    let claim = vec![(a_pending[0].id, alert_item(&a_pending[0]))];
    assert!(
        b.alerts
            .claim_batch(t("2026-05-01T14:10:00Z"), claim.clone())
            .await
            .is_err()
    );
    let never = AlertOutcome::Never {
        reason: sms_core::alerts::AlertReason::StaffNeverAlerted,
    };
    assert!(
        b.alerts
            .finish(
                vec![(a_pending[1].id, never.clone())],
                t("2026-05-01T14:10:00Z")
            )
            .await
            .is_err()
    );
    assert_eq!(a.alerts.pending().await.expect("read"), a_pending);
    assert!(b.alerts.open_batches().await.expect("read").is_empty());
    // The same event in B schedules B's own alerts; batches are numbered per organisation.
    assert_eq!(seed_alerts(&*b.alerts).await, 6);
    assert_eq!(b.alerts.pending().await.expect("read").len(), 6);
    let a_batch = a
        .alerts
        .claim_batch(t("2026-05-01T14:10:00Z"), claim)
        .await
        .expect("A claims its own");
    let b_pending = b.alerts.pending().await.expect("read");
    let b_batch = b
        .alerts
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![(b_pending[0].id, alert_item(&b_pending[0]))],
        )
        .await
        .expect("B claims its own");
    assert_eq!(a_batch.campaign_id.as_str(), "alerts-batch-1");
    assert_eq!(b_batch.campaign_id.as_str(), "alerts-batch-1");
    assert_eq!(a.alerts.open_batches().await.expect("read"), vec![a_batch]);
    assert_eq!(b.alerts.open_batches().await.expect("read"), vec![b_batch]);
    assert_eq!(
        b.alerts
            .recent_sends(t("2026-05-01T00:00:00Z"))
            .await
            .expect("read")
            .len(),
        1,
        "A's claim does not count against B's cap"
    );
    b.alerts
        .set_template(AlertKind::ScheduleChanged, "{org_name}: moved.".into())
        .await
        .expect("wording");
    assert_eq!(
        a.alerts
            .templates()
            .await
            .expect("read")
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>(),
        [AlertKind::EvaluationDue]
    );

    // Replies.
    if let (Some(a_replies), Some(b_replies)) = (&a.replies, &b.replies) {
        assert!(
            a_replies
                .record_reply(reply("SM-R1", "STOP", 1_000))
                .await
                .expect("new")
        );
        assert!(b_replies.replies(ms(0)).await.expect("read").is_empty());
        assert!(
            b_replies
                .record_reply(reply("SM-R1", "hello", 2_000))
                .await
                .expect("B's own"),
            "the same message id in another organisation is new there"
        );
        assert_eq!(
            a_replies.replies(ms(0)).await.expect("read"),
            [reply("SM-R1", "STOP", 1_000)]
        );
    }
}
