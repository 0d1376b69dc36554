//! The URL, the password's sources, and that no text shows the password.

use std::io::Write;
use std::path::PathBuf;

use sms_core::Org;

use crate::config::{Env, PassKey, PasswordSource, find_password};
use crate::test_support::TestDatabase;
use crate::{Error, PgConfig, PgStore};

fn key(host: &str, port: u16, database: &str, user: &str) -> PassKey {
    PassKey {
        host: host.into(),
        port,
        database: database.into(),
        user: user.into(),
    }
}

#[test]
fn the_password_file_matches_like_libpq() {
    let file = "\
# comment:*:*:*:nope
db.example.com:5432:sms:app:exact
*:5433:*:*:any-host-on-5433
short:line
10.0.0.1:*:sms:app:first
10.0.0.1:*:sms:app:second
fe80\\:\\:1:5432:sms:app:ipv6 host
h:5432:we\\\\ird:app:backslash in a name
star:5432:\\*:app:literal star only
esc:5432:sms:app:pa\\:ss\\\\word:ignored after an unescaped colon
";
    let find = |k: PassKey| find_password(file, &k);
    assert_eq!(
        find(key("db.example.com", 5432, "sms", "app")).as_deref(),
        Some("exact")
    );
    assert_eq!(find(key("db.example.com", 5432, "sms", "other")), None);
    assert_eq!(
        find(key("anything", 5433, "x", "y")).as_deref(),
        Some("any-host-on-5433")
    );
    assert_eq!(
        find(key("10.0.0.1", 6000, "sms", "app")).as_deref(),
        Some("first"),
        "the first matching line wins"
    );
    assert_eq!(
        find(key("fe80::1", 5432, "sms", "app")).as_deref(),
        Some("ipv6 host")
    );
    assert_eq!(
        find(key("h", 5432, "we\\ird", "app")).as_deref(),
        Some("backslash in a name")
    );
    assert_eq!(
        find(key("star", 5432, "*", "app")).as_deref(),
        Some("literal star only")
    );
    assert_eq!(
        find(key("star", 5432, "sms", "app")),
        None,
        "an escaped star is not a wildcard"
    );
    assert_eq!(
        find(key("esc", 5432, "sms", "app")).as_deref(),
        Some("pa:ss\\word")
    );
    assert_eq!(
        find(key("comment", 1, "*", "*")),
        None,
        "comments are skipped"
    );
    assert_eq!(find(key("short", 5432, "line", "x")), None);
}

