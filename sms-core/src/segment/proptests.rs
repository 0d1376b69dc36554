//! Property tests: the rules hold for any text, and `count` agrees with `analyze`.

use proptest::prelude::*;

use super::graphemes::utf16_len;
use super::{Encoding, SegmentOptions, analyze, count, graphemes, gsm7_septets};

/// Pieces that stress the rules: extension characters, CRLF, clusters, astral characters,
/// Smart Encoding keys (some widen to 2, 3 or 7 characters), non-Latin scripts.
const PIECES: &[&str] = &[
    "a",
    "a",
    "a",
    "Z",
    " ",
    "]",
    "€",
    "^",
    "é",
    "Ç",
    "ç",
    "\r",
    "\n",
    "\r\n",
    "中",
    "д",
    "😀",
    "👍🏽",
    "e\u{301}",
    "👨‍👩‍👧‍👦",
    "🇺🇸",
    "क्षि",
    "\u{201C}",
    "\u{2019}",
    "\t",
    "\u{A0}",
    "…",
    "\u{FF5B}",
    "\u{200B}",
    "ｅ",
    "`",
    "\u{1B}",
];

/// Texts of up to `max` pieces drawn from a random subset of `pieces`, so that some texts
/// avoid whole classes of characters (astral, non-GSM, clusters) and reach every path.
fn texts_from(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::sample::subsequence(pieces, 1..=pieces.len())
        .prop_flat_map(move |alphabet| {
            prop::collection::vec(prop::sample::select(alphabet), 0..max)
        })
        .prop_map(|parts| parts.concat())
}

/// Pieces that never join into clusters (the fast paths of `count` handle them).
const SIMPLE_PIECES: &[&str] = &[
    "a", "a", "中", "д", "ا", "😀", "]", "€", "é", "\u{201C}", "\t", "\u{A0}", "…", "\r\n", "ｅ",
    "\u{FF5B}",
];

fn gsm_text() -> impl Strategy<Value = String> {
    let gsm: Vec<char> = (0..0x2100u32)
        .filter_map(char::from_u32)
        .filter(|&c| gsm7_septets(c) != 0)
        .collect();
    prop::collection::vec(prop::sample::select(gsm), 0..500)
        .prop_map(|chars| chars.into_iter().collect())
}

fn options() -> impl Strategy<Value = SegmentOptions> {
    (any::<bool>(), any::<bool>()).prop_map(|(smart_encoding, force_ucs2)| SegmentOptions {
        smart_encoding,
        force_ucs2,
    })
}

fn check_rules(text: &str, options: SegmentOptions) -> Result<(), TestCaseError> {
    let report = analyze(text, options);
    let counted = count(text, options);
    prop_assert_eq!(counted.encoding, report.encoding);
    prop_assert_eq!(counted.segments, report.segments);
    let n = report.segments as usize;
    prop_assert!(n >= 1);
    prop_assert_eq!(report.segment_units.len(), n);
    prop_assert_eq!(report.segment_chars.len(), n);
    prop_assert_eq!(report.segment_bits.len(), n);
    prop_assert_eq!(report.segment_chars.iter().sum::<u32>(), report.graphemes);
    let sent = report.smart_text.as_deref().unwrap_or(text);
    let units: u32 = report.segment_units.iter().sum();
    let (single, part, bits_per_unit) = match report.encoding {
        Encoding::Gsm7 => {
            prop_assert_eq!(units, report.number_of_characters);
            let septets: u32 = sent.chars().map(|c| u32::from(gsm7_septets(c))).sum();
            prop_assert_eq!(units, septets);
            (160, 153, 7)
        }
        Encoding::Ucs2 => {
            prop_assert_eq!(units as usize, utf16_len(sent));
            prop_assert_eq!(report.number_of_characters, report.graphemes);
            (70, 67, 16)
        }
    };
    let headers = if n > 1 { 48 * n as u32 } else { 0 };
    prop_assert_eq!(report.message_size_bits, units * bits_per_unit);
    prop_assert_eq!(report.total_size_bits, units * bits_per_unit + headers);
    // Past 32 units one grapheme can push the limits (see `pack.rs`): only check below.
    let largest = graphemes(sent).map(utf16_len).max().unwrap_or(0);
    if largest <= 32 {
        if n == 1 {
            prop_assert!(report.segment_units[0] <= single);
        } else {
            prop_assert!(report.segment_units.iter().all(|&u| u <= part && u > 0));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rules_hold_for_stressful_text(text in texts_from(PIECES, 420), options in options()) {
        check_rules(&text, options)?;
    }

    #[test]
    fn rules_hold_for_text_without_clusters(text in texts_from(SIMPLE_PIECES, 300), options in options()) {
        check_rules(&text, options)?;
    }

    #[test]
    fn rules_hold_for_any_string(text in any::<String>(), options in options()) {
        check_rules(&text, options)?;
    }

    #[test]
    fn gsm_text_is_never_ucs2(text in gsm_text(), smart_encoding in any::<bool>()) {
        let options = SegmentOptions { smart_encoding, force_ucs2: false };
        prop_assert_eq!(count(&text, options).encoding, Encoding::Gsm7);
        let report = analyze(&text, options);
        prop_assert_eq!(report.encoding, Encoding::Gsm7);
        prop_assert!(report.non_gsm.is_empty());
        // Smart Encoding leaves GSM text alone.
        prop_assert_eq!(report.smart_text.as_deref().unwrap_or(&text), text.as_str());
        check_rules(&text, options)?;
    }

    #[test]
    fn forcing_ucs2_never_lowers_the_count(text in gsm_text()) {
        let auto = count(&text, SegmentOptions::default());
        let forced = count(&text, SegmentOptions { force_ucs2: true, smart_encoding: false });
        prop_assert_eq!(forced.encoding, Encoding::Ucs2);
        prop_assert!(forced.segments >= auto.segments);
    }
}
