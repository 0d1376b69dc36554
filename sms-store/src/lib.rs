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
//! let target = DbTarget::parse("./sms.db")?; // or "postgres://sms@db.example/sms"
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
    /// Reads `--db` (or a host's `database`): a `postgres://` or `postgresql://` URL (the
    /// scheme in any case), else a file path. Refused, with a message that never repeats the
    /// value (it may hold a password): any other `scheme://` (a SQLAlchemy
    /// `postgresql+psycopg2://`, say), and `postgres:` without its `//`, which would otherwise
    /// be taken for a file name and printed whole in the error of opening it.
    pub fn parse(value: &str) -> Result<DbTarget, String> {
        let trimmed = value.trim();
        let lower = trimmed.to_ascii_lowercase();
        for scheme in ["postgres://", "postgresql://"] {
            if lower.starts_with(scheme) {
                // The driver reads the scheme in lower case only.
                return Ok(DbTarget::Postgres(format!(
                    "{scheme}{}",
                    &trimmed[scheme.len()..]
                )));
            }
        }
        if let Some((scheme, _)) = trimmed.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(format!(
                "the database URL's scheme {scheme:?} is not one this library opens: give a \
                 SQLite file path or a postgres:// URL (a driver suffix such as \
                 postgresql+psycopg2:// is for other libraries)"
            ));
        }
        if lower.starts_with("postgres:") || lower.starts_with("postgresql:") {
            return Err(
                "the database looks like a PostgreSQL URL without its '//': write \
                        postgres://USER@HOST/DATABASE"
                    .to_owned(),
            );
        }
        Ok(DbTarget::File(PathBuf::from(value)))
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
        let parse = |v: &str| DbTarget::parse(v).expect("accepted");
        assert!(matches!(parse("postgres://u@h/db"), DbTarget::Postgres(_)));
        // Any case of the scheme, handed on in the case the driver reads.
        assert_eq!(
            parse(" PostgreSQL://u@h/db"),
            DbTarget::Postgres("postgresql://u@h/db".into())
        );
        assert_eq!(
            parse("POSTGRES://u@h/db"),
            DbTarget::Postgres("postgres://u@h/db".into())
        );
        assert!(matches!(parse("./sms.db"), DbTarget::File(_)));
        assert!(matches!(parse("postgres.db"), DbTarget::File(_)));
        assert!(matches!(parse("C:\\data\\sms.db"), DbTarget::File(_)));
    }

    #[test]
    fn another_scheme_or_a_url_without_slashes_is_refused_without_its_password() {
        for value in [
            "postgresql+psycopg2://sms:s3cret-pw@db.example/sms",
            "mysql://sms:s3cret-pw@db.example/sms",
            "postgres:/sms:s3cret-pw@db.example/sms",
            "postgresql:sms:s3cret-pw@db.example/sms",
        ] {
            let error = DbTarget::parse(value).expect_err(value);
            assert!(!error.contains("s3cret-pw"), "{error}");
        }
    }

    #[test]
    fn a_password_is_never_shown_nor_repeated() {
        for url in [
            "postgres://sms:s3cret-pw@db.example:5432/sms",
            "postgres://sms@db.example:5432/sms?sslmode=disable&password=s3cret-pw",
            "postgresql://sms@db.example/sms?password=s3cret-pw",
            "POSTGRES://sms:s3cret-pw@[::1]:5432/sms",
        ] {
            let target = DbTarget::parse(url).expect("a URL");
            assert!(!target.shown().contains("s3cret-pw"), "{}", target.shown());
            let again = target.flag_value();
            assert!(!again.contains("s3cret-pw"), "{again}");
            assert!(!format!("{target:?}").contains("s3cret-pw"), "{target:?}");
        }
        // What is not the password is repeated as typed.
        let target =
            DbTarget::parse("postgres://sms@db.example:5432/sms?sslmode=disable&password=x")
                .expect("a URL");
        assert_eq!(
            target.flag_value(),
            "'postgres://sms@db.example:5432/sms?sslmode=disable'"
        );
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
        let target = DbTarget::parse(path.to_str().unwrap()).expect("a path");
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
