//! Segment counting, exactly as Twilio's calculator counts (npm `sms-segments-calculator`
//! 1.3.0; the rules are in `tests/data/segments/RULES.md`), with current Unicode grapheme
//! rules.
//!
//! * [`count`]: encoding and number of segments, allocation-free on the common path. Pure
//!   GSM ASCII text is one branch-free pass; other text is one pass over its characters, and
//!   only long UCS-2 text with combining marks, ZWJ emoji and the like is split into
//!   grapheme clusters.
//! * [`analyze`]: every figure the calculator reports (units per segment, the characters
//!   that force UCS-2, ...).
//!
//! | step | rule |
//! | --- | --- |
//! | Smart Encoding (optional) | 271 code points replaced ([`smart_replacement`]) |
//! | graphemes | extended grapheme clusters, CRLF split in two ([`graphemes`]) |
//! | encoding | GSM-7 when every character is in the GSM tables ([`is_gsm7_char`]), else UCS-2 |
//! | sizes | GSM-7: 7 bits, 14 for the extension table; UCS-2: 16 bits per UTF-16 unit |
//! | packing | ≤160 septets / 70 units in one segment, else parts of ≤153 / 67, graphemes whole |
//!
//! ```
//! use sms_core::segment::{self, Encoding, SegmentOptions};
//!
//! let plain = SegmentOptions::default();
//! assert_eq!(segment::count(&"a".repeat(161), plain).segments, 2);
//! let quoted = "\u{201C}See you Monday\u{201D}";
//! assert_eq!(segment::count(quoted, plain).encoding, Encoding::Ucs2);
//! let smart = SegmentOptions { smart_encoding: true, ..plain };
//! assert_eq!(segment::count(quoted, smart).encoding, Encoding::Gsm7);
//! ```

mod class;
mod count;
mod graphemes;
mod gsm;
mod pack;
mod report;
mod smart;

#[cfg(test)]
mod proptests;

use serde::{Deserialize, Serialize};

pub use count::count;
pub use graphemes::{Graphemes, graphemes};
pub use gsm::{gsm7_septets, is_gsm7_char, is_gsm7_grapheme};
pub use report::analyze;
pub use smart::{smart_encode, smart_replacement};

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

/// Which line breaks a text holds (the calculator warns about any of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LineBreakStyle {
    /// Only lone `\n`.
    #[serde(rename = "LF")]
    Lf,
    /// Only `\r\n`.
    #[serde(rename = "CRLF")]
    Crlf,
    /// Both.
    #[serde(rename = "LF+CRLF")]
    LfCrlf,
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
    /// The line breaks in the text (after smart encoding); `None` when there are none (a
    /// lone CR does not count).
    pub line_break_style: Option<LineBreakStyle>,
    /// The text after smart encoding, when it was on.
    pub smart_text: Option<String>,
}

/// Figures beyond `u32` (a text of hundreds of megabytes) are reported as `u32::MAX`.
fn saturate(value: impl TryInto<u32>) -> u32 {
    value.try_into().unwrap_or(u32::MAX)
}
