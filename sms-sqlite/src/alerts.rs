//! The alert store's SQL: sign-ups, events, scheduled alerts, batches and wordings, in the same
//! file (and through the same writer) as opt-outs and the journal. Every statement names the
//! store's organisation: alert ids are global row ids, so an id of another organisation's alert
//! finds nothing here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::IntoDeserializer;
use sms_core::alerts::{
    AlertBatch, AlertEvent, AlertOutcome, AlertStatus, AlertStore, AlertStoreError, EventId,
    EventInsert, RecentSend, ScheduledAlert, StoredAlert, SubscriptionAction, SubscriptionChange,
    SubscriptionSource,
};
use sms_core::journal::{CampaignId, JournalError};
use sms_core::{
    AlertKind, PermittedMarketingMethods, PhoneNumber, PreviewItem, PreviewOutcome, ProgramYear,
    Recipient, RecipientKind, RecordId, Timestamp,
};

use crate::SqliteStore;
use crate::writer::Op;

fn unavailable(error: impl std::fmt::Display) -> AlertStoreError {
    AlertStoreError::Unavailable(error.to_string())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, AlertStoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, AlertStoreError> {
    serde_json::from_str(text)
        .map_err(|e| AlertStoreError::Unavailable(format!("unreadable {what} in the store: {e}")))
}

/// Alert ids are SQLite row ids: positive, well inside `i64`.
fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn number_column(number: PhoneNumber) -> i64 {
    i64::try_from(number.digits()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Runs `write` once on the writer thread for this store's organisation (its second
    /// argument), in its own savepoint, committed and fsync'd before this returns.
    async fn write_alerts<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection, &str) -> Result<T, AlertStoreError> + Send + 'static,
    ) -> Result<T, AlertStoreError> {
        let answer: Arc<Mutex<Option<Result<T, AlertStoreError>>>> = Arc::new(Mutex::new(None));
        let slot = answer.clone();
        let mut write = Some(write);
        let op = Op::Alerts(Box::new(move |conn: &Connection, org: &str| {
            let write = write
                .take()
                .ok_or_else(|| JournalError::Unavailable("a write ran twice".to_owned()))?;
            let result = write(conn, org);
            let failed = result.as_ref().err().map(|e| e.to_string());
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            // An error rolls this write's savepoint back.
            failed.map_or(Ok(()), |e| Err(JournalError::Unavailable(e)))
        }));
        let committed = self.inner.writer.write(&self.inner.org, op).await;
        let answer = answer.lock().unwrap_or_else(PoisonError::into_inner).take();
        match (committed, answer) {
            (Ok(_), Some(result)) => result,
            (Err(_), Some(Err(error))) => Err(error),
            (Err(error), _) => Err(unavailable(error)),
            (Ok(_), None) => Err(unavailable("the writer gave no answer")),
        }
    }

    /// Runs `read` on a read connection, given this store's organisation.
    fn read_alerts<T>(
        &self,
        read: impl FnOnce(&Connection, &str) -> Result<T, AlertStoreError>,
    ) -> Result<T, AlertStoreError> {
        let org = self.inner.org.as_str();
        self.read(|conn| read(conn, org))
            .map_err(AlertStoreError::Unavailable)?
    }
}

/// A value stored as its text (an id, a program year), rebuilt exactly as it was: through its
/// own `Deserialize`, so no rule of a constructor (trimming) changes what was stored.
fn from_text<T: serde::de::DeserializeOwned>(
    what: &str,
    text: String,
) -> Result<T, AlertStoreError> {
    let deserializer: serde::de::value::StringDeserializer<serde::de::value::Error> =
        text.into_deserializer();
    T::deserialize(deserializer)
        .map_err(|e| AlertStoreError::Unavailable(format!("unreadable {what} in the store: {e}")))
}

/// What the alerts of one event share in one time zone: a row of `alert_values`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct SharedColumns {
    event_id: String,
    kind: &'static str,
    section: String,
    time_zone: String,
    starts_at_ms: Option<i64>,
    received_at_ms: i64,
    program_year: Option<String>,
    fields: String,
}

/// An alert's own columns (the record and its times).
struct OwnColumns {
    record_id: String,
    due_at_ms: i64,
    expires_at_ms: i64,
    record_kind: &'static str,
    permission: String,
    first_name: String,
    last_name: String,
    mobile: String,
    record_time_zone: Option<String>,
    record_fields: Option<String>,
}

