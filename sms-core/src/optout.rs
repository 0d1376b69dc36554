//! Opt-out state: which numbers replied STOP, kept as a history of every change.
//!
//! A STOP is keyed by number, so it blocks every record that carries the number. The state of a
//! number is its history read in arrival order by one rule, [`OptOutState::from_history`]: a
//! STOP is never lost to a skewed clock or a late delivery.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::phone::PhoneNumber;
use crate::time::Timestamp;

/// A change of a number's opt-out state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutAction {
    /// STOP (or a synonym): never text this number again until START.
    Stop,
    /// START (or a synonym): texting may resume.
    Start,
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A reply from the number that is a keyword (STOP, START and their synonyms).
    Inbound,
    /// A short reply from the number holding an opt-out word ("please stop"), read as an
    /// opt-out by the FCC policy ([`crate::OptOutPolicy::Fcc`]). A person should review it and
    /// may reverse it (a START recorded by staff).
    NaturalLanguage,
    /// The provider refused a send because the number had opted out with it (Twilio 21610).
    Provider,
    /// A person recorded it (a phone call to the office, say).
    Staff,
}

/// One change in a number's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutChange {
    /// The number.
    pub number: PhoneNumber,
    /// STOP or START.
    pub action: OptOutAction,
    /// When it happened.
    pub at: Timestamp,
    /// Where it came from.
    pub source: ChangeSource,
    /// The provider's id of the inbound message, when there is one.
    pub message_sid: Option<String>,
    /// The inbound body, when there is one.
    pub body: Option<String>,
}

/// The current state of one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OptOutState {
    /// Never opted out, or opted back in.
    #[default]
    OptedIn,
    /// Opted out since this time.
    OptedOut {
        /// When the STOP arrived.
        since: Timestamp,
    },
}

impl OptOutState {
    /// The state after `changes`, given **in the order the store received them** (arrival
    /// order, not the order of their `at`). This is the one rule; every store applies it.
    ///
    /// Writers' clocks differ (several webhook hosts, the CLI recording a provider's 21610), so
    /// a change's `at` alone cannot order it: a START stamped by a clock running ahead would
    /// otherwise lift a STOP that really came after it. The rule:
    ///
    /// - a STOP always takes effect (opting out is never refused);
    /// - a START lifts the opt-out only if it arrived after the STOPs in effect **and** its own
    ///   `at` is not earlier than the latest of them; otherwise the STOP stands (a late
    ///   delivery or a skewed clock can only keep a number opted out, never text it);
    /// - `since` is the earliest `at` among the STOPs in effect: opted out since then.
    ///
    /// ```
    /// use sms_core::optout::{OptOutAction::*, OptOutState};
    /// use sms_core::Timestamp;
    /// let t = Timestamp::from_unix_ms;
    /// // A START stamped later by a fast clock, then the STOP: the STOP stands.
    /// assert_eq!(
    ///     OptOutState::from_actions([(Start, t(2_000)), (Stop, t(1_000))]),
    ///     OptOutState::OptedOut { since: t(1_000) }
    /// );
    /// // STOP then a later START: texting may resume.
    /// assert_eq!(
    ///     OptOutState::from_actions([(Stop, t(1_000)), (Start, t(1_000))]),
    ///     OptOutState::OptedIn
    /// );
    /// ```
    pub fn from_history<'a>(changes: impl IntoIterator<Item = &'a OptOutChange>) -> Self {
        Self::from_actions(changes.into_iter().map(|c| (c.action, c.at)))
    }

    /// [`OptOutState::from_history`] over `(action, at)` pairs in arrival order: what a store
    /// that keeps its own rows (SQLite) feeds the rule.
    pub fn from_actions(changes: impl IntoIterator<Item = (OptOutAction, Timestamp)>) -> Self {
        let mut in_effect: Option<(Timestamp, Timestamp)> = None; // (earliest, latest) STOP
        for (action, at) in changes {
            in_effect = match (action, in_effect) {
                (OptOutAction::Stop, None) => Some((at, at)),
                (OptOutAction::Stop, Some((earliest, latest))) => {
                    Some((earliest.min(at), latest.max(at)))
                }
                (OptOutAction::Start, Some((_, latest))) if at >= latest => None,
                (OptOutAction::Start, standing) => standing,
            };
        }
        match in_effect {
            Some((since, _)) => OptOutState::OptedOut { since },
            None => OptOutState::OptedIn,
        }
    }
}

/// Failure of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written (disk, lock, corruption). Try again later or fix
    /// the storage; nothing was recorded.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Where opt-outs are kept. Implementations must make a change durable before `record`
/// returns (the inbound handler answers only after it), keep the order in which changes were
/// recorded, and compute states with [`OptOutState::from_history`] over that order.
///
/// | implementation | for |
/// |---|---|
/// | [`InMemoryOptOutStore`] | tests, previews, hosts that keep state elsewhere |
/// | `sms_sqlite::SqliteStore` | the embedded durable default |
/// | `sms_postgres::PgStore` | the shared store: many organisations, several servers |
#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Records one change durably.
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError>;
    /// The current state of `number`.
    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError>;
    /// Every change of `number`, in the order the store received them (the order
    /// [`OptOutState::from_history`] reads).
    async fn history(&self, number: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError>;
    /// Every number currently opted out, with the time of its STOP.
    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError>;
}

