//! The alert store's SQL: sign-ups, events, scheduled alerts, batches and wordings, in the same
//! file (and through the same writer) as opt-outs and the journal. Every statement names the
//! store's organisation: alert ids are global row ids, so an id of another organisation's alert
//! finds nothing here.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sms_core::alerts::{
    AlertBatch, AlertEvent, AlertOutcome, AlertStatus, AlertStore, AlertStoreError, EventInsert,
    RecentSend, ScheduledAlert, StoredAlert, SubscriptionChange,
};
use sms_core::journal::{CampaignId, JournalError};
use sms_core::{AlertKind, PhoneNumber, PreviewItem, PreviewOutcome, RecordId, Timestamp};

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

/// One row of `alerts` besides its detail: id, status, batch, position, outcome, when done.
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
/// the pending ones are read through `alerts_by_status`).
fn select_alerts(
    conn: &Connection,
    org: &str,
    status: Option<&str>,
) -> Result<Vec<StoredAlert>, AlertStoreError> {
    let head = "SELECT id, detail, status, batch_id, seq, outcome, done_at_ms FROM alerts";
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
    let mut alerts = Vec::new();
    while let Some(r) = rows.next().map_err(unavailable)? {
        // The detail is parsed where SQLite holds it, not copied first: `due` reads 100,000.
        let detail = r.get_ref(1).map_err(unavailable)?;
        let detail = detail.as_str().map_err(unavailable)?;
        let alert: ScheduledAlert = parse("alert", detail)?;
        let row: AlertRow = (
            r.get(0).map_err(unavailable)?,
            r.get(2).map_err(unavailable)?,
            r.get(3).map_err(unavailable)?,
            r.get(4).map_err(unavailable)?,
            r.get(5).map_err(unavailable)?,
            r.get(6).map_err(unavailable)?,
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
        let detail = json(&change)?;
        self.write_alerts(move |conn, org| {
            conn.execute(
                "INSERT INTO alert_subscriptions (org, record_id, kind, detail)
                 VALUES (?1, ?2, ?3, ?4)",
                params![org, change.record_id.as_str(), change.kind.as_str(), detail],
            )
            .map(|_| ())
            .map_err(unavailable)
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
                    "SELECT detail FROM alert_subscriptions
                     WHERE org = ?1 AND (?2 IS NULL OR record_id = ?2) ORDER BY id",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![org, record.as_ref().map(RecordId::as_str)], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            rows.map(|row| parse("subscription", &row.map_err(unavailable)?))
                .collect()
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
            .map(|a| Ok((a.event_id.to_string(), a.record_id().to_string(), json(a)?)))
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
            let mut insert = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO alerts (org, event_id, record_id, detail, status)
                     VALUES (?1, ?2, ?3, ?4, 'pending')",
                )
                .map_err(unavailable)?;
            let (mut scheduled, mut duplicates) = (0, 0);
            for (event_id, record_id, detail) in &rows {
                if insert
                    .execute(params![org, event_id, record_id, detail])
                    .map_err(unavailable)?
                    == 1
                {
                    scheduled += 1;
                } else {
                    duplicates += 1;
                }
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
