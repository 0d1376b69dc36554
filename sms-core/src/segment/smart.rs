//! Twilio Smart Encoding, as the calculator emulates it: 271 code points replaced by GSM
//! look-alikes before counting.
//!
//! The replacement is 0, 1, 2, 3 or 7 characters long and is not applied again to its own
//! output. Every key is outside the GSM alphabet, so text that is already all GSM-7 is never
//! changed (the fast path of `count` relies on this; a test checks it).

use std::borrow::Cow;

use super::class::{SMART_KEY, class};

/// The replacement Smart Encoding puts in place of `c`, or `None` when `c` stays as it is.
///
/// ```
/// use sms_core::segment::smart_replacement;
/// assert_eq!(smart_replacement('\u{201C}'), Some("\""));
/// assert_eq!(smart_replacement('\u{2026}'), Some("..."));
/// assert_eq!(smart_replacement('\u{00A0}'), Some("  ")); // NBSP becomes two spaces
/// assert_eq!(smart_replacement('\u{200B}'), Some(""));   // ZWSP is deleted
/// assert_eq!(smart_replacement('a'), None);
/// ```
#[inline]
pub fn smart_replacement(c: char) -> Option<&'static str> {
    // Most characters are not keys: one table look-up settles them without the big match.
    if class(c) & SMART_KEY == 0 {
        return None;
    }
    replacement_of_key(c)
}