fn alert_columns(alert: &ScheduledAlert) -> Result<(SharedColumns, OwnColumns), AlertStoreError> {
    let recipient = &alert.recipient;
    let (record_kind, permission) = match &recipient.kind {
        RecipientKind::Client {
            permitted_marketing_methods,
        } => ("client", permitted_marketing_methods.as_str().to_owned()),
        RecipientKind::Staff { permitted_sms_text } => (
            "staff",
            if *permitted_sms_text { "yes" } else { "no" }.to_owned(),
        ),
    };
    let shared = SharedColumns {
        event_id: alert.event_id.to_string(),
        kind: alert.kind.as_str(),
        section: alert.section.clone(),
        time_zone: alert.time_zone.clone(),
        starts_at_ms: alert.starts_at.map(Timestamp::unix_ms),
        received_at_ms: alert.received_at.unix_ms(),
        program_year: alert.program_year.as_ref().map(|y| y.as_str().to_owned()),
        fields: json(alert.fields.as_ref())?,
    };
    let own = OwnColumns {
        record_id: recipient.record_id.as_str().to_owned(),
        due_at_ms: alert.due_at.unix_ms(),
        expires_at_ms: alert.expires_at.unix_ms(),
        record_kind,
        permission,
        first_name: recipient.first_name.clone(),
        last_name: recipient.last_name.clone(),
        mobile: recipient.mobile.clone(),
        record_time_zone: recipient.time_zone.clone(),
        record_fields: if recipient.fields.is_empty() {
            None
        } else {
            Some(json(&recipient.fields)?)
        },
    };
    Ok((shared, own))
}

/// The `alert_values` row holding `shared` (written when there is none yet), through `known`
/// for the rows this write has already looked up.
fn values_id(
    conn: &Connection,
    org: &str,
    shared: &SharedColumns,
    known: &mut HashMap<SharedColumns, i64>,
) -> rusqlite::Result<i64> {
    if let Some(id) = known.get(shared) {
        return Ok(*id);
    }
    let c = shared;
    // The same nine values find the row or make it.
    let values = params![
        org,
        c.event_id,
        c.kind,
        c.section,
        c.time_zone,
        c.starts_at_ms,
        c.received_at_ms,
        c.program_year,
        c.fields
    ];
    let found = conn
        .prepare_cached(
            "SELECT id FROM alert_values
             WHERE org = ?1 AND event_id = ?2 AND kind = ?3 AND section = ?4 AND time_zone = ?5
               AND starts_at_ms IS ?6 AND received_at_ms = ?7 AND program_year IS ?8
               AND fields = ?9",
        )?
        .query_row(values, |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached(
                "INSERT INTO alert_values (org, event_id, kind, section, time_zone, starts_at_ms,
                                           received_at_ms, program_year, fields)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(values)?;
            conn.last_insert_rowid()
        }
    };
    known.insert(shared.clone(), id);
    Ok(id)
}

/// Inserts one alert, pending unless `state` says otherwise (a converted old row: its id,
/// status, batch, position, item, number, outcome, outcome code, when done).
fn insert_alert(
    conn: &Connection,
    org: &str,
    values_id: i64,
    event_id: &str,
    own: &OwnColumns,
    state: Option<&OldState>,
) -> rusqlite::Result<()> {
    let o = own;
    let mut insert = conn.prepare_cached(
        "INSERT INTO alerts (org, event_id, record_id, values_id, due_at_ms, expires_at_ms,
                             record_kind, permission, first_name, last_name, mobile,
                             record_time_zone, record_fields, status, id, batch_id, seq, item,
                             number, outcome, outcome_code, done_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22)",
    )?;
    let pending = OldState::default();
    let s = state.unwrap_or(&pending);
    insert.execute(params![
        org,
        event_id,
        o.record_id,
        values_id,
        o.due_at_ms,
        o.expires_at_ms,
        o.record_kind,
        o.permission,
        o.first_name,
        o.last_name,
        o.mobile,
        o.record_time_zone,
        o.record_fields,
        s.status.as_deref().unwrap_or("pending"),
        s.id,
        s.batch_id,
        s.seq,
        s.item,
        s.number,
        s.outcome,
        s.outcome_code,
        s.done_at_ms,
    ])?;
    Ok(())
}

