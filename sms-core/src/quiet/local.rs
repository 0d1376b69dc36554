//! Local time: which time zone a text is read in, quiet hours, and instants built from a local
//! time of day across daylight-saving changes. Shared by alerts and manual sends: one rule.
//!
//! Every local time of day becomes one instant with jiff's *compatible* rule: a time that
//! does not exist (in the spring gap) is read after the gap, a time that exists twice (in the
//! autumn fold) is the first. So a text held until a local time is never skipped and, being
//! one instant, never sent twice.

use std::fmt;

use jiff::civil;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// A local time of day, to the minute (`17:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    minutes: u16,
}

impl LocalTime {
    /// Midnight.
    pub const MIDNIGHT: LocalTime = LocalTime { minutes: 0 };

    /// `hour:minute`; `None` out of range.
    pub fn new(hour: u8, minute: u8) -> Option<LocalTime> {
        (hour < 24 && minute < 60).then_some(LocalTime {
            minutes: u16::from(hour) * 60 + u16::from(minute),
        })
    }

    /// Parses `HH:MM`.
    pub fn parse(text: &str) -> Option<LocalTime> {
        let (h, m) = text.trim().split_once(':')?;
        if m.len() != 2 {
            return None;
        }
        LocalTime::new(h.parse().ok()?, m.parse().ok()?)
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.minutes
    }

    fn civil(self) -> civil::Time {
        // Always in range: minutes < 24 * 60.
        civil::Time::new(
            i8::try_from(self.minutes / 60).unwrap_or(0),
            i8::try_from(self.minutes % 60).unwrap_or(0),
            0,
            0,
        )
        .unwrap_or(civil::Time::midnight())
    }

    /// The local time of day of `at` in `tz`, to the minute.
    pub fn at(at: Timestamp, tz: &TimeZone) -> LocalTime {
        LocalTime::of(to_jiff(at).to_zoned(tz.clone()).time())
    }

    fn of(time: civil::Time) -> LocalTime {
        LocalTime {
            minutes: u16::try_from(time.hour()).unwrap_or(0) * 60
                + u16::try_from(time.minute()).unwrap_or(0),
        }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LocalTime::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a time HH:MM: {text:?}")))
    }
}

/// When texts may go, in local time: from `from` (included) to `until` (excluded). Outside
/// that window a text (an alert, or a record of a manual send) is deferred to the next `from`,
/// never dropped.
///
/// ```
/// use sms_core::quiet::{LocalTime, QuietHours};
/// let hours = QuietHours::parse("08:00-21:00").unwrap();
/// assert_eq!(hours, QuietHours::default());
/// assert_eq!(hours.to_string(), "08:00-21:00");
/// assert!(hours.allows(LocalTime::new(20, 59).unwrap()));
/// assert!(!hours.allows(LocalTime::new(21, 0).unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Texts may go from this time (default 08:00).
    pub from: LocalTime,
    /// Until this time (default 21:00), excluded.
    pub until: LocalTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            from: LocalTime { minutes: 8 * 60 },
            until: LocalTime { minutes: 21 * 60 },
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from, self.until)
    }
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM` (as the command line's `--quiet-hours` takes it); `None` otherwise.
    pub fn parse(text: &str) -> Option<QuietHours> {
        let (from, until) = text.trim().split_once('-')?;
        Some(QuietHours {
            from: LocalTime::parse(from)?,
            until: LocalTime::parse(until)?,
        })
    }

    /// Whether a text may go at local time `time`. A window whose `from` is after its `until`
    /// wraps around midnight; equal bounds allow every time.
    pub fn allows(&self, time: LocalTime) -> bool {
        match self.from.cmp(&self.until) {
            std::cmp::Ordering::Less => self.from <= time && time < self.until,
            std::cmp::Ordering::Greater => time >= self.from || time < self.until,
            std::cmp::Ordering::Equal => true,
        }
    }
}

/// The time zone named `name`, when jiff knows it (the system's zoneinfo, else jiff's bundled
/// copy).
pub fn zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name.trim()).ok()
}

/// The time zone an alert is read in: the section's, else the recipient's, else the
/// organisation's. A name jiff does not know is passed over (the next one applies); `None`
/// when none is known. (A manual send is stricter: see [`super::QuietRule::zone_for`].)
pub fn resolve_time_zone<'a>(
    section: Option<&'a str>,
    recipient: Option<&'a str>,
    organisation: &'a str,
) -> Option<(&'a str, TimeZone)> {
    [section, recipient, Some(organisation)]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .find_map(|name| zone(name).map(|tz| (name, tz)))
}

pub(crate) fn to_jiff(ts: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ts.unix_ms()).unwrap_or(jiff::Timestamp::MAX)
}

pub(crate) fn from_jiff(ts: jiff::Timestamp) -> Timestamp {
    Timestamp::from_unix_ms(ts.as_millisecond())
}

/// The instant of local `date` at `time` in `tz`, by the compatible rule (after a gap, the
/// first of a fold).
pub(crate) fn at_local(date: civil::Date, time: LocalTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(date.to_datetime(time.civil()))
        .compatible()
        .ok()
        .map(from_jiff)
}

/// The first instant at or after `at` when `hours` allow a text in `tz`: `at` itself when it is
/// inside the window, otherwise the next opening (today's, or tomorrow's when today's has
/// passed). Never before `at`.
pub fn next_allowed(at: Timestamp, tz: &TimeZone, hours: QuietHours) -> Timestamp {
    let zoned = to_jiff(at).to_zoned(tz.clone());
    let local = LocalTime::of(zoned.time());
    if hours.allows(local) {
        return at;
    }
    let date = zoned.date();
    // Outside the window: the opening is later today when it is still ahead, else tomorrow.
    let day = if local < hours.from {
        Some(date)
    } else {
        date.tomorrow().ok()
    };
    day.and_then(|day| at_local(day, hours.from, tz))
        .map_or(at, |opening| opening.max(at))
}

/// The local date of `at` in `tz`.
pub(crate) fn local_date(at: Timestamp, tz: &TimeZone) -> civil::Date {
    to_jiff(at).to_zoned(tz.clone()).date()
}

/// `at` formatted in `tz` with a strftime pattern (ASCII output: GSM-7 safe).
pub fn format_local(at: Timestamp, tz: &TimeZone, pattern: &str) -> String {
    to_jiff(at)
        .to_zoned(tz.clone())
        .strftime(pattern)
        .to_string()
}
