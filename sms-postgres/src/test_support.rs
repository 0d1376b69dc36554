//! For tests against a real server (feature `test-support`): where the server is, and a fresh
//! database per test.
//!
//! The server is named by `SMS_TEST_POSTGRES_URL` (a role that may create databases; `.ci/run`
//! starts PostgreSQL and exports it). When it is unset, a test is skipped with a message, except
//! under CI (`CI` set), where it fails: CI's server must be there.

use std::time::Duration;

use crate::config::PgConfig;
use crate::tls;

/// The variable naming the test server.
pub const URL_VARIABLE: &str = "SMS_TEST_POSTGRES_URL";

/// The test server's URL; `None` (after printing why the test is skipped) when
/// `SMS_TEST_POSTGRES_URL` is unset outside CI.
///
/// # Panics
///
/// When the variable is unset and `CI` is set: `.ci/run` should have started the server.
pub fn test_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{URL_VARIABLE} is not set, but CI is: .ci/run should have started PostgreSQL and \
             exported {URL_VARIABLE}; these tests must run in CI"
        ),
        _ => {
            eprintln!(
                "skipped: {URL_VARIABLE} is not set, so this PostgreSQL test did not run \
                 (README, \"PostgreSQL tests\": start a server with .ci/postgres.sh and export \
                 the URL it prints)"
            );
            None
        }
    }
}

/// A database made for one test (`sms_t_<random>`), owned by the test role and dropped when
/// this value is (connections still open to it are closed first).
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the test server; `None` when the test is skipped (see
    /// [`test_url`]).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses: a test cannot run without it.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = test_url()?;
        let name = format!("sms_t_{:016x}", fastrand::u64(..));
        let admin = admin_client(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("{URL_VARIABLE} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            name,
            url: url.to_string(),
            admin_url,
        })
    }

    /// The URL of this database (the test role, its password as in `SMS_TEST_POSTGRES_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection to the server's database named in `SMS_TEST_POSTGRES_URL`, outside this
    /// one: to change this database or end its sessions in a test.
    pub async fn admin(&self) -> tokio_postgres::Client {
        admin_client(&self.admin_url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime, where blocking on another is refused: a thread of
        // its own runs the statement.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = admin_client(&admin_url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: the test database {} was not dropped", self.name);
        }
    }
}

/// A connection to `url` (its password found as [`crate::PgStore::connect`] finds it).
async fn admin_client(url: &str) -> tokio_postgres::Client {
    let config = PgConfig::from_url(url).unwrap_or_else(|e| panic!("{URL_VARIABLE}: {e}"));
    let connector =
        tls::connector(config.pg.get_ssl_mode()).unwrap_or_else(|e| panic!("{URL_VARIABLE}: {e}"));
    let mut pg = config.pg.clone();
    pg.connect_timeout(Duration::from_secs(10));
    let (client, connection) = pg.connect(connector).await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test server {}: {}",
            config.redacted_url(),
            config.scrub(e)
        )
    });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
