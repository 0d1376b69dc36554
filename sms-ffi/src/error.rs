//! The one error a host sees, and the one a host's callback raises.

use sms_core::{DispatchError, JournalError, SendError, StoreError};
use sms_twilio::WebhookError;

/// Everything that can go wrong, by what the host does about it.
///
/// Exported as a *flat* error: each variant carries only its human-readable text, which is the
/// exception's message in Python (`str(e)`), Kotlin (`e.message`) and Swift. (A rich error
/// would show `reason=...` as Kotlin's message, and a field named `message` breaks the Kotlin
/// build: uniffi-rs#2938.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SmsError {
    /// An argument is not usable (a campaign id with spaces, a number that is not one, a
    /// time zone that does not exist). Fix the input.
    #[error("{0}")]
    InvalidInput(String),
    /// The message template does not parse, or names a merge field no record has.
    #[error("{0}")]
    Template(String),
    /// Consent refuses the whole operation (a campaign too old to resume without a new preview,
    /// over the budget). Preview again.
    #[error("{0}")]
    ConsentRefused(String),
    /// The provider refused the account, sender or request: fix the configuration there.
    #[error("{0}")]
    ProviderRejected(String),
    /// The provider asks to slow down: try later.
    #[error("{0}")]
    RateLimited(String),
    /// The provider cannot be reached or failed: try later (resume finishes a campaign).
    #[error("{0}")]
    ProviderUnavailable(String),
    /// The configuration cannot work (bad credentials shape, unknown region, no webhook token).
    #[error("{0}")]
    Configuration(String),
    /// The database (or a host's opt-out store) failed; nothing was guessed.
    #[error("{0}")]
    Store(String),
    /// A webhook is not provably from Twilio; nothing was recorded. Answer 403.
    #[error("{0}")]
    WebhookSignature(String),
    /// The operation was cancelled before it started.
    #[error("{0}")]
    Cancelled(String),
    /// A host callback (progress listener, opt-out store, log writer) raised.
    #[error("{0}")]
    HostCallbackFailed(String),
    /// The client was called from inside one of its own callbacks; call it after returning.
    #[error("{0}")]
    Reentrant(String),
    /// Another run is sending this campaign (another thread or process): wait for it, then
    /// read its report.
    #[error("{0}")]
    Busy(String),
    /// A bug in this library (a panic, caught at the boundary). Please report it.
    #[error("{0}")]
    Internal(String),
}

/// What a host's callback raises. Any other exception the callback raises arrives as
/// `Failed` too, with the exception's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum HostError {
    /// The callback failed.
    #[error("{reason}")]
    Failed {
        /// Why, in the host's words.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostError::Failed { reason: e.reason }
    }
}

impl From<StoreError> for SmsError {
    fn from(e: StoreError) -> Self {
        SmsError::Store(e.to_string())
    }
}

impl From<JournalError> for SmsError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::UnknownCampaign(_) | JournalError::CampaignExists(_) => {
                SmsError::InvalidInput(e.to_string())
            }
            JournalError::CampaignBusy(_) => SmsError::Busy(e.to_string()),
            other => SmsError::Store(other.to_string()),
        }
    }
}

impl From<SendError> for SmsError {
    fn from(e: SendError) -> Self {
        let text = e.to_string();
        match e {
            SendError::SlowDown { .. } => SmsError::RateLimited(text),
            SendError::TryLater { .. } | SendError::Unknown { .. } => {
                SmsError::ProviderUnavailable(text)
            }
            _ => SmsError::ProviderRejected(text),
        }
    }
}

impl From<DispatchError> for SmsError {
    fn from(e: DispatchError) -> Self {
        let text = e.to_string();
        match e {
            DispatchError::Journal(j) => j.into(),
            DispatchError::Store(s) => s.into(),
            DispatchError::Provider(p) => p.into(),
            DispatchError::OverBudget { .. }
            | DispatchError::OverBalance { .. }
            | DispatchError::TooOld { .. } => SmsError::ConsentRefused(text),
            DispatchError::InvalidSettings(_) => SmsError::Configuration(text),
        }
    }
}

impl From<WebhookError> for SmsError {
    fn from(e: WebhookError) -> Self {
        let text = e.to_string();
        match e {
            WebhookError::Signature(_) => SmsError::WebhookSignature(text),
            WebhookError::Store(_) => SmsError::Store(text),
            WebhookError::MissingField(_) | WebhookError::InvalidField { .. } => {
                SmsError::InvalidInput(text)
            }
        }
    }
}
