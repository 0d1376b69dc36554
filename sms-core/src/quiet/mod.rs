//! Quiet hours: when a text may reach a person, in their local time. One rule for alerts and
//! manual sends.
//!
//! For a manual send (a campaign), the rule is [`QuietRule`]: the window texts may go in
//! (default 08:00 to 21:00 local) and the organisation's time zone, for records without one of
//! their own. It is evaluated **when each record is about to be sent**, not only at the
//! preview: a campaign started at 20:55 whose records reach 21:00 local mid-run holds the rest,
//! and they go at the next opening (08:00 local), by a resume or by `sms serve`. A held record
//! is never dropped and never counted failed: it is journaled `held` with the instant it may go
//! ([`crate::RecordState::Held`]).
//!
//! A record's zone is its own time zone, else the organisation's. A record whose own zone is
//! not a zone jiff knows (a typo such as `America/New_Yrok`) is **blocked** with
//! [`crate::BlockReason::UnknownTimeZone`], not sent in the organisation's zone: the person may
//! live three hours away, and falling back could text them at 5 am. The preview names the
//! record and the zone, so staff fix it and send again; `--ignore-quiet-hours` (no rule) does
//! not look at zones at all.
//!
//! Local times of day become instants by jiff's compatible rule (see [`local`]): an opening in
//! a spring-forward gap is just after the gap, one in an autumn fold is the first.
//!
//! ```
//! use sms_core::quiet::QuietRule;
//! use sms_core::Timestamp;
//!
//! let rule = QuietRule::default(); // 08:00-21:00, America/New_York
//! let (name, tz) = rule.zone_for(None).unwrap();
//! // 21:30 in New York (01:30 UTC in summer): held until 08:00 there.
//! let now = Timestamp::parse("2026-07-02T01:30:00Z").unwrap();
//! let hold = rule.hold(name, &tz, now).unwrap();
//! assert_eq!(hold.until, Timestamp::parse("2026-07-02T12:00:00Z").unwrap());
//! // 10:00 in New York: goes now.
//! assert!(rule.hold(name, &tz, Timestamp::parse("2026-07-02T14:00:00Z").unwrap()).is_none());
//! ```

pub mod local;

use std::collections::HashMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::preview::{PreviewItem, PreviewOutcome};
use crate::time::Timestamp;

pub use local::{LocalTime, QuietHours, format_local, next_allowed, resolve_time_zone, zone};

/// The time zone used when the organisation gives none (the CLI's `--org-time-zone` default).
pub const DEFAULT_ORG_TIME_ZONE: &str = "America/New_York";

/// The quiet-hours rule a manual send is made under: when texts may go, and the zone of
/// records without their own. `None` where a rule is optional means quiet hours are ignored
/// (an emergency: `--ignore-quiet-hours`), and is what campaigns stored before quiet hours
/// existed read as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietRule {
    /// When texts may go, in the recipient's local time (default 08:00 to 21:00).
    pub hours: QuietHours,
    /// The organisation's IANA time zone, for records without one.
    pub org_time_zone: String,
}

impl Default for QuietRule {
    fn default() -> Self {
        QuietRule {
            hours: QuietHours::default(),
            org_time_zone: DEFAULT_ORG_TIME_ZONE.to_owned(),
        }
    }
}

/// Why a record's time zone cannot be used: the name jiff does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}")]
pub struct UnknownTimeZone(pub String);

impl QuietRule {
    /// The zone a record is read in: its own when it has one (not blank), else the
    /// organisation's. A name jiff does not know is an error, never a fallback (see the module
    /// documentation: a fallback could text someone at night).
    pub fn zone_for<'a>(
        &'a self,
        record_zone: Option<&'a str>,
    ) -> Result<(&'a str, TimeZone), UnknownTimeZone> {
        let name = record_zone
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .unwrap_or(self.org_time_zone.trim());
        zone(name)
            .map(|tz| (name, tz))
            .ok_or_else(|| UnknownTimeZone(name.to_owned()))
    }

    /// Whether a text to a record in `tz` (named `name`) must wait at `now`: `Some` with the
    /// first instant the window is open again, `None` when it may go now.
    pub fn hold(&self, name: &str, tz: &TimeZone, now: Timestamp) -> Option<Hold> {
        let until = next_allowed(now, tz, self.hours);
        (until > now).then(|| Hold {
            until,
            time_zone: name.to_owned(),
        })
    }
}

/// A record held by quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The first instant texts may go again where the recipient is.
    pub until: Timestamp,
    /// The time zone the hours were read in.
    pub time_zone: String,
}

/// Time zones looked up once each: a campaign holds many records in few zones.
#[derive(Debug, Default)]
pub struct ZoneCache {
    zones: HashMap<String, Option<TimeZone>>,
}

