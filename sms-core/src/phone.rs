//! Phone numbers: what people type into a registration form, normalised to E.164.
//!
//! Validity is libphonenumber's, through the `phonenumber` crate ([`parse_with_crate`]). That
//! costs ~17 µs a number, too slow for a preview of a million recipients, so plain North
//! American input (`(555) 123-4567`, `+1 555 123 4567`, ...) takes a fast path (`nanp`) whose
//! tables are derived from the crate's own metadata and that gives the same answers; anything
//! else (letters, extensions, other countries, odd punctuation) goes through the crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod nanp;
#[cfg(test)]
mod tests;

/// A valid phone number in E.164 form (`+15551234567`).
///
/// Stored as the digits of the E.164 form in a `u64` (E.164 allows at most 15 digits and never a
/// leading zero), so it is `Copy`, cheap to hash, and cannot hold anything but digits.
/// Constructors validate: once a `PhoneNumber` exists it is valid, with one exception kept out
/// of the send path, [`PhoneNumber::from_e164_shape`], for recording a STOP from a number the
/// metadata does not know yet.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(u64);

/// The region whose national format applies to numbers typed without a country code
/// (ISO 3166-1 alpha-2, `US` unless configured).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Region([u8; 2]);

/// Why a typed mobile number cannot be texted. Each variant reads well in a preview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PhoneError {
    /// The field is empty or only white space.
    #[error("no mobile number")]
    Blank,
    /// The text holds no phone number at all ("n/a", "call the office").
    #[error("not a phone number: {text:?}")]
    NotANumber {
        /// The text as typed.
        text: String,
    },
    /// The digits do not form a valid number for the region (wrong length, unassigned area code).
    #[error("invalid phone number: {text:?}")]
    Invalid {
        /// The text as typed.
        text: String,
    },
    /// The number carries an extension: it is a desk line behind a switchboard, not a mobile.
    #[error("number has an extension ({extension}): probably a desk phone, not a mobile")]
    HasExtension {
        /// The extension digits.
        extension: String,
    },
}

impl Region {
    /// The United States, the default region.
    pub const US: Region = Region(*b"US");
    /// Canada.
    pub const CA: Region = Region(*b"CA");

    /// Parses a two-letter region code (`"us"`, `"CA"`). `None` when the code is not a region
    /// the phone-number metadata knows.
    pub fn parse(code: &str) -> Option<Region> {
        let upper = code.trim().to_ascii_uppercase();
        phonenumber::country::Id::from_str(&upper).ok()?;
        let bytes = upper.as_bytes();
        Some(Region([bytes[0], bytes[1]]))
    }

    /// The two-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a region code is two ASCII letters")
    }

    pub(crate) fn id(&self) -> phonenumber::country::Id {
        phonenumber::country::Id::from_str(self.code()).expect("validated at construction")
    }
}

impl Default for Region {
    fn default() -> Self {
        Region::US
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl PhoneNumber {
    /// Parses what a person typed, with `region` as the default country.
    ///
    /// ```
    /// use sms_core::{PhoneNumber, Region};
    /// let n = PhoneNumber::parse("(212) 555-0123", Region::US).unwrap();
    /// assert_eq!(n.to_string(), "+12125550123");
    /// ```
    ///
    /// Blank input is [`PhoneError::Blank`], text without digits [`PhoneError::NotANumber`], a
    /// number with an extension (`x12`, `ext. 12`) [`PhoneError::HasExtension`], anything the
    /// metadata rejects [`PhoneError::Invalid`]. Letters anywhere else (`212-555-O123` with the
    /// letter O, `1-800-FLOWERS`) are [`PhoneError::Invalid`] too: the digits of the number
    /// returned are always the digits typed, never a keypad reading of letters. Same answers as
    /// [`parse_with_crate`], faster.
    pub fn parse(raw: &str, region: Region) -> Result<PhoneNumber, PhoneError> {
        let text = raw.trim();
        match nanp::parse(text, region) {
            nanp::Fast::Valid(digits) => Ok(PhoneNumber(digits)),
            nanp::Fast::Invalid => Err(PhoneError::Invalid {
                text: text.to_owned(),
            }),
            nanp::Fast::AskCrate => parse_with_crate(text, region),
        }
    }

    /// Parses a strict E.164 string (`+` then digits), as stored or as Twilio sends it, and
    /// checks it is a valid number.
    pub fn from_e164(text: &str) -> Result<PhoneNumber, PhoneError> {
        let digits = text.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Invalid {
                text: text.to_owned(),
            });
        }
        PhoneNumber::parse(text, Region::US)
    }

