//! Status callbacks: Twilio telling how a sent text is doing.

use serde::{Deserialize, Serialize};
use sms_core::DeliveryStatus;

use crate::signature::SignatureValidator;
use crate::webhook::{Fields, WebhookError};

/// One delivery status report, for the journal.
///
/// Callbacks may repeat and arrive out of order: dedupe by (`message_sid`, `raw_status`) and
/// never move a message back from a final status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The message (`SM…`), as `Accepted::provider_id` had it.
    pub message_sid: String,
    /// The status; words this library does not know are kept as `Other`.
    pub status: DeliveryStatus,
    /// The status word exactly as Twilio sent it (`accepted`, `read`, …).
    pub raw_status: String,
    /// Twilio's error code on failed/undelivered messages (`30003`).
    pub error_code: Option<u32>,
    /// The account.
    pub account_sid: Option<String>,
    /// The Messaging Service, when one was used.
    pub messaging_service_sid: Option<String>,
    /// The sender.
    pub from: Option<String>,
    /// The recipient.
    pub to: Option<String>,
    /// The carrier's "done date" (`YYMMDDhhmm`, no time zone), when sent.
    pub raw_dlr_done_date: Option<String>,
}

impl StatusUpdate {
    /// Reads the callback's fields (already authenticated). Unknown fields are ignored.
    ///
    /// ```
    /// use sms_core::DeliveryStatus;
    /// use sms_twilio::StatusUpdate;
    /// let fields = vec![
    ///     ("MessageSid".to_string(), "SM0123".to_string()),
    ///     ("MessageStatus".to_string(), "undelivered".to_string()),
    ///     ("ErrorCode".to_string(), "30003".to_string()),
    /// ];
    /// let update = StatusUpdate::parse(&fields).unwrap();
    /// assert_eq!(update.status, DeliveryStatus::Undelivered);
    /// assert_eq!(update.error_code, Some(30003));
    /// ```
    pub fn parse(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let fields = Fields(params);
        let message_sid = fields.required("MessageSid", &["SmsSid"])?;
        let raw_status = fields.required("MessageStatus", &["SmsStatus"])?;
        Ok(Self {
            message_sid,
            status: DeliveryStatus::parse(&raw_status),
            raw_status,
            error_code: fields.number("ErrorCode")?,
            account_sid: fields.any(&["AccountSid"]),
            messaging_service_sid: fields.any(&["MessagingServiceSid"]),
            from: fields.any(&["From"]),
            to: fields.any(&["To"]),
            raw_dlr_done_date: fields.any(&["RawDlrDoneDate"]),
        })
    }
}

/// Verifies a status callback and reads it: `url` as Twilio requested it, the decoded form
/// fields, and the `X-Twilio-Signature` header.
pub fn handle_status_callback(
    validator: &SignatureValidator,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<StatusUpdate, WebhookError> {
    validator.validate(url, params, signature)?;
    StatusUpdate::parse(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::form::form_fields as p;

    #[test]
    fn unknown_statuses_are_kept_and_legacy_names_read() {
        let u = StatusUpdate::parse(&p(&[("SmsSid", "SM1"), ("SmsStatus", "read")])).expect("ok");
        assert_eq!(u.message_sid, "SM1");
        assert_eq!(u.status, DeliveryStatus::Other("read".into()));
        assert_eq!(u.error_code, None);
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        assert_eq!(
            StatusUpdate::parse(&p(&[("MessageStatus", "sent")])),
            Err(WebhookError::MissingField("MessageSid"))
        );
        let err = StatusUpdate::parse(&p(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "x"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            WebhookError::InvalidField {
                name: "ErrorCode",
                ..
            }
        ));
    }
}