impl ZoneCache {
    /// An empty cache.
    pub fn new() -> ZoneCache {
        ZoneCache::default()
    }

    /// Checks that a record whose own zone is `record_zone` has a known zone under `rule`.
    pub fn check(
        &mut self,
        rule: &QuietRule,
        record_zone: Option<&str>,
    ) -> Result<(), UnknownTimeZone> {
        self.resolve(rule, record_zone).map(|_| ())
    }

    /// Whether a text to a record whose own zone is `record_zone` must wait at `now` under
    /// `rule`: `Ok(None)` it may go, `Ok(Some(hold))` it waits, `Err` its zone is unknown.
    pub fn hold(
        &mut self,
        rule: &QuietRule,
        record_zone: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Hold>, UnknownTimeZone> {
        let (name, tz) = self.resolve(rule, record_zone)?;
        Ok(rule.hold(name, &tz, now))
    }

    fn resolve<'a>(
        &mut self,
        rule: &'a QuietRule,
        record_zone: Option<&'a str>,
    ) -> Result<(&'a str, TimeZone), UnknownTimeZone> {
        let name = record_zone
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .unwrap_or(rule.org_time_zone.trim());
        self.get(name)
            .map(|tz| (name, tz))
            .ok_or_else(|| UnknownTimeZone(name.to_owned()))
    }

    /// The zone `name` names (`None`: not one jiff knows), looked up once per name.
    pub fn get(&mut self, name: &str) -> Option<TimeZone> {
        if let Some(tz) = self.zones.get(name) {
            return tz.clone();
        }
        let tz = zone(name);
        self.zones.insert(name.to_owned(), tz.clone());
        tz
    }
}

/// One end of the span in which held records may go: the instant, and the same in the local
/// time of the zone it was read in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The instant (UTC).
    pub at: Timestamp,
    /// The time zone.
    pub time_zone: String,
    /// `at` in that zone, as a person reads it (`2026-03-10 08:00 EDT`).
    pub local: String,
}

impl Release {
    fn new(at: Timestamp, time_zone: &str) -> Release {
        let local = zone(time_zone)
            .map(|tz| format_local(at, &tz, "%Y-%m-%d %H:%M %Z"))
            .unwrap_or_else(|| at.to_string());
        Release {
            at,
            time_zone: time_zone.to_owned(),
            local,
        }
    }
}

/// How many records quiet hours hold, and when they may go: from `earliest` (the first
/// record's opening) to `latest` (the last one's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSummary {
    /// Records held.
    pub records: u64,
    /// The first of them may go then.
    pub earliest: Release,
    /// The last of them may go then.
    pub latest: Release,
}

impl HeldSummary {
    /// The summary of these holds; `None` when there are none.
    pub fn of<'a>(holds: impl IntoIterator<Item = (Timestamp, &'a str)>) -> Option<HeldSummary> {
        let mut holds = holds.into_iter();
        let first = holds.next()?;
        let (mut records, mut earliest, mut latest) = (1u64, first, first);
        for hold in holds {
            records += 1;
            if hold.0 < earliest.0 {
                earliest = hold;
            }
            if hold.0 > latest.0 {
                latest = hold;
            }
        }
        Some(HeldSummary {
            records,
            earliest: Release::new(earliest.0, earliest.1),
            latest: Release::new(latest.0, latest.1),
        })
    }

    /// `until 08:00 local: 2026-03-10 08:00 EDT (12:00 UTC)`, or the span when the records
    /// are in several zones.
    pub fn until_text(&self) -> String {
        if self.earliest.at == self.latest.at {
            format!("until {} ({})", self.earliest.local, self.earliest.at)
        } else {
            format!(
                "from {} ({}) to {} ({})",
                self.earliest.local, self.earliest.at, self.latest.local, self.latest.at
            )
        }
    }
}

