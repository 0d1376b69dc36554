//! Migrations: applied once, under the lock, by servers starting together; a newer database
//! refused; a server that would lose commits refused.

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
