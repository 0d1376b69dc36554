//! Keywords: what an inbound reply means (opt-out, opt-in, help, or anything else).
//!
//! Two policies ([`OptOutPolicy`]):
//!
//! - [`OptOutPolicy::Fcc`] (the default) follows the FCC's revocation rule (FCC 24-24, 47 CFR
//!   64.1200(a)(10), in force since 11 April 2025): a reply of one of the words stop, quit, end,
//!   revoke, opt out, cancel, unsubscribe is an opt-out, and so is a short reply that contains
//!   one of them ("please stop", "unsubscribe me"). The second is marked
//!   [`Classification::needs_review`]: a person may reverse it (a START, or a reversal recorded
//!   by staff), but until then nobody texts the number.
//! - [`OptOutPolicy::KeywordsOnly`], for hosts whose counsel wants it: only a reply that *is* a
//!   keyword acts; a sentence holding an opt-out word is [`KeywordClass::Other`] with
//!   [`Classification::likely_revocation`] for a person to review.
//!
//! Either way a reply is read leniently, erring towards honouring an opt-out: any case,
//! full-width forms folded to ASCII (`ＳＴＯＰ`), white space, hyphens and underscores inside
//! ignored (`Opt-out`, `OPT OUT`, `un-subscribe`), and leading and trailing punctuation, symbols
//! and emoji ignored (`STOP！`, `Stop…`, `"stop"`).

use serde::{Deserialize, Serialize};

/// Twilio's default opt-out keywords (REVOKE and OPTOUT were added for the FCC rule). With the
/// lenient reading, OPTOUT also matches "opt out" and "Opt-out".
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

/// The longest reply, in words, that [`OptOutPolicy::Fcc`] reads as an opt-out when it holds an
/// opt-out word ("please stop texting me now"). Longer texts are flagged for review only: a
/// message that merely mentions a word ("we need to cancel Tuesday, Ana is sick, see you next
/// week") is not a reply of that word.
pub const SHORT_REPLY_WORDS: usize = 8;

/// How strictly a reply that is not exactly a keyword is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptOutPolicy {
    /// The FCC revocation rule: the keywords, and a short reply holding an opt-out word (the
    /// latter recorded for review). The default.
    #[default]
    Fcc,
    /// Only a reply that is a keyword acts; sentences are flagged for review, never acted on.
    KeywordsOnly,
}

/// What an inbound body means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordClass {
    /// STOP and synonyms (or, by the FCC policy, a short reply holding one): stop texting this
    /// number.
    OptOut,
    /// START and synonyms: texting may resume.
    OptIn,
    /// HELP or INFO.
    Help,
    /// Anything else: returned to the host, never acted on.
    Other,
}

/// The classification of one inbound body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What the body means.
    pub class: KeywordClass,
    /// The keyword matched, upper case without spaces (`"STOP"`, `"OPTOUT"`), for opt-out,
    /// opt-in and help.
    pub keyword: Option<String>,
    /// For `Other`: the body contains an opt-out word ("stop texting me" under the keywords-only
    /// policy, or a long message), so a person should review it. It is not acted on.
    pub likely_revocation: bool,
    /// For `OptOut`: read from a short sentence, not a keyword ("please stop"). It is recorded
    /// as an opt-out (source natural-language reply) and a person should review it: they may
    /// reverse it if the sender meant something else.
    #[serde(default)]
    pub needs_review: bool,
}

/// Classifies an inbound body by the default policy, [`OptOutPolicy::Fcc`].
///
/// ```
/// use sms_core::keywords::classify;
/// use sms_core::KeywordClass;
/// assert_eq!(classify(" Stop. ").class, KeywordClass::OptOut);
/// assert_eq!(classify("Opt-out").keyword.as_deref(), Some("OPTOUT"));
/// let sentence = classify("stop texting me");
/// assert_eq!(sentence.class, KeywordClass::OptOut);
/// assert!(sentence.needs_review);
/// ```
pub fn classify(body: &str) -> Classification {
    classify_with(body, OptOutPolicy::default())
}

/// Classifies an inbound body by `policy`.
///
/// ```
/// use sms_core::keywords::{OptOutPolicy, classify_with};
/// use sms_core::KeywordClass;
/// let strict = classify_with("stop texting me", OptOutPolicy::KeywordsOnly);
/// assert_eq!(strict.class, KeywordClass::Other);
/// assert!(strict.likely_revocation);
/// ```
pub fn classify_with(body: &str, policy: OptOutPolicy) -> Classification {
    let folded = fold(body);
    let core = folded.trim_matches(|c: char| !c.is_alphanumeric());
    let compact: String = core.chars().filter(|c| !is_joiner(*c)).collect();
    let lists = [
        (KeywordClass::OptOut, OPT_OUT_KEYWORDS),
        (KeywordClass::OptIn, OPT_IN_KEYWORDS),
        (KeywordClass::Help, HELP_KEYWORDS),
    ];
    for (class, list) in lists {
        if let Some(keyword) = list.iter().find(|k| **k == compact) {
            return Classification {
                class,
                keyword: Some((*keyword).to_owned()),
                likely_revocation: false,
                needs_review: false,
            };
        }
    }
    let words: Vec<&str> = core
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let found = opt_out_word(&words);
    let short = core.split_whitespace().count() <= SHORT_REPLY_WORDS;
    match (found, policy) {
        (Some(keyword), OptOutPolicy::Fcc) if short => Classification {
            class: KeywordClass::OptOut,
            keyword: Some(keyword.to_owned()),
            likely_revocation: true,
            needs_review: true,
        },
        _ => Classification {
            class: KeywordClass::Other,
            keyword: None,
            likely_revocation: found.is_some(),
            needs_review: false,
        },
    }
}

