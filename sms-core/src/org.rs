//! Organisations: one store may hold many, and every row belongs to exactly one.
//!
//! A hosting company runs many schools on one database. Each organisation has its own Twilio
//! sender, so its own opt-outs (carriers keep STOP per sender), campaigns, alerts and replies. A
//! store handle is opened for one organisation and sees only that organisation's rows: the
//! traits (`OptOutStore`, `Journal`, `AlertStore`) take no organisation argument, so no call
//! through them can reach another's rows.
//!
//! ```
//! use sms_core::Org;
//!
//! assert_eq!(Org::default().as_str(), "default");
//! let org = Org::new("riverside-cc").unwrap();
//! assert_eq!(org.to_string(), "riverside-cc");
//! assert!(Org::new("no spaces").is_err());
//! ```

use std::fmt;

/// The longest organisation name accepted.
pub const ORG_MAX_LEN: usize = 64;

/// An organisation's name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, case-sensitive.
///
/// Kept to that alphabet so it is safe in a file name, a log line, a URL and a SQL literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Org(String);

/// Why a name is not an organisation's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{name}' is not an organisation name: use 1 to {ORG_MAX_LEN} letters, digits, '-', '_' or '.'"
)]
pub struct OrgError {
    /// The name refused (cut to 80 characters).
    pub name: String,
}

impl Org {
    /// The organisation used when none is named: `default`.
    pub const DEFAULT: &'static str = "default";

    /// Checks and wraps a name.
    pub fn new(name: impl Into<String>) -> Result<Org, OrgError> {
        let name: String = name.into();
        let valid = !name.is_empty()
            && name.len() <= ORG_MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Org(name))
        } else {
            Err(OrgError {
                name: name.chars().take(80).collect(),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Org {
    fn default() -> Self {
        Org(Org::DEFAULT.to_owned())
    }
}

impl fmt::Display for Org {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Org {
    type Err = OrgError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Org::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for Org {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Org::new(name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["default", "a", "Riverside_CC.2026", &"x".repeat(64)] {
            assert_eq!(Org::new(good).unwrap().as_str(), good);
        }
        for bad in ["", " a", "a b", "a/b", "école", "a;DROP", &"x".repeat(65)] {
            assert!(Org::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_is_the_name_and_is_checked_on_the_way_in() {
        let org = Org::new("acme").unwrap();
        assert_eq!(serde_json::to_string(&org).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<Org>("\"a b\"").is_err());
    }
}