    /// Reads an E.164-*shaped* number (`+1` and 10 digits, or `+` and 8 to 15 digits, no
    /// leading zero) **without** asking the phone metadata whether it is valid.
    ///
    /// Only for recording what a number asked (STOP/START from a reply's `From`, a stored
    /// opt-out): a STOP from a number the metadata does not know yet (a new area code) must be
    /// recorded, or a later metadata update that makes the number valid would make it textable.
    /// Everything that sends parses with [`PhoneNumber::parse`] or [`PhoneNumber::from_e164`],
    /// which refuse such a number.
    pub fn from_e164_shape(text: &str) -> Result<PhoneNumber, PhoneError> {
        let invalid = || PhoneError::Invalid {
            text: text.to_owned(),
        };
        let digits = text.strip_prefix('+').ok_or_else(invalid)?;
        let shaped = digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
            && if digits.starts_with('1') {
                digits.len() == 11
            } else {
                (8..=15).contains(&digits.len())
            };
        if !shaped {
            return Err(invalid());
        }
        digits
            .parse::<u64>()
            .map(PhoneNumber)
            .map_err(|_| invalid())
    }

    /// The digits of the E.164 form, without `+`.
    pub fn digits(&self) -> u64 {
        self.0
    }

    /// The E.164 form, `+15551234567`.
    pub fn e164(&self) -> String {
        self.to_string()
    }
}

/// The reference: parses through the `phonenumber` crate (libphonenumber's metadata) only.
///
/// Same contract as [`PhoneNumber::parse`], which gives the same answers faster; public so tests
/// and benchmarks can compare the two.
pub fn parse_with_crate(raw: &str, region: Region) -> Result<PhoneNumber, PhoneError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(PhoneError::Blank);
    }
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PhoneError::NotANumber {
            text: text.to_owned(),
        });
    }
    let invalid = || PhoneError::Invalid {
        text: text.to_owned(),
    };
    // The crate turns letters into keypad digits (`O` -> 6, `l` -> 5, `S` -> 7): a typo in a
    // record would become another person's real number. Only an extension marker may hold
    // letters; the extension itself then blocks the number below.
    if !letters_only_in_extension_marker(text) {
        return Err(invalid());
    }
    let parsed = phonenumber::parse(Some(region.id()), text).map_err(|_| invalid())?;
    if let Some(ext) = parsed.extension() {
        return Err(PhoneError::HasExtension {
            extension: ext.to_string(),
        });
    }
    if !phonenumber::is_valid(&parsed) {
        return Err(invalid());
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    let e164_digits = e164.trim_start_matches('+');
    if !digits_kept(text, e164_digits, &parsed, region) {
        return Err(invalid());
    }
    e164_digits
        .parse::<u64>()
        .map(PhoneNumber)
        .map_err(|_| invalid())
}

/// Whether the number the crate found is made of the digits typed: the national number is the
/// tail of them, and what comes before it is only dialling (an international prefix, the
/// country code, a trunk prefix). A rule of the crate that invents, changes or drops a digit of
/// the number itself is refused, so the number texted is always the number typed.
fn digits_kept(
    text: &str,
    e164_digits: &str,
    parsed: &phonenumber::PhoneNumber,
    region: Region,
) -> bool {
    let typed: String = text.chars().filter(char::is_ascii_digit).collect();
    let country = parsed.code().value().to_string();
    let Some(national) = e164_digits.strip_prefix(country.as_str()) else {
        return false;
    };
    let Some(mut dialled) = typed.strip_suffix(national) else {
        return false;
    };
    let db = &*phonenumber::metadata::DATABASE;
    // An international prefix of the default region (`011`, `00`), only before a country code.
    if let Some(idd) = db
        .by_id(region.code())
        .and_then(|meta| meta.international_prefix())
        .and_then(|re| re.find(dialled))
        .filter(|m| m.start() == 0 && dialled[m.end()..].starts_with(country.as_str()))
    {
        dialled = &dialled[idd.end()..];
    }
    let trunk = parsed
        .country()
        .id()
        .and_then(|id| db.by_id(id.as_ref()))
        .and_then(|meta| meta.national_prefix());
    match dialled.strip_prefix(country.as_str()) {
        // `+44 (0) 20...`: a trunk prefix may follow the country code, unless they are the same
        // digits (NANP's `1`), where `11 212...` would be a typo, not dialling.
        Some(rest) => rest.is_empty() || trunk.is_some_and(|t| t != country && rest == t),
        None => dialled.is_empty() || trunk == Some(dialled),
    }
}

/// Extension markers libphonenumber understands, longest first (`x`, `ext.`, `extension`,
/// RFC 3966's `;ext=`), matched case-insensitively.
const EXTENSION_MARKERS: &[&str] = &["extension", "extn", "ext", "x"];

/// Whether the only letters in `text` are a leading `tel:` and one extension marker that comes
/// after some digits and is followed by the extension's digits (and no other letter).
fn letters_only_in_extension_marker(text: &str) -> bool {
    let body = match text.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => &text[4..],
        _ => text,
    };
    let Some(first_letter) = body.find(char::is_alphabetic) else {
        return true;
    };
    let (number, rest) = body.split_at(first_letter);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    let lower = rest.to_lowercase();
    EXTENSION_MARKERS.iter().any(|marker| {
        lower.strip_prefix(marker).is_some_and(|extension| {
            !extension.chars().any(char::is_alphabetic)
                && extension.chars().any(|c| c.is_ascii_digit())
        })
    })
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber(+{})", self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::from_e164(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PhoneNumber::from_e164(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Region::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown region {text:?}")))
    }
}
