//! The journal's SQL: campaigns, records, delivery statuses.

use rusqlite::{Connection, OptionalExtension, params};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, CampaignSummary, Delivery, DeliveryUpdate,
    JournalError, RecordEntry, RecordState, Transition, check_transition,
};
use sms_core::{DeliveryStatus, PreviewItem, Timestamp};

fn unavailable(error: impl std::fmt::Display) -> JournalError {
    JournalError::Unavailable(error.to_string())
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> JournalError {
    JournalError::Unavailable(format!("unreadable {what} in the journal: {error}"))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, JournalError> {
    serde_json::to_string(value).map_err(unavailable)
}

pub(crate) fn insert_campaign(
    conn: &Connection,
    org: &str,
    campaign: &Campaign,
) -> Result<(), JournalError> {
    if campaign_exists(conn, org, &campaign.id)? {
        return Err(JournalError::CampaignExists(campaign.id.clone()));
    }
    conn.execute(
        "INSERT INTO campaigns (org, id, name, created_at_ms, template, settings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            org,
            campaign.id.as_str(),
            campaign.name,
            campaign.created_at.unix_ms(),
            campaign.template,
            json(&campaign.settings)?,
        ],
    )
    .map_err(unavailable)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO records (org, campaign_id, seq, item, state, detail, provider_id,
                                  updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
        )
        .map_err(unavailable)?;
    for (seq, item) in (0u32..).zip(&campaign.items) {
        let state = Campaign::initial_state(item);
        insert
            .execute(params![
                org,
                campaign.id.as_str(),
                seq,
                json(item)?,
                state.code(),
                json(&state)?,
                campaign.created_at.unix_ms(),
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

fn campaign_exists(conn: &Connection, org: &str, id: &CampaignId) -> Result<bool, JournalError> {
    conn.query_row(
        "SELECT 1 FROM campaigns WHERE org = ?1 AND id = ?2",
        params![org, id.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(unavailable)
}

pub(crate) fn apply(
    conn: &Connection,
    org: &str,
    id: &CampaignId,
    transitions: &[Transition],
) -> Result<(), JournalError> {
    let mut read = conn
        .prepare_cached(
            "SELECT detail FROM records WHERE org = ?1 AND campaign_id = ?2 AND seq = ?3",
        )
        .map_err(unavailable)?;
    let mut write = conn
        .prepare_cached(
            "UPDATE records SET state = ?4, detail = ?5, provider_id = ?6, updated_at_ms = ?7
             WHERE org = ?1 AND campaign_id = ?2 AND seq = ?3",
        )
        .map_err(unavailable)?;
    let now = Timestamp::now().unix_ms();
    for t in transitions {
        let current: Option<String> = read
            .query_row(params![org, id.as_str(), t.seq], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        let Some(current) = current else {
            return Err(if campaign_exists(conn, org, id)? {
                JournalError::UnknownRecord {
                    campaign: id.clone(),
                    seq: t.seq,
                }
            } else {
                JournalError::UnknownCampaign(id.clone())
            });
        };
        let current: RecordState =
            serde_json::from_str(&current).map_err(|e| corrupt("record state", e))?;
        check_transition(id, t.seq, &current, &t.state)?;
        write
            .execute(params![
                org,
                id.as_str(),
                t.seq,
                t.state.code(),
                json(&t.state)?,
                t.state.provider_id(),
                now,
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

pub(crate) fn delivery(
    conn: &Connection,
    org: &str,
    update: &DeliveryUpdate,
) -> Result<bool, JournalError> {
    let current: Option<(String, Option<u32>, i64)> = conn
        .query_row(
            "SELECT status, error_code, at_ms FROM deliveries WHERE org = ?1 AND provider_id = ?2",
            params![org, update.provider_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let current = current
        .map(|(status, error_code, at)| delivery_from_row(&status, error_code, at))
        .transpose()?;
    if Delivery::should_replace(current.as_ref(), &update.status) {
        conn.execute(
            "INSERT INTO deliveries (org, provider_id, status, error_code, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (org, provider_id) DO UPDATE SET status = ?3, error_code = ?4, at_ms = ?5",
            params![
                org,
                update.provider_id,
                json(&update.status)?,
                update.error_code,
                update.at.unix_ms()
            ],
        )
        .map_err(unavailable)?;
    }
    let mut rows = conn
        .prepare_cached(
            "SELECT campaign_id, seq, detail FROM records WHERE org = ?1 AND provider_id = ?2",
        )
        .map_err(unavailable)?;
    let found: Vec<(String, u32, String)> = rows
        .query_map(params![org, update.provider_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    if let Some(billed) = update.segments {
        // The callback's segment count is what was billed: it wins over the estimate.
        for (campaign, seq, detail) in &found {
            let mut state: RecordState =
                serde_json::from_str(detail).map_err(|e| corrupt("record state", e))?;
            if let RecordState::Accepted { segments, .. } = &mut state {
                *segments = billed;
            }
            conn.execute(
                "UPDATE records SET detail = ?4 WHERE org = ?1 AND campaign_id = ?2 AND seq = ?3",
                params![org, campaign, seq, json(&state)?],
            )
            .map_err(unavailable)?;
        }
    }
    Ok(!found.is_empty())
}

fn delivery_from_row(
    status: &str,
    error_code: Option<u32>,
    at: i64,
) -> Result<Delivery, JournalError> {
    Ok(Delivery {
        status: serde_json::from_str::<DeliveryStatus>(status)
            .map_err(|e| corrupt("delivery status", e))?,
        error_code,
        at: Timestamp::from_unix_ms(at),
    })
}

pub(crate) fn campaign(
    conn: &Connection,
    org: &str,
    id: &CampaignId,
) -> Result<Campaign, JournalError> {
    let head: Option<(String, i64, String, String)> = conn
        .query_row(
            "SELECT name, created_at_ms, template, settings FROM campaigns
             WHERE org = ?1 AND id = ?2",
            params![org, id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let Some((name, created_at, template, settings)) = head else {
        return Err(JournalError::UnknownCampaign(id.clone()));
    };
    let settings: CampaignSettings =
        serde_json::from_str(&settings).map_err(|e| corrupt("campaign settings", e))?;
    let mut rows = conn
        .prepare_cached("SELECT item FROM records WHERE org = ?1 AND campaign_id = ?2 ORDER BY seq")
        .map_err(unavailable)?;
    let items = rows
        .query_map(params![org, id.as_str()], |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .map(|item| {
            let item = item.map_err(unavailable)?;
            serde_json::from_str::<PreviewItem>(&item).map_err(|e| corrupt("campaign record", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Campaign {
        id: id.clone(),
        name,
        created_at: Timestamp::from_unix_ms(created_at),
        template,
        settings,
        items,
    })
}

pub(crate) fn campaigns(
    conn: &Connection,
    org: &str,
) -> Result<Vec<CampaignSummary>, JournalError> {
    let mut rows = conn
        .prepare_cached(
            "SELECT c.id, c.name, c.created_at_ms,
                    (SELECT COUNT(*) FROM records r WHERE r.org = c.org AND r.campaign_id = c.id)
             FROM campaigns c WHERE c.org = ?1 ORDER BY c.created_at_ms, c.id",
        )
        .map_err(unavailable)?;
    rows.query_map([org], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })
    .map_err(unavailable)?
    .map(|row| {
        let (id, name, created_at, records) = row.map_err(unavailable)?;
        Ok(CampaignSummary {
            id: CampaignId::new(&id).ok_or_else(|| corrupt("campaign id", "blank"))?,
            name,
            created_at: Timestamp::from_unix_ms(created_at),
            records: u64::try_from(records).unwrap_or(0),
        })
    })
    .collect()
}

pub(crate) fn records(
    conn: &Connection,
    org: &str,
    id: &CampaignId,
) -> Result<Vec<RecordEntry>, JournalError> {
    let mut rows = conn
        .prepare_cached(
            "SELECT r.seq, r.detail, d.status, d.error_code, d.at_ms
             FROM records r
             LEFT JOIN deliveries d ON d.org = r.org AND d.provider_id = r.provider_id
             WHERE r.org = ?1 AND r.campaign_id = ?2 ORDER BY r.seq",
        )
        .map_err(unavailable)?;
    let entries = rows
        .query_map(params![org, id.as_str()], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<u32>>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(unavailable)?
        .map(|row| {
            let (seq, detail, status, error_code, at) = row.map_err(unavailable)?;
            let state = serde_json::from_str(&detail).map_err(|e| corrupt("record state", e))?;
            let delivery = match (status, at) {
                (Some(status), Some(at)) => Some(delivery_from_row(&status, error_code, at)?),
                _ => None,
            };
            Ok(RecordEntry {
                seq,
                state,
                delivery,
            })
        })
        .collect::<Result<Vec<_>, JournalError>>()?;
    if entries.is_empty() && !campaign_exists(conn, org, id)? {
        return Err(JournalError::UnknownCampaign(id.clone()));
    }
    Ok(entries)
}

/// Which of `ids` a record of any of the organisation's campaigns carries (indexed by
/// `records_by_provider_id`).
pub(crate) fn logged_provider_ids(
    conn: &Connection,
    org: &str,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, JournalError> {
    let mut statement = conn
        .prepare_cached("SELECT 1 FROM records WHERE org = ?1 AND provider_id = ?2 LIMIT 1")
        .map_err(unavailable)?;
    let mut logged = std::collections::HashSet::new();
    for id in ids {
        if statement.exists(params![org, id]).map_err(unavailable)? {
            logged.insert(id.clone());
        }
    }
    Ok(logged)
}
