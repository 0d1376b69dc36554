//! MyAccount Alerts: texts clients sign up for, per kind, fired by the host's events (a class
//! cancelled, a waitlist slot opening) or by the calendar (a course starting tomorrow).
//!
//! Everything here is a pure function of its inputs and `now`, like the rest of the core:
//!
//! - [`plan_event`] turns a host event into one [`ScheduledAlert`] per roster record, with the
//!   instant it falls due (`course_start`: the day before, at the configured local time) and
//!   when it stops making sense;
//! - [`evaluate`] decides, at `now`, for every pending alert: send (with the rendered body),
//!   wait (not due yet, quiet hours, over the cap: with the instant), or never (expired,
//!   cancelled, reverted, not subscribed, no consent: with the reason);
//! - [`AlertStore`] keeps subscriptions, events, alerts and their outcomes; [`AlertRunner`]
//!   sends what is due through the campaigns' journaled [`crate::Dispatcher`], exactly once.

mod rules;
mod runner;
mod store;
mod subscription;
mod templates;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::consent::{AlertKind, BlockReason, ProgramYear};
use crate::recipient::{Recipient, RecordId};
use crate::time::Timestamp;

pub use crate::quiet::{LocalTime, QuietHours, next_allowed, resolve_time_zone};
pub use rules::{Decision, DueInputs, Evaluation, RecentSend, SectionFacts, evaluate};
pub use runner::{AlertRunError, AlertRunLine, AlertRunReport, AlertRunner};
pub use store::{
    AlertBatch, AlertOutcome, AlertStatus, AlertStore, AlertStoreError, EventInsert,
    InMemoryAlertStore, StoredAlert,
};
pub use subscription::{
    SubscriptionAction, SubscriptionBook, SubscriptionChange, SubscriptionSource, SubscriptionState,
};
pub use templates::{
    AlertTemplates, LintWarning, TemplateCheckError, default_template, event_fields, lint,
    typical_values,
};

impl AlertKind {
    /// Every kind, in the product's order.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::CourseStart,
        AlertKind::EvaluationDue,
        AlertKind::UpcomingOffering,
        AlertKind::ClassCancelled,
        AlertKind::WaitlistSlotOpen,
        AlertKind::ScheduleChanged,
    ];

    /// The wire name (`course_start`...), as in JSON and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertKind::CourseStart => "course_start",
            AlertKind::EvaluationDue => "evaluation_due",
            AlertKind::UpcomingOffering => "upcoming_offering",
            AlertKind::ClassCancelled => "class_cancelled",
            AlertKind::WaitlistSlotOpen => "waitlist_slot_open",
            AlertKind::ScheduleChanged => "schedule_changed",
        }
    }

    /// The kind with this wire name.
    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name.trim())
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host's id of an event: the same id reported twice is one event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// An event id (surrounding white space removed); `None` when blank.
    pub fn new(id: impl AsRef<str>) -> Option<EventId> {
        let id = id.as_ref().trim();
        (!id.is_empty()).then(|| EventId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something that happened in the registration system, reported by the host.
///
/// The roster is the section's records (the same fields as the recipients CSV); a waitlist
/// offer has exactly one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The host's id of the event.
    pub id: EventId,
    /// Which alert it fires.
    pub kind: AlertKind,
    /// The section's id.
    pub section: String,
    /// The section's own IANA time zone, when it has one (it wins over the recipient's).
    pub section_time_zone: Option<String>,
    /// When the section (or the class concerned) starts.
    pub starts_at: Option<Timestamp>,
    /// `schedule_changed`: the old value (date, time or location), as the client knew it.
    pub old: Option<String>,
    /// `schedule_changed`: the new value.
    pub new: Option<String>,
    /// `waitlist_slot_open`: the seat is held until then.
    pub hold_until: Option<Timestamp>,
    /// Why (a cancellation's cause: weather, instructor illness...).
    pub reason: Option<String>,
    /// The program year of the database the roster comes from, when the host says.
    pub program_year: Option<ProgramYear>,
    /// When the event reached us.
    pub received_at: Timestamp,
}

/// How alerts are timed and capped. The defaults are the product's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertConfig {
    /// The organisation's name (merge field `{org_name}`).
    pub org_name: String,
    /// The organisation's IANA time zone: used when neither the section nor the recipient has
    /// one.
    pub org_time_zone: String,
    /// The current program year; an event whose roster comes from another is not sent.
    pub current_program_year: Option<ProgramYear>,
    /// Local time of day a `course_start` reminder goes, the day before (default 17:00).
    pub course_start_send_at: LocalTime,
    /// When texts may go, in the recipient's local time (default 08:00 to 21:00).
    pub quiet_hours: QuietHours,
    /// Per-kind quiet hours, where they differ from `quiet_hours`.
    pub quiet_hours_by_kind: BTreeMap<AlertKind, QuietHours>,
    /// A `class_cancelled` for a class starting within this many minutes may go during quiet
    /// hours, when `urgent_cancellations_in_quiet_hours` is on (default 180).
    pub urgent_cancellation_window_minutes: u32,
    /// Let urgent cancellations through quiet hours (default off).
    pub urgent_cancellations_in_quiet_hours: bool,
    /// At most this many alerts per number per rolling 24 hours (default 3).
    pub cap_per_24h: u32,
    /// An alert with no natural end (a reminder of an evaluation, an offering, a schedule
    /// change) expires this many hours after it fell due, when caps or quiet hours held it
    /// back that long (default 24).
    pub stale_after_hours: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            org_name: "Community Ed".to_owned(),
            org_time_zone: "America/New_York".to_owned(),
            current_program_year: None,
            course_start_send_at: LocalTime::new(17, 0).unwrap_or(LocalTime::MIDNIGHT),
            quiet_hours: QuietHours::default(),
            quiet_hours_by_kind: BTreeMap::new(),
            urgent_cancellation_window_minutes: 180,
            urgent_cancellations_in_quiet_hours: false,
            cap_per_24h: 3,
            stale_after_hours: 24,
        }
    }
}

