//! Inbound replies: every message received through the webhook, kept for the message units it
//! used (inbound texts are billed too) and for a person to read the ones that may revoke
//! consent.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sms_core::journal::JournalError;
use sms_core::{KeywordClass, StoreError, Timestamp};

/// One inbound message as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    /// The provider's id of the message (`SM…`): a redelivery with the same id is stored once.
    pub message_sid: String,
    /// Who wrote, as the provider sent it (E.164 for SMS).
    pub from: String,
    /// Our number it was sent to.
    pub to: String,
    /// The text.
    pub body: String,
    /// Message units it used (Twilio's `NumSegments`; 1 when Twilio did not say).
    pub segments: u32,
    /// What it meant: opt-out, opt-in, help or other.
    pub class: KeywordClass,
    /// The keyword matched, for opt-out, opt-in and help.
    pub keyword: Option<String>,
    /// A person should read it: an opt-out read from a sentence (recorded, may be reversed) or
    /// a message that looks like a request to stop but was not acted on.
    pub review: bool,
    /// When it was received.
    pub received_at: Timestamp,
}

fn class_code(class: KeywordClass) -> &'static str {
    match class {
        KeywordClass::OptOut => "opt_out",
        KeywordClass::OptIn => "opt_in",
        KeywordClass::Help => "help",
        KeywordClass::Other => "other",
    }
}

fn class_from_code(code: &str) -> KeywordClass {
    match code {
        "opt_out" => KeywordClass::OptOut,
        "opt_in" => KeywordClass::OptIn,
        "help" => KeywordClass::Help,
        _ => KeywordClass::Other,
    }
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
