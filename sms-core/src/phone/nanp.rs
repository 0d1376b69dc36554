//! The fast path for plain NANP input (`(555) 123-4567`, `+1 555 123 4567`, `1-555-123-4567`).
//!
//! `phonenumber::parse` + `is_valid` costs ~17 µs a number; a preview of a million recipients
//! cannot afford that. For the plain shapes people type in North America, this module gives the
//! *same* answer as the crate from a lookup table, and says "ask the crate" for everything else.
//!
//! # How the crate decides validity for `+1`
//!
//! `phonenumber::is_valid` (validator.rs) takes the national number (10 digits) and walks the
//! regions of country code 1 in database order (US first, then AG, AI, ... CA, ... VI):
//! a region with `leadingDigits` is chosen when that pattern matches at the start of the number;
//! a region without (US, CA) is chosen when the number has a known type there. The number is
//! valid when it has a known type (general pattern, then any of toll-free, premium, personal,
//! fixed line, mobile, ... with length 10 allowed) in the chosen region. Every pattern is matched
//! as a prefix (`find` starting at 0), not as the whole string.
//!
//! # How the table is derived
//!
//! At first use the patterns are read from the crate's own metadata (so they cannot drift from
//! it) and compiled together into one DFA (`regex-automata`). Walking that DFA digit by digit,
//! each 7-digit prefix (NPA, NXX, first line digit) is classified: every completion valid, every
//! completion invalid, or "mixed" (then the fast path asks the crate). Rows are memoised by DFA
//! state, so building takes milliseconds and the table holds a few hundred kilobytes at most.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};

use super::Region;

/// Set in a row entry when some completion of that 7-digit prefix is valid and another is not:
/// the table cannot answer and the crate must.
const ASK: u16 = 1 << 10;

/// What the fast path says about a typed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Valid: the digits of the E.164 form (`1` then the ten national digits).
    Valid(u64),
    /// The crate would call it invalid.
    Invalid,
    /// Not a plain NANP shape (or the table cannot decide): ask the crate.
    AskCrate,
}

/// Validity of every 10-digit NANP national number, by prefix.
struct Table {
    /// Per NPA (area code, 000-999), the index of its row in `rows`.
    npa_row: Vec<u16>,
    /// Per NXX (exchange, 000-999): bit `d` set when the number is valid with `d` as the first
    /// line digit; [`ASK`] when the table cannot decide for some `d`.
    rows: Vec<[u16; 1000]>,
}

static TABLE: OnceLock<Option<Table>> = OnceLock::new();

/// The table, built on first use. `None` when the crate's metadata no longer has the shape this
/// module understands: then every number goes through the crate, slower but still right.
fn table() -> Option<&'static Table> {
    TABLE.get_or_init(build).as_ref()
}

/// Classifies already-trimmed, non-empty `text` typed with default `region`.
pub(crate) fn parse(text: &str, region: Region) -> Fast {
    // For US and CA the crate's parsing of a plain NANP shape keeps the ten national digits
    // intact (no national-prefix rule, IDD 011; checked in `build`). Other default regions
    // apply their own dialling rules to national input, so only `+1` input is taken for them.
    let home = region == Region::US || region == Region::CA;
    let bytes = text.as_bytes();
    let (plus, body) = match bytes.split_first() {
        Some((b'+', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut digits = [0u8; 11];
    let mut count = 0usize;
    let mut space = false;
    let mut digits_before_separator = None;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                if count == digits.len() {
                    return Fast::AskCrate;
                }
                digits[count] = b - b'0';
                count += 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' => {
                space |= b == b' ';
                digits_before_separator.get_or_insert(count);
            }
            _ => return Fast::AskCrate,
        }
    }
    // Without a space the crate first tries RFC 3966 (`+1-555-...`), which takes the digits
    // between `+` and the first separator as the country code: fine when that is just `1`
    // (or nothing), something else ("+1555.123.4567") is left to the crate.
    if plus && !space && digits_before_separator.is_some_and(|n| n > 1) {
        return Fast::AskCrate;
    }
    let national: &[u8] = match (count, plus) {
        (11, true) if digits[0] == 1 => &digits[1..],
        (11, false) if home && digits[0] == 1 => &digits[1..],
        (10, false) if home => &digits[..10],
        _ => return Fast::AskCrate,
    };
    // An area code starting 0 or 1 meets the crate's IDD and national-prefix rules.
    if national[0] < 2 {
        return Fast::AskCrate;
    }
    if !home && !plus_one_kept(region, &digits) {
        return Fast::AskCrate;
    }
    let Some(table) = table() else {
        return Fast::AskCrate;
    };
    let npa = number(&national[..3]) as usize;
    let nxx = number(&national[3..6]) as usize;
    let entry = table.rows[table.npa_row[npa] as usize][nxx];
    if entry & ASK != 0 {
        return Fast::AskCrate;
    }
    if entry & (1 << national[6]) != 0 {
        Fast::Valid(10_000_000_000 + number(national))
    } else {
        Fast::Invalid
    }
}

