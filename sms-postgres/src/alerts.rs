//! The alert store: sign-ups, events, scheduled alerts, batches and wordings of one
//! organisation, with `sms-sqlite`'s meaning. Each write is one transaction; a claim is all or
//! nothing, and two runs (two servers) claiming one alert cannot both have it: the second
//! update waits for the first to commit, then finds the alert no longer pending.

use std::collections::HashSet;

use async_trait::async_trait;
use sms_core::alerts::{
    AlertBatch, AlertEvent, AlertOutcome, AlertStatus, AlertStore, AlertStoreError, EventId,
    EventInsert, RecentSend, ScheduledAlert, StoredAlert, SubscriptionChange,
};
use sms_core::journal::CampaignId;
use sms_core::{AlertKind, PhoneNumber, PreviewItem, PreviewOutcome, RecordId, Timestamp};
use tokio_postgres::Row;

use crate::PgStore;
use crate::optout::number_key;

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

/// Alert ids are `BIGSERIAL` values: positive, well inside `i64`.
fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn campaign_id(text: &str) -> Result<CampaignId, AlertStoreError> {
    CampaignId::new(text).ok_or_else(|| unavailable(format!("bad campaign id {text:?}")))
}

impl PgStore {
    fn alert_error(&self, error: &tokio_postgres::Error) -> AlertStoreError {
        AlertStoreError::Unavailable(self.text(error))
    }

    fn alert_get<'a, T: tokio_postgres::types::FromSql<'a>>(
        &self,
        row: &'a Row,
        index: usize,
    ) -> Result<T, AlertStoreError> {
        row.try_get(index).map_err(|e| self.alert_error(&e))
    }

    /// The alerts of this organisation matching `filter` (SQL over `a`), by id.
    async fn select_alerts(&self, filter: &str) -> Result<Vec<StoredAlert>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                &format!(
                    "SELECT a.id, a.detail, a.status, b.campaign_id, a.seq, a.outcome, a.done_at_ms
                     FROM sms_alerts a
                     LEFT JOIN sms_alert_batches b ON b.org = a.org AND b.id = a.batch_id
                     WHERE a.org = $1 {filter} ORDER BY a.id"
                ),
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        rows.iter()
            .map(|row| {
                let id: i64 = self.alert_get(row, 0)?;
                let alert: ScheduledAlert = parse("alert", self.alert_get(row, 1)?)?;
                let status: &str = self.alert_get(row, 2)?;
                let status = match status {
                    "pending" => AlertStatus::Pending,
                    "claimed" => {
                        let campaign: Option<&str> = self.alert_get(row, 3)?;
                        let seq: Option<i64> = self.alert_get(row, 4)?;
                        AlertStatus::Claimed {
                            campaign_id: campaign_id(campaign.unwrap_or_default())?,
                            seq: seq.and_then(|s| u32::try_from(s).ok()).unwrap_or_default(),
                        }
                    }
                    _ => {
                        let outcome: Option<&str> = self.alert_get(row, 5)?;
                        let at: Option<i64> = self.alert_get(row, 6)?;
                        AlertStatus::Done {
                            outcome: parse("alert outcome", outcome.unwrap_or("null"))?,
                            at: Timestamp::from_unix_ms(at.unwrap_or_default()),
                        }
                    }
                };
                Ok(StoredAlert {
                    id: u64::try_from(id).unwrap_or_default(),
                    alert,
                    status,
                })
            })
            .collect()
    }

    /// Marks done the alerts of `outcomes` that are in status `from`; others are left. An id
    /// this organisation has no alert of is a conflict, and nothing is written.
    async fn close(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
        from: &'static str,
    ) -> Result<(), AlertStoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut texts = Vec::with_capacity(outcomes.len());
        let mut codes = Vec::with_capacity(outcomes.len());
        for (id, outcome) in &outcomes {
            ids.push(sql_id(*id));
            texts.push(json(outcome)?);
            codes.push(outcome.code().to_owned());
        }
        let mut client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.alert_error(&e))?;
        let known: HashSet<i64> = tx
            .query(
                "SELECT id FROM sms_alerts WHERE org = $1 AND id = ANY($2)",
                &[&self.org_str(), &ids],
            )
            .await
            .map_err(|e| self.alert_error(&e))?
            .iter()
            .map(|row| self.alert_get(row, 0))
            .collect::<Result<_, _>>()?;
        if let Some((missing, _)) = outcomes
            .iter()
            .find(|(id, _)| !known.contains(&sql_id(*id)))
        {
            let _ = tx.rollback().await;
            return Err(AlertStoreError::Conflict(format!("no alert {missing}")));
        }
        // An alert named twice: the first outcome wins, as the first update would in SQLite
        // (the second finds it done already).
        let mut seen = HashSet::new();
        let keep: Vec<usize> = (0..ids.len()).filter(|&i| seen.insert(ids[i])).collect();
        let ids: Vec<i64> = keep.iter().map(|&i| ids[i]).collect();
        let texts: Vec<String> = keep.iter().map(|&i| texts[i].clone()).collect();
        let codes: Vec<String> = keep.iter().map(|&i| codes[i].clone()).collect();
        tx.execute(
            "UPDATE sms_alerts a
             SET status = 'done', outcome = u.outcome, outcome_code = u.code, done_at_ms = $3
             FROM unnest($4::bigint[], $5::text[], $6::text[]) AS u(id, outcome, code)
             WHERE a.org = $1 AND a.id = u.id AND a.status = $2",
            &[&self.org_str(), &from, &at.unix_ms(), &ids, &texts, &codes],
        )
        .await
        .map_err(|e| self.alert_error(&e))?;
        tx.commit().await.map_err(|e| self.alert_error(&e))
    }
}

