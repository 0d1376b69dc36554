//! Graphemes as the calculator counts them: extended grapheme clusters (current Unicode
//! rules, from `unicode-segmentation`), with every CRLF split into CR and LF.

use unicode_segmentation::{Graphemes as Clusters, UnicodeSegmentation};

use super::class::{SIMPLE, class};

/// The graphemes of a text as the calculator sees them: extended grapheme clusters, except
/// that `"\r\n"` comes out as `"\r"` then `"\n"` (CR and LF are counted, and can be sent,
/// separately).
///
/// Yields exactly what `unicode-segmentation` yields (CRLF aside), faster: between two
/// characters that always stand alone (Latin, Cyrillic, CJK, most punctuation, plain emoji)
/// there is always a boundary, so only the stretches around other characters (combining
/// marks, ZWJ, regional indicators, Indic scripts, Hangul...) go through
/// `unicode-segmentation`.
///
/// ```
/// use sms_core::segment::graphemes;
/// let parts: Vec<&str> = graphemes("a\r\ne\u{301}👍🏽").collect();
/// assert_eq!(parts, ["a", "\r", "\n", "e\u{301}", "👍🏽"]);
/// ```
pub fn graphemes(text: &str) -> Graphemes<'_> {
    Graphemes {
        rest: text,
        island: "".graphemes(true),
        pending_lf: false,
    }
}

/// Iterator returned by [`graphemes`].
#[derive(Clone)]
pub struct Graphemes<'a> {
    /// The text not yet looked at; it starts at a grapheme boundary.
    rest: &'a str,
    /// Clusters of the stretch being split by `unicode-segmentation`.
    island: Clusters<'a>,
    pending_lf: bool,
}

impl<'a> Iterator for Graphemes<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.pending_lf {
            self.pending_lf = false;
            return Some("\n");
        }
        if let Some(cluster) = self.island.next() {
            return Some(self.split_crlf(cluster));
        }
        let mut chars = self.rest.chars();
        let first = chars.next()?;
        if is_simple(first) && chars.next().is_none_or(is_simple) {
            let (grapheme, rest) = self.rest.split_at(first.len_utf8());
            self.rest = rest;
            return Some(grapheme);
        }
        let end = island_end(self.rest);
        let (island, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.island = island.graphemes(true);
        self.island.next().map(|cluster| self.split_crlf(cluster))
    }
}

