//! The opt-out store's SQL: an append-only history of changes per number.

use rusqlite::{Connection, params};
use sms_core::journal::JournalError;
use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutSnapshot, OptOutState};
use sms_core::{PhoneNumber, StoreError, Timestamp};

fn action_code(action: OptOutAction) -> &'static str {
    match action {
        OptOutAction::Stop => "stop",
        OptOutAction::Start => "start",
    }
}

fn source_code(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Inbound => "inbound",
        ChangeSource::Provider => "provider",
        ChangeSource::Staff => "staff",
    }
}

pub(crate) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn number_key(number: PhoneNumber) -> i64 {
    // E.164 has at most 15 digits, far below i64::MAX.
    i64::try_from(number.digits()).expect("an E.164 number fits in i64")
}

pub(crate) fn insert(conn: &Connection, change: &OptOutChange) -> Result<(), JournalError> {
    conn.prepare_cached(
        "INSERT INTO opt_out_changes (number, action, at_ms, source, message_sid, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            number_key(change.number),
            action_code(change.action),
            change.at.unix_ms(),
            source_code(change.source),
            change.message_sid,
            change.body,
        ])
    })
    .map(|_| ())
    .map_err(|e| JournalError::Unavailable(e.to_string()))
}

/// The latest change wins; a STOP wins a tie (the rule of [`OptOutState::from_history`]).
const LATEST: &str = "ORDER BY at_ms DESC, (action = 'stop') DESC, id DESC";

pub(crate) fn state(conn: &Connection, number: PhoneNumber) -> Result<OptOutState, StoreError> {
    let mut query = conn
        .prepare_cached(&format!(
            "SELECT action, at_ms FROM opt_out_changes WHERE number = ?1 {LATEST} LIMIT 1"
        ))
        .map_err(unavailable)?;
    let mut rows = query.query([number_key(number)]).map_err(unavailable)?;
    match rows.next().map_err(unavailable)? {
        Some(row) => {
            let action: String = row.get(0).map_err(unavailable)?;
            let at: i64 = row.get(1).map_err(unavailable)?;
            Ok(if action == "stop" {
                OptOutState::OptedOut {
                    since: Timestamp::from_unix_ms(at),
                }
            } else {
                OptOutState::OptedIn
            })
        }
        None => Ok(OptOutState::OptedIn),
    }
}

pub(crate) fn history(
    conn: &Connection,
    number: PhoneNumber,
) -> Result<Vec<OptOutChange>, StoreError> {
    let mut query = conn
        .prepare_cached(
            "SELECT action, at_ms, source, message_sid, body FROM opt_out_changes
             WHERE number = ?1 ORDER BY at_ms, id",
        )
        .map_err(unavailable)?;
    query
        .query_map([number_key(number)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(unavailable)?
        .map(|row| {
            let (action, at, source, message_sid, body) = row.map_err(unavailable)?;
            Ok(OptOutChange {
                number,
                action: match action.as_str() {
                    "stop" => OptOutAction::Stop,
                    _ => OptOutAction::Start,
                },
                at: Timestamp::from_unix_ms(at),
                source: match source.as_str() {
                    "provider" => ChangeSource::Provider,
                    "staff" => ChangeSource::Staff,
                    _ => ChangeSource::Inbound,
                },
                message_sid,
                body,
            })
        })
        .collect()
}

pub(crate) fn snapshot(conn: &Connection) -> Result<OptOutSnapshot, StoreError> {
    let mut query = conn
        .prepare_cached(&format!(
            "SELECT number, action, at_ms FROM (
                 SELECT number, action, at_ms,
                        ROW_NUMBER() OVER (PARTITION BY number {LATEST}) AS latest
                 FROM opt_out_changes)
             WHERE latest = 1 AND action = 'stop'"
        ))
        .map_err(unavailable)?;
    let rows = query
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(2)?)))
        .map_err(unavailable)?;
    let mut opted_out = Vec::new();
    for row in rows {
        let (digits, at) = row.map_err(unavailable)?;
        let number = PhoneNumber::from_e164(&format!("+{digits}")).map_err(unavailable)?;
        opted_out.push((number, Timestamp::from_unix_ms(at)));
    }
    Ok(OptOutSnapshot::new(opted_out))
}
