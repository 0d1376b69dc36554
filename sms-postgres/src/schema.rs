//! The schema and its migrations: each runs once, in order, recorded in `sms_schema_version`,
//! all of them in one transaction that holds a fixed advisory lock, so that servers starting
//! together migrate once and the others wait, then find nothing to do.
//!
//! Every table starts with `org`: a store handle is opened for one organisation and every
//! statement names it. Times are milliseconds since the epoch (`BIGINT`, `_ms`), as in
//! `sms-sqlite`, since they come from the callers' clocks (`now` is a parameter in the core);
//! only the lease times, which workers compare with the database's own clock (one clock for
//! the fleet), are `timestamptz`. Tables are prefixed `sms_` so that they can share a database with the host's.

use crate::Error;

/// The advisory lock every migration runs under (`pg_advisory_xact_lock`, the one-`bigint`
/// form): `sms_sche` in ASCII. Advisory locks are per database, so two databases never wait on
/// each other.
pub(crate) const MIGRATION_LOCK: i64 = 0x736d_735f_7363_6865;

/// Migrations by version (index + 1). Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: everything sms-sqlite's schema 3 holds, keyed by organisation: opt-outs, campaigns,
    // records (with lease columns for the fleet of workers, unused yet), delivery statuses,
    // inbound replies, and the alert tables.
    "
    CREATE TABLE sms_opt_out_changes (
        id          BIGSERIAL PRIMARY KEY,
        org         TEXT NOT NULL,
        number      BIGINT NOT NULL,
        action      TEXT NOT NULL CHECK (action IN ('stop', 'start')),
        at_ms       BIGINT NOT NULL,
        source      TEXT NOT NULL,
        message_sid TEXT,
        body        TEXT
    );
    CREATE INDEX sms_opt_out_changes_by_number ON sms_opt_out_changes (org, number, id);

    CREATE TABLE sms_campaigns (
        org           TEXT NOT NULL,
        id            TEXT NOT NULL,
        name          TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        template      TEXT NOT NULL,
        settings      TEXT NOT NULL,
        PRIMARY KEY (org, id)
    );

    -- item: the frozen preview item (JSON); detail: the RecordState (JSON); state: its code;
    -- number: the eligible item's number (NULL when blocked), what a fleet leases by.
    -- lease_owner / lease_until: the worker sending the record and until when (later work).
    CREATE TABLE sms_records (
        org           TEXT NOT NULL,
        campaign_id   TEXT NOT NULL,
        seq           BIGINT NOT NULL,
        number        BIGINT,
        item          TEXT NOT NULL,
        state         TEXT NOT NULL,
        detail        TEXT NOT NULL,
        provider_id   TEXT,
        updated_at_ms BIGINT NOT NULL,
        lease_owner   TEXT,
        lease_until   TIMESTAMPTZ,
        PRIMARY KEY (org, campaign_id, seq),
        FOREIGN KEY (org, campaign_id) REFERENCES sms_campaigns (org, id)
    );
    CREATE INDEX sms_records_by_provider_id ON sms_records (org, provider_id)
        WHERE provider_id IS NOT NULL;
    CREATE INDEX sms_records_by_number ON sms_records (org, campaign_id, number)
        WHERE number IS NOT NULL;

    CREATE TABLE sms_deliveries (
        org         TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        status      TEXT NOT NULL,
        error_code  BIGINT,
        at_ms       BIGINT NOT NULL,
        PRIMARY KEY (org, provider_id)
    );

    CREATE TABLE sms_replies (
        org            TEXT NOT NULL,
        message_sid    TEXT NOT NULL,
        from_number    TEXT NOT NULL,
        to_number      TEXT NOT NULL,
        body           TEXT NOT NULL,
        segments       BIGINT NOT NULL,
        class          TEXT NOT NULL,
        keyword        TEXT,
        review         BOOLEAN NOT NULL,
        received_at_ms BIGINT NOT NULL,
        PRIMARY KEY (org, message_sid)
    );
    CREATE INDEX sms_replies_by_time ON sms_replies (org, received_at_ms);

    CREATE TABLE sms_alert_subscriptions (
        id        BIGSERIAL PRIMARY KEY,
        org       TEXT NOT NULL,
        record_id TEXT NOT NULL,
        kind      TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX sms_alert_subscriptions_by_record ON sms_alert_subscriptions (org, record_id, id);

    CREATE TABLE sms_alert_events (
        seq     BIGSERIAL PRIMARY KEY,
        org     TEXT NOT NULL,
        id      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        section TEXT NOT NULL,
        detail  TEXT NOT NULL,
        UNIQUE (org, id)
    );

    CREATE TABLE sms_alert_batches (
        org           TEXT NOT NULL,
        id            BIGINT NOT NULL,
        campaign_id   TEXT NOT NULL,
        claimed_at_ms BIGINT NOT NULL,
        PRIMARY KEY (org, id),
        UNIQUE (org, campaign_id)
    );

    -- detail: the ScheduledAlert (JSON); item: the rendered record once claimed (JSON);
    -- outcome: the AlertOutcome once done (JSON).
    CREATE TABLE sms_alerts (
        id           BIGSERIAL PRIMARY KEY,
        org          TEXT NOT NULL,
        event_id     TEXT NOT NULL,
        record_id    TEXT NOT NULL,
        detail       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
        batch_id     BIGINT,
        seq          BIGINT,
        item         TEXT,
        number       BIGINT,
        outcome      TEXT,
        outcome_code TEXT,
        done_at_ms   BIGINT,
        UNIQUE (org, event_id, record_id),
        FOREIGN KEY (org, batch_id) REFERENCES sms_alert_batches (org, id)
    );
    CREATE INDEX sms_alerts_by_status ON sms_alerts (org, status);
    CREATE INDEX sms_alerts_by_batch ON sms_alerts (org, batch_id, seq) WHERE batch_id IS NOT NULL;

    CREATE TABLE sms_alert_templates (
        org           TEXT NOT NULL,
        kind          TEXT NOT NULL,
        body          TEXT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        PRIMARY KEY (org, kind)
    );
    ",
    // 2: fleet runs (issue 10). A lease per (campaign, number), made with the campaign (and
    // here for the campaigns made before), so leasing is one `FOR UPDATE SKIP LOCKED` over
    // existing rows; the shared rate grid per campaign; an index on the records that still
    // have work. The record columns meant for leases go: a fleet leases numbers, not records.
    "
    CREATE TABLE sms_number_leases (
        org         TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        number      BIGINT NOT NULL,
        owner       TEXT,
        until       TIMESTAMPTZ,
        hold_until  TIMESTAMPTZ,
        PRIMARY KEY (org, campaign_id, number),
        FOREIGN KEY (org, campaign_id) REFERENCES sms_campaigns (org, id)
    );
    CREATE INDEX sms_number_leases_by_owner ON sms_number_leases (org, campaign_id, owner)
        WHERE owner IS NOT NULL;
    INSERT INTO sms_number_leases (org, campaign_id, number)
        SELECT DISTINCT org, campaign_id, number FROM sms_records WHERE number IS NOT NULL;

    -- The grid's next slot in microseconds of the database's clock, and the clock when it was
    -- booked. UNLOGGED: pacing, not a record of what was sent; after a server crash the table
    -- is empty and the next booking starts a new grid.
    CREATE UNLOGGED TABLE sms_campaign_rates (
        org         TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        next_us     BIGINT NOT NULL,
        booked_us   BIGINT NOT NULL,
        PRIMARY KEY (org, campaign_id)
    );

    CREATE INDEX sms_records_with_work ON sms_records (org, campaign_id, number)
        WHERE number IS NOT NULL AND state IN ('planned', 'deferred', 'sending', 'unknown');

    ALTER TABLE sms_records DROP COLUMN lease_owner, DROP COLUMN lease_until;
    ",
    // 3: a record held by quiet hours gives its number work once its opening has passed (the
    // core's rule), so a fleet sends it then. `held_until_ms` is the opening in milliseconds,
    // generated from the state the record holds: every write of a state sets it (whichever
    // statement writes), and the rows held before this migration get it as the column is
    // added. The opening is the `until` of the JSON state, RFC 3339 in UTC as `Timestamp`
    // writes it, read with immutable functions only (a generated column needs them; `::timestamptz`
    // is not one); a form it cannot read counts as open now, so a worker looks (the
    // dispatcher checks the hours again before sending), never as held for ever.
    r"
    CREATE FUNCTION sms_held_until_ms(state TEXT, detail TEXT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN state IS DISTINCT FROM 'held' THEN NULL
            ELSE (SELECT CASE
                WHEN u ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$' THEN
                    (extract(epoch FROM make_timestamp(
                        substr(u, 1, 4)::int, substr(u, 6, 2)::int, substr(u, 9, 2)::int,
                        substr(u, 12, 2)::int, substr(u, 15, 2)::int,
                        rtrim(substr(u, 18), 'Z')::float8)) * 1000)::bigint
                ELSE 0
            END FROM (SELECT detail::jsonb ->> 'until' AS u) held)
        END
    $$;

    ALTER TABLE sms_records ADD COLUMN held_until_ms BIGINT
        GENERATED ALWAYS AS (sms_held_until_ms(state, detail)) STORED;

    DROP INDEX sms_records_with_work;
    CREATE INDEX sms_records_with_work ON sms_records (org, campaign_id, number)
        WHERE number IS NOT NULL
          AND state IN ('planned', 'deferred', 'sending', 'unknown', 'held');
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database's schema up to [`SCHEMA_VERSION`] under [`MIGRATION_LOCK`], or refuses
/// a database migrated by a newer build. Returns the migrations it applied (0 when another
/// server had done them).
pub(crate) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<u32, Error> {
    let tx = client.transaction().await.map_err(Error::from_db)?;
    match migrate_in(&tx).await {
        Ok(applied) => {
            tx.commit().await.map_err(Error::from_db)?;
            Ok(applied)
        }
        Err(error) => {
            // Said, not left to the drop: the lock is released now, not when the connection
            // is closed (other servers are waiting on it).
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn migrate_in(tx: &deadpool_postgres::Transaction<'_>) -> Result<u32, Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(Error::from_db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sms_schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(Error::from_db)?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM sms_schema_version",
            &[],
        )
        .await
        .map_err(Error::from_db)?
        .get(0);
    let found = u32::try_from(found).unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let mut applied = 0;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)
            .await
            .map_err(|e| Error::Migrate(format!("migration {version}: {}", crate::db_text(&e))))?;
        tx.execute(
            "INSERT INTO sms_schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(Error::from_db)?;
        applied += 1;
    }
    Ok(applied)
}

/// The refusal of a server that would not keep a write once it returned.
pub(crate) async fn check_durability(client: &tokio_postgres::Client) -> Result<(), Error> {
    let row = client
        .query_one("SELECT current_setting('synchronous_commit')", &[])
        .await
        .map_err(Error::from_db)?;
    let setting: String = row.get(0);
    if setting == "off" {
        return Err(Error::NotDurable(setting));
    }
    Ok(())
}
