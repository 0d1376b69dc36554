//! Inbound replies of one organisation: every message received through the webhook, once per
//! `MessageSid`, for the message units it used and for a person to read.

use sms_core::{StoreError, StoredReply, Timestamp};

use crate::PgStore;
use crate::writer::text;

/// Stores `reply` unless its `message_sid` is stored already for this organisation; `true`
/// when it was new.
pub(crate) async fn insert(store: &PgStore, reply: &StoredReply) -> Result<bool, StoreError> {
    let client = store.conn().await.map_err(StoreError::Unavailable)?;
    let inserted = client
        .execute(
            "INSERT INTO sms_replies (org, message_sid, from_number, to_number, body, segments,
                                      class, keyword, review, received_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (org, message_sid) DO NOTHING",
            &[
                &store.org_str(),
                // A `text` cannot hold NUL: kept as U+FFFD, as the writer keeps it (a reply
                // holding one was refused after its STOP was recorded).
                &text(&reply.message_sid),
                &text(&reply.from),
                &text(&reply.to),
                &text(&reply.body),
                &i64::from(reply.segments),
                &StoredReply::class_code(reply.class),
                &reply.keyword.as_deref().map(text),
                &reply.review,
                &reply.received_at.unix_ms(),
            ],
        )
        .await
        .map_err(|e| StoreError::Unavailable(store.text(&e)))?;
    Ok(inserted == 1)
}

/// This organisation's replies received at or after `since`, oldest first.
pub(crate) async fn list(
    store: &PgStore,
    since: Timestamp,
) -> Result<Vec<StoredReply>, StoreError> {
    let client = store.conn().await.map_err(StoreError::Unavailable)?;
    let rows = client
        .query(
            "SELECT message_sid, from_number, to_number, body, segments, class, keyword, review,
                    received_at_ms
             FROM sms_replies WHERE org = $1 AND received_at_ms >= $2
             ORDER BY received_at_ms, message_sid COLLATE \"C\"",
            &[&store.org_str(), &since.unix_ms()],
        )
        .await
        .map_err(|e| StoreError::Unavailable(store.text(&e)))?;
    let get_error = |e: tokio_postgres::Error| StoreError::Unavailable(store.text(&e));
    rows.iter()
        .map(|row| {
            let segments: i64 = row.try_get(4).map_err(get_error)?;
            let class: &str = row.try_get(5).map_err(get_error)?;
            Ok(StoredReply {
                message_sid: row.try_get(0).map_err(get_error)?,
                from: row.try_get(1).map_err(get_error)?,
                to: row.try_get(2).map_err(get_error)?,
                body: row.try_get(3).map_err(get_error)?,
                segments: u32::try_from(segments).unwrap_or(u32::MAX),
                class: StoredReply::class_from_code(class),
                keyword: row.try_get(6).map_err(get_error)?,
                review: row.try_get(7).map_err(get_error)?,
                received_at: Timestamp::from_unix_ms(row.try_get(8).map_err(get_error)?),
            })
        })
        .collect()
}
