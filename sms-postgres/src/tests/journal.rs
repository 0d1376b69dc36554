//! The journal on a real server: the frozen campaign, the transition rule under concurrent
//! writers, delivery statuses, the run claim, organisations kept apart.

use std::time::{Duration, Instant};

use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, DeliveryUpdate, Journal, JournalError, RecordState,
    SendFailure, Transition,
};
use sms_core::{
    BlockReason, DeliveryStatus, Encoding, PreviewItem, PreviewOutcome, RecordId, Timestamp,
};

use super::{fresh, number, open};

pub(crate) fn campaign(id: &str, records: u64) -> Campaign {
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
    let mut items: Vec<PreviewItem> = (0..records).map(eligible).collect();
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

fn accepted(provider_id: &str) -> RecordState {
    RecordState::Accepted {
        provider_id: provider_id.into(),
        segments: 1,
        at: Timestamp::from_unix_ms(30),
    }
}

fn t(seq: u32, state: &RecordState) -> Transition {
    Transition {
        seq,
        state: state.clone(),
    }
}

#[tokio::test]
async fn the_journal_keeps_the_frozen_campaign_and_refuses_a_second_send() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("fall", 3);
    store.create_campaign(c.clone()).await.expect("create");
    assert!(matches!(
        store.create_campaign(c.clone()).await,
        Err(JournalError::CampaignExists(_))
    ));
    let store = open(&db, "default").await; // as another server would read it
    assert_eq!(store.campaign(c.id.clone()).await.expect("read"), c);
    let records = store.records(c.id.clone()).await.expect("records");
    assert_eq!(records[0].state, RecordState::Planned);
    assert!(matches!(records[3].state, RecordState::Blocked { .. }));

    let id = c.id.clone();
    store
        .apply(id.clone(), vec![t(0, &sending(20)), t(0, &accepted("SM1"))])
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
    assert_eq!(records[0].state, accepted("SM1"));
    assert_eq!(
        records[1].state,
        RecordState::Planned,
        "the batch was undone"
    );

    assert!(matches!(
        store.apply(id.clone(), vec![t(99, &sending(1))]).await,
        Err(JournalError::UnknownRecord { seq: 99, .. })
    ));
    let nowhere = CampaignId::new("nowhere").expect("id");
    assert!(matches!(
        store.apply(nowhere.clone(), vec![t(0, &sending(1))]).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(matches!(
        store.records(nowhere.clone()).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(matches!(
        store.campaign(nowhere).await,
        Err(JournalError::UnknownCampaign(_))
    ));

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
    let unknown = DeliveryUpdate {
        provider_id: "SM-not-ours".into(),
        status: DeliveryStatus::Failed,
        error_code: Some(30003),
        segments: None,
        at: Timestamp::from_unix_ms(70),
    };
    assert!(!store.record_delivery(unknown).await.expect("callback"));
    let records = store.records(id.clone()).await.expect("records");
    let delivery = records[0].delivery.as_ref().expect("a delivery status");
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert!(matches!(
        records[0].state,
        RecordState::Accepted { segments: 2, .. }
    ));
    let listed = store.campaigns().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].records, 4);
    assert_eq!(
        store
            .logged_provider_ids(vec!["SM1".into(), "SM2".into()])
            .await
            .expect("logged"),
        ["SM1".to_owned()].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_never_take_an_accepted_record_back_to_sending() {
    let Some((db, first)) = fresh("default").await else {
        return;
    };
    let second = open(&db, "default").await;
    first
        .create_campaign(campaign("race", 40))
        .await
        .expect("create");
    let id = CampaignId::new("race").expect("id");
    for seq in 0..40 {
        first
            .apply(id.clone(), vec![t(seq, &sending(1))])
            .await
            .expect("sending");
    }
    // For every record at once: one server accepts it, the other (a stale resume) tries to
    // defer it and send it again. Whatever the order, an accepted record stays accepted.
    let mut tasks = Vec::new();
    for (w, store) in [first.clone(), second.clone()].into_iter().enumerate() {
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for seq in 0..40u32 {
                let result = if w == 0 {
                    store
                        .apply(id.clone(), vec![t(seq, &accepted(&format!("SM{seq}")))])
                        .await
                } else {
                    store
                        .apply(
                            id.clone(),
                            vec![
                                t(
                                    seq,
                                    &RecordState::Deferred {
                                        failure: SendFailure {
                                            class: "try_later".into(),
                                            code: None,
                                            message: "busy".into(),
                                        },
                                        at: Timestamp::from_unix_ms(2),
                                    },
                                ),
                                t(
                                    seq,
                                    &RecordState::Sending {
                                        attempt: 2,
                                        at: Timestamp::from_unix_ms(2),
                                    },
                                ),
                            ],
                        )
                        .await
                };
                match result {
                    Ok(()) => {}
                    Err(JournalError::InvalidTransition { .. }) => refused += 1,
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            refused
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    for entry in first.records(id.clone()).await.expect("records") {
        if entry.seq == 40 {
            continue; // the blocked record
        }
        match &entry.state {
            // Accepted first: the resend was refused. Or resent first (attempt 2), then the
            // first answer accepted it: sending -> accepted is legal; never accepted -> sending.
            RecordState::Accepted { provider_id, .. } => {
                let provider_id: &String = provider_id;
                assert_eq!(
                    provider_id,
                    &format!("SM{}", entry.seq),
                    "record {}",
                    entry.seq
                );
            }
            other => panic!("record {}: {other:?}", entry.seq),
        }
    }
}

#[tokio::test]
async fn one_run_at_a_time_per_campaign_and_a_dropped_claim_frees_it() {
    let Some((db, first)) = fresh("default").await else {
        return;
    };
    let second = open(&db, "default").await; // another server
    let id = CampaignId::new("fall").expect("not blank");
    let claim = first.claim(id.clone()).await.expect("free");
    assert!(matches!(
        second.claim(id.clone()).await,
        Err(JournalError::CampaignBusy(_))
    ));
    assert!(matches!(
        first.claim(id.clone()).await,
        Err(JournalError::CampaignBusy(_))
    ));
    let other = CampaignId::new("spring").expect("not blank");
    second.claim(other).await.expect("another campaign is free");
    // The same campaign name in another organisation is another campaign.
    let elsewhere = open(&db, "hillcrest").await;
    elsewhere
        .claim(id.clone())
        .await
        .expect("another organisation's campaign");
    drop(claim);
    // Freed at once for this process (it waits for its own unlock)...
    let again = first.claim(id.clone()).await.expect("free again");
    drop(again);
    // ... and for another server as soon as the unlock reached the database.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match second.claim(id.clone()).await {
            Ok(_) => break,
            Err(JournalError::CampaignBusy(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("still not free: {other}"),
        }
    }
}

#[tokio::test]
async fn a_claim_dies_with_its_session() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let id = CampaignId::new("crash").expect("id");
    let claim = store.claim(id.clone()).await.expect("free");
    // Another process (here: a session outside the store, in the same database) finds the
    // campaign's lock taken...
    let key = store.lock_key("claim", id.as_str());
    let admin = db.admin().await;
    let try_lock = async || -> bool {
        let locked: bool = admin
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .expect("try")
            .get(0);
        if locked {
            admin
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .expect("unlock");
        }
        locked
    };
    assert!(!try_lock().await, "the claim holds the lock");
    // ... until the server ends the claim's session, as it does when the process holding it
    // dies.
    assert!(db.terminate_sessions().await >= 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !try_lock().await {
        assert!(Instant::now() < deadline, "the claim outlived its session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(claim);
}

#[tokio::test]
async fn one_organisation_never_reads_or_changes_another_s_campaigns() {
    let Some((db, riverside)) = fresh("riverside").await else {
        return;
    };
    let hillcrest = open(&db, "hillcrest").await;
    let c = campaign("fall", 2);
    riverside.create_campaign(c.clone()).await.expect("create");
    riverside
        .apply(
            c.id.clone(),
            vec![t(0, &sending(1)), t(0, &accepted("SM7"))],
        )
        .await
        .expect("send");
    assert!(hillcrest.campaigns().await.expect("list").is_empty());
    assert!(matches!(
        hillcrest.campaign(c.id.clone()).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(matches!(
        hillcrest.records(c.id.clone()).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(matches!(
        hillcrest.apply(c.id.clone(), vec![t(1, &sending(1))]).await,
        Err(JournalError::UnknownCampaign(_))
    ));
    assert!(
        hillcrest
            .logged_provider_ids(vec!["SM7".into()])
            .await
            .expect("logged")
            .is_empty()
    );
    let callback = DeliveryUpdate {
        provider_id: "SM7".into(),
        status: DeliveryStatus::Delivered,
        error_code: None,
        segments: Some(3),
        at: Timestamp::from_unix_ms(5),
    };
    assert!(!hillcrest.record_delivery(callback).await.expect("callback"));
    // The same id is free in the other organisation, and the first one's is untouched.
    hillcrest
        .create_campaign(campaign("fall", 1))
        .await
        .expect("its own campaign of the same id");
    let records = riverside.records(c.id.clone()).await.expect("records");
    assert_eq!(records.len(), 3);
    assert!(records[0].delivery.is_none());
    assert!(matches!(
        records[0].state,
        RecordState::Accepted { segments: 1, .. }
    ));
    assert_eq!(records[1].state, RecordState::Planned);
}

#[tokio::test]
async fn a_large_campaign_is_stored_whole() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("big", 5_000);
    store.create_campaign(c.clone()).await.expect("create");
    let records = store.records(c.id.clone()).await.expect("records");
    assert_eq!(records.len(), 5_001);
    assert!(records.iter().enumerate().all(|(i, r)| r.seq as usize == i));
    assert_eq!(store.campaign(c.id).await.expect("read").items, c.items);
}

#[tokio::test]
async fn each_record_carries_its_number_for_leasing_by_number() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("numbers", 3);
    store.create_campaign(c).await.expect("create");
    let client = store.conn().await.expect("connection");
    let rows = client
        .query(
            "SELECT seq, number FROM sms_records WHERE org = $1 AND campaign_id = 'numbers'
             ORDER BY seq",
            &[&store.org_str()],
        )
        .await
        .expect("rows");
    let numbers: Vec<Option<i64>> = rows.iter().map(|row| row.get(1)).collect();
    let expected: Vec<Option<i64>> = (0..3)
        .map(|i| Some(crate::optout::number_key(number(i))))
        .chain([None]) // the blocked record has no number to send to
        .collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn two_schemas_of_one_database_do_not_share_claims() {
    // Advisory locks are per database: the key must name the schema, or two deployments
    // sharing a database (and these tests, a schema each) would block each other's runs.
    let Some((_a, first)) = fresh("default").await else {
        return;
    };
    let Some((_b, second)) = fresh("default").await else {
        return;
    };
    let id = CampaignId::new("same-name").expect("id");
    let _one = first
        .claim(id.clone())
        .await
        .expect("free in the first schema");
    let _two = second.claim(id).await.expect("free in the second schema");
}

#[tokio::test]
async fn a_claim_cancelled_half_way_leaves_the_campaign_free() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    let id = CampaignId::new("cancelled").expect("id");
    store.check().await.expect("a connection in the pool");
    // Polled once, then dropped: it stops wherever it was waiting (the pool, the lock query).
    for _ in 0..5 {
        let _ = tokio::time::timeout(Duration::ZERO, store.claim(id.clone())).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.claim(id.clone()).await {
            Ok(_) => break,
            // The server may still hold a lock taken by a cancelled call's connection, until
            // it sees that connection closed.
            Err(JournalError::CampaignBusy(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("the campaign stayed claimed: {other}"),
        }
    }
}