/// Whether the crate, given default `region`, keeps `+1` and the ten digits after it as typed.
///
/// Even for `+1` input `phonenumber::parse` applies the *default region's* rules: its IDD may be
/// stripped from the digits after `+` (AU's `14xx0011`), and its national prefix from the
/// national number (RU's `8` would eat the `8` of `+1 800 ...`). When either could apply, the
/// crate decides.
fn plus_one_kept(region: Region, digits: &[u8; 11]) -> bool {
    let Some(meta) = phonenumber::metadata::DATABASE.by_id(region.code()) else {
        return false;
    };
    let ascii = digits.map(|d| b'0' + d);
    let Ok(all) = std::str::from_utf8(&ascii) else {
        return false;
    };
    let national = &all[1..];
    let idd_at_start = meta
        .international_prefix()
        .and_then(|re| re.find(all))
        .is_some_and(|m| m.start() == 0);
    let prefix_rule_at_start = meta
        .national_prefix_for_parsing()
        .and_then(|re| re.find(national))
        .is_some_and(|m| m.start() == 0);
    !idd_at_start
        && !prefix_rule_at_start
        && !meta
            .national_prefix()
            .is_some_and(|p| national.starts_with(p))
}

fn number(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |n, &d| n * 10 + u64::from(d))
}

/// One NANP region's part of the validity rule, as indexes into the compiled patterns.
struct RegionRule {
    leading_digits: Option<usize>,
    general: usize,
    types: Vec<usize>,
}

impl RegionRule {
    fn known_type(&self, matched: &[bool]) -> bool {
        matched[self.general] && self.types.iter().any(|&t| matched[t])
    }
}

/// `validator::is_valid_with` for a 10-digit national number, given which patterns match it.
fn is_valid(rules: &[RegionRule], matched: &[bool]) -> bool {
    for rule in rules {
        let chosen = match rule.leading_digits {
            Some(ld) => matched[ld],
            None => rule.known_type(matched),
        };
        if chosen {
            return rule.known_type(matched);
        }
    }
    false
}

/// The national-format facts `parse` relies on for US and CA.
fn parsing_is_plain(meta: &phonenumber::Metadata) -> bool {
    let compact = |s: &str| s.split_whitespace().collect::<String>();
    meta.country_code() == 1
        && meta.national_prefix() == Some("1")
        && meta.national_prefix_for_parsing().is_none()
        && meta.international_prefix().map(|r| compact(r.as_str())) == Some("011".to_owned())
        && compact(meta.descriptors().general().national_number().as_str()) == r"[2-9]\d{9}|3\d{6}"
}

fn build() -> Option<Table> {
    let db = &*phonenumber::metadata::DATABASE;
    for id in ["US", "CA"] {
        if !parsing_is_plain(db.by_id(id)?) {
            return None;
        }
    }

    let mut patterns: Vec<String> = Vec::new();
    let mut intern = |pattern: &str| -> usize {
        // Prefix semantics (`find` must start at 0) as a whole-string match over digits.
        let whole = format!("(?:{pattern})[0-9]*$");
        match patterns.iter().position(|p| *p == whole) {
            Some(i) => i,
            None => {
                patterns.push(whole);
                patterns.len() - 1
            }
        }
    };
    let mut rules = Vec::new();
    for id in db.region(&1u16)? {
        let meta = db.by_id(id)?;
        let descriptors = meta.descriptors();
        let general = descriptors.general();
        if !general.possible_length().is_empty() && !general.possible_length().contains(&10) {
            return None;
        }
        let typed = [
            descriptors.premium_rate(),
            descriptors.toll_free(),
            descriptors.shared_cost(),
            descriptors.voip(),
            descriptors.personal_number(),
            descriptors.pager(),
            descriptors.uan(),
            descriptors.voicemail(),
            descriptors.fixed_line(),
            descriptors.mobile(),
        ];
        let types = typed
            .into_iter()
            .flatten()
            // `Descriptor::is_match` rejects a length not listed; ten digits is all we see.
            .filter(|d| d.possible_length().is_empty() || d.possible_length().contains(&10))
            .map(|d| intern(d.national_number().as_str()))
            .collect();
        rules.push(RegionRule {
            leading_digits: meta.leading_digits().map(|ld| intern(ld.as_str())),
            general: intern(general.national_number().as_str()),
            types,
        });
    }

    let dfa = dense::Builder::new()
        // The crate compiles its patterns with `ignore_whitespace`; without Unicode `\d` is
        // ASCII only, which is all a digit string holds, and keeps the DFA small.
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .ignore_whitespace(true),
        )
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored),
        )
        .build_many(&patterns)
        .ok()?;
    let start = dfa
        .start_state_forward(&Input::new("").anchored(Anchored::Yes))
        .ok()?;
    Builder {
        dfa: &dfa,
        rules: &rules,
        patterns: patterns.len(),
        final_valid: HashMap::new(),
        tail_class: HashMap::new(),
    }
    .table(start)
}

