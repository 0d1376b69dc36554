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
    decide(
        std::env::var(URL_VARIABLE).ok(),
        std::env::var_os("CI").is_some(),
    )
}

/// [`test_url`] over the two variables' values.
fn decide(url: Option<String>, ci: bool) -> Option<String> {
    match url {
        Some(url) if !url.trim().is_empty() => Some(url),
        _ if ci => panic!(
            "{URL_VARIABLE} is not set, but CI is: .ci/run should have started PostgreSQL and \
             exported {URL_VARIABLE}; these tests must run in CI"
        ),
        _ => {
            // Straight to the stream, past the test harness's capture (which swallows the
            // output of passing tests), once per test binary.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: {URL_VARIABLE} is not set, so the PostgreSQL tests of this binary \
                     pass without running (README, \"PostgreSQL tests\": start a server with \
                     .ci/postgres.sh and export the URL it prints)"
                );
            });
            None
        }
    }
}

#[cfg(test)]
#[test]
fn without_a_url_a_test_is_skipped_except_under_ci_where_it_fails() {
    assert_eq!(
        decide(Some("postgres://a@b/c".into()), true).as_deref(),
        Some("postgres://a@b/c")
    );
    assert_eq!(decide(None, false), None);
    assert_eq!(decide(Some("  ".into()), false), None);
    let under_ci = std::panic::catch_unwind(|| decide(None, true));
    let message = under_ci.expect_err("fails under CI");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains(".ci/run"), "{message}");
}

/// Where one test's rows live, dropped when this value is: by default a schema of its own
/// (`sms_t_<random>`, named in the URL's `search_path`; a few milliseconds) in the database of
/// `SMS_TEST_POSTGRES_URL`; with [`TestDatabase::create_database`] a whole database (about a
/// second: PostgreSQL copies its template), for a test that must cut every connection to it.
/// Each URL sets `application_name` to the same name, so a test can find its own sessions in
/// `pg_stat_activity`.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    whole_database: bool,
}

impl TestDatabase {
    /// A fresh schema on the test server; `None` when the test is skipped (see [`test_url`]).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses: a test cannot run without it.
    pub async fn create() -> Option<TestDatabase> {
        TestDatabase::make(false).await
    }

    /// A fresh database of its own on the test server (the role needs `CREATEDB`); `None` when
    /// the test is skipped.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses.
    pub async fn create_database() -> Option<TestDatabase> {
        TestDatabase::make(true).await
    }

    async fn make(whole_database: bool) -> Option<TestDatabase> {
        let admin_url = test_url()?;
        let name = format!("sms_t_{:016x}", fastrand::u64(..));
        let admin = admin_client(&admin_url).await;
        let create = if whole_database {
            format!("CREATE DATABASE {name}")
        } else {
            format!("CREATE SCHEMA {name}")
        };
        admin
            .batch_execute(&create)
            .await
            .unwrap_or_else(|e| panic!("cannot make the test's {name}: {e}"));
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("{URL_VARIABLE} is not a URL: {e}"));
        let mut url = if whole_database {
            url.set_path(&format!("/{name}"));
            url.to_string()
        } else {
            with_param(url.as_str(), "options", &format!("-c search_path={name}"))
        };
        url = with_param(&url, "application_name", &name);
        Some(TestDatabase {
            name,
            url,
            admin_url,
            whole_database,
        })
    }

    /// The URL of this test's schema or database (the test role, its password as in
    /// `SMS_TEST_POSTGRES_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's or database's name (also the `application_name` of its connections).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection to the database named in `SMS_TEST_POSTGRES_URL`, outside this test's
    /// schema (and database): to change them or end their sessions in a test.
    pub async fn admin(&self) -> tokio_postgres::Client {
        admin_client(&self.admin_url).await
    }

    /// Ends every session this test opened (`pg_terminate_backend` on its `application_name`),
    /// as a server restart or a network cut would; returns how many were ended.
    pub async fn terminate_sessions(&self) -> u64 {
        let admin = self.admin().await;
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot end the test's sessions: {e}"));
        rows.iter().filter(|row| row.get::<_, bool>(0)).count() as u64
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let statement = if self.whole_database {
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        } else {
            format!("DROP SCHEMA IF EXISTS {name} CASCADE")
        };
        // Drop may run inside a runtime, where blocking on another is refused: a thread of
        // its own runs the statement.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = admin_client(&admin_url).await;
                // The test's own sessions first: the test's runtime is blocked in this drop, so
                // a session it left open (a transaction a failed test never ended) would
                // otherwise hold a lock the drop waits for, for ever.
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&statement)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: the test's {} was not dropped", self.name);
        }
    }
}

/// `url` with the query parameter `key=value` added, the value percent-encoded the way
/// tokio-postgres decodes it (a space is `%20`: it reads `+` as a plus).
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={encoded}")
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
