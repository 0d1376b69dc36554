//! Tests of what is SQLite's own: the file's schema and its migration, the writer thread, the
//! run locks, durability settings. The store contracts every store keeps (opt-out rule,
//! journal, alerts, replies, organisations) are the conformance suite's
//! (`tests/src/conformance.rs`, run on SQLite by `tests/tests/conformance.rs`).

use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, DeliveryUpdate, Journal, JournalError, RecordState,
    Transition,
};
use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutState, OptOutStore};
use sms_core::{
    BlockReason, DeliveryStatus, Encoding, PhoneNumber, PreviewItem, PreviewOutcome, RecordId,
    Timestamp,
};

use crate::SqliteStore;
use sms_core::Org;

fn number(i: u64) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1212555{:04}", 100 + i)).expect("valid test number")
}

fn change(n: u64, action: OptOutAction, at: i64) -> OptOutChange {
    OptOutChange {
        number: number(n),
        action,
        at: Timestamp::from_unix_ms(at),
        source: ChangeSource::Inbound,
        message_sid: Some(format!("SM{n}")),
        body: Some("STOP".into()),
    }
}

fn campaign(id: &str) -> Campaign {
    let eligible = |i: u64| PreviewItem {
        record_id: RecordId::new(format!("C-{i}")),
        kind: sms_core::RecordKind::Client,
        name: format!("Client {i}"),
        mobile: number(i).to_string(),
        time_zone: None,
        outcome: PreviewOutcome::Eligible {
            number: number(i),
            body: format!("Hello {i}"),
            encoding: Encoding::Gsm7,
            segments: 1,
        },
    };
    let mut items: Vec<PreviewItem> = (0..3).map(eligible).collect();
    items.push(PreviewItem {
        outcome: PreviewOutcome::Blocked {
            reason: BlockReason::NoMobile,
        },
        ..eligible(9)
    });
    Campaign {
        id: CampaignId::new(id).expect("not blank"),
        name: "Test".into(),
        created_at: Timestamp::from_unix_ms(1_000),
        template: "Hello {record_id}".into(),
        settings: CampaignSettings::default(),
        items,
    }
}

fn sending(at: i64) -> RecordState {
    RecordState::Sending {
        attempt: 1,
        at: Timestamp::from_unix_ms(at),
    }
}

#[test]
fn many_threads_write_and_read_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("sms.db")).expect("open");
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    for i in 0..50 {
                        let n = t * 50 + i;
                        let stop = change(n, OptOutAction::Stop, 1);
                        store.record(stop).await.expect("write");
                        assert!(matches!(
                            store.state(number(n)).await.expect("read"),
                            OptOutState::OptedOut { .. }
                        ));
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(rt.block_on(store.snapshot()).expect("snapshot").len(), 400);
    rt.block_on(store.check()).expect("healthy after the storm");
}

#[test]
fn the_write_connection_promises_durability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = rusqlite::Connection::open(dir.path().join("sms.db")).expect("open");
    crate::configure(&conn).expect("configure");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");
    assert_eq!(
        (mode.as_str(), synchronous),
        ("wal", 2),
        "WAL with synchronous=FULL"
    );
}

#[tokio::test]
async fn two_organisations_run_a_campaign_of_the_same_id_at_once_one_run_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let default = SqliteStore::open(&path).expect("open");
    let acme = SqliteStore::open_org(&path, Org::new("acme").expect("valid")).expect("open");
    let acme_again = SqliteStore::open_org(&path, Org::new("acme").expect("valid")).expect("open");
    assert_eq!(default.org().as_str(), "default");
    assert_eq!(acme.org().as_str(), "acme");
    let id = CampaignId::new("fall").expect("not blank");
    let _default_run = default.claim(id.clone()).await.expect("free");
    let _acme_run = acme
        .claim(id.clone())
        .await
        .expect("another organisation's is free");
    assert!(matches!(
        acme_again.claim(id.clone()).await,
        Err(JournalError::CampaignBusy(_))
    ));
    // `default` keeps the lock name of the builds before organisations, so a run started by an
    // older build still holds off a resume by this one.
    let mut locks: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".run-"))
        .collect();
    locks.sort();
    assert_eq!(locks, ["sms.db.run-acme@fall.lock", "sms.db.run-fall.lock"]);
}