/// The map itself.
pub(crate) const fn replacement_of_key(c: char) -> Option<&'static str> {
    match c {
        '\u{00AB}' | '\u{00BB}' | '\u{201C}' | '\u{201D}' | '\u{02BA}' | '\u{02EE}'
        | '\u{201F}' | '\u{201E}' | '\u{275D}' | '\u{275E}' | '\u{301D}' | '\u{301E}'
        | '\u{FF02}' => Some("\""),
        '\u{2018}' | '\u{2019}' | '\u{02BB}' | '\u{02C8}' | '\u{02BC}' | '\u{02BD}'
        | '\u{02B9}' | '\u{201B}' | '\u{FF07}' | '\u{00B4}' | '\u{02CA}' | '\u{0060}'
        | '\u{02CB}' | '\u{275B}' | '\u{275C}' | '\u{0313}' | '\u{0314}' | '\u{FE10}'
        | '\u{FE11}' => Some("'"),
        '\u{00F7}' | '\u{29F8}' | '\u{0337}' | '\u{0338}' | '\u{2044}' | '\u{2215}'
        | '\u{FF0F}' => Some("/"),
        '\u{00BC}' => Some("1/4"),
        '\u{00BD}' => Some("1/2"),
        '\u{00BE}' => Some("3/4"),
        '\u{29F9}' | '\u{29F5}' | '\u{20E5}' | '\u{FE68}' | '\u{FF3C}' => Some("\\"),
        '\u{0332}' | '\u{FF3F}' | '\u{2017}' => Some("_"),
        '\u{20D2}' | '\u{20D3}' | '\u{2223}' | '\u{FF5C}' | '\u{23B8}' | '\u{23B9}'
        | '\u{23D0}' | '\u{239C}' | '\u{239F}' => Some("|"),
        '\u{23BC}' | '\u{23BD}' | '\u{2015}' | '\u{FE63}' | '\u{FF0D}' | '\u{2010}'
        | '\u{2043}' | '\u{2014}' | '\u{2013}' | '\u{2022}' => Some("-"),
        '\u{FE6B}' | '\u{FF20}' => Some("@"),
        '\u{FE69}' | '\u{FF04}' => Some("$"),
        '\u{01C3}' | '\u{FE15}' | '\u{FE57}' | '\u{FF01}' => Some("!"),
        '\u{FE5F}' | '\u{FF03}' => Some("#"),
        '\u{FE6A}' | '\u{FF05}' => Some("%"),
        '\u{FE60}' | '\u{FF06}' => Some("&"),
        '\u{201A}' | '\u{0326}' | '\u{FE50}' | '\u{FE51}' | '\u{FF0C}' | '\u{FF64}'
        | '\u{3001}' => Some(","),
        '\u{2768}' | '\u{276A}' | '\u{FE59}' | '\u{FF08}' | '\u{27EE}' | '\u{2985}' => Some("("),
        '\u{2769}' | '\u{276B}' | '\u{FE5A}' | '\u{FF09}' | '\u{27EF}' | '\u{2986}' => Some(")"),
        '\u{204E}' | '\u{2217}' | '\u{229B}' | '\u{2722}' | '\u{2723}' | '\u{2724}'
        | '\u{2725}' | '\u{2731}' | '\u{2732}' | '\u{2733}' | '\u{273A}' | '\u{273B}'
        | '\u{273C}' | '\u{273D}' | '\u{2743}' | '\u{2749}' | '\u{274A}' | '\u{274B}'
        | '\u{29C6}' | '\u{FE61}' | '\u{FF0A}' => Some("*"),
        '\u{02D6}' | '\u{FE62}' | '\u{FF0B}' => Some("+"),
        '\u{3002}' | '\u{FE52}' | '\u{FF0E}' | '\u{FF61}' => Some("."),
        '\u{FF10}' => Some("0"),
        '\u{FF11}' => Some("1"),
        '\u{FF12}' => Some("2"),
        '\u{FF13}' => Some("3"),
        '\u{FF14}' => Some("4"),
        '\u{FF15}' => Some("5"),
        '\u{FF16}' => Some("6"),
        '\u{FF17}' => Some("7"),
        '\u{FF18}' => Some("8"),
        '\u{FF19}' => Some("9"),
        '\u{02D0}' | '\u{02F8}' | '\u{2982}' | '\u{A789}' | '\u{FE13}' | '\u{FF1A}' => Some(":"),
        '\u{204F}' | '\u{FE14}' | '\u{FE54}' | '\u{FF1B}' => Some(";"),
        '\u{FE64}' | '\u{FF1C}' | '\u{2039}' => Some("<"),
        '\u{0347}' | '\u{A78A}' | '\u{FE66}' | '\u{FF1D}' => Some("="),
        '\u{FE65}' | '\u{FF1E}' | '\u{203A}' => Some(">"),
        '\u{FE16}' | '\u{FE56}' | '\u{FF1F}' => Some("?"),
        '\u{FF21}' | '\u{1D00}' => Some("A"),
        '\u{FF22}' | '\u{0299}' => Some("B"),
        '\u{FF23}' | '\u{1D04}' => Some("C"),
        '\u{FF24}' | '\u{1D05}' => Some("D"),
        '\u{FF25}' | '\u{1D07}' => Some("E"),
        '\u{FF26}' | '\u{A730}' => Some("F"),
        '\u{FF27}' | '\u{0262}' => Some("G"),
        '\u{FF28}' | '\u{029C}' => Some("H"),
        '\u{FF29}' | '\u{026A}' => Some("I"),
        '\u{FF2A}' | '\u{1D0A}' => Some("J"),
        '\u{FF2B}' | '\u{1D0B}' => Some("K"),
        '\u{FF2C}' | '\u{029F}' => Some("L"),
        '\u{FF2D}' | '\u{1D0D}' => Some("M"),
        '\u{FF2E}' | '\u{0274}' => Some("N"),
        '\u{FF2F}' | '\u{1D0F}' => Some("O"),
        '\u{FF30}' | '\u{1D18}' => Some("P"),
        '\u{FF31}' => Some("Q"),
        '\u{FF32}' | '\u{0280}' => Some("R"),
        '\u{FF33}' | '\u{A731}' => Some("S"),
        '\u{FF34}' | '\u{1D1B}' => Some("T"),
        '\u{FF35}' | '\u{1D1C}' => Some("U"),
        '\u{FF36}' | '\u{1D20}' => Some("V"),
        '\u{FF37}' | '\u{1D21}' => Some("W"),
        '\u{FF38}' => Some("X"),
        '\u{FF39}' | '\u{028F}' => Some("Y"),
        '\u{FF3A}' | '\u{1D22}' => Some("Z"),
        '\u{02C6}' | '\u{0302}' | '\u{FF3E}' | '\u{1DCD}' => Some("^"),
        '\u{2774}' | '\u{FE5B}' | '\u{FF5B}' => Some("{"),
        '\u{2775}' | '\u{FE5C}' | '\u{FF5D}' => Some("}"),
        '\u{FF3B}' => Some("["),
        '\u{FF3D}' => Some("]"),
        '\u{02DC}' | '\u{02F7}' | '\u{0303}' | '\u{0330}' | '\u{0334}' | '\u{223C}'
        | '\u{FF5E}' => Some("~"),
        '\u{00A0}' | '\u{2000}' | '\u{2002}' | '\u{2003}' | '\u{2004}' | '\u{2005}'
        | '\u{2006}' | '\u{2007}' | '\u{2008}' | '\u{2009}' | '\u{200A}' | '\u{202F}'
        | '\u{205F}' | '\u{3000}' | '\u{008D}' | '\u{009F}' | '\u{0080}' | '\u{0090}'
        | '\u{009B}' => Some("  "),
        '\u{0010}' | '\u{0000}' | '\u{0003}' | '\u{0004}' | '\u{0017}' | '\u{0019}'
        | '\u{0011}' | '\u{0012}' | '\u{0013}' | '\u{0014}' | '\u{2060}' | '\u{200B}'
        | '\u{200C}' | '\u{FEFF}' => Some(""),
        '\u{0009}' => Some("       "),
        '\u{203C}' => Some("!!"),
        '\u{2028}' | '\u{2029}' | '\u{2001}' => Some(" "),
        '\u{2026}' => Some("..."),
        _ => None,
    }
}

