//! Tests of the store against a real PostgreSQL server (`SMS_TEST_POSTGRES_URL`; skipped with
//! a message when unset outside CI), each on a database of its own; and of the URL handling,
//! which needs no server.

mod alerts;
mod config;
mod fleet;
mod journal;
mod optout;
mod schema;
mod service;
mod tls;
mod writer;
mod writer_edges;

use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange};
use sms_core::{Org, PhoneNumber, Timestamp};

use crate::PgStore;
use crate::test_support::TestDatabase;

/// A fresh database and a store on it for organisation `org`; `None` when skipped.
pub(crate) async fn fresh(org: &str) -> Option<(TestDatabase, PgStore)> {
    let db = TestDatabase::create().await?;
    let store = PgStore::connect(db.url(), Org::new(org).expect("test org"))
        .await
        .expect("connect to the test database");
    Some((db, store))
}

/// Another handle on the same database: for organisation `org`, with a pool of its own (as a
/// second server would have).
pub(crate) async fn open(db: &TestDatabase, org: &str) -> PgStore {
    PgStore::connect(db.url(), Org::new(org).expect("test org"))
        .await
        .expect("connect to the test database")
}

pub(crate) fn number(i: u64) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1212555{:04}", 100 + i)).expect("valid test number")
}

pub(crate) fn change(n: u64, action: OptOutAction, at: i64) -> OptOutChange {
    OptOutChange {
        number: number(n),
        action,
        at: Timestamp::from_unix_ms(at),
        source: ChangeSource::Inbound,
        message_sid: Some(format!("SM{n}")),
        body: Some(match action {
            OptOutAction::Stop => "STOP".into(),
            OptOutAction::Start => "START".into(),
        }),
    }
}

/// The test server's URL split into (URL without the password, user, password).
pub(crate) fn split_test_url(url: &str) -> (String, String, String) {
    let mut parsed = url::Url::parse(url).expect("a URL");
    let user = parsed.username().to_owned();
    let password = parsed.password().unwrap_or_default().to_owned();
    parsed.set_password(None).expect("a URL with a host");
    (parsed.to_string(), user, password)
}
