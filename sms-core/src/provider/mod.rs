//! Providers: who carries a text to a phone.
//!
//! | provider | what it is for |
//! |---|---|
//! | `sms_twilio::TwilioProvider` | real sends through Twilio's Messages API |
//! | [`SimulatedProvider`] | a deterministic stand-in that behaves like Twilio's test credentials: for demos, the CLI's default, and your own tests |
//! | `MockProvider` (feature `mock`) | a `mockall` mock for asserting exact calls |
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sms_core::{OutboundSms, PhoneNumber, Provider, SimulatedProvider, SendError};
//!
//! let provider = SimulatedProvider::new();
//! let to = PhoneNumber::from_e164("+15005550006").unwrap();
//! let accepted = provider.send(&OutboundSms::new(to, "Class moved to Room 4")).await.unwrap();
//! assert!(accepted.provider_id.starts_with("SM"));
//!
//! let bad = PhoneNumber::from_e164("+15005550001").unwrap();
//! let err = provider.send(&OutboundSms::new(bad, "hi")).await.unwrap_err();
//! assert!(err.is_bad_recipient());
//! # });
//! ```

mod simulated;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::phone::PhoneNumber;
use crate::time::Timestamp;

pub use simulated::SimulatedProvider;

/// One text to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSms {
    /// The recipient's number.
    pub to: PhoneNumber,
    /// The text, already rendered.
    pub body: String,
}

impl OutboundSms {
    /// A text to `to`.
    pub fn new(to: PhoneNumber, body: impl Into<String>) -> Self {
        Self {
            to,
            body: body.into(),
        }
    }
}

/// A message's delivery status, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted, waiting for a sender slot.
    Queued,
    /// Accepted for later (scheduled send).
    Scheduled,
    /// Being handed to the carrier.
    Sending,
    /// Handed to the carrier.
    Sent,
    /// The carrier reported delivery to the phone.
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// It could not be sent.
    Failed,
    /// Cancelled before sending.
    Canceled,
    /// A status this library does not know yet, kept as the provider wrote it.
    Other(String),
}

impl DeliveryStatus {
    /// Reads a provider's status word (`"delivered"`), keeping unknown words as `Other`.
    pub fn parse(word: &str) -> Self {
        match word.trim().to_ascii_lowercase().as_str() {
            "queued" | "accepted" => DeliveryStatus::Queued,
            "scheduled" => DeliveryStatus::Scheduled,
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "undelivered" => DeliveryStatus::Undelivered,
            "failed" => DeliveryStatus::Failed,
            "canceled" | "cancelled" => DeliveryStatus::Canceled,
            _ => DeliveryStatus::Other(word.to_owned()),
        }
    }

    /// Whether no further status will follow.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered
                | DeliveryStatus::Undelivered
                | DeliveryStatus::Failed
                | DeliveryStatus::Canceled
        )
    }
}

/// The provider took the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The provider's id of the message (Twilio's `MessageSid`, `SM…`).
    pub provider_id: String,
    /// The status when accepted (usually `queued`).
    pub status: DeliveryStatus,
    /// Segments the provider counted, when it says.
    pub segments: Option<u32>,
}

/// A message the provider sent earlier, for reconciling after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The provider's id.
    pub provider_id: String,
    /// The recipient.
    pub to: PhoneNumber,
    /// The body as the provider has it (may be redacted).
    pub body: Option<String>,
    /// Its status now.
    pub status: DeliveryStatus,
    /// When it was created at the provider.
    pub created_at: Option<Timestamp>,
    /// Segments billed.
    pub segments: Option<u32>,
}

/// An account balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The amount as the provider writes it (`"12.34"`), exact.
    pub amount: String,
    /// ISO 4217 currency (`"USD"`).
    pub currency: String,
}

/// Why a send did not go through, sorted by what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum SendError {
    /// This recipient cannot be texted (invalid, landline, unreachable). Do not retry.
    #[error("recipient rejected: {message}{}", code_suffix(*code))]
    BadRecipient {
        /// The provider's error code.
        code: Option<u32>,
        /// The provider's explanation.
        message: String,
    },
    /// The number opted out with the provider (Twilio 21610): record the opt-out locally.
    #[error("recipient has opted out (replied STOP): {message}{}", code_suffix(*code))]
    OptedOut {
        /// The provider's error code.
        code: Option<u32>,
        /// The provider's explanation.
        message: String,
    },
    /// Too many requests: wait, then retry.
    #[error("provider asks to slow down: {message}{}", code_suffix(*code))]
    SlowDown {
        /// The provider's error code.
        code: Option<u32>,
        /// The provider's explanation.
        message: String,
        /// How long the provider asked to wait, when it said.
        retry_after_ms: Option<u64>,
    },
    /// A temporary failure known not to have created a message: retry later.
    #[error("provider temporarily unavailable: {message}{}", code_suffix(*code))]
    TryLater {
        /// The provider's error code or HTTP status.
        code: Option<u32>,
        /// What happened.
        message: String,
    },
    /// The account, credentials or sender are wrong: fix the configuration; retrying won't help.
    #[error("provider configuration error: {message}{}", code_suffix(*code))]
    Configuration {
        /// The provider's error code.
        code: Option<u32>,
        /// The provider's explanation.
        message: String,
    },
    /// The request may or may not have created a message (a timeout after it was written, a
    /// 5xx). Never retry blindly: reconcile with `Provider::lookup_sent`.
    #[error("outcome unknown, the message may have been sent: {message}")]
    Unknown {
        /// What happened.
        message: String,
    },
    /// The provider cannot do this (such as `lookup_sent` on a provider without history).
    #[error("not supported by this provider: {message}")]
    Unsupported {
        /// What was asked.
        message: String,
    },
}