/// The numbers opted out at one moment: what a preview checks against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOutSnapshot {
    opted_out: HashMap<PhoneNumber, Timestamp>,
}

impl OptOutSnapshot {
    /// A snapshot with these numbers opted out.
    pub fn new(opted_out: impl IntoIterator<Item = (PhoneNumber, Timestamp)>) -> Self {
        Self {
            opted_out: opted_out.into_iter().collect(),
        }
    }

    /// The state of `number` in this snapshot.
    pub fn state(&self, number: PhoneNumber) -> OptOutState {
        match self.opted_out.get(&number) {
            Some(since) => OptOutState::OptedOut { since: *since },
            None => OptOutState::OptedIn,
        }
    }

    /// How many numbers are opted out.
    pub fn len(&self) -> usize {
        self.opted_out.len()
    }

    /// Whether no number is opted out.
    pub fn is_empty(&self) -> bool {
        self.opted_out.is_empty()
    }

    /// The opted-out numbers and when each opted out.
    pub fn iter(&self) -> impl Iterator<Item = (PhoneNumber, Timestamp)> + '_ {
        self.opted_out.iter().map(|(n, t)| (*n, *t))
    }
}

/// An opt-out store in memory: for tests, and for hosts that persist elsewhere.
#[derive(Debug, Default)]
pub struct InMemoryOptOutStore {
    history: Mutex<HashMap<PhoneNumber, Vec<OptOutChange>>>,
}

impl InMemoryOptOutStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PhoneNumber, Vec<OptOutChange>>> {
        // A panic while holding the lock cannot leave the map half-updated (one push), so the
        // data is still good.
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl OptOutStore for InMemoryOptOutStore {
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError> {
        self.lock().entry(change.number).or_default().push(change);
        Ok(())
    }

    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError> {
        Ok(self
            .lock()
            .get(&number)
            .map(OptOutState::from_history)
            .unwrap_or_default())
    }

    async fn history(&self, number: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        // Kept in arrival order: `record` appends under the lock.
        Ok(self.lock().get(&number).cloned().unwrap_or_default())
    }

    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        Ok(OptOutSnapshot::new(self.lock().iter().filter_map(
            |(number, history)| match OptOutState::from_history(history) {
                OptOutState::OptedOut { since } => Some((*number, since)),
                OptOutState::OptedIn => None,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::OptOutAction::{Start, Stop};
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    fn change(action: OptOutAction, at: i64) -> OptOutChange {
        OptOutChange {
            number: PhoneNumber::from_e164("+12125550123").expect("valid"),
            action,
            at: t(at),
            source: ChangeSource::Inbound,
            message_sid: None,
            body: None,
        }
    }

    /// Issue 7, defect 5: a START recorded first by a host whose clock runs 3 minutes ahead,
    /// then the person's STOP: the STOP must stand.
    #[tokio::test]
    async fn a_stop_is_not_lost_to_an_earlier_start_with_a_later_clock() {
        let store = InMemoryOptOutStore::new();
        let number = change(Stop, 0).number;
        store
            .record(change(Start, 1_000_180_000))
            .await
            .expect("in memory");
        store
            .record(change(Stop, 1_000_000_000))
            .await
            .expect("in memory");
        assert_eq!(
            store.state(number).await.expect("in memory"),
            OptOutState::OptedOut {
                since: t(1_000_000_000)
            }
        );
        assert_eq!(store.snapshot().await.expect("in memory").len(), 1);
    }

    #[test]
    fn a_start_lifts_only_a_stop_before_it_in_arrival_and_in_time() {
        let state = |h: &[(OptOutAction, i64)]| {
            OptOutState::from_actions(h.iter().map(|&(a, at)| (a, t(at))))
        };
        assert_eq!(state(&[]), OptOutState::OptedIn);
        assert_eq!(state(&[(Start, 5)]), OptOutState::OptedIn);
        assert_eq!(state(&[(Stop, 5), (Start, 6)]), OptOutState::OptedIn);
        // Equal times: the arrival order decides, the START came after.
        assert_eq!(state(&[(Stop, 5), (Start, 5)]), OptOutState::OptedIn);
        // A late START stamped before the STOP: the STOP stands.
        assert_eq!(
            state(&[(Stop, 5), (Start, 4)]),
            OptOutState::OptedOut { since: t(5) }
        );
        // Arrived before the STOP, whatever its time.
        assert_eq!(
            state(&[(Start, 9), (Stop, 5)]),
            OptOutState::OptedOut { since: t(5) }
        );
        // Two STOPs: the START must not be earlier than either; since is the earliest.
        assert_eq!(
            state(&[(Stop, 5), (Stop, 8), (Start, 7)]),
            OptOutState::OptedOut { since: t(5) }
        );
        assert_eq!(
            state(&[(Stop, 5), (Stop, 8), (Start, 8)]),
            OptOutState::OptedIn
        );
        // Opted in again, then a new STOP starts a new period.
        assert_eq!(
            state(&[(Stop, 5), (Start, 6), (Stop, 3)]),
            OptOutState::OptedOut { since: t(3) }
        );
    }
}