/// The opt-out keyword among `words` (upper case), alone ("STOP") or spelt over two words
/// ("OPT OUT", "UN SUBSCRIBE").
fn opt_out_word(words: &[&str]) -> Option<&'static str> {
    let find = |word: &str| OPT_OUT_KEYWORDS.iter().copied().find(|k| *k == word);
    words.iter().find_map(|w| find(w)).or_else(|| {
        words
            .windows(2)
            .find_map(|pair| find(&format!("{}{}", pair[0], pair[1])))
    })
}

/// Upper case, with the full-width forms phones offer in CJK keyboards (`ＳＴＯＰ`, `！`, the
/// ideographic space) folded to ASCII, as Unicode's compatibility normalisation (NFKC) does.
fn fold(body: &str) -> String {
    body.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .flat_map(char::to_uppercase)
        .collect()
}

/// What may sit between the letters of a keyword and be ignored: white space, hyphens and
/// dashes, underscores.
fn is_joiner(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '_' | '\u{00AD}' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{200B}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(body: &str) -> KeywordClass {
        classify(body).class
    }

    #[test]
    fn every_keyword_of_every_list_in_any_case() {
        for (list, expected) in [
            (OPT_OUT_KEYWORDS, KeywordClass::OptOut),
            (OPT_IN_KEYWORDS, KeywordClass::OptIn),
            (HELP_KEYWORDS, KeywordClass::Help),
        ] {
            for keyword in list {
                let lower = keyword.to_lowercase();
                let title = format!("{}{}", &keyword[..1], &lower[1..]);
                for body in [keyword.to_string(), lower, title, format!(" {keyword}!\n")] {
                    for policy in [OptOutPolicy::Fcc, OptOutPolicy::KeywordsOnly] {
                        let c = classify_with(&body, policy);
                        assert_eq!(c.class, expected, "{body:?} {policy:?}");
                        assert_eq!(c.keyword.as_deref(), Some(*keyword), "{body:?}");
                        assert!(!c.needs_review, "{body:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_fcc_words_in_any_spelling_of_spaces_hyphens_and_case() {
        for body in [
            "opt out",
            "Opt-out",
            "OPTOUT",
            "opt_out",
            "Opt  Out.",
            "OPT\u{2010}OUT",
            "un-subscribe",
            "Un subscribe",
            "stop all",
            "Stop-All",
            "quit",
            "End",
            "REVOKE",
            "cancel",
        ] {
            for policy in [OptOutPolicy::Fcc, OptOutPolicy::KeywordsOnly] {
                let c = classify_with(body, policy);
                assert_eq!(c.class, KeywordClass::OptOut, "{body:?} {policy:?}");
                assert!(!c.needs_review, "{body:?} is a keyword, not a sentence");
            }
        }
    }

    #[test]
    fn punctuation_emoji_and_full_width_forms_are_read_through() {
        for body in [
            "STOP！",
            "Stop…",
            "ＳＴＯＰ",
            "ｓｔｏｐ",
            "\u{3000}ＳＴＯＰ\u{3000}",
            "\"stop\"",
            "*STOP*",
            "¡stop!",
            "stop 🛑",
            ".stop",
            "stop\u{200B}",
            " Stop. ",
            "quit?!",
        ] {
            assert_eq!(class(body), KeywordClass::OptOut, "{body:?}");
            assert!(!classify(body).needs_review, "{body:?}");
        }
        assert_eq!(class("ＳＴＡＲＴ"), KeywordClass::OptIn);
        assert_eq!(class("Help？"), KeywordClass::Help);
    }

    #[test]
    fn opt_in_and_help_need_the_whole_word() {
        for body in [
            "started",
            "start time?",
            "restart",
            "Yesterday",
            "yes please",
            "yess",
            "unstoppable",
            "starting monday",
        ] {
            assert_ne!(class(body), KeywordClass::OptIn, "{body:?}");
        }
        for body in [
            "helpful",
            "help me find the room",
            "information",
            "info on classes?",
            "helpdesk",
        ] {
            assert_ne!(class(body), KeywordClass::Help, "{body:?}");
        }
        for body in [
            "",
            "   ",
            "See you at class!",
            "stopp",
            "stopped by the office",
            "Friend",
            "recount",
            "Quite good",
        ] {
            let c = classify(body);
            assert_eq!(c.class, KeywordClass::Other, "{body:?}");
            assert!(!c.likely_revocation, "{body:?}");
        }
    }

    #[test]
    fn a_short_sentence_with_an_fcc_word_is_an_opt_out_for_review() {
        for (body, keyword) in [
            ("please stop", "STOP"),
            ("unsubscribe me", "UNSUBSCRIBE"),
            ("stop texting me", "STOP"),
            ("Please opt out my son", "OPTOUT"),
            ("I want to opt-out", "OPTOUT"),
            ("cancel these texts", "CANCEL"),
            ("STOP. Wrong number", "STOP"),
        ] {
            let c = classify(body);
            assert_eq!(c.class, KeywordClass::OptOut, "{body:?}");
            assert_eq!(c.keyword.as_deref(), Some(keyword), "{body:?}");
            assert!(c.needs_review && c.likely_revocation, "{body:?}");

            let strict = classify_with(body, OptOutPolicy::KeywordsOnly);
            assert_eq!(strict.class, KeywordClass::Other, "{body:?}");
            assert!(strict.likely_revocation && !strict.needs_review, "{body:?}");
        }
        // A long message that mentions a word is flagged, not acted on, by either policy.
        let long = "We have to cancel Tuesday because Ana is sick, see you next week";
        let c = classify(long);
        assert_eq!(c.class, KeywordClass::Other);
        assert!(c.likely_revocation);
    }
}
