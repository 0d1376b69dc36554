//! Migrations: applied once, under the lock, by servers starting together; a newer database
//! refused; a server that would lose commits refused.

use std::time::Duration;

use sms_core::Org;

use super::open;
use crate::test_support::{TestDatabase, with_param};
use crate::{Error, PgStore, SCHEMA_VERSION};

async fn versions(db: &TestDatabase) -> Vec<i32> {
    let store = open(db, "default").await;
    let client = store.conn().await.expect("connection");
    client
        .query(
            "SELECT version FROM sms_schema_version ORDER BY version",
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_on_a_fresh_database_migrate_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let connects: Vec<_> = (0..8)
        .map(|i| {
            let url = db.url().to_owned();
            tokio::spawn(async move {
                PgStore::connect(&url, Org::new(format!("org-{i}")).expect("org")).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(
            connect
                .await
                .expect("task")
                .expect("every connect succeeds"),
        );
    }
    let expected: Vec<i32> = (1..=SCHEMA_VERSION as i32).collect();
    assert_eq!(
        versions(&db).await,
        expected,
        "each migration recorded once"
    );
    for store in &stores {
        store.check().await.expect("every store works");
    }
    // Connecting again applies nothing.
    let before = versions(&db).await;
    open(&db, "default").await;
    assert_eq!(versions(&db).await, before);
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = open(&db, "default").await;
    store
        .conn()
        .await
        .expect("connection")
        .execute(
            "INSERT INTO sms_schema_version (version) VALUES ($1)",
            &[&(SCHEMA_VERSION as i32 + 7)],
        )
        .await
        .expect("a newer version");
    let error = PgStore::connect(db.url(), Org::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(error, Error::NewerSchema { found, supported }
            if found == SCHEMA_VERSION + 7 && supported == SCHEMA_VERSION),
        "{error:?}"
    );
    assert!(error.to_string().contains("upgrade"), "{error}");
}

#[tokio::test]
async fn a_server_that_answers_before_the_commit_is_durable_is_refused() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // As a role or database setting would: the session starts with it off (a later
    // `options` parameter wins over the schema's).
    let url = with_param(
        db.url(),
        "options",
        &format!("-c search_path={} -c synchronous_commit=off", db.name()),
    );
    let error = PgStore::connect(&url, Org::default())
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::NotDurable(_)), "{error:?}");
}

/// Migration 3: records held by quiet hours before it get their opening (`held_until_ms`) as
/// the column is added, so a fleet leases them once the hours open; the others get none.
#[tokio::test]
async fn migration_3_reads_the_opening_of_records_held_before_it() {
    use sms_core::journal::{
        Campaign, CampaignId, CampaignSettings, FleetJournal, Journal, RecordState, Transition,
        WorkerId,
    };
    use sms_core::{Encoding, PreviewItem, PreviewOutcome, RecordId, Timestamp};

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = open(&db, "default").await;
    let item = |i: u64| PreviewItem {
        record_id: RecordId::new(format!("C-{i}")),
        kind: sms_core::RecordKind::Client,
        name: format!("Client {i}"),
        mobile: super::number(i).to_string(),
        time_zone: Some("America/New_York".into()),
        outcome: PreviewOutcome::Eligible {
            number: super::number(i),
            body: format!("Hello {i}"),
            encoding: Encoding::Gsm7,
            segments: 1,
        },
    };
    let id = CampaignId::new("quiet").expect("not blank");
    let now = Timestamp::now();
    store
        .create_campaign(Campaign {
            id: id.clone(),
            name: "Quiet".into(),
            created_at: now,
            template: "x".into(),
            settings: CampaignSettings::default(),
            items: (0..3).map(item).collect(),
        })
        .await
        .expect("create");
    let held = |until_ms: i64| RecordState::Held {
        until: Timestamp::from_unix_ms(until_ms),
        time_zone: "America/New_York".into(),
        at: now,
    };
    // 0: opened a minute ago (with milliseconds), 1: opens in an hour, 2: planned.
    let opened = now.unix_ms() - 60_042;
    store
        .apply(
            id.clone(),
            vec![
                Transition {
                    seq: 0,
                    state: held(opened),
                },
                Transition {
                    seq: 1,
                    state: held(now.unix_ms() + 3_600_000),
                },
            ],
        )
        .await
        .expect("held");
    // The database as schema 2 left it, with these rows: migration 3 undone.
    let client = store.conn().await.expect("connection");
    client
        .batch_execute(
            "ALTER TABLE sms_records DROP COLUMN held_until_ms;
             DROP FUNCTION sms_held_until_ms(TEXT, TEXT);
             DELETE FROM sms_schema_version WHERE version = 3;",
        )
        .await
        .expect("back to schema 2");
    drop(client);
    let store = open(&db, "default").await;
    let client = store.conn().await.expect("connection");
    let openings: Vec<(i64, Option<i64>)> = client
        .query(
            "SELECT seq, held_until_ms FROM sms_records WHERE campaign_id = 'quiet' ORDER BY seq",
            &[],
        )
        .await
        .expect("migrated")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        openings,
        [
            (0, Some(opened)),
            (1, Some(now.unix_ms() + 3_600_000)),
            (2, None)
        ]
    );
    // Record 0's number has work (its hours opened), record 2's too (planned); not record 1's.
    let leased = store
        .lease(&id, &WorkerId::new("w"), 10, Duration::from_secs(60))
        .await
        .expect("lease");
    let seqs: Vec<u32> = leased.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 2]);
}