impl<'a> Graphemes<'a> {
    #[inline]
    fn split_crlf(&mut self, cluster: &'a str) -> &'a str {
        if cluster == "\r\n" {
            self.pending_lf = true;
            return "\r";
        }
        cluster
    }
}

/// Where the stretch that starts `text` and needs real segmentation ends: at the first
/// point between two simple characters (a sure boundary), or at the end of the text.
///
/// Splitting the stretch on its own gives the same clusters as splitting the whole text:
/// the stretch starts at the text's start or right after a simple character, and the rules
/// of UAX #29 that look further back (GB9c, GB11, GB12/13) only walk back over characters
/// that are not simple, so they stop at a simple one. A test checks this against
/// `unicode-segmentation` on random text.
fn island_end(text: &str) -> usize {
    let mut previous_simple = false;
    for (i, c) in text.char_indices() {
        let simple = is_simple(c);
        if simple && previous_simple {
            return i;
        }
        previous_simple = simple;
    }
    text.len()
}

/// UTF-16 code units of a UTF-8 string, from its bytes: one per leading byte, and one more
/// for each four-byte sequence (a surrogate pair).
#[inline]
pub(crate) fn utf16_len(s: &str) -> usize {
    s.bytes()
        .map(|b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

/// Whether a grapheme boundary always falls both before and after `c`, whatever its
/// neighbours, as long as they are such characters too (or CR/LF, which the calculator splits
/// anyway). True only for characters whose Grapheme_Cluster_Break is Other, Control, CR or
/// LF, and that are neither regional indicators nor Hangul jamo or syllables: then no rule
/// of UAX #29 but GB999 applies between two of them. A text made only of these has one
/// grapheme per character, so `count` can skip cluster segmentation.
///
/// Conservative: unlisted scripts are simply not "simple". A test checks every listed
/// character against `unicode-segmentation`.
#[inline]
pub(crate) fn is_simple(c: char) -> bool {
    class(c) & SIMPLE != 0
}

/// [`is_simple`] as ranges, for building the class table at compile time.
pub(crate) const fn is_simple_const(c: char) -> bool {
    matches!(c as u32,
        0x0000..=0x02FF // Latin, IPA, modifier letters, C0/C1 controls
        | 0x0370..=0x0377 | 0x037A..=0x037F | 0x0384..=0x038A | 0x038C | 0x038E..=0x03A1
        | 0x03A3..=0x0482 // Greek and Cyrillic letters
        | 0x048A..=0x052F // the rest of Cyrillic
        | 0x05D0..=0x05EA // Hebrew letters
        | 0x060C | 0x061B | 0x061F | 0x0620..=0x064A | 0x0660..=0x066F // Arabic letters, digits
        | 0x0671..=0x06D3
        | 0x2000..=0x200B | 0x200E..=0x2064 // spaces, punctuation (not ZWNJ, ZWJ)
        | 0x2070..=0x2071 | 0x2074..=0x208E | 0x20A0..=0x20C0 // super/subscripts, currency
        | 0x2100..=0x2BFF // letterlike, arrows, maths, technical, shapes, dingbats
        | 0x3000..=0x3029 | 0x3030..=0x303F // CJK punctuation
        | 0x3041..=0x3096 | 0x309B..=0x30FF // kana, without the combining sound marks
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF // CJK ideographs
        | 0xFF01..=0xFF9D // fullwidth and halfwidth forms, without the sound marks
    ) || is_simple_astral(c as u32)
}

/// The astral part of [`is_simple_const`]: emoji blocks, without the skin-tone modifiers.
#[inline]
pub(crate) const fn is_simple_astral(cp: u32) -> bool {
    matches!(cp, 0x1F300..=0x1F3FA | 0x1F400..=0x1F64F | 0x1F680..=0x1F6FF | 0x1F900..=0x1F9FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_characters_always_stand_alone() {
        // Probes: an ordinary letter, the character itself (catches regional indicators and
        // Hangul L/V/T), and a Hangul vowel and trailing consonant (catch LV and LVT).
        for c in (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| is_simple(c))
        {
            for probe in ['a', c, '\u{1160}', '\u{11A8}', '中'] {
                for pair in [format!("{c}{probe}"), format!("{probe}{c}")] {
                    let count = pair.graphemes(true).count();
                    let crlf = pair == "\r\n";
                    assert!(
                        count == 2 || crlf,
                        "U+{:04X} joins with {probe:?}",
                        c as u32
                    );
                }
            }
        }
    }

    /// What the calculator's graphemes are by definition: clusters, CRLF split.
    fn reference(text: &str) -> Vec<&str> {
        text.graphemes(true)
            .flat_map(|g| {
                if g == "\r\n" {
                    vec!["\r", "\n"]
                } else {
                    vec![g]
                }
            })
            .collect()
    }

    /// Characters of every Grapheme_Cluster_Break class, and simple ones around them.
    const MIXED: &[char] = &[
        'a',
        'e',
        ' ',
        '\r',
        '\n',
        '\u{1}',
        '中',
        'д',
        '\u{301}',
        '\u{200D}',
        '\u{FE0F}',
        '\u{1F3FD}',
        '👍',
        '👨',
        '👩',
        '🇺',
        '🇸',
        '\u{600}',
        '\u{903}',
        '\u{1100}',
        '\u{1161}',
        '\u{11A8}',
        '가',
        '각',
        'क',
        'ष',
        '\u{94D}',
        'ि',
        'ก',
        '\u{E33}',
        '\u{AD}',
        '\u{2640}',
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        #[test]
        fn the_fast_split_equals_unicode_segmentation(
            chars in proptest::collection::vec(proptest::sample::select(MIXED), 0..40)
        ) {
            let text: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(graphemes(&text).collect::<Vec<_>>(), reference(&text));
        }

        #[test]
        fn the_fast_split_equals_unicode_segmentation_on_any_string(text in ".*") {
            proptest::prop_assert_eq!(graphemes(&text).collect::<Vec<_>>(), reference(&text));
        }
    }

    #[test]
    fn utf16_len_matches_encode_utf16() {
        for s in ["", "abc", "é中", "😀👨‍👩‍👧‍👦", "\u{10FFFF}\u{800}\u{7FF}"] {
            assert_eq!(utf16_len(s), s.encode_utf16().count(), "{s:?}");
        }
    }
}
