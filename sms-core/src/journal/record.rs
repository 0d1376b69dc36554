//! One record's journey: its states, the rule of which state may follow which, and delivery
//! statuses.

use serde::{Deserialize, Serialize};

use crate::consent::BlockReason;
use crate::provider::{DeliveryStatus, SendError};
use crate::time::Timestamp;

/// Why a send failed, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFailure {
    /// The error class (`bad_recipient`, `opted_out`, `try_later`...), see [`SendError::class`].
    pub class: String,
    /// The provider's error code, when it gave one.
    pub code: Option<u32>,
    /// The provider's explanation.
    pub message: String,
}

impl From<&SendError> for SendFailure {
    fn from(error: &SendError) -> Self {
        let message = match error {
            SendError::BadRecipient { message, .. }
            | SendError::OptedOut { message, .. }
            | SendError::SlowDown { message, .. }
            | SendError::TryLater { message, .. }
            | SendError::Configuration { message, .. }
            | SendError::Unknown { message }
            | SendError::Unsupported { message } => message.clone(),
        };
        SendFailure {
            class: error.class().to_owned(),
            code: error.code(),
            message,
        }
    }
}

/// Where one record stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    /// Waiting to be sent.
    Planned,
    /// Not texted, and never will be by this campaign (consent, opt-out, bad number).
    Blocked {
        /// Why.
        reason: BlockReason,
    },
    /// A provider call is (or was, before a crash) in flight: written durably before the call.
    Sending {
        /// Which attempt (1 for the first).
        attempt: u32,
        /// When the attempt started: reconciliation looks for messages since then.
        at: Timestamp,
    },
    /// The provider took the text.
    Accepted {
        /// The provider's message id; several records share it under `once_per_number`.
        provider_id: String,
        /// Segments (message units) it uses.
        segments: u32,
        /// When.
        at: Timestamp,
    },
    /// The provider refused it for good.
    Failed {
        /// Why.
        failure: SendFailure,
        /// When.
        at: Timestamp,
    },
    /// Not sent for a passing reason (the provider kept saying try later): a resume retries it.
    Deferred {
        /// The last error.
        failure: SendFailure,
        /// When.
        at: Timestamp,
    },
    /// Not sent because the recipient's local time was outside the campaign's quiet hours when
    /// it was about to go: known not sent, it goes at `until` or later (a resume, or a running
    /// `sms serve`). Never dropped, never counted failed.
    Held {
        /// When texts may go again where the recipient is.
        until: Timestamp,
        /// The time zone the hours were read in.
        time_zone: String,
        /// When the run held it.
        at: Timestamp,
    },
    /// The provider call may or may not have created a message, and reconciliation could not
    /// tell: a person decides.
    Unknown {
        /// What happened.
        message: String,
        /// When the attempt started.
        sent_at: Timestamp,
        /// When it was marked unknown.
        at: Timestamp,
    },
}

impl RecordState {
    /// A short stable code (`planned`, `sending`, `accepted`...).
    pub fn code(&self) -> &'static str {
        match self {
            RecordState::Planned => "planned",
            RecordState::Blocked { .. } => "blocked",
            RecordState::Sending { .. } => "sending",
            RecordState::Accepted { .. } => "accepted",
            RecordState::Failed { .. } => "failed",
            RecordState::Deferred { .. } => "deferred",
            RecordState::Held { .. } => "held",
            RecordState::Unknown { .. } => "unknown",
        }
    }

    /// Whether this record is done: accepted, blocked or failed for good.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RecordState::Blocked { .. } | RecordState::Accepted { .. } | RecordState::Failed { .. }
        )
    }

    /// The provider's message id, when accepted.
    pub fn provider_id(&self) -> Option<&str> {
        match self {
            RecordState::Accepted { provider_id, .. } => Some(provider_id),
            _ => None,
        }
    }

    /// Whether a journal may move a record from this state to `next`.
    ///
    /// Final states never change (writing the same value again is allowed, so a replayed write
    /// is harmless); only `planned`, `deferred` and `held` records (known not sent) may start a
    /// send or be held (again); only a record with
    /// a call in flight (`sending`) or an unresolved one (`unknown`) may become accepted from a
    /// provider answer, and `planned`/`deferred` may be logged against an earlier send of the
    /// same body under `once_per_number`.
    pub fn may_become(&self, next: &RecordState) -> bool {
        use RecordState as S;
        if self == next {
            return true;
        }
        match self {
            S::Blocked { .. } | S::Accepted { .. } | S::Failed { .. } => false,
            S::Planned | S::Deferred { .. } | S::Held { .. } => matches!(
                next,
                S::Planned
                    | S::Sending { .. }
                    | S::Blocked { .. }
                    | S::Accepted { .. }
                    | S::Held { .. }
            ),
            // Not `sending` again: a retry goes through `deferred` (known not sent), so a second
            // writer that still believes the record planned is refused here. Not `held`
            // either: a call in flight may have sent the text.
            S::Sending { .. } => {
                !matches!(next, S::Blocked { .. } | S::Sending { .. } | S::Held { .. })
            }
            S::Unknown { .. } => matches!(
                next,
                S::Planned | S::Accepted { .. } | S::Failed { .. } | S::Unknown { .. }
            ),
        }
    }
}

/// A delivery status from the provider's status callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The status.
    pub status: DeliveryStatus,
    /// The provider's error code (for undelivered or failed).
    pub error_code: Option<u32>,
    /// When it was received.
    pub at: Timestamp,
}

/// A status callback, keyed by the provider's message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryUpdate {
    /// The provider's message id.
    pub provider_id: String,
    /// The status.
    pub status: DeliveryStatus,
    /// The provider's error code.
    pub error_code: Option<u32>,
    /// Segments billed, when the callback says.
    pub segments: Option<u32>,
    /// When it was received.
    pub at: Timestamp,
}

impl Delivery {
    /// Whether `update` should replace `current`: a final status is never overwritten by a late,
    /// out-of-order progress status (`sent` arriving after `delivered`).
    pub fn should_replace(current: Option<&Delivery>, update: &DeliveryStatus) -> bool {
        match current {
            Some(current) => !current.status.is_final() || update.is_final(),
            None => true,
        }
    }
}

/// One record as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// Its position in the campaign's items.
    pub seq: u32,
    /// Where it stands.
    pub state: RecordState,
    /// The latest delivery status, once a callback arrived.
    pub delivery: Option<Delivery>,
}

/// A change of one record's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The record's position.
    pub seq: u32,
    /// Its new state.
    pub state: RecordState,
}
