//! TLS: `disable` never encrypts, `prefer` encrypts when the server offers it (without checking
//! its certificate, as libpq), `require` refuses a certificate the system does not trust.

use sms_core::Org;

use super::fresh;
use crate::test_support::with_param;
use crate::{Error, PgStore};

async fn encrypted(store: &PgStore) -> bool {
    store
        .conn()
        .await
        .expect("connection")
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test]
async fn each_ssl_mode_does_what_it_says() {
    let Some((db, _)) = fresh("default").await else {
        return;
    };
    let admin = db.admin().await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.expect("ssl").get(0);

    let plain = PgStore::connect(&with_param(db.url(), "sslmode", "disable"), Org::default())
        .await
        .expect("disable");
    assert!(!encrypted(&plain).await);

    if ssl != "on" {
        eprintln!("the test server has ssl={ssl}: the prefer and require checks did not run");
        return;
    }
    let preferred = PgStore::connect(&with_param(db.url(), "sslmode", "prefer"), Org::default())
        .await
        .expect("prefer: the server's own certificate is not checked");
    assert!(encrypted(&preferred).await, "prefer encrypts when it can");
    preferred.check().await.expect("usable over TLS");

    // The test server's certificate is Debian's self-signed "snakeoil" one, made for the name
    // `localhost` (this machine may even trust it: it sits in /etc/ssl/certs). Reached as
    // 127.0.0.1, the certificate does not name the host: `prefer` (unchecked) connected
    // above, `require` (checked) must refuse.
    let by_address = db.url().replace("@localhost:", "@127.0.0.1:");
    let error = PgStore::connect(
        &with_param(&by_address, "sslmode", "require"),
        Org::default(),
    )
    .await
    .expect_err("an untrusted certificate");
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    let text = error.to_string().to_lowercase();
    assert!(text.contains("certificate"), "{text}");
}
