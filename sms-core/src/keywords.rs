//! Keywords: what an inbound reply means (opt-out, opt-in, help, or anything else).
//!
//! Twilio's default lists, matched on the whole message in any case, surrounding white space
//! and trailing punctuation ignored.

use serde::{Deserialize, Serialize};

/// Twilio's default opt-out keywords.
pub const OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// Twilio's default opt-in keywords.
pub const OPT_IN_KEYWORDS: &[&str] = &["START", "YES", "UNSTOP"];
/// Twilio's default help keywords.
pub const HELP_KEYWORDS: &[&str] = &["HELP", "INFO"];

/// What an inbound body means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordClass {
    /// STOP and synonyms: stop texting this number.
    OptOut,
    /// START and synonyms: texting may resume.
    OptIn,
    /// HELP or INFO.
    Help,
    /// Anything else: recorded, never acted on.
    Other,
}

/// The classification of one inbound body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What the body means.
    pub class: KeywordClass,
    /// The keyword matched, upper case (`"STOP"`), for opt-out, opt-in and help.
    pub keyword: Option<String>,
    /// For `Other`: the body contains an opt-out keyword as a word ("stop texting me"), so a
    /// person should review it. It is never acted on automatically.
    pub likely_revocation: bool,
}

/// Classifies an inbound body.
///
/// ```
/// use sms_core::keywords::classify;
/// use sms_core::KeywordClass;
/// assert_eq!(classify(" Stop. ").class, KeywordClass::OptOut);
/// let other = classify("stop texting me");
/// assert_eq!(other.class, KeywordClass::Other);
/// assert!(other.likely_revocation);
/// ```
pub fn classify(body: &str) -> Classification {
    let core = body
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .trim();
    let upper = core.to_uppercase();
    let lists = [
        (KeywordClass::OptOut, OPT_OUT_KEYWORDS),
        (KeywordClass::OptIn, OPT_IN_KEYWORDS),
        (KeywordClass::Help, HELP_KEYWORDS),
    ];
    for (class, list) in lists {
        if let Some(keyword) = list.iter().find(|k| **k == upper) {
            return Classification {
                class,
                keyword: Some((*keyword).to_owned()),
                likely_revocation: false,
            };
        }
    }
    let likely_revocation = upper
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| OPT_OUT_KEYWORDS.contains(&word))
        || upper.contains("OPT OUT")
        || upper.contains("UNSUBSCRIBE");
    Classification {
        class: KeywordClass::Other,
        keyword: None,
        likely_revocation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_any_case_trailing_punctuation() {
        for body in [
            "STOP",
            "stop",
            " Stop. ",
            "Stop!",
            "stop\n",
            "unsubscribe",
            "OptOut",
            "quit?!",
        ] {
            assert_eq!(classify(body).class, KeywordClass::OptOut, "{body:?}");
        }
        for body in ["START", "yes", "Unstop."] {
            assert_eq!(classify(body).class, KeywordClass::OptIn, "{body:?}");
        }
        for body in ["help", "INFO?"] {
            assert_eq!(classify(body).class, KeywordClass::Help, "{body:?}");
        }
    }

    #[test]
    fn sentences_are_other_but_flag_likely_revocations() {
        let c = classify("stop texting me");
        assert_eq!(c.class, KeywordClass::Other);
        assert!(c.likely_revocation);
        let c = classify("Please opt out my son");
        assert!(c.likely_revocation);
        let c = classify("See you at class!");
        assert_eq!(c.class, KeywordClass::Other);
        assert!(!c.likely_revocation);
        assert_eq!(classify("").class, KeywordClass::Other);
        assert_eq!(classify("stopp").class, KeywordClass::Other);
        assert_eq!(classify(".stop").class, KeywordClass::Other);
    }
}
