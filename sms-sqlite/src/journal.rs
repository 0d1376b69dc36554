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

pub(crate) fn insert_campaign(conn: &Connection, campaign: &Campaign) -> Result<(), JournalError> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM campaigns WHERE id = ?1",
            [campaign.id.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map_err(unavailable)?;
    if exists.is_some() {
        return Err(JournalError::CampaignExists(campaign.id.clone()));
    }
    conn.execute(
        "INSERT INTO campaigns (id, name, created_at_ms, template, settings) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
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
            "INSERT INTO records (campaign_id, seq, item, state, detail, provider_id, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
        )
        .map_err(unavailable)?;
    for (seq, item) in (0u32..).zip(&campaign.items) {
        let state = Campaign::initial_state(item);
        insert
            .execute(params![
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

fn campaign_exists(conn: &Connection, id: &CampaignId) -> Result<bool, JournalError> {
    conn.query_row(
        "SELECT 1 FROM campaigns WHERE id = ?1",
        [id.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(unavailable)
}

pub(crate) fn apply(
    conn: &Connection,
    id: &CampaignId,
    transitions: &[Transition],
) -> Result<(), JournalError> {
    let mut read = conn
        .prepare_cached("SELECT detail FROM records WHERE campaign_id = ?1 AND seq = ?2")
        .map_err(unavailable)?;
    let mut write = conn
        .prepare_cached(
            "UPDATE records SET state = ?3, detail = ?4, provider_id = ?5, updated_at_ms = ?6
             WHERE campaign_id = ?1 AND seq = ?2",
        )
        .map_err(unavailable)?;
    let now = Timestamp::now().unix_ms();
    for t in transitions {
        let current: Option<String> = read
            .query_row(params![id.as_str(), t.seq], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        let Some(current) = current else {
            return Err(if campaign_exists(conn, id)? {
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

pub(crate) fn delivery(conn: &Connection, update: &DeliveryUpdate) -> Result<bool, JournalError> {
    let current: Option<(String, Option<u32>, i64)> = conn
        .query_row(
            "SELECT status, error_code, at_ms FROM deliveries WHERE provider_id = ?1",
            [&update.provider_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let current = current
        .map(|(status, error_code, at)| delivery_from_row(&status, error_code, at))
        .transpose()?;
    if Delivery::should_replace(current.as_ref(), &update.status) {
        conn.execute(
            "INSERT INTO deliveries (provider_id, status, error_code, at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (provider_id) DO UPDATE SET status = ?2, error_code = ?3, at_ms = ?4",
            params![
                update.provider_id,
                json(&update.status)?,
                update.error_code,
                update.at.unix_ms()
            ],
        )
        .map_err(unavailable)?;
    }
    let mut rows = conn
        .prepare_cached("SELECT campaign_id, seq, detail FROM records WHERE provider_id = ?1")
        .map_err(unavailable)?;
    let found: Vec<(String, u32, String)> = rows
        .query_map([&update.provider_id], |row| {
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
                "UPDATE records SET detail = ?3 WHERE campaign_id = ?1 AND seq = ?2",
                params![campaign, seq, json(&state)?],
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

pub(crate) fn campaign(conn: &Connection, id: &CampaignId) -> Result<Campaign, JournalError> {
    let head: Option<(String, i64, String, String)> = conn
        .query_row(
            "SELECT name, created_at_ms, template, settings FROM campaigns WHERE id = ?1",
            [id.as_str()],
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
        .prepare_cached("SELECT item FROM records WHERE campaign_id = ?1 ORDER BY seq")
        .map_err(unavailable)?;
    let items = rows
        .query_map([id.as_str()], |row| row.get::<_, String>(0))
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

pub(crate) fn campaigns(conn: &Connection) -> Result<Vec<CampaignSummary>, JournalError> {
    let mut rows = conn
        .prepare_cached(
            "SELECT c.id, c.name, c.created_at_ms,
                    (SELECT COUNT(*) FROM records r WHERE r.campaign_id = c.id)
             FROM campaigns c ORDER BY c.created_at_ms, c.id",
        )
        .map_err(unavailable)?;
    rows.query_map([], |row| {
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
    id: &CampaignId,
) -> Result<Vec<RecordEntry>, JournalError> {
    let mut rows = conn
        .prepare_cached(
            "SELECT r.seq, r.detail, d.status, d.error_code, d.at_ms
             FROM records r LEFT JOIN deliveries d ON d.provider_id = r.provider_id
             WHERE r.campaign_id = ?1 ORDER BY r.seq",
        )
        .map_err(unavailable)?;
    let entries = rows
        .query_map([id.as_str()], |row| {
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
    if entries.is_empty() && !campaign_exists(conn, id)? {
        return Err(JournalError::UnknownCampaign(id.clone()));
    }
    Ok(entries)
}

/// Which of `ids` a record of any campaign carries (indexed by `records_by_provider_id`).
pub(crate) fn logged_provider_ids(
    conn: &Connection,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, JournalError> {
    let mut statement = conn
        .prepare_cached("SELECT 1 FROM records WHERE provider_id = ?1 LIMIT 1")
        .map_err(unavailable)?;
    let mut logged = std::collections::HashSet::new();
    for id in ids {
        if statement.exists([id]).map_err(unavailable)? {
            logged.insert(id.clone());
        }
    }
    Ok(logged)
}
