//! What the webhook handlers share: their error, and reading form fields.

use crate::signature::SignatureError;

/// Why a webhook request was refused. Answer 403 for `Signature`, 400 for a bad field, and
/// 5xx for `Store` (Twilio then retries; nothing was recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The request is not provably from Twilio.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A field Twilio always sends is absent.
    #[error("webhook field {0} is missing")]
    MissingField(&'static str),
    /// A field is present but unusable.
    #[error("webhook field {name} is invalid: {reason}")]
    InvalidField {
        /// The field.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The opt-out could not be recorded durably; nothing was answered to the sender.
    #[error("opt-out store unavailable: {0}")]
    Store(String),
}

/// Read access to decoded form fields; the first value of a repeated name wins.
pub(crate) struct Fields<'a>(pub &'a [(String, String)]);

impl Fields<'_> {
    /// The first value of `name`, if present (empty values included: an empty `Body` is real).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-blank value among `names`.
    pub fn any(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|n| self.get(n))
            .map(str::trim)
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A required non-blank field.
    pub fn required(
        &self,
        name: &'static str,
        fallbacks: &[&str],
    ) -> Result<String, crate::WebhookError> {
        let mut names = vec![name];
        names.extend_from_slice(fallbacks);
        self.any(&names).ok_or(WebhookError::MissingField(name))
    }

    /// A number Twilio sends as text; `Err` names the field when it is not one.
    pub fn number(&self, name: &'static str) -> Result<Option<u32>, WebhookError> {
        match self.any(&[name]) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| WebhookError::InvalidField {
                    name,
                    reason: format!("expected a whole number, got {text:?}"),
                }),
        }
    }
}