fn passfile(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pgpass");
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(text.as_bytes()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    (dir, path)
}

#[test]
fn the_password_comes_from_the_url_then_pgpassword_then_the_file() {
    let (_dir, path) = passfile("db:5432:sms:app:from-file\n", 0o600);
    let env = Env {
        pgpassword: Some("from-env".into()),
        pgpassfile: Some(path.clone()),
        home: None,
    };
    let password = |config: &PgConfig| {
        config
            .pg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    };
    let config = PgConfig::from_url_in("postgres://app:from-url@db/sms", &env).expect("url");
    assert_eq!(password(&config).as_deref(), Some("from-url"));
    assert_eq!(config.password_source(), &PasswordSource::Url);

    let config = PgConfig::from_url_in("postgres://app@db/sms", &env).expect("url");
    assert_eq!(password(&config).as_deref(), Some("from-env"));

    let no_env = Env {
        pgpassword: None,
        ..env.clone()
    };
    let config = PgConfig::from_url_in("postgres://app@db/sms", &no_env).expect("url");
    assert_eq!(password(&config).as_deref(), Some("from-file"));
    assert_eq!(config.password_source(), &PasswordSource::File(path));

    // ~/.pgpass when PGPASSFILE is unset; the database defaults to the user's name.
    let home = tempfile::tempdir().expect("home");
    let (_d, file) = passfile("db:5432:app:app:home-file\n", 0o600);
    std::fs::copy(&file, home.path().join(".pgpass")).expect("copy");
    let home_env = Env {
        pgpassword: None,
        pgpassfile: None,
        home: Some(home.path().to_path_buf()),
    };
    let config = PgConfig::from_url_in("postgres://app@db", &home_env).expect("url");
    assert_eq!(password(&config).as_deref(), Some("home-file"));
}

#[test]
fn a_password_file_others_can_read_is_ignored_and_the_error_says_so() {
    let (_dir, path) = passfile("*:*:*:*:secret-in-file\n", 0o644);
    let env = Env {
        pgpassword: None,
        pgpassfile: Some(path),
        home: None,
    };
    let config = PgConfig::from_url_in("postgres://app@db/sms", &env).expect("url");
    assert!(config.pg.get_password().is_none());
    let note = config.password_note().expect("a note");
    assert!(note.contains("chmod 0600"), "{note}");
}

#[test]
fn no_text_shows_the_password() {
    let env = Env::default();
    let config = PgConfig::from_url_in(
        "postgres://app:S3cr%40t-pw@db.example.com:6543/sms?sslmode=require",
        &env,
    )
    .expect("url");
    assert_eq!(
        config.redacted_url(),
        "postgres://app:***@db.example.com:6543/sms?sslmode=require"
    );
    let debug = format!("{config:?}");
    assert!(debug.contains("app:***@db.example.com"), "{debug}");
    for shown in [debug, config.redacted_url()] {
        assert!(!shown.contains("S3cr"), "{shown}");
    }
    // A URL the parser refuses still has its password cut out of the error.
    for bad in [
        "postgres://app:S3cr3t-pw@db/sms?sslmode=sometimes",
        "postgres://app:S3cr3t-pw@db/sms?nonsense=1",
        "postgres://app:S3cr3t-pw@db:port/sms",
        "mysql://app:S3cr3t-pw@db/sms",
        "postgres://app@db/sms?password=S3cr3t-pw&sslmode=sometimes",
    ] {
        let error = PgConfig::from_url_in(bad, &env).expect_err(bad);
        let shown = format!("{error} {error:?}");
        assert!(matches!(error, Error::Url(_)), "{shown}");
        assert!(!shown.contains("S3cr3t"), "{bad}: {shown}");
    }
}

#[test]
fn only_the_ssl_modes_this_crate_implements_are_accepted() {
    let env = Env::default();
    for mode in ["disable", "prefer", "require"] {
        let url = format!("postgres://app@db/sms?sslmode={mode}");
        let config = PgConfig::from_url_in(&url, &env).expect(mode);
        assert!(config.redacted_url().ends_with(&format!("sslmode={mode}")));
    }
    let config = PgConfig::from_url_in("postgres://app@db/sms", &env).expect("default");
    assert!(config.redacted_url().ends_with("sslmode=prefer"));
    assert!(PgConfig::from_url_in("postgres://app@db/sms?sslmode=verify-full", &env).is_err());
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (bare, user, _) = super::split_test_url(db.url());
    let mut url = url::Url::parse(&bare).expect("url");
    url.set_password(Some("Wr0ng-Pa55word")).expect("password");
    assert_eq!(url.username(), user);
    let error = PgStore::connect(url.as_str(), Org::default())
        .await
        .expect_err("a wrong password");
    let shown = format!("{error} / {error:?}");
    assert!(matches!(error, Error::Connect { .. }), "{shown}");
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(
        shown.contains(":***@"),
        "the URL is named, redacted: {shown}"
    );
    assert!(!shown.contains("Wr0ng"), "{shown}");
}

#[tokio::test]
async fn the_password_may_come_from_pgpassword_or_a_password_file() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (bare, user, password) = super::split_test_url(db.url());
    let env = Env {
        pgpassword: Some(password.clone()),
        ..Env::default()
    };
    let store = PgStore::connect_with(
        PgConfig::from_url_in(&bare, &env).expect("url"),
        Org::default(),
    )
    .await
    .expect("PGPASSWORD");
    store.check().await.expect("usable");
    let debug = format!("{store:?}");
    assert!(!debug.contains(&password), "{debug}");

    let database = url::Url::parse(&bare)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let (_dir, path) = passfile(&format!("*:*:{database}:{user}:{password}\n"), 0o600);
    let env = Env {
        pgpassword: None,
        pgpassfile: Some(path),
        home: None,
    };
    let store = PgStore::connect_with(
        PgConfig::from_url_in(&bare, &env).expect("url"),
        Org::default(),
    )
    .await
    .expect("the password file");
    store.check().await.expect("usable");

    // Without any: the server refuses, and the error says where the password was looked for.
    let error = PgStore::connect_with(
        PgConfig::from_url_in(&bare, &Env::default()).expect("url"),
        Org::default(),
    )
    .await
    .expect_err("no password");
    assert!(error.to_string().contains("PGPASSWORD unset"), "{error}");
}
