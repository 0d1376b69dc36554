//! An inbound message as a store keeps it: every reply received, for the message units it used
//! (inbound texts are billed too) and for a person to read the ones that may revoke consent.
//!
//! Defined here, not in one store, because every store that serves `sms serve` (SQLite,
//! PostgreSQL) keeps the same record.

use serde::{Deserialize, Serialize};

use crate::keywords::KeywordClass;
use crate::time::Timestamp;

/// One inbound message as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    /// The provider's id of the message (`SM…`): a redelivery with the same id is stored once.
    pub message_sid: String,
    /// Who wrote, as the provider sent it (E.164 for SMS).
    pub from: String,
    /// Our number it was sent to.
    pub to: String,
    /// The text.
    pub body: String,
    /// Message units it used (Twilio's `NumSegments`; 1 when Twilio did not say).
    pub segments: u32,
    /// What it meant: opt-out, opt-in, help or other.
    pub class: KeywordClass,
    /// The keyword matched, for opt-out, opt-in and help.
    pub keyword: Option<String>,
    /// A person should read it: an opt-out read from a sentence (recorded, may be reversed) or
    /// a message that looks like a request to stop but was not acted on.
    pub review: bool,
    /// When it was received.
    pub received_at: Timestamp,
}

impl StoredReply {
    /// The stable code of a class, as stores write it (`opt_out`, `opt_in`, `help`, `other`).
    pub fn class_code(class: KeywordClass) -> &'static str {
        match class {
            KeywordClass::OptOut => "opt_out",
            KeywordClass::OptIn => "opt_in",
            KeywordClass::Help => "help",
            KeywordClass::Other => "other",
        }
    }

    /// A class from its stored code; an unknown code reads as `other` (a person reads those).
    pub fn class_from_code(code: &str) -> KeywordClass {
        match code {
            "opt_out" => KeywordClass::OptOut,
            "opt_in" => KeywordClass::OptIn,
            "help" => KeywordClass::Help,
            _ => KeywordClass::Other,
        }
    }
}