/// What quiet hours do to the eligible `items` of a preview at `now` under `rule`: how many
/// would be held and until when (`None`: none would). Records whose zone is unknown are
/// blocked by the preview already and not counted here.
pub fn held_at(items: &[PreviewItem], rule: &QuietRule, now: Timestamp) -> Option<HeldSummary> {
    let mut cache = ZoneCache::new();
    let holds: Vec<Hold> = items
        .iter()
        .filter(|item| matches!(item.outcome, PreviewOutcome::Eligible { .. }))
        .filter_map(|item| {
            cache
                .hold(rule, item.time_zone.as_deref(), now)
                .ok()
                .flatten()
        })
        .collect();
    HeldSummary::of(holds.iter().map(|h| (h.until, h.time_zone.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{BlockReason, ProgramYear, ProgramYears, Purpose};
    use crate::optout::OptOutSnapshot;
    use crate::phone::Region;
    use crate::preview::{Money, PreviewSettings, preview};
    use crate::recipient::{PermittedMarketingMethods, Recipient, RecipientKind, RecordId};
    use crate::template::Template;

    fn client(id: &str, mobile: &str, zone: Option<&str>) -> Recipient {
        Recipient {
            record_id: RecordId::new(id),
            kind: RecipientKind::Client {
                permitted_marketing_methods: PermittedMarketingMethods::new("Text"),
            },
            first_name: "Pat".into(),
            last_name: "Doe".into(),
            mobile: mobile.into(),
            time_zone: zone.map(str::to_owned),
            fields: Default::default(),
        }
    }

    fn settings(quiet_hours: Option<QuietRule>) -> PreviewSettings {
        PreviewSettings {
            region: Region::US,
            smart_encoding: false,
            price_per_segment: Money::parse("0.0083", "USD").expect("valid"),
            program_years: ProgramYears::current(ProgramYear::new("2026").expect("not blank")),
            purpose: Purpose::Manual,
            quiet_hours,
        }
    }

    fn people() -> Vec<Recipient> {
        vec![
            client("NY", "(212) 555-0101", None),
            client("LA", "(212) 555-0102", Some(" America/Los_Angeles ")),
            client("TYPO", "(212) 555-0103", Some("America/New_Yrok")),
            client("BLANK", "(212) 555-0104", Some("  ")),
            client("NOMOBILE", "", Some("Nowhere/Else")),
        ]
    }

    #[test]
    fn an_unknown_zone_is_blocked_naming_it_and_a_blank_one_is_the_organisations() {
        let template = Template::parse("Hi {first_name}").expect("valid");
        let rule = QuietRule::default();
        let p = preview(
            people(),
            &template,
            &OptOutSnapshot::default(),
            &settings(Some(rule.clone())),
        )
        .expect("previews");
        let zones: Vec<Option<&str>> = p.items.iter().map(|i| i.time_zone.as_deref()).collect();
        assert_eq!(zones, [None, Some("America/Los_Angeles"), None, None, None]);
        assert_eq!(
            p.items[2].outcome,
            PreviewOutcome::Blocked {
                reason: BlockReason::UnknownTimeZone {
                    time_zone: "America/New_Yrok".into()
                }
            }
        );
        // The consent reason comes first: a record without a mobile is not about its zone.
        assert!(matches!(
            &p.items[4].outcome,
            PreviewOutcome::Blocked {
                reason: BlockReason::NoMobile
            }
        ));
        assert_eq!(
            p.totals.blocked_by_reason.get("unknown_time_zone"),
            Some(&1)
        );
        assert_eq!(p.quiet_hours, Some(rule.clone()));

        // 22:30 in New York, 19:30 in Los Angeles: two held until 08:00 New York time.
        let now = Timestamp::parse("2026-07-02T02:30:00Z").expect("valid");
        let held = held_at(&p.items, &rule, now).expect("some held");
        assert_eq!(held.records, 2);
        assert_eq!(held.earliest, held.latest);
        assert_eq!(held.earliest.local, "2026-07-02 08:00 EDT");
        assert_eq!(
            held.until_text(),
            "until 2026-07-02 08:00 EDT (2026-07-02T12:00:00Z)"
        );
        // 23:30 in Los Angeles too: three, over two openings.
        let later = Timestamp::parse("2026-07-02T06:30:00Z").expect("valid");
        let held = held_at(&p.items, &rule, later).expect("all held");
        assert_eq!(held.records, 3);
        assert_eq!(held.latest.local, "2026-07-02 08:00 PDT");
        assert!(held.until_text().starts_with("from 2026-07-02 08:00 EDT"));
        // Noon in New York: none.
        let noon = Timestamp::parse("2026-07-02T16:00:00Z").expect("valid");
        assert_eq!(held_at(&p.items, &rule, noon), None);
    }

    #[test]
    fn ignoring_quiet_hours_does_not_look_at_zones() {
        let template = Template::parse("Hi {first_name}").expect("valid");
        let p = preview(
            people(),
            &template,
            &OptOutSnapshot::default(),
            &settings(None),
        )
        .expect("previews");
        assert_eq!(p.totals.texts, 4, "the typo'd zone is texted too");
        assert!(p.items.iter().all(|i| i.time_zone.is_none()));
        assert_eq!(p.quiet_hours, None);
    }

    #[test]
    fn a_campaign_takes_the_rule_of_its_preview() {
        let template = Template::parse("Hi").expect("valid");
        let p = preview(
            people(),
            &template,
            &OptOutSnapshot::default(),
            &settings(Some(QuietRule::default())),
        )
        .expect("previews");
        let campaign = crate::Campaign::from_preview(
            crate::CampaignId::new("c").expect("valid"),
            "c",
            p,
            crate::CampaignSettings::default(),
            Timestamp::from_unix_ms(0),
        );
        assert_eq!(campaign.settings.quiet_hours, Some(QuietRule::default()));
    }
}