fn code_suffix(code: Option<u32>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}

impl SendError {
    /// The provider's error code, when it gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            SendError::BadRecipient { code, .. }
            | SendError::OptedOut { code, .. }
            | SendError::SlowDown { code, .. }
            | SendError::TryLater { code, .. }
            | SendError::Configuration { code, .. } => *code,
            SendError::Unknown { .. } | SendError::Unsupported { .. } => None,
        }
    }

    /// This recipient cannot be texted (including opted out).
    pub fn is_bad_recipient(&self) -> bool {
        matches!(
            self,
            SendError::BadRecipient { .. } | SendError::OptedOut { .. }
        )
    }

    /// Retrying the same request later is safe and may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::SlowDown { .. } | SendError::TryLater { .. }
        )
    }

    /// The message may have been created: reconcile before any retry.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, SendError::Unknown { .. })
    }

    /// How long the provider asked to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::SlowDown {
                retry_after_ms: Some(ms),
                ..
            } => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }

    /// A short stable name of the class (`bad_recipient`, `slow_down`...).
    pub fn class(&self) -> &'static str {
        match self {
            SendError::BadRecipient { .. } => "bad_recipient",
            SendError::OptedOut { .. } => "opted_out",
            SendError::SlowDown { .. } => "slow_down",
            SendError::TryLater { .. } => "try_later",
            SendError::Configuration { .. } => "configuration",
            SendError::Unknown { .. } => "unknown",
            SendError::Unsupported { .. } => "unsupported",
        }
    }
}

/// What a provider's history says about one number: the messages, and the provider's own clock
/// when it told (so reconciliation can measure how far its clock is from ours).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    /// Messages sent to the number since the time asked, newest first.
    pub messages: Vec<SentMessage>,
    /// The provider's time when it answered (Twilio's `Date` header), when it says. `None` when
    /// unknown: reconciliation then allows only `DispatchOptions::reconcile_skew_ms` between
    /// the two clocks, and treats an older message with the right body as "cannot tell".
    pub provider_now: Option<Timestamp>,
}

/// Carries texts to phones. Implementations must be safe to call concurrently.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for logs and reports (`"twilio"`, `"simulator"`).
    fn name(&self) -> &str;

    /// Which history this provider sends into and reads back: for Twilio the account, the API
    /// host and the sender. Stored with a campaign, so a resume through another account (whose
    /// history holds none of the campaign's messages) is refused instead of resending. Never
    /// holds a secret. Defaults to [`Provider::name`], for providers with one history.
    fn identity(&self) -> String {
        self.name().to_owned()
    }

    /// Sends one text. Must not retry anything that may have created a message: such an
    /// outcome is [`SendError::Unknown`].
    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError>;

    /// The account balance, when the provider has one.
    async fn balance(&self) -> Result<Option<Balance>, SendError>;

    /// Messages sent to `to` since `since`, newest first: how an `Unknown` outcome is
    /// reconciled after a crash.
    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError>;

    /// [`Provider::lookup_sent`] with the provider's clock, when it can tell it (what the
    /// dispatcher calls). The default reads `lookup_sent` and knows no clock.
    async fn lookup_history(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<History, SendError> {
        Ok(History {
            messages: self.lookup_sent(to, since).await?,
            provider_now: None,
        })
    }
}

#[cfg(any(test, feature = "mock"))]
mockall::mock! {
    /// A `mockall` mock of [`Provider`] (feature `mock`). `identity` and `lookup_history` keep
    /// their default implementations, so only `name`, `send`, `balance` and `lookup_sent` take
    /// expectations.
    pub Provider {}

    #[async_trait]
    impl Provider for Provider {
        fn name(&self) -> &str;
        async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError>;
        async fn balance(&self) -> Result<Option<Balance>, SendError>;
        async fn lookup_sent(
            &self,
            to: PhoneNumber,
            since: Timestamp,
        ) -> Result<Vec<SentMessage>, SendError>;
    }
}