impl AlertConfig {
    /// The quiet hours that apply to `kind`.
    pub fn quiet_hours_for(&self, kind: AlertKind) -> QuietHours {
        self.quiet_hours_by_kind
            .get(&kind)
            .copied()
            .unwrap_or(self.quiet_hours)
    }
}

/// One alert for one record, as scheduled from an event. `(event, record)` is its key: an
/// event reported twice schedules nothing new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledAlert {
    /// The event it comes from.
    pub event_id: EventId,
    /// Its kind.
    pub kind: AlertKind,
    /// The section.
    pub section: String,
    /// The record, as the roster gave it.
    pub recipient: Recipient,
    /// The time zone it is evaluated in (section, else recipient, else organisation).
    pub time_zone: String,
    /// When it falls due (before quiet hours).
    pub due_at: Timestamp,
    /// After this it no longer makes sense (hold-until, the course's start...).
    pub expires_at: Timestamp,
    /// When the section (or class) starts, when the event said.
    pub starts_at: Option<Timestamp>,
    /// The program year of the roster's database, when the host said.
    pub program_year: Option<ProgramYear>,
    /// The values of the event's merge fields, rendered in `time_zone`: the same for every
    /// alert of the event in that zone, so shared rather than copied per alert (a store reads
    /// them once per event).
    #[serde(with = "shared_fields")]
    pub fields: Arc<BTreeMap<String, String>>,
    /// When the event arrived (orders alerts and events of one section).
    pub received_at: Timestamp,
}

/// `ScheduledAlert::fields` in JSON as the map itself, as before it was shared.
mod shared_fields {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        fields: &Arc<BTreeMap<String, String>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        fields.as_ref().serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<BTreeMap<String, String>>, D::Error> {
        BTreeMap::deserialize(deserializer).map(Arc::new)
    }
}

impl ScheduledAlert {
    /// The record's id.
    pub fn record_id(&self) -> &RecordId {
        &self.recipient.record_id
    }
}

