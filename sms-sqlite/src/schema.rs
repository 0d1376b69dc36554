//! The schema and its migrations: each migration runs once, in order, recorded in
//! `schema_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::Error;

/// Migrations by version (index + 1). Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: opt-outs, campaigns, records, delivery statuses.
    "
    CREATE TABLE opt_out_changes (
        id          INTEGER PRIMARY KEY,
        number      INTEGER NOT NULL,
        action      TEXT NOT NULL CHECK (action IN ('stop', 'start')),
        at_ms       INTEGER NOT NULL,
        source      TEXT NOT NULL,
        message_sid TEXT,
        body        TEXT
    );
    CREATE INDEX opt_out_changes_by_number ON opt_out_changes (number, at_ms);

    CREATE TABLE campaigns (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        template      TEXT NOT NULL,
        settings      TEXT NOT NULL
    );

    -- item: the frozen preview item (JSON); detail: the RecordState (JSON); state: its code.
    CREATE TABLE records (
        campaign_id   TEXT NOT NULL REFERENCES campaigns (id),
        seq           INTEGER NOT NULL,
        item          TEXT NOT NULL,
        state         TEXT NOT NULL,
        detail        TEXT NOT NULL,
        provider_id   TEXT,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_provider_id ON records (provider_id) WHERE provider_id IS NOT NULL;

    CREATE TABLE deliveries (
        provider_id TEXT PRIMARY KEY,
        status      TEXT NOT NULL,
        error_code  INTEGER,
        at_ms       INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 2: inbound replies (every message received, STOP/START included), for the units they
    // use and for a person to read the ones that may revoke consent. One row per MessageSid:
    // Twilio's redelivery of a webhook stores nothing new.
    "
    CREATE TABLE replies (
        message_sid    TEXT PRIMARY KEY,
        from_number    TEXT NOT NULL,
        to_number      TEXT NOT NULL,
        body           TEXT NOT NULL,
        segments       INTEGER NOT NULL,
        class          TEXT NOT NULL,
        keyword        TEXT,
        review         INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX replies_by_time ON replies (received_at_ms);
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the file's schema up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )?;
    if found > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i64::try_from(index + 1).unwrap_or(i64::MAX)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_harmless_and_a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().expect("in memory");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second");
        let versions: u32 = conn
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .expect("count");
        assert_eq!(versions, SCHEMA_VERSION);
        conn.execute("INSERT INTO schema_version VALUES (999)", [])
            .expect("insert");
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::NewerSchema { found: 999, .. })
        ));
    }
}
