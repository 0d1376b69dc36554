//! The embedded, durable default store: opt-outs and the send journal in one SQLite file.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sms_core::{ChangeSource, OptOutAction, OptOutChange, OptOutStore, PhoneNumber, Timestamp};
//! use sms_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("sms.db")).unwrap();
//! let number = PhoneNumber::from_e164("+12125550123").unwrap();
//! store.record(OptOutChange {
//!     number,
//!     action: OptOutAction::Stop,
//!     at: Timestamp::now(),
//!     source: ChangeSource::Inbound,
//!     message_sid: None,
//!     body: Some("STOP".into()),
//! }).await.unwrap(); // on disk (fsync'd) when this returns
//! assert!(store.snapshot().await.unwrap().len() == 1);
//! # });
//! ```
//!
//! Durability: the file is in WAL mode with `synchronous=FULL`, and every write
//! ([`OptOutStore::record`], [`Journal::apply`]...) returns only after its transaction is
//! committed and fsync'd. Writes go through one writer thread that commits the requests waiting
//! together (group commit); reads use a small pool of read connections, which WAL lets run
//! while the writer commits. The store is `Clone` and safe to share between threads and tasks.
//!
//! Organisations: one file may hold many ([`Org`]). A store is opened for one
//! ([`SqliteStore::open_org`]; [`SqliteStore::open`] is organisation `default`) and every query
//! it runs filters on it, every row it writes carries it, and every key and index of the schema
//! leads with it: nothing through this store reads or changes another organisation's rows.

#![warn(missing_docs)]

mod alerts;
mod journal;
mod optout;
mod replies;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSummary, DeliveryUpdate, Journal, JournalError, RecordEntry,
    RunClaim, Transition,
};
use sms_core::optout::{OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError};
use sms_core::{Org, PhoneNumber, Timestamp};

pub use schema::SCHEMA_VERSION;
/// Re-exported: the record moved to `sms-core`, shared by every store `sms serve` can use.
pub use sms_core::StoredReply;
use writer::{Op, Writer};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused (the file is not a database, the folder is not writable, the disk...).
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer version of this library.
    #[error("the database has schema version {found}, newer than this build's {supported}")]
    NewerSchema {
        /// The file's version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// A row of an older schema could not be converted to the current one (nothing of the
    /// migration was kept: the file is as it was).
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    /// The writer thread could not be started.
    #[error("could not start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Opt-outs, the journal, replies and alerts of one organisation on one SQLite file. Cheap to
/// clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    org: Org,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("org", &self.inner.org)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is fsync'd before it returns, which is what the store promises.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` for organisation `default` and brings its
    /// schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        SqliteStore::open_org(path, Org::default())
    }

    /// Opens (or creates) the database at `path` for `org` and brings its schema up to date.
    /// The store sees only that organisation's rows, and writes only rows of it.
    pub fn open_org(path: impl AsRef<Path>, org: Org) -> Result<SqliteStore, Error> {
        let mut conn = Connection::open(path.as_ref())?;
        // The real path, links resolved: the run locks sit beside it, so two names for one
        // file (a symlink, `./x` and `x`) must find the same lock.
        let path =
            std::fs::canonicalize(path.as_ref()).unwrap_or_else(|_| path.as_ref().to_path_buf());
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                org,
                writer: Writer::start(conn)?,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The organisation this store reads and writes.
    pub fn org(&self) -> &Org {
        &self.inner.org
    }

    /// The lock file that marks a run of campaign `id`: beside the database, one per
    /// organisation and campaign (`sms.db.run-ORG@ID.lock`), so two organisations may run a
    /// campaign of the same id at once. Organisation `default` keeps the name it had before
    /// organisations existed (`sms.db.run-ID.lock`), so a run started by an older build still
    /// holds off a resume by this one. An organisation name holds no `@` and a campaign id's
    /// `@` becomes `_`, so no two (organisation, campaign) pairs share a name by accident.
    fn claim_path(&self, id: &CampaignId) -> PathBuf {
        // Characters a file name may not hold become `_`; two ids that differ only there share a
        // lock, which serialises their runs and nothing worse.
        let safe: String = id
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = self
            .inner
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        if self.inner.org.as_str() == Org::DEFAULT {
            name.push(format!(".run-{safe}.lock"));
        } else {
            name.push(format!(".run-{}@{safe}.lock", self.inner.org));
        }
        self.inner.path.with_file_name(name)
    }

    /// Runs `read` on a pooled read connection. Reads are short indexed queries, run on the
    /// caller's thread.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> T) -> Result<T, String> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| e.to_string())?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                conn.pragma_update(None, "query_only", "ON")
                    .map_err(|e| e.to_string())?;
                conn
            }
        };
        let value = read(&conn);
        self.inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        Ok(value)
    }

    fn read_journal<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        self.read(read).map_err(JournalError::Unavailable)?
    }

    fn read_store<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read(read).map_err(StoreError::Unavailable)?
    }
}

