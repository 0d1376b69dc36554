//! Sign-up: per client record, per kind, with the consent record (when, from where, the exact
//! wording agreed to). Unsubscribing is a change in the history, never a delete.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consent::AlertKind;
use crate::phone::PhoneNumber;
use crate::recipient::RecordId;
use crate::time::Timestamp;

/// Where a sign-up came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionSource {
    /// The client, in MyAccount.
    Myaccount,
    /// Staff, on the client's behalf (a phone call, a form).
    Staff,
    /// An import from another system.
    Import,
}

impl SubscriptionSource {
    /// `myaccount`, `staff` or `import`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionSource::Myaccount => "myaccount",
            SubscriptionSource::Staff => "staff",
            SubscriptionSource::Import => "import",
        }
    }

    /// The source with this name.
    pub fn parse(name: &str) -> Option<SubscriptionSource> {
        match name.trim() {
            "myaccount" => Some(SubscriptionSource::Myaccount),
            "staff" => Some(SubscriptionSource::Staff),
            "import" => Some(SubscriptionSource::Import),
            _ => None,
        }
    }
}

impl fmt::Display for SubscriptionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Subscribe or unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionAction {
    /// Signed up (with consent).
    Subscribe,
    /// Signed off.
    Unsubscribe,
}

/// One change of a record's sign-up to one kind: the consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChange {
    /// The client record.
    pub record_id: RecordId,
    /// The kind.
    pub kind: AlertKind,
    /// Subscribe or unsubscribe.
    pub action: SubscriptionAction,
    /// The number the client signed up with (consent is for a number); none for an
    /// unsubscribe.
    pub number: Option<PhoneNumber>,
    /// When.
    pub at: Timestamp,
    /// From where.
    pub source: SubscriptionSource,
    /// The exact wording the client agreed to (or saw when signing off).
    pub wording: String,
}

/// A record's sign-up to one kind now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Never signed up.
    Never,
    /// Signed up, with this consent.
    Subscribed {
        /// The number the consent is for.
        number: Option<PhoneNumber>,
        /// When.
        since: Timestamp,
        /// From where.
        source: SubscriptionSource,
    },
    /// Signed off.
    Unsubscribed {
        /// When.
        at: Timestamp,
    },
}

/// Every record's current sign-ups, built from the history in the order the store received
/// it: the latest change per (record, kind) wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionBook {
    // Per record, one slot per kind (`AlertKind::ALL` order): looked up without cloning the id.
    // Fx: `due` looks up 100,000 ids; SipHash's protection is not needed for the host's ids.
    states: HashMap<RecordId, [SubscriptionState; 6], rustc_hash::FxBuildHasher>,
}

fn slot(kind: AlertKind) -> usize {
    AlertKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

const NEVER: SubscriptionState = SubscriptionState::Never;

impl SubscriptionBook {
    /// The state after `changes`, given in arrival order.
    pub fn from_history<'a>(changes: impl IntoIterator<Item = &'a SubscriptionChange>) -> Self {
        let mut book = SubscriptionBook::default();
        for change in changes {
            book.apply(change);
        }
        book
    }

    /// Applies one more change.
    pub fn apply(&mut self, change: &SubscriptionChange) {
        let state = match change.action {
            SubscriptionAction::Subscribe => SubscriptionState::Subscribed {
                number: change.number,
                since: change.at,
                source: change.source,
            },
            SubscriptionAction::Unsubscribe => SubscriptionState::Unsubscribed { at: change.at },
        };
        let slots = self
            .states
            .entry(change.record_id.clone())
            .or_insert_with(|| std::array::from_fn(|_| SubscriptionState::Never));
        slots[slot(change.kind)] = state;
    }

    /// The state of `record` for `kind`.
    pub fn state(&self, record: &RecordId, kind: AlertKind) -> &SubscriptionState {
        self.states
            .get(record)
            .map_or(&NEVER, |slots| &slots[slot(kind)])
    }

    /// How many (record, kind) pairs are subscribed now.
    pub fn subscribed(&self) -> usize {
        self.states
            .values()
            .flatten()
            .filter(|s| matches!(s, SubscriptionState::Subscribed { .. }))
            .count()
    }
}
