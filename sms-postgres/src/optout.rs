//! Opt-outs: an append-only history of changes per (organisation, number), read in arrival
//! order through the core's one rule.
//!
//! Arrival order is the `BIGSERIAL` id. Ids are handed out when a row is inserted, not when
//! it commits, so two writers of one number could commit in the other order than their ids;
//! each insert therefore first takes a transaction advisory lock on (organisation, number),
//! held to its commit: for one number, id order is commit order, as in SQLite's one writer.

use async_trait::async_trait;
use sms_core::optout::{
    ChangeSource, OptOutAction, OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError,
};
use sms_core::{PhoneNumber, Timestamp};

use crate::PgStore;
use crate::writer::Op;
use sms_core::journal::JournalError;

pub(crate) fn action_code(action: OptOutAction) -> &'static str {
    match action {
        OptOutAction::Stop => "stop",
        OptOutAction::Start => "start",
    }
}

/// Reads a stored action. Only `start` lifts a STOP: anything else (a row written by a newer
/// version, a damaged one) is read as a STOP, so the store fails closed, never open.
fn action_from_code(code: &str) -> OptOutAction {
    match code {
        "start" => OptOutAction::Start,
        _ => OptOutAction::Stop,
    }
}

pub(crate) fn source_code(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Inbound => "inbound",
        ChangeSource::NaturalLanguage => "natural_language",
        ChangeSource::Provider => "provider",
        ChangeSource::Staff => "staff",
    }
}

fn source_from_code(code: &str) -> ChangeSource {
    match code {
        "provider" => ChangeSource::Provider,
        "staff" => ChangeSource::Staff,
        "natural_language" => ChangeSource::NaturalLanguage,
        _ => ChangeSource::Inbound,
    }
}

/// A number as a column: its digits (E.164 has at most 15, far below `i64::MAX`).
pub(crate) fn number_key(number: PhoneNumber) -> i64 {
    i64::try_from(number.digits()).unwrap_or(i64::MAX)
}

/// A number as stored: E.164-shaped digits, not re-checked against the phone metadata (a STOP
/// from a number the metadata did not know when it arrived must still be found).
pub(crate) fn stored_number(digits: i64) -> Result<PhoneNumber, String> {
    PhoneNumber::from_e164_shape(&format!("+{digits}"))
        .map_err(|e| format!("unreadable number {digits} in the store: {e}"))
}

impl PgStore {
    fn store_error(&self, error: &tokio_postgres::Error) -> StoreError {
        StoreError::Unavailable(self.text(error))
    }
}

#[async_trait]
impl OptOutStore for PgStore {
    /// Committed by the store's writer with whatever other writes are waiting (group
    /// commit): the (organisation, number)'s advisory lock is taken before the row (and its id)
    /// is made, and released at the commit.
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError> {
        let lock = self.lock_key("opt-out", &number_key(change.number).to_string());
        self.writer()
            .write(self.org(), Op::OptOut { change, lock })
            .await
            .map_err(|e| match e {
                JournalError::Unavailable(text) => StoreError::Unavailable(text),
                other => StoreError::Unavailable(other.to_string()),
            })
    }

    /// The number's changes in arrival order through [`OptOutState::from_actions`]; no SQL
    /// re-implements the rule.
    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError> {
        let client = self.conn().await.map_err(StoreError::Unavailable)?;
        let statement = client
            .prepare_cached(
                "SELECT action, at_ms FROM sms_opt_out_changes
                 WHERE org = $1 AND number = $2 ORDER BY id",
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        let rows = client
            .query(&statement, &[&self.org_str(), &number_key(number)])
            .await
            .map_err(|e| self.store_error(&e))?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let action: &str = row.try_get(0).map_err(|e| self.store_error(&e))?;
            let at: i64 = row.try_get(1).map_err(|e| self.store_error(&e))?;
            changes.push((action_from_code(action), Timestamp::from_unix_ms(at)));
        }
        Ok(OptOutState::from_actions(changes))
    }

    async fn history(&self, number: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        let client = self.conn().await.map_err(StoreError::Unavailable)?;
        let statement = client
            .prepare_cached(
                "SELECT action, at_ms, source, message_sid, body FROM sms_opt_out_changes
                 WHERE org = $1 AND number = $2 ORDER BY id",
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        let rows = client
            .query(&statement, &[&self.org_str(), &number_key(number)])
            .await
            .map_err(|e| self.store_error(&e))?;
        rows.iter()
            .map(|row| {
                let get = |e: tokio_postgres::Error| self.store_error(&e);
                Ok(OptOutChange {
                    number,
                    action: action_from_code(row.try_get(0).map_err(get)?),
                    at: Timestamp::from_unix_ms(row.try_get(1).map_err(get)?),
                    source: source_from_code(row.try_get(2).map_err(get)?),
                    message_sid: row.try_get(3).map_err(get)?,
                    body: row.try_get(4).map_err(get)?,
                })
            })
            .collect()
    }

    /// Every number of this organisation opted out: its changes, number by number in arrival
    /// order, through the same rule as [`OptOutStore::state`].
    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        let client = self.conn().await.map_err(StoreError::Unavailable)?;
        let statement = client
            .prepare_cached(
                "SELECT number, action, at_ms FROM sms_opt_out_changes
                 WHERE org = $1 ORDER BY number, id",
            )
            .await
            .map_err(|e| self.store_error(&e))?;
        let rows = client
            .query(&statement, &[&self.org_str()])
            .await
            .map_err(|e| self.store_error(&e))?;
        let mut opted_out = Vec::new();
        let mut finish = |digits: i64, changes: Vec<(OptOutAction, Timestamp)>| {
            if let OptOutState::OptedOut { since } = OptOutState::from_actions(changes) {
                opted_out.push((
                    stored_number(digits).map_err(StoreError::Unavailable)?,
                    since,
                ));
            }
            Ok::<(), StoreError>(())
        };
        let mut current: Option<(i64, Vec<(OptOutAction, Timestamp)>)> = None;
        for row in &rows {
            let digits: i64 = row.try_get(0).map_err(|e| self.store_error(&e))?;
            let action: &str = row.try_get(1).map_err(|e| self.store_error(&e))?;
            let at: i64 = row.try_get(2).map_err(|e| self.store_error(&e))?;
            let change = (action_from_code(action), Timestamp::from_unix_ms(at));
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
