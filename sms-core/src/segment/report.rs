//! The full report: every figure the calculator gives, segment by segment.

use super::graphemes::{graphemes, utf16_len};
use super::gsm::{gsm7_septets, is_gsm7_grapheme};
use super::pack::{Packer, Segment};
use super::smart::smart_encode;
use super::{Encoding, LineBreakStyle, SegmentOptions, SegmentReport, saturate};

/// The header of each part of a multi-part message, in bits.
const UDH_BITS: u64 = 48;

/// Counts everything the calculator reports.
///
/// ```
/// use sms_core::segment::{analyze, Encoding, SegmentOptions};
/// let report = analyze("Café ☕ at 9", SegmentOptions::default());
/// assert_eq!(report.encoding, Encoding::Ucs2);
/// assert_eq!(report.non_gsm, ["☕"]);
/// assert_eq!(report.segment_units, [11]);
/// ```
pub fn analyze(text: &str, options: SegmentOptions) -> SegmentReport {
    let smart_text = options
        .smart_encoding
        .then(|| smart_encode(text).into_owned());
    let sent = smart_text.as_deref().unwrap_or(text);
    let all_gsm = sent.chars().all(|c| gsm7_septets(c) != 0);
    let encoding = if all_gsm && !options.force_ucs2 {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    let mut non_gsm = Vec::new();
    let mut grapheme_count = 0u64;
    let mut septets = 0u64;
    let (bits_per_unit, segments) = if encoding == Encoding::Gsm7 {
        // GSM characters never join into clusters (CRLF is split anyway): one grapheme each.
        let mut packer = Packer::new(7, Vec::new());
        for c in sent.chars() {
            let s = u64::from(gsm7_septets(c));
            packer.push(s);
            septets += s;
            grapheme_count += 1;
        }
        (7, packer.finish().1)
    } else {
        // In UCS-2 a GSM character costs one unit, like any other BMP character.
        let mut packer = Packer::new(16, Vec::new());
        for g in graphemes(sent) {
            packer.push(utf16_len(g) as u64);
            if !is_gsm7_grapheme(g) {
                non_gsm.push(g.to_owned());
            }
            grapheme_count += 1;
        }
        (16, packer.finish().1)
    };
    let message_bits: u64 = segments.iter().map(|s| s.units * bits_per_unit).sum();
    let headers = if segments.len() > 1 {
        UDH_BITS * segments.len() as u64
    } else {
        0
    };
    let per_segment = |f: fn(&Segment) -> u64| segments.iter().map(|s| saturate(f(s))).collect();
    SegmentReport {
        encoding,
        segments: saturate(segments.len()),
        segment_units: per_segment(|s| s.units),
        segment_chars: per_segment(|s| s.chars),
        segment_bits: segments
            .iter()
            .map(|s| saturate(s.units * bits_per_unit))
            .collect(),
        total_size_bits: saturate(message_bits + headers),
        message_size_bits: saturate(message_bits),
        number_of_characters: saturate(match encoding {
            Encoding::Gsm7 => septets,
            Encoding::Ucs2 => grapheme_count,
        }),
        number_of_unicode_scalars: saturate(sent.chars().count()),
        graphemes: saturate(grapheme_count),
        non_gsm,
        line_break_style: line_break_style(sent),
        smart_text,
    }
}

/// `CRLF` when the text holds `\r\n` and no lone `\n`, `LF` for the reverse, both, or none.
fn line_break_style(text: &str) -> Option<LineBreakStyle> {
    let bytes = text.as_bytes();
    let (mut lf, mut crlf) = (false, false);
    for (i, _) in bytes.iter().enumerate().filter(|&(_, &b)| b == b'\n') {
        if i > 0 && bytes[i - 1] == b'\r' {
            crlf = true;
        } else {
            lf = true;
        }
    }
    match (lf, crlf) {
        (true, true) => Some(LineBreakStyle::LfCrlf),
        (true, false) => Some(LineBreakStyle::Lf),
        (false, true) => Some(LineBreakStyle::Crlf),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks() {
        assert_eq!(line_break_style("a\rb"), None);
        assert_eq!(line_break_style("\na"), Some(LineBreakStyle::Lf));
        assert_eq!(line_break_style("a\r\n"), Some(LineBreakStyle::Crlf));
        assert_eq!(line_break_style("\r\n\n"), Some(LineBreakStyle::LfCrlf));
    }

    #[test]
    fn crlf_counts_two_and_can_straddle_segments() {
        let text = format!("{}\r\n{}", "a".repeat(80), "a".repeat(79));
        let report = analyze(&text, SegmentOptions::default());
        assert_eq!(report.segments, 2);
        assert_eq!(report.graphemes, 161);
        assert_eq!(report.line_break_style, Some(LineBreakStyle::Crlf));
    }

    #[test]
    fn oversized_grapheme_leaves_an_empty_first_segment() {
        let text = format!("x{}", "\u{301}".repeat(70));
        let report = analyze(&text, SegmentOptions::default());
        assert_eq!(report.segment_units, [0, 71]);
        assert_eq!(report.total_size_bits, 1232);
    }

    #[test]
    fn empty_text_is_one_gsm_segment() {
        let report = analyze("", SegmentOptions::default());
        assert_eq!((report.encoding, report.segments), (Encoding::Gsm7, 1));
        assert_eq!((report.segment_bits, report.total_size_bits), (vec![0], 0));
    }
}