/// The text after Smart Encoding; borrowed when nothing had to be replaced.
///
/// ```
/// use sms_core::segment::smart_encode;
/// assert_eq!(smart_encode("It\u{2019}s \u{00BD} off\u{2026}"), "It's 1/2 off...");
/// ```
pub fn smart_encode(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find(|c| smart_replacement(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..start]);
    for c in text[start..].chars() {
        match smart_replacement(c) {
            Some(replacement) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::gsm::is_gsm7_char;

    fn keys() -> Vec<char> {
        (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| smart_replacement(c).is_some())
            .collect()
    }

    #[test]
    fn the_map_has_271_keys_none_of_them_gsm() {
        let keys = keys();
        let all: Vec<char> = (0..=0x10FFFF).filter_map(char::from_u32).collect();
        let in_match = all
            .iter()
            .filter(|&&c| replacement_of_key(c).is_some())
            .count();
        assert_eq!(in_match, keys.len(), "the bitset and the match agree");
        assert_eq!(keys.len(), 271);
        assert!(keys.iter().all(|&c| !is_gsm7_char(c)));
    }

    #[test]
    fn replacements_are_gsm_and_of_the_documented_lengths() {
        for c in keys() {
            let replacement = smart_replacement(c).expect("c is a key");
            assert!(replacement.chars().all(is_gsm7_char), "{c:?}");
            assert!(
                [0, 1, 2, 3, 7].contains(&replacement.chars().count()),
                "{c:?}"
            );
        }
    }

    #[test]
    fn replacement_is_not_recursive_and_spaces_widen() {
        assert_eq!(smart_encode("a\tb"), "a       b");
        assert_eq!(smart_encode("\u{00A0}\u{2001}\u{FEFF}"), "   ");
        assert_eq!(smart_encode("\u{FF5B}e\u{0303}\u{FF45}"), "{e~\u{FF45}");
        assert!(matches!(smart_encode("plain"), Cow::Borrowed("plain")));
    }
}
