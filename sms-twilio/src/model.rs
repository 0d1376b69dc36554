//! Twilio's JSON resources, read leniently: every field may be null or absent, numbers may
//! come as strings, unknown fields and statuses never break parsing.

use serde::{Deserialize, Deserializer};
use sms_core::{Accepted, DeliveryStatus, PhoneNumber, SentMessage, Timestamp};

/// A Message resource (`api.v2010.account.message`), the fields this library uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MessageResource {
    /// `SM…` or `MM…`.
    pub sid: Option<String>,
    /// The account.
    pub account_sid: Option<String>,
    /// The Messaging Service (Twilio assigns a default one when none was used).
    pub messaging_service_sid: Option<String>,
    /// The sender; `null` at creation through a Messaging Service.
    pub from: Option<String>,
    /// The recipient.
    pub to: Option<String>,
    /// The text (may be redacted).
    pub body: Option<String>,
    /// The status word (`queued`, `accepted`, …), kept as sent.
    pub status: Option<String>,
    /// `outbound-api`, `inbound`, …
    pub direction: Option<String>,
    /// Segments; Twilio sends a string (`"1"`), `"0"` before a Messaging Service counted.
    #[serde(deserialize_with = "lenient_u32")]
    pub num_segments: Option<u32>,
    /// Error code on failed/undelivered messages.
    #[serde(deserialize_with = "lenient_u32")]
    pub error_code: Option<u32>,
    /// The error's text.
    pub error_message: Option<String>,
    /// Price as a decimal string (`"-0.00750"`), set later.
    #[serde(deserialize_with = "lenient_string")]
    pub price: Option<String>,
    /// ISO 4217 currency of the price.
    pub price_unit: Option<String>,
    /// RFC 2822 creation date.
    pub date_created: Option<String>,
    /// RFC 2822 date sent; null for scheduled messages.
    pub date_sent: Option<String>,
}

impl MessageResource {
    /// The status as the core knows it; unknown words kept as `Other`.
    pub fn delivery_status(&self) -> DeliveryStatus {
        self.status
            .as_deref()
            .map(DeliveryStatus::parse)
            .unwrap_or_else(|| DeliveryStatus::Other(String::new()))
    }

    /// Segments, when Twilio has counted them (`"0"` means not yet).
    pub fn segments(&self) -> Option<u32> {
        self.num_segments.filter(|n| *n > 0)
    }

    /// The core's view of an accepted send; `None` without a SID (nothing to track it by).
    pub fn to_accepted(&self) -> Option<Accepted> {
        Some(Accepted {
            provider_id: self.sid.clone().filter(|s| !s.is_empty())?,
            status: self.delivery_status(),
            segments: self.segments(),
        })
    }

    /// The core's view of a sent message; `fallback_to` when Twilio's `to` is missing or not
    /// a phone number.
    pub fn to_sent_message(&self, fallback_to: PhoneNumber) -> Option<SentMessage> {
        Some(SentMessage {
            provider_id: self.sid.clone().filter(|s| !s.is_empty())?,
            to: self
                .to
                .as_deref()
                .and_then(|t| PhoneNumber::from_e164(t).ok())
                .unwrap_or(fallback_to),
            body: self.body.clone(),
            status: self.delivery_status(),
            created_at: self.created_at(),
            segments: self.segments(),
        })
    }

    /// When Twilio created it.
    pub fn created_at(&self) -> Option<Timestamp> {
        self.date_created.as_deref().and_then(Timestamp::parse)
    }

    /// Whether Twilio sent it out (rather than received it).
    pub fn is_outbound(&self) -> bool {
        self.direction
            .as_deref()
            .is_none_or(|d| d.starts_with("outbound"))
    }
}

/// The Balance resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BalanceResource {
    /// The account.
    pub account_sid: Option<String>,
    /// Decimal string (`"0.05"`).
    #[serde(deserialize_with = "lenient_string")]
    pub balance: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
}

/// One page of the Messages list, read strictly: this page decides whether a text was sent.
///
/// A page without `messages` (or with `messages: null`), or with an element that is not a
/// readable message, is an error rather than an empty or shorter page: a history read as
/// shorter than it is reads as "not sent", and the record would be texted again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessagePage {
    /// The messages, newest first.
    pub messages: Vec<MessageResource>,
    /// The next page's path (relative to the API host), when there is one.
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// A number sent as a number or a string (`1`, `"1"`), or anything unusable as `None`.
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A decimal kept exact as text, whether sent as a string or a JSON number.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_null_or_missing_still_parses() {
        let m: MessageResource = serde_json::from_str(
            r#"{"sid":null,"from":null,"num_segments":null,"status":"brand_new","extra":{"x":1}}"#,
        )
        .expect("lenient");
        assert_eq!(
            m.delivery_status(),
            DeliveryStatus::Other("brand_new".into())
        );
        assert_eq!(m.to_accepted(), None);
        let m: MessageResource = serde_json::from_str("{}").expect("lenient");
        assert_eq!(m, MessageResource::default());
    }

    #[test]
    fn a_page_that_cannot_be_read_whole_is_an_error() {
        for text in [
            r#"{}"#,
            r#"{"messages": null}"#,
            r#"{"next_page_uri": null}"#,
            r#"{"messages": [{"sid": "SM1"}, "garbage"]}"#,
            r#"{"messages": [{"sid": "SM1"}, {"sid": 12}]}"#,
            r#"{"messages": {"sid": "SM1"}}"#,
        ] {
            assert!(
                serde_json::from_str::<MessagePage>(text).is_err(),
                "{text} must not read as a page"
            );
        }
        let page: MessagePage =
            serde_json::from_str(r#"{"messages": [], "next_page_uri": null}"#).expect("empty");
        assert!(page.messages.is_empty());
        let page: MessagePage =
            serde_json::from_str(r#"{"messages": [{"sid": "SM1"}]}"#).expect("one");
        assert_eq!(page.messages.len(), 1);
    }

    #[test]
    fn numbers_as_strings_or_numbers() {
        let m: MessageResource = serde_json::from_str(
            r#"{"sid":"SM1","num_segments":"2","error_code":30007,"price":-0.0075,"status":"accepted"}"#,
        )
        .expect("lenient");
        let accepted = m.to_accepted().expect("has sid");
        assert_eq!(accepted.segments, Some(2));
        assert_eq!(accepted.status, DeliveryStatus::Queued);
        assert_eq!(m.error_code, Some(30007));
        assert_eq!(m.price.as_deref(), Some("-0.0075"));
        let m: MessageResource =
            serde_json::from_str(r#"{"sid":"SM1","num_segments":"0"}"#).expect("lenient");
        assert_eq!(m.segments(), None);
    }
}