/// An old schema (`version`) as a previous build wrote it: its migrations (append only, so
/// still the first `version` of `MIGRATIONS`; none of the first four has a step in Rust).
fn old_schema_file(path: &std::path::Path, version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        .expect("versions");
    for (i, sql) in crate::schema::MIGRATIONS[..version].iter().enumerate() {
        conn.execute_batch(sql).expect("an old migration");
        conn.execute("INSERT INTO schema_version VALUES (?1)", [i as i64 + 1])
            .expect("version");
    }
    conn
}

/// Schemas 3 and 4 kept each alert as its `ScheduledAlert` in JSON (`detail`): written here
/// from the alerts read back from a current file, the way those builds wrote them.
fn write_old_alert_details(old: &rusqlite::Connection, alerts: &[sms_core::alerts::StoredAlert]) {
    for stored in alerts {
        let detail = serde_json::to_string(&stored.alert).expect("serialises");
        let updated = old
            .execute(
                "UPDATE alerts SET detail = ?1 WHERE id = ?2",
                rusqlite::params![detail, stored.id as i64],
            )
            .expect("detail");
        assert_eq!(updated, 1);
    }
}

/// Schemas 3 and 4 kept each sign-up change in JSON (`detail`): written here, in id order,
/// from the history read back from a current file (in the same order).
fn write_old_subscription_details(
    old: &rusqlite::Connection,
    history: &[sms_core::alerts::SubscriptionChange],
) {
    let ids: Vec<i64> = old
        .prepare("SELECT id FROM alert_subscriptions ORDER BY id")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("ids");
    assert_eq!(ids.len(), history.len());
    for (id, change) in ids.iter().zip(history) {
        let detail = serde_json::to_string(change).expect("serialises");
        old.execute(
            "UPDATE alert_subscriptions SET detail = ?1 WHERE id = ?2",
            rusqlite::params![detail, id],
        )
        .expect("detail");
    }
}

