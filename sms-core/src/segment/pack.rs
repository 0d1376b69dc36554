//! Packing graphemes into 140-octet segments, exactly as the calculator does.
//!
//! The calculator fills the first segment without a header (1,120 bits: 160 septets or 70
//! UCS-2 units). On the first overflow it gives that segment its 48-bit header and moves its
//! last graphemes to the front of the new segment until it fits again; the grapheme that
//! overflowed is then appended without checking that it fits. Every later segment starts
//! with a header and is filled first-fit. A grapheme is never split.

use super::gsm::{ascii_septets, count_extension_ascii};

/// Bits in one segment: 140 octets.
const SEGMENT_BITS: u64 = 1120;
/// The user data header of each part of a multi-part message: 6 octets.
const UDH_BITS: u64 = 48;
/// At most this many graphemes fit in the first segment (160 septets of 7 bits; no grapheme
/// costs less than 7 bits).
const FIRST_CAPACITY: usize = 160;
/// Septets per part of a multi-part GSM-7 message: 1,072 bits / 7.
pub(crate) const GSM_PART_SEPTETS: usize = 153;
/// Septets in a single-part GSM-7 message.
pub(crate) const GSM_SINGLE_SEPTETS: usize = 160;
/// UCS-2 units per part of a multi-part message: 1,072 bits / 16.
pub(crate) const UCS2_PART_UNITS: usize = 67;
/// UCS-2 units in a single-part message.
pub(crate) const UCS2_SINGLE_UNITS: usize = 70;

/// One finished segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Graphemes in the segment.
    pub chars: u64,
    /// Code units: septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: u64,
}

/// Receives segments as they are closed; `count` passes one that ignores them.
pub(crate) trait SegmentSink {
    fn close(&mut self, segment: Segment);
}

impl SegmentSink for () {
    #[inline]
    fn close(&mut self, _segment: Segment) {}
}

impl SegmentSink for Vec<Segment> {
    fn close(&mut self, segment: Segment) {
        self.push(segment);
    }
}

/// The calculator's packing loop with O(1) state and no allocation: only the first
/// segment's graphemes are remembered, because only they can move (at the first overflow).
pub(crate) struct Packer<S> {
    sink: S,
    bits_per_unit: u64,
    segments: u64,
    current: Segment,
    current_has_header: bool,
    /// Units of each grapheme of the first segment, while there is only one segment.
    first: [u8; FIRST_CAPACITY],
    first_len: usize,
}

impl<S: SegmentSink> Packer<S> {
    /// A packer for GSM-7 (`bits_per_unit` 7) or UCS-2 (16).
    pub(crate) fn new(bits_per_unit: u64, sink: S) -> Self {
        Packer {
            sink,
            bits_per_unit,
            segments: 1,
            current: Segment::default(),
            current_has_header: false,
            first: [0; FIRST_CAPACITY],
            first_len: 0,
        }
    }

    /// Adds one grapheme of `units` code units (at least 1).
    #[inline]
    pub(crate) fn push(&mut self, units: u64) {
        let bits = units * self.bits_per_unit;
        let header = if self.current_has_header { UDH_BITS } else { 0 };
        if self.current.units * self.bits_per_unit + header + bits > SEGMENT_BITS {
            self.overflow();
        }
        self.current.chars += 1;
        self.current.units += units;
        if self.segments == 1 {
            // The grapheme fitted in the first segment, so it is at most 160 units (1,120
            // bits) and `first` has room (at most 160 graphemes of 7 or more bits fit).
            if let (Some(slot), Ok(small)) = (self.first.get_mut(self.first_len), units.try_into())
            {
                *slot = small;
                self.first_len += 1;
            }
        }
    }

    #[cold]
    fn overflow(&mut self) {
        let mut next = Segment::default();
        if self.segments == 1 {
            // The first segment takes its header: move its last graphemes out until it fits.
            while (UDH_BITS + self.current.units * self.bits_per_unit > SEGMENT_BITS)
                && self.first_len > 0
            {
                self.first_len -= 1;
                let units = u64::from(self.first[self.first_len]);
                self.current.units -= units;
                self.current.chars -= 1;
                next.units += units;
                next.chars += 1;
            }
        }
        self.sink.close(self.current);
        self.current = next;
        self.current_has_header = true;
        self.segments += 1;
    }

