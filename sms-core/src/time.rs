//! UTC timestamps, the only kind of time that crosses the library's boundary.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC, with millisecond precision.
///
/// Serialised as RFC 3339 (`2026-11-25T20:04:11.000Z`) so reports and JSON output are readable.
/// Rules never read the clock: callers pass `now` in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

impl Timestamp {
    /// The instant `unix_ms` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix_ms(unix_ms: i64) -> Self {
        Self { unix_ms }
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// The current time from the system clock. Only edges (CLI, stores, providers) call this.
    pub fn now() -> Self {
        Self::from_unix_ms(jiff::Timestamp::now().as_millisecond())
    }

    /// Parses RFC 3339 (`2026-11-25T20:04:11Z`, offsets allowed) or RFC 2822 as Twilio uses in
    /// `date_created` (`Wed, 25 Nov 2026 20:04:11 +0000`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(ts) = text.parse::<jiff::Timestamp>() {
            return Some(Self::from_unix_ms(ts.as_millisecond()));
        }
        jiff::fmt::rfc2822::parse(text)
            .ok()
            .map(|zoned| Self::from_unix_ms(zoned.timestamp().as_millisecond()))
    }

    fn as_jiff(self) -> jiff::Timestamp {
        // Any i64 millisecond count we produce comes from jiff or from a stored value jiff made;
        // clamp rather than panic on a corrupted one.
        jiff::Timestamp::from_millisecond(self.unix_ms).unwrap_or(if self.unix_ms < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0}", self.as_jiff())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // jiff's own form keeps the milliseconds when there are any (`20:04:11.042Z`) and
        // writes whole seconds as before, so stored timestamps round-trip exactly.
        serializer.collect_str(&self.as_jiff())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor reads the text where it lies (no `String` per timestamp): the store reads
        // hundreds of thousands of them when it loads alerts.
        struct Rfc3339;
        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text)
                    .ok_or_else(|| E::custom(format!("not an RFC 3339 timestamp: {text:?}")))
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339_and_reads_twilio_dates() {
        let ts = Timestamp::parse("2026-11-25T20:04:11Z").expect("valid");
        assert_eq!(ts.to_string(), "2026-11-25T20:04:11Z");
        let twilio = Timestamp::parse("Wed, 25 Nov 2026 20:04:11 +0000").expect("valid");
        assert_eq!(ts, twilio);
        assert_eq!(Timestamp::parse("yesterday"), None);
        let precise = Timestamp::from_unix_ms(1_764_101_051_042);
        let json = serde_json::to_string(&precise).expect("serialises");
        assert_eq!(json, "\"2025-11-25T20:04:11.042Z\"");
        assert_eq!(
            serde_json::from_str::<Timestamp>(&json).expect("parses"),
            precise
        );
    }
}