/// The memoised walk over the DFA that fills the table.
struct Builder<'a> {
    dfa: &'a dense::DFA<Vec<u32>>,
    rules: &'a [RegionRule],
    patterns: usize,
    /// Validity per state reached after all ten digits and end of input.
    final_valid: HashMap<StateID, bool>,
    /// Per state after seven digits: `Some(valid)` when all 1000 completions agree.
    tail_class: HashMap<StateID, Option<bool>>,
}

impl Builder<'_> {
    fn step(&self, state: StateID, digit: u8) -> StateID {
        self.dfa.next_state(state, b'0' + digit)
    }

    fn table(mut self, start: StateID) -> Option<Table> {
        let mut row_of_state: HashMap<StateID, u16> = HashMap::new();
        let mut rows: Vec<[u16; 1000]> = Vec::new();
        let mut npa_row = vec![0u16; 1000];
        for (npa, slot) in npa_row.iter_mut().enumerate() {
            let state = self.walk(start, npa, 3);
            *slot = match row_of_state.get(&state) {
                Some(&row) => row,
                None => {
                    let row = self.row(state);
                    let index = match rows.iter().position(|r| *r == row) {
                        Some(i) => i,
                        None => {
                            rows.push(row);
                            rows.len() - 1
                        }
                    };
                    let index = u16::try_from(index).ok()?;
                    row_of_state.insert(state, index);
                    index
                }
            };
        }
        Some(Table { npa_row, rows })
    }

    /// Feeds the `len` decimal digits of `value` (with leading zeros).
    fn walk(&self, mut state: StateID, value: usize, len: u32) -> StateID {
        for i in (0..len).rev() {
            let digit = (value / 10usize.pow(i)) % 10;
            state = self.step(state, digit as u8);
        }
        state
    }

    fn row(&mut self, after_npa: StateID) -> [u16; 1000] {
        let mut row = [0u16; 1000];
        for (nxx, entry) in row.iter_mut().enumerate() {
            let after_nxx = self.walk(after_npa, nxx, 3);
            for digit in 0..10u8 {
                let after_seven = self.step(after_nxx, digit);
                match self.tail(after_seven) {
                    Some(true) => *entry |= 1 << digit,
                    Some(false) => {}
                    None => *entry |= ASK,
                }
            }
        }
        row
    }

    fn tail(&mut self, after_seven: StateID) -> Option<bool> {
        if let Some(&class) = self.tail_class.get(&after_seven) {
            return class;
        }
        let mut seen = [false; 2];
        for rest in 0..1000 {
            let end = self.walk(after_seven, rest, 3);
            let valid = self.final_validity(end);
            seen[usize::from(valid)] = true;
        }
        let class = match seen {
            [false, true] => Some(true),
            [true, false] => Some(false),
            _ => None,
        };
        self.tail_class.insert(after_seven, class);
        class
    }

    fn final_validity(&mut self, after_ten: StateID) -> bool {
        if let Some(&valid) = self.final_valid.get(&after_ten) {
            return valid;
        }
        let end = self.dfa.next_eoi_state(after_ten);
        let mut matched = vec![false; self.patterns];
        if self.dfa.is_match_state(end) {
            for i in 0..self.dfa.match_len(end) {
                matched[self.dfa.match_pattern(end, i).as_usize()] = true;
            }
        }
        let valid = is_valid(self.rules, &matched);
        self.final_valid.insert(after_ten, valid);
        valid
    }
}

/// How many 7-digit prefixes the table leaves to the crate (for tests and the report).
#[cfg(test)]
pub(crate) fn undecided_prefixes() -> Option<usize> {
    let table = table()?;
    Some(
        table
            .npa_row
            .iter()
            .map(|&r| {
                table.rows[r as usize]
                    .iter()
                    .filter(|&&e| e & ASK != 0)
                    .count()
            })
            .sum(),
    )
}