/// Why an alert is not sent now (waits) or never will be. Every decision other than "send"
/// carries one; [`AlertReason::code`] is stable, `Display` reads well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AlertReason {
    /// Waits: it falls due later.
    #[error("due at {due_at}")]
    NotYetDue {
        /// When it falls due.
        due_at: Timestamp,
    },
    /// Waits: quiet hours where the recipient is.
    #[error("quiet hours in {time_zone} until {until}")]
    QuietHours {
        /// When texts may go again.
        until: Timestamp,
        /// The time zone the hours were read in.
        time_zone: String,
    },
    /// Waits: the number had as many alerts as the cap allows in the last 24 hours.
    #[error("{number} had {cap} alert(s) in the last 24 hours (the cap); next slot at {until}")]
    OverCap {
        /// The number.
        number: crate::PhoneNumber,
        /// The cap.
        cap: u32,
        /// When a slot frees.
        until: Timestamp,
    },
    /// Never: consent (program year, number, permission, STOP) or the text itself. Its code
    /// is the consent's own (`opted_out`...); in JSON `{"code": "blocked", "reason": {...}}`.
    #[error("{reason}")]
    Blocked {
        /// Why, as for a manual send.
        reason: BlockReason,
    },
    /// Never: staff receive no alerts.
    #[error("staff receive no alerts")]
    StaffNeverAlerted,
    /// Never: the client is not subscribed to this kind.
    #[error("not subscribed to {kind} alerts")]
    NotSubscribed {
        /// The kind.
        kind: AlertKind,
    },
    /// Never: the client unsubscribed from this kind.
    #[error("unsubscribed from {kind} alerts on {at}")]
    Unsubscribed {
        /// The kind.
        kind: AlertKind,
        /// When.
        at: Timestamp,
    },
    /// Never: the record's mobile is not the number the client subscribed with.
    #[error("subscribed with {subscribed}, the record now has another number")]
    SubscribedNumberDiffers {
        /// The number the consent was given for.
        subscribed: crate::PhoneNumber,
    },
    /// Never: it no longer makes sense (a waitlist hold ended, the course started, or it was
    /// held back past its useful life).
    #[error("expired at {expires_at}{}", earliest.map(|e| format!(" (could only go at {e})")).unwrap_or_default())]
    Expired {
        /// When it stopped making sense.
        expires_at: Timestamp,
        /// When it could have gone at the earliest, when quiet hours or the cap held it past.
        earliest: Option<Timestamp>,
    },
    /// Never: the section was cancelled since (event `event_id`).
    #[error("section cancelled since (event {event_id})")]
    SectionCancelled {
        /// The cancellation.
        event_id: EventId,
    },
    /// Never: the schedule change was undone before it was sent (event `event_id`).
    #[error("schedule change reverted before sending (event {event_id})")]
    Reverted {
        /// The change that undid it.
        event_id: EventId,
    },
    /// Never: this (event, record) was scheduled already (the host reported the event twice).
    #[error("event {event_id} was already recorded for this record")]
    Duplicate {
        /// The event.
        event_id: EventId,
    },
}

impl AlertReason {
    /// A short stable code (`quiet_hours`, `expired`, or the consent's own code...).
    pub fn code(&self) -> &'static str {
        match self {
            AlertReason::NotYetDue { .. } => "not_yet_due",
            AlertReason::QuietHours { .. } => "quiet_hours",
            AlertReason::OverCap { .. } => "over_cap",
            AlertReason::Blocked { reason } => reason.code(),
            AlertReason::StaffNeverAlerted => "staff_never_alerted",
            AlertReason::NotSubscribed { .. } => "not_subscribed",
            AlertReason::Unsubscribed { .. } => "unsubscribed",
            AlertReason::SubscribedNumberDiffers { .. } => "subscribed_number_differs",
            AlertReason::Expired { .. } => "expired",
            AlertReason::SectionCancelled { .. } => "section_cancelled",
            AlertReason::Reverted { .. } => "reverted",
            AlertReason::Duplicate { .. } => "duplicate",
        }
    }

    /// Whether the alert waits (it may still go) rather than never going.
    pub fn is_wait(&self) -> bool {
        matches!(
            self,
            AlertReason::NotYetDue { .. }
                | AlertReason::QuietHours { .. }
                | AlertReason::OverCap { .. }
        )
    }
}

/// Why an event cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A value this kind needs is missing (`course_start` needs the start...).
    #[error("a {kind} event needs {what}")]
    Missing {
        /// The kind.
        kind: AlertKind,
        /// What to give.
        what: &'static str,
    },
    /// A waitlist offer is for one client.
    #[error("a waitlist_slot_open event is for one client; the roster has {records} records")]
    NotOneRecord {
        /// How many the roster holds.
        records: usize,
    },
    /// The kind's template cannot be filled from this event and roster.
    #[error(transparent)]
    Template(#[from] TemplateCheckError),
    /// A time zone name jiff does not know.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// A date computation went out of range.
    #[error("date out of range: {0}")]
    OutOfRange(String),
}

pub use rules::plan_event;
