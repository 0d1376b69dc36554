//! One store type for the `sms` command and for hosts (through sms-ffi): the embedded SQLite
//! file (one office, one machine) or a PostgreSQL database shared by several servers, chosen by
//! what names it: a path, or a `postgres://` URL ([`DbTarget`]). Both stores implement the
//! core's traits; [`Store`] forwards every call to the one opened, so callers have no branch per
//! store. The one difference a caller sees is [`Store::is_shared`]: on a shared store a
//! campaign is sent by fleet workers ([`sms_core::Dispatcher::run_fleet`]), any number at once.
//!
//! ```no_run
//! # async fn example() -> Result<(), String> {
//! use sms_core::{OptOutStore, Org};
//! use sms_store::DbTarget;
//!
//! let target = DbTarget::parse("./sms.db"); // or "postgres://sms@db.example/sms"
//! let store = target.open(&Org::default(), false).await?;
//! println!("opt-outs in {}: {}", target.shown(), store.snapshot().await.map_err(|e| e.to_string())?.len());
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sms_core::journal::WorkerId;
use sms_core::{Org, Timestamp};
use sms_postgres::PgStore;
use sms_sqlite::SqliteStore;

mod store;

pub use store::Store;

/// What a store is named by (`--db`, a host's `database`): a SQLite file, or a PostgreSQL database by its URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// The SQLite file.
    File(PathBuf),
    /// A `postgres://` or `postgresql://` URL (its password, if any, is never printed).
    Postgres(String),
}

/// Shown as [`DbTarget::shown`]: a URL's password is never printed, not even in a debug dump.
impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbTarget::File(_) => write!(f, "File({})", self.shown()),
            DbTarget::Postgres(_) => write!(f, "Postgres({})", self.shown()),
        }
    }
}

impl DbTarget {
    /// Reads `--db`: a URL with a PostgreSQL scheme, else a file path.
    pub fn parse(value: &str) -> DbTarget {
        let lower = value.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            DbTarget::Postgres(value.trim().to_owned())
        } else {
            DbTarget::File(PathBuf::from(value))
        }
    }

    /// How it is shown in messages: the path, or the URL with the password as `***`.
    pub fn shown(&self) -> String {
        match self {
            DbTarget::File(path) => path.display().to_string(),
            DbTarget::Postgres(url) => sms_postgres::PgConfig::from_url(url)
                .map(|config| config.redacted_url())
                .unwrap_or_else(|_| "the PostgreSQL URL given".to_owned()),
        }
    }

    /// How it is repeated in a command a hint prints: the path, or the URL as typed without
    /// its password (which the next command finds in PGPASSWORD or the password file, or is
    /// typed again: it is never printed).
    pub fn flag_value(&self) -> String {
        match self {
            DbTarget::File(path) => path.display().to_string(),
            DbTarget::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    let _ = parsed.set_password(None);
                    // libpq also reads `password=` from the query.
                    let kept: Vec<(String, String)> = parsed
                        .query_pairs()
                        .filter(|(key, _)| !key.eq_ignore_ascii_case("password"))
                        .map(|(key, value)| (key.into_owned(), value.into_owned()))
                        .collect();
                    if kept.is_empty() {
                        parsed.set_query(None);
                    } else {
                        parsed.query_pairs_mut().clear().extend_pairs(kept);
                    }
                    format!("'{parsed}'")
                }
                Err(_) => self.shown(),
            },
        }
    }

    /// Whether it names a SQLite file that does not exist (yet).
    pub fn is_missing_file(&self) -> bool {
        matches!(self, DbTarget::File(path) if !path.exists())
    }

    /// Opens the store for `org`; with `existing`, a SQLite file must exist already (a typo
    /// in `--db` must not start an empty file, which would hold no opt-outs and no campaigns).
    pub async fn open(&self, org: &Org, existing: bool) -> Result<Arc<Store>, String> {
        match self {
            DbTarget::File(path) => {
                if existing && !path.exists() {
                    return Err(format!(
                        "no database at {} (it is made by `sms send` or `sms inbound`; check --db)",
                        path.display()
                    ));
                }
                SqliteStore::open_org(path, org.clone())
                    .map(|store| Arc::new(Store::Sqlite(store)))
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))
            }
            // The driver's and the server's texts never hold the password.
            DbTarget::Postgres(url) => PgStore::connect(url, org.clone())
                .await
                .map(|store| Arc::new(Store::Postgres(store)))
                .map_err(|e| e.to_string()),
        }
    }
}

/// A fleet worker's name for one run in this process: the host's name, the process id, the
/// time, and a count of the runs this process has started (two runs started in the same
/// millisecond by two threads of one host application are two workers, never one).
pub fn worker_id() -> WorkerId {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let base = WorkerId::for_this_process(&host, Timestamp::now());
    WorkerId::new(format!("{base}:{run}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_postgres_and_anything_else_a_file() {
        assert!(matches!(
            DbTarget::parse("postgres://u@h/db"),
            DbTarget::Postgres(_)
        ));
        assert!(matches!(
            DbTarget::parse(" PostgreSQL://u@h/db"),
            DbTarget::Postgres(_)
        ));
        assert!(matches!(DbTarget::parse("./sms.db"), DbTarget::File(_)));
        assert!(matches!(DbTarget::parse("postgres.db"), DbTarget::File(_)));
    }

    #[test]
    fn a_password_is_never_shown_nor_repeated() {
        let target = DbTarget::parse("postgres://sms:s3cret-pw@db.example:5432/sms");
        assert!(!target.shown().contains("s3cret-pw"), "{}", target.shown());
        assert!(
            !target.flag_value().contains("s3cret-pw"),
            "{}",
            target.flag_value()
        );
        assert!(!format!("{target:?}").contains("s3cret-pw"), "{target:?}");
    }

    #[test]
    fn two_runs_of_one_process_are_two_workers() {
        let (a, b) = (worker_id(), worker_id());
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_existing_file_is_required_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        let target = DbTarget::parse(path.to_str().unwrap());
        assert!(target.is_missing_file());
        let error = target.open(&Org::default(), true).await.unwrap_err();
        assert!(error.contains("no database at"), "{error}");
        assert!(
            !path.exists(),
            "a typo in the path must not create an empty file"
        );
        let store = target.open(&Org::default(), false).await.unwrap();
        assert!(!store.is_shared());
        assert!(path.exists());
    }
}
