//! The shared store: opt-outs, the send journal, alerts and replies in PostgreSQL, for many
//! organisations and several application servers at once.
//!
//! ```no_run
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use sms_core::{ChangeSource, OptOutAction, OptOutChange, OptOutStore, Org, PhoneNumber, Timestamp};
//! use sms_postgres::PgStore;
//!
//! // The password may also come from PGPASSWORD or ~/.pgpass; it is never printed.
//! let store = PgStore::connect(
//!     "postgres://sms:secret@127.0.0.1:5432/sms?sslmode=disable",
//!     Org::new("riverside-cc").unwrap(),
//! )
//! .await
//! .unwrap();
//! let number = PhoneNumber::from_e164("+12125550123").unwrap();
//! store.record(OptOutChange {
//!     number,
//!     action: OptOutAction::Stop,
//!     at: Timestamp::now(),
//!     source: ChangeSource::Inbound,
//!     message_sid: None,
//!     body: Some("STOP".into()),
//! }).await.unwrap(); // committed (synchronous_commit on) when this returns
//! assert!(store.snapshot().await.unwrap().len() >= 1);
//! # });
//! ```
//!
//! A [`PgStore`] is opened for one organisation ([`Org`]) and sees only that organisation's
//! rows: every table is keyed by organisation first, and every statement names it. It
//! implements the same traits as `sms-sqlite`'s store, with the same meaning:
//! [`OptOutStore`](sms_core::OptOutStore), [`Journal`](sms_core::Journal) and
//! [`AlertStore`](sms_core::alerts::AlertStore). The rules come from `sms-core`: a number's
//! opt-out state is [`OptOutState::from_actions`](sms_core::OptOutState::from_actions) over its
//! rows in arrival order, and a journal write is checked by
//! [`check_transition`](sms_core::journal::check_transition) on rows locked `FOR UPDATE`.
//!
//! - **Schema**: versioned migrations in `sms_schema_version`, applied by [`PgStore::connect`]
//!   in one transaction holding an advisory lock, so servers starting together migrate once; a
//!   database migrated by a newer build is refused ([`Error::NewerSchema`]).
//! - **Durability**: a write returns once committed; a server with `synchronous_commit=off`
//!   is refused ([`Error::NotDurable`]).
//! - **Group commit**: journal transitions (`apply`, a fleet worker's `begin_sending`) and
//!   opt-out changes are committed by one writer task per store (per pool), which commits
//!   whatever writes queued during its previous commit in one transaction, each checked on its
//!   own (one refused write does not undo the others), each caller answered once the COMMIT
//!   has returned; if the batch cannot be committed, every write of it fails `Unavailable`.
//! - **Losing the database**: calls fail with `Unavailable` (never a guess, never a panic);
//!   the pool opens new connections when the server is back.
//! - **One run per campaign**: [`Journal::claim`](sms_core::Journal::claim) holds a session
//!   advisory lock on a connection of its own until the claim is dropped (or the process dies).
//! - **TLS** with rustls: `sslmode=disable`, `prefer` (libpq's default and meaning) or
//!   `require` (the certificate checked against the system's roots and the host name).

#![warn(missing_docs)]

mod alerts;
mod config;
mod fleet;
mod journal;
mod optout;
mod replies;
mod schema;
mod tls;
mod writer;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sha2::{Digest, Sha256};
use sms_core::optout::StoreError;
use sms_core::{Org, StoredReply, Timestamp};

pub use config::PgConfig;
pub use schema::SCHEMA_VERSION;

/// Connections the pool keeps at most (claims use connections of their own besides).
const POOL_SIZE: usize = 16;

/// Why the store could not be opened. No text of it holds the password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL could not be read.
    #[error("PostgreSQL URL: {0}")]
    Url(String),
    /// The TLS configuration could not be built.
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    /// The server could not be reached, or refused the user (password, database, role).
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect {
        /// The URL, password shown as `***`.
        url: String,
        /// What the driver or the server said.
        reason: String,
    },
    /// A statement run while opening failed.
    #[error("PostgreSQL: {0}")]
    Database(String),
    /// A migration failed (nothing of it was kept: migrations run in one transaction).
    #[error("PostgreSQL schema: {0}")]
    Migrate(String),
    /// The database was migrated by a newer version of this library.
    #[error(
        "the database has schema version {found}, newer than this build's {supported}: upgrade this program"
    )]
    NewerSchema {
        /// The database's version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// The server would answer a commit before it is on disk (`synchronous_commit=off`), so a
    /// write could be lost after it returned.
    #[error(
        "the server runs with synchronous_commit={0}: a write could be lost after it returned; set it to on for this role or database"
    )]
    NotDurable(String),
}

impl Error {
    /// A failed statement while opening (the server's text; it never holds the password).
    pub(crate) fn from_db(error: tokio_postgres::Error) -> Error {
        Error::Database(db_text(&error))
    }
}

/// A driver error as text: the server's message with its SQLSTATE when it has one, else the
/// error and its causes (the driver's own text is only "db error" or "error communicating with
/// the server").
pub(crate) fn db_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {} ({})", db.severity(), db.message(), db.code().code()),
        None => chain(error),
    }
}

/// A pool error as text: the driver's error when it is one.
pub(crate) fn pool_text(error: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match error {
        PoolError::Backend(e) => db_text(e),
        PoolError::Timeout(_) => "timed out waiting for a database connection".to_owned(),
        other => chain(other),
    }
}

