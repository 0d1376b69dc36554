//! The GSM 03.38 alphabet: which characters it holds and how many septets each costs.
//!
//! The 127 characters of the basic table cost one septet; the 10 of the extension table
//! (form feed, `^ { } \ [ ~ ] |` and `€`) cost two (ESC + code). Anything else forces UCS-2.

/// Septets per code point below U+0100: 0 = not GSM, 1 = basic table, 2 = extension table.
/// Keeping the septet count as the value lets the hot loops add it directly.
static LATIN1: [u8; 256] = latin1_table();

const fn latin1_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    table[0x0A] = 1;
    table[0x0D] = 1;
    let mut b = 0x20;
    while b <= 0x5A {
        table[b] = 1;
        b += 1;
    }
    table[0x5F] = 1;
    let mut b = 0x61;
    while b <= 0x7A {
        table[b] = 1;
        b += 1;
    }
    // The extension table, ESC + code.
    table[0x0C] = 2;
    table[b'^' as usize] = 2;
    table[b'{' as usize] = 2;
    table[b'}' as usize] = 2;
    table[b'\\' as usize] = 2;
    table[b'[' as usize] = 2;
    table[b'~' as usize] = 2;
    table[b']' as usize] = 2;
    table[b'|' as usize] = 2;
    // The 29 Latin-1 letters and signs of the basic table (lower-case ç is NOT one of them).
    let latin1: [u8; 29] = [
        0xA1, 0xA3, 0xA4, 0xA5, 0xA7, 0xBF, 0xC4, 0xC5, 0xC6, 0xC7, 0xC9, 0xD1, 0xD6, 0xD8, 0xDC,
        0xDF, 0xE0, 0xE4, 0xE5, 0xE6, 0xE8, 0xE9, 0xEC, 0xF1, 0xF2, 0xF6, 0xF8, 0xF9, 0xFC,
    ];
    let mut i = 0;
    while i < latin1.len() {
        table[latin1[i] as usize] = 1;
        i += 1;
    }
    table
}

/// The same table for compile-time use (building the character classes in `class.rs`).
const LATIN1_CONST: [u8; 256] = latin1_table();

/// Septets `c` costs in GSM-7: 1 (basic table), 2 (extension table) or 0 when `c` is not
/// in the GSM alphabet at all.
#[inline]
pub fn gsm7_septets(c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x100 {
        return LATIN1[cp as usize];
    }
    non_latin1_septets(cp)
}

/// [`gsm7_septets`] for compile-time evaluation.
pub(crate) const fn gsm7_septets_const(c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x100 {
        return LATIN1_CONST[cp as usize];
    }
    non_latin1_septets(cp)
}

#[inline]
const fn non_latin1_septets(cp: u32) -> u8 {
    match cp {
        // Only the Greek capitals that do not look Latin are in the table.
        0x0393 | 0x0394 | 0x0398 | 0x039B | 0x039E | 0x03A0 | 0x03A3 | 0x03A6 | 0x03A8 | 0x03A9 => {
            1
        }
        0x20AC => 2,
        _ => 0,
    }
}

/// Whether `c` is one of the 137 characters of the GSM-7 basic and extension tables.
///
/// ```
/// use sms_core::segment::is_gsm7_char;
/// assert!(is_gsm7_char('é') && is_gsm7_char('€') && is_gsm7_char('Ç'));
/// assert!(!is_gsm7_char('ç') && !is_gsm7_char('`') && !is_gsm7_char('\t'));
/// ```
#[inline]
pub fn is_gsm7_char(c: char) -> bool {
    gsm7_septets(c) != 0
}

/// Whether a grapheme (as [`super::graphemes`] yields them) is a single GSM-7 character;
/// the graphemes for which this is false are the ones that force UCS-2.
pub fn is_gsm7_grapheme(grapheme: &str) -> bool {
    let mut chars = grapheme.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if is_gsm7_char(c))
}

/// Bytes that are not ASCII, or ASCII but not GSM (controls other than LF, CR and form feed,
/// backtick, DEL). Written with `&`/`|` on bools rather than `&&`/`||` so the loop over a
/// chunk has no branches and the compiler turns it into vector compares.
#[inline(always)]
fn is_not_gsm_ascii(b: u8) -> bool {
    (b >= 0x80)
        | ((b < 0x20) & (b != b'\n') & (b != b'\r') & (b != 0x0C))
        | (b == b'`')
        | (b == 0x7F)
}

/// ASCII bytes in the extension table (form feed, `[ \ ] ^`, `{ | } ~`).
#[inline(always)]
fn is_extension_ascii(b: u8) -> bool {
    (b == 0x0C) | (b.wrapping_sub(b'[') < 4) | (b.wrapping_sub(b'{') < 4)
}

