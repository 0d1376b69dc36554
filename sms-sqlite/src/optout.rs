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
        ChangeSource::NaturalLanguage => "natural_language",
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

pub(crate) fn insert(
    conn: &Connection,
    org: &str,
    change: &OptOutChange,
) -> Result<(), JournalError> {
    conn.prepare_cached(
        "INSERT INTO opt_out_changes (org, number, action, at_ms, source, message_sid, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            org,
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

/// Reads a stored action. Only `start` lifts a STOP: anything else (a row written by a newer
/// version, a damaged one) is read as a STOP, so the store fails closed, never open.
fn action_from_code(code: &str) -> OptOutAction {
    match code {
        "start" => OptOutAction::Start,
        _ => OptOutAction::Stop,
    }
}

/// The state of `number`: its changes in arrival order (`id`, assigned by SQLite at insert in
/// the one write transaction, rows never deleted) through the core's one rule,
/// [`OptOutState::from_actions`]. No SQL re-implements the rule.
pub(crate) fn state(
    conn: &Connection,
    org: &str,
    number: PhoneNumber,
) -> Result<OptOutState, StoreError> {
    let mut query = conn
        .prepare_cached(
            "SELECT action, at_ms FROM opt_out_changes WHERE org = ?1 AND number = ?2 ORDER BY id",
        )
        .map_err(unavailable)?;
    let rows = query
        .query_map(params![org, number_key(number)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(unavailable)?;
    let mut changes = Vec::new();
    for row in rows {
        let (action, at) = row.map_err(unavailable)?;
        changes.push((action_from_code(&action), Timestamp::from_unix_ms(at)));
    }
    Ok(OptOutState::from_actions(changes))
}

pub(crate) fn history(
    conn: &Connection,
    org: &str,
    number: PhoneNumber,
) -> Result<Vec<OptOutChange>, StoreError> {
    let mut query = conn
        .prepare_cached(
            "SELECT action, at_ms, source, message_sid, body FROM opt_out_changes
             WHERE org = ?1 AND number = ?2 ORDER BY id",
        )
        .map_err(unavailable)?;
    query
        .query_map(params![org, number_key(number)], |row| {
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
                action: action_from_code(&action),
                at: Timestamp::from_unix_ms(at),
                source: match source.as_str() {
                    "provider" => ChangeSource::Provider,
                    "staff" => ChangeSource::Staff,
                    "natural_language" => ChangeSource::NaturalLanguage,
                    _ => ChangeSource::Inbound,
                },
                message_sid,
                body,
            })
        })
        .collect()
}

/// Every number opted out: all changes, number by number in arrival order, through the same
/// rule as [`state`].
pub(crate) fn snapshot(conn: &Connection, org: &str) -> Result<OptOutSnapshot, StoreError> {
    let mut query = conn
        .prepare_cached(
            "SELECT number, action, at_ms FROM opt_out_changes WHERE org = ?1 ORDER BY number, id",
        )
        .map_err(unavailable)?;
    let rows = query
        .query_map([org], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .map_err(unavailable)?;
    let mut opted_out = Vec::new();
    let mut current: Option<(i64, Vec<(OptOutAction, Timestamp)>)> = None;
    let mut finish = |digits: i64, changes: Vec<(OptOutAction, Timestamp)>| {
        if let OptOutState::OptedOut { since } = OptOutState::from_actions(changes) {
            opted_out.push((stored_number(digits)?, since));
        }
        Ok::<(), StoreError>(())
    };
    for row in rows {
        let (digits, action, at) = row.map_err(unavailable)?;
        let change = (action_from_code(&action), Timestamp::from_unix_ms(at));
        match &mut current {
            Some((number, changes)) if *number == digits => changes.push(change),
            _ => {
                if let Some((number, changes)) = current.replace((digits, vec![change])) {
                    finish(number, changes)?;
                }
            }
        }
    }
    if let Some((number, changes)) = current {
        finish(number, changes)?;
    }
    Ok(OptOutSnapshot::new(opted_out))
}

/// A number as stored: E.164-shaped digits, not re-checked against the phone metadata (a STOP
/// from a number the metadata did not know when it arrived must still be found).
fn stored_number(digits: i64) -> Result<PhoneNumber, StoreError> {
    PhoneNumber::from_e164_shape(&format!("+{digits}")).map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_this_version_does_not_know_reads_as_a_stop() {
        assert_eq!(action_from_code("start"), OptOutAction::Start);
        assert_eq!(action_from_code("stop"), OptOutAction::Stop);
        assert_eq!(action_from_code("pause"), OptOutAction::Stop);
        assert_eq!(action_from_code(""), OptOutAction::Stop);
    }
}
