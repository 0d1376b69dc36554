//! `count`: encoding and segments, fast and without allocation on the common path.
//!
//! 1. Text of GSM ASCII bytes (most messages): one branch-free pass over the bytes, then a
//!    formula (or a window walk when there are extension characters).
//! 2. Other text: one pass over the characters (after Smart Encoding, applied on the fly)
//!    with one table look-up each. GSM-7 text, and UCS-2 text whose characters never join
//!    into clusters, are counted from that pass.
//! 3. Only long UCS-2 text with combining marks, ZWJ sequences, flags, Indic scripts and the
//!    like is split into graphemes (and, if Smart Encoding changed it, copied first).

use super::class::{self, SEPTETS, SIMPLE, SMART_KEY};
use super::graphemes::{graphemes, utf16_len};
use super::gsm::scan_gsm_ascii;
use super::pack::{
    GSM_PART_SEPTETS, GSM_SINGLE_SEPTETS, Packer, UCS2_PART_UNITS, UCS2_SINGLE_UNITS,
    gsm_ascii_segments,
};
use super::smart::{replacement_of_key, smart_encode};
use super::{Encoding, SegmentCount, SegmentOptions, saturate};

/// Counts encoding and segments; agrees with [`analyze`](super::analyze) and allocates nothing
/// unless the text is long UCS-2 that Smart Encoding changed and that holds multi-character
/// graphemes.
///
/// ```
/// use sms_core::segment::{count, Encoding, SegmentOptions};
/// let options = SegmentOptions::default();
/// assert_eq!(count("", options).segments, 1);
/// assert_eq!(count(&"]".repeat(153), options).segments, 3); // extension characters stay whole
/// assert_eq!(count(&"中".repeat(71), options).segments, 2);
/// ```
pub fn count(text: &str, options: SegmentOptions) -> SegmentCount {
    let bytes = text.as_bytes();
    if !options.force_ucs2
        && let Some(extension) = scan_gsm_ascii(bytes)
    {
        // All GSM already: Smart Encoding would change nothing, as all its keys lie outside
        // the GSM alphabet.
        return SegmentCount {
            encoding: Encoding::Gsm7,
            segments: saturate(gsm_ascii_segments(bytes, extension)),
        };
    }
    if options.smart_encoding {
        count_chars(Smart(text), options.force_ucs2)
            .unwrap_or_else(|| count_clusters(&smart_encode(text)))
    } else {
        count_chars(Plain(text), options.force_ucs2).unwrap_or_else(|| count_clusters(text))
    }
}

/// The characters to count, walked by internal iteration (a closure per character), which
/// compiles to a tighter loop than an iterator holding replacement state.
trait Characters: Copy {
    fn each(self, f: impl FnMut(char));
}

/// The text as it is.
#[derive(Clone, Copy)]
struct Plain<'a>(&'a str);

impl Characters for Plain<'_> {
    #[inline(always)]
    fn each(self, f: impl FnMut(char)) {
        self.0.chars().for_each(f);
    }
}

/// The text after Smart Encoding.
#[derive(Clone, Copy)]
struct Smart<'a>(&'a str);

impl Characters for Smart<'_> {
    #[inline(always)]
    fn each(self, mut f: impl FnMut(char)) {
        for c in self.0.chars() {
            match class::class(c) & SMART_KEY {
                0 => f(c),
                _ => replacement_of_key(c)
                    .unwrap_or_default()
                    .chars()
                    .for_each(&mut f),
            }
        }
    }
}

/// Counts from the characters alone; `None` when the text is UCS-2, longer than one segment,
/// and holds characters that may join into clusters, so that graphemes must be found.
#[inline]
fn count_chars(chars: impl Characters, force_ucs2: bool) -> Option<SegmentCount> {
    let mut septets = 0usize;
    let mut all_gsm = true;
    let mut extension = false;
    let mut utf16 = 0usize;
    let mut simple = true;
    let mut astral = false;
    chars.each(|c| {
        let class = class::class(c);
        let s = class & SEPTETS;
        all_gsm &= s != 0;
        extension |= s == 2;
        septets += usize::from(s);
        simple &= class & SIMPLE != 0;
        let wide = c as u32 >= 0x1_0000;
        utf16 += 1 + usize::from(wide);
        astral |= wide;
    });
    if all_gsm && !force_ucs2 {
        let segments = if septets <= GSM_SINGLE_SEPTETS {
            1
        } else if !extension {
            septets.div_ceil(GSM_PART_SEPTETS) as u64
        } else {
            // Characters are 1 or 2 septets: the calculator's packing is plain first-fit
            // with 153 septets per part (see `pack.rs`).
            let mut segments = 1;
            let mut used = 0;
            chars.each(|c| {
                let s = usize::from(class::class(c) & SEPTETS);
                if used + s > GSM_PART_SEPTETS {
                    segments += 1;
                    used = 0;
                }
                used += s;
            });
            segments
        };
        return Some(SegmentCount {
            encoding: Encoding::Gsm7,
            segments: saturate(segments),
        });
    }
    let segments = if utf16 <= UCS2_SINGLE_UNITS {
        1
    } else if simple && !astral {
        // One grapheme of one unit per character: the parts are simply full.
        utf16.div_ceil(UCS2_PART_UNITS) as u64
    } else if simple {
        // One grapheme per character.
        let mut packer = Packer::new(16, ());
        chars.each(|c| packer.push(c.len_utf16() as u64));
        packer.finish().0
    } else {
        return None;
    };
    Some(SegmentCount {
        encoding: Encoding::Ucs2,
        segments: saturate(segments),
    })
}

/// Counts UCS-2 text grapheme by grapheme.
fn count_clusters(text: &str) -> SegmentCount {
    let mut packer = Packer::new(16, ());
    graphemes(text).for_each(|g| packer.push(utf16_len(g) as u64));
    SegmentCount {
        encoding: Encoding::Ucs2,
        segments: saturate(packer.finish().0),
    }
}