/// The columns of a schema-4 alert besides its JSON detail, carried over as they were.
#[derive(Default)]
struct OldState {
    id: Option<i64>,
    status: Option<String>,
    batch_id: Option<i64>,
    seq: Option<i64>,
    item: Option<String>,
    number: Option<i64>,
    outcome: Option<String>,
    outcome_code: Option<String>,
    done_at_ms: Option<i64>,
}

/// Inserts one sign-up change (with its id when converting an old row).
fn insert_subscription(
    conn: &Connection,
    org: &str,
    id: Option<i64>,
    change: &SubscriptionChange,
) -> rusqlite::Result<()> {
    let action = match change.action {
        SubscriptionAction::Subscribe => "subscribe",
        SubscriptionAction::Unsubscribe => "unsubscribe",
    };
    conn.prepare_cached(
        "INSERT INTO alert_subscriptions (id, org, record_id, kind, action, number, at_ms, source,
                                          wording)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id,
        org,
        change.record_id.as_str(),
        change.kind.as_str(),
        action,
        change.number.map(|n| n.e164()),
        change.at.unix_ms(),
        change.source.as_str(),
        change.wording
    ])?;
    Ok(())
}

/// Migration 5: every sign-up of `alert_subscriptions_v4` and every alert of `alerts_v4`
/// (JSON documents) into the new columns, with their ids, and an alert's status and outcome,
/// as they were; then drops the old tables. A document that cannot be read stops the migration
/// (nothing of it is kept).
pub(crate) fn convert_v4(conn: &Connection) -> Result<(), crate::Error> {
    let mut old = conn.prepare("SELECT id, org, detail FROM alert_subscriptions_v4 ORDER BY id")?;
    let mut rows = old.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let org: String = r.get(1)?;
        let detail: String = r.get(2)?;
        let change: SubscriptionChange = parse("sign-up", &detail)
            .map_err(|e| crate::Error::Migration(format!("sign-up {id} of schema 4: {e}")))?;
        insert_subscription(conn, &org, Some(id), &change)?;
    }
    drop(rows);
    drop(old);
    conn.execute_batch("DROP TABLE alert_subscriptions_v4")?;

    let failed = |id: i64, e: AlertStoreError| {
        crate::Error::Migration(format!("alert {id} of schema 4: {e}"))
    };
    let mut old = conn.prepare(
        "SELECT id, org, detail, status, batch_id, seq, item, number, outcome, outcome_code,
                done_at_ms
         FROM alerts_v4 ORDER BY id",
    )?;
    let mut rows = old.query([])?;
    // Per organisation: an event id of one is not the same event as another's.
    let mut known: HashMap<String, HashMap<SharedColumns, i64>> = HashMap::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let org: String = r.get(1)?;
        let detail: String = r.get(2)?;
        let alert: ScheduledAlert = parse("alert", &detail).map_err(|e| failed(id, e))?;
        let (shared, own) = alert_columns(&alert).map_err(|e| failed(id, e))?;
        let state = OldState {
            id: Some(id),
            status: r.get(3)?,
            batch_id: r.get(4)?,
            seq: r.get(5)?,
            item: r.get(6)?,
            number: r.get(7)?,
            outcome: r.get(8)?,
            outcome_code: r.get(9)?,
            done_at_ms: r.get(10)?,
        };
        let values = values_id(conn, &org, &shared, known.entry(org.clone()).or_default())?;
        insert_alert(conn, &org, values, &shared.event_id, &own, Some(&state))?;
    }
    drop(rows);
    drop(old);
    conn.execute_batch("DROP TABLE alerts_v4")?;
    Ok(())
}

/// One row of `alert_values`, as read back.
struct SharedValues {
    kind: AlertKind,
    section: String,
    time_zone: String,
    starts_at: Option<Timestamp>,
    received_at: Timestamp,
    program_year: Option<ProgramYear>,
    fields: Arc<BTreeMap<String, String>>,
}

