//! The schema and its migrations: each migration runs once, in order, recorded in
//! `schema_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::Error;

/// Migrations by version (index + 1). Append only: a released migration never changes.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // 4: organisations. Every row belongs to one organisation (`org`), which leads every
    // natural key and index, so that two organisations may hold the same campaign id, provider
    // id, MessageSid, event id or alert kind, and every query of a store handle filters on its
    // own. Row ids that only give arrival order (opt-out changes, sign-ups, events, alerts) stay
    // global: they are never a key a caller names without its organisation. `org` has no
    // default: an insert that forgets it fails rather than landing in `default`.
    //
    // SQLite cannot change a primary key in place: the old tables are renamed (their foreign
    // keys follow the rename), the new ones created under the old names, the rows copied as
    // organisation `default`, and the old tables dropped, children first. One transaction
    // (the migration's): a crash leaves schema 3 intact.
    "
    ALTER TABLE opt_out_changes RENAME TO opt_out_changes_v3;
    ALTER TABLE campaigns RENAME TO campaigns_v3;
    ALTER TABLE records RENAME TO records_v3;
    ALTER TABLE deliveries RENAME TO deliveries_v3;
    ALTER TABLE replies RENAME TO replies_v3;
    ALTER TABLE alert_subscriptions RENAME TO alert_subscriptions_v3;
    ALTER TABLE alert_events RENAME TO alert_events_v3;
    ALTER TABLE alert_batches RENAME TO alert_batches_v3;
    ALTER TABLE alerts RENAME TO alerts_v3;
    ALTER TABLE alert_templates RENAME TO alert_templates_v3;
    DROP INDEX opt_out_changes_by_number;
    DROP INDEX records_by_provider_id;
    DROP INDEX replies_by_time;
    DROP INDEX alert_subscriptions_by_record;
    DROP INDEX alerts_by_status;
    DROP INDEX alerts_by_batch;

    -- id: arrival order, the order the opt-out rule reads a number's changes in.
    CREATE TABLE opt_out_changes (
        id          INTEGER PRIMARY KEY,
        org         TEXT NOT NULL,
        number      INTEGER NOT NULL,
        action      TEXT NOT NULL CHECK (action IN ('stop', 'start')),
        at_ms       INTEGER NOT NULL,
        source      TEXT NOT NULL,
        message_sid TEXT,
        body        TEXT
    );
    CREATE INDEX opt_out_changes_by_number ON opt_out_changes (org, number, id);

    CREATE TABLE campaigns (
        org           TEXT NOT NULL,
        id            TEXT NOT NULL,
        name          TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        template      TEXT NOT NULL,
        settings      TEXT NOT NULL,
        PRIMARY KEY (org, id)
    ) WITHOUT ROWID;

    CREATE TABLE records (
        org           TEXT NOT NULL,
        campaign_id   TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        item          TEXT NOT NULL,
        state         TEXT NOT NULL,
        detail        TEXT NOT NULL,
        provider_id   TEXT,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org, campaign_id, seq),
        FOREIGN KEY (org, campaign_id) REFERENCES campaigns (org, id)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_provider_id ON records (org, provider_id)
        WHERE provider_id IS NOT NULL;

    CREATE TABLE deliveries (
        org         TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        status      TEXT NOT NULL,
        error_code  INTEGER,
        at_ms       INTEGER NOT NULL,
        PRIMARY KEY (org, provider_id)
    ) WITHOUT ROWID;

    CREATE TABLE replies (
        org            TEXT NOT NULL,
        message_sid    TEXT NOT NULL,
        from_number    TEXT NOT NULL,
        to_number      TEXT NOT NULL,
        body           TEXT NOT NULL,
        segments       INTEGER NOT NULL,
        class          TEXT NOT NULL,
        keyword        TEXT,
        review         INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org, message_sid)
    ) WITHOUT ROWID;
    CREATE INDEX replies_by_time ON replies (org, received_at_ms);

    CREATE TABLE alert_subscriptions (
        id        INTEGER PRIMARY KEY,
        org       TEXT NOT NULL,
        record_id TEXT NOT NULL,
        kind      TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX alert_subscriptions_by_record ON alert_subscriptions (org, record_id, id);

    CREATE TABLE alert_events (
        seq     INTEGER PRIMARY KEY,
        org     TEXT NOT NULL,
        id      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        section TEXT NOT NULL,
        detail  TEXT NOT NULL,
        UNIQUE (org, id)
    );

    -- id: the organisation's batch number (its campaign is alerts-batch-<id>).
    CREATE TABLE alert_batches (
        org           TEXT NOT NULL,
        id            INTEGER NOT NULL,
        campaign_id   TEXT NOT NULL,
        claimed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org, id),
        UNIQUE (org, campaign_id)
    ) WITHOUT ROWID;

    CREATE TABLE alerts (
        id           INTEGER PRIMARY KEY,
        org          TEXT NOT NULL,
        event_id     TEXT NOT NULL,
        record_id    TEXT NOT NULL,
        detail       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
        batch_id     INTEGER,
        seq          INTEGER,
        item         TEXT,
        number       INTEGER,
        outcome      TEXT,
        outcome_code TEXT,
        done_at_ms   INTEGER,
        UNIQUE (org, event_id, record_id),
        FOREIGN KEY (org, batch_id) REFERENCES alert_batches (org, id)
    );
    CREATE INDEX alerts_by_status ON alerts (org, status);
    CREATE INDEX alerts_by_batch ON alerts (org, batch_id, seq) WHERE batch_id IS NOT NULL;

    CREATE TABLE alert_templates (
        org           TEXT NOT NULL,
        kind          TEXT NOT NULL,
        body          TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org, kind)
    ) WITHOUT ROWID;

    INSERT INTO opt_out_changes (id, org, number, action, at_ms, source, message_sid, body)
        SELECT id, 'default', number, action, at_ms, source, message_sid, body
        FROM opt_out_changes_v3;
    INSERT INTO campaigns (org, id, name, created_at_ms, template, settings)
        SELECT 'default', id, name, created_at_ms, template, settings FROM campaigns_v3;
    INSERT INTO records (org, campaign_id, seq, item, state, detail, provider_id, updated_at_ms)
        SELECT 'default', campaign_id, seq, item, state, detail, provider_id, updated_at_ms
        FROM records_v3;
    INSERT INTO deliveries (org, provider_id, status, error_code, at_ms)
        SELECT 'default', provider_id, status, error_code, at_ms FROM deliveries_v3;
    INSERT INTO replies (org, message_sid, from_number, to_number, body, segments, class,
                         keyword, review, received_at_ms)
        SELECT 'default', message_sid, from_number, to_number, body, segments, class, keyword,
               review, received_at_ms
        FROM replies_v3;
    INSERT INTO alert_subscriptions (id, org, record_id, kind, detail)
        SELECT id, 'default', record_id, kind, detail FROM alert_subscriptions_v3;
    INSERT INTO alert_events (seq, org, id, kind, section, detail)
        SELECT seq, 'default', id, kind, section, detail FROM alert_events_v3;
    INSERT INTO alert_batches (org, id, campaign_id, claimed_at_ms)
        SELECT 'default', id, campaign_id, claimed_at_ms FROM alert_batches_v3;
    INSERT INTO alerts (id, org, event_id, record_id, detail, status, batch_id, seq, item,
                        number, outcome, outcome_code, done_at_ms)
        SELECT id, 'default', event_id, record_id, detail, status, batch_id, seq, item, number,
               outcome, outcome_code, done_at_ms
        FROM alerts_v3;
    INSERT INTO alert_templates (org, kind, body, updated_at_ms)
        SELECT 'default', kind, body, updated_at_ms FROM alert_templates_v3;

    DROP TABLE records_v3;
    DROP TABLE campaigns_v3;
    DROP TABLE deliveries_v3;
    DROP TABLE opt_out_changes_v3;
    DROP TABLE replies_v3;
    DROP TABLE alerts_v3;
    DROP TABLE alert_batches_v3;
    DROP TABLE alert_subscriptions_v3;
    DROP TABLE alert_events_v3;
    DROP TABLE alert_templates_v3;
    ",
    // 5: alerts and sign-ups in columns. `due` reads every pending alert and every sign-up: a
    // JSON document per row (an alert's about 640 bytes, the event's rendered values repeated
    // in each) cost most of its time. Now times are integer columns, the record's fields and
    // a sign-up's are columns, and what the alerts of one event share in one time zone (kind,
    // section, times, program year, the rendered merge values) is one row of `alert_values`
    // that every such alert points to.
    //
    // The old rows are converted by `convert_v4` (Rust: the JSON is read by the same code that
    // wrote it) in the same transaction, then the `_v4` tables are dropped.
    "
    ALTER TABLE alerts RENAME TO alerts_v4;
    ALTER TABLE alert_subscriptions RENAME TO alert_subscriptions_v4;
    DROP INDEX alerts_by_status;
    DROP INDEX alerts_by_batch;
    DROP INDEX alert_subscriptions_by_record;

    -- number: the E.164 number signed up with (none for an unsubscribe).
    CREATE TABLE alert_subscriptions (
        id        INTEGER PRIMARY KEY,
        org       TEXT NOT NULL,
        record_id TEXT NOT NULL,
        kind      TEXT NOT NULL,
        action    TEXT NOT NULL CHECK (action IN ('subscribe', 'unsubscribe')),
        number    TEXT,
        at_ms     INTEGER NOT NULL,
        source    TEXT NOT NULL,
        wording   TEXT NOT NULL
    );
    CREATE INDEX alert_subscriptions_by_record ON alert_subscriptions (org, record_id, id);

    -- fields: the event's merge values rendered in time_zone (JSON object).
    CREATE TABLE alert_values (
        id             INTEGER PRIMARY KEY,
        org            TEXT NOT NULL,
        event_id       TEXT NOT NULL,
        kind           TEXT NOT NULL,
        section        TEXT NOT NULL,
        time_zone      TEXT NOT NULL,
        starts_at_ms   INTEGER,
        received_at_ms INTEGER NOT NULL,
        program_year   TEXT,
        fields         TEXT NOT NULL
    );
    CREATE INDEX alert_values_by_event ON alert_values (org, event_id);

    -- The record as the roster gave it: client (permission: its Permitted Marketing Methods)
    -- or staff (permission: its Permitted SMS Text, 'yes' or 'no'); record_fields: its other
    -- merge fields (JSON object), NULL when none.
    CREATE TABLE alerts (
        id                  INTEGER PRIMARY KEY,
        org                 TEXT NOT NULL,
        event_id            TEXT NOT NULL,
        record_id           TEXT NOT NULL,
        values_id           INTEGER NOT NULL REFERENCES alert_values (id),
        due_at_ms           INTEGER NOT NULL,
        expires_at_ms       INTEGER NOT NULL,
        record_kind         TEXT NOT NULL CHECK (record_kind IN ('client', 'staff')),
        permission          TEXT NOT NULL,
        first_name          TEXT NOT NULL,
        last_name           TEXT NOT NULL,
        mobile              TEXT NOT NULL,
        record_time_zone    TEXT,
        record_fields       TEXT,
        status              TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
        batch_id            INTEGER,
        seq                 INTEGER,
        item                TEXT,
        number              INTEGER,
        outcome             TEXT,
        outcome_code        TEXT,
        done_at_ms          INTEGER,
        UNIQUE (org, event_id, record_id),
        FOREIGN KEY (org, batch_id) REFERENCES alert_batches (org, id)
    );
    CREATE INDEX alerts_by_status ON alerts (org, status);
    CREATE INDEX alerts_by_batch ON alerts (org, batch_id, seq) WHERE batch_id IS NOT NULL;
    ",
];

/// What a migration does besides its SQL, run right after it in the same transaction.
fn after_sql(version: usize, tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
    match version {
        5 => crate::alerts::convert_v4(tx),
        _ => Ok(()),
    }
}

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
        after_sql(index + 1, &tx)?;
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
