//! Tests of the store on a real file.

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

#[tokio::test]
async fn opt_outs_survive_reopening_and_the_latest_change_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        store
            .record(change(1, OptOutAction::Stop, 10))
            .await
            .expect("stop");
        store
            .record(change(2, OptOutAction::Stop, 10))
            .await
            .expect("stop");
        store
            .record(change(2, OptOutAction::Start, 20))
            .await
            .expect("start");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store.state(number(1)).await.expect("state"),
        OptOutState::OptedOut {
            since: Timestamp::from_unix_ms(10)
        }
    );
    assert_eq!(
        store.state(number(2)).await.expect("state"),
        OptOutState::OptedIn
    );
    assert_eq!(store.history(number(2)).await.expect("history").len(), 2);
    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.len(), 1);
    assert!(matches!(
        snapshot.state(number(1)),
        OptOutState::OptedOut { .. }
    ));
}

#[tokio::test]
async fn the_journal_keeps_the_frozen_campaign_and_refuses_a_second_send() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("sms.db")).expect("open");
    let c = campaign("fall");
    store.create_campaign(c.clone()).await.expect("create");
    assert!(matches!(
        store.create_campaign(c.clone()).await,
        Err(JournalError::CampaignExists(_))
    ));
    assert_eq!(store.campaign(c.id.clone()).await.expect("read"), c);
    let records = store.records(c.id.clone()).await.expect("records");
    assert_eq!(records[0].state, RecordState::Planned);
    assert!(matches!(records[3].state, RecordState::Blocked { .. }));

    let accepted = RecordState::Accepted {
        provider_id: "SM1".into(),
        segments: 1,
        at: Timestamp::from_unix_ms(30),
    };
    let id = c.id.clone();
    let t = |seq, state: &RecordState| Transition {
        seq,
        state: state.clone(),
    };
    store
        .apply(id.clone(), vec![t(0, &sending(20)), t(0, &accepted)])
        .await
        .expect("send");
    // A batch with one forbidden transition is refused whole.
    let err = store
        .apply(id.clone(), vec![t(1, &sending(40)), t(0, &sending(40))])
        .await
        .expect_err("accepted cannot be sent again");
    assert!(matches!(
        err,
        JournalError::InvalidTransition { seq: 0, .. }
    ));
    let records = store.records(id.clone()).await.expect("records");
    assert_eq!(records[0].state, accepted);
    assert_eq!(
        records[1].state,
        RecordState::Planned,
        "the batch was undone"
    );

    let found = store
        .record_delivery(DeliveryUpdate {
            provider_id: "SM1".into(),
            status: DeliveryStatus::Delivered,
            error_code: None,
            segments: Some(2),
            at: Timestamp::from_unix_ms(50),
        })
        .await
        .expect("callback");
    assert!(found);
    let late = DeliveryUpdate {
        provider_id: "SM1".into(),
        status: DeliveryStatus::Sent,
        error_code: None,
        segments: None,
        at: Timestamp::from_unix_ms(60),
    };
    store.record_delivery(late).await.expect("late callback");
    let records = store.records(id.clone()).await.expect("records");
    let delivery = records[0].delivery.as_ref().expect("a delivery status");
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert!(matches!(
        records[0].state,
        RecordState::Accepted { segments: 2, .. }
    ));
    assert_eq!(store.campaigns().await.expect("list")[0].records, 4);
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
}

#[tokio::test]
async fn one_run_at_a_time_per_campaign_and_a_dropped_claim_frees_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let first = SqliteStore::open(&path).expect("open");
    let second = SqliteStore::open(&path).expect("another handle");
    let id = CampaignId::new("fall").expect("not blank");
    let claim = first.claim(id.clone()).await.expect("free");
    assert!(matches!(
        second.claim(id.clone()).await,
        Err(JournalError::CampaignBusy(_))
    ));
    let other = CampaignId::new("spring").expect("not blank");
    second.claim(other).await.expect("another campaign is free");
    drop(claim);
    second.claim(id).await.expect("free again");
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
async fn replies_are_stored_once_per_message_sid_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sms.db");
    let reply = |sid: &str, segments: u32, at: i64| crate::StoredReply {
        message_sid: sid.to_owned(),
        from: "+12125550100".into(),
        to: "+15005550006".into(),
        body: "Can I bring my sister to class?".into(),
        segments,
        class: sms_core::KeywordClass::Other,
        keyword: None,
        review: false,
        received_at: Timestamp::from_unix_ms(at),
    };
    {
        let store = SqliteStore::open(&path).expect("open");
        store.check().await.expect("healthy");
        assert!(
            store
                .record_reply(reply("SM1", 2, 1_000))
                .await
                .expect("new")
        );
        // Twilio redelivers: nothing new, the first row stands.
        assert!(
            !store
                .record_reply(reply("SM1", 9, 5_000))
                .await
                .expect("known")
        );
        assert!(
            store
                .record_reply(reply("SM2", 1, 2_000))
                .await
                .expect("new")
        );
    }
    let store = SqliteStore::open(&path).expect("reopen");
    let all = store
        .replies(Timestamp::from_unix_ms(0))
        .await
        .expect("read");
    assert_eq!(
        all.iter()
            .map(|r| (r.message_sid.as_str(), r.segments))
            .collect::<Vec<_>>(),
        vec![("SM1", 2), ("SM2", 1)]
    );
    assert_eq!(all[0], reply("SM1", 2, 1_000));
    let later = store
        .replies(Timestamp::from_unix_ms(1_500))
        .await
        .expect("read");
    assert_eq!(later.len(), 1);
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