/// An error and its sources, each once.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// Opt-outs, the journal, alerts and replies of one organisation in PostgreSQL. Cheap to
/// clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    org: Org,
    config: PgConfig,
    /// The schema the tables are in (`current_schema()`, from the URL's `search_path`).
    schema: String,
    /// The hot writes' group commit (journal transitions, opt-outs): see `writer`.
    writer: writer::Writer,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.config.redacted_url())
            .field("org", &self.inner.org.as_str())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` for organisation `org`, and brings the schema up to
    /// date (see [`PgConfig::from_url`] for the URL and where its password may come from).
    ///
    /// Call it, and use the store, inside a tokio runtime with I/O and timers enabled
    /// (`enable_all`): the pool's connections are tasks of that runtime, and its waits have
    /// deadlines.
    pub async fn connect(url: &str, org: Org) -> Result<PgStore, Error> {
        PgStore::connect_with(PgConfig::from_url(url)?, org).await
    }

    /// [`PgStore::connect`] with a configuration read already.
    pub async fn connect_with(config: PgConfig, org: Org) -> Result<PgStore, Error> {
        let tls = tls::connector(config.pg.get_ssl_mode())?;
        let manager = Manager::from_config(
            config.pg.clone(),
            tls,
            ManagerConfig {
                // A connection whose socket closed (the server restarted, a backend was
                // terminated) is dropped on its way out of the pool, not handed out.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| Error::Database(config.scrub(e)))?;
        let mut client = pool.get().await.map_err(|e| {
            let mut reason = config.scrub(pool_text(&e));
            if let Some(note) = config.password_note() {
                reason = format!("{reason} ({note})");
            }
            Error::Connect {
                url: config.redacted_url(),
                reason,
            }
        })?;
        schema::check_durability(&client).await?;
        schema::migrate(&mut client).await?;
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .await
            .map_err(Error::from_db)?
            .get(0);
        drop(client);
        let writer = writer::Writer::new(pool.clone(), config.clone());
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                org,
                config,
                schema,
                writer,
            }),
        })
    }

    /// The organisation this handle reads and writes.
    pub fn org(&self) -> &Org {
        &self.inner.org
    }

    /// The URL connected to, password shown as `***`.
    pub fn redacted_url(&self) -> String {
        self.inner.config.redacted_url()
    }

    /// A pooled connection, or why none could be had (the password cut out).
    pub(crate) async fn conn(&self) -> Result<deadpool_postgres::Object, String> {
        self.inner.pool.get().await.map_err(|e| {
            self.inner
                .config
                .scrub(format!("no database connection: {}", pool_text(&e)))
        })
    }

    /// The writer of journal transitions and opt-outs (group commit).
    pub(crate) fn writer(&self) -> &writer::Writer {
        &self.inner.writer
    }

    /// A driver error as the text of an `Unavailable` error.
    pub(crate) fn text(&self, error: &tokio_postgres::Error) -> String {
        self.inner.config.scrub(db_text(error))
    }

    /// The organisation, as the `$1` of every statement.
    pub(crate) fn org_str(&self) -> &str {
        self.inner.org.as_str()
    }

    /// Where this store is, for the in-process claim registry: host, port and database.
    pub(crate) fn place(&self) -> String {
        self.inner.config.redacted_url()
    }
}

/// Inbound replies and the store's health: what the always-on service (`sms serve`) needs
/// besides opt-outs and the journal (the same inherent methods as `SqliteStore`).
impl PgStore {
    /// Stores an inbound message (committed when this returns); `Ok(false)` when a message
    /// with the same `message_sid` is stored already for this organisation (a webhook
    /// redelivered), which changes nothing.
    pub async fn record_reply(&self, reply: StoredReply) -> Result<bool, StoreError> {
        replies::insert(self, &reply).await
    }

    /// This organisation's inbound messages received at or after `since`, oldest first.
    pub async fn replies(&self, since: Timestamp) -> Result<Vec<StoredReply>, StoreError> {
        replies::list(self, since).await
    }

    /// Whether the database answers and takes writes: one read of the schema version, and a
    /// refusal when the server is a read-only standby (a write would fail there).
    pub async fn check(&self) -> Result<(), StoreError> {
        let client = self.conn().await.map_err(StoreError::Unavailable)?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0), pg_is_in_recovery(),
                        current_setting('transaction_read_only')
                 FROM sms_schema_version",
                &[],
            )
            .await
            .map_err(|e| StoreError::Unavailable(self.text(&e)))?;
        let in_recovery: bool = row.get(1);
        let read_only: String = row.get(2);
        if in_recovery || read_only == "on" {
            return Err(StoreError::Unavailable(
                "the database is read-only (a standby, or default_transaction_read_only)".into(),
            ));
        }
        Ok(())
    }
}

impl PgStore {
    /// An advisory lock key (the one-`bigint` form) for `what` of this store's organisation in
    /// its schema (advisory locks are per database, and one database may hold several schemas
    /// of these tables): the first 8 bytes of a SHA-256, so every build and every server
    /// computes the same key. A collision between two keys only makes two things wait on each
    /// other, never lets two hold one.
    pub(crate) fn lock_key(&self, kind: &str, what: &str) -> i64 {
        let digest = Sha256::new()
            .chain_update(b"sms-postgres\0")
            .chain_update(kind.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.inner.schema.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.org_str().as_bytes())
            .chain_update(b"\0")
            .chain_update(what.as_bytes())
            .finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }
}

#[cfg(test)]
mod tests;
