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
    // 3: MyAccount Alerts: sign-up history, events, scheduled alerts, the batches they are sent
    // in (each a campaign of the journal) and the wordings.
    "
    CREATE TABLE alert_subscriptions (
        id        INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL,
        kind      TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX alert_subscriptions_by_record ON alert_subscriptions (record_id);

    CREATE TABLE alert_events (
        seq     INTEGER PRIMARY KEY,
        id      TEXT NOT NULL UNIQUE,
        kind    TEXT NOT NULL,
        section TEXT NOT NULL,
        detail  TEXT NOT NULL
    );

    CREATE TABLE alert_batches (
        id            INTEGER PRIMARY KEY,
        campaign_id   TEXT NOT NULL UNIQUE,
        claimed_at_ms INTEGER NOT NULL
    );

    -- detail: the ScheduledAlert (JSON); item: the rendered record once claimed (JSON);
    -- outcome: the AlertOutcome once done (JSON).
    CREATE TABLE alerts (
        id           INTEGER PRIMARY KEY,
        event_id     TEXT NOT NULL,
        record_id    TEXT NOT NULL,
        detail       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
        batch_id     INTEGER REFERENCES alert_batches (id),
        seq          INTEGER,
        item         TEXT,
        number       INTEGER,
        outcome      TEXT,
        outcome_code TEXT,
        done_at_ms   INTEGER,
        UNIQUE (event_id, record_id)
    );
    CREATE INDEX alerts_by_status ON alerts (status);
    CREATE INDEX alerts_by_batch ON alerts (batch_id, seq) WHERE batch_id IS NOT NULL;

    CREATE TABLE alert_templates (
        kind          TEXT PRIMARY KEY,
        body          TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
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