fn read_values(
    statement: &mut rusqlite::CachedStatement<'_>,
    id: i64,
) -> Result<SharedValues, AlertStoreError> {
    let (kind, section, time_zone, starts_at, received_at, program_year, fields): (
        String,
        String,
        String,
        Option<i64>,
        i64,
        Option<String>,
        String,
    ) = statement
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(unavailable)?;
    Ok(SharedValues {
        kind: AlertKind::parse(&kind)
            .ok_or_else(|| unavailable(format!("unknown alert kind {kind:?}")))?,
        section,
        time_zone,
        starts_at: starts_at.map(Timestamp::from_unix_ms),
        received_at: Timestamp::from_unix_ms(received_at),
        program_year: program_year
            .map(|y| from_text("program year", y))
            .transpose()?,
        fields: Arc::new(parse("alert values", &fields)?),
    })
}

/// One row of `alerts` besides the alert itself: id, status, batch, position, outcome, when
/// done.
type AlertRow = (
    i64,
    String,
    Option<i64>,
    Option<u32>,
    Option<String>,
    Option<i64>,
);

fn stored_alert(
    conn: &Connection,
    org: &str,
    alert: ScheduledAlert,
    row: AlertRow,
) -> Result<StoredAlert, AlertStoreError> {
    let (id, status, batch_id, seq, outcome, done_at) = row;
    let id = u64::try_from(id).unwrap_or_default();
    let status = match status.as_str() {
        "pending" => AlertStatus::Pending,
        "claimed" => {
            let campaign: String = conn
                .query_row(
                    "SELECT campaign_id FROM alert_batches WHERE org = ?1 AND id = ?2",
                    params![org, batch_id],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            AlertStatus::Claimed {
                campaign_id: CampaignId::new(&campaign)
                    .ok_or_else(|| unavailable(format!("bad campaign id {campaign:?}")))?,
                seq: seq.unwrap_or_default(),
            }
        }
        _ => AlertStatus::Done {
            outcome: parse("alert outcome", outcome.as_deref().unwrap_or("null"))?,
            at: Timestamp::from_unix_ms(done_at.unwrap_or_default()),
        },
    };
    Ok(StoredAlert { id, alert, status })
}

/// The organisation's alerts, those with `status` only when given (two statements, so that
/// the pending ones are read through `alerts_by_status`). What the alerts of an event share
/// is read once per `alert_values` row, and shared.
fn select_alerts(
    conn: &Connection,
    org: &str,
    status: Option<&str>,
) -> Result<Vec<StoredAlert>, AlertStoreError> {
    let head = "SELECT id, status, batch_id, seq, outcome, done_at_ms, event_id, record_id,
                       values_id, due_at_ms, expires_at_ms, record_kind, permission, first_name,
                       last_name, mobile, record_time_zone, record_fields
                FROM alerts";
    let mut statement = match status {
        Some(_) => conn.prepare(&format!(
            "{head} WHERE org = ?1 AND status = ?2 ORDER BY id"
        )),
        None => conn.prepare(&format!("{head} WHERE org = ?1 ORDER BY id")),
    }
    .map_err(unavailable)?;
    let mut rows = match status {
        Some(status) => statement.query(params![org, status]),
        None => statement.query(params![org]),
    }
    .map_err(unavailable)?;
    let mut values_query = conn
        .prepare_cached(
            "SELECT kind, section, time_zone, starts_at_ms, received_at_ms, program_year, fields
             FROM alert_values WHERE id = ?1",
        )
        .map_err(unavailable)?;
    let mut values: HashMap<i64, SharedValues> = HashMap::new();
    let mut alerts = Vec::new();
    while let Some(r) = rows.next().map_err(unavailable)? {
        let get_err = |e: rusqlite::Error| unavailable(e);
        let values_id: i64 = r.get(8).map_err(get_err)?;
        let shared = match values.entry(values_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(read_values(&mut values_query, values_id)?)
            }
        };
        let record_kind: String = r.get(11).map_err(get_err)?;
        let permission: String = r.get(12).map_err(get_err)?;
        let kind = match record_kind.as_str() {
            "client" => RecipientKind::Client {
                permitted_marketing_methods: PermittedMarketingMethods::new(permission),
            },
            "staff" => RecipientKind::Staff {
                permitted_sms_text: permission == "yes",
            },
            other => return Err(unavailable(format!("unknown record kind {other:?}"))),
        };
        let record_fields: Option<String> = r.get(17).map_err(get_err)?;
        let recipient = Recipient {
            record_id: from_text("record id", r.get(7).map_err(get_err)?)?,
            kind,
            first_name: r.get(13).map_err(get_err)?,
            last_name: r.get(14).map_err(get_err)?,
            mobile: r.get(15).map_err(get_err)?,
            time_zone: r.get(16).map_err(get_err)?,
            fields: match record_fields {
                Some(fields) => parse("record fields", &fields)?,
                None => BTreeMap::new(),
            },
        };
        let event_id: EventId = from_text("event id", r.get(6).map_err(get_err)?)?;
        let alert = ScheduledAlert {
            event_id,
            kind: shared.kind,
            section: shared.section.clone(),
            recipient,
            time_zone: shared.time_zone.clone(),
            due_at: Timestamp::from_unix_ms(r.get(9).map_err(get_err)?),
            expires_at: Timestamp::from_unix_ms(r.get(10).map_err(get_err)?),
            starts_at: shared.starts_at,
            program_year: shared.program_year.clone(),
            fields: shared.fields.clone(),
            received_at: shared.received_at,
        };
        let row: AlertRow = (
            r.get(0).map_err(get_err)?,
            r.get(1).map_err(get_err)?,
            r.get(2).map_err(get_err)?,
            r.get(3).map_err(get_err)?,
            r.get(4).map_err(get_err)?,
            r.get(5).map_err(get_err)?,
        );
        alerts.push(stored_alert(conn, org, alert, row)?);
    }
    Ok(alerts)
}