/// Inbound replies and the store's health: what the always-on service (`sms serve`) needs
/// besides opt-outs and the journal.
impl SqliteStore {
    /// Stores an inbound message (durable when this returns); `Ok(false)` when a message with
    /// the same `message_sid` is stored already (a webhook redelivered), which changes nothing.
    pub async fn record_reply(&self, reply: StoredReply) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(&self.inner.org, Op::Reply(Box::new(reply)))
            .await
            .map_err(optout::unavailable)
    }

    /// The inbound messages received at or after `since`, oldest first.
    pub async fn replies(&self, since: Timestamp) -> Result<Vec<StoredReply>, StoreError> {
        self.read_store(|conn| replies::list(conn, self.org().as_str(), since))
    }

    /// Whether the file can be read and the writer is running: one indexed read, and a write
    /// that commits nothing (it goes through the writer thread, so a writer that stopped or a
    /// database it cannot lock shows here).
    pub async fn check(&self) -> Result<(), StoreError> {
        self.read_store(|conn| {
            conn.query_row("SELECT COUNT(*) FROM schema_version", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|_| ())
            .map_err(optout::unavailable)
        })?;
        self.inner
            .writer
            .write(&self.inner.org, Op::Check)
            .await
            .map(|_| ())
            .map_err(optout::unavailable)
    }
}

#[async_trait]
impl OptOutStore for SqliteStore {
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(&self.inner.org, Op::OptOut(change))
            .await
            .map(|_| ())
            .map_err(optout::unavailable)
    }

    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError> {
        self.read_store(|conn| optout::state(conn, self.org().as_str(), number))
    }

    async fn history(&self, number: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        self.read_store(|conn| optout::history(conn, self.org().as_str(), number))
    }

    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        self.read_store(|conn| optout::snapshot(conn, self.org().as_str()))
    }
}

#[async_trait]
impl Journal for SqliteStore {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError> {
        self.inner
            .writer
            .write(&self.inner.org, Op::CreateCampaign(Box::new(campaign)))
            .await
            .map(|_| ())
    }

    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        self.read_journal(|conn| journal::campaign(conn, self.org().as_str(), &id))
    }

    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError> {
        self.read_journal(|conn| journal::campaigns(conn, self.org().as_str()))
    }

    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        self.read_journal(|conn| journal::records(conn, self.org().as_str(), &id))
    }

    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        if transitions.is_empty() {
            return Ok(());
        }
        self.inner
            .writer
            .write(&self.inner.org, Op::Apply(id, transitions))
            .await
            .map(|_| ())
    }

    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, JournalError> {
        self.read_journal(|conn| {
            journal::logged_provider_ids(conn, self.org().as_str(), &provider_ids)
        })
    }

    async fn record_delivery(&self, update: DeliveryUpdate) -> Result<bool, JournalError> {
        self.inner
            .writer
            .write(&self.inner.org, Op::Delivery(update))
            .await
    }

    /// An exclusive OS file lock beside the database: another process (or another run in this
    /// one) is refused while it is held, and the OS releases it when the process dies, even by
    /// SIGKILL, so a crash never blocks the resume.
    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        let path = self.claim_path(&id);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                JournalError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(RunClaim::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::CampaignBusy(id)),
            Err(std::fs::TryLockError::Error(e)) => Err(JournalError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
