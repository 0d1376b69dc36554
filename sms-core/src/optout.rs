//! Opt-out state: which numbers replied STOP, kept as a history of every change.
//!
//! A STOP is keyed by number, so it blocks every record that carries the number.

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
    /// A reply from the number.
    Inbound,
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
    /// The state after `changes` (in any order; the latest wins, a STOP wins a tie).
    pub fn from_history<'a>(changes: impl IntoIterator<Item = &'a OptOutChange>) -> Self {
        let latest = changes
            .into_iter()
            .max_by_key(|c| (c.at, matches!(c.action, OptOutAction::Stop)));
        match latest {
            Some(OptOutChange {
                action: OptOutAction::Stop,
                at,
                ..
            }) => OptOutState::OptedOut { since: *at },
            _ => OptOutState::OptedIn,
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
/// returns: the inbound handler answers only after it.
///
/// | implementation | for |
/// |---|---|
/// | [`InMemoryOptOutStore`] | tests, previews, hosts that keep state elsewhere |
/// | `sms_sqlite::SqliteStore` | the embedded durable default |
#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Records one change durably.
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError>;
    /// The current state of `number`.
    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError>;
    /// Every change of `number`, oldest first.
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
        let mut history = self.lock().get(&number).cloned().unwrap_or_default();
        history.sort_by_key(|c| c.at);
        Ok(history)
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
