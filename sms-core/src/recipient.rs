//! Recipients: the records a host's filter selected (clients and staff).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The host's identifier of a record (a client or staff id in the registration database).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    /// Wraps a host's record id. Surrounding white space is removed.
    pub fn new(id: impl Into<String>) -> RecordId {
        let id: String = id.into();
        let trimmed = id.trim();
        if trimmed.len() == id.len() {
            RecordId(id)
        } else {
            RecordId(trimmed.to_owned())
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's *Permitted Marketing Methods*: one text field holding a list
/// (`"Email, Text"`, `"Mail;Alerts"`, `"text"`).
///
/// Entries are matched whole and case-insensitively: `"Textbook"` is not `"Text"`.
///
/// ```
/// use sms_core::PermittedMarketingMethods;
/// assert!(PermittedMarketingMethods::new("Email, text").allows_text());
/// assert!(PermittedMarketingMethods::new("Mail;Alerts").allows_alerts());
/// assert!(!PermittedMarketingMethods::new("Textbook").allows_text());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermittedMarketingMethods(String);

impl PermittedMarketingMethods {
    /// Wraps the field as stored by the host.
    pub fn new(field: impl Into<String>) -> Self {
        Self(field.into())
    }

    /// The field as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entries of the list, trimmed, empty ones dropped. Separators: `,` `;` `|` `/` and
    /// line breaks.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.0
            .split([',', ';', '|', '/', '\n', '\r'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
    }

    /// Whether the list holds `entry`, compared whole and case-insensitively.
    pub fn contains(&self, entry: &str) -> bool {
        self.entries().any(|e| e.eq_ignore_ascii_case(entry))
    }

    /// The list holds `Text`.
    pub fn allows_text(&self) -> bool {
        self.contains("Text")
    }

    /// The list holds `Alerts`.
    pub fn allows_alerts(&self) -> bool {
        self.contains("Alerts")
    }
}

/// Client or staff, with the permission field that governs texting each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecipientKind {
    /// A client (a learner, a parent).
    Client {
        /// The client's *Permitted Marketing Methods*.
        permitted_marketing_methods: PermittedMarketingMethods,
    },
    /// A staff member (an instructor, an office worker).
    Staff {
        /// The staff member's *Permitted SMS Text* (Yes/No).
        permitted_sms_text: bool,
    },
}

impl RecipientKind {
    /// `"client"` or `"staff"`.
    pub fn label(&self) -> &'static str {
        self.record_kind().label()
    }

    /// Client or staff, without the permission field.
    pub fn record_kind(&self) -> RecordKind {
        match self {
            RecipientKind::Client { .. } => RecordKind::Client,
            RecipientKind::Staff { .. } => RecordKind::Staff,
        }
    }
}

/// Client or staff, as shown in previews and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A client.
    Client,
    /// A staff member.
    Staff,
}

impl RecordKind {
    /// `"client"` or `"staff"`.
    pub fn label(&self) -> &'static str {
        match self {
            RecordKind::Client => "client",
            RecordKind::Staff => "staff",
        }
    }
}

/// One record selected by the host's filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The host's id of the record.
    pub record_id: RecordId,
    /// Client or staff, with its permission field.
    pub kind: RecipientKind,
    /// First name (merge field `{first_name}`).
    pub first_name: String,
    /// Last name (merge field `{last_name}`).
    pub last_name: String,
    /// The mobile number exactly as typed in the record.
    pub mobile: String,
    /// IANA time zone of the record (`America/New_York`), when known.
    pub time_zone: Option<String>,
    /// Other merge fields (`course_title`, `start_date`...), by name.
    pub fields: BTreeMap<String, String>,
}

impl Recipient {
    /// The value of merge field `name` for this record: the built-in fields `first_name`,
    /// `last_name`, `record_id`, `mobile`, then the extra fields.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "first_name" => Some(&self.first_name),
            "last_name" => Some(&self.last_name),
            "record_id" => Some(self.record_id.as_str()),
            "mobile" => Some(&self.mobile),
            _ => self.fields.get(name).map(String::as_str),
        }
    }

    /// "First Last", trimmed.
    pub fn display_name(&self) -> String {
        let (first, last) = (self.first_name.trim(), self.last_name.trim());
        let mut name = String::with_capacity(first.len() + last.len() + 1);
        name.push_str(first);
        if !first.is_empty() && !last.is_empty() {
            name.push(' ');
        }
        name.push_str(last);
        name
    }
}

/// Parses a Yes/No field as hosts store it: `Yes`/`No`, `Y`/`N`, `true`/`false`, `1`/`0`
/// (any case). `None` for anything else.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "t" | "1" => Some(true),
        "no" | "n" | "false" | "f" | "0" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permitted_methods_match_whole_entries_in_any_case() {
        for yes in ["Text", "text", "Email, Text", " Mail ; TEXT ", "Email|Text"] {
            assert!(PermittedMarketingMethods::new(yes).allows_text(), "{yes}");
        }
        for no in ["", "Textbook", "Email", "Texting", "Tex t", "Context"] {
            assert!(!PermittedMarketingMethods::new(no).allows_text(), "{no}");
        }
        assert!(PermittedMarketingMethods::new("Mail;Alerts").allows_alerts());
        assert!(!PermittedMarketingMethods::new("Alert").allows_alerts());
    }

    #[test]
    fn yes_no_accepts_the_usual_spellings() {
        assert_eq!(parse_yes_no("Yes"), Some(true));
        assert_eq!(parse_yes_no("Y"), Some(true));
        assert_eq!(parse_yes_no("true"), Some(true));
        assert_eq!(parse_yes_no("N"), Some(false));
        assert_eq!(parse_yes_no(""), Some(false));
        assert_eq!(parse_yes_no("maybe"), None);
    }
}