    /// Closes the last segment; returns the number of segments and the sink.
    pub(crate) fn finish(mut self) -> (u64, S) {
        self.sink.close(self.current);
        (self.segments, self.sink)
    }
}

/// Segments of text whose bytes are all GSM ASCII, `extension` of them extension characters.
///
/// For GSM-7 the calculator's packing is plain first-fit with 153 septets per part: a
/// character is 1 or 2 septets, so the few it moves at the first overflow always fit beside
/// the next one.
/// Without extension characters the count is a formula; with them, each part is found by
/// counting extension characters in a 153-byte window (a vectorisable loop) and then
/// stepping over the few characters that may still fit.
#[inline]
pub(crate) fn gsm_ascii_segments(bytes: &[u8], extension: usize) -> u64 {
    let total = bytes.len() + extension;
    if total <= GSM_SINGLE_SEPTETS {
        return 1;
    }
    if extension == 0 {
        return total.div_ceil(GSM_PART_SEPTETS) as u64;
    }
    let mut segments = 0;
    let mut start = 0;
    while start < bytes.len() {
        segments += 1;
        let window = &bytes[start..bytes.len().min(start + GSM_PART_SEPTETS)];
        let window_ext = count_extension_ascii(window);
        if window.len() + window_ext <= GSM_PART_SEPTETS {
            start += window.len();
            continue;
        }
        // The first `take` characters cost at most take + window_ext = 153 septets: they all
        // fit. The rest of the window is only `window_ext` bytes long.
        let take = GSM_PART_SEPTETS - window_ext;
        let mut used = take + window_ext - count_extension_ascii(&window[take..]);
        let mut end = start + take;
        while let Some(&b) = bytes.get(end) {
            let cost = ascii_septets(b);
            if used + cost > GSM_PART_SEPTETS {
                break;
            }
            used += cost;
            end += 1;
        }
        start = end;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(bits_per_unit: u64, units: &[u64]) -> Vec<(u64, u64)> {
        let mut packer = Packer::new(bits_per_unit, Vec::new());
        units.iter().for_each(|&u| packer.push(u));
        let (_, segments) = packer.finish();
        segments.iter().map(|s| (s.chars, s.units)).collect()
    }

    #[test]
    fn documented_examples() {
        assert_eq!(pack(7, &[1; 161]), [(153, 153), (8, 8)]);
        assert_eq!(pack(7, &[2; 153]), [(76, 152), (76, 152), (1, 2)]);
        assert_eq!(pack(16, &[2; 36]), [(33, 66), (3, 6)]);
        assert_eq!(pack(16, &[1; 71]), [(67, 67), (4, 4)]);
        assert_eq!(pack(16, &[1; 70]), [(70, 70)]);
        assert_eq!(pack(16, &[71]), [(0, 0), (1, 71)]);
        assert_eq!(pack(16, &[101, 1]), [(0, 0), (1, 101), (1, 1)]);
    }

    #[test]
    fn the_overflowing_grapheme_is_not_checked_after_the_first_overflow() {
        // 10 + 60 fill the first segment; the next 60 pushes the first 60 out, and both land
        // in the second segment unchecked, as in the calculator.
        let mut units = vec![1; 10];
        units.extend([60, 60]);
        assert_eq!(pack(16, &units), [(10, 10), (2, 120)]);
    }

    #[test]
    fn ascii_packing_agrees_with_the_generic_packer() {
        for text in [
            "a".repeat(161),
            "]".repeat(153),
            format!("{}]{}", "a".repeat(152), "b".repeat(300)),
        ] {
            let ext = count_extension_ascii(text.as_bytes());
            let units: Vec<u64> = text
                .bytes()
                .map(|b| if b == b']' { 2 } else { 1 })
                .collect();
            let expected = pack(7, &units).len() as u64;
            assert_eq!(gsm_ascii_segments(text.as_bytes(), ext), expected, "{text}");
        }
    }
}
