//! The store contracts (`sms_tests::conformance`) on every store of this workspace: the
//! in-memory stores (one instance per organisation), SQLite (a temporary file per test) and
//! PostgreSQL (a schema per test on the server of `SMS_TEST_POSTGRES_URL`: skipped with a
//! message without it, a failure under CI).
//! Each contract is its own test, named `<store>::<contract>`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sms_core::Org;
use sms_core::Timestamp;
use sms_core::alerts::InMemoryAlertStore;
use sms_core::journal::InMemoryJournal;
use sms_core::optout::InMemoryOptOutStore;
use sms_postgres::PgStore;
use sms_postgres::test_support::{TestDatabase, test_url};
use sms_sqlite::{SqliteStore, StoredReply};
use sms_tests::conformance::{Backing, Reply, ReplyLog, StoreFactory, Stores};

/// The in-memory stores: an instance of each per organisation, kept for the backing's life.
struct MemoryFactory;

#[derive(Default)]
struct MemoryBacking {
    orgs: Mutex<HashMap<Org, Stores>>,
}

#[async_trait]
impl StoreFactory for MemoryFactory {
    async fn fresh(&self) -> Box<dyn Backing> {
        Box::new(MemoryBacking::default())
    }
}

#[async_trait]
impl Backing for MemoryBacking {
    async fn open(&self, org: &Org) -> Stores {
        self.orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(org.clone())
            .or_insert_with(|| Stores {
                optouts: Arc::new(InMemoryOptOutStore::new()),
                journal: Arc::new(InMemoryJournal::new()),
                alerts: Arc::new(InMemoryAlertStore::new()),
                replies: None,
            })
            .clone()
    }
}

/// SQLite: a file in a temporary folder per test; each `open` is a new `SqliteStore` on it
/// (its own writer thread and connections, as another process would have).
struct SqliteFactory;

struct SqliteBacking {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn fresh(&self) -> Box<dyn Backing> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("sms.db");
        Box::new(SqliteBacking { _dir: dir, path })
    }
}

#[async_trait]
impl Backing for SqliteBacking {
    async fn open(&self, org: &Org) -> Stores {
        let store = Arc::new(SqliteStore::open_org(&self.path, org.clone()).expect("opens"));
        Stores {
            optouts: store.clone(),
            journal: store.clone(),
            alerts: store.clone(),
            replies: Some(Arc::new(Replies(store))),
        }
    }
}

/// PostgreSQL: a fresh schema per test; each `open` a new pool on it, as another server would.
struct PostgresFactory;

struct PostgresBacking {
    db: TestDatabase,
}

#[async_trait]
impl StoreFactory for PostgresFactory {
    async fn fresh(&self) -> Box<dyn Backing> {
        let db = TestDatabase::create()
            .await
            .expect("the test server (checked before the factory was made)");
        Box::new(PostgresBacking { db })
    }
}

#[async_trait]
impl Backing for PostgresBacking {
    async fn open(&self, org: &Org) -> Stores {
        let store = Arc::new(
            PgStore::connect(self.db.url(), org.clone())
                .await
                .expect("connects"),
        );
        Stores {
            optouts: store.clone(),
            journal: store.clone(),
            alerts: store.clone(),
            replies: Some(Arc::new(Replies(store))),
        }
    }
}

/// The replies a store keeps (`record_reply` / `replies`, the same on SQLite and PostgreSQL).
#[async_trait]
trait KeepsReplies: Send + Sync {
    async fn record(&self, reply: StoredReply) -> Result<bool, String>;
    async fn since(&self, since: Timestamp) -> Result<Vec<StoredReply>, String>;
}

#[async_trait]
impl KeepsReplies for SqliteStore {
    async fn record(&self, reply: StoredReply) -> Result<bool, String> {
        self.record_reply(reply).await.map_err(|e| e.to_string())
    }
    async fn since(&self, since: Timestamp) -> Result<Vec<StoredReply>, String> {
        self.replies(since).await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl KeepsReplies for PgStore {
    async fn record(&self, reply: StoredReply) -> Result<bool, String> {
        self.record_reply(reply).await.map_err(|e| e.to_string())
    }
    async fn since(&self, since: Timestamp) -> Result<Vec<StoredReply>, String> {
        self.replies(since).await.map_err(|e| e.to_string())
    }
}

/// A store's replies as the suite's `ReplyLog`.
struct Replies<T>(Arc<T>);

#[async_trait]
impl<T: KeepsReplies> ReplyLog for Replies<T> {
    async fn record_reply(&self, reply: Reply) -> Result<bool, String> {
        self.0
            .record(StoredReply {
                message_sid: reply.message_sid,
                from: reply.from,
                to: "+15005550006".into(),
                body: reply.body,
                segments: 1,
                class: sms_core::KeywordClass::Other,
                keyword: None,
                review: false,
                received_at: reply.received_at,
            })
            .await
    }

    async fn replies(&self, since: Timestamp) -> Result<Vec<Reply>, String> {
        Ok(self
            .0
            .since(since)
            .await?
            .into_iter()
            .map(|r| Reply {
                message_sid: r.message_sid,
                from: r.from,
                body: r.body,
                received_at: r.received_at,
            })
            .collect())
    }
}

mod memory {
    sms_tests::conformance_tests!(super::MemoryFactory);
}

mod sqlite {
    sms_tests::conformance_tests!(super::SqliteFactory);
}

mod postgres {
    sms_tests::conformance_tests!(match super::test_url() {
        Some(_) => super::PostgresFactory,
        None => return, // test_url said why (and fails under CI)
    });
}

/// `run_all` names each contract a store breaks: a store that loses every STOP is caught by
/// name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_names_the_contracts_a_store_breaks() {
    use sms_core::optout::{OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError};

    /// Forgets every change.
    struct Forgetful;

    #[async_trait]
    impl OptOutStore for Forgetful {
        async fn record(&self, _: OptOutChange) -> Result<(), StoreError> {
            Ok(())
        }
        async fn state(&self, _: sms_core::PhoneNumber) -> Result<OptOutState, StoreError> {
            Ok(OptOutState::OptedIn)
        }
        async fn history(&self, _: sms_core::PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
            Ok(Vec::new())
        }
        async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
            Ok(OptOutSnapshot::default())
        }
    }

    struct ForgetfulFactory;
    struct ForgetfulBacking(MemoryBacking);

    #[async_trait]
    impl StoreFactory for ForgetfulFactory {
        async fn fresh(&self) -> Box<dyn Backing> {
            Box::new(ForgetfulBacking(MemoryBacking::default()))
        }
    }

    #[async_trait]
    impl Backing for ForgetfulBacking {
        async fn open(&self, org: &Org) -> Stores {
            Stores {
                optouts: Arc::new(Forgetful),
                ..self.0.open(org).await
            }
        }
    }

    let outcome = tokio::spawn(sms_tests::conformance::run_all(Arc::new(ForgetfulFactory))).await;
    let panic = outcome.expect_err("the forgetful store fails").into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    for broken in [
        "opt_out_rule_on_random_histories:",
        "opt_out_history_and_snapshot:",
        "organisations_are_isolated:",
    ] {
        assert!(message.contains(broken), "{broken} in {message}");
    }
    assert!(!message.contains("journal_transitions:"), "{message}");
    assert!(!message.contains("alert_store:"), "{message}");
}
