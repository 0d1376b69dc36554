//! Inbound replies: every message received through the webhook, kept for the message units it
//! used (inbound texts are billed too) and for a person to read the ones that may revoke
//! consent.

use rusqlite::{Connection, OptionalExtension, params};
use sms_core::journal::JournalError;
use sms_core::{KeywordClass, StoreError, StoredReply, Timestamp};

fn class_code(class: KeywordClass) -> &'static str {
    StoredReply::class_code(class)
}

fn class_from_code(code: &str) -> KeywordClass {
    StoredReply::class_from_code(code)
}

/// Stores `reply` unless its `message_sid` is stored already; `true` when it was new.
pub(crate) fn insert(
    conn: &Connection,
    org: &str,
    reply: &StoredReply,
) -> Result<bool, JournalError> {
    let unavailable = |e: rusqlite::Error| JournalError::Unavailable(e.to_string());
    let known: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM replies WHERE org = ?1 AND message_sid = ?2",
            params![org, reply.message_sid],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    if known.is_some() {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO replies (org, message_sid, from_number, to_number, body, segments, class,
                              keyword, review, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            org,
            reply.message_sid,
            reply.from,
            reply.to,
            reply.body,
            reply.segments,
            class_code(reply.class),
            reply.keyword,
            reply.review,
            reply.received_at.unix_ms(),
        ],
    )
    .map_err(unavailable)?;
    Ok(true)
}

/// The replies received at or after `since`, oldest first.
pub(crate) fn list(
    conn: &Connection,
    org: &str,
    since: Timestamp,
) -> Result<Vec<StoredReply>, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
    let mut query = conn
        .prepare_cached(
            "SELECT message_sid, from_number, to_number, body, segments, class, keyword, review,
                    received_at_ms
             FROM replies WHERE org = ?1 AND received_at_ms >= ?2
             ORDER BY received_at_ms, message_sid",
        )
        .map_err(unavailable)?;
    query
        .query_map(params![org, since.unix_ms()], |row| {
            Ok(StoredReply {
                message_sid: row.get(0)?,
                from: row.get(1)?,
                to: row.get(2)?,
                body: row.get(3)?,
                segments: row.get(4)?,
                class: class_from_code(&row.get::<_, String>(5)?),
                keyword: row.get(6)?,
                review: row.get(7)?,
                received_at: Timestamp::from_unix_ms(row.get(8)?),
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)
}