impl SqliteStore {
    /// Marks done the alerts of `outcomes` that are in status `from`; others are left.
    async fn close(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
        from: &'static str,
    ) -> Result<(), AlertStoreError> {
        let rows = outcomes
            .iter()
            .map(|(id, outcome)| Ok((*id, json(outcome)?, outcome.code())))
            .collect::<Result<Vec<_>, AlertStoreError>>()?;
        self.write_alerts(move |conn, org| {
            let mut exists = conn
                .prepare_cached("SELECT 1 FROM alerts WHERE org = ?1 AND id = ?2")
                .map_err(unavailable)?;
            let mut update = conn
                .prepare_cached(
                    "UPDATE alerts SET status = 'done', outcome = ?3, outcome_code = ?4, done_at_ms = ?5
                     WHERE org = ?1 AND id = ?2 AND status = ?6",
                )
                .map_err(unavailable)?;
            for (id, outcome, code) in &rows {
                if exists
                    .query_row(params![org, sql_id(*id)], |_| Ok(()))
                    .optional()
                    .map_err(unavailable)?
                    .is_none()
                {
                    return Err(AlertStoreError::Conflict(format!("no alert {id}")));
                }
                update
                    .execute(params![org, sql_id(*id), outcome, code, at.unix_ms(), from])
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn record_subscription(&self, change: SubscriptionChange) -> Result<(), AlertStoreError> {
        self.write_alerts(move |conn, org| {
            insert_subscription(conn, org, None, &change).map_err(unavailable)
        })
        .await
    }

    async fn subscription_history(
        &self,
        record: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError> {
        self.read_alerts(|conn, org| {
            let mut statement = conn
                .prepare(
                    "SELECT record_id, kind, action, number, at_ms, source, wording
                     FROM alert_subscriptions
                     WHERE org = ?1 AND (?2 IS NULL OR record_id = ?2) ORDER BY id",
                )
                .map_err(unavailable)?;
            let mut rows = statement
                .query(params![org, record.as_ref().map(RecordId::as_str)])
                .map_err(unavailable)?;
            let mut changes = Vec::new();
            while let Some(r) = rows.next().map_err(unavailable)? {
                let text = |i: usize| -> Result<&str, AlertStoreError> {
                    r.get_ref(i)
                        .map_err(unavailable)?
                        .as_str()
                        .map_err(unavailable)
                };
                let kind = text(1)?;
                let number: Option<String> = r.get(3).map_err(unavailable)?;
                changes.push(SubscriptionChange {
                    record_id: from_text("record id", r.get(0).map_err(unavailable)?)?,
                    kind: AlertKind::parse(kind)
                        .ok_or_else(|| unavailable(format!("unknown alert kind {kind:?}")))?,
                    action: match text(2)? {
                        "subscribe" => SubscriptionAction::Subscribe,
                        "unsubscribe" => SubscriptionAction::Unsubscribe,
                        other => return Err(unavailable(format!("unknown action {other:?}"))),
                    },
                    number: number.map(|n| from_text("number", n)).transpose()?,
                    at: Timestamp::from_unix_ms(r.get(4).map_err(unavailable)?),
                    source: match text(5)? {
                        "myaccount" => SubscriptionSource::Myaccount,
                        "staff" => SubscriptionSource::Staff,
                        "import" => SubscriptionSource::Import,
                        other => return Err(unavailable(format!("unknown source {other:?}"))),
                    },
                    wording: r.get(6).map_err(unavailable)?,
                });
            }
            Ok(changes)
        })
    }

    async fn record_event(
        &self,
        event: AlertEvent,
        alerts: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError> {
        let detail = json(&event)?;
        let rows = alerts
            .iter()
            .map(alert_columns)
            .collect::<Result<Vec<_>, AlertStoreError>>()?;
        self.write_alerts(move |conn, org| {
            let new_event = conn
                .execute(
                    "INSERT OR IGNORE INTO alert_events (org, id, kind, section, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        org,
                        event.id.as_str(),
                        event.kind.as_str(),
                        event.section,
                        detail
                    ],
                )
                .map_err(unavailable)?
                == 1;
            let mut exists = conn
                .prepare_cached(
                    "SELECT 1 FROM alerts WHERE org = ?1 AND event_id = ?2 AND record_id = ?3",
                )
                .map_err(unavailable)?;
            let mut known = HashMap::new();
            let (mut scheduled, mut duplicates) = (0, 0);
            for (shared, own) in &rows {
                // A pair scheduled before (or twice in this call) is left as it was.
                if exists
                    .query_row(params![org, shared.event_id, own.record_id], |_| Ok(()))
                    .optional()
                    .map_err(unavailable)?
                    .is_some()
                {
                    duplicates += 1;
                    continue;
                }
                let values = values_id(conn, org, shared, &mut known).map_err(unavailable)?;
                insert_alert(conn, org, values, &shared.event_id, own, None)
                    .map_err(unavailable)?;
                scheduled += 1;
            }
            Ok(EventInsert {
                new_event,
                scheduled,
                duplicates,
            })
        })
        .await
    }

    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError> {
        self.read_alerts(|conn, org| {
            let mut statement = conn
                .prepare("SELECT detail FROM alert_events WHERE org = ?1 ORDER BY seq")
                .map_err(unavailable)?;
            let rows = statement
                .query_map([org], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|row| parse("event", &row.map_err(unavailable)?))
                .collect()
        })
    }

    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.read_alerts(|conn, org| select_alerts(conn, org, Some("pending")))
    }

    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.read_alerts(|conn, org| select_alerts(conn, org, None))
    }

    async fn finish(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.close(outcomes, at, "pending").await
    }

    async fn settle(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.close(outcomes, at, "claimed").await
    }

    async fn claim_batch(
        &self,
        claimed_at: Timestamp,
        claims: Vec<(u64, PreviewItem)>,
    ) -> Result<AlertBatch, AlertStoreError> {
        let rows = claims
            .iter()
            .map(|(id, item)| {
                let number = match &item.outcome {
                    PreviewOutcome::Eligible { number, .. } => Some(number_column(*number)),
                    PreviewOutcome::Blocked { .. } => None,
                };
                Ok((*id, json(item)?, number))
            })
            .collect::<Result<Vec<_>, AlertStoreError>>()?;
        let (alerts, items): (Vec<u64>, Vec<PreviewItem>) = claims.into_iter().unzip();
        let campaign_id = self
            .write_alerts(move |conn, org| {
                let batch: i64 = conn
                    .query_row(
                        "SELECT COALESCE(MAX(id), 0) + 1 FROM alert_batches WHERE org = ?1",
                        [org],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                let campaign = format!("alerts-batch-{batch}");
                conn.execute(
                    "INSERT INTO alert_batches (org, id, campaign_id, claimed_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![org, batch, campaign, claimed_at.unix_ms()],
                )
                .map_err(unavailable)?;
                let mut update = conn
                    .prepare_cached(
                        "UPDATE alerts SET status = 'claimed', batch_id = ?3, seq = ?4, item = ?5, number = ?6
                         WHERE org = ?1 AND id = ?2 AND status = 'pending'",
                    )
                    .map_err(unavailable)?;
                for (seq, (id, item, number)) in (0u32..).zip(&rows) {
                    if update
                        .execute(params![org, sql_id(*id), batch, seq, item, number])
                        .map_err(unavailable)?
                        != 1
                    {
                        // The savepoint is rolled back: nothing of this claim stays.
                        return Err(AlertStoreError::Conflict(format!(
                            "alert {id} is not pending (claimed by another run?)"
                        )));
                    }
                }
                Ok(campaign)
            })
            .await?;
        Ok(AlertBatch {
            campaign_id: CampaignId::new(&campaign_id)
                .ok_or_else(|| unavailable(format!("bad campaign id {campaign_id:?}")))?,
            claimed_at,
            alerts,
            items,
        })
    }

    async fn open_batches(&self) -> Result<Vec<AlertBatch>, AlertStoreError> {
        self.read_alerts(|conn, org| {
            let mut batches_query = conn
                .prepare(
                    "SELECT id, campaign_id, claimed_at_ms FROM alert_batches
                     WHERE org = ?1 AND id IN
                       (SELECT DISTINCT batch_id FROM alerts WHERE org = ?1 AND status = 'claimed')
                     ORDER BY id",
                )
                .map_err(unavailable)?;
            let batches: Vec<(i64, String, i64)> = batches_query
                .query_map([org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            let mut members = conn
                .prepare(
                    "SELECT id, item FROM alerts WHERE org = ?1 AND batch_id = ?2 ORDER BY seq",
                )
                .map_err(unavailable)?;
            let mut open = Vec::new();
            for (batch, campaign, claimed_at) in batches {
                let rows: Vec<(i64, String)> = members
                    .query_map(params![org, batch], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(unavailable)?
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                let mut alerts = Vec::with_capacity(rows.len());
                let mut items = Vec::with_capacity(rows.len());
                for (id, item) in rows {
                    alerts.push(u64::try_from(id).unwrap_or_default());
                    items.push(parse("claimed item", &item)?);
                }
                open.push(AlertBatch {
                    campaign_id: CampaignId::new(&campaign)
                        .ok_or_else(|| unavailable(format!("bad campaign id {campaign:?}")))?,
                    claimed_at: Timestamp::from_unix_ms(claimed_at),
                    alerts,
                    items,
                });
            }
            Ok(open)
        })
    }

    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError> {
        self.read_alerts(|conn, org| {
            let mut statement = conn
                .prepare(
                    "SELECT a.number, a.event_id, b.claimed_at_ms FROM alerts a
                     JOIN alert_batches b ON b.org = a.org AND b.id = a.batch_id
                     WHERE a.org = ?1 AND b.claimed_at_ms >= ?2 AND a.number IS NOT NULL
                       AND (a.status = 'claimed' OR a.outcome_code = 'sent')",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![org, since.unix_ms()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut sends = Vec::new();
            for row in rows {
                let (number, event, at) = row.map_err(unavailable)?;
                let number = PhoneNumber::from_e164(&format!("+{number}"))
                    .or_else(|_| PhoneNumber::from_e164_shape(&format!("+{number}")))
                    .map_err(|e| unavailable(format!("unreadable number {number}: {e}")))?;
                sends.push(RecentSend {
                    number,
                    event_id: sms_core::alerts::EventId::new(&event)
                        .ok_or_else(|| unavailable("blank event id"))?,
                    at: Timestamp::from_unix_ms(at),
                });
            }
            Ok(sends)
        })
    }

    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError> {
        self.read_alerts(|conn, org| {
            let mut statement = conn
                .prepare("SELECT kind, body FROM alert_templates WHERE org = ?1 ORDER BY kind")
                .map_err(unavailable)?;
            let rows = statement
                .query_map([org], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            let mut templates = Vec::new();
            for row in rows {
                let (kind, body) = row.map_err(unavailable)?;
                let kind = AlertKind::parse(&kind)
                    .ok_or_else(|| unavailable(format!("unknown alert kind {kind:?}")))?;
                templates.push((kind, body));
            }
            Ok(templates)
        })
    }

    async fn set_template(&self, kind: AlertKind, text: String) -> Result<(), AlertStoreError> {
        let now = Timestamp::now().unix_ms();
        self.write_alerts(move |conn, org| {
            conn.execute(
                "INSERT INTO alert_templates (org, kind, body, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (org, kind) DO UPDATE SET body = ?3, updated_at_ms = ?4",
                params![org, kind.as_str(), text, now],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }
}