/// When every byte is an ASCII character of the GSM alphabet, the number of extension
/// characters; `None` as soon as one byte is not (non-ASCII or non-GSM ASCII).
///
/// This is the fast path behind `count`: one branch-free pass over 64-byte chunks.
#[inline]
pub(crate) fn scan_gsm_ascii(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let mut extension = 0usize;
    let mut chunks = bytes.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        let mut bad = false;
        // 64 lanes of at most 1 each cannot overflow a u8.
        let mut ext = 0u8;
        for &b in chunk {
            bad |= is_not_gsm_ascii(b);
            ext += u8::from(is_extension_ascii(b));
        }
        if bad {
            return None;
        }
        extension += usize::from(ext);
    }
    let mut bad = false;
    for &b in chunks.remainder() {
        bad |= is_not_gsm_ascii(b);
        extension += usize::from(is_extension_ascii(b));
    }
    (!bad).then_some(extension)
}

/// Extension characters in bytes already known to be GSM ASCII (so below 0x80). The
/// packer calls this on 153-byte windows, so it works eight bytes at a time in a `u64`
/// (SWAR) rather than relying on vectorisation, which does poorly on such short runs.
#[inline]
pub(crate) fn count_extension_ascii(bytes: &[u8]) -> usize {
    let mut total = 0u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = <[u8; 8]>::try_from(word).expect("chunks_exact(8) gives 8 bytes");
        total += extension_in_word(u64::from_le_bytes(word));
    }
    let rest: usize = words
        .remainder()
        .iter()
        .map(|&b| usize::from(is_extension_ascii(b)))
        .sum();
    total as usize + rest
}

/// Extension characters among the 8 bytes of `word`, each below 0x80. No byte-wise sum
/// below can carry into the next byte, because every byte stays below 0x100.
#[inline(always)]
fn extension_in_word(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // `[ \ ] ^` and `{ | } ~` differ by bit 5 only: clear it, then test 0x5B <= x < 0x5F.
    let folded = word & (0xDF * ONES);
    let at_least_5b = folded + 0x25 * ONES;
    let at_least_5f = folded + 0x21 * ONES;
    let bracket = at_least_5b & !at_least_5f;
    // Form feed: the byte XOR 0x0C is zero exactly when adding 0x7F leaves its top bit clear.
    let form_feed = !((word ^ (0x0C * ONES)) + 0x7F * ONES);
    let marks = (bracket | form_feed) & HIGH;
    // One 0/1 per byte; the multiplication sums them into the top byte.
    ((marks >> 7).wrapping_mul(ONES)) >> 56
}

/// Septets of one GSM ASCII byte.
#[inline]
pub(crate) fn ascii_septets(b: u8) -> usize {
    1 + usize::from(is_extension_ascii(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_127_basic_and_10_extension_characters() {
        let all: Vec<char> = (0..=0x10FFFF).filter_map(char::from_u32).collect();
        let basic = all.iter().filter(|&&c| gsm7_septets(c) == 1).count();
        let extension: String = all.iter().filter(|&&c| gsm7_septets(c) == 2).collect();
        assert_eq!(basic, 127);
        assert_eq!(extension, "\u{c}[\\]^{|}~€");
    }

    #[test]
    fn lookalikes_are_not_gsm() {
        for c in [
            '`', 'ç', '\u{1B}', '\t', '\u{0B}', '\u{7F}', '\u{A0}', 'Α', 'Β', 'Ο',
        ] {
            assert!(!is_gsm7_char(c), "{c:?}");
        }
        for c in "ΔΦΓΛΩΠΨΣΘΞ@£$¥èéùìòÇ\nØø\rÅå_ÆæßÉ¤¡ÄÖÑÜ§¿äöñüà".chars()
        {
            assert!(is_gsm7_char(c), "{c:?}");
        }
    }

    #[test]
    fn the_byte_scan_agrees_with_the_table() {
        for b in 0u8..=0xFF {
            let expected = (b < 0x80).then(|| gsm7_septets(char::from(b)));
            let scanned = scan_gsm_ascii(&[b]).map(|ext| 1 + ext as u8);
            assert_eq!(scanned, expected.filter(|&s| s != 0), "byte {b:#04x}");
        }
        for b in 0u8..0x80 {
            let word = u64::from_le_bytes([b, b'a', b, b'~', b, b'\x0c', b, b'`']);
            let expected = 2 + 4 * u64::from(is_extension_ascii(b));
            assert_eq!(extension_in_word(word), expected, "byte {b:#04x}");
        }
        let long = "a[".repeat(100);
        assert_eq!(scan_gsm_ascii(long.as_bytes()), Some(100));
        assert_eq!(scan_gsm_ascii(format!("{long}`").as_bytes()), None);
    }
}