#[async_trait]
impl AlertStore for PgStore {
    async fn record_subscription(&self, change: SubscriptionChange) -> Result<(), AlertStoreError> {
        let detail = json(&change)?;
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        client
            .execute(
                "INSERT INTO sms_alert_subscriptions (org, record_id, kind, detail)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &self.org_str(),
                    &change.record_id.as_str(),
                    &change.kind.as_str(),
                    &detail,
                ],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.alert_error(&e))
    }

    async fn subscription_history(
        &self,
        record: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT detail FROM sms_alert_subscriptions
                 WHERE org = $1 AND ($2::text IS NULL OR record_id = $2) ORDER BY id",
                &[&self.org_str(), &record.as_ref().map(RecordId::as_str)],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        rows.iter()
            .map(|row| parse("subscription", self.alert_get(row, 0)?))
            .collect()
    }

    async fn record_event(
        &self,
        event: AlertEvent,
        alerts: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError> {
        let detail = json(&event)?;
        let mut event_ids = Vec::with_capacity(alerts.len());
        let mut record_ids = Vec::with_capacity(alerts.len());
        let mut details = Vec::with_capacity(alerts.len());
        for alert in &alerts {
            event_ids.push(alert.event_id.to_string());
            record_ids.push(alert.record_id().to_string());
            details.push(json(alert)?);
        }
        let mut client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.alert_error(&e))?;
        let new_event = tx
            .execute(
                "INSERT INTO sms_alert_events (org, id, kind, section, detail)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org, id) DO NOTHING",
                &[
                    &self.org_str(),
                    &event.id.as_str(),
                    &event.kind.as_str(),
                    &event.section,
                    &detail,
                ],
            )
            .await
            .map_err(|e| self.alert_error(&e))?
            == 1;
        // WITH ORDINALITY: the alerts get their ids in the order given, as SQLite's inserts do.
        let scheduled = tx
            .execute(
                "INSERT INTO sms_alerts (org, event_id, record_id, detail, status)
                 SELECT $1, u.event_id, u.record_id, u.detail, 'pending'
                 FROM unnest($2::text[], $3::text[], $4::text[])
                     WITH ORDINALITY AS u(event_id, record_id, detail, n)
                 ORDER BY u.n
                 ON CONFLICT (org, event_id, record_id) DO NOTHING",
                &[&self.org_str(), &event_ids, &record_ids, &details],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        tx.commit().await.map_err(|e| self.alert_error(&e))?;
        let scheduled = usize::try_from(scheduled).unwrap_or(usize::MAX);
        Ok(EventInsert {
            new_event,
            scheduled,
            duplicates: alerts.len().saturating_sub(scheduled),
        })
    }

    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT detail FROM sms_alert_events WHERE org = $1 ORDER BY seq",
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        rows.iter()
            .map(|row| parse("event", self.alert_get(row, 0)?))
            .collect()
    }

    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.select_alerts("AND a.status = 'pending'").await
    }

    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        self.select_alerts("").await
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

    /// Batches are numbered per organisation (`alerts-batch-1`, `-2`...): the claim takes a
    /// transaction lock on the organisation's batch counter, so two servers claiming at once
    /// take turns rather than pick the same number.
    async fn claim_batch(
        &self,
        claimed_at: Timestamp,
        claims: Vec<(u64, PreviewItem)>,
    ) -> Result<AlertBatch, AlertStoreError> {
        let mut ids = Vec::with_capacity(claims.len());
        let mut seqs = Vec::with_capacity(claims.len());
        let mut items = Vec::with_capacity(claims.len());
        let mut numbers = Vec::with_capacity(claims.len());
        for (seq, (id, item)) in (0i64..).zip(&claims) {
            ids.push(sql_id(*id));
            seqs.push(seq);
            items.push(json(item)?);
            numbers.push(match &item.outcome {
                PreviewOutcome::Eligible { number, .. } => Some(number_key(*number)),
                PreviewOutcome::Blocked { .. } => None,
            });
        }
        let mut client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.alert_error(&e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&self.lock_key("alert-batches", "")],
        )
        .await
        .map_err(|e| self.alert_error(&e))?;
        let batch: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM sms_alert_batches WHERE org = $1",
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?
            .get(0);
        let campaign = format!("alerts-batch-{batch}");
        tx.execute(
            "INSERT INTO sms_alert_batches (org, id, campaign_id, claimed_at_ms)
             VALUES ($1, $2, $3, $4)",
            &[&self.org_str(), &batch, &campaign, &claimed_at.unix_ms()],
        )
        .await
        .map_err(|e| self.alert_error(&e))?;
        let claimed: HashSet<i64> = tx
            .query(
                "UPDATE sms_alerts a
                 SET status = 'claimed', batch_id = $2, seq = u.seq, item = u.item,
                     number = u.number
                 FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
                     AS u(id, seq, item, number)
                 WHERE a.org = $1 AND a.id = u.id AND a.status = 'pending'
                 RETURNING a.id",
                &[&self.org_str(), &batch, &ids, &seqs, &items, &numbers],
            )
            .await
            .map_err(|e| self.alert_error(&e))?
            .iter()
            .map(|row| self.alert_get(row, 0))
            .collect::<Result<_, _>>()?;
        let mut counted = HashSet::new();
        if let Some(refused) = ids
            .iter()
            .find(|id| !claimed.contains(id) || !counted.insert(**id))
        {
            // Rolled back: nothing of this claim stays.
            let _ = tx.rollback().await;
            return Err(AlertStoreError::Conflict(format!(
                "alert {refused} is not pending (claimed by another run?)"
            )));
        }
        tx.commit().await.map_err(|e| self.alert_error(&e))?;
        let (alerts, items): (Vec<u64>, Vec<PreviewItem>) = claims.into_iter().unzip();
        Ok(AlertBatch {
            campaign_id: campaign_id(&campaign)?,
            claimed_at,
            alerts,
            items,
        })
    }

    async fn open_batches(&self) -> Result<Vec<AlertBatch>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT b.id, b.campaign_id, b.claimed_at_ms, a.id, a.item
                 FROM sms_alert_batches b
                 JOIN sms_alerts a ON a.org = b.org AND a.batch_id = b.id
                 WHERE b.org = $1 AND b.id IN (
                     SELECT batch_id FROM sms_alerts WHERE org = $1 AND status = 'claimed')
                 ORDER BY b.id, a.seq",
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        let mut open: Vec<(i64, AlertBatch)> = Vec::new();
        for row in &rows {
            let batch: i64 = self.alert_get(row, 0)?;
            let alert: i64 = self.alert_get(row, 3)?;
            let item: Option<&str> = self.alert_get(row, 4)?;
            let item: PreviewItem = parse("claimed item", item.unwrap_or("null"))?;
            if open.last().is_none_or(|(id, _)| *id != batch) {
                open.push((
                    batch,
                    AlertBatch {
                        campaign_id: campaign_id(self.alert_get(row, 1)?)?,
                        claimed_at: Timestamp::from_unix_ms(self.alert_get(row, 2)?),
                        alerts: Vec::new(),
                        items: Vec::new(),
                    },
                ));
            }
            if let Some((_, current)) = open.last_mut() {
                current
                    .alerts
                    .push(u64::try_from(alert).unwrap_or_default());
                current.items.push(item);
            }
        }
        Ok(open.into_iter().map(|(_, batch)| batch).collect())
    }

    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT a.number, a.event_id, b.claimed_at_ms FROM sms_alerts a
                 JOIN sms_alert_batches b ON b.org = a.org AND b.id = a.batch_id
                 WHERE a.org = $1 AND b.claimed_at_ms >= $2 AND a.number IS NOT NULL
                   AND (a.status = 'claimed' OR a.outcome_code = 'sent')",
                &[&self.org_str(), &since.unix_ms()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        rows.iter()
            .map(|row| {
                let number: i64 = self.alert_get(row, 0)?;
                let event: &str = self.alert_get(row, 1)?;
                Ok(RecentSend {
                    number: PhoneNumber::from_e164(&format!("+{number}"))
                        .or_else(|_| PhoneNumber::from_e164_shape(&format!("+{number}")))
                        .map_err(|e| unavailable(format!("unreadable number {number}: {e}")))?,
                    event_id: EventId::new(event).ok_or_else(|| unavailable("blank event id"))?,
                    at: Timestamp::from_unix_ms(self.alert_get(row, 2)?),
                })
            })
            .collect()
    }

    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT kind, body FROM sms_alert_templates WHERE org = $1 ORDER BY kind COLLATE \"C\"",
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.alert_error(&e))?;
        rows.iter()
            .map(|row| {
                let kind: &str = self.alert_get(row, 0)?;
                let kind = AlertKind::parse(kind)
                    .ok_or_else(|| unavailable(format!("unknown alert kind {kind:?}")))?;
                Ok((kind, self.alert_get(row, 1)?))
            })
            .collect()
    }

    async fn set_template(&self, kind: AlertKind, text: String) -> Result<(), AlertStoreError> {
        let client = self.conn().await.map_err(AlertStoreError::Unavailable)?;
        client
            .execute(
                "INSERT INTO sms_alert_templates (org, kind, body, updated_at_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (org, kind) DO UPDATE SET body = $3, updated_at_ms = $4",
                &[
                    &self.org_str(),
                    &kind.as_str(),
                    &text,
                    &Timestamp::now().unix_ms(),
                ],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.alert_error(&e))
    }
}
