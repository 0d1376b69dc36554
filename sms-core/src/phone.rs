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
/// Constructors validate: once a `PhoneNumber` exists it is valid.
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
    /// metadata rejects [`PhoneError::Invalid`]. Same answers as [`parse_with_crate`], faster.
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
    let parsed = phonenumber::parse(Some(region.id()), text).map_err(|_| PhoneError::Invalid {
        text: text.to_owned(),
    })?;
    if let Some(ext) = parsed.extension() {
        return Err(PhoneError::HasExtension {
            extension: ext.to_string(),
        });
    }
    if !phonenumber::is_valid(&parsed) {
        return Err(PhoneError::Invalid {
            text: text.to_owned(),
        });
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    e164.trim_start_matches('+')
        .parse::<u64>()
        .map(PhoneNumber)
        .map_err(|_| PhoneError::Invalid {
            text: text.to_owned(),
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
