//! Segment counting, exactly as Twilio's calculator counts (see `shared/data/segments/RULES.md`).
//!
//! PLACEHOLDER: the exact implementation is in progress; this file fixes the public API.

use serde::{Deserialize, Serialize};

/// The character set a message is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet: up to 160 septets in one segment, 153 per part.
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UCS-2 (UTF-16 code units): up to 70 units in one segment, 67 per part.
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    /// `"GSM-7"` or `"UCS-2"`, as Twilio writes them.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// How to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SegmentOptions {
    /// Apply Twilio Smart Encoding (replace smart quotes, dashes, odd spaces... first).
    pub smart_encoding: bool,
    /// Send as UCS-2 even when the text is all GSM-7.
    pub force_ucs2: bool,
}

/// The cheap answer: encoding and segment count (message units), without allocation on the
/// common path. Use it where only the cost matters (preview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCount {
    /// The encoding the text will be sent in.
    pub encoding: Encoding,
    /// The number of segments, that is message units billed.
    pub segments: u32,
}

/// The full answer, with every figure Twilio's calculator reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// The encoding the text will be sent in.
    pub encoding: Encoding,
    /// The number of segments (message units).
    pub segments: u32,
    /// Code units per segment: septets for GSM-7, UTF-16 units for UCS-2.
    pub segment_units: Vec<u32>,
    /// Graphemes per segment.
    pub segment_chars: Vec<u32>,
    /// Message bits per segment, without the user data header.
    pub segment_bits: Vec<u32>,
    /// Bits including the 48-bit header of every part of a multi-part message.
    pub total_size_bits: u32,
    /// Bits without headers.
    pub message_size_bits: u32,
    /// Septets for GSM-7, graphemes for UCS-2 (as the calculator reports).
    pub number_of_characters: u32,
    /// Code points after smart encoding.
    pub number_of_unicode_scalars: u32,
    /// Graphemes, CRLF counted as two.
    pub graphemes: u32,
    /// Graphemes that are not a single GSM-7 character, in order, duplicates kept: the
    /// characters that force UCS-2.
    pub non_gsm: Vec<String>,
    /// The text after smart encoding, when it was on.
    pub smart_text: Option<String>,
}

/// Counts encoding and segments.
pub fn count(text: &str, options: SegmentOptions) -> SegmentCount {
    let report = analyze(text, options);
    SegmentCount {
        encoding: report.encoding,
        segments: report.segments,
    }
}

/// Counts everything the calculator reports.
pub fn analyze(text: &str, options: SegmentOptions) -> SegmentReport {
    // Placeholder: naive ASCII-only formula, replaced by the exact implementation.
    let units = text.chars().count() as u32;
    let ascii = text.is_ascii() && !options.force_ucs2;
    let (single, multi) = if ascii { (160, 153) } else { (70, 67) };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    SegmentReport {
        encoding: if ascii {
            Encoding::Gsm7
        } else {
            Encoding::Ucs2
        },
        segments,
        segment_units: vec![],
        segment_chars: vec![],
        segment_bits: vec![],
        total_size_bits: 0,
        message_size_bits: 0,
        number_of_characters: units,
        number_of_unicode_scalars: units,
        graphemes: units,
        non_gsm: vec![],
        smart_text: options.smart_encoding.then(|| text.to_owned()),
    }
}
