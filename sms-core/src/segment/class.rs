//! One table look-up per character for everything `count` asks of it: septets in GSM-7,
//! whether it always stands alone as a grapheme, whether Smart Encoding replaces it.
//!
//! The table covers the Basic Multilingual Plane (64 KiB, built at compile time from the
//! rules in `gsm.rs`, `graphemes.rs` and `smart.rs`); real text touches only a few
//! cache lines of it. Astral characters are never GSM nor Smart Encoding keys.

use super::graphemes::{is_simple_astral, is_simple_const};
use super::gsm::gsm7_septets_const;
use super::smart::replacement_of_key;

/// Septets in GSM-7 (0 = not GSM).
pub(crate) const SEPTETS: u8 = 0b0011;
/// Always a grapheme of its own next to other such characters (see `is_simple`).
pub(crate) const SIMPLE: u8 = 0b0100;
/// Replaced by Smart Encoding.
pub(crate) const SMART_KEY: u8 = 0b1000;

static BMP: [u8; 0x1_0000] = bmp_table();

const fn class_const(c: char) -> u8 {
    let mut class = gsm7_septets_const(c);
    if is_simple_const(c) {
        class |= SIMPLE;
    }
    if replacement_of_key(c).is_some() {
        class |= SMART_KEY;
    }
    class
}

const fn bmp_table() -> [u8; 0x1_0000] {
    let mut table = [0u8; 0x1_0000];
    let mut cp = 0u32;
    while cp < 0x1_0000 {
        // Surrogate code points are not chars and never occur in a str.
        if let Some(c) = char::from_u32(cp) {
            table[cp as usize] = class_const(c);
        }
        cp += 1;
    }
    table
}

/// The class bits of `c`.
#[inline(always)]
pub(crate) fn class(c: char) -> u8 {
    let cp = c as u32;
    match BMP.get(cp as usize) {
        Some(&class) => class,
        None if is_simple_astral(cp) => SIMPLE,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_rules() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(class(c), class_const(c), "U+{:04X}", c as u32);
        }
    }
}