#[tokio::test]
async fn a_schema_3_file_migrates_its_rows_to_organisation_default_and_reads_them_back() {
    use sms_core::alerts::{
        AlertConfig, AlertEvent, AlertStore, AlertTemplates, EventId, SubscriptionAction,
        SubscriptionChange, SubscriptionSource, plan_event,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // Rows written through the API (real JSON in every detail column) into a current file...
    let native_path = dir.path().join("native.db");
    let native = SqliteStore::open(&native_path).expect("open");
    native
        .record(change(1, OptOutAction::Stop, 10))
        .await
        .expect("stop");
    native
        .record(change(2, OptOutAction::Stop, 10))
        .await
        .expect("stop");
    native
        .record(change(2, OptOutAction::Start, 20))
        .await
        .expect("start");
    let c = campaign("fall");
    native.create_campaign(c.clone()).await.expect("create");
    let accepted = RecordState::Accepted {
        provider_id: "SM1".into(),
        segments: 1,
        at: Timestamp::from_unix_ms(30),
    };
    native
        .apply(
            c.id.clone(),
            vec![
                Transition {
                    seq: 0,
                    state: sending(20),
                },
                Transition {
                    seq: 0,
                    state: accepted,
                },
            ],
        )
        .await
        .expect("sent");
    native
        .record_delivery(DeliveryUpdate {
            provider_id: "SM1".into(),
            status: DeliveryStatus::Delivered,
            error_code: None,
            segments: None,
            at: Timestamp::from_unix_ms(50),
        })
        .await
        .expect("callback");
    native
        .record_reply(crate::StoredReply {
            message_sid: "SM9".into(),
            from: number(1).to_string(),
            to: "+15005550006".into(),
            body: "STOP".into(),
            segments: 1,
            class: sms_core::KeywordClass::OptOut,
            keyword: Some("STOP".into()),
            review: false,
            received_at: Timestamp::from_unix_ms(10),
        })
        .await
        .expect("reply");
    let mut roster = Vec::new();
    for i in 0..2 {
        roster.push(sms_core::Recipient {
            record_id: RecordId::new(format!("C-{i}")),
            kind: sms_core::RecipientKind::Client {
                permitted_marketing_methods: sms_core::PermittedMarketingMethods::new("Alerts"),
            },
            first_name: "Ana".into(),
            last_name: "Lopez".into(),
            mobile: number(i).to_string(),
            time_zone: None,
            fields: [("course_title".to_owned(), "Welding".to_owned())].into(),
        });
        native
            .record_subscription(SubscriptionChange {
                record_id: RecordId::new(format!("C-{i}")),
                kind: sms_core::AlertKind::ScheduleChanged,
                action: SubscriptionAction::Subscribe,
                number: Some(number(i)),
                at: Timestamp::from_unix_ms(5),
                source: SubscriptionSource::Myaccount,
                wording: "Text me alerts.".into(),
            })
            .await
            .expect("sign-up");
    }
    let event = AlertEvent {
        id: EventId::new("SC-1").expect("id"),
        kind: sms_core::AlertKind::ScheduleChanged,
        section: "WELD-101".into(),
        section_time_zone: None,
        starts_at: None,
        old: Some("Room 12".into()),
        new: Some("Room 204".into()),
        hold_until: None,
        reason: None,
        program_year: None,
        received_at: Timestamp::from_unix_ms(1_000),
    };
    let planned = plan_event(
        &event,
        &roster,
        &AlertConfig::default(),
        &AlertTemplates::default(),
    )
    .expect("plans");
    native.record_event(event, planned).await.expect("event");
    let first = native.pending().await.expect("pending").remove(0);
    let item = c.items[0].clone();
    native
        .claim_batch(Timestamp::from_unix_ms(2_000), vec![(first.id, item)])
        .await
        .expect("claims");
    native
        .set_template(
            sms_core::AlertKind::ScheduleChanged,
            "{org_name}: moved.".into(),
        )
        .await
        .expect("wording");

    // ...copied into a schema-3 file in the old columns, the way the previous build kept them.
    let old_path = dir.path().join("old.db");
    let old = old_schema_file(&old_path, 3);
    old.execute(
        "ATTACH DATABASE ?1 AS n",
        [native_path.to_str().expect("utf-8")],
    )
    .expect("attach");
    old.execute_batch(
        "INSERT INTO main.opt_out_changes SELECT id, number, action, at_ms, source, message_sid, body FROM n.opt_out_changes;
         INSERT INTO main.campaigns SELECT id, name, created_at_ms, template, settings FROM n.campaigns;
         INSERT INTO main.records SELECT campaign_id, seq, item, state, detail, provider_id, updated_at_ms FROM n.records;
         INSERT INTO main.deliveries SELECT provider_id, status, error_code, at_ms FROM n.deliveries;
         INSERT INTO main.replies SELECT message_sid, from_number, to_number, body, segments, class, keyword, review, received_at_ms FROM n.replies;
         INSERT INTO main.alert_subscriptions SELECT id, record_id, kind, '' FROM n.alert_subscriptions;
         INSERT INTO main.alert_events SELECT seq, id, kind, section, detail FROM n.alert_events;
         INSERT INTO main.alert_batches SELECT id, campaign_id, claimed_at_ms FROM n.alert_batches;
         INSERT INTO main.alerts SELECT id, event_id, record_id, '', status, batch_id, seq, item, number, outcome, outcome_code, done_at_ms FROM n.alerts;
         INSERT INTO main.alert_templates SELECT kind, body, updated_at_ms FROM n.alert_templates;
         DETACH DATABASE n;",
    )
    .expect("schema-3 rows");
    write_old_alert_details(&old, &native.all_alerts().await.unwrap());
    write_old_subscription_details(&old, &native.subscription_history(None).await.unwrap());
    drop(old);

    let migrated = SqliteStore::open(&old_path).expect("migrates");
    let version: u32 = rusqlite::Connection::open(&old_path)
        .expect("open")
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, crate::SCHEMA_VERSION);
    let orgs: Vec<String> = {
        let conn = rusqlite::Connection::open(&old_path).expect("open");
        let mut statement = conn
            .prepare(
                "SELECT DISTINCT org FROM (
                   SELECT org FROM opt_out_changes UNION ALL SELECT org FROM campaigns
                   UNION ALL SELECT org FROM records UNION ALL SELECT org FROM deliveries
                   UNION ALL SELECT org FROM replies UNION ALL SELECT org FROM alert_subscriptions
                   UNION ALL SELECT org FROM alert_events UNION ALL SELECT org FROM alert_batches
                   UNION ALL SELECT org FROM alerts UNION ALL SELECT org FROM alert_templates)",
            )
            .expect("query");
        statement
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("orgs")
    };
    assert_eq!(orgs, ["default"], "every old row is organisation default");

    // Everything reads back as the current build wrote it.
    assert_eq!(
        migrated.snapshot().await.unwrap(),
        native.snapshot().await.unwrap()
    );
    assert_eq!(
        migrated.history(number(2)).await.unwrap(),
        native.history(number(2)).await.unwrap()
    );
    assert_eq!(
        migrated.campaigns().await.unwrap(),
        native.campaigns().await.unwrap()
    );
    assert_eq!(migrated.campaign(c.id.clone()).await.unwrap(), c);
    let records = migrated.records(c.id.clone()).await.unwrap();
    assert_eq!(records, native.records(c.id.clone()).await.unwrap());
    assert_eq!(
        records[0].delivery.as_ref().map(|d| d.status.clone()),
        Some(DeliveryStatus::Delivered)
    );
    let since = Timestamp::from_unix_ms(0);
    assert_eq!(
        migrated.replies(since).await.unwrap(),
        native.replies(since).await.unwrap()
    );
    assert_eq!(
        migrated.subscription_history(None).await.unwrap(),
        native.subscription_history(None).await.unwrap()
    );
    assert_eq!(
        migrated.events().await.unwrap(),
        native.events().await.unwrap()
    );
    assert_eq!(
        migrated.all_alerts().await.unwrap(),
        native.all_alerts().await.unwrap()
    );
    assert_eq!(
        migrated.open_batches().await.unwrap(),
        native.open_batches().await.unwrap()
    );
    assert_eq!(migrated.recent_sends(since).await.unwrap().len(), 1);
    assert_eq!(
        migrated.templates().await.unwrap(),
        native.templates().await.unwrap()
    );
    // It goes on where it stopped: the next batch is number 2, the accepted record stays.
    let second = migrated.pending().await.unwrap().remove(0);
    let batch = migrated
        .claim_batch(
            Timestamp::from_unix_ms(3_000),
            vec![(second.id, c.items[1].clone())],
        )
        .await
        .expect("claims");
    assert_eq!(batch.campaign_id.as_str(), "alerts-batch-2");
    assert!(
        migrated
            .apply(
                c.id.clone(),
                vec![Transition {
                    seq: 0,
                    state: sending(40)
                }]
            )
            .await
            .is_err()
    );
    // Another organisation of the migrated file sees none of it.
    let other = SqliteStore::open_org(&old_path, Org::new("other").expect("valid")).expect("open");
    assert!(other.snapshot().await.unwrap().is_empty());
    assert!(other.campaigns().await.unwrap().is_empty());
    assert!(other.replies(since).await.unwrap().is_empty());
    assert!(other.all_alerts().await.unwrap().is_empty());
    assert!(other.templates().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_campaign_stored_before_quiet_hours_resumes_unchanged_at_night() {
    use std::sync::Arc;

    use sms_core::dispatch::{Clock, DispatchOptions, Dispatcher};
    use sms_core::{CancellationToken, SimulatedProvider};

    struct At(Timestamp);
    impl Clock for At {
        fn now(&self) -> Timestamp {
            self.0
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let id = CampaignId::new("old").expect("valid");
    {
        let store = SqliteStore::open(&path).expect("open");
        store
            .create_campaign(campaign("old"))
            .await
            .expect("create");
    }
    // The row exactly as the previous version wrote it: settings without `quiet_hours`, items
    // without `time_zone`.
    let old_settings = r#"{"rate":{"limit":"messages_per_second","per_second":1.0},"concurrency":4,"once_per_number":false,"budget_units":null,"price_per_segment":null,"provider":null,"provider_identity":null}"#;
    let old_item = r#"{"record_id":"C-0","kind":"client","name":"Client 0","mobile":"+12125550100","outcome":"eligible","number":"+12125550100","body":"Hello 0","encoding":"GSM-7","segments":1}"#;
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute(
            "UPDATE campaigns SET settings = ?1 WHERE id = 'old'",
            [old_settings],
        )
        .expect("old settings");
        conn.execute(
            "UPDATE records SET item = ?1 WHERE campaign_id = 'old' AND seq = 0",
            [old_item],
        )
        .expect("old item");
    }
    let store = Arc::new(SqliteStore::open(&path).expect("reopen"));
    let stored = store
        .campaign(id.clone())
        .await
        .expect("an old campaign reads");
    assert_eq!(stored.settings.quiet_hours, None);
    assert_eq!(stored.items[0].time_zone, None);
    assert_eq!(stored.items[0], campaign("old").items[0]);

    // 03:00 in New York: a campaign of the previous version had no quiet hours, and a resume
    // sends as it always did.
    let night = Timestamp::parse("2026-07-02T07:00:00Z").expect("valid");
    let provider = Arc::new(SimulatedProvider::new());
    let dispatcher = Dispatcher::new(provider.clone(), store.clone(), store.clone())
        .with_clock(Arc::new(At(night)))
        .with_options(DispatchOptions {
            rate: Some(sms_core::RateLimit::Unlimited),
            max_campaign_age_ms: None,
            ..DispatchOptions::default()
        });
    let summary = dispatcher
        .run(id, CancellationToken::new())
        .await
        .expect("runs");
    assert!(summary.report.is_complete());
    assert_eq!(summary.report.totals.accepted, 3);
    assert_eq!(summary.report.totals.held, 0);
    assert_eq!(summary.report.held, None);
    assert_eq!(provider.sent().len(), 3);
}

/// Schema 4 kept each alert as one JSON document; schema 5 keeps it in columns, with what the
/// alerts of an event share in one time zone stored once. A schema-4 file of two organisations
/// (pending, claimed and finished alerts; clients in two zones, staff, a program year, a
/// waitlist hold) migrates with every alert reading back as it was, its id and state kept, and
/// goes on from there.
#[tokio::test]
async fn a_schema_4_file_migrates_its_alerts_to_columns_and_reads_them_back() {
    use sms_core::alerts::{
        AlertConfig, AlertEvent, AlertOutcome, AlertReason, AlertStore, AlertTemplates, EventId,
        plan_event,
    };
    use sms_core::{AlertKind, PermittedMarketingMethods, ProgramYear, Recipient, RecipientKind};

    let dir = tempfile::tempdir().expect("temp dir");
    let native_path = dir.path().join("native.db");
    let acme = Org::new("acme").expect("valid");
    let stores = [
        SqliteStore::open(&native_path).expect("open"),
        SqliteStore::open_org(&native_path, acme.clone()).expect("open"),
    ];
    let zones = [Some("America/Chicago"), Some("America/Los_Angeles"), None];
    let roster: Vec<Recipient> = (0..6u64)
        .map(|i| Recipient {
            record_id: RecordId::new(format!("C-{i}")),
            kind: if i == 5 {
                RecipientKind::Staff {
                    permitted_sms_text: true,
                }
            } else {
                RecipientKind::Client {
                    permitted_marketing_methods: PermittedMarketingMethods::new("Email, Alerts"),
                }
            },
            first_name: "Ana".into(),
            last_name: format!("Lopez {i}"),
            mobile: number(i).to_string(),
            time_zone: zones[i as usize % zones.len()].map(str::to_owned),
            fields: if i % 2 == 0 {
                [("course_title".to_owned(), "Welding".to_owned())].into()
            } else {
                Default::default()
            },
        })
        .collect();
    let event = |id: &str, kind: AlertKind| AlertEvent {
        id: EventId::new(id).expect("id"),
        kind,
        section: "WELD-101".into(),
        section_time_zone: None,
        starts_at: Some(Timestamp::from_unix_ms(1_900_000_000_000)),
        old: None,
        new: None,
        hold_until: Some(Timestamp::from_unix_ms(1_800_000_000_000)),
        reason: None,
        program_year: ProgramYear::new("2026-2027"),
        received_at: Timestamp::from_unix_ms(1_000),
    };
    let (config, templates) = (AlertConfig::default(), AlertTemplates::default());
    for (n, store) in stores.iter().enumerate() {
        for (i, r) in roster.iter().enumerate() {
            store
                .record_subscription(sms_core::alerts::SubscriptionChange {
                    record_id: r.record_id.clone(),
                    kind: AlertKind::CourseStart,
                    action: sms_core::alerts::SubscriptionAction::Subscribe,
                    number: Some(number(i as u64)),
                    at: Timestamp::from_unix_ms(500 + n as i64),
                    source: sms_core::alerts::SubscriptionSource::Myaccount,
                    wording: "Text me alerts.".into(),
                })
                .await
                .expect("sign-up");
        }
        store
            .record_subscription(sms_core::alerts::SubscriptionChange {
                record_id: roster[1].record_id.clone(),
                kind: AlertKind::CourseStart,
                action: sms_core::alerts::SubscriptionAction::Unsubscribe,
                number: None,
                at: Timestamp::from_unix_ms(600),
                source: sms_core::alerts::SubscriptionSource::Staff,
                wording: "Signed off by phone.".into(),
            })
            .await
            .expect("sign-off");
        // The same event id in both organisations: two events.
        let start = event("START-1", AlertKind::CourseStart);
        let planned = plan_event(&start, &roster, &config, &templates).expect("plans");
        store.record_event(start, planned).await.expect("event");
        let hold = event("WAIT-1", AlertKind::WaitlistSlotOpen);
        let planned = plan_event(&hold, &roster[..1], &config, &templates).expect("plans");
        store.record_event(hold, planned).await.expect("event");
        let pending = store.pending().await.expect("pending");
        store
            .finish(
                vec![(
                    pending[1].id,
                    AlertOutcome::Never {
                        reason: AlertReason::StaffNeverAlerted,
                    },
                )],
                Timestamp::from_unix_ms(2_000),
            )
            .await
            .expect("finished");
        store
            .claim_batch(
                Timestamp::from_unix_ms(3_000),
                vec![(pending[0].id, campaign("x").items[0].clone())],
            )
            .await
            .expect("claims");
    }

    // Copied into a schema-4 file, each alert's detail in JSON as that build wrote it.
    let old_path = dir.path().join("old.db");
    let old = old_schema_file(&old_path, 4);
    old.execute(
        "ATTACH DATABASE ?1 AS n",
        [native_path.to_str().expect("utf-8")],
    )
    .expect("attach");
    old.execute_batch(
        "INSERT INTO main.alert_events SELECT * FROM n.alert_events;
         INSERT INTO main.alert_batches SELECT * FROM n.alert_batches;
         INSERT INTO main.alerts SELECT id, org, event_id, record_id, '', status, batch_id, seq,
                item, number, outcome, outcome_code, done_at_ms FROM n.alerts;
         INSERT INTO main.alert_subscriptions SELECT id, org, record_id, kind, ''
                FROM n.alert_subscriptions;
         DETACH DATABASE n;",
    )
    .expect("schema-4 rows");
    let mut history = Vec::new();
    for store in &stores {
        write_old_alert_details(&old, &store.all_alerts().await.unwrap());
        history.extend(store.subscription_history(None).await.unwrap());
    }
    // Both organisations' sign-ups in id order (the first organisation's were written first).
    write_old_subscription_details(&old, &history);
    drop(old);

    let migrated = [
        SqliteStore::open(&old_path).expect("migrates"),
        SqliteStore::open_org(&old_path, acme).expect("open"),
    ];
    let conn = rusqlite::Connection::open(&old_path).expect("open");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(count("SELECT MAX(version) FROM schema_version"), 5);
    assert_eq!(
        count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'alerts_v4'"),
        0
    );
    // Per organisation: the course start in three zones (two named, the organisation's), the
    // waitlist hold in one: what they share is kept four times, not once per alert.
    assert_eq!(count("SELECT COUNT(*) FROM alerts"), 14);
    assert_eq!(count("SELECT COUNT(*) FROM alert_values"), 8);
    let since = Timestamp::from_unix_ms(0);
    for (before, after) in stores.iter().zip(&migrated) {
        let all = after.all_alerts().await.unwrap();
        assert_eq!(all, before.all_alerts().await.unwrap());
        assert_eq!(all.len(), 7);
        assert_eq!(
            after.pending().await.unwrap(),
            before.pending().await.unwrap()
        );
        assert_eq!(
            after.open_batches().await.unwrap(),
            before.open_batches().await.unwrap()
        );
        assert_eq!(after.recent_sends(since).await.unwrap().len(), 1);
        let signed = after.subscription_history(None).await.unwrap();
        assert_eq!(signed, before.subscription_history(None).await.unwrap());
        assert_eq!(signed.len(), 7);
        assert_eq!(
            after
                .subscription_history(Some(roster[1].record_id.clone()))
                .await
                .unwrap()
                .len(),
            2
        );
        // It goes on: the same event again schedules nothing new; a new one is read back.
        let start = event("START-1", AlertKind::CourseStart);
        let planned = plan_event(&start, &roster, &config, &templates).expect("plans");
        let again = after.record_event(start, planned).await.expect("event");
        assert_eq!((again.scheduled, again.duplicates), (0, 6));
        let change = AlertEvent {
            old: Some("Room 12".into()),
            new: Some("Room 204".into()),
            ..event("MOVE-1", AlertKind::ScheduleChanged)
        };
        let planned = plan_event(&change, &roster, &config, &templates).expect("plans");
        after
            .record_event(change, planned.clone())
            .await
            .expect("event");
        let pending = after.pending().await.unwrap();
        let read: Vec<_> = pending[pending.len() - 6..]
            .iter()
            .map(|s| s.alert.clone())
            .collect();
        assert_eq!(read, planned);
    }
}
